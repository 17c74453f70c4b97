//! What the dashboard's buttons do beyond the control API's node actions: network
//! faults and apply delays (through each node's admin API, exactly the calls
//! `raft-nosql cluster partition|heal|slow|set-delay` make), a put or get through one
//! chosen node, and a light write load.
//!
//! Every function answers JSON for the page or an [`ApiError`] whose message is a
//! sentence the page shows as it is.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::client::{Client, ClientError, Consistency};
use crate::model::{KeyAttr, KeyType, TableSchema};
use crate::supervisor::control::ApiError;
use crate::supervisor::view::{ClusterView, ProcState};

/// The table the dashboard's load and its put/get form use unless told otherwise.
pub const TABLE: &str = "dashboard";
/// Its partition key attribute.
pub const KEY: &str = "id";

/// Decodes a JSON request body into `T`, or says what was expected.
pub fn body<T: serde::de::DeserializeOwned>(bytes: &[u8], expected: &str) -> Result<T, ApiError> {
    let bytes = if bytes.is_empty() { b"{}".as_slice() } else { bytes };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("expected a JSON body {expected}: {e}")))
}

/// The address of node `id`, if it is in the cluster and running.
fn running_addr(view: &ClusterView, id: u64) -> Result<String, ApiError> {
    let Some(n) = view.nodes.iter().find(|n| n.id == id) else {
        let ids: Vec<String> = view.nodes.iter().map(|n| n.id.to_string()).collect();
        return Err(ApiError::NodeNotFound(format!(
            "no node {id} in the cluster (nodes: {})",
            ids.join(", ")
        )));
    };
    if n.state != ProcState::Running {
        return Err(ApiError::InvalidState(format!(
            "node {id} is not running ({}); start it first",
            n.state
        )));
    }
    Ok(n.addr.clone())
}

/// One call to a node's admin API; a 400 from the node is a bad request.
async fn admin(
    http: &reqwest::Client,
    id: u64,
    addr: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, ApiError> {
    let mut req = http.request(method, crate::tls::url(addr, path));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.map_err(|e| {
        let why = if e.is_connect() { "connection refused".to_string() } else { e.to_string() };
        ApiError::Unreachable(format!("cannot reach node {id} at {addr}: {why}"))
    })?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(v);
    }
    let message = format!("node {id}: {}", v["error"]["message"].as_str().unwrap_or("error"));
    Err(match status.as_u16() {
        400 => ApiError::BadRequest(message),
        _ => ApiError::ActionFailed(message),
    })
}

/// Body of `POST /api/partition`: the nodes to cut off (one side; the others form the
/// other side) or explicit sides.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionRequest {
    #[serde(default)]
    pub nodes: Vec<u64>,
    #[serde(default)]
    pub sides: Vec<Vec<u64>>,
}

/// Checks the sides of a partition: known nodes, each in at most one side; the nodes
/// not named form one more side; at least two sides.
pub fn sides_of(view: &ClusterView, req: &PartitionRequest) -> Result<Vec<Vec<u64>>, ApiError> {
    let mut named: Vec<Vec<u64>> = req.sides.clone();
    if !req.nodes.is_empty() {
        named.push(req.nodes.clone());
    }
    let all: Vec<u64> = view.nodes.iter().map(|n| n.id).collect();
    let mut seen = BTreeSet::new();
    for id in named.iter().flatten() {
        if !all.contains(id) {
            return Err(ApiError::NodeNotFound(format!("no node {id} in the cluster")));
        }
        if !seen.insert(*id) {
            return Err(ApiError::BadRequest(format!("node {id} is named twice")));
        }
    }
    named.retain(|s| !s.is_empty());
    let rest: Vec<u64> = all.into_iter().filter(|i| !seen.contains(i)).collect();
    if !rest.is_empty() {
        named.push(rest);
    }
    if named.len() < 2 {
        return Err(ApiError::BadRequest(
            "a partition needs at least two sides: name the nodes to cut off, not all of them"
                .to_string(),
        ));
    }
    Ok(named)
}

