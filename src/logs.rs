//! Reading, merging and filtering the nodes' JSON logs (what `raft-nosql logs` shows).
//!
//! Every node process writes one JSON object per line to `<data_root>/node<N>/node.log`
//! (tracing-subscriber's JSON format with the event's fields flattened, plus `node_id`):
//!
//! ```text
//! {"node_id":0,"timestamp":"2026-11-28T07:09:17.165628Z","level":"INFO","message":"became leader","event":"became_leader","term":3,"target":"raft_nosql::events"}
//! ```
//!
//! A line that carries an `event` field is a *structured event* with a stable name (see
//! [`EVENTS`]); the others are ordinary log lines (openraft, fjall, warp…). The subset in
//! [`TIMELINE_EVENTS`] tells the cluster's story: processes starting and ending, elections,
//! leadership and term changes, membership, snapshots, injected faults. Reading them in
//! time order across all nodes is the quickest way to see Raft at work: a leader is
//! killed, the followers' election timers fire, one becomes candidate, wins the vote in a
//! higher term, and the others follow it.
//!
//! What this module owns:
//!
//! - [`parse_line`]: one line → one [`LogEntry`], or `None` if it is not a node's JSON
//!   log line. A line is never an error: a panic message on stderr, or a line cut short
//!   when the process was SIGKILLed, is *skipped and counted*.
//! - [`read_file`]: a whole file; [`Tail`]: the same file read incrementally (`--follow`).
//! - [`merge`]: several nodes' entries in one timeline.
//! - [`Filter`]: which entries to show; [`Since`]: the `--since` value.
//!
//! Invariants:
//!
//! - Merged order is by timestamp, then node id; entries with equal keys keep the order
//!   they had in their file (the sort is stable), so one node's lines are never reordered.
//! - Every entry keeps its exact `raw` line, so `--json` output is byte-for-byte what
//!   the node wrote and can be piped into `jq`.
//!
//! Shortcuts taken:
//!
//! - Timestamps come from each node's own clock. On one machine that is one clock, so the
//!   merged order is the real order up to the microsecond the subscriber records; across
//!   machines it would only be as good as their clock sync.
//! - A whole file is read into memory (filtered per file before merging, so only what
//!   is shown is kept).
//! - A line cut short by SIGKILL is usually followed, on the same line, by the first line
//!   the restarted process writes. The parser recovers that line by retrying from each
//!   later `{"` and counts the fragment as skipped.
//! - The supervisor's own `supervisor.log` is only used for its JSON lines that name a
//!   node (`node_id`); other lines there (plain text, cluster-wide messages) are ignored.
//! - [`Tail`] notices truncation (file shorter than what was read) and replacement (new
//!   inode); a file truncated and refilled beyond the old size between two polls is not
//!   noticed.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// Structured events that tell the cluster's story (`--timeline`).
pub const TIMELINE_EVENTS: &[&str] = &[
    "node_started",
    "node_stopping",
    "node_stopped",
    "node_exited",
    "node_spawned",
    "election_started",
    "became_leader",
    "became_follower",
    "became_candidate",
    "leader_changed",
    "term_changed",
    "membership_changed",
    "learner_added",
    "learner_caught_up",
    "node_removed",
    "snapshot_built",
    "snapshot_installed",
    "storage_full",
    "storage_damaged",
    "node_waiting",
    "node_rejoin",
    "faults_changed",
    "simulation_changed",
];

/// Every stable structured event name (the `event` field of a log line). Each is listed
/// with its fields, the ones worth filtering on with `--event`.
pub const EVENTS: &[&str] = &[
    "node_started",             // addr, scheme (http or https)
    "node_stopping",            // reason
    "node_stopped",             //
    "node_exited",              // status, pid (supervisor: the node process ended)
    "node_spawned",             // pid (supervisor)
    "election_started",         // term
    "became_leader",            // term
    "became_follower",          // term, leader
    "became_candidate",         // term
    "leader_changed",           // old, new, term
    "term_changed",             // old, new
    "membership_changed",       // voters, learners, joint (old and new voters while changing)
    "learner_added",            // node, addr (leader)
    "learner_caught_up",        // node, matched, leader_last (leader, before promoting it)
    "node_removed",             // node, was_leader (leader)
    "snapshot_built",           // index, ms (the state synced and recorded; no copy is made)
    "snapshot_written",         // size, ms (the state written out to send to a follower)
    "snapshot_installed",       // index, size
    "snapshot_install_resumed", // index (an install interrupted by a crash, finished at start)
    "storage_full",             // data_dir, free_bytes, error (the node stops: disk full)
    "storage_damaged",          // error (the node refuses to start: damaged data, exit 65)
    "node_waiting",             // status (supervisor: not restarted, and why)
    "node_rejoin",              // data_dir (--rejoin wiped the data)
    "log_purged",               // upto
    "peer_unreachable",         // peer
    "peer_reachable",           // peer
    "peer_rejected", // peer, path, reason (no or wrong cluster secret; no client certificate)
    "proof_refused", // peer, addr (a peer refused this node's cluster secret proof)
    "vote_refused",  // candidate, term (within a leader's lease)
    "forward_failed", // leader, error (a DynamoDB write forwarded to the leader)
    "requests_not_logged", // count (beyond request_log_per_sec)
    "request",       // method, path, status, latency_ms, redirected_to, consistency
    "simulation_changed", // apply_delay_ms
    "faults_changed", // the fault set
    "tls_refused",   // peer, error (a TLS handshake failed: no TLS, another CA)
];

