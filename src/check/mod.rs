//! Checking recorded histories for linearizability.
//!
//! A nemesis test runs a concurrent workload of writes, deletes and strong reads
//! against the cluster while it injects faults, and records every operation: who
//! issued it, when it was invoked, when (if ever) it completed, and what it returned.
//! [`check`] then decides whether the cluster behaved like a single copy of the data.
//!
//! # Linearizability
//!
//! A history is *linearizable* if every operation can be given a single instant — its
//! *linearization point* — somewhere between its invocation and its completion, such
//! that executing the operations one at a time in the order of those instants, on a
//! plain single-copy store, produces exactly the results that were observed. Two
//! consequences are worth keeping in mind:
//!
//! * real-time order is respected: if `a` completed before `b` was invoked, `a` takes
//!   effect before `b` (so once a write is acknowledged, no later read may return an
//!   older value);
//! * concurrent operations (overlapping intervals) may take effect in either order.
//!
//! Here the store is one *register per key*: a write sets the key's value, a delete
//! makes it absent, a read returns the current value (or absent). Linearizability is
//! *compositional* (Herlihy & Wing): a history is linearizable iff the sub-history of
//! every object is. So the history is split by key and each key is checked on its own,
//! which keeps each search small.
//!
//! # The search (Wing & Gong, Lowe, Porcupine)
//!
//! Wing and Gong's algorithm looks for a linearization by depth-first search: at each
//! step, pick an operation that may take effect next — one that is *minimal*, i.e. was
//! invoked before the earliest completion among the operations not yet placed — apply
//! it to the register model (a read must return the current value, a write sets it),
//! and recurse; on a dead end, backtrack and pick another. The search succeeds when
//! every operation has been placed.
//!
//! On its own this is exponential: `k` concurrent writes can be ordered `k!` ways. Lowe
//! ("Testing for linearizability", 2017) observed that the future of the search only
//! depends on *which* operations have been placed and on the model state, not on the
//! order in which they were placed, so the pair (set of placed operations, register
//! value) can be memoised: each such node is expanded at most once. With bounded
//! concurrency (about ten clients) the number of reachable nodes grows roughly linearly
//! with the length of the history. Porcupine's refinements are used as well: the
//! operations' call and return events form a sorted doubly linked list, so finding the
//! candidates, placing an operation and undoing it are cheap. See `search.rs` for the
//! details, including the 128-bit fingerprints used as memo keys.
//!
//! # Indeterminate and failed operations
//!
//! Faults make some outcomes unknowable: a request that timed out or lost its
//! connection may or may not have been applied.
//!
//! * [`Outcome::Fail`] — the operation definitely had no effect (a 4xx, or a 307/503
//!   before the request was proposed to Raft). It is removed from the history.
//! * [`Outcome::Unknown`] on a **read** — it carries no information; removed.
//! * [`Outcome::Unknown`] on a **write or delete** — it may have taken effect at any
//!   instant after its invocation (even long after the client gave up), or never. Its
//!   completion time is treated as +∞ and it is *optional*: the search may place it
//!   anywhere after its invocation, and succeeds as soon as every *completed* operation
//!   is placed, which models "never happened".
//!
//! # Shortcuts taken
//!
//! All of these are exact (they cannot change the verdict) unless stated otherwise;
//! `search.rs` argues each one.
//!
//! * Endpoints are compared with calls before returns at equal timestamps: two
//!   operations whose intervals merely touch count as concurrent. This errs on the side
//!   of accepting histories recorded with coarse clocks.
//! * Before any search, a read returning a value that no write (acknowledged or
//!   indeterminate) had even been invoked for by the time the read completed is
//!   reported at once, with that read alone as the witness.
//! * A read that can take effect now and returns the current value is placed greedily,
//!   without exploring alternatives (it changes nothing and nothing had to precede it).
//! * Values that no remaining read returns are all equivalent in the memo (nothing can
//!   observe them).
//! * An indeterminate write is only placed immediately before a read of its value (if
//!   no read sees it before the next write, leaving it out changes nothing), and
//!   indeterminate writes of one value are placed in invocation order (once invoked
//!   they are interchangeable). One that no read returns at all is dropped up front.
//! * A node that placed, per value, at least as many indeterminate writes as an
//!   already explored node with the same completed operations placed and the same
//!   value is pruned: it can only do less.
//! * Memo keys are 128-bit fingerprints rather than full bitsets: a collision, with
//!   probability about 2⁻¹²⁸ per pair of nodes, could only make the checker report a
//!   violation that is not there, never miss one.
//! * Each key's search is bounded ([`CheckOptions::max_states_per_key`], 10 million by
//!   default: at most a few hundred MB of memo, and tens of seconds in an unoptimised
//!   build). A key that hits the bound is reported as *undecided*
//!   ([`Verdict::undecided`]), and the verdict is not `linearizable`.
//!
//! # Performance, and how to keep it
//!
//! With bounded concurrency, a linearizable history costs about one search node per
//! operation (a 2,000-operation, 8-client key takes milliseconds). A violation costs
//! more, because the search must rule out every alternative up to the point of the
//! violation, and then shrinking runs a few more searches; with unique values that is
//! still under a second for a few thousand operations, even in an unoptimised build.
//!
//! Checking a register is NP-complete in general (Gibbons & Korach); what makes it
//! hard is not knowing which write a read observed. **Harnesses should write a unique
//! value in every write** (e.g. `"<client>-<seq>"`): then every read names its write,
//! and the search stays close to linear. With a handful of values written over and
//! over, *and* many indeterminate writes, a non-linearizable history can need millions
//! of nodes and may end up undecided.
//!
//! # Reporting violations
//!
//! For a key that is not linearizable, the checker shrinks the history to a small set
//! of operations that is still not linearizable — first the shortest failing prefix,
//! then greedy delta debugging, removing only operations whose removal cannot itself
//! create a violation (see `shrink.rs`) — and explains it in one line when it
//! recognises the pattern (a value never written, a value written only later, a stale
//! read after an acknowledged write, reads going backwards).
//!
//! Histories can be saved and re-checked with [`history_to_jsonl`] and
//! [`history_from_jsonl`].

