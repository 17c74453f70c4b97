//! The README's examples, run as written against a fresh cluster, so the README cannot
//! drift from what the program does.
//!
//! Blocks are marked in the Markdown with an HTML comment on the line before the fence:
//!
//! - `<!-- readme-test: run -->` before a ```` ```sh ```` block: its commands are run, in
//!   order, as one `bash -e` script (stdout and stderr together), `raft-nosql` being the
//!   binary under test and `RAFT_NOSQL_CONFIG` the test cluster's config;
//! - `<!-- readme-test: output -->` before a plain ```` ``` ```` block: what the run block
//!   before it printed. Every line shown must appear, in this order, in the real output
//!   (the real output may have more lines: the README shows what always appears);
//! - `<!-- readme-test: server-output -->`: the same for what `raft-nosql server` printed
//!   while it started.
//!
//! The README uses the default ports 8099–8102; the test rewrites them to its own free
//! ports and compares after normalising what changes from run to run: numbers (pids,
//! terms, log indexes, times, ports), digests, absolute paths, the roles `Leader` and
//! `Follower`, and table padding. Before each run block the test waits (with a deadline,
//! never a fixed sleep) until a leader is known and every running node has applied what
//! the leader has, so eventual reads in an example see the writes of the example before.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{bin, eventually, http, spawn_server, write_config};
use serde_json::Value;

/// One marked block of the README.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    kind: String,
    /// 1-based line of the marker, for messages.
    line: usize,
    text: String,
}

/// The marked blocks of a Markdown text, in order.
fn marked_blocks(markdown: &str) -> Vec<Block> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let kind = lines[i]
            .trim()
            .strip_prefix("<!-- readme-test:")
            .and_then(|r| r.strip_suffix("-->"))
            .map(|k| k.trim().to_string());
        let Some(kind) = kind else {
            i += 1;
            continue;
        };
        let marker = i;
        i += 1;
        assert!(
            lines.get(i).is_some_and(|l| l.starts_with("```")),
            "README line {}: a readme-test marker must be followed by a code fence",
            marker + 1
        );
        i += 1;
        let start = i;
        while i < lines.len() && !lines[i].starts_with("```") {
            i += 1;
        }
        out.push(Block { kind, line: marker + 1, text: lines[start..i].join("\n") });
        i += 1;
    }
    out
}

/// A line as compared: run-to-run details replaced by placeholders.
fn normalise(line: &str) -> String {
    let mut words = Vec::new();
    for word in line.split_whitespace() {
        // Absolute paths differ per checkout and temp dir.
        let word = match word.find('/') {
            Some(0) => "PATH".to_string(),
            Some(i) if word[..i].ends_with('(') || word[..i].ends_with('=') => {
                format!("{}PATH", &word[..i])
            }
            _ => word.to_string(),
        };
        let word = word.replace("Leader", "ROLE").replace("Follower", "ROLE");
        // Numbers and hex digests: any run of hex digits that holds a digit, or a bare
        // 8-character digest.
        let mut w = String::new();
        let chars: Vec<char> = word.chars().collect();
        let mut j = 0;
        while j < chars.len() {
            if chars[j].is_ascii_hexdigit() {
                let mut k = j;
                while k < chars.len() && chars[k].is_ascii_hexdigit() {
                    k += 1;
                }
                let run: String = chars[j..k].iter().collect();
                let bare = j == 0 && k == chars.len();
                if run.chars().any(|c| c.is_ascii_digit()) || (bare && run.len() == 8) {
                    w.push('#');
                } else {
                    w.push_str(&run);
                }
                j = k;
            } else if chars[j] == '─' || chars[j] == '═' {
                // Table borders: their length follows the column widths.
                let c = chars[j];
                w.push(c);
                while j < chars.len() && chars[j] == c {
                    j += 1;
                }
            } else {
                w.push(chars[j]);
                j += 1;
            }
        }
        words.push(w);
    }
    words.join(" ")
}

