//! Process-level tests of three real `raft-nosql node` processes: redirects, replication,
//! crash recovery and catch-up.

mod common;

use std::time::Duration;

use common::{eventually, http, metric, TestCluster};
use serde_json::{json, Value};

const MUSIC: &str = r#"{"table_name":"Music","partition_key":{"name":"Artist","type":"S"},"sort_key":{"name":"SongTitle","type":"S"}}"#;

fn follower_of(c: &TestCluster, leader: usize) -> usize {
    (0..c.addrs.len()).find(|i| *i != leader).unwrap()
}

/// Creates `Music` through the leader.
fn create_music(c: &TestCluster, leader: usize) {
    let r = http().post(c.url(leader, "/tables")).body(MUSIC).send().unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap());
}

/// Puts items `first..last` through the leader, from `threads` concurrent clients.
fn put_many(c: &TestCluster, leader: usize, first: usize, last: usize, threads: usize) {
    let url = c.url(leader, "/tables/Music/items");
    std::thread::scope(|s| {
        for t in 0..threads {
            let url = url.clone();
            s.spawn(move || {
                let client = http();
                for i in (first + t..last).step_by(threads) {
                    let body = json!({"Artist": format!("artist{}", i % 10), "SongTitle": format!("song{i:06}"), "i": i});
                    let r = client.put(&url).json(&body).send().unwrap();
                    assert_eq!(r.status(), 200, "put {i}: {}", r.text().unwrap());
                }
            });
        }
    });
}

fn get_item(c: &TestCluster, node: usize, i: usize) -> Option<Value> {
    let url = c.url(node, &format!("/tables/Music/items?pk=artist{}&sk=song{i:06}", i % 10));
    let r = http().get(url).send().ok()?;
    (r.status() == 200).then(|| r.json().unwrap())
}

fn item_count(c: &TestCluster, node: usize) -> Option<u64> {
    c.status(node)?.get("items")?.as_u64()
}

/// A put sent to a follower gets 307 to the leader; following it stores the item, and
/// every node then serves it; every response names the node, its role and applied index.
#[test]
fn put_to_follower_redirects_to_leader_and_replicates_everywhere() {
    let c = TestCluster::start(3);
    let leader = c.wait_leader();
    let follower = follower_of(&c, leader);

    let r = http().post(c.url(follower, "/tables")).body(MUSIC).send().unwrap();
    assert_eq!(r.status(), 307);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, c.url(leader, "/tables"));
    assert_eq!(r.headers()["x-raft-node"], follower.to_string().as_str());
    assert_eq!(r.headers()["x-raft-role"], "Follower");
    let r = http().post(&location).body(MUSIC).send().unwrap();
    assert_eq!(r.status(), 201);

    let item = json!({"Artist": "No One You Know", "SongTitle": "Call Me Today", "Year": 2020});
    let r =
        http().put(c.url(follower, "/tables/Music/items?if_version=0")).json(&item).send().unwrap();
    assert_eq!(r.status(), 307);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        location,
        c.url(leader, "/tables/Music/items?if_version=0"),
        "path and query are kept"
    );
    let r = http().put(c.url(leader, "/tables/Music/items")).json(&item).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-raft-role"], "Leader");
    let version = r.json::<Value>().unwrap()["version"].as_u64().unwrap();

    for node in 0..3 {
        let got = eventually(Duration::from_secs(10), "item on every node", || {
            let r =
                http()
                    .get(c.url(
                        node,
                        "/tables/Music/items?pk=No%20One%20You%20Know&sk=Call%20Me%20Today",
                    ))
                    .send()
                    .ok()?;
            assert!(r.headers().contains_key("x-raft-applied"));
            (r.status() == 200).then(|| r.json::<Value>().unwrap())
        });
        assert_eq!(got["item"], item);
        assert_eq!(got["version"], version);
    }
}

/// SIGKILL of all three nodes, then a restart: every acknowledged write is still there.
#[test]
fn killing_and_restarting_all_nodes_keeps_every_acknowledged_item() {
    let mut c = TestCluster::start(3);
    let leader = c.wait_leader();
    create_music(&c, leader);
    put_many(&c, leader, 0, 300, 4);
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.restart(i);
    }
    let leader = c.wait_leader();
    for i in 0..300 {
        let got = get_item(&c, leader, i).unwrap_or_else(|| panic!("item {i} lost"));
        assert_eq!(got["item"]["i"], i);
    }
    // A graceful stop exits 0 and also keeps everything.
    for i in 0..3 {
        let status = c.stop(i).unwrap();
        assert!(status.success(), "node {i} exited with {status}");
    }
    for i in 0..3 {
        c.restart(i);
    }
    let leader = c.wait_leader();
    assert_eq!(item_count(&c, leader), Some(300));
    assert_digests_converge_and_verify(&c);
}

