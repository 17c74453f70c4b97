//! Supervisor commands: `server` (foreground) and `cluster …` (detached start, stop,
//! status, and breaking single nodes on purpose).
//!
//! Every `cluster` command except `start` is a thin client of the supervisor's control
//! API (`supervisor.control_addr` of the config); it prints one line (or one table) and
//! exits 0, or prints one line on stderr and exits 1. A config that does not load exits 2
//! before anything happens.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use super::{GlobalOpts, EXIT_FAILURE, EXIT_USAGE};
use crate::config::{ClusterConfig, DEFAULT_CONFIG_FILE};
use crate::supervisor::control::ControlClient;
use crate::supervisor::node::NodeAction;
use crate::supervisor::process::{self, LaunchSpec};
use crate::supervisor::{self as sup, view};

/// How long `cluster start` waits for the cluster to elect a leader.
const START_WAIT: Duration = Duration::from_secs(90);

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Set by `cluster start` for the detached supervisor it spawns
    #[arg(long, hide = true)]
    pub detached: bool,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start the supervisor and every node in the background; returns once a leader is elected
    Start,
    /// Stop every node and the background supervisor
    Stop,
    /// Show every node: process state, role, term, leader, log indexes
    Status {
        /// Print the supervisor's raw JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// SIGKILL a node (a crash); it stays down until start-node or restart
    Kill {
        #[arg(value_parser = parse_node)]
        node: u64,
    },
    /// Stop a node gracefully (SIGTERM); it stays down until start-node or restart
    StopNode {
        #[arg(value_parser = parse_node)]
        node: u64,
    },
    /// Start a node that was stopped or killed
    StartNode {
        #[arg(value_parser = parse_node)]
        node: u64,
    },
    /// Stop a node gracefully (if running) and start it again
    Restart {
        #[arg(value_parser = parse_node)]
        node: u64,
    },
    /// Freeze a node with SIGSTOP (it keeps its sockets but answers nothing)
    Pause {
        #[arg(value_parser = parse_node)]
        node: u64,
    },
    /// Continue a paused node with SIGCONT
    Resume {
        #[arg(value_parser = parse_node)]
        node: u64,
    },
    /// Delay when a node applies committed entries (makes stale eventual reads visible)
    #[command(after_help = "Example: raft-nosql cluster set-delay 1 --apply-delay-ms 2000\n\
        Only visibility changes: entries are still fsynced and acknowledged as before.")]
    SetDelay {
        #[arg(value_parser = parse_node)]
        node: u64,
        /// Delay in ms before committed entries are applied on that node (0 = off)
        #[arg(long)]
        apply_delay_ms: u64,
    },
    /// Cut nodes off from each other (Raft messages only; clients still reach every node)
    #[command(
        after_help = "Examples:\n  raft-nosql cluster partition 2        # node 2 alone, 0 and 1 together\n  \
        raft-nosql cluster partition 0,1 2    # two sides: {0,1} and {2}\n  \
        raft-nosql cluster heal               # undo every partition and slow link"
    )]
    Partition {
        /// Sides of the partition, each a comma list of node ids; nodes not named form one more side
        #[arg(required = true, num_args = 1..)]
        sides: Vec<String>,
    },
    /// Remove every partition and slow link
    Heal,
    /// Delay or drop one node's outgoing Raft messages
    #[command(
        after_help = "Example: raft-nosql cluster slow 0 --delay-ms 200 --jitter-ms 100 --drop-rate 0.1"
    )]
    Slow {
        #[arg(value_parser = parse_node)]
        node: u64,
        /// Added delay of each message, in ms
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// Random extra delay up to this many ms
        #[arg(long, default_value_t = 0)]
        jitter_ms: u64,
        /// Fraction of messages dropped, 0.0-1.0
        #[arg(long, default_value_t = 0.0)]
        drop_rate: f64,
    },
}

/// A node id: `1` or `node1`.
fn parse_node(s: &str) -> Result<u64, String> {
    s.trim_start_matches("node")
        .parse()
        .map_err(|_| format!("{s:?} is not a node id (a number such as 0, 1, 2)"))
}

