//! The load generator behind `raft-nosql bench`: throughput and latency percentiles of a
//! raft-nosql cluster (through its native REST API or its DynamoDB API), or of an etcd
//! cluster or any DynamoDB-compatible endpoint driven with the very same workloads.
//!
//! # How a run goes
//!
//! 1. **Setup.** raft-nosql and DynamoDB endpoints: the benchmark table (partition key
//!    `k`, type S) is created if missing (`fresh`: deleted and recreated), through the API
//!    under test, and every target is waited for until it knows it. etcd: `fresh` deletes
//!    every key under the `key` prefix.
//! 2. **Preload** (workloads with reads, unless turned off): every key of the key space is
//!    written once, so reads find something. raft-nosql then waits until every target
//!    has applied the last preload write.
//! 3. **Warm-up** (optional): the workload runs for a while and is counted separately, so
//!    connection set-up and cold caches stay out of the figures.
//! 4. **Measurement**: `clients` tokio tasks, each with its own keep-alive connection to
//!    each node ([`http`]), send one request at a time (a closed loop) until the duration
//!    has passed or the op budget is used up. Each op is a read with probability
//!    `read_percent`, else a write. The `update` and `transact` workloads send
//!    conditional writes on a hot key set instead ([`conditional`]).
//!    With an interval set, the throughput of each interval is reported too
//!    ([`timeline`]).
//! 5. **Check** (`update`, `transact`): the hot keys are read before the warm-up and
//!    after the measurement, and what the workload must preserve is checked.
//!
//! # Keys and values
//!
//! Keys are `key` plus the index zero-padded to at least six digits (`key000123`), over a
//! key space of `keys` indexes. Reads pick a key uniformly at random. Writes of the
//! `write` workload take *sequential* indexes from one counter shared by all tasks
//! (wrapping at `keys`), so while `keys` is at least the number of writes, every write
//! creates a new item and the table's item count equals the acknowledged writes; writes
//! of a `mixed` workload pick random keys (updates of preloaded items). The value is
//! `value_size` bytes of printable text, built once.
//!
//! # What is counted
//!
//! Every finished operation is either acknowledged (HTTP 200; for raft-nosql writes this
//! means committed by a majority and applied on the leader) or an error, counted by kind.
//! A read of a key that does not exist is acknowledged and counted as a *miss*. Latency
//! (microseconds, HDR histogram, see [`stats`]) is recorded for acknowledged operations.
//! Throughput is acknowledged operations per second of measurement; the measurement
//! ends when the last in-flight operation has finished, so no acknowledged operation is
//! left out of the counts.
//!
//! # Shortcuts taken
//!
//! - A closed loop: each client waits for its answer before the next request, so a slow
//!   system is offered less load (coordinated omission); latency under a fixed offered
//!   rate is not measured.
//! - The load generator shares the machine with the cluster when run locally; its own CPU
//!   use is part of what bounds the figures. That is why the operations go through a
//!   lean HTTP/1.1 client ([`http`]) rather than the general [`crate::client::Client`]
//!   (which only sets the table up).
//! - Uniform key choice only; no Zipf skew, no scans or queries.
//! - Conditional writes on a hot key set (`update`, `transact`) are the only contended
//!   workloads; the others never write one key from two clients at once by design.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::client::Consistency;

pub mod conditional;
pub mod dynamodb;
pub mod etcd;
pub mod http;
pub mod nosql;
pub mod stats;
pub mod timeline;

use conditional::{Attempt, CheckSummary, Tally, INITIAL_BALANCE, MAX_TRANSFER};
use stats::{human_us, LatencySummary, OpKind, OpSummary, Outcome, Stats};
use timeline::{Timeline, TimelineSummary};

/// The system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// A raft-nosql cluster, through its HTTP API ([`nosql`]).
    RaftNosql,
    /// An etcd 3.x cluster, through its HTTP/JSON gateway ([`etcd`]).
    Etcd,
    /// Any one endpoint that speaks DynamoDB's wire protocol (moto's server, dynalite,
    /// DynamoDB Local), through [`dynamodb`].
    Dynamodb,
}

impl System {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            System::RaftNosql => "raft-nosql",
            System::Etcd => "etcd",
            System::Dynamodb => "dynamodb",
        }
    }
}

/// The protocol the operations go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// The system's own: raft-nosql's REST API, etcd's JSON gateway.
    Native,
    /// DynamoDB's wire protocol (PutItem, GetItem; [`dynamodb`]).
    Dynamodb,
}

impl Api {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Api::Native => "native",
            Api::Dynamodb => "dynamodb",
        }
    }
}

/// What the clients send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Writes only (sequential keys).
    Write,
    /// Reads only (random keys).
    Read,
    /// Reads with the given percentage, the rest writes (random keys).
    Mixed(u8),
    /// Conditional increments of a counter on a hot key set, with optimistic locking
    /// (read, then write if unchanged; retried on conflict). See [`conditional`].
    Update,
    /// Transfers between accounts of a hot key set, one transaction each. See
    /// [`conditional`].
    Transact,
}

impl Workload {
    /// Percentage of operations that are reads.
    pub fn read_percent(self) -> u8 {
        match self {
            Workload::Write | Workload::Update | Workload::Transact => 0,
            Workload::Read => 100,
            Workload::Mixed(p) => p,
        }
    }

