//! A cluster run by a real supervisor (`raft-nosql server` in the foreground), in a temp
//! dir on free ports. On drop it kills only what it started: the server, and the nodes
//! named by pid files in its own data dir whose command line names its own config.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
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
        Supervised::start_with(n, "")
    }

    /// As [`Supervised::start`], with `extra` config (see [`write_config`]).
    pub fn start_with(n: usize, extra: &str) -> Supervised {
        Self::start_prepared_with(n, extra, |_| {})
    }

    /// Like [`start`](Self::start), calling `prepare` with the data root before the
    /// supervisor starts (to mount a file system for a node, say).
    pub fn start_prepared(n: usize, prepare: impl FnOnce(&Path)) -> Supervised {
        Self::start_prepared_with(n, "", prepare)
    }

    fn start_prepared_with(n: usize, extra: &str, prepare: impl FnOnce(&Path)) -> Supervised {
        let dir = tempfile::tempdir().unwrap();
        let (config, addrs) = write_config(dir.path(), n, extra);
        let parsed =
            raft_nosql::config::from_toml_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
        prepare(&parsed.data_root);
        let server = spawn(&config, dir.path());
        let s = Supervised {
            control: parsed.supervisor.control_addr,
            data: parsed.data_root,
            dir,
            config,
            addrs,
            server: Some(server),
        };
        s.wait_up(1);
        s.wait_leader_other_than(None);
        s
    }

    /// Waits until the supervisor has said `n` times that the cluster is up (it takes
    /// membership changes from then on).
    fn wait_up(&self, n: usize) {
        eventually(WAIT, "the supervisor to report the cluster up", || {
            (self.output().matches("raft-nosql cluster is up").count() >= n).then_some(())
        });
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

    /// Runs `raft-nosql --config <config> <args>` to the end.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(bin()).arg("--config").arg(&self.config).args(args).output().unwrap()
    }

    /// The address of node `id` as the supervisor runs it.
    pub fn addr_of(&self, id: u64) -> Option<String> {
        let view = self.view()?;
        let n = view["nodes"].as_array()?.iter().find(|n| n["id"] == id)?.clone();
        n["addr"].as_str().map(str::to_string)
    }

    /// SIGKILLs the supervisor (its nodes die with it) and waits until every node
    /// process it ran is gone.
    pub fn kill_server(&mut self) {
        let pids = self.pids();
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        eventually(WAIT, "every node process to exit with its supervisor", || {
            pids.iter().all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()).then_some(())
        });
    }

    /// Stops the supervisor with SIGTERM (every node stops) and waits for it.
    pub fn stop_server(&mut self) {
        if let Some(mut c) = self.server.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// Starts the supervisor again on the same config and data; waits for a leader.
    pub fn restart_server(&mut self) {
        assert!(self.server.is_none(), "the supervisor is still running");
        let ups = self.output().matches("raft-nosql cluster is up").count();
        self.server = Some(spawn(&self.config, self.dir.path()));
        self.wait_up(ups + 1);
        self.wait_leader_other_than(None);
    }

    /// Pids from the pid files of the supervisor and of every node directory.
    fn pids(&self) -> Vec<u32> {
        let mut files = vec![self.data.join("supervisor.pid")];
        if let Ok(dirs) = std::fs::read_dir(&self.data) {
            files.extend(dirs.flatten().map(|d| d.path().join("node.pid")));
        }
        files.iter().filter_map(|f| read_pid(f)).collect()
    }
}

/// `raft-nosql --config <config> server`, output appended to `<dir>/server.out`.
fn spawn(config: &Path, dir: &Path) -> Child {
    super::spawn_server(config, &dir.join("server.out"))
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- supervisor output:\n{}", self.output());
            for dir in std::fs::read_dir(&self.data).into_iter().flatten().flatten() {
                let log = std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                eprintln!("--- {} (last lines):\n{tail}", dir.path().display());
            }
        }
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
