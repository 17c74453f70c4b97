//! The Rust client of a raft-nosql cluster, used by the CLI, the benchmark and the tests.
//!
//! # How a request finds its way
//!
//! Every node serves the whole HTTP API on one port, but the nodes are not equal:
//!
//! - **Writes** (`POST`, `PUT`, `DELETE`) must go through the Raft leader, because only the
//!   leader may append to the replicated log. A follower that receives a write answers
//!   **307 Temporary Redirect** with `Location: http://<leader><same path and query>`. The
//!   client follows that redirect itself (redirects are disabled in the underlying
//!   `reqwest::Client`), re-sending the same method and body, so it can *report* that it
//!   was redirected and remember where the leader is. The next write goes to the
//!   remembered leader first (the **leader cache**), saving the extra round trip.
//! - While there is **no leader** (an election is running), a node answers **503** with a
//!   `Retry-After` header. The client backs off (20 ms, growing by half up to 200 ms, never longer
//!   than `Retry-After` says) and tries every known node again, until the write
//!   **deadline** (default 10 s) has passed. A node that refuses the connection is
//!   skipped the same way, so a write survives a leader crash: the client moves on to
//!   the survivors, which redirect it to the newly elected leader.
//! - **Reads** (`GET`) are answered locally by whichever node receives them; that is what
//!   makes them *eventually consistent*: a follower may not have applied the latest write
//!   yet. Reads therefore go to one chosen node, the **target** (the first address the
//!   client was built with, or the one given to [`Client::with_target`]), and are not
//!   retried. Only if the target refuses the connection and the client was built with
//!   [`ClientBuilder::read_fallback`] does a read go to the other nodes, in order (the
//!   CLI does that when no `--target-addr` was given). Every answer carries the
//!   responding node's id, role and applied log index ([`Response`]), and the nodes that
//!   were passed over ([`Response::skipped`]), so staleness and detours are visible.
//! - A write that has to wait (no leader, nodes down) can say so while it waits, through
//!   [`ClientBuilder::on_wait`]: the CLI's `-v` prints those notes.
//! - A read can ask for more than "whatever this node has applied" ([`Consistency`]):
//!   `AfterIndex(i)` makes the node wait until it has applied log index `i` (pass the
//!   `version` a write returned: read-your-writes through any node), `Session` does that
//!   with the highest index this client has written, and `Strong` is a linearizable read
//!   that only the leader answers (a follower redirects it, and the client follows).
//!
//! # Errors
//!
//! One enum, [`ClientError`]: the node said no ([`ClientError::Api`], with the HTTP status
//! and the `{"error":{"code","message"}}` body), nobody answered
//! ([`ClientError::Unreachable`]), the answer took too long ([`ClientError::Timeout`]), or
//! the answer made no sense ([`ClientError::Decode`], [`ClientError::Redirect`]).
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), raft_nosql::client::ClientError> {
//! use raft_nosql::client::Client;
//! use raft_nosql::model::{KeyAttr, KeyType, TableSchema};
//!
//! let client = Client::new(["127.0.0.1:8100", "127.0.0.1:8101", "127.0.0.1:8102"])?;
//! let schema = TableSchema {
//!     table_name: "Music".into(),
//!     partition_key: KeyAttr { name: "Artist".into(), key_type: KeyType::S },
//!     sort_key: Some(KeyAttr { name: "SongTitle".into(), key_type: KeyType::S }),
//! };
//! client.create_table(&schema).await?;
//! let put = client
//!     .put_item("Music", &serde_json::json!({"Artist": "Queen", "SongTitle": "Innuendo"}))
//!     .await?;
//! println!("written at log index {} by node {:?}", put.value.version, put.node);
//! let got = client.get_item("Music", "Queen", Some("Innuendo")).await?;
//! println!("{}", got.value.item);
//! # Ok(()) }
//! ```
//!
//! # Shortcuts taken
//!
//! - A write whose request timed out is **not** retried: it may have been committed, and
//!   retrying a `create_table` would then fail with `table_exists`. Only failures that
//!   prove the request never arrived (connection refused) or was refused (503) are retried.
//! - If no known node accepts a connection during a whole round, a write gives up at once
//!   with [`ClientError::Unreachable`] instead of waiting for the deadline: a cluster that
//!   is entirely down is reported quickly.
//! - Addresses are plain `host:port` over HTTP; there is no TLS and no authentication.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{KeyAttr, TableSchema};

/// How long a write keeps retrying (503s, refused connections, redirects) by default.
pub const DEFAULT_WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// Default upper bound for one HTTP exchange with one node.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default upper bound for opening a TCP connection to a node.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default number of 307 redirects followed for one request.
pub const DEFAULT_MAX_REDIRECTS: usize = 5;

/// First pause between two rounds of write attempts; half as long again each round.
/// Short, so that a client sees the cluster's own failover time: an election takes
/// about 1.5 s, and a long pause would add up to its length on top.
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
/// Longest pause between two rounds of write attempts: the most a write waits after
/// a new leader is ready. Rounds are a few small requests, cheap at this rate.
const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// The pause after `pause`: half as long again, up to [`MAX_BACKOFF`].
fn next_backoff(pause: Duration) -> Duration {
    (pause + pause / 2).min(MAX_BACKOFF)
}

/// The retry policy of a write, shared by this client and the bench's writer: rounds
/// over the candidate nodes (leader first), a pause that doubles between rounds (capped
/// by `Retry-After`), until an answer other than 503 comes or the deadline passes.
pub(crate) struct WriteRounds {
    deadline: Instant,
    deadline_len: Duration,
    backoff: Duration,
    last: Option<ClientError>,
    /// Whether some node answered in this round (a 503 counts).
    answered: bool,
    retry_after: Option<Duration>,
}

impl WriteRounds {
    pub(crate) fn new(deadline_len: Duration) -> WriteRounds {
        WriteRounds {
            deadline: Instant::now() + deadline_len,
            deadline_len,
            backoff: FIRST_BACKOFF,
            last: None,
            answered: false,
            retry_after: None,
        }
    }

    /// The timeout of the next attempt, or `None` once the deadline has passed.
    pub(crate) fn attempt_timeout(&self, request_timeout: Duration) -> Option<Duration> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        (!remaining.is_zero()).then(|| remaining.min(request_timeout))
    }

    /// A node answered 503 (no leader yet), with its `Retry-After` seconds if any.
    pub(crate) fn unavailable(&mut self, error: ClientError, retry_after_secs: Option<u64>) {
        self.answered = true;
        self.retry_after = retry_after_secs.map(Duration::from_secs);
        self.last = Some(error);
    }

    /// An attempt failed in a way worth trying elsewhere; `answered` if the node spoke.
    pub(crate) fn failed(&mut self, answered: bool, error: ClientError) {
        self.answered |= answered;
        self.last = Some(error);
    }

    /// Ends a round: the error to give up with, or (after the pause) a new round.
    pub(crate) async fn next_round(&mut self) -> Result<(), ClientError> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            let last = self
                .last
                .take()
                .map_or_else(|| "no attempt finished".to_string(), |e| e.to_string());
            return Err(ClientError::Timeout { after: self.deadline_len, last });
        }
        // A full round in which no node answered at all: the cluster is down.
        if !self.answered && matches!(self.last, Some(ClientError::Unreachable { .. })) {
            return Err(self.last.take().expect("checked above"));
        }
        // Retry-After is whole seconds; an election usually ends sooner, so it only
        // caps the pause.
        let pause = self.backoff.min(self.retry_after.unwrap_or(MAX_BACKOFF)).min(remaining);
        tokio::time::sleep(pause).await;
        self.backoff = next_backoff(self.backoff);
        self.answered = false;
        self.retry_after = None;
        Ok(())
    }
}

