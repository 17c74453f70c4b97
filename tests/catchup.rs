//! A follower that missed many large writes catches up, and the cluster keeps its
//! fault tolerance afterwards.
//!
//! openraft sends a lagging follower up to `max_payload_entries` entries per
//! AppendEntries and gives each RPC one heartbeat interval to complete. Entries near
//! the 400 KB item limit made that payload tens of MB, which cannot be sent, parsed
//! and fsynced within a heartbeat: the same range was resent forever and the follower
//! never caught up. The log reader now bounds each payload by bytes (`raft::payload`).

mod common;

use std::time::Duration;

use common::{eventually, send_following, TestCluster};
use reqwest::Method;
use serde_json::json;

const BLOBS: &str = r#"{"table_name":"blobs","partition_key":{"name":"k","type":"S"}}"#;

/// Items just under the 400 KB limit.
const ITEM_BYTES: usize = 390 * 1024;
/// About 23 MB of log: far more than one heartbeat's worth of RPC on any machine.
const ITEMS: usize = 60;

fn put_blob(c: &TestCluster, node: usize, k: usize) -> u16 {
    let body = json!({ "k": format!("blob-{k}"), "data": "x".repeat(ITEM_BYTES) });
    send_following(Method::PUT, &c.url(node, "/tables/blobs/items"), Some(&body))
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Node `i`'s applied index.
fn applied(c: &TestCluster, i: usize) -> Option<u64> {
    c.status(i)?.get("applied")?.as_u64()
}

/// A follower down while ~23 MB of 390 KB items were written catches up once it is back
/// (the leader's last index is applied there), and the cluster then survives losing
/// the other follower: the caught-up follower and the leader still commit writes.
#[test]
fn follower_that_missed_large_writes_catches_up_and_keeps_the_cluster_fault_tolerant() {
    catch_up_after_missing_large_writes("", false);
}

/// The same when the leader has purged the log the follower missed: it catches up by
/// installing a ~23 MB snapshot, sent in chunks.
#[test]
fn follower_behind_a_purged_log_catches_up_by_a_large_snapshot() {
    catch_up_after_missing_large_writes(
        "snapshot_logs_since_last = 20\nmax_in_snapshot_log_to_keep = 0\n",
        true,
    );
}

/// The same when the missed log holds entries larger than a heartbeat's worth of
/// bytes: DynamoDB BatchWriteItems of 25 items of 390 KB, one ~10 MB entry each. Each
/// such entry travels alone and its AppendEntries outlives openraft's timeout.
#[test]
fn follower_catches_up_on_single_entries_of_ten_megabytes() {
    let mut c = TestCluster::start(3);
    c.create_table(BLOBS);
    let mut leader = c.wait_leader();
    let lagging = (0..3).find(|i| *i != leader).unwrap();
    c.stop(lagging);
    for batch in 0..3 {
        let requests: Vec<_> = (0..25)
            .map(|i| {
                let item = json!({"k": {"S": format!("b{batch}-{i}")}, "data": {"S": "x".repeat(ITEM_BYTES)}});
                json!({"PutRequest": {"Item": item}})
            })
            .collect();
        let body = json!({"RequestItems": {"blobs": requests}}).to_string();
        // On a busy machine a 10 MB entry may take longer than the client write
        // timeout (an indeterminate 500) and may still commit: first look whether the
        // batch's last item is there (a strong read on the leader), and only then send
        // the same puts again (harmless). Leadership may move meanwhile: each attempt
        // goes to the node that leads now.
        let last_key = json!({"TableName": "blobs", "Key": {"k": {"S": format!("b{batch}-24")}}, "ConsistentRead": true, "ProjectionExpression": "k"}).to_string();
        eventually(Duration::from_secs(180), &format!("batch {batch} acknowledged"), || {
            leader = (0..3)
                .filter(|i| *i != lagging)
                .find(|i| c.status(*i).is_some_and(|s| s["role"] == "Leader"))?;
            let present = common::http()
                .post(c.url(leader, "/"))
                .header("x-amz-target", "DynamoDB_20120810.GetItem")
                .header("content-type", "application/x-amz-json-1.0")
                .body(last_key.clone())
                .send()
                .ok()
                .and_then(|r| r.json::<serde_json::Value>().ok())
                .is_some_and(|v| v.get("Item").is_some());
            if present {
                return Some(());
            }
            let r = common::http()
                .post(c.url(leader, "/"))
                .header("x-amz-target", "DynamoDB_20120810.BatchWriteItem")
                .header("content-type", "application/x-amz-json-1.0")
                .body(body.clone())
                .send()
                .ok()?;
            (r.status() == 200).then_some(())
        });
    }
    let target = applied(&c, leader).expect("leader status");
    c.restart(lagging);
    eventually(Duration::from_secs(180), "the restarted follower to catch up", || {
        (applied(&c, lagging)? >= target).then_some(())
    });
}

fn catch_up_after_missing_large_writes(raft_config: &str, by_snapshot: bool) {
    let mut c = TestCluster::start_with(3, raft_config);
    c.create_table(BLOBS);
    let leader = c.wait_leader();
    let lagging = (0..3).find(|i| *i != leader).unwrap();
    let other = (0..3).find(|i| *i != leader && *i != lagging).unwrap();

    c.stop(lagging);
    for k in 0..ITEMS {
        assert_eq!(put_blob(&c, leader, k), 200, "write {k} through the leader");
    }
    let target = applied(&c, leader).expect("leader status");

    c.restart(lagging);
    eventually(Duration::from_secs(180), "the restarted follower to catch up", || {
        (applied(&c, lagging)? >= target).then_some(())
    });

    let snapshot = c.status(lagging).unwrap()["snapshot_index"].as_u64();
    if by_snapshot {
        assert!(snapshot.is_some_and(|i| i > 20), "installed a snapshot: {snapshot:?}");
    }

    // Without the caught-up follower, losing this one would leave no quorum.
    c.stop(other);
    let leader = c.wait_leader();
    eventually(Duration::from_secs(30), "a write with one follower down", || {
        (put_blob(&c, leader, ITEMS) == 200).then_some(())
    });
    let r = common::http()
        .get(c.url(lagging, &format!("/tables/blobs/items?pk=blob-{}", ITEMS - 1)))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "the caught-up follower has the last large item");
}
