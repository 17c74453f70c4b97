//! Administration: `POST /admin/init`, `GET /status`, faults, simulation, and
//! `GET /admin/log?last=N` (the last N log entries' index, term and kind, for the
//! dashboard's log strips).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::{respond, App};
use crate::error::Error;
use crate::raft::network::FaultSpec;
use crate::raft::NodeAddr;

/// One node's view of the cluster, as `GET /status` returns it. Missing fields default
/// when read back, so readers (the supervisor) and nodes can evolve separately.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeStatus {
    pub node_id: u64,
    pub addr: String,
    /// Leader, Follower, Candidate, Learner or Shutdown.
    pub role: String,
    pub term: u64,
    /// The node this one voted for in `term` (itself when it is a candidate or leader).
    pub voted_for: Option<u64>,
    pub leader_id: Option<u64>,
    pub leader_addr: Option<String>,
    pub last_log_index: Option<u64>,
    pub committed: Option<u64>,
    pub applied: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    /// Every member (voters and learners): id → address.
    pub membership: BTreeMap<u64, String>,
    /// Voters of the newest configuration.
    pub voters: Vec<u64>,
    /// Members that receive the log but do not vote.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learners: Vec<u64>,
    /// While a membership change is in progress: the old and new voter sets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joint: Vec<Vec<u64>>,
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
    /// Simulated network faults, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<FaultSpec>,
    /// Disk use of this node's data directory next to its live data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<crate::storage::disk::DiskUsage>,
}

impl NodeStatus {
    pub fn is_leader(&self) -> bool {
        self.role == "Leader"
    }
}

/// How far one member's log matches the leader's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    let members = super::members::members(app);
    Ok(NodeStatus {
        node_id: app.id,
        addr: app.addr.clone(),
        role: super::role_name(m.state).to_string(),
        term: m.current_term,
        voted_for: m.vote.leader_id().voted_for(),
        leader_id: m.current_leader,
        leader_addr: m.current_leader.and_then(|l| app.addr_of(l)),
        last_log_index: m.last_log_index,
        committed: app.progress.committed(),
        applied: m.last_applied.map(|l| l.index),
        snapshot_index: m.snapshot.map(|l| l.index),
        purged_index: m.purged.map(|l| l.index),
        initialized: !membership.is_empty(),
        membership,
        voters: members.voters,
        learners: members.learners,
        joint: members.joint,
        tables,
        items,
        lag_entries: app.progress.lag_entries(),
        lag_ms: app.progress.lag_ms(),
        replication,
        millis_since_quorum_ack: m.millis_since_quorum_ack,
        digest: format!("{digest:032x}"),
        digest_index,
        apply_delay_ms: app.progress.apply_delay_ms(),
        faults: Some(app.faults.get()).filter(|f| f.is_active()),
        disk: Some(crate::storage::disk::usage(
            &app.config.node_dir(app.id),
            app.tables.item_bytes()?,
            app.progress.log_bytes(),
        )),
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

fn set_faults(app: &App, body: &[u8]) -> Result<FaultSpec, Error> {
    let spec: FaultSpec = serde_json::from_slice(body).map_err(|e| {
        Error::BadRequest(format!(
            "expected {{\"partitioned_from\": [ids], \"delay_ms\": N, \"jitter_ms\": N, \"drop_rate\": 0..1}}: {e}"
        ))
    })?;
    apply_faults(app, spec)
}

fn apply_faults(app: &App, spec: FaultSpec) -> Result<FaultSpec, Error> {
    spec.validate().map_err(Error::BadRequest)?;
    if spec.partitioned_from.contains(&app.id) {
        return Err(Error::BadRequest("a node cannot be partitioned from itself".into()));
    }
    app.faults.set(spec.clone());
    tracing::info!(
        event = "faults_changed",
        partitioned_from = ?spec.partitioned_from,
        delay_ms = spec.delay_ms,
        jitter_ms = spec.jitter_ms,
        drop_rate = spec.drop_rate,
        "network faults changed"
    );
    Ok(spec)
}

/// Most entries `GET /admin/log` returns.
pub const MAX_LOG_TAIL: usize = 500;

/// The answer of `GET /admin/log`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogTail {
    pub node_id: u64,
    /// The last entries on this node's disk, oldest first.
    pub entries: Vec<crate::storage::LogCell>,
    pub committed: Option<u64>,
    pub applied: Option<u64>,
    pub purged_index: Option<u64>,
}

fn log_tail(app: &App, query: &str) -> Result<LogTail, Error> {
    let mut last = 40;
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        match kv.split_once('=') {
            Some(("last", v)) => {
                last =
                    v.parse().ok().filter(|n| (1..=MAX_LOG_TAIL).contains(n)).ok_or_else(|| {
                        Error::BadRequest(format!(
                            "last must be a number from 1 to {MAX_LOG_TAIL}, not {v:?}"
                        ))
                    })?
            }
            _ => return Err(Error::BadRequest(format!("unknown parameter {kv:?} (last=N)"))),
        }
    }
    let entries = app.log.tail(last).map_err(|e| Error::Internal(e.to_string()))?;
    let m = app.raft.metrics().borrow().clone();
    Ok(LogTail {
        node_id: app.id,
        entries,
        committed: app.progress.committed(),
        applied: m.last_applied.map(|l| l.index),
        purged_index: m.purged.map(|l| l.index),
    })
}