    /// Whether the workload writes conditionally on the hot key set.
    pub fn is_conditional(self) -> bool {
        matches!(self, Workload::Update | Workload::Transact)
    }
}

impl FromStr for Workload {
    type Err = String;

    /// `write`, `read`, `mixed:R` with R the read percentage (0-100), `update` or
    /// `transact`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = "expected write, read, mixed:R (R = percentage of reads, 0-100), \
                        update or transact";
        match s.trim() {
            "write" => Ok(Workload::Write),
            "read" => Ok(Workload::Read),
            "update" => Ok(Workload::Update),
            "transact" => Ok(Workload::Transact),
            other => {
                let r = other.strip_prefix("mixed:").ok_or_else(|| expected.to_string())?;
                match r.trim().parse::<u8>() {
                    Ok(p) if p <= 100 => Ok(Workload::Mixed(p)),
                    _ => Err(format!("read percentage {r:?} is not 0-100; {expected}")),
                }
            }
        }
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Workload::Write => f.write_str("write"),
            Workload::Read => f.write_str("read"),
            Workload::Mixed(p) => write!(f, "mixed:{p}"),
            Workload::Update => f.write_str("update"),
            Workload::Transact => f.write_str("transact"),
        }
    }
}

/// How fresh reads must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadLevel {
    /// raft-nosql: answered locally by any node; etcd: serializable.
    Eventual,
    /// raft-nosql: `consistency=strong` (the leader answers); etcd: linearizable.
    Strong,
}

impl ReadLevel {
    fn name(self) -> &'static str {
        match self {
            ReadLevel::Eventual => "eventual",
            ReadLevel::Strong => "strong",
        }
    }
}

/// When the measurement ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this long.
    After(Duration),
    /// After this many operations (over all clients).
    Ops(u64),
}

/// Everything a run needs; the CLI builds it from its flags.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The system under test.
    pub system: System,
    /// The protocol: [`Api::Dynamodb`] for raft-nosql's DynamoDB API and for
    /// [`System::Dynamodb`] (which speaks nothing else); etcd is native only.
    pub api: Api,
    /// DynamoDB API: check every answer's `x-amz-crc32` against its body.
    pub check_crc: bool,
    /// What to send.
    pub workload: Workload,
    /// Concurrent clients (tasks), each with its own connection(s). At least 1.
    pub clients: usize,
    /// When to stop.
    pub stop: Stop,
    /// Size of each written value, in bytes.
    pub value_size: usize,
    /// Size of the key space. At least 1.
    pub keys: u64,
    /// Size of the hot key set of the `update` and `transact` workloads (counters or
    /// accounts `key000000`...). At least 1 (2 for `transact`).
    pub hot_keys: u64,
    /// Read freshness.
    pub read_level: ReadLevel,
    /// `host:port` of the nodes (raft-nosql) or members (etcd). At least one.
    pub targets: Vec<String>,
    /// raft-nosql table (ignored for etcd).
    pub table: String,
    /// Start from an empty table / key range.
    pub fresh: bool,
    /// Run the workload this long before measuring.
    pub warmup: Option<Duration>,
    /// Write every key once before a workload with reads.
    pub preload: bool,
    /// Draw progress bars on stderr.
    pub progress: bool,
    /// Also report the throughput of each interval of this length ([`timeline`]);
    /// `None`: the whole run only.
    pub interval: Option<Duration>,
}

/// Why a run could not even start.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The configuration makes no sense (bad address, ...).
    #[error("{0}")]
    Usage(String),
    /// The system could not be set up for the run (unreachable, table not creatable,
    /// preload failed entirely).
    #[error("{0}")]
    Setup(String),
}

/// The preload phase, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct PreloadSummary {
    /// Keys written.
    pub keys: u64,
    /// Writes acknowledged.
    pub ok: u64,
    /// Writes that failed.
    pub errors: u64,
    /// How long it took.
    pub seconds: f64,
}

/// The warm-up phase, as reported (its ops are not in the main figures).
#[derive(Debug, Clone, Serialize)]
pub struct WarmupSummary {
    /// How long it ran.
    pub seconds: f64,
    /// Operations finished.
    pub ops: u64,
    /// Writes acknowledged (these items exist too).
    pub write_ok: u64,
    /// Operations that failed.
    pub errors: u64,
}

