//! Network faults injected in the Raft transport, seen from real processes; and the
//! Prometheus endpoint agreeing with `/status`.

mod common;

use std::time::Duration;

use common::{eventually, http, send_following, TestCluster};
use reqwest::Method;
use serde_json::{json, Value};

const KVS: &str = r#"{"table_name":"kvs","partition_key":{"name":"k","type":"S"}}"#;

fn setup() -> TestCluster {
    let c = TestCluster::start(3);
    c.create_table(KVS);
    c
}

fn put(c: &TestCluster, node: usize, v: &str) -> reqwest::blocking::Response {
    send_following(Method::PUT, &c.url(node, "/tables/kvs/items"), Some(&json!({"k": "x", "v": v})))
        .unwrap()
}

fn read(c: &TestCluster, node: usize, query: &str) -> reqwest::blocking::Response {
    http().get(c.url(node, &format!("/tables/kvs/items?pk=x{query}"))).send().unwrap()
}

/// Writes `v` through a node other than `cut_off` (following redirects) until the
/// majority, which may first have to elect a new leader, acknowledges it.
fn write_through_majority(c: &TestCluster, cut_off: usize, v: &str) -> reqwest::blocking::Response {
    let other = (0..3).find(|i| *i != cut_off).unwrap();
    eventually(Duration::from_secs(30), "a write through the majority", || {
        let r = send_following(
            Method::PUT,
            &c.url(other, "/tables/kvs/items"),
            Some(&json!({"k": "x", "v": v})),
        )?;
        (r.status() == 200).then_some(r)
    })
}

/// A partitioned follower still answers eventual reads, with stale data; refuses or
/// redirects strong reads; the majority keeps committing; after heal it catches up.
#[test]
fn partitioned_follower_is_stale_refuses_strong_reads_and_catches_up_after_heal() {
    let c = setup();
    assert_eq!(put(&c, 0, "old").status(), 200);
    let leader = c.wait_leader();
    let f = (0..3).find(|i| *i != leader).unwrap();
    eventually(Duration::from_secs(10), "follower has the old value", || {
        (read(&c, f, "").status() == 200).then_some(())
    });
    c.partition(&[f]);
    assert_eq!(c.status(f).unwrap()["faults"]["partitioned_from"].as_array().unwrap().len(), 2);

    let w = put(&c, leader, "new");
    assert_eq!(w.status(), 200, "the majority side commits");
    let r = read(&c, f, "");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().unwrap()["item"]["v"],
        "old",
        "the partitioned follower serves stale data"
    );
    let s = read(&c, f, "&consistency=strong").status();
    assert!(s == 307 || s == 503, "strong read on the partitioned follower: {s}");

    c.heal();
    eventually(Duration::from_secs(30), "the healed follower to catch up", || {
        let r = read(&c, f, "");
        (r.json::<Value>().ok()?["item"]["v"] == "new").then_some(())
    });
}

/// A leader cut off from both followers cannot commit: its client gets an error or a
/// timeout, never a success; the write never appears once the partition heals.
#[test]
fn minority_side_cannot_commit_a_write() {
    let c = setup();
    let leader = c.wait_leader();
    c.partition(&[leader]);
    let r = http()
        .put(c.url(leader, "/tables/kvs/items"))
        .json(&json!({"k": "x", "v": "minority"}))
        .send();
    match r {
        Ok(r) => {
            assert!(!r.status().is_success(), "minority write must not succeed: {}", r.status())
        }
        Err(e) => assert!(e.is_timeout(), "{e}"),
    }
    // The majority elects a new leader and commits.
    let w = write_through_majority(&c, leader, "majority");
    assert_eq!(w.status(), 200);
    c.heal();
    for node in 0..3 {
        eventually(Duration::from_secs(30), "every node to hold the majority's value", || {
            (read(&c, node, "").json::<Value>().ok()?["item"]["v"] == "majority").then_some(())
        });
    }
}

