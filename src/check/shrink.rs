//! Shrinking a non-linearizable key history to a small witness.
//!
//! Two phases, both *sound*: every set they produce is itself non-linearizable, and its
//! non-linearizability implies that of the original history, so the witness is a real
//! explanation and not an artefact of the shrinking.
//!
//! 1. **Shortest failing prefix.** Linearizability is prefix-closed: if a history is
//!    linearizable, so is every prefix of it (cut at some instant; operations still
//!    running at the cut become pending). So there is an earliest return event after
//!    which the history can no longer be linearized. In the prefix, reads still
//!    running at the cut are dropped and writes still running become optional. The
//!    failed search already tells where that event is, almost always: every cut before
//!    the furthest return event it reached is linearizable (the search's path proves
//!    it), so the cut right after that event is tried first, and a binary search over
//!    the later return events is the fallback.
//! 2. **Greedy delta debugging.** Try to remove chunks of operations (halves, then
//!    quarters, ... then single operations, repeated at size one until nothing more can
//!    go), keeping a removal whenever the rest still fails. Only removals that cannot
//!    create a violation are tried: any read may go (dropping a read only removes
//!    constraints), and a write may go only when no remaining read returns its value
//!    (weaken it to indeterminate, then drop it as unobservable). Removing the write
//!    that a read depends on would manufacture a "read of a value never written", so
//!    that is never tried.
//!
//! The whole shrink runs under a budget (number of searches and total states); when it
//! runs out, the current — still failing, merely not minimal — set is returned.

use std::collections::HashSet;

use super::search::{self, Action, Decision, Entry, NEVER};

/// Limits for one shrink.
#[derive(Debug, Clone, Copy)]
pub(super) struct Budget {
    /// Bound on each individual search.
    pub max_states_per_search: u64,
    /// Bound on the number of searches.
    pub max_searches: usize,
    /// Bound on the states of all searches together.
    pub max_total_states: u64,
}

/// The witness found by [`minimize`].
#[derive(Debug, Clone)]
pub(super) struct Minimized {
    /// The failing entries (with their `src` indices), sorted by invocation.
    pub entries: Vec<Entry>,
    /// Whether delta debugging ran to its fixpoint (the set is 1-minimal) rather than
    /// stopping on the budget.
    pub complete: bool,
    /// States explored by all the shrinking searches.
    pub states: u64,
}

struct Tester {
    initial: u32,
    budget: Budget,
    searches: usize,
    states: u64,
}

impl Tester {
    fn exhausted(&self) -> bool {
        self.searches >= self.budget.max_searches || self.states >= self.budget.max_total_states
    }

    /// Whether `entries` are *known* to be non-linearizable (giving up counts as no).
    fn fails(&mut self, entries: &[Entry]) -> bool {
        let remaining = self.budget.max_total_states.saturating_sub(self.states);
        let bound = self.budget.max_states_per_search.min(remaining);
        self.searches += 1;
        let out = search::search(entries, self.initial, bound);
        self.states += out.states;
        out.decision == Decision::NotLinearizable
    }
}

/// The history cut just after event position `cut` of `evs` (see the module docs).
fn prefix(entries: &[Entry], evs: &[(u64, u8, usize)], cut: usize) -> Vec<Entry> {
    let mut call_pos = vec![usize::MAX; entries.len()];
    let mut ret_pos = vec![usize::MAX; entries.len()];
    for (pos, &(_, kind, i)) in evs.iter().enumerate() {
        if kind == 0 {
            call_pos[i] = pos;
        } else {
            ret_pos[i] = pos;
        }
    }
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if call_pos[i] > cut {
            continue;
        }
        let mut e = *e;
        if e.required && ret_pos[i] > cut {
            if e.action.is_read() {
                continue;
            }
            e.required = false;
            e.ret = NEVER;
        }
        out.push(e);
    }
    search::drop_unobservable(&mut out);
    out
}

/// `current` without the removable members of `current[range]`, or `None` if none of
/// them is removable.
fn without(current: &[Entry], range: std::ops::Range<usize>) -> Option<Vec<Entry>> {
    let kept_reads: HashSet<u32> = current
        .iter()
        .enumerate()
        .filter(|(i, e)| e.action.is_read() && !range.contains(i))
        .map(|(_, e)| e.action.value())
        .collect();
    let mut out: Vec<Entry> = current
        .iter()
        .enumerate()
        .filter(|(i, e)| {
            !range.contains(i) || matches!(e.action, Action::Write(v) if kept_reads.contains(&v))
        })
        .map(|(_, e)| *e)
        .collect();
    search::drop_unobservable(&mut out);
    (out.len() < current.len()).then_some(out)
}

/// Shrinks `entries` (known to be non-linearizable from `initial`) to a small failing
/// subset. `frontier` is [`search::SearchOutcome::frontier`] of the failed search: the
/// shortest failing prefix ends there unless the search's reductions kept it from
/// getting as far as it could, so it is tried first.
pub(super) fn minimize(
    entries: &[Entry],
    initial: u32,
    frontier: usize,
    budget: Budget,
) -> Minimized {
    let mut t = Tester { initial, budget, searches: 0, states: 0 };

    // Phase 1: the shortest failing prefix.
    let evs = search::event_order(entries);
    let rets: Vec<usize> =
        evs.iter().enumerate().filter(|(_, ev)| ev.1 == 1).map(|(pos, _)| pos).collect();
    let mut current = entries.to_vec();
    // Cuts before the frontier are linearizable; try the cut at the frontier first.
    let mut lo = rets.partition_point(|&pos| pos < frontier);
    if lo < rets.len() && rets[lo] == frontier {
        let p = prefix(entries, &evs, frontier);
        // (Nothing cut off: the whole history, already known to fail.)
        if p.as_slice() == entries || t.fails(&p) {
            current = p;
            lo = rets.len();
        } else {
            lo += 1;
        }
    }
    if lo < rets.len() {
        let mut hi = rets.len() - 1;
        let mut hi_known_failing = false;
        while lo < hi && !t.exhausted() {
            let mid = lo + (hi - lo) / 2;
            let p = prefix(entries, &evs, rets[mid]);
            if t.fails(&p) {
                hi = mid;
                hi_known_failing = true;
                current = p;
            } else {
                lo = mid + 1;
            }
        }
        if !hi_known_failing && lo == hi {
            let p = prefix(entries, &evs, rets[hi]);
            if t.fails(&p) {
                current = p;
            }
        }
    }

    // Phase 2: greedy delta debugging.
    let mut size = current.len().div_ceil(2).max(1);
    let mut complete = false;
    'shrink: loop {
        let mut removed_any = false;
        let mut i = 0;
        while i < current.len() {
            if t.exhausted() {
                break 'shrink;
            }
            let end = (i + size).min(current.len());
            match without(&current, i..end) {
                Some(smaller) if t.fails(&smaller) => {
                    current = smaller;
                    removed_any = true;
                }
                _ => i += size,
            }
        }
        if size == 1 && !removed_any {
            complete = true;
            break;
        }
        size = (size / 2).max(1);
    }

    current.sort_by_key(|e| (e.inv, e.src));
    Minimized { entries: current, complete, states: t.states }
}
