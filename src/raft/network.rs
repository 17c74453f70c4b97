//! The Raft network: openraft's RPCs (AppendEntries, Vote, InstallSnapshot) as HTTP
//! POSTs of JSON to the peer's `/raft/append`, `/raft/vote` and `/raft/snapshot`, plus
//! our own `/raft/read_index` (a follower's strong reads ask the leader for a read index).
//!
//! - One `reqwest::Client` per peer, kept for the life of the process, so connections
//!   are reused (keep-alive) instead of opened per RPC.
//! - Each RPC has the timeout openraft gives in its `RPCOption` (for AppendEntries that
//!   is the heartbeat interval).
//! - A refused connection is reported as `Unreachable`, so openraft backs off instead
//!   of retrying hot; other transport failures are `Network` errors; a Raft error the
//!   peer returned is a `RemoteError`.
//! - With a cluster secret, every RPC carries its proof (`x-raft-nosql-auth`, added to
//!   each peer's client by `security::Security::client_builder`); a peer that refuses
//!   it answers 401, reported as a `Network` error naming the reason and logged once
//!   per peer as `proof_refused` (the two nodes hold different secrets).
//!
//! The server side of these RPCs is `server::raft`.
//!
//! **Fault injection** ([`Faults`]) lives here, in the transport and nowhere else, so
//! it models exactly a bad network: a partition drops RPCs to and from the listed
//! peers (as `Unreachable`, both directions: every RPC says who sent it in
//! `x-raft-from` and the receiver refuses blocked senders); a slow link delays each
//! outgoing RPC by `delay_ms ± jitter_ms` and drops a `drop_rate` fraction of them.
//! Storage and the client API are untouched, so a partitioned node still answers
//! clients: stale eventual reads, refused strong reads.
//!
//! Peer reachability changes are logged once per change (`peer_unreachable`,
//! `peer_reachable`), not once per retry.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::lease::Lease;
use super::payload::PayloadBudget;
use super::{NodeAddr, NodeId, TypeConfig};

/// Header naming the sending node of a Raft RPC.
pub const FROM_HEADER: &str = "x-raft-from";

/// The network faults a node currently simulates. Default: none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultSpec {
    /// Peers this node cannot exchange Raft messages with (both directions).
    pub partitioned_from: BTreeSet<NodeId>,
    /// Added delay of each outgoing Raft message, in ms.
    pub delay_ms: u64,
    /// Random extra delay, uniform in [0, jitter_ms], in ms.
    pub jitter_ms: u64,
    /// Fraction (0.0–1.0) of outgoing Raft messages dropped.
    pub drop_rate: f64,
}

impl FaultSpec {
    /// Whether anything is being simulated.
    pub fn is_active(&self) -> bool {
        !self.partitioned_from.is_empty()
            || self.delay_ms > 0
            || self.jitter_ms > 0
            || self.drop_rate > 0.0
    }

    /// Checks the values make sense.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.drop_rate) {
            return Err(format!("drop_rate must be between 0 and 1, got {}", self.drop_rate));
        }
        if self.delay_ms > 60_000 || self.jitter_ms > 60_000 {
            return Err("delay_ms and jitter_ms must be at most 60000".into());
        }
        Ok(())
    }
}

/// The faults of one node, shared by its transport (outgoing) and its Raft RPC routes
/// (incoming).
#[derive(Debug, Default)]
pub struct Faults {
    spec: RwLock<FaultSpec>,
}

impl Faults {
    pub fn get(&self) -> FaultSpec {
        self.spec.read().expect("faults lock").clone()
    }

    pub fn set(&self, spec: FaultSpec) {
        *self.spec.write().expect("faults lock") = spec;
    }

    /// Whether Raft messages from/to `peer` are blocked.
    pub fn blocks(&self, peer: NodeId) -> bool {
        self.spec.read().expect("faults lock").partitioned_from.contains(&peer)
    }
}

