//! Route tests of the DynamoDB protocol with `warp::test::request()` against a single
//! in-process node (which leads itself): headers, error shapes, and one system with
//! the REST API.

mod common;

use std::sync::Arc;

use common::inproc::leader_node;
use raft_nosql::server::{routes, App};
use serde_json::{json, Value};
use warp::http::StatusCode;

struct Resp {
    status: StatusCode,
    headers: warp::http::HeaderMap,
    raw: Vec<u8>,
    body: Value,
}

/// One DynamoDB call: `POST /` with `X-Amz-Target`, unless `target` is `None`.
async fn ddb(app: &Arc<App>, target: Option<&str>, body: &[u8]) -> Resp {
    let mut req = warp::test::request()
        .method("POST")
        .path("/")
        .header("content-type", "application/x-amz-json-1.0")
        .header("content-length", body.len())
        .body(body);
    if let Some(t) = target {
        req = req.header("x-amz-target", format!("DynamoDB_20120810.{t}"));
    }
    let r = req.reply(&routes(app.clone())).await;
    let raw = r.body().to_vec();
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Resp { status: r.status(), headers: r.headers().clone(), raw, body }
}

async fn call(app: &Arc<App>, op: &str, body: Value) -> Resp {
    ddb(app, Some(op), body.to_string().as_bytes()).await
}

fn error_type(r: &Resp) -> &str {
    r.body["__type"].as_str().unwrap_or_default().rsplit('#').next().unwrap_or_default()
}

async fn rest(
    app: &Arc<App>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = warp::test::request().method(method).path(path);
    if let Some(b) = body {
        let b = b.to_string();
        req = req.header("content-length", b.len()).body(b);
    }
    let r = req.reply(&routes(app.clone())).await;
    (r.status(), serde_json::from_slice(r.body()).unwrap_or(Value::Null))
}