/// Recomputes the state digest from every stored record and compares it with the one
/// apply keeps incrementally. A mismatch would mean a bug in apply, not a replication
/// problem; between nodes, compare `/status` digests at equal `digest_index`.
fn verify_digest(app: &App) -> Result<serde_json::Value, Error> {
    let (incremental, index) = app.progress.digest();
    let full = match app.tables.full_digest() {
        Ok(d) => d,
        // A block that fails fjall's checksum: the item keyspace is damaged.
        Err(e) => {
            return Ok(serde_json::json!({
                "digest": format!("{incremental:032x}"),
                "digest_index": index,
                "consistent": false,
                "error": e.to_string(),
                "note": crate::storage::disk::rejoin_remedy(app.id),
            }))
        }
    };
    let (again, index_after) = app.progress.digest();
    Ok(serde_json::json!({
        "digest": format!("{incremental:032x}"),
        "recomputed": format!("{full:032x}"),
        "digest_index": index,
        "consistent": (incremental == full) || (index != index_after || again != incremental),
        "note": if index != index_after {
            "entries were applied during the check; run it again".to_string()
        } else if incremental != full {
            crate::storage::disk::rejoin_remedy(app.id)
        } else {
            String::new()
        },
    }))
}

/// Copies Raft's and the state machine's current numbers into the gauges.
fn refresh_metrics(app: &App) {
    let m = app.raft.metrics().borrow().clone();
    let pm = &app.progress.metrics;
    pm.term.set(m.current_term as i64);
    let current = super::role_name(m.state);
    for role in ["Leader", "Follower", "Candidate", "Learner", "Shutdown"] {
        pm.role.with_label_values(&[role]).set((current == role) as i64);
    }
    pm.last_log_index.set(m.last_log_index.unwrap_or(0) as i64);
    pm.committed_index.set(app.progress.committed().unwrap_or(0) as i64);
    pm.applied_index.set(m.last_applied.map(|l| l.index).unwrap_or(0) as i64);
    pm.matched_index.reset();
    if let Some(r) = &m.replication {
        for (id, matched) in r.iter() {
            pm.matched_index
                .with_label_values(&[&id.to_string()])
                .set(matched.map(|l| l.index).unwrap_or(0) as i64);
        }
    }
    if let Ok((tables, items)) = app.tables.counts() {
        pm.tables.set(tables as i64);
        pm.items.set(items as i64);
    }
    pm.apply_delay_ms.set(app.progress.apply_delay_ms() as i64);
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
    let a = app.clone();
    let faults_get = warp::path!("admin" / "faults")
        .and(warp::get())
        .map(move || respond::<_>(Ok(a.faults.get()), StatusCode::OK, "/admin/faults"));
    let a = app.clone();
    let faults_set = warp::path!("admin" / "faults")
        .and(warp::post())
        .and(warp::body::content_length_limit(4096))
        .and(warp::body::bytes())
        .map(move |body: bytes::Bytes| {
            respond(set_faults(&a, &body), StatusCode::OK, "/admin/faults")
        });
    let a = app.clone();
    let faults_heal = warp::path!("admin" / "faults").and(warp::delete()).map(move || {
        respond(apply_faults(&a, FaultSpec::default()), StatusCode::OK, "/admin/faults")
    });
    let a = app.clone();
    let log = warp::path!("admin" / "log")
        .and(warp::get())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .map(move |q: String| respond(log_tail(&a, &q), StatusCode::OK, "/admin/log"));
    let a = app.clone();
    let verify = warp::path!("admin" / "verify")
        .and(warp::get())
        .map(move || respond(verify_digest(&a), StatusCode::OK, "/admin/verify"));
    let a = app.clone();
    let metrics = warp::path("metrics").and(warp::path::end()).and(warp::get()).map(move || {
        refresh_metrics(&a);
        warp::reply::with_header(
            a.progress.metrics.render(),
            "content-type",
            "text/plain; version=0.0.4; charset=utf-8",
        )
        .into_response()
    });
    status_route
        .or(init_route)
        .unify()
        .or(sim_set)
        .unify()
        .or(sim_get)
        .unify()
        .or(faults_get)
        .unify()
        .or(faults_set)
        .unify()
        .or(faults_heal)
        .unify()
        .or(metrics)
        .unify()
        .or(verify)
        .unify()
        .or(log)
        .unify()
}