/// Everything that can go wrong talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A node answered with an error status. `code` and `message` come from its
    /// `{"error":{"code","message"}}` body (`table_not_found`, `item_not_found`,
    /// `table_exists`, `invalid`, `unavailable`, ...).
    #[error("{message}")]
    Api {
        /// The HTTP status code.
        status: u16,
        /// The machine-readable error code.
        code: String,
        /// The human-readable explanation.
        message: String,
        /// The node (`host:port`) that answered.
        addr: String,
    },
    /// No HTTP answer from the node at `addr`: the connection was refused or broke.
    #[error("cannot reach node at {addr}: {reason}")]
    Unreachable {
        /// The address that could not be reached.
        addr: String,
        /// Why, in a few words (`connection refused`, ...).
        reason: String,
    },
    /// No answer in time: one request exceeded the request timeout, or a write kept being
    /// refused (no leader, nodes down) until its deadline.
    #[error("gave up after {after:?}: {last}")]
    Timeout {
        /// How long the client waited.
        after: Duration,
        /// What the client was waiting for, or the last error seen before giving up.
        last: String,
    },
    /// A node answered something that is not the expected JSON.
    #[error("unexpected answer from {addr}: {message}")]
    Decode {
        /// The node that answered.
        addr: String,
        /// What was wrong with the answer.
        message: String,
    },
    /// A 307 redirect could not be followed (bad `Location`, or too many hops).
    #[error("redirect failed: {0}")]
    Redirect(String),
    /// The TLS settings cannot be used: an unreadable or malformed CA file, or an
    /// `https://` node address without a CA to check the node's certificate with.
    #[error("{0}")]
    Tls(String),
    /// A node address given to the client is not `host:port`.
    #[error("invalid node address {addr:?}: {reason}")]
    InvalidAddress {
        /// The address as given.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ClientError {
    /// True for a 404: the table or the item does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Api { status: 404, .. })
    }

    /// The error code of an [`Api`](ClientError::Api) error (`"table_not_found"`, ...).
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status of an [`Api`](ClientError::Api) error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A successful answer plus what the client learnt about who gave it.
#[derive(Debug, Clone)]
pub struct Response<T> {
    /// The decoded body.
    pub value: T,
    /// The HTTP status (200 or 201).
    pub status: u16,
    /// `host:port` of the node that gave the final answer.
    pub addr: String,
    /// Its node id (`x-raft-node` header).
    pub node: Option<u64>,
    /// Its Raft role when it answered (`x-raft-role`: `Leader`, `Follower`, ...).
    pub role: Option<String>,
    /// The highest log index it had applied when it answered (`x-raft-applied`).
    pub applied: Option<u64>,
    /// `Some(addr)` if the request was redirected (307) and finally answered by `addr`.
    pub redirected_to: Option<String>,
    /// Nodes tried before the one that answered, each with why it was passed over
    /// (`connection refused`, `no leader known`): empty when the first node answered.
    pub skipped: Vec<Skipped>,
}

/// A node a request passed over on its way to the node that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// `host:port` of the node.
    pub addr: String,
    /// Why it was passed over, in a few words.
    pub reason: String,
}

impl<T> Response<T> {
    /// Replaces the body, keeping the metadata.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Response<U> {
        Response {
            value: f(self.value),
            status: self.status,
            addr: self.addr,
            node: self.node,
            role: self.role,
            applied: self.applied,
            redirected_to: self.redirected_to,
            skipped: self.skipped,
        }
    }
}

/// A table as described by a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDescription {
    /// The table's name.
    pub table_name: String,
    /// The partition key attribute.
    pub partition_key: KeyAttr,
    /// The sort key attribute, if the table has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_key: Option<KeyAttr>,
    /// Log index of the write that created the table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Number of items, as seen by the answering node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_count: Option<u64>,
}

/// Answer to [`Client::create_table`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCreated {
    /// The new table.
    pub table: TableDescription,
    /// Log index of the create.
    pub version: u64,
}

/// Answer to [`Client::delete_table`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDeleted {
    /// Name of the deleted table.
    pub deleted: String,
    /// Log index of the delete.
    pub version: u64,
}

/// Answer to [`Client::put_item`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    /// Whether an item with the same key was there before (and is now replaced).
    #[serde(default)]
    pub replaced: bool,
    /// Log index of the write: the item's new version.
    pub version: u64,
}

/// Answer to [`Client::delete_item`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemDeleted {
    /// Whether an item was there to delete.
    pub deleted: bool,
    /// Log index of the delete.
    pub version: u64,
}

/// An item (plain JSON object) and its version (the log index of the write that made it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionedItem {
    /// The item, including its key attributes.
    pub item: Value,
    /// Log index of the write that produced it.
    pub version: u64,
}

/// One page of [`Client::query`] or [`Client::scan`] results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// The items of this page, in key order.
    pub items: Vec<VersionedItem>,
    /// Number of items in this page.
    pub count: usize,
    /// Pass as `start_after` to get the next page; `None` on the last page.
    #[serde(default)]
    pub next: Option<String>,
}

/// One node's view of the cluster (`GET /status`): the node's own type, read with
/// defaults for fields an older node does not send.
pub use crate::server::admin::NodeStatus;

/// Conditions of a [`Client::query`]: one partition, optionally narrowed by sort key.
///
/// The range bounds may be combined (a lower and an upper bound); the node rejects
/// combinations that make no sense.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    /// The partition key value (required).
    pub partition_key: String,
    /// Only sort keys starting with this text.
    pub sort_key_prefix: Option<String>,
    /// Only sort keys greater than this.
    pub sk_gt: Option<String>,
    /// Only sort keys greater than or equal to this.
    pub sk_ge: Option<String>,
    /// Only sort keys less than this.
    pub sk_lt: Option<String>,
    /// Only sort keys less than or equal to this.
    pub sk_le: Option<String>,
    /// At most this many items in the page.
    pub limit: Option<u64>,
    /// Start after this sort key (the `next` of the previous page).
    pub start_after: Option<String>,
    /// Descending sort key order.
    pub descending: bool,
}

impl QueryParams {
    /// All items of one partition.
    pub fn partition(pk: impl Into<String>) -> Self {
        QueryParams { partition_key: pk.into(), ..Default::default() }
    }

    fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![("pk", self.partition_key.clone())];
        let optional = [
            ("sk_prefix", &self.sort_key_prefix),
            ("sk_gt", &self.sk_gt),
            ("sk_ge", &self.sk_ge),
            ("sk_lt", &self.sk_lt),
            ("sk_le", &self.sk_le),
            ("start_after", &self.start_after),
        ];
        q.extend(optional.into_iter().filter_map(|(k, v)| v.clone().map(|v| (k, v))));
        if let Some(limit) = self.limit {
            q.push(("limit", limit.to_string()));
        }
        if self.descending {
            q.push(("desc", "true".to_string()));
        }
        q
    }
}

/// How fresh a read must be. Applies to [`Client::get_item`], [`Client::query`] and
/// [`Client::scan`]; set it with [`ClientBuilder::consistency`] or
/// [`Client::with_consistency`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Consistency {
    /// Whatever the target node has applied (the default; may be stale on a follower).
    #[default]
    Eventual,
    /// The target first waits until it has applied at least this log index.
    AfterIndex(u64),
    /// Read your own writes: like `AfterIndex` with the highest log index this client
    /// (or any clone of it) has written; `Eventual` before the first write.
    Session,
    /// Linearizable: the leader confirms it still leads, then answers.
    Strong,
}

/// Called with a sentence each time a write has to wait before its next round (see
/// [`ClientBuilder::on_wait`]).
#[derive(Clone)]
pub struct WaitNotifier(Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for WaitNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitNotifier")
    }
}

/// Settings for a [`Client`]; start with [`Client::builder`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    nodes: Vec<String>,
    write_deadline: Duration,
    request_timeout: Duration,
    connect_timeout: Duration,
    max_redirects: usize,
    consistency: Consistency,
    read_fallback: bool,
    on_wait: Option<WaitNotifier>,
    ca_file: Option<std::path::PathBuf>,
}

impl ClientBuilder {
    /// Talk https to the nodes and trust only the CA certificate(s) in this PEM file
    /// (the cluster's `[tls] ca_file`). Without it the client speaks https only when the
    /// process installed TLS settings ([`crate::tls::install`]), else plain http.
    pub fn ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// How long a write keeps retrying while there is no leader or nodes are down.
    /// Default [`DEFAULT_WRITE_DEADLINE`].
    pub fn write_deadline(mut self, d: Duration) -> Self {
        self.write_deadline = d;
        self
    }

    /// Upper bound for one HTTP exchange. Default [`DEFAULT_REQUEST_TIMEOUT`].
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// Upper bound for opening a connection. Default [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Most 307 redirects followed for one request. Default [`DEFAULT_MAX_REDIRECTS`].
    pub fn max_redirects(mut self, n: usize) -> Self {
        self.max_redirects = n;
        self
    }

    /// Freshness of reads. Default [`Consistency::Eventual`].
    pub fn consistency(mut self, c: Consistency) -> Self {
        self.consistency = c;
        self
    }

    /// Whether a read whose target refuses the connection goes to the other nodes, in
    /// the order given (the answer's [`Response::skipped`] names the nodes passed over).
    /// Default off: a read asks the node it was told to ask.
    pub fn read_fallback(mut self, on: bool) -> Self {
        self.read_fallback = on;
        self
    }

    /// Tells `f`, in one sentence, what a write is waiting for each time it must wait
    /// before trying again (no leader known, nodes unreachable), and how long it will
    /// keep trying.
    pub fn on_wait(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_wait = Some(WaitNotifier(Arc::new(f)));
        self
    }

    /// Checks the addresses and builds the client.
    pub fn build(self) -> Result<Client, ClientError> {
        let nodes = self.nodes.iter().map(|a| normalize_addr(a)).collect::<Result<Vec<_>, _>>()?;
        let Some(target) = nodes.first().cloned() else {
            return Err(ClientError::InvalidAddress {
                addr: String::new(),
                reason: "at least one node address is needed".into(),
            });
        };
        let mut http = crate::tls::client(reqwest::Client::builder());
        if let Some(ca) = &self.ca_file {
            let tls = crate::tls::client_config(ca, None)
                .map_err(|e| ClientError::Tls(format!("cannot use --ca-file: {e}")))?;
            http = http.tls_backend_preconfigured(tls);
        }
        let https = self.ca_file.is_some() || crate::tls::enabled();
        if !https {
            if let Some(a) = self.nodes.iter().find(|a| a.trim().starts_with("https://")) {
                return Err(ClientError::Tls(format!(
                    "{a} is an https address: give the cluster's CA certificate \
                     (--ca-file or RAFT_NOSQL_CA_FILE) to check the node's certificate"
                )));
            }
        }
        let http = http
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.request_timeout)
            .connect_timeout(self.connect_timeout)
            .build()
            .map_err(|e| ClientError::InvalidAddress {
                addr: target.clone(),
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        let inner = Inner {
            http,
            scheme: if https { "https" } else { "http" },
            nodes,
            leader: Mutex::new(None),
            written: AtomicU64::new(0),
            write_deadline: self.write_deadline,
            request_timeout: self.request_timeout,
            max_redirects: self.max_redirects,
            read_fallback: self.read_fallback,
            on_wait: self.on_wait,
        };
        Ok(Client { inner: Arc::new(inner), target, consistency: self.consistency })
    }
}

/// A client of a raft-nosql cluster. Cheap to clone; clones share the connection pool
/// and the leader cache.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// Where reads go.
    target: String,
    /// How fresh reads must be.
    consistency: Consistency,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    /// `https` with a CA file (or the process's TLS settings), else `http`.
    scheme: &'static str,
    /// Every node the client knows, in the order given; writes try them in this order.
    nodes: Vec<String>,
    /// Where the last redirect pointed, or the last node that accepted a write.
    leader: Mutex<Option<String>>,
    /// Highest log index of a write this client made (`x-raft-index`), 0 before any.
    written: AtomicU64,
    write_deadline: Duration,
    request_timeout: Duration,
    max_redirects: usize,
    read_fallback: bool,
    on_wait: Option<WaitNotifier>,
}

/// A raw HTTP answer, before it is judged.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    addr: String,
    redirected_to: Option<String>,
    skipped: Vec<Skipped>,
}

/// Why [`Client::follow`] failed, and whether retrying elsewhere is safe.
struct Failure {
    error: ClientError,
    /// Some node answered over HTTP along the way (the cluster is at least partly up).
    answered: bool,
    /// The request provably had no effect (the connection was never opened).
    retryable: bool,
}

