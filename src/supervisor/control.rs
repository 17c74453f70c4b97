//! The supervisor's control API (HTTP + JSON on `supervisor.control_addr`) and the client
//! the `raft-nosql cluster …` commands use to talk to it.
//!
//! | method, path | what |
//! |---|---|
//! | `GET /status` | a [`ClusterView`]: supervisor pid, leader, per node pid, process state and the node's own `/status`, polled for this answer (so the effect of a command just made shows at once) |
//! | `POST /nodes/{id}/kill` | SIGKILL; the node stays down until started again |
//! | `POST /nodes/{id}/stop` | SIGTERM, wait `stop_timeout_ms`, SIGKILL; stays down |
//! | `POST /nodes/{id}/start` | start a node that is not running |
//! | `POST /nodes/{id}/restart` | graceful stop, then start |
//! | `POST /nodes/{id}/pause` / `resume` | SIGSTOP / SIGCONT |
//! | `GET /members` | a [`MembersView`]: the membership in the leader's log (voters, learners, a joint configuration while one is open) and the membership change in progress or last made |
//! | `POST /members` | add a node (`{"id"?, "addr"?}`): start it, make it a learner, promote it once caught up; 202 with the change, which runs on (poll `GET /members`) |
//! | `DELETE /members/{id}[?purge=true]` | remove a node through a membership change, then stop it (and delete its data) |
//! | `POST /shutdown` | stop every node and the supervisor (202; poll the pid to see it gone) |
//! | `GET /`, `GET /events`, `GET|POST /api/…` | the dashboard, its event stream and its own actions (see [`super::dashboard`]) |
//!
//! Node actions answer an [`ActionReport`] whose `message` is the line the CLI prints.
//! Errors are JSON `{"error": {"code", "message"}}`: `node_not_found` (404),
//! `invalid_state` (409, e.g. pausing a stopped node), `action_failed` (500), `not_found`
//! (404, unknown path), `method_not_allowed` (405), `bad_request` (400, a malformed body)
//! and `node_unreachable` (502, a node the action needs did not answer). [`ApiError::status`] is the one place
//! where an error becomes a status code.
//!
//! The routes depend on the [`Control`] trait, not on the supervisor itself, so they are
//! tested with `warp::test::request()` against a fake, without processes or sockets.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::members::{AddRequest, ChangeState, MembersView};
use super::node::{ActionError, ActionReport, NodeAction};
use super::view::ClusterView;

/// What the control API needs from the supervisor.
pub trait Control: Send + Sync + 'static {
    /// The current view of the cluster.
    fn view(&self) -> ClusterView;
    /// Polls every node now, so that the next [`view`](Control::view) shows the effect
    /// of a command made a moment ago rather than the last periodic poll.
    fn refresh(&self) -> impl Future<Output = ()> + Send;
    /// Carries out `action` on node `id`.
    fn act(
        &self,
        id: u64,
        action: NodeAction,
    ) -> impl Future<Output = Result<ActionReport, ApiError>> + Send;
    /// Starts stopping everything; returns at once.
    fn shutdown(&self);
    /// The membership and the change in progress.
    fn members(&self) -> impl Future<Output = MembersView> + Send {
        async { MembersView { members: None, from_node: None, change: None } }
    }
    /// Starts adding a node; the change runs on after the answer.
    fn add_node(
        self: Arc<Self>,
        _req: AddRequest,
    ) -> impl Future<Output = Result<ChangeState, ApiError>> + Send {
        async { Err(ApiError::NotFound("membership changes are not supported here".into())) }
    }
    /// Removes a node from the membership, then stops it.
    fn remove_node(
        &self,
        _id: u64,
        _purge: bool,
    ) -> impl Future<Output = Result<ChangeState, ApiError>> + Send {
        async { Err(ApiError::NotFound("membership changes are not supported here".into())) }
    }
}