/// The result of a run: what `--json` prints, and what the text report shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `raft-nosql`, `etcd` or `dynamodb`.
    pub system: &'static str,
    /// `native` or `dynamodb`.
    pub api: &'static str,
    /// `write`, `read` or `mixed:R`.
    pub workload: String,
    /// Percentage of reads.
    pub read_percent: u8,
    /// Concurrent clients.
    pub clients: usize,
    /// `eventual` or `strong`.
    pub consistency: &'static str,
    /// The nodes or members driven.
    pub targets: Vec<String>,
    /// The table (raft-nosql, DynamoDB), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Bytes per value.
    pub value_size: usize,
    /// Key space.
    pub keys: u64,
    /// The hot key set (`update`, `transact`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hot_keys: Option<u64>,
    /// Length of the measurement, seconds.
    pub duration_s: f64,
    /// Operations finished.
    pub ops: u64,
    /// Operations acknowledged.
    pub ok: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Condition failures answered (`update`: retried; `transact`: given up).
    pub conflicts: u64,
    /// Operations given up after a condition failure (cancelled transfers).
    pub refused: u64,
    /// Failures by kind.
    pub errors_by_kind: std::collections::BTreeMap<String, u64>,
    /// 307 redirects followed (raft-nosql), or writes a follower forwarded to the
    /// leader (raft-nosql's DynamoDB API).
    pub redirects: u64,
    /// Acknowledged operations per second.
    pub throughput_ops_s: f64,
    /// Latency of all acknowledged operations.
    pub latency_us: LatencySummary,
    /// Reads alone.
    pub read: OpSummary,
    /// Writes alone.
    pub write: OpSummary,
    /// The warm-up, if there was one.
    pub warmup: Option<WarmupSummary>,
    /// The preload, if there was one.
    pub preload: Option<PreloadSummary>,
    /// What the `update` or `transact` workload must preserve, checked after the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckSummary>,
    /// The throughput of each interval, with an interval set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<TimelineSummary>,
}

impl Report {
    /// The report for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        match self.hot_keys {
            Some(hot) => {
                let _ = writeln!(
                    out,
                    "{} bench ({} API): {}, {} clients, {} reads, {hot} hot keys",
                    self.system, self.api, self.workload, self.clients, self.consistency,
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "{} bench ({} API): {}, {} clients, {} reads, {} B values, {} keys",
                    self.system,
                    self.api,
                    self.workload,
                    self.clients,
                    self.consistency,
                    self.value_size,
                    self.keys
                );
            }
        }
        let _ = writeln!(out, "targets: {}", self.targets.join(", "));
        if let Some(p) = &self.preload {
            let _ = writeln!(
                out,
                "preload: {} keys in {:.1}s ({} ok, {} errors)",
                p.keys, p.seconds, p.ok, p.errors
            );
        }
        if let Some(w) = &self.warmup {
            let _ = writeln!(
                out,
                "warm-up: {:.1}s, {} ops ({} writes ok, {} errors), not counted below",
                w.seconds, w.ops, w.write_ok, w.errors
            );
        }
        let _ = writeln!(
            out,
            "\nduration    {:.2}s\nops         {}\nok          {}\nerrors      {}",
            self.duration_s, self.ops, self.ok, self.errors
        );
        for (kind, n) in &self.errors_by_kind {
            let _ = writeln!(out, "  {n:>9}  {kind}");
        }
        if self.hot_keys.is_some() {
            let _ = writeln!(out, "conflicts   {}", self.conflicts);
            let _ = writeln!(out, "refused     {}", self.refused);
        }
        let _ = writeln!(out, "redirects   {}", self.redirects);
        let _ = writeln!(out, "throughput  {:.1} ops/s", self.throughput_ops_s);
        let _ = writeln!(
            out,
            "\n{:<6} {:>10} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "op", "ok", "misses", "errors", "p50", "p90", "p99", "p99.9", "max"
        );
        let write_name = match self.workload.as_str() {
            "update" => "update",
            "transact" => "xfer",
            _ => "write",
        };
        for (name, s) in [("read", &self.read), (write_name, &self.write)] {
            if s.ops == 0 {
                continue;
            }
            let l = &s.latency_us;
            let _ = writeln!(
                out,
                "{:<6} {:>10} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
                name,
                s.ok,
                s.misses,
                s.errors,
                human_us(l.p50),
                human_us(l.p90),
                human_us(l.p99),
                human_us(l.p999),
                human_us(l.max)
            );
        }
        if let Some(c) = &self.check {
            let _ = writeln!(out, "\n{}", c.line());
        }
        if let Some(t) = &self.timeline {
            let _ = writeln!(
                out,
                "\n{:>7} {:>7} {:>10} {:>8} {:>10}",
                "from", "to", "ok", "errors", "ok/s"
            );
            for i in &t.intervals {
                let _ = writeln!(
                    out,
                    "{:>6.1}s {:>6.1}s {:>10} {:>8} {:>10.1}",
                    i.start_s, i.end_s, i.ok, i.errors, i.ok_per_s
                );
            }
        }
        out
    }
}

/// The error kind of an operation a driver cannot send ([`run`] refuses such runs
/// before they start).
const UNSUPPORTED: &str = "not supported by this API";

/// Phases of a run, as seen by the client tasks.
const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// What the client tasks share: the phase, the op budget, the write key counter and the
/// live counters for the progress bar. All atomics; nothing is locked per op.
struct Control {
    phase: AtomicU8,
    /// Ops claimed during the measurement (only checked with [`Stop::Ops`]).
    claimed: AtomicU64,
    /// Next sequential write key index.
    write_seq: AtomicU64,
    /// Ops finished during the measurement (for the progress bar).
    done: AtomicU64,
    /// Ops failed during the measurement (for the progress bar).
    failed: AtomicU64,
    op_limit: Option<u64>,
}

/// The per-task plan: what to send, how to pick keys.
#[derive(Clone, Copy)]
struct Plan {
    workload: Workload,
    read_percent: u8,
    sequential_writes: bool,
    keys: u64,
    key_width: usize,
    hot_keys: u64,
    hot_width: usize,
    /// Reads before updates are strong.
    strong: bool,
}

