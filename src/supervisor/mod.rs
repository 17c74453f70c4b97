//! The supervisor: runs every node of the cluster as its own OS process, watches them,
//! restarts the ones that crash, and lets people (and tests) break them on purpose.
//!
//! `raft-nosql server` runs it in the foreground; `raft-nosql cluster start` runs the very
//! same thing detached (see `cli::cluster`).
//!
//! ## Life of a supervisor ([`run`])
//!
//! 1. **Claim the control address.** Binding `supervisor.control_addr` first makes a
//!    second supervisor of the same cluster fail before it touches any node. Pid files of
//!    nodes that are still alive (`<data_root>/node<N>/node.pid`) also stop it.
//! 2. **Spawn the nodes**, one task each ([`node`]): `raft-nosql node --id N` with the same
//!    config file and an absolute data root, output appended to `node<N>/node.log`.
//! 3. **Bring the cluster up.** Wait until every node answers `GET /status`, then, if no
//!    node says `initialized`, `POST /admin/init` on the first node of the config (it
//!    initialises Raft with the full member map; a second init is a no-op, so restarting
//!    a supervisor on old data is safe). Wait for a leader and print a summary.
//! 4. **Watch.** The node tasks report crashes and restarts; this task reports leader
//!    changes (polling every node's `/status` every 250 ms — a change of leader or term is
//!    one line).
//! 5. **Show** the cluster live on a web page at the control address ([`dashboard`]).
//! 6. **Stop** on SIGINT/SIGTERM or `POST /shutdown`: every node gets SIGTERM at the same
//!    time, then SIGKILL after `stop_timeout_ms`; pid files are removed; exit 0.
//!
//! ## What the supervisor is not
//!
//! It is not part of Raft. Nodes find each other through the config, elect leaders and
//! replicate without it; killing the supervisor with SIGKILL kills the nodes only because
//! they asked the kernel for it (see [`process`]). The supervisor's idea of "who leads" is
//! an observation of what the nodes say, and may lag by one poll.
//!
//! Shortcuts taken: one supervisor per machine and cluster; node output goes to log files
//! without rotation; status polls are plain HTTP with a 1 s timeout.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use warp::Filter;

use crate::config::ClusterConfig;

pub mod control;
pub mod dashboard;
pub mod members;
pub mod node;
pub mod process;
pub mod view;

use control::{ApiError, Control};
use node::{ActionReport, NodeAction, NodeHandle};
use process::LaunchSpec;
use view::{find_leader, ClusterView, LeaderInfo, SupervisorInfo};

/// How long bring-up waits for the nodes to answer before it initialises anyway.
const READY_WAIT: Duration = Duration::from_secs(60);

/// How long `GET /status` waits for the fresh poll of every node.
const REFRESH_WAIT: Duration = Duration::from_millis(1500);

/// Something that stops a supervisor before it starts any node.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The control address is taken, most likely by a running supervisor.
    #[error("cannot listen on the control address {addr}: {source} (is a supervisor already running? try 'raft-nosql cluster status')")]
    ControlAddrInUse { addr: String, source: io::Error },
    /// A pid file names a live node process of this cluster.
    #[error("node {id} is already running as pid {pid} (see {file}); stop it first")]
    NodeAlreadyRunning { id: u64, pid: u32, file: PathBuf },
    /// A node's address is taken by another process (another cluster on the same ports?).
    #[error("node {id}'s address {addr} is in use by another process ({source}); is another cluster running on these ports?")]
    NodeAddrInUse { id: u64, addr: String, source: io::Error },
    /// The data root cannot be created or written.
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// `[tls]` names files that cannot be used.
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// How this supervisor was started.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Started by `cluster start` (changes only what the summary tells people).
    pub detached: bool,
}

/// Where the supervisor's pid is recorded: `<data_root>/supervisor.pid`.
pub fn pid_file(data_root: &std::path::Path) -> PathBuf {
    data_root.join("supervisor.pid")
}

/// Where a detached supervisor's output goes: `<data_root>/supervisor.log`.
pub fn log_file(data_root: &std::path::Path) -> PathBuf {
    data_root.join("supervisor.log")
}

/// The supervisor's output: one timestamped line per event on stdout.
///
/// Writes ignore errors (unlike `println!`, which panics): a closed terminal must not
/// take down the task that is about to stop a node.
#[derive(Debug, Clone, Default)]
pub struct Events;

impl Events {
    /// Prints `msg` with the UTC time of day.
    pub fn emit(&self, msg: impl AsRef<str>) {
        say(&format!("{} {}", time_of_day(SystemTime::now()), msg.as_ref()));
    }
}

