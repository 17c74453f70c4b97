//! Administration: `POST /admin/init` and `GET /status`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{respond, App};
use crate::error::Error;
use crate::raft::NodeAddr;

/// One node's view of the cluster, as `GET /status` returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node_id: u64,
    pub addr: String,
    /// Leader, Follower, Candidate, Learner or Shutdown.
    pub role: String,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub leader_addr: Option<String>,
    pub last_log_index: Option<u64>,
    pub committed: Option<u64>,
    pub applied: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    /// Voting members: id → address.
    pub membership: BTreeMap<u64, String>,
    pub tables: u64,
    pub items: u64,
    /// Whether the cluster has been initialised (this node has a membership).
    pub initialized: bool,
    /// Committed entries not yet applied here.
    pub lag_entries: u64,
    /// How long this node has been behind its committed index, in ms (0 = caught up).
    pub lag_ms: u64,
    /// On the leader: each member's matched log index and how many entries it is
    /// behind the leader's last log index.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replication: BTreeMap<u64, FollowerProgress>,
    /// On the leader: ms since a quorum last acknowledged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub millis_since_quorum_ack: Option<u64>,
    /// Hash of all tables and items (hex), and the applied index it covers. Nodes
    /// with equal digests at the same index hold the same data.
    pub digest: String,
    pub digest_index: u64,
    /// Simulated apply delay in ms (see `[simulation]`).
    pub apply_delay_ms: u64,
}

/// How far one member's log matches the leader's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FollowerProgress {
    pub matched: Option<u64>,
    pub behind: u64,
}

/// This node's status from openraft's metrics and the state machine.
pub fn status(app: &App) -> Result<NodeStatus, Error> {
    let m = app.raft.metrics().borrow().clone();
    let membership: BTreeMap<u64, String> =
        m.membership_config.membership().nodes().map(|(id, n)| (*id, n.addr.clone())).collect();
    let (tables, items) = app.tables.counts()?;
    let last = m.last_log_index.unwrap_or(0);
    let replication = m
        .replication
        .as_ref()
        .map(|r| {
            r.iter()
                .map(|(id, matched)| {
                    let matched = matched.map(|l| l.index);
                    let behind = last.saturating_sub(matched.unwrap_or(0));
                    (*id, FollowerProgress { matched, behind })
                })
                .collect()
        })
        .unwrap_or_default();
    let (digest, digest_index) = app.progress.digest();
    Ok(NodeStatus {
        node_id: app.id,
        addr: app.addr.clone(),
        role: format!("{:?}", m.state),
        term: m.current_term,
        leader_id: m.current_leader,
        leader_addr: m.current_leader.and_then(|l| app.addr_of(l)),
        last_log_index: m.last_log_index,
        committed: app.progress.committed(),
        applied: m.last_applied.map(|l| l.index),
        snapshot_index: m.snapshot.map(|l| l.index),
        purged_index: m.purged.map(|l| l.index),
        initialized: !membership.is_empty(),
        membership,
        tables,
        items,
        lag_entries: app.progress.lag_entries(),
        lag_ms: app.progress.lag_ms(),
        replication,
        millis_since_quorum_ack: m.millis_since_quorum_ack,
        digest: format!("{digest:032x}"),
        digest_index,
        apply_delay_ms: app.progress.apply_delay_ms(),
    })
}

/// Initialises the cluster with every member of the config, unless it already is.
pub async fn init(app: &App) -> Result<serde_json::Value, Error> {
    let initialized =
        app.raft.is_initialized().await.map_err(|e| Error::Unavailable(e.to_string()))?;
    if initialized {
        return Ok(serde_json::json!({ "initialized": true, "already": true }));
    }
    let members: BTreeMap<u64, NodeAddr> =
        app.config.members().into_iter().map(|(id, addr)| (id, NodeAddr { addr })).collect();
    match app.raft.initialize(members).await {
        Ok(()) => Ok(serde_json::json!({ "initialized": true, "already": false })),
        // Lost a race with another init (or a vote arrived first): initialised anyway.
        Err(openraft::error::RaftError::APIError(
            openraft::error::InitializeError::NotAllowed(_),
        )) => Ok(serde_json::json!({ "initialized": true, "already": true })),
        Err(e) => Err(Error::Unavailable(format!("cannot initialise: {e}"))),
    }
}

/// Body of `POST /admin/simulation`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Simulation {
    apply_delay_ms: u64,
}

/// Largest simulated apply delay: longer would only look like a hung node.
pub const MAX_APPLY_DELAY_MS: u64 = 60_000;

fn set_simulation(app: &App, body: &[u8]) -> Result<serde_json::Value, Error> {
    let s: Simulation = serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("expected {{\"apply_delay_ms\": N}}: {e}")))?;
    if s.apply_delay_ms > MAX_APPLY_DELAY_MS {
        return Err(Error::BadRequest(format!(
            "apply_delay_ms must be at most {MAX_APPLY_DELAY_MS}"
        )));
    }
    app.progress.set_apply_delay_ms(s.apply_delay_ms);
    tracing::info!(
        event = "simulation_changed",
        apply_delay_ms = s.apply_delay_ms,
        "simulation changed"
    );
    Ok(serde_json::json!({ "apply_delay_ms": s.apply_delay_ms }))
}

/// The routes `/status` and `/admin/*`.
pub fn routes(app: Arc<App>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let a = app.clone();
    let status_route = warp::path("status")
        .and(warp::path::end())
        .and(warp::get())
        .map(move || respond(status(&a), StatusCode::OK, "/status"));
    let a = app.clone();
    let init_route = warp::path!("admin" / "init").and(warp::post()).then(move || {
        let app = a.clone();
        async move { respond(init(&app).await, StatusCode::OK, "/admin/init") }
    });
    let a = app.clone();
    let sim_set = warp::path!("admin" / "simulation")
        .and(warp::post())
        .and(warp::body::content_length_limit(4096))
        .and(warp::body::bytes())
        .map(move |body: bytes::Bytes| {
            respond(set_simulation(&a, &body), StatusCode::OK, "/admin/simulation")
        });
    let a = app.clone();
    let sim_get = warp::path!("admin" / "simulation").and(warp::get()).map(move || {
        let body = serde_json::json!({ "apply_delay_ms": a.progress.apply_delay_ms() });
        respond::<_>(Ok(body), StatusCode::OK, "/admin/simulation")
    });
    status_route.or(init_route).unify().or(sim_set).unify().or(sim_get).unify()
}