/// One client task's connection to the system under test.
enum Driver {
    Nosql(nosql::Worker),
    Etcd(etcd::Worker),
    Dynamodb(dynamodb::Worker),
}

impl Driver {
    async fn write(&mut self, key: &str) -> Outcome {
        match self {
            Driver::Nosql(w) => w.put(key).await,
            Driver::Etcd(w) => w.put(key).await,
            Driver::Dynamodb(w) => w.put(key).await,
        }
    }

    /// A read of `key`'s counter for an update; `consistent`: a strong read.
    async fn read_counter(
        &mut self,
        key: &str,
        consistent: bool,
    ) -> Result<conditional::Seen, String> {
        match self {
            Driver::Nosql(w) => w.read_counter(key, consistent).await,
            Driver::Dynamodb(w) => w.read_counter(key, consistent).await,
            Driver::Etcd(_) => Err(UNSUPPORTED.into()),
        }
    }

    async fn increment(&mut self, key: &str, seen: &conditional::Seen) -> Attempt {
        match self {
            Driver::Nosql(w) => w.increment(key, seen).await,
            Driver::Dynamodb(w) => w.increment(key, seen).await,
            Driver::Etcd(_) => Attempt::Failed(UNSUPPORTED.into()),
        }
    }

    async fn transfer(&mut self, from: &str, to: &str, amount: i64) -> Attempt {
        match self {
            Driver::Dynamodb(w) => w.transfer(from, to, amount).await,
            Driver::Nosql(_) | Driver::Etcd(_) => Attempt::Failed(UNSUPPORTED.into()),
        }
    }

    async fn put_number(&mut self, key: &str, n: i64) -> Outcome {
        match self {
            Driver::Nosql(w) => w.put_number(key, n).await,
            Driver::Dynamodb(w) => w.put_number(key, n).await,
            Driver::Etcd(_) => Outcome::Err(UNSUPPORTED.into()),
        }
    }

    async fn read(&mut self, key: &str) -> Outcome {
        match self {
            Driver::Nosql(w) => w.get(key).await,
            Driver::Etcd(w) => w.get(key).await,
            Driver::Dynamodb(w) => w.get(key).await,
        }
    }
}

/// Writes `key` + the index, zero-padded to `width`, into `buf` (reused: no allocation
/// once it has grown).
pub fn format_key(buf: &mut String, index: u64, width: usize) {
    buf.clear();
    let _ = write!(buf, "key{index:0width$}");
}

/// Digits needed for the largest index of a key space of `keys`, at least six.
pub fn key_width(keys: u64) -> usize {
    let largest = keys.saturating_sub(1);
    (largest.checked_ilog10().unwrap_or(0) as usize + 1).max(6)
}

/// A value of `size` printable bytes (a repeating alphabet, so it is not all one byte).
pub fn make_value(size: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..size).map(|i| ALPHABET[i % ALPHABET.len()] as char).collect()
}

/// Builds the drivers, one per client task (each with its own connections).
struct Drivers {
    cfg: BenchConfig,
    value: String,
    value_b64: Arc<str>,
}

impl Drivers {
    fn new(cfg: &BenchConfig) -> Drivers {
        let value = make_value(cfg.value_size);
        Drivers { value_b64: etcd::encode_value(value.as_bytes()).into(), value, cfg: cfg.clone() }
    }

    fn driver(&self, task: usize) -> Result<Driver, BenchError> {
        let first = task % self.cfg.targets.len();
        if self.cfg.api == Api::Dynamodb {
            return dynamodb::Worker::new(
                &self.cfg.targets,
                first,
                &self.cfg.table,
                &self.value,
                self.cfg.read_level == ReadLevel::Strong,
                self.cfg.check_crc,
            )
            .map(Driver::Dynamodb)
            .map_err(BenchError::Usage);
        }
        match self.cfg.system {
            System::Dynamodb => {
                Err(BenchError::Usage("--system dynamodb needs --api dynamodb".into()))
            }
            System::RaftNosql => nosql::Worker::new(
                &self.cfg.targets,
                self.cfg.read_level == ReadLevel::Strong,
                first,
                &self.cfg.table,
                &self.value,
            )
            .map(Driver::Nosql)
            .map_err(BenchError::Usage),
            System::Etcd => etcd::Worker::new(
                &self.cfg.targets,
                first,
                self.value_b64.clone(),
                self.cfg.read_level == ReadLevel::Eventual,
            )
            .map(Driver::Etcd)
            .map_err(BenchError::Usage),
        }
    }
}

