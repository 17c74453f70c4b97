//! The checker's own tests: known-good and known-bad histories, shrinking, reporting,
//! randomized histories from a real register simulation, and a performance sanity
//! check.

use std::collections::HashMap;
use std::time::Instant;

use proptest::prelude::*;

use super::*;

/// Builds histories with automatically numbered ops.
#[derive(Default)]
struct H {
    ops: Vec<Op>,
}

impl H {
    fn push(
        &mut self,
        client: u64,
        key: &str,
        kind: OpKind,
        span: (u64, Option<u64>),
        outcome: Outcome,
    ) -> u64 {
        let id = self.ops.len() as u64;
        self.ops.push(Op {
            id,
            client,
            key: key.to_string(),
            kind,
            invoke: span.0,
            complete: span.1,
            outcome,
        });
        id
    }

    /// An acknowledged write.
    fn write(&mut self, client: u64, key: &str, v: &str, inv: u64, done: u64) -> u64 {
        self.push(client, key, OpKind::Write(v.into()), (inv, Some(done)), Outcome::Ok(None))
    }

    /// A write that timed out: it may or may not have taken effect.
    fn write_unknown(&mut self, client: u64, key: &str, v: &str, inv: u64) -> u64 {
        self.push(client, key, OpKind::Write(v.into()), (inv, None), Outcome::Unknown)
    }

    /// A write that definitely failed.
    fn write_failed(&mut self, client: u64, key: &str, v: &str, inv: u64, done: u64) -> u64 {
        self.push(client, key, OpKind::Write(v.into()), (inv, Some(done)), Outcome::Fail)
    }

    fn delete(&mut self, client: u64, key: &str, inv: u64, done: u64) -> u64 {
        self.push(client, key, OpKind::Delete, (inv, Some(done)), Outcome::Ok(None))
    }

    fn delete_unknown(&mut self, client: u64, key: &str, inv: u64) -> u64 {
        self.push(client, key, OpKind::Delete, (inv, None), Outcome::Unknown)
    }

    /// A successful read returning `v` (`None` = absent).
    fn read(&mut self, client: u64, key: &str, v: Option<&str>, inv: u64, done: u64) -> u64 {
        self.push(client, key, OpKind::Read, (inv, Some(done)), Outcome::Ok(v.map(String::from)))
    }

    fn read_unknown(&mut self, client: u64, key: &str, inv: u64) -> u64 {
        self.push(client, key, OpKind::Read, (inv, None), Outcome::Unknown)
    }
}

fn assert_linearizable(ops: &[Op]) -> Verdict {
    let v = check(ops);
    assert!(v.linearizable, "expected linearizable, got:\n{v}");
    v
}

fn assert_violation(ops: &[Op], key: &str) -> KeyFailure {
    let v = check(ops);
    assert!(!v.linearizable, "expected a violation on {key:?}, got:\n{v}");
    assert!(v.undecided.is_empty(), "{v}");
    let f = v.failure(key).unwrap_or_else(|| panic!("no failure for {key:?}:\n{v}"));
    // The witness is a real one: on its own it is not linearizable either.
    let again = check(&f.minimal_ops);
    assert!(again.failure(key).is_some(), "minimal ops re-check as linearizable:\n{v}\n{again}");
    f.clone()
}

fn ids(ops: &[Op]) -> Vec<u64> {
    let mut ids: Vec<u64> = ops.iter().map(|o| o.id).collect();
    ids.sort_unstable();
    ids
}

// ---- known-linearizable histories ----------------------------------------------

#[test]
fn empty_history_is_linearizable() {
    let v = assert_linearizable(&[]);
    assert_eq!(v.keys_checked, 0);
}

#[test]
fn sequential_write_then_read_is_linearizable() {
    let mut h = H::default();
    h.read(1, "k", None, 0, 5);
    h.write(1, "k", "1", 10, 20);
    h.read(2, "k", Some("1"), 30, 40);
    h.write(2, "k", "2", 50, 60);
    h.read(1, "k", Some("2"), 70, 80);
    let v = assert_linearizable(&h.ops);
    assert_eq!(v.ops_checked, 5);
    assert_eq!(v.keys_checked, 1);
}

#[test]
fn read_overlapping_a_write_may_see_the_old_value() {
    let mut h = H::default();
    h.write(1, "k", "1", 0, 10);
    h.write(1, "k", "2", 20, 40);
    h.read(2, "k", Some("1"), 25, 35);
    assert_linearizable(&h.ops);
}