mod search;
mod shrink;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use search::{Action, Decision, Entry, ABSENT, NEVER};

/// The value stored in a register. Absence (never written, or deleted) is `None` in an
/// `Option<Value>`.
pub type Value = String;

/// One operation on a single-register-per-key store, as recorded by a test harness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Unique within the history.
    pub id: u64,
    /// The client (process) that issued it. Informational: the checker relies on the
    /// times, not on per-client order.
    pub client: u64,
    /// The key (register) it acts on.
    pub key: String,
    /// What it does.
    pub kind: OpKind,
    /// Invocation time, in any monotonic unit shared by all clients (e.g. µs since the
    /// start of the test).
    pub invoke: u64,
    /// Completion time; `None` if the operation never returned. Ignored for
    /// [`Outcome::Unknown`] writes, which may take effect after the client gave up. (An
    /// [`Outcome::Ok`] op without one is treated as completing at +∞.)
    pub complete: Option<u64>,
    /// What the client learnt.
    pub outcome: Outcome,
}

/// What an [`Op`] does to its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum OpKind {
    /// Set the key to this value.
    Write(Value),
    /// Make the key absent.
    Delete,
    /// Read the key.
    Read,
}

/// What the client learnt about an [`Op`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Outcome {
    /// It succeeded. For a read, the value read (`None` = absent); for a write or a
    /// delete the payload is meaningless and conventionally `None`.
    Ok(Option<Value>),
    /// It definitely did not take effect (e.g. a 4xx, or a 307/503 returned before the
    /// request was proposed). Removed before checking.
    Fail,
    /// Indeterminate (timeout, connection error): a write or delete may have taken
    /// effect at any time after its invocation, or never; a read tells nothing.
    Unknown,
}

impl Op {
    /// The value this op writes (`Some(None)` for a delete), or `None` for a read.
    fn written(&self) -> Option<Option<&str>> {
        match &self.kind {
            OpKind::Write(v) => Some(Some(v.as_str())),
            OpKind::Delete => Some(None),
            OpKind::Read => None,
        }
    }

    /// The value this op read, if it is a successful read.
    fn read_value(&self) -> Option<Option<&str>> {
        match (&self.kind, &self.outcome) {
            (OpKind::Read, Outcome::Ok(v)) => Some(v.as_deref()),
            _ => None,
        }
    }

