//! Driving anything that speaks DynamoDB's wire protocol with the same workloads: a
//! raft-nosql cluster (`--api dynamodb`, every node serves the protocol on its port) or
//! one DynamoDB-compatible endpoint (`--system dynamodb`: moto's server, dynalite,
//! DynamoDB Local), so the one load generator measures all of them the same way.
//!
//! Every operation is `POST /` with `X-Amz-Target: DynamoDB_20120810.<Op>` and an
//! `application/x-amz-json-1.0` body, built from pre-encoded pieces into a reused buffer
//! and sent through [`super::http`] (one keep-alive connection per client task and
//! target, as for the other systems):
//!
//! | op | body | raft-nosql side |
//! |---|---|---|
//! | write | PutItem `{"TableName", "Item": {"k": {"S": key}, "v": {"S": value}}}` | any node; a follower forwards it to the leader (one hop) and adds `x-raft-forwarded-from` |
//! | read | GetItem `{"TableName", "Key": {"k": {"S": key}}}`, plus `"ConsistentRead": true` for `--consistency strong` | answered by the node asked (strong: after a read index from the leader) |
//! | update | GetItem, then UpdateItem with a `ConditionExpression` ([`super::conditional`]) | decided when the leader applies it; group-committed with other writes |
//! | transfer | TransactWriteItems of two conditional Updates ([`super::conditional`]) | one log entry of its own |
//!
//! Reads go to the targets in turn. Writes go to the node that last answered a write
//! itself (no `x-raft-forwarded-from`: the leader, on raft-nosql), and to the targets in
//! turn until one has, or after a write came back forwarded; this is what the native
//! worker's leader cache does, so the two APIs are compared on the same path. A
//! forwarded write is counted as a redirect. A 200 is the acknowledgement; anything
//! else is an error counted by its DynamoDB type (`ValidationException (HTTP 400)`).
//! Writes are not retried (an SDK would retry 5xx answers; a run with errors shows them).
//!
//! A GetItem answer is decoded only as far as the presence of a top-level `Item`
//! ([`item_found`]); with `--check-crc`, every answer's `x-amz-crc32` header is checked
//! against its body as botocore does (an answer without the header passes, as there),
//! and a mismatch counts as the error `bad x-amz-crc32`.
//!
//! Setup goes through the same protocol: CreateTable (partition key `k`, type S,
//! on-demand billing; DeleteTable first with `--fresh`), then DescribeTable on every
//! target until it is ACTIVE there.
//!
//! Shortcuts taken: requests carry a fixed, unsigned `Authorization` header in SigV4's
//! shape (raft-nosql and the emulators do not check signatures; dynalite wants the
//! header to be there); no endpoint discovery, no TLS.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, StatusCode, Uri};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Value};

use super::conditional::{Attempt, Seen, COUNTER_ATTR};
use super::http::{self, Answer, RoundRobin};
use super::nosql::{KEY_ATTR, VALUE_ATTR};
use super::stats::Outcome;

/// The content type of DynamoDB's JSON protocol.
pub const CONTENT_TYPE_AMZ: &str = "application/x-amz-json-1.0";
/// The header a raft-nosql follower adds to a write it forwarded to the leader.
pub const FORWARDED_FROM: &str = "x-raft-forwarded-from";
/// The header with the CRC32 of the answer's body.
pub const CRC32: &str = "x-amz-crc32";

/// An `Authorization` header in SigV4's shape, not a real signature.
const FAKE_AUTH: &str =
    "AWS4-HMAC-SHA256 Credential=bench/20240101/us-east-1/dynamodb/aws4_request, \
     SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
     Signature=0000000000000000000000000000000000000000000000000000000000000000";

/// How long setup waits for a table to become ACTIVE (or gone) on every target.
const TABLE_DEADLINE: Duration = Duration::from_secs(15);
/// Poll interval while waiting for that.
const POLL: Duration = Duration::from_millis(50);

/// The operations the benchmark sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    PutItem,
    GetItem,
    UpdateItem,
    TransactWriteItems,
    CreateTable,
    DeleteTable,
    DescribeTable,
}

