//! The dashboard: a web page of the running cluster, served by the supervisor on its
//! control address, and the event stream that keeps it live.
//!
//! ```text
//!   nodes ──GET /status (node tasks, 250 ms)──►  NodeView ─┐
//!         ──GET /admin/log?last=N (250 ms)────►  strips  ─┤
//!         ──GET /metrics (1 s)────────────────►  samples ─┼─► Hub ──SSE /events──► browser
//!   node<N>/node.log ──tail (100 ms)──────────►  timeline ┘        ◄──POST /nodes/…, /api/…
//! ```
//!
//! The browser never talks to a node: the supervisor polls them (it does already, for
//! `cluster status`) and the [`Hub`] pushes what changed over one Server-Sent Events
//! stream (`GET /events`). Every 100 ms the hub builds the page's state ([`DashState`]:
//! the control API's cluster view, the convergence verdict, every node's log strip, the
//! light load's counters) and sends it only if it differs from the last one sent; new
//! timeline events and the per-second metric samples go out as they come. A node action
//! made through the control API publishes its effect at once, so a kill reaches the
//! page within one hub tick.
//!
//! | SSE event | data |
//! |---|---|
//! | `hello` | `{state, timeline: [..], samples: [..]}`: everything, once per connection |
//! | `state` | a [`DashState`] |
//! | `event` | one [`TimelineEvent`] |
//! | `sample` | one [`Sample`] |
//!
//! The same data as plain JSON: `GET /api/state`, `GET /api/timeline?node=&event=&limit=`,
//! `GET /api/metrics`. The buttons call `POST /nodes/{id}/{action}` (the control API the
//! CLI uses) and the routes of [`ops`] under `/api/`.
//!
//! The page itself (`assets/`) is hand-written HTML, CSS and JavaScript compiled into the
//! binary with `include_str!`: no CDN, no build step, works offline.
//!
//! Shortcuts taken: the timeline starts from the last 1 MB of each node's log file;
//! metric samples and timeline events are kept in memory for the last 10 minutes / 1000
//! events; the whole state is sent again on each change (a few KB) rather than a diff.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use warp::{Filter, Reply};

use super::control::{ApiError, Control};
use super::view::{self, ClusterView, ProcState};
use crate::server::admin::LogTail;

pub mod metrics;
pub mod ops;

/// How often the hub looks for changes (state and timeline).
const HUB_TICK: Duration = Duration::from_millis(100);
/// How often log strips are read from the running nodes.
const STRIP_TICK: Duration = Duration::from_millis(250);
/// How often metrics are scraped (one sample each).
const SAMPLE_TICK: Duration = Duration::from_secs(1);
/// Entries per log strip.
pub const STRIP_LEN: usize = 40;
/// Timeline events kept (and sent on connect).
const TIMELINE_KEEP: usize = 1000;
/// Metric samples kept: 10 minutes.
const SAMPLES_KEEP: usize = 600;
/// How much of each node's log file the timeline starts from.
const TIMELINE_BACKLOG_BYTES: u64 = 1 << 20;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// One node's recent log as the page draws it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Strip {
    #[serde(flatten)]
    pub tail: LogTail,
    /// True when the node no longer answers: this is the last strip it gave.
    pub stale: bool,
}

/// The convergence verdict of `cluster status`, with a kind the page colours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// `converged`, `not_converged`, `diverged` or `none` (no node answers).
    pub kind: String,
    /// The sentence `cluster status` prints.
    pub text: String,
}

impl Verdict {
    pub fn of(view: &ClusterView) -> Verdict {
        let text = view::convergence(view);
        let kind = if text.starts_with("converged") {
            "converged"
        } else if text.starts_with("DIVERGED") {
            "diverged"
        } else if text.starts_with("not converged") {
            "not_converged"
        } else {
            "none"
        };
        Verdict { kind: kind.to_string(), text }
    }
}

