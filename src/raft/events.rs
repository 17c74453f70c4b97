//! Named Raft events in the log, derived from openraft's metrics.
//!
//! openraft publishes its state (role, term, leader, membership, purged log) on a watch
//! channel. A task compares each new value with the previous one and logs one event per
//! change, with fields, so `raft-nosql logs --timeline` can tell the cluster's story:
//!
//! | event                | fields            | when                                    |
//! |----------------------|-------------------|-----------------------------------------|
//! | `election_started`   | term              | this node became candidate in a new term|
//! | `became_candidate`   | term              | same moment, as a role change           |
//! | `became_leader`      | term              | this node won an election               |
//! | `became_follower`    | term, leader      | this node follows (again)               |
//! | `leader_changed`     | old, new, term    | the leader this node knows changed      |
//! | `term_changed`       | old, new          | the term moved on                       |
//! | `membership_changed` | index, voters, learners, joint | a new membership config was seen |
//! | `log_purged`         | upto              | log entries up to `upto` were deleted   |
//!
//! Shortcuts taken: a watch channel keeps only the newest value, so a very short-lived
//! state can be skipped; an election won before the candidate state was observed is
//! still reported as `election_started` followed by `became_leader`.

use openraft::ServerState;

use super::{Raft, RaftMetrics};

/// What the watcher remembers between two metrics values.
#[derive(Debug, Default, Clone, PartialEq)]
struct Seen {
    state: Option<ServerState>,
    term: u64,
    leader: Option<u64>,
    membership_index: Option<u64>,
    purged: Option<u64>,
    election_term: Option<u64>,
}

/// Logs one event per change between `prev` and `m`; returns the new memory.
fn diff(prev: &Seen, m: &RaftMetrics) -> Seen {
    let mut next = Seen {
        state: Some(m.state),
        term: m.current_term,
        leader: m.current_leader,
        membership_index: m.membership_config.log_id().map(|l| l.index),
        purged: m.purged.map(|l| l.index),
        election_term: prev.election_term,
    };
    let term = m.current_term;
    if term != prev.term && prev.state.is_some() {
        tracing::info!(event = "term_changed", old = prev.term, new = term, "term changed");
    }
    if prev.state != Some(m.state) {
        match m.state {
            ServerState::Candidate => {
                tracing::info!(event = "election_started", term, "election started");
                tracing::info!(event = "became_candidate", term, "became candidate");
                next.election_term = Some(term);
            }
            ServerState::Leader => {
                if next.election_term != Some(term) && prev.state.is_some() {
                    tracing::info!(event = "election_started", term, "election started");
                }
                tracing::info!(event = "became_leader", term, "became leader");
            }
            ServerState::Follower => {
                tracing::info!(
                    event = "became_follower",
                    term,
                    leader = m.current_leader,
                    "became follower"
                );
            }
            ServerState::Learner | ServerState::Shutdown => {}
        }
    }
    if prev.leader != m.current_leader && (prev.state.is_some() || m.current_leader.is_some()) {
        tracing::info!(
            event = "leader_changed",
            old = prev.leader,
            new = m.current_leader,
            term,
            "leader changed"
        );
    }
    if next.membership_index != prev.membership_index && next.membership_index.is_some() {
        let membership = m.membership_config.membership();
        let configs: Vec<Vec<u64>> =
            membership.get_joint_config().iter().map(|c| c.iter().copied().collect()).collect();
        let voters: Vec<u64> = configs.last().cloned().unwrap_or_default();
        let learners: Vec<u64> = membership.learner_ids().collect();
        let joint = (configs.len() > 1).then_some(configs);
        tracing::info!(
            event = "membership_changed",
            index = next.membership_index,
            voters = ?voters,
            learners = ?learners,
            joint = ?joint,
            "membership changed"
        );
    }
    if next.purged != prev.purged {
        if let Some(upto) = next.purged {
            tracing::info!(event = "log_purged", upto, "log purged");
        }
    }
    next
}

/// Spawns the task that logs Raft events until Raft shuts down.
pub fn spawn_watcher(raft: &Raft) -> tokio::task::JoinHandle<()> {
    let mut rx = raft.metrics();
    tokio::spawn(async move {
        let mut seen = Seen::default();
        loop {
            let m = rx.borrow_and_update().clone();
            seen = diff(&seen, &m);
            if rx.changed().await.is_err() {
                return;
            }
        }
    })
}
