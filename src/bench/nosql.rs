//! Driving a raft-nosql cluster: the benchmark table, and one worker per client task.
//!
//! Setup (the table, waiting for the nodes) goes through the general [`Client`]. The
//! operations themselves go through [`super::http`]: each worker keeps one connection
//! per node and sends requests built from pre-encoded paths, with the same rules as
//! the general client:
//!
//! - **Writes** (`PUT /tables/{t}/items`, body `{"k": key, "v": value}`) go to the
//!   worker's cached leader, else to the targets in turn. A 307 is followed to its
//!   `Location` (that node becomes the cached leader) and counted as a redirect. A 503
//!   or a connection that cannot be opened sends the write to the next node; after a
//!   round without success the worker backs off (50 ms doubling to 1 s, capped by
//!   `Retry-After`) and tries again, for at most 10 s. A timeout or a connection that
//!   broke after the request left is not retried: the write may have been applied. A
//!   write is acknowledged exactly when a node answers 2xx (200).
//! - **Reads** (`GET /tables/{t}/items?pk=key`, plus `&consistency=strong`) go to the
//!   targets round-robin and are answered by whichever node receives them, for `strong`
//!   too (after a read index from the leader). A redirect, should one come, is followed
//!   and counted. 200 is a hit, 404 `item_not_found` a miss; everything else is an
//!   error. A 200 body is not decoded at all.
//! - **Updates** (the `update` workload, [`super::conditional`]): a read of the item
//!   from the cached leader, decoded for its `version` and `n`, then the conditional
//!   write `PATCH /tables/{t}/items?pk=key&if_version=V` on the write path above; a 412
//!   `condition_failed` is a conflict.
//!
//! Errors are counted with the kinds of the general client ([`error_kind`]).
//!
//! The benchmark table has partition key `k` (type S) and items `{"k": key, "v": value}`.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hyper::header::{LOCATION, RETRY_AFTER};
use hyper::{Method, StatusCode, Uri};

use super::conditional::{Attempt, Seen, COUNTER_ATTR};
use super::http::{self, Answer, Conns, Transport};
use super::stats::Outcome;
use crate::client::{Client, ClientError, Consistency, WriteRounds};
use crate::model::{KeyAttr, KeyType, TableSchema};

/// Name of the benchmark table's partition key attribute.
pub const KEY_ATTR: &str = "k";
/// Name of the attribute that holds the value.
pub const VALUE_ATTR: &str = "v";

/// How long setup waits for every target to see the table, or a preload's last write.
const CATCH_UP_DEADLINE: Duration = Duration::from_secs(15);
/// Poll interval while waiting for that (bounded by the deadline).
const POLL: Duration = Duration::from_millis(50);

/// How long a write keeps trying other nodes (503s, refused connections), as the
/// general client.
const WRITE_DEADLINE: Duration = crate::client::DEFAULT_WRITE_DEADLINE;
/// Most 307s followed for one request, as the general client.
const MAX_REDIRECTS: usize = crate::client::DEFAULT_MAX_REDIRECTS;

/// The kind of a client error, for the error counts. Kinds are few and stable.
pub fn error_kind(e: &ClientError) -> String {
    match e {
        ClientError::Api { status, code, .. } => format!("{code} (HTTP {status})"),
        ClientError::Unreachable { reason, .. } => format!("unreachable: {reason}"),
        ClientError::Timeout { .. } => "timeout".into(),
        ClientError::Decode { .. } => "bad answer".into(),
        ClientError::Redirect(_) => "redirect failed".into(),
        ClientError::InvalidAddress { .. } => "invalid address".into(),
        ClientError::Tls(_) => "tls".into(),
    }
}

/// Builds a client of `targets` with the given read consistency.
pub fn client(targets: &[String], consistency: Consistency) -> Result<Client, String> {
    Client::builder(targets.iter().cloned())
        .consistency(consistency)
        .build()
        .map_err(|e| format!("--target: {e}"))
}

