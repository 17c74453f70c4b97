//! Strong (linearizable) reads on any node: one read-index round serves every read
//! waiting for it.
//!
//! A strong read needs a read index taken after the read arrived: the leader confirms
//! with a quorum that it still leads (a heartbeat round, openraft's `get_read_log_id`)
//! and names its commit index; the node answering the read first applies up to that
//! index. A follower asks the leader for the index over the Raft transport
//! (`POST /raft/read_index`), waits until it has applied that far itself, and answers
//! from its own state machine, as etcd's followers do. No redirect, and the read load
//! stays spread over the nodes.
//!
//! A leader holding its lease (`raft::lease`: a quorum acknowledged it within the last
//! half election timeout) skips the heartbeat round: its commit index is the read index.
//!
//! Otherwise openraft 0.9 runs one heartbeat round per call. The [`ReadIndex`] task starts a
//! round for all the reads that arrived before it starts (at most [`ROUNDS_IN_FLIGHT`]
//! rounds at once): reads that come in while a round is under way wait for a later one
//! (a round that began before a read arrived cannot vouch for it). A follower's reads
//! share one request to the leader the same way.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::error::Error;
use crate::raft::lease::Lease;
use crate::raft::network::Network;
use crate::raft::{NodeId, Raft};
use crate::storage::Progress;

type Waiter = oneshot::Sender<Result<u64, Error>>;

/// How long a follower waits for the leader's answer to a read-index request.
const INDEX_WAIT: Duration = Duration::from_secs(2);
/// How long a node waits to apply up to a read index: as long as a session read waits,
/// since a node may be applying late on purpose (`[simulation] apply_delay_ms`).
const APPLY_WAIT: Duration = super::api::SESSION_WAIT;
/// Rounds under way at once. A read waits for the next round to start, so with rounds
/// overlapping it waits about one round, not one and a half.
const ROUNDS_IN_FLIGHT: usize = 2;

/// Hands out read indexes for strong reads.
pub struct ReadIndex {
    id: NodeId,
    tx: mpsc::UnboundedSender<Waiter>,
    raft: Raft,
    progress: Arc<Progress>,
    lease: Arc<Lease>,
}

/// What a read-index round needs.
struct Ctx {
    id: NodeId,
    raft: Raft,
    network: Network,
    progress: Arc<Progress>,
}

impl ReadIndex {
    /// Starts the round task of node `id` (it ends when the `ReadIndex` is dropped).
    pub fn start(
        id: NodeId,
        raft: Raft,
        network: Network,
        progress: Arc<Progress>,
        lease: Arc<Lease>,
    ) -> ReadIndex {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(Ctx { id, raft: raft.clone(), network, progress: progress.clone() }, rx));
        ReadIndex { id, tx, raft, progress, lease }
    }

    /// A read index valid for reads that arrived before this call (not yet applied
    /// here): on a leader holding its lease, its commit index; otherwise that of a
    /// read-index round that starts after this call.
    pub async fn read_index(&self) -> Result<u64, Error> {
        if let Some(index) = self.lease_index() {
            return Ok(index);
        }
        let (tx, rx) = oneshot::channel();
        let gone = || Error::Unavailable("the node is shutting down".into());
        self.tx.send(tx).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// The leader's commit index if this node leads, holds its lease (`raft::lease`) and
    /// has committed an entry of its own term covering its log at start-up (so every
    /// acknowledged write is below it, see `raft::lease::read_index`).
    fn lease_index(&self) -> Option<u64> {
        if !self.lease.enabled() {
            return None;
        }
        let (vote, membership) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            (m.vote, m.membership_config.clone())
        };
        let membership = membership.membership();
        if vote.leader_id().voted_for() != Some(self.id) || membership.get_joint_config().len() != 1
        {
            return None;
        }
        let index = crate::raft::lease::read_index(
            self.progress.committed_log(),
            vote.leader_id().get_term(),
            self.progress.log_at_start(),
        )?;
        if !self.lease.holds(self.id, &vote, membership.voter_ids()) {
            return None;
        }
        self.progress.metrics.lease_reads.inc();
        Some(index)
    }

    /// Returns once this node has applied the read index of a round that started after
    /// this call: a read of this node's state machine now is linearizable.
    pub async fn linearize(&self) -> Result<u64, Error> {
        let index = self.read_index().await?;
        // Most reads find the index applied already: no need for openraft's waiter,
        // which copies the whole metrics value.
        if self.progress.applied().is_some_and(|a| a >= index) {
            return Ok(index);
        }
        self.raft
            .wait(Some(APPLY_WAIT))
            .applied_index_at_least(Some(index), "strong read")
            .await
            .map_err(|_| {
            Error::Unavailable(format!(
                "strong read: the read index {index} was not applied here within {} ms",
                APPLY_WAIT.as_millis()
            ))
        })?;
        Ok(index)
    }
}

async fn run(ctx: Ctx, mut rx: mpsc::UnboundedReceiver<Waiter>) {
    let ctx = Arc::new(ctx);
    let in_flight = Arc::new(Semaphore::new(ROUNDS_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let permit = in_flight.clone().acquire_owned().await.expect("never closed");
        // Everyone queued now arrived before the round below starts.
        let mut waiters = vec![first];
        while let Ok(w) = rx.try_recv() {
            waiters.push(w);
        }
        ctx.progress.metrics.read_index_batch_size.observe(waiters.len() as f64);
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let result = round(&ctx).await;
            drop(permit);
            for w in waiters {
                let _ = w.send(result.clone());
            }
        });
    }
}

/// One read-index round, on the leader or through it: the index a read must see.
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
        (Some(l), Some(addr)) => ctx.network.read_index(l, &addr, INDEX_WAIT).await.map_err(|e| {
            Error::Unavailable(format!("cannot serve a strong read: no read index from {e}"))
        }),
        _ => Err(Error::NoLeader),
    }
}

/// The leader's round: leadership confirmed by a quorum; the commit index of that
/// moment (it need not be applied here: the reading node applies it).
async fn leader_round(raft: &Raft) -> Result<u64, Error> {
    use openraft::error::{CheckIsLeaderError, RaftError};
    match raft.get_read_log_id().await {
        Ok((read_log_id, _)) => Ok(read_log_id.map_or(0, |l| l.index)),
        Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => Err(f.into()),
        Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(q))) => {
            let got: Vec<String> = q.got.iter().map(|id| format!("node {id}")).collect();
            Err(Error::Unavailable(format!(
                "this node could not confirm that it still leads: only {} answered in time, not \
                 a majority, so it cannot serve a strong read (is it cut off from the others?)",
                if got.is_empty() { "itself".to_string() } else { got.join(", ") }
            )))
        }
        Err(RaftError::Fatal(e)) => {
            Err(Error::Unavailable(format!("this node's Raft has stopped: {e}")))
        }
    }
}