/// Top-level keys of a line that become [`LogEntry`] fields of their own rather than
/// entries of [`LogEntry::fields`].
const OWN_KEYS: &[&str] = &["node_id", "timestamp", "level", "message", "event"];

/// A bad `--level` or `--since` value; the message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogsError {
    /// Not one of trace, debug, info, warn, error.
    #[error("unknown level {0:?}: expected one of trace, debug, info, warn, error")]
    BadLevel(String),
    /// Neither a duration ago nor an RFC 3339 time.
    #[error(
        "{0:?} is neither a duration ago (30s, 5m, 2h, 1d, 1h30m) nor an RFC 3339 time \
         (2026-11-28T07:09:17Z)"
    )]
    BadSince(String),
}

/// Severity of a log line, ordered TRACE < DEBUG < INFO < WARN < ERROR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    /// The upper-case name tracing writes (`INFO`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Level {
    type Err = LogsError;

    /// Case-insensitive; `warning` is accepted for `warn`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "trace" => Ok(Level::Trace),
            "debug" => Ok(Level::Debug),
            "info" => Ok(Level::Info),
            "warn" | "warning" => Ok(Level::Warn),
            "error" => Ok(Level::Error),
            _ => Err(LogsError::BadLevel(s.to_string())),
        }
    }
}

/// One parsed log line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// The node the line is about (`node_id` of the line, else the node whose file it is in).
    pub node: u64,
    /// When it was written, by the writer's clock, in UTC.
    pub timestamp: DateTime<Utc>,
    /// Its level; a line without one counts as INFO.
    pub level: Level,
    /// The stable event name, for structured events (see [`EVENTS`]).
    pub event: Option<String>,
    /// The human message (`""` if the line has none).
    pub message: String,
    /// Every other top-level key of the line (`term`, `target`, `log.file`…).
    pub fields: Map<String, Value>,
    /// The keys of `fields` in the order the line had them (the order the code that
    /// logged chose), for display.
    pub field_order: Vec<String>,
    /// The line exactly as written, without its line ending.
    pub raw: String,
}

impl LogEntry {
    /// Whether this is one of the [`TIMELINE_EVENTS`].
    pub fn is_timeline(&self) -> bool {
        self.event.as_deref().is_some_and(|e| TIMELINE_EVENTS.contains(&e))
    }

    /// The fields worth showing a human: without the logger's bookkeeping (`target`,
    /// `log.*` from the `log` bridge, source file and line, span context).
    pub fn key_fields(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.field_order
            .iter()
            .filter(|k| !is_noisy_key(k))
            .filter_map(|k| self.fields.get(k).map(|v| (k.as_str(), v)))
    }
}

fn is_noisy_key(key: &str) -> bool {
    key.starts_with("log.")
        || matches!(
            key,
            "target"
                | "file"
                | "line"
                | "filename"
                | "line_number"
                | "module_path"
                | "span"
                | "spans"
                | "threadName"
                | "threadId"
        )
}

/// Parses one line written by a node. It needs a JSON object with an RFC 3339
/// `timestamp` and a numeric `node_id`; anything else is `None`.
pub fn parse_line(line: &str) -> Option<LogEntry> {
    parse_object(line, None)
}

/// Like [`parse_line`] for a line of node `node`'s file: a line without `node_id` is
/// taken as that node's; a `node_id` in the line wins.
pub fn parse_line_as(line: &str, node: u64) -> Option<LogEntry> {
    parse_object(line, Some(node))
}