/// Each running node drops Raft messages to every node outside its side (its slow-link
/// settings stay). Nodes that are down are skipped and named in the answer.
pub async fn partition(
    http: &reqwest::Client,
    view: &ClusterView,
    sides: Vec<Vec<u64>>,
) -> Result<Value, ApiError> {
    let mut skipped = Vec::new();
    for side in &sides {
        for &id in side {
            let Ok(addr) = running_addr(view, id) else {
                skipped.push(id);
                continue;
            };
            let others: Vec<u64> = sides.iter().filter(|s| *s != side).flatten().copied().collect();
            let mut spec =
                admin(http, id, &addr, reqwest::Method::GET, "/admin/faults", None).await?;
            spec["partitioned_from"] = json!(others);
            admin(http, id, &addr, reqwest::Method::POST, "/admin/faults", Some(spec)).await?;
        }
    }
    let shown: Vec<String> = sides
        .iter()
        .map(|s| format!("{{{}}}", s.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")))
        .collect();
    let mut message =
        format!("partitioned: {} (Raft messages between sides are dropped)", shown.join(" | "));
    if !skipped.is_empty() {
        message.push_str(&format!("; not running, so not changed: {skipped:?}"));
    }
    Ok(json!({ "message": message, "sides": sides }))
}

/// Removes every partition, slow link and apply delay on every running node.
pub async fn heal(http: &reqwest::Client, view: &ClusterView) -> Result<Value, ApiError> {
    let mut notes = Vec::new();
    for n in &view.nodes {
        let Ok(addr) = running_addr(view, n.id) else { continue };
        let r = async {
            admin(http, n.id, &addr, reqwest::Method::DELETE, "/admin/faults", None).await?;
            let body = json!({ "apply_delay_ms": 0 });
            admin(http, n.id, &addr, reqwest::Method::POST, "/admin/simulation", Some(body)).await
        }
        .await;
        if let Err(e) = r {
            notes.push(e.to_string());
        }
    }
    let mut message =
        "healed: no partitions, slow links or apply delays remain on the running nodes".to_string();
    if !notes.is_empty() {
        message.push_str(&format!(" (not reached: {})", notes.join("; ")));
    }
    Ok(json!({ "message": message }))
}

/// Body of `POST /api/nodes/{id}/slow`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowRequest {
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default)]
    pub jitter_ms: u64,
    #[serde(default)]
    pub drop_rate: f64,
}

/// Delays (and drops some of) one node's outgoing Raft messages.
pub async fn slow(
    http: &reqwest::Client,
    view: &ClusterView,
    id: u64,
    req: SlowRequest,
) -> Result<Value, ApiError> {
    if !(0.0..=1.0).contains(&req.drop_rate) {
        return Err(ApiError::BadRequest(format!(
            "drop_rate must be a fraction from 0.0 to 1.0, not {}",
            req.drop_rate
        )));
    }
    let addr = running_addr(view, id)?;
    let mut spec = admin(http, id, &addr, reqwest::Method::GET, "/admin/faults", None).await?;
    spec["delay_ms"] = req.delay_ms.into();
    spec["jitter_ms"] = req.jitter_ms.into();
    spec["drop_rate"] = req.drop_rate.into();
    let spec = admin(http, id, &addr, reqwest::Method::POST, "/admin/faults", Some(spec)).await?;
    let message = format!(
        "node {id}: outgoing Raft messages delayed {} ms (+0-{} ms), {:.0}% dropped",
        req.delay_ms,
        req.jitter_ms,
        req.drop_rate * 100.0
    );
    Ok(json!({ "message": message, "faults": spec }))
}

/// Body of `POST /api/nodes/{id}/apply-delay`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelayRequest {
    pub apply_delay_ms: u64,
}

/// Sets how late node `id` applies committed entries.
pub async fn apply_delay(
    http: &reqwest::Client,
    view: &ClusterView,
    id: u64,
    req: DelayRequest,
) -> Result<Value, ApiError> {
    let addr = running_addr(view, id)?;
    let body = json!({ "apply_delay_ms": req.apply_delay_ms });
    admin(http, id, &addr, reqwest::Method::POST, "/admin/simulation", Some(body)).await?;
    let message = match req.apply_delay_ms {
        0 => format!("node {id} applies committed entries at once again"),
        ms => format!("node {id} now applies committed entries {ms} ms late"),
    };
    Ok(json!({ "message": message }))
}

/// Body of `POST /api/item`: a put or a get through one chosen node.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemRequest {
    /// `put` or `get`.
    pub op: String,
    /// The node the request is sent to.
    pub node: u64,
    /// Partition key value (attribute `id` of the `dashboard` table).
    pub key: String,
    /// For a put: any JSON value, stored as the attribute `value`.
    #[serde(default)]
    pub value: Value,
    /// For a get: `eventual` (default), `session` (after the dashboard's last put) or
    /// `strong`.
    #[serde(default)]
    pub consistency: Option<String>,
}

/// What a put or get through one node shows: who answered, the redirect, staleness.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ItemAnswer {
    pub message: String,
    pub op: String,
    /// The node the request was sent to.
    pub sent_to: u64,
    /// The node that gave the final answer, its role and applied index.
    pub answered_by: Option<u64>,
    pub role: Option<String>,
    pub applied: Option<u64>,
    /// `host:port` the request was redirected to (307), if it was.
    pub redirected_to: Option<String>,
    pub consistency: Option<String>,
    /// The version written (put) or read (get; `None` = not found).
    pub version: Option<u64>,
    pub item: Option<Value>,
    /// Get only: the newest version the leader has (a strong read just after), and
    /// whether the answer was older than that.
    pub latest_version: Option<u64>,
    pub stale: Option<bool>,
}