#[test]
fn read_overlapping_a_write_may_see_the_new_value() {
    let mut h = H::default();
    h.write(1, "k", "1", 0, 10);
    h.write(1, "k", "2", 20, 40);
    h.read(2, "k", Some("2"), 25, 35);
    assert_linearizable(&h.ops);
}

#[test]
fn read_concurrent_with_two_writes_may_see_either_or_the_old_value() {
    for seen in [None, Some("1"), Some("2")] {
        let mut h = H::default();
        h.write(1, "k", "1", 10, 50);
        h.write(2, "k", "2", 15, 45);
        h.read(3, "k", seen, 20, 30);
        assert_linearizable(&h.ops);
    }
}

#[test]
fn concurrent_writes_may_take_effect_in_either_order() {
    for last in ["1", "2"] {
        let mut h = H::default();
        h.write(1, "k", "1", 0, 50);
        h.write(2, "k", "2", 10, 40);
        h.read(3, "k", Some(last), 60, 70);
        h.read(1, "k", Some(last), 80, 90);
        assert_linearizable(&h.ops);
    }
}

#[test]
fn deletes_make_the_key_absent() {
    let mut h = H::default();
    h.write(1, "k", "1", 0, 10);
    h.read(2, "k", Some("1"), 20, 30);
    h.delete(1, "k", 40, 50);
    h.read(2, "k", None, 60, 70);
    h.write(1, "k", "2", 80, 90);
    h.read(2, "k", Some("2"), 100, 110);
    assert_linearizable(&h.ops);
}

#[test]
fn touching_intervals_count_as_concurrent() {
    let mut h = H::default();
    h.write(1, "k", "1", 0, 10);
    h.read(2, "k", None, 10, 20);
    assert_linearizable(&h.ops);
}

#[test]
fn indeterminate_write_whose_value_is_read_took_effect() {
    let mut h = H::default();
    h.write(1, "k", "1", 0, 10);
    h.write_unknown(1, "k", "2", 20);
    h.read(2, "k", Some("1"), 30, 40);
    h.read(2, "k", Some("2"), 500, 510);
    h.read(3, "k", Some("2"), 600, 610);
    let v = assert_linearizable(&h.ops);
    assert_eq!(v.indeterminate_writes, 1);
    assert_eq!(v.dropped_unobservable_writes, 0);
}

#[test]
fn indeterminate_write_whose_value_is_never_read_never_took_effect() {
    let mut h = H::default();
    h.write(1, "k", "1", 0, 10);
    h.write_unknown(1, "k", "2", 20);
    h.delete_unknown(2, "k", 25);
    h.read(2, "k", Some("1"), 30, 40);
    h.read(3, "k", Some("1"), 500, 510);
    let v = assert_linearizable(&h.ops);
    assert_eq!(v.indeterminate_writes, 2);
}

#[test]
fn indeterminate_write_may_take_effect_after_the_client_gave_up() {
    let mut h = H::default();
    h.write(1, "k", "1", 0, 10);
    // Times out at t=100, but is applied around t=250.
    let id = h.write_unknown(1, "k", "2", 20);
    h.ops[id as usize].complete = Some(100);
    h.read(2, "k", Some("1"), 200, 210);
    h.read(2, "k", Some("2"), 300, 310);
    assert_linearizable(&h.ops);
}

#[test]
fn failed_write_is_ignored() {
    let mut h = H::default();
    h.write(1, "k", "1", 0, 10);
    h.write_failed(1, "k", "2", 20, 30);
    h.read(2, "k", Some("1"), 40, 50);
    let v = assert_linearizable(&h.ops);
    assert_eq!(v.dropped_failed, 1);
    assert_eq!(v.ops_checked, 2);
}

#[test]
fn indeterminate_read_carries_no_information() {
    let mut h = H::default();
    h.write(1, "k", "1", 0, 10);
    let id = h.read_unknown(2, "k", 20);
    h.ops[id as usize].outcome = Outcome::Unknown;
    h.read(2, "k", Some("1"), 40, 50);
    let v = assert_linearizable(&h.ops);
    assert_eq!(v.dropped_unknown_reads, 1);
}