/// Prints one line (or several) to stdout, ignoring write errors.
fn say(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// `HH:MM:SS.mmmZ` (UTC), enough to line events up with the nodes' JSON logs.
fn time_of_day(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}.{:03}Z", s / 3600 % 24, s / 60 % 60, s % 60, d.subsec_millis())
}

/// Resolves on SIGINT (Ctrl+C) or SIGTERM, and on SIGHUP (the terminal went away) unless
/// `detached`: a detached supervisor inherits SIGHUP as ignored from `cluster start`, and
/// installing a handler would undo that.
pub async fn signals(detached: bool) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let hangup = async {
        match detached {
            false => signal(SignalKind::hangup()).expect("install SIGHUP handler").recv().await,
            true => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = hangup => {}
    }
}

/// A running supervisor: the node tasks and what the control API needs.
struct Supervisor {
    config: ClusterConfig,
    spec: Arc<LaunchSpec>,
    /// The nodes this supervisor runs; grows and shrinks with membership changes.
    nodes: std::sync::RwLock<Vec<NodeHandle>>,
    /// Held for the whole of a membership change: one at a time.
    change_lock: Arc<tokio::sync::Mutex<()>>,
    /// The change in progress, or the last one.
    change: std::sync::Mutex<Option<members::ChangeState>>,
    leader_api: members::LeaderApi,
    /// Set once the cluster is up and [`Supervisor::reconcile`] has run: membership
    /// changes are refused before.
    ready: std::sync::atomic::AtomicBool,
    started: Instant,
    stop_tx: watch::Sender<bool>,
    events: Events,
}

impl Control for Supervisor {
    fn view(&self) -> ClusterView {
        let mut nodes: Vec<_> = self.handles().iter().map(NodeHandle::view).collect();
        nodes.sort_by_key(|n| n.id);
        ClusterView {
            supervisor: SupervisorInfo {
                pid: std::process::id(),
                control_addr: self.config.supervisor.control_addr.clone(),
                data_root: self.spec.data_root.display().to_string(),
                config_file: self.spec.config_file.as_ref().map(|p| p.display().to_string()),
                uptime_s: self.started.elapsed().as_secs(),
            },
            leader: find_leader(&nodes),
            nodes,
        }
    }

    async fn refresh(&self) {
        // A node task busy with a slow action (a graceful stop) must not hold the
        // answer up: its last published view is shown then.
        let handles = self.handles();
        let polls = futures::future::join_all(handles.iter().map(NodeHandle::refresh));
        let _ = tokio::time::timeout(REFRESH_WAIT, polls).await;
    }

    async fn act(&self, id: u64, action: NodeAction) -> Result<ActionReport, ApiError> {
        let handles = self.handles();
        let Some(node) = handles.iter().find(|n| n.id == id) else {
            let ids: Vec<String> = handles.iter().map(|n| n.id.to_string()).collect();
            return Err(ApiError::NodeNotFound(format!(
                "no node {id} in the cluster (nodes: {})",
                ids.join(", ")
            )));
        };
        Ok(node.act(action).await?)
    }

    fn shutdown(&self) {
        self.stop_tx.send_replace(true);
    }

    async fn members(&self) -> members::MembersView {
        let change = self.change.lock().expect("change lock").clone();
        let found = self.current_members().await;
        members::MembersView {
            from_node: found.as_ref().map(|(id, _)| *id),
            members: found.map(|(_, m)| m),
            change,
        }
    }

    async fn add_node(
        self: Arc<Self>,
        req: members::AddRequest,
    ) -> Result<members::ChangeState, ApiError> {
        self.start_add(req).await
    }

    async fn remove_node(&self, id: u64, purge: bool) -> Result<members::ChangeState, ApiError> {
        self.remove(id, purge).await
    }
}