fn schema() -> TableSchema {
    TableSchema {
        table_name: TABLE.into(),
        partition_key: KeyAttr { name: KEY.into(), key_type: KeyType::S },
        sort_key: None,
    }
}

/// Creates the dashboard's table unless it exists.
pub async fn ensure_table(client: &Client) -> Result<(), ClientError> {
    match client.create_table(&schema()).await {
        Ok(_) => Ok(()),
        Err(ClientError::Api { code, .. }) if code == "table_exists" => Ok(()),
        Err(e) => Err(e),
    }
}

fn client_error(e: ClientError) -> ApiError {
    match e {
        ClientError::Unreachable { .. } => ApiError::Unreachable(e.to_string()),
        ClientError::Api { status: 400, .. } => ApiError::BadRequest(e.to_string()),
        e => ApiError::ActionFailed(e.to_string()),
    }
}

/// Sends one put or get to node `req.node` and reports what happened.
pub async fn item(
    view: &ClusterView,
    last_version: &AtomicU64,
    req: ItemRequest,
) -> Result<ItemAnswer, ApiError> {
    if req.key.is_empty() {
        return Err(ApiError::BadRequest("key must not be empty".into()));
    }
    let addr = running_addr(view, req.node)?;
    let all: Vec<String> = view.nodes.iter().map(|n| n.addr.clone()).collect();
    let builder = Client::builder([addr.clone()])
        .write_deadline(Duration::from_secs(3))
        .request_timeout(Duration::from_secs(3));
    let mut answer = ItemAnswer { op: req.op.clone(), sent_to: req.node, ..Default::default() };
    match req.op.as_str() {
        "put" => {
            if req.consistency.is_some() {
                return Err(ApiError::BadRequest("consistency applies to get, not put".into()));
            }
            let client = builder.build().map_err(client_error)?;
            // A put may go to a follower: the dashboard's table is created through the
            // whole cluster (any node redirects to the leader).
            let everyone = Client::builder(all.clone())
                .write_deadline(Duration::from_secs(3))
                .build()
                .map_err(client_error)?;
            ensure_table(&everyone).await.map_err(client_error)?;
            let item = json!({ KEY: req.key, "value": req.value });
            let r = client.put_item(TABLE, &item).await.map_err(client_error)?;
            last_version.fetch_max(r.value.version, Ordering::SeqCst);
            answer.answered_by = r.node;
            answer.role = r.role.clone();
            answer.applied = r.applied;
            answer.redirected_to = r.redirected_to.clone();
            answer.version = Some(r.value.version);
            answer.message = format!(
                "put {:?} through node {}: {}written at version {} by node {}",
                req.key,
                req.node,
                match &r.redirected_to {
                    Some(to) => format!("redirected (307) to the leader {to}, "),
                    None => String::new(),
                },
                r.value.version,
                r.node.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
            );
        }
        "get" => {
            let name = req.consistency.clone().unwrap_or_else(|| "eventual".into());
            let consistency = match name.as_str() {
                "eventual" => Consistency::Eventual,
                "strong" => Consistency::Strong,
                "session" => match last_version.load(Ordering::SeqCst) {
                    0 => Consistency::Eventual,
                    v => Consistency::AfterIndex(v),
                },
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "consistency must be eventual, session or strong, not {other:?}"
                    )))
                }
            };
            answer.consistency = Some(name.clone());
            let client = builder.consistency(consistency).build().map_err(client_error)?;
            let found = match client.get_item(TABLE, &req.key, None).await {
                Ok(r) => Some(r),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(client_error(e)),
            };
            if let Some(r) = &found {
                answer.answered_by = r.node;
                answer.role = r.role.clone();
                answer.applied = r.applied;
                answer.redirected_to = r.redirected_to.clone();
                answer.version = Some(r.value.version);
                answer.item = Some(r.value.item.clone());
            }
            // What the leader has now: a strong read through the whole cluster.
            let strong = Client::builder(all)
                .consistency(Consistency::Strong)
                .request_timeout(Duration::from_secs(3))
                .build()
                .map_err(client_error)?;
            match strong.get_item(TABLE, &req.key, None).await {
                Ok(r) => answer.latest_version = Some(r.value.version),
                Err(e) if e.is_not_found() => answer.latest_version = None,
                Err(_) => {}
            }
            answer.stale = Some(match (answer.version, answer.latest_version) {
                (Some(v), Some(l)) => v < l,
                (None, Some(_)) => true,
                _ => false,
            });
            let who = answer.answered_by.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
            answer.message = match (&found, answer.stale) {
                (None, _) => format!(
                    "get {:?} through node {} ({name}): not found{}",
                    req.key,
                    req.node,
                    if answer.stale == Some(true) { " — stale: the leader has it" } else { "" }
                ),
                (Some(r), stale) => format!(
                    "get {:?} through node {} ({name}): version {} answered by node {who}{}{}",
                    req.key,
                    req.node,
                    r.value.version,
                    match &r.redirected_to {
                        Some(to) => format!(" after a redirect to {to}"),
                        None => String::new(),
                    },
                    match (stale, answer.latest_version) {
                        (Some(true), Some(l)) => format!(" — stale: the leader has version {l}"),
                        _ => " — up to date".to_string(),
                    }
                ),
            };
        }
        other => {
            return Err(ApiError::BadRequest(format!("op must be put or get, not {other:?}")));
        }
    }
    Ok(answer)
}