/// An error answer of the control API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No node with this id in the config.
    #[error("{0}")]
    NodeNotFound(String),
    /// The action does not fit the node's state.
    #[error("{0}")]
    InvalidState(String),
    /// The action failed.
    #[error("{0}")]
    ActionFailed(String),
    /// No such path.
    #[error("{0}")]
    NotFound(String),
    /// Known path, wrong method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The request itself is malformed (bad JSON, a value out of range).
    #[error("{0}")]
    BadRequest(String),
    /// A node the action needs did not answer.
    #[error("{0}")]
    Unreachable(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NodeNotFound(_) => "node_not_found",
            ApiError::InvalidState(_) => "invalid_state",
            ApiError::ActionFailed(_) => "action_failed",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unreachable(_) => "node_unreachable",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NodeNotFound(_) | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::InvalidState(_) => StatusCode::CONFLICT,
            ApiError::ActionFailed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unreachable(_) => StatusCode::BAD_GATEWAY,
        }
    }

    pub fn into_reply(self) -> warp::reply::Response {
        let body = ErrorBody {
            error: ErrorDetail { code: self.code().to_string(), message: self.to_string() },
        };
        warp::reply::with_status(warp::reply::json(&body), self.status()).into_response()
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::Conflict(m) => ApiError::InvalidState(m),
            ActionError::Failed(m) => ApiError::ActionFailed(m),
        }
    }
}

/// `{"error": {"code": "…", "message": "…"}}`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// The answer of `POST /shutdown`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShutdownReply {
    pub message: String,
    pub pid: u32,
}

/// All routes of the control API.
pub fn routes<C: Control>(
    control: Arc<C>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let with = move || {
        let c = control.clone();
        warp::any().map(move || c.clone())
    };
    let status = warp::path!("status").and(warp::get()).and(with()).then(|c: Arc<C>| async move {
        c.refresh().await;
        warp::reply::json(&c.view()).into_response()
    });
    let node = warp::path!("nodes" / String / String).and(warp::post()).and(with()).then(
        |id: String, action: String, c: Arc<C>| async move {
            let Some(action) = NodeAction::from_path(&action) else {
                return ApiError::NotFound(format!(
                    "unknown action {action:?} (kill, stop, start, restart, pause, resume)"
                ))
                .into_reply();
            };
            let Ok(id) = id.trim_start_matches("node").parse::<u64>() else {
                return ApiError::NodeNotFound(format!("no node {id:?} in the cluster"))
                    .into_reply();
            };
            match c.act(id, action).await {
                Ok(report) => warp::reply::json(&report).into_response(),
                Err(e) => e.into_reply(),
            }
        },
    );
    let shutdown = warp::path!("shutdown").and(warp::post()).and(with()).map(|c: Arc<C>| {
        c.shutdown();
        let reply = ShutdownReply {
            message: "stopping every node, then the supervisor".to_string(),
            pid: std::process::id(),
        };
        warp::reply::with_status(warp::reply::json(&reply), StatusCode::ACCEPTED).into_response()
    });
    let members_get =
        warp::path!("members").and(warp::get()).and(with()).then(|c: Arc<C>| async move {
            c.refresh().await;
            warp::reply::json(&c.members().await).into_response()
        });
    let members_add = warp::path!("members")
        .and(warp::post())
        .and(warp::body::content_length_limit(4096))
        .and(warp::body::bytes())
        .and(with())
        .then(|body: bytes::Bytes, c: Arc<C>| async move {
            let req: AddRequest = if body.iter().all(u8::is_ascii_whitespace) {
                AddRequest::default()
            } else {
                match serde_json::from_slice(&body) {
                    Ok(r) => r,
                    Err(e) => {
                        return ApiError::BadRequest(format!(
                            "expected {{\"id\"?: N, \"addr\"?: \"host:port\"}}: {e}"
                        ))
                        .into_reply()
                    }
                }
            };
            match c.add_node(req).await {
                Ok(state) => {
                    warp::reply::with_status(warp::reply::json(&state), StatusCode::ACCEPTED)
                        .into_response()
                }
                Err(e) => e.into_reply(),
            }
        });
    let members_remove = warp::path!("members" / String)
        .and(warp::delete())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(with())
        .then(|id: String, query: String, c: Arc<C>| async move {
            let Ok(id) = id.trim_start_matches("node").parse::<u64>() else {
                return ApiError::NodeNotFound(format!("no node {id:?} in the cluster"))
                    .into_reply();
            };
            let purge = query.split('&').any(|kv| kv == "purge=true" || kv == "purge");
            match c.remove_node(id, purge).await {
                Ok(state) => warp::reply::json(&state).into_response(),
                Err(e) => e.into_reply(),
            }
        });
    status
        .or(node)
        .unify()
        .or(shutdown)
        .unify()
        .or(members_get)
        .unify()
        .or(members_add)
        .unify()
        .or(members_remove)
        .unify()
        .recover(recover)
        .unify()
}