#[test]
fn initial_values_are_honoured() {
    let mut h = H::default();
    h.read(1, "k", Some("seed"), 0, 10);
    h.write(1, "k", "1", 20, 30);
    h.read(1, "k", Some("1"), 40, 50);
    let initial = HashMap::from([("k".to_string(), Some("seed".to_string()))]);
    let v = check_with_initial(&h.ops, &initial);
    assert!(v.linearizable, "{v}");
    // Without it, the first read returns a value nobody wrote.
    assert_violation(&h.ops, "k");
}

#[test]
fn many_concurrent_writes_are_checked_through_memoisation() {
    // 12 fully concurrent writes can be ordered 12! ways; memoisation collapses that
    // to (subset, value) pairs.
    let mut h = H::default();
    for i in 0..12 {
        h.write(i, "k", &i.to_string(), i, 100 + i);
    }
    h.read(20, "k", Some("5"), 200, 210);
    let v = assert_linearizable(&h.ops);
    assert!(v.states_explored < 100_000, "{v}");

    h.read(21, "k", Some("6"), 220, 230);
    assert_violation(&h.ops, "k");
}

// ---- known-non-linearizable histories --------------------------------------------

#[test]
fn stale_read_after_acknowledged_write_is_flagged() {
    let mut h = H::default();
    let w = h.write(1, "k", "1", 0, 10);
    let r = h.read(2, "k", None, 20, 30);
    let f = assert_violation(&h.ops, "k");
    assert_eq!(ids(&f.minimal_ops), vec![w, r]);
    assert!(f.explanation.contains("acknowledged"), "{}", f.explanation);
    assert!(f.explanation.contains("before the read began"), "{}", f.explanation);
    assert!(f.fully_minimized);
}

#[test]
fn minimal_failing_set_of_a_stale_read_is_the_write_and_the_read() {
    let mut h = H::default();
    let w0 = h.write(1, "k", "0", 0, 10);
    h.read(2, "k", Some("0"), 12, 18);
    let w1 = h.write(1, "k", "1", 20, 30);
    h.read(2, "k", Some("1"), 32, 40);
    h.write(4, "other", "x", 33, 45);
    let stale = h.read(3, "k", Some("0"), 50, 60);
    h.write(1, "k", "2", 70, 80);
    h.read(2, "k", Some("2"), 90, 95);
    h.write_unknown(4, "k", "3", 96);
    h.read(2, "k", Some("3"), 100, 110);
    let f = assert_violation(&h.ops, "k");
    // The acknowledged newer write, the stale read, and the write of the old value
    // (the "initial state" of the register as far as the read is concerned).
    assert_eq!(ids(&f.minimal_ops), vec![w0, w1, stale]);
    assert!(
        f.explanation.contains("returned \"0\"")
            && f.explanation.contains("\"1\" was written and acknowledged"),
        "{}",
        f.explanation
    );
}

#[test]
fn read_of_a_value_never_written_is_flagged() {
    let mut h = H::default();
    h.write(1, "k", "1", 0, 10);
    h.write(1, "k", "2", 20, 30);
    let r = h.read(2, "k", Some("3"), 25, 35);
    let f = assert_violation(&h.ops, "k");
    assert_eq!(ids(&f.minimal_ops), vec![r]);
    assert!(f.explanation.contains("never written"), "{}", f.explanation);
}

#[test]
fn read_of_a_failed_write_is_flagged() {
    let mut h = H::default();
    h.write_failed(1, "k", "1", 0, 10);
    h.read(2, "k", Some("1"), 20, 30);
    let f = assert_violation(&h.ops, "k");
    assert!(f.explanation.contains("reported as failed"), "{}", f.explanation);
}

#[test]
fn reads_going_backwards_are_flagged() {
    let mut h = H::default();
    h.write(1, "k", "1", 0, 10);
    h.write(1, "k", "2", 20, 30);
    h.read(2, "k", Some("2"), 40, 50);
    h.read(3, "k", Some("1"), 60, 70);
    assert_violation(&h.ops, "k");
}

#[test]
fn reads_going_backwards_during_a_long_write_are_flagged() {
    // Each read alone is fine (the second write is still running); together they are
    // not: once "2" has been seen, "1" cannot come back.
    let mut h = H::default();
    h.write(1, "k", "1", 0, 10);
    h.write(1, "k", "2", 20, 100);
    h.read(2, "k", Some("2"), 30, 40);
    h.read(3, "k", Some("1"), 50, 60);
    let f = assert_violation(&h.ops, "k");
    assert_eq!(f.minimal_ops.len(), 4);
    assert!(f.explanation.contains("an earlier read"), "{}", f.explanation);
}

