//! Process tests of `raft-nosql bench` against a real 3-node cluster: the counts it
//! reports are exact, its percentiles are consistent, and bad flags are refused.
//! Timings are never asserted: the machine is shared.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{eventually, http, TestCluster};
use serde_json::Value;

/// Runs `raft-nosql bench` with `args` against every node of `c`.
fn bench(c: &TestCluster, args: &[&str]) -> Output {
    Command::new(common::bin())
        .arg("bench")
        .arg("--target")
        .arg(c.addrs.join(","))
        .args(args)
        .output()
        .unwrap()
}

/// Runs a bench that must succeed and returns its `--json` report.
fn bench_json(c: &TestCluster, args: &[&str]) -> Value {
    let out = bench(c, &[args, &["--json"]].concat());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench {args:?} failed: {stderr}\n{stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn u(v: &Value, path: &str) -> u64 {
    v.pointer(path).and_then(Value::as_u64).unwrap_or_else(|| panic!("no {path} in {v}"))
}

/// Checks `p50 <= p90 <= p99 <= p99.9 <= max`, all above zero, for one op type.
fn assert_percentiles_consistent(report: &Value, op: &str) {
    let l = &report[op]["latency_us"];
    let p: Vec<u64> =
        ["p50", "p90", "p99", "p999", "max"].iter().map(|k| u(l, &format!("/{k}"))).collect();
    assert!(p[0] > 0, "{op} p50 is 0: {l}");
    assert!(p.windows(2).all(|w| w[0] <= w[1]), "{op} percentiles out of order: {l}");
    assert_eq!(u(l, "/count"), u(report, &format!("/{op}/ok")), "{op}: one sample per ok op");
}

/// Number of items in table `t` as the leader sees it (the leader has applied every
/// write it acknowledged).
fn leader_item_count(c: &TestCluster, t: &str) -> u64 {
    let leader = c.wait_leader();
    let r: Value =
        http().get(c.url(leader, &format!("/tables/{t}"))).send().unwrap().json().unwrap();
    r["table"]["item_count"].as_u64().unwrap_or_else(|| panic!("no item_count in {r}"))
}

/// Every write the benchmark reports as acknowledged is in the table, and no other:
/// with a key space larger than the number of writes, each write creates one item.
/// Then a read and a mixed run over the same keys finish without a single error.
#[test]
fn bench_counts_every_acknowledged_write_and_reads_without_errors() {
    let c = TestCluster::start(3);

    let w = bench_json(
        &c,
        &["--workload", "write", "--clients", "8", "--duration", "3", "--keys", "1000000"],
    );
    assert_eq!((w["system"].as_str(), w["workload"].as_str()), (Some("raft-nosql"), Some("write")));
    let ok = u(&w, "/write/ok");
    assert!(ok > 0, "no write succeeded: {w}");
    assert_eq!(u(&w, "/errors"), 0, "{w}");
    assert_eq!(u(&w, "/ok"), ok);
    assert_eq!(u(&w, "/read/ops"), 0);
    assert_percentiles_consistent(&w, "write");
    assert_eq!(leader_item_count(&c, "bench"), ok, "items in the table vs acknowledged writes");
    assert!(w["throughput_ops_s"].as_f64().unwrap() > 0.0);

    // Reads (after a preload of a small key space), spread over all three nodes.
    let r = bench_json(
        &c,
        &[
            "--workload",
            "read",
            "--clients",
            "4",
            "--ops",
            "400",
            "--keys",
            "200",
            "--table",
            "bench_rw",
        ],
    );
    assert_eq!(u(&r, "/errors"), 0, "{r}");
    assert_eq!((u(&r, "/ops"), u(&r, "/read/ops")), (400, 400));
    assert_eq!(u(&r, "/preload/ok"), 200, "{r}");
    assert_percentiles_consistent(&r, "read");
    // Preload waited for every node to apply its writes, so every read found its key.
    assert_eq!(u(&r, "/read/misses"), 0, "{r}");

    let m = bench_json(
        &c,
        &[
            "--workload",
            "mixed:50",
            "--clients",
            "4",
            "--duration",
            "2",
            "--keys",
            "200",
            "--table",
            "bench_rw",
            "--consistency",
            "strong",
            "--no-preload",
        ],
    );
    assert_eq!(u(&m, "/errors"), 0, "{m}");
    assert!(u(&m, "/read/ok") > 0 && u(&m, "/write/ok") > 0, "{m}");
    assert_eq!(u(&m, "/ok"), u(&m, "/read/ok") + u(&m, "/write/ok"));
    assert_percentiles_consistent(&m, "read");
    assert_percentiles_consistent(&m, "write");
    // Mixed writes are updates of the preloaded keys: still 200 items.
    assert_eq!(leader_item_count(&c, "bench_rw"), 200);
}

/// `--ops N` measures exactly N operations; `--fresh` starts from an empty table; the
/// text report names the figures.
#[test]
fn bench_ops_budget_is_exact_and_fresh_empties_the_table() {
    let c = TestCluster::start(3);
    let args = ["--workload", "write", "--clients", "3", "--ops", "150", "--table", "exact"];
    let first = bench_json(&c, &args);
    assert_eq!((u(&first, "/ops"), u(&first, "/write/ok")), (150, 150), "{first}");
    eventually(Duration::from_secs(10), "150 items", || {
        (leader_item_count(&c, "exact") == 150).then_some(())
    });

    // A fresh table holds only what the next run writes.
    let args = ["--workload", "write", "--clients", "3", "--ops", "50", "--table", "exact"];
    let out = bench(&c, &[&args[..], &["--fresh"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["throughput", "ops/s", "p50", "p99.9", "redirects", "write"] {
        assert!(text.contains(word), "text report lacks {word:?}:\n{text}");
    }
    assert_eq!(leader_item_count(&c, "exact"), 50);
}

/// Optimistic-locking increments on a few hot keys, through both APIs: some updates
/// succeed, the clients collide (conflicts are counted apart from errors), and no
/// update is lost: the counters add up to the acknowledged updates, which the bench
/// checks itself and the leader confirms.
#[test]
fn bench_update_counts_conflicts_and_loses_no_update() {
    let c = TestCluster::start(3);
    for (api, table) in [("dynamodb", "upd_ddb"), ("native", "upd_rest")] {
        let r = bench_json(
            &c,
            &[
                "--api",
                api,
                "--workload",
                "update",
                "--hot-keys",
                "3",
                "--clients",
                "8",
                "--duration",
                "2",
                "--table",
                table,
                "--fresh",
            ],
        );
        assert_eq!((r["workload"].as_str(), u(&r, "/hot_keys")), (Some("update"), 3), "{r}");
        let ok = u(&r, "/write/ok");
        assert!(ok > 0, "{api}: no update succeeded: {r}");
        assert_eq!(u(&r, "/errors"), 0, "{api}: {r}");
        // Eight clients on three keys collide.
        assert!(u(&r, "/conflicts") > 0, "{api}: no conflict on 3 hot keys: {r}");
        assert_eq!(u(&r, "/conflicts"), u(&r, "/write/conflicts"));
        assert_eq!(u(&r, "/ops"), ok + u(&r, "/refused"), "{api}: {r}");
        assert_percentiles_consistent(&r, "write");
        let check = &r["check"];
        assert_eq!(check["ok"], true, "{api}: {r}");
        assert_eq!((u(check, "/before"), u(check, "/after")), (0, ok), "{api}: {r}");

        // The leader agrees: the three counters add up to the acknowledged updates.
        let leader = c.wait_leader();
        let sum: u64 = (0..3)
            .map(|i| {
                let url = c.url(leader, &format!("/tables/{table}/items?pk=key00000{i}"));
                let v: Value = http().get(url).send().unwrap().json().unwrap();
                v["item"]["n"].as_u64().unwrap_or_else(|| panic!("no counter in {v}"))
            })
            .sum();
        assert_eq!(sum, ok, "{api}");
    }
}

/// Transfers between accounts, one TransactWriteItems each: transfers commit, those
/// that would overdraw an account are cancelled (conflicts, not errors), and the total
/// of the balances is what the preload put there. The text report prints the check.
#[test]
fn bench_transact_preserves_the_total_balance() {
    let c = TestCluster::start(3);
    let args = [
        "--api",
        "dynamodb",
        "--workload",
        "transact",
        "--hot-keys",
        "4",
        "--clients",
        "8",
        "--table",
        "accounts",
    ];
    let r = bench_json(&c, &[&args[..], &["--duration", "3"]].concat());
    assert_eq!(u(&r, "/preload/ok"), 4, "{r}");
    assert!(u(&r, "/write/ok") > 0, "no transfer committed: {r}");
    assert_eq!(u(&r, "/errors"), 0, "{r}");
    assert_eq!(u(&r, "/ops"), u(&r, "/write/ok") + u(&r, "/refused"), "{r}");
    assert_eq!(u(&r, "/conflicts"), u(&r, "/refused"), "{r}");
    assert_percentiles_consistent(&r, "write");
    let check = &r["check"];
    assert_eq!(check["ok"], true, "{r}");
    assert_eq!((u(check, "/before"), u(check, "/after")), (400, 400), "{r}");
    assert!(check["min_value"].as_i64().unwrap() >= 0, "{r}");

    // The leader agrees on the total.
    let leader = c.wait_leader();
    let total: i64 = (0..4)
        .map(|i| {
            let url = c.url(leader, &format!("/tables/accounts/items?pk=key00000{i}"));
            let v: Value = http().get(url).send().unwrap().json().unwrap();
            v["item"]["n"].as_i64().unwrap_or_else(|| panic!("no balance in {v}"))
        })
        .sum();
    assert_eq!(total, 400);

    let out = bench(&c, &[&args[..], &["--duration", "1"]].concat());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{text}", String::from_utf8_lossy(&out.stderr));
    for word in ["conflicts", "refused", "xfer", "check       ok: total balance unchanged"] {
        assert!(text.contains(word), "text report lacks {word:?}:\n{text}");
    }
}

/// Bad flags are refused with exit code 2 and a message that names the problem, before
/// anything is sent.
#[test]
fn bench_refuses_bad_flags_with_exit_code_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["--workload", "nonsense"], "expected write, read, mixed:R"),
        (&["--workload", "mixed:150"], "not 0-100"),
        (&["--clients", "0"], "--clients"),
        (&["--duration", "0"], "seconds"),
        (&["--duration", "1", "--ops", "5"], "cannot be used with"),
        (&["--system", "etcd"], "--target"),
        (&["--workload", "update", "--hot-keys", "0"], "--hot-keys"),
        (&["--target", "127.0.0.1:1", "--workload", "transact"], "needs --api dynamodb"),
        (
            &[
                "--target",
                "127.0.0.1:1",
                "--workload",
                "transact",
                "--api",
                "dynamodb",
                "--hot-keys",
                "1",
            ],
            "--hot-keys 2 or more",
        ),
        (&["--system", "etcd", "--target", "127.0.0.1:1", "--workload", "update"], "etcd runs"),
    ];
    for (args, needle) in cases {
        let out = Command::new(common::bin()).arg("bench").args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {needle:?} not in {stderr}");
    }
}

/// A cluster nobody answers at: every operation fails, the run says so and exits 1.
#[test]
fn bench_against_nothing_exits_1_with_a_clear_message() {
    let dead = format!("127.0.0.1:{}", common::free_port());
    let out = Command::new(common::bin())
        .args(["bench", "--system", "etcd", "--target", &dead, "--ops", "20", "--clients", "2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("every operation failed") && stderr.contains("unreachable"),
        "{stderr}"
    );

    let out = Command::new(common::bin())
        .args(["bench", "--target", &dead, "--ops", "20"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot create table bench"), "{stderr}");
}
