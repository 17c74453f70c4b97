//! The cluster across a real network: every node in its own network namespace with its
//! own address on a bridge (`scripts/netns-cluster.sh`), and the faults made of real
//! packets in the kernel: a delay on every packet a node sends, a share of them dropped,
//! nftables rules that cut a node off. Nothing here uses the nodes' own fault injection.
//!
//! Skipped, with the reason printed, only where the kernel or the user refuses network
//! namespaces (not root, `unshare --net` refused).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use common::netns::{unavailable, NetnsCluster};
use common::workload::{client, perform, read_outcome, register_client, Targets, KEYS, TABLE};
use common::{eventually, http, send_following};
use raft_nosql::check::{self, Op, OpKind, Outcome};
use reqwest::Method;
use serde_json::{json, Value};

/// A cluster of `n` nodes in namespaces, or None (and why, printed) where the kernel
/// refuses network namespaces.
fn cluster(n: usize, tag: &str) -> Option<NetnsCluster> {
    if let Some(reason) = unavailable() {
        eprintln!("skipping: {reason}");
        return None;
    }
    Some(NetnsCluster::start(n, tag))
}

/// Writes `v` to register `key` through node `node` (following the redirect to the
/// leader), retrying until it is acknowledged.
fn put(c: &NetnsCluster, node: usize, key: &str, v: &str) {
    let body = json!({"k": key, "v": v});
    eventually(Duration::from_secs(30), &format!("write {key}={v} through node {node}"), || {
        let r = send_following(Method::PUT, &c.url(node, "/tables/regs/items"), Some(&body))?;
        (r.status() == 200).then_some(())
    });
}

/// Register `key` as node `node` reads it, strongly or from its own state.
fn read(c: &NetnsCluster, node: usize, key: &str, strong: bool) -> Option<Option<String>> {
    let consistency = if strong { "&consistency=strong" } else { "" };
    let url = c.url(node, &format!("/tables/regs/items?pk={key}{consistency}"));
    let r = send_following(Method::GET, &url, None)?;
    let status = r.status();
    let body: Value = r.json().ok()?;
    match status.as_u16() {
        200 => Some(body["item"]["v"].as_str().map(str::to_string)),
        404 if body["error"]["code"] == "item_not_found" => Some(None),
        _ => None,
    }
}

/// Waits until a strong read of `key` on node `node` answers; returns the value.
fn strong_read(c: &NetnsCluster, node: usize, key: &str) -> Option<String> {
    eventually(Duration::from_secs(30), &format!("a strong read of {key} on node {node}"), || {
        read(c, node, key, true)
    })
}

/// With 10 ms +/- 2 ms of one-way delay on every packet of every node, the cluster
/// elects a new leader when its leader is killed, takes writes through any node, and
/// answers strong reads on every node; the restarted node catches up.
#[test]
fn delayed_network_elects_a_leader_takes_writes_and_answers_strong_reads() {
    let Some(c) = cluster(3, "d") else { return };
    for i in 0..3 {
        c.delay(i, 10, 2);
    }
    c.create_table(TABLE);
    let first = c.wait_leader();
    c.kill(first);
    let others: Vec<usize> = (0..3).filter(|&i| i != first).collect();
    let leader = c.wait_leader_among(&others);
    assert_ne!(leader, first);
    let mut last = BTreeMap::new();
    for n in 0..20 {
        let key = format!("k{}", n % KEYS);
        let v = format!("v{n}");
        put(&c, others[n % 2], &key, &v);
        last.insert(key, v);
    }
    c.start_node(first);
    c.wait_converged(&[0, 1, 2]);
    for i in 0..3 {
        for (key, v) in &last {
            assert_eq!(strong_read(&c, i, key).as_deref(), Some(v.as_str()), "node {i} {key}");
        }
    }
}

/// An nftables partition of the leader: the majority elects a new leader and keeps
/// committing, while the old leader cannot commit (a write sent to it is never
/// acknowledged and never appears). After the heal the nodes converge to one digest.
#[test]
fn partitioned_leader_cannot_commit_and_the_majority_elects_a_new_one() {
    let Some(c) = cluster(3, "p") else { return };
    c.create_table(TABLE);
    let old = c.wait_leader();
    put(&c, old, "k0", "before");

    c.partition(old);
    let majority: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    let new = c.wait_leader_among(&majority);
    assert_ne!(new, old);

    // The old leader still believes it leads: it takes the write but cannot commit it.
    let r = http()
        .put(c.url(old, "/tables/regs/items"))
        .json(&json!({"k": "k0", "v": "cut-off"}))
        .send();
    match r {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = resp.text().unwrap_or_default();
            assert!(status == 504 || status == 503, "write to the cut-off leader: {status} {body}");
        }
        Err(e) => assert!(e.is_timeout(), "write to the cut-off leader: {e}"),
    }
    put(&c, new, "k0", "majority");
    assert_eq!(strong_read(&c, new, "k0").as_deref(), Some("majority"));

    c.heal();
    c.wait_leader();
    c.wait_converged(&[0, 1, 2]);
    for i in 0..3 {
        assert_eq!(read(&c, i, "k0", false), Some(Some("majority".into())), "node {i}");
        assert_eq!(strong_read(&c, i, "k0").as_deref(), Some("majority"), "node {i}");
    }
}