/// Makes sure `table` exists with partition key `k` (S), deleting it first if `fresh`,
/// and waits until every target knows it (so the first reads on followers do not fail
/// with `table_not_found`).
pub async fn prepare_table(client: &Client, table: &str, fresh: bool) -> Result<(), String> {
    if fresh {
        match client.delete_table(table).await {
            Ok(_) => {}
            Err(e) if e.code() == Some("table_not_found") => {}
            Err(e) => return Err(format!("cannot delete table {table}: {e}")),
        }
    }
    let schema = TableSchema {
        table_name: table.to_string(),
        partition_key: KeyAttr { name: KEY_ATTR.into(), key_type: KeyType::S },
        sort_key: None,
    };
    // The write path finds the leader, so its answer is authoritative.
    match client.create_table(&schema).await {
        Ok(_) => {}
        Err(e) if e.code() == Some("table_exists") => {
            let d = client
                .describe_table(table)
                .await
                .map_err(|e| format!("cannot describe table {table}: {e}"))?
                .value;
            if d.partition_key != schema.partition_key || d.sort_key.is_some() {
                return Err(format!(
                    "table {table} exists with another key schema (partition key {:?}); \
                     pick another --table or pass --fresh",
                    d.partition_key.name
                ));
            }
        }
        Err(e) => return Err(format!("cannot create table {table}: {e}")),
    }
    let deadline = Instant::now() + CATCH_UP_DEADLINE;
    for node in client.nodes() {
        let on = client.with_target(node).map_err(|e| e.to_string())?;
        loop {
            match on.describe_table(table).await {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("node {node} does not see table {table}: {e}"));
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }
    Ok(())
}

/// Waits (bounded) until every target has applied log index `index`, so reads after a
/// preload find what was written. Gives up quietly at the deadline: stale reads are then
/// counted as misses, which the report shows.
pub async fn wait_applied(client: &Client, index: u64) {
    let deadline = Instant::now() + CATCH_UP_DEADLINE;
    for node in client.nodes() {
        let Ok(on) = client.with_target(node) else { continue };
        while Instant::now() < deadline {
            match on.status().await {
                Ok(s) if s.value.applied.unwrap_or(0) >= index => break,
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }
}

/// The highest log index any target has applied, if any target answers.
pub async fn highest_applied(client: &Client) -> Option<u64> {
    let mut highest = None;
    for node in client.nodes() {
        let Ok(on) = client.with_target(node) else { continue };
        if let Ok(s) = on.status().await {
            highest = highest.max(s.value.applied);
        }
    }
    highest
}

/// Turns an error answer (`{"error": {"code", "message"}}`) into the general client's
/// [`ClientError::Api`]; an answer without that body gets the code `http_<status>`.
pub fn api_error(status: StatusCode, body: &[u8], addr: &str) -> ClientError {
    #[derive(serde::Deserialize)]
    struct Body<'a> {
        #[serde(borrow)]
        error: Detail<'a>,
    }
    #[derive(serde::Deserialize)]
    struct Detail<'a> {
        #[serde(borrow)]
        code: std::borrow::Cow<'a, str>,
        #[serde(borrow, default)]
        message: std::borrow::Cow<'a, str>,
    }
    let (code, message) = match serde_json::from_slice::<Body>(body) {
        Ok(b) => (b.error.code.into_owned(), b.error.message.into_owned()),
        Err(_) => (
            format!("http_{}", status.as_u16()),
            status.canonical_reason().unwrap_or("error").to_string(),
        ),
    };
    ClientError::Api { status: status.as_u16(), code, message, addr: addr.to_string() }
}

/// What a read's final answer means: 2xx = found, 404 `item_not_found` = a miss, anything
/// else an error of its kind. `redirected` says whether a 307 was followed to get it.
pub fn read_outcome(status: StatusCode, body: &[u8], redirected: bool) -> Outcome {
    if status.is_success() {
        return Outcome::Ok { found: true, redirected };
    }
    // Only a 404 can be a miss; other error bodies are decoded for their kind alone.
    let e = api_error(status, body, "");
    if status == StatusCode::NOT_FOUND && e.code() == Some("item_not_found") {
        Outcome::Ok { found: false, redirected }
    } else {
        Outcome::Err(error_kind(&e))
    }
}

/// The version and `n` of a read's 200 answer (`{"item": {..}, "version": V}`).
pub fn counter_of(body: &[u8]) -> Result<Seen, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("bad answer: {e}"))?;
    let version = v["version"].as_u64().ok_or("bad answer: no version")?;
    let n = match v["item"].get(COUNTER_ATTR) {
        None => None,
        Some(n) => Some(n.as_i64().ok_or_else(|| format!("bad answer: n is {n}"))?),
    };
    Ok(Seen { version, n })
}

