//! Strong (linearizable) reads on any node: one read-index round serves every read
//! waiting for it.
//!
//! A strong read needs a read index taken after the read arrived: the leader confirms
//! with a quorum that it still leads (a heartbeat round) and names its commit index;
//! the node answering the read first applies up to that index. On the leader that is
//! openraft's `ensure_linearizable`. A follower asks the leader for the index over the
//! Raft transport (`POST /raft/read_index`), waits until it has applied that far
//! itself, and answers from its own state machine, as etcd's followers do. No redirect,
//! and the read load stays spread over the nodes.
//!
//! openraft 0.9 runs one heartbeat round per `ensure_linearizable` call. The
//! [`ReadIndex`] task runs one round at a time for all reads that arrived before it
//! started: reads that come in while a round is under way wait for the next one (a
//! round that began before a read arrived cannot vouch for it). A follower's reads
//! share one request to the leader the same way.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::raft::network::Network;
use crate::raft::{NodeId, Raft};

type Waiter = oneshot::Sender<Result<u64, Error>>;

/// How long a follower waits for the leader's read index, and then to apply up to it.
const FOLLOWER_WAIT: Duration = Duration::from_secs(2);

/// Hands out read indexes for strong reads.
pub struct ReadIndex {
    tx: mpsc::UnboundedSender<Waiter>,
}

/// What a read-index round needs.
struct Ctx {
    id: NodeId,
    raft: Raft,
    network: Network,
}

impl ReadIndex {
    /// Starts the round task of node `id` (it ends when the `ReadIndex` is dropped).
    pub fn start(id: NodeId, raft: Raft, network: Network) -> ReadIndex {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(Ctx { id, raft, network }, rx));
        ReadIndex { tx }
    }

    /// Returns, once this node has applied it, the read index of a round that started
    /// after this call: a read of this node's state machine now is linearizable.
    pub async fn linearize(&self) -> Result<u64, Error> {
        let (tx, rx) = oneshot::channel();
        let gone = || Error::Unavailable("the node is shutting down".into());
        self.tx.send(tx).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

async fn run(ctx: Ctx, mut rx: mpsc::UnboundedReceiver<Waiter>) {
    while let Some(first) = rx.recv().await {
        let mut waiters = vec![first];
        while let Ok(w) = rx.try_recv() {
            waiters.push(w);
        }
        let result = round(&ctx).await;
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }
}

/// One read-index round, on the leader or through it.
async fn round(ctx: &Ctx) -> Result<u64, Error> {
    let (leader, addr) = {
        let m = ctx.raft.metrics();
        let m = m.borrow();
        let addr = m
            .current_leader
            .and_then(|l| m.membership_config.membership().get_node(&l).map(|n| n.addr.clone()));
        (m.current_leader, addr)
    };
    match (leader, addr) {
        (Some(l), _) if l == ctx.id => leader_round(&ctx.raft).await,
        (Some(l), Some(addr)) => {
            let index = ctx.network.read_index(l, &addr, FOLLOWER_WAIT).await.map_err(|e| {
                Error::Unavailable(format!("strong read: cannot get a read index: {e}"))
            })?;
            ctx.raft
                .wait(Some(FOLLOWER_WAIT))
                .applied_index_at_least(Some(index), "strong read")
                .await
                .map_err(|_| {
                    Error::Unavailable(format!(
                        "strong read: node {} has not applied the read index {index} within {} ms",
                        ctx.id,
                        FOLLOWER_WAIT.as_millis()
                    ))
                })?;
            Ok(index)
        }
        _ => Err(Error::NoLeader),
    }
}

/// The leader's round: leadership confirmed by a quorum, then applied up to the commit
/// index of that moment, which it returns.
async fn leader_round(raft: &Raft) -> Result<u64, Error> {
    use openraft::error::{CheckIsLeaderError, RaftError};
    match raft.ensure_linearizable().await {
        Ok(read_log_id) => Ok(read_log_id.map_or(0, |l| l.index)),
        Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => Err(f.into()),
        Err(RaftError::APIError(e)) => {
            Err(Error::Unavailable(format!("cannot confirm leadership for a strong read: {e}")))
        }
        Err(RaftError::Fatal(e)) => Err(Error::Unavailable(format!("raft stopped: {e}"))),
    }
}
