//! Driving etcd 3.x with the same workloads, through its HTTP/JSON gateway.
//!
//! etcd speaks gRPC; every member also serves a JSON mapping of the same API (the
//! "gRPC gateway") on its client port, so plain HTTP/1.1 reaches it and the two systems
//! are measured through the same client ([`super::http`]: one keep-alive connection per
//! client task and member, bodies formatted into a reused buffer):
//!
//! | op | request | etcd side |
//! |---|---|---|
//! | write | `POST /v3/kv/put` `{"key": b64, "value": b64}` | any member; a follower forwards the proposal to the leader |
//! | read | `POST /v3/kv/range` `{"key": b64, "serializable": bool}` | `serializable: true` is a local read (like raft-nosql's eventual read); `false` is linearizable (ReadIndex through the leader, answered by the member asked) |
//! | `--fresh` | `POST /v3/kv/deleterange` over the benchmark's key prefix | |
//!
//! The protobuf JSON mapping has two quirks the decoding below handles: `bytes` fields
//! are standard base64, and `int64` fields (`revision`, `mod_revision`, `count`, ...) are
//! JSON *strings*. Fields equal to their default are left out, so an empty range answer
//! has no `kvs` and no `count` at all.
//!
//! On the hot path a range answer is not decoded: [`range_found`] only looks for a
//! non-empty top-level `kvs` array, which is all the outcome needs (the full decoding,
//! [`decode_range`], documents the format and checks that shortcut in the tests). A put
//! answer's 200 is the acknowledgement; its body is not read.
//!
//! Shortcuts taken: no authentication, no TLS, no leases or watches; writes are spread
//! round-robin over the members (as etcd's own client does) rather than sent to the
//! leader.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use hyper::{Method, StatusCode, Uri};
use serde::{Deserialize, Deserializer};

use super::http::{self, RoundRobin};
use super::stats::Outcome;

/// One key-value pair of a range answer, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KeyValue {
    /// The key.
    #[serde(deserialize_with = "b64_bytes")]
    pub key: Vec<u8>,
    /// The value (absent in the JSON when empty).
    #[serde(default, deserialize_with = "b64_bytes")]
    pub value: Vec<u8>,
    /// Revision of the key's creation.
    #[serde(default, deserialize_with = "int64")]
    pub create_revision: i64,
    /// Revision of the key's last change.
    #[serde(default, deserialize_with = "int64")]
    pub mod_revision: i64,
    /// Number of changes since the key was created.
    #[serde(default, deserialize_with = "int64")]
    pub version: i64,
}

/// The `header` every etcd answer carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Header {
    /// The store's revision when the request was served.
    #[serde(default, deserialize_with = "int64")]
    pub revision: i64,
    /// Raft term of the member that answered.
    #[serde(default, deserialize_with = "uint64")]
    pub raft_term: u64,
}

/// A decoded `/v3/kv/range` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RangeResult {
    /// Response header.
    #[serde(default)]
    pub header: Header,
    /// The pairs found (empty when the key does not exist).
    #[serde(default)]
    pub kvs: Vec<KeyValue>,
    /// Number of keys in the range.
    #[serde(default, deserialize_with = "int64")]
    pub count: i64,
}

/// A decoded `/v3/kv/put` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PutResult {
    /// Response header; its revision is the write's.
    #[serde(default)]
    pub header: Header,
}

/// The body of a put of `key` whose value is already base64 (`value_b64`; the benchmark
/// encodes its one value once, not per op).
pub fn put_body(key: &[u8], value_b64: &str) -> String {
    let mut out = BytesMut::new();
    put_body_into(&mut out, key, value_b64);
    String::from_utf8(out.to_vec()).expect("base64 and ASCII")
}

