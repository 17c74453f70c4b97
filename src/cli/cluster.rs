//! Supervisor commands: `server` (foreground) and `cluster …` (detached start, stop,
//! status, and breaking single nodes on purpose).
//!
//! Every `cluster` command except `start` is a thin client of the supervisor's control
//! API (`supervisor.control_addr` of the config), or of the nodes' admin API for faults;
//! it prints one line (or one table; `--output json` prints JSON) and exits 0, or prints
//! one line on stderr and exits 1. Bad usage exits 2 before anything happens: a config
//! that does not load, a node that is not in the config, a value out of range.
//!
//! A node is named by its id (`1` or `node1`) or by what it is right now: `leader`,
//! `follower` (the first node that follows the leader) or `down` (the first node that
//! is stopped, killed or crashed), so examples work whoever leads.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use super::{Failure, GlobalOpts, Output};
use crate::config::{ClusterConfig, DEFAULT_CONFIG_FILE};
use crate::supervisor::control::{ControlClient, ControlError};
use crate::supervisor::node::NodeAction;
use crate::supervisor::process::{self, LaunchSpec};
use crate::supervisor::view::{ClusterView, ProcState};
use crate::supervisor::{self as sup, view};

/// How long `cluster start` waits for the cluster to elect a leader.
const START_WAIT: Duration = Duration::from_secs(90);

/// How long `cluster status --wait` waits for a leader every running node follows.
const STATUS_WAIT: Duration = Duration::from_secs(60);

/// How a node is named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRef {
    /// By id: `1` or `node1`.
    Id(u64),
    /// The node that leads now.
    Leader,
    /// The first running node that is not the leader.
    Follower,
    /// The first node that is stopped, killed or crashed.
    Down,
}

