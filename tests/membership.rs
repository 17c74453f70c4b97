//! Membership changes at run time, as a user makes them: `raft-nosql cluster add-node`,
//! `remove-node` and `members` against a real supervisor and real node processes.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use common::supervised::{Supervised, WAIT};
use common::{eventually, http};
use serde_json::{json, Value};

/// Small snapshot thresholds, so a node added after a few hundred writes must be sent a
/// snapshot: the leader has purged the log it would otherwise replay.
const SNAPSHOTS: &str = "snapshot_logs_since_last = 100\nmax_in_snapshot_log_to_keep = 10\n";

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Runs a CLI command that must succeed; its output.
fn ok(c: &Supervised, args: &[&str]) -> String {
    let out = c.cli(args);
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}\n--- supervisor:\n{}",
        text(&out),
        c.output()
    );
    text(&out)
}

/// Runs a CLI command that must fail; its output.
fn refused(c: &Supervised, args: &[&str]) -> String {
    let out = c.cli(args);
    assert!(!out.status.success(), "{args:?} should have been refused:\n{}", text(&out));
    text(&out)
}

/// The supervisor's `GET /members`.
fn members(c: &Supervised) -> Value {
    http().get(c.url("/members")).send().unwrap().json().unwrap()
}

fn voters(c: &Supervised) -> Vec<u64> {
    eventually(WAIT, "the membership", || {
        let m = members(c);
        m["members"]["voters"].as_array().map(|v| v.iter().filter_map(Value::as_u64).collect())
    })
}

/// The leader's address, as the supervisor sees it.
fn leader_addr(c: &Supervised) -> String {
    let id = c.wait_leader_other_than(None);
    c.addr_of(id).unwrap()
}

fn create_table(c: &Supervised) {
    ok(c, &["create-table", "--table-name", "members_t", "--partition-key-name", "pk"]);
}

/// Puts `pk` through the leader (following its redirects); true once acknowledged.
fn put(addr: &str, pk: &str) -> bool {
    raft_nosql::tls::install_provider(); // reqwest needs a rustls provider
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    client
        .put(format!("http://{addr}/tables/members_t/items"))
        .json(&json!({"pk": pk, "v": pk}))
        .send()
        .is_ok_and(|r| r.status().is_success())
}

/// Writers that put unique keys through whichever node leads, until stopped; the keys
/// acknowledged.
struct Load<'a> {
    stop: AtomicBool,
    acked: Mutex<BTreeSet<String>>,
    cluster: &'a Supervised,
}

impl Load<'_> {
    fn run(&self, writer: usize) {
        let mut n = 0;
        while !self.stop.load(Ordering::SeqCst) {
            let Some(addr) = self.cluster.view().and_then(|v| {
                let id = v["leader"]["id"].as_u64()?;
                self.cluster.addr_of(id)
            }) else {
                continue;
            };
            let pk = format!("w{writer}-{n}");
            if put(&addr, &pk) {
                self.acked.lock().unwrap().insert(pk);
                n += 1;
            }
        }
    }
}

/// Every running node has applied what the leader committed and holds the same digest.
fn converged(c: &Supervised) -> (u64, String) {
    eventually(WAIT, "every running node to hold the same data", || {
        let v = c.view()?;
        let nodes: Vec<&Value> =
            v["nodes"].as_array()?.iter().filter(|n| n["state"] == "running").collect();
        let first = &nodes.first()?["status"];
        let same = nodes.iter().all(|n| {
            n["status"]["digest"] == first["digest"]
                && n["status"]["digest_index"] == first["digest_index"]
                && n["status"]["applied"] == n["status"]["committed"]
        });
        same.then(|| (first["digest_index"].as_u64().unwrap_or(0), first["digest"].to_string()))
    })
}

/// The acknowledged keys are all readable with a strong read on the leader and an
/// eventual read on `node_addr`.
fn all_present(c: &Supervised, acked: &BTreeSet<String>, node_addr: &str) {
    let leader = leader_addr(c);
    let client = http();
    for pk in acked {
        for (addr, consistency) in [(leader.as_str(), "strong"), (node_addr, "eventual")] {
            let url =
                format!("http://{addr}/tables/members_t/items?pk={pk}&consistency={consistency}");
            let r = client.get(&url).send().unwrap();
            assert_eq!(r.status(), 200, "acknowledged {pk} missing on {addr} ({consistency})");
        }
    }
}

