//! The leader lease: strong reads without a heartbeat round, while recent
//! acknowledgements from a quorum prove that no other leader can exist yet.
//!
//! The argument, for a leader `L` holding vote `V` (term `T`):
//!
//! 1. `L` sent an AppendEntries with `V` at time `s`, and the follower accepted `V`
//!    (answered Success, PartialSuccess or Conflict; not HigherVote). The follower
//!    accepted it at a time `r ≥ s` and, until `r + election_timeout_max`, refuses to
//!    vote for anyone else (openraft's own leader lease on the voter side).
//! 2. A follower that restarts forgets that lease. So every node refuses all vote
//!    requests for [`Lease::duration`] after it starts ([`Lease::vote_guard`]): a restart
//!    after `r` cannot cut the refusal short of `r + duration`. A restarted node's own
//!    election timer starts at zero and is at least `election_timeout_min`, more than
//!    the duration.
//! 3. `L` itself could grant a vote. Every vote request `L` receives revokes its lease
//!    first ([`Lease::revoke`]); only acknowledgements of messages sent later count
//!    again.
//!
//! So when a quorum (counting `L`) acknowledged `V` with messages sent after
//! `now - duration`, no other node can have become leader by `now`: a new leader needs
//! votes from a quorum, and every quorum contains one of those nodes. If `L` has also
//! committed an entry of term `T`, its commit index is then at least the index of every
//! write acknowledged before `now`: the read index, with no network round.
//!
//! # After a restart
//!
//! The committed index openraft hands to `save_committed` is stored without an fsync
//! (losing it costs only re-applying). After an OS crash the stored value can be older
//! than writes this leader already acknowledged, and openraft 0.9 restores a leader
//! whose vote is committed as leader *in the same term*, so "committed an entry of my
//! term" can hold for that stale index. A read must therefore also wait until the
//! commit index covers every entry the log held when the process started
//! ([`read_index`]): an acknowledged write was fsynced in the leader's log before it
//! was replicated (and entries of earlier leaders are in a new leader's log), so it
//! is at or below that index. A fresh commit computed in this process may still pass
//! through indexes below it (a follower matched in bounded steps), which is why "a
//! commit since start" alone would not do. This costs nothing in steady state: the
//! first commit after start-up normally covers the whole log at once.
//!
//! The vote guard of point 2 only matters for a node that may have acknowledged a
//! leader: one that has a stored vote. A node starting with no vote (a fresh data
//! directory) never accepted an AppendEntries, so it votes at once; that keeps the
//! first election of a new cluster from waiting out the guard.
//!
//! The duration is half the minimum election timeout, which leaves a wide margin for
//! clocks that run at slightly different rates on different machines (on one machine
//! every process reads the same monotonic clock). A paused process (SIGSTOP) is safe:
//! the monotonic clock keeps running while it is stopped.
//!
//! With `[raft] lease_reads = false` none of this runs: every strong read waits for a
//! read-index round (a heartbeat to a quorum), and votes are never refused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{NodeId, Vote};

/// A leader's lease on strong reads. One per node, shared by the transport (which
/// records acknowledgements), the vote route (revocation, start-up guard) and strong
/// reads (the check).
#[derive(Debug)]
pub struct Lease {
    enabled: bool,
    duration: Duration,
    /// How long after start vote requests are refused: `duration`, or zero for a node
    /// that started without a vote.
    guard: Duration,
    started: Instant,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The vote the acknowledgements below are for.
    vote: Option<Vote>,
    /// Per peer: when the latest acknowledged AppendEntries was sent.
    acks: HashMap<NodeId, Instant>,
    /// Acknowledgements of messages sent at or before this do not count.
    revoked_at: Option<Instant>,
}

impl Lease {
    /// A lease of `duration` (see the module docs); `enabled = false` never holds one.
    /// `had_vote`: whether this node started with a stored vote (only then may it have
    /// acknowledged a leader before it started, and refuse votes for a while).
    pub fn new(enabled: bool, duration: Duration, had_vote: bool) -> Lease {
        let guard = if had_vote { duration } else { Duration::ZERO };
        Lease { enabled, duration, guard, started: Instant::now(), state: Mutex::default() }
    }

    /// Whether lease reads are on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// How long an acknowledgement vouches for the leader.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// `peer` accepted `vote` in an AppendEntries sent at `sent`.
    pub fn acked(&self, peer: NodeId, vote: &Vote, sent: Instant) {
        if !self.enabled || !vote.is_committed() {
            return;
        }
        let mut s = self.state.lock().expect("lease lock");
        if s.revoked_at.is_some_and(|r| sent <= r) {
            return;
        }
        if s.vote.as_ref() != Some(vote) {
            s.vote = Some(*vote);
            s.acks.clear();
        }
        let t = s.acks.entry(peer).or_insert(sent);
        *t = (*t).max(sent);
    }

    /// This node is about to see a vote request: it may grant it, so no read may rely
    /// on acknowledgements of messages sent before now.
    pub fn revoke(&self) {
        let mut s = self.state.lock().expect("lease lock");
        s.revoked_at = Some(Instant::now());
        s.acks.clear();
    }

    /// `Err(wait)` while this node must refuse vote requests because it started less
    /// than a lease ago (it may have acknowledged a leader before it restarted).
    pub fn vote_guard(&self) -> Result<(), Duration> {
        if !self.enabled {
            return Ok(());
        }
        let age = self.started.elapsed();
        if age < self.guard {
            Err(self.guard - age)
        } else {
            Ok(())
        }
    }

