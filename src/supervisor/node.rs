//! One task per node: it owns the node's child process and is the only code that
//! starts, signals or reaps it.
//!
//! The task is an actor. Its mailbox takes [`NodeAction`]s from the control API and a
//! final shutdown; a 250 ms tick drives everything else:
//!
//! 1. **reap**: `try_wait` on the child; a process that exited *on its own* is a crash;
//! 2. **restart**: a crashed node is started again once its backoff delay has passed;
//! 3. **poll**: `GET /status` on the node, so the supervisor knows role, term, leader
//!    and log indexes; the result is published in a shared [`NodeView`] that the control
//!    API and the leader watcher read without talking to the task.
//!
//! Because one task does all of this in sequence, there are no races between "the node
//! exited" and "the user asked to kill it": whichever comes first wins and the other sees
//! the new state.
//!
//! ## Restart policy
//!
//! | how the process ended | state afterwards | restarted automatically? |
//! |---|---|---|
//! | exited or was killed by someone else | `restarting` (or `crashed` if restarts are disabled) | yes, after the backoff |
//! | `cluster kill N` (SIGKILL) | `killed` | no, until `start-node` / `restart` |
//! | `cluster stop-node N` (SIGTERM) | `stopped` | no, until `start-node` / `restart` |
//!
//! The backoff ([`Backoff`]) starts at `restart.initial_backoff_ms`, doubles after each
//! crash up to `restart.max_backoff_ms`, and starts over for a node that had stayed up at
//! least `restart.reset_after_ms`: a node that crashes in a loop is retried ever more
//! slowly, one that crashes once a day is restarted at once.
//!
//! Two exit statuses say that restarting would fail the same way, so the node waits
//! instead (its state shows the reason, e.g. `restarting (disk full)`):
//!
//! - `EXIT_DISK_FULL` (28): restarted once the free space of its data directory has grown
//!   by [`SPACE_GAIN`], or every [`DISK_FULL_RETRY`] anyway;
//! - `EXIT_CORRUPT` (65): `crashed (data damaged)`, not restarted; the remedy is
//!   `raft-nosql cluster rejoin-node N` (the node started once with `--rejoin`: its data
//!   wiped, caught up from the leader), or `cluster start-node N` after a repair.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::process::{self, LaunchSpec};
use super::view::{NodeStatus, NodeView, ProcState};
use super::Events;
use crate::config::{RestartPolicy, SupervisorConfig};

/// How often a node task reaps, restarts and polls.
pub const TICK: Duration = Duration::from_millis(250);

/// Free space a full node's disk must gain before it is started again.
const SPACE_GAIN: u64 = 16 * 1024 * 1024;
/// A node that stopped on a full disk is tried again this often even if no space was
/// seen to be freed (space may have been freed elsewhere on a shared file system).
const DISK_FULL_RETRY: Duration = Duration::from_secs(60);

/// Timeout of one `GET /status` poll; a paused or overloaded node must not stall the task.
const STATUS_TIMEOUT: Duration = Duration::from_secs(1);

/// What the control API can ask of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeAction {
    /// SIGKILL; the node stays down.
    Kill,
    /// SIGTERM, wait `stop_timeout_ms`, then SIGKILL; the node stays down.
    Stop,
    /// Start a node that is not running.
    Start,
    /// Graceful stop (if running), then start.
    Restart,
    /// SIGSTOP: the process freezes, its sockets stay open, peers see silence.
    Pause,
    /// SIGCONT.
    Resume,
    /// Graceful stop (if running), then start once with `--rejoin`: the node wipes its
    /// data and catches up from the leader (the remedy for damaged data).
    Rejoin,
}

impl NodeAction {
    /// The action named in a control API path (`/nodes/{id}/{action}`).
    pub fn from_path(s: &str) -> Option<NodeAction> {
        Some(match s {
            "kill" => NodeAction::Kill,
            "stop" => NodeAction::Stop,
            "start" => NodeAction::Start,
            "restart" => NodeAction::Restart,
            "pause" => NodeAction::Pause,
            "resume" => NodeAction::Resume,
            "rejoin" => NodeAction::Rejoin,
            _ => return None,
        })
    }

