//! Proposing writes: group commit in front of openraft.
//!
//! openraft 0.9 turns every `client_write` into its own log entry, and RaftCore waits
//! for that entry's fsync before it handles its next message, so one entry per client
//! write caps the leader at one write per fsync however many clients wait. The
//! [`Batcher`] sits in front: item writes queue here, and as long as fewer than
//! `raft.max_batches_in_flight` entries are proposed and not yet applied, everything
//! queued (up to `raft.max_batch_writes` writes, about [`MAX_BATCH_BYTES`]) leaves as one
//! [`Command::Batch`] entry: one fsync and one replication round for all of them. A
//! lone write on an idle leader is proposed at once, as a plain command.
//!
//! Every write of a batch gets the entry's log index as its version. A batch never
//! holds two writes to the same item (the second one starts the next batch), so the
//! versions of one item still increase strictly and name exactly one write each.
//! Table commands are never batched ([`propose`]).
//!
//! # What a client is told when the answer is lost
//!
//! Once an entry is proposed it may be committed, even if this node never learns so:
//! an answer lost after proposing is [`Error::OutcomeUnknown`] (504), never
//! `Unavailable` (503), which tells clients "not applied, resend". That covers a reply
//! channel dropped at shutdown and openraft's `ForwardToLeader` for a proposed entry
//! (sent when this node lost leadership and a new leader's log replaced the entry
//! here, but another node may still hold it and commit it later). Leadership is
//! checked right before proposing ([`check_leader`]), so a write that reaches a
//! follower gets its 307 without being proposed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use prometheus::Histogram;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::config::RaftConfig;
use crate::error::Error;
use crate::raft::{Applied, Command, CommandResponse, NodeId, Raft};

/// A batch is closed once its writes' request bodies add up to this many bytes (a
/// single write may be larger and then travels alone).
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

type ClientWriteError =
    openraft::error::ClientWriteError<crate::raft::NodeId, crate::raft::NodeAddr>;

/// What a proposal's client is told.
pub type WriteResult = Result<Applied, Error>;

/// One queued item write.
struct Queued {
    cmd: Command,
    /// The item's storage key: no two writes of a batch share one.
    key: Vec<u8>,
    /// Size estimate (the request body), for the batch byte limit.
    size: usize,
    reply: oneshot::Sender<WriteResult>,
}

/// The front of the write path; cheap to share.
pub struct Batcher {
    tx: mpsc::UnboundedSender<Queued>,
    raft: Raft,
    timeout: Duration,
}

impl Batcher {
    /// Starts the batching task for `raft` (it ends when the `Batcher` is dropped).
    /// `sizes` observes the number of writes of every entry proposed.
    pub fn start(raft: Raft, config: &RaftConfig, sizes: Histogram) -> Batcher {
        let (tx, rx) = mpsc::unbounded_channel();
        let timeout = Duration::from_millis(config.client_write_timeout_ms);
        let task = BatchTask {
            rx,
            raft: raft.clone(),
            in_flight: Arc::new(Semaphore::new(config.max_batches_in_flight)),
            max_writes: config.max_batch_writes,
            timeout,
            held: None,
            sizes,
        };
        tokio::spawn(task.run());
        Batcher { tx, raft, timeout }
    }

    /// Proposes an item write (`PutItem` / `DeleteItem`) of the item stored under `key`
    /// and waits until it is applied here. `size` estimates its bytes.
    pub async fn write(&self, cmd: Command, key: Vec<u8>, size: usize) -> WriteResult {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Queued { cmd, key, size, reply }).is_err() {
            return Err(Error::Unavailable("the node is shutting down".into()));
        }
        // Waiting for a slot counts too: the client hears within the timeout either way.
        match tokio::time::timeout(self.timeout, rx).await {
            Err(_) => Err(Error::WriteTimeout(self.timeout.as_millis() as u64)),
            // The batch task dropped the reply: it may have proposed the write.
            Ok(r) => r.unwrap_or_else(|_| Err(lost_answer())),
        }
    }

    /// Proposes one command as its own entry, bypassing the batch queue (table
    /// commands), and waits until it is applied here.
    pub async fn propose(&self, cmd: Command) -> WriteResult {
        propose(&self.raft, cmd, self.timeout).await
    }
}