impl Client {
    /// A client for the given nodes (`host:port`; an `http://` or `https://` prefix is
    /// accepted, and https needs [`ClientBuilder::ca_file`]).
    /// Reads go to the first one; writes to the known leader, else to each in turn.
    pub fn new<I, S>(nodes: I) -> Result<Client, ClientError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Client::builder(nodes).build()
    }

    /// A builder for a client of the given nodes, to change timeouts.
    pub fn builder<I, S>(nodes: I) -> ClientBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ClientBuilder {
            nodes: nodes.into_iter().map(Into::into).collect(),
            write_deadline: DEFAULT_WRITE_DEADLINE,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            consistency: Consistency::Eventual,
            read_fallback: false,
            on_wait: None,
            ca_file: None,
        }
    }

    /// The same client (shared pool and leader cache) reading from another node.
    /// The node need not be one of those the client was built with.
    pub fn with_target(&self, addr: &str) -> Result<Client, ClientError> {
        Ok(Client { target: normalize_addr(addr)?, ..self.clone() })
    }

    /// The same client (shared pool, leader cache and session) reading with another
    /// consistency.
    pub fn with_consistency(&self, consistency: Consistency) -> Client {
        Client { consistency, ..self.clone() }
    }

    /// The highest log index this client has written, if it wrote anything.
    pub fn last_written_index(&self) -> Option<u64> {
        Some(self.inner.written.load(Ordering::SeqCst)).filter(|&i| i > 0)
    }

    /// The node reads go to.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Every node the client was built with.
    pub fn nodes(&self) -> &[String] {
        &self.inner.nodes
    }

    /// Where the client believes the leader is (from the last redirect or accepted write).
    pub fn leader_hint(&self) -> Option<String> {
        self.inner.leader.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    // ----- tables -----

    /// Creates a table. Fails with `table_exists` (409) if it already exists.
    pub async fn create_table(
        &self,
        schema: &TableSchema,
    ) -> Result<Response<TableCreated>, ClientError> {
        self.call(Method::POST, &path::<&str>(&["tables"], &[]), Some(to_body(schema))).await
    }

    /// Deletes a table and all its items.
    pub async fn delete_table(&self, table: &str) -> Result<Response<TableDeleted>, ClientError> {
        self.call(Method::DELETE, &path::<&str>(&["tables", table], &[]), None).await
    }

    /// The names of all tables, as the target node knows them.
    pub async fn list_tables(&self) -> Result<Response<Vec<String>>, ClientError> {
        #[derive(Deserialize)]
        struct Tables {
            tables: Vec<String>,
        }
        let r: Response<Tables> =
            self.call(Method::GET, &path::<&str>(&["tables"], &[]), None).await?;
        Ok(r.map(|t| t.tables))
    }

    /// A table's schema and item count, as the target node knows them.
    pub async fn describe_table(
        &self,
        table: &str,
    ) -> Result<Response<TableDescription>, ClientError> {
        #[derive(Deserialize)]
        struct Described {
            table: TableDescription,
        }
        let r: Response<Described> =
            self.call(Method::GET, &path::<&str>(&["tables", table], &[]), None).await?;
        Ok(r.map(|d| d.table))
    }

    // ----- items -----

    /// Writes an item (a JSON object that includes the key attributes), replacing any
    /// item with the same key.
    pub async fn put_item(
        &self,
        table: &str,
        item: &Value,
    ) -> Result<Response<Written>, ClientError> {
        self.put_item_if(table, item, None).await
    }

    /// Writes an item only if the stored one has version `if_version` (0: only if
    /// there is none), decided when the write is applied; a mismatch is a 412
    /// `condition_failed` error. `None` writes unconditionally.
    pub async fn put_item_if(
        &self,
        table: &str,
        item: &Value,
        if_version: Option<u64>,
    ) -> Result<Response<Written>, ClientError> {
        let q: Vec<(&str, String)> =
            if_version.map(|v| ("if_version", v.to_string())).into_iter().collect();
        self.call(Method::PUT, &path(&["tables", table, "items"], &q), Some(to_body(item))).await
    }

    /// Updates one item with a DynamoDB update expression (`{"update": ..., "condition":
    /// ..., "names": ..., "values": ...}`, values in plain JSON), decided when the write
    /// is applied; answers `{"version", "item"}` with the new item.
    pub async fn update_item(
        &self,
        table: &str,
        pk: &str,
        sk: Option<&str>,
        request: &Value,
    ) -> Result<Response<Value>, ClientError> {
        let mut q = vec![("pk", pk.to_string())];
        q.extend(sk.map(|sk| ("sk", sk.to_string())));
        self.call(Method::PATCH, &path(&["tables", table, "items"], &q), Some(to_body(request)))
            .await
    }

    /// Reads one item from the target node. A missing item is an error with
    /// [`ClientError::is_not_found`].
    pub async fn get_item(
        &self,
        table: &str,
        pk: &str,
        sk: Option<&str>,
    ) -> Result<Response<VersionedItem>, ClientError> {
        let mut q = vec![("pk", pk.to_string())];
        q.extend(sk.map(|sk| ("sk", sk.to_string())));
        q.extend(self.consistency_pairs());
        self.call(Method::GET, &path(&["tables", table, "items"], &q), None).await
    }

    /// Deletes one item; `deleted` says whether it existed.
    pub async fn delete_item(
        &self,
        table: &str,
        pk: &str,
        sk: Option<&str>,
    ) -> Result<Response<ItemDeleted>, ClientError> {
        let mut q = vec![("pk", pk.to_string())];
        q.extend(sk.map(|sk| ("sk", sk.to_string())));
        self.call(Method::DELETE, &path(&["tables", table, "items"], &q), None).await
    }

    /// One page of one partition's items, in sort key order.
    pub async fn query(
        &self,
        table: &str,
        params: &QueryParams,
    ) -> Result<Response<Page>, ClientError> {
        let mut q = params.to_pairs();
        q.extend(self.consistency_pairs());
        self.call(Method::GET, &path(&["tables", table, "query"], &q), None).await
    }

    /// One page of all the table's items. Pass the previous page's `next` as
    /// `start_after` to continue.
    pub async fn scan(
        &self,
        table: &str,
        limit: Option<u64>,
        start_after: Option<&str>,
    ) -> Result<Response<Page>, ClientError> {
        let mut q = Vec::new();
        q.extend(limit.map(|l| ("limit", l.to_string())));
        q.extend(start_after.map(|c| ("start_after", c.to_string())));
        q.extend(self.consistency_pairs());
        self.call(Method::GET, &path(&["tables", table, "scan"], &q), None).await
    }

    // ----- nodes -----

    /// The target node's view of the cluster.
    pub async fn status(&self) -> Result<Response<NodeStatus>, ClientError> {
        self.call(Method::GET, "/status", None).await
    }

    /// Any other request. `path_and_query` starts with `/` and is already URL-encoded.
    /// `GET`/`HEAD` are reads (sent to the target); everything else is a write (leader
    /// cache, redirects, retries). Non-2xx answers become [`ClientError::Api`].
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Response<Value>, ClientError> {
        let body = body.map(to_body);
        self.call(method, path_and_query, body).await
    }

    // ----- the machinery -----

    /// The query parameters that ask the node for this client's read consistency.
    fn consistency_pairs(&self) -> Vec<(&'static str, String)> {
        match self.consistency {
            Consistency::Eventual => vec![],
            Consistency::AfterIndex(i) => vec![("after_index", i.to_string())],
            Consistency::Session => match self.last_written_index() {
                Some(i) => vec![("after_index", i.to_string())],
                None => vec![],
            },
            Consistency::Strong => vec![("consistency", "strong".to_string())],
        }
    }

    /// Sends a request, judges the answer and decodes a 2xx body as `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Bytes>,
    ) -> Result<Response<T>, ClientError> {
        let reply = if method == Method::GET || method == Method::HEAD {
            self.read(method, path_and_query).await?
        } else {
            self.write(method, path_and_query, body).await?
        };
        if !reply.status.is_success() {
            return Err(api_error(&reply));
        }
        let value = serde_json::from_slice(&reply.body).map_err(|e| ClientError::Decode {
            addr: reply.addr.clone(),
            message: format!("{e} in {}", snippet(&reply.body)),
        })?;
        Ok(Response {
            value,
            status: reply.status.as_u16(),
            node: header_u64(&reply.headers, "x-raft-node"),
            role: header_str(&reply.headers, "x-raft-role"),
            applied: header_u64(&reply.headers, "x-raft-applied"),
            addr: reply.addr,
            redirected_to: reply.redirected_to,
            skipped: reply.skipped,
        })
    }

    /// A read: one attempt at the target (following a redirect if one comes); with
    /// `read_fallback`, the other nodes in turn while each refuses the connection.
    async fn read(&self, method: Method, path_and_query: &str) -> Result<Reply, ClientError> {
        let timeout = self.inner.request_timeout;
        let mut candidates = vec![self.target.clone()];
        if self.inner.read_fallback {
            candidates.extend(self.inner.nodes.iter().filter(|n| **n != self.target).cloned());
        }
        let mut skipped = Vec::new();
        let mut first_error = None;
        for addr in candidates {
            match self.follow(&addr, &method, path_and_query, None, timeout).await {
                Ok(reply) => return Ok(Reply { skipped, ..reply }),
                // Only a refused connection proves the node is down; anything else
                // (a timeout, a broken answer) is reported as it is.
                Err(Failure {
                    error: ClientError::Unreachable { addr, reason },
                    retryable: true,
                    ..
                }) => {
                    first_error.get_or_insert(ClientError::Unreachable {
                        addr: addr.clone(),
                        reason: reason.clone(),
                    });
                    skipped.push(Skipped { addr, reason });
                }
                Err(f) => return Err(f.error),
            }
        }
        Err(first_error.expect("at least the target was tried"))
    }

    /// A write: leader first, then every known node, in rounds with backoff, until an
    /// answer other than 503 arrives or the deadline passes.
    async fn write(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Bytes>,
    ) -> Result<Reply, ClientError> {
        let started = Instant::now();
        let mut last_note: Option<(Instant, String)> = None;
        let mut rounds = WriteRounds::new(self.inner.write_deadline);
        // Nodes passed over, latest reason per node, for the answer's `skipped`.
        let mut skipped: Vec<Skipped> = Vec::new();
        fn skip(skipped: &mut Vec<Skipped>, addr: &str, reason: String) {
            skipped.retain(|s| s.addr != addr);
            skipped.push(Skipped { addr: addr.to_string(), reason });
        }
        loop {
            let mut waiting_for = Vec::new();
            for addr in self.write_candidates() {
                let Some(timeout) = rounds.attempt_timeout(self.inner.request_timeout) else {
                    break;
                };
                match self.follow(&addr, &method, path_and_query, body.clone(), timeout).await {
                    Ok(reply) if reply.status == StatusCode::SERVICE_UNAVAILABLE => {
                        self.forget_leader(&reply.addr);
                        let after = header_u64(&reply.headers, RETRY_AFTER.as_str());
                        let error = api_error(&reply);
                        let reason = match &error {
                            ClientError::Api { message, .. } => message.clone(),
                            other => other.to_string(),
                        };
                        waiting_for.push(format!("{} answered 503: {reason}", reply.addr));
                        skip(&mut skipped, &reply.addr, format!("answered 503: {reason}"));
                        rounds.unavailable(error, after);
                    }
                    Ok(reply) => {
                        if reply.status.is_success() {
                            self.remember_leader(&reply.addr);
                            if let Some(i) = header_u64(&reply.headers, "x-raft-index") {
                                self.inner.written.fetch_max(i, Ordering::SeqCst);
                            }
                        }
                        skipped.retain(|s| s.addr != reply.addr);
                        return Ok(Reply { skipped, ..reply });
                    }
                    Err(f) if f.retryable => {
                        if let ClientError::Unreachable { addr, reason } = &f.error {
                            self.forget_leader(addr);
                            waiting_for.push(format!("{addr} is unreachable ({reason})"));
                            skip(&mut skipped, addr, reason.clone());
                        }
                        rounds.failed(f.answered, f.error);
                    }
                    Err(f) => return Err(f.error),
                }
            }
            if let Some(notify) = &self.inner.on_wait {
                let left = self.inner.write_deadline.saturating_sub(started.elapsed());
                let what = waiting_for.join("; ");
                // One note when the reason changes, else at most one a second.
                let due = match &last_note {
                    Some((at, said)) => *said != what || at.elapsed() >= Duration::from_secs(1),
                    None => true,
                };
                if !waiting_for.is_empty() && !left.is_zero() && due {
                    (notify.0)(&format!(
                        "waiting for a leader that accepts the write: {what}; trying again for up to {:.1}s more",
                        left.as_secs_f64()
                    ));
                    last_note = Some((Instant::now(), what));
                }
            }
            rounds.next_round().await?;
        }
    }

    /// Leader cache first, then the configured nodes, without duplicates.
    fn write_candidates(&self) -> Vec<String> {
        let mut out: Vec<String> = self.leader_hint().into_iter().collect();
        for n in &self.inner.nodes {
            if !out.contains(n) {
                out.push(n.clone());
            }
        }
        out
    }

    fn remember_leader(&self, addr: &str) {
        *self.inner.leader.lock().unwrap_or_else(|e| e.into_inner()) = Some(addr.to_string());
    }

    fn forget_leader(&self, addr: &str) {
        let mut leader = self.inner.leader.lock().unwrap_or_else(|e| e.into_inner());
        if leader.as_deref() == Some(addr) {
            *leader = None;
        }
    }

    /// Sends one request to `addr`, following up to `max_redirects` 307s (re-sending the
    /// method and body). Any other status is returned as a [`Reply`].
    async fn follow(
        &self,
        addr: &str,
        method: &Method,
        path_and_query: &str,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<Reply, Failure> {
        let mut url = Url::parse(&format!("{}://{addr}{path_and_query}", self.inner.scheme))
            .map_err(|e| Failure {
                error: ClientError::InvalidAddress {
                    addr: addr.to_string(),
                    reason: e.to_string(),
                },
                answered: false,
                retryable: false,
            })?;
        let mut current = addr.to_string();
        let mut redirected_to = None;
        let mut answered = false;
        for hop in 0..=self.inner.max_redirects {
            let reply = self
                .exchange(&current, url.clone(), method, body.clone(), timeout)
                .await
                .map_err(|(error, retryable)| Failure { error, answered, retryable })?;
            answered = true;
            if reply.status != StatusCode::TEMPORARY_REDIRECT {
                return Ok(Reply { redirected_to, ..reply });
            }
            if hop == self.inner.max_redirects {
                break;
            }
            let bad = |reason: String| Failure {
                error: ClientError::Redirect(format!("{current} answered 307 {reason}")),
                answered: true,
                retryable: false,
            };
            let location = header_str(&reply.headers, LOCATION.as_str())
                .ok_or_else(|| bad("without a Location header".into()))?;
            url = url.join(&location).map_err(|e| bad(format!("to {location:?}: {e}")))?;
            current = url_addr(&url).ok_or_else(|| bad(format!("to {location:?}: no host")))?;
            self.remember_leader(&current);
            redirected_to = Some(current.clone());
        }
        Err(Failure {
            error: ClientError::Redirect(format!(
                "more than {} redirects, last to {current}",
                self.inner.max_redirects
            )),
            answered: true,
            retryable: false,
        })
    }

    /// One HTTP exchange. On failure, also says whether the request provably never
    /// reached the node (so a write may be retried elsewhere).
    async fn exchange(
        &self,
        addr: &str,
        url: Url,
        method: &Method,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<Reply, (ClientError, bool)> {
        let mut req = self.inner.http.request(method.clone(), url).timeout(timeout);
        if let Some(body) = body {
            req = req.header(CONTENT_TYPE, "application/json").body(body);
        }
        let classify = |e: reqwest::Error| classify(addr, timeout, e);
        let resp = req.send().await.map_err(classify)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(classify)?;
        Ok(Reply {
            status,
            headers,
            body,
            addr: addr.to_string(),
            redirected_to: None,
            skipped: Vec::new(),
        })
    }
}

/// Turns a transport error into a [`ClientError`] and whether it is safe to retry.
fn classify(addr: &str, timeout: Duration, e: reqwest::Error) -> (ClientError, bool) {
    if e.is_connect() {
        let reason =
            if e.is_timeout() { "connection timed out".to_string() } else { root_cause(&e) };
        let reason = if reason.contains("certificate") {
            format!(
                "{reason} (the node's certificate is not signed by the CA given with \
                 --ca-file, or not made for this address)"
            )
        } else {
            reason
        };
        (ClientError::Unreachable { addr: addr.to_string(), reason }, true)
    } else if e.is_timeout() {
        let last = format!("no answer from {addr}");
        (ClientError::Timeout { after: timeout, last }, false)
    } else {
        (ClientError::Unreachable { addr: addr.to_string(), reason: root_cause(&e) }, false)
    }
}

/// The innermost cause of a transport error in a few words (`connection refused`).
fn root_cause(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        if let Some(io) = next.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                std::io::ErrorKind::ConnectionReset => "connection reset".to_string(),
                _ => io.to_string(),
            };
        }
        cause = next;
    }
    cause.to_string()
}

