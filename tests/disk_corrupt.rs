//! Damaged files: a node started on a data directory with a flipped byte or a truncated
//! file (journal, a segment of each keyspace; a snapshot exists as a file only while
//! it is sent or installed, see the state machine's tests) either recovers to the
//! state the cluster's digests confirm, or refuses to start with exit status 65, naming
//! its data directory and the remedy (`--rejoin`); with `--rejoin` it converges. It
//! never serves or replicates different data. A flipped byte in a journal is always
//! refused, naming the journal; a journal cut short reads as a crash's torn tail: the
//! node has lost writes it had synced, and either catches up from the leader or refuses.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::supervised::Supervised;
use common::{eventually, http, send_following, TestCluster};
use reqwest::Method;
use serde_json::{json, Value};

const TABLE: &str = r#"{"table_name":"dmg","partition_key":{"name":"k","type":"S"}}"#;

/// Small snapshot interval, so snapshots are built and the log is purged.
const RAFT: &str = "snapshot_logs_since_last = 100\nmax_in_snapshot_log_to_keep = 20\n";

fn put_items(c: &TestCluster, from: usize, n: usize) {
    let filler = "y".repeat(2000);
    for k in from..from + n {
        let item = json!({ "k": format!("k{k:06}"), "data": filler, "n": k });
        let url = c.url(0, "/tables/dmg/items");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let r = send_following(Method::PUT, &url, Some(&item));
            if r.as_ref().is_some_and(|r| r.status() == 200) {
                break;
            }
            if std::time::Instant::now() > deadline {
                let tail = |i: usize| {
                    let o = c.output(i);
                    let lines: Vec<&str> = o.lines().collect();
                    let panic = lines.iter().position(|l| l.contains("panicked at"));
                    let from = panic.unwrap_or(lines.len().saturating_sub(10));
                    lines[from..(from + 10).min(lines.len())].join("\n")
                };
                panic!(
                    "write {k} not acknowledged: {:?}\nnode 0:\n{}\nnode 2:\n{}",
                    r.map(|r| r.status()),
                    tail(0),
                    tail(2)
                );
            }
            std::thread::sleep(Duration::from_millis(100)); // retry interval, bounded by the deadline
        }
    }
}

/// Waits until every node reports the same digest at the same applied index.
fn converged(c: &TestCluster) {
    eventually(Duration::from_secs(120), "equal digests on every node", || {
        let s: Vec<Value> = (0..3).map(|i| c.status(i)).collect::<Option<_>>()?;
        let same = s
            .iter()
            .all(|x| x["digest"] == s[0]["digest"] && x["digest_index"] == s[0]["digest_index"]);
        same.then_some(())
    });
}

/// How a file is damaged.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// One byte in the middle flipped.
    Flip,
    /// The second half cut off.
    Truncate,
}

/// Damages the middle of the file's content. A journal is preallocated with zeros,
/// so its content ends with the last batch's end marker (trailer `FJL\x03`).
fn damage(path: &Path, how: Damage) {
    let mut bytes = std::fs::read(path).unwrap();
    let len = if path.extension().is_some_and(|e| e == "jnl") {
        let last = bytes.windows(4).rposition(|w| w == b"FJL\x03").expect("a journal batch");
        last + 4
    } else {
        bytes.len()
    };
    match how {
        Damage::Flip => bytes[len / 2] ^= 0x5a,
        Damage::Truncate => bytes.truncate(len / 2),
    }
    std::fs::write(path, bytes).unwrap();
}

/// The largest regular file directly in `dir` matching `pick`.
fn largest(dir: &Path, pick: impl Fn(&str) -> bool) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| e.file_name().to_str().is_some_and(&pick))
        .filter(|e| e.metadata().is_ok_and(|m| m.len() > 0))
        .max_by_key(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .map(|e| e.path())
}

/// The files to damage in node directory `dir`: its largest journal, the largest
/// segment of every keyspace that has one, and a snapshot file if there is one.
fn targets(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    if let Some(j) = largest(&dir.join("db"), |n| n.ends_with(".jnl")) {
        out.push(("journal".to_string(), j));
    }
    let mut spaces: Vec<PathBuf> =
        std::fs::read_dir(dir.join("db/keyspaces")).unwrap().flatten().map(|e| e.path()).collect();
    spaces.sort();
    for ks in spaces {
        if let Some(seg) = largest(&ks.join("tables"), |_| true) {
            let name = ks.file_name().unwrap().to_string_lossy().to_string();
            out.push((format!("segment of keyspace {name}"), seg));
        }
    }
    if let Some(s) = largest(&dir.join("snapshots"), |n| n.ends_with(".bin")) {
        out.push(("snapshot".to_string(), s));
    }
    out
}