impl Batcher {
    /// Proposes item writes (`PutItem` / `DeleteItem`, distinct keys) as ONE entry,
    /// bypassing the batch queue, so they commit together or not at all (DynamoDB's
    /// BatchWriteItem); waits until it is applied here. One result per write, in order.
    pub async fn propose_all(&self, cmds: Vec<Command>) -> Result<Vec<WriteResult>, Error> {
        let n = cmds.len();
        let rx = self.raft.client_write_ff(Command::Batch(cmds)).await.map_err(stopped)?;
        match wait_applied(rx, self.timeout).await? {
            CommandResponse::Batch(rs) if rs.len() == n => {
                Ok(rs.into_iter().map(applied).collect())
            }
            _ => Err(Error::Internal("batch result does not match the batch".into())),
        }
    }
}

/// Proposes `cmd` as one entry and waits (at most `timeout`) until it is applied here.
pub async fn propose(raft: &Raft, cmd: Command, timeout: Duration) -> WriteResult {
    check_leader(raft, |_| None)?;
    let rx = raft.client_write_ff(cmd).await.map_err(stopped)?;
    applied(wait_applied(rx, timeout).await?)
}

/// `Ok` if this node leads (by openraft's metrics); otherwise the redirect to the
/// leader (its address from the membership, else from `addr_of`), or `NoLeader`.
pub fn check_leader(raft: &Raft, addr_of: impl Fn(NodeId) -> Option<String>) -> Result<(), Error> {
    let (me, leader, addr) = {
        let m = raft.metrics();
        let m = m.borrow();
        let addr = m
            .current_leader
            .and_then(|l| m.membership_config.membership().get_node(&l).map(|n| n.addr.clone()));
        (m.id, m.current_leader, addr)
    };
    match leader {
        Some(l) if l == me => Ok(()),
        Some(l) => match addr.or_else(|| addr_of(l)) {
            Some(leader_addr) => Err(Error::NotLeader { leader_id: l, leader_addr }),
            None => Err(Error::NoLeader),
        },
        None => Err(Error::NoLeader),
    }
}

/// The answer to a proposed write whose result will never arrive.
fn lost_answer() -> Error {
    Error::OutcomeUnknown("the node stopped waiting for it (shutting down)".into())
}

/// Waits (at most `timeout`) for the apply result of a proposed entry.
async fn wait_applied(
    rx: oneshot::Receiver<
        Result<openraft::raft::ClientWriteResponse<crate::raft::TypeConfig>, ClientWriteError>,
    >,
    timeout: Duration,
) -> Result<CommandResponse, Error> {
    match tokio::time::timeout(timeout, rx).await {
        Err(_) => Err(Error::WriteTimeout(timeout.as_millis() as u64)),
        Ok(Err(_)) => Err(lost_answer()),
        Ok(Ok(Err(e))) => Err(write_error(e)),
        Ok(Ok(Ok(resp))) => Ok(resp.data),
    }
}

fn stopped(e: openraft::error::Fatal<crate::raft::NodeId>) -> Error {
    Error::Unavailable(format!("raft stopped: {e}"))
}

/// What a client is told for one command's apply result.
fn applied(r: CommandResponse) -> WriteResult {
    match r {
        CommandResponse::Applied(a) => Ok(a),
        CommandResponse::Rejected(r) => Err(r.into()),
        CommandResponse::None | CommandResponse::Batch(_) => {
            Err(Error::Internal("write produced no result of its own".into()))
        }
    }
}

/// What a client is told when openraft answers a proposed write with an error.
fn write_error(e: ClientWriteError) -> Error {
    match e {
        // Leadership was checked just before proposing: this node lost it with the
        // entry in its log. Another node may still commit it (see the module docs).
        ClientWriteError::ForwardToLeader(_) => {
            Error::OutcomeUnknown("this node lost leadership while the write was in its log".into())
        }
        // Membership changes only: refused before anything was proposed.
        e @ ClientWriteError::ChangeMembershipError(_) => Error::Unavailable(e.to_string()),
    }
}

struct BatchTask {
    rx: mpsc::UnboundedReceiver<Queued>,
    raft: Raft,
    in_flight: Arc<Semaphore>,
    max_writes: usize,
    timeout: Duration,
    /// A write that would have repeated a key of the batch before: it opens the next.
    held: Option<Queued>,
    sizes: Histogram,
}