impl std::fmt::Display for NodeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeRef::Id(id) => write!(f, "{id}"),
            NodeRef::Leader => f.write_str("leader"),
            NodeRef::Follower => f.write_str("follower"),
            NodeRef::Down => f.write_str("down"),
        }
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  raft-nosql server --config cluster.toml    # what 'make server' runs; Ctrl+C stops every node"
)]
pub struct ServerArgs {
    /// Set by `cluster start` for the detached supervisor it spawns
    #[arg(long, hide = true)]
    pub detached: bool,
    /// Let nodes listen on non-loopback addresses although no cluster secret is
    /// configured ([security] secret_file); passed on to every node
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start the supervisor and every node in the background; returns once a leader is elected
    #[command(
        after_help = "Example:\n  raft-nosql cluster start --config config/five-nodes.toml\n  \
        (supervisor output goes to <data_root>/supervisor.log; 'raft-nosql cluster stop' ends it)"
    )]
    Start {
        /// Let nodes listen on non-loopback addresses although no cluster secret is
        /// configured ([security] secret_file)
        #[arg(long)]
        insecure: bool,
    },
    /// Initialise a cluster whose nodes were started by hand (`raft-nosql node` on each
    /// host): the config's nodes become the first membership and elect a leader
    #[command(
        after_help = "Example:\n  raft-nosql --config cluster.toml cluster init    # once, after 'raft-nosql node --id N' runs on every host\n\
        Needs no supervisor; with [security] secret_file it proves the cluster secret. A cluster\n\
        that is already initialised is left as it is ('already': true). The supervisor\n\
        ('server', 'cluster start') does this by itself."
    )]
    Init {
        /// The node to initialise through [default: the first node of the config]
        #[arg(long, value_parser = parse_node, value_name = "ID")]
        node: Option<u64>,
    },
    /// Stop every node and the background supervisor
    #[command(after_help = "Example:\n  raft-nosql cluster stop    # also what 'make stop' runs")]
    Stop,
    /// Show every node: process state, role, term, leader, log indexes, faults
    #[command(after_help = "Examples:\n  raft-nosql cluster status\n  \
        raft-nosql cluster status --wait           # first wait until every running node follows one leader\n  \
        raft-nosql cluster status --output json    # the supervisor's view as JSON")]
    Status {
        /// Same as --output json (kept for scripts)
        #[arg(long)]
        json: bool,
        /// Wait (up to 60 s) until a leader is elected and every running node follows it
        /// and has applied what the leader has
        #[arg(long)]
        wait: bool,
    },
    /// Add a node to the running cluster: start it, let it catch up as a learner, make it a voter
    #[command(
        after_help = "Examples:\n  raft-nosql cluster add-node                                 # next free id and port\n  \
        raft-nosql cluster add-node --id 3 --addr 127.0.0.1:8103\n\
        The new node first joins as a learner: it receives the log (or a snapshot) without voting,\n\
        so a slow newcomer cannot stall writes. Once it is close to the leader, openraft's joint\n\
        consensus makes it a voter. Progress is shown until then; the membership is recorded in\n\
        <data_root>/members.json, so a restarted cluster comes back with it."
    )]
    AddNode {
        /// The new node's id (default: one above the highest in use)
        #[arg(long)]
        id: Option<u64>,
        /// The new node's HTTP address host:port (default: the next free port after the nodes')
        #[arg(long)]
        addr: Option<String>,
        /// Return once the node is started and the add is under way, without waiting for it
        #[arg(long)]
        no_wait: bool,
    },
    /// Remove a node through a membership change, then stop it (its data stays unless --purge)
    #[command(after_help = "Examples:\n  raft-nosql cluster remove-node 4\n  \
        raft-nosql cluster remove-node leader --purge    # the cluster elects another leader\n\
        Refused with a message, and nothing changed, for an unknown node, the last voter, or while\n\
        another change is in progress or no node leads.")]
    RemoveNode {
        /// Node id (0, node0), or leader, follower, down
        #[arg(value_parser = parse_node_ref, value_name = "NODE")]
        node: NodeRef,
        /// Also delete the node's data directory
        #[arg(long)]
        purge: bool,
    },
    /// Show the membership: voters, learners, a joint configuration while a change runs
    #[command(after_help = "Examples:\n  raft-nosql cluster members\n  \
        raft-nosql cluster members --output json")]
    Members,
    /// Show each node's disk use next to its live data (items + log kept after the last snapshot)
    #[command(after_help = "Examples:\n  raft-nosql cluster du\n  \
        raft-nosql cluster du --output json    # the supervisor's view, with each node's status.disk")]
    Du,
    /// SIGKILL a node (a crash); it stays down until start-node or restart
    #[command(
        after_help = "Examples:\n  raft-nosql cluster kill leader    # failover: the others elect a new leader\n  \
        raft-nosql cluster kill 2"
    )]
    Kill {
        /// Node id (0, node0), or leader, follower, down
        #[arg(value_parser = parse_node_ref, value_name = "NODE")]
        node: NodeRef,
    },
    /// Stop a node gracefully (SIGTERM); it stays down until start-node or restart
    #[command(after_help = "Example:\n  raft-nosql cluster stop-node 1")]
    StopNode {
        /// Node id (0, node0), or leader, follower, down
        #[arg(value_parser = parse_node_ref, value_name = "NODE")]
        node: NodeRef,
    },
    /// Start a node that was stopped or killed
    #[command(after_help = "Examples:\n  raft-nosql cluster start-node 1\n  \
        raft-nosql cluster start-node down    # the first node that is down")]
    StartNode {
        /// Node id (0, node0), or leader, follower, down
        #[arg(value_parser = parse_node_ref, value_name = "NODE")]
        node: NodeRef,
    },
    /// Stop a node gracefully (if running) and start it again
    #[command(after_help = "Examples:\n  raft-nosql cluster restart 0\n  \
        raft-nosql cluster restart down    # bring back the node you killed")]
    Restart {
        /// Node id (0, node0), or leader, follower, down
        #[arg(value_parser = parse_node_ref, value_name = "NODE")]
        node: NodeRef,
    },
    /// Freeze a node with SIGSTOP (it keeps its sockets but answers nothing)
    #[command(
        after_help = "Example:\n  raft-nosql cluster pause leader    # an election without a crash; 'cluster resume' thaws it"
    )]
    Pause {
        /// Node id (0, node0), or leader, follower, down
        #[arg(value_parser = parse_node_ref, value_name = "NODE")]
        node: NodeRef,
    },
    /// Continue a paused node with SIGCONT
    #[command(
        after_help = "Example:\n  raft-nosql cluster resume 0    # the old leader finds a higher term and steps down"
    )]
    Resume {
        /// Node id (0, node0), or leader, follower, down
        #[arg(value_parser = parse_node_ref, value_name = "NODE")]
        node: NodeRef,
    },
    /// Wipe a node's data and let it catch up from the leader (the remedy for damaged data)
    #[command(
        after_help = "Stops the node if it runs, then starts it once with --rejoin: its data \
        directory is wiped and it catches up from the leader by log or snapshot (the other nodes \
        hold every acknowledged write). For a node whose data is damaged ('crashed (data damaged)' \
        in 'cluster status'); needs a leader with a quorum.\n\nExample:\n  raft-nosql cluster rejoin-node 2"
    )]
    RejoinNode {
        /// Node id (0, node0), or leader, follower, down
        #[arg(value_parser = parse_node_ref, value_name = "NODE")]
        node: NodeRef,
    },
    /// Delay when a node applies committed entries (makes stale eventual reads visible)
    #[command(
        after_help = "Examples:\n  raft-nosql cluster set-delay follower --apply-delay-ms 2000\n  \
        raft-nosql cluster set-delay 1 --apply-delay-ms 0    # undo ('cluster heal' undoes every delay)\n\
        Only visibility changes: entries are still fsynced and acknowledged as before.\n\
        On the leader a delay slows every write too: the leader answers once it has applied."
    )]
    SetDelay {
        /// Node id (0, node0), or leader, follower, down
        #[arg(value_parser = parse_node_ref, value_name = "NODE")]
        node: NodeRef,
        /// Delay in ms before committed entries are applied on that node (0 = off)
        #[arg(long)]
        apply_delay_ms: u64,
    },
    /// Cut nodes off from each other (Raft messages only; clients still reach every node)
    #[command(
        after_help = "Examples:\n  raft-nosql cluster partition 2           # node 2 alone, 0 and 1 together\n  \
        raft-nosql cluster partition 0,1 2       # two sides: {0,1} and {2}\n  \
        raft-nosql cluster partition follower    # one follower alone\n  \
        raft-nosql cluster heal                  # undo every partition and slow link"
    )]
    Partition {
        /// Sides of the partition, each a comma list of node ids (or leader, follower);
        /// nodes not named form one more side
        #[arg(required = true, num_args = 1..)]
        sides: Vec<String>,
    },
    /// Remove every partition, slow link and apply delay
    #[command(
        after_help = "Example:\n  raft-nosql cluster heal    # after 'cluster partition', 'cluster slow' or 'cluster set-delay'"
    )]
    Heal,
    /// Delay or drop one node's outgoing Raft messages
    #[command(
        after_help = "Example:\n  raft-nosql cluster slow 0 --delay-ms 200 --jitter-ms 100 --drop-rate 0.1"
    )]
    Slow {
        /// Node id (0, node0), or leader, follower, down
        #[arg(value_parser = parse_node_ref, value_name = "NODE")]
        node: NodeRef,
        /// Added delay of each message, in ms
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// Random extra delay up to this many ms
        #[arg(long, default_value_t = 0)]
        jitter_ms: u64,
        /// Fraction of messages dropped, 0.0-1.0
        #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
        drop_rate: f64,
    },
}

