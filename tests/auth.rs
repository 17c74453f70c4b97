//! Peer and admin authentication with real processes: a cluster with a secret lets in
//! only the requests that prove it (see `src/security.rs`).

mod common;

use std::time::Duration;

use common::supervised::Supervised;
use common::{eventually, http, http_with_proof, send_following, TestCluster};
use raft_nosql::raft::{NodeId, TypeConfig, Vote};
use serde_json::{json, Value};

const SECRET: &str = "the cluster's secret, 32 bytes or so";
const WAIT: Duration = Duration::from_secs(60);

/// What must not move when a request is refused: term, vote, leader, log and data.
fn fingerprint(c: &TestCluster, i: usize) -> Value {
    let s = c.status(i).expect("node answers /status");
    json!({
        "term": s["term"], "voted_for": s["voted_for"], "leader_id": s["leader_id"],
        "last_log_index": s["last_log_index"], "committed": s["committed"],
        "membership": s["membership"], "digest": s["digest"], "faults": s.get("faults"),
        "apply_delay_ms": s["apply_delay_ms"],
    })
}

/// A vote, AppendEntries and snapshot install from a "node 9" in a far higher term:
/// accepted, each would make the node adopt term 1000 and drop its leader.
fn rogue_rpcs() -> Vec<(&'static str, Value)> {
    let vote = Vote::new(1000, 9);
    let vote_req = openraft::raft::VoteRequest::<NodeId>::new(vote, None);
    let append = openraft::raft::AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(1000, 9),
        prev_log_id: None,
        entries: vec![],
        leader_commit: None,
    };
    let snapshot = openraft::raft::InstallSnapshotRequest::<TypeConfig> {
        vote: Vote::new_committed(1000, 9),
        meta: Default::default(),
        offset: 0,
        data: vec![],
        done: true,
    };
    vec![
        ("/raft/vote", serde_json::to_value(vote_req).unwrap()),
        ("/raft/append", serde_json::to_value(append).unwrap()),
        ("/raft/snapshot", serde_json::to_value(snapshot).unwrap()),
        ("/raft/read_index", json!({})),
        ("/admin/faults", json!({ "partitioned_from": [0, 1, 2] })),
        ("/admin/simulation", json!({ "apply_delay_ms": 5000 })),
        ("/admin/members/add-learner", json!({ "id": 7, "addr": "127.0.0.1:1" })),
        ("/admin/members/remove", json!({ "id": 1 })),
        ("/admin/init", json!({})),
    ]
}

/// Lines of node `i`'s output that log `peer_rejected`.
fn rejections(c: &TestCluster, i: usize) -> Vec<Value> {
    c.output(i)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "peer_rejected")
        .collect()
}

