//! The linearization search for one key: a depth-first search over "which operation
//! takes effect next", in the style of Wing & Gong with Lowe's memoisation and
//! Porcupine's linked list of call/return events.
//!
//! The input is a list of [`Entry`]s (already filtered and normalised by the caller):
//! every entry has an invocation time, a completion time (or [`NEVER`]), a flag saying
//! whether it *must* be linearized, and an [`Action`] on a register whose values are
//! interned to small integers (`0` = [`ABSENT`]).
//!
//! # The event list
//!
//! Every entry contributes a *call* event at its invocation and, if it is required, a
//! *return* event at its completion. Events are sorted by time, calls before returns on
//! equal timestamps (so two operations whose endpoints coincide count as concurrent:
//! the checker gives the system the benefit of the doubt on coarse clocks). The sorted
//! events form a doubly linked list; linearizing an entry unlinks its events
//! ("lifting" it) and backtracking relinks them in reverse order (dancing links), so
//! both are O(1).
//!
//! At any search node the *candidates* are exactly the entries whose call event comes
//! before the first return event still in the list: an entry may take effect next iff
//! no remaining required entry completed before it was invoked. A node with no useful
//! candidate is a dead end.
//!
//! Optional entries never block anything (they have no return event), so they are kept
//! out of the list, filed per value in event order; otherwise the ones never placed
//! would pile up at the head of the list and lengthen every scan.
//!
//! # Memoisation
//!
//! A node is fully described by (set of linearized entries, register value). Two
//! different orders reaching the same node have the same future, so each node is
//! expanded at most once. Moreover all values that no remaining read returns are
//! equivalent — nothing can observe them, and only a write can usefully come next — so
//! they count as one value; once each written value has been read for the last time,
//! the order in which the surrounding writes were placed stops mattering. The required entries placed and the value are stored as a
//! 128-bit Zobrist fingerprint: each entry and each register value gets a random
//! 128-bit key, and the fingerprint is the XOR of the keys of the linearized entries
//! and of the current value, updated in O(1) per step. Two distinct nodes share a
//! fingerprint with probability 2⁻¹²⁸; a collision could only prune a branch (a false
//! "not linearizable"), never accept a bad history. The optional writes placed are
//! described by a count per value (see below) and stored beside the fingerprint, in an
//! arena of small records.
//!
//! # Register-specific reductions
//!
//! None of these changes the answer; each only removes branches that cannot succeed
//! unless an equivalent branch that is kept also succeeds.
//!
//! * **Reads are taken greedily.** If a candidate read returns the current value,
//!   linearizing it *now* is always safe: it does not change the state, and nothing
//!   remaining had to precede it. It is then the node's only move.
//! * **Optional writes are placed only right before a read of their value.** Take any
//!   way to finish the search from a node. If it places an optional (indeterminate)
//!   write of `v` that is not immediately followed by a read of `v`, then no read sees
//!   it before the next write, and removing it changes nothing that is observed. So the
//!   search only places an optional write of `v` when a read of `v` can take effect
//!   right now (it will be taken greedily next).
//! * **Equivalent optional writes are placed in invocation order.** Two optional
//!   writes of the same value that have both been invoked have identical constraints
//!   from then on (same effect, no deadline), so which of them is placed does not
//!   matter. The search always places the earliest-invoked remaining one; the placed
//!   optional writes of each value are then always a prefix of that value's optional
//!   writes, described by a count per value.
//! * **Fewer placed optional writes dominate more.** Two nodes with the same required
//!   entries placed and the same value, where one has placed (per value) at most as
//!   many optional writes as the other, can finish in every way the other can, plus
//!   more. Only values that some remaining read returns count: the optional writes of
//!   any other value can never be placed again. So a node is pruned if a node it is dominated by was already explored (such
//!   a node is never its ancestor, so it has failed). Required writes are tried before
//!   optional ones so that the dominating nodes tend to come first. Together with the
//!   previous rule this keeps histories with many timeouts and few distinct values
//!   tractable.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Completion time of an operation that never completed (or whose completion carries
/// no information): +∞.
pub(super) const NEVER: u64 = u64::MAX;

/// The interned value of an absent register (never written, or deleted).
pub(super) const ABSENT: u32 = 0;

