//! Jepsen-style runs: a concurrent workload of writes and strong reads on a few keys,
//! through random nodes, while a nemesis injects faults (kill and restart a node, kill
//! the leader, pause/resume, partition/heal, whole-cluster crash) and changes the
//! membership (add a node, remove a random node or the leader). Every operation's
//! invocation, completion and result is recorded; at the end the history is checked for
//! linearizability and the cluster for convergence, crashes and panics.
//!
//! Membership changes go through the leader's `/admin/members/*` steps, as an operator
//! would: a new node is started, added as a learner, and promoted once caught up; a
//! removed node is killed once its removal is committed. The cluster keeps 3 to 5
//! voters. The workload clients use the current members only (a shared list the nemesis
//! updates: a learner joins it once added, a removed node leaves it before it is
//! killed). A step that fails (no leader, a lost answer, another change in progress) is
//! retried until a deadline, then given up and recorded as failed; a joint
//! configuration left behind is settled.
//!
//! Shortcut taken: the nemesis is one thread, so a membership change never overlaps
//! another fault in time, only its after-effects (an election, a restarted node
//! catching up).
//!
//! The same harness checks conditional writes (a compare-and-set register and an `ADD`
//! counter) and transactions (transfers that must never be seen half applied).
//!
//! `make test` runs short versions. `scripts/chaos.sh` runs the same tests longer
//! through the environment: `NEMESIS_SECS` (workload duration, default 20; the first
//! round of the fault list always runs whole), `CRASH_ROUNDS` (whole-cluster crash
//! rounds, default 3), `NEMESIS_SEED`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use common::workload::{
    client, env_u64, perform, read_outcome, register_client, write_outcome, Rng, Targets, KEYS,
    TABLE,
};
use common::{eventually, TestCluster};
use raft_nosql::check::{self, Op, OpKind, Outcome};
use raft_nosql::server::members::Members;
use reqwest::Method;
use serde_json::{json, Value};

const CLIENTS: u64 = 5;

/// The faults the nemesis can inject.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    KillNode,
    KillLeader,
    PauseNode,
    PauseLeader,
    PartitionNode,
    PartitionLeader,
    CrashAll,
    /// Start a node, add it as a learner, promote it once caught up.
    AddNode,
    /// Remove a random member (voter or learner), then kill it.
    RemoveNode,
    /// Remove the leader (it steps down once the change commits), then kill it.
    RemoveLeader,
}

/// Every fault, the ones `make test` must see first.
const FAULTS: [Fault; 11] = [
    Fault::KillLeader,
    Fault::AddNode,
    Fault::PauseLeader,
    Fault::RemoveLeader,
    Fault::PartitionNode,
    Fault::AddNode,
    Fault::PartitionLeader,
    Fault::CrashAll,
    Fault::RemoveNode,
    Fault::PauseNode,
    Fault::KillNode,
];

/// The cluster keeps between this many voters...
const MIN_VOTERS: usize = 3;
/// ...and this many: an add at the minimum, a removal at the maximum.
const MAX_VOTERS: usize = 5;

fn current_leader(c: &TestCluster) -> Option<usize> {
    (0..c.addrs.len()).find_map(|i| {
        c.children[i].as_ref()?;
        let s = c.status(i)?;
        (s["role"] == "Leader").then_some(i)
    })
}

/// The client of the nemesis's membership steps. A change commits two entries (joint,
/// then final); an answer slower than this is lost, and the step is checked and retried.
fn admin_client() -> reqwest::blocking::Client {
    common::workload::client_with_timeout(Duration::from_secs(5))
}

/// The membership as a running node that says it leads sees it, with that node's id.
fn leader_members(c: &TestCluster, http: &reqwest::blocking::Client) -> Option<(usize, Members)> {
    let leader = current_leader(c)?;
    let m: Members = http.get(c.url(leader, "/admin/members")).send().ok()?.json().ok()?;
    (m.leader_id == Some(leader as u64)).then_some((leader, m))
}

/// [`leader_members`], polled until there is a leader or `deadline` passes.
fn wait_leader_members(c: &TestCluster, deadline: Instant) -> Option<(usize, Members)> {
    let http = admin_client();
    loop {
        if let Some(lm) = leader_members(c, &http) {
            return Some(lm);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100)); // poll for a leader, bounded by the deadline
    }
}

