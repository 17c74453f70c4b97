//! Route tests with `warp::test::request()` against a single in-process node (which
//! leads itself), good and bad input for every endpoint.

mod common;

use std::sync::Arc;

use common::inproc::{config, leader_node};
use raft_nosql::node::open;
use raft_nosql::server::{routes, App};
use serde_json::{json, Value};
use warp::http::StatusCode;

struct Resp {
    status: StatusCode,
    headers: warp::http::HeaderMap,
    body: Value,
}

async fn call(app: &Arc<App>, method: &str, path: &str, body: Option<&[u8]>) -> Resp {
    let mut req = warp::test::request().method(method).path(path);
    if let Some(b) = body {
        req = req.header("content-length", b.len()).body(b);
    }
    let r = req.reply(&routes(app.clone())).await;
    let body = serde_json::from_slice(r.body()).unwrap_or_else(|e| {
        panic!("{method} {path}: body is not JSON ({e}): {:?}", String::from_utf8_lossy(r.body()))
    });
    for h in ["x-raft-node", "x-raft-role", "x-raft-applied"] {
        assert!(r.headers().contains_key(h), "{method} {path}: header {h} missing");
    }
    Resp { status: r.status(), headers: r.headers().clone(), body }
}

async fn call_json(app: &Arc<App>, method: &str, path: &str, body: Value) -> Resp {
    call(app, method, path, Some(body.to_string().as_bytes())).await
}

fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.body);
    assert_eq!(r.body["error"]["code"], code, "{}", r.body);
    assert!(r.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

const MUSIC: &str = r#"{"table_name":"Music","partition_key":{"name":"Artist","type":"S"},"sort_key":{"name":"SongTitle","type":"S"}}"#;

#[tokio::test]
async fn table_endpoints_create_list_describe_delete_and_refuse_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let app = leader_node(dir.path()).await.app;

    let r = call(&app, "POST", "/tables", Some(MUSIC.as_bytes())).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["table"]["table_name"], "Music");
    assert_eq!(r.headers["x-raft-role"], "Leader");
    assert_error(&call(&app, "POST", "/tables", Some(MUSIC.as_bytes())).await, 409, "table_exists");
    assert_error(&call(&app, "POST", "/tables", Some(b"{not json")).await, 400, "bad_request");
    assert_error(&call(&app, "POST", "/tables", Some(b"[1,2]")).await, 400, "bad_request");
    let bad_name = json!({"table_name": "a/b", "partition_key": {"name": "k"}});
    assert_error(&call_json(&app, "POST", "/tables", bad_name).await, 400, "invalid_table_name");
    let no_pk = json!({"table_name": "Other"});
    assert_error(&call_json(&app, "POST", "/tables", no_pk).await, 400, "bad_request");
    let bad_type = json!({"table_name": "Other", "partition_key": {"name": "k", "type": "X"}});
    assert_error(&call_json(&app, "POST", "/tables", bad_type).await, 400, "bad_request");
    let unknown_field = json!({"table_name": "Other", "partition_key": {"name": "k"}, "colour": 1});
    assert_error(&call_json(&app, "POST", "/tables", unknown_field).await, 400, "bad_request");

    let r = call(&app, "GET", "/tables", None).await;
    assert_eq!(r.body["tables"], json!(["Music"]));
    let r = call(&app, "GET", "/tables/Music", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["table"]["sort_key"]["name"], "SongTitle");
    assert_eq!(r.body["table"]["item_count"], 0);
    assert_error(&call(&app, "GET", "/tables/Nope", None).await, 404, "table_not_found");
    assert_error(&call(&app, "GET", "/tables/x", None).await, 400, "invalid_table_name");

    let r = call(&app, "DELETE", "/tables/Music", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_error(&call(&app, "DELETE", "/tables/Music", None).await, 404, "table_not_found");
    assert_eq!(call(&app, "GET", "/tables", None).await.body["tables"], json!([]));
}