/// What an entry does to the register; values are interned (`0` = absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Sets the register (a delete is a write of [`ABSENT`]).
    Write(u32),
    /// Observes the register; legal only when it holds exactly this value.
    Read(u32),
}

impl Action {
    pub(super) fn value(self) -> u32 {
        match self {
            Action::Write(v) | Action::Read(v) => v,
        }
    }

    pub(super) fn is_read(self) -> bool {
        matches!(self, Action::Read(_))
    }
}

/// One operation as the search sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    /// Index of the operation in the caller's per-key list (for reporting).
    pub src: usize,
    /// Invocation time.
    pub inv: u64,
    /// Completion time, [`NEVER`] if unknown. Ignored unless `required`.
    pub ret: u64,
    /// Must be linearized (it definitely happened). Optional entries are indeterminate
    /// writes: the search may linearize them anywhere after `inv`, or not at all.
    /// Reads are always required.
    pub required: bool,
    pub action: Action,
}

/// The answer of one search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    Linearizable,
    NotLinearizable,
    /// The state bound was hit before an answer was found.
    GaveUp,
}

/// The answer plus how much work it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SearchOutcome {
    pub decision: Decision,
    /// Distinct search nodes (memo entries) visited.
    pub states: u64,
    /// The furthest the search got: the largest position, in [`event_order`], of the
    /// first unplaced return event at a visited node (`usize::MAX` if it placed every
    /// required entry). Every cut of the history before this return event is
    /// linearizable, so if the cut just after it is not, it is the shortest failing
    /// prefix.
    pub frontier: usize,
}

/// The events of `entries` in the order the search sees them:
/// `(time, 0 = call | 1 = return, entry index)`. Only required entries have returns.
pub(super) fn event_order(entries: &[Entry]) -> Vec<(u64, u8, usize)> {
    let mut evs = Vec::with_capacity(entries.len() * 2);
    for (i, e) in entries.iter().enumerate() {
        evs.push((e.inv, 0, i));
        if e.required {
            evs.push((e.ret.max(e.inv), 1, i));
        }
    }
    evs.sort_unstable();
    evs
}

/// Drops optional writes whose value no read in `entries` returns: they can never be
/// observed, so linearizing them is never needed (see the module docs). Returns how
/// many were dropped.
pub(super) fn drop_unobservable(entries: &mut Vec<Entry>) -> usize {
    let read: HashSet<u32> =
        entries.iter().filter(|e| e.action.is_read()).map(|e| e.action.value()).collect();
    let before = entries.len();
    entries.retain(|e| e.required || e.action.is_read() || read.contains(&e.action.value()));
    before - entries.len()
}

/// Decides whether `entries`, applied to a register starting at `initial`, are
/// linearizable, visiting at most `max_states` distinct nodes.
pub(super) fn search(entries: &[Entry], initial: u32, max_states: u64) -> SearchOutcome {
    Search::new(entries, initial).run(max_states)
}

/// A hasher for fingerprints, which are already uniformly random: fold, don't mix.
#[derive(Default)]
struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.0 = (v as u64) ^ ((v >> 64) as u64);
    }
}

type FpBuild = BuildHasherDefault<FingerprintHasher>;

/// SplitMix64: a tiny, good-enough generator for the Zobrist keys. Seeded with a
/// constant so that runs are reproducible.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn random_keys(n: usize, seed: &mut u64) -> Vec<u128> {
    (0..n).map(|_| (u128::from(splitmix(seed)) << 64) | u128::from(splitmix(seed))).collect()
}

/// The visited nodes.
#[derive(Default)]
struct Memo {
    /// Fingerprints of the visited nodes without (relevant) optional writes placed.
    exact: HashSet<u128, FpBuild>,
    /// Distinct nodes visited (with or without optional writes placed).
    states: u64,
    /// For visited nodes with relevant optional writes placed: the fingerprint → the
    /// first of its records in `arena`. The records of one fingerprint form an
    /// antichain: a record dominated by a newer one is unlinked.
    dominance: HashMap<u128, u32, FpBuild>,
    /// Linked records of per-value counts of placed optional writes:
    /// `[next record (NONE = end), header, counts...]`. The header's low 31 bits are
    /// the number of (value, count) pairs; if its top bit is clear, each pair is packed
    /// in one word (value in the high 20 bits, count in the low 12), otherwise it
    /// takes two words.
    arena: Vec<u32>,
}