    /// Whether this node, leader with `vote`, holds the lease now: `me` and enough of
    /// `voters` to make a quorum acknowledged `vote` within the last [`Self::duration`].
    pub fn holds(&self, me: NodeId, vote: &Vote, voters: impl IntoIterator<Item = NodeId>) -> bool {
        if !self.enabled || !vote.is_committed() {
            return false;
        }
        let now = Instant::now();
        let s = self.state.lock().expect("lease lock");
        if s.vote.as_ref() != Some(vote) {
            return false;
        }
        let (mut all, mut fresh) = (0, 0);
        for v in voters {
            all += 1;
            if v == me || s.acks.get(&v).is_some_and(|t| now.duration_since(*t) < self.duration) {
                fresh += 1;
            }
        }
        fresh > all / 2
    }
}

/// The read index a leader holding its lease may use without a network round: its
/// commit index `committed = (term, index)`, if that entry is of the leader's own
/// `term` and the index covers `log_at_start`, the last log index when this process
/// started (see "After a restart" above). `None`: use a read-index round.
pub fn read_index(
    committed: Option<(u64, u64)>,
    term: u64,
    log_at_start: Option<u64>,
) -> Option<u64> {
    let (committed_term, index) = committed?;
    (committed_term == term && Some(index) >= log_at_start).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(term: u64, node: NodeId) -> Vote {
        Vote::new_committed(term, node)
    }

    fn voters(ids: &[NodeId]) -> Vec<NodeId> {
        ids.to_vec()
    }

    #[test]
    fn a_quorum_of_recent_acks_holds_the_lease() {
        let lease = Lease::new(true, Duration::from_secs(60), true);
        let v = vote(3, 0);
        let all = voters(&[0, 1, 2]);
        assert!(!lease.holds(0, &v, all.clone()), "no acknowledgement yet");
        lease.acked(1, &v, Instant::now());
        assert!(lease.holds(0, &v, all.clone()), "leader and one follower are a quorum of 3");
        let five = voters(&[0, 1, 2, 3, 4]);
        assert!(!lease.holds(0, &v, five.clone()), "two of five are not a quorum");
        lease.acked(3, &v, Instant::now());
        assert!(lease.holds(0, &v, five.clone()));
    }

    #[test]
    fn old_acks_other_votes_and_uncommitted_votes_do_not_count() {
        let lease = Lease::new(true, Duration::from_millis(50), true);
        let all = voters(&[0, 1, 2]);
        let v = vote(3, 0);
        lease.acked(1, &v, Instant::now() - Duration::from_millis(60));
        assert!(!lease.holds(0, &v, all.clone()), "an acknowledgement older than the lease");
        lease.acked(1, &v, Instant::now());
        assert!(!lease.holds(0, &vote(4, 0), all.clone()), "acks were for term 3");
        let uncommitted = Vote::new(5, 0);
        lease.acked(2, &uncommitted, Instant::now());
        assert!(!lease.holds(0, &uncommitted, all.clone()), "a candidate holds no lease");
        assert!(
            lease.holds(0, &v, all.clone()),
            "an uncommitted vote's acknowledgements are ignored"
        );
    }

    #[test]
    fn a_vote_request_revokes_the_lease_until_newer_acks() {
        let lease = Lease::new(true, Duration::from_secs(60), true);
        let all = voters(&[0, 1, 2]);
        let v = vote(3, 0);
        let before = Instant::now();
        lease.acked(1, &v, before);
        assert!(lease.holds(0, &v, all.clone()));
        lease.revoke();
        assert!(!lease.holds(0, &v, all.clone()));
        lease.acked(2, &v, before);
        assert!(!lease.holds(0, &v, all.clone()), "sent before the revocation");
        lease.acked(2, &v, Instant::now());
        assert!(lease.holds(0, &v, all.clone()));
    }

    #[test]
    fn a_restarted_node_refuses_votes_for_one_lease_and_a_disabled_lease_never_holds() {
        let lease = Lease::new(true, Duration::from_secs(60), true);
        assert!(lease.vote_guard().is_err());
        assert!(Lease::new(true, Duration::ZERO, true).vote_guard().is_ok());
        let off = Lease::new(false, Duration::from_secs(60), true);
        assert!(off.vote_guard().is_ok());
        let v = vote(3, 0);
        off.acked(1, &v, Instant::now());
        assert!(!off.holds(0, &v, voters(&[0, 1, 2])));
    }

    /// A node that starts without a stored vote never acknowledged a leader: it votes
    /// at once, so a new cluster's first election is not held up.
    #[test]
    fn a_node_without_a_stored_vote_votes_at_once() {
        let lease = Lease::new(true, Duration::from_secs(60), false);
        assert!(lease.vote_guard().is_ok());
        assert_eq!(lease.duration(), Duration::from_secs(60), "its own lease is unchanged");
    }

    /// After a power loss the stored commit index (not fsynced) may be older than
    /// writes the leader acknowledged, in the leader's own term. No lease read may use
    /// it, nor a fresh commit below the log's end at start-up; one that covers the log
    /// as it was at start-up may.
    #[test]
    fn a_lease_read_needs_a_commit_covering_the_log_held_at_start() {
        let (term, log_at_start) = (7, Some(120));
        assert_eq!(read_index(Some((7, 100)), term, log_at_start), None, "stale stored index");
        assert_eq!(read_index(Some((7, 110)), term, log_at_start), None, "a partial commit");
        assert_eq!(read_index(Some((7, 120)), term, log_at_start), Some(120));
        assert_eq!(read_index(Some((7, 150)), term, log_at_start), Some(150));
        assert_eq!(read_index(Some((6, 150)), term, log_at_start), None, "an older term's");
        assert_eq!(read_index(None, term, log_at_start), None, "nothing committed");
        assert_eq!(read_index(Some((1, 1)), 1, None), Some(1), "a new node's first commit");
    }
}
