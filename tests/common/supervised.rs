//! A cluster run by a real supervisor (`raft-nosql server` in the foreground), in a temp
//! dir on free ports. On drop it kills only what it started: the server, and the nodes
//! named by pid files in its own data dir whose command line names its own config.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{bin, eventually, http, write_config};

pub const WAIT: Duration = Duration::from_secs(60);

pub struct Supervised {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub addrs: Vec<String>,
    /// `host:port` of the control API and dashboard.
    pub control: String,
    pub data: PathBuf,
    server: Option<Child>,
}

impl Supervised {
    /// Starts `raft-nosql server` for `n` nodes and waits until every node follows one
    /// leader.
    pub fn start(n: usize) -> Supervised {
        Self::start_prepared(n, |_| {})
    }

    /// Like [`start`](Self::start), calling `prepare` with the data root before the
    /// supervisor starts (to mount a file system for a node, say).
    pub fn start_prepared(n: usize, prepare: impl FnOnce(&Path)) -> Supervised {
        let dir = tempfile::tempdir().unwrap();
        let (config, addrs) = write_config(dir.path(), n, "");
        let parsed =
            raft_nosql::config::from_toml_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
        prepare(&parsed.data_root);
        let out = std::fs::File::create(dir.path().join("server.out")).unwrap();
        let server = Command::new(bin())
            .arg("--config")
            .arg(&config)
            .arg("server")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let s = Supervised {
            control: parsed.supervisor.control_addr,
            data: parsed.data_root,
            dir,
            config,
            addrs,
            server: Some(server),
        };
        s.wait_leader_other_than(None);
        s
    }

    /// `http://<control>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.control)
    }

    /// The control API's `GET /status`.
    pub fn view(&self) -> Option<Value> {
        http().get(self.url("/status")).send().ok()?.json().ok()
    }

    /// Waits until a leader other than `not` is known to every running node; its id.
    pub fn wait_leader_other_than(&self, not: Option<u64>) -> u64 {
        eventually(WAIT, "a leader every running node follows", || {
            let view = self.view()?;
            let leader = view["leader"]["id"].as_u64()?;
            if Some(leader) == not {
                return None;
            }
            for n in view["nodes"].as_array()? {
                if n["state"] == "running" && n["status"]["leader_id"].as_u64() != Some(leader) {
                    return None;
                }
            }
            Some(leader)
        })
    }

    /// What the supervisor printed (for failure messages).
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.out")).unwrap_or_default()
    }

    fn pids(&self) -> Vec<u32> {
        let mut files = vec![self.data.join("supervisor.pid")];
        files.extend((0..self.addrs.len()).map(|i| self.data.join(format!("node{i}/node.pid"))));
        files.iter().filter_map(|f| read_pid(f)).collect()
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let ours = self.config.display().to_string();
        for pid in self.pids() {
            if cmdline(pid).is_some_and(|c| c.contains(&ours)) {
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}