impl Op {
    /// The `X-Amz-Target` value.
    pub fn target(self) -> &'static str {
        match self {
            Op::PutItem => "DynamoDB_20120810.PutItem",
            Op::GetItem => "DynamoDB_20120810.GetItem",
            Op::UpdateItem => "DynamoDB_20120810.UpdateItem",
            Op::TransactWriteItems => "DynamoDB_20120810.TransactWriteItems",
            Op::CreateTable => "DynamoDB_20120810.CreateTable",
            Op::DeleteTable => "DynamoDB_20120810.DeleteTable",
            Op::DescribeTable => "DynamoDB_20120810.DescribeTable",
        }
    }
}

/// The headers of a request for `op` (everything but `Host`, which [`http`] adds).
fn headers(op: Op) -> [(HeaderName, HeaderValue); 4] {
    [
        (CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_AMZ)),
        (HeaderName::from_static("x-amz-target"), HeaderValue::from_static(op.target())),
        (HeaderName::from_static("x-amz-date"), HeaderValue::from_static("20240101T000000Z")),
        (AUTHORIZATION, HeaderValue::from_static(FAKE_AUTH)),
    ]
}

/// Appends `s` as a JSON string, quotes included.
fn push_json_string(out: &mut BytesMut, s: &str) {
    out.extend_from_slice(b"\"");
    http::push_json_str(out, s);
    out.extend_from_slice(b"\"");
}

/// The pieces of a PutItem body around the key: `{"TableName":t,"Item":{"k":{"S":"` and
/// `"},"v":{"S":value}}}`.
pub fn put_pieces(table: &str, value: &str) -> (Bytes, Bytes) {
    let mut prefix = BytesMut::new();
    prefix.extend_from_slice(b"{\"TableName\":");
    push_json_string(&mut prefix, table);
    prefix.extend_from_slice(format!(",\"Item\":{{\"{KEY_ATTR}\":{{\"S\":\"").as_bytes());
    let mut suffix = BytesMut::new();
    suffix.extend_from_slice(format!("\"}},\"{VALUE_ATTR}\":{{\"S\":").as_bytes());
    push_json_string(&mut suffix, value);
    suffix.extend_from_slice(b"}}}");
    (prefix.freeze(), suffix.freeze())
}

/// The pieces of a GetItem body around the key: `{"TableName":t,"Key":{"k":{"S":"` and
/// `"}}}` (or `"}},"ConsistentRead":true}` when `consistent`).
pub fn get_pieces(table: &str, consistent: bool) -> (Bytes, &'static [u8]) {
    let mut prefix = BytesMut::new();
    prefix.extend_from_slice(b"{\"TableName\":");
    push_json_string(&mut prefix, table);
    prefix.extend_from_slice(format!(",\"Key\":{{\"{KEY_ATTR}\":{{\"S\":\"").as_bytes());
    let suffix: &[u8] = if consistent { b"\"}},\"ConsistentRead\":true}" } else { b"\"}}}" };
    (prefix.freeze(), suffix)
}

/// The error type of a refused conditional write.
pub const CONDITION_FAILED: &str = "ConditionalCheckFailedException";
/// The error type of a refused transaction.
pub const TRANSACTION_CANCELED: &str = "TransactionCanceledException";

/// A DynamoDB number (`{"N": "5"}`).
fn number(n: i64) -> Value {
    json!({ "N": n.to_string() })
}

/// The UpdateItem that increments `n` of `key` if it is still what the read saw:
/// `SET #n = #n + :one` if `#n = :seen`, or `SET #n = :one` if `attribute_not_exists(#n)`
/// when the item had no `n`.
pub fn increment_body(table: &str, key: &str, seen: Option<i64>) -> Bytes {
    let mut body = json!({
        "TableName": table,
        "Key": { KEY_ATTR: { "S": key } },
        "ExpressionAttributeNames": { "#n": COUNTER_ATTR },
    });
    let (update, condition, values) = match seen {
        Some(v) => {
            ("SET #n = #n + :one", "#n = :seen", json!({ ":one": number(1), ":seen": number(v) }))
        }
        None => ("SET #n = :one", "attribute_not_exists(#n)", json!({ ":one": number(1) })),
    };
    body["UpdateExpression"] = update.into();
    body["ConditionExpression"] = condition.into();
    body["ExpressionAttributeValues"] = values;
    Bytes::from(body.to_string())
}