const NONE: u32 = u32::MAX;
const WIDE: u32 = 1 << 31;
const COUNT_BITS: u32 = 12;

/// The (value, count) pairs of an arena record.
fn record_pairs(arena: &[u32], record: u32) -> impl Iterator<Item = (u32, u32)> + '_ {
    let at = record as usize;
    let header = arena[at + 1];
    let pairs = (header & !WIDE) as usize;
    let wide = header & WIDE != 0;
    let words = if wide { 2 * pairs } else { pairs };
    let data = &arena[at + 2..at + 2 + words];
    (0..pairs).map(move |i| {
        if wide {
            (data[2 * i], data[2 * i + 1])
        } else {
            (data[i] >> COUNT_BITS, data[i] & ((1 << COUNT_BITS) - 1))
        }
    })
}

impl Memo {
    /// Whether some recorded node for `fp` placed at most `placed[v]` optional writes
    /// of every value `v`.
    fn dominated(&self, fp: u128, placed: &[u32]) -> bool {
        let mut record = self.dominance.get(&fp).copied().unwrap_or(NONE);
        while record != NONE {
            if record_pairs(&self.arena, record).all(|(v, c)| placed[v as usize] >= c) {
                return true;
            }
            record = self.arena[record as usize];
        }
        false
    }

    /// Records that the node `fp` with `placed[v]` optional writes of each of `values`
    /// (the relevant non-zero ones) was visited, dropping the records it dominates.
    fn record(&mut self, fp: u128, values: &[u32], placed: &[u32]) {
        let head = self.dominance.get(&fp).copied().unwrap_or(NONE);
        let mut prev = NONE;
        let mut record = head;
        let mut first = head;
        while record != NONE {
            let next = self.arena[record as usize];
            let dominated_by_new = values.iter().all(|&v| {
                record_pairs(&self.arena, record)
                    .any(|(rv, rc)| rv == v && rc >= placed[v as usize])
            });
            if dominated_by_new {
                if prev == NONE {
                    first = next;
                } else {
                    self.arena[prev as usize] = next;
                }
            } else {
                prev = record;
            }
            record = next;
        }
        let at = self.arena.len() as u32;
        let wide = values
            .iter()
            .any(|&v| v >= 1 << (32 - COUNT_BITS) || placed[v as usize] >= 1 << COUNT_BITS);
        self.arena.push(first);
        self.arena.push(values.len() as u32 | if wide { WIDE } else { 0 });
        for &v in values {
            if wide {
                self.arena.push(v);
                self.arena.push(placed[v as usize]);
            } else {
                self.arena.push(v << COUNT_BITS | placed[v as usize]);
            }
        }
        self.dominance.insert(fp, at);
    }
}

/// One step on the current path.
struct Step {
    entry: usize,
    prev_state: u32,
    prev_fp: u128,
}

/// A node being expanded: the moves to try, in order, and how many were tried.
struct Level {
    moves: Vec<usize>,
    tried: usize,
}

struct Search<'a> {
    entries: &'a [Entry],
    /// Linked list over events `1..=m`; `0` is the head sentinel, `m + 1` the tail.
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For each event: its entry and whether it is a call.
    ev_entry: Vec<usize>,
    ev_is_call: Vec<bool>,
    /// For each entry: its call event and its return event (`0` = none).
    call_ev: Vec<usize>,
    ret_ev: Vec<usize>,
    tail: usize,
    /// For each value: how many not-yet-linearized reads return it.
    pending_reads: Vec<u32>,
    /// For each value: its optional writes in event order. Optional writes are kept out
    /// of the linked list (they have no return event and would only lengthen every
    /// scan); one is a candidate iff its call event comes before the first remaining
    /// return event.
    optional_of: Vec<Vec<usize>>,
    /// For each value: how many of its optional writes are linearized (always the
    /// first ones of `optional_of`).
    optional_placed: Vec<u32>,
    /// The values whose `optional_placed` is non-zero (a stack: undone in reverse).
    optional_values: Vec<u32>,
    entry_keys: Vec<u128>,
    value_keys: Vec<u128>,
    state: u32,
    /// Fingerprint of the required entries placed. (The node's fingerprint adds the
    /// value, see [`Search::fingerprint`]; placed optional writes are described by
    /// `optional_placed`.)
    fp: u128,
    required_left: usize,
    path: Vec<Step>,
}

