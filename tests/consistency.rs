//! Read levels across real processes: session reads through a lagging follower, strong
//! reads across a leader change, last-write-wins under concurrent writers.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{eventually, http, send_following, TestCluster};
use reqwest::Method;
use serde_json::{json, Value};

const KV: &str = r#"{"table_name":"kvs","partition_key":{"name":"k","type":"S"}}"#;

fn create_kv(c: &TestCluster) {
    c.create_table(KV);
}

fn set_delay(c: &TestCluster, node: usize, ms: u64) {
    let r = http()
        .post(c.url(node, "/admin/simulation"))
        .json(&json!({"apply_delay_ms": ms}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// With followers applying 1.5 s late, a session read (after_index = the write's
/// version) through a follower returns the session's own write, never an older value,
/// while an eventual read there may still be stale.
#[test]
fn session_reads_through_a_lagging_follower_return_your_own_write() {
    let c = TestCluster::start(3);
    create_kv(&c);
    let leader = c.wait_leader();
    let follower = (0..3).find(|i| *i != leader).unwrap();
    set_delay(&c, follower, 1500);
    for round in 0..3 {
        let put = send_following(
            Method::PUT,
            &c.url(follower, "/tables/kvs/items"),
            Some(&json!({"k": "x", "v": round})),
        )
        .unwrap();
        assert_eq!(put.status(), 200);
        let index: u64 = put.headers()["x-raft-index"].to_str().unwrap().parse().unwrap();
        let url = c.url(follower, &format!("/tables/kvs/items?pk=x&after_index={index}"));
        let r = http().get(url).send().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["x-raft-node"],
            follower.to_string().as_str(),
            "answered by the follower"
        );
        let body: Value = r.json().unwrap();
        assert_eq!(body["item"]["v"], round, "session read saw its own write");
        assert!(body["version"].as_u64().unwrap() >= index);
    }
}

/// A strong read sent to a follower is answered by that follower (no redirect), after
/// it got a read index from the leader and applied up to it: with the follower applying
/// 1.5 s late, the strong read still returns the write acknowledged just before, while
/// an eventual read there right after the write is stale. The leader hands out the read
/// index on its lease.
#[test]
fn strong_reads_on_a_lagging_follower_wait_for_the_read_index_and_answer_locally() {
    let c = strong_reads_on_a_lagging_follower("");
    let leader = c.wait_leader();
    assert!(c.metric(leader, "raft_nosql_lease_reads_total") > 0.0, "read indexes on the lease");
}

/// The same with `lease_reads = false`: every read index costs the leader a heartbeat
/// round, and none is handed out on a lease.
#[test]
fn strong_reads_without_the_lease_take_a_heartbeat_round() {
    let c = strong_reads_on_a_lagging_follower("lease_reads = false");
    let leader = c.wait_leader();
    assert_eq!(c.metric(leader, "raft_nosql_lease_reads_total"), 0.0);
    assert!(c.metric(leader, "raft_nosql_read_index_batch_size_count") >= 3.0, "one round a read");
}

fn strong_reads_on_a_lagging_follower(raft_config: &str) -> TestCluster {
    let c = TestCluster::start_with(3, raft_config);
    create_kv(&c);
    let leader = c.wait_leader();
    let follower = (0..3).find(|i| *i != leader).unwrap();
    set_delay(&c, follower, 1500);
    let mut saw_stale = false;
    for round in 0..3 {
        let put = send_following(
            Method::PUT,
            &c.url(leader, "/tables/kvs/items"),
            Some(&json!({"k": "y", "v": round})),
        )
        .unwrap();
        assert_eq!(put.status(), 200);
        let index: u64 = put.headers()["x-raft-index"].to_str().unwrap().parse().unwrap();
        let eventual: Value =
            http().get(c.url(follower, "/tables/kvs/items?pk=y")).send().unwrap().json().unwrap();
        saw_stale |= eventual["item"]["v"] != round;
        let r = http()
            .get(c.url(follower, "/tables/kvs/items?pk=y&consistency=strong"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "strong read on the follower");
        assert_eq!(r.headers()["x-raft-node"], follower.to_string().as_str(), "not redirected");
        let applied: u64 = r.headers()["x-raft-applied"].to_str().unwrap().parse().unwrap();
        assert!(applied >= index, "applied {applied} before answering, write at {index}");
        let body: Value = r.json().unwrap();
        assert_eq!(body["item"]["v"], round, "strong read saw the acknowledged write");
    }
    assert!(saw_stale, "the delayed follower served at least one stale eventual read");
    c
}

/// Strong reads never return a value older than a write acknowledged before the read
/// started, also while the leader is killed and a new one takes over.
#[test]
fn strong_reads_never_go_back_in_time_across_a_leader_kill() {
    let mut c = TestCluster::start(3);
    create_kv(&c);
    let acked = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let addrs = c.addrs.clone();
    let (reads, checked) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                for a in &addrs {
                    let url = format!("http://{a}/tables/kvs/items");
                    if let Some(r) =
                        send_following(Method::PUT, &url, Some(&json!({"k": "counter", "n": n})))
                    {
                        if r.status() == 200 {
                            acked.fetch_max(n, Ordering::SeqCst);
                            break;
                        }
                    }
                }
            }
        });
        let reader = s.spawn(|| {
            let (mut reads, mut checked) = (0, 0);
            while !stop.load(Ordering::SeqCst) {
                for a in &addrs {
                    let floor = acked.load(Ordering::SeqCst);
                    let url = format!("http://{a}/tables/kvs/items?pk=counter&consistency=strong");
                    let Some(r) = send_following(Method::GET, &url, None) else { continue };
                    reads += 1;
                    if r.status() == 200 {
                        let n = r.json::<Value>().unwrap()["item"]["n"].as_u64().unwrap();
                        assert!(
                            n >= floor,
                            "strong read returned {n}, but {floor} was acknowledged before it"
                        );
                        checked += 1;
                    }
                }
            }
            (reads, checked)
        });
        eventually(Duration::from_secs(30), "some acknowledged writes", || {
            (acked.load(Ordering::SeqCst) > 20).then_some(())
        });
        let leader = c.wait_leader();
        c.kill(leader);
        let before = acked.load(Ordering::SeqCst);
        eventually(Duration::from_secs(30), "writes to resume under a new leader", || {
            (acked.load(Ordering::SeqCst) > before + 20).then_some(())
        });
        stop.store(true, Ordering::SeqCst);
        writer.join().unwrap();
        reader.join().unwrap()
    });
    assert!(checked > 10, "enough strong reads were checked ({checked} of {reads})");
}

