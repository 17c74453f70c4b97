//! Membership changes run by the supervisor: `cluster add-node`, `remove-node`,
//! `members` (control API `POST /members`, `DELETE /members/{id}`, `GET /members`).
//!
//! The Raft log holds the live membership; the leader changes it (see
//! `server::members`). The supervisor adds what only it can do: it starts and stops the
//! node processes, records the nodes it runs in `<data_root>/members.json` (see
//! `config::record_members`), and walks a new node through the steps, reporting each:
//!
//! | phase          | what happens                                                       |
//! |----------------|--------------------------------------------------------------------|
//! | `starting`     | `members.json` gains the node, its process starts, it answers      |
//! | `learner`      | the leader adds it as a learner (`learner_added`)                  |
//! | `catching_up`  | it receives the log or a snapshot; `matched` / `leader_last` move   |
//! | `promoting`    | within `CAUGHT_UP_ENTRIES`: joint consensus makes it a voter        |
//! | `done`/`failed`| the final membership, or why not (an add that failed before the    |
//! |                | learner step is rolled back: process stopped, record restored)     |
//!
//! The add runs in the background; `GET /members` shows its progress, so the CLI can
//! show it and a lost CLI does not stop it. One change at a time: a second one is
//! refused while the first runs, as the leader refuses one while its last is not
//! committed.
//!
//! On start ([`reconcile`]) the supervisor squares its record with the log: a joint
//! configuration left by a crash between the two steps is settled to its newer half,
//! and a node it runs that the log does not know (an add interrupted before the learner
//! step, a removal interrupted after it) is stopped and dropped from the record.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::control::{ApiError, Control};
use crate::server::members::{ChangeReply, Members, CAUGHT_UP_ENTRIES};

/// How long an add waits for the new node's process to answer, and for each step.
const STEP_WAIT: Duration = Duration::from_secs(60);

/// How long a learner may take to catch up before the add gives up (it stays a learner).
const CATCH_UP_WAIT: Duration = Duration::from_secs(600);

/// Body of `POST /members`: both optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddRequest {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub addr: Option<String>,
}

/// Where a membership change run by the supervisor stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Starting,
    Learner,
    CatchingUp,
    Promoting,
    Removing,
    Done,
    Failed,
}

/// One membership change and its progress (`GET /members` → `change`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeState {
    /// `add` or `remove`.
    pub op: String,
    pub node: u64,
    pub addr: String,
    pub phase: Phase,
    /// What is happening now, or the outcome, in one line.
    pub message: String,
    /// While catching up: the learner's matched index and the leader's last index.
    pub matched: Option<u64>,
    pub leader_last: Option<u64>,
    /// Whether the learner was sent a snapshot (its log started past index 1).
    pub snapshot_installed: bool,
    /// ms since the change started.
    pub elapsed_ms: u64,
    /// The membership after the change (once done).
    pub members: Option<Members>,
}

impl ChangeState {
    /// A change just started, with nothing measured yet.
    fn new(op: &str, node: u64, addr: &str, phase: Phase, message: String) -> ChangeState {
        ChangeState {
            op: op.into(),
            node,
            addr: addr.into(),
            phase,
            message,
            matched: None,
            leader_last: None,
            snapshot_installed: false,
            elapsed_ms: 0,
            members: None,
        }
    }

    pub fn finished(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Failed)
    }
}

/// The answer of `GET /members`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MembersView {
    /// The membership as the leader (else the node with the newest one) knows it.
    pub members: Option<Members>,
    /// The node that answered.
    pub from_node: Option<u64>,
    /// The change in progress, or the last one.
    pub change: Option<ChangeState>,
}

/// Sends membership steps to the leader and reads its membership.
#[derive(Debug, Clone)]
pub struct LeaderApi {
    http: reqwest::Client,
}

impl LeaderApi {
    /// A client whose membership calls carry the cluster secret's proof.
    pub fn new(security: &crate::security::Security) -> Self {
        // A change waits for two commits; redirects (307 to the leader) are followed.
        let http = security
            .client_builder(crate::tls::client(reqwest::Client::builder()))
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client builds");
        LeaderApi { http }
    }
}

/// A node's error answer, or why it gave none.
#[derive(Debug, Clone)]
pub struct StepError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl StepError {
    fn transport(addr: &str, e: reqwest::Error) -> StepError {
        StepError { status: 0, code: "unreachable".into(), message: format!("{addr}: {e}") }
    }