#[tokio::test]
async fn responses_carry_crc32_request_id_and_the_amz_json_content_type() {
    let dir = tempfile::tempdir().unwrap();
    let node = leader_node(dir.path()).await;
    let r = call(&node.app, "ListTables", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/x-amz-json-1.0");
    assert_eq!(r.headers["x-amz-crc32"].to_str().unwrap(), crc32fast::hash(&r.raw).to_string());
    assert!(r.headers.contains_key("x-amzn-requestid"));
    assert!(r.headers.contains_key("x-raft-node"), "the x-raft-* headers are there too");
    assert_eq!(r.body, json!({"TableNames": []}));
}

#[tokio::test]
async fn protocol_errors_have_dynamodb_types() {
    let dir = tempfile::tempdir().unwrap();
    let node = leader_node(dir.path()).await;
    let app = &node.app;
    let r = ddb(app, Some("Frobnicate"), b"{}").await;
    assert_eq!((r.status, error_type(&r)), (StatusCode::BAD_REQUEST, "UnknownOperationException"));
    let r = ddb(app, None, b"{}").await;
    assert_eq!(error_type(&r), "UnknownOperationException");
    let r = ddb(app, Some("ListTables"), b"{nope").await;
    assert_eq!(error_type(&r), "SerializationException");
    let r = call(app, "DescribeTable", json!({"TableName": 7})).await;
    assert_eq!(error_type(&r), "SerializationException");
    let r = call(app, "DescribeTable", json!({"TableName": "missing"})).await;
    assert_eq!(error_type(&r), "ResourceNotFoundException");
    assert!(r.body["message"].as_str().unwrap().starts_with("Requested resource not found"));
    let r = call(app, "DescribeTable", json!({})).await;
    assert_eq!(error_type(&r), "ValidationException");
}

#[tokio::test]
async fn dynamodb_and_rest_api_are_one_system() {
    let dir = tempfile::tempdir().unwrap();
    let node = leader_node(dir.path()).await;
    let app = &node.app;
    let r = call(
        app,
        "CreateTable",
        json!({
            "TableName": "Bin",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "B"}],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["TableDescription"]["TableStatus"], "ACTIVE");
    // Written through the DynamoDB API, read through the REST API (base64 key).
    let r = call(
        app,
        "PutItem",
        json!({"TableName": "Bin", "Item": {"id": {"B": "AAE="}, "v": {"N": "1.50"}}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (status, body) = rest(app, "GET", "/tables/Bin/items?pk=AAE%3D", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["item"], json!({"id": {"B": "AAE="}, "v": 1.5}));
    // Written through the REST API in the typed form, read through DynamoDB's.
    let (status, body) =
        rest(app, "PUT", "/tables/Bin/items", Some(json!({"id": {"B": "/w=="}, "x": "y"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = call(app, "GetItem", json!({"TableName": "Bin", "Key": {"id": {"B": "/w=="}}})).await;
    assert_eq!(r.body["Item"], json!({"id": {"B": "/w=="}, "x": {"S": "y"}}));
    // ALL_OLD answers what the write replaced.
    let r = call(
        app,
        "PutItem",
        json!({"TableName": "Bin", "Item": {"id": {"B": "/w=="}}, "ReturnValues": "ALL_OLD"}),
    )
    .await;
    assert_eq!(r.body["Attributes"], json!({"id": {"B": "/w=="}, "x": {"S": "y"}}));
    let r = call(app, "Scan", json!({"TableName": "Bin"})).await;
    assert_eq!((r.body["Count"].as_u64(), r.body["ScannedCount"].as_u64()), (Some(2), Some(2)));
    let r = call(app, "DescribeTable", json!({"TableName": "Bin"})).await;
    assert_eq!(r.body["Table"]["ItemCount"], 2);
    assert!(r.body["Table"]["TableSizeBytes"].as_u64().unwrap() > 0);
}

/// Tags and time to live go through the log and come back through the read operations;
/// what the table as it is refuses is a ValidationException with DynamoDB's message.
#[tokio::test]
async fn tags_and_time_to_live_are_table_settings_changed_through_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let node = leader_node(dir.path()).await;
    let app = &node.app;
    let r = call(
        app,
        "CreateTable",
        json!({
            "TableName": "Settings",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
            "Tags": [{"Key": "a", "Value": "1"}]
        }),
    )
    .await;
    let arn = r.body["TableDescription"]["TableArn"].as_str().unwrap().to_string();
    let r = call(
        app,
        "TagResource",
        json!({"ResourceArn": arn, "Tags": [{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "x"}]}),
    )
    .await;
    assert_eq!((r.status, &r.body), (StatusCode::OK, &json!({})));
    call(app, "UntagResource", json!({"ResourceArn": arn, "TagKeys": ["b"]})).await;
    let r = call(app, "ListTagsOfResource", json!({"ResourceArn": arn})).await;
    assert_eq!(r.body, json!({"Tags": [{"Key": "a", "Value": "x"}]}));

    let spec = json!({"Enabled": true, "AttributeName": "exp"});
    let r = call(
        app,
        "UpdateTimeToLive",
        json!({"TableName": "Settings", "TimeToLiveSpecification": spec}),
    )
    .await;
    assert_eq!(r.body, json!({"TimeToLiveSpecification": spec}));
    let r = call(app, "DescribeTimeToLive", json!({"TableName": "Settings"})).await;
    assert_eq!(
        r.body["TimeToLiveDescription"],
        json!({"TimeToLiveStatus": "ENABLED", "AttributeName": "exp"})
    );
    let r = call(
        app,
        "UpdateTimeToLive",
        json!({"TableName": "Settings", "TimeToLiveSpecification": spec}),
    )
    .await;
    assert_eq!((r.status, error_type(&r)), (StatusCode::BAD_REQUEST, "ValidationException"));
    assert_eq!(r.body["message"], "TimeToLive is already enabled");
}