const HEAD: usize = 0;

impl<'a> Search<'a> {
    fn new(entries: &'a [Entry], initial: u32) -> Self {
        let n = entries.len();
        let evs = event_order(entries);
        let m = evs.len();
        let tail = m + 1;
        let mut ev_entry = vec![usize::MAX; tail + 1];
        let mut ev_is_call = vec![false; tail + 1];
        let mut call_ev = vec![0; n];
        let mut ret_ev = vec![0; n];
        for (pos, &(_, kind, i)) in evs.iter().enumerate() {
            let ev = pos + 1;
            ev_entry[ev] = i;
            ev_is_call[ev] = kind == 0;
            if kind == 0 {
                call_ev[i] = ev;
            } else {
                ret_ev[i] = ev;
            }
        }
        let values = entries
            .iter()
            .map(|e| e.action.value())
            .chain(std::iter::once(initial))
            .max()
            .unwrap_or(0) as usize
            + 1;
        let mut pending_reads = vec![0u32; values];
        for e in entries.iter().filter(|e| e.action.is_read()) {
            pending_reads[e.action.value() as usize] += 1;
        }
        // Link the events of required entries, in order; file optional ones by value.
        let mut next = vec![tail; tail + 1];
        let mut prev = vec![HEAD; tail + 1];
        let mut optional_of = vec![Vec::new(); values];
        let mut last = HEAD;
        for ev in 1..=m {
            let i = ev_entry[ev];
            if entries[i].required {
                next[last] = ev;
                prev[ev] = last;
                last = ev;
            } else {
                optional_of[entries[i].action.value() as usize].push(i);
            }
        }
        next[last] = tail;
        prev[tail] = last;
        let mut seed = 0x5EED_CAFE_F00D_u64;
        let entry_keys = random_keys(n, &mut seed);
        // One key per value, plus one for "a value no remaining read returns".
        let value_keys = random_keys(values + 1, &mut seed);
        let fp = 0;
        Search {
            entries,
            next,
            prev,
            ev_entry,
            ev_is_call,
            call_ev,
            ret_ev,
            tail,
            pending_reads,
            optional_of,
            optional_placed: vec![0; values],
            optional_values: Vec::new(),
            entry_keys,
            value_keys,
            state: initial,
            fp,
            required_left: entries.iter().filter(|e| e.required).count(),
            path: Vec::new(),
        }
    }