impl Supervisor {
    /// Waits until the nodes answer, initialises the cluster if needed and waits for a
    /// leader. Returns the leader.
    async fn bring_up(&self) -> LeaderInfo {
        let http = self
            .spec
            .security
            .client_builder(crate::tls::client(reqwest::Client::builder()))
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("HTTP client builds");
        let handles = self.handles();
        let first = &handles[0];
        let t0 = Instant::now();
        let mut warned = false;
        let mut initialised = false;
        let mut leader_since: Option<Instant> = None;
        let mut tick = tokio::time::interval(node::TICK);
        loop {
            tick.tick().await;
            let view = self.view();
            if let Some(leader) = view.leader {
                // Report once every answering node follows this leader and has applied
                // what it has (so the summary shows converged followers, not learners
                // still waiting for the membership), or after a short grace period if
                // some node lags.
                let since = *leader_since.get_or_insert_with(Instant::now);
                let leader_status =
                    view.nodes.iter().find(|n| n.id == leader.id).and_then(|n| n.status.as_ref());
                // The leader must have applied everything it has committed (at least the
                // initial membership) before its followers are compared with it; a status
                // polled between election and first apply shows nothing applied yet.
                let leader_applied = leader_status
                    .filter(|s| s.applied.is_some() && s.applied >= s.committed)
                    .and_then(|s| s.applied);
                let all_follow = leader_applied.is_some()
                    && view
                        .nodes
                        .iter()
                        .filter_map(|n| n.status.as_ref())
                        .all(|s| s.leader_id == Some(leader.id) && s.applied == leader_applied);
                if all_follow || since.elapsed() > Duration::from_secs(5) {
                    return leader;
                }
                continue;
            }
            let answering = view.nodes.iter().filter(|n| n.status.is_some()).count();
            let all = answering == view.nodes.len();
            if !initialised
                && view.nodes.iter().any(|n| n.status.as_ref().is_some_and(|s| s.initialized))
            {
                initialised = true;
            }
            let first_answers = view.nodes.iter().any(|n| n.id == first.id && n.status.is_some());
            if !initialised && first_answers && (all || t0.elapsed() > READY_WAIT) {
                let url = crate::tls::url(&first.addr, "/admin/init");
                match http.post(&url).send().await {
                    Ok(r) if r.status().is_success() => {
                        initialised = true;
                        self.events.emit(format!(
                            "cluster initialised through node {} with {} members",
                            first.id,
                            view.nodes.len()
                        ));
                    }
                    Ok(r) => {
                        self.events.emit(format!("POST {url} answered {}; retrying", r.status()))
                    }
                    Err(e) => self.events.emit(format!("POST {url} failed: {e}; retrying")),
                }
            }
            if !warned && t0.elapsed() > READY_WAIT {
                warned = true;
                let silent: Vec<String> = view
                    .nodes
                    .iter()
                    .filter(|n| n.status.is_none())
                    .map(|n| format!("node {} ({})", n.id, self.spec.log_file(n.id).display()))
                    .collect();
                self.events.emit(format!(
                    "still no leader after {}s; not answering: {} — still waiting",
                    READY_WAIT.as_secs(),
                    if silent.is_empty() { "none".to_string() } else { silent.join(", ") }
                ));
            }
        }
    }

    fn print_summary(&self, detached: bool) {
        let view = self.view();
        let how_to_stop = if detached {
            "'raft-nosql cluster stop' stops every node"
        } else {
            "Ctrl+C stops every node; 'raft-nosql cluster status' shows them"
        };
        say(&format!(
            "raft-nosql cluster is up: {} nodes, {}; supervisor pid {}\n{}\ndata in {} (node output: node<N>/node.log); control API on {}\ndashboard: {}\n{how_to_stop}",
            view.nodes.len(),
            view::describe_leader(&view),
            view.supervisor.pid,
            view::render_table(&view),
            self.spec.data_root.display(),
            self.config.supervisor.control_addr,
            dashboard::url(&self.config.supervisor.control_addr)
        ));
    }

    /// Reports every change of leader, forever.
    async fn watch_leader(&self, mut last: Option<LeaderInfo>) {
        let mut tick = tokio::time::interval(node::TICK);
        loop {
            tick.tick().await;
            let now = find_leader(&self.handles().iter().map(NodeHandle::view).collect::<Vec<_>>());
            if now == last {
                continue;
            }
            match (now, last) {
                (Some(l), _) => {
                    self.events.emit(format!("leader changed to node {} in term {}", l.id, l.term))
                }
                (None, Some(old)) => self
                    .events
                    .emit(format!("no leader known (node {} led in term {})", old.id, old.term)),
                (None, None) => {}
            }
            last = now;
        }
    }
}

/// Checks that no node of this cluster is still running from an earlier supervisor, and
/// that the nodes' ports are free.
fn check_no_leftover_nodes(
    config: &ClusterConfig,
    spec: &LaunchSpec,
) -> Result<(), SupervisorError> {
    for n in &config.nodes {
        let file = spec.pid_file(n.id);
        let Some(pid) = process::read_pid_file(&file) else { continue };
        let ours =
            process::cmdline(pid).is_some_and(|c| c.contains(&format!("node --id {} ", n.id)));
        if process::pid_alive(pid) && ours {
            return Err(SupervisorError::NodeAlreadyRunning { id: n.id, pid, file });
        }
        // A stale file from a supervisor that was killed: the process is gone.
        process::remove_pid_file(&file);
    }
    for n in &config.nodes {
        // A listener bound for a moment and dropped at once; the node binds it for real.
        if let Err(source) = std::net::TcpListener::bind(n.listen_addr()) {
            let addr = n.listen_addr().to_string();
            return Err(SupervisorError::NodeAddrInUse { id: n.id, addr, source });
        }
    }
    Ok(())
}