/// Builds an [`ClientError::Api`] from an error answer.
fn api_error(reply: &Reply) -> ClientError {
    #[derive(Deserialize)]
    struct Body {
        error: Detail,
    }
    #[derive(Deserialize)]
    struct Detail {
        code: String,
        message: String,
    }
    let (code, message) = match serde_json::from_slice::<Body>(&reply.body) {
        Ok(b) => (b.error.code, b.error.message),
        Err(_) => {
            let reason = reply.status.canonical_reason().unwrap_or("error");
            let text = snippet(&reply.body);
            let message = if text.is_empty() { reason.to_string() } else { text };
            (format!("http_{}", reply.status.as_u16()), message)
        }
    };
    ClientError::Api { status: reply.status.as_u16(), code, message, addr: reply.addr.clone() }
}

/// Encodes a request body. Serializing a `serde_json::Value` or a schema cannot fail
/// (every map key is a string), so this returns the bytes directly.
fn to_body<T: Serialize + ?Sized>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("JSON values and schemas always serialize"))
}

/// `/seg/seg?k=v`, every part percent-encoded.
fn path<V: AsRef<str>>(segments: &[&str], query: &[(&str, V)]) -> String {
    let mut url = Url::parse("http://localhost/").expect("static URL");
    url.path_segments_mut().expect("http URL has a path").clear().extend(segments);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (k, v.as_ref())));
    }
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// `host:port` from a user: trims, drops an `http://` or `https://` prefix and a
/// trailing `/` (the scheme is the client's: https with a CA file).
fn normalize_addr(addr: &str) -> Result<String, ClientError> {
    let bad =
        |reason: &str| ClientError::InvalidAddress { addr: addr.into(), reason: reason.into() };
    let a = addr.trim();
    let a = a.strip_prefix("http://").or_else(|| a.strip_prefix("https://")).unwrap_or(a);
    let a = a.strip_suffix('/').unwrap_or(a);
    if a.is_empty() || a.contains(['/', '?', '#', '@']) || a.contains(char::is_whitespace) {
        return Err(bad("expected host:port"));
    }
    let url = Url::parse(&format!("http://{a}/")).map_err(|e| bad(&e.to_string()))?;
    if url.host_str().is_none()
        || a.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).is_none()
    {
        return Err(bad("expected host:port"));
    }
    Ok(a.to_string())
}