    fn unlink(&mut self, ev: usize) {
        let (p, n) = (self.prev[ev], self.next[ev]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, ev: usize) {
        let (p, n) = (self.prev[ev], self.next[ev]);
        self.next[p] = ev;
        self.prev[n] = ev;
    }

    /// Linearizes `entry` (whose step is legal) and records it on the path.
    fn apply(&mut self, entry: usize) {
        self.path.push(Step { entry, prev_state: self.state, prev_fp: self.fp });
        let e = self.entries[entry];
        if let Action::Write(v) = e.action {
            self.state = v;
        }
        if e.required {
            self.fp ^= self.entry_keys[entry];
            self.required_left -= 1;
        } else {
            let v = e.action.value();
            if self.optional_placed[v as usize] == 0 {
                self.optional_values.push(v);
            }
            self.optional_placed[v as usize] += 1;
        }
        if let Action::Read(v) = e.action {
            self.pending_reads[v as usize] -= 1;
        }
        if e.required {
            self.unlink(self.call_ev[entry]);
            self.unlink(self.ret_ev[entry]);
        }
    }

    /// Undoes the last step.
    fn undo(&mut self) {
        let step = self.path.pop().expect("undo with an empty path");
        let e = self.entries[step.entry];
        if e.required {
            self.relink(self.ret_ev[step.entry]);
            self.relink(self.call_ev[step.entry]);
        }
        if let Action::Read(v) = e.action {
            self.pending_reads[v as usize] += 1;
        }
        if e.required {
            self.required_left += 1;
        } else {
            let v = e.action.value();
            self.optional_placed[v as usize] -= 1;
            if self.optional_placed[v as usize] == 0 {
                let popped = self.optional_values.pop();
                debug_assert_eq!(popped, Some(v));
            }
        }
        self.state = step.prev_state;
        self.fp = step.prev_fp;
    }

    /// The fingerprint of the current node, without the optional writes placed. All
    /// values that no remaining read returns are equivalent (nothing can observe them;
    /// the next useful step is a write), so they share one key.
    fn fingerprint(&self) -> u128 {
        let value = if self.pending_reads[self.state as usize] == 0 {
            self.value_keys.len() - 1
        } else {
            self.state as usize
        };
        self.fp ^ self.value_keys[value]
    }

    /// Records the current node as visited; `false` if it (or a node that dominates
    /// it) was visited before. `relevant` is scratch space.
    fn visit(&self, memo: &mut Memo, relevant: &mut Vec<u32>) -> bool {
        let fp = self.fingerprint();
        // Optional writes of a value no remaining read returns can never be placed
        // again, so how many of them were placed no longer matters.
        relevant.clear();
        relevant.extend(
            self.optional_values.iter().copied().filter(|&v| self.pending_reads[v as usize] > 0),
        );
        if relevant.is_empty() {
            if !memo.exact.insert(fp) {
                return false;
            }
        } else {
            // Visited already, or dominated by the same node without optional writes or
            // with fewer of them (equal counts are "fewer or as many")?
            if memo.exact.contains(&fp) || memo.dominated(fp, &self.optional_placed) {
                return false;
            }
            memo.record(fp, relevant, &self.optional_placed);
        }
        memo.states += 1;
        true
    }

    /// The moves worth trying at the current node, in order, into `moves`. Returns the
    /// first remaining return event (or the tail).
    fn moves(&self, moves: &mut Vec<usize>, read_values: &mut Vec<u32>) -> usize {
        moves.clear();
        read_values.clear();
        // The required candidates: calls before the first remaining return.
        let mut ev = self.next[HEAD];
        while ev != self.tail && self.ev_is_call[ev] {
            let entry = self.ev_entry[ev];
            match self.entries[entry].action {
                Action::Read(v) if v == self.state => {
                    // Taken greedily: the only move.
                    moves.clear();
                    moves.push(entry);
                    while ev != self.tail && self.ev_is_call[ev] {
                        ev = self.next[ev];
                    }
                    return ev;
                }
                Action::Read(v) => {
                    if !read_values.contains(&v) {
                        read_values.push(v);
                    }
                }
                Action::Write(_) => moves.push(entry),
            }
            ev = self.next[ev];
        }
        // Optional writes last: only for a value a candidate read returns, and only the
        // first remaining one of that value, if it has been invoked.
        let first_return = ev;
        for &v in read_values.iter() {
            let placed = self.optional_placed[v as usize] as usize;
            if let Some(&entry) = self.optional_of[v as usize].get(placed) {
                if self.call_ev[entry] < first_return {
                    moves.push(entry);
                }
            }
        }
        first_return
    }

    fn run(mut self, max_states: u64) -> SearchOutcome {
        let mut memo = Memo::default();
        let mut relevant = Vec::new();
        self.visit(&mut memo, &mut relevant);
        let mut levels: Vec<Level> = Vec::new();
        let mut spare: Vec<Vec<usize>> = Vec::new();
        let mut read_values = Vec::new();
        let mut frontier = HEAD;
        let mut entering = true;
        let decision = loop {
            if entering {
                entering = false;
                if self.required_left == 0 {
                    break Decision::Linearizable;
                }
                let mut moves = spare.pop().unwrap_or_default();
                frontier = frontier.max(self.moves(&mut moves, &mut read_values));
                levels.push(Level { moves, tried: 0 });
            }
            let Some(level) = levels.last_mut() else {
                break Decision::NotLinearizable;
            };
            if level.tried == level.moves.len() {
                // Every move from this node failed: back to the parent.
                let done = levels.pop().expect("a level");
                spare.push(done.moves);
                if levels.is_empty() {
                    break Decision::NotLinearizable;
                }
                self.undo();
                continue;
            }
            let entry = level.moves[level.tried];
            level.tried += 1;
            self.apply(entry);
            if self.visit(&mut memo, &mut relevant) {
                if memo.states > max_states {
                    break Decision::GaveUp;
                }
                entering = true;
            } else {
                self.undo();
            }
        };
        SearchOutcome {
            decision,
            states: memo.states,
            // Event numbers are positions + 1; the tail means nothing was left.
            frontier: if decision == Decision::Linearizable || frontier == self.tail {
                usize::MAX
            } else {
                frontier - 1
            },
        }
    }
}
