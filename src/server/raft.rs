//! The server side of the Raft RPC: `POST /raft/append`, `/raft/vote`, `/raft/snapshot`,
//! and `/raft/read_index` (the leader's read index for a follower's strong reads).
//!
//! Each takes openraft's request as JSON and answers with the whole
//! `Result<Response, RaftError>` as JSON, which `raft::network` decodes on the caller.
//! A body that does not decode is a 400 JSON error and never reaches openraft.

use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{json_reply, App, MAX_RAFT_BODY};
use crate::error::Error;
use crate::raft::network::FROM_HEADER;
use crate::raft::{NodeId, Raft, TypeConfig, Vote};
use openraft::error::RaftError;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteResponse};

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        let e = Error::BadRequest(format!("not a valid Raft RPC request: {e}"));
        json_reply(e.status(), &e.body())
    })
}

/// While a snapshot chunk from the leader is received (and, for the last one, while
/// the snapshot is installed): empty AppendEntries with the chunk's vote, once per
/// heartbeat interval, handed to this node's own openraft.
///
/// openraft 0.9 receives chunks outside its core and the leader sends this follower no
/// heartbeat while it streams the snapshot, so nothing reset the follower's election
/// timer: a transfer or an install longer than an election timeout (a 512 MB snapshot
/// to a follower that had been down with a full disk) made the follower campaign, the
/// leader step down and the transfer start over, for ever. A chunk from the leader is
/// as good as a heartbeat from it: the beat carries the leader's vote, which openraft
/// checks as for any AppendEntries; with no previous log id and no entries it changes
/// no log and commits nothing.
fn keep_hearing_the_leader(raft: &Raft, vote: Vote) -> tokio::task::JoinHandle<()> {
    let raft = raft.clone();
    let every = std::time::Duration::from_millis(raft.config().heartbeat_interval);
    tokio::spawn(async move {
        loop {
            let beat = AppendEntriesRequest::<TypeConfig> {
                vote,
                prev_log_id: None,
                entries: Vec::new(),
                leader_commit: None,
            };
            if raft.append_entries(beat).await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
    })
}

/// The routes under `/raft`.
pub fn routes(app: Arc<App>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let base = warp::path("raft")
        .and(warp::post())
        .and(warp::any().map(move || app.clone()))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::header::optional::<u64>(FROM_HEADER))
        .and(warp::body::content_length_limit(MAX_RAFT_BODY))
        .and(warp::body::bytes());
    base.then(|app: Arc<App>, rpc: String, from: Option<u64>, body: Bytes| async move {
        if from.is_some_and(|f| app.faults.blocks(f)) {
            // Simulated partition: refuse the sender's messages (see raft::network).
            let e = Error::Unavailable(format!(
                "partitioned from node {} (simulated)",
                from.unwrap_or(0)
            ));
            return json_reply(e.status(), &e.body());
        }
        match rpc.as_str() {
            "append" => match decode(&body) {
                Ok(req) => json_reply(StatusCode::OK, &app.raft.append_entries(req).await),
                Err(resp) => resp,
            },
            "vote" => match decode(&body) {
                Ok(req) => {
                    // The leader lease (raft::lease): a node that just started may have
                    // acknowledged a leader before it restarted, and must not help elect
                    // another one within that leader's lease.
                    // The refusal is an ordinary "vote not granted" (as openraft's own
                    // voter-side lease answers), not an error: the candidate just
                    // waits for its next election.
                    if let Err(wait) = app.lease.vote_guard() {
                        let vote = app.raft.metrics().borrow().vote;
                        tracing::info!(
                            event = "vote_refused",
                            candidate = from,
                            wait_ms = wait.as_millis() as u64 + 1,
                            "refused a vote: this node restarted less than a leader lease ago"
                        );
                        let refused: Result<VoteResponse<NodeId>, RaftError<NodeId>> =
                            Ok(VoteResponse::new(vote, None, false));
                        return json_reply(StatusCode::OK, &refused);
                    }
                    // This node may grant the vote: its own lease ends here.
                    app.lease.revoke();
                    json_reply(StatusCode::OK, &app.raft.vote(req).await)
                }
                Err(resp) => resp,
            },
            "snapshot" => match decode::<InstallSnapshotRequest<TypeConfig>>(&body) {
                Ok(req) => {
                    let beats = keep_hearing_the_leader(&app.raft, req.vote);
                    let resp = app.raft.install_snapshot(req).await;
                    beats.abort();
                    json_reply(StatusCode::OK, &resp)
                }
                Err(resp) => resp,
            },
            // A follower's strong reads: only the leader hands out read indexes.
            "read_index" => {
                let index = match super::api::ensure_leader(&app) {
                    Ok(()) => app.reads.read_index().await,
                    Err(e) => Err(e),
                };
                match index {
                    Ok(index) => json_reply(StatusCode::OK, &serde_json::json!({ "index": index })),
                    Err(e) => super::error_reply(&e, "/raft/read_index"),
                }
            }
            other => {
                let e = Error::BadRequest(format!("no Raft RPC called {other:?}"));
                let mut resp = json_reply(StatusCode::NOT_FOUND, &e.body());
                *resp.status_mut() = StatusCode::NOT_FOUND;
                resp
            }
        }
    })
}