/// Every kind of file, flipped and truncated: the node recovers and converges, or
/// refuses to start (exit 65) naming its data directory and `--rejoin`, and converges
/// after `--rejoin`. A refused node never answered with its damaged data in between.
#[test]
fn a_node_on_damaged_files_recovers_or_refuses_and_rejoin_converges() {
    let mut c = TestCluster::start_with(3, RAFT);
    c.create_table(TABLE);
    put_items(&c, 0, 4000);
    converged(&c);
    let node_dir = c.dir.path().join("data/node2");
    let mut seen = Vec::new();
    let mut next = 4000;
    for how in [Damage::Flip, Damage::Truncate] {
        c.stop(2);
        let kinds: Vec<String> = targets(&node_dir).into_iter().map(|(k, _)| k).collect();
        assert!(!kinds.iter().any(|k| k == "snapshot"), "no snapshot file at rest: {kinds:?}");
        assert!(kinds.iter().any(|k| k == "journal"), "a journal exists: {kinds:?}");
        assert!(kinds.len() >= 3, "segments exist: {kinds:?}");
        c.restart(2);
        for kind in kinds {
            c.stop(2);
            // The same kind of file again (names change as the node writes).
            let Some((_, path)) = targets(&node_dir).into_iter().find(|(k, _)| *k == kind) else {
                continue;
            };
            damage(&path, how);
            let before = c.output(2).len();
            c.start_with_args(2, &[]);
            let outcome = match c.wait_exit(2, Duration::from_secs(60)) {
                Some(status) => {
                    let out = c.output(2)[before..].to_string();
                    assert_eq!(status.code(), Some(65), "{kind} {how:?}: refused, exit 65:\n{out}");
                    assert!(
                        out.contains(&node_dir.display().to_string()) && out.contains("--rejoin"),
                        "{kind} {how:?}: the refusal names the directory and the remedy:\n{out}"
                    );
                    if kind == "journal" {
                        // A flip: the journal check names it; a cut: what the database
                        // lost (the record beside it, or a finished install's missing
                        // file) is named with the journal as the cause.
                        let named = match how {
                            Damage::Flip => format!("the journal {} is damaged", path.display()),
                            Damage::Truncate => "cut short".to_string(),
                        };
                        assert!(
                            out.contains(&named),
                            "{kind} {how:?}: the refusal names the journal:\n{out}"
                        );
                    }
                    if kind.starts_with("segment") && out.contains("fails its checks") {
                        assert!(
                            out.contains(&format!("{} fails its checks", path.display())),
                            "{kind} {how:?}: a named file is the damaged one:\n{out}"
                        );
                    }
                    c.start_with_args(2, &["--rejoin"]);
                    let why = out.lines().find(|l| l.starts_with("error: ")).unwrap_or("");
                    format!("refused ({}); rejoined", why.chars().take(400).collect::<String>())
                }
                None => {
                    // fjall would cut a journal at a flipped byte and drop the batches
                    // after it: that is refused, never "recovered".
                    assert!(
                        !(kind == "journal" && matches!(how, Damage::Flip)),
                        "a flipped byte in the middle of a journal is refused"
                    );
                    "recovered".to_string()
                }
            };
            c.wait_up(2);
            // New writes reach the node either way.
            put_items(&c, next, 20);
            next += 20;
            converged(&c);
            let v: Value = http().get(c.url(2, "/admin/verify")).send().unwrap().json().unwrap();
            assert_eq!(v["consistent"], true, "{kind} {how:?}: {v}");
            eprintln!("{kind} {how:?}: {outcome}");
            seen.push(format!("{kind} {how:?}: {outcome}"));
        }
    }
    eprintln!("{}", seen.join("\n"));
}