/// A leader answers strong reads on its lease. Cut off from both followers, it loses
/// the lease before they can elect another leader: once the majority has committed a
/// newer value, a strong read on the old leader is refused, never answered with the
/// overwritten value.
#[test]
fn a_partitioned_leader_stops_serving_strong_reads_before_a_new_leader_commits() {
    let c = setup();
    assert_eq!(put(&c, 0, "old").status(), 200);
    let leader = c.wait_leader();
    let r = read(&c, leader, "&consistency=strong");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["item"]["v"], "old");
    assert!(c.metric(leader, "raft_nosql_lease_reads_total") > 0.0, "served on the lease");

    c.partition(&[leader]);
    write_through_majority(&c, leader, "new");
    let r = read(&c, leader, "&consistency=strong");
    let status = r.status();
    let body: Value = r.json().unwrap();
    assert_eq!(status, 503, "strong read on the old, cut-off leader: {body}");
    assert_eq!(read(&c, leader, "").json::<Value>().unwrap()["item"]["v"], "old", "stale eventual");
    c.heal();
    eventually(Duration::from_secs(30), "the old leader to catch up", || {
        (read(&c, leader, "&consistency=strong").json::<Value>().ok()?["item"]["v"] == "new")
            .then_some(())
    });
}

/// A leader frozen (SIGSTOP) while the others elect a new leader and commit wakes up
/// with its lease long expired: the monotonic clock kept running while it was stopped.
/// Its first strong read is refused (503, or 307 to the new leader once it knows it) or
/// answered with the new value, never the overwritten one.
#[test]
fn a_paused_leader_wakes_up_without_a_lease() {
    let c = setup();
    assert_eq!(put(&c, 0, "old").status(), 200);
    let leader = c.wait_leader();
    assert_eq!(read(&c, leader, "&consistency=strong").status(), 200);
    c.pause(leader);
    write_through_majority(&c, leader, "new");
    c.resume(leader);
    let r = read(&c, leader, "&consistency=strong");
    let status = r.status();
    let body: Value = r.json().unwrap();
    assert!(
        status == 503 || status == 307 || (status == 200 && body["item"]["v"] == "new"),
        "strong read on the woken leader: {status} {body}"
    );
}

/// `/metrics` is valid Prometheus text and its indexes match `/status`.
#[test]
fn metrics_parse_as_prometheus_text_and_match_status() {
    let c = setup();
    for i in 0..5 {
        assert_eq!(put(&c, 0, &i.to_string()).status(), 200);
    }
    let leader = c.wait_leader();
    let (status, metrics) =
        eventually(Duration::from_secs(10), "a quiet moment to compare", || {
            let before = c.status(leader)?;
            let text = http().get(c.url(leader, "/metrics")).send().ok()?.text().ok()?;
            let after = c.status(leader)?;
            (before["applied"] == after["applied"]).then_some((after, text))
        });
    let lines = metrics.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    let get = |name: &str| -> f64 {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        match s.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{name} is not a number"),
        }
    };
    assert_eq!(get("raft_nosql_raft_applied_index"), status["applied"].as_f64().unwrap());
    assert_eq!(get("raft_nosql_raft_last_log_index"), status["last_log_index"].as_f64().unwrap());
    assert_eq!(get("raft_nosql_raft_committed_index"), status["committed"].as_f64().unwrap());
    assert_eq!(get("raft_nosql_raft_term"), status["term"].as_f64().unwrap());
    assert_eq!(get("raft_nosql_items"), 1.0);
    assert!(scrape.samples.iter().any(|s| s.metric == "raft_nosql_http_requests_total"));
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric.starts_with("raft_nosql_fsync_duration_seconds")));
    let matched: Vec<_> =
        scrape.samples.iter().filter(|s| s.metric == "raft_nosql_raft_matched_index").collect();
    assert_eq!(matched.len(), 3, "leader reports every member's matched index");
}
