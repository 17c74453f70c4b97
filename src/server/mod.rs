//! The HTTP side of a node: one warp server for the client API (`api`), the Raft peer
//! RPC (`raft`) and administration (`admin`).
//!
//! Every response, success or error, carries `x-raft-node`, `x-raft-role` and
//! `x-raft-applied`, so a client can always see who answered and how far that node has
//! applied the log (staleness made visible). Every error is
//! `{"error": {"code", "message"}}`; the mapping from [`Error`] to a status code lives in
//! `error.rs` and is applied only here.
//!
//! With a cluster secret configured, [`guard`] answers 401 to every request for the
//! Raft RPCs, the admin API or a forwarded write that does not prove it, before any
//! handler runs (see `security`).

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::config::ClusterConfig;
use crate::error::Error;
use crate::raft::network::Faults;
use crate::raft::{NodeId, Raft};
use crate::storage::{LogStore, Progress, Tables};

pub mod admin;
pub mod api;
pub mod dynamodb;
pub mod members;
pub mod raft;
pub mod reads;
pub mod writes;

/// Largest client request body: a 400 KB item plus JSON overhead.
pub const MAX_API_BODY: u64 = 1024 * 1024;
/// Largest Raft RPC body (AppendEntries batches, snapshot chunks as JSON).
pub const MAX_RAFT_BODY: u64 = 64 * 1024 * 1024;

/// Everything a request handler needs. Shared by all handlers.
pub struct App {
    pub id: NodeId,
    pub addr: String,
    pub raft: Raft,
    pub tables: Tables,
    /// The Raft log on disk, read by `GET /admin/log` (the dashboard's log strips).
    pub log: LogStore,
    pub config: ClusterConfig,
    /// Committed/applied indexes, lag, digest, apply delay and metrics.
    pub progress: Arc<Progress>,
    /// Simulated network faults of the Raft transport.
    pub faults: Arc<Faults>,
    /// Where writes are proposed (group commit of item writes).
    pub writes: writes::Batcher,
    /// Leadership checks for strong reads, shared by concurrent readers.
    pub reads: reads::ReadIndex,
    /// The leader lease: acknowledgements, revocation on vote requests, start-up guard.
    pub lease: Arc<crate::raft::lease::Lease>,
    /// How many `request` lines may still be logged this second.
    pub request_log: RequestLogBudget,
    /// Sends DynamoDB API writes that reach this node on to the leader.
    pub forward: dynamodb::Forwarder,
    /// The cluster secret's proof, checked by [`guard`].
    pub security: Arc<crate::security::Security>,
}

/// The per-second budget of `request` log lines (`request_log_per_sec`).
#[derive(Debug)]
pub struct RequestLogBudget {
    limit: u64,
    start: std::time::Instant,
    /// The second (since `start`) the counters belong to.
    second: AtomicU64,
    logged: AtomicU64,
    skipped: AtomicU64,
}

impl RequestLogBudget {
    pub fn new(limit: u64) -> RequestLogBudget {
        RequestLogBudget {
            limit,
            start: std::time::Instant::now(),
            second: AtomicU64::new(0),
            logged: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        }
    }

    /// Whether one more request line may be written now. The first request of a new
    /// second reports how many lines the seconds before it skipped.
    fn take(&self) -> bool {
        let (ok, skipped) = self.take_at(self.start.elapsed().as_secs());
        if skipped > 0 {
            tracing::info!(
                event = "requests_not_logged",
                count = skipped,
                limit_per_sec = self.limit,
                "{skipped} requests not logged (request_log_per_sec = {})",
                self.limit
            );
        }
        ok
    }

    /// [`take`](Self::take) at second `now`: whether to log, and how many skipped
    /// lines to report (non-zero once, on the first call of a new second).
    fn take_at(&self, now: u64) -> (bool, u64) {
        let second = self.second.load(Ordering::Relaxed);
        let mut skipped = 0;
        if now != second
            && self
                .second
                .compare_exchange(second, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.logged.store(0, Ordering::Relaxed);
            skipped = self.skipped.swap(0, Ordering::Relaxed);
        }
        if self.logged.fetch_add(1, Ordering::Relaxed) < self.limit {
            return (true, skipped);
        }
        self.skipped.fetch_add(1, Ordering::Relaxed);
        (false, skipped)
    }
}

impl App {
    /// The HTTP address of node `id` from the current membership, else the config.
    pub fn addr_of(&self, id: NodeId) -> Option<String> {
        let m = self.raft.metrics().borrow().membership_config.clone();
        m.membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
            .or_else(|| self.config.node(id).map(|n| n.addr.clone()))
    }
}