/// Everything the page shows except the timeline and the charts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashState {
    pub view: ClusterView,
    pub verdict: Verdict,
    /// `electing...` and why, while no running node leads.
    pub electing: Option<String>,
    /// Node id → its recent log.
    pub strips: BTreeMap<u64, Strip>,
    pub load: ops::LoadStatus,
}

/// One named event of the timeline (see `logs::TIMELINE_EVENTS`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    /// RFC 3339, from the writer's clock.
    pub ts: String,
    pub node: u64,
    pub event: String,
    pub level: String,
    pub message: String,
    /// The event's own fields (`term`, `leader`, `status`…).
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// One second of the cluster's client traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: u64,
    pub writes_per_s: f64,
    pub reads_per_s: f64,
    /// `None` when there was no request.
    pub p99_ms: Option<f64>,
}

/// What goes out on the stream: an SSE event name and its JSON.
#[derive(Debug, Clone)]
struct Push {
    name: &'static str,
    data: Arc<String>,
}

/// Where the page's data is gathered and from where it is pushed.
pub struct Hub {
    /// Where the nodes' log files are (the nodes themselves come from the view: the
    /// membership can change while the page is open).
    spec: Arc<crate::supervisor::process::LaunchSpec>,
    http: reqwest::Client,
    state: Mutex<Option<(DashState, Arc<String>)>>,
    timeline: Mutex<VecDeque<TimelineEvent>>,
    samples: Mutex<VecDeque<Sample>>,
    strips: Mutex<BTreeMap<u64, Strip>>,
    tx: broadcast::Sender<Push>,
    /// Set when the supervisor stops: open streams end, so the server can finish.
    closing: tokio::sync::watch::Sender<bool>,
    pub load: ops::Load,
    /// The highest version a put through the page wrote (for `session` gets).
    pub last_version: AtomicU64,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

fn to_json<T: Serialize>(v: &T) -> Arc<String> {
    Arc::new(serde_json::to_string(v).expect("dashboard data serializes"))
}

impl Hub {
    /// A hub for the nodes launched by `spec`; nothing runs until [`Hub::run`].
    pub fn new(spec: Arc<crate::supervisor::process::LaunchSpec>) -> Arc<Hub> {
        // The page's admin calls (faults, log strips) go through this client, which
        // carries the cluster secret's proof: the browser never needs the secret.
        let http = spec
            .security
            .client_builder(crate::tls::client(reqwest::Client::builder()))
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("HTTP client builds");
        let (tx, _) = broadcast::channel(256);
        Arc::new(Hub {
            spec,
            http,
            state: Mutex::new(None),
            timeline: Mutex::new(VecDeque::new()),
            samples: Mutex::new(VecDeque::new()),
            strips: Mutex::new(BTreeMap::new()),
            tx,
            closing: tokio::sync::watch::channel(false).0,
            load: ops::Load::default(),
            last_version: AtomicU64::new(0),
        })
    }

    /// Runs the hub's loops forever (spawn it; it ends with the runtime).
    pub async fn run<C: Control>(self: Arc<Self>, control: Arc<C>) {
        let strips = tokio::spawn(self.clone().strips_loop(control.clone()));
        let samples = tokio::spawn(self.clone().samples_loop(control.clone()));
        self.state_loop(control).await;
        strips.abort();
        samples.abort();
    }

    /// Ends every open event stream (the supervisor is stopping).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    fn send(&self, name: &'static str, data: Arc<String>) {
        // No receiver is fine: nobody has the page open.
        let _ = self.tx.send(Push { name, data });
    }

    /// The page's state now.
    pub fn build_state(&self, view: ClusterView) -> DashState {
        let strips = self.strips.lock().expect("strips lock").clone();
        DashState {
            verdict: Verdict::of(&view),
            electing: view::electing(&view),
            view,
            strips,
            load: self.load.status(),
        }
    }