fn parse_object(line: &str, default_node: Option<u64>) -> Option<LogEntry> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let OrderedObject(pairs) = serde_json::from_str(line).ok()?;
    let mut map = Map::new();
    let mut field_order = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        if !OWN_KEYS.contains(&key.as_str()) && !map.contains_key(&key) {
            field_order.push(key.clone());
        }
        map.insert(key, value);
    }
    let timestamp =
        DateTime::parse_from_rfc3339(map.get("timestamp")?.as_str()?).ok()?.with_timezone(&Utc);
    let node = match map.get("node_id") {
        Some(v) => v.as_u64()?,
        None => default_node?,
    };
    let level = match map.get("level") {
        Some(v) => v.as_str()?.parse().ok()?,
        None => Level::Info,
    };
    let event = map.get("event").map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let message = match map.get("message") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    for key in OWN_KEYS {
        map.remove(*key);
    }
    Some(LogEntry {
        node,
        timestamp,
        level,
        event,
        message,
        fields: map,
        field_order,
        raw: line.to_string(),
    })
}

/// A JSON object's members in the order they were written. (`serde_json::Map` sorts its
/// keys unless the crate-wide `preserve_order` feature is on, which would change every
/// other user of `serde_json` in the program.)
struct OrderedObject(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for OrderedObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<OrderedObject, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = access.next_entry::<String, Value>()? {
                    members.push(member);
                }
                Ok(OrderedObject(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// Where a chunk of bytes comes from, which decides what a bad line means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A node's `node.log`: lines without `node_id` are that node's; bad lines are counted.
    Node(u64),
    /// `supervisor.log`: only JSON lines naming a node are used; the rest is ignored.
    Supervisor,
}

/// Parses one line (without its `\n`). Returns the entry, if any, and how many malformed
/// lines were skipped (0 or 1).
fn parse_chunk(bytes: &[u8], origin: Origin) -> (Option<LogEntry>, usize) {
    let default_node = match origin {
        Origin::Node(n) => Some(n),
        Origin::Supervisor => None,
    };
    let bad = usize::from(origin != Origin::Supervisor);
    let Ok(line) = std::str::from_utf8(bytes) else {
        return (None, bad);
    };
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim().is_empty() {
        return (None, 0);
    }
    if let Some(entry) = parse_object(line, default_node) {
        return (Some(entry), 0);
    }
    // A line cut short by SIGKILL, followed by the restarted process's first line:
    // recover the latter from the first `{"` after which a whole entry parses.
    for (i, _) in line.match_indices("{\"").filter(|(i, _)| *i > 0) {
        if let Some(entry) = parse_object(&line[i..], default_node) {
            return (Some(entry), bad);
        }
    }
    (None, bad)
}

/// Reads node `node`'s whole log file. Returns its entries in file order and the number
/// of malformed lines skipped (including a last line cut short). A missing file is an
/// `io::ErrorKind::NotFound` error for the caller to report.
pub fn read_file(path: &Path, node: u64) -> io::Result<(Vec<LogEntry>, usize)> {
    read_all(path, Origin::Node(node))
}

/// Reads `supervisor.log`: its JSON lines that name a node (`node_id`) and have a
/// timestamp; everything else in it is ignored.
pub fn read_supervisor_log(path: &Path) -> io::Result<Vec<LogEntry>> {
    read_all(path, Origin::Supervisor).map(|(entries, _)| entries)
}

fn read_all(path: &Path, origin: Origin) -> io::Result<(Vec<LogEntry>, usize)> {
    let bytes = std::fs::read(path)?;
    let mut entries = Vec::new();
    let mut skipped = 0;
    for chunk in bytes.split(|b| *b == b'\n') {
        let (entry, bad) = parse_chunk(chunk, origin);
        entries.extend(entry);
        skipped += bad;
    }
    Ok((entries, skipped))
}

/// Sorts entries into one timeline: by timestamp, then node; stable, so lines of one
/// node with equal timestamps keep their file order.
pub fn sort_entries(entries: &mut [LogEntry]) {
    entries.sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then(a.node.cmp(&b.node)));
}

/// Merges several sources (one per node, plus the supervisor's) into one timeline, see
/// [`sort_entries`]. A line that appears in two sources (same node, time and text, e.g.
/// an event the supervisor wrote both to a node's log and to its own) is kept once.
pub fn merge(sources: impl IntoIterator<Item = Vec<LogEntry>>) -> Vec<LogEntry> {
    let mut all: Vec<LogEntry> = sources.into_iter().flatten().collect();
    sort_entries(&mut all);
    let mut out: Vec<LogEntry> = Vec::with_capacity(all.len());
    let mut run_start = 0; // start in `out` of the run with the same (timestamp, node)
    for entry in all {
        match out.last() {
            Some(last) if last.timestamp == entry.timestamp && last.node == entry.node => {
                if out[run_start..].iter().any(|e| e.raw == entry.raw) {
                    continue;
                }
            }
            _ => run_start = out.len(),
        }
        out.push(entry);
    }
    out
}

/// Which entries to show. Every condition that is set must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Only these nodes; empty = all.
    pub nodes: Vec<u64>,
    /// Only entries at this level or above.
    pub min_level: Option<Level>,
    /// Only entries whose event is one of these; empty = any entry, with or without event.
    pub events: Vec<String>,
    /// Only entries written at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only entries whose raw line contains this text (case-sensitive).
    pub grep: Option<String>,
    /// Only [`TIMELINE_EVENTS`].
    pub timeline: bool,
}