/// The TransactWriteItems that moves `amount` from `n` of `from` to `n` of `to`,
/// refused unless `from` holds at least `amount` and `to` has an `n`.
pub fn transfer_body(table: &str, from: &str, to: &str, amount: i64) -> Bytes {
    let update = |key: &str, update: &str, condition: &str| {
        json!({ "Update": {
            "TableName": table,
            "Key": { KEY_ATTR: { "S": key } },
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": { "#n": COUNTER_ATTR },
            "ExpressionAttributeValues": { ":amt": number(amount) },
        }})
    };
    let body = json!({ "TransactItems": [
        update(from, "SET #n = #n - :amt", "#n >= :amt"),
        update(to, "SET #n = #n + :amt", "attribute_exists(#n)"),
    ]});
    Bytes::from(body.to_string())
}

/// The PutItem of `{"k": key, "n": n}`.
pub fn put_number_body(table: &str, key: &str, n: i64) -> Bytes {
    let body = json!({
        "TableName": table,
        "Item": { KEY_ATTR: { "S": key }, COUNTER_ATTR: number(n) },
    });
    Bytes::from(body.to_string())
}

/// `n` of the item of a GetItem answer: `None` if there is no item or it has no `n`.
pub fn counter_of(body: &[u8]) -> Result<Option<i64>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("bad GetItem answer: {e}"))?;
    match v.get("Item").and_then(|i| i.get(COUNTER_ATTR)) {
        None => Ok(None),
        Some(n) => n["N"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("bad GetItem answer: {COUNTER_ATTR} is not a number: {n}")),
    }
}

/// Whether a GetItem answer found the item: it has a top-level `Item` (DynamoDB answers
/// `{}` for a missing one). The item itself is skipped, not decoded.
pub fn item_found(body: &[u8]) -> Result<bool, String> {
    #[derive(Deserialize)]
    struct GetItemOutput {
        #[serde(rename = "Item")]
        item: Option<IgnoredAny>,
    }
    serde_json::from_slice::<GetItemOutput>(body)
        .map(|o| o.item.is_some())
        .map_err(|e| format!("bad GetItem answer: {e}"))
}

/// The DynamoDB type of an error answer (`{"__type": "com.amazonaws...#Name", ...}`),
/// without the namespace, if the body has one.
pub fn error_type(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(rename = "__type")]
        kind: String,
    }
    let b = serde_json::from_slice::<ErrorBody>(body).ok()?;
    Some(b.kind.rsplit('#').next().unwrap_or_default().to_string())
}

/// The kind of an error answer, for the error counts: `ValidationException (HTTP 400)`,
/// or `HTTP 400` alone when the body names no type.
pub fn error_kind(status: StatusCode, body: &[u8]) -> String {
    match error_type(body) {
        Some(t) if !t.is_empty() => format!("{t} (HTTP {})", status.as_u16()),
        _ => format!("HTTP {}", status.as_u16()),
    }
}

/// Whether the answer's `x-amz-crc32` (if it has one) is the CRC32 of its body.
pub fn crc_matches(answer: &Answer) -> bool {
    match answer.header(CRC32) {
        None => true,
        Some(v) => v.parse::<u32>().is_ok_and(|c| c == crc32fast::hash(&answer.body)),
    }
}

/// One benchmark client of a DynamoDB endpoint or of raft-nosql's DynamoDB API.
pub struct Worker {
    targets: RoundRobin,
    /// The target that last answered a write itself: where writes go first.
    writer: Option<usize>,
    /// Check `x-amz-crc32` on every answer.
    check_crc: bool,
    uri: Uri,
    put_prefix: Bytes,
    put_suffix: Bytes,
    get_prefix: Bytes,
    get_suffix: &'static [u8],
    /// The table (for the bodies built per request).
    table: String,
    /// Reused buffer for request bodies.
    body_buf: BytesMut,
}