/// Runs a benchmark and returns its report. Failing operations are counted, not fatal;
/// only a setup that cannot be done (or a preload where every write failed) is an error.
pub async fn run(cfg: &BenchConfig) -> Result<Report, BenchError> {
    if cfg.targets.is_empty() {
        return Err(BenchError::Usage("no target: pass --target HOST:PORT".into()));
    }
    if cfg.clients == 0 || cfg.keys == 0 {
        return Err(BenchError::Usage("--clients and --keys must be at least 1".into()));
    }
    match (cfg.system, cfg.api) {
        (System::Etcd, Api::Dynamodb) => {
            return Err(BenchError::Usage("etcd does not speak DynamoDB's protocol".into()))
        }
        (System::Dynamodb, Api::Native) => {
            return Err(BenchError::Usage("--system dynamodb speaks only --api dynamodb".into()))
        }
        (_, Api::Native) if cfg.check_crc => {
            return Err(BenchError::Usage("--check-crc needs --api dynamodb".into()))
        }
        _ => {}
    }
    if cfg.workload.is_conditional() {
        if cfg.system == System::Etcd {
            return Err(BenchError::Usage(format!(
                "--workload {} is for raft-nosql and DynamoDB endpoints; etcd runs write, \
                 read and mixed:R",
                cfg.workload
            )));
        }
        if cfg.workload == Workload::Transact && cfg.api == Api::Native {
            return Err(BenchError::Usage(
                "--workload transact needs --api dynamodb: raft-nosql's REST API has no \
                 multi-item transaction (TransactWriteItems)"
                    .into(),
            ));
        }
        let least = if cfg.workload == Workload::Transact { 2 } else { 1 };
        if cfg.hot_keys < least {
            return Err(BenchError::Usage(format!(
                "--workload {} needs --hot-keys {least} or more",
                cfg.workload
            )));
        }
    }
    raise_open_files_limit();
    let drivers = Drivers::new(cfg);

    // 1. Setup.
    if cfg.api == Api::Dynamodb {
        if let Driver::Dynamodb(mut w) = drivers.driver(0)? {
            w.prepare_table(&cfg.table, cfg.fresh).await.map_err(BenchError::Setup)?;
        }
    }
    let setup_client = match cfg.system {
        // The native client also tells when a preload has reached every node.
        System::RaftNosql if cfg.api == Api::Dynamodb => {
            Some(nosql::client(&cfg.targets, Consistency::Eventual).map_err(BenchError::Usage)?)
        }
        System::Dynamodb => None,
        System::RaftNosql => {
            let c =
                nosql::client(&cfg.targets, Consistency::Eventual).map_err(BenchError::Usage)?;
            nosql::prepare_table(&c, &cfg.table, cfg.fresh).await.map_err(BenchError::Setup)?;
            Some(c)
        }
        System::Etcd => {
            if cfg.fresh {
                if let Driver::Etcd(mut w) = drivers.driver(0)? {
                    w.delete_prefix("key").await.map_err(|e| {
                        BenchError::Setup(format!("cannot clear the etcd key range: {e}"))
                    })?;
                }
            }
            None
        }
    };

    // 2. Preload.
    let wants_preload = cfg.workload.read_percent() > 0 || cfg.workload == Workload::Transact;
    let preload = if cfg.preload && wants_preload {
        let p = preload(cfg, &drivers).await?;
        if let Some(c) = &setup_client {
            // DynamoDB answers carry no log index: what the most advanced node has
            // applied covers every acknowledged preload write.
            let index = match p.1 {
                Some(i) => Some(i),
                None => nosql::highest_applied(c).await,
            };
            if let Some(index) = index {
                nosql::wait_applied(c, index).await;
            }
        }
        Some(p.0)
    } else {
        None
    };

    // What the conditional workloads must preserve, as it stands before they run.
    let before = if cfg.workload.is_conditional() {
        Some(tally(cfg, &drivers).await.map_err(BenchError::Setup)?)
    } else {
        None
    };

    // 3 and 4. Warm-up and measurement.
    let ctl = Arc::new(Control {
        phase: AtomicU8::new(if cfg.warmup.is_some() { WARMUP } else { MEASURE }),
        claimed: AtomicU64::new(0),
        write_seq: AtomicU64::new(0),
        done: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        op_limit: match cfg.stop {
            Stop::Ops(n) => Some(n),
            Stop::After(_) => None,
        },
    });
    let plan = Plan {
        workload: cfg.workload,
        read_percent: cfg.workload.read_percent(),
        sequential_writes: cfg.workload == Workload::Write,
        keys: cfg.keys,
        key_width: key_width(cfg.keys),
        hot_keys: cfg.hot_keys,
        hot_width: key_width(cfg.hot_keys),
        strong: cfg.read_level == ReadLevel::Strong,
    };
    let mut tasks = Vec::with_capacity(cfg.clients);
    for t in 0..cfg.clients {
        let driver = drivers.driver(t)?;
        let ctl = ctl.clone();
        let seed = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(t as u64 + 1);
        tasks.push(tokio::spawn(client_task(driver, ctl, plan, seed)));
    }

    let started = Instant::now();
    let mut warmup_len = Duration::ZERO;
    if let Some(w) = cfg.warmup {
        let bar = bar(cfg.progress, w.as_millis() as u64, "warm-up");
        while started.elapsed() < w {
            tokio::time::sleep(Duration::from_millis(100).min(w - started.elapsed().min(w))).await;
            if let Some(b) = &bar {
                b.set_position(started.elapsed().as_millis() as u64);
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        warmup_len = started.elapsed();
        ctl.phase.store(MEASURE, Ordering::SeqCst);
    }
    let measure_start = Instant::now();
    let started_unix_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let ticker = spawn_ticker(cfg, ctl.clone(), measure_start);
    let sampler = cfg.interval.map(|i| spawn_sampler(i, ctl.clone(), measure_start));

    let mut warm = Stats::default();
    let mut total = Stats::default();
    let mut handles = tasks.into_iter();
    for h in handles.by_ref() {
        match h.await {
            Ok((w, m)) => {
                warm.merge(&w);
                total.merge(&m);
            }
            Err(e) => return Err(BenchError::Setup(format!("a client task failed: {e}"))),
        }
    }
    let elapsed = measure_start.elapsed();
    ctl.phase.store(STOP, Ordering::SeqCst);
    if let Some(t) = ticker {
        let _ = t.await;
    }
    let timeline = match (sampler, cfg.interval) {
        (Some(s), Some(interval)) => {
            let mut t = s.await.unwrap_or_default();
            // Every task has finished: the counters are final.
            t.sample(elapsed, ctl.done.load(Ordering::SeqCst), ctl.failed.load(Ordering::SeqCst));
            Some(t.summary(started_unix_s, interval))
        }
        _ => None,
    };

    // 5. Check.
    let check = match before {
        Some(before) => {
            let after = tally(cfg, &drivers).await.map_err(BenchError::Setup)?;
            Some(if cfg.workload == Workload::Transact {
                CheckSummary::transfers(before, after)
            } else {
                let acknowledged = warm.write.ok + total.write.ok;
                let failed = warm.write.errors + total.write.errors;
                CheckSummary::updates(before, after, acknowledged, failed)
            })
        }
        None => None,
    };

    let secs = elapsed.as_secs_f64().max(1e-9);
    Ok(Report {
        system: cfg.system.name(),
        api: cfg.api.name(),
        workload: cfg.workload.to_string(),
        read_percent: cfg.workload.read_percent(),
        clients: cfg.clients,
        consistency: cfg.read_level.name(),
        targets: cfg.targets.clone(),
        table: (cfg.system != System::Etcd).then(|| cfg.table.clone()),
        value_size: cfg.value_size,
        keys: cfg.keys,
        hot_keys: cfg.workload.is_conditional().then_some(cfg.hot_keys),
        duration_s: (secs * 1000.0).round() / 1000.0,
        ops: total.ops(),
        ok: total.ok(),
        errors: total.error_count(),
        conflicts: total.read.conflicts + total.write.conflicts,
        refused: total.read.refused + total.write.refused,
        errors_by_kind: total.errors.clone(),
        redirects: total.redirects,
        throughput_ops_s: (total.ok() as f64 / secs * 10.0).round() / 10.0,
        latency_us: LatencySummary::of(&total.all_latency()),
        read: total.read.summary(),
        write: total.write.summary(),
        warmup: cfg.warmup.map(|_| WarmupSummary {
            seconds: (warmup_len.as_secs_f64() * 1000.0).round() / 1000.0,
            ops: warm.ops(),
            write_ok: warm.write.ok,
            errors: warm.error_count(),
        }),
        preload,
        check,
        timeline,
    })
}

/// Reads `n` of every hot key with strong reads (up to 8 tasks at once) and adds them
/// up.
async fn tally(cfg: &BenchConfig, drivers: &Drivers) -> Result<Tally, String> {
    let tasks = cfg.hot_keys.clamp(1, 8);
    let width = key_width(cfg.hot_keys);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let mut driver = drivers.driver(t as usize).map_err(|e| e.to_string())?;
        let hot = cfg.hot_keys;
        handles.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut key = String::new();
            for i in (t..hot).step_by(tasks as usize) {
                format_key(&mut key, i, width);
                let seen = driver
                    .read_counter(&key, true)
                    .await
                    .map_err(|e| format!("cannot read hot key {key} for the check: {e}"))?;
                tally.add(seen.n);
            }
            Ok::<_, String>(tally)
        }));
    }
    let mut total = Tally::default();
    for h in handles {
        total.merge(h.await.map_err(|e| format!("a check task failed: {e}"))??);
    }
    Ok(total)
}

