//! Membership changes on the leader: `GET /admin/members`, and `POST
//! /admin/members/{add-learner,promote,remove,settle}`.
//!
//! The live membership is the one in the Raft log; these endpoints are the only way it
//! changes after `POST /admin/init`. Each is one step of the usual dance:
//!
//! 1. `add-learner {"id", "addr"}`: the node joins as a learner. It receives the log (or
//!    a snapshot) but does not vote, so a slow newcomer cannot stall commits.
//! 2. `promote {"id"}`: once the learner is close to the leader, openraft's joint
//!    consensus makes it a voter: first a joint configuration (old and new voters must
//!    both agree), then the new one alone.
//! 3. `remove {"id"}`: the same two-step change without the node (a voter), or a plain
//!    removal (a learner). A leader that removes itself keeps leading until the change is
//!    committed, then steps down and the remaining voters elect a new leader.
//! 4. `settle`: a leader that died between the two steps leaves a joint configuration
//!    in the log; `settle` finishes it to its newer half (nothing if there is none).
//!
//! Only the leader changes the membership; a follower answers 307 to the leader, as for
//! writes. Refused with 409 and nothing changed: an id or address already in use, a
//! change while another is not yet committed, removing the last voter, promoting a
//! learner that is still far behind. The leader logs `learner_added`,
//! `learner_caught_up` and `node_removed`; every node logs `membership_changed` when it
//! sees a new configuration (see `raft::events`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{respond, App};
use crate::error::Error;
use crate::raft::{NodeAddr, NodeId};

/// A learner is "close to the leader", and may become a voter, once it is at most this
/// many entries behind the leader's last log index.
pub const CAUGHT_UP_ENTRIES: u64 = 100;

/// The membership as this node knows it (`GET /admin/members`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Members {
    /// Voters of the newest configuration.
    pub voters: Vec<NodeId>,
    /// Members that receive the log but do not vote.
    pub learners: Vec<NodeId>,
    /// While a change is in progress: the old and the new voter sets, both of which
    /// must agree on every decision. Empty otherwise.
    pub joint: Vec<Vec<NodeId>>,
    /// Every member's address.
    pub nodes: BTreeMap<NodeId, String>,
    /// The log index of the entry that holds this configuration.
    pub log_index: Option<u64>,
    /// Whether that entry is committed (if not, a change is in progress).
    pub committed: bool,
    /// The leader this node knows.
    pub leader_id: Option<NodeId>,
}

impl Members {
    /// Whether a change is in progress: a joint configuration, or one not yet committed.
    pub fn changing(&self) -> bool {
        !self.joint.is_empty() || !self.committed
    }

    /// "voters 0, 1, 2; learners 3" (and the joint halves while changing).
    pub fn describe(&self) -> String {
        let ids = |v: &[NodeId]| v.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
        let mut s = if self.joint.is_empty() {
            format!("voters {}", ids(&self.voters))
        } else {
            let halves: Vec<String> =
                self.joint.iter().map(|c| format!("{{{}}}", ids(c))).collect();
            format!("joint voters {}", halves.join(" + "))
        };
        if !self.learners.is_empty() {
            s.push_str(&format!("; learners {}", ids(&self.learners)));
        }
        s
    }
}

/// The membership from openraft's metrics, as this node sees it now.
pub fn members(app: &App) -> Members {
    let m = app.raft.metrics().borrow().clone();
    let stored = &m.membership_config;
    let membership = stored.membership();
    let configs = membership.get_joint_config();
    let voters: Vec<NodeId> =
        configs.last().map(|c| c.iter().copied().collect()).unwrap_or_default();
    let log_index = stored.log_id().map(|l| l.index);
    let committed = match (log_index, app.progress.committed()) {
        (None, _) => true,
        (Some(i), Some(c)) => i <= c,
        (Some(_), None) => false,
    };
    Members {
        voters,
        learners: membership.learner_ids().collect(),
        joint: if configs.len() > 1 {
            configs.iter().map(|c| c.iter().copied().collect()).collect()
        } else {
            Vec::new()
        },
        nodes: membership.nodes().map(|(id, n)| (*id, n.addr.clone())).collect(),
        log_index,
        committed,
        leader_id: m.current_leader,
    }
}

/// Body of `add-learner`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddLearner {
    id: NodeId,
    addr: String,
}

/// Body of `promote` and `remove`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeRef {
    id: NodeId,
}

/// The answer to a change: what the membership is now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeReply {
    pub message: String,
    pub members: Members,
}

fn conflict(msg: impl Into<String>) -> Error {
    Error::MembershipConflict(msg.into())
}

/// Refuses unless this node leads and no change is in progress.
fn ready_for_change(app: &App) -> Result<Members, Error> {
    super::writes::check_leader(&app.raft, |id| app.addr_of(id))?;
    let now = members(app);
    if now.changing() {
        return Err(conflict(format!(
            "another membership change is in progress ({}, entry {} {}); wait for it, or run settle",
            now.describe(),
            now.log_index.unwrap_or(0),
            if now.committed { "committed" } else { "not yet committed" }
        )));
    }
    Ok(now)
}

fn change_error(e: RaftError<NodeId, ClientWriteError<NodeId, NodeAddr>>) -> Error {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => f.into(),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => match c {
            ChangeMembershipError::InProgress(p) => {
                conflict(format!("another membership change is in progress: {p}"))
            }
            other => conflict(other.to_string()),
        },
        RaftError::Fatal(f) => Error::Unavailable(format!("raft stopped: {f}")),
    }
}