impl BatchTask {
    async fn run(mut self) {
        loop {
            let first = match self.held.take() {
                Some(q) => q,
                None => match self.rx.recv().await {
                    Some(q) => q,
                    None => return,
                },
            };
            // Wait for a slot; writes arriving meanwhile join this batch.
            let permit = self
                .in_flight
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let batch = self.collect(first);
            self.submit(batch, permit).await;
        }
    }

    /// `first` and whatever is queued behind it, up to the limits, keys distinct: the
    /// commands in queue order and who to answer for each.
    fn collect(&mut self, first: Queued) -> (Vec<Command>, Vec<oneshot::Sender<WriteResult>>) {
        let mut bytes = 0;
        let mut keys = HashSet::new();
        let (mut cmds, mut replies) = (Vec::new(), Vec::new());
        let mut next = Some(first);
        while let Some(q) = next.take() {
            if keys.contains(&q.key) {
                self.held = Some(q);
                break;
            }
            keys.insert(q.key);
            bytes += q.size;
            cmds.push(q.cmd);
            replies.push(q.reply);
            if cmds.len() < self.max_writes && bytes < MAX_BATCH_BYTES {
                next = self.rx.try_recv().ok();
            }
        }
        (cmds, replies)
    }

    /// Proposes the commands as one entry (in queue order, so entries keep arrival
    /// order) and hands each writer its own result once it is applied.
    async fn submit(
        &self,
        (mut cmds, replies): (Vec<Command>, Vec<oneshot::Sender<WriteResult>>),
        permit: OwnedSemaphorePermit,
    ) {
        let n = cmds.len();
        self.sizes.observe(n as f64);
        let cmd = if n == 1 { cmds.pop().expect("one command") } else { Command::Batch(cmds) };
        if let Err(e) = check_leader(&self.raft, |_| None) {
            return answer(replies, all(n, e));
        }
        let rx = match self.raft.client_write_ff(cmd).await {
            Ok(rx) => rx,
            Err(e) => return answer(replies, all(n, stopped(e))),
        };
        let timeout = self.timeout;
        tokio::spawn(async move {
            let results: Vec<WriteResult> = match wait_applied(rx, timeout).await {
                Err(e) => all(n, e),
                Ok(CommandResponse::Batch(rs)) if rs.len() == n => {
                    rs.into_iter().map(applied).collect()
                }
                Ok(r) if n == 1 => vec![applied(r)],
                Ok(_) => all(n, Error::Internal("batch result does not match the batch".into())),
            };
            drop(permit);
            answer(replies, results);
        });
    }
}

fn answer(replies: Vec<oneshot::Sender<WriteResult>>, results: Vec<WriteResult>) {
    for (reply, r) in replies.into_iter().zip(results) {
        let _ = reply.send(r);
    }
}

fn all(n: usize, e: Error) -> Vec<WriteResult> {
    vec![Err(e); n]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A proposed write whose answer channel is dropped (openraft shutting down after
    /// the drain timeout) may be committed: it is answered as indeterminate (504
    /// `outcome_unknown`), which no client resends, never as 503 "not applied".
    #[tokio::test]
    async fn a_dropped_answer_after_proposing_is_an_unknown_outcome() {
        let (tx, rx) = oneshot::channel();
        drop(tx);
        let e = wait_applied(rx, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(e, Error::OutcomeUnknown(_)), "{e:?}");
        assert_eq!(e.status(), warp::http::StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(e.code(), "outcome_unknown");
        assert!(!e.is_retryable());
    }

    /// openraft's ForwardToLeader for an entry already in the log (the node lost
    /// leadership and the entry was replaced here) is indeterminate too: the entry may
    /// survive on another node and commit there.
    #[test]
    fn forward_to_leader_after_proposing_is_an_unknown_outcome() {
        let e = write_error(ClientWriteError::ForwardToLeader(openraft::error::ForwardToLeader {
            leader_id: Some(2),
            leader_node: Some(crate::raft::NodeAddr { addr: "127.0.0.1:1".into() }),
        }));
        assert!(matches!(e, Error::OutcomeUnknown(_)), "{e:?}");
        assert!(!e.is_retryable());
    }

    /// A timeout is indeterminate as well, and only refusals before proposing are 503.
    #[test]
    fn only_refusals_before_proposing_are_retryable() {
        assert!(!Error::WriteTimeout(5000).is_retryable());
        assert!(Error::Unavailable("shutting down".into()).is_retryable());
        assert!(Error::NoLeader.is_retryable());
    }
}