    /// The latest instant at which the op may take effect (+∞ if indeterminate).
    fn deadline(&self) -> u64 {
        match self.outcome {
            Outcome::Ok(_) => self.complete.unwrap_or(NEVER).max(self.invoke),
            _ => NEVER,
        }
    }

    /// Whether `self` completed before `other` was invoked (real-time precedence).
    fn precedes(&self, other: &Op) -> bool {
        self.deadline() < other.invoke
    }

    fn span(&self) -> String {
        format!("t={}..{}", self.invoke, show_time(self.deadline()))
    }
}

impl fmt::Display for Op {
    /// One line, e.g. `client 3  write  k="x" v="7"     [t=1200 .. 1350]  ok`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, detail) = match (&self.kind, &self.outcome) {
            (OpKind::Write(v), _) => ("write", format!("k={:?} v={v:?}", self.key)),
            (OpKind::Delete, _) => ("delete", format!("k={:?}", self.key)),
            (OpKind::Read, Outcome::Ok(v)) => {
                ("read", format!("k={:?} -> {}", self.key, show_value(v.as_deref())))
            }
            (OpKind::Read, Outcome::Unknown) => ("read", format!("k={:?} -> ?", self.key)),
            (OpKind::Read, Outcome::Fail) => ("read", format!("k={:?}", self.key)),
        };
        let end = match (&self.outcome, self.complete) {
            (Outcome::Unknown, _) | (_, None) => "?".to_string(),
            (_, Some(t)) => t.to_string(),
        };
        let outcome = match (&self.outcome, self.complete) {
            (Outcome::Ok(_), _) => "ok".to_string(),
            (Outcome::Fail, _) => "fail".to_string(),
            (Outcome::Unknown, Some(t)) => format!("unknown (gave up at t={t})"),
            (Outcome::Unknown, None) => "unknown".to_string(),
        };
        write!(
            f,
            "client {:<3} {:<6} {:<24} [t={} .. {}]  {}",
            self.client, verb, detail, self.invoke, end, outcome
        )
    }
}

fn show_value(v: Option<&str>) -> String {
    match v {
        Some(s) => format!("{s:?}"),
        None => "absent".to_string(),
    }
}

fn show_time(t: u64) -> String {
    if t == NEVER {
        "?".to_string()
    } else {
        t.to_string()
    }
}

/// Default for [`CheckOptions::max_states_per_key`].
pub const DEFAULT_MAX_STATES_PER_KEY: u64 = 10_000_000;

/// Knobs for [`check_with_options`].
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Initial value of each key; keys not listed start absent.
    pub initial: HashMap<String, Option<Value>>,
    /// Give up on a key (report it undecided) after this many distinct search states.
    pub max_states_per_key: u64,
    /// Shrink each violation to a small failing set (otherwise report every op of the
    /// key).
    pub minimize: bool,
    /// Bound on the number of searches one shrink may run.
    pub max_minimize_searches: usize,
    /// Bound on the states all searches of one shrink may explore together.
    pub max_minimize_states: u64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            initial: HashMap::new(),
            max_states_per_key: DEFAULT_MAX_STATES_PER_KEY,
            minimize: true,
            max_minimize_searches: 5_000,
            max_minimize_states: 5_000_000,
        }
    }
}

/// The result of checking a history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// `true` iff every key was proven linearizable and the history is well formed.
    /// `false` if a key failed, was undecided, or the history is malformed.
    pub linearizable: bool,
    /// Distinct keys in the history.
    pub keys_checked: usize,
    /// Operations actually given to the search (after the removals counted below).
    pub ops_checked: usize,
    /// Operations in the history.
    pub ops_total: usize,
    /// Operations with [`Outcome::Fail`], removed.
    pub dropped_failed: usize,
    /// Reads with [`Outcome::Unknown`], removed.
    pub dropped_unknown_reads: usize,
    /// Writes and deletes with [`Outcome::Unknown`] (treated as optional, open-ended).
    pub indeterminate_writes: usize,
    /// Of those, how many were removed because no read returns their value.
    pub dropped_unobservable_writes: usize,
    /// Search states explored over all keys while checking.
    pub states_explored: u64,
    /// Search states explored while shrinking violations to small failing sets.
    pub states_explored_minimizing: u64,
    /// Keys proven not linearizable, in key order.
    pub failures: Vec<KeyFailure>,
    /// Keys whose search hit the state bound, in key order.
    pub undecided: Vec<UndecidedKey>,
    /// Problems with the history itself (duplicate ids, completion before invocation).
    pub malformed: Vec<String>,
}