#[tokio::test]
async fn item_endpoints_put_get_delete_and_refuse_bad_input_without_storing() {
    let dir = tempfile::tempdir().unwrap();
    let app = leader_node(dir.path()).await.app;
    call(&app, "POST", "/tables", Some(MUSIC.as_bytes())).await;

    let item = json!({"Artist": "A", "SongTitle": "S1", "Year": 2020, "Tags": ["x", 1, null, true], "M": {"k": 1.5}});
    let r = call_json(&app, "PUT", "/tables/Music/items", item.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v1 = r.body["version"].as_u64().unwrap();
    let r = call(&app, "GET", "/tables/Music/items?pk=A&sk=S1", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["item"], item);
    assert_eq!(r.body["version"], v1);

    // Last write wins: the later write has the higher version.
    let r = call_json(
        &app,
        "PUT",
        "/tables/Music/items",
        json!({"Artist": "A", "SongTitle": "S1", "n": 2}),
    )
    .await;
    let v2 = r.body["version"].as_u64().unwrap();
    assert!(v2 > v1);
    assert_eq!(r.body["replaced"], true);
    let r = call(&app, "GET", "/tables/Music/items?pk=A&sk=S1", None).await;
    assert_eq!(r.body["item"]["n"], 2);

    let before = call(&app, "GET", "/status", None).await.body;
    for (body, status, code) in [
        (&b"{broken"[..], 400, "bad_request"),
        (b"[1]", 400, "invalid"),
        (b"\"str\"", 400, "invalid"),
        (br#"{"SongTitle":"S"}"#, 400, "invalid"),
        (br#"{"Artist":5,"SongTitle":"S"}"#, 400, "invalid"),
        (br#"{"Artist":"","SongTitle":"S"}"#, 400, "invalid"),
        (br#"{"Artist":"A"}"#, 400, "invalid"),
    ] {
        let r = call(&app, "PUT", "/tables/Music/items", Some(body)).await;
        assert_error(&r, status, code);
    }
    let big = json!({"Artist": "A", "SongTitle": "big", "blob": "x".repeat(500 * 1024)});
    assert_error(&call_json(&app, "PUT", "/tables/Music/items", big).await, 413, "item_too_large");
    let huge = vec![b' '; 2 * 1024 * 1024];
    assert_error(
        &call(&app, "PUT", "/tables/Music/items", Some(&huge)).await,
        413,
        "body_too_large",
    );
    assert_error(
        &call_json(&app, "PUT", "/tables/Nope/items", json!({"Artist": "A", "SongTitle": "S"}))
            .await,
        404,
        "table_not_found",
    );
    let after = call(&app, "GET", "/status", None).await.body;
    assert_eq!(before["items"], after["items"], "nothing stored by bad input");
    assert_eq!(before["last_log_index"], after["last_log_index"], "nothing proposed by bad input");

    assert_error(
        &call(&app, "GET", "/tables/Music/items?pk=A&sk=none", None).await,
        404,
        "item_not_found",
    );
    assert_error(&call(&app, "GET", "/tables/Music/items?sk=S1", None).await, 400, "bad_request");
    assert_error(&call(&app, "GET", "/tables/Music/items?pk=A", None).await, 400, "invalid");
    assert_error(
        &call(&app, "GET", "/tables/Music/items?pk=A&sk=S1&x=1", None).await,
        400,
        "bad_request",
    );

    let r = call(&app, "DELETE", "/tables/Music/items?pk=A&sk=S1", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["deleted"], true);
    let r = call(&app, "DELETE", "/tables/Music/items?pk=A&sk=S1", None).await;
    assert_eq!(r.body["deleted"], false);
    assert_error(
        &call(&app, "GET", "/tables/Music/items?pk=A&sk=S1", None).await,
        404,
        "item_not_found",
    );
}

#[tokio::test]
async fn query_and_scan_return_sorted_pages_with_prefix_ranges_and_pagination() {
    let dir = tempfile::tempdir().unwrap();
    let app = leader_node(dir.path()).await.app;
    call(&app, "POST", "/tables", Some(MUSIC.as_bytes())).await;
    for t in ["b2", "a1", "b1", "c1", "a2", "b3"] {
        call_json(&app, "PUT", "/tables/Music/items", json!({"Artist": "X", "SongTitle": t})).await;
    }
    call_json(&app, "PUT", "/tables/Music/items", json!({"Artist": "Y", "SongTitle": "a0"})).await;
    let titles = |r: &Resp| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["item"]["SongTitle"].as_str().unwrap().to_string())
            .collect()
    };

    let r = call(&app, "GET", "/tables/Music/query?pk=X", None).await;
    assert_eq!(titles(&r), ["a1", "a2", "b1", "b2", "b3", "c1"]);
    assert_eq!(r.body["next"], Value::Null);
    let r = call(&app, "GET", "/tables/Music/query?pk=X&sk_prefix=b", None).await;
    assert_eq!(titles(&r), ["b1", "b2", "b3"]);
    let r = call(&app, "GET", "/tables/Music/query?pk=X&sk_prefix=b&desc=true", None).await;
    assert_eq!(titles(&r), ["b3", "b2", "b1"]);
    let r = call(&app, "GET", "/tables/Music/query?pk=X&sk_gt=a2&sk_le=b2", None).await;
    assert_eq!(titles(&r), ["b1", "b2"]);
    let r = call(&app, "GET", "/tables/Music/query?pk=X&sk_ge=a2&sk_lt=b2", None).await;
    assert_eq!(titles(&r), ["a2", "b1"]);
    let r = call(&app, "GET", "/tables/Music/query?pk=X&sk_gt=c&sk_lt=a", None).await;
    assert_eq!(titles(&r), Vec::<String>::new());

    // Pagination: follow `next` until it is null.
    let mut seen = Vec::new();
    let mut path = "/tables/Music/query?pk=X&limit=4".to_string();
    loop {
        let r = call(&app, "GET", &path, None).await;
        seen.extend(titles(&r));
        match r.body["next"].as_str() {
            Some(n) => path = format!("/tables/Music/query?pk=X&limit=4&start_after={n}"),
            None => break,
        }
    }
    assert_eq!(seen, ["a1", "a2", "b1", "b2", "b3", "c1"]);
    let r =
        call(&app, "GET", "/tables/Music/query?pk=X&desc=true&limit=2&start_after=b2", None).await;
    assert_eq!(titles(&r), ["b1", "a2"]);

    assert_error(
        &call(&app, "GET", "/tables/Music/query?sk_prefix=a", None).await,
        400,
        "bad_request",
    );
    assert_error(
        &call(&app, "GET", "/tables/Music/query?pk=X&limit=0", None).await,
        400,
        "bad_request",
    );
    assert_error(
        &call(&app, "GET", "/tables/Music/query?pk=X&limit=abc", None).await,
        400,
        "bad_request",
    );
    assert_error(
        &call(&app, "GET", "/tables/Music/query?pk=X&desc=maybe", None).await,
        400,
        "bad_request",
    );
    assert_error(
        &call(&app, "GET", "/tables/Music/query?pk=X&bogus=1", None).await,
        400,
        "bad_request",
    );
    assert_error(&call(&app, "GET", "/tables/Nope/query?pk=X", None).await, 404, "table_not_found");

    let mut all = Vec::new();
    let mut path = "/tables/Music/scan?limit=3".to_string();
    loop {
        let r = call(&app, "GET", &path, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        all.extend(titles(&r));
        match r.body["next"].as_str() {
            Some(n) => path = format!("/tables/Music/scan?limit=3&start_after={n}"),
            None => break,
        }
    }
    assert_eq!(all.len(), 7);
    assert_error(
        &call(&app, "GET", "/tables/Music/scan?start_after=!!!", None).await,
        400,
        "bad_request",
    );
}

#[tokio::test]
async fn number_sort_keys_sort_numerically() {
    let dir = tempfile::tempdir().unwrap();
    let app = leader_node(dir.path()).await.app;
    let schema = json!({"table_name": "Nums", "partition_key": {"name": "p", "type": "S"}, "sort_key": {"name": "n", "type": "N"}});
    assert_eq!(call_json(&app, "POST", "/tables", schema).await.status, 201);
    for n in ["10", "-2.5", "3", "0", "-10", "1e3", "0.5", "100"] {
        let body = format!(r#"{{"p":"k","n":{n}}}"#);
        let r = call(&app, "PUT", "/tables/Nums/items", Some(body.as_bytes())).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = call(&app, "GET", "/tables/Nums/query?pk=k", None).await;
    let ns: Vec<String> =
        r.body["items"].as_array().unwrap().iter().map(|i| i["item"]["n"].to_string()).collect();
    assert_eq!(ns, ["-10", "-2.5", "0", "0.5", "3", "10", "100", "1000"]);
    let r = call(&app, "GET", "/tables/Nums/query?pk=k&sk_ge=0.5&sk_lt=100", None).await;
    assert_eq!(r.body["count"], 3);
    assert_error(&call(&app, "GET", "/tables/Nums/items?pk=k&sk=abc", None).await, 400, "invalid");
    assert_error(
        &call(&app, "PUT", "/tables/Nums/items", Some(br#"{"p":"k","n":"7"}"#)).await,
        400,
        "invalid",
    );
    assert_error(
        &call(&app, "GET", "/tables/Nums/query?pk=k&sk_prefix=1", None).await,
        400,
        "bad_request",
    );
}

#[tokio::test]
async fn status_init_unknown_routes_and_raft_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let app = leader_node(dir.path()).await.app;
    let r = call(&app, "GET", "/status", None).await;
    assert_eq!(r.status, 200);
    for k in [
        "node_id",
        "role",
        "term",
        "leader_id",
        "last_log_index",
        "committed",
        "applied",
        "membership",
        "tables",
        "items",
    ] {
        assert!(r.body.get(k).is_some(), "status has {k}: {}", r.body);
    }
    assert_eq!(r.body["role"], "Leader");
    assert_eq!(r.body["leader_id"], 0);
    let r = call(&app, "POST", "/admin/init", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["already"], true);
    assert_error(&call(&app, "GET", "/nope", None).await, 404, "no_route");
    assert_error(&call(&app, "POST", "/raft/append", Some(b"garbage")).await, 400, "bad_request");
    assert_error(&call(&app, "POST", "/raft/vote", Some(b"{}")).await, 400, "bad_request");
    assert_error(&call(&app, "POST", "/raft/snapshot", Some(b"[]")).await, 400, "bad_request");
    assert_error(&call(&app, "POST", "/raft/other", Some(b"{}")).await, 404, "bad_request");
    assert_eq!(call(&app, "GET", "/status", None).await.body["role"], "Leader", "still leading");
}

/// Stores a vote for node 0 of `cfg`, as a node that voted before it restarted has.
async fn store_a_vote(cfg: &raft_nosql::config::ClusterConfig) {
    use openraft::storage::RaftLogStorage;
    let store = raft_nosql::storage::Store::open(&cfg.node_dir(0)).unwrap();
    let mut log = raft_nosql::storage::LogStore::new(store, Default::default()).unwrap();
    log.save_vote(&openraft::Vote::new(3, 1)).await.unwrap();
}

/// With lease reads on, a node that starts with a stored vote (it may have acknowledged
/// a leader just before it restarted) refuses vote requests for its first lease (half
/// the minimum election timeout), with an ordinary "not granted" answer. A node that
/// starts without a vote (a new cluster) and a node with lease reads off vote at once.
#[tokio::test]
async fn a_restarted_node_refuses_votes_for_one_lease_and_a_new_one_votes_at_once() {
    let vote = openraft::raft::VoteRequest::<u64>::new(openraft::Vote::new(7, 1), None);
    let body = serde_json::to_vec(&vote).unwrap();
    for (lease_reads, restarted, granted) in
        [(true, true, false), (true, false, true), (false, true, true)]
    {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path(), 2);
        cfg.raft.election_timeout_min_ms = 120_000;
        cfg.raft.election_timeout_max_ms = 240_000;
        cfg.raft.lease_reads = lease_reads;
        if restarted {
            store_a_vote(&cfg).await;
        }
        let node = open(cfg, 0).await.unwrap();
        let r = call(&node.app, "POST", "/raft/vote", Some(&body)).await;
        let case = format!("lease_reads = {lease_reads}, restarted = {restarted}: {}", r.body);
        assert_eq!(r.status.as_u16(), 200, "{case}");
        assert_eq!(r.body["Ok"]["vote_granted"], granted, "{case}");
    }
}

/// A node that knows no leader answers writes with 503 + Retry-After, and still serves
/// (empty) reads.
#[tokio::test]
async fn writes_without_a_known_leader_get_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(config(dir.path(), 3), 1).await.unwrap();
    let r = call(&node.app, "POST", "/tables", Some(MUSIC.as_bytes())).await;
    assert_error(&r, 503, "no_leader");
    assert_eq!(r.headers["retry-after"], "1");
    let r = call(&node.app, "GET", "/tables", None).await;
    assert_eq!(r.status, 200);
}

/// Read levels are parsed strictly; on the leader every level answers; the digest kept
/// incrementally by apply equals one computed from scratch; the apply delay is settable.
#[tokio::test]
async fn read_levels_digest_and_simulation_knob() {
    let dir = tempfile::tempdir().unwrap();
    let app = leader_node(dir.path()).await.app;
    call(&app, "POST", "/tables", Some(MUSIC.as_bytes())).await;
    let r = call_json(&app, "PUT", "/tables/Music/items", json!({"Artist": "A", "SongTitle": "S"}))
        .await;
    let v = r.body["version"].as_u64().unwrap();
    assert_eq!(r.headers["x-raft-index"], v.to_string().as_str());
    for q in [
        "consistency=eventual",
        "consistency=strong",
        &format!("after_index={v}"),
        &format!("consistency=session&after_index={v}"),
    ] {
        let r = call(&app, "GET", &format!("/tables/Music/items?pk=A&sk=S&{q}"), None).await;
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        let r = call(&app, "GET", &format!("/tables/Music/query?pk=A&{q}"), None).await;
        assert_eq!(r.body["count"], 1, "{q}");
        let r = call(&app, "GET", &format!("/tables/Music/scan?{q}"), None).await;
        assert_eq!(r.body["count"], 1, "{q}");
    }
    assert_error(
        &call(&app, "GET", "/tables/Music/items?pk=A&sk=S&consistency=psychic", None).await,
        400,
        "bad_request",
    );
    assert_error(
        &call(&app, "GET", "/tables/Music/items?pk=A&sk=S&consistency=session", None).await,
        400,
        "bad_request",
    );
    assert_error(
        &call(&app, "GET", "/tables/Music/items?pk=A&sk=S&after_index=-1", None).await,
        400,
        "bad_request",
    );

    for i in 0..20 {
        call_json(
            &app,
            "PUT",
            "/tables/Music/items",
            json!({"Artist": "B", "SongTitle": format!("s{i}")}),
        )
        .await;
    }
    call(&app, "DELETE", "/tables/Music/items?pk=B&sk=s3", None).await;
    let st = call(&app, "GET", "/status", None).await.body;
    let full = format!("{:032x}", app.tables.full_digest().unwrap());
    assert_eq!(st["digest"], full.as_str());
    assert_eq!(st["digest_index"], st["applied"]);
    call(&app, "DELETE", "/tables/Music", None).await;
    let st = call(&app, "GET", "/status", None).await.body;
    assert_eq!(st["digest"], format!("{:032x}", app.tables.full_digest().unwrap()).as_str());

    let r = call_json(&app, "POST", "/admin/simulation", json!({"apply_delay_ms": 50})).await;
    assert_eq!(r.status, 200);
    assert_eq!(call(&app, "GET", "/status", None).await.body["apply_delay_ms"], 50);
    assert_error(
        &call_json(&app, "POST", "/admin/simulation", json!({"apply_delay_ms": -1})).await,
        400,
        "bad_request",
    );
    assert_error(
        &call_json(&app, "POST", "/admin/simulation", json!({"delay": 1})).await,
        400,
        "bad_request",
    );
}

/// `if_version` is a compare-and-set on the item's version (0: no item), and `PATCH`
/// updates with expressions; both are decided when applied, and a failed condition is
/// 412 `condition_failed` that writes nothing.
#[tokio::test]
async fn conditional_puts_deletes_and_updates() {
    let dir = tempfile::tempdir().unwrap();
    let app = leader_node(dir.path()).await.app;
    call(&app, "POST", "/tables", Some(MUSIC.as_bytes())).await;
    let item = json!({"Artist": "A", "SongTitle": "S", "plays": 1});
    let r = call_json(&app, "PUT", "/tables/Music/items?if_version=0", item.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v1 = r.body["version"].as_u64().unwrap();
    let r = call_json(&app, "PUT", "/tables/Music/items?if_version=0", item.clone()).await;
    assert_error(&r, 412, "condition_failed");
    let path = format!("/tables/Music/items?if_version={v1}");
    let r =
        call_json(&app, "PUT", &path, json!({"Artist": "A", "SongTitle": "S", "plays": 5})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call_json(&app, "PUT", &path, item.clone()).await;
    assert_error(&r, 412, "condition_failed");
    let r = call_json(&app, "PUT", "/tables/Music/items?if_version=x", item.clone()).await;
    assert_error(&r, 400, "bad_request");

    let update = json!({"update": "SET plays = plays + :n", "condition": "plays > :min",
                        "values": {":n": 2, ":min": 4}});
    let r = call_json(&app, "PATCH", "/tables/Music/items?pk=A&sk=S", update.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["item"], json!({"Artist": "A", "SongTitle": "S", "plays": 7}));
    let failing =
        json!({"update": "SET plays = :n", "condition": "plays < :n", "values": {":n": 0}});
    let r = call_json(&app, "PATCH", "/tables/Music/items?pk=A&sk=S", failing).await;
    assert_error(&r, 412, "condition_failed");
    let key_update = json!({"update": "SET Artist = :n", "values": {":n": "B"}});
    let r = call_json(&app, "PATCH", "/tables/Music/items?pk=A&sk=S", key_update).await;
    assert_error(&r, 400, "bad_request");
    let r = call(&app, "GET", "/tables/Music/items?pk=A&sk=S", None).await;
    assert_eq!(r.body["item"]["plays"], 7);
    let v = r.body["version"].as_u64().unwrap();
    let r = call(
        &app,
        "DELETE",
        &format!("/tables/Music/items?pk=A&sk=S&if_version={}", v + 100),
        None,
    )
    .await;
    assert_error(&r, 412, "condition_failed");
    let r =
        call(&app, "DELETE", &format!("/tables/Music/items?pk=A&sk=S&if_version={v}"), None).await;
    assert_eq!(r.body["deleted"], true, "{}", r.body);
}