/// A small xorshift generator for jitter and drops (no need for a crypto RNG).
fn random_unit() -> f64 {
    use std::cell::Cell;
    thread_local!(static STATE: Cell<u64> = Cell::new(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1) | 1
    ));
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// Builds per-peer connections; keeps one HTTP client per peer.
#[derive(Clone)]
pub struct Network {
    me: NodeId,
    clients: Arc<Mutex<HashMap<NodeId, reqwest::Client>>>,
    faults: Arc<Faults>,
    reachable: Arc<Mutex<HashMap<NodeId, bool>>>,
    /// Records which peers accepted this node's AppendEntries, and when they were sent.
    lease: Arc<Lease>,
    /// The byte budget of AppendEntries payloads, adapted to how long they take.
    payload: Arc<PayloadBudget>,
    /// Per peer, the AppendEntries with entries in flight.
    flights: Arc<Flights>,
    /// Adds the cluster secret's proof to every RPC.
    security: Arc<crate::security::Security>,
    /// Peers that refused this node's proof (logged once each).
    refused_proof: Arc<Mutex<std::collections::HashSet<NodeId>>>,
}

impl Network {
    pub fn new(
        me: NodeId,
        faults: Arc<Faults>,
        lease: Arc<Lease>,
        payload: Arc<PayloadBudget>,
        security: Arc<crate::security::Security>,
    ) -> Network {
        Network {
            me,
            security,
            refused_proof: Arc::default(),
            clients: Arc::default(),
            faults,
            reachable: Arc::default(),
            lease,
            payload,
            flights: Arc::default(),
        }
    }

    fn client_for(&self, target: NodeId) -> reqwest::Client {
        let mut clients = self.clients.lock().expect("network lock");
        clients
            .entry(target)
            .or_insert_with(|| {
                self.security
                    .client_builder(crate::tls::client(reqwest::Client::builder()))
                    .no_proxy()
                    .tcp_nodelay(true)
                    .pool_max_idle_per_host(4)
                    .build()
                    .expect("reqwest client builds")
            })
            .clone()
    }
}

impl Network {
    /// Asks the leader `target` (at `addr`) for a read index: once it knows it still
    /// leads (its lease, or a heartbeat round to a quorum) it answers the commit index a
    /// linearizable read must see
    /// (`POST /raft/read_index`, see `server::reads`). Faults apply as to every Raft
    /// message; a failure is the reason, for a 503.
    pub async fn read_index(
        &self,
        target: NodeId,
        addr: &str,
        timeout: Duration,
    ) -> Result<u64, String> {
        let peer = PeerConnection {
            target,
            addr: addr.to_string(),
            client: self.client_for(target),
            net: self.clone(),
        };
        peer.simulate(timeout).await.map_err(|e| format!("leader {target}: {e}"))?;
        let resp = peer
            .client
            .post(crate::tls::url(addr, "/raft/read_index"))
            .header(FROM_HEADER, self.me)
            .timeout(timeout)
            .body("{}")
            .send()
            .await
            .map_err(|e| format!("leader {target} at {addr}: {e}"))?;
        let status = resp.status();
        let body: serde_json::Value =
            resp.json().await.map_err(|e| format!("leader {target}: bad answer: {e}"))?;
        match body.get("index").and_then(|i| i.as_u64()) {
            Some(index) if status.is_success() => Ok(index),
            _ => Err(format!(
                "leader {target} answered {status}: {}",
                body.pointer("/error/message").and_then(|m| m.as_str()).unwrap_or("no index")
            )),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &NodeAddr) -> PeerConnection {
        // Must not connect here: openraft calls this eagerly; the first RPC connects.
        PeerConnection {
            target,
            addr: node.addr.clone(),
            client: self.client_for(target),
            net: self.clone(),
        }
    }
}

/// The RPC client of one peer.
#[derive(Clone)]
pub struct PeerConnection {
    target: NodeId,
    addr: String,
    client: reqwest::Client,
    net: Network,
}

impl PeerConnection {
    /// Logs a reachability change of this peer (once per change).
    fn note_reachable(&self, ok: bool) {
        let mut map = self.net.reachable.lock().expect("reachability lock");
        let before = map.insert(self.target, ok);
        match (before, ok) {
            (Some(true) | None, false) => {
                tracing::warn!(event = "peer_unreachable", peer = self.target, addr = %self.addr, "peer unreachable")
            }
            (Some(false), true) => {
                tracing::info!(event = "peer_reachable", peer = self.target, addr = %self.addr, "peer reachable")
            }
            _ => {}
        }
    }