impl Verdict {
    /// The failure reported for `key`, if any.
    pub fn failure(&self, key: &str) -> Option<&KeyFailure> {
        self.failures.iter().find(|f| f.key == key)
    }
}

/// A key whose history is not linearizable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFailure {
    /// The key.
    pub key: String,
    /// A small set of the key's operations that on its own is not linearizable (from
    /// the key's initial value), sorted by invocation. Re-checking it reproduces the
    /// failure.
    pub minimal_ops: Vec<Op>,
    /// One line saying why, in terms of the operations above.
    pub explanation: String,
    /// Operations of this key given to the search.
    pub ops_in_key: usize,
    /// Whether shrinking ran to completion: no single operation of `minimal_ops` can be
    /// removed (among those whose removal is sound). `false` if it ran out of budget or
    /// was disabled.
    pub fully_minimized: bool,
}

/// A key on which the search gave up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndecidedKey {
    /// The key.
    pub key: String,
    /// Operations of this key given to the search.
    pub ops_in_key: usize,
    /// States explored before giving up.
    pub states_explored: u64,
}

/// Checks `history` for linearizability, every key starting absent.
pub fn check(history: &[Op]) -> Verdict {
    check_with_options(history, &CheckOptions::default())
}

/// Checks `history` for linearizability, keys starting with the values in `initial`
/// (absent if not listed).
pub fn check_with_initial(history: &[Op], initial: &HashMap<String, Option<Value>>) -> Verdict {
    check_with_options(
        history,
        &CheckOptions { initial: initial.clone(), ..CheckOptions::default() },
    )
}

/// Checks `history` for linearizability with explicit options.
pub fn check_with_options(history: &[Op], opts: &CheckOptions) -> Verdict {
    let mut verdict = Verdict {
        linearizable: true,
        keys_checked: 0,
        ops_checked: 0,
        ops_total: history.len(),
        dropped_failed: 0,
        dropped_unknown_reads: 0,
        indeterminate_writes: 0,
        dropped_unobservable_writes: 0,
        states_explored: 0,
        states_explored_minimizing: 0,
        failures: Vec::new(),
        undecided: Vec::new(),
        malformed: malformed(history),
    };
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    verdict.keys_checked = by_key.len();
    for (key, ops) in by_key {
        let initial = opts.initial.get(key).cloned().flatten();
        check_key(key, &ops, initial.as_deref(), opts, &mut verdict);
    }
    verdict.linearizable =
        verdict.failures.is_empty() && verdict.undecided.is_empty() && verdict.malformed.is_empty();
    verdict
}

fn malformed(history: &[Op]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut ids = HashSet::new();
    for op in history {
        if !ids.insert(op.id) {
            problems.push(format!("duplicate op id {}", op.id));
        }
        if let Some(c) = op.complete {
            if c < op.invoke {
                problems.push(format!(
                    "op {} completes (t={c}) before it is invoked (t={})",
                    op.id, op.invoke
                ));
            }
        }
    }
    problems
}

/// Interns register values: `0` is absent, distinct strings get `1, 2, ...`.
#[derive(Default)]
struct Interner<'a> {
    ids: HashMap<&'a str, u32>,
}

impl<'a> Interner<'a> {
    fn id(&mut self, v: Option<&'a str>) -> u32 {
        match v {
            None => ABSENT,
            Some(s) => {
                let next = self.ids.len() as u32 + 1;
                *self.ids.entry(s).or_insert(next)
            }
        }
    }
}