    async fn state_loop<C: Control>(&self, control: Arc<C>) {
        let mut tails: BTreeMap<u64, crate::logs::Tail> = BTreeMap::new();
        let mut tick = tokio::time::interval(HUB_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let mut state = self.build_state(control.view());
            let ids: Vec<u64> = state.view.nodes.iter().map(|n| n.id).collect();
            // Uptime changes every second and is not worth a push of its own.
            state.view.supervisor.uptime_s = 0;
            let changed = {
                let mut last = self.state.lock().expect("state lock");
                if last.as_ref().is_some_and(|(s, _)| *s == state) {
                    None
                } else {
                    let json = to_json(&state);
                    *last = Some((state, json.clone()));
                    Some(json)
                }
            };
            if let Some(json) = changed {
                self.send("state", json);
            }
            for id in ids {
                tails.entry(id).or_insert_with(|| {
                    crate::logs::Tail::node_recent(
                        self.spec.log_file(id),
                        id,
                        TIMELINE_BACKLOG_BYTES,
                    )
                });
            }
            let mut fresh = Vec::new();
            for t in tails.values_mut() {
                if let Ok(entries) = t.poll() {
                    fresh.extend(entries.into_iter().filter(|e| e.is_timeline()));
                }
            }
            crate::logs::sort_entries(&mut fresh);
            for e in fresh {
                let ev = TimelineEvent {
                    ts: e.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    node: e.node,
                    event: e.event.clone().unwrap_or_default(),
                    level: e.level.as_str().to_string(),
                    message: e.message.clone(),
                    fields: e.key_fields().map(|(k, v)| (k.to_string(), v.clone())).collect(),
                };
                let json = to_json(&ev);
                push_bounded(&self.timeline, ev, TIMELINE_KEEP);
                self.send("event", json);
            }
        }
    }

    async fn strips_loop<C: Control>(self: Arc<Self>, control: Arc<C>) {
        let mut tick = tokio::time::interval(STRIP_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let view = control.view();
            let hub = &self;
            let polls = view.nodes.iter().map(|n| {
                let running = n.state == ProcState::Running && n.status.is_some();
                let url = crate::tls::url(&n.addr, &format!("/admin/log?last={STRIP_LEN}"));
                async move {
                    if !running {
                        return (n.id, None);
                    }
                    let got = async {
                        let r = hub
                            .http
                            .get(&url)
                            .timeout(Duration::from_millis(800))
                            .send()
                            .await?
                            .error_for_status()?;
                        r.json::<LogTail>().await
                    }
                    .await;
                    (n.id, got.ok())
                }
            });
            let results = futures::future::join_all(polls).await;
            let mut strips = self.strips.lock().expect("strips lock");
            for (id, got) in results {
                match got {
                    Some(tail) => {
                        strips.insert(id, Strip { tail, stale: false });
                    }
                    None => {
                        if let Some(s) = strips.get_mut(&id) {
                            s.stale = true;
                        }
                    }
                }
            }
        }
    }

    async fn samples_loop<C: Control>(self: Arc<Self>, control: Arc<C>) {
        let mut last: BTreeMap<u64, metrics::Scrape> = BTreeMap::new();
        let mut tick = tokio::time::interval(SAMPLE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut at = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            let elapsed = at.elapsed().as_secs_f64().max(0.001);
            at = tokio::time::Instant::now();
            let view = control.view();
            let hub = &self;
            let polls = view.nodes.iter().filter(|n| n.state == ProcState::Running).map(|n| {
                let url = crate::tls::url(&n.addr, "/metrics");
                async move {
                    let text = async {
                        let r = hub
                            .http
                            .get(&url)
                            .timeout(Duration::from_millis(800))
                            .send()
                            .await?
                            .error_for_status()?;
                        r.text().await
                    }
                    .await;
                    (n.id, text.ok().map(|t| metrics::parse(&t)))
                }
            });
            let results = futures::future::join_all(polls).await;
            let mut sum = metrics::Scrape::default();
            let mut fresh = BTreeMap::new();
            for (id, scrape) in results {
                let Some(scrape) = scrape else { continue };
                if let Some(before) = last.get(&id) {
                    metrics::add(&mut sum, &metrics::diff(&scrape, before));
                }
                fresh.insert(id, scrape);
            }
            last = fresh;
            let sample = Sample {
                t: now_ms(),
                writes_per_s: sum.writes / elapsed,
                reads_per_s: sum.reads / elapsed,
                p99_ms: metrics::p99_ms(&sum.buckets),
            };
            let json = to_json(&sample);
            push_bounded(&self.samples, sample, SAMPLES_KEEP);
            self.send("sample", json);
        }
    }