async fn add_learner(app: &App, body: &[u8]) -> Result<ChangeReply, Error> {
    let req: AddLearner = serde_json::from_slice(body).map_err(|e| {
        Error::BadRequest(format!("expected {{\"id\": N, \"addr\": \"host:port\"}}: {e}"))
    })?;
    if req.addr.parse::<std::net::SocketAddr>().is_err() {
        return Err(Error::BadRequest(format!("{:?} is not an ip:port address", req.addr)));
    }
    let now = ready_for_change(app)?;
    if let Some(addr) = now.nodes.get(&req.id) {
        return Err(conflict(format!("node {} is already a member (at {addr})", req.id)));
    }
    if let Some((id, _)) = now.nodes.iter().find(|(_, a)| **a == req.addr) {
        return Err(conflict(format!("address {} is already node {id}'s", req.addr)));
    }
    let node = NodeAddr { addr: req.addr.clone() };
    let mut add = BTreeMap::new();
    add.insert(req.id, node);
    app.raft.change_membership(ChangeMembers::AddNodes(add), true).await.map_err(change_error)?;
    tracing::info!(event = "learner_added", node = req.id, addr = %req.addr, "learner added");
    let members = members(app);
    Ok(ChangeReply { message: format!("node {} added as a learner", req.id), members })
}

async fn promote(app: &App, body: &[u8]) -> Result<ChangeReply, Error> {
    let req: NodeRef = serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("expected {{\"id\": N}}: {e}")))?;
    let now = ready_for_change(app)?;
    if now.voters.contains(&req.id) {
        return Err(conflict(format!("node {} is already a voter", req.id)));
    }
    if !now.learners.contains(&req.id) {
        return Err(Error::NodeNotFound(format!(
            "node {} is not a learner of the cluster ({}); add it first",
            req.id,
            now.describe()
        )));
    }
    let (last, matched) = {
        let m = app.raft.metrics().borrow().clone();
        let matched = m.replication.as_ref().and_then(|r| r.get(&req.id).cloned()).flatten();
        (m.last_log_index.unwrap_or(0), matched.map(|l| l.index))
    };
    let behind = last.saturating_sub(matched.unwrap_or(0));
    if matched.is_none() || behind > CAUGHT_UP_ENTRIES {
        return Err(conflict(format!(
            "node {} is {} entries behind the leader (at most {CAUGHT_UP_ENTRIES} to become a voter); wait for it to catch up",
            req.id,
            if matched.is_none() { "all".to_string() } else { behind.to_string() }
        )));
    }
    tracing::info!(
        event = "learner_caught_up",
        node = req.id,
        matched,
        leader_last = last,
        "learner caught up"
    );
    let voters: BTreeSet<NodeId> = now.voters.iter().copied().chain([req.id]).collect();
    app.raft
        .change_membership(ChangeMembers::ReplaceAllVoters(voters), true)
        .await
        .map_err(change_error)?;
    let members = members(app);
    Ok(ChangeReply { message: format!("node {} is a voter", req.id), members })
}

async fn remove(app: &App, body: &[u8]) -> Result<ChangeReply, Error> {
    let req: NodeRef = serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("expected {{\"id\": N}}: {e}")))?;
    let now = ready_for_change(app)?;
    let change = if now.voters.contains(&req.id) {
        if now.voters.len() == 1 {
            return Err(conflict(format!(
                "node {} is the last voter; a cluster cannot remove its last voter",
                req.id
            )));
        }
        let voters: BTreeSet<NodeId> =
            now.voters.iter().copied().filter(|v| *v != req.id).collect();
        ChangeMembers::ReplaceAllVoters(voters)
    } else if now.learners.contains(&req.id) {
        ChangeMembers::RemoveNodes([req.id].into_iter().collect())
    } else {
        return Err(Error::NodeNotFound(format!(
            "node {} is not a member of the cluster ({})",
            req.id,
            now.describe()
        )));
    };
    let was_leader = app.id == req.id;
    app.raft.change_membership(change, false).await.map_err(change_error)?;
    tracing::info!(event = "node_removed", node = req.id, was_leader, "node removed");
    let members = members(app);
    Ok(ChangeReply { message: format!("node {} removed", req.id), members })
}

async fn settle(app: &App) -> Result<ChangeReply, Error> {
    super::writes::check_leader(&app.raft, |id| app.addr_of(id))?;
    let now = members(app);
    let Some(target) = now.joint.last().cloned() else {
        return Ok(ChangeReply {
            message: "no joint configuration to settle".into(),
            members: now,
        });
    };
    let voters: BTreeSet<NodeId> = target.into_iter().collect();
    app.raft
        .change_membership(ChangeMembers::ReplaceAllVoters(voters), false)
        .await
        .map_err(change_error)?;
    let members = members(app);
    Ok(ChangeReply { message: format!("settled to {}", members.describe()), members })
}

/// The routes `/admin/members` and `/admin/members/{step}`.
pub fn routes(app: Arc<App>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let a = app.clone();
    let get = warp::path!("admin" / "members")
        .and(warp::get())
        .map(move || respond::<_>(Ok(members(&a)), StatusCode::OK, "/admin/members"));
    let a = app;
    let change = warp::path!("admin" / "members" / String)
        .and(warp::post())
        .and(warp::body::content_length_limit(4096))
        .and(warp::body::bytes())
        .then(move |step: String, body: bytes::Bytes| {
            let app = a.clone();
            async move {
                let path = format!("/admin/members/{step}");
                let r = match step.as_str() {
                    "add-learner" => add_learner(&app, &body).await,
                    "promote" => promote(&app, &body).await,
                    "remove" => remove(&app, &body).await,
                    "settle" => settle(&app).await,
                    other => Err(Error::NodeNotFound(format!(
                        "no membership step {other:?} (add-learner, promote, remove, settle)"
                    ))),
                };
                respond(r, StatusCode::OK, &path)
            }
        });
    get.or(change).unify()
}