impl Filter {
    /// Whether `entry` passes every condition.
    pub fn matches(&self, entry: &LogEntry) -> bool {
        (self.nodes.is_empty() || self.nodes.contains(&entry.node))
            && self.min_level.is_none_or(|min| entry.level >= min)
            && (self.events.is_empty()
                || entry.event.as_deref().is_some_and(|e| self.events.iter().any(|w| w == e)))
            && self.since.is_none_or(|since| entry.timestamp >= since)
            && self.grep.as_deref().is_none_or(|text| entry.raw.contains(text))
            && (!self.timeline || entry.is_timeline())
    }
}

/// A `--since` value: a duration before now, or a point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// `30s`, `5m`, `2h`, `1d`, `1h30m`, `500ms`: that long before now.
    Ago(Duration),
    /// An RFC 3339 time, `2026-11-28T07:09:17Z` or with an offset.
    At(DateTime<Utc>),
}

impl Since {
    /// The point in time this value means when it is `now`.
    pub fn resolve(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Since::At(t) => t,
            Since::Ago(d) => chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| now.checked_sub_signed(d))
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        }
    }
}

impl FromStr for Since {
    type Err = LogsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if let Some(d) = parse_duration(t) {
            return Ok(Since::Ago(d));
        }
        DateTime::parse_from_rfc3339(t)
            .map(|t| Since::At(t.with_timezone(&Utc)))
            .map_err(|_| LogsError::BadSince(s.to_string()))
    }
}

/// Parses a `--since` value into the time it means at `now`.
pub fn parse_since(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, LogsError> {
    s.parse::<Since>().map(|since| since.resolve(now))
}

/// Parses a duration made of `<number><unit>` parts, units `ms`, `s`, `m`, `h`, `d`
/// (`30s`, `5m`, `1h30m`). `None` for anything else, including an empty string.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut rest = s;
    let mut total = Duration::ZERO;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit_ms: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(Duration::from_millis(n.checked_mul(unit_ms)?))?;
    }
    Some(total)
}

/// One log file read incrementally, like `tail -f`: each [`Tail::poll`] returns the
/// complete lines appended since the last one.
///
/// It remembers the byte offset it has read up to and the file's identity (device and
/// inode). A file that does not exist yet is simply empty until it appears; a file that
/// became shorter (truncated) or was replaced (rotated, recreated) is read again from
/// its start. A last line without its `\n` is held back until it is complete.
#[derive(Debug)]
pub struct Tail {
    path: PathBuf,
    origin: Origin,
    offset: u64,
    identity: Option<(u64, u64)>,
    pending: Vec<u8>,
    skipped: usize,
    /// Started in the middle of the file: what precedes the first newline is not a line.
    skip_to_newline: bool,
}

impl Tail {
    /// Follows node `node`'s log file, from its start.
    pub fn node(path: impl Into<PathBuf>, node: u64) -> Tail {
        Tail::new(path.into(), Origin::Node(node))
    }

    /// Follows node `node`'s log file from at most `back` bytes before its current end
    /// (the first, partial line there is skipped): recent history without reading a
    /// file that may be large. A missing file is followed from its start.
    pub fn node_recent(path: impl Into<PathBuf>, node: u64, back: u64) -> Tail {
        use std::os::unix::fs::MetadataExt;
        let mut t = Tail::new(path.into(), Origin::Node(node));
        if let Ok(meta) = std::fs::metadata(&t.path) {
            if meta.len() > back {
                t.identity = Some((meta.dev(), meta.ino()));
                t.offset = meta.len() - back;
                // Drop the partial first line: everything up to the first newline.
                t.skip_to_newline = true;
            }
        }
        t
    }