/// The general client's error for a transport failure at `addr`, and whether the
/// request provably never left (so a write may go elsewhere).
fn transport_error(t: Transport, addr: &str, timeout: Duration) -> (ClientError, bool) {
    match t {
        Transport::Connect(reason) => {
            (ClientError::Unreachable { addr: addr.into(), reason }, true)
        }
        Transport::Timeout => {
            (ClientError::Timeout { after: timeout, last: format!("no answer from {addr}") }, false)
        }
        Transport::Broken(reason) => {
            (ClientError::Unreachable { addr: addr.into(), reason }, false)
        }
    }
}

/// A final answer (not a 307), from the node of `slot`.
struct Reply {
    answer: Answer,
    slot: usize,
    redirected: bool,
}

/// Why [`Worker::follow`] failed, and whether retrying elsewhere is safe.
struct Failure {
    error: ClientError,
    /// The node the failure happened at.
    slot: usize,
    /// Some node answered over HTTP along the way.
    answered: bool,
    /// The request provably had no effect.
    retryable: bool,
}

/// One benchmark client of a raft-nosql cluster: its own connections, its own leader
/// cache.
pub struct Worker {
    conns: Conns,
    /// Connection slots of the targets, as given (reads go to each in turn).
    targets: Vec<usize>,
    /// The same without duplicates, in order: where writes go without a leader.
    write_order: Vec<usize>,
    /// Where the next read goes (index into `targets`).
    next: usize,
    /// The node believed to lead: the last redirect's target or the last node that
    /// acknowledged a write.
    leader: Option<usize>,
    /// `/tables/{t}/items`: every write's path.
    put_uri: Uri,
    /// `/tables/{t}/items?pk=`: a read's path and query up to the key.
    read_prefix: Bytes,
    /// What follows the key in a read's query (`&consistency=strong` or nothing).
    read_suffix: &'static [u8],
    /// The start of every write's body, up to the key: `{"k":"`.
    body_prefix: Bytes,
    /// The JSON value attribute, encoded once: `","v":"...value..."}`.
    body_suffix: Bytes,
    /// Reused buffers for read paths and write bodies.
    uri_buf: BytesMut,
    body_buf: BytesMut,
    /// Highest log index (`x-raft-index`) of a write this worker made, 0 before any.
    written: u64,
}