#[test]
fn read_of_a_value_written_after_the_read_completed_is_flagged() {
    let mut h = H::default();
    h.write(1, "k", "1", 0, 10);
    let r = h.read(2, "k", Some("2"), 20, 30);
    let w = h.write(1, "k", "2", 40, 50);
    let f = assert_violation(&h.ops, "k");
    // The shortest failing prefix ends with the read, before the write began.
    assert_eq!(ids(&f.minimal_ops), vec![r]);
    assert!(f.explanation.contains("after the read had completed"), "{}", f.explanation);
    assert!(f.explanation.contains("t=40..50"), "{}", f.explanation);
    let _ = w;
}

#[test]
fn lost_acknowledged_write_amid_indeterminate_ops_is_flagged() {
    let mut h = H::default();
    h.write(1, "k", "1", 0, 10);
    let lost = h.write(1, "k", "2", 20, 30);
    h.write_unknown(2, "k", "3", 25);
    h.delete_unknown(3, "k", 28);
    h.read_unknown(4, "k", 29);
    h.write_failed(5, "k", "1", 31, 33);
    h.read(2, "k", Some("1"), 40, 50);
    h.read(3, "k", Some("1"), 60, 70);
    h.write_unknown(4, "k", "4", 65);
    h.read(2, "k", Some("1"), 80, 90);
    let f = assert_violation(&h.ops, "k");
    assert!(f.minimal_ops.iter().any(|o| o.id == lost), "{f:?}");
    assert!(f.minimal_ops.len() <= 3, "{f:?}");
}

#[test]
fn deleted_value_coming_back_is_flagged() {
    let mut h = H::default();
    h.write(1, "k", "1", 0, 10);
    h.delete(1, "k", 20, 30);
    h.read(2, "k", Some("1"), 40, 50);
    let f = assert_violation(&h.ops, "k");
    assert!(f.explanation.contains("a delete was acknowledged"), "{}", f.explanation);
}

#[test]
fn violation_on_one_key_is_reported_for_that_key_only() {
    let mut h = H::default();
    for (i, key) in ["a", "b", "c"].iter().enumerate() {
        let t = i as u64;
        h.write(1, key, "1", t, 10 + t);
        h.write(2, key, "2", 20 + t, 30 + t);
        h.read(3, key, Some("2"), 40 + t, 50 + t);
    }
    h.read(3, "b", Some("1"), 60, 70);
    let v = check(&h.ops);
    assert!(!v.linearizable);
    assert_eq!(v.keys_checked, 3);
    assert_eq!(v.failures.len(), 1, "{v}");
    assert_eq!(v.failures[0].key, "b");
    assert!(v.failures[0].minimal_ops.iter().all(|o| o.key == "b"));
}

#[test]
fn state_bound_makes_the_key_undecided_not_linearizable() {
    let mut h = H::default();
    for i in 0..10 {
        h.write(i, "k", &i.to_string(), i, 100 + i);
    }
    h.read(20, "k", Some("5"), 200, 210);
    // Not linearizable, so the search has to exhaust every order of the writes.
    h.read(21, "k", Some("6"), 220, 230);
    let opts = CheckOptions { max_states_per_key: 50, ..CheckOptions::default() };
    let v = check_with_options(&h.ops, &opts);
    assert!(!v.linearizable);
    assert!(v.failures.is_empty());
    assert_eq!(v.undecided.len(), 1);
    assert_eq!(v.undecided[0].key, "k");
    assert!(v.to_string().contains("undecided"), "{v}");
}

#[test]
fn malformed_history_is_not_accepted() {
    let mut h = H::default();
    h.write(1, "k", "1", 10, 5);
    h.write(1, "k", "2", 20, 30);
    h.ops[1].id = 0;
    let v = check(&h.ops);
    assert!(!v.linearizable);
    assert_eq!(v.malformed.len(), 2, "{v}");
}