/// `host:port` of a URL (port made explicit).
fn url_addr(url: &Url) -> Option<String> {
    Some(format!("{}:{}", url.host_str()?, url.port_or_known_default()?))
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name)?.to_str().ok().map(|s| s.trim().to_string())
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    header_str(headers, name)?.parse().ok()
}

/// The start of a body, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// A mock node for tests of HTTP clients (this client, the bench's workers): a warp
/// server on a free port that answers with a given function and records what it saw.
#[cfg(test)]
pub(crate) mod mock {
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use warp::Filter;

    /// What a mock node saw.
    #[derive(Debug, Clone)]
    pub struct Seen {
        pub method: String,
        pub path_and_query: String,
        pub body: String,
        /// The request headers.
        pub headers: warp::http::HeaderMap,
    }

    /// A mock node's answer: status, extra headers, body.
    pub type Answer = (u16, Vec<(&'static str, String)>, String);

    /// Serves `handler` on a free port; returns `host:port` and every request it saw.
    pub async fn mock<F>(handler: F) -> (String, Arc<Mutex<Vec<Seen>>>)
    where
        F: Fn(&Seen) -> Answer + Send + Sync + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (handler, seen_log) = (Arc::new(handler), log.clone());
        let route = warp::method()
            .and(warp::path::full())
            .and(warp::query::raw().or(warp::any().map(String::new)).unify())
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .map(
                move |m: warp::http::Method,
                      p: warp::path::FullPath,
                      q: String,
                      headers: warp::http::HeaderMap,
                      b: Bytes| {
                    let path_and_query = if q.is_empty() {
                        p.as_str().to_string()
                    } else {
                        format!("{}?{q}", p.as_str())
                    };
                    let seen = Seen {
                        method: m.to_string(),
                        path_and_query,
                        body: String::from_utf8_lossy(&b).into(),
                        headers,
                    };
                    let (status, headers, body) = handler(&seen);
                    seen_log.lock().unwrap().push(seen);
                    let mut resp = warp::http::Response::builder().status(status);
                    for (k, v) in headers {
                        resp = resp.header(k, v);
                    }
                    if !resp.headers_ref().is_some_and(|h| h.contains_key("content-type")) {
                        resp = resp.header("content-type", "application/json");
                    }
                    resp.body(body).unwrap()
                },
            );
        tokio::spawn(warp::serve(route).incoming(listener).run());
        (addr, log)
    }
}

#[cfg(test)]
mod tests {
    //! The client against small in-process warp servers that play leader, follower and
    //! leaderless node.