/// Runs membership step `step` (`add-learner`, `promote`, `remove`, `settle`) on the
/// leader until the leader's membership satisfies `done` with no change in progress, or
/// `deadline` passes (then the last failure). Each round asks the leader of the moment:
/// an answer lost to a timeout or a leader change is judged by the membership itself, a
/// joint configuration left behind is settled first, and 409 (another change in
/// progress, a learner still behind), 503 and connection errors are retried.
fn change_members(
    c: &TestCluster,
    step: &str,
    body: &Value,
    done: impl Fn(&Members) -> bool,
    deadline: Instant,
) -> Result<Members, String> {
    let http = admin_client();
    let mut last = "no leader".to_string();
    loop {
        if let Some((leader, m)) = leader_members(c, &http) {
            if done(&m) && !m.changing() {
                return Ok(m);
            }
            let step = if m.joint.is_empty() { step } else { "settle" };
            let url = c.url(leader, &format!("/admin/members/{step}"));
            match perform(&http, Method::POST, url, Some(body)) {
                Ok((200, _)) => {}
                Ok((s, b)) => last = format!("{step}: {s} {}", b["error"]["message"]),
                Err(e) => last = format!("{step}: {e:?}"),
            }
        }
        if Instant::now() > deadline {
            return Err(last);
        }
        std::thread::sleep(Duration::from_millis(100)); // poll: retry the step, bounded by the deadline
    }
}

/// What the nemesis knows of the membership beyond the leader's view.
#[derive(Default)]
struct Membership {
    /// A node process started for an add whose learner step failed: never a member, it
    /// is the next add's newcomer (a node that was once a member is never re-added).
    spare: Option<usize>,
}

/// The nemesis schedule, until `deadline`: after half a second of workload alone, every
/// fault of `faults` once (in order, even past the deadline, so each is certainly
/// exercised), then random ones until the deadline, each held 1-2.5 s with 0.5-1.5 s of
/// quiet between them (seeded by `seed`). Returns what was injected.
fn fault_schedule(
    c: &mut TestCluster,
    targets: &Targets,
    faults: &[Fault],
    seed: u64,
    deadline: Instant,
) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut membership = Membership::default();
    let mut injected = Vec::new();
    std::thread::sleep(Duration::from_millis(500)); // schedule: workload first, within the deadline
    let mut schedule = faults.iter().copied();
    loop {
        let fault = match schedule.next() {
            Some(f) => f,
            None if Instant::now() < deadline => faults[rng.below(faults.len() as u64) as usize],
            None => break,
        };
        let hold = Duration::from_millis(1000 + rng.below(1500));
        injected.push(inject(c, targets, &mut membership, fault, &mut rng, hold));
        std::thread::sleep(Duration::from_millis(500 + rng.below(1000))); // schedule: quiet time before the next fault, within the deadline
    }
    injected
}

/// Injects one fault, holds it, then undoes it. Returns a description.
fn inject(
    c: &mut TestCluster,
    targets: &Targets,
    membership: &mut Membership,
    fault: Fault,
    rng: &mut Rng,
    hold: Duration,
) -> String {
    if matches!(fault, Fault::AddNode | Fault::RemoveNode | Fault::RemoveLeader) {
        return change_membership(c, targets, membership, fault, rng);
    }
    let live = c.live();
    let random = live[rng.below(live.len() as u64) as usize];
    let leader = current_leader(c).unwrap_or(random);
    let target = match fault {
        Fault::KillLeader | Fault::PauseLeader | Fault::PartitionLeader => leader,
        _ => random,
    };
    let deadline = Instant::now() + hold;
    let hold_until = || {
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50)); // hold the fault until the deadline
        }
    };
    match fault {
        Fault::KillNode | Fault::KillLeader => {
            c.kill(target);
            hold_until();
            c.restart(target);
        }
        Fault::PauseNode | Fault::PauseLeader => {
            c.pause(target);
            hold_until();
            c.resume(target);
        }
        Fault::PartitionNode | Fault::PartitionLeader => {
            c.partition(&[target]);
            hold_until();
            c.heal();
        }
        Fault::CrashAll => return crash_all(c, targets, rng, hold_until),
        Fault::AddNode | Fault::RemoveNode | Fault::RemoveLeader => unreachable!(),
    }
    format!("{fault:?}({target})")
}