#[test]
fn report_lists_minimal_ops_one_per_line() {
    let mut h = H::default();
    h.write(1, "other", "1", 0, 10);
    h.write_unknown(2, "x", "5", 1100);
    h.write(3, "x", "7", 1200, 1350);
    h.read(1, "x", Some("5"), 1400, 1500);
    h.read(4, "x", Some("7"), 1600, 1700);
    let v = check(&h.ops);
    let report = v.to_string();
    eprintln!("{report}");
    assert!(report.starts_with("NOT LINEARIZABLE (1 of 2 keys)"), "{report}");
    assert!(report.contains("key \"x\": not linearizable; 4 of its 4 ops"), "{report}");
    assert!(
        report.contains(r#"    client 3   write  k="x" v="7"              [t=1200 .. 1350]  ok"#),
        "{report}"
    );
    assert!(
        report.contains(r#"    client 1   read   k="x" -> "5"             [t=1400 .. 1500]  ok"#),
        "{report}"
    );
    assert!(
        report.contains(r#"    client 2   write  k="x" v="5"              [t=1100 .. ?]  unknown"#),
        "{report}"
    );
    assert!(
        report.contains("an earlier read (client 1, t=1400..1500, finished before this one began) had already returned \"5\""),
        "{report}"
    );
    // Sorted by invocation.
    let lines: Vec<&str> = report.lines().filter(|l| l.starts_with("    client")).collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].contains("t=1100") && lines[3].contains("t=1600"), "{report}");
}

#[test]
fn verdict_display_for_a_good_history() {
    let mut h = H::default();
    h.write(1, "k", "1", 0, 10);
    let report = check(&h.ops).to_string();
    assert!(report.starts_with("LINEARIZABLE"), "{report}");
}

#[test]
fn jsonl_round_trip() {
    let mut h = H::default();
    h.write(1, "k", "with \"quotes\"\nand newline", 0, 10);
    h.write_unknown(2, "k", "2", 5);
    h.delete(1, "j", 11, 12);
    h.read(3, "k", None, 20, 30);
    h.read_unknown(3, "k", 31);
    h.write_failed(1, "k", "x", 40, 41);
    let text = history_to_jsonl(&h.ops);
    assert_eq!(text.lines().count(), h.ops.len());
    assert!(text.contains(r#""kind":{"type":"delete"}"#), "{text}");
    let back = history_from_jsonl(&format!("\n{text}\n")).unwrap();
    assert_eq!(back, h.ops);
}

#[test]
fn jsonl_errors_name_the_line() {
    let mut h = H::default();
    h.write(1, "k", "1", 0, 10);
    let text = format!("{}{{not json}}\n", history_to_jsonl(&h.ops));
    let err = history_from_jsonl(&text).unwrap_err();
    assert!(err.to_string().starts_with("history line 2:"), "{err}");
}

// ---- randomized histories from a register simulation -------------------------------

/// SplitMix64, so that a seed reproduces a history exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

struct Sim {
    clients: u64,
    ops: usize,
    keys: usize,
    /// Draw written values from a three-letter alphabet instead of unique ones.
    small_values: bool,
    unknown_pct: u64,
    fail_pct: u64,
}

/// Runs `clients` sequential clients against a real register per key. Each successful
/// op takes effect at a random instant inside its [invoke, complete] window; an
/// indeterminate write takes effect (or not) at a random instant after its invocation,
/// possibly long after the client gave up on it. Reads return what the register held at
/// their instant. The result is linearizable by construction.
fn simulate(seed: u64, sim: &Sim) -> Vec<Op> {
    let mut rng = Rng(seed);
    let mut free_at: Vec<u64> = (0..sim.clients).map(|_| rng.below(20)).collect();
    let mut ops = Vec::with_capacity(sim.ops);
    // (instant, op index) of every op that takes effect.
    let mut effects: Vec<(u64, usize)> = Vec::new();
    for id in 0..sim.ops {
        let client = (0..sim.clients as usize).min_by_key(|&c| free_at[c]).unwrap_or(0);
        let invoke = free_at[client] + rng.below(10);
        let key = format!("k{}", rng.below(sim.keys as u64));
        let kind = match rng.below(100) {
            0..=44 => OpKind::Read,
            45..=84 => OpKind::Write(if sim.small_values {
                ["a", "b", "c"][rng.below(3) as usize].to_string()
            } else {
                format!("v{id}")
            }),
            _ => OpKind::Delete,
        };
        let (complete, outcome) = if rng.percent(sim.fail_pct) {
            (Some(invoke + 1 + rng.below(40)), Outcome::Fail)
        } else if rng.percent(sim.unknown_pct) {
            if kind != OpKind::Read && rng.percent(50) {
                effects.push((invoke + rng.below(400), id));
            }
            let gave_up = rng.percent(50).then_some(invoke + 100);
            (gave_up, Outcome::Unknown)
        } else {
            let instant = invoke + rng.below(50);
            effects.push((instant, id));
            (Some(instant + rng.below(50)), Outcome::Ok(None))
        };
        free_at[client] = complete.unwrap_or(invoke + 100);
        ops.push(Op { id: id as u64, client: client as u64, key, kind, invoke, complete, outcome });
    }
    effects.sort_unstable();
    let mut registers: HashMap<String, Option<String>> = HashMap::new();
    for (_, i) in effects {
        let op = &mut ops[i];
        let reg = registers.entry(op.key.clone()).or_default();
        match &op.kind {
            OpKind::Write(v) => *reg = Some(v.clone()),
            OpKind::Delete => *reg = None,
            OpKind::Read => op.outcome = Outcome::Ok(reg.clone()),
        }
    }
    ops
}

/// Replaces the value of one successful read with a value nobody wrote.
fn corrupt_one_read(ops: &mut [Op], rng: &mut Rng) -> Option<usize> {
    let reads: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].read_value().is_some()).collect();
    let i = *reads.get(rng.below(reads.len().max(1) as u64) as usize)?;
    ops[i].outcome = Outcome::Ok(Some("never-written".to_string()));
    Some(i)
}

/// Appends, after everything else has completed, a read returning the value of an
/// acknowledged write that another acknowledged write followed in real time. With
/// unique values this is a stale read, so the history is no longer linearizable.
fn append_stale_read(ops: &mut Vec<Op>, rng: &mut Rng) -> Option<(u64, u64)> {
    let acked = |o: &&Op| {
        o.written().is_some() && o.outcome != Outcome::Fail && o.outcome != Outcome::Unknown
    };
    let old: Vec<&Op> = ops
        .iter()
        .filter(acked)
        .filter(|w| matches!(w.kind, OpKind::Write(_)))
        .filter(|w| ops.iter().filter(acked).any(|w2| w2.key == w.key && w.precedes(w2)))
        .collect();
    let w = old.get(rng.below(old.len().max(1) as u64) as usize)?;
    let end = ops.iter().map(|o| o.complete.unwrap_or(o.invoke).max(o.invoke)).max()? + 1_000;
    let read = Op {
        id: ops.len() as u64,
        client: 999,
        key: w.key.clone(),
        kind: OpKind::Read,
        invoke: end,
        complete: Some(end + 10),
        outcome: Outcome::Ok(w.written().flatten().map(String::from)),
    };
    let ids = (w.id, read.id);
    ops.push(read);
    Some(ids)
}

/// Appends, after everything else, two acknowledged sequential writes of fresh values
/// and a read returning the first: a stale read that nothing else in the history can
/// explain, but that only a search (to the very end of the history) can find.
fn append_fresh_stale_read(ops: &mut Vec<Op>, key: &str) -> u64 {
    let end =
        ops.iter().map(|o| o.complete.unwrap_or(o.invoke).max(o.invoke)).max().unwrap_or(0) + 1_000;
    let mut push = |kind: OpKind, t: u64, outcome: Outcome| {
        let id = ops.len() as u64;
        ops.push(Op {
            id,
            client: 999,
            key: key.to_string(),
            kind,
            invoke: t,
            complete: Some(t + 10),
            outcome,
        });
        id
    };
    push(OpKind::Write("fresh-1".into()), end, Outcome::Ok(None));
    push(OpKind::Write("fresh-2".into()), end + 20, Outcome::Ok(None));
    push(OpKind::Read, end + 40, Outcome::Ok(Some("fresh-1".into())))
}

fn check_simulated(seed: u64, sim: &Sim) {
    let mut ops = simulate(seed, sim);
    let v = check(&ops);
    assert!(v.linearizable, "seed {seed}: simulated history rejected:\n{v}");

    let mut fresh = ops.clone();
    let read = append_fresh_stale_read(&mut fresh, "k0");
    let v = check(&fresh);
    assert!(!v.linearizable, "seed {seed}: stale read accepted:\n{v}");
    assert!(v.undecided.is_empty(), "seed {seed}:\n{v}");
    let f = v.failure("k0").unwrap_or_else(|| panic!("seed {seed}:\n{v}"));
    assert_eq!(ids(&f.minimal_ops), vec![read - 2, read - 1, read], "seed {seed}:\n{v}");

    if !sim.small_values {
        let mut stale = ops.clone();
        if let Some((write, read)) = append_stale_read(&mut stale, &mut Rng(seed)) {
            let v = check(&stale);
            assert!(!v.linearizable, "seed {seed}: stale read accepted:\n{v}");
            assert_eq!(v.failures.len(), 1, "seed {seed}:\n{v}");
            let f = &v.failures[0];
            let witness = ids(&f.minimal_ops);
            assert!(witness.contains(&write) && witness.contains(&read), "seed {seed}:\n{v}");
            assert!(f.fully_minimized, "seed {seed}:\n{v}");
            assert!(f.explanation.contains("acknowledged"), "seed {seed}:\n{v}");
            assert!(!check(&f.minimal_ops).linearizable, "seed {seed}:\n{v}");
        }
    }

    let mut rng = Rng(seed ^ 0x00C0_FFEE);
    let Some(i) = corrupt_one_read(&mut ops, &mut rng) else {
        return;
    };
    let key = ops[i].key.clone();
    let v = check(&ops);
    assert!(!v.linearizable, "seed {seed}: corrupted read of op {i} accepted:\n{v}");
    assert_eq!(v.failures.len(), 1, "seed {seed}:\n{v}");
    let f = &v.failures[0];
    assert_eq!(f.key, key);
    assert!(f.minimal_ops.iter().any(|o| o.id == ops[i].id), "seed {seed}:\n{v}");
    assert!(f.explanation.contains("never written"), "seed {seed}:\n{v}");
    assert!(!check(&f.minimal_ops).linearizable, "seed {seed}:\n{v}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn simulated_histories_pass_and_a_corrupted_read_is_caught(
        seed in any::<u64>(),
        small_values in any::<bool>(),
        clients in 2u64..8,
    ) {
        check_simulated(seed, &Sim {
            clients,
            ops: 200,
            keys: 2,
            small_values,
            unknown_pct: 10,
            fail_pct: 5,
        });
    }
}

#[test]
fn simulated_histories_with_many_indeterminate_ops_pass() {
    for seed in 0..16 {
        check_simulated(
            seed,
            &Sim {
                clients: 6,
                ops: 300,
                keys: 1,
                small_values: seed % 2 == 0,
                unknown_pct: 30,
                fail_pct: 5,
            },
        );
    }
}

// ---- performance -----------------------------------------------------------------

#[test]
fn two_thousand_ops_on_one_key_are_checked_quickly() {
    let sim =
        Sim { clients: 8, ops: 2_000, keys: 1, small_values: false, unknown_pct: 5, fail_pct: 3 };
    let ops = simulate(42, &sim);
    let start = Instant::now();
    let v = check(&ops);
    let took = start.elapsed();
    assert!(v.linearizable, "{v}");
    assert!(v.undecided.is_empty());
    assert!(v.states_explored < 50_000, "{v}");
    eprintln!("2000 ops: {took:?}, {} states", v.states_explored);
}

#[test]
fn stale_read_in_the_middle_of_a_long_history_is_shrunk_to_a_few_ops() {
    let sim =
        Sim { clients: 8, ops: 2_000, keys: 1, small_values: false, unknown_pct: 10, fail_pct: 5 };
    let mut ops = simulate(8, &sim);
    let acked = |o: &Op| o.written().is_some() && o.outcome == Outcome::Ok(None);
    // A read in the middle, an acknowledged write (or delete) that completed before it
    // began, and an acknowledged write that completed before that one began: make the
    // read return the older write's (unique) value.
    let r = 1_000 + ops[1_000..].iter().position(|o| o.read_value().is_some()).unwrap();
    let newer = ops
        .iter()
        .filter(|w| acked(w) && w.precedes(&ops[r]))
        .max_by_key(|w| w.complete)
        .unwrap()
        .clone();
    let older = ops
        .iter()
        .filter(|w| acked(w) && matches!(w.kind, OpKind::Write(_)) && w.precedes(&newer))
        .max_by_key(|w| w.complete)
        .unwrap()
        .clone();
    ops[r].outcome = Outcome::Ok(older.written().unwrap().map(String::from));

    let start = Instant::now();
    let v = check(&ops);
    eprintln!("{v}took {:?}", start.elapsed());
    assert!(!v.linearizable);
    let f = v.failure("k0").unwrap();
    let witness = ids(&f.minimal_ops);
    assert!(witness.contains(&older.id) && witness.contains(&ops[r].id), "{v}");
    assert!(f.minimal_ops.len() <= 4, "{v}");
    assert!(f.fully_minimized, "{v}");
    assert!(!check(&f.minimal_ops).linearizable);
}

// ---- agreement with a brute-force checker ----------------------------------------

/// Linearizability by exhaustive enumeration, straight from the definition: some order
/// of the operations that respects real time (an op may go next iff no other
/// remaining acknowledged op completed before it was invoked) and in which every read
/// returns the latest write, with indeterminate writes free to be left out.
fn brute_force_linearizable(history: &[Op]) -> bool {
    let ops: Vec<&Op> = history
        .iter()
        .filter(|o| o.outcome != Outcome::Fail)
        .filter(|o| !(o.kind == OpKind::Read && o.outcome == Outcome::Unknown))
        .collect();
    fn go(ops: &[&Op], placed: &mut Vec<bool>, state: Option<&str>) -> bool {
        let required_left =
            ops.iter().zip(placed.iter()).any(|(o, &p)| !p && o.outcome != Outcome::Unknown);
        if !required_left {
            return true;
        }
        for i in 0..ops.len() {
            if placed[i] {
                continue;
            }
            let blocked = (0..ops.len()).any(|j| !placed[j] && j != i && ops[j].precedes(ops[i]));
            if blocked {
                continue;
            }
            let next = match (&ops[i].kind, &ops[i].outcome) {
                (OpKind::Read, Outcome::Ok(v)) if v.as_deref() == state => state,
                (OpKind::Read, _) => continue,
                (OpKind::Write(v), _) => Some(v.as_str()),
                (OpKind::Delete, _) => None,
            };
            placed[i] = true;
            let ok = go(ops, placed, next);
            placed[i] = false;
            if ok {
                return true;
            }
        }
        false
    }
    go(&ops, &mut vec![false; ops.len()], None)
}

/// A small history of arbitrary (mostly nonsensical) operations on one key.
fn random_small_history(rng: &mut Rng) -> Vec<Op> {
    let n = 1 + rng.below(9) as usize;
    let values = ["a", "b", "c"];
    let nvalues = 1 + rng.below(3) as usize;
    (0..n)
        .map(|id| {
            let invoke = rng.below(40);
            let complete = invoke + rng.below(20);
            let kind = match rng.below(10) {
                0..=3 => OpKind::Read,
                4..=7 => OpKind::Write(values[rng.below(nvalues as u64) as usize].to_string()),
                _ => OpKind::Delete,
            };
            let outcome = match rng.below(10) {
                0..=6 => Outcome::Ok(match kind {
                    OpKind::Read => match rng.below(nvalues as u64 + 1) as usize {
                        0 => None,
                        i => Some(values[i - 1].to_string()),
                    },
                    _ => None,
                }),
                7..=8 => Outcome::Unknown,
                _ => Outcome::Fail,
            };
            let complete = (outcome != Outcome::Unknown).then_some(complete);
            Op {
                id: id as u64,
                client: id as u64,
                key: "k".to_string(),
                kind,
                invoke,
                complete,
                outcome,
            }
        })
        .collect()
}

#[test]
fn checker_agrees_with_brute_force_on_small_random_histories() {
    let mut rng = Rng(2024);
    let (mut good, mut bad) = (0, 0);
    for case in 0..4_000 {
        let history = random_small_history(&mut rng);
        let expected = brute_force_linearizable(&history);
        let v = check(&history);
        assert_eq!(
            v.linearizable,
            expected,
            "case {case}: checker says {}, brute force says {expected}:\n{v}\n{}",
            v.linearizable,
            history_to_jsonl(&history)
        );
        if expected {
            good += 1;
        } else {
            bad += 1;
            // The witness is a sub-history that brute force also rejects.
            let f = &v.failures[0];
            assert!(!brute_force_linearizable(&f.minimal_ops), "case {case}:\n{v}");
        }
    }
    // Both kinds of history were exercised.
    assert!(good > 500 && bad > 500, "{good} linearizable, {bad} not");
}
