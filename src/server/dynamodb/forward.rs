//! Follower → leader forwarding of DynamoDB writes.
//!
//! DynamoDB SDKs do not follow redirects (botocore sends with redirects off), so a write
//! that reaches a follower cannot be answered with the REST API's 307. The follower
//! sends the same request to the leader instead, one hop, on a kept-alive connection
//! (one `reqwest::Client` per node, pooled per leader address), and returns the leader's
//! answer as it is (status, body, checksum, request id), adding `x-raft-forwarded-from`
//! with its own id. The leader does not forward a forwarded request again: if it is no
//! longer the leader it answers `ServiceUnavailable`, and the SDK retries.
//!
//! If the leader cannot be reached, the answer says only what is known: nothing sent
//! (connection refused) is `ServiceUnavailable`; anything later (the leader died while
//! the write was in flight) is `InternalServerError`, since the write may have committed.

use std::time::Duration;

use bytes::Bytes;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

use super::error::{DdbError, Kind};
use super::wire;
use crate::raft::NodeId;

/// The header a forwarded request and its response carry: the forwarding node's id.
pub const FORWARDED_FROM: &str = "x-raft-forwarded-from";

/// The response headers of the leader that are passed on.
const PASSED_ON: [&str; 3] = ["content-type", "x-amz-crc32", "x-amzn-requestid"];

/// Sends writes on to the leader.
pub struct Forwarder {
    http: reqwest::Client,
}

impl Forwarder {
    /// A forwarder whose requests give up after `timeout` (the leader's own write
    /// timeout plus a margin, so the leader answers first).
    /// Forwarded writes carry the cluster secret's proof (`security`).
    pub fn new(timeout: Duration, security: &crate::security::Security) -> Forwarder {
        let http = security
            .client_builder(crate::tls::client(reqwest::Client::builder()))
            .no_proxy()
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .expect("an HTTP client builds");
        Forwarder { http }
    }

    /// Forwards one request to the leader at `leader_addr` and returns its answer.
    pub async fn forward(
        &self,
        me: NodeId,
        leader_addr: &str,
        target: &str,
        body: Bytes,
    ) -> Response {
        let sent = self
            .http
            .post(crate::tls::url(leader_addr, "/"))
            .header("x-amz-target", target)
            .header("content-type", wire::CONTENT_TYPE)
            .header(FORWARDED_FROM, me)
            .body(body)
            .send()
            .await;
        let mut resp = match sent {
            Ok(r) => match copy(r).await {
                Ok(resp) => resp,
                Err(e) => failed(&e, me, leader_addr),
            },
            Err(e) => failed(&e, me, leader_addr),
        };
        resp.headers_mut().insert(FORWARDED_FROM, HeaderValue::from(me));
        resp
    }
}

async fn copy(r: reqwest::Response) -> Result<Response, reqwest::Error> {
    let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers: Vec<(&'static str, HeaderValue)> = PASSED_ON
        .iter()
        .filter_map(|h| {
            r.headers()
                .get(*h)
                .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
                .map(|v| (*h, v))
        })
        .collect();
    let body = r.bytes().await?;
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    for (h, v) in headers {
        resp.headers_mut().insert(h, v);
    }
    Ok(resp)
}

fn failed(e: &reqwest::Error, me: NodeId, leader: &str) -> Response {
    let kind = if e.is_connect() { Kind::ServiceUnavailable } else { Kind::InternalServerError };
    tracing::info!(event = "forward_failed", node_id = me, leader, error = %e, "forward to leader failed");
    wire::error(&DdbError::new(
        kind,
        format!("node {me} could not forward the request to the leader at {leader}: {e}"),
    ))
}