    /// Worth retrying against the (new) leader: no leader yet, or unreachable.
    pub fn retryable(&self) -> bool {
        self.status == 0 || self.status == 503 || self.code == "not_leader"
    }
}

impl From<StepError> for ApiError {
    fn from(e: StepError) -> Self {
        match e.status {
            404 => ApiError::NodeNotFound(e.message),
            409 => ApiError::InvalidState(e.message),
            400 => ApiError::BadRequest(e.message),
            0 => ApiError::Unreachable(e.message),
            _ => ApiError::ActionFailed(e.message),
        }
    }
}

impl LeaderApi {
    /// `POST http://{addr}/admin/members/{step}` with `body`.
    pub async fn step(
        &self,
        addr: &str,
        step: &str,
        body: serde_json::Value,
    ) -> Result<ChangeReply, StepError> {
        let resp = self
            .http
            .post(crate::tls::url(addr, &format!("/admin/members/{step}")))
            .json(&body)
            .send()
            .await
            .map_err(|e| StepError::transport(addr, e))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| StepError::transport(addr, e))?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes).map_err(|e| StepError {
                status: 500,
                code: "bad_answer".into(),
                message: format!("{addr}: unexpected answer: {e}"),
            });
        }
        let err: Option<crate::error::ErrorBody> = serde_json::from_slice(&bytes).ok();
        Err(match err {
            Some(b) => StepError { status, code: b.error.code, message: b.error.message },
            None => StepError {
                status,
                code: "bad_answer".into(),
                message: format!("{addr}: HTTP {status}: {}", String::from_utf8_lossy(&bytes)),
            },
        })
    }

    /// `GET http://{addr}/admin/members`.
    pub async fn members(&self, addr: &str) -> Result<Members, StepError> {
        let resp = self
            .http
            .get(crate::tls::url(addr, "/admin/members"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| StepError::transport(addr, e))?;
        let status = resp.status().as_u16();
        resp.json().await.map_err(|e| StepError {
            status,
            code: "bad_answer".into(),
            message: format!("{addr}: {e}"),
        })
    }
}

/// Retries `f` while it fails with a retryable error, for up to `wait`.
pub async fn retrying<T, F, Fut>(wait: Duration, mut f: F) -> Result<T, StepError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StepError>>,
{
    let deadline = Instant::now() + wait;
    loop {
        match f().await {
            Err(e) if e.retryable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await; // poll: wait for a leader
            }
            other => return other,
        }
    }
}

/// Whether a learner `behind` entries back may be promoted.
pub fn caught_up(matched: Option<u64>, leader_last: u64) -> bool {
    matched.is_some_and(|m| leader_last.saturating_sub(m) <= CAUGHT_UP_ENTRIES)
}

/// One line for a change's progress, as the CLI prints it.
pub fn progress_line(c: &ChangeState) -> String {
    match (&c.phase, c.matched, c.leader_last) {
        (Phase::CatchingUp, m, Some(last)) => format!(
            "node {}: catching up{}: matched {} of {last} ({} behind)",
            c.node,
            if c.snapshot_installed { " (snapshot installed)" } else { "" },
            m.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
            last.saturating_sub(m.unwrap_or(0))
        ),
        _ => format!("node {}: {}", c.node, c.message),
    }
}

impl super::Supervisor {
    /// The node handles, in the order they were started.
    pub(super) fn handles(&self) -> Vec<super::NodeHandle> {
        self.nodes.read().expect("nodes lock").clone()
    }

    fn set_change(&self, state: ChangeState) {
        *self.change.lock().expect("change lock") = Some(state);
    }

    fn update_change(&self, f: impl FnOnce(&mut ChangeState)) {
        if let Some(c) = self.change.lock().expect("change lock").as_mut() {
            f(c);
        }
    }

    fn leader_addr(&self) -> Option<String> {
        let view = self.view();
        let leader = view.leader?;
        view.nodes.iter().find(|n| n.id == leader.id).map(|n| n.addr.clone())
    }

    /// The membership as the leader knows it, else as the first answering node does.
    pub(super) async fn current_members(&self) -> Option<(u64, Members)> {
        let view = self.view();
        let leader = view.leader.map(|l| l.id);
        let mut order: Vec<_> = view.nodes.iter().filter(|n| n.status.is_some()).collect();
        order.sort_by_key(|n| Some(n.id) != leader);
        for n in order {
            if let Ok(m) = self.leader_api.members(&n.addr).await {
                return Some((n.id, m));
            }
        }
        None
    }

