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
}

/// This node's status from openraft's metrics and the state machine.
pub fn status(app: &App) -> Result<NodeStatus, Error> {
    let m = app.raft.metrics().borrow().clone();
    let membership: BTreeMap<u64, String> =
        m.membership_config.membership().nodes().map(|(id, n)| (*id, n.addr.clone())).collect();
    let (tables, items) = app.tables.counts()?;
    Ok(NodeStatus {
        node_id: app.id,
        addr: app.addr.clone(),
        role: format!("{:?}", m.state),
        term: m.current_term,
        leader_id: m.current_leader,
        leader_addr: m.current_leader.and_then(|l| app.addr_of(l)),
        last_log_index: m.last_log_index,
        committed: app.committed(),
        applied: m.last_applied.map(|l| l.index),
        snapshot_index: m.snapshot.map(|l| l.index),
        purged_index: m.purged.map(|l| l.index),
        initialized: !membership.is_empty(),
        membership,
        tables,
        items,
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

/// The routes `/status` and `/admin/*`.
pub fn routes(app: Arc<App>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let a = app.clone();
    let status_route = warp::path("status")
        .and(warp::path::end())
        .and(warp::get())
        .map(move || respond(status(&a), StatusCode::OK, "/status"));
    let init_route = warp::path!("admin" / "init").and(warp::post()).then(move || {
        let app = app.clone();
        async move { respond(init(&app).await, StatusCode::OK, "/admin/init") }
    });
    status_route.or(init_route).unify()
}