fn load(global: &GlobalOpts) -> Result<ClusterConfig, ExitCode> {
    global.load_config().map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_USAGE)
    })
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(EXIT_FAILURE)
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The config file the nodes must read: `--config`, else `./cluster.toml` if present.
fn config_file(global: &GlobalOpts) -> Option<PathBuf> {
    match &global.config {
        Some(p) => Some(absolute(p)),
        None => {
            let default = Path::new(DEFAULT_CONFIG_FILE);
            default.exists().then(|| absolute(default))
        }
    }
}

/// `raft-nosql server`: the supervisor in the foreground.
pub async fn run_server(global: &GlobalOpts, args: ServerArgs) -> ExitCode {
    let config = match load(global) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail(format!("cannot find this executable: {e}")),
    };
    let spec = LaunchSpec {
        exe,
        config_file: config_file(global),
        data_root: absolute(&config.data_root),
    };
    match sup::run(
        config,
        spec,
        sup::Options { detached: args.detached },
        sup::signals(args.detached),
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// `raft-nosql cluster …`.
pub async fn run(global: &GlobalOpts, cmd: ClusterCommand) -> ExitCode {
    let config = match load(global) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let addr = config.supervisor.control_addr.clone();
    // A node stop may take stop_timeout_ms; leave room on top of it.
    let timeout =
        Duration::from_millis(config.supervisor.stop_timeout_ms) + Duration::from_secs(15);
    let client = ControlClient::new(&addr, timeout);
    let action = match cmd {
        ClusterCommand::Start => return start(global, &config).await,
        ClusterCommand::Stop => return stop(&config, &client).await,
        ClusterCommand::Status { json } => return status(&client, json).await,
        ClusterCommand::Kill { node } => (node, NodeAction::Kill),
        ClusterCommand::StopNode { node } => (node, NodeAction::Stop),
        ClusterCommand::StartNode { node } => (node, NodeAction::Start),
        ClusterCommand::Restart { node } => (node, NodeAction::Restart),
        ClusterCommand::Pause { node } => (node, NodeAction::Pause),
        ClusterCommand::Resume { node } => (node, NodeAction::Resume),
        ClusterCommand::SetDelay { node, apply_delay_ms } => {
            let body = serde_json::json!({ "apply_delay_ms": apply_delay_ms });
            return node_admin(
                &config,
                node,
                reqwest::Method::POST,
                "/admin/simulation",
                Some(body),
            )
            .await
            .map(|_| {
                println!("node {node} now applies committed entries {apply_delay_ms} ms late");
                ExitCode::SUCCESS
            })
            .unwrap_or_else(fail);
        }
        ClusterCommand::Partition { sides } => return partition(&config, &sides).await,
        ClusterCommand::Heal => return heal(&config).await,
        ClusterCommand::Slow { node, delay_ms, jitter_ms, drop_rate } => {
            return slow(&config, node, delay_ms, jitter_ms, drop_rate).await
        }
    };
    match client.act(action.0, action.1).await {
        Ok(report) => {
            println!("{}", report.message);
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

async fn status(client: &ControlClient, json: bool) -> ExitCode {
    match client.status().await {
        Ok(v) if json => {
            println!("{}", serde_json::to_string_pretty(&v).expect("view serializes"));
            ExitCode::SUCCESS
        }
        Ok(v) => {
            println!("{}", view::render_table(&v));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `cluster start`: spawn `raft-nosql server --detached` as a new session and wait until
/// its control API reports a leader.
async fn start(global: &GlobalOpts, config: &ClusterConfig) -> ExitCode {
    let data_root = absolute(&config.data_root);
    let addr = &config.supervisor.control_addr;
    let client = ControlClient::new(addr, Duration::from_secs(5));
    if let Ok(v) = client.status().await {
        return fail(format!(
            "a supervisor is already running at {addr} (pid {}); 'raft-nosql cluster stop' stops it",
            v.supervisor.pid
        ));
    }
    let pid_file = sup::pid_file(&data_root);
    if let Some(pid) = process::read_pid_file(&pid_file).filter(|p| process::pid_alive(*p)) {
        return fail(format!(
            "a supervisor is already running as pid {pid} (see {})",
            pid_file.display()
        ));
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail(format!("cannot find this executable: {e}")),
    };
    let mut args = vec!["server".to_string(), "--detached".to_string()];
    if let Some(c) = config_file(global) {
        args.push("--config".to_string());
        args.push(c.display().to_string());
    }
    args.push("--data-dir-root".to_string());
    args.push(data_root.display().to_string());
    let log = sup::log_file(&data_root);
    let mut child = match process::spawn_detached(&exe, &args, &log) {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot start the supervisor: {e}")),
    };
    let pid = child.id();
    // The supervisor writes this file itself too; writing it now closes the window in
    // which a second `cluster start` would see neither the file nor the control API.
    let _ = process::write_pid_file(&pid_file, pid);

    let deadline = Instant::now() + START_WAIT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let _ = std::fs::remove_file(&pid_file);
            return fail(format!(
                "the supervisor exited ({}) before the cluster was up; last lines of {}:\n{}",
                process::describe_exit(&status),
                log.display(),
                tail(&log, 15)
            ));
        }
        if let Ok(v) = client.status().await {
            if v.leader.is_some() {
                println!(
                    "raft-nosql cluster started: {} nodes, {}; supervisor pid {pid}",
                    v.nodes.len(),
                    view::describe_leader(&v)
                );
                println!("{}", view::render_table(&v));
                println!(
                    "supervisor output: {}; node output: {}/node<N>/node.log",
                    log.display(),
                    data_root.display()
                );
                return ExitCode::SUCCESS;
            }
        }
        if Instant::now() > deadline {
            let _ = client.shutdown().await;
            return fail(format!(
                "the cluster elected no leader within {}s, so the supervisor (pid {pid}) was told to stop; last lines of {}:\n{}",
                START_WAIT.as_secs(),
                log.display(),
                tail(&log, 15)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval, bounded by the deadline
    }
}

/// `cluster stop`: ask the supervisor to stop everything and wait until its process is gone.
async fn stop(config: &ClusterConfig, client: &ControlClient) -> ExitCode {
    let pid = match client.shutdown().await {
        Ok(r) => r.pid,
        Err(e) if e.is_not_running() => {
            let pid_file = sup::pid_file(&absolute(&config.data_root));
            if let Some(pid) = process::read_pid_file(&pid_file).filter(|p| process::pid_alive(*p))
            {
                return fail(format!(
                    "supervisor pid {pid} (from {}) is alive but its control API at {} does not answer",
                    pid_file.display(),
                    client.addr()
                ));
            }
            return fail(e);
        }
        Err(e) => return fail(e),
    };
    let wait = Duration::from_millis(config.supervisor.stop_timeout_ms) + Duration::from_secs(30);
    let deadline = Instant::now() + wait;
    while process::pid_alive(pid) {
        if Instant::now() > deadline {
            return fail(format!(
                "supervisor pid {pid} is still running after {}s",
                wait.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval, bounded by the deadline
    }
    println!("cluster stopped (supervisor pid {pid} and every node exited)");
    ExitCode::SUCCESS
}

/// Calls a node's admin API directly (faults and simulation need no supervisor).
async fn node_admin(
    config: &ClusterConfig,
    node: u64,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, String> {
    let addr = &config.node(node).ok_or_else(|| format!("node {node} is not in the config"))?.addr;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let mut req = client.request(method, format!("http://{addr}{path}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.map_err(|e| format!("cannot reach node {node} at {addr}: {e}"))?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    if status.is_success() {
        Ok(v)
    } else {
        Err(format!("node {node}: {}", v["error"]["message"].as_str().unwrap_or(status.as_str())))
    }
}

/// Parses partition sides (`0,1` `2`) into node-id sets; nodes not named form one more
/// side. Every node must be in the config and in at most one side.
fn parse_sides(config: &ClusterConfig, sides: &[String]) -> Result<Vec<Vec<u64>>, String> {
    let mut out: Vec<Vec<u64>> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for side in sides {
        let mut ids = Vec::new();
        for part in side.split(',').filter(|p| !p.is_empty()) {
            let id = parse_node(part)?;
            if config.node(id).is_none() {
                return Err(format!("node {id} is not in the config"));
            }
            if !seen.insert(id) {
                return Err(format!("node {id} is named twice"));
            }
            ids.push(id);
        }
        out.push(ids);
    }
    let rest: Vec<u64> = config.nodes.iter().map(|n| n.id).filter(|i| !seen.contains(i)).collect();
    if !rest.is_empty() {
        out.push(rest);
    }
    if out.len() < 2 {
        return Err("a partition needs at least two sides".to_string());
    }
    Ok(out)
}

/// Each node blocks every node outside its own side, keeping its slow-link settings.
async fn partition(config: &ClusterConfig, sides: &[String]) -> ExitCode {
    let sides = match parse_sides(config, sides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    for side in &sides {
        for &id in side {
            let others: Vec<u64> = sides.iter().filter(|s| *s != side).flatten().copied().collect();
            let result = async {
                let mut spec =
                    node_admin(config, id, reqwest::Method::GET, "/admin/faults", None).await?;
                spec["partitioned_from"] = serde_json::json!(others);
                node_admin(config, id, reqwest::Method::POST, "/admin/faults", Some(spec)).await
            }
            .await;
            if let Err(e) = result {
                return fail(e);
            }
        }
    }
    let shown: Vec<String> = sides
        .iter()
        .map(|s| format!("{{{}}}", s.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")))
        .collect();
    println!("partitioned: {} (Raft messages between sides are dropped; 'raft-nosql cluster heal' undoes it)", shown.join(" | "));
    ExitCode::SUCCESS
}

/// Removes every simulated network fault on every node that answers.
async fn heal(config: &ClusterConfig) -> ExitCode {
    let mut unreachable = Vec::new();
    for n in &config.nodes {
        if let Err(e) =
            node_admin(config, n.id, reqwest::Method::DELETE, "/admin/faults", None).await
        {
            unreachable.push(e);
        }
    }
    println!("healed: no partitions or slow links remain on the nodes that answered");
    for e in &unreachable {
        eprintln!("note: {e}");
    }
    ExitCode::SUCCESS
}

async fn slow(
    config: &ClusterConfig,
    node: u64,
    delay_ms: u64,
    jitter_ms: u64,
    drop_rate: f64,
) -> ExitCode {
    let result = async {
        let mut spec =
            node_admin(config, node, reqwest::Method::GET, "/admin/faults", None).await?;
        spec["delay_ms"] = delay_ms.into();
        spec["jitter_ms"] = jitter_ms.into();
        spec["drop_rate"] = drop_rate.into();
        node_admin(config, node, reqwest::Method::POST, "/admin/faults", Some(spec)).await
    }
    .await;
    match result {
        Ok(_) => {
            println!(
                "node {node}: outgoing Raft messages delayed {delay_ms} ms (+0-{jitter_ms} ms), {:.0}% dropped",
                drop_rate * 100.0
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// The last `n` lines of a file, for error messages.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_parse_with_or_without_prefix() {
        assert_eq!(parse_node("2"), Ok(2));
        assert_eq!(parse_node("node2"), Ok(2));
        assert!(parse_node("two").is_err());
    }

    #[test]
    fn partition_sides_add_the_unnamed_nodes_as_a_side() {
        let c = ClusterConfig::default();
        assert_eq!(parse_sides(&c, &["2".into()]).unwrap(), vec![vec![2], vec![0, 1]]);
        assert_eq!(
            parse_sides(&c, &["0,1".into(), "2".into()]).unwrap(),
            vec![vec![0, 1], vec![2]]
        );
        assert!(parse_sides(&c, &["0,1,2".into()]).is_err());
        assert!(parse_sides(&c, &["0".into(), "0".into()]).is_err());
        assert!(parse_sides(&c, &["7".into()]).is_err());
    }
}
