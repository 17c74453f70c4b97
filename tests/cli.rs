//! The command line as a user runs it: the real `raft-nosql` binary against a real
//! three-process cluster, checking what it prints and how it exits
//! (0 ok, 1 not found / rejected / unreachable, 2 usage).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{eventually, TestCluster};
use serde_json::Value;

/// What one CLI run produced.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts exit 0 and returns stdout as JSON.
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }

    /// Asserts the exit code and that stderr is exactly one `error: ...` line; returns it.
    fn error_line(&self, code: i32) -> &str {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        let line = self.stderr.trim_end();
        assert!(
            line.starts_with("error: ") && !line.contains('\n'),
            "not one error line: {self:#?}"
        );
        assert!(!self.stderr.contains("panicked"), "{self:#?}");
        line
    }
}

/// Runs the binary with `args`.
fn cli(args: &[&str]) -> Run {
    let out = Command::new(common::bin()).args(args).output().expect("run raft-nosql");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a data command against the node at `addr`.
fn at(addr: &str, args: &[&str]) -> Run {
    let mut all = args.to_vec();
    all.extend(["--target-addr", addr]);
    cli(&all)
}

/// An address nothing listens on.
fn dead_addr() -> String {
    format!("127.0.0.1:{}", common::free_port())
}

const BEATLES: &str =
    r#"{"Artist":"The Beatles","SongTitle":"Let It Be","Album":"Let It Be","Year":1970}"#;
const QUEEN: &str = r#"{"Artist":"Queen","SongTitle":"Bohemian Rhapsody","Album":"A Night at the Opera","Year":1975}"#;
const JOURNEY: &str =
    r#"{"Artist":"Journey","SongTitle":"Don't Stop Believin'","Album":"Escape","Year":1981}"#;

/// The Go original's demo, with every write sent to a follower: the writes reach the
/// leader through its 307 redirect, reads on the leader see them at once, and a
/// follower sees them once it has applied them (eventual consistency).
#[test]
fn demo_scenario_with_writes_sent_to_a_follower() {
    let cluster = TestCluster::start(3);
    let leader = cluster.wait_leader();
    let follower = (leader + 1) % 3;
    let (l, f) = (cluster.addrs[leader].as_str(), cluster.addrs[follower].as_str());
    let redirect_note = format!("redirected to leader node{leader} at {l}");

    let create = at(
        f,
        &[
            "create-table",
            "--table-name",
            "Music",
            "--partition-key-name",
            "Artist",
            "--sort-key-name",
            "SongTitle",
            "-v",
        ],
    );
    assert_eq!(create.json()["table"]["table_name"], "Music");
    assert!(create.stderr.contains(&redirect_note), "-v must report the redirect: {create:#?}");

    for item in [BEATLES, QUEEN, JOURNEY] {
        let put = at(f, &["put-item", "--table-name", "Music", "--item-data", item, "--verbose"]);
        assert!(put.json()["version"].as_u64().unwrap() > 0);
        assert!(put.stderr.contains(&redirect_note), "{put:#?}");
    }

    // The leader has applied every write it acknowledged.
    let got = at(
        l,
        &[
            "get-item",
            "--table-name",
            "Music",
            "--partition-key",
            "The Beatles",
            "--sort-key",
            "Let It Be",
        ],
    )
    .json();
    assert_eq!(got["item"]["Album"], "Let It Be");
    assert_eq!(got["item"]["Year"], 1970);

    // A follower catches up: poll until it has applied the write.
    let queen_args = [
        "get-item",
        "--table-name",
        "Music",
        "--partition-key",
        "Queen",
        "--sort-key",
        "Bohemian Rhapsody",
    ];
    let got = eventually(Duration::from_secs(10), "the follower to serve the Queen item", || {
        let r = at(f, &queen_args);
        (r.code == 0).then(|| r.json())
    });
    assert_eq!(got["item"]["Album"], "A Night at the Opera");

    let query = at(
        l,
        &[
            "query-items",
            "--table-name",
            "Music",
            "--partition-key",
            "Journey",
            "--sort-key-prefix",
            "Don't",
        ],
    )
    .json();
    assert_eq!(query["count"], 1);
    assert_eq!(query["items"][0]["item"]["SongTitle"], "Don't Stop Believin'");
    let none = at(
        l,
        &[
            "query-items",
            "--table-name",
            "Music",
            "--partition-key",
            "Journey",
            "--sort-key-prefix",
            "Sep",
        ],
    )
    .json();
    assert_eq!(none["count"], 0);

    let del = at(
        f,
        &[
            "delete-item",
            "--table-name",
            "Music",
            "--partition-key",
            "The Beatles",
            "--sort-key",
            "Let It Be",
        ],
    );
    assert_eq!(del.json()["deleted"], true);
    let gone = at(
        l,
        &[
            "get-item",
            "--table-name",
            "Music",
            "--partition-key",
            "The Beatles",
            "--sort-key",
            "Let It Be",
        ],
    );
    assert!(gone.error_line(1).contains("not found"), "{gone:#?}");

    let drop = at(f, &["delete-table", "--table-name", "Music"]);
    assert_eq!(drop.json()["deleted"], "Music");
    let missing = at(l, &["describe-table", "--table-name", "Music"]);
    assert_eq!(missing.error_line(1), r#"error: table "Music" not found"#);
}

/// Not found and rejected answers exit 1 with one line on stderr; tables print as
/// tables; without `--target-addr` the first node of the config is asked.
#[test]
fn errors_tables_and_default_target() {
    let cluster = TestCluster::start(3);
    let leader = cluster.wait_leader();
    let l = cluster.addrs[leader].as_str();
    let config = cluster.config.to_str().unwrap();

    let unknown = at(l, &["get-item", "--table-name", "Nope", "--partition-key", "x"]);
    assert_eq!(unknown.error_line(1), r#"error: table "Nope" not found"#);
    let unknown = at(l, &["put-item", "--table-name", "Nope", "--item-data", r#"{"id":"1"}"#]);
    assert_eq!(unknown.error_line(1), r#"error: table "Nope" not found"#);

    at(l, &["create-table", "--table-name", "Users", "--partition-key-name", "id"]).json();
    let exists = at(l, &["create-table", "--table-name", "Users", "--partition-key-name", "id"]);
    assert_eq!(exists.error_line(1), r#"error: table "Users" already exists"#);

    let missing = at(l, &["get-item", "--table-name", "Users", "--partition-key", "ghost"]);
    assert_eq!(
        missing.error_line(1),
        r#"error: item not found in table "Users" (partition key "ghost")"#
    );

    // An item without its key attribute is rejected by the node: exit 1.
    let rejected = at(l, &["put-item", "--table-name", "Users", "--item-data", r#"{"name":"x"}"#]);
    rejected.error_line(1);

    let put = at(
        l,
        &[
            "put-item",
            "--table-name",
            "Users",
            "--item-data",
            r#"{"id":"u1","name":"Ada","age":36}"#,
        ],
    );
    put.json();

    let table =
        at(l, &["get-item", "--table-name", "Users", "--partition-key", "u1", "--output", "table"]);
    assert_eq!(table.code, 0, "{table:#?}");
    for word in ["id", "name", "age", "u1", "Ada", "36", "(version)"] {
        assert!(table.stdout.contains(word), "missing {word:?} in {}", table.stdout);
    }
    let list = at(l, &["list-tables", "--output", "table"]);
    assert!(list.stdout.contains("Users"), "{list:#?}");
    let scan = at(l, &["scan", "--table-name", "Users", "--output", "table"]);
    assert!(scan.stdout.contains("Ada") && scan.stdout.contains("1 item(s)"), "{scan:#?}");
    let describe = at(l, &["describe-table", "--table-name", "Users", "--output", "table"]);
    assert!(describe.stdout.contains("id (S)"), "{describe:#?}");

    // Read your own write on a follower: --after-index makes it wait for the write.
    let follower = (leader + 1) % 3;
    let f = cluster.addrs[follower].as_str();
    let put = at(f, &["put-item", "--table-name", "Users", "--item-data", r#"{"id":"u9","n":1}"#]);
    let version = put.json()["version"].as_u64().unwrap().to_string();
    let other = cluster.addrs[(leader + 2) % 3].as_str();
    let read = at(
        other,
        &["get-item", "--table-name", "Users", "--partition-key", "u9", "--after-index", &version],
    );
    assert_eq!(read.json()["item"]["n"], 1);
    let strong = at(
        other,
        &["get-item", "--table-name", "Users", "--partition-key", "u9", "--consistency", "strong"],
    );
    assert_eq!(strong.json()["item"]["n"], 1);

    // No --target-addr: node 0 of the cluster config answers.
    let status = cli(&["status", "--config", config]).json();
    assert_eq!(status["node_id"], 0);
    assert_eq!(status["leader_id"], leader);
    let status = cli(&["status", "--config", config, "--output", "table"]);
    assert_eq!(status.code, 0, "{status:#?}");
    assert!(status.stdout.contains("role") && status.stdout.contains(&format!("node{leader}")));

    // Without --target-addr, writes may go to any configured node and still land.
    let put = cli(&[
        "put-item",
        "--config",
        config,
        "--table-name",
        "Users",
        "--item-data",
        r#"{"id":"u2"}"#,
    ]);
    put.json();
}

/// A write through the config's node list survives a leader crash: the client skips the
/// dead node, waits out the election (503s, redirects to the dead leader) and lands the
/// write on the new leader, all within its deadline.
#[test]
fn write_survives_a_leader_crash() {
    let mut cluster = TestCluster::start(3);
    let config = cluster.config.to_str().unwrap().to_string();
    let old = cluster.wait_leader();
    let create = [
        "create-table",
        "--config",
        &config,
        "--table-name",
        "Crash",
        "--partition-key-name",
        "id",
    ];
    cli(&create).json();

    cluster.kill(old);
    let put = cli(&[
        "put-item",
        "--config",
        &config,
        "--table-name",
        "Crash",
        "--item-data",
        r#"{"id":"after"}"#,
        "-v",
    ]);
    put.json();
    let new = cluster.wait_leader();
    assert_ne!(new, old);
    assert!(put.stderr.contains(&format!("answered by node{new} (Leader)")), "{put:#?}");

    let survivor = cluster.addrs[(old + 1) % 3].as_str();
    let got = at(
        survivor,
        &[
            "get-item",
            "--table-name",
            "Crash",
            "--partition-key",
            "after",
            "--consistency",
            "strong",
        ],
    );
    assert_eq!(got.json()["item"]["id"], "after");
}

/// Bad input is a usage error (exit 2) and never reaches a node.
#[test]
fn bad_input_exits_2() {
    let dead = dead_addr();
    let bad = at(&dead, &["put-item", "--table-name", "Music", "--item-data", "{bad"]);
    assert!(bad.error_line(2).starts_with("error: --item-data is not valid JSON: "), "{bad:#?}");
    let array = at(&dead, &["put-item", "--table-name", "Music", "--item-data", "[1]"]);
    assert!(array.error_line(2).contains("must be a JSON object"), "{array:#?}");
    let addr = at("not an address", &["status"]);
    assert_eq!(addr.code, 2, "{addr:#?}");

    let bad_type = cli(&[
        "create-table",
        "--table-name",
        "T1x",
        "--partition-key-name",
        "k",
        "--partition-key-type",
        "X",
    ]);
    assert_eq!(bad_type.code, 2, "{bad_type:#?}");
    let bad_limit = at(&dead, &["scan", "--table-name", "Music", "--limit", "lots"]);
    assert_eq!(bad_limit.code, 2, "{bad_limit:#?}");
}

/// A node nobody listens on: exit 1 and a line that names the address.
#[test]
fn unreachable_target_exits_1() {
    let dead = dead_addr();
    let expected = format!("error: cannot reach node at {dead}: connection refused");
    assert_eq!(at(&dead, &["status"]).error_line(1), expected);
    assert_eq!(
        at(&dead, &["get-item", "--table-name", "Music", "--partition-key", "x"]).error_line(1),
        expected
    );
    let put = at(&dead, &["put-item", "--table-name", "Music", "--item-data", r#"{"a":"b"}"#]);
    assert_eq!(put.error_line(1), expected);
}

/// Every data command explains its flags and shows an example, with `-h` and `--help`.
#[test]
fn every_command_has_help_with_an_example() {
    for cmd in [
        "create-table",
        "delete-table",
        "list-tables",
        "describe-table",
        "put-item",
        "get-item",
        "delete-item",
        "query-items",
        "scan",
        "status",
    ] {
        for flag in ["-h", "--help"] {
            let help = cli(&[cmd, flag]);
            assert_eq!(help.code, 0, "{cmd} {flag}: {help:#?}");
            assert!(help.stdout.contains("--target-addr"), "{cmd} {flag}: {}", help.stdout);
            assert!(help.stdout.contains(&format!("raft-nosql {cmd} ")), "{cmd}: no example");
        }
    }
}