/// One `update`: read the counter, write it back incremented if unchanged, again while
/// the write is refused (at most [`conditional::MAX_UPDATE_ATTEMPTS`] times). Returns
/// the outcome and the number of refused writes.
async fn update(driver: &mut Driver, key: &str, strong: bool) -> (Outcome, u64) {
    let mut conflicts = 0;
    for _ in 0..conditional::MAX_UPDATE_ATTEMPTS {
        let seen = match driver.read_counter(key, strong).await {
            Ok(s) => s,
            Err(kind) => return (Outcome::Err(kind), conflicts),
        };
        match driver.increment(key, &seen).await {
            Attempt::Done { redirected } => {
                return (Outcome::Ok { found: true, redirected }, conflicts)
            }
            Attempt::Conflict => conflicts += 1,
            Attempt::Failed(kind) => return (Outcome::Err(kind), conflicts),
        }
    }
    (Outcome::Refused, conflicts)
}

/// One `transact` operation: a transfer of `amount` from `from` to `to`. A cancelled
/// transaction is given up (one conflict).
async fn transfer(driver: &mut Driver, from: &str, to: &str, amount: i64) -> (Outcome, u64) {
    match driver.transfer(from, to, amount).await {
        Attempt::Done { redirected } => (Outcome::Ok { found: true, redirected }, 0),
        Attempt::Conflict => (Outcome::Refused, 1),
        Attempt::Failed(kind) => (Outcome::Err(kind), 0),
    }
}