    /// Applies the simulated faults to one outgoing message: Err if it is lost.
    async fn simulate(&self, ttl: Duration) -> Result<(), std::io::Error> {
        let f = self.net.faults.get();
        if f.partitioned_from.contains(&self.target) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "partitioned (simulated)",
            ));
        }
        let delay = f.delay_ms as f64 + f.jitter_ms as f64 * random_unit();
        if delay > 0.0 {
            let d = Duration::from_micros((delay * 1000.0) as u64);
            tokio::time::sleep(d.min(ttl)).await;
            if d >= ttl {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "delayed past the RPC timeout (simulated)",
                ));
            }
        }
        if f.drop_rate > 0.0 && random_unit() < f.drop_rate {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "message dropped (simulated)",
            ));
        }
        Ok(())
    }

    async fn send<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, NodeAddr, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        self.send_body(path, to_body(req), option).await
    }

    /// Sends an already encoded JSON request body.
    async fn send_body<Resp, E>(
        &self,
        path: &str,
        body: Vec<u8>,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, NodeAddr, RaftError<NodeId, E>>>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let url = crate::tls::url(&self.addr, &format!("/raft/{path}"));
        if let Err(e) = self.simulate(option.hard_ttl()).await {
            self.note_reachable(false);
            return Err(match e.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    RPCError::Unreachable(Unreachable::new(&e))
                }
                _ => RPCError::Network(NetworkError::new(&e)),
            });
        }
        let resp = self
            .client
            .post(&url)
            .header(FROM_HEADER, self.net.me)
            .timeout(option.hard_ttl())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                self.note_reachable(false);
                if e.is_connect() {
                    RPCError::Unreachable(Unreachable::new(&e))
                } else {
                    RPCError::Network(NetworkError::new(&e))
                }
            })?;
        if resp.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            // The peer refuses us: it simulates a partition on its side.
            self.note_reachable(false);
            let e = std::io::Error::other(format!(
                "peer {} refuses Raft messages from us (partitioned)",
                self.target
            ));
            return Err(RPCError::Unreachable(Unreachable::new(&e)));
        }
        self.note_reachable(true);
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED
            && self.net.refused_proof.lock().expect("refused lock").insert(self.target)
        {
            tracing::warn!(
                event = "proof_refused",
                peer = self.target,
                addr = %self.addr,
                "node {} refuses this node's Raft messages (401): the two hold different \
                 cluster secrets, or one has none; give every node the same secret_file",
                self.target
            );
        }
        if !resp.status().is_success() {
            let status = resp.status();
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            let why = body.pointer("/error/message").and_then(|m| m.as_str()).unwrap_or("");
            let msg = format!("peer {} answered {status} to {path}: {why}", self.target);
            return Err(RPCError::Network(NetworkError::new(&std::io::Error::other(msg))));
        }
        let result: Result<Resp, RaftError<NodeId, E>> =
            resp.json().await.map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// Encodes a Raft RPC body. Raft messages are plain data: encoding cannot fail.
fn to_body<T: Serialize>(req: &T) -> Vec<u8> {
    serde_json::to_vec(req).expect("raft messages encode as JSON")
}

/// One AppendEntries with entries in flight: dropped unanswered means openraft's
/// timeout cut it off.
struct PayloadTiming<'a> {
    budget: &'a PayloadBudget,
    answered: bool,
}

impl Drop for PayloadTiming<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.budget.timed_out();
        }
    }
}

impl PeerConnection {
    /// Sends an AppendEntries that carries entries as a request that outlives
    /// openraft's timeout (see [`Flight`]), or waits for the one already in flight with
    /// the same content. Returns its answer and when it was sent.
    async fn append_in_flight(
        &self,
        req: AppendEntriesRequest<TypeConfig>,
        ttl: Duration,
    ) -> (AppendResult, Instant) {
        let key = FlightKey {
            vote: req.vote,
            prev: req.prev_log_id,
            last: req.entries.last().map(|e| e.log_id),
        };
        let same = {
            let flights = self.net.flights.lock().expect("flights lock");
            flights.get(&self.target).filter(|f| f.key == key).map(Flight::clone_handle)
        };
        let flight = match same {
            Some(f) => f,
            None => {
                let body = to_body(&req);
                let (tx, rx) = tokio::sync::watch::channel(None);
                let flight = Flight { key, sent: Instant::now(), bytes: body.len(), rx };
                let conn = self.clone();
                let option = RPCOption::new(FLIGHT_TIMEOUT);
                tokio::spawn(async move {
                    let r = conn.send_body("append", body, &option).await;
                    let _ = tx.send(Some(r));
                });
                let mut flights = self.net.flights.lock().expect("flights lock");
                flights.insert(self.target, flight.clone_handle());
                flight
            }
        };
        // The budget learns how long these bytes took; if openraft gives up on this
        // future at its timeout (drops it), the guard halves the budget.
        let mut timing = PayloadTiming { budget: &self.net.payload, answered: false };
        let mut rx = flight.rx.clone();
        let result = match rx.wait_for(Option::is_some).await {
            Ok(r) => clone_result(r.as_ref().expect("waited for Some")),
            Err(_) => Err(RPCError::Network(NetworkError::new(&std::io::Error::other(
                "the AppendEntries task ended without an answer",
            )))),
        };
        timing.answered = true;
        if result.is_ok() {
            timing.budget.answered(flight.bytes, flight.sent.elapsed(), ttl);
        }
        // Answered: the next AppendEntries with this content is a new request.
        let mut flights = self.net.flights.lock().expect("flights lock");
        if flights.get(&self.target).is_some_and(|f| f.key == flight.key) {
            flights.remove(&self.target);
        }
        (result, flight.sent)
    }
}