/// All routes of a node, with the `x-raft-*` headers added to every response, and
/// every client request counted, timed and logged (`request` event).
pub fn routes(app: Arc<App>) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let observed = app.clone();
    request_info().and(peer_only().or(inner_routes(app)).unify()).map(
        move |info: RequestInfo, resp: Response| {
            observe(&observed, &info, &resp);
            resp
        },
    )
}

/// Whether `path` is for the cluster's own members only: Raft RPC (`/raft/*`, which
/// includes the read index) and administration (`/admin/*`: init, faults, membership,
/// the log).
pub fn is_peer_only(path: &str) -> bool {
    path.starts_with("/raft/") || path.starts_with("/admin/")
}

/// With TLS, answers a peer-only request whose caller showed no certificate with 401
/// `client_certificate_required` (and rejects every other request, which the real routes
/// then take). A caller whose certificate is not signed by the cluster CA never gets
/// here: its handshake fails. Without TLS there is no [`crate::tls::ClientCert`] and
/// nothing is refused here.
fn peer_only() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path::full().and(warp::ext::optional::<crate::tls::ClientCert>()).and_then(
        |path: warp::path::FullPath, cert: Option<crate::tls::ClientCert>| async move {
            match cert {
                Some(c) if !c.verified && is_peer_only(path.as_str()) => {
                    tracing::info!(
                        event = "peer_rejected",
                        path = path.as_str(),
                        reason = "no client certificate",
                        "peer-only route called without a client certificate"
                    );
                    let body = serde_json::json!({"error": {
                        "code": "client_certificate_required",
                        "message": format!(
                            "{} is for the cluster's nodes only: call it with a client \
                             certificate signed by the cluster CA",
                            path.as_str()
                        ),
                    }});
                    Ok(json_reply(StatusCode::UNAUTHORIZED, &body))
                }
                _ => Err(warp::reject::not_found()),
            }
        },
    )
}

/// What is remembered of a request until its response is ready.
struct RequestInfo {
    start: std::time::Instant,
    method: warp::http::Method,
    path: String,
    query: String,
}

fn request_info() -> impl Filter<Extract = (RequestInfo,), Error = Infallible> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .map(|method, path: warp::path::FullPath, query| RequestInfo {
            start: std::time::Instant::now(),
            method,
            path: path.as_str().to_string(),
            query,
        })
}

/// The route pattern of a path, for metric labels (bounded cardinality).
fn route_of(path: &str) -> &'static str {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["tables"] => "/tables",
        ["tables", _] => "/tables/{table}",
        ["tables", _, "items"] => "/tables/{table}/items",
        ["tables", _, "query"] => "/tables/{table}/query",
        ["tables", _, "scan"] => "/tables/{table}/scan",
        ["status"] => "/status",
        ["metrics"] => "/metrics",
        ["admin", "init"] => "/admin/init",
        ["admin", "simulation"] => "/admin/simulation",
        ["admin", "faults"] => "/admin/faults",
        ["admin", "log"] => "/admin/log",
        ["admin", "members", ..] => "/admin/members",
        ["raft", _] => "/raft",
        [""] => "/",
        _ => "other",
    }
}

/// Counts, times and logs one request. Raft RPC and status polls are counted but not
/// logged: they are the cluster talking to itself, not clients.
fn observe(app: &App, info: &RequestInfo, resp: &Response) {
    let route = route_of(&info.path);
    let status = resp.status().as_u16();
    let elapsed = info.start.elapsed();
    let labels = [route, info.method.as_str(), &status.to_string()];
    let m = &app.progress.metrics;
    m.requests.with_label_values(&labels).inc();
    m.request_seconds.with_label_values(&labels).observe(elapsed.as_secs_f64());
    if matches!(route, "/raft" | "/status" | "/metrics") || !app.request_log.take() {
        return;
    }
    let redirected_to = resp.headers().get(header::LOCATION).and_then(|v| v.to_str().ok());
    let consistency = info
        .query
        .split('&')
        .find_map(|kv| kv.strip_prefix("consistency="))
        .unwrap_or(if info.query.contains("after_index=") { "session" } else { "eventual" });
    tracing::info!(
        event = "request",
        method = %info.method,
        path = %info.path,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        redirected_to,
        consistency = if info.method == warp::http::Method::GET { Some(consistency) } else { None },
        "request"
    );
}