impl Worker {
    /// A worker for `targets` (`host:port`), reading from them in turn starting at
    /// target `first`. `consistent` reads ask for `ConsistentRead`; `value` is the
    /// benchmark value.
    pub fn new(
        targets: &[String],
        first: usize,
        table: &str,
        value: &str,
        consistent: bool,
        check_crc: bool,
    ) -> Result<Worker, String> {
        let (put_prefix, put_suffix) = put_pieces(table, value);
        let (get_prefix, get_suffix) = get_pieces(table, consistent);
        Ok(Worker {
            targets: RoundRobin::new(targets, None, first, "--target")?,
            writer: None,
            check_crc,
            uri: Uri::from_static("/"),
            put_prefix,
            put_suffix,
            get_prefix,
            get_suffix,
            table: table.to_string(),
            body_buf: BytesMut::new(),
        })
    }

    /// PutItem of the benchmark value under `key`. A 200 is the acknowledgement.
    pub async fn put(&mut self, key: &str) -> Outcome {
        let b = &mut self.body_buf;
        b.reserve(self.put_prefix.len() + key.len() + self.put_suffix.len());
        b.extend_from_slice(&self.put_prefix);
        http::push_json_str(b, key);
        b.extend_from_slice(&self.put_suffix);
        let body = b.split().freeze();
        let slot = self.writer.unwrap_or_else(|| self.targets.turn());
        match self.send(slot, Op::PutItem, &body, self.check_crc).await {
            Ok(answer) => {
                let forwarded = answer.headers.contains_key(FORWARDED_FROM);
                self.writer = (!forwarded).then_some(slot);
                Outcome::Ok { found: true, redirected: forwarded }
            }
            Err(kind) => {
                self.writer = None;
                Outcome::Err(kind)
            }
        }
    }

    /// GetItem of `key` from the next target in turn. A missing item is a miss.
    pub async fn get(&mut self, key: &str) -> Outcome {
        let b = &mut self.body_buf;
        b.reserve(self.get_prefix.len() + key.len() + self.get_suffix.len());
        b.extend_from_slice(&self.get_prefix);
        http::push_json_str(b, key);
        b.extend_from_slice(self.get_suffix);
        let body = b.split().freeze();
        let slot = self.targets.turn();
        match self.send(slot, Op::GetItem, &body, true).await {
            Ok(answer) => match item_found(&answer.body) {
                Ok(found) => Outcome::Ok { found, redirected: false },
                Err(_) => Outcome::Err("bad answer".into()),
            },
            Err(kind) => Outcome::Err(kind),
        }
    }

    /// GetItem of `key` for an update, from the node writes go to (else the next
    /// target): the item's `n`. `consistent` asks for a ConsistentRead.
    pub async fn read_counter(&mut self, key: &str, consistent: bool) -> Result<Seen, String> {
        let (prefix, suffix) = get_pieces(&self.table, consistent);
        let body = Bytes::from([&prefix[..], key.as_bytes(), suffix].concat());
        let slot = self.writer.unwrap_or_else(|| self.targets.turn());
        let answer = self.send(slot, Op::GetItem, &body, true).await?;
        Ok(Seen { version: 0, n: counter_of(&answer.body)? })
    }

    /// The conditional UpdateItem of an update: `n + 1` if `n` is still `seen.n`.
    pub async fn increment(&mut self, key: &str, seen: &Seen) -> Attempt {
        let body = increment_body(&self.table, key, seen.n);
        self.conditional(Op::UpdateItem, &body, CONDITION_FAILED).await
    }

    /// One transfer of `amount` from `from` to `to`, as one TransactWriteItems.
    pub async fn transfer(&mut self, from: &str, to: &str, amount: i64) -> Attempt {
        let body = transfer_body(&self.table, from, to, amount);
        self.conditional(Op::TransactWriteItems, &body, TRANSACTION_CANCELED).await
    }

