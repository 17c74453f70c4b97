//! A cluster across real network namespaces, driven through `scripts/netns-cluster.sh`:
//! every node in its own namespace with its own address on a bridge, faults made of
//! real packets delayed, dropped or cut off in the kernel. The test process talks to the
//! nodes over the bridge (this machine has an address on it).
//!
//! Each cluster has its own name prefix and run directory (in a temp dir) and is taken
//! down on drop; the script also takes it down by itself when the test process is gone
//! (`NETNS_OWNER_PID`), so a test killed by a timeout leaves nothing behind.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use super::{bin, eventually, http, send_following};

/// Why network namespaces cannot be used here, or None if they can. Only a kernel or
/// a user that refuses them is a reason: missing tools are installed by the script.
pub fn unavailable() -> Option<String> {
    if unsafe { libc::geteuid() } != 0 {
        return Some("network namespaces need root".to_string());
    }
    match Command::new("unshare").args(["--net", "true"]).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "the kernel refuses a new network namespace: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run unshare: {e}")),
    }
}

/// One cluster of `raft-nosql node` processes, one per namespace.
pub struct NetnsCluster {
    pub dir: tempfile::TempDir,
    pub prefix: String,
    /// Node i's host:port on the bridge.
    pub addrs: Vec<String>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/netns-cluster.sh")
}

impl NetnsCluster {
    /// Starts `n` nodes (`up N`), initialised, with a leader. `tag` (one letter)
    /// names the test in the prefix, next to this process's id.
    pub fn start(n: usize, tag: &str) -> NetnsCluster {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let run = RUNS.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("t{tag}{:04x}{run}", std::process::id() & 0xffff);
        assert!(prefix.len() <= 8, "prefix {prefix} too long");
        let mut c = NetnsCluster { dir: tempfile::tempdir().unwrap(), prefix, addrs: Vec::new() };
        c.run(&["up", &n.to_string()]);
        c.addrs = c.run(&["targets"]).trim().split(',').map(str::to_string).collect();
        c
    }

    /// Runs the script with `args` for this cluster; its stdout. Panics if it fails.
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("bash")
            .arg(script())
            .args(args)
            .env("NETNS_PREFIX", &self.prefix)
            .env("NETNS_RUN_DIR", self.dir.path().join("run"))
            .env("NETNS_BIN", bin())
            .env("NETNS_OWNER_PID", std::process::id().to_string())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "netns-cluster.sh {args:?} failed: {stdout}{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        stdout
    }

    /// Every node's output, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for i in 0..self.addrs.len() {
            let path = self.dir.path().join(format!("run/data/node{i}/node.log"));
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            out.push_str(&format!("--- node {i} (last lines)\n"));
            for l in tail.iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    pub fn delay(&self, node: usize, ms: u32, jitter: u32) {
        self.run(&["delay", &node.to_string(), &ms.to_string(), &jitter.to_string()]);
    }
    pub fn loss(&self, node: usize, pct: u32) {
        self.run(&["loss", &node.to_string(), &pct.to_string()]);
    }
    pub fn partition(&self, node: usize) {
        self.run(&["partition", &node.to_string()]);
    }
    pub fn heal(&self) {
        self.run(&["heal"]);
    }
    pub fn kill(&self, node: usize) {
        self.run(&["kill", &node.to_string()]);
    }
    pub fn start_node(&self, node: usize) {
        self.run(&["start", &node.to_string()]);
    }

    pub fn url(&self, i: usize, path: &str) -> String {
        format!("http://{}{}", self.addrs[i], path)
    }

    /// Node `i`'s `/status`, or None if it does not answer.
    pub fn status(&self, i: usize) -> Option<Value> {
        let r = http().get(self.url(i, "/status")).timeout(Duration::from_secs(2)).send().ok()?;
        r.json().ok()
    }

    /// Waits until the nodes of `among` name one leader, itself among them, that says
    /// it leads; returns its id.
    pub fn wait_leader_among(&self, among: &[usize]) -> usize {
        eventually(Duration::from_secs(30), &format!("a leader among {among:?}"), || {
            let mut leader = None;
            for &i in among {
                let l = self.status(i)?.get("leader_id")?.as_u64()? as usize;
                if leader.is_some_and(|x| x != l) || !among.contains(&l) {
                    return None;
                }
                leader = Some(l);
            }
            let l = leader?;
            (self.status(l)?.get("role")?.as_str()? == "Leader").then_some(l)
        })
    }

    /// [`wait_leader_among`](Self::wait_leader_among) every node.
    pub fn wait_leader(&self) -> usize {
        self.wait_leader_among(&(0..self.addrs.len()).collect::<Vec<_>>())
    }

    /// Creates a table through node 0 (following the redirect to the leader).
    pub fn create_table(&self, definition: &str) {
        let body: Value = serde_json::from_str(definition).unwrap();
        let r = eventually(Duration::from_secs(30), "the table created", || {
            send_following(reqwest::Method::POST, &self.url(0, "/tables"), Some(&body))
                .filter(|r| r.status() == 201)
        });
        assert_eq!(r.status(), 201);
    }

    /// Waits until every node of `nodes` has applied all it knows committed and they all
    /// show one digest at one index.
    pub fn wait_converged(&self, nodes: &[usize]) {
        eventually(Duration::from_secs(60), "the nodes to converge to one digest", || {
            let st: Vec<Value> = nodes.iter().map(|&i| self.status(i)).collect::<Option<_>>()?;
            let same = st.iter().all(|s| {
                s["digest_index"] == st[0]["digest_index"]
                    && s["digest"] == st[0]["digest"]
                    && s["applied"] == s["committed"]
                    && s["applied"] == st[0]["applied"]
            });
            same.then_some(())
        });
    }
}

impl Drop for NetnsCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("down")
            .env("NETNS_PREFIX", &self.prefix)
            .env("NETNS_RUN_DIR", self.dir.path().join("run"))
            .output();
    }
}