fn node_log(c: &Supervised, id: u64) -> String {
    std::fs::read_to_string(c.data.join(format!("node{id}/node.log"))).unwrap_or_default()
}

/// Grow 3 → 5 under a write load (the 5th node by snapshot), then remove the leader:
/// the others elect a new one, and no acknowledged write is lost.
#[test]
fn grow_to_five_under_load_then_remove_the_leader() {
    let c = Supervised::start_with(3, SNAPSHOTS);
    create_table(&c);
    let load =
        Load { stop: AtomicBool::new(false), acked: Mutex::new(BTreeSet::new()), cluster: &c };
    std::thread::scope(|s| {
        for w in 0..2 {
            let load = &load;
            s.spawn(move || load.run(w));
        }
        eventually(WAIT, "writes before the first add", || {
            (load.acked.lock().unwrap().len() >= 50).then_some(())
        });
        let out = ok(&c, &["cluster", "add-node"]);
        assert!(out.contains("node 3") && out.contains("is a voter"), "{out}");
        assert_eq!(voters(&c), vec![0, 1, 2, 3]);
        // More writes than the leader keeps in its log: the next node needs a snapshot.
        let before = load.acked.lock().unwrap().len();
        eventually(WAIT, "writes between the adds", || {
            (load.acked.lock().unwrap().len() >= before + 300).then_some(())
        });
        let out = ok(&c, &["cluster", "add-node"]);
        assert!(out.contains("node 4") && out.contains("is a voter"), "{out}");
        assert_eq!(voters(&c), vec![0, 1, 2, 3, 4]);
        assert!(
            node_log(&c, 4).contains("\"snapshot_installed\""),
            "node 4 caught up by snapshot:\n{}",
            node_log(&c, 4)
        );

        let old = c.wait_leader_other_than(None);
        let out = ok(&c, &["cluster", "remove-node", "leader"]);
        assert!(out.contains(&format!("node {old} removed")), "{out}");
        let new = c.wait_leader_other_than(Some(old));
        assert_ne!(new, old);
        let after = load.acked.lock().unwrap().len();
        eventually(WAIT, "writes through the new leader", || {
            (load.acked.lock().unwrap().len() >= after + 20).then_some(())
        });
        load.stop.store(true, Ordering::SeqCst);
    });
    let v: Vec<u64> = voters(&c);
    assert_eq!(v.len(), 4, "{v:?}");
    let old_gone = c.view().unwrap()["nodes"].as_array().unwrap().len();
    assert_eq!(old_gone, 4, "the supervisor runs the four members only");
    converged(&c);
    let acked = load.acked.into_inner().unwrap();
    all_present(&c, &acked, &c.addr_of(4).unwrap());
    // Every step is a named event in the logs.
    let logs: String = (0..5).map(|i| node_log(&c, i)).collect();
    for event in ["learner_added", "learner_caught_up", "membership_changed", "node_removed"] {
        assert!(logs.contains(&format!("\"{event}\"")), "no {event} event in the node logs");
    }
    assert!(logs.contains("\"joint\":"), "membership_changed shows the joint configuration");
}

/// Five nodes keep writing with two of them killed; the cluster then shrinks to one
/// voter, which still takes writes; the last voter cannot be removed.
#[test]
fn five_survive_two_kills_and_shrink_to_one() {
    let c = Supervised::start_with(5, "");
    create_table(&c);
    let leader = c.wait_leader_other_than(None);
    let victims: Vec<u64> = (0..5).filter(|i| *i != leader).take(2).collect();
    for v in &victims {
        ok(&c, &["cluster", "kill", &v.to_string()]);
    }
    assert!(put(&leader_addr(&c), "with-two-down"), "a write with two of five down");
    for v in &victims {
        ok(&c, &["cluster", "remove-node", &v.to_string(), "--purge"]);
        assert!(!c.data.join(format!("node{v}")).exists(), "--purge deleted node {v}'s data");
    }
    assert_eq!(voters(&c).len(), 3);
    while voters(&c).len() > 1 {
        let follower = voters(&c)
            .into_iter()
            .find(|v| Some(*v) != c.view().unwrap()["leader"]["id"].as_u64())
            .unwrap();
        ok(&c, &["cluster", "remove-node", &follower.to_string()]);
    }
    let last = voters(&c)[0];
    assert!(put(&leader_addr(&c), "with-one-voter"), "a one-voter cluster takes writes");
    let out = refused(&c, &["cluster", "remove-node", &last.to_string()]);
    assert!(out.contains("last voter"), "{out}");
    assert_eq!(voters(&c), vec![last]);
}