/// Under the supervisor, as the README shows it: a flipped byte in the largest segment
/// of node 2's database makes it exit with status 65; the supervisor shows it
/// `crashed (data damaged)` and does not restart it, the others go on; `cluster
/// rejoin-node 2` wipes its data and it catches up (by a snapshot: the log behind it is
/// purged) to the others' digest.
#[test]
fn a_damaged_node_is_shown_and_cluster_rejoin_node_brings_it_back() {
    let s = Supervised::start_with(3, RAFT);
    let leader = s.wait_leader_other_than(None);
    let body: Value = serde_json::from_str(TABLE).unwrap();
    let url = format!("http://{}/tables", s.addrs[leader as usize]);
    let r = send_following(Method::POST, &url, Some(&body));
    assert_eq!(r.map(|r| r.status().as_u16()), Some(201));
    let put = |from: usize, n: usize| {
        for i in from..from + n {
            let item = json!({ "k": format!("k{i:06}"), "v": "x".repeat(500) });
            // Through nodes 0 and 1 (node 2 is down for part of the test).
            let url = format!("http://{}/tables/dmg/items", s.addrs[i % 2]);
            let r = send_following(Method::PUT, &url, Some(&item));
            assert_eq!(r.map(|r| r.status().as_u16()), Some(200), "put {i}");
        }
    };
    put(0, 3000);
    let converged = |what: &str| {
        eventually(Duration::from_secs(120), what, || {
            let view = s.view()?;
            let nodes = view["nodes"].as_array()?;
            let st: Vec<&Value> = nodes.iter().map(|n| &n["status"]).collect();
            let same = st.iter().all(|x| {
                x["digest"].is_string()
                    && x["digest"] == st[0]["digest"]
                    && x["digest_index"] == st[0]["digest_index"]
            });
            (same && nodes.len() == 3 && nodes.iter().all(|n| n["state"] == "running"))
                .then_some(())
        })
    };
    converged("every node applied the writes");

    let out = s.cli(&["cluster", "stop-node", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let node = |id: u64| s.view()?["nodes"].as_array()?.iter().find(|n| n["id"] == id).cloned();
    eventually(Duration::from_secs(60), "node 2 stopped", || {
        (node(2)?["state"] == "stopped").then_some(())
    });
    let node_dir = s.data.join("node2");
    // The largest segment of any keyspace, as the README's `ls -S .../tables/* | head -1`.
    let segment = std::fs::read_dir(node_dir.join("db/keyspaces"))
        .unwrap()
        .flatten()
        .filter_map(|ks| largest(&ks.path().join("tables"), |_| true))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a segment");
    damage(&segment, Damage::Flip);
    let out = s.cli(&["cluster", "start-node", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = eventually(Duration::from_secs(60), "node 2 refused its damaged data", || {
        node(2).filter(|v| v["reason"] == "data damaged")
    });
    assert_eq!(v["state"], "crashed", "{v}");
    let table = s.cli(&["cluster", "status", "--output", "table"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("data damaged"), "cluster status names the reason:\n{table}");
    assert!(s.output().contains("rejoin-node 2"), "the supervisor names the remedy");
    let log = std::fs::read_to_string(node_dir.join("node.log")).unwrap_or_default();
    let refusal = log.lines().find(|l| l.contains("\"storage_damaged\"")).expect("logged");
    assert!(
        refusal.contains(&format!("{} fails its checks", segment.display())),
        "the refusal names the damaged file {}:\n{refusal}",
        segment.display()
    );
    put(3000, 100);
    // Not restarted meanwhile.
    assert_eq!(node(2).unwrap()["state"], "crashed");

    let out = s.cli(&["cluster", "rejoin-node", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    converged("node 2 rejoined with the others' digest");
    let log = std::fs::read_to_string(node_dir.join("node.log")).unwrap_or_default();
    assert!(log.contains("\"node_rejoin\""), "node 2 logged node_rejoin");
}

/// A state machine whose item keyspace was changed behind its back (an item written
/// directly into fjall, the digest left alone) refuses to open.
#[test]
fn a_state_machine_whose_items_changed_on_disk_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = raft_nosql::storage::Store::open(dir.path()).unwrap();
    let progress = std::sync::Arc::new(raft_nosql::storage::Progress::default());
    drop(raft_nosql::storage::StateMachine::new(store.clone(), progress.clone()).unwrap());
    // A stored digest of an empty state, then an item that apply never wrote.
    store.sm_meta.insert("digest", 0u128.to_be_bytes().to_vec()).unwrap();
    store.items.insert(b"\x00\x00\x00\x00\x00\x00\x00\x01k", b"rogue").unwrap();
    let err = raft_nosql::storage::StateMachine::new(store, progress).err().expect("refused");
    assert!(err.to_string().contains("do not match their digest"), "{err}");
}

/// `/admin/verify` on a running node whose item keyspace was changed behind apply's
/// back reports it inconsistent and names the remedy.
#[tokio::test]
async fn admin_verify_detects_a_changed_item_keyspace() {
    let dir = tempfile::tempdir().unwrap();
    let node = common::inproc::leader_node(dir.path()).await;
    let routes = raft_nosql::server::routes(node.app.clone());
    let verify = || async {
        let r = warp::test::request().method("GET").path("/admin/verify").reply(&routes).await;
        serde_json::from_slice::<Value>(r.body()).unwrap()
    };
    assert_eq!(verify().await["consistent"], true);
    node.store.items.insert(b"\x00\x00\x00\x00\x00\x00\x00\x01k", b"rogue").unwrap();
    let v = verify().await;
    assert_eq!(v["consistent"], false, "{v}");
    assert!(v["note"].as_str().unwrap().contains("--rejoin"), "{v}");
}