/// A node id: `1` or `node1`.
fn parse_node(s: &str) -> Result<u64, String> {
    s.trim_start_matches("node")
        .parse()
        .map_err(|_| format!("{s:?} is not a node id (a number such as 0, 1, 2)"))
}

/// A node id, or `leader`, `follower`, `down`.
fn parse_node_ref(s: &str) -> Result<NodeRef, String> {
    match s {
        "leader" => Ok(NodeRef::Leader),
        "follower" => Ok(NodeRef::Follower),
        "down" => Ok(NodeRef::Down),
        _ => parse_node(s).map(NodeRef::Id).map_err(|_| {
            format!("{s:?} is not a node (a node id such as 0, 1, 2, or leader, follower, down)")
        }),
    }
}

/// A fraction from 0.0 to 1.0.
fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a fraction from 0.0 to 1.0")),
    }
}

/// The config, with this process's calls to nodes set up for its `[tls]`.
fn load(global: &GlobalOpts) -> Result<ClusterConfig, Failure> {
    let config = global.load_config()?;
    if let Some(first) = config.nodes.first() {
        crate::tls::install_for_cluster(&config.tls, first.id)
            .map_err(|e| Failure::usage(format!("cannot set up TLS: {e}")))?;
    }
    Ok(config)
}

fn fail(msg: impl std::fmt::Display) -> Failure {
    Failure::failed("failed", msg.to_string())
}

/// A control API error as a failure: a node the supervisor does not know is bad usage.
fn control_failure(e: ControlError) -> Failure {
    match &e {
        ControlError::NotRunning { .. } => Failure::failed("no_supervisor", e.to_string()),
        ControlError::Api { code, .. } if code == "node_not_found" => {
            Failure::Usage { code: code.clone(), message: e.to_string() }
        }
        ControlError::Api { code, .. } => Failure::failed(code.clone(), e.to_string()),
        ControlError::Transport { .. } => Failure::failed("unreachable", e.to_string()),
    }
}

/// A node id must be one of the config's, else it is bad usage (exit 2).
fn check_node(config: &ClusterConfig, id: u64) -> Result<u64, Failure> {
    if config.node(id).is_some() {
        return Ok(id);
    }
    let ids: Vec<String> = config.nodes.iter().map(|n| n.id.to_string()).collect();
    Err(Failure::Usage {
        code: "node_not_found".into(),
        message: format!("node {id} is not in the cluster (nodes: {})", ids.join(", ")),
    })
}

/// Picks the node a [`NodeRef`] names in the cluster as it is now.
fn pick(view: &ClusterView, node: NodeRef) -> Result<u64, Failure> {
    let leader = view.leader.map(|l| l.id);
    let found = match node {
        NodeRef::Id(id) => Some(id),
        NodeRef::Leader => leader,
        NodeRef::Follower => view
            .nodes
            .iter()
            .filter(|n| n.state == ProcState::Running && Some(n.id) != leader)
            .find(|n| n.status.as_ref().is_some_and(|s| leader.is_none() || s.leader_id == leader))
            .map(|n| n.id),
        NodeRef::Down => view.nodes.iter().find(|n| !n.state.has_process()).map(|n| n.id),
    };
    found.ok_or_else(|| {
        let why = match node {
            NodeRef::Leader => "no node leads right now (an election may be under way; 'raft-nosql cluster status --wait' waits for one)",
            NodeRef::Follower => "no running node follows a leader right now",
            _ => "every node is running",
        };
        Failure::failed("no_such_node", format!("cannot pick '{node}': {why}"))
    })
}