/// A key's operations as search entries (indices into `ops`), and the interned
/// initial value. Failed ops and indeterminate reads are left out and counted.
fn key_entries(ops: &[&Op], initial: Option<&str>, verdict: &mut Verdict) -> (Vec<Entry>, u32) {
    let mut values = Interner::default();
    let initial_id = values.id(initial);
    let mut entries = Vec::with_capacity(ops.len());
    for (src, op) in ops.iter().enumerate() {
        let (action, required) = match (&op.kind, &op.outcome) {
            (_, Outcome::Fail) => {
                verdict.dropped_failed += 1;
                continue;
            }
            (OpKind::Read, Outcome::Unknown) => {
                verdict.dropped_unknown_reads += 1;
                continue;
            }
            (OpKind::Read, Outcome::Ok(v)) => (Action::Read(values.id(v.as_deref())), true),
            (OpKind::Write(v), outcome) => {
                (Action::Write(values.id(Some(v))), *outcome != Outcome::Unknown)
            }
            (OpKind::Delete, outcome) => (Action::Write(ABSENT), *outcome != Outcome::Unknown),
        };
        if !required {
            verdict.indeterminate_writes += 1;
        }
        entries.push(Entry { src, inv: op.invoke, ret: op.deadline(), required, action });
    }
    (entries, initial_id)
}

fn check_key(
    key: &str,
    ops: &[&Op],
    initial: Option<&str>,
    opts: &CheckOptions,
    verdict: &mut Verdict,
) {
    let (mut entries, initial_id) = key_entries(ops, initial, verdict);
    verdict.dropped_unobservable_writes += search::drop_unobservable(&mut entries);
    verdict.ops_checked += entries.len();

    if let Some(read) = impossible_read(&entries, initial_id) {
        // No search needed, and the read alone is the witness: cut the history just
        // after it completes, and it is a read of a value nobody has written yet.
        let r = ops[read.src];
        verdict.failures.push(KeyFailure {
            key: key.to_string(),
            minimal_ops: vec![r.clone()],
            explanation: explain(&[r], ops, initial),
            ops_in_key: entries.len(),
            fully_minimized: true,
        });
        return;
    }

    let out = search::search(&entries, initial_id, opts.max_states_per_key);
    verdict.states_explored += out.states;
    match out.decision {
        Decision::Linearizable => {}
        Decision::GaveUp => verdict.undecided.push(UndecidedKey {
            key: key.to_string(),
            ops_in_key: entries.len(),
            states_explored: out.states,
        }),
        Decision::NotLinearizable => {
            let (witness, fully_minimized) = if opts.minimize {
                let m = shrink::minimize(
                    &entries,
                    initial_id,
                    out.frontier,
                    shrink::Budget {
                        max_states_per_search: opts.max_states_per_key,
                        max_searches: opts.max_minimize_searches,
                        max_total_states: opts.max_minimize_states,
                    },
                );
                verdict.states_explored_minimizing += m.states;
                (m.entries, m.complete)
            } else {
                (entries.clone(), false)
            };
            let mut minimal: Vec<&Op> = witness.iter().map(|e| ops[e.src]).collect();
            minimal.sort_by_key(|op| (op.invoke, op.id));
            let explanation = explain(&minimal, ops, initial);
            verdict.failures.push(KeyFailure {
                key: key.to_string(),
                minimal_ops: minimal.into_iter().cloned().collect(),
                explanation,
                ops_in_key: entries.len(),
                fully_minimized,
            });
        }
    }
}

/// The earliest-completing read whose value differs from the initial one and which no
/// write (acknowledged or indeterminate) of that value was invoked in time for: a
/// violation that needs no search.
fn impossible_read(entries: &[Entry], initial: u32) -> Option<Entry> {
    let mut first_write: HashMap<u32, u64> = HashMap::new();
    for e in entries.iter().filter(|e| !e.action.is_read()) {
        let t = first_write.entry(e.action.value()).or_insert(e.inv);
        *t = (*t).min(e.inv);
    }
    entries
        .iter()
        .filter(|e| {
            e.action.is_read()
                && e.action.value() != initial
                && first_write.get(&e.action.value()).is_none_or(|&t| t > e.ret.max(e.inv))
        })
        .min_by_key(|e| (e.ret, e.inv))
        .copied()
}

