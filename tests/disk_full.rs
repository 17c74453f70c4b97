//! A full disk: one node's data directory on a small tmpfs fills up while the cluster
//! takes writes. That node stops without corrupting anything and says why; the others
//! keep every acknowledged write; once the tmpfs grows the node rejoins by itself.
//!
//! Mounting needs root (or CAP_SYS_ADMIN); where the kernel refuses, the test prints why
//! and is skipped.

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::supervised::Supervised;
use common::{eventually, http, send_following};
use reqwest::Method;
use serde_json::{json, Value};

/// Mount points this test made; unmounted (lazily, so a process still inside cannot
/// stop it) when dropped, also when the test fails.
#[derive(Default)]
struct Mounts(RefCell<Vec<PathBuf>>);

impl Mounts {
    /// Mounts a tmpfs of `size` (e.g. `24m`) on `dir`; the kernel's refusal as Err.
    fn tmpfs(&self, dir: &Path, size: &str) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        self.0.borrow_mut().push(dir.to_path_buf());
        Ok(())
    }

    fn resize(&self, dir: &Path, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "remount: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        for dir in self.0.borrow().iter() {
            let _ = Command::new("umount").arg("-l").arg(dir).status();
        }
    }
}

const TABLE: &str = r#"{"table_name":"full","partition_key":{"name":"k","type":"S"}}"#;

/// The control API's view of node `id`.
fn node_view(s: &Supervised, id: u64) -> Option<Value> {
    s.view()?["nodes"].as_array()?.iter().find(|n| n["id"] == id).cloned()
}

/// Every key of table `full` that node `addr` has applied (a local, paginated scan).
fn keys_on(addr: &str) -> Option<BTreeSet<String>> {
    let mut keys = BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        // The scan cursor is URL-safe base64: no escaping needed.
        let mut url = format!("http://{addr}/tables/full/scan?limit=1000");
        if let Some(a) = &after {
            url.push_str(&format!("&start_after={a}"));
        }
        let page: Value = http().get(url).send().ok()?.json().ok()?;
        for it in page["items"].as_array()? {
            keys.insert(it["item"]["k"].as_str()?.to_string());
        }
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => return Some(keys),
        }
    }
}

/// Node 2's data directory is a 24 MB tmpfs. Writes fill it: node 2 stops with
/// `storage_full` in its log and "disk full" in `cluster status`, and the supervisor
/// does not restart it in a loop. Nodes 0 and 1 keep taking writes and hold every
/// acknowledged one. Once the tmpfs is grown, node 2 is restarted by the supervisor,
/// catches up and ends with the same digest as the others.
#[test]
fn a_node_with_a_full_disk_stops_cleanly_and_rejoins_once_space_is_freed() {
    let mounts = Mounts::default();
    let mut refused = None;
    let node2 = RefCell::new(PathBuf::new());
    let s = Supervised::start_prepared(3, |data| {
        let dir = data.join("node2");
        if let Err(e) = mounts.tmpfs(&dir, "24m") {
            refused = Some(e);
        }
        *node2.borrow_mut() = dir;
    });
    if let Some(why) = refused {
        eprintln!("skipped: the kernel refused to mount a tmpfs ({why}); this test needs root");
        return;
    }
    let node2 = node2.into_inner();
    let leader = s.wait_leader_other_than(Some(2));
    let leader_addr = s.addrs[leader as usize].clone();
    let body: Value = serde_json::from_str(TABLE).unwrap();
    let r = send_following(Method::POST, &format!("http://{leader_addr}/tables"), Some(&body));
    assert_eq!(r.map(|r| r.status().as_u16()), Some(201));

    let filler = "x".repeat(2000);
    let mut acked = BTreeSet::new();
    let mut n = 0;
    let mut put = |acked: &mut BTreeSet<String>| {
        let k = format!("k{n:07}");
        n += 1;
        let item = json!({ "k": k, "data": filler });
        // Through nodes 0 and 1 in turn: writes follow the redirect to the leader.
        let addr = &s.addrs[n % 2];
        let url = format!("http://{addr}/tables/full/items");
        if send_following(Method::PUT, &url, Some(&item)).is_some_and(|r| r.status() == 200) {
            acked.insert(k);
        }
    };
    eventually(Duration::from_secs(300), "node 2 to stop on a full disk", || {
        for _ in 0..50 {
            put(&mut acked);
        }
        let v = node_view(&s, 2)?;
        (v["reason"] == "disk full").then_some(())
    });
    // The others go on taking writes.
    let before = acked.len();
    for _ in 0..200 {
        put(&mut acked);
    }
    assert!(acked.len() > before, "nodes 0 and 1 kept taking writes");

    let v = node_view(&s, 2).unwrap();
    assert_eq!(v["state"], "restarting", "waits for space: {v}");
    let status = Command::new(common::bin())
        .args(["cluster", "status", "--output", "table", "--config"])
        .arg(&s.config)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(table.contains("disk full"), "cluster status names the reason:\n{table}");
    let log = std::fs::read_to_string(node2.join("node.log")).unwrap_or_default();
    assert!(log.contains("\"storage_full\""), "node 2 logged storage_full:\n{log}");
    assert!(s.output().contains("disk full"), "the supervisor says why and what to do");

    // Every acknowledged write is on nodes 0 and 1.
    for addr in &s.addrs[..2] {
        eventually(Duration::from_secs(60), "every acknowledged write on node", || {
            let keys = keys_on(addr)?;
            acked.is_subset(&keys).then_some(())
        });
    }

    // More space: the supervisor starts node 2 again, and it converges.
    mounts.resize(&node2, "512m");
    eventually(Duration::from_secs(180), "node 2 back with the others' digest", || {
        let view = s.view()?;
        let nodes = view["nodes"].as_array()?;
        let statuses: Vec<&Value> = nodes.iter().map(|n| &n["status"]).collect();
        let same = statuses.iter().all(|st| {
            st["digest"].is_string()
                && st["digest"] == statuses[0]["digest"]
                && st["digest_index"] == statuses[0]["digest_index"]
        });
        (same && nodes.iter().all(|n| n["state"] == "running")).then_some(())
    });
    let keys = keys_on(&s.addrs[2]).unwrap();
    assert!(acked.is_subset(&keys), "node 2 holds every acknowledged write");
}