/// With a secret configured, a process without it (no proof, or the proof of another
/// secret) cannot append, vote, install a snapshot, read an index, change faults, the
/// simulation or the membership, init, or pass a write off as forwarded: each is a 401
/// JSON error, and no node's term, vote, leader, log, data or faults move. The cluster
/// itself runs with the secret (elects, writes, reads); the data API stays open; the
/// refusals are logged once per peer as `peer_rejected`.
#[test]
fn without_the_secret_every_raft_and_admin_call_is_refused_and_nothing_changes() {
    let c = TestCluster::start_secured(3, SECRET);
    let leader = c.wait_leader();
    let follower = (leader + 1) % 3;
    // The right secret works: the cluster elected a leader with it; a write through the
    // open data API replicates; a strong read on a follower asks the leader for a read
    // index over the authenticated /raft/read_index.
    c.create_table(r#"{"table_name":"tab","partition_key":{"name":"pk","type":"S"}}"#);
    let put = send_following(
        reqwest::Method::PUT,
        &c.url(0, "/tables/tab/items"),
        Some(&json!({"pk": "a", "v": 1})),
    )
    .unwrap();
    assert!(put.status().is_success(), "put: {}", put.status());
    let read =
        http().get(c.url(follower, "/tables/tab/items?pk=a&consistency=strong")).send().unwrap();
    assert_eq!(read.status(), 200, "strong read on a follower");
    // A DynamoDB write sent to a follower is forwarded to the leader, with the proof.
    let ddb = http()
        .post(c.url(follower, "/"))
        .header("x-amz-target", "DynamoDB_20120810.PutItem")
        .header("content-type", "application/x-amz-json-1.0")
        .body(r#"{"TableName":"tab","Item":{"pk":{"S":"ddb"}}}"#)
        .send()
        .unwrap();
    assert_eq!(ddb.headers()["x-raft-forwarded-from"], follower.to_string().as_str());
    assert_eq!(ddb.status(), 200, "forwarded write: {}", ddb.text().unwrap());
    eventually(WAIT, "every node to apply the write", || {
        let d: Vec<Value> =
            (0..3).map(|i| c.status(i).map(|s| s["digest"].clone())).collect::<Option<_>>()?;
        (d.iter().all(|x| *x == d[0]) && c.status(0)?["items"] == 2).then_some(())
    });
    let before: Vec<Value> = (0..3).map(|i| fingerprint(&c, i)).collect();

    let wrong = raft_nosql::security::proof(b"another secret, also 32 bytes");
    for (who, client) in [("no proof", http()), ("wrong proof", http_with_proof(Some(&wrong)))] {
        for i in [leader, follower] {
            for (path, body) in rogue_rpcs() {
                let r = client
                    .post(c.url(i, path))
                    .header("x-raft-from", "9")
                    .json(&body)
                    .send()
                    .unwrap();
                assert_eq!(r.status(), 401, "{who}: POST {path} on node {i}");
                let e: Value = r.json().unwrap();
                assert_eq!(e["error"]["code"], "unauthorized", "{who}: {path}: {e}");
            }
            for path in ["/admin/faults", "/admin/members", "/admin/log"] {
                let r = client.get(c.url(i, path)).header("x-raft-from", "9").send().unwrap();
                assert_eq!(r.status(), 401, "{who}: GET {path} on node {i}");
            }
            let r = client.delete(c.url(i, "/admin/faults")).header("x-raft-from", "9").send();
            let r = r.unwrap();
            assert_eq!(r.status(), 401, "{who}: DELETE /admin/faults on node {i}");
            // A DynamoDB write that claims to be forwarded by a member.
            let r = client
                .post(c.url(i, "/"))
                .header("x-amz-target", "DynamoDB_20120810.PutItem")
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-raft-forwarded-from", "9")
                .body(r#"{"TableName":"tab","Item":{"pk":{"S":"forged"}}}"#)
                .send()
                .unwrap();
            assert_eq!(r.status(), 401, "{who}: forwarded write on node {i}");
        }
    }
    // Neither header bytes that are not text nor odd spellings of a path slip past.
    let (_, vote) = rogue_rpcs().into_iter().find(|(p, _)| *p == "/raft/vote").unwrap();
    let odd = reqwest::header::HeaderValue::from_bytes(b"\xff\xfe").unwrap();
    let r = http()
        .post(c.url(follower, "/raft/vote"))
        .header("x-raft-from", "9")
        .header(raft_nosql::security::AUTH_HEADER, odd)
        .json(&vote)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401, "a proof that is not text");
    for path in ["//raft/vote", "/raft//vote", "/%72aft/vote", "/raft/%76ote"] {
        let r = http()
            .post(c.url(follower, path))
            .header("x-raft-from", "9")
            .json(&vote)
            .send()
            .unwrap();
        assert_eq!(r.status(), 401, "POST {path}");
    }
    let after: Vec<Value> = (0..3).map(|i| fingerprint(&c, i)).collect();
    assert_eq!(before, after, "a refused request changed the cluster");

    // The data API, /status and /metrics stay open; the right proof opens the admin API.
    let r = http().get(c.url(follower, "/tables/tab/items?pk=a")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(http().get(c.url(follower, "/metrics")).send().unwrap().status(), 200);
    let r = c.admin_http().get(c.url(follower, "/admin/faults")).send().unwrap();
    assert_eq!(r.status(), 200, "the right proof is let in");

    // Every refusal came from the same peer (this process, claiming to be node 9):
    // logged once per node, not once per request.
    for i in [leader, follower] {
        let lines = rejections(&c, i);
        assert_eq!(lines.len(), 1, "node {i} logs each peer once: {lines:?}");
        assert_eq!(lines[0]["peer"], "127.0.0.1");
        assert_eq!(lines[0]["claimed_node"], "9");
    }
    assert!(raft_nosql::logs::EVENTS.contains(&"peer_rejected"));

    // The refused requests were real ones: the same AppendEntries with the right proof
    // moves the follower to term 1000 (which is why the proof is needed).
    let (_, append) = rogue_rpcs().into_iter().find(|(p, _)| *p == "/raft/append").unwrap();
    let r = c.admin_http().post(c.url(follower, "/raft/append")).json(&append).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(c.status(follower).unwrap()["term"], 1000, "the proven append was applied");
}

/// A node started with the cluster's config but the wrong secret (given through
/// `RAFT_NOSQL_SECRET_FILE`, which overrides the file's `secret_file`) cannot join or
/// disrupt: initialised on its own, it campaigns in ever higher terms, but its vote
/// requests are refused by the members, whose term and leader stay put and who log
/// `peer_rejected` for it once each; it refuses the leader's appends in turn and never
/// receives the data; the cluster keeps taking writes.
#[test]
fn a_node_with_the_wrong_secret_cannot_join_or_disrupt_the_cluster() {
    let mut c = TestCluster::configure_secured(3, SECRET);
    for i in 0..2 {
        let child = c.spawn_with_env(i, &[], &[]);
        c.children.push(Some(child));
    }
    c.children.push(None);
    c.wait_up(0);
    c.wait_up(1);
    c.init(0);
    let leader = c.wait_leader();
    c.create_table(r#"{"table_name":"tab","partition_key":{"name":"pk","type":"S"}}"#);
    let term = c.status(leader).unwrap()["term"].as_u64().unwrap();

    let wrong_file = c.dir.path().join("wrong-secret");
    std::fs::write(&wrong_file, "not the cluster's secret at all\n").unwrap();
    let rogue =
        c.spawn_with_env(2, &[], &[(raft_nosql::config::SECRET_FILE_ENV, wrong_file.as_path())]);
    c.children[2] = Some(rogue);
    c.wait_up(2);
    // Told to initialise by someone who knows its (wrong) secret, it starts campaigning.
    let wrong = raft_nosql::security::proof(b"not the cluster's secret at all");
    let r = http_with_proof(Some(&wrong)).post(c.url(2, "/admin/init")).send().unwrap();
    assert!(r.status().is_success(), "init of the rogue node: {}", r.status());
    eventually(WAIT, "the rogue node to campaign in three more terms", || {
        let s = c.status(2)?;
        (s["term"].as_u64()? >= term + 3).then_some(())
    });

    for i in 0..2 {
        let s = c.status(i).unwrap();
        assert_eq!(s["term"].as_u64(), Some(term), "node {i}'s term moved: {s}");
        assert_eq!(s["leader_id"].as_u64(), Some(leader as u64), "node {i}'s leader moved");
        let lines = rejections(&c, i);
        let from_rogue: Vec<&Value> = lines.iter().filter(|l| l["claimed_node"] == "2").collect();
        assert_eq!(from_rogue.len(), 1, "node {i} logs the rogue node once: {lines:?}");
    }
    // The leader's appends carry the right proof, which the rogue node does not accept.
    eventually(WAIT, "the rogue node to refuse the leader", || {
        rejections(&c, 2)
            .iter()
            .any(|l| l["claimed_node"].as_str() == Some(&*leader.to_string()))
            .then_some(())
    });
    // Each side says, once per peer, that the other refuses its proof.
    let refused = |i: usize| -> Vec<u64> {
        let mut peers: Vec<u64> = c
            .output(i)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["event"] == "proof_refused")
            .filter_map(|v| v["peer"].as_u64())
            .collect();
        peers.sort();
        peers
    };
    eventually(WAIT, "proof_refused on both sides", || {
        (refused(2) == [0, 1] && refused(leader) == [2]).then_some(())
    });
    let put = send_following(
        reqwest::Method::PUT,
        &c.url(leader, "/tables/tab/items"),
        Some(&json!({"pk": "after", "v": 2})),
    )
    .unwrap();
    assert!(put.status().is_success(), "the cluster keeps taking writes: {}", put.status());
    let s2 = c.status(2).unwrap();
    assert_eq!(s2["items"], 0, "the rogue node never received the data: {s2}");
    assert_ne!(s2["role"], "Leader");
}

/// Without a secret, a node refuses to listen off loopback and says how to fix it
/// (exit 2, nothing bound); `server` refuses the same before starting any node.
#[test]
fn without_a_secret_a_node_refuses_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let text = format!(
        "data_root = {:?}\n[[nodes]]\nid = 0\naddr = \"10.0.0.1:{port}\"\nlisten = \"0.0.0.0:{port}\"\n",
        dir.path().join("data").display().to_string()
    );
    let config = dir.path().join("cluster.toml");
    std::fs::write(&config, text).unwrap();
    for args in [&["node", "--id", "0"][..], &["server"][..]] {
        let out = std::process::Command::new(common::bin())
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove(raft_nosql::config::SECRET_FILE_ENV)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&format!("refusing to listen on 0.0.0.0:{port}")), "{err}");
        assert!(err.contains("secret_file") && err.contains("--insecure"), "{err}");
    }
}