/// Every node reports the same digest at the same index, and each node's incrementally
/// kept digest equals one recomputed from its stored data.
fn assert_digests_converge_and_verify(c: &TestCluster) {
    eventually(Duration::from_secs(20), "equal digests at one index", || {
        let st: Vec<Value> = (0..c.addrs.len()).map(|i| c.status(i)).collect::<Option<_>>()?;
        let same = st
            .iter()
            .all(|s| s["digest_index"] == st[0]["digest_index"] && s["digest"] == st[0]["digest"]);
        same.then_some(())
    });
    for i in 0..c.addrs.len() {
        let v: Value = http().get(c.url(i, "/admin/verify")).send().unwrap().json().unwrap();
        assert_eq!(v["consistent"], true, "node {i}: {v}");
        assert_ne!(v["digest"], "00000000000000000000000000000000", "node {i}: {v}");
    }
}

/// A node that was down while 10,000 items were written catches up (through a snapshot,
/// since the leader purged the log it missed) and then serves all of them.
#[test]
fn node_down_during_10000_writes_catches_up_and_serves_them() {
    let mut c = TestCluster::start_with(
        3,
        "snapshot_logs_since_last = 200\nmax_in_snapshot_log_to_keep = 20\n",
    );
    let leader = c.wait_leader();
    let down = follower_of(&c, leader);
    c.kill(down);
    create_music(&c, leader);
    put_many(&c, leader, 0, 10_000, 16);

    let st = c.status(leader).unwrap();
    assert!(st["snapshot_index"].as_u64().is_some(), "leader built a snapshot: {st}");
    assert!(st["purged_index"].as_u64().is_some(), "leader purged its log: {st}");

    c.restart(down);
    eventually(Duration::from_secs(120), "the restarted node to hold 10,000 items", || {
        (item_count(&c, down)? == 10_000).then_some(())
    });
    for i in (0..10_000).step_by(997) {
        let got =
            get_item(&c, down, i).unwrap_or_else(|| panic!("item {i} missing on node {down}"));
        assert_eq!(got["item"]["i"], i);
    }
    let log = c.output(down);
    assert!(log.contains("snapshot_installed"), "caught up by snapshot install");
    assert_digests_converge_and_verify(&c);
}

/// The value of metric `name` (first sample) in a `/metrics` text.
/// Group commit: many clients writing at once share log entries, yet every item ends
/// with the acknowledged write of the highest version on every node, and no two
/// acknowledged writes of one item share a version.
#[test]
fn concurrent_writes_share_entries_and_last_version_wins_everywhere() {
    const CLIENTS: usize = 32;
    const WRITES: usize = 30;
    const KEYS: usize = 8;
    let c = TestCluster::start(3);
    let leader = c.wait_leader();
    c.create_table(r#"{"table_name":"Hot","partition_key":{"name":"k","type":"S"}}"#);
    let url = c.url(leader, "/tables/Hot/items");
    // (key, value, version) of every acknowledged write.
    let acked: Vec<(usize, String, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|t| {
                let url = url.clone();
                s.spawn(move || {
                    let client = http();
                    (0..WRITES)
                        .map(|i| {
                            let (k, w) = ((t * 7 + i) % KEYS, format!("{t}-{i}"));
                            let body = json!({"k": format!("k{k}"), "w": w});
                            let r = client.put(&url).json(&body).send().unwrap();
                            assert_eq!(r.status(), 200, "{}", r.text().unwrap());
                            let v: Value = r.json().unwrap();
                            (k, w, v["version"].as_u64().unwrap())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(acked.len(), CLIENTS * WRITES);

    for k in 0..KEYS {
        let mut mine: Vec<&(usize, String, u64)> = acked.iter().filter(|a| a.0 == k).collect();
        mine.sort_by_key(|a| a.2);
        assert!(mine.windows(2).all(|p| p[0].2 < p[1].2), "key k{k}: two writes, one version");
        let last = mine.last().unwrap();
        for node in 0..3 {
            let url = c.url(node, &format!("/tables/Hot/items?pk=k{k}"));
            eventually(Duration::from_secs(20), "the last write on every node", || {
                let v: Value = http().get(&url).send().ok()?.json().ok()?;
                (v["version"] == last.2).then_some(())
            });
            let v: Value = http().get(&url).send().unwrap().json().unwrap();
            assert_eq!(v["item"]["w"], last.1.as_str(), "node {node}, key k{k}");
        }
    }

    let text = http().get(c.url(leader, "/metrics")).send().unwrap().text().unwrap();
    let writes = metric(&text, "raft_nosql_write_batch_size_sum");
    let entries = metric(&text, "raft_nosql_write_batch_size_count");
    assert_eq!(writes as usize, CLIENTS * WRITES, "every write went through the batcher");
    assert!(entries < writes, "{writes} writes in {entries} entries: no batch formed");
    assert_digests_converge_and_verify(&c);
}