    /// The state last sent, or one built now.
    fn state_json<C: Control>(&self, control: &C) -> Arc<String> {
        if let Some((_, json)) = self.state.lock().expect("state lock").as_ref() {
            return json.clone();
        }
        to_json(&self.build_state(control.view()))
    }

    /// Timeline events, newest last, filtered.
    pub fn timeline(&self, q: &TimelineQuery) -> Vec<TimelineEvent> {
        let tl = self.timeline.lock().expect("timeline lock");
        let mut out: Vec<TimelineEvent> = tl
            .iter()
            .rev()
            .filter(|e| q.node.is_none_or(|n| e.node == n))
            .filter(|e| q.event.as_deref().is_none_or(|ev| e.event.contains(ev)))
            .take(q.limit.unwrap_or(200).min(TIMELINE_KEEP))
            .cloned()
            .collect();
        out.reverse();
        out
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().expect("samples lock").iter().cloned().collect()
    }

    /// The SSE stream of one page: `hello` with everything, then what changes.
    fn stream<C: Control>(
        self: Arc<Self>,
        control: Arc<C>,
    ) -> impl futures::Stream<Item = Result<warp::sse::Event, Infallible>> + Send + 'static {
        let rx = self.tx.subscribe();
        let hello = format!(
            "{{\"state\":{},\"timeline\":{},\"samples\":{}}}",
            self.state_json(&*control),
            serde_json::to_string(&self.timeline(&TimelineQuery::default()))
                .expect("timeline serializes"),
            serde_json::to_string(&self.samples()).expect("samples serialize"),
        );
        let first = futures::stream::once(async move {
            Ok::<_, Infallible>(warp::sse::Event::default().event("hello").data(hello))
        });
        let closing = self.closing.subscribe();
        let rest =
            futures::stream::unfold((rx, self, closing), |(mut rx, hub, mut closing)| async move {
                loop {
                    let got = tokio::select! {
                        got = rx.recv() => got,
                        _ = closing.wait_for(|c| *c) => return None,
                    };
                    match got {
                        Ok(p) => {
                            let ev =
                                warp::sse::Event::default().event(p.name).data(p.data.as_str());
                            return Some((Ok(ev), (rx, hub, closing)));
                        }
                        // A slow page missed some pushes: the next state push catches it up;
                        // send the current state now so it does not wait for a change.
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            let json =
                                hub.state.lock().expect("state lock").as_ref().map(|s| s.1.clone());
                            if let Some(json) = json {
                                let ev =
                                    warp::sse::Event::default().event("state").data(json.as_str());
                                return Some((Ok(ev), (rx, hub, closing)));
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            });
        futures::StreamExt::chain(first, rest)
    }
}

/// Query of `GET /api/timeline`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineQuery {
    /// Only this node's events.
    pub node: Option<u64>,
    /// Only events whose name contains this (`leader`, `exited`).
    pub event: Option<String>,
    /// At most this many (newest), default 200.
    pub limit: Option<usize>,
}

fn asset(body: &'static str, content_type: &'static str) -> warp::reply::Response {
    let mut r = warp::reply::with_header(body, "content-type", content_type).into_response();
    r.headers_mut().insert("cache-control", warp::http::HeaderValue::from_static("no-cache"));
    r
}

fn json_reply<T: Serialize>(v: &T) -> warp::reply::Response {
    warp::reply::json(v).into_response()
}

fn result_reply<T: Serialize>(r: Result<T, ApiError>) -> warp::reply::Response {
    match r {
        Ok(v) => json_reply(&v),
        Err(e) => e.into_reply(),
    }
}

/// A node id in a path: `1` or `node1`.
fn node_id(s: &str) -> Result<u64, ApiError> {
    s.trim_start_matches("node")
        .parse()
        .map_err(|_| ApiError::NodeNotFound(format!("no node {s:?} in the cluster")))
}

/// Largest request body the dashboard's API accepts.
const MAX_BODY: u64 = 64 * 1024;

/// The page, its assets, its event stream and its JSON API. Paths that are not the
/// dashboard's are rejected, for the control API's routes to take.
pub fn routes<C: Control>(
    hub: Arc<Hub>,
    control: Arc<C>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let with = move || {
        let h = hub.clone();
        let c = control.clone();
        warp::any().map(move || (h.clone(), c.clone()))
    };
    let index =
        warp::path::end().and(warp::get()).map(|| asset(INDEX_HTML, "text/html; charset=utf-8"));
    let js = warp::path!("assets" / "app.js")
        .and(warp::get())
        .map(|| asset(APP_JS, "text/javascript; charset=utf-8"));
    let css = warp::path!("assets" / "style.css")
        .and(warp::get())
        .map(|| asset(STYLE_CSS, "text/css; charset=utf-8"));
    let events =
        warp::path!("events").and(warp::get()).and(with()).map(|(h, c): (Arc<Hub>, Arc<C>)| {
            let stream = h.stream(c);
            warp::sse::reply(
                warp::sse::keep_alive().interval(Duration::from_secs(15)).stream(stream),
            )
            .into_response()
        });
    let state = warp::path!("api" / "state").and(warp::get()).and(with()).map(
        |(h, c): (Arc<Hub>, Arc<C>)| {
            let json = h.state_json(&*c);
            warp::reply::with_header(json.as_str().to_string(), "content-type", "application/json")
                .into_response()
        },
    );
    let timeline = warp::path!("api" / "timeline")
        .and(warp::get())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(with())
        .map(|q: String, (h, _c): (Arc<Hub>, Arc<C>)| match serde_urlencoded_query(&q) {
            Ok(q) => json_reply(&h.timeline(&q)),
            Err(e) => e.into_reply(),
        });
    let samples = warp::path!("api" / "metrics")
        .and(warp::get())
        .and(with())
        .map(|(h, _c): (Arc<Hub>, Arc<C>)| json_reply(&h.samples()));
    let body = || {
        warp::body::content_length_limit(MAX_BODY)
            .and(warp::body::bytes())
            .or(warp::any().map(bytes::Bytes::new))
            .unify()
    };
    let post = warp::path("api")
        .and(warp::post())
        .and(warp::path::tail())
        .and(body())
        .and(with())
        .then(|tail: warp::path::Tail, body: bytes::Bytes, (h, c): (Arc<Hub>, Arc<C>)| async move {
            let segs: Vec<&str> = tail.as_str().trim_matches('/').split('/').collect();
            let view = c.view();
            let r = match segs.as_slice() {
                ["partition"] => match ops::body::<ops::PartitionRequest>(
                    &body,
                    r#"{"nodes": [ids]} or {"sides": [[ids], [ids]]}"#,
                )
                .and_then(|req| ops::sides_of(&view, &req))
                {
                    Ok(sides) => ops::partition(&h.http, &view, sides).await,
                    Err(e) => Err(e),
                },
                ["heal"] => ops::heal(&h.http, &view).await,
                ["nodes", id, "slow"] => match (node_id(id), ops::body(
                    &body,
                    r#"{"delay_ms": N, "jitter_ms": N, "drop_rate": 0.0-1.0}"#,
                )) {
                    (Ok(id), Ok(req)) => ops::slow(&h.http, &view, id, req).await,
                    (Err(e), _) | (_, Err(e)) => Err(e),
                },
                ["nodes", id, "apply-delay"] => {
                    match (node_id(id), ops::body(&body, r#"{"apply_delay_ms": N}"#)) {
                        (Ok(id), Ok(req)) => ops::apply_delay(&h.http, &view, id, req).await,
                        (Err(e), _) | (_, Err(e)) => Err(e),
                    }
                }
                ["item"] => match ops::body::<ops::ItemRequest>(
                    &body,
                    r#"{"op": "put"|"get", "node": N, "key": "...", "value": ..., "consistency": "eventual"|"session"|"strong"}"#,
                ) {
                    Ok(req) => ops::item(&view, &h.last_version, req)
                        .await
                        .map(|a| serde_json::to_value(a).expect("answer serializes")),
                    Err(e) => Err(e),
                },
                ["load", "start"] => ops::body(&body, r#"{"rate": writes per second}"#)
                    .and_then(|req| {
                        h.load.start(view.nodes.iter().map(|n| n.addr.clone()).collect(), req)
                    }),
                ["load", "stop"] => h.load.stop(),
                _ => Err(ApiError::NotFound(format!(
                    "no such dashboard action /api/{} (partition, heal, nodes/{{id}}/slow, nodes/{{id}}/apply-delay, item, load/start, load/stop)",
                    tail.as_str()
                ))),
            };
            result_reply(r)
        });
    index
        .or(js)
        .unify()
        .or(css)
        .unify()
        .or(events)
        .unify()
        .or(state)
        .unify()
        .or(timeline)
        .unify()
        .or(samples)
        .unify()
        .or(post)
        .unify()
}

/// Parses `node=1&event=leader&limit=50`.
fn serde_urlencoded_query(q: &str) -> Result<TimelineQuery, ApiError> {
    let mut out = TimelineQuery::default();
    for kv in q.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let bad = || ApiError::BadRequest(format!("bad value for {k}: {v:?}"));
        match k {
            "node" if !v.is_empty() => out.node = Some(node_id(v).map_err(|_| bad())?),
            "node" => {}
            "event" => out.event = Some(v.to_string()).filter(|v| !v.is_empty()),
            "limit" => out.limit = Some(v.parse().map_err(|_| bad())?),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter {k:?} (node, event, limit)"
                )))
            }
        }
    }
    Ok(out)
}