    /// The leader's membership, refusing when there is no leader or a change is open.
    async fn settled_members(&self) -> Result<(String, Members), ApiError> {
        // Right after a start the supervisor may still be bringing the cluster up:
        // wait for that rather than refuse.
        let deadline = Instant::now() + STEP_WAIT;
        while !self.ready.load(std::sync::atomic::Ordering::SeqCst) {
            if Instant::now() > deadline {
                return Err(ApiError::InvalidState(
                    "the supervisor is still bringing the cluster up; retry in a moment".into(),
                ));
            }
            tokio::time::sleep(super::node::TICK).await; // poll: bring-up in progress
        }
        let no_leader = || {
            ApiError::InvalidState(
                "no node leads right now; a membership change needs a leader \
                 ('raft-nosql cluster status --wait' waits for one)"
                    .into(),
            )
        };
        let addr = self.leader_addr().ok_or_else(no_leader)?;
        let m = self.leader_api.members(&addr).await.map_err(ApiError::from)?;
        if m.changing() {
            return Err(ApiError::InvalidState(format!(
                "a membership change is in progress ({}); wait for it to finish",
                m.describe()
            )));
        }
        Ok((addr, m))
    }

    /// Writes the nodes this supervisor runs to `members.json`.
    fn record(&self, nodes: &[(u64, String)]) -> Result<(), ApiError> {
        let nodes: Vec<crate::config::NodeConfig> = nodes
            .iter()
            .map(|(id, addr)| crate::config::NodeConfig::new(*id, addr.clone()))
            .collect();
        crate::config::record_members(&self.spec.data_root, &nodes).map_err(|e| {
            ApiError::ActionFailed(format!(
                "cannot write {}: {e}",
                crate::config::members_file(&self.spec.data_root).display()
            ))
        })
    }

    fn ids_and_addrs(&self) -> Vec<(u64, String)> {
        self.handles().iter().map(|h| (h.id, h.addr.clone())).collect()
    }

    /// The next free port after every node's, on the first node's host.
    fn next_addr(&self, taken: &[String]) -> Option<String> {
        let parsed: Vec<std::net::SocketAddr> =
            taken.iter().filter_map(|a| a.parse().ok()).collect();
        let first = parsed.first()?;
        let mut port = parsed.iter().map(|a| a.port()).max()?;
        loop {
            port = port.checked_add(1)?;
            let candidate = std::net::SocketAddr::new(first.ip(), port).to_string();
            if !taken.contains(&candidate) && std::net::TcpListener::bind(&candidate).is_ok() {
                return Some(candidate);
            }
        }
    }

    /// `POST /members`: checks the request, records and starts the node, and leaves the
    /// rest of the add to a background task.
    pub(super) async fn start_add(
        self: std::sync::Arc<Self>,
        req: AddRequest,
    ) -> Result<ChangeState, ApiError> {
        let Ok(guard) = self.change_lock.clone().try_lock_owned() else {
            let now = self.change.lock().expect("change lock").clone();
            return Err(ApiError::InvalidState(format!(
                "another membership change is in progress ({}); wait for it to finish",
                now.map(|c| progress_line(&c)).unwrap_or_default()
            )));
        };
        let (_, members) = self.settled_members().await?;
        let mut nodes = self.ids_and_addrs();
        let mut ids: Vec<u64> = nodes.iter().map(|(id, _)| *id).collect();
        ids.extend(members.nodes.keys().copied());
        let mut taken: Vec<String> = nodes.iter().map(|(_, a)| a.clone()).collect();
        taken.extend(members.nodes.values().cloned());
        taken.push(self.config.supervisor.control_addr.clone());
        let id = req.id.unwrap_or_else(|| ids.iter().max().map_or(0, |m| m + 1));
        if ids.contains(&id) {
            return Err(ApiError::InvalidState(format!(
                "node id {id} is already in use (ids in use: {}); pick another or leave --id out",
                {
                    ids.sort_unstable();
                    ids.dedup();
                    ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
                }
            )));
        }
        let addr = match req.addr {
            Some(a) => {
                if a.parse::<std::net::SocketAddr>().is_err() {
                    return Err(ApiError::BadRequest(format!("{a:?} is not an ip:port address")));
                }
                if taken.contains(&a) {
                    return Err(ApiError::InvalidState(format!(
                        "address {a} is already in use by the cluster"
                    )));
                }
                if let Err(e) = std::net::TcpListener::bind(&a) {
                    return Err(ApiError::InvalidState(format!(
                        "address {a} cannot be listened on ({e}); is another process using it?"
                    )));
                }
                a
            }
            None => self.next_addr(&taken[..taken.len() - 1]).ok_or_else(|| {
                ApiError::ActionFailed("no free port found after the nodes' ports".into())
            })?,
        };
        nodes.push((id, addr.clone()));
        self.record(&nodes)?;
        let handle = super::NodeHandle::spawn(
            id,
            addr.clone(),
            self.spec.clone(),
            &self.config.supervisor,
            self.events.clone(),
        );
        self.nodes.write().expect("nodes lock").push(handle);
        self.events.emit(format!("adding node {id} at {addr}: starting its process"));
        let state = ChangeState::new(
            "add",
            id,
            &addr,
            Phase::Starting,
            format!("starting node {id} at {addr}"),
        );
        self.set_change(state.clone());
        let sup = self.clone();
        tokio::spawn(async move {
            let t0 = Instant::now();
            let outcome = sup.run_add(id, &addr, t0).await;
            sup.finish(outcome, t0);
            drop(guard);
        });
        Ok(state)
    }