/// A one-line explanation of why `minimal` (a failing subset of `all`, the key's
/// operations) is not linearizable. Every pattern recognised here is checked against
/// *all* the key's effective writes, so the sentence is true of the whole history.
fn explain(minimal: &[&Op], all: &[&Op], initial: Option<&str>) -> String {
    let writes: Vec<&Op> = all
        .iter()
        .copied()
        .filter(|op| op.written().is_some() && op.outcome != Outcome::Fail)
        .collect();
    let writes_of = |v: Option<&str>| -> Vec<&Op> {
        writes.iter().copied().filter(|w| w.written() == Some(v)).collect()
    };
    let mut reads: Vec<&Op> =
        minimal.iter().copied().filter(|op| op.read_value().is_some()).collect();
    reads.sort_by_key(|r| std::cmp::Reverse((r.deadline(), r.invoke)));
    let who = |op: &Op| format!("client {} at {}", op.client, op.span());

    // 1. A value nobody wrote.
    for r in &reads {
        let v = r.read_value().flatten();
        if v == initial || !writes_of(v).is_empty() {
            continue;
        }
        if v.is_none() {
            return format!(
                "read by {} found the key absent, but it starts as {} and was never deleted",
                who(r),
                show_value(initial)
            );
        }
        let failed: Vec<String> = all
            .iter()
            .filter(|op| op.outcome == Outcome::Fail && op.written() == Some(v))
            .map(|op| op.span())
            .collect();
        let note = if failed.is_empty() {
            String::new()
        } else {
            format!(" (the only write of it, at {}, was reported as failed)", failed.join(", "))
        };
        return format!(
            "read by {} returned {}, a value that was never written{note}",
            who(r),
            show_value(v)
        );
    }

    // 2. A value written only after the read completed.
    for r in &reads {
        let v = r.read_value().flatten();
        let ws = writes_of(v);
        if v == initial || ws.is_empty() || !ws.iter().all(|w| r.precedes(w)) {
            continue;
        }
        let first = ws.iter().min_by_key(|w| w.invoke).expect("non-empty");
        return format!(
            "read by {} returned {}, but {} was first written by client {} at {}, after the read had completed",
            who(r),
            show_value(v),
            show_value(v),
            first.client,
            first.span()
        );
    }

    // 3. A stale read: something else was acknowledged after every write of the value
    //    read had completed, and before the read began.
    for r in &reads {
        let v = r.read_value().flatten();
        let ws = writes_of(v);
        let newer = |w2: &&Op| {
            w2.written() != Some(v)
                && w2.outcome != Outcome::Unknown
                && w2.precedes(r)
                && ws.iter().all(|w| w.precedes(w2))
        };
        let pick = minimal
            .iter()
            .copied()
            .filter(|w| w.written().is_some())
            .find(newer)
            .or_else(|| writes.iter().copied().find(newer));
        let Some(w2) = pick else { continue };
        let old = if ws.is_empty() {
            format!("the initial value {}", show_value(v))
        } else {
            show_value(v)
        };
        let what = match w2.written().expect("a write") {
            Some(u) => format!("{} was written", show_value(Some(u))),
            None => "a delete was".to_string(),
        };
        let what = if w2.written() == Some(None) {
            format!("{what} acknowledged")
        } else {
            format!("{what} and acknowledged")
        };
        return format!(
            "read by {} returned {old}, but {what} (client {}, {}) before the read began, after every write of {} had completed",
            who(r),
            w2.client,
            w2.span(),
            show_value(v)
        );
    }

    // 4. Reads going backwards: an earlier read saw something else, and the value this
    //    read returns was not written again after that read began.
    for r in &reads {
        let v = r.read_value().flatten();
        let ws = writes_of(v);
        let earlier = all.iter().copied().find(|r2| {
            r2.read_value().is_some_and(|u| u != v)
                && r2.precedes(r)
                && ws.iter().all(|w| w.deadline() < r2.invoke)
        });
        let Some(r2) = earlier else { continue };
        let why = if ws.is_empty() {
            "the key was never set back to it".to_string()
        } else {
            format!("every write of {} had completed before that read began", show_value(v))
        };
        return format!(
            "read by {} returned {}, but an earlier read (client {}, {}, finished before this one began) had already returned {}, and {why}",
            who(r),
            show_value(v),
            r2.client,
            r2.span(),
            show_value(r2.read_value().flatten()),
        );
    }

    // 5. Reads going backwards, the other way round: an earlier read already saw a
    //    value that was written only after every write of the value this read returns.
    for r in &reads {
        let v = r.read_value().flatten();
        let ws = writes_of(v);
        let earlier = all.iter().copied().find(|r2| {
            let Some(u) = r2.read_value() else {
                return false;
            };
            let us = writes_of(u);
            u != v
                && u != initial
                && r2.precedes(r)
                && !us.is_empty()
                && us.iter().all(|w2| ws.iter().all(|w| w.precedes(w2)))
        });
        let Some(r2) = earlier else { continue };
        let u = r2.read_value().flatten();
        let why = if ws.is_empty() {
            format!("so the register could no longer hold its initial value {}", show_value(v))
        } else {
            format!("which was written only after every write of {} had completed", show_value(v))
        };
        return format!(
            "read by {} returned {}, but an earlier read (client {}, {}, finished before this one began) had already returned {}, {why}",
            who(r),
            show_value(v),
            r2.client,
            r2.span(),
            show_value(u),
        );
    }

    format!(
        "no order of these {} operations respects both their real-time order and a single register starting {}: some read always sees a value other than the latest write",
        minimal.len(),
        match initial {
            Some(_) => format!("at {}", show_value(initial)),
            None => "absent".to_string(),
        }
    )
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = if self.linearizable {
            "LINEARIZABLE".to_string()
        } else if !self.failures.is_empty() {
            format!("NOT LINEARIZABLE ({} of {} keys)", self.failures.len(), self.keys_checked)
        } else if !self.undecided.is_empty() {
            "UNKNOWN (the search gave up)".to_string()
        } else {
            "INVALID HISTORY".to_string()
        };
        writeln!(f, "{status}")?;
        writeln!(
            f,
            "  {} keys, {} ops: {} checked; dropped {} failed ops, {} indeterminate reads, {} unobservable indeterminate writes; {} indeterminate writes in all; {} search states (+{} minimising)",
            self.keys_checked,
            self.ops_total,
            self.ops_checked,
            self.dropped_failed,
            self.dropped_unknown_reads,
            self.dropped_unobservable_writes,
            self.indeterminate_writes,
            self.states_explored,
            self.states_explored_minimizing
        )?;
        for problem in &self.malformed {
            writeln!(f, "  malformed history: {problem}")?;
        }
        for fail in &self.failures {
            writeln!(
                f,
                "key {:?}: not linearizable; {} of its {} ops suffice to show it{}:",
                fail.key,
                fail.minimal_ops.len(),
                fail.ops_in_key,
                if fail.fully_minimized { "" } else { " (not fully minimised)" }
            )?;
            writeln!(f, "  {}", fail.explanation)?;
            for op in &fail.minimal_ops {
                writeln!(f, "    {op}")?;
            }
        }
        for u in &self.undecided {
            writeln!(
                f,
                "key {:?}: undecided; gave up after {} search states ({} ops)",
                u.key, u.states_explored, u.ops_in_key
            )?;
        }
        Ok(())
    }
}

/// Why a JSONL history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// A line is not a valid [`Op`].
    #[error("history line {line}: {source}")]
    Json {
        /// 1-based line number.
        line: usize,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// Serialises a history as JSON Lines: one [`Op`] per line, in the given order, e.g.
///
/// ```text
/// {"id":0,"client":3,"key":"x","kind":{"type":"write","value":"7"},"invoke":1200,"complete":1350,"outcome":{"type":"ok","value":null}}
/// {"id":1,"client":1,"key":"x","kind":{"type":"read"},"invoke":1400,"complete":1500,"outcome":{"type":"ok","value":"7"}}
/// {"id":2,"client":2,"key":"x","kind":{"type":"delete"},"invoke":1600,"complete":null,"outcome":{"type":"unknown"}}
/// ```
pub fn history_to_jsonl(history: &[Op]) -> String {
    let mut out = String::new();
    for op in history {
        out.push_str(&serde_json::to_string(op).expect("an Op always serialises"));
        out.push('\n');
    }
    out
}

/// Parses a history written by [`history_to_jsonl`]; blank lines are skipped.
pub fn history_from_jsonl(text: &str) -> Result<Vec<Op>, HistoryError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|source| HistoryError::Json { line: i + 1, source })
        })
        .collect()
}
