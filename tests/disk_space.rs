//! Disk space: a node's data directory takes a small multiple of its live data (items
//! plus the log kept after the last snapshot), not one copy per snapshot ever built.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::TestCluster;
use serde_json::Value;

const ITEMS: u64 = 100_000;
const VALUE_BYTES: u64 = 1000;

/// 100,000 items of 1 KB written through `raft-nosql bench`: once snapshots have been
/// built and fjall has compacted, every node's data directory is at most 3x its live
/// data. (Before snapshots were files, the `snapshot` keyspace alone held several
/// snapshots' worth of dead chunks.)
#[test]
fn each_node_uses_at_most_three_times_its_live_data_after_100k_items() {
    let c = TestCluster::start(3);
    let out = Command::new(common::bin())
        .arg("bench")
        .arg("--target")
        .arg(c.addrs.join(","))
        .args(["--workload", "write", "--clients", "64", "--table", "space", "--json"])
        .args(["--ops", &ITEMS.to_string(), "--value-size", &VALUE_BYTES.to_string()])
        // A key space far larger than the writes: (almost) every write is a new item.
        .args(["--keys", "1000000000000"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {}\n{report}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Every node has applied everything, and its disk use came down to at most 3x.
    let deadline = Instant::now() + Duration::from_secs(300);
    let last = loop {
        let last = (0..3).map(|i| c.status(i).unwrap_or(Value::Null)).collect::<Vec<_>>();
        let ok = last.iter().all(|s| {
            let d = &s["disk"];
            let (used, live, items) =
                (d["used_bytes"].as_u64(), d["live_bytes"].as_u64(), d["items_bytes"].as_u64());
            matches!((used, live, items), (Some(u), Some(l), Some(i))
                if i >= ITEMS * VALUE_BYTES * 9 / 10 && u <= 3 * l)
        }) && last.iter().all(|s| s["digest"] == last[0]["digest"]);
        if ok {
            break last;
        }
        assert!(Instant::now() < deadline, "disk use did not come down to 3x live data: {}", {
            let disks: Vec<String> = last
                .iter()
                .enumerate()
                .map(|(i, s)| format!("node {i}: {} (digest {})", s["disk"], s["digest"]))
                .collect();
            disks.join("\n")
        });
        std::thread::sleep(Duration::from_millis(500)); // poll interval, bounded by the deadline
    };
    for (i, s) in last.iter().enumerate() {
        let d = &s["disk"];
        eprintln!(
            "node {i}: used {} B for {} B live ({:.2}x): journals {}, segments {}, snapshots {}",
            d["used_bytes"],
            d["live_bytes"],
            d["used_bytes"].as_f64().unwrap() / d["live_bytes"].as_f64().unwrap(),
            d["journal_bytes"],
            d["segment_bytes"],
            d["snapshot_bytes"]
        );
    }
}