/// The node id a [`NodeRef`] names: ids are checked against the config; the other names
/// are looked up in the supervisor's view (or, without a supervisor, the nodes' own
/// status for `leader` and `follower`).
async fn resolve(
    config: &ClusterConfig,
    client: &ControlClient,
    node: NodeRef,
) -> Result<u64, Failure> {
    let id = match node {
        NodeRef::Id(id) => id,
        _ => match client.status().await {
            Ok(view) => pick(&view, node)?,
            Err(e) if e.is_not_running() && node != NodeRef::Down => {
                pick(&nodes_view(config).await, node)?
            }
            Err(e) => return Err(control_failure(e)),
        },
    };
    check_node(config, id)
}

/// A view of the cluster from the nodes' own `/status`, for when no supervisor runs.
async fn nodes_view(config: &ClusterConfig) -> ClusterView {
    let mut nodes = Vec::new();
    for n in &config.nodes {
        let mut v = crate::supervisor::view::NodeView::new(n.id, n.addr.clone());
        if let Ok(s) = node_admin(config, n.id, reqwest::Method::GET, "/status", None).await {
            v.status = serde_json::from_value(s).ok();
            v.state = ProcState::Running;
        }
        nodes.push(v);
    }
    ClusterView {
        supervisor: crate::supervisor::view::SupervisorInfo {
            pid: 0,
            control_addr: config.supervisor.control_addr.clone(),
            data_root: config.data_root.display().to_string(),
            config_file: None,
            uptime_s: 0,
        },
        leader: crate::supervisor::view::find_leader(&nodes),
        nodes,
    }
}

/// Prints `value` as JSON with `--output json`, else the line `text`.
fn print(output: Option<Output>, text: &str, value: serde_json::Value) {
    match output {
        Some(Output::Json) => {
            println!("{}", serde_json::to_string_pretty(&value).expect("JSON serializes"))
        }
        _ => println!("{text}"),
    }
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

/// Before a supervisor starts any node: every node may listen where it is told to (a
/// non-loopback address needs a secret or `--insecure`), and the secret file, if one is
/// named, is usable. Both are usage errors, reported before anything starts.
fn check_security(
    config: &ClusterConfig,
    insecure: bool,
) -> Result<crate::security::Security, Failure> {
    let secured = config.security.secret_file.is_some();
    for n in &config.nodes {
        if let Err(e) = crate::security::check_listen(n.listen_addr(), secured, insecure) {
            return Err(Failure::usage(format!("node {}: {e}", n.id)));
        }
    }
    crate::security::Security::from_config(config).map_err(|e| Failure::usage(e.to_string()))
}

/// `raft-nosql server`: the supervisor in the foreground.
pub async fn run_server(global: &GlobalOpts, args: ServerArgs) -> ExitCode {
    let config = match load(global) {
        Ok(c) => c,
        Err(f) => return f.report(global.output),
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail(format!("cannot find this executable: {e}")).report(global.output),
    };
    let security = match check_security(&config, args.insecure) {
        Ok(s) => std::sync::Arc::new(s),
        Err(f) => return f.report(global.output),
    };
    let spec = LaunchSpec {
        exe,
        config_file: config_file(global),
        data_root: absolute(&config.data_root),
        insecure: args.insecure,
        security,
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
        Err(e) => fail(e).report(global.output),
    }
}

/// `raft-nosql cluster …`.
pub async fn run(global: &GlobalOpts, cmd: ClusterCommand) -> ExitCode {
    let output = match &cmd {
        ClusterCommand::Status { json: true, .. } => Some(Output::Json),
        _ => global.output,
    };
    match execute(global, cmd, output).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(output),
    }
}