/// SIGKILLs every node, holds, restarts them all. Half the time when the cluster has
/// a voter to spare, the crash comes in the middle of removing a random voter: the
/// removal is sent, and the nodes are killed a random 0-40 ms later, which may leave the
/// change anywhere (not started, joint, final). After the restart a joint configuration
/// is settled, and a node the log no longer has is retired.
fn crash_all(
    c: &mut TestCluster,
    targets: &Targets,
    rng: &mut Rng,
    hold_until: impl Fn(),
) -> String {
    let live = c.live();
    let mut removal = None;
    if let Some((leader, m)) = leader_members(c, &admin_client()) {
        if m.voters.len() > MIN_VOTERS && !m.changing() && rng.below(2) == 0 {
            let victim = m.voters[rng.below(m.voters.len() as u64) as usize] as usize;
            let url = c.url(leader, "/admin/members/remove");
            let sent = std::thread::spawn(move || {
                let _ = admin_client().post(url).json(&json!({"id": victim})).send();
            });
            std::thread::sleep(Duration::from_millis(rng.below(40))); // let the removal reach a random point
            removal = Some((victim, sent));
        }
    }
    for &i in &live {
        c.kill(i);
    }
    let victim = removal.map(|(victim, sent)| {
        let _ = sent.join();
        victim
    });
    hold_until();
    for &i in &live {
        c.restart(i);
    }
    // A change cut between its two entries leaves a joint configuration: the new
    // leader is asked to finish it.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut outcome = match wait_leader_members(c, deadline) {
        None => "no leader".to_string(),
        Some((_, m)) if m.joint.is_empty() => m.describe(),
        Some((_, m)) => {
            let joint = m.describe();
            match change_members(c, "settle", &json!({}), |_| true, deadline) {
                Ok(m) => format!("settled {joint} to {}", m.describe()),
                Err(e) => format!("settle of {joint} failed: {e}"),
            }
        }
    };
    if let Some(victim) = victim {
        let now = wait_leader_members(c, deadline).map(|(_, m)| m).filter(|m| !m.changing());
        let fate = match now {
            Some(m) if !m.nodes.contains_key(&(victim as u64)) => {
                targets.write().unwrap().retain(|a| *a != c.addrs[victim]);
                c.retire(victim);
                "removed"
            }
            Some(_) => "still a member",
            None => "unknown",
        };
        outcome = format!("mid-removal of {victim} ({fate}); {outcome}");
    }
    format!("CrashAll({outcome})")
}