/// Checks that every non-empty line of `expected` appears in `actual`, in order.
fn check_output(block: &Block, expected: &str, actual: &str) {
    let actual_lines: Vec<String> = actual.lines().map(normalise).collect();
    let mut from = 0;
    for want in expected.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()) {
        if want.trim() == "..." {
            continue;
        }
        let want_n = normalise(want);
        match actual_lines[from..].iter().position(|l| *l == want_n) {
            Some(p) => from += p + 1,
            None => panic!(
                "README line {}: this line of the shown output did not appear (in order):\n  {want}\n  normalised: {want_n}\n--- real output ---\n{actual}\n--- normalised ---\n{}",
                block.line,
                actual_lines.join("\n")
            ),
        }
    }
}

/// Kills the supervisor (and with it its nodes) when the test ends.
struct Server {
    child: Child,
    dir: tempfile::TempDir,
    config: PathBuf,
    addrs: Vec<String>,
    control: String,
    data: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM stops every node in order; SIGKILL after a deadline if it hangs.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let done =
            (0..400).any(|_| self.child.try_wait().ok().flatten().is_some() || pause_brief());
        if !done {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        // Nodes killed by the README (cluster kill) are gone; any node still recorded
        // in a pid file with our config on its command line is ours.
        let ours = self.config.display().to_string();
        for i in 0..self.addrs.len() {
            let pid_file = self.data.join(format!("node{i}/node.pid"));
            let Some(pid) =
                std::fs::read_to_string(&pid_file).ok().and_then(|s| s.trim().parse::<i32>().ok())
            else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&ours) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// Sleeps one poll interval of the shutdown wait in `Drop`; returns false so `any` goes on.
fn pause_brief() -> bool {
    std::thread::sleep(Duration::from_millis(50)); // poll interval, bounded by the loop count
    false
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let (config, addrs) = write_config(dir.path(), 3, "");
        let parsed =
            raft_nosql::config::from_toml_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
        let child = spawn_server(&config, &dir.path().join("server.out"));
        let server = Server {
            child,
            config,
            addrs,
            control: parsed.supervisor.control_addr,
            data: parsed.data_root,
            dir,
        };
        eventually(Duration::from_secs(90), "the cluster to come up", || {
            server.output().contains("Ctrl+C stops every node").then_some(())
        });
        server
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.out")).unwrap_or_default()
    }

    /// README addresses (those of the repository's `cluster.toml`, which the README
    /// runs) → this cluster's, and back.
    fn pairs(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/cluster.toml"));
        let readme = raft_nosql::config::from_toml_str(&text.unwrap()).unwrap();
        let mut p = vec![(readme.supervisor.control_addr.clone(), self.control.clone())];
        for (n, a) in readme.nodes.iter().zip(&self.addrs) {
            p.push((n.addr.clone(), a.clone()));
            p.push((n.addr.replace("127.0.0.1", "localhost"), a.clone()));
        }
        p
    }

    fn to_test(&self, text: &str) -> String {
        self.pairs().iter().fold(text.to_string(), |t, (readme, ours)| t.replace(readme, ours))
    }

    fn to_readme(&self, text: &str) -> String {
        let text =
            text.replace(&self.config.display().to_string(), "/home/you/raft-nosql/cluster.toml");
        self.pairs()
            .iter()
            .filter(|(readme, _)| !readme.starts_with("localhost"))
            .fold(text, |t, (readme, ours)| t.replace(ours, readme))
    }

    /// Waits until a leader is known and every running node has applied what it has.
    fn wait_settled(&self) {
        eventually(Duration::from_secs(60), "a leader and every running node caught up", || {
            let view: Value =
                http().get(format!("http://{}/status", self.control)).send().ok()?.json().ok()?;
            let leader = view["leader"]["id"].as_u64()?;
            let nodes = view["nodes"].as_array()?;
            let applied = |n: &Value| n["status"]["applied"].as_u64();
            let target = applied(nodes.iter().find(|n| n["id"] == leader)?)?;
            nodes
                .iter()
                .filter(|n| n["state"] == "running")
                .all(|n| {
                    n["status"]["leader_id"].as_u64() == Some(leader) && applied(n) == Some(target)
                })
                .then_some(())
        });
    }

    /// Runs a block as one bash script; returns everything it printed.
    fn run(&self, block: &Block, bin_dir: &Path) -> String {
        let script = format!("set -e\nexec 2>&1\n{}\n", self.to_test(&block.text));
        let out = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(self.dir.path())
            .env("RAFT_NOSQL_CONFIG", &self.config)
            .env("PATH", format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()))
            .env("NO_COLOR", "1")
            .env_remove("DATA_DIR")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = self.to_readme(&String::from_utf8_lossy(&out.stdout));
        assert!(
            out.status.success(),
            "README line {}: the block failed ({}):\n{}\n--- output ---\n{text}\n--- supervisor ---\n{}",
            block.line,
            out.status,
            block.text,
            self.output()
        );
        text
    }
}

