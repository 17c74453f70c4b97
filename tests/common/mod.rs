//! Process-level test harness: spawns the real `raft-nosql` binary on free ports in a
//! temp dir, polls until ready with a deadline, and kills every child it started on drop.
#![allow(dead_code)]

pub mod inproc;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod netns;
pub mod supervised;
pub mod workload;

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_raft-nosql")
}

/// A port the OS says is free right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `timeout` with `what`.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50)); // poll interval, bounded by the deadline
    }
}

/// A blocking HTTP client that does not follow redirects (tests look at the 307s).
pub fn http() -> reqwest::blocking::Client {
    raft_nosql::tls::install_provider(); // reqwest needs a rustls provider
    reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A blocking HTTP client like [`http`] whose requests carry `proof` as the cluster
/// secret's proof (`x-raft-nosql-auth`); without one, exactly [`http`].
pub fn http_with_proof(proof: Option<&str>) -> reqwest::blocking::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(p) = proof {
        headers.insert(raft_nosql::security::AUTH_HEADER, p.parse().unwrap());
    }
    reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Writes a cluster config for `n` nodes on free ports under `dir`, returns its path and
/// the node addresses (index = node id). `extra` is TOML appended right after the
/// `[raft]` keys: more `[raft]` keys first, then any other sections.
pub fn write_config(dir: &Path, n: usize, extra: &str) -> (PathBuf, Vec<String>) {
    let addrs: Vec<String> = (0..n).map(|_| format!("127.0.0.1:{}", free_port())).collect();
    let mut text = format!(
        "data_root = {:?}\nlog_level = \"info\"\n\n[supervisor]\ncontrol_addr = \"127.0.0.1:{}\"\nstop_timeout_ms = 5000\n\n",
        dir.join("data").display().to_string(),
        free_port()
    );
    text.push_str(
        "[raft]\nheartbeat_ms = 100\nelection_timeout_min_ms = 500\nelection_timeout_max_ms = 1000\n\n",
    );
    text.push_str(extra);
    text.push('\n');
    for (i, a) in addrs.iter().enumerate() {
        text.push_str(&format!("\n[[nodes]]\nid = {i}\naddr = \"{a}\"\n"));
    }
    let path = dir.join("cluster.toml");
    std::fs::write(&path, text).unwrap();
    (path, addrs)
}

/// Starts `raft-nosql server --config config` (the supervisor, in the foreground) with
/// its output appended to `out`.
pub fn spawn_server(config: &Path, out: &Path) -> Child {
    let out = std::fs::OpenOptions::new().create(true).append(true).open(out).unwrap();
    Command::new(bin())
        .arg("--config")
        .arg(config)
        .arg("server")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap()
}

/// A cluster of `raft-nosql node` processes started directly (no supervisor).
///
/// Nodes are indexed by id: `addrs[i]` and `children[i]` are node `i`'s. A node added at
/// run time ([`add_node`](Self::add_node)) takes the next id, and a node taken out of
/// the cluster ([`retire`](Self::retire)) keeps its slot, so ids are never reused.
pub struct TestCluster {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub addrs: Vec<String>,
    pub children: Vec<Option<Child>>,
    /// Nodes killed for good after leaving the cluster: never restarted.
    pub retired: BTreeSet<usize>,
    /// The cluster secret's proof, when the config names a secret file: sent with the
    /// harness's admin calls (init, faults).
    pub proof: Option<String>,
}

impl TestCluster {
    /// Starts `n` nodes, initialises the cluster through `/admin/init` on node 0 and
    /// waits until a leader is known to every node.
    pub fn start(n: usize) -> TestCluster {
        Self::start_with(n, "")
    }

    /// Like [`start`](Self::start), with extra TOML for the config (see [`write_config`]).
    pub fn start_with(n: usize, extra: &str) -> TestCluster {
        Self::configure(n, extra, None).launch(n)
    }

    /// Starts nodes `0..n` of a configured cluster, initialises it through node 0 and
    /// waits for a leader.
    fn launch(mut self, n: usize) -> TestCluster {
        for i in 0..n {
            let child = self.spawn(i);
            self.children.push(Some(child));
        }
        for i in 0..n {
            self.wait_up(i);
        }
        self.init(0);
        self.wait_leader();
        self
    }

    /// Like [`start`](Self::start) with a cluster secret: the config's `[security]
    /// secret_file` is `secret` written to `<dir>/secret`, and the harness's admin calls
    /// prove it.
    pub fn start_secured(n: usize, secret: &str) -> TestCluster {
        Self::configure_secured(n, secret).launch(n)
    }

    /// A cluster of `n` nodes with a secret (see [`start_secured`](Self::start_secured)),
    /// configured but with no node started (`children` empty).
    pub fn configure_secured(n: usize, secret: &str) -> TestCluster {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, format!("{secret}\n")).unwrap();
        let extra = format!("[security]\nsecret_file = {:?}\n", file.display().to_string());
        let (config, addrs) = write_config(dir.path(), n, &extra);
        let proof = Some(raft_nosql::security::proof(secret.as_bytes()));
        TestCluster { dir, config, addrs, children: Vec::new(), retired: BTreeSet::new(), proof }
    }

    fn configure(n: usize, extra: &str, proof: Option<String>) -> TestCluster {
        let dir = tempfile::tempdir().unwrap();
        let (config, addrs) = write_config(dir.path(), n, extra);
        TestCluster { dir, config, addrs, children: Vec::new(), retired: BTreeSet::new(), proof }
    }

    /// A client for admin calls: it proves the cluster secret if there is one.
    pub fn admin_http(&self) -> reqwest::blocking::Client {
        http_with_proof(self.proof.as_deref())
    }

    /// Initialises the cluster through node `i`'s `/admin/init`.
    pub fn init(&self, i: usize) {
        let resp = self.admin_http().post(self.url(i, "/admin/init")).send().unwrap();
        assert!(resp.status().is_success(), "init failed: {}", resp.status());
    }

    fn spawn(&self, i: usize) -> Child {
        self.spawn_with(i, &[])
    }

    /// Starts node `i` with extra arguments (`--rejoin`) without waiting for it.
    pub fn start_with_args(&mut self, i: usize, args: &[&str]) {
        assert!(self.children[i].is_none(), "node {i} is running");
        let child = self.spawn_with(i, args);
        self.children[i] = Some(child);
    }

    fn spawn_with(&self, i: usize, args: &[&str]) -> Child {
        self.spawn_with_env(i, args, &[])
    }

    /// Starts node `i` with extra arguments and environment variables, without waiting
    /// for it or recording it in `children`.
    pub fn spawn_with_env(&self, i: usize, args: &[&str], env: &[(&str, &Path)]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node{i}.out")))
            .unwrap();
        Command::new(bin())
            .args(["node", "--id", &i.to_string(), "--config"])
            .arg(&self.config)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// Waits until node `i` answers `/status`.
    pub fn wait_up(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.status(i).is_none() {
            if Instant::now() > deadline {
                let out = self.output(i);
                let last: Vec<&str> = out.lines().rev().take(30).collect();
                let last: Vec<&str> = last.into_iter().rev().collect();
                panic!(
                    "timed out after 30s waiting for node {i} to answer; its output:\n{}",
                    last.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50)); // poll interval, bounded by the deadline
        }
    }

    /// Node `i`'s `/status`, or None if it does not answer.
    pub fn status(&self, i: usize) -> Option<Value> {
        let r = http().get(format!("http://{}/status", self.addrs[i])).send().ok()?;
        r.json().ok()
    }

    /// Waits until every running node names the same leader; returns its id.
    pub fn wait_leader(&self) -> usize {
        eventually(Duration::from_secs(30), "a leader every running node agrees on", || {
            let mut leader = None;
            for i in 0..self.addrs.len() {
                if self.children[i].is_none() {
                    continue;
                }
                let l = self.status(i)?.get("leader_id")?.as_u64()?;
                if leader.is_some_and(|x| x != l) {
                    return None;
                }
                leader = Some(l);
            }
            let l = leader? as usize;
            // The leader itself must be running and say it leads.
            self.children.get(l)?.as_ref()?;
            (self.status(l)?.get("role")?.as_str()? == "Leader").then_some(l)
        })
    }

    /// Creates a table (JSON definition) through any node, following the redirect to
    /// the leader; panics unless it was created.
    pub fn create_table(&self, definition: &str) {
        let body: Value = serde_json::from_str(definition).unwrap();
        let r =
            send_following(reqwest::Method::POST, &self.url(0, "/tables"), Some(&body)).unwrap();
        assert_eq!(r.status(), 201, "create table {definition}");
    }

    pub fn url(&self, i: usize, path: &str) -> String {
        format!("http://{}{}", self.addrs[i], path)
    }

    /// The value of metric `name` (no labels) in node `i`'s `/metrics`.
    pub fn metric(&self, i: usize, name: &str) -> f64 {
        let text = http().get(self.url(i, "/metrics")).send().unwrap().text().unwrap();
        metric(&text, name)
    }

    /// SIGKILLs node `i` (a crash).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERMs node `i` and waits for it to exit; returns its exit status.
    pub fn stop(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        let mut c = self.children[i].take()?;
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("node {i} did not exit within 20s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20)); // poll interval, bounded by the deadline
        }
    }

    /// SIGSTOPs node `i`: frozen, as if the machine hung.
    pub fn pause(&self, i: usize) {
        if let Some(c) = &self.children[i] {
            unsafe { libc::kill(c.id() as i32, libc::SIGSTOP) };
        }
    }

    /// SIGCONTs node `i`.
    pub fn resume(&self, i: usize) {
        if let Some(c) = &self.children[i] {
            unsafe { libc::kill(c.id() as i32, libc::SIGCONT) };
        }
    }

    /// Cuts the nodes in `side` off from all others (Raft messages, both directions).
    pub fn partition(&self, side: &[usize]) {
        for i in 0..self.addrs.len() {
            let others: Vec<usize> = if side.contains(&i) {
                (0..self.addrs.len()).filter(|j| !side.contains(j)).collect()
            } else {
                side.to_vec()
            };
            if self.children[i].is_some() {
                let r = self
                    .admin_http()
                    .post(self.url(i, "/admin/faults"))
                    .json(&serde_json::json!({ "partitioned_from": others }))
                    .send();
                assert!(r.is_ok_and(|r| r.status() == 200), "partition node {i}");
            }
        }
    }

    /// Removes every simulated network fault on every running node.
    pub fn heal(&self) {
        for i in 0..self.addrs.len() {
            if self.children[i].is_some() {
                let _ = self.admin_http().delete(self.url(i, "/admin/faults")).send();
            }
        }
    }

    /// Waits up to `timeout` for node `i` to exit on its own; its exit status, or None
    /// if it still runs.
    pub fn wait_exit(&mut self, i: usize, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.children[i].as_mut()?.try_wait().unwrap();
            if let Some(s) = status {
                self.children[i] = None;
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50)); // poll interval, bounded by the deadline
        }
    }

    /// Whether node `i`'s process is still running (a started node that exited on its
    /// own is a crash).
    pub fn is_running(&mut self, i: usize) -> bool {
        match &mut self.children[i] {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// Starts a new node process with the next id on a free port (its `[[nodes]]` entry
    /// appended to the config file first, as a node must find itself there) and waits
    /// until it answers. It is not a member yet: the leader has to add it. Returns its id.
    pub fn add_node(&mut self) -> usize {
        let id = self.addrs.len();
        let addr = format!("127.0.0.1:{}", free_port());
        let mut f = std::fs::OpenOptions::new().append(true).open(&self.config).unwrap();
        write!(f, "\n[[nodes]]\nid = {id}\naddr = \"{addr}\"\n").unwrap();
        drop(f);
        self.addrs.push(addr);
        let child = self.spawn(id);
        self.children.push(Some(child));
        self.wait_up(id);
        id
    }

    /// SIGKILLs node `i` for good (it left the cluster): it is never restarted and its
    /// id is not reused.
    pub fn retire(&mut self, i: usize) {
        self.resume(i);
        self.kill(i);
        self.retired.insert(i);
    }

    /// The ids of the nodes not retired (running or not), in order.
    pub fn live(&self) -> Vec<usize> {
        (0..self.addrs.len()).filter(|i| !self.retired.contains(i)).collect()
    }

    /// Starts node `i` again (same data dir) and waits until it answers.
    pub fn restart(&mut self, i: usize) {
        assert!(self.children[i].is_none(), "node {i} is running");
        assert!(!self.retired.contains(&i), "node {i} is retired");
        let child = self.spawn(i);
        self.children[i] = Some(child);
        self.wait_up(i);
    }

    /// The combined output of node `i` (for failure messages).
    pub fn output(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node{i}.out"))).unwrap_or_default()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            unsafe { libc::kill(c.id() as i32, libc::SIGCONT) };
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Sends a request and follows 307 redirects (re-sending the body) up to 5 hops.
/// Returns the final response, or None on a transport error.
pub fn send_following(
    method: reqwest::Method,
    url: &str,
    body: Option<&Value>,
) -> Option<reqwest::blocking::Response> {
    let client = http();
    let mut url = url.to_string();
    for _ in 0..5 {
        let mut req = client.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().ok()?;
        if resp.status() != 307 {
            return Some(resp);
        }
        url = resp.headers().get("location")?.to_str().ok()?.to_string();
    }
    None
}

/// The value of metric `name` (no labels) in Prometheus text.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}