async fn execute(
    global: &GlobalOpts,
    cmd: ClusterCommand,
    output: Option<Output>,
) -> Result<(), Failure> {
    let config = load(global)?;
    let addr = config.supervisor.control_addr.clone();
    // A node stop may take stop_timeout_ms; leave room on top of it.
    let timeout =
        Duration::from_millis(config.supervisor.stop_timeout_ms) + Duration::from_secs(15);
    let client = ControlClient::new(&addr, timeout);
    let (node, action) = match cmd {
        ClusterCommand::Init { node } => return init(&config, node, output).await,
        ClusterCommand::Start { insecure } => {
            return start(global, &config, insecure, output).await
        }
        ClusterCommand::Stop => return stop(&config, &client, output).await,
        ClusterCommand::Status { wait, .. } => return status(&client, wait, output).await,
        ClusterCommand::AddNode { id, addr, no_wait } => {
            let req = sup::members::AddRequest { id, addr };
            return add_node(&client, req, no_wait, output).await;
        }
        ClusterCommand::RemoveNode { node, purge } => {
            let node = resolve(&config, &client, node).await?;
            // Two commits, maybe an election, then a graceful stop.
            let slow = ControlClient::new(&addr, timeout + Duration::from_secs(120));
            let state = slow.remove_node(node, purge).await.map_err(control_failure)?;
            let value = serde_json::to_value(&state).expect("state serializes");
            print(output, &state.message, value);
            return Ok(());
        }
        ClusterCommand::Members => return members(&client, output).await,
        ClusterCommand::Du => {
            let view = client.status().await.map_err(control_failure)?;
            let value = serde_json::to_value(&view).expect("view serializes");
            print(output, &view::render_du(&view), value);
            return Ok(());
        }
        ClusterCommand::Kill { node } => (node, NodeAction::Kill),
        ClusterCommand::StopNode { node } => (node, NodeAction::Stop),
        ClusterCommand::StartNode { node } => (node, NodeAction::Start),
        ClusterCommand::Restart { node } => (node, NodeAction::Restart),
        ClusterCommand::Pause { node } => (node, NodeAction::Pause),
        ClusterCommand::Resume { node } => (node, NodeAction::Resume),
        ClusterCommand::RejoinNode { node } => (node, NodeAction::Rejoin),
        ClusterCommand::SetDelay { node, apply_delay_ms } => {
            let node = resolve(&config, &client, node).await?;
            set_delay(&config, node, apply_delay_ms).await?;
            let text = if apply_delay_ms == 0 {
                format!("node {node} applies committed entries at once again")
            } else {
                format!(
                    "node {node} now applies committed entries {apply_delay_ms} ms late \
                     ('raft-nosql cluster set-delay {node} --apply-delay-ms 0' or 'raft-nosql cluster heal' undoes it)"
                )
            };
            let value = serde_json::json!({ "node": node, "apply_delay_ms": apply_delay_ms });
            print(output, &text, value);
            return Ok(());
        }
        ClusterCommand::Partition { sides } => {
            let sides = expand_sides(&config, &client, &sides).await?;
            return partition(&config, &sides, output).await;
        }
        ClusterCommand::Heal => return heal(&config, output).await,
        ClusterCommand::Slow { node, delay_ms, jitter_ms, drop_rate } => {
            let node = resolve(&config, &client, node).await?;
            return slow(&config, node, delay_ms, jitter_ms, drop_rate, output).await;
        }
    };
    let node = resolve(&config, &client, node).await?;
    let report = client.act(node, action).await.map_err(control_failure)?;
    let value = serde_json::to_value(&report).expect("report serializes");
    print(output, &report.message, value);
    Ok(())
}

/// `cluster add-node`: starts the add, then shows its progress until it is done.
async fn add_node(
    client: &ControlClient,
    req: sup::members::AddRequest,
    no_wait: bool,
    output: Option<Output>,
) -> Result<(), Failure> {
    use sup::members::{progress_line, Phase};
    let started = client.add_node(&req).await.map_err(control_failure)?;
    let text = output != Some(Output::Json);
    if text {
        println!("adding node {} at {}", started.node, started.addr);
    }
    if no_wait {
        let value = serde_json::to_value(&started).expect("state serializes");
        print(output, &progress_line(&started), value);
        return Ok(());
    }
    let mut last_line = String::new();
    let mut last_print = Instant::now();
    let state = loop {
        tokio::time::sleep(Duration::from_millis(250)).await; // poll the add's progress
        let view = client.members().await.map_err(control_failure)?;
        let Some(c) = view.change.filter(|c| c.op == "add" && c.node == started.node) else {
            continue;
        };
        let line = progress_line(&c);
        // A new phase at once; catch-up figures at most once a second.
        let phase_changed = last_line.split(':').nth(1) != line.split(':').nth(1);
        if text
            && !c.finished()
            && line != last_line
            && (phase_changed || last_print.elapsed() >= Duration::from_secs(1))
        {
            println!("{line}");
            last_line = line;
            last_print = Instant::now();
        }
        if c.finished() {
            break c;
        }
    };
    let value = serde_json::to_value(&state).expect("state serializes");
    if state.phase == Phase::Failed {
        return Err(Failure::failed("add_failed", state.message));
    }
    print(output, &state.message, value);
    Ok(())
}