/// One membership change, turned into an add or a removal as needed to keep the
/// voters between [`MIN_VOTERS`] and [`MAX_VOTERS`]. Returns `AddNode(id)`,
/// `RemoveNode(id)` or `RemoveLeader(id)` when the change completed, the same name
/// with `Failed` when a step gave up (the reason in the description).
fn change_membership(
    c: &mut TestCluster,
    targets: &Targets,
    membership: &mut Membership,
    fault: Fault,
    rng: &mut Rng,
) -> String {
    let Some((leader, m)) = wait_leader_members(c, Instant::now() + Duration::from_secs(10)) else {
        return format!("{fault:?}Skipped(no leader)");
    };
    let fault = match fault {
        _ if m.voters.len() <= MIN_VOTERS => Fault::AddNode,
        Fault::AddNode if m.voters.len() >= MAX_VOTERS => Fault::RemoveNode,
        f => f,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    if fault == Fault::AddNode {
        // A learner left by an add whose promotion failed is promoted first.
        let leftover = m.learners.iter().map(|&l| l as usize).find(|l| !c.retired.contains(l));
        let id = match leftover {
            Some(id) => id,
            None => {
                let id = membership.spare.take().unwrap_or_else(|| c.add_node());
                let body = json!({"id": id, "addr": c.addrs[id]});
                let added = |m: &Members| m.nodes.contains_key(&(id as u64));
                if let Err(e) = change_members(c, "add-learner", &body, added, deadline) {
                    membership.spare = Some(id);
                    return format!("AddNodeFailed({id}: {e})");
                }
                targets.write().unwrap().push(c.addrs[id].clone());
                id
            }
        };
        let voter = |m: &Members| m.voters.contains(&(id as u64));
        return match change_members(c, "promote", &json!({"id": id}), voter, deadline) {
            Ok(m) => format!("AddNode({id}: {})", m.describe()),
            Err(e) => format!("AddNodeFailed({id}: stays a learner, {e})"),
        };
    }
    let members: Vec<u64> = m.nodes.keys().copied().collect();
    let id = match fault {
        Fault::RemoveLeader => leader,
        _ => members[rng.below(members.len() as u64) as usize] as usize,
    };
    let gone = |m: &Members| !m.nodes.contains_key(&(id as u64));
    match change_members(c, "remove", &json!({"id": id}), gone, deadline) {
        Ok(m) => {
            // Out of the clients' list first, then killed: a request already sent to
            // it gets a broken connection (indeterminate), a later one never reaches it.
            targets.write().unwrap().retain(|a| *a != c.addrs[id]);
            c.retire(id);
            format!("{fault:?}({id}: {})", m.describe())
        }
        Err(e) => format!("{fault:?}Failed({id}: {e})"),
    }
}

/// The report of one nemesis run.
struct Report {
    ops: usize,
    indeterminate: usize,
    faults: Vec<String>,
    verdict: check::Verdict,
}

/// Runs the workload for `secs` seconds with the nemesis cycling `faults`.
fn run_nemesis(secs: u64, faults: &[Fault], seed: u64) -> Report {
    let mut c = TestCluster::start(3);
    c.create_table(TABLE);
    let targets: Targets = RwLock::new(c.addrs.clone());
    let start = Instant::now();
    let now_us = || start.elapsed().as_micros() as u64;
    let history: Mutex<Vec<Op>> = Mutex::new(Vec::new());
    let next_id = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let mut injected = Vec::new();

    std::thread::scope(|s| {
        for client_id in 0..CLIENTS {
            let (targets, history, next_id, stop) = (&targets, &history, &next_id, &stop);
            s.spawn(move || {
                register_client(client_id, seed, targets, history, next_id, stop, now_us)
            });
        }
        let deadline = start + Duration::from_secs(secs);
        injected = fault_schedule(&mut c, &targets, faults, seed, deadline);
        stop.store(true, Ordering::SeqCst);
    });

    // Quiesce: every fault undone, no membership change in progress; a node process
    // that is not a member (an add given up before its learner step, a removal whose
    // answer was lost) is stopped. Then one final strong read per key joins the history.
    c.heal();
    let deadline = Instant::now() + Duration::from_secs(30);
    let members = change_members(&c, "settle", &json!({}), |_| true, deadline)
        .unwrap_or_else(|e| panic!("a settled membership after the run: {e}"));
    let ids: Vec<usize> = members.nodes.keys().map(|&i| i as usize).collect();
    for i in c.live() {
        if !ids.contains(&i) {
            c.retire(i);
        }
    }
    for &i in &ids {
        assert!(c.live().contains(&i) && c.is_running(i), "member {i} runs:\n{}", c.output(i));
    }
    let leader = c.wait_leader();
    let http = client();
    let mut final_values = BTreeMap::new();
    for k in 0..KEYS {
        let key = format!("k{k}");
        let (invoke, outcome) = eventually(Duration::from_secs(30), "a final strong read", || {
            let invoke = now_us();
            let r = perform(
                &http,
                Method::GET,
                c.url(leader, &format!("/tables/regs/items?pk={key}&consistency=strong")),
                None,
            );
            match read_outcome(&r) {
                Outcome::Unknown => None,
                o => Some((invoke, o)),
            }
        });
        if let Outcome::Ok(v) = &outcome {
            final_values.insert(key.clone(), v.clone());
        }
        let id = next_id.fetch_add(1, Ordering::SeqCst);
        history.lock().unwrap().push(Op {
            id,
            client: CLIENTS,
            key,
            kind: OpKind::Read,
            invoke,
            complete: Some(now_us()),
            outcome,
        });
    }

    // Convergence: equal digests at equal indexes on every member.
    eventually(Duration::from_secs(60), "every member to converge to one digest", || {
        let st: Vec<Value> = ids.iter().map(|&i| c.status(i)).collect::<Option<_>>()?;
        let same_index = st
            .iter()
            .all(|s| s["digest_index"] == st[0]["digest_index"] && s["applied"] == s["committed"]);
        (same_index && st.iter().all(|s| s["digest"] == st[0]["digest"])).then_some(())
    });
    // The final values are on every member (eventual reads agree with the strong ones).
    for (key, v) in &final_values {
        for &i in &ids {
            let r = perform(
                &http,
                Method::GET,
                c.url(i, &format!("/tables/regs/items?pk={key}")),
                None,
            )
            .unwrap();
            assert_eq!(r.1["item"]["v"].as_str().map(str::to_string), *v, "node {i} key {key}");
        }
    }
    // No crash other than the nemesis's kills, and no panic in any log (members and
    // the nodes that left alike).
    for &i in &ids {
        assert!(c.is_running(i), "node {i} exited on its own:\n{}", c.output(i));
    }
    for i in 0..c.addrs.len() {
        assert!(!c.output(i).contains("panicked"), "node {i} panicked:\n{}", c.output(i));
    }

    let history = history.into_inner().unwrap();
    let indeterminate = history.iter().filter(|o| matches!(o.outcome, Outcome::Unknown)).count();
    let verdict = check::check(&history);
    if !verdict.linearizable {
        let path = std::env::temp_dir().join(format!("nemesis-history-{seed}.jsonl"));
        std::fs::write(&path, check::history_to_jsonl(&history)).unwrap();
        eprintln!("history saved to {}", path.display());
    }
    eprintln!("final membership: {}", members.describe());
    Report { ops: history.len(), indeterminate, faults: injected, verdict }
}

fn print_report(name: &str, r: &Report) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for f in &r.faults {
        *counts.entry(f.split('(').next().unwrap()).or_default() += 1;
    }
    eprintln!(
        "{name}: {} ops ({} indeterminate), {} faults {:?}\n{}",
        r.ops,
        r.indeterminate,
        r.faults.len(),
        counts,
        r.verdict
    );
    // The membership changes, each with the membership it left (or why it failed).
    for f in &r.faults {
        if ["Add", "Remove", "CrashAll"].iter().any(|k| f.starts_with(k)) {
            eprintln!("membership change: {f}");
        }
    }
}