    use std::sync::atomic::AtomicUsize;

    use serde_json::json;

    use super::mock::{mock, Seen};
    use super::*;

    /// How many requests a mock node got.
    fn hits(seen: &Mutex<Vec<Seen>>) -> usize {
        seen.lock().unwrap().len()
    }

    /// A node that answers every request as node `id` with the given role.
    fn node_headers(id: u64, role: &str) -> Vec<(&'static str, String)> {
        vec![
            ("x-raft-node", id.to_string()),
            ("x-raft-role", role.to_string()),
            ("x-raft-applied", "7".to_string()),
        ]
    }

    /// A leader that accepts every write at version 7 and serves one item.
    async fn leader(id: u64) -> (String, Arc<Mutex<Vec<Seen>>>) {
        mock(move |s| {
            let body = match s.method.as_str() {
                "GET" => json!({"item": {"Artist": "Queen"}, "version": 7}),
                _ => json!({"version": 7}),
            };
            (200, node_headers(id, "Leader"), body.to_string())
        })
        .await
    }

    /// A follower that redirects every write to `leader` and answers reads itself.
    async fn follower(id: u64, leader: String) -> (String, Arc<Mutex<Vec<Seen>>>) {
        mock(move |s| {
            if s.method == "GET" {
                return (404, node_headers(id, "Follower"), not_found("item_not_found"));
            }
            let mut h = node_headers(id, "Follower");
            h.push(("location", format!("http://{leader}{}", s.path_and_query)));
            (307, h, String::new())
        })
        .await
    }

    fn not_found(code: &str) -> String {
        json!({"error": {"code": code, "message": "nothing here"}}).to_string()
    }

    /// An address nothing listens on.
    fn dead_addr() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    }

    #[tokio::test]
    async fn write_to_follower_follows_307_and_caches_the_leader() {
        let (leader_addr, leader_hits) = leader(1).await;
        let (follower_addr, follower_hits) = follower(2, leader_addr.clone()).await;
        let client = Client::new([follower_addr.as_str()]).unwrap();

        let r = client.put_item("Music", &json!({"Artist": "Queen"})).await.unwrap();
        assert_eq!(r.value.version, 7);
        assert_eq!(r.redirected_to.as_deref(), Some(leader_addr.as_str()));
        assert_eq!((r.node, r.role.as_deref(), r.applied), (Some(1), Some("Leader"), Some(7)));
        assert_eq!(client.leader_hint().as_deref(), Some(leader_addr.as_str()));

        // The second write goes straight to the cached leader.
        let r = client.put_item("Music", &json!({"Artist": "Queen"})).await.unwrap();
        assert_eq!(r.redirected_to, None);
        assert_eq!(hits(&follower_hits), 1);
        assert_eq!(hits(&leader_hits), 2);
    }

    /// A mock leader that answers `body` to every request.
    async fn recording_leader(body: Value) -> (String, Arc<Mutex<Vec<Seen>>>) {
        mock(move |_| (200, vec![], body.to_string())).await
    }

