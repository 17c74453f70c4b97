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
}