/// The dashboard's address as people open it.
pub fn url(control_addr: &str) -> String {
    format!("http://{control_addr}/")
}

/// Appends `item` to a history that keeps its newest `keep` entries.
fn push_bounded<T>(
    history: &std::sync::Mutex<std::collections::VecDeque<T>>,
    item: T,
    keep: usize,
) {
    let mut h = history.lock().expect("history lock");
    h.push_back(item);
    while h.len() > keep {
        h.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::node::{ActionReport, NodeAction};
    use crate::supervisor::view::{NodeStatus, NodeView, SupervisorInfo};

    fn view(digests: &[(&str, u64)]) -> ClusterView {
        let nodes = digests
            .iter()
            .enumerate()
            .map(|(i, (digest, index))| {
                let mut n = NodeView::new(i as u64, format!("127.0.0.1:{}", 8100 + i));
                n.state = ProcState::Running;
                n.status = Some(NodeStatus {
                    digest: digest.to_string(),
                    digest_index: *index,
                    ..NodeStatus::default()
                });
                n
            })
            .collect();
        ClusterView {
            supervisor: SupervisorInfo {
                pid: 1,
                control_addr: "127.0.0.1:8099".into(),
                data_root: "data".into(),
                config_file: None,
                uptime_s: 0,
            },
            leader: None,
            nodes,
        }
    }

    #[test]
    fn the_verdict_has_a_kind_for_each_sentence_of_cluster_status() {
        assert_eq!(Verdict::of(&view(&[("a", 5), ("a", 5)])).kind, "converged");
        assert_eq!(Verdict::of(&view(&[("a", 5), ("b", 5)])).kind, "diverged");
        assert_eq!(Verdict::of(&view(&[("a", 5), ("b", 4)])).kind, "not_converged");
        assert_eq!(Verdict::of(&view(&[])).kind, "none");
    }

    #[test]
    fn partition_sides_add_the_unnamed_nodes_and_refuse_nonsense() {
        let v = view(&[("a", 1), ("a", 1), ("a", 1)]);
        let req = |nodes: Vec<u64>, sides: Vec<Vec<u64>>| ops::PartitionRequest { nodes, sides };
        assert_eq!(ops::sides_of(&v, &req(vec![2], vec![])).unwrap(), vec![vec![2], vec![0, 1]]);
        assert_eq!(
            ops::sides_of(&v, &req(vec![], vec![vec![0], vec![1, 2]])).unwrap(),
            vec![vec![0], vec![1, 2]]
        );
        let code = |r: Result<Vec<Vec<u64>>, ApiError>| r.unwrap_err().code();
        assert_eq!(code(ops::sides_of(&v, &req(vec![0, 1, 2], vec![]))), "bad_request");
        assert_eq!(code(ops::sides_of(&v, &req(vec![], vec![]))), "bad_request");
        assert_eq!(code(ops::sides_of(&v, &req(vec![7], vec![]))), "node_not_found");
        assert_eq!(code(ops::sides_of(&v, &req(vec![1], vec![vec![1]]))), "bad_request");
    }

    struct Fake(ClusterView);

    impl Control for Fake {
        fn view(&self) -> ClusterView {
            self.0.clone()
        }
        async fn refresh(&self) {}
        async fn act(&self, _: u64, _: NodeAction) -> Result<ActionReport, ApiError> {
            Err(ApiError::InvalidState("not in this test".into()))
        }
        fn shutdown(&self) {}
    }

    fn api() -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
        let control = Arc::new(Fake(view(&[("a", 1), ("a", 1), ("a", 1)])));
        let spec = crate::supervisor::process::LaunchSpec {
            exe: "raft-nosql".into(),
            config_file: None,
            data_root: std::env::temp_dir(),
            insecure: false,
            security: Default::default(),
        };
        routes(Hub::new(Arc::new(spec)), control)
    }

    #[tokio::test]
    async fn the_page_and_its_assets_are_embedded() {
        let resp = warp::test::request().path("/").reply(&api()).await;
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let resp = warp::test::request().path("/assets/app.js").reply(&api()).await;
        assert_eq!(resp.status(), 200);
        let resp = warp::test::request().path("/api/state").reply(&api()).await;
        let state: DashState = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(state.view.nodes.len(), 3);
    }

    #[tokio::test]
    async fn bad_requests_are_json_errors() {
        let code = |resp: &warp::http::Response<bytes::Bytes>| {
            let v: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
            (resp.status().as_u16(), v["error"]["code"].as_str().unwrap().to_string())
        };
        let post = |path: &'static str, body: &'static str| {
            warp::test::request().method("POST").path(path).body(body)
        };
        let r = post("/api/partition", "{").reply(&api()).await;
        assert_eq!(code(&r), (400, "bad_request".into()));
        let r = post("/api/nodes/1/slow", r#"{"drop_rate": 3}"#).reply(&api()).await;
        assert_eq!(code(&r), (400, "bad_request".into()));
        let r = post("/api/nodes/9/apply-delay", r#"{"apply_delay_ms": 1}"#).reply(&api()).await;
        assert_eq!(code(&r), (404, "node_not_found".into()));
        let r = post("/api/item", r#"{"op": "put", "node": 0, "key": ""}"#).reply(&api()).await;
        assert_eq!(code(&r), (400, "bad_request".into()));
        let r = post("/api/load/stop", "").reply(&api()).await;
        assert_eq!(code(&r), (409, "invalid_state".into()));
        let r = post("/api/nope", "").reply(&api()).await;
        assert_eq!(code(&r), (404, "not_found".into()));
        let r = warp::test::request().path("/api/timeline?node=x").reply(&api()).await;
        assert_eq!(code(&r), (400, "bad_request".into()));
    }
}