type AppendResult =
    Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeAddr, RaftError<NodeId>>>;

/// An upper bound for one AppendEntries in flight (a peer that never answers).
const FLIGHT_TIMEOUT: Duration = Duration::from_secs(60);

/// What an AppendEntries carries, as far as its answer depends on it: the leader's
/// vote and the log ids before and at the end of its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FlightKey {
    vote: crate::raft::Vote,
    prev: Option<crate::raft::LogId>,
    last: Option<crate::raft::LogId>,
}

/// An AppendEntries with entries, sent by a task of its own so that it outlives
/// openraft's timeout.
///
/// openraft gives every AppendEntries one heartbeat interval and then sends the same
/// range again. The byte budget (`raft::payload`) keeps most payloads within that, but
/// one entry can be larger than any heartbeat's worth (a BatchWriteItem of 25 items of
/// 400 KB is one 10 MB entry). Resending it from scratch at every timeout would never
/// finish. Instead the request runs to its end (or [`FLIGHT_TIMEOUT`]) and a retry
/// with the same [`FlightKey`] waits for its answer instead of sending again: catch-up
/// takes as long as the bytes take. An answer used this way is an answer to exactly
/// the request openraft sent, only later, as a slow network would deliver it.
struct Flight {
    key: FlightKey,
    sent: Instant,
    bytes: usize,
    rx: tokio::sync::watch::Receiver<Option<AppendResult>>,
}

impl Flight {
    fn clone_handle(&self) -> Flight {
        Flight { key: self.key, sent: self.sent, bytes: self.bytes, rx: self.rx.clone() }
    }
}

/// The per-peer flights of one node.
type Flights = Mutex<HashMap<NodeId, Flight>>;

/// A copy of an AppendEntries answer (openraft's response type is not `Clone`).
fn clone_result(r: &AppendResult) -> AppendResult {
    match r {
        Ok(AppendEntriesResponse::Success) => Ok(AppendEntriesResponse::Success),
        Ok(AppendEntriesResponse::PartialSuccess(l)) => {
            Ok(AppendEntriesResponse::PartialSuccess(*l))
        }
        Ok(AppendEntriesResponse::Conflict) => Ok(AppendEntriesResponse::Conflict),
        Ok(AppendEntriesResponse::HigherVote(v)) => Ok(AppendEntriesResponse::HigherVote(*v)),
        Err(e) => Err(e.clone()),
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeAddr, RaftError<NodeId>>> {
        let (vote, ttl) = (req.vote, option.hard_ttl());
        let (result, sent) = if req.entries.is_empty() {
            // A heartbeat: small, sent within openraft's timeout like any RPC.
            let sent = Instant::now();
            (self.send("append", &req, &option).await, sent)
        } else {
            self.append_in_flight(req, ttl).await
        };
        let resp = result?;
        match resp {
            // The peer accepted our vote (a conflict is about the log, not the vote).
            AppendEntriesResponse::Success
            | AppendEntriesResponse::PartialSuccess(_)
            | AppendEntriesResponse::Conflict => self.net.lease.acked(self.target, &vote, sent),
            AppendEntriesResponse::HigherVote(_) => {}
        }
        Ok(resp)
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, NodeAddr, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.send("snapshot", &req, &option).await
    }

    async fn vote(
        &mut self,
        req: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeAddr, RaftError<NodeId>>> {
        self.send("vote", &req, &option).await
    }
}