async fn recover(r: Rejection) -> Result<warp::reply::Response, Infallible> {
    let e = if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::MethodNotAllowed("method not allowed here".to_string())
    } else {
        ApiError::NotFound(
            "no such path (GET / for the dashboard, GET /status, POST /nodes/{id}/{action}, GET|POST /members, DELETE /members/{id}, POST /shutdown)".to_string(),
        )
    };
    Ok(e.into_reply())
}

/// Why a control API call failed, as the CLI reports it.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Nothing answers on the control address.
    #[error(
        "no supervisor is running at {addr} (start one with 'make server' or 'raft-nosql cluster start')"
    )]
    NotRunning { addr: String },
    /// The supervisor answered with an error.
    #[error("{message}")]
    Api { status: u16, code: String, message: String },
    /// Something else went wrong on the way (timeout, garbage answer).
    #[error("supervisor at {addr}: {message}")]
    Transport { addr: String, message: String },
}

impl ControlError {
    /// True when no supervisor answered at all.
    pub fn is_not_running(&self) -> bool {
        matches!(self, ControlError::NotRunning { .. })
    }
}

/// A client of the control API.
#[derive(Debug, Clone)]
pub struct ControlClient {
    addr: String,
    http: reqwest::Client,
}

impl ControlClient {
    /// A client for the supervisor at `addr`; `timeout` bounds each call (a node stop can
    /// take `stop_timeout_ms`).
    pub fn new(addr: &str, timeout: Duration) -> ControlClient {
        // Plain http on loopback: the supervisor's API is not served over TLS.
        crate::tls::install_provider();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(timeout)
            .build()
            .expect("HTTP client builds");
        ControlClient { addr: addr.to_string(), http }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn transport(&self, e: reqwest::Error) -> ControlError {
        if e.is_connect() {
            ControlError::NotRunning { addr: self.addr.clone() }
        } else {
            ControlError::Transport { addr: self.addr.clone(), message: e.to_string() }
        }
    }

    async fn decode<T: serde::de::DeserializeOwned>(
        &self,
        resp: reqwest::Response,
    ) -> Result<T, ControlError> {
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.transport(e))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| ControlError::Transport {
                addr: self.addr.clone(),
                message: format!("unexpected answer: {e}"),
            });
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => Err(ControlError::Api {
                status: status.as_u16(),
                code: b.error.code,
                message: b.error.message,
            }),
            Err(_) => Err(ControlError::Transport {
                addr: self.addr.clone(),
                message: format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)),
            }),
        }
    }

    /// `GET /status`.
    pub async fn status(&self) -> Result<ClusterView, ControlError> {
        let resp = self
            .http
            .get(format!("http://{}/status", self.addr))
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        self.decode(resp).await
    }

    /// `POST /nodes/{id}/{action}`.
    pub async fn act(&self, id: u64, action: NodeAction) -> Result<ActionReport, ControlError> {
        let resp = self
            .http
            .post(format!("http://{}/nodes/{id}/{}", self.addr, action.as_path()))
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        self.decode(resp).await
    }

    /// `GET /members`.
    pub async fn members(&self) -> Result<MembersView, ControlError> {
        let resp = self
            .http
            .get(format!("http://{}/members", self.addr))
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        self.decode(resp).await
    }

    /// `POST /members`.
    pub async fn add_node(&self, req: &AddRequest) -> Result<ChangeState, ControlError> {
        let resp = self
            .http
            .post(format!("http://{}/members", self.addr))
            .json(req)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        self.decode(resp).await
    }

    /// `DELETE /members/{id}`.
    pub async fn remove_node(&self, id: u64, purge: bool) -> Result<ChangeState, ControlError> {
        let resp = self
            .http
            .delete(format!(
                "http://{}/members/{id}{}",
                self.addr,
                if purge { "?purge=true" } else { "" }
            ))
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        self.decode(resp).await
    }

    /// `POST /shutdown`.
    pub async fn shutdown(&self) -> Result<ShutdownReply, ControlError> {
        let resp = self
            .http
            .post(format!("http://{}/shutdown", self.addr))
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        self.decode(resp).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::supervisor::view::{NodeView, ProcState, SupervisorInfo};

    #[derive(Default)]
    struct Fake {
        shut: AtomicBool,
    }

    impl Control for Fake {
        fn view(&self) -> ClusterView {
            ClusterView {
                supervisor: SupervisorInfo {
                    pid: 7,
                    control_addr: "127.0.0.1:8099".into(),
                    data_root: "/d".into(),
                    config_file: None,
                    uptime_s: 0,
                },
                leader: None,
                nodes: vec![NodeView::new(0, "127.0.0.1:8100".into())],
            }
        }

        async fn refresh(&self) {}

        async fn act(&self, id: u64, action: NodeAction) -> Result<ActionReport, ApiError> {
            match (id, action) {
                (0, NodeAction::Pause) => {
                    Err(ActionError::Conflict("node 0 is not running".into()).into())
                }
                (0, action) => Ok(ActionReport {
                    node: 0,
                    action,
                    state: ProcState::Killed,
                    pid: None,
                    message: "node 0 killed".into(),
                }),
                (id, _) => Err(ApiError::NodeNotFound(format!("no node {id}"))),
            }
        }

        fn shutdown(&self) {
            self.shut.store(true, Ordering::SeqCst);
        }
    }

    fn error_of(resp: &warp::http::Response<bytes::Bytes>) -> ErrorDetail {
        serde_json::from_slice::<ErrorBody>(resp.body()).unwrap().error
    }

    #[tokio::test]
    async fn status_returns_the_cluster_view() {
        let api = routes(Arc::new(Fake::default()));
        let resp = warp::test::request().path("/status").reply(&api).await;
        assert_eq!(resp.status(), 200);
        let view: ClusterView = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(view.supervisor.pid, 7);
    }

    #[tokio::test]
    async fn node_actions_answer_a_report_or_a_json_error() {
        let api = routes(Arc::new(Fake::default()));
        let resp = warp::test::request().method("POST").path("/nodes/0/kill").reply(&api).await;
        assert_eq!(resp.status(), 200);
        let r: ActionReport = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(r.state, ProcState::Killed);

        let resp = warp::test::request().method("POST").path("/nodes/9/kill").reply(&api).await;
        assert_eq!(resp.status(), 404);
        assert_eq!(error_of(&resp).code, "node_not_found");

        let resp = warp::test::request().method("POST").path("/nodes/x/kill").reply(&api).await;
        assert_eq!(resp.status(), 404);
        assert_eq!(error_of(&resp).code, "node_not_found");

        let resp = warp::test::request().method("POST").path("/nodes/0/pause").reply(&api).await;
        assert_eq!(resp.status(), 409);
        assert_eq!(error_of(&resp).code, "invalid_state");

        let resp = warp::test::request().method("POST").path("/nodes/0/explode").reply(&api).await;
        assert_eq!(resp.status(), 404);
        assert_eq!(error_of(&resp).code, "not_found");
    }

    #[tokio::test]
    async fn unknown_paths_and_methods_are_json_errors() {
        let api = routes(Arc::new(Fake::default()));
        let resp = warp::test::request().path("/nope").reply(&api).await;
        assert_eq!(resp.status(), 404);
        assert_eq!(error_of(&resp).code, "not_found");
        let resp = warp::test::request().method("POST").path("/status").reply(&api).await;
        assert_eq!(resp.status(), 405);
    }

    #[tokio::test]
    async fn shutdown_is_accepted_and_forwarded() {
        let fake = Arc::new(Fake::default());
        let api = routes(fake.clone());
        let resp = warp::test::request().method("POST").path("/shutdown").reply(&api).await;
        assert_eq!(resp.status(), 202);
        assert!(fake.shut.load(Ordering::SeqCst));
    }
}
