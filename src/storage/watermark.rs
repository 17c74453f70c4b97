//! What the database had made durable, recorded beside it: `<node dir>/durable.json`.
//!
//! fjall reads its newest journal up to the first batch it cannot read and treats the
//! rest as a tail torn by a crash. A journal cut short (or a sync the disk did not
//! honour) looks exactly like that, so the database opens without an error, having
//! lost writes it had synced. For Raft the worst of those is the vote: a node that
//! forgets it can vote twice in one term, and two leaders can be elected.
//!
//! So every time the log store syncs a new vote or a purge point, it also records both
//! in this small file (written to a temporary name, fsynced, renamed, the directory
//! fsynced). At start the database must hold a vote at least as new and a purge point
//! at least as far as the file says; if not, the node refuses to start (exit 65),
//! naming the newest journal and the remedy. Both only ever grow, so the check cannot
//! refuse a database that lost nothing.
//!
//! What it does not catch: entries appended after the last vote or purge and then lost
//! (they are caught up from the leader like a crashed node's unsynced tail).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::raft::Vote;

/// The record's file name in the node's directory.
pub const FILE: &str = "durable.json";

/// The vote and the purge point the database had made durable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    pub vote: Option<Vote>,
    /// The index of the last purged log entry.
    pub purged: Option<u64>,
}

impl Watermark {
    /// Why `held` (what the database holds now) is older than this record, if it is.
    pub fn lost(&self, held: &Watermark) -> Option<String> {
        let mut lost = Vec::new();
        if let Some(v) = &self.vote {
            let newer_or_same = held.vote.as_ref().is_some_and(|h| h >= v);
            if !newer_or_same {
                lost.push(format!("the vote {} (it holds {})", show(&self.vote), show(&held.vote)));
            }
        }
        if let Some(p) = self.purged {
            if held.purged.is_none_or(|h| h < p) {
                let held = held.purged.map_or("none".to_string(), |h| h.to_string());
                lost.push(format!("the log purged up to {p} (it holds {held})"));
            }
        }
        (!lost.is_empty()).then(|| lost.join(" and "))
    }
}

fn show(v: &Option<Vote>) -> String {
    v.as_ref().map_or("none".to_string(), |v| v.to_string())
}

/// Where node directory `dir` keeps the record.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// The record in `dir`; `None` when there is none (a new node, or data from before
/// the record existed).
pub fn read(dir: &Path) -> std::io::Result<Option<Watermark>> {
    match std::fs::read(path(dir)) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces the record in `dir`, durably.
pub fn write(dir: &Path, w: &Watermark) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(w).expect("a watermark serializes");
    super::disk::write_durably(&path(dir), &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(term: u64, node: u64, committed: bool) -> Option<Vote> {
        Some(if committed { Vote::new_committed(term, node) } else { Vote::new(term, node) })
    }

    #[test]
    fn only_an_older_vote_or_purge_point_is_a_loss() {
        let rec = Watermark { vote: vote(5, 1, false), purged: Some(100) };
        let same = rec.clone();
        assert_eq!(rec.lost(&same), None);
        let newer = Watermark { vote: vote(6, 2, true), purged: Some(200) };
        assert_eq!(rec.lost(&newer), None);
        let committed = Watermark { vote: vote(5, 1, true), purged: Some(100) };
        assert_eq!(rec.lost(&committed), None, "the same vote, since committed");

        let older_vote = Watermark { vote: vote(4, 1, true), purged: Some(100) };
        assert!(rec.lost(&older_vote).unwrap().contains("the vote"));
        // openraft orders votes of one term by node id (more than one leader may be
        // elected in a term): a vote for a lower id than recorded was never saved after.
        let lower = Watermark { vote: vote(5, 0, false), purged: Some(100) };
        assert!(rec.lost(&lower).unwrap().contains("the vote"), "an older vote in term 5");
        let forgot = Watermark { vote: None, purged: None };
        let why = rec.lost(&forgot).unwrap();
        assert!(why.contains("the vote") && why.contains("purged up to 100"), "{why}");
        let less_purged = Watermark { vote: vote(5, 1, false), purged: Some(99) };
        assert!(rec.lost(&less_purged).unwrap().contains("purged up to 100 (it holds 99)"));
        assert_eq!(Watermark::default().lost(&forgot), None, "nothing recorded");
    }

    #[test]
    fn the_record_round_trips_and_a_missing_one_is_none() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read(d.path()).unwrap(), None);
        let w = Watermark { vote: vote(3, 0, true), purged: Some(42) };
        write(d.path(), &w).unwrap();
        assert_eq!(read(d.path()).unwrap(), Some(w));
        assert!(!d.path().join(format!("{FILE}.tmp")).exists());
    }
}
