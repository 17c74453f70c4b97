//! Strong (linearizable) reads: one leadership check serves every read waiting for it.
//!
//! A strong read needs the leader to confirm, after the read arrived, that it is still
//! the leader (openraft's read index: a heartbeat round answered by a quorum), and then
//! to have applied up to the commit index it had at that moment. openraft 0.9 runs one
//! heartbeat round per `ensure_linearizable` call, so a round per read. The
//! [`ReadIndex`] task runs one check at a time for all reads that arrived before it
//! started: reads that come in while a check is under way wait for the next one (a
//! check that began before a read arrived cannot vouch for it).

use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::raft::Raft;

type Waiter = oneshot::Sender<Result<(), Error>>;

/// Hands out leadership checks for strong reads.
pub struct ReadIndex {
    tx: mpsc::UnboundedSender<Waiter>,
}

impl ReadIndex {
    /// Starts the check task for `raft` (it ends when the `ReadIndex` is dropped).
    pub fn start(raft: Raft) -> ReadIndex {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx));
        ReadIndex { tx }
    }

    /// Returns once a leadership check that started after this call has succeeded and
    /// this node has applied everything committed when it started.
    pub async fn linearize(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        let gone = || Error::Unavailable("the node is shutting down".into());
        self.tx.send(tx).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<Waiter>) {
    while let Some(first) = rx.recv().await {
        let mut waiters = vec![first];
        while let Ok(w) = rx.try_recv() {
            waiters.push(w);
        }
        let result = check(&raft).await;
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }
}

/// One read-index round: leadership confirmed by a quorum, then applied up to the
/// commit index of that moment.
async fn check(raft: &Raft) -> Result<(), Error> {
    use openraft::error::{CheckIsLeaderError, RaftError};
    match raft.ensure_linearizable().await {
        Ok(_) => Ok(()),
        Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
            match (f.leader_id, f.leader_node) {
                (Some(id), Some(node)) => {
                    Err(Error::NotLeader { leader_id: id, leader_addr: node.addr })
                }
                _ => Err(Error::NoLeader),
            }
        }
        Err(RaftError::APIError(e)) => {
            Err(Error::Unavailable(format!("cannot confirm leadership for a strong read: {e}")))
        }
        Err(RaftError::Fatal(e)) => Err(Error::Unavailable(format!("raft stopped: {e}"))),
    }
}