    /// Marks the change done or failed and says so.
    fn finish(&self, outcome: Result<(String, Members), String>, t0: Instant) {
        let elapsed_ms = t0.elapsed().as_millis() as u64;
        match outcome {
            Ok((message, members)) => {
                self.events.emit(&message);
                self.update_change(|c| {
                    c.phase = Phase::Done;
                    c.message = message;
                    c.members = Some(members);
                    c.elapsed_ms = elapsed_ms;
                });
            }
            Err(message) => {
                self.events.emit(&message);
                self.update_change(|c| {
                    c.phase = Phase::Failed;
                    c.message = message;
                    c.elapsed_ms = elapsed_ms;
                });
            }
        }
    }

    /// Stops and forgets a node that never became a member, and restores the record.
    async fn roll_back_add(&self, id: u64) {
        let handle = self.handles().into_iter().find(|h| h.id == id);
        if let Some(h) = handle {
            h.shutdown().await;
        }
        self.nodes.write().expect("nodes lock").retain(|h| h.id != id);
        let _ = self.record(&self.ids_and_addrs());
        let _ = std::fs::remove_dir_all(self.spec.node_dir(id));
    }

    async fn run_add(&self, id: u64, addr: &str, t0: Instant) -> Result<(String, Members), String> {
        // 1. The process answers.
        let deadline = Instant::now() + STEP_WAIT;
        loop {
            let view = self.handles().iter().find(|h| h.id == id).map(|h| h.view());
            if view.as_ref().is_some_and(|v| v.status.is_some()) {
                break;
            }
            // A process that exits at once (its port taken, a bad data directory) would
            // only be restarted in a loop: give up on the first exit and say why.
            if let Some(exit) = view.and_then(|v| v.last_exit) {
                let log = std::fs::read_to_string(self.spec.log_file(id)).unwrap_or_default();
                let why = log
                    .lines()
                    .rev()
                    .find(|l| l.to_ascii_lowercase().contains("error"))
                    .map(|l| format!(": {}", l.chars().take(300).collect::<String>()))
                    .unwrap_or_default();
                self.roll_back_add(id).await;
                return Err(format!(
                    "adding node {id} failed: its process exited ({exit}){why}; nothing changed"
                ));
            }
            if Instant::now() > deadline {
                self.roll_back_add(id).await;
                return Err(format!(
                    "adding node {id} failed: its process did not answer within {} s (see {}); nothing changed",
                    STEP_WAIT.as_secs(),
                    self.spec.log_file(id).display()
                ));
            }
            tokio::time::sleep(super::node::TICK).await; // poll: the node task's status
        }
        // 2. A learner.
        self.update_change(|c| {
            c.phase = Phase::Learner;
            c.message = format!("adding node {id} as a learner");
        });
        let body = serde_json::json!({ "id": id, "addr": addr });
        let added = retrying(STEP_WAIT, || {
            let leader = self.leader_addr();
            let body = body.clone();
            async move {
                let leader = leader.ok_or_else(|| StepError {
                    status: 503,
                    code: "no_leader".into(),
                    message: "no leader".into(),
                })?;
                self.leader_api.step(&leader, "add-learner", body).await
            }
        })
        .await;
        if let Err(e) = added {
            self.roll_back_add(id).await;
            return Err(format!("adding node {id} failed: {}; nothing changed", e.message));
        }
        self.events.emit(format!("node {id} is a learner; it catches up before it may vote"));
        // 3. Catch up, then 4. promote (again, if the leader finds it behind after all).
        let deadline = Instant::now() + CATCH_UP_WAIT;
        loop {
            let view = self.view();
            let leader = view.leader.and_then(|l| view.nodes.iter().find(|n| n.id == l.id));
            let learner = view.nodes.iter().find(|n| n.id == id).and_then(|n| n.status.clone());
            if let Some(ls) = leader.and_then(|n| n.status.as_ref()) {
                let matched = ls.replication.get(&id).and_then(|p| p.matched);
                let last = ls.last_log_index.unwrap_or(0);
                let snapshot = learner.as_ref().is_some_and(|s| s.snapshot_index.is_some());
                self.update_change(|c| {
                    c.phase = Phase::CatchingUp;
                    c.matched = matched;
                    c.leader_last = Some(last);
                    c.snapshot_installed |= snapshot;
                    c.elapsed_ms = t0.elapsed().as_millis() as u64;
                    c.message = format!("node {id} is catching up");
                });
                if caught_up(matched, last) {
                    self.update_change(|c| {
                        c.phase = Phase::Promoting;
                        c.message =
                            format!("node {id} caught up; promoting it to voter (joint consensus)");
                    });
                    let promoted = retrying(STEP_WAIT, || {
                        let leader = self.leader_addr().unwrap_or_default();
                        async move {
                            self.leader_api
                                .step(&leader, "promote", serde_json::json!({ "id": id }))
                                .await
                        }
                    })
                    .await;
                    match promoted {
                        Ok(reply) => {
                            return Ok((
                                format!(
                                    "node {id} ({addr}) is a voter after {:.1} s; membership: {}",
                                    t0.elapsed().as_secs_f64(),
                                    reply.members.describe()
                                ),
                                reply.members,
                            ))
                        }
                        // Fell behind again between two polls: keep catching up.
                        Err(e) if e.message.contains("behind") => {}
                        Err(e) => {
                            return Err(format!(
                                "promoting node {id} failed: {}; it stays a learner ('raft-nosql cluster remove-node {id}' removes it)",
                                e.message
                            ))
                        }
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "node {id} did not catch up within {} s; it stays a learner ('raft-nosql cluster remove-node {id}' removes it)",
                    CATCH_UP_WAIT.as_secs()
                ));
            }
            tokio::time::sleep(super::node::TICK).await; // poll: the leader's replication progress
        }
    }