    /// The path segment of this action.
    pub fn as_path(self) -> &'static str {
        match self {
            NodeAction::Kill => "kill",
            NodeAction::Stop => "stop",
            NodeAction::Start => "start",
            NodeAction::Restart => "restart",
            NodeAction::Pause => "pause",
            NodeAction::Resume => "resume",
            NodeAction::Rejoin => "rejoin",
        }
    }
}

/// The answer to a node action: what happened, in one line for people and as fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionReport {
    pub node: u64,
    pub action: NodeAction,
    pub state: ProcState,
    pub pid: Option<u32>,
    pub message: String,
}

/// Why a node action was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// The node is in a state where the action makes no sense (pause a stopped node).
    #[error("{0}")]
    Conflict(String),
    /// The action was attempted and failed (the executable could not be spawned).
    #[error("{0}")]
    Failed(String),
}

/// Restart delays: doubling, capped, reset after a long enough run.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    reset_after: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(policy: &RestartPolicy) -> Backoff {
        let initial = Duration::from_millis(policy.initial_backoff_ms);
        Backoff {
            initial,
            max: Duration::from_millis(policy.max_backoff_ms).max(initial),
            reset_after: Duration::from_millis(policy.reset_after_ms),
            next: initial,
        }
    }

    /// The delay before restarting a node that crashed after running for `uptime`.
    pub fn on_crash(&mut self, uptime: Duration) -> Duration {
        if uptime >= self.reset_after {
            self.next = self.initial;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Forget past crashes (after a start by hand).
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

enum NodeCommand {
    Action(NodeAction, oneshot::Sender<Result<ActionReport, ActionError>>),
    /// Reap and poll now (for a status answer that must be current).
    Refresh(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

/// The supervisor's handle on one node task.
#[derive(Clone)]
pub struct NodeHandle {
    pub id: u64,
    pub addr: String,
    tx: mpsc::Sender<NodeCommand>,
    view: Arc<Mutex<NodeView>>,
}

impl NodeHandle {
    /// Starts the node's process and the task that watches it.
    pub fn spawn(
        id: u64,
        addr: String,
        spec: Arc<LaunchSpec>,
        config: &SupervisorConfig,
        events: Events,
    ) -> NodeHandle {
        let view = Arc::new(Mutex::new(NodeView::new(id, addr.clone())));
        let (tx, rx) = mpsc::channel(16);
        let http = spec
            .security
            .client_builder(crate::tls::client(reqwest::Client::builder()))
            .no_proxy()
            .timeout(STATUS_TIMEOUT)
            .build()
            .expect("HTTP client builds");
        let actor = NodeActor {
            id,
            status_url: crate::tls::url(&addr, "/status"),
            spec,
            restart: config.restart.clone(),
            stop_timeout: Duration::from_millis(config.stop_timeout_ms),
            child: None,
            state: ProcState::Stopped,
            backoff: Backoff::new(&config.restart),
            started_at: Instant::now(),
            restart_at: None,
            starts: 0,
            last_exit: None,
            waiting: None,
            status: None,
            unreachable: None,
            view: view.clone(),
            events,
            http,
        };
        tokio::spawn(actor.run(rx));
        NodeHandle { id, addr, tx, view }
    }

    /// A copy of what is known about the node now.
    pub fn view(&self) -> NodeView {
        self.view.lock().expect("node view lock").clone()
    }

    /// Asks the node task to carry out `action` and waits for the outcome.
    pub async fn act(&self, action: NodeAction) -> Result<ActionReport, ActionError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(NodeCommand::Action(action, tx))
            .await
            .map_err(|_| ActionError::Failed("the supervisor is shutting down".into()))?;
        rx.await.map_err(|_| ActionError::Failed("the supervisor is shutting down".into()))?
    }

    /// Has the node task reap and poll the node now; returns once the view is updated.
    pub async fn refresh(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(NodeCommand::Refresh(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Stops the node (gracefully) and ends its task.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(NodeCommand::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

struct NodeActor {
    id: u64,
    status_url: String,
    spec: Arc<LaunchSpec>,
    restart: RestartPolicy,
    stop_timeout: Duration,
    /// The live process; `Some` exactly when `state` is running or paused.
    child: Option<std::process::Child>,
    state: ProcState,
    backoff: Backoff,
    started_at: Instant,
    /// When a `restarting` node is due to be started again.
    restart_at: Option<Instant>,
    starts: u32,
    last_exit: Option<String>,
    /// Why the node waits instead of being restarted, and (disk full) the free bytes
    /// when it stopped.
    waiting: Option<(&'static str, u64)>,
    status: Option<NodeStatus>,
    unreachable: Option<String>,
    view: Arc<Mutex<NodeView>>,
    events: Events,
    http: reqwest::Client,
}

impl NodeActor {
    async fn run(mut self, mut rx: mpsc::Receiver<NodeCommand>) {
        if let Err(e) = self.start_process() {
            self.events.emit(format!("node {} could not be started: {e}", self.id));
            self.schedule_restart(Duration::ZERO);
        }
        self.publish();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(NodeCommand::Action(action, reply)) => {
                        let result = self.act(action).await;
                        if let Ok(report) = &result {
                            self.events.emit(&report.message);
                        }
                        self.publish();
                        let _ = reply.send(result);
                    }
                    Some(NodeCommand::Refresh(reply)) => {
                        self.reap();
                        self.poll_status().await;
                        self.publish();
                        let _ = reply.send(());
                    }
                    Some(NodeCommand::Shutdown(reply)) => {
                        self.shutdown().await;
                        self.publish();
                        let _ = reply.send(());
                        return;
                    }
                    None => {
                        self.shutdown().await;
                        return;
                    }
                },
                _ = tick.tick() => {
                    self.reap();
                    self.restart_if_due();
                    self.poll_status().await;
                    self.publish();
                }
            }
        }
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn start_process(&mut self) -> Result<u32, String> {
        self.start_process_with(&[])
    }

    /// [`Self::start_process`] with extra arguments for this one start (`--rejoin`).
    fn start_process_with(&mut self, extra: &[&str]) -> Result<u32, String> {
        let child = process::spawn_node(&self.spec, self.id, extra)
            .map_err(|e| format!("cannot start {}: {e}", self.spec.exe.display()))?;
        let pid = child.id();
        process::log_node_event(
            &self.spec.log_file(self.id),
            self.id,
            "INFO",
            "node_spawned",
            "node process started by the supervisor",
            serde_json::json!({ "pid": pid }),
        );
        self.child = Some(child);
        self.waiting = None;
        self.state = ProcState::Running;
        self.started_at = Instant::now();
        self.restart_at = None;
        self.starts += 1;
        Ok(pid)
    }

    /// Forget a process that has been reaped.
    fn forget_process(&mut self, how: String) {
        process::log_node_event(
            &self.spec.log_file(self.id),
            self.id,
            "WARN",
            "node_exited",
            "node process exited",
            serde_json::json!({ "status": how }),
        );
        self.child = None;
        self.status = None;
        self.unreachable = None;
        self.last_exit = Some(how);
        process::remove_pid_file(&self.spec.pid_file(self.id));
    }

    fn schedule_restart(&mut self, uptime: Duration) -> Option<Duration> {
        if !self.restart.enabled {
            self.state = ProcState::Crashed;
            return None;
        }
        let delay = self.backoff.on_crash(uptime);
        self.state = ProcState::Restarting;
        self.restart_at = Some(Instant::now() + delay);
        Some(delay)
    }

    /// Notices a process that exited on its own.
    fn reap(&mut self) {
        let Some(child) = self.child.as_mut() else { return };
        let pid = child.id();
        let status = match child.try_wait() {
            Ok(Some(status)) => status,
            Ok(None) => return,
            Err(e) => {
                self.events.emit(format!("node {}: cannot check process {pid}: {e}", self.id));
                return;
            }
        };
        let how = process::describe_exit(&status);
        let uptime = self.started_at.elapsed();
        self.forget_process(how.clone());
        if self.wait_on_exit_reason(status.code(), pid, &how) {
            return;
        }
        let what = match self.schedule_restart(uptime) {
            Some(delay) => format!("restarting in {} ms", delay.as_millis()),
            None => "automatic restart is disabled (supervisor.restart.enabled)".to_string(),
        };
        self.events.emit(format!(
            "node {} (pid {pid}) exited on its own with {how} after {:.1}s; {what}",
            self.id,
            uptime.as_secs_f64()
        ));
    }

    /// A node that exited because its disk is full or its data is damaged waits
    /// instead of being restarted in a loop. Returns whether it waits.
    fn wait_on_exit_reason(&mut self, code: Option<i32>, pid: u32, how: &str) -> bool {
        use crate::storage::disk::{free_space, human, EXIT_CORRUPT, EXIT_DISK_FULL};
        let id = self.id;
        let dir = self.spec.node_dir(id);
        let advice = match code.and_then(|c| u8::try_from(c).ok()) {
            Some(EXIT_DISK_FULL) => {
                let free = free_space(&dir).map_or(0, |(f, _)| f);
                self.waiting = Some(("disk full", free));
                self.state = ProcState::Restarting;
                self.restart_at = Some(Instant::now() + DISK_FULL_RETRY);
                format!(
                    "disk full: {} free in {}. Free space there (or grow the disk); the node is \
                     started again once {} more is free, and catches up by itself",
                    human(free),
                    dir.display(),
                    human(SPACE_GAIN)
                )
            }
            Some(EXIT_CORRUPT) => {
                self.waiting = Some(("data damaged", 0));
                self.state = ProcState::Crashed;
                self.restart_at = None;
                format!(
                    "its data in {} is damaged (see its log, event storage_damaged). It is not \
                     restarted: run 'raft-nosql cluster rejoin-node {id}' to wipe it and catch up \
                     from the leader",
                    dir.display()
                )
            }
            _ => return false,
        };
        process::log_node_event(
            &self.spec.log_file(id),
            id,
            "ERROR",
            "node_waiting",
            &advice,
            serde_json::json!({ "status": how }),
        );
        self.events.emit(format!("node {id} (pid {pid}) exited with {how}: {advice}"));
        true
    }

    fn restart_if_due(&mut self) {
        if let (ProcState::Restarting, Some(("disk full", free_then))) = (self.state, self.waiting)
        {
            let dir = self.spec.node_dir(self.id);
            let free = crate::storage::disk::free_space(&dir).map_or(0, |(f, _)| f);
            if free >= free_then.saturating_add(SPACE_GAIN) {
                self.restart_at = None;
            }
        }
        if self.state != ProcState::Restarting
            || self.restart_at.is_some_and(|at| Instant::now() < at)
        {
            return;
        }
        match self.start_process() {
            Ok(pid) => self.events.emit(format!("node {} restarted (pid {pid})", self.id)),
            Err(e) => {
                let delay = self.schedule_restart(Duration::ZERO);
                self.events.emit(format!(
                    "node {} could not be restarted: {e}; next try in {} ms",
                    self.id,
                    delay.unwrap_or_default().as_millis()
                ));
            }
        }
    }

    async fn poll_status(&mut self) {
        if self.state != ProcState::Running {
            self.status = None;
            self.unreachable = None;
            return;
        }
        let result = async {
            let resp = self.http.get(&self.status_url).send().await?.error_for_status()?;
            resp.json::<NodeStatus>().await
        }
        .await;
        match result {
            Ok(s) => {
                self.status = Some(s);
                self.unreachable = None;
            }
            Err(e) => {
                self.status = None;
                self.unreachable = Some(short_error(&e));
            }
        }
    }

    fn publish(&self) {
        let mut v = self.view.lock().expect("node view lock");
        v.pid = self.pid();
        v.state = self.state;
        v.restarts = self.starts.saturating_sub(1);
        v.last_exit = self.last_exit.clone();
        v.reason = self.waiting.map(|(r, _)| r.to_string());
        v.status = self.status.clone();
        v.unreachable = self.unreachable.clone();
    }

    fn report(&self, action: NodeAction, message: String) -> ActionReport {
        ActionReport { node: self.id, action, state: self.state, pid: self.pid(), message }
    }

    /// Gracefully stops the process, if any; returns a description of how it went.
    async fn stop_process(&mut self) -> Option<String> {
        let mut child = self.child.take()?;
        let pid = child.id();
        let t0 = Instant::now();
        let how = match process::stop_child(&mut child, self.stop_timeout).await {
            Ok((status, false)) => format!(
                "pid {pid}, {} after {} ms",
                process::describe_exit(&status),
                t0.elapsed().as_millis()
            ),
            Ok((_, true)) => format!(
                "pid {pid}, no exit within {} ms of SIGTERM, so SIGKILLed",
                self.stop_timeout.as_millis()
            ),
            Err(e) => format!("pid {pid}, error while stopping: {e}"),
        };
        self.forget_process(how.clone());
        Some(how)
    }

    async fn act(&mut self, action: NodeAction) -> Result<ActionReport, ActionError> {
        // A crash not yet noticed by the tick must not be mistaken for a live process.
        self.reap();
        let id = self.id;
        let stays_down = format!(
            "it stays down until 'raft-nosql cluster start-node {id}' or 'raft-nosql cluster restart {id}'"
        );
        let msg = match action {
            NodeAction::Kill => match self.child.take() {
                Some(mut child) => {
                    let pid = child.id();
                    let how = match process::kill_child(&mut child).await {
                        Ok(status) => process::describe_exit(&status),
                        Err(e) => format!("error: {e}"),
                    };
                    self.forget_process(how);
                    self.state = ProcState::Killed;
                    format!("node {id} killed (SIGKILL, pid {pid}); {stays_down}")
                }
                None => {
                    let was = self.state;
                    self.state = ProcState::Killed;
                    self.restart_at = None;
                    format!("node {id} was not running ({was}); {stays_down}")
                }
            },
            NodeAction::Stop => {
                let was = self.state;
                self.state = ProcState::Stopped;
                self.restart_at = None;
                match self.stop_process().await {
                    Some(how) => format!("node {id} stopped ({how}); {stays_down}"),
                    None => format!("node {id} was not running ({was}); {stays_down}"),
                }
            }
            NodeAction::Start => match self.pid() {
                Some(pid) if self.state == ProcState::Paused => {
                    return Err(ActionError::Conflict(format!(
                        "node {id} is paused (pid {pid}); use 'raft-nosql cluster resume {id}'"
                    )))
                }
                Some(pid) => format!("node {id} is already running (pid {pid})"),
                None => {
                    self.backoff.reset();
                    let pid = self.start_process().map_err(ActionError::Failed)?;
                    format!("node {id} started (pid {pid})")
                }
            },
            NodeAction::Restart => {
                let old = self.stop_process().await;
                self.backoff.reset();
                let pid = self.start_process().map_err(|e| {
                    self.state = ProcState::Stopped;
                    ActionError::Failed(e)
                })?;
                match old {
                    Some(how) => format!("node {id} restarted (pid {pid}; old process: {how})"),
                    None => format!("node {id} started (pid {pid})"),
                }
            }
            NodeAction::Rejoin => {
                if self.state == ProcState::Paused {
                    return Err(ActionError::Conflict(format!(
                        "node {id} is paused; use 'raft-nosql cluster resume {id}' first"
                    )));
                }
                let old = self.stop_process().await;
                self.backoff.reset();
                let pid = self.start_process_with(&["--rejoin"]).map_err(|e| {
                    self.state = ProcState::Stopped;
                    ActionError::Failed(e)
                })?;
                let old = old.map(|how| format!("; old process: {how}")).unwrap_or_default();
                format!(
                    "node {id} rejoining (pid {pid}{old}): its data is wiped and it catches up \
                     from the leader; 'raft-nosql cluster status' shows it converge"
                )
            }
            NodeAction::Pause => match (self.state, self.child.as_ref()) {
                (ProcState::Paused, Some(c)) => {
                    format!("node {id} is already paused (pid {})", c.id())
                }
                (ProcState::Running, Some(c)) => {
                    process::signal(c, libc::SIGSTOP)
                        .map_err(|e| ActionError::Failed(format!("SIGSTOP failed: {e}")))?;
                    let pid = c.id();
                    self.state = ProcState::Paused;
                    self.status = None;
                    format!(
                        "node {id} paused (SIGSTOP, pid {pid}); 'raft-nosql cluster resume {id}' continues it"
                    )
                }
                (state, _) => {
                    return Err(ActionError::Conflict(format!(
                        "node {id} is not running ({state}); nothing to pause"
                    )))
                }
            },
            NodeAction::Resume => match (self.state, self.child.as_ref()) {
                (ProcState::Paused, Some(c)) => {
                    process::signal(c, libc::SIGCONT)
                        .map_err(|e| ActionError::Failed(format!("SIGCONT failed: {e}")))?;
                    let pid = c.id();
                    self.state = ProcState::Running;
                    format!("node {id} resumed (SIGCONT, pid {pid})")
                }
                (ProcState::Running, Some(c)) => {
                    format!("node {id} is not paused (running, pid {})", c.id())
                }
                (state, _) => {
                    return Err(ActionError::Conflict(format!(
                    "node {id} is not running ({state}); use 'raft-nosql cluster start-node {id}'"
                )))
                }
            },
        };
        Ok(self.report(action, msg))
    }

    async fn shutdown(&mut self) {
        self.restart_at = None;
        if let Some(how) = self.stop_process().await {
            self.events.emit(format!("node {} stopped ({how})", self.id));
        }
        if self.state.has_process() || self.state == ProcState::Restarting {
            self.state = ProcState::Stopped;
        }
    }
}

/// The gist of an HTTP error (reqwest's Display nests causes we do not need).
fn short_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".to_string()
    } else if e.is_connect() {
        "connection refused".to_string()
    } else if e.is_decode() {
        format!("bad /status answer: {e}")
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RestartPolicy {
        RestartPolicy {
            enabled: true,
            initial_backoff_ms: 500,
            max_backoff_ms: 3000,
            reset_after_ms: 30_000,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut b = Backoff::new(&policy());
        let quick = Duration::from_secs(1);
        let delays: Vec<u128> = (0..5).map(|_| b.on_crash(quick).as_millis()).collect();
        assert_eq!(delays, [500, 1000, 2000, 3000, 3000]);
    }

    #[test]
    fn backoff_resets_after_a_long_enough_run() {
        let mut b = Backoff::new(&policy());
        b.on_crash(Duration::ZERO);
        b.on_crash(Duration::ZERO);
        assert_eq!(b.on_crash(Duration::from_secs(30)).as_millis(), 500);
        assert_eq!(b.on_crash(Duration::ZERO).as_millis(), 1000);
        b.reset();
        assert_eq!(b.on_crash(Duration::ZERO).as_millis(), 500);
    }

    #[test]
    fn actions_round_trip_through_their_path_names() {
        for a in [
            NodeAction::Kill,
            NodeAction::Stop,
            NodeAction::Start,
            NodeAction::Restart,
            NodeAction::Pause,
            NodeAction::Resume,
            NodeAction::Rejoin,
        ] {
            assert_eq!(NodeAction::from_path(a.as_path()), Some(a));
        }
        assert_eq!(NodeAction::from_path("explode"), None);
    }
}