/// `cluster members`: the membership in the log, as the leader knows it.
async fn members(client: &ControlClient, output: Option<Output>) -> Result<(), Failure> {
    let view = client.members().await.map_err(control_failure)?;
    if output == Some(Output::Json) {
        println!("{}", serde_json::to_string_pretty(&view).expect("view serializes"));
        return Ok(());
    }
    let Some(m) = &view.members else {
        return Err(fail(
            "no node answered; is the cluster running? ('raft-nosql cluster status')",
        ));
    };
    let list = |ids: &[u64]| -> String {
        if ids.is_empty() {
            return "none".into();
        }
        ids.iter()
            .map(|id| {
                let addr = m.nodes.get(id).cloned().unwrap_or_default();
                format!("{id} ({addr})")
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    match m.leader_id {
        Some(l) => println!("leader:   {}", list(&[l])),
        None => println!("leader:   none known (an election may be under way)"),
    }
    println!("voters:   {}", list(&m.voters));
    println!("learners: {}", list(&m.learners));
    if !m.joint.is_empty() {
        let halves: Vec<String> = m.joint.iter().map(|c| format!("{{{}}}", list(c))).collect();
        println!("joint:    {} (a change is in progress: both must agree)", halves.join(" + "));
    }
    println!(
        "from the log entry {} ({}), as node {} knows it",
        m.log_index.unwrap_or(0),
        if m.committed { "committed" } else { "not yet committed" },
        view.from_node.map(|n| n.to_string()).unwrap_or_else(|| "-".into())
    );
    if let Some(c) = view.change.filter(|c| !c.finished()) {
        println!("in progress: {}", sup::members::progress_line(&c));
    }
    Ok(())
}

/// `cluster status`: the supervisor's view, polled fresh; with `wait`, first until a
/// leader is elected and every running node follows it.
async fn status(client: &ControlClient, wait: bool, output: Option<Output>) -> Result<(), Failure> {
    let deadline = Instant::now() + STATUS_WAIT;
    let view = loop {
        let view = client.status().await.map_err(control_failure)?;
        if !wait || settled(&view) {
            break view;
        }
        if Instant::now() > deadline {
            return Err(Failure::failed(
                "no_leader",
                format!(
                    "no leader that every running node follows after {}s:\n{}",
                    STATUS_WAIT.as_secs(),
                    view::render_table(&view)
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval, bounded by the deadline
    };
    match output {
        Some(Output::Json) => {
            println!("{}", serde_json::to_string_pretty(&view).expect("view serializes"))
        }
        _ => println!("{}", view::render_table(&view)),
    }
    Ok(())
}

/// A leader is known, and every running node answers, follows it and has applied what
/// it has.
fn settled(view: &ClusterView) -> bool {
    let Some(leader) = view.leader else { return false };
    let applied = |id: u64| {
        view.nodes.iter().find(|n| n.id == id).and_then(|n| n.status.as_ref()).map(|s| s.applied)
    };
    let Some(target) = applied(leader.id) else { return false };
    view.nodes.iter().filter(|n| n.state == ProcState::Running).all(|n| {
        n.status.as_ref().is_some_and(|s| {
            s.leader_id == Some(leader.id) && s.term == leader.term && s.applied == target
        })
    })
}

/// `cluster start`: spawn `raft-nosql server --detached` as a new session and wait until
/// its control API reports a leader.
async fn start(
    global: &GlobalOpts,
    config: &ClusterConfig,
    insecure: bool,
    output: Option<Output>,
) -> Result<(), Failure> {
    check_security(config, insecure)?;
    let data_root = absolute(&config.data_root);
    let addr = &config.supervisor.control_addr;
    let client = ControlClient::new(addr, Duration::from_secs(5));
    if let Ok(v) = client.status().await {
        return Err(fail(format!(
            "a supervisor is already running at {addr} (pid {}); 'raft-nosql cluster stop' stops it",
            v.supervisor.pid
        )));
    }
    let pid_file = sup::pid_file(&data_root);
    if let Some(pid) = process::read_pid_file(&pid_file).filter(|p| process::pid_alive(*p)) {
        return Err(fail(format!(
            "a supervisor is already running as pid {pid} (see {})",
            pid_file.display()
        )));
    }
    let exe =
        std::env::current_exe().map_err(|e| fail(format!("cannot find this executable: {e}")))?;
    let mut args = vec!["server".to_string(), "--detached".to_string()];
    if let Some(c) = config_file(global) {
        args.push("--config".to_string());
        args.push(c.display().to_string());
    }
    args.push("--data-dir-root".to_string());
    args.push(data_root.display().to_string());
    if insecure {
        args.push("--insecure".to_string());
    }
    let log = sup::log_file(&data_root);
    let mut child = process::spawn_detached(&exe, &args, &log)
        .map_err(|e| fail(format!("cannot start the supervisor: {e}")))?;
    let pid = child.id();
    // The supervisor writes this file itself too; writing it now closes the window in
    // which a second `cluster start` would see neither the file nor the control API.
    let _ = process::write_pid_file(&pid_file, pid);

    let deadline = Instant::now() + START_WAIT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let _ = std::fs::remove_file(&pid_file);
            return Err(fail(format!(
                "the supervisor exited ({}) before the cluster was up; last lines of {}:\n{}",
                process::describe_exit(&status),
                log.display(),
                tail(&log, 15)
            )));
        }
        if let Ok(v) = client.status().await {
            if v.leader.is_some() {
                if output == Some(Output::Json) {
                    println!("{}", serde_json::to_string_pretty(&v).expect("view serializes"));
                    return Ok(());
                }
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
                println!("dashboard: {}", sup::dashboard::url(addr));
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            let _ = client.shutdown().await;
            return Err(fail(format!(
                "the cluster elected no leader within {}s, so the supervisor (pid {pid}) was told to stop; last lines of {}:\n{}",
                START_WAIT.as_secs(),
                log.display(),
                tail(&log, 15)
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval, bounded by the deadline
    }
}

/// `cluster stop`: ask the supervisor to stop everything and wait until its process is gone.
async fn stop(
    config: &ClusterConfig,
    client: &ControlClient,
    output: Option<Output>,
) -> Result<(), Failure> {
    let pid = match client.shutdown().await {
        Ok(r) => r.pid,
        Err(e) if e.is_not_running() => {
            let pid_file = sup::pid_file(&absolute(&config.data_root));
            if let Some(pid) = process::read_pid_file(&pid_file).filter(|p| process::pid_alive(*p))
            {
                return Err(fail(format!(
                    "supervisor pid {pid} (from {}) is alive but its control API at {} does not answer",
                    pid_file.display(),
                    client.addr()
                )));
            }
            return Err(control_failure(e));
        }
        Err(e) => return Err(control_failure(e)),
    };
    let wait = Duration::from_millis(config.supervisor.stop_timeout_ms) + Duration::from_secs(30);
    let deadline = Instant::now() + wait;
    while process::pid_alive(pid) {
        if Instant::now() > deadline {
            return Err(fail(format!(
                "supervisor pid {pid} is still running after {}s",
                wait.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval, bounded by the deadline
    }
    let text = format!("cluster stopped (supervisor pid {pid} and every node exited)");
    print(output, &text, serde_json::json!({ "stopped": true, "supervisor_pid": pid }));
    Ok(())
}

/// Calls a node's admin API directly (faults and simulation need no supervisor).
/// A node that refuses the request as malformed (400) is bad usage.
async fn node_admin(
    config: &ClusterConfig,
    node: u64,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, Failure> {
    let addr = &config.node(node).ok_or_else(|| check_node(config, node).unwrap_err())?.addr;
    // Admin calls prove the cluster secret, when there is one.
    let security =
        crate::security::Security::from_config(config).map_err(|e| fail(e.to_string()))?;
    let client = security
        .client_builder(crate::tls::client(reqwest::Client::builder()))
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let mut req = client.request(method, crate::tls::url(addr, path));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.map_err(|e| {
        let why = if e.is_connect() { "connection refused".to_string() } else { e.to_string() };
        Failure::failed("unreachable", format!("cannot reach node {node} at {addr}: {why}"))
    })?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    if status.is_success() {
        return Ok(v);
    }
    let code = v["error"]["code"].as_str().unwrap_or("failed").to_string();
    let message =
        format!("node {node}: {}", v["error"]["message"].as_str().unwrap_or(status.as_str()));
    Err(match status.as_u16() {
        400 => Failure::Usage { code, message },
        _ => Failure::Failed { code, message },
    })
}

/// Sets a node's apply delay.
async fn set_delay(config: &ClusterConfig, node: u64, apply_delay_ms: u64) -> Result<(), Failure> {
    let body = serde_json::json!({ "apply_delay_ms": apply_delay_ms });
    node_admin(config, node, reqwest::Method::POST, "/admin/simulation", Some(body)).await?;
    Ok(())
}

/// Replaces `leader`, `follower` in partition sides by the ids they name now.
async fn expand_sides(
    config: &ClusterConfig,
    client: &ControlClient,
    sides: &[String],
) -> Result<Vec<String>, Failure> {
    let mut out = Vec::new();
    for side in sides {
        let mut ids = Vec::new();
        for part in side.split(',') {
            ids.push(match part {
                "leader" | "follower" | "down" => {
                    let node = parse_node_ref(part).map_err(Failure::usage)?;
                    resolve(config, client, node).await?.to_string()
                }
                other => other.to_string(),
            });
        }
        out.push(ids.join(","));
    }
    Ok(out)
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
async fn partition(
    config: &ClusterConfig,
    sides: &[String],
    output: Option<Output>,
) -> Result<(), Failure> {
    let sides = parse_sides(config, sides).map_err(Failure::usage)?;
    for side in &sides {
        for &id in side {
            let others: Vec<u64> = sides.iter().filter(|s| *s != side).flatten().copied().collect();
            let mut spec =
                node_admin(config, id, reqwest::Method::GET, "/admin/faults", None).await?;
            spec["partitioned_from"] = serde_json::json!(others);
            node_admin(config, id, reqwest::Method::POST, "/admin/faults", Some(spec)).await?;
        }
    }
    let shown: Vec<String> = sides
        .iter()
        .map(|s| format!("{{{}}}", s.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")))
        .collect();
    let text = format!("partitioned: {} (Raft messages between sides are dropped; 'raft-nosql cluster heal' undoes it)", shown.join(" | "));
    print(output, &text, serde_json::json!({ "partitioned": sides }));
    Ok(())
}

/// `cluster init`: `POST /admin/init` on one node, which proposes the config's nodes as
/// the first membership.
async fn init(
    config: &ClusterConfig,
    node: Option<u64>,
    output: Option<Output>,
) -> Result<(), Failure> {
    let node = node.unwrap_or(config.nodes[0].id);
    let answer = node_admin(config, node, reqwest::Method::POST, "/admin/init", None).await?;
    let text = if answer["already"] == true {
        format!("the cluster was already initialised (asked node {node})")
    } else {
        let ids: Vec<String> = config.nodes.iter().map(|n| n.id.to_string()).collect();
        format!(
            "cluster initialised through node {node} with nodes {}; a leader is elected within \
             about a second ('raft-nosql status' shows it)",
            ids.join(", ")
        )
    };
    print(output, &text, answer);
    Ok(())
}

/// Removes every simulated network fault and apply delay on every node that answers.
async fn heal(config: &ClusterConfig, output: Option<Output>) -> Result<(), Failure> {
    let mut unreachable = Vec::new();
    for n in &config.nodes {
        let result = async {
            node_admin(config, n.id, reqwest::Method::DELETE, "/admin/faults", None).await?;
            set_delay(config, n.id, 0).await
        }
        .await;
        if let Err(e) = result {
            unreachable.push(e.message().to_string());
        }
    }
    let text =
        "healed: no partitions, slow links or apply delays remain on the nodes that answered";
    print(output, text, serde_json::json!({ "healed": true, "not_reached": unreachable }));
    for e in &unreachable {
        eprintln!("note: {e}");
    }
    Ok(())
}

async fn slow(
    config: &ClusterConfig,
    node: u64,
    delay_ms: u64,
    jitter_ms: u64,
    drop_rate: f64,
    output: Option<Output>,
) -> Result<(), Failure> {
    let mut spec = node_admin(config, node, reqwest::Method::GET, "/admin/faults", None).await?;
    spec["delay_ms"] = delay_ms.into();
    spec["jitter_ms"] = jitter_ms.into();
    spec["drop_rate"] = drop_rate.into();
    let spec = node_admin(config, node, reqwest::Method::POST, "/admin/faults", Some(spec)).await?;
    let text = format!(
        "node {node}: outgoing Raft messages delayed {delay_ms} ms (+0-{jitter_ms} ms), {:.0}% dropped ('raft-nosql cluster heal' undoes it)",
        drop_rate * 100.0
    );
    print(output, &text, serde_json::json!({ "node": node, "faults": spec }));
    Ok(())
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
    fn nodes_are_named_by_id_or_by_what_they_are() {
        assert_eq!(parse_node_ref("node1"), Ok(NodeRef::Id(1)));
        assert_eq!(parse_node_ref("leader"), Ok(NodeRef::Leader));
        assert_eq!(parse_node_ref("follower"), Ok(NodeRef::Follower));
        assert_eq!(parse_node_ref("down"), Ok(NodeRef::Down));
        assert!(parse_node_ref("boss").is_err());
    }

    /// The same mistake exits 2 in every command: a node that is not in the config, an
    /// unknown node named by the supervisor, a value out of range.
    #[test]
    fn bad_usage_exits_2_everywhere() {
        use clap::Parser;
        let c = ClusterConfig::default();
        assert_eq!(check_node(&c, 7).unwrap_err().exit_code(), crate::cli::EXIT_USAGE);
        assert_eq!(check_node(&c, 2), Ok(2));
        let unknown = ControlError::Api {
            status: 404,
            code: "node_not_found".into(),
            message: "no node 7 in the cluster".into(),
        };
        assert_eq!(control_failure(unknown).exit_code(), crate::cli::EXIT_USAGE);
        let conflict = ControlError::Api {
            status: 409,
            code: "invalid_state".into(),
            message: "node 0 is not running".into(),
        };
        assert_eq!(control_failure(conflict).exit_code(), crate::cli::EXIT_FAILURE);
        let down = ControlError::NotRunning { addr: "127.0.0.1:8099".into() };
        assert_eq!(control_failure(down).exit_code(), crate::cli::EXIT_FAILURE);
        assert_eq!(
            parse_sides(&c, &["5".into()]).map_err(Failure::usage).unwrap_err().exit_code(),
            crate::cli::EXIT_USAGE
        );
        for args in [
            &["raft-nosql", "cluster", "slow", "0", "--drop-rate", "2"][..],
            &["raft-nosql", "cluster", "kill", "boss"],
            &["raft-nosql", "cluster", "set-delay", "1"],
            &["raft-nosql", "cluster", "status", "--output", "yaml"],
        ] {
            let e = crate::cli::Cli::try_parse_from(args).unwrap_err();
            assert_eq!(e.exit_code(), i32::from(crate::cli::EXIT_USAGE), "{args:?}");
        }
        assert!(crate::cli::Cli::try_parse_from([
            "raft-nosql",
            "cluster",
            "status",
            "--output",
            "json"
        ])
        .is_ok());
        assert!(
            crate::cli::Cli::try_parse_from(["raft-nosql", "cluster", "status", "--json"]).is_ok()
        );
    }

    #[test]
    fn errors_are_sentences_and_codes_appear_only_in_json() {
        let f = Failure::failed("table_not_found", "table \"Music\" not found");
        assert_eq!(f.render(None), "error: table \"Music\" not found");
        assert_eq!(f.render(Some(Output::Table)), "error: table \"Music\" not found");
        let json: serde_json::Value = serde_json::from_str(&f.render(Some(Output::Json))).unwrap();
        assert_eq!(json["error"]["code"], "table_not_found");
        assert_eq!(json["error"]["message"], "table \"Music\" not found");
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