    /// PutItem of `{"k": key, "n": n}` (the `transact` workload's preload).
    pub async fn put_number(&mut self, key: &str, n: i64) -> Outcome {
        let body = put_number_body(&self.table, key, n);
        match self.conditional(Op::PutItem, &body, CONDITION_FAILED).await {
            Attempt::Done { redirected } => Outcome::Ok { found: true, redirected },
            Attempt::Conflict => Outcome::Refused,
            Attempt::Failed(kind) => Outcome::Err(kind),
        }
    }

    /// A write that may be refused by its condition (`refused`: the error type that
    /// says so), sent where [`Worker::put`] sends writes. A node that answered it
    /// itself, even with a refusal, stays where writes go.
    async fn conditional(&mut self, op: Op, body: &Bytes, refused: &str) -> Attempt {
        let slot = self.writer.unwrap_or_else(|| self.targets.turn());
        let answer = match self.call(slot, op, body, false).await {
            Ok(a) => a,
            Err(t) => {
                self.writer = None;
                return Attempt::Failed(t.kind());
            }
        };
        if self.check_crc && !crc_matches(&answer) {
            self.writer = None;
            return Attempt::Failed("bad x-amz-crc32".into());
        }
        let forwarded = answer.headers.contains_key(FORWARDED_FROM);
        self.writer = (!forwarded && !answer.status.is_server_error()).then_some(slot);
        if answer.status == StatusCode::OK {
            return Attempt::Done { redirected: forwarded };
        }
        match error_type(&answer.body) {
            Some(t) if t == refused => Attempt::Conflict,
            _ => Attempt::Failed(error_kind(answer.status, &answer.body)),
        }
    }

    /// One request; the answer if it is a 200 (with a matching CRC when checked), else
    /// the error kind.
    async fn send(
        &mut self,
        slot: usize,
        op: Op,
        body: &Bytes,
        keep_ok_body: bool,
    ) -> Result<Answer, String> {
        let answer = self.call(slot, op, body, keep_ok_body).await.map_err(|t| t.kind())?;
        if self.check_crc && !crc_matches(&answer) {
            return Err("bad x-amz-crc32".into());
        }
        if answer.status == StatusCode::OK {
            Ok(answer)
        } else {
            Err(error_kind(answer.status, &answer.body))
        }
    }

    async fn call(
        &mut self,
        slot: usize,
        op: Op,
        body: &Bytes,
        keep_ok_body: bool,
    ) -> Result<Answer, http::Transport> {
        let headers = headers(op);
        self.targets
            .conns
            .send_with(
                slot,
                &Method::POST,
                &self.uri,
                Some(body),
                &headers,
                keep_ok_body,
                http::REQUEST_TIMEOUT,
            )
            .await
    }

    /// A setup request with a JSON body: the answer, or why none came.
    async fn setup_call(&mut self, slot: usize, op: Op, body: &Value) -> Result<Answer, String> {
        let body = Bytes::from(body.to_string());
        let addr = self.targets.conns.addr(slot).to_string();
        self.call(slot, op, &body, true).await.map_err(|t| format!("{addr}: {}", t.kind()))
    }

    /// DescribeTable of `table` at `slot`: `Some(status)` (`ACTIVE`, `CREATING`, ...) if
    /// it exists there, `None` if not.
    async fn table_status(&mut self, slot: usize, table: &str) -> Result<Option<String>, String> {
        let a = self.setup_call(slot, Op::DescribeTable, &json!({ "TableName": table })).await?;
        if a.status == StatusCode::OK {
            let v: Value = serde_json::from_slice(&a.body)
                .map_err(|e| format!("bad DescribeTable answer: {e}"))?;
            return Ok(Some(v["Table"]["TableStatus"].as_str().unwrap_or("ACTIVE").to_string()));
        }
        match error_type(&a.body).as_deref() {
            Some("ResourceNotFoundException") => Ok(None),
            _ => Err(format!("DescribeTable {table}: {}", error_kind(a.status, &a.body))),
        }
    }