/// Bad requests are refused with a message and change nothing.
#[test]
fn bad_changes_are_refused_and_change_nothing() {
    let c = Supervised::start(3);
    let taken = c.addr_of(1).unwrap();
    let out = refused(&c, &["cluster", "add-node", "--id", "1"]);
    assert!(out.contains("already in use"), "{out}");
    let out = refused(&c, &["cluster", "add-node", "--addr", &taken]);
    assert!(out.contains("already in use"), "{out}");
    let out = refused(&c, &["cluster", "add-node", "--addr", "not-an-address"]);
    assert!(out.contains("not an ip:port"), "{out}");
    let out = refused(&c, &["cluster", "remove-node", "7"]);
    assert!(out.contains("node 7"), "{out}");
    // One change at a time.
    ok(&c, &["cluster", "add-node", "--no-wait"]);
    let out = refused(&c, &["cluster", "add-node"]);
    assert!(out.contains("in progress"), "{out}");
    eventually(WAIT, "the first add to finish", || {
        (members(&c)["change"]["phase"] == "done").then_some(())
    });
    assert_eq!(voters(&c), vec![0, 1, 2, 3]);
    let out = ok(&c, &["cluster", "members"]);
    assert!(out.contains("voters:") && out.contains("3 (127.0.0.1:"), "{out}");
}

/// A changed membership survives `cluster stop` and a new start; a whole-cluster SIGKILL
/// during a change recovers to the old or the new configuration, with a quorum.
#[test]
fn a_changed_membership_survives_restarts_and_crashes_mid_change() {
    let mut c = Supervised::start(3);
    create_table(&c);
    ok(&c, &["cluster", "add-node"]);
    ok(&c, &["cluster", "remove-node", "0"]);
    assert_eq!(voters(&c), vec![1, 2, 3]);
    c.stop_server();
    c.restart_server();
    assert_eq!(voters(&c), vec![1, 2, 3]);
    let ids: Vec<u64> = c.view().unwrap()["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["id"].as_u64())
        .collect();
    assert_eq!(ids, vec![1, 2, 3], "the supervisor runs the recorded members, not cluster.toml's");
    assert!(put(&leader_addr(&c), "after-restart"));

    // Crash during an add, at a few points of it.
    for delay_ms in [0, 300, 1000] {
        let before = voters(&c);
        ok(&c, &["cluster", "add-node", "--no-wait"]);
        std::thread::sleep(Duration::from_millis(delay_ms)); // crash point within the add
        c.kill_server();
        c.restart_server();
        let after = eventually(WAIT, "a settled membership", || {
            let m = members(&c)["members"].clone();
            (m["joint"].as_array().is_none_or(|j| j.is_empty()) && m["committed"] == true)
                .then_some(m)
        });
        let now: Vec<u64> =
            after["voters"].as_array().unwrap().iter().filter_map(Value::as_u64).collect();
        assert!(
            now == before
                || (now.len() == before.len() + 1 && before.iter().all(|b| now.contains(b))),
            "after a crash at {delay_ms} ms: {before:?} became {now:?}"
        );
        let running: BTreeSet<u64> = c.view().unwrap()["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n["id"].as_u64())
            .collect();
        let members_now: BTreeSet<u64> =
            after["nodes"].as_object().unwrap().keys().map(|k| k.parse().unwrap()).collect();
        assert_eq!(running, members_now, "the supervisor runs exactly the members");
        assert!(put(&leader_addr(&c), &format!("after-crash-{delay_ms}")), "a quorum takes writes");
    }
}
