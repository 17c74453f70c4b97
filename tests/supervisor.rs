//! Process-level tests of the supervisor: `raft-nosql server`, `raft-nosql cluster …`, and
//! the config files shipped in the repository.
//!
//! Each test runs the real binary in its own temp dir, on free ports, polls with deadlines
//! (never a fixed sleep), and its [`Sup`] guard kills, on drop, only processes it started:
//! the supervisor, and every node named by a pid file in its data dir whose command line
//! names the test's own config file.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{bin, eventually, http, spawn_server, write_config};
use serde_json::{json, Value};

/// Under plain `cargo test` all tests of this file run at once in one process; three
/// clusters at a time starve elections on a 2-core machine. (nextest runs each test in
/// its own process and limits them with a test group instead.)
static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_CLUSTER_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

const WAIT: Duration = Duration::from_secs(60);

/// Extra config for tests: quick restarts.
const QUICK_RESTART: &str = "\n[supervisor.restart]\ninitial_backoff_ms = 100\n";

/// One cluster under a supervisor, in a temp dir.
struct Sup {
    dir: tempfile::TempDir,
    config: PathBuf,
    addrs: Vec<String>,
    control: String,
    data: PathBuf,
    /// A foreground `raft-nosql server`, if this test started one.
    server: Option<Child>,
}

impl Sup {
    fn new(n: usize, extra: &str) -> Sup {
        let dir = tempfile::tempdir().unwrap();
        let (config, addrs) = write_config(dir.path(), n, extra);
        let parsed =
            raft_nosql::config::from_toml_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
        Sup {
            control: parsed.supervisor.control_addr,
            data: parsed.data_root,
            dir,
            config,
            addrs,
            server: None,
        }
    }

    /// Starts `raft-nosql server` in the foreground (output in `server.out`).
    fn start_server(&mut self) {
        assert!(self.server.is_none());
        let child = spawn_server(&self.config, &self.dir.path().join("server.out"));
        self.server = Some(child);
    }

    /// Sends `sig` to the foreground server and waits for it to exit.
    fn signal_server(&mut self, sig: libc::c_int) -> ExitStatus {
        let mut child = self.server.take().expect("a server is running");
        unsafe { libc::kill(child.id() as i32, sig) };
        eventually(WAIT, "the supervisor to exit", || child.try_wait().unwrap())
    }