fn inner_routes(app: Arc<App>) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let with_headers = app.clone();
    guard(app.clone())
        .or(api::routes(app.clone()))
        .unify()
        .or(dynamodb::routes(app.clone()))
        .unify()
        .or(raft::routes(app.clone()))
        .unify()
        .or(admin::routes(app.clone()))
        .unify()
        .or(members::routes(app))
        .unify()
        .recover(recover)
        .unify()
        .map(move |mut resp: Response| {
            add_raft_headers(&with_headers, &mut resp);
            resp
        })
}

/// Whether a request must prove the cluster secret: the Raft RPCs, the admin API, and
/// DynamoDB writes forwarded by a follower (the header makes the leader treat them as
/// coming from a member). The first path segment decides, however it is spelled
/// (`//raft/vote`, `/%72aft/vote`), so that no spelling the routes might still accept
/// slips past.
fn needs_proof(path: &str, forwarded: bool) -> bool {
    let path = percent_decode(path).to_ascii_lowercase();
    let first = path.split('/').find(|s| !s.is_empty()).unwrap_or("");
    forwarded || first == "raft" || first == "admin"
}

/// `%xx` escapes decoded (invalid ones kept as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Answers 401 `unauthorized` to a request that must prove the cluster secret and does
/// not, and logs `peer_rejected` the first time a peer (IP address and claimed node id)
/// is refused. Every other request is rejected as "not found" here, so the routes after
/// this one answer it; without a secret nothing is checked.
///
/// The headers are read as raw bytes: a filter that failed on a header that is not
/// valid text would let the request fall through to the routes after it unchecked.
fn guard(app: Arc<App>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    use crate::raft::network::FROM_HEADER;
    use crate::security::AUTH_HEADER;
    use dynamodb::forward::FORWARDED_FROM;
    warp::path::full().and(warp::header::headers_cloned()).and(warp::addr::remote()).and_then(
        move |path: warp::path::FullPath,
              headers: warp::http::HeaderMap,
              remote: Option<std::net::SocketAddr>| {
            let app = app.clone();
            async move {
                let path = path.as_str();
                let proof = headers.get(AUTH_HEADER).map(HeaderValue::as_bytes);
                let forwarded = headers.get(FORWARDED_FROM);
                if !app.security.enabled()
                    || !needs_proof(path, forwarded.is_some())
                    || app.security.admits(proof)
                {
                    return Err(warp::reject::not_found());
                }
                let text = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
                let ip = remote.map(|r| r.ip().to_string()).unwrap_or_else(|| "unknown".into());
                let claimed = headers.get(FROM_HEADER).or(forwarded).map(text);
                let peer = match &claimed {
                    Some(id) => format!("{ip} node {id}"),
                    None => ip.clone(),
                };
                let reason = if proof.is_some() { "wrong proof" } else { "no proof" };
                if app.security.first_rejection(&peer) {
                    tracing::warn!(
                        event = "peer_rejected",
                        peer = %ip,
                        claimed_node = claimed.as_deref(),
                        path,
                        reason,
                        "refused a request without the cluster secret's proof ({reason}); \
                         further refusals of this peer are not logged"
                    );
                }
                let e = Error::Unauthorized(format!(
                    "{path} needs the cluster secret's proof in the {AUTH_HEADER} header \
                         ({reason}); give this process the cluster's secret_file"
                ));
                Ok::<_, Rejection>(error_reply(&e, path))
            }
        },
    )
}

/// The name of a Raft role as `/status`, headers and metrics show it.
pub fn role_name(state: openraft::ServerState) -> &'static str {
    match state {
        openraft::ServerState::Leader => "Leader",
        openraft::ServerState::Follower => "Follower",
        openraft::ServerState::Candidate => "Candidate",
        openraft::ServerState::Learner => "Learner",
        openraft::ServerState::Shutdown => "Shutdown",
    }
}

/// Runs on every response: reads only the role from openraft's metrics (no copy of
/// the whole metrics value) and the applied index from [`Progress`].
fn add_raft_headers(app: &App, resp: &mut Response) {
    let state = app.raft.metrics().borrow().state;
    let h = resp.headers_mut();
    h.insert("x-raft-node", HeaderValue::from(app.id));
    h.insert("x-raft-role", HeaderValue::from_static(role_name(state)));
    h.insert("x-raft-applied", HeaderValue::from(app.progress.applied().unwrap_or(0)));
}

/// A JSON response with this status.
pub fn json_reply<T: Serialize>(status: StatusCode, body: &T) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