/// One client: a closed loop of operations until the phase says stop or the op budget
/// is spent. Returns the warm-up stats and the measurement stats.
async fn client_task(
    mut driver: Driver,
    ctl: Arc<Control>,
    plan: Plan,
    seed: u64,
) -> (Stats, Stats) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut warm = Stats::default();
    let mut measured = Stats::default();
    let mut key = String::with_capacity(plan.key_width + 3);
    let mut other = String::with_capacity(plan.hot_width + 3);
    loop {
        let phase = ctl.phase.load(Ordering::Relaxed);
        if phase == STOP {
            break;
        }
        if phase == MEASURE {
            if let Some(limit) = ctl.op_limit {
                if ctl.claimed.fetch_add(1, Ordering::Relaxed) >= limit {
                    break;
                }
            }
        }
        let is_read = plan.read_percent > 0 && rng.u8(0..100) < plan.read_percent;
        let (kind, outcome, conflicts, micros);
        if plan.workload.is_conditional() {
            kind = OpKind::Write;
            format_key(&mut key, rng.u64(0..plan.hot_keys), plan.hot_width);
            let start = Instant::now();
            (outcome, conflicts) = if plan.workload == Workload::Update {
                update(&mut driver, &key, plan.strong).await
            } else {
                // Two distinct accounts: the second is drawn from the others.
                let from = rng.u64(0..plan.hot_keys);
                let to = (from + rng.u64(1..plan.hot_keys)) % plan.hot_keys;
                format_key(&mut key, from, plan.hot_width);
                format_key(&mut other, to, plan.hot_width);
                transfer(&mut driver, &key, &other, rng.i64(1..=MAX_TRANSFER)).await
            };
            micros = start.elapsed().as_micros() as u64;
        } else {
            let index = if !is_read && plan.sequential_writes {
                ctl.write_seq.fetch_add(1, Ordering::Relaxed) % plan.keys
            } else {
                rng.u64(0..plan.keys)
            };
            format_key(&mut key, index, plan.key_width);
            let start = Instant::now();
            (kind, outcome) = if is_read {
                (OpKind::Read, driver.read(&key).await)
            } else {
                (OpKind::Write, driver.write(&key).await)
            };
            conflicts = 0;
            micros = start.elapsed().as_micros() as u64;
        }
        if phase == MEASURE {
            ctl.done.fetch_add(1, Ordering::Relaxed);
            if matches!(outcome, Outcome::Err(_)) {
                ctl.failed.fetch_add(1, Ordering::Relaxed);
            }
            measured.record(kind, outcome, micros);
            measured.conflicts(kind, conflicts);
        } else {
            warm.record(kind, outcome, micros);
            warm.conflicts(kind, conflicts);
        }
    }
    (warm, measured)
}