    /// Runs `raft-nosql --config <ours> <args…>`.
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs a `cluster …` command that must succeed; returns its stdout.
    fn cluster_ok(&self, args: &[&str]) -> String {
        let mut all = vec!["cluster"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "cluster {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.server_output()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The control API's `GET /status`, if a supervisor answers.
    fn view(&self) -> Option<Value> {
        http().get(format!("http://{}/status", self.control)).send().ok()?.json().ok()
    }

    /// The supervisor's view of node `id`.
    fn node_view(&self, id: u64) -> Option<Value> {
        self.view()?["nodes"].as_array()?.iter().find(|n| n["id"] == id).cloned()
    }

    /// Node `id`'s own `/status`.
    fn node_status(&self, id: u64) -> Option<Value> {
        http().get(format!("http://{}/status", self.addrs[id as usize])).send().ok()?.json().ok()
    }

    /// Waits until the supervisor reports a leader that every running node agrees on
    /// (other than `not`); returns its id.
    fn wait_leader_other_than(&self, not: Option<u64>) -> u64 {
        eventually(WAIT, "a leader every running node agrees on", || {
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

    fn wait_leader(&self) -> u64 {
        self.wait_leader_other_than(None)
    }

    fn pid_file(&self, id: u64) -> PathBuf {
        self.data.join(format!("node{id}")).join("node.pid")
    }

    fn node_pid(&self, id: u64) -> Option<u32> {
        read_pid(&self.pid_file(id))
    }

    fn node_pids(&self) -> Vec<u32> {
        (0..self.addrs.len() as u64).filter_map(|i| self.node_pid(i)).collect()
    }

    fn supervisor_pid(&self) -> Option<u32> {
        read_pid(&self.data.join("supervisor.pid"))
    }

    /// What the foreground supervisor printed, plus a detached one's log (for failures).
    fn server_output(&self) -> String {
        let fg = std::fs::read_to_string(self.dir.path().join("server.out")).unwrap_or_default();
        let bg = std::fs::read_to_string(self.data.join("supervisor.log")).unwrap_or_default();
        format!("--- supervisor output ---\n{fg}{bg}")
    }

    fn url(&self, id: u64, path: &str) -> String {
        format!("http://{}{}", self.addrs[id as usize], path)
    }

    /// Kills every process of this test that may still run: only pids from our own pid
    /// files whose command line names our config, and the server we spawned.
    fn kill_everything(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let ours = self.config.display().to_string();
        let mut pids: Vec<u32> = self.supervisor_pid().into_iter().collect();
        pids.extend(self.node_pids());
        for pid in pids {
            if cmdline(pid).is_some_and(|c| c.contains(&ours)) {
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
    }
}

impl Drop for Sup {
    fn drop(&mut self) {
        self.kill_everything();
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

/// Alive and not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(')').next().and_then(|r| r.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

fn wait_gone(pids: &[u32], what: &str) {
    eventually(WAIT, what, || pids.iter().all(|p| !alive(*p)).then_some(()));
}

/// Sends a write, following 307s to the leader; retries (within the deadline) while no
/// leader is known. Returns the final response's status and body.
fn write(method: &str, url: &str, body: &Value) -> (u16, Value) {
    eventually(WAIT, &format!("{method} {url} to be accepted"), || {
        let mut url = url.to_string();
        for _ in 0..5 {
            let req = match method {
                "POST" => http().post(&url),
                "PUT" => http().put(&url),
                m => panic!("unexpected method {m}"),
            };
            let r = req.json(body).send().ok()?;
            let status = r.status().as_u16();
            if status == 307 {
                url = r.headers().get("location")?.to_str().ok()?.to_string();
                continue;
            }
            if status >= 500 {
                return None; // no leader yet, or a leader change under way
            }
            return Some((status, r.json().unwrap_or(Value::Null)));
        }
        None
    })
}

fn create_table(s: &Sup, via: u64) {
    let body = json!({"table_name": "Things", "partition_key": {"name": "pk", "type": "S"}});
    let (status, body) = write("POST", &s.url(via, "/tables"), &body);
    assert!(status == 201 || status == 409, "create table: {status} {body}");
}

fn put_item(s: &Sup, via: u64, pk: &str) {
    let (status, body) =
        write("PUT", &s.url(via, "/tables/Things/items"), &json!({"pk": pk, "v": pk.len()}));
    assert_eq!(status, 200, "put {pk}: {body}");
}

/// Waits until node `id` serves item `pk` from its own state machine.
fn wait_item(s: &Sup, id: u64, pk: &str) {
    eventually(WAIT, &format!("item {pk} on node {id}"), || {
        let r = http().get(s.url(id, &format!("/tables/Things/items?pk={pk}"))).send().ok()?;
        (r.status() == 200).then_some(())
    });
}

/// Waits until node `id` has applied everything the leader has applied (and is follower
/// of that leader); returns the applied index.
fn wait_caught_up(s: &Sup, id: u64, leader: u64) -> u64 {
    eventually(WAIT, &format!("node {id} to catch up with leader {leader}"), || {
        let l = s.node_status(leader)?;
        let n = s.node_status(id)?;
        let target = l["applied"].as_u64()?;
        (n["applied"].as_u64()? >= target && n["leader_id"].as_u64() == Some(leader))
            .then_some(target)
    })
}

/// Every config file in the repository loads, and `cluster.toml` writes out every key
/// of the configuration (so it documents all of them).
#[test]
fn every_shipped_config_file_loads_and_cluster_toml_names_every_key() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("cluster.toml")];
    for entry in std::fs::read_dir(root.join("config")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    assert!(files.len() >= 3, "{files:?}");
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        if let Err(e) = raft_nosql::config::from_toml_str(&text) {
            panic!("{} does not load: {e}", f.display());
        }
        raft_nosql::config::load(Some(f), &Default::default())
            .unwrap_or_else(|e| panic!("{} does not load: {e}", f.display()));
    }

    fn keys(v: &toml::Value, prefix: &str, out: &mut Vec<String>) {
        if let toml::Value::Table(t) = v {
            for (k, v) in t {
                let path = format!("{prefix}{k}");
                match v {
                    toml::Value::Table(_) => keys(v, &format!("{path}."), out),
                    _ => out.push(path),
                }
            }
        }
    }
    let mut want = Vec::new();
    let defaults = raft_nosql::config::ClusterConfig::default().to_toml();
    keys(&toml::from_str(&defaults).unwrap(), "", &mut want);
    let mut have = Vec::new();
    let ours = std::fs::read_to_string(root.join("cluster.toml")).unwrap();
    keys(&toml::from_str(&ours).unwrap(), "", &mut have);
    for k in want {
        assert!(have.contains(&k), "cluster.toml does not write out `{k}`");
    }
    // Keys without a default value are not written out by the defaults; the file shows
    // them in an example line.
    for example in ["# secret_file = ", "listen = \"0.0.0.0:8100\""] {
        assert!(ours.contains(example), "cluster.toml does not show `{example}`");
    }
}

/// `server` starts three node processes that elect a leader and replicate a write to
/// every node; SIGINT stops them all (no process left, pid files removed, exit 0); a new
/// `server` on the same data still has the write.
#[test]
fn server_runs_the_cluster_and_sigint_leaves_no_node_behind() {
    let _one = serial();
    let mut s = Sup::new(3, "");
    s.start_server();
    let leader = s.wait_leader();
    create_table(&s, leader);
    put_item(&s, leader, "alpha");
    for id in 0..3 {
        wait_item(&s, id, "alpha");
    }
    let pids = s.node_pids();
    assert_eq!(pids.len(), 3, "a pid file per node");
    assert!(s.supervisor_pid().is_some());
    // The summary is printed once the supervisor's own poll has seen the leader.
    eventually(WAIT, "the summary naming the leader", || {
        s.server_output().contains("leads in term").then_some(())
    });

    let status = s.signal_server(libc::SIGINT);
    assert_eq!(status.code(), Some(0), "{}", s.server_output());
    wait_gone(&pids, "every node process to be gone");
    assert!(s.node_pids().is_empty(), "pid files are removed");
    assert!(s.supervisor_pid().is_none(), "supervisor.pid is removed");

    s.start_server();
    s.wait_leader();
    for id in 0..3 {
        wait_item(&s, id, "alpha");
    }
    assert_eq!(s.signal_server(libc::SIGTERM).code(), Some(0));
}

/// `cluster kill <leader>`: the others elect a new leader and take writes; the killed node
/// stays down (`killed`) until `cluster restart`, after which it catches up.
#[test]
fn killed_leader_is_replaced_stays_down_and_catches_up_after_restart() {
    let _one = serial();
    let mut s = Sup::new(3, QUICK_RESTART);
    s.start_server();
    let old = s.wait_leader();
    create_table(&s, old);
    let old_s = old.to_string();

    let out = s.cluster_ok(&["kill", &old_s]);
    assert!(out.contains("killed"), "{out}");
    let new = s.wait_leader_other_than(Some(old));
    let survivor = (0..3).find(|i| *i != old && *i != new).unwrap();
    put_item(&s, survivor, "after-kill");

    // Well past the restart backoff, the killed node is still down.
    let v = s.node_view(old).unwrap();
    assert_eq!(v["state"], "killed", "{v}");
    assert!(v["pid"].is_null(), "{v}");
    let table = s.cluster_ok(&["status"]);
    let row = table.lines().find(|l| l.contains(&s.addrs[old as usize])).unwrap();
    assert!(row.contains("killed"), "{table}");
    assert!(s.node_pid(old).is_none(), "pid file removed");

    let out = s.cluster_ok(&["restart", &old_s]);
    assert!(out.contains("started") || out.contains("restarted"), "{out}");
    let new = s.wait_leader();
    wait_caught_up(&s, old, new);
    wait_item(&s, old, "after-kill");
    assert_eq!(s.node_view(old).unwrap()["state"], "running");
}

/// `cluster pause <leader>` (SIGSTOP): the others elect a new leader; after `cluster
/// resume` the old leader learns the new term, steps down and catches up.
#[test]
fn paused_leader_is_replaced_and_steps_down_after_resume() {
    let _one = serial();
    let mut s = Sup::new(3, "");
    s.start_server();
    let old = s.wait_leader();
    create_table(&s, old);
    let old_s = old.to_string();

    let out = s.cluster_ok(&["pause", &old_s]);
    assert!(out.contains("paused"), "{out}");
    let new = s.wait_leader_other_than(Some(old));
    put_item(&s, new, "during-pause");
    assert_eq!(s.node_view(old).unwrap()["state"], "paused");

    let out = s.cluster_ok(&["resume", &old_s]);
    assert!(out.contains("resumed"), "{out}");
    let leader = s.wait_leader();
    assert_ne!(leader, old, "the resumed node rejoins as a follower");
    wait_caught_up(&s, old, leader);
    let st = s.node_status(old).unwrap();
    assert_eq!(st["role"], "Follower", "{st}");
    wait_item(&s, old, "during-pause");
}

/// A node SIGKILLed by someone other than the supervisor is a crash: it is restarted
/// automatically with a new pid and answers again.
#[test]
fn node_killed_from_outside_is_restarted_automatically() {
    let _one = serial();
    let mut s = Sup::new(3, QUICK_RESTART);
    s.start_server();
    s.wait_leader();
    let old_pid = s.node_pid(1).unwrap();
    unsafe { libc::kill(old_pid as i32, libc::SIGKILL) };
    let new_pid = eventually(WAIT, "node 1 to be restarted", || {
        let pid = s.node_pid(1)?;
        let v = s.node_view(1)?;
        (pid != old_pid && v["state"] == "running" && v["status"].is_object()).then_some(pid)
    });
    assert!(alive(new_pid));
    assert!(!alive(old_pid));
    assert!(s.node_status(1).is_some());
    let v = s.node_view(1).unwrap();
    assert!(v["restarts"].as_u64() >= Some(1), "{v}");
    assert!(s.server_output().contains("exited on its own"), "{}", s.server_output());
}

/// SIGKILL of the supervisor itself (no chance to clean up) still takes every node
/// with it: they asked the kernel for a parent-death signal.
#[test]
fn sigkill_of_the_supervisor_leaves_no_node_behind() {
    let _one = serial();
    let mut s = Sup::new(3, "");
    s.start_server();
    eventually(WAIT, "three node processes", || {
        let pids = s.node_pids();
        (pids.len() == 3 && pids.iter().all(|p| alive(*p))).then_some(())
    });
    let pids = s.node_pids();
    s.signal_server(libc::SIGKILL);
    wait_gone(&pids, "every node to die with its supervisor");
}

/// A config with an unknown key or a duplicate node id is refused before anything
/// starts, naming the key; `cluster` commands without a supervisor say so and exit 1.
#[test]
fn bad_config_is_refused_naming_the_key_and_no_supervisor_is_reported() {
    let s = Sup::new(3, "");
    let text = std::fs::read_to_string(&s.config).unwrap();

    std::fs::write(&s.config, text.replace("heartbeat_ms", "heartbeat")).unwrap();
    let out = s.cli(&["server"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("heartbeat"), "{err}");

    std::fs::write(&s.config, text.replace("id = 2", "id = 1")).unwrap();
    let out = s.cli(&["server"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("nodes[2].id"), "{err}");
    assert!(!s.data.exists(), "nothing was started");

    std::fs::write(&s.config, &text).unwrap();
    for args in [&["cluster", "status"][..], &["cluster", "kill", "1"], &["cluster", "stop"]] {
        let out = s.cli(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!("no supervisor is running at {}", s.control)),
            "{args:?}: {err}"
        );
    }
}

/// `cluster start` returns once a leader is elected and leaves the supervisor running
/// detached; a second `cluster start` refuses; `cluster stop` ends the supervisor and
/// every node; unknown nodes are bad usage.
#[test]
fn cluster_start_refuses_a_second_start_and_stop_ends_everything() {
    let _one = serial();
    let s = Sup::new(3, "");
    let t0 = Instant::now();
    let out = s.cluster_ok(&["start"]);
    assert!(out.contains("leads in term"), "{out}");
    let sup_pid = s.supervisor_pid().expect("supervisor.pid");
    assert!(alive(sup_pid));
    let node_pids = s.node_pids();
    assert_eq!(node_pids.len(), 3);

    let second = s.cli(&["cluster", "start"]);
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(err.contains("already running"), "{err}");

    // An unknown node is bad usage (exit 2), as in every command.
    let unknown = s.cli(&["cluster", "kill", "7"]);
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(2), "{err}");
    assert!(err.contains("node 7 is not in the cluster"), "{err}");

    let json: Value = serde_json::from_str(&s.cluster_ok(&["status", "--json"])).unwrap();
    assert_eq!(json["supervisor"]["pid"], sup_pid);
    assert_eq!(json["nodes"].as_array().unwrap().len(), 3);

    let out = s.cluster_ok(&["stop"]);
    assert!(out.contains("stopped"), "{out}");
    assert!(!alive(sup_pid), "cluster stop returns after the supervisor exited");
    wait_gone(&node_pids, "every node to be stopped");
    assert!(s.supervisor_pid().is_none());
    assert!(t0.elapsed() < Duration::from_secs(300));

    let again = s.cli(&["cluster", "stop"]);
    assert_eq!(again.status.code(), Some(1));
}

/// After a leader kill and a new election, `logs --timeline --json` tells the story in
/// time order: the old leader's exit, then `election_started` and `became_leader` from
/// the new leader, in a higher term.
#[test]
fn timeline_shows_leader_exit_then_election_and_new_leader_in_higher_term() {
    let _one = serial();
    let mut s = Sup::new(3, "");
    s.start_server();
    let old = s.wait_leader();
    let old_term = s.node_status(old).unwrap()["term"].as_u64().unwrap();
    s.cluster_ok(&["kill", &old.to_string()]);
    let new = s.wait_leader_other_than(Some(old));
    let lines: Vec<Value> = eventually(WAIT, "the new leader's events in the log", || {
        let out = s.cli(&["logs", "--timeline", "--json"]);
        let lines: Vec<Value> = String::from_utf8(out.stdout)
            .ok()?
            .lines()
            .map(|l| serde_json::from_str(l).expect("--json passes JSON lines through"))
            .collect();
        lines.iter().any(|l| l["node_id"] == new && l["event"] == "became_leader").then_some(lines)
    });
    let events = ["node_started", "node_stopping", "node_stopped", "node_exited", "node_spawned"];
    assert!(lines.iter().all(|l| l["event"].as_str().is_some()), "only events in the timeline");
    let times: Vec<&str> = lines.iter().map(|l| l["timestamp"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order");
    let pos = |pred: &dyn Fn(&Value) -> bool| lines.iter().position(pred);
    let exit =
        pos(&|l| l["node_id"] == old && l["event"] == "node_exited").expect("old leader's exit");
    let election = pos(&|l| {
        l["node_id"] == new
            && l["event"] == "election_started"
            && l["term"].as_u64() > Some(old_term)
    })
    .expect("the new leader's election");
    let won = pos(&|l| {
        l["node_id"] == new && l["event"] == "became_leader" && l["term"].as_u64() > Some(old_term)
    })
    .expect("the new leader's win");
    assert!(exit < election && election < won, "exit {exit} < election {election} < won {won}");
    assert!(lines.iter().any(|l| events.contains(&l["event"].as_str().unwrap())));
}