impl Worker {
    /// A worker for `targets` (`host:port`), reading from them in turn starting at
    /// target `first`; `strong` reads are linearizable. `value` is the benchmark value.
    pub fn new(
        targets: &[String],
        strong: bool,
        first: usize,
        table: &str,
        value: &str,
    ) -> Result<Worker, String> {
        let mut conns = Conns::new();
        let mut slots = Vec::with_capacity(targets.len());
        for t in targets {
            let addr = http::normalize_addr(t, None).map_err(|e| format!("--target: {e}"))?;
            slots.push(conns.slot(&addr).map_err(|e| format!("--target: {e}"))?);
        }
        if slots.is_empty() {
            return Err("--target: at least one node address is needed".into());
        }
        let mut write_order = slots.clone();
        let mut seen = Vec::new();
        write_order.retain(|s| {
            let new = !seen.contains(s);
            seen.push(*s);
            new
        });
        let mut path = BytesMut::new();
        path.extend_from_slice(b"/tables/");
        http::push_encoded(&mut path, table);
        path.extend_from_slice(b"/items");
        let put_uri = http::take_uri(&mut path.clone())?;
        path.extend_from_slice(b"?pk=");
        let mut body_suffix = BytesMut::new();
        body_suffix.extend_from_slice(format!("\",\"{VALUE_ATTR}\":\"").as_bytes());
        http::push_json_str(&mut body_suffix, value);
        body_suffix.extend_from_slice(b"\"}");
        Ok(Worker {
            conns,
            next: first % slots.len(),
            targets: slots,
            write_order,
            leader: None,
            put_uri,
            read_prefix: path.freeze(),
            read_suffix: if strong { b"&consistency=strong" } else { b"" },
            body_prefix: Bytes::from(format!("{{\"{KEY_ATTR}\":\"")),
            body_suffix: body_suffix.freeze(),
            uri_buf: BytesMut::new(),
            body_buf: BytesMut::new(),
            written: 0,
        })
    }

    /// The highest log index this worker has written, if it wrote anything.
    pub fn last_written_index(&self) -> Option<u64> {
        Some(self.written).filter(|&i| i > 0)
    }

    /// Writes the benchmark value under `key`. Ok means HTTP 200: the write is committed.
    pub async fn put(&mut self, key: &str) -> Outcome {
        self.body_buf.reserve(self.body_prefix.len() + key.len() + self.body_suffix.len());
        self.body_buf.extend_from_slice(&self.body_prefix);
        http::push_json_str(&mut self.body_buf, key);
        self.body_buf.extend_from_slice(&self.body_suffix);
        let body = self.body_buf.split().freeze();
        match self.write(&Method::PUT, self.put_uri.clone(), &body).await {
            Ok(r) if r.answer.status.is_success() => {
                Outcome::Ok { found: true, redirected: r.redirected }
            }
            Ok(r) => {
                let e = api_error(r.answer.status, &r.answer.body, self.conns.addr(r.slot));
                Outcome::Err(error_kind(&e))
            }
            Err(e) => Outcome::Err(error_kind(&e)),
        }
    }

    /// Reads `key` from the next target in turn. A missing item is a miss, not an error.
    pub async fn get(&mut self, key: &str) -> Outcome {
        let slot = self.targets[self.next];
        self.next = (self.next + 1) % self.targets.len();
        self.uri_buf.reserve(self.read_prefix.len() + key.len() * 3 + self.read_suffix.len());
        self.uri_buf.extend_from_slice(&self.read_prefix);
        http::push_encoded(&mut self.uri_buf, key);
        self.uri_buf.extend_from_slice(self.read_suffix);
        let uri = match http::take_uri(&mut self.uri_buf) {
            Ok(u) => u,
            Err(_) => return Outcome::Err("invalid address".into()),
        };
        match self.follow(slot, &Method::GET, uri, None, false, http::REQUEST_TIMEOUT).await {
            Ok(r) => read_outcome(r.answer.status, &r.answer.body, r.redirected),
            Err(f) => Outcome::Err(error_kind(&f.error)),
        }
    }

    /// Reads `key` for an update, from the cached leader (else the next target): its
    /// version and its `n`. `consistent`: a strong read.
    pub async fn read_counter(&mut self, key: &str, consistent: bool) -> Result<Seen, String> {
        let slot = match self.leader {
            Some(l) => l,
            None => {
                let s = self.targets[self.next];
                self.next = (self.next + 1) % self.targets.len();
                s
            }
        };
        self.uri_buf.extend_from_slice(&self.read_prefix);
        http::push_encoded(&mut self.uri_buf, key);
        if consistent {
            self.uri_buf.extend_from_slice(b"&consistency=strong");
        }
        let uri = http::take_uri(&mut self.uri_buf)?;
        let r = self
            .follow(slot, &Method::GET, uri, None, true, http::REQUEST_TIMEOUT)
            .await
            .map_err(|f| error_kind(&f.error))?;
        match read_outcome(r.answer.status, &r.answer.body, r.redirected) {
            Outcome::Ok { found: true, .. } => counter_of(&r.answer.body),
            Outcome::Ok { found: false, .. } => Ok(Seen::default()),
            Outcome::Err(kind) => Err(kind),
            Outcome::Refused => unreachable!("a read is never refused"),
        }
    }