    /// `DELETE /members/{id}`: the membership change without the node, then its process
    /// stops; its data stays unless `purge`.
    pub(super) async fn remove(&self, id: u64, purge: bool) -> Result<ChangeState, ApiError> {
        let Ok(_guard) = self.change_lock.clone().try_lock_owned() else {
            let now = self.change.lock().expect("change lock").clone();
            return Err(ApiError::InvalidState(format!(
                "another membership change is in progress ({}); wait for it to finish",
                now.map(|c| progress_line(&c)).unwrap_or_default()
            )));
        };
        let t0 = Instant::now();
        let handles = self.handles();
        let runs = handles.iter().find(|h| h.id == id).map(|h| h.addr.clone());
        let (_, members) = self.settled_members().await?;
        let member = members.nodes.get(&id).cloned();
        let Some(addr) = member.clone().or(runs.clone()) else {
            return Err(ApiError::NodeNotFound(format!(
                "node {id} is not a member of the cluster ({})",
                members.describe()
            )));
        };
        if members.voters == [id] {
            return Err(ApiError::InvalidState(format!(
                "node {id} is the last voter; a cluster cannot remove its last voter"
            )));
        }
        let mut state =
            ChangeState::new("remove", id, &addr, Phase::Removing, format!("removing node {id}"));
        self.set_change(state.clone());
        let mut now = members;
        if member.is_some() {
            let was_leader = self.view().leader.map(|l| l.id) == Some(id);
            self.events.emit(format!(
                "removing node {id}{} through a membership change",
                if was_leader {
                    " (the leader: it steps down once the change commits)"
                } else {
                    ""
                }
            ));
            let removed = retrying(STEP_WAIT, || {
                let leader = self.leader_addr().unwrap_or_default();
                async move {
                    self.leader_api.step(&leader, "remove", serde_json::json!({ "id": id })).await
                }
            })
            .await;
            match removed {
                Ok(reply) => now = reply.members,
                // A retry after an answer that was lost: the first attempt removed it.
                Err(e) if e.status == 404 => {}
                Err(e) => {
                    let msg = format!("removing node {id} failed: {}", e.message);
                    self.events.emit(&msg);
                    state.phase = Phase::Failed;
                    state.message = msg;
                    state.elapsed_ms = t0.elapsed().as_millis() as u64;
                    self.set_change(state);
                    return Err(e.into());
                }
            }
        }
        if let Some(h) = handles.iter().find(|h| h.id == id) {
            h.shutdown().await;
        }
        self.nodes.write().expect("nodes lock").retain(|h| h.id != id);
        self.record(&self.ids_and_addrs())?;
        let dir = self.spec.node_dir(id);
        let data = if purge {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => format!("its data {} is deleted", dir.display()),
                Err(e) => format!("its data {} could not be deleted: {e}", dir.display()),
            }
        } else {
            format!("its data stays in {} (--purge deletes it)", dir.display())
        };
        let msg = format!(
            "node {id} removed after {:.1} s; membership: {}; {data}",
            t0.elapsed().as_secs_f64(),
            now.describe()
        );
        self.events.emit(&msg);
        state.phase = Phase::Done;
        state.message = msg;
        state.members = Some(now);
        state.elapsed_ms = t0.elapsed().as_millis() as u64;
        self.set_change(state.clone());
        Ok(state)
    }

    /// Squares the nodes this supervisor runs with the membership in the log (see the
    /// module docs). Runs once the cluster has a leader.
    pub(super) async fn reconcile(&self) {
        let Some(leader) = self.leader_addr() else { return };
        let Ok(mut members) = self.leader_api.members(&leader).await else { return };
        if !members.joint.is_empty() {
            self.events.emit(format!(
                "a membership change was interrupted ({}); finishing it",
                members.describe()
            ));
            let settled = retrying(STEP_WAIT, || {
                let leader = self.leader_addr().unwrap_or_default();
                async move { self.leader_api.step(&leader, "settle", serde_json::json!({})).await }
            })
            .await;
            match settled {
                Ok(reply) => {
                    self.events.emit(format!("membership settled: {}", reply.members.describe()));
                    members = reply.members;
                }
                Err(e) => {
                    self.events.emit(format!("could not settle the membership: {}", e.message));
                    return;
                }
            }
        }
        let strays: Vec<super::NodeHandle> =
            self.handles().into_iter().filter(|h| !members.nodes.contains_key(&h.id)).collect();
        for h in &strays {
            self.events.emit(format!(
                "node {} is not a member of the cluster ({}): an add or remove was interrupted; stopping it (its data stays in {})",
                h.id,
                members.describe(),
                self.spec.node_dir(h.id).display()
            ));
            h.shutdown().await;
        }
        if !strays.is_empty() {
            self.nodes.write().expect("nodes lock").retain(|h| members.nodes.contains_key(&h.id));
            if let Err(e) = self.record(&self.ids_and_addrs()) {
                self.events.emit(e.to_string());
            }
        }
        let runs: Vec<u64> = self.handles().iter().map(|h| h.id).collect();
        for (id, addr) in &members.nodes {
            if !runs.contains(id) {
                self.events.emit(format!(
                    "node {id} ({addr}) is a member of the cluster but this supervisor does not run it"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_learner_is_caught_up_within_the_threshold() {
        assert!(!caught_up(None, 10));
        assert!(caught_up(Some(10), 10));
        assert!(caught_up(Some(0), CAUGHT_UP_ENTRIES));
        assert!(!caught_up(Some(0), CAUGHT_UP_ENTRIES + 1));
    }

    #[test]
    fn step_errors_map_to_control_api_errors() {
        let e = |status, code: &str| StepError { status, code: code.into(), message: "m".into() };
        assert_eq!(
            ApiError::from(e(409, "membership_conflict")),
            ApiError::InvalidState("m".into())
        );
        assert_eq!(ApiError::from(e(404, "node_not_found")), ApiError::NodeNotFound("m".into()));
        assert!(e(503, "no_leader").retryable());
        assert!(e(0, "unreachable").retryable());
        assert!(!e(409, "membership_conflict").retryable());
    }
}