    /// Polls every target until `done` holds for its table status, or the deadline.
    async fn wait_tables(
        &mut self,
        table: &str,
        what: &str,
        done: impl Fn(Option<&str>) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + TABLE_DEADLINE;
        for slot in self.targets.slots().to_vec() {
            loop {
                let status = self.table_status(slot, table).await;
                match status {
                    Ok(s) if done(s.as_deref()) => break,
                    _ if Instant::now() > deadline => {
                        let addr = self.targets.conns.addr(slot);
                        let last = match status {
                            Ok(s) => format!("status {}", s.as_deref().unwrap_or("none")),
                            Err(e) => e,
                        };
                        return Err(format!("table {table} not {what} at {addr}: {last}"));
                    }
                    _ => tokio::time::sleep(POLL).await,
                }
            }
        }
        Ok(())
    }

    /// Makes sure `table` exists with partition key `k` (S), deleting it first if
    /// `fresh`, and waits until every target reports it ACTIVE.
    pub async fn prepare_table(&mut self, table: &str, fresh: bool) -> Result<(), String> {
        let first = self.targets.slots()[0];
        if fresh {
            let a = self.setup_call(first, Op::DeleteTable, &json!({ "TableName": table })).await?;
            let gone = error_type(&a.body).as_deref() == Some("ResourceNotFoundException");
            if a.status != StatusCode::OK && !gone {
                return Err(format!(
                    "cannot delete table {table}: {}",
                    error_kind(a.status, &a.body)
                ));
            }
            self.wait_tables(table, "deleted", |s| s.is_none()).await?;
        }
        let create = json!({
            "TableName": table,
            "KeySchema": [{"AttributeName": KEY_ATTR, "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": KEY_ATTR, "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        });
        let a = self.setup_call(first, Op::CreateTable, &create).await?;
        if a.status != StatusCode::OK {
            if error_type(&a.body).as_deref() != Some("ResourceInUseException") {
                return Err(format!(
                    "cannot create table {table}: {}",
                    error_kind(a.status, &a.body)
                ));
            }
            let d = self.setup_call(first, Op::DescribeTable, &json!({"TableName": table})).await?;
            let v: Value = serde_json::from_slice(&d.body).unwrap_or_default();
            if v["Table"]["KeySchema"] != create["KeySchema"] {
                return Err(format!(
                    "table {table} exists with another key schema ({}); \
                     pick another --table or pass --fresh",
                    v["Table"]["KeySchema"]
                ));
            }
        }
        self.wait_tables(table, "ACTIVE", |s| s == Some("ACTIVE")).await
    }
}

#[cfg(test)]
mod tests {
    //! The encoding against serde_json, and the worker against mock endpoints that play
    //! a leader, a forwarding follower and a reference emulator.

    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::client::mock::{mock, Seen};

    #[test]
    fn put_and_get_bodies_are_the_json_dynamodb_expects() {
        let (p, s) = put_pieces("t \"1\"", "the \"value\"\n");
        let mut b = BytesMut::new();
        b.extend_from_slice(&p);
        http::push_json_str(&mut b, "key\\1");
        b.extend_from_slice(&s);
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            v,
            json!({"TableName": "t \"1\"", "Item": {
                "k": {"S": "key\\1"}, "v": {"S": "the \"value\"\n"}}})
        );
        for (consistent, want) in [
            (false, json!({"TableName": "t", "Key": {"k": {"S": "key1"}}})),
            (true, json!({"TableName": "t", "Key": {"k": {"S": "key1"}}, "ConsistentRead": true})),
        ] {
            let (p, s) = get_pieces("t", consistent);
            let body = [&p[..], b"key1", s].concat();
            assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), want);
        }
    }

    /// The bodies of the `update` and `transact` workloads, as DynamoDB's documentation
    /// writes them.
    #[test]
    fn conditional_bodies_are_the_json_dynamodb_expects() {
        let parse = |b: Bytes| serde_json::from_slice::<Value>(&b).unwrap();
        let names = json!({"#n": "n"});
        assert_eq!(
            parse(increment_body("t", "key1", Some(41))),
            json!({"TableName": "t", "Key": {"k": {"S": "key1"}},
                   "UpdateExpression": "SET #n = #n + :one", "ConditionExpression": "#n = :seen",
                   "ExpressionAttributeNames": names,
                   "ExpressionAttributeValues": {":one": {"N": "1"}, ":seen": {"N": "41"}}})
        );
        let first = parse(increment_body("t", "key1", None));
        assert_eq!(first["ConditionExpression"], "attribute_not_exists(#n)");
        assert_eq!(first["ExpressionAttributeValues"], json!({":one": {"N": "1"}}));
        let t = parse(transfer_body("t", "a", "b", 7));
        let items = t["TransactItems"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["Update"]["Key"], json!({"k": {"S": "a"}}));
        assert_eq!(items[0]["Update"]["ConditionExpression"], "#n >= :amt");
        assert_eq!(items[1]["Update"]["UpdateExpression"], "SET #n = #n + :amt");
        assert_eq!(items[1]["Update"]["ExpressionAttributeValues"], json!({":amt": {"N": "7"}}));
        assert_eq!(
            parse(put_number_body("t", "a", 100))["Item"],
            json!({"k": {"S": "a"}, "n": {"N": "100"}})
        );
        assert_eq!(counter_of(br#"{"Item":{"k":{"S":"a"},"n":{"N":"12"}}}"#), Ok(Some(12)));
        assert_eq!(counter_of(br#"{"Item":{"k":{"S":"a"}}}"#), Ok(None));
        assert_eq!(counter_of(b"{}"), Ok(None));
        assert!(counter_of(br#"{"Item":{"n":{"S":"x"}}}"#).is_err());
    }

    #[test]
    fn answers_are_classified_by_item_and_error_type() {
        assert_eq!(item_found(br#"{}"#), Ok(false));
        assert_eq!(item_found(br#"{"Item":{"k":{"S":"a"},"v":{"S":"Item"}}}"#), Ok(true));
        assert_eq!(item_found(br#"{"ConsumedCapacity":{"TableName":"Item"}}"#), Ok(false));
        assert!(item_found(b"not json").is_err());
        let e = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}"#;
        assert_eq!(error_kind(StatusCode::BAD_REQUEST, e), "ResourceNotFoundException (HTTP 400)");
        // moto and some SDK errors carry the bare type.
        let bare = br#"{"__type":"ServiceUnavailable","message":"no leader"}"#;
        assert_eq!(
            error_kind(StatusCode::SERVICE_UNAVAILABLE, bare),
            "ServiceUnavailable (HTTP 503)"
        );
        assert_eq!(error_kind(StatusCode::NOT_FOUND, b"404 page not found"), "HTTP 404");
    }

    fn answer(body: &'static [u8], crc: Option<&str>) -> Answer {
        let mut headers = hyper::HeaderMap::new();
        if let Some(c) = crc {
            headers.insert(CRC32, HeaderValue::from_str(c).unwrap());
        }
        Answer { status: StatusCode::OK, headers, body: Bytes::from_static(body) }
    }

    #[test]
    fn crc_checks_follow_botocore() {
        let good = crc32fast::hash(b"{}").to_string();
        assert!(crc_matches(&answer(b"{}", Some(&good))));
        assert!(crc_matches(&answer(b"{}", None)), "no header: nothing to check");
        assert!(!crc_matches(&answer(b"{ }", Some(&good))));
        assert!(!crc_matches(&answer(b"{}", Some("x"))));
    }

    /// A DynamoDB endpoint that stores items in memory, answers with a CRC (wrong when
    /// `bad_crc`), and marks its write answers forwarded when `forwarding`.
    async fn endpoint(forwarding: bool, bad_crc: bool) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let items = Mutex::new(std::collections::BTreeSet::new());
        mock(move |seen| {
            let target = seen.headers.get("x-amz-target").unwrap().to_str().unwrap();
            let req: Value = serde_json::from_str(&seen.body).unwrap();
            let (status, body) = match target.strip_prefix("DynamoDB_20120810.").unwrap() {
                "PutItem" if req["Item"]["k"]["S"] == "bad" => (
                    400,
                    json!({"__type": "com.amazonaws.dynamodb.v20120810#ValidationException",
                           "message": "One or more parameter values were invalid"}),
                ),
                "PutItem" => {
                    items.lock().unwrap().insert(req["Item"]["k"]["S"].to_string());
                    (200, json!({}))
                }
                "GetItem" => {
                    let k = req["Key"]["k"]["S"].to_string();
                    if items.lock().unwrap().contains(&k) {
                        (200, json!({"Item": {"k": {"S": k}}}))
                    } else {
                        (200, json!({}))
                    }
                }
                _ => (400, json!({"__type": "UnknownOperationException"})),
            };
            let body = body.to_string();
            let crc = crc32fast::hash(body.as_bytes()) ^ u32::from(bad_crc);
            let mut headers =
                vec![("content-type", CONTENT_TYPE_AMZ.to_string()), (CRC32, crc.to_string())];
            if forwarding && target.ends_with("PutItem") {
                headers.push((FORWARDED_FROM, "2".into()));
            }
            (status, headers, body)
        })
        .await
    }

    #[tokio::test]
    async fn the_worker_speaks_the_protocol_and_counts_what_it_gets() {
        let (e, seen) = endpoint(false, false).await;
        let mut w = Worker::new(std::slice::from_ref(&e), 0, "t", "v", true, true).unwrap();
        let ok = |found| Outcome::Ok { found, redirected: false };
        assert_eq!(w.put("key1").await, ok(true));
        assert_eq!(w.get("key1").await, ok(true));
        assert_eq!(w.get("key2").await, ok(false));
        assert_eq!(w.put("bad").await, Outcome::Err("ValidationException (HTTP 400)".into()));
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 4);
        for s in &seen {
            assert_eq!((s.method.as_str(), s.path_and_query.as_str()), ("POST", "/"));
            assert_eq!(s.headers["content-type"], CONTENT_TYPE_AMZ);
            assert!(s.headers["authorization"].to_str().unwrap().starts_with("AWS4-HMAC-SHA256"));
        }
        assert_eq!(seen[0].headers["x-amz-target"], "DynamoDB_20120810.PutItem");
        assert_eq!(seen[1].headers["x-amz-target"], "DynamoDB_20120810.GetItem");
        let get: Value = serde_json::from_str(&seen[1].body).unwrap();
        assert_eq!(get["ConsistentRead"], true);

        // A wrong checksum is an error when checked, and unnoticed when not.
        let (bad, _) = endpoint(false, true).await;
        let mut w = Worker::new(std::slice::from_ref(&bad), 0, "t", "v", false, true).unwrap();
        assert_eq!(w.put("key1").await, Outcome::Err("bad x-amz-crc32".into()));
        assert_eq!(w.get("key1").await, Outcome::Err("bad x-amz-crc32".into()));
        let mut w = Worker::new(&[bad], 0, "t", "v", false, false).unwrap();
        assert_eq!(w.put("key1").await, ok(true));

        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut w = Worker::new(&[dead.to_string()], 0, "t", "v", false, false).unwrap();
        assert_eq!(w.get("key1").await, Outcome::Err("unreachable".into()));
    }

    /// Writes settle on the node that answers them itself; forwarded ones are counted as
    /// redirects; reads keep going round.
    #[tokio::test]
    async fn writes_settle_on_the_node_that_does_not_forward_them() {
        let (follower, f_seen) = endpoint(true, false).await;
        let (leader, l_seen) = endpoint(false, false).await;
        let mut w = Worker::new(&[follower, leader], 0, "t", "v", false, false).unwrap();
        assert_eq!(w.put("key1").await, Outcome::Ok { found: true, redirected: true });
        for k in ["key2", "key3", "key4"] {
            assert_eq!(w.put(k).await, Outcome::Ok { found: true, redirected: false });
        }
        assert_eq!((f_seen.lock().unwrap().len(), l_seen.lock().unwrap().len()), (1, 3));
        w.get("key1").await;
        w.get("key1").await;
        assert_eq!((f_seen.lock().unwrap().len(), l_seen.lock().unwrap().len()), (2, 4));
    }
}