/// [`put_body`], appended to `out` (a reused buffer).
pub fn put_body_into(out: &mut BytesMut, key: &[u8], value_b64: &str) {
    out.reserve(32 + key.len() * 4 / 3 + value_b64.len());
    out.extend_from_slice(br#"{"key":""#);
    push_b64(out, key);
    out.extend_from_slice(br#"","value":""#);
    out.extend_from_slice(value_b64.as_bytes());
    out.extend_from_slice(br#""}"#);
}

/// The body of a point read of `key`; `serializable` = local read, else linearizable.
pub fn range_body(key: &[u8], serializable: bool) -> String {
    let mut out = BytesMut::new();
    range_body_into(&mut out, key, serializable);
    String::from_utf8(out.to_vec()).expect("base64 and ASCII")
}

/// [`range_body`], appended to `out` (a reused buffer).
pub fn range_body_into(out: &mut BytesMut, key: &[u8], serializable: bool) {
    out.reserve(48 + key.len() * 4 / 3);
    out.extend_from_slice(br#"{"key":""#);
    push_b64(out, key);
    out.extend_from_slice(if serializable { br#"","serializable":true}"# } else { br#""}"# });
}

/// Appends the standard base64 of `bytes`.
fn push_b64(out: &mut BytesMut, bytes: &[u8]) {
    let start = out.len();
    let len = base64::encoded_len(bytes.len(), true).expect("a key is far from usize::MAX");
    out.resize(start + len, 0);
    let written = B64.encode_slice(bytes, &mut out[start..]).expect("sized by encoded_len");
    out.truncate(start + written);
}

/// The body of a delete of every key starting with `prefix`.
pub fn delete_prefix_body(prefix: &[u8]) -> String {
    serde_json::json!({"key": B64.encode(prefix), "range_end": B64.encode(prefix_end(prefix))})
        .to_string()
}

/// The smallest key greater than every key starting with `prefix` (etcd's `range_end`
/// for a prefix). An empty or all-0xff prefix means "to the end": `\0`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Base64 of a value, for [`put_body`].
pub fn encode_value(value: &[u8]) -> String {
    B64.encode(value)
}

/// Decodes a range answer.
pub fn decode_range(body: &[u8]) -> Result<RangeResult, String> {
    serde_json::from_slice(body).map_err(|e| format!("bad range answer: {e}"))
}

/// Whether a range answer found the key: it has a non-empty top-level `kvs` array.
///
/// A cheap scan instead of [`decode_range`]: in etcd's answers every string is a field
/// name, base64 or a decimal number, so the quoted token `"kvs"` can only be the field
/// name. An answer that is not a JSON object, or whose `kvs` is not an array, is an error.
pub fn range_found(body: &[u8]) -> Result<bool, String> {
    let body = body.trim_ascii();
    if !(body.starts_with(b"{") && body.ends_with(b"}")) {
        return Err("bad range answer: not a JSON object".into());
    }
    let Some(at) = body.windows(5).position(|w| w == br#""kvs""#) else {
        return Ok(false);
    };
    let rest = body[at + 5..].trim_ascii_start();
    let rest = rest.strip_prefix(b":").ok_or("bad range answer: kvs without a value")?;
    let rest = rest.trim_ascii_start();
    let rest = rest.strip_prefix(b"[").ok_or("bad range answer: kvs is not an array")?;
    match rest.trim_ascii_start().first() {
        Some(b']') => Ok(false),
        Some(b'{') => Ok(true),
        _ => Err("bad range answer: kvs holds something else than objects".into()),
    }
}

/// Decodes a put answer.
pub fn decode_put(body: &[u8]) -> Result<PutResult, String> {
    serde_json::from_slice(body).map_err(|e| format!("bad put answer: {e}"))
}

/// The kind of an error answer (`{"error": "...", "code": 14, "message": "..."}`) for the
/// error counts: HTTP status plus etcd's message, cut short.
pub fn error_kind(status: StatusCode, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(default)]
        message: String,
        #[serde(default)]
        error: String,
    }
    let message = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| if b.message.is_empty() { b.error } else { b.message })
        .unwrap_or_default();
    let message: String = message.chars().take(80).collect();
    if message.is_empty() {
        format!("HTTP {}", status.as_u16())
    } else {
        format!("{message} (HTTP {})", status.as_u16())
    }
}

/// int64 in the protobuf JSON mapping: a string of digits (a bare number is accepted too).
fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Text(String),
        Number(i64),
    }
    match Repr::deserialize(d)? {
        Repr::Number(n) => Ok(n),
        Repr::Text(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

/// uint64, same mapping as [`int64`].
fn uint64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = int64(d)?;
    u64::try_from(n).map_err(serde::de::Error::custom)
}

/// bytes in the protobuf JSON mapping: standard base64.
fn b64_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = String::deserialize(d)?;
    B64.decode(s.as_bytes()).map_err(serde::de::Error::custom)
}

/// One benchmark client of an etcd cluster: one connection per member, and a turn
/// counter that spreads its requests over the members.
pub struct Worker {
    members: RoundRobin,
    put_uri: Uri,
    range_uri: Uri,
    value_b64: std::sync::Arc<str>,
    serializable: bool,
    /// Reused buffer for request bodies.
    body_buf: BytesMut,
}

impl Worker {
    /// A worker for `members` (`host:port`), starting its turns at member `first`.
    pub fn new(
        members: &[String],
        first: usize,
        value_b64: std::sync::Arc<str>,
        serializable: bool,
    ) -> Result<Worker, String> {
        Ok(Worker {
            members: RoundRobin::new(members, Some(80), first, "etcd member address")?,
            put_uri: Uri::from_static("/v3/kv/put"),
            range_uri: Uri::from_static("/v3/kv/range"),
            value_b64,
            serializable,
            body_buf: BytesMut::new(),
        })
    }

    /// Puts the benchmark value under `key`. A 200 is the acknowledgement.
    pub async fn put(&mut self, key: &str) -> Outcome {
        let slot = self.members.turn();
        put_body_into(&mut self.body_buf, key.as_bytes(), &self.value_b64);
        let body = self.body_buf.split().freeze();
        let uri = self.put_uri.clone();
        match self.post(slot, &uri, &body, false).await {
            Ok(_) => Outcome::Ok { found: true, redirected: false },
            Err(kind) => Outcome::Err(kind),
        }
    }

    /// Reads `key`.
    pub async fn get(&mut self, key: &str) -> Outcome {
        let slot = self.members.turn();
        range_body_into(&mut self.body_buf, key.as_bytes(), self.serializable);
        let body = self.body_buf.split().freeze();
        let uri = self.range_uri.clone();
        match self.post(slot, &uri, &body, true).await {
            Ok(answer) => match range_found(&answer) {
                Ok(found) => Outcome::Ok { found, redirected: false },
                Err(_) => Outcome::Err("bad answer".into()),
            },
            Err(kind) => Outcome::Err(kind),
        }
    }

    /// Deletes every key starting with `prefix` (through the first member).
    pub async fn delete_prefix(&mut self, prefix: &str) -> Result<(), String> {
        let body = Bytes::from(delete_prefix_body(prefix.as_bytes()));
        let uri = Uri::from_static("/v3/kv/deleterange");
        self.post(self.members.slots()[0], &uri, &body, false).await.map(|_| ())
    }

    /// POSTs a JSON body; the answer's body on 200 (empty unless `want_body`), else the
    /// error kind.
    async fn post(
        &mut self,
        slot: usize,
        uri: &Uri,
        body: &Bytes,
        want_body: bool,
    ) -> Result<Bytes, String> {
        let answer = self
            .members
            .conns
            .send(slot, &Method::POST, uri, Some(body), want_body, http::REQUEST_TIMEOUT)
            .await
            .map_err(|t| t.kind())?;
        if answer.status == StatusCode::OK {
            Ok(answer.body)
        } else {
            Err(error_kind(answer.status, &answer.body))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_encodes_key_and_value_as_base64() {
        let v = encode_value(b"hello world");
        assert_eq!(v, "aGVsbG8gd29ybGQ=");
        let body = put_body(b"key000123", &v);
        assert_eq!(body, r#"{"key":"a2V5MDAwMTIz","value":"aGVsbG8gd29ybGQ="}"#);
        // It is valid JSON that decodes back to the bytes.
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(B64.decode(parsed["key"].as_str().unwrap()).unwrap(), b"key000123");
        assert_eq!(B64.decode(parsed["value"].as_str().unwrap()).unwrap(), b"hello world");
        // Binary and empty values survive too.
        assert_eq!(encode_value(&[0, 0xff, 0xfe]), "AP/+");
        assert_eq!(put_body(b"k", ""), r#"{"key":"aw==","value":""}"#);
    }

    #[test]
    fn range_asks_for_serializable_or_linearizable() {
        assert_eq!(range_body(b"key1", true), r#"{"key":"a2V5MQ==","serializable":true}"#);
        // Linearizable is the default: the field is simply left out.
        assert_eq!(range_body(b"key1", false), r#"{"key":"a2V5MQ=="}"#);
    }

    #[test]
    fn a_range_answer_decodes_with_int64_fields_as_strings() {
        let body = br#"{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"7","raft_term":"2"},
            "kvs":[{"key":"a2V5MDAwMTIz","create_revision":"5","mod_revision":"5","version":"1","value":"aGVsbG8="}],
            "count":"1"}"#;
        let r = decode_range(body).unwrap();
        assert_eq!(range_found(body), Ok(true));
        assert_eq!((r.header.revision, r.header.raft_term, r.count), (7, 2, 1));
        assert_eq!(
            r.kvs,
            vec![KeyValue {
                key: b"key000123".to_vec(),
                value: b"hello".to_vec(),
                create_revision: 5,
                mod_revision: 5,
                version: 1,
            }]
        );
    }

    #[test]
    fn an_empty_range_has_no_kvs_and_no_count() {
        let body =
            br#"{"header":{"cluster_id":"1","member_id":"2","revision":"9","raft_term":"3"}}"#;
        let r = decode_range(body).unwrap();
        assert!(r.kvs.is_empty());
        assert_eq!(range_found(body), Ok(false));
        assert_eq!((r.count, r.header.revision), (0, 9));
    }

    #[test]
    fn a_key_with_an_empty_value_has_no_value_field() {
        let body = br#"{"header":{},"kvs":[{"key":"aw==","mod_revision":"3"}],"count":"1"}"#;
        let r = decode_range(body).unwrap();
        assert_eq!((r.kvs[0].key.as_slice(), r.kvs[0].value.len()), (&b"k"[..], 0));
        // Found, even though the value is empty.
        assert_eq!(range_found(body), Ok(true));
    }

    /// The scan used on the hot path agrees with the full decoding on every shape of
    /// answer, including whitespace, field order and an explicit empty array.
    #[test]
    fn the_found_scan_agrees_with_the_decoding() {
        let bodies: &[&[u8]] = &[
            br#"{"header":{"revision":"7"},"kvs":[{"key":"aw==","value":"dg=="}],"count":"1"}"#,
            br#"{"count":"1","kvs":[{"key":"aw=="}],"header":{"revision":"7"}}"#,
            br#" { "header" : {"revision":"7"} , "kvs" : [ {"key":"aw=="} ] } "#,
            br#"{"header":{"revision":"7"},"kvs":[],"count":"0"}"#,
            br#"{"header":{"revision":"7"},"kvs" : [ ]}"#,
            br#"{"header":{"revision":"7"}}"#,
            br#"{}"#,
        ];
        for body in bodies {
            let decoded = !decode_range(body).unwrap().kvs.is_empty();
            assert_eq!(range_found(body), Ok(decoded), "{}", String::from_utf8_lossy(body));
        }
        for bad in
            [&b"not json"[..], b"", b"[]", br#"{"kvs":"x"}"#, br#"{"kvs":[1]}"#, br#"{"kvs"}"#]
        {
            assert!(range_found(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn bodies_are_built_into_a_reused_buffer() {
        let mut buf = BytesMut::new();
        put_body_into(&mut buf, b"key000123", "aGVsbG8=");
        let first = buf.split().freeze();
        assert_eq!(&first[..], put_body(b"key000123", "aGVsbG8=").as_bytes());
        drop(first);
        range_body_into(&mut buf, b"key1", true);
        assert_eq!(&buf[..], range_body(b"key1", true).as_bytes());
        buf.clear();
        // Every key length pads correctly.
        for n in 0..8 {
            let key = vec![b'k'; n];
            range_body_into(&mut buf, &key, false);
            let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            assert_eq!(B64.decode(v["key"].as_str().unwrap()).unwrap(), key);
            buf.clear();
        }
    }

    #[test]
    fn malformed_answers_are_errors_not_panics() {
        assert!(decode_range(b"not json").is_err());
        assert!(decode_range(br#"{"kvs":[{"key":"%%%"}]}"#).is_err());
        assert!(decode_range(br#"{"count":"many"}"#).is_err());
        assert_eq!(decode_put(br#"{"header":{"revision":"12"}}"#).unwrap().header.revision, 12);
    }

    #[test]
    fn error_answers_are_counted_by_message() {
        let body = br#"{"error":"etcdserver: request timed out","code":14,"message":"etcdserver: request timed out"}"#;
        assert_eq!(
            error_kind(StatusCode::SERVICE_UNAVAILABLE, body),
            "etcdserver: request timed out (HTTP 503)"
        );
        assert_eq!(error_kind(StatusCode::NOT_FOUND, b"404 page not found"), "HTTP 404");
    }

    /// The worker against a mock member: puts are acknowledged by a 200, ranges find
    /// exactly the keys the member has, errors are counted by etcd's message, and a
    /// member nobody answers at is unreachable.
    #[tokio::test]
    async fn the_worker_reads_and_writes_through_the_gateway() {
        use crate::client::mock::{mock, Seen};

        let stored = B64.encode("key1");
        let (member, seen) = mock(move |Seen { path_and_query: path, body, .. }| {
            let header = r#""header":{"cluster_id":"1","revision":"5","raft_term":"2"}"#;
            match path.as_str() {
                "/v3/kv/put" if body.contains(r#""key":"a2V5Mg==""#) => (
                    503,
                    vec![],
                    r#"{"error":"etcdserver: no leader","code":14,"message":"etcdserver: no leader"}"#
                        .into(),
                ),
                "/v3/kv/put" | "/v3/kv/deleterange" => (200, vec![], format!("{{{header}}}")),
                "/v3/kv/range" if body.contains(&stored) => (
                    200,
                    vec![],
                    format!(r#"{{{header},"kvs":[{{"key":"{stored}","value":"dg=="}}],"count":"1"}}"#),
                ),
                "/v3/kv/range" => (200, vec![], format!("{{{header}}}")),
                _ => (404, vec![], "404 page not found".into()),
            }
        })
        .await;
        let mut w = Worker::new(std::slice::from_ref(&member), 0, "dg==".into(), true).unwrap();
        let ok = |found| Outcome::Ok { found, redirected: false };
        assert_eq!(w.put("key1").await, ok(true));
        assert_eq!(w.put("key2").await, Outcome::Err("etcdserver: no leader (HTTP 503)".into()));
        assert_eq!(w.get("key1").await, ok(true));
        assert_eq!(w.get("key3").await, ok(false));
        w.delete_prefix("key").await.unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[0].body, put_body(b"key1", "dg=="));
        assert_eq!(seen[2].body, range_body(b"key1", true));
        assert!(seen.iter().all(|s| s.method == "POST"));

        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut w = Worker::new(&[dead.to_string()], 0, "dg==".into(), false).unwrap();
        assert_eq!(w.get("key1").await, Outcome::Err("unreachable".into()));
    }

    #[test]
    fn prefix_deletes_cover_exactly_the_prefix() {
        assert_eq!(prefix_end(b"key"), b"kez");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), b"\0");
        let body: serde_json::Value = serde_json::from_str(&delete_prefix_body(b"key")).unwrap();
        assert_eq!(body["key"], "a2V5");
        assert_eq!(body["range_end"], "a2V6");
    }
}