/// A secret file that cannot be read, or is too short to be a secret, stops a node
/// before it starts (exit 2, as for a bad config), naming the file and how to make one.
#[test]
fn an_unusable_secret_file_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short");
    std::fs::write(&short, "abc\n").unwrap();
    let missing = dir.path().join("missing");
    for (file, says) in [(&missing, "cannot read the cluster secret"), (&short, "fewer than 16")] {
        let extra = format!("[security]\nsecret_file = {:?}\n", file.display().to_string());
        let (config, _) = common::write_config(dir.path(), 1, &extra);
        let out = std::process::Command::new(common::bin())
            .args(["node", "--id", "0", "--config"])
            .arg(&config)
            .env_remove(raft_nosql::config::SECRET_FILE_ENV)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says) && err.contains(&file.display().to_string()), "{err}");
        assert!(err.contains("head -c 32 /dev/urandom | base64"), "{err}");
    }
}

/// Under the supervisor with a secret configured, every internal client proves it: the
/// supervisor initialises the cluster and follows it, the dashboard's fault buttons and
/// the CLI's fault commands reach the nodes' admin API, and `cluster add-node` makes a
/// new member through the leader's membership API; the same admin API refuses a
/// process without the secret.
#[test]
fn supervisor_dashboard_and_cli_prove_the_secret() {
    let secret_dir = tempfile::tempdir().unwrap();
    let file = secret_dir.path().join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let s = Supervised::start_with(3, &format!("[security]\nsecret_file = {:?}\n", file));
    let leader = s.wait_leader_other_than(None);
    let follower = (0..3).find(|i| *i != leader).unwrap();
    let faults = |id: u64| -> Option<Value> {
        let addr = s.addr_of(id)?;
        let st: Value = http().get(format!("http://{addr}/status")).send().ok()?.json().ok()?;
        st.get("faults").cloned()
    };
    let addr = s.addr_of(follower).unwrap();
    let r = http().get(format!("http://{addr}/admin/faults")).send().unwrap();
    assert_eq!(r.status(), 401, "the nodes do check the secret");

    // The dashboard: the page calls the supervisor, which calls the nodes with the proof.
    let r =
        http().post(s.url("/api/partition")).json(&json!({ "nodes": [follower] })).send().unwrap();
    assert_eq!(r.status(), 200, "dashboard partition: {}", r.text().unwrap());
    assert!(faults(follower).is_some(), "the partition reached node {follower}");
    let r = http().post(s.url("/api/heal")).send().unwrap();
    assert_eq!(r.status(), 200, "dashboard heal: {}", r.text().unwrap());
    eventually(WAIT, "the heal to reach every node", || {
        (0..3).all(|i| faults(i).is_none()).then_some(())
    });

    // The CLI's direct admin calls.
    let out = s.cli(&["cluster", "slow", &follower.to_string(), "--delay-ms", "5"]);
    assert!(out.status.success(), "cluster slow: {}", String::from_utf8_lossy(&out.stderr));
    assert!(faults(follower).is_some(), "cluster slow reached node {follower}");
    let out = s.cli(&["cluster", "heal"]);
    assert!(out.status.success(), "cluster heal: {}", String::from_utf8_lossy(&out.stderr));
    assert!(faults(follower).is_none());

    // A membership change: the supervisor's steps on the leader, the new node's log
    // from the leader, all with the proof.
    let out = s.cli(&["cluster", "add-node"]);
    assert!(out.status.success(), "add-node: {}", String::from_utf8_lossy(&out.stderr));
    let addr = s.addr_of(s.wait_leader_other_than(None)).unwrap();
    let st: Value = http().get(format!("http://{addr}/status")).send().unwrap().json().unwrap();
    assert_eq!(st["voters"].as_array().map(Vec::len), Some(4), "{st}");
}
