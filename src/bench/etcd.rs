//! Driving etcd 3.x with the same workloads, through its HTTP/JSON gateway.
//!
//! etcd speaks gRPC; every member also serves a JSON mapping of the same API (the
//! "gRPC gateway") on its client port, so plain HTTP/1.1 with `reqwest` reaches it and
//! the two systems are measured through the same kind of client:
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
//! Shortcuts taken: no authentication, no TLS, no leases or watches; writes are spread
//! round-robin over the members (as etcd's own client does) rather than sent to the
//! leader.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Deserializer};

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
    let mut out = String::with_capacity(32 + key.len() * 4 / 3 + value_b64.len());
    out.push_str(r#"{"key":""#);
    B64.encode_string(key, &mut out);
    out.push_str(r#"","value":""#);
    out.push_str(value_b64);
    out.push_str(r#""}"#);
    out
}

/// The body of a point read of `key`; `serializable` = local read, else linearizable.
pub fn range_body(key: &[u8], serializable: bool) -> String {
    let mut out = String::with_capacity(48 + key.len() * 4 / 3);
    out.push_str(r#"{"key":""#);
    B64.encode_string(key, &mut out);
    out.push_str(if serializable { r#"","serializable":true}"# } else { r#""}"# });
    out
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

/// Kind of a transport failure, for the error counts.
pub(crate) fn transport_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "unreachable".into()
    } else {
        "connection broken".into()
    }
}

/// One benchmark client of an etcd cluster: its own HTTP connection pool, and a turn
/// counter that spreads its requests over the members.
pub struct Worker {
    http: reqwest::Client,
    put_urls: Vec<Url>,
    range_urls: Vec<Url>,
    next: usize,
    value_b64: std::sync::Arc<str>,
    serializable: bool,
}

impl Worker {
    /// A worker for `members` (`host:port`), starting its turns at member `first`.
    pub fn new(
        http: reqwest::Client,
        members: &[String],
        first: usize,
        value_b64: std::sync::Arc<str>,
        serializable: bool,
    ) -> Result<Worker, String> {
        let url = |m: &String, p: &str| {
            Url::parse(&format!("http://{m}{p}")).map_err(|e| format!("bad etcd address {m}: {e}"))
        };
        let put_urls = members.iter().map(|m| url(m, "/v3/kv/put")).collect::<Result<_, _>>()?;
        let range_urls =
            members.iter().map(|m| url(m, "/v3/kv/range")).collect::<Result<_, _>>()?;
        Ok(Worker { http, put_urls, range_urls, next: first, value_b64, serializable })
    }

    fn turn(&mut self) -> usize {
        let i = self.next % self.put_urls.len();
        self.next = self.next.wrapping_add(1);
        i
    }

    /// Puts the benchmark value under `key`.
    pub async fn put(&mut self, key: &str) -> Outcome {
        let i = self.turn();
        let body = put_body(key.as_bytes(), &self.value_b64);
        match self.post(self.put_urls[i].clone(), body).await {
            Ok(body) => match decode_put(&body) {
                Ok(_) => Outcome::Ok { found: true, redirected: false },
                Err(_) => Outcome::Err("bad answer".into()),
            },
            Err(kind) => Outcome::Err(kind),
        }
    }

    /// Reads `key`.
    pub async fn get(&mut self, key: &str) -> Outcome {
        let i = self.turn();
        let body = range_body(key.as_bytes(), self.serializable);
        match self.post(self.range_urls[i].clone(), body).await {
            Ok(body) => match decode_range(&body) {
                Ok(r) => Outcome::Ok { found: !r.kvs.is_empty(), redirected: false },
                Err(_) => Outcome::Err("bad answer".into()),
            },
            Err(kind) => Outcome::Err(kind),
        }
    }

    /// Deletes every key starting with `prefix` (through the first member).
    pub async fn delete_prefix(&mut self, prefix: &str) -> Result<(), String> {
        let url = self.put_urls[0].join("/v3/kv/deleterange").map_err(|e| e.to_string())?;
        self.post(url, delete_prefix_body(prefix.as_bytes())).await.map(|_| ())
    }

    /// POSTs a JSON body; the answer's body on 200, else the error kind.
    async fn post(&self, url: Url, body: String) -> Result<Bytes, String> {
        let resp = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| transport_kind(&e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| transport_kind(&e))?;
        if status == StatusCode::OK {
            Ok(body)
        } else {
            Err(error_kind(status, &body))
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
        assert_eq!((r.count, r.header.revision), (0, 9));
    }

    #[test]
    fn a_key_with_an_empty_value_has_no_value_field() {
        let body = br#"{"header":{},"kvs":[{"key":"aw==","mod_revision":"3"}],"count":"1"}"#;
        let r = decode_range(body).unwrap();
        assert_eq!((r.kvs[0].key.as_slice(), r.kvs[0].value.len()), (&b"k"[..], 0));
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
