//! Process-level tests of `raft-nosql logs`: the real binary reads hand-written node logs
//! through a real `cluster.toml`. No cluster runs; the logs are what nodes would write.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_raft-nosql")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A temp dir with a 3-node `cluster.toml` whose data root is `<tmp>/data`.
struct Fixture {
    dir: tempfile::TempDir,
    config: PathBuf,
    now: DateTime<Utc>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut text = format!("data_root = {:?}\n", dir.path().join("data").display().to_string());
        for id in 0..3 {
            text.push_str(&format!(
                "\n[[nodes]]\nid = {id}\naddr = \"127.0.0.1:{}\"\n",
                free_port()
            ));
        }
        text.push_str(&format!("\n[supervisor]\ncontrol_addr = \"127.0.0.1:{}\"\n", free_port()));
        let config = dir.path().join("cluster.toml");
        std::fs::write(&config, text).unwrap();
        Fixture { dir, config, now: Utc::now() }
    }

    fn log_path(&self, node: u64) -> PathBuf {
        self.dir.path().join("data").join(format!("node{node}")).join("node.log")
    }

    /// Writes node `node`'s log file, exactly `text`.
    fn write_log(&self, node: u64, text: &str) {
        let path = self.log_path(node);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A JSON log line of `node`, `secs_ago` seconds before the fixture's creation.
    fn line(
        &self,
        node: u64,
        secs_ago: i64,
        level: &str,
        event: Option<&str>,
        extra: &str,
    ) -> String {
        let ts = (self.now - chrono::Duration::seconds(secs_ago))
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let event = event.map(|e| format!(",\"event\":\"{e}\"")).unwrap_or_default();
        let message = event_message(event.is_empty());
        format!(
            "{{\"node_id\":{node},\"timestamp\":\"{ts}\",\"level\":\"{level}\",\"message\":\"{message}\"{event}{extra},\"target\":\"raft_nosql::events\"}}"
        )
    }

    /// The standard scenario: an hour-old start of all three nodes, then an election,
    /// a request, an unreachable peer, an error and a SIGKILL, with one panic line in
    /// node 0's log and a last line cut short in node 1's.
    fn standard(&self) {
        let l = |n, ago, lvl, ev, extra| self.line(n, ago, lvl, ev, extra);
        self.write_log(
            0,
            &[
                l(0, 3600, "INFO", Some("node_started"), r#","addr":"127.0.0.1:1""#),
                l(0, 50, "INFO", Some("became_leader"), r#","term":3"#),
                "thread 'main' panicked at src/node.rs:10:5:".to_string(),
                l(0, 20, "INFO", Some("request"), r#","method":"PUT","status":200,"latency_ms":4"#),
                String::new(),
            ]
            .join("\n"),
        );
        self.write_log(
            1,
            &[
                l(1, 3590, "INFO", Some("node_started"), r#","addr":"127.0.0.1:2""#),
                l(1, 45, "INFO", Some("became_follower"), r#","term":3,"leader":0"#),
                l(1, 10, "WARN", Some("peer_unreachable"), r#","peer":2"#),
                r#"{"node_id":1,"timestamp":"2026-11-28T07:0"#.to_string(),
            ]
            .join("\n"),
        );
        self.write_log(
            2,
            &[
                l(2, 3580, "INFO", Some("node_started"), r#","addr":"127.0.0.1:3""#),
                l(2, 40, "ERROR", None, r#","error":"disk on fire""#),
                l(
                    2,
                    30,
                    "WARN",
                    Some("node_exited"),
                    r#","status":"signal 9 (SIGKILL)","pid":1234,"source":"supervisor""#,
                ),
                String::new(),
            ]
            .join("\n"),
        );
    }

    fn logs(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .arg("logs")
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("NO_COLOR")
            .output()
            .unwrap()
    }

    /// Runs `logs --json …`, checks it succeeded, returns the output lines as JSON.
    fn json(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.logs(&all);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        stdout_lines(&out).iter().map(|l| serde_json::from_str(l).expect(l)).collect()
    }
}

fn event_message(ordinary: bool) -> &'static str {
    if ordinary {
        "something broke"
    } else {
        "event"
    }
}

fn stdout_lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stdout.clone()).unwrap().lines().map(str::to_string).collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn nodes(lines: &[Value]) -> Vec<u64> {
    lines.iter().map(|v| v["node_id"].as_u64().unwrap()).collect()
}

fn events(lines: &[Value]) -> Vec<&str> {
    lines.iter().map(|v| field(v, "event")).collect()
}

fn assert_time_ordered(lines: &[Value]) {
    let times: Vec<DateTime<Utc>> =
        lines.iter().map(|v| field(v, "timestamp").parse().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "not in time order: {times:?}");
}

/// All nodes' entries come out as one timeline, oldest first.
#[test]
fn merges_all_nodes_in_time_order() {
    let f = Fixture::new();
    f.standard();
    let lines = f.json(&[]);
    assert_time_ordered(&lines);
    assert_eq!(nodes(&lines), [0, 1, 2, 0, 1, 2, 2, 0, 1]);
    assert_eq!(
        events(&lines),
        [
            "node_started",
            "node_started",
            "node_started",
            "became_leader",
            "became_follower",
            "",
            "node_exited",
            "request",
            "peer_unreachable"
        ]
    );
}

/// `--json` passes the lines through byte for byte.
#[test]
fn json_output_is_the_raw_lines() {
    let f = Fixture::new();
    f.standard();
    let out = f.logs(&["--json", "--node", "2"]);
    let written = std::fs::read_to_string(f.log_path(2)).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), written);
}

/// Default output: one readable line per entry, no colour into a pipe.
#[test]
fn readable_output_has_one_plain_line_per_entry() {
    let f = Fixture::new();
    f.standard();
    let out = f.logs(&["--utc"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 9, "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains('\x1b')), "colour into a pipe: {lines:#?}");
    let leader = lines.iter().find(|l| l.contains("became_leader")).unwrap();
    assert!(leader.contains("  node0  INFO   became_leader  term=3"), "{leader}");
    let error = lines.iter().find(|l| l.contains("ERROR")).unwrap();
    assert!(error.contains("node2  ERROR  something broke  error=disk on fire"), "{error}");
    assert!(!lines.iter().any(|l| l.contains("target=")), "noisy fields are hidden");
}

/// `--node 1` shows node 1 only.
#[test]
fn node_filter_shows_only_that_node() {
    let f = Fixture::new();
    f.standard();
    let lines = f.json(&["--node", "1"]);
    assert_eq!(nodes(&lines), [1, 1, 1]);
    let lines = f.json(&["--node", "0,node2"]);
    assert_eq!(nodes(&lines), [0, 2, 0, 2, 2, 0]);
}

/// `--event became_leader` shows those events only; several events mean any of them.
#[test]
fn event_filter_shows_only_those_events() {
    let f = Fixture::new();
    f.standard();
    assert_eq!(events(&f.json(&["--event", "became_leader"])), ["became_leader"]);
    assert_eq!(
        events(&f.json(&["--event", "request", "--event", "node_exited"])),
        ["node_exited", "request"]
    );
}

/// `--level warn` means WARN and above.
#[test]
fn level_filter_shows_that_level_and_above() {
    let f = Fixture::new();
    f.standard();
    let lines = f.json(&["--level", "warn"]);
    let levels: Vec<&str> = lines.iter().map(|v| field(v, "level")).collect();
    assert_eq!(levels, ["ERROR", "WARN", "WARN"]);
    assert_eq!(f.json(&["--level", "ERROR"]).len(), 1);
}

/// `--since 5m` drops the hour-old start lines; an RFC 3339 time works too.
#[test]
fn since_filter_excludes_older_entries() {
    let f = Fixture::new();
    f.standard();
    let lines = f.json(&["--since", "5m"]);
    assert_eq!(lines.len(), 6);
    assert!(!events(&lines).contains(&"node_started"));
    let at = (f.now - chrono::Duration::seconds(35)).to_rfc3339();
    assert_eq!(events(&f.json(&["--since", &at])), ["node_exited", "request", "peer_unreachable"]);
}

/// `--grep` matches a substring of the raw line.
#[test]
fn grep_filter_matches_raw_text() {
    let f = Fixture::new();
    f.standard();
    assert_eq!(events(&f.json(&["--grep", "SIGKILL"])), ["node_exited"]);
}

/// `--timeline --json`: only the cluster's story, valid JSON, in time order.
#[test]
fn timeline_json_shows_only_timeline_events_in_order() {
    let f = Fixture::new();
    f.standard();
    let lines = f.json(&["--timeline"]);
    assert_time_ordered(&lines);
    assert_eq!(
        events(&lines),
        [
            "node_started",
            "node_started",
            "node_started",
            "became_leader",
            "became_follower",
            "node_exited"
        ]
    );
    let readable = stdout_lines(&f.logs(&["--timeline", "--utc"]));
    let exited = readable.last().unwrap();
    assert!(
        exited.ends_with(
            "  node2  node_exited  status=signal 9 (SIGKILL) pid=1234 source=supervisor"
        ),
        "{exited}"
    );
}

/// Malformed lines are skipped, never fatal, and counted per file on stderr.
#[test]
fn skipped_lines_are_reported_on_stderr() {
    let f = Fixture::new();
    f.standard();
    let out = f.logs(&[]);
    assert!(out.status.success());
    let err = stderr(&out);
    for node in [0, 1] {
        let expect = format!("skipped 1 malformed line(s) in {}", f.log_path(node).display());
        assert!(err.contains(&expect), "{err}");
    }
    assert!(!err.contains(&f.log_path(2).display().to_string()), "{err}");
}

/// A node without a log file is noted and skipped; no log at all is a failure.
#[test]
fn missing_files_are_noted_and_no_files_fail() {
    let f = Fixture::new();
    let out = f.logs(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no node log found"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("has no log yet"), "one message, not one per node");

    f.write_log(1, &format!("{}\n", f.line(1, 1, "INFO", Some("node_started"), "")));
    let out = f.logs(&["--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout_lines(&out).len(), 1);
    assert!(stderr(&out).contains("node0 has no log yet"), "{}", stderr(&out));
}

/// Bad flag values and a missing config exit 2 (bad usage, as in every command) with a
/// message naming the value.
#[test]
fn bad_flags_and_bad_config_exit_2() {
    let f = Fixture::new();
    f.standard();
    for (args, needle) in [
        (&["--level", "LOUD"][..], "LOUD"),
        (&["--since", "yesterdayish"][..], "yesterdayish"),
        (&["--node", "7"][..], "node 7 is not in the cluster"),
        (&["--node", "leader"][..], "leader"),
    ] {
        let out = f.logs(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    let out = Command::new(bin())
        .args(["logs", "--config"])
        .arg(f.dir.path().join("nope.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
}

/// Kills the `--follow` child when the test ends, pass or fail.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads `rx` until `want` lines arrived or the deadline passes.
fn collect_lines(rx: &mpsc::Receiver<String>, want: usize, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    while got.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => got.push(line),
            Err(_) => break,
        }
    }
    got
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// `--follow` prints what is there, then lines appended later, including those of a
/// file that appears after it started and a line completed in two writes.
#[test]
fn follow_prints_appended_lines() {
    let f = Fixture::new();
    f.standard();
    std::fs::remove_file(f.log_path(2)).unwrap();
    let child = Command::new(bin())
        .args(["logs", "--follow", "--json", "--config"])
        .arg(&f.config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let timeout = Duration::from_secs(20);
    let first = collect_lines(&rx, 6, timeout);
    assert_eq!(first.len(), 6, "{first:#?}");

    let appended = f.line(0, 0, "INFO", Some("term_changed"), r#","old":3,"new":4"#);
    let (head, tail) = appended.split_at(30);
    append(&f.log_path(0), head);
    std::thread::sleep(Duration::from_millis(300)); // let one poll see the half line
    append(&f.log_path(0), &format!("{tail}\n"));
    let got = collect_lines(&rx, 1, timeout);
    assert_eq!(got, [appended]);

    let late = f.line(2, 0, "INFO", Some("node_started"), "");
    std::fs::create_dir_all(f.log_path(2).parent().unwrap()).unwrap();
    append(&f.log_path(2), &format!("{late}\n"));
    let got = collect_lines(&rx, 1, timeout);
    assert_eq!(got, [late]);
}

/// Colour only when asked for (CLICOLOR_FORCE stands in for a terminal here), and never
/// with `--no-color` or NO_COLOR.
#[test]
fn colour_follows_terminal_and_opt_outs() {
    let f = Fixture::new();
    f.standard();
    let run = |args: &[&str], no_color: bool| {
        let mut cmd = Command::new(bin());
        cmd.arg("logs").arg("--config").arg(&f.config).args(args).env("CLICOLOR_FORCE", "1");
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        String::from_utf8(cmd.output().unwrap().stdout).unwrap()
    };
    let coloured = run(&[], false);
    assert!(coloured.contains("\x1b[33m"), "WARN in yellow: {coloured}");
    assert!(!run(&["--no-color"], false).contains('\x1b'));
    assert!(!run(&[], true).contains('\x1b'));
    assert!(!run(&["--json"], false).contains('\x1b'), "--json is never coloured");
}

/// The supervisor's JSON lines about a node join that node's timeline; its other lines
/// are ignored.
#[test]
fn supervisor_log_lines_naming_a_node_are_merged() {
    let f = Fixture::new();
    f.standard();
    let spawned = f.line(1, 55, "INFO", Some("node_spawned"), r#","pid":4321"#);
    let text = format!("supervisor listening\n{spawned}\n");
    std::fs::write(f.dir.path().join("data").join("supervisor.log"), text).unwrap();
    let lines = f.json(&["--node", "1", "--timeline"]);
    assert_eq!(events(&lines), ["node_started", "node_spawned", "became_follower"]);
    let out = f.logs(&[]);
    assert!(!stderr(&out).contains("supervisor.log"), "{}", stderr(&out));
}