/// 5% of the packets of one follower dropped: writes are still acknowledged, strong
/// reads on that follower still answer, and it keeps up (one digest with the others
/// while the loss goes on).
#[test]
fn five_percent_loss_on_a_follower_does_not_stop_the_cluster() {
    let Some(c) = cluster(3, "l") else { return };
    c.create_table(TABLE);
    let leader = c.wait_leader();
    let follower = (leader + 1) % 3;
    c.loss(follower, 5);
    for n in 0..40 {
        let key = format!("k{}", n % KEYS);
        put(&c, n % 3, &key, &format!("v{n}"));
        if n % 10 == 9 {
            assert_eq!(strong_read(&c, follower, &key), Some(format!("v{n}")));
        }
    }
    c.wait_converged(&[0, 1, 2]);
}

/// The workload of `tests/nemesis.rs` (writes and strong reads of a few registers
/// through random nodes) over delayed links (10 ms +/- 2 ms) while the network breaks
/// for real: the leader partitioned, 5% loss on a follower, a follower partitioned. The
/// history is linearizable and the nodes converge.
#[test]
fn history_under_real_network_faults_is_linearizable() {
    let Some(c) = cluster(3, "n") else { return };
    for i in 0..3 {
        c.delay(i, 10, 2);
    }
    c.create_table(TABLE);
    let targets: Targets = RwLock::new(c.addrs.clone());
    let start = Instant::now();
    let now_us = || start.elapsed().as_micros() as u64;
    let history: Mutex<Vec<Op>> = Mutex::new(Vec::new());
    let next_id = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let seed = std::process::id() as u64;
    let clients = 5;
    let mut faults = Vec::new();

    std::thread::scope(|s| {
        for client_id in 0..clients {
            let (targets, history, next_id, stop) = (&targets, &history, &next_id, &stop);
            s.spawn(move || {
                register_client(client_id, seed, targets, history, next_id, stop, now_us)
            });
        }
        let hold = |ms| std::thread::sleep(Duration::from_millis(ms)); // a fault held, or quiet
        hold(1000);
        let leader = c.wait_leader();
        c.partition(leader);
        faults.push(format!("partition leader {leader}"));
        hold(2500);
        c.heal();
        let leader = c.wait_leader();
        hold(1000);
        let follower = (leader + 1) % 3;
        c.loss(follower, 5);
        faults.push(format!("5% loss on node {follower}"));
        hold(2500);
        c.loss(follower, 0);
        let follower = (leader + 2) % 3;
        c.partition(follower);
        faults.push(format!("partition follower {follower}"));
        hold(2000);
        c.heal();
        hold(1000);
        stop.store(true, Ordering::SeqCst);
    });

    // One final strong read per key through the leader joins the history.
    let leader = c.wait_leader();
    let http = client();
    for k in 0..KEYS {
        let key = format!("k{k}");
        let (invoke, outcome) = eventually(Duration::from_secs(30), "a final strong read", || {
            let invoke = now_us();
            let url = c.url(leader, &format!("/tables/regs/items?pk={key}&consistency=strong"));
            match read_outcome(&perform(&http, Method::GET, url, None)) {
                Outcome::Unknown => None,
                o => Some((invoke, o)),
            }
        });
        let id = next_id.fetch_add(1, Ordering::SeqCst);
        history.lock().unwrap().push(Op {
            id,
            client: clients,
            key,
            kind: OpKind::Read,
            invoke,
            complete: Some(now_us()),
            outcome,
        });
    }
    c.wait_converged(&[0, 1, 2]);

    let history = history.into_inner().unwrap();
    let acked = history.iter().filter(|o| matches!(o.outcome, Outcome::Ok(_))).count();
    let verdict = check::check(&history);
    eprintln!("{} ops ({acked} acknowledged) under {faults:?}\n{verdict}", history.len());
    if !verdict.linearizable {
        let path = c.dir.path().join("history.jsonl");
        std::fs::write(&path, check::history_to_jsonl(&history)).unwrap();
        let kept = std::env::temp_dir().join(format!("netns-history-{seed}.jsonl"));
        std::fs::copy(&path, &kept).unwrap();
        eprintln!("history saved to {}", kept.display());
    }
    assert!(verdict.linearizable, "history is not linearizable:\n{verdict}");
    assert!(acked > 50, "enough operations completed ({acked})");
}