    /// Follows the supervisor's log, from its start (see [`read_supervisor_log`]).
    pub fn supervisor(path: impl Into<PathBuf>) -> Tail {
        Tail::new(path.into(), Origin::Supervisor)
    }

    fn new(path: PathBuf, origin: Origin) -> Tail {
        Tail {
            path,
            origin,
            offset: 0,
            identity: None,
            pending: Vec::new(),
            skipped: 0,
            skip_to_newline: false,
        }
    }

    /// The file followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Malformed lines skipped so far.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The entries of the complete lines appended since the last poll, in file order.
    /// A missing file yields nothing (it may appear later).
    pub fn poll(&mut self) -> io::Result<Vec<LogEntry>> {
        use std::os::unix::fs::MetadataExt;
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        let identity = Some((meta.dev(), meta.ino()));
        if identity != self.identity || meta.len() < self.offset {
            // New file, replaced file or truncated file: start over.
            self.identity = identity;
            self.offset = 0;
            self.pending.clear();
            self.skip_to_newline = false;
        }
        if meta.len() == self.offset {
            return Ok(Vec::new());
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let read = file.read_to_end(&mut self.pending)?;
        self.offset += read as u64;
        if self.skip_to_newline {
            let Some(first) = self.pending.iter().position(|b| *b == b'\n') else {
                self.pending.clear();
                return Ok(Vec::new());
            };
            self.pending.drain(..=first);
            self.skip_to_newline = false;
        }
        let Some(last_newline) = self.pending.iter().rposition(|b| *b == b'\n') else {
            return Ok(Vec::new());
        };
        let rest = self.pending.split_off(last_newline + 1);
        let complete = std::mem::replace(&mut self.pending, rest);
        let mut entries = Vec::new();
        for chunk in complete[..last_newline].split(|b| *b == b'\n') {
            let (entry, bad) = parse_chunk(chunk, self.origin);
            entries.extend(entry);
            self.skipped += bad;
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `event = "..."` the code logs is a known event name, so `logs --event` never
    /// warns about one the nodes really write.
    #[test]
    fn every_logged_event_is_listed() {
        fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    for part in text.split("event = \"").skip(1) {
                        let name: String = part
                            .chars()
                            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                            .collect();
                        if part[name.len()..].starts_with('"') && !name.is_empty() {
                            out.push(name);
                        }
                    }
                }
            }
        }
        let mut names = Vec::new();
        walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut names);
        assert!(names.len() > 20, "found the events: {names:?}");
        for n in names {
            assert!(EVENTS.contains(&n.as_str()), "event {n} is logged but not in EVENTS");
        }
        for t in TIMELINE_EVENTS {
            assert!(EVENTS.contains(t), "timeline event {t} is not in EVENTS");
        }
    }

    fn ts(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn line(node: u64, time: &str, level: &str, event: Option<&str>, extra: &str) -> String {
        let event = event.map(|e| format!(",\"event\":\"{e}\"")).unwrap_or_default();
        format!(
            "{{\"node_id\":{node},\"timestamp\":\"{time}\",\"level\":\"{level}\",\"message\":\"m\"{event}{extra},\"target\":\"raft_nosql::events\"}}"
        )
    }

    fn entry(node: u64, time: &str, level: &str, event: Option<&str>) -> LogEntry {
        parse_line(&line(node, time, level, event, "")).unwrap()
    }

    #[test]
    fn parses_a_structured_event_line() {
        let raw = r#"{"node_id":0,"timestamp":"2026-11-28T07:09:17.165628Z","level":"INFO","message":"became leader","event":"became_leader","term":3,"target":"raft_nosql::events"}"#;
        let e = parse_line(raw).unwrap();
        assert_eq!(e.node, 0);
        assert_eq!(e.timestamp, ts("2026-11-28T07:09:17.165628Z"));
        assert_eq!(e.level, Level::Info);
        assert_eq!(e.event.as_deref(), Some("became_leader"));
        assert_eq!(e.message, "became leader");
        assert_eq!(e.field_order, ["term", "target"]);
        assert_eq!(e.fields.len(), 2);
        assert_eq!(e.fields["term"].as_u64(), Some(3));
        assert_eq!(e.raw, raw);
        assert!(e.is_timeline());
        assert_eq!(e.key_fields().map(|(k, _)| k).collect::<Vec<_>>(), ["term"]);
    }

    #[test]
    fn parses_an_ordinary_line_and_hides_bridge_fields() {
        let raw = r#"{"node_id":2,"timestamp":"2026-11-28T07:09:17Z","level":"DEBUG","message":"Creating database at x","log.target":"fjall::db","log.file":"db.rs","log.line":7,"target":"fjall::db","path":"x"}"#;
        let e = parse_line(raw).unwrap();
        assert_eq!((e.node, e.level, e.event.as_deref()), (2, Level::Debug, None));
        assert!(!e.is_timeline());
        assert_eq!(e.key_fields().map(|(k, _)| k).collect::<Vec<_>>(), ["path"]);
    }

    #[test]
    fn node_id_of_the_line_wins_over_the_file_node() {
        let with_id = line(2, "2026-11-28T07:09:17Z", "WARN", Some("node_exited"), "");
        assert_eq!(parse_line_as(&with_id, 0).unwrap().node, 2);
        let without = r#"{"timestamp":"2026-11-28T07:09:17Z","level":"INFO","message":"x"}"#;
        assert_eq!(parse_line_as(without, 1).unwrap().node, 1);
        assert!(parse_line(without).is_none(), "no node to attribute it to");
    }

    #[test]
    fn malformed_lines_are_not_entries() {
        for bad in [
            "",
            "thread 'main' panicked at src/node.rs:10:5:",
            r#"{"node_id":0,"timestamp":"2026-11-28T07:09:17.16"#,
            r#"[1,2,3]"#,
            r#"{"node_id":0,"level":"INFO","message":"no timestamp"}"#,
            r#"{"node_id":0,"timestamp":"yesterday","level":"INFO"}"#,
            r#"{"node_id":"zero","timestamp":"2026-11-28T07:09:17Z","level":"INFO"}"#,
            r#"{"node_id":0,"timestamp":"2026-11-28T07:09:17Z","level":"LOUD"}"#,
        ] {
            assert!(parse_line(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn read_file_skips_and_counts_malformed_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.log");
        let text = [
            line(1, "2026-11-28T07:09:17Z", "INFO", Some("node_started"), ""),
            "thread 'main' panicked at src/node.rs:10:5:".to_string(),
            String::new(),
            line(1, "2026-11-28T07:09:18Z", "INFO", None, ""),
            r#"{"node_id":1,"timestamp":"2026-11-28T07:0"#.to_string(),
        ]
        .join("\n");
        std::fs::write(&path, text).unwrap();
        let (entries, skipped) = read_file(&path, 1).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(skipped, 2, "the panic line and the cut-off last line; not the empty one");
        let err = read_file(&dir.path().join("missing.log"), 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_line_cut_by_sigkill_does_not_swallow_the_next_process_line() {
        let cut = r#"{"node_id":0,"timestamp":"2026-11-28T07:09:17.1"#;
        let next = line(0, "2026-11-28T07:09:19Z", "INFO", Some("node_started"), "");
        let (entry, skipped) = parse_chunk(format!("{cut}{next}").as_bytes(), Origin::Node(0));
        assert_eq!(skipped, 1);
        assert_eq!(entry.unwrap().raw, next);
    }

    #[test]
    fn supervisor_log_keeps_only_json_lines_naming_a_node() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("supervisor.log");
        let exited = line(2, "2026-11-28T07:09:20Z", "WARN", Some("node_exited"), r#","pid":7"#);
        let text = format!(
            "supervisor listening on 127.0.0.1:8099\n{exited}\n{}\n",
            r#"{"timestamp":"2026-11-28T07:09:20Z","level":"INFO","message":"cluster initialised"}"#
        );
        std::fs::write(&path, text).unwrap();
        let entries = read_supervisor_log(&path).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0].node, entries[0].raw.as_str()), (2, exited.as_str()));
    }

    #[test]
    fn merge_orders_by_time_then_node_and_keeps_file_order_for_ties() {
        let t1 = "2026-11-28T07:09:17.000001Z";
        let t2 = "2026-11-28T07:09:17.000002Z";
        let n0 = vec![
            parse_line(&line(0, t2, "INFO", None, r#","k":"a""#)).unwrap(),
            parse_line(&line(0, t2, "INFO", None, r#","k":"b""#)).unwrap(),
        ];
        let n1 = vec![entry(1, t1, "INFO", None), entry(1, t2, "INFO", None)];
        let n2 = vec![entry(2, t1, "INFO", None)];
        let merged = merge([n2, n0, n1]);
        let order: Vec<(u64, String)> = merged
            .iter()
            .map(|e| (e.node, e.fields.get("k").and_then(|v| v.as_str()).unwrap_or("").into()))
            .collect();
        let expect = [(1, ""), (2, ""), (0, "a"), (0, "b"), (1, "")];
        assert_eq!(order, expect.map(|(n, k)| (n, k.to_string())));
    }

    #[test]
    fn merge_keeps_a_line_found_in_two_sources_once() {
        let e = entry(2, "2026-11-28T07:09:20Z", "WARN", Some("node_exited"));
        let other = entry(2, "2026-11-28T07:09:20Z", "INFO", None);
        let merged = merge([vec![e.clone(), other.clone()], vec![e.clone()]]);
        assert_eq!(merged, vec![e, other]);
    }

    fn sample() -> Vec<LogEntry> {
        vec![
            entry(0, "2026-11-28T07:00:00Z", "TRACE", None),
            entry(0, "2026-11-28T07:00:01Z", "DEBUG", None),
            entry(1, "2026-11-28T07:00:02Z", "INFO", Some("became_leader")),
            entry(1, "2026-11-28T07:00:03Z", "WARN", Some("peer_unreachable")),
            entry(2, "2026-11-28T07:00:04Z", "ERROR", None),
            entry(2, "2026-11-28T07:00:05Z", "INFO", Some("request")),
            entry(2, "2026-11-28T07:00:06Z", "WARN", Some("node_exited")),
        ]
    }

    /// Indexes of the sample entries `filter` lets through.
    fn kept(filter: &Filter) -> Vec<usize> {
        sample().iter().enumerate().filter(|(_, e)| filter.matches(e)).map(|(i, _)| i).collect()
    }

    #[test]
    fn empty_filter_keeps_everything() {
        assert_eq!(kept(&Filter::default()), [0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn node_filter_keeps_only_those_nodes() {
        assert_eq!(kept(&Filter { nodes: vec![1], ..Filter::default() }), [2, 3]);
        assert_eq!(kept(&Filter { nodes: vec![0, 2], ..Filter::default() }), [0, 1, 4, 5, 6]);
        assert_eq!(kept(&Filter { nodes: vec![7], ..Filter::default() }), [] as [usize; 0]);
    }

    #[test]
    fn level_filter_means_at_least() {
        let at = |l| kept(&Filter { min_level: Some(l), ..Filter::default() });
        assert_eq!(at(Level::Trace), [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(at(Level::Debug), [1, 2, 3, 4, 5, 6]);
        assert_eq!(at(Level::Info), [2, 3, 4, 5, 6]);
        assert_eq!(at(Level::Warn), [3, 4, 6]);
        assert_eq!(at(Level::Error), [4]);
    }

    #[test]
    fn event_filter_keeps_any_of_the_named_events() {
        let events = |e: &[&str]| Filter {
            events: e.iter().map(|s| s.to_string()).collect(),
            ..Filter::default()
        };
        assert_eq!(kept(&events(&["became_leader"])), [2]);
        assert_eq!(kept(&events(&["request", "node_exited"])), [5, 6]);
        assert_eq!(kept(&events(&["term_changed"])), [] as [usize; 0]);
    }

    #[test]
    fn since_filter_keeps_entries_at_or_after_the_time() {
        let f = Filter { since: Some(ts("2026-11-28T07:00:04Z")), ..Filter::default() };
        assert_eq!(kept(&f), [4, 5, 6]);
    }

    #[test]
    fn grep_filter_matches_the_raw_line_case_sensitively() {
        let f = |g: &str| Filter { grep: Some(g.to_string()), ..Filter::default() };
        assert_eq!(kept(&f("peer_unreachable")), [3]);
        assert_eq!(kept(&f("\"node_id\":2")), [4, 5, 6]);
        assert_eq!(kept(&f("PEER_UNREACHABLE")), [] as [usize; 0]);
    }

    #[test]
    fn timeline_filter_keeps_only_timeline_events() {
        assert_eq!(kept(&Filter { timeline: true, ..Filter::default() }), [2, 6]);
    }

    #[test]
    fn filters_combine_with_and() {
        let f = Filter {
            nodes: vec![1, 2],
            min_level: Some(Level::Warn),
            timeline: true,
            ..Filter::default()
        };
        assert_eq!(kept(&f), [6]);
    }

    #[test]
    fn timeline_events_are_all_known_events() {
        for e in TIMELINE_EVENTS {
            assert!(EVENTS.contains(e), "{e}");
        }
        let unique: std::collections::BTreeSet<_> = EVENTS.iter().collect();
        assert_eq!(unique.len(), EVENTS.len(), "an event is listed twice");
        let unique: std::collections::BTreeSet<_> = TIMELINE_EVENTS.iter().collect();
        assert_eq!(unique.len(), TIMELINE_EVENTS.len(), "a timeline event is listed twice");
    }

    #[test]
    fn levels_parse_case_insensitively_and_order() {
        assert_eq!("warn".parse::<Level>(), Ok(Level::Warn));
        assert_eq!("WARNING".parse::<Level>(), Ok(Level::Warn));
        assert_eq!("Error".parse::<Level>(), Ok(Level::Error));
        assert!(matches!("LOUD".parse::<Level>(), Err(LogsError::BadLevel(_))));
        assert!(Level::Trace < Level::Debug && Level::Debug < Level::Info);
        assert!(Level::Info < Level::Warn && Level::Warn < Level::Error);
    }

    #[test]
    fn since_accepts_durations_ago_and_rfc3339_times() {
        let now = ts("2026-11-28T12:00:00Z");
        assert_eq!(parse_since("30s", now), Ok(ts("2026-11-28T11:59:30Z")));
        assert_eq!(parse_since("5m", now), Ok(ts("2026-11-28T11:55:00Z")));
        assert_eq!(parse_since("2h", now), Ok(ts("2026-11-28T10:00:00Z")));
        assert_eq!(parse_since("1d", now), Ok(ts("2026-11-27T12:00:00Z")));
        assert_eq!(parse_since("1h30m", now), Ok(ts("2026-11-28T10:30:00Z")));
        assert_eq!(parse_since("500ms", now), Ok(ts("2026-11-28T11:59:59.5Z")));
        assert_eq!(parse_since(" 0s ", now), Ok(now));
        assert_eq!(parse_since("2026-11-28T07:09:17Z", now), Ok(ts("2026-11-28T07:09:17Z")));
        assert_eq!(
            parse_since("2026-11-28T08:09:17.5+01:00", now),
            Ok(ts("2026-11-28T07:09:17.5Z"))
        );
    }

    #[test]
    fn since_rejects_everything_else() {
        let now = ts("2026-11-28T12:00:00Z");
        for bad in ["", "yesterdayish", "5", "m", "5 m", "-5m", "5y", "1.5h", "2026-11-28"] {
            assert_eq!(parse_since(bad, now), Err(LogsError::BadSince(bad.into())), "{bad:?}");
        }
        assert_eq!(
            parse_since("99999999999999999d", now),
            Err(LogsError::BadSince("99999999999999999d".into()))
        );
    }

    #[test]
    fn tail_reads_appended_lines_and_survives_truncation_and_replacement() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.log");
        let mut tail = Tail::node(&path, 0);
        assert!(tail.poll().unwrap().is_empty(), "a missing file is empty");

        let a = line(0, "2026-11-28T07:00:00Z", "INFO", Some("node_started"), "");
        let b = line(0, "2026-11-28T07:00:01Z", "INFO", Some("became_leader"), "");
        std::fs::write(&path, format!("{a}\n{}", &b[..10])).unwrap();
        let got = tail.poll().unwrap();
        assert_eq!(got.iter().map(|e| e.raw.as_str()).collect::<Vec<_>>(), [a.as_str()]);
        assert!(tail.poll().unwrap().is_empty(), "an incomplete line is held back");

        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        write!(f, "{}\nnot json\n", &b[10..]).unwrap();
        let got = tail.poll().unwrap();
        assert_eq!(got.iter().map(|e| e.raw.as_str()).collect::<Vec<_>>(), [b.as_str()]);
        assert_eq!(tail.skipped(), 1);

        // Truncated: read again from the start.
        let c = line(0, "2026-11-28T07:00:02Z", "WARN", None, "");
        std::fs::write(&path, format!("{c}\n")).unwrap();
        let got = tail.poll().unwrap();
        assert_eq!(got.iter().map(|e| e.raw.as_str()).collect::<Vec<_>>(), [c.as_str()]);

        // Replaced by a new file of a larger size: a new inode, read from the start.
        let replacement = dir.path().join("node.log.new");
        std::fs::write(&replacement, format!("{a}\n{b}\n{c}\n")).unwrap();
        std::fs::rename(&replacement, &path).unwrap();
        assert_eq!(tail.poll().unwrap().len(), 3);
    }
}