    /// The conditional write of an update: `PATCH ?pk=key&if_version=V` with
    /// `SET n = n + :one` (`SET n = :one` when the item had no `n`; version 0 when there
    /// was no item). A 412 is a conflict.
    pub async fn increment(&mut self, key: &str, seen: &Seen) -> Attempt {
        self.uri_buf.extend_from_slice(&self.read_prefix);
        http::push_encoded(&mut self.uri_buf, key);
        self.uri_buf.extend_from_slice(format!("&if_version={}", seen.version).as_bytes());
        let uri = match http::take_uri(&mut self.uri_buf) {
            Ok(u) => u,
            Err(_) => return Attempt::Failed("invalid address".into()),
        };
        let update = match seen.n {
            Some(_) => "SET n = n + :one",
            None => "SET n = :one",
        };
        let body = Bytes::from(format!(r#"{{"update":"{update}","values":{{":one":1}}}}"#));
        match self.write(&Method::PATCH, uri, &body).await {
            Ok(r) if r.answer.status.is_success() => Attempt::Done { redirected: r.redirected },
            Ok(r) if r.answer.status == StatusCode::PRECONDITION_FAILED => Attempt::Conflict,
            Ok(r) => Attempt::Failed(error_kind(&api_error(
                r.answer.status,
                &r.answer.body,
                self.conns.addr(r.slot),
            ))),
            Err(e) => Attempt::Failed(error_kind(&e)),
        }
    }

    /// Writes the item `{"k": key, "n": n}`.
    pub async fn put_number(&mut self, key: &str, n: i64) -> Outcome {
        self.body_buf.extend_from_slice(&self.body_prefix);
        http::push_json_str(&mut self.body_buf, key);
        self.body_buf.extend_from_slice(format!("\",\"{COUNTER_ATTR}\":{n}}}").as_bytes());
        let body = self.body_buf.split().freeze();
        match self.write(&Method::PUT, self.put_uri.clone(), &body).await {
            Ok(r) if r.answer.status.is_success() => {
                Outcome::Ok { found: true, redirected: r.redirected }
            }
            Ok(r) => Outcome::Err(error_kind(&api_error(
                r.answer.status,
                &r.answer.body,
                self.conns.addr(r.slot),
            ))),
            Err(e) => Outcome::Err(error_kind(&e)),
        }
    }

    /// A write (`method` `uri` with `body`): leader first, then every other target, in
    /// rounds with backoff, until an answer other than 503 arrives or the deadline passes.
    async fn write(
        &mut self,
        method: &Method,
        uri: Uri,
        body: &Bytes,
    ) -> Result<Reply, ClientError> {
        let mut rounds = WriteRounds::new(WRITE_DEADLINE);
        loop {
            // The leader as it was when the round began, then the rest.
            let leader = self.leader;
            let rest = self.write_order.len();
            for c in 0..rest + usize::from(leader.is_some()) {
                let slot = match leader {
                    Some(l) if c == 0 => l,
                    Some(l) if self.write_order[c - 1] == l => continue,
                    Some(_) => self.write_order[c - 1],
                    None => self.write_order[c],
                };
                let Some(timeout) = rounds.attempt_timeout(http::REQUEST_TIMEOUT) else {
                    break;
                };
                match self.follow(slot, method, uri.clone(), Some(body), false, timeout).await {
                    Ok(r) if r.answer.status == StatusCode::SERVICE_UNAVAILABLE => {
                        self.forget_leader(r.slot);
                        let error =
                            api_error(r.answer.status, &r.answer.body, self.conns.addr(r.slot));
                        rounds.unavailable(error, r.answer.header_u64(RETRY_AFTER.as_str()));
                    }
                    Ok(r) => {
                        if r.answer.status.is_success() {
                            self.leader = Some(r.slot);
                            if let Some(i) = r.answer.header_u64("x-raft-index") {
                                self.written = self.written.max(i);
                            }
                        }
                        return Ok(r);
                    }
                    Err(f) if f.retryable => {
                        if matches!(f.error, ClientError::Unreachable { .. }) {
                            self.forget_leader(f.slot);
                        }
                        rounds.failed(f.answered, f.error);
                    }
                    Err(f) => return Err(f.error),
                }
            }
            rounds.next_round().await?;
        }
    }

    fn forget_leader(&mut self, slot: usize) {
        if self.leader == Some(slot) {
            self.leader = None;
        }
    }

    /// Sends one request to the node of `slot`, following up to [`MAX_REDIRECTS`] 307s
    /// (re-sending the method and body; each target becomes the cached leader). Any
    /// other status is returned as the [`Reply`].
    async fn follow(
        &mut self,
        mut slot: usize,
        method: &Method,
        mut uri: Uri,
        body: Option<&Bytes>,
        keep_ok_body: bool,
        timeout: Duration,
    ) -> Result<Reply, Failure> {
        let mut redirected = false;
        let mut answered = false;
        for hop in 0..=MAX_REDIRECTS {
            let answer =
                match self.conns.send(slot, method, &uri, body, keep_ok_body, timeout).await {
                    Ok(a) => a,
                    Err(t) => {
                        let (error, retryable) = transport_error(t, self.conns.addr(slot), timeout);
                        return Err(Failure { error, slot, answered, retryable });
                    }
                };
            answered = true;
            if answer.status != StatusCode::TEMPORARY_REDIRECT {
                return Ok(Reply { answer, slot, redirected });
            }
            if hop == MAX_REDIRECTS {
                break;
            }
            let from = self.conns.addr(slot).to_string();
            let bad = |reason: String| Failure {
                error: ClientError::Redirect(format!("{from} answered 307 {reason}")),
                slot,
                answered: true,
                retryable: false,
            };
            let location = answer
                .header(LOCATION.as_str())
                .ok_or_else(|| bad("without a Location header".into()))?;
            let (addr, path) = http::parse_location(location, &from)
                .ok_or_else(|| bad(format!("to {location:?}: not an http:// location")))?;
            if uri.path_and_query().map(|p| p.as_str()) != Some(path) {
                uri = path.parse().map_err(|e| bad(format!("to {location:?}: {e}")))?;
            }
            slot = self.conns.slot(&addr).map_err(|e| bad(format!("to {location:?}: {e}")))?;
            self.leader = Some(slot);
            redirected = true;
        }
        Err(Failure {
            error: ClientError::Redirect(format!(
                "more than {MAX_REDIRECTS} redirects, last to {}",
                self.conns.addr(slot)
            )),
            slot,
            answered: true,
            retryable: false,
        })
    }
}

#[cfg(test)]
mod tests {
    //! The worker against small in-process warp servers that play leader, follower,
    //! leaderless node, or something worse.

    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use serde_json::{json, Value};

    use super::*;

    use crate::client::mock::{mock, Seen};

    fn error_body(code: &str) -> String {
        json!({"error": {"code": code, "message": "no"}}).to_string()
    }

    /// A leader: writes get the next log index (from 10), reads find `key1` only.
    async fn leader() -> (String, Arc<Mutex<Vec<Seen>>>) {
        let index = AtomicU64::new(10);
        mock(move |Seen { method, path_and_query: pq, .. }| match method.as_str() {
            "PUT" => {
                let i = index.fetch_add(1, Ordering::SeqCst);
                (200, vec![("x-raft-index", i.to_string())], json!({"version": i}).to_string())
            }
            _ if pq.contains("pk=key1") => (200, vec![], r#"{"item":{},"version":1}"#.into()),
            _ => (404, vec![], error_body("item_not_found")),
        })
        .await
    }

    /// A follower: redirects writes and strong reads to `leader`, misses eventual reads.
    async fn follower(leader: String) -> (String, Arc<Mutex<Vec<Seen>>>) {
        mock(move |Seen { method, path_and_query: pq, .. }| {
            if method == "GET" && !pq.contains("consistency=strong") {
                return (404, vec![], error_body("item_not_found"));
            }
            (307, vec![("location", format!("http://{leader}{pq}"))], error_body("not_leader"))
        })
        .await
    }

    /// An address nothing listens on.
    fn dead_addr() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    }

    fn ok(redirected: bool) -> Outcome {
        Outcome::Ok { found: true, redirected }
    }

    fn worker(targets: &[&String], strong: bool) -> Worker {
        let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        Worker::new(&targets, strong, 0, "t", "the \"value\"").unwrap()
    }

    #[test]
    fn read_answers_are_classified_like_the_general_client() {
        let ok_body = br#"{"item":{"k":"a"},"version":3}"#;
        assert_eq!(read_outcome(StatusCode::OK, ok_body, false), ok(false));
        assert_eq!(read_outcome(StatusCode::OK, b"", true), ok(true));
        let miss = error_body("item_not_found");
        assert_eq!(
            read_outcome(StatusCode::NOT_FOUND, miss.as_bytes(), false),
            Outcome::Ok { found: false, redirected: false }
        );
        // Only a 404 item_not_found is a miss.
        let no_table = error_body("table_not_found");
        assert_eq!(
            read_outcome(StatusCode::NOT_FOUND, no_table.as_bytes(), false),
            Outcome::Err("table_not_found (HTTP 404)".into())
        );
        assert_eq!(
            read_outcome(StatusCode::NOT_FOUND, b"404 page not found", false),
            Outcome::Err("http_404 (HTTP 404)".into())
        );
        let unavailable = error_body("no_leader");
        assert_eq!(
            read_outcome(StatusCode::SERVICE_UNAVAILABLE, unavailable.as_bytes(), false),
            Outcome::Err("no_leader (HTTP 503)".into())
        );
        // A 307 only reaches classification when it could not be followed.
        assert_eq!(
            read_outcome(StatusCode::TEMPORARY_REDIRECT, b"", false),
            Outcome::Err("http_307 (HTTP 307)".into())
        );
        // The same kinds as the general client's errors.
        let e = api_error(StatusCode::CONFLICT, error_body("table_exists").as_bytes(), "n:1");
        assert_eq!(error_kind(&e), "table_exists (HTTP 409)");
    }

    #[tokio::test]
    async fn writes_follow_a_307_once_then_go_to_the_cached_leader() {
        let (l, l_seen) = leader().await;
        let (f, f_seen) = follower(l.clone()).await;
        let mut w = worker(&[&f, &l], false);
        assert_eq!(w.last_written_index(), None);

        assert_eq!(w.put("key1").await, ok(true));
        assert_eq!(w.put("key2").await, ok(false));
        assert_eq!(w.put("key3").await, ok(false));
        assert_eq!(f_seen.lock().unwrap().len(), 1, "only the first write met the follower");
        let seen = l_seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3);
        for (i, Seen { method, path_and_query: pq, body, .. }) in seen.iter().enumerate() {
            assert_eq!((method.as_str(), pq.as_str()), ("PUT", "/tables/t/items"));
            let item: Value = serde_json::from_str(body).unwrap();
            assert_eq!(item, json!({"k": format!("key{}", i + 1), "v": "the \"value\""}));
        }
        assert_eq!(w.last_written_index(), Some(12));
    }

    #[tokio::test]
    async fn writes_pass_over_refused_connections_and_503s() {
        let (l, l_seen) = leader().await;
        let (busy, busy_seen) =
            mock(|_| (503, vec![("retry-after", "1".into())], error_body("no_leader"))).await;
        let dead = dead_addr();
        let mut w = worker(&[&dead, &busy, &l], false);
        assert_eq!(w.put("key1").await, ok(false));
        assert_eq!(w.put("key2").await, ok(false));
        assert_eq!(busy_seen.lock().unwrap().len(), 1);
        assert_eq!(l_seen.lock().unwrap().len(), 2);

        // Nobody answers at all: given up after one round, counted as unreachable.
        let mut w = worker(&[&dead], false);
        assert_eq!(w.put("key1").await, Outcome::Err("unreachable: connection refused".into()));
    }

    #[tokio::test]
    async fn write_refusals_and_broken_redirects_are_errors_of_their_kind() {
        let (bad, bad_seen) = mock(|_| (400, vec![], error_body("invalid"))).await;
        let mut w = worker(&[&bad], false);
        assert_eq!(w.put("key1").await, Outcome::Err("invalid (HTTP 400)".into()));
        assert_eq!(bad_seen.lock().unwrap().len(), 1, "a refusal is not retried");

        let (lost, _) = mock(|_| (307, vec![], error_body("not_leader"))).await;
        let mut w = worker(&[&lost], false);
        assert_eq!(w.put("key1").await, Outcome::Err("redirect failed".into()));
        assert_eq!(w.get("key1").await, Outcome::Err("redirect failed".into()));

        let (odd, _) = mock(|_| (307, vec![("location", "ftp://x/y".into())], String::new())).await;
        let mut w = worker(&[&odd], false);
        assert_eq!(w.get("key1").await, Outcome::Err("redirect failed".into()));

        // A node redirecting to itself forever: given up after the hop limit.
        let hops = Arc::new(AtomicUsize::new(0));
        let counter = hops.clone();
        let (lp, _) = mock(move |Seen { path_and_query: pq, .. }| {
            counter.fetch_add(1, Ordering::SeqCst);
            (307, vec![("location", pq.clone())], String::new())
        })
        .await;
        let mut w = worker(&[&lp], false);
        assert_eq!(w.put("key1").await, Outcome::Err("redirect failed".into()));
        assert_eq!(hops.load(Ordering::SeqCst), MAX_REDIRECTS + 1);

        let (no_table, _) = mock(|_| (404, vec![], error_body("table_not_found"))).await;
        let mut w = worker(&[&no_table], false);
        assert_eq!(w.get("key1").await, Outcome::Err("table_not_found (HTTP 404)".into()));
        assert_eq!(w.put("key1").await, Outcome::Err("table_not_found (HTTP 404)".into()));

        let mut w = worker(&[&dead_addr()], false);
        assert_eq!(w.get("key1").await, Outcome::Err("unreachable: connection refused".into()));
    }

    #[tokio::test]
    async fn reads_go_round_robin_and_strong_ones_follow_the_redirect() {
        let (l, l_seen) = leader().await;
        let (f, f_seen) = follower(l.clone()).await;

        let mut eventual = worker(&[&f, &l], false);
        let miss = Outcome::Ok { found: false, redirected: false };
        assert_eq!(eventual.get("key1").await, miss, "the follower has not got it");
        assert_eq!(eventual.get("key1").await, ok(false));
        assert_eq!(eventual.get("key 2").await, miss);
        assert_eq!(eventual.get("key 2").await, miss);
        assert_eq!(f_seen.lock().unwrap()[0].path_and_query, "/tables/t/items?pk=key1");
        assert_eq!(l_seen.lock().unwrap()[1].path_and_query, "/tables/t/items?pk=key%202");

        let mut strong = worker(&[&f, &l], true);
        assert_eq!(strong.get("key1").await, ok(true));
        assert_eq!(strong.get("key1").await, ok(false));
        let last = l_seen.lock().unwrap().last().cloned().unwrap();
        assert_eq!(last.path_and_query, "/tables/t/items?pk=key1&consistency=strong");
        // The redirect also taught the worker where the leader is.
        assert_eq!(strong.put("key9").await, ok(false));
    }
}