/// Writes every key of the key space once, with `clients` tasks (at least 8); for the
/// `transact` workload, sets every account of the hot key set to
/// [`INITIAL_BALANCE`] instead. Returns the summary and, for raft-nosql, the highest log
/// index written.
async fn preload(
    cfg: &BenchConfig,
    drivers: &Drivers,
) -> Result<(PreloadSummary, Option<u64>), BenchError> {
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let accounts = cfg.workload == Workload::Transact;
    let count = if accounts { cfg.hot_keys } else { cfg.keys };
    let width = key_width(count);
    let mut tasks = Vec::new();
    for t in 0..cfg.clients.clamp(8, 64) {
        let mut driver = drivers.driver(t)?;
        let (next, done, keys) = (next.clone(), done.clone(), count);
        tasks.push(tokio::spawn(async move {
            let mut stats = Stats::default();
            let mut key = String::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= keys {
                    break;
                }
                format_key(&mut key, i, width);
                let outcome = if accounts {
                    driver.put_number(&key, INITIAL_BALANCE).await
                } else {
                    driver.write(&key).await
                };
                stats.record(OpKind::Write, outcome, 1);
                done.fetch_add(1, Ordering::Relaxed);
            }
            let index = match &driver {
                Driver::Nosql(w) => w.last_written_index(),
                Driver::Etcd(_) | Driver::Dynamodb(_) => None,
            };
            (stats, index)
        }));
    }
    let bar = bar(cfg.progress, count, "preload");
    let mut stats = Stats::default();
    let mut index = None;
    for h in tasks {
        while !h.is_finished() {
            if let Some(b) = &bar {
                b.set_position(done.load(Ordering::Relaxed));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (s, i) = h.await.map_err(|e| BenchError::Setup(format!("preload task failed: {e}")))?;
        stats.merge(&s);
        index = index.max(i);
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if stats.write.ok == 0 {
        let why = stats.top_error().map_or("no write finished".to_string(), |(k, n)| {
            format!("most common error: {k} ({n} times)")
        });
        return Err(BenchError::Setup(format!("preload failed: every write failed; {why}")));
    }
    let summary = PreloadSummary {
        keys: count,
        ok: stats.write.ok,
        errors: stats.write.errors,
        seconds: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    };
    Ok((summary, index))
}

/// A progress bar on stderr of `len` steps, or None if progress is off.
fn bar(show: bool, len: u64, what: &str) -> Option<ProgressBar> {
    if !show {
        return None;
    }
    let b = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{prefix:>8} [{bar:30}] {percent:>3}% {msg}")
        .expect("static template")
        .progress_chars("=> ");
    b.set_style(style);
    b.set_prefix(what.to_string());
    Some(b)
}

/// Redraws the measurement's progress bar a few times a second until the phase is STOP:
/// elapsed time (or ops done) against the goal, live throughput and errors.
fn spawn_ticker(
    cfg: &BenchConfig,
    ctl: Arc<Control>,
    start: Instant,
) -> Option<tokio::task::JoinHandle<()>> {
    let stop = cfg.stop;
    let (len, show) = match stop {
        Stop::After(d) => (d.as_millis() as u64, cfg.progress),
        Stop::Ops(n) => (n, cfg.progress),
    };
    let b = bar(show, len, "bench");
    // Duration mode needs a timer even without a bar: it is what ends the measurement.
    if b.is_none() && matches!(stop, Stop::Ops(_)) {
        return None;
    }
    Some(tokio::spawn(async move {
        loop {
            let elapsed = start.elapsed();
            let done = ctl.done.load(Ordering::Relaxed);
            if let Some(b) = &b {
                let pos = match stop {
                    Stop::After(_) => elapsed.as_millis() as u64,
                    Stop::Ops(_) => done,
                };
                b.set_position(pos.min(len));
                let rate = done as f64 / elapsed.as_secs_f64().max(1e-3);
                let failed = ctl.failed.load(Ordering::Relaxed);
                b.set_message(format!("{done} ops, {rate:.0} ops/s, {failed} errors"));
            }
            if let Stop::After(d) = stop {
                if elapsed >= d {
                    ctl.phase.store(STOP, Ordering::SeqCst);
                }
            }
            if ctl.phase.load(Ordering::SeqCst) == STOP {
                break;
            }
            let tick = match stop {
                Stop::After(d) => d.saturating_sub(elapsed).min(Duration::from_millis(200)),
                Stop::Ops(_) => Duration::from_millis(200),
            };
            tokio::time::sleep(tick.max(Duration::from_millis(1))).await;
        }
        if let Some(b) = b {
            b.finish_and_clear();
        }
    }))
}

/// Reads the live counters at every `interval` boundary of the measurement until the
/// phase is STOP, and returns the intervals so far (the caller adds the last, partial one).
fn spawn_sampler(
    interval: Duration,
    ctl: Arc<Control>,
    start: Instant,
) -> tokio::task::JoinHandle<Timeline> {
    tokio::spawn(async move {
        let mut timeline = Timeline::new();
        let mut next = start + interval;
        loop {
            // Wake at the boundary, or sooner to notice the end of the run.
            let now = Instant::now();
            if now < next {
                tokio::time::sleep((next - now).min(Duration::from_millis(50))).await;
            }
            if ctl.phase.load(Ordering::SeqCst) == STOP {
                return timeline;
            }
            if Instant::now() >= next {
                let (done, failed) =
                    (ctl.done.load(Ordering::SeqCst), ctl.failed.load(Ordering::SeqCst));
                timeline.sample(start.elapsed(), done, failed);
                next += interval;
            }
        }
    })
}

/// Many clients mean many sockets: lift the soft limit on open files to the hard one.
fn raise_open_files_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Whether stderr is a terminal (progress bars are drawn only then).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_parse_and_print_back() {
        for (text, w) in [
            ("write", Workload::Write),
            ("read", Workload::Read),
            ("mixed:90", Workload::Mixed(90)),
            ("mixed:0", Workload::Mixed(0)),
            ("mixed:100", Workload::Mixed(100)),
            ("update", Workload::Update),
            ("transact", Workload::Transact),
        ] {
            assert_eq!(text.parse::<Workload>().unwrap(), w);
            assert_eq!(w.to_string(), text);
        }
        assert_eq!(Workload::Mixed(90).read_percent(), 90);
        assert!(Workload::Update.is_conditional() && Workload::Transact.is_conditional());
        assert!(!Workload::Write.is_conditional() && Workload::Update.read_percent() == 0);
        for bad in ["nonsense", "mixed", "mixed:", "mixed:101", "mixed:-1", "mixed:x", ""] {
            let err = bad.parse::<Workload>().unwrap_err();
            assert!(err.contains("expected write, read, mixed:R"), "{bad}: {err}");
        }
    }

    #[test]
    fn keys_are_zero_padded_to_the_key_space() {
        let mut buf = String::new();
        format_key(&mut buf, 123, key_width(1000));
        assert_eq!(buf, "key000123");
        format_key(&mut buf, 999_999, key_width(1_000_000));
        assert_eq!(buf, "key999999");
        format_key(&mut buf, 5, key_width(10_000_000));
        assert_eq!(buf, "key0000005");
        assert_eq!((key_width(1), key_width(1_000_001)), (6, 7));
    }

    #[test]
    fn values_have_the_requested_size() {
        assert_eq!(make_value(0), "");
        assert_eq!(make_value(40).len(), 40);
        assert!(make_value(100).starts_with("abc"));
    }
}