/// Every marked block of README.md, in order, against one fresh cluster: the commands
/// succeed and print what the README shows.
#[test]
fn readme_examples_print_what_the_readme_shows() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let blocks = marked_blocks(&readme);
    assert!(blocks.iter().filter(|b| b.kind == "run").count() >= 10, "markers missing?");

    let server = Server::start();
    let bin_dir = server.dir.path().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(bin(), bin_dir.join("raft-nosql")).unwrap();

    let mut last_output: Option<String> = None;
    for block in &blocks {
        match block.kind.as_str() {
            "server-output" => {
                check_output(block, &block.text, &server.to_readme(&server.output()))
            }
            "run" => {
                server.wait_settled();
                last_output = Some(server.run(block, &bin_dir));
            }
            "output" => {
                let actual = last_output.as_deref().unwrap_or_else(|| {
                    panic!(
                        "README line {}: an output block with no run block before it",
                        block.line
                    )
                });
                check_output(block, &block.text, actual);
            }
            other => panic!("README line {}: unknown readme-test marker {other:?}", block.line),
        }
    }
}

#[test]
fn markers_are_found_with_their_blocks() {
    let md = "text\n<!-- readme-test: run -->\n```sh\na\nb\n```\n<!-- readme-test: output -->\n```\nout\n```\n";
    let blocks = marked_blocks(md);
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0], Block { kind: "run".into(), line: 2, text: "a\nb".into() });
    assert_eq!(blocks[1].kind, "output");
    assert_eq!(blocks[1].text, "out");
}

#[test]
fn normalising_hides_what_changes_between_runs() {
    assert_eq!(
        normalise("answered by node0 (Leader) at 127.0.0.1:41000, applied index 3"),
        normalise("answered by node2 (Follower) at 127.0.0.1:41002, applied index 14")
    );
    assert_eq!(
        normalise("│    0 ┆ 127.0.0.1:41000 ┆ 20558 ┆ running ┆ e82600f4 ┆ -      │"),
        normalise("│  1 ┆ 127.0.0.1:41001 ┆ 7 ┆ running ┆ deadbeef ┆ - │")
    );
    assert_eq!(
        normalise("(config /work/main/cluster.toml), x"),
        normalise("(config /tmp/a/b.toml), x")
    );
    assert_ne!(normalise("node 0 killed"), normalise("node 0 stopped"));
}

/// The scripts print command lines a shell reads back into the same words.
#[test]
fn scripts_print_shell_quoted_command_lines() {
    let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lib.sh");
    let args = ["get-item", "--partition-key", "No One You Know", "it's", "", r#"{"K":"v"}"#, "$x"];
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {lib}; line=$(shell_line \"$@\"); echo \"$line\"; eval \"printf '%s\\n' $line\""
        ))
        .arg("bash")
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(r#"get-item --partition-key 'No One You Know' 'it'\''s' '' '{"K":"v"}' '$x'"#)
    );
    assert_eq!(lines.collect::<Vec<_>>(), args);
}