    #[tokio::test]
    async fn redirect_resends_method_and_encoded_path_and_query() {
        let (leader_addr, seen) = recording_leader(json!({"deleted": true, "version": 3})).await;
        let (follower_addr, _) = follower(0, leader_addr).await;
        let client = Client::new([follower_addr]).unwrap();
        let r = client.delete_item("My Table", "a b&c", Some("é/x")).await.unwrap();
        assert!(r.value.deleted);
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].method, "DELETE");
        assert_eq!(seen[0].path_and_query, "/tables/My%20Table/items?pk=a+b%26c&sk=%C3%A9%2Fx");
    }

    #[tokio::test]
    async fn redirect_resends_the_body_with_numbers_exact() {
        let (leader_addr, seen) = recording_leader(json!({"version": 4})).await;
        let (follower_addr, _) = follower(0, leader_addr).await;
        let client = Client::new([follower_addr]).unwrap();
        let item: Value = serde_json::from_str(r#"{"k": 1.50}"#).unwrap();
        client.put_item("T", &item).await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!((seen[0].method.as_str(), seen[0].body.as_str()), ("PUT", r#"{"k":1.50}"#));
    }

    /// Write retries start at tens of milliseconds and never pause longer than 200 ms,
    /// so a write through a failover is acknowledged at most that long after the new
    /// leader is ready.
    #[test]
    fn write_retry_pauses_start_short_and_stay_short() {
        let mut pauses = vec![FIRST_BACKOFF];
        while pauses.len() < 30 {
            pauses.push(next_backoff(*pauses.last().unwrap()));
        }
        assert!(pauses[0] <= Duration::from_millis(50));
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]), "{pauses:?}");
        assert_eq!(*pauses.last().unwrap(), MAX_BACKOFF);
        assert!(MAX_BACKOFF <= Duration::from_millis(200));
        let to_cap: Duration = pauses.iter().take_while(|p| **p < MAX_BACKOFF).sum();
        assert!(to_cap < Duration::from_millis(600), "{to_cap:?} before reaching the cap");
    }

    #[tokio::test]
    async fn write_retries_503_until_a_leader_appears() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let (addr, _) = mock(move |_| {
            if c.fetch_add(1, Ordering::SeqCst) < 2 {
                let body = json!({"error": {"code": "unavailable", "message": "no leader"}});
                (503, vec![("retry-after", "1".into())], body.to_string())
            } else {
                (200, node_headers(0, "Leader"), json!({"version": 9}).to_string())
            }
        })
        .await;
        let client = Client::new([addr]).unwrap();
        let r = client.put_item("T", &json!({"k": "v"})).await.unwrap();
        assert_eq!(r.value.version, 9);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    /// A write whose outcome the node could not learn (504 `outcome_unknown`) may have
    /// been applied: it is reported, never resent to this or another node.
    #[tokio::test]
    async fn a_write_of_unknown_outcome_is_reported_and_not_resent() {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut nodes = Vec::new();
        for _ in 0..2 {
            let c = calls.clone();
            let (addr, _) = mock(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
                let body = json!({"error": {"code": "outcome_unknown", "message": "lost"}});
                (504, vec![], body.to_string())
            })
            .await;
            nodes.push(addr);
        }
        let client = Client::new(nodes).unwrap();
        let err = client.put_item("T", &json!({"k": "v"})).await.unwrap_err();
        assert_eq!(err.code(), Some("outcome_unknown"));
        assert_eq!(err.status(), Some(504));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "sent once, to one node");
    }

    #[tokio::test]
    async fn write_gives_up_at_the_deadline_with_the_last_error() {
        let (addr, _) = mock(|_| {
            let body = json!({"error": {"code": "unavailable", "message": "no leader"}});
            (503, vec![("retry-after", "1".into())], body.to_string())
        })
        .await;
        let client =
            Client::builder([addr]).write_deadline(Duration::from_millis(300)).build().unwrap();
        let err = client.put_item("T", &json!({"k": "v"})).await.unwrap_err();
        match err {
            ClientError::Timeout { last, .. } => assert!(last.contains("no leader"), "{last}"),
            other => panic!("expected Timeout, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn write_skips_a_dead_node_and_reaches_a_live_one() {
        let (live, _) = leader(4).await;
        let client = Client::new([dead_addr(), live.clone()]).unwrap();
        let r = client.put_item("T", &json!({"k": "v"})).await.unwrap();
        assert_eq!(r.addr, live);
        assert_eq!(client.leader_hint(), Some(live));
    }

    #[tokio::test]
    async fn write_keeps_trying_while_nodes_redirect_to_a_dead_leader() {
        // A follower still points at a crashed leader; that is a live cluster mid
        // election, so the client retries until the deadline instead of giving up.
        let (follower_addr, seen) = follower(1, dead_addr()).await;
        let client = Client::builder([follower_addr])
            .write_deadline(Duration::from_millis(300))
            .build()
            .unwrap();
        let err = client.put_item("T", &json!({"k": "v"})).await.unwrap_err();
        assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
        assert!(hits(&seen) >= 2);
    }

    #[tokio::test]
    async fn unreachable_nodes_fail_fast_with_a_clear_reason() {
        let dead = dead_addr();
        let client = Client::new([dead.clone()]).unwrap();
        let err = client.get_item("T", "a", None).await.unwrap_err();
        assert_eq!(err.to_string(), format!("cannot reach node at {dead}: connection refused"));
        let err = client.put_item("T", &json!({"k": "v"})).await.unwrap_err();
        assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn api_errors_carry_status_code_and_message() {
        let (follower_addr, _) = follower(2, dead_addr()).await;
        let client = Client::new([follower_addr]).unwrap();
        let err = client.get_item("T", "a", Some("b")).await.unwrap_err();
        assert!(err.is_not_found());
        assert_eq!(err.code(), Some("item_not_found"));
        assert_eq!(err.status(), Some(404));

        let (addr, _) = mock(|_| (500, vec![], "oops".into())).await;
        let err = Client::new([addr]).unwrap().list_tables().await.unwrap_err();
        assert_eq!(err.code(), Some("http_500"));
        assert!(err.to_string().contains("oops"));
    }

    #[tokio::test]
    async fn redirect_loops_are_cut_off() {
        let (a, _) = mock(|s| {
            let h = vec![("location", s.path_and_query.clone())];
            (307, h, String::new())
        })
        .await;
        let client = Client::builder([a]).max_redirects(3).build().unwrap();
        let err = client.delete_table("T").await.unwrap_err();
        assert!(matches!(err, ClientError::Redirect(_)), "{err:?}");
    }

    #[tokio::test]
    async fn reads_go_to_the_chosen_target() {
        let (l, lh) = leader(0).await;
        let (f, fh) = follower(1, l.clone()).await;
        let client = Client::new([l.clone(), f.clone()]).unwrap();
        client.get_item("T", "Queen", None).await.unwrap();
        let on_follower = client.with_target(&f).unwrap();
        assert!(on_follower.get_item("T", "Queen", None).await.unwrap_err().is_not_found());
        assert_eq!((hits(&lh), hits(&fh)), (1, 1));
    }

    #[tokio::test]
    async fn query_sends_every_condition() {
        let seen = Arc::new(Mutex::new(String::new()));
        let s2 = seen.clone();
        let (a, _) = mock(move |s| {
            *s2.lock().unwrap() = s.path_and_query.clone();
            (200, vec![], json!({"items": [], "count": 0, "next": null}).to_string())
        })
        .await;
        let client = Client::new([a]).unwrap();
        let params = QueryParams {
            sort_key_prefix: Some("Don't".into()),
            sk_ge: Some("A".into()),
            limit: Some(10),
            start_after: Some("B".into()),
            descending: true,
            ..QueryParams::partition("Journey")
        };
        let page = client.query("Music", &params).await.unwrap().value;
        assert_eq!((page.count, page.next), (0, None));
        assert_eq!(
            *seen.lock().unwrap(),
            "/tables/Music/query?pk=Journey&sk_prefix=Don%27t&sk_ge=A&start_after=B&limit=10&desc=true"
        );
    }

    #[tokio::test]
    async fn reads_ask_for_the_chosen_consistency() {
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = seen.clone();
        let (addr, _) = mock(move |s| {
            log.lock().unwrap().push(s.path_and_query.clone());
            let body = match s.method.as_str() {
                "GET" => json!({"items": [], "count": 0, "next": null}),
                _ => json!({"version": 42}),
            };
            (200, vec![("x-raft-index", "42".into())], body.to_string())
        })
        .await;
        let client = Client::builder([addr]).consistency(Consistency::Session).build().unwrap();
        client.scan("T", None, None).await.unwrap(); // no write yet: eventual
        client.put_item("T", &json!({"k": "v"})).await.unwrap();
        assert_eq!(client.last_written_index(), Some(42));
        client.scan("T", Some(5), None).await.unwrap();
        client.with_consistency(Consistency::Strong).scan("T", None, None).await.unwrap();
        client.with_consistency(Consistency::AfterIndex(7)).scan("T", None, None).await.unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "/tables/T/scan",
                "/tables/T/items",
                "/tables/T/scan?limit=5&after_index=42",
                "/tables/T/scan?consistency=strong",
                "/tables/T/scan?after_index=7",
            ]
        );
    }

    #[test]
    fn node_status_reads_what_a_node_sends_and_defaults_the_rest() {
        let text = r#"{"node_id":1,"role":"Follower","term":3,"leader_id":0,"applied":12,
            "lag_entries":2,"digest":"ab12","digest_index":12,"apply_delay_ms":0,"x":1.50}"#;
        let s: NodeStatus = serde_json::from_str(text).unwrap();
        assert_eq!((s.node_id, s.term, s.leader_id, s.applied), (1, 3, Some(0), Some(12)));
        assert_eq!((s.lag_entries, s.lag_ms), (2, 0));
        assert_eq!((s.digest.as_str(), s.digest_index), ("ab12", 12));
    }

    #[test]
    fn addresses_are_normalized_or_rejected() {
        assert_eq!(normalize_addr(" http://127.0.0.1:8100/ ").unwrap(), "127.0.0.1:8100");
        assert_eq!(normalize_addr("localhost:8101").unwrap(), "localhost:8101");
        assert_eq!(normalize_addr("[::1]:8102").unwrap(), "[::1]:8102");
        assert_eq!(normalize_addr("https://127.0.0.1:8100").unwrap(), "127.0.0.1:8100");
        for bad in ["", "localhost", "a b:1", "host:port", "h:1/x", "ftp://h:1"] {
            assert!(normalize_addr(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Client::new(Vec::<String>::new()).is_err());
        // https needs a CA to check the node with.
        let err = Client::new(["https://127.0.0.1:8100"]).unwrap_err();
        assert!(
            matches!(err, ClientError::Tls(_)) && err.to_string().contains("--ca-file"),
            "{err}"
        );
    }
}