/// Many clients writing one key through different nodes end with one value on every
/// node: the write with the highest version.
#[test]
fn concurrent_writers_converge_on_the_highest_version_everywhere() {
    let c = TestCluster::start(3);
    create_kv(&c);
    let results: Vec<(u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|w| {
                let c = &c;
                s.spawn(move || {
                    let mut acked = Vec::new();
                    for i in 0..20 {
                        let tag = w * 1000 + i;
                        let url = c.url(w as usize % 3, "/tables/kvs/items");
                        let r = send_following(
                            Method::PUT,
                            &url,
                            Some(&json!({"k": "hot", "tag": tag})),
                        )
                        .unwrap();
                        assert_eq!(r.status(), 200);
                        acked.push((r.json::<Value>().unwrap()["version"].as_u64().unwrap(), tag));
                    }
                    acked
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let (max_version, winner) = *results.iter().max().unwrap();
    let versions: std::collections::HashSet<u64> = results.iter().map(|r| r.0).collect();
    assert_eq!(versions.len(), results.len(), "every write got its own version");
    for node in 0..3 {
        let body = eventually(Duration::from_secs(10), "node to apply the last write", || {
            let r = http().get(c.url(node, "/tables/kvs/items?pk=hot")).send().ok()?;
            let b: Value = r.json().ok()?;
            (b["version"].as_u64()? == max_version).then_some(b)
        });
        assert_eq!(body["item"]["tag"], winner, "node {node} holds the highest-version write");
    }
    // And the nodes agree on the whole state: equal digests at equal indexes.
    let digests = eventually(Duration::from_secs(10), "digests at one index", || {
        let st: Vec<Value> = (0..3).map(|i| c.status(i)).collect::<Option<_>>()?;
        let idx: Vec<_> = st.iter().map(|s| s["digest_index"].clone()).collect();
        (idx.iter().all(|i| *i == idx[0]))
            .then(|| st.iter().map(|s| s["digest"].clone()).collect::<Vec<_>>())
    });
    assert!(digests.iter().all(|d| *d == digests[0]), "{digests:?}");
}