/// Runs a supervisor until `shutdown` resolves or the control API is told to shut down.
///
/// Errors are returned only for problems found before any node starts; once the nodes
/// run, everything that goes wrong is reported as an event and the supervisor carries on.
pub async fn run(
    config: ClusterConfig,
    spec: LaunchSpec,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SupervisorError> {
    let events = Events;
    // Every node's TLS files are checked before any node starts: a missing or wrong file
    // is one clear error here, not a node that crashes and is restarted in a loop.
    for n in &config.nodes {
        crate::tls::NodeTls::load(&config.tls, n.id)?;
    }
    if let Some(first) = config.nodes.first() {
        crate::tls::install_for_cluster(&config.tls, first.id)?;
    }
    let io_err = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| SupervisorError::Io { path, source }
    };
    std::fs::create_dir_all(&spec.data_root).map_err(io_err(&spec.data_root))?;
    let addr = config.supervisor.control_addr.clone();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| SupervisorError::ControlAddrInUse { addr: addr.clone(), source })?;
    check_no_leftover_nodes(&config, &spec)?;
    let sup_pid_file = pid_file(&spec.data_root);
    process::write_pid_file(&sup_pid_file, std::process::id()).map_err(io_err(&sup_pid_file))?;

    if let Some(file) = &config.recorded_members {
        let ids: Vec<String> = config.nodes.iter().map(|n| n.id.to_string()).collect();
        events.emit(format!(
            "the membership changed at run time: running the nodes recorded in {} ({}), not the config file's",
            file.display(),
            ids.join(", ")
        ));
    }
    events.emit(format!(
        "supervisor pid {} starting {} nodes ({}), control API on {addr}",
        std::process::id(),
        config.nodes.len(),
        spec.config_file
            .as_ref()
            .map(|p| format!("config {}", p.display()))
            .unwrap_or_else(|| "built-in default config".to_string())
    ));
    let spec = Arc::new(spec);
    let nodes = config
        .nodes
        .iter()
        .map(|n| {
            NodeHandle::spawn(
                n.id,
                n.addr.clone(),
                spec.clone(),
                &config.supervisor,
                events.clone(),
            )
        })
        .collect();
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let leader_api = members::LeaderApi::new(&spec.security);
    let sup = Arc::new(Supervisor {
        config,
        spec,
        nodes: std::sync::RwLock::new(nodes),
        change_lock: Arc::new(tokio::sync::Mutex::new(())),
        change: std::sync::Mutex::new(None),
        leader_api,
        ready: std::sync::atomic::AtomicBool::new(false),
        started: Instant::now(),
        stop_tx,
        events: events.clone(),
    });

    let hub = dashboard::Hub::new(sup.spec.clone());
    let hub_task = tokio::spawn(hub.clone().run(sup.clone()));
    let mut server_stop = sup.stop_tx.subscribe();
    let server = tokio::spawn(
        warp::serve(
            dashboard::routes(hub.clone(), sup.clone()).or(control::routes(sup.clone())).unify(),
        )
        .incoming(listener)
        .graceful(async move {
            let _ = server_stop.wait_for(|stop| *stop).await;
        })
        .run(),
    );

    let stop = async {
        tokio::select! {
            _ = shutdown => "signal",
            _ = stop_rx.wait_for(|stop| *stop) => "control API",
        }
    };
    tokio::pin!(stop);
    let reason = tokio::select! {
        reason = &mut stop => reason,
        leader = sup.bring_up() => {
            sup.reconcile().await;
            sup.ready.store(true, std::sync::atomic::Ordering::SeqCst);
            sup.print_summary(options.detached);
            tokio::select! {
                reason = &mut stop => reason,
                _ = sup.watch_leader(Some(leader)) => unreachable!("the watch never ends"),
            }
        }
    };

    events.emit(format!("shutting down ({reason}): stopping every node"));
    let _ = hub.load.stop();
    futures::future::join_all(sup.handles().iter().map(NodeHandle::shutdown)).await;
    sup.stop_tx.send_replace(true);
    hub_task.abort();
    hub.close();
    // The control server finishes in-flight requests (e.g. the `POST /shutdown` answer);
    // open dashboard streams end with it.
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    if process::read_pid_file(&sup_pid_file) == Some(std::process::id()) {
        process::remove_pid_file(&sup_pid_file);
    }
    events.emit("every node is stopped; supervisor exits");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_of_day_is_utc_hh_mm_ss_millis() {
        let t = UNIX_EPOCH + Duration::from_millis(((13 * 60 + 4) * 60 + 5) * 1000 + 67);
        assert_eq!(time_of_day(t), "13:04:05.067Z");
    }
}