/// Body of `POST /api/load/start`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadRequest {
    /// Writes per second (default 20, at most 500). As many eventual reads are spread
    /// over the nodes.
    #[serde(default)]
    pub rate: Option<u64>,
}

/// Largest rate of the built-in load: it is there to make replication visible, not to
/// benchmark (that is `raft-nosql bench`).
pub const MAX_LOAD_RATE: u64 = 500;

/// Counters of the light load, as the page shows them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LoadStatus {
    pub running: bool,
    pub rate: u64,
    pub writes: u64,
    pub reads: u64,
    pub errors: u64,
    pub last_error: Option<String>,
}

/// The built-in light write load: one task, paced writes to the dashboard's table
/// through the whole cluster (the client follows redirects and survives failover), and
/// as many eventual reads, each through the next node in turn.
#[derive(Default)]
pub struct Load {
    status: Arc<Mutex<LoadStatus>>,
    stop: Mutex<Option<watch::Sender<bool>>>,
}

impl Load {
    pub fn status(&self) -> LoadStatus {
        self.status.lock().expect("load status lock").clone()
    }

    pub fn start(&self, addrs: Vec<String>, req: LoadRequest) -> Result<Value, ApiError> {
        let rate = req.rate.unwrap_or(20);
        if !(1..=MAX_LOAD_RATE).contains(&rate) {
            return Err(ApiError::BadRequest(format!(
                "rate must be from 1 to {MAX_LOAD_RATE} writes per second, not {rate}"
            )));
        }
        let mut stop = self.stop.lock().expect("load stop lock");
        if stop.is_some() {
            return Err(ApiError::InvalidState("the load is already running".into()));
        }
        let writer = Client::builder(addrs.clone())
            .write_deadline(Duration::from_secs(5))
            .build()
            .map_err(|e| ApiError::ActionFailed(e.to_string()))?;
        let (tx, mut rx) = watch::channel(false);
        *stop = Some(tx);
        *self.status.lock().expect("load status lock") =
            LoadStatus { running: true, rate, ..Default::default() };
        let status = self.status.clone();
        tokio::spawn(async move {
            let note =
                |f: &dyn Fn(&mut LoadStatus)| f(&mut status.lock().expect("load status lock"));
            if let Err(e) = ensure_table(&writer).await {
                note(&|s| {
                    s.errors += 1;
                    s.last_error = Some(e.to_string());
                });
            }
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n: u64 = 0;
            loop {
                tokio::select! {
                    _ = rx.changed() => break,
                    _ = tick.tick() => {}
                }
                let key = format!("load-{}", n % 100);
                let item = json!({ KEY: key, "value": n });
                let written = writer.put_item(TABLE, &item).await;
                // Addresses came from the config and parse; a bad one just skips the read.
                let reader = writer.with_target(&addrs[(n as usize) % addrs.len()]);
                let read = match &reader {
                    Ok(r) => r.get_item(TABLE, &key, None).await.map(|_| ()),
                    Err(_) => Ok(()),
                };
                note(&|s| {
                    match &written {
                        Ok(_) => s.writes += 1,
                        Err(e) => {
                            s.errors += 1;
                            s.last_error = Some(e.to_string());
                        }
                    }
                    match &read {
                        Ok(()) => s.reads += 1,
                        Err(e) if e.is_not_found() => s.reads += 1,
                        Err(_) => s.errors += 1,
                    }
                });
                n += 1;
            }
            note(&|s| s.running = false);
        });
        Ok(json!({ "message": format!("light load started: {rate} writes/s and as many reads") }))
    }

    pub fn stop(&self) -> Result<Value, ApiError> {
        match self.stop.lock().expect("load stop lock").take() {
            Some(tx) => {
                tx.send_replace(true);
                let s = self.status();
                Ok(json!({ "message": format!("light load stopped after {} writes", s.writes) }))
            }
            None => Err(ApiError::InvalidState("the load is not running".into())),
        }
    }
}