/// The response for an error. A redirect to the leader keeps the path and query.
pub fn error_reply(e: &Error, path_and_query: &str) -> Response {
    let mut resp = json_reply(e.status(), &e.body());
    match e {
        Error::NotLeader { leader_addr, .. } => {
            if let Ok(v) = HeaderValue::from_str(&crate::tls::url(leader_addr, path_and_query)) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
        }
        Error::NoLeader | Error::Unavailable(_) => {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    resp
}

/// Turns a handler result into a response.
pub fn respond<T: Serialize>(
    r: Result<T, Error>,
    ok: StatusCode,
    path_and_query: &str,
) -> Response {
    match r {
        Ok(body) => json_reply(ok, &body),
        Err(e) => error_reply(&e, path_and_query),
    }
}

/// Like [`respond`] for a write: the log index of the write (the body's `version`) is
/// also sent as the `x-raft-index` header, for session (read-your-writes) reads.
pub fn respond_write(
    r: Result<serde_json::Value, Error>,
    ok: StatusCode,
    path_and_query: &str,
) -> Response {
    let index = r.as_ref().ok().and_then(|b| b.get("version")).and_then(|v| v.as_u64());
    let mut resp = respond(r, ok, path_and_query);
    if let Some(i) = index {
        resp.headers_mut().insert("x-raft-index", HeaderValue::from(i));
    }
    resp
}

/// Turns warp's rejections (no route, bad method, body too large, …) into JSON errors.
async fn recover(r: Rejection) -> Result<Response, Infallible> {
    let (status, code, message) = if r.is_not_found() {
        (StatusCode::NOT_FOUND, "no_route", "no such endpoint".to_string())
    } else if r.find::<warp::reject::PayloadTooLarge>().is_some() {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body over {MAX_API_BODY} bytes"),
        )
    } else if r.find::<warp::reject::LengthRequired>().is_some() {
        (
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "a Content-Length header is required".into(),
        )
    } else if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed here".into())
    } else if r.find::<warp::reject::InvalidQuery>().is_some() {
        (StatusCode::BAD_REQUEST, "bad_request", "malformed query string".into())
    } else if r.find::<warp::reject::UnsupportedMediaType>().is_some() {
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send JSON".into())
    } else {
        (StatusCode::BAD_REQUEST, "bad_request", format!("{r:?}"))
    };
    let body = crate::error::ErrorBody {
        error: crate::error::ErrorDetail { code: code.to_string(), message },
    };
    Ok(json_reply(status, &body))
}

/// Path and query of the request, for redirects.
pub fn path_and_query() -> impl Filter<Extract = (String,), Error = Infallible> + Clone {
    warp::path::full().and(warp::query::raw().or(warp::any().map(String::new)).unify()).map(
        |p: warp::path::FullPath, q: String| {
            if q.is_empty() {
                p.as_str().to_string()
            } else {
                format!("{}?{}", p.as_str(), q)
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::{needs_proof, RequestLogBudget};

    #[test]
    fn raft_admin_and_forwarded_requests_need_the_proof_and_the_data_api_does_not() {
        for path in ["/raft/append", "/raft/vote", "/raft/snapshot", "/raft/read_index"] {
            assert!(needs_proof(path, false), "{path}");
        }
        for path in ["/admin/init", "/admin/faults", "/admin/members/remove", "/admin"] {
            assert!(needs_proof(path, false), "{path}");
        }
        for path in ["//raft/vote", "/%72aft/vote", "/RAFT/vote", "/raft", "/admin%2Ffaults"] {
            assert!(needs_proof(path, false), "{path}");
        }
        assert!(needs_proof("/", true), "a forwarded DynamoDB write");
        for path in ["/", "/tables", "/tables/t/items", "/status", "/metrics", "/adminx", "/%zz"] {
            assert!(!needs_proof(path, false), "{path}");
        }
    }

    #[test]
    fn request_log_budget_allows_the_limit_per_second_and_reports_the_rest_once() {
        let b = RequestLogBudget::new(3);
        let second0: Vec<(bool, u64)> = (0..5).map(|_| b.take_at(0)).collect();
        assert_eq!(second0, [(true, 0), (true, 0), (true, 0), (false, 0), (false, 0)]);
        assert_eq!(b.take_at(1), (true, 2), "the next second reports 2 skipped");
        assert_eq!(b.take_at(1), (true, 0), "reported once");
        assert_eq!(b.take_at(5), (true, 0), "nothing skipped, nothing reported");
        let none = RequestLogBudget::new(0);
        assert_eq!(none.take_at(0), (false, 0));
        assert_eq!(none.take_at(1), (false, 1));
    }
}