/// A short nemesis run with kill-leader, pause and partition faults, a node added and
/// the leader removed (and the others): the history is linearizable, nothing
/// acknowledged is lost, the members converge.
#[test]
fn nemesis_run_is_linearizable_and_converges() {
    let secs = env_u64("NEMESIS_SECS", 20);
    let seed = env_u64("NEMESIS_SEED", std::process::id() as u64);
    let report = run_nemesis(secs, &FAULTS, seed);
    print_report(&format!("nemesis run (seed {seed}, {secs}s)"), &report);
    assert!(report.verdict.linearizable, "history is not linearizable:\n{}", report.verdict);
    let acked = report.ops - report.indeterminate;
    assert!(acked > 50, "enough operations completed ({acked})");
    for kind in ["KillLeader(", "PauseLeader(", "PartitionNode(", "AddNode(", "RemoveLeader("] {
        assert!(
            report.faults.iter().any(|f| f.starts_with(kind)),
            "{kind} injected: {:?}",
            report.faults
        );
    }
}

/// SIGKILL of all three nodes in the middle of a write load, then a restart: every
/// acknowledged write is there. `CRASH_ROUNDS` rounds.
#[test]
fn whole_cluster_crash_mid_write_load_keeps_every_acknowledged_write() {
    let rounds = env_u64("CRASH_ROUNDS", 3);
    let mut c = TestCluster::start(3);
    let table = r#"{"table_name":"durable","partition_key":{"name":"k","type":"S"}}"#;
    c.create_table(table);
    let mut all_acked: Vec<String> = Vec::new();
    for round in 0..rounds {
        let acked: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let count = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        let addrs = c.addrs.clone();
        std::thread::scope(|s| {
            for w in 0..4u64 {
                let (acked, count, stop, addrs) = (&acked, &count, &stop, &addrs);
                s.spawn(move || {
                    let http = client();
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst) {
                        i += 1;
                        let key = format!("r{round}-w{w}-{i}");
                        let url = format!(
                            "http://{}/tables/durable/items",
                            addrs[(w as usize + i) % addrs.len()]
                        );
                        if let Ok((200, _)) =
                            perform(&http, Method::PUT, url, Some(&json!({"k": key})))
                        {
                            acked.lock().unwrap().push(key);
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
            eventually(Duration::from_secs(30), "writes acknowledged before the crash", || {
                (count.load(Ordering::SeqCst) >= 100).then_some(())
            });
            for i in 0..3 {
                c.kill(i);
            }
            stop.store(true, Ordering::SeqCst);
        });
        for i in 0..3 {
            c.restart(i);
        }
        let leader = c.wait_leader();
        all_acked.extend(acked.into_inner().unwrap());
        let http = client();
        for key in &all_acked {
            let r = eventually(Duration::from_secs(10), "a read of an acknowledged key", || {
                let url =
                    c.url(leader, &format!("/tables/durable/items?pk={key}&consistency=strong"));
                match perform(&http, Method::GET, url, None) {
                    Ok((s, b)) if s == 200 || s == 404 => Some((s, b)),
                    _ => None,
                }
            });
            assert_eq!(r.0, 200, "round {round}: acknowledged write {key} lost");
        }
        eprintln!("crash round {round}: {} acknowledged writes all present", all_acked.len());
    }
}

// ---- compare-and-set and transactions under faults -----------------------------------

/// Compare-and-set under faults: clients through random nodes increment one counter
/// (`PATCH ... ADD n :one`, an update decided at apply time) and move one register by
/// conditional puts (`PUT ...?if_version=N`, N the version they last read) while the
/// nemesis kills, pauses and partitions nodes. Afterwards the counter equals the
/// acknowledged increments plus at most the indeterminate ones, no two conditional puts
/// succeeded from the same version, and the register's history (strong reads and the
/// puts) is linearizable.
#[test]
fn compare_and_set_under_faults() {
    let secs = env_u64("NEMESIS_SECS", 20);
    let seed = env_u64("NEMESIS_SEED", std::process::id() as u64);
    let mut c = TestCluster::start(3);
    c.create_table(r#"{"table_name":"cas","partition_key":{"name":"k","type":"S"}}"#);
    let addrs = c.addrs.clone();
    let start = Instant::now();
    let now_us = || start.elapsed().as_micros() as u64;
    let history: Mutex<Vec<Op>> = Mutex::new(Vec::new());
    // (version it was conditioned on, value written) of every acknowledged CAS.
    let wins: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
    let (acked_incs, unknown_incs) = (AtomicU64::new(0), AtomicU64::new(0));
    let next_id = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let mut injected = Vec::new();
    std::thread::scope(|s| {
        for client_id in 0..CLIENTS {
            let (addrs, history, wins, next_id, stop) = (&addrs, &history, &wins, &next_id, &stop);
            let (acked_incs, unknown_incs) = (&acked_incs, &unknown_incs);
            s.spawn(move || {
                let http = client();
                let mut rng = Rng::new(seed ^ ((client_id + 1) * 104_729));
                let mut seq = 0;
                let mut seen_version = 0;
                while !stop.load(Ordering::SeqCst) {
                    let node = &addrs[rng.below(addrs.len() as u64) as usize];
                    let id = next_id.fetch_add(1, Ordering::SeqCst);
                    let invoke = now_us();
                    let op = match rng.below(3) {
                        0 => {
                            let url = format!("http://{node}/tables/cas/items?pk=counter");
                            let body = json!({"update": "ADD n :one", "values": {":one": 1}});
                            let r = perform(&http, Method::PATCH, url, Some(&body));
                            match write_outcome(&r) {
                                Outcome::Ok(_) => acked_incs.fetch_add(1, Ordering::SeqCst),
                                Outcome::Unknown => unknown_incs.fetch_add(1, Ordering::SeqCst),
                                Outcome::Fail => 0,
                            };
                            None
                        }
                        1 => {
                            let url =
                                format!("http://{node}/tables/cas/items?pk=reg&consistency=strong");
                            let r = perform(&http, Method::GET, url, None);
                            if let Ok((200, b)) = &r {
                                seen_version = b["version"].as_u64().unwrap_or(0);
                            }
                            if let Ok((404, _)) = &r {
                                seen_version = 0;
                            }
                            Some((OpKind::Read, read_outcome(&r)))
                        }
                        _ => {
                            seq += 1;
                            let v = format!("c{client_id}-{seq}");
                            let url =
                                format!("http://{node}/tables/cas/items?if_version={seen_version}");
                            let body = json!({"k": "reg", "v": v});
                            let r = perform(&http, Method::PUT, url, Some(&body));
                            if let Ok((200, b)) = &r {
                                wins.lock().unwrap().push((seen_version, v.clone()));
                                seen_version = b["version"].as_u64().unwrap_or(0);
                            }
                            Some((OpKind::Write(v), write_outcome(&r)))
                        }
                    };
                    let Some((kind, outcome)) = op else { continue };
                    let complete = match outcome {
                        Outcome::Unknown => None,
                        _ => Some(now_us()),
                    };
                    if !matches!(outcome, Outcome::Ok(_)) {
                        std::thread::sleep(Duration::from_millis(20)); // client backoff
                    }
                    let key = "reg".to_string();
                    let op = Op { id, client: client_id, key, kind, invoke, complete, outcome };
                    history.lock().unwrap().push(op);
                }
            });
        }
        let deadline = start + Duration::from_secs(secs);
        let faults =
            [Fault::KillLeader, Fault::PauseLeader, Fault::PartitionLeader, Fault::KillNode];
        let targets = RwLock::new(c.addrs.clone());
        injected = fault_schedule(&mut c, &targets, &faults, seed, deadline);
        stop.store(true, Ordering::SeqCst);
    });
    c.heal();
    let leader = c.wait_leader();
    let http = client();
    let counter = eventually(Duration::from_secs(30), "a strong read of the counter", || {
        let url = c.url(leader, "/tables/cas/items?pk=counter&consistency=strong");
        match perform(&http, Method::GET, url, None) {
            Ok((200, b)) => b["item"]["n"].as_u64(),
            Ok((404, _)) => Some(0),
            _ => None,
        }
    });
    let (acked, unknown) = (acked_incs.into_inner(), unknown_incs.into_inner());
    eprintln!(
        "compare-and-set (seed {seed}, {secs}s): counter {counter}, {acked} increments \
         acknowledged, {unknown} indeterminate; faults {injected:?}"
    );
    assert!(counter >= acked, "an acknowledged increment was lost: {counter} < {acked}");
    assert!(
        counter <= acked + unknown,
        "increments applied twice: {counter} > {acked} + {unknown}"
    );
    let wins = wins.into_inner().unwrap();
    let mut from: HashMap<u64, &str> = HashMap::new();
    for (version, v) in &wins {
        if let Some(other) = from.insert(*version, v) {
            panic!("two conditional puts succeeded from version {version}: {other} and {v}");
        }
    }
    assert!(wins.len() > 5, "enough conditional puts succeeded ({})", wins.len());
    let history = history.into_inner().unwrap();
    let verdict = check::check(&history);
    assert!(verdict.linearizable, "the register's history is not linearizable:\n{verdict}");
}

/// One DynamoDB API call (`POST /` with `X-Amz-Target`) to `node`; `None` if no answer.
fn dynamodb(
    c: &reqwest::blocking::Client,
    node: &str,
    op: &str,
    body: &Value,
) -> Option<(u16, Value)> {
    let r = c
        .post(format!("http://{node}/"))
        .header("x-amz-target", format!("DynamoDB_20120810.{op}"))
        .header("content-type", "application/x-amz-json-1.0")
        .json(body)
        .send()
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().unwrap_or(Value::Null)))
}

const ACCOUNTS: u64 = 5;
const OPENING_BALANCE: u64 = 100;

/// The balances in a TransactGetItems or Scan answer, if it answered every account.
fn balances(items: &[Value]) -> Option<Vec<u64>> {
    let b: Vec<u64> =
        items.iter().filter_map(|i| i["balance"]["N"].as_str()?.parse().ok()).collect();
    (b.len() == ACCOUNTS as usize).then_some(b)
}

/// Transactions are atomic under crashes: clients move money between accounts with
/// TransactWriteItems (a conditional debit and a credit, one log entry) through random
/// nodes while the leader is SIGKILLed and, once per round, the whole cluster crashes.
/// Readers use TransactGetItems and consistent Scans: none ever sees a total other than
/// the opening one (a half-applied transfer), and neither does the final read.
#[test]
fn transactions_are_atomic_under_crashes() {
    let rounds = env_u64("CRASH_ROUNDS", 3);
    let seed = env_u64("NEMESIS_SEED", std::process::id() as u64);
    let mut c = TestCluster::start(3);
    c.create_table(r#"{"table_name":"bank","partition_key":{"name":"k","type":"S"}}"#);
    let http = client();
    for a in 0..ACCOUNTS {
        let body = json!({"k": format!("acct{a}"), "balance": OPENING_BALANCE});
        let r = perform(&http, Method::PUT, c.url(0, "/tables/bank/items"), Some(&body));
        assert!(matches!(r, Ok((200, _))), "opening balance: {r:?}");
    }
    let total = ACCOUNTS * OPENING_BALANCE;
    let key = |a: u64| json!({"k": {"S": format!("acct{a}")}});
    let (committed, reads) = (AtomicU64::new(0), AtomicU64::new(0));
    for round in 0..rounds {
        let stop = AtomicBool::new(false);
        let addrs = c.addrs.clone();
        let before = committed.load(Ordering::SeqCst);
        std::thread::scope(|s| {
            for w in 0..4u64 {
                let (addrs, stop, committed, reads) = (&addrs, &stop, &committed, &reads);
                s.spawn(move || {
                    let http = client();
                    let mut rng = Rng::new(seed ^ ((round + 1) * 31 + w + 1));
                    while !stop.load(Ordering::SeqCst) {
                        let node = &addrs[rng.below(addrs.len() as u64) as usize];
                        if w == 3 {
                            // A reader: TransactGetItems and consistent Scans in turn.
                            let got = if rng.below(2) == 0 {
                                let gets: Vec<Value> = (0..ACCOUNTS)
                                    .map(|a| json!({"Get": {"TableName": "bank", "Key": key(a)}}))
                                    .collect();
                                let r = dynamodb(
                                    &http,
                                    node,
                                    "TransactGetItems",
                                    &json!({"TransactItems": gets}),
                                );
                                r.filter(|r| r.0 == 200).and_then(|(_, b)| {
                                    let items: Vec<Value> = b["Responses"]
                                        .as_array()?
                                        .iter()
                                        .map(|x| x["Item"].clone())
                                        .collect();
                                    balances(&items)
                                })
                            } else {
                                let body = json!({"TableName": "bank", "ConsistentRead": true});
                                dynamodb(&http, node, "Scan", &body)
                                    .filter(|r| r.0 == 200)
                                    .and_then(|(_, b)| balances(b["Items"].as_array()?))
                            };
                            match got {
                                Some(b) => {
                                    assert_eq!(
                                        b.iter().sum::<u64>(),
                                        total,
                                        "a reader saw a half-applied transfer: {b:?}"
                                    );
                                    reads.fetch_add(1, Ordering::SeqCst);
                                }
                                None => std::thread::sleep(Duration::from_millis(20)), // client backoff
                            }
                            continue;
                        }
                        let from = rng.below(ACCOUNTS);
                        let to = (from + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
                        let amount = json!({":x": {"N": (1 + rng.below(30)).to_string()}});
                        let body = json!({"TransactItems": [
                            {"Update": {"TableName": "bank", "Key": key(from),
                                "UpdateExpression": "SET balance = balance - :x",
                                "ConditionExpression": "balance >= :x",
                                "ExpressionAttributeValues": amount}},
                            {"Update": {"TableName": "bank", "Key": key(to),
                                "UpdateExpression": "SET balance = balance + :x",
                                "ExpressionAttributeValues": amount}},
                        ]});
                        match dynamodb(&http, node, "TransactWriteItems", &body) {
                            Some((200, _)) => {
                                committed.fetch_add(1, Ordering::SeqCst);
                            }
                            _ => std::thread::sleep(Duration::from_millis(20)), // client backoff
                        }
                    }
                });
            }
            // Leader kills while the load runs, then the whole cluster crashes.
            for _ in 0..2 {
                let target = before + 20;
                eventually(Duration::from_secs(60), "transfers committed", || {
                    (committed.load(Ordering::SeqCst) >= target).then_some(())
                });
                let leader = c.wait_leader();
                c.kill(leader);
                c.wait_leader();
                c.restart(leader);
            }
            let target = committed.load(Ordering::SeqCst) + 10;
            eventually(Duration::from_secs(60), "transfers after the leader kills", || {
                (committed.load(Ordering::SeqCst) >= target).then_some(())
            });
            for i in 0..3 {
                c.kill(i);
            }
            for i in 0..3 {
                c.restart(i);
            }
            c.wait_leader();
            let target = committed.load(Ordering::SeqCst) + 10;
            eventually(Duration::from_secs(60), "transfers after the crash", || {
                (committed.load(Ordering::SeqCst) >= target).then_some(())
            });
            stop.store(true, Ordering::SeqCst);
        });
        eprintln!(
            "transactions round {round}: {} transfers committed, {} consistent reads",
            committed.load(Ordering::SeqCst),
            reads.load(Ordering::SeqCst)
        );
    }
    let leader = c.wait_leader();
    let http = client();
    let body = json!({"TableName": "bank", "ConsistentRead": true});
    let b = eventually(Duration::from_secs(30), "a final consistent scan", || {
        dynamodb(&http, &c.addrs[leader], "Scan", &body)
            .filter(|r| r.0 == 200)
            .and_then(|(_, b)| balances(b["Items"].as_array()?))
    });
    assert_eq!(b.iter().sum::<u64>(), total, "final balances {b:?}");
    assert!(reads.load(Ordering::SeqCst) > 0, "the readers read");
}
