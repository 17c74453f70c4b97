//! The bad-input battery: well over 100 malformed or hostile requests against a real
//! node. Each must get a 4xx with a JSON error body, the node must stay up, and the
//! stored data must not change (same digest before and after).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{http, send_following, TestCluster};
use reqwest::Method;
use serde_json::{json, Value};

/// One hostile request: method, path (sent verbatim), body.
struct Case {
    method: &'static str,
    path: String,
    body: Vec<u8>,
}

fn case(method: &'static str, path: impl Into<String>, body: impl Into<Vec<u8>>) -> Case {
    Case { method, path: path.into(), body: body.into() }
}

/// Sends a request byte for byte (no URL normalisation, any bytes in path and body)
/// and returns the status and body.
fn raw(addr: &str, c: &Case) -> (u16, Vec<u8>) {
    // A server may answer (413, 400) and close before it has read a large body; the
    // client then sees a broken pipe and, if the close raced ahead of the answer, a reset
    // that loses it. Such an attempt proves nothing either way: send the case again.
    for _ in 0..5 {
        if let Some(answer) = raw_once(addr, c) {
            return answer;
        }
    }
    panic!("{} {}: connection reset before any answer, 5 times", c.method, c.path);
}

/// One attempt of [`raw`]; `None` if the request could not be sent whole and no answer
/// came back.
fn raw_once(addr: &str, c: &Case) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut req = format!(
        "{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        c.method,
        c.path,
        c.body.len()
    )
    .into_bytes();
    req.extend_from_slice(&c.body);
    let sent = s.write_all(&req).is_ok();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    if !sent && resp.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&resp);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = match resp.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => resp[p + 4..].to_vec(),
        None => Vec::new(),
    };
    Some((status, body))
}

fn nested(depth: usize, open: &str, close: &str, inner: &str) -> String {
    format!("{}{}{}", open.repeat(depth), inner, close.repeat(depth))
}

fn battery() -> Vec<Case> {
    let mut v = Vec::new();
    // Broken JSON for every body-taking endpoint.
    for body in [
        &b"{"[..],
        b"}",
        b"{\"a\":",
        b"{'single': 'quotes'}",
        b"{\"a\":1,}",
        b"[1,2,",
        b"nul",
        b"\"unterminated",
        b"{\"a\":1}{\"b\":2}",
        b"\x00\x01\x02",
        b"\xff\xfe\xfd",
        b"{\"Artist\":\"\xff\xfe\"}",
        b"NaN",
        b"{\"a\": Infinity}",
        b"",
    ] {
        v.push(case("POST", "/tables", body));
        v.push(case("PUT", "/tables/Music/items", body));
    }
    // Table definitions of the wrong shape.
    for body in [
        json!([]),
        json!("Music"),
        json!(42),
        json!({}),
        json!({"table_name": 5, "partition_key": {"name": "a"}}),
        json!({"table_name": "T1x", "partition_key": "a"}),
        json!({"table_name": "T1x", "partition_key": {"name": 7}}),
        json!({"table_name": "T1x", "partition_key": {"name": "a", "type": "BOOL"}}),
        json!({"table_name": "T1x", "partition_key": {"name": ""}}),
        json!({"table_name": "T1x", "partition_key": {"name": "a"}, "sort_key": {"name": "a"}}),
        json!({"table_name": "ab", "partition_key": {"name": "a"}}),
        json!({"table_name": "x".repeat(256), "partition_key": {"name": "a"}}),
        json!({"table_name": "../etc", "partition_key": {"name": "a"}}),
        json!({"table_name": "a b c", "partition_key": {"name": "a"}}),
        json!({"table_name": "ünïcode", "partition_key": {"name": "a"}}),
        json!({"table_name": "T1x", "partition_key": {"name": "a"}, "extra": true}),
        json!({"table_name": "Music", "partition_key": {"name": "Artist"}}),
    ] {
        v.push(case("POST", "/tables", body.to_string()));
    }
    // Items of the wrong shape or type.
    for body in [
        json!([]),
        json!(null),
        json!(1.5),
        json!({}),
        json!({"Artist": "A"}),
        json!({"SongTitle": "S"}),
        json!({"Artist": 1, "SongTitle": "S"}),
        json!({"Artist": "A", "SongTitle": true}),
        json!({"Artist": "", "SongTitle": "S"}),
        json!({"Artist": null, "SongTitle": "S"}),
        json!({"Artist": ["A"], "SongTitle": "S"}),
        json!({"Artist": {"S": "A"}, "SongTitle": "S"}),
        json!({"Artist": "A".repeat(3000), "SongTitle": "S"}),
        json!({"Artist": "A", "SongTitle": "S".repeat(2000)}),
        json!({"Artist": "A", "SongTitle": "S", "": 1}),
        json!({"Artist": "A", "SongTitle": "S", "big": "x".repeat(450 * 1024)}),
    ] {
        v.push(case("PUT", "/tables/Music/items", body.to_string()));
    }
    // Numbers out of range and number keys of the wrong type.
    for n in ["1e200", "-1e200", "1e-200", "123456789012345678901234567890123456789012"] {
        v.push(case(
            "PUT",
            "/tables/Music/items",
            format!(r#"{{"Artist":"A","SongTitle":"S","n":{n}}}"#),
        ));
        v.push(case("PUT", "/tables/Numbers/items", format!(r#"{{"id":{n}}}"#)));
    }
    for body in [r#"{"id":"abc"}"#, r#"{"id":"1"}"#, r#"{"id":true}"#, r#"{"id":[1]}"#] {
        v.push(case("PUT", "/tables/Numbers/items", body));
    }
    for q in ["pk=abc", "pk=", "pk=1e999", "pk=0x10", "pk=NaN"] {
        v.push(case("GET", format!("/tables/Numbers/items?{q}"), ""));
        v.push(case("DELETE", format!("/tables/Numbers/items?{q}"), ""));
    }
    // Deep nesting.
    v.push(case("PUT", "/tables/Music/items", nested(100_000, "[", "]", "1")));
    v.push(case("PUT", "/tables/Music/items", nested(5000, "{\"a\":", "}", "1")));
    v.push(case(
        "PUT",
        "/tables/Music/items",
        format!(r#"{{"Artist":"A","SongTitle":"S","d":{}}}"#, nested(40, "[", "]", "1")),
    ));
    v.push(case("POST", "/tables", nested(10_000, "[", "]", "")));
    // Huge bodies.
    v.push(case("PUT", "/tables/Music/items", vec![b'{'; 2 * 1024 * 1024]));
    v.push(case("POST", "/tables", vec![b' '; 3 * 1024 * 1024]));
    // Unknown tables and path tricks in table names.
    for t in [
        "Nope",
        "..",
        "../..",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e",
        "a%00b",
        "a%0Ab",
        "%FF%FE",
        "x",
        "%20%20%20",
        "Music%2Fitems",
        "Mu$ic",
    ] {
        v.push(case("GET", format!("/tables/{t}"), ""));
        v.push(case("DELETE", format!("/tables/{t}"), ""));
        v.push(case("GET", format!("/tables/{t}/items?pk=a&sk=b"), ""));
        v.push(case("PUT", format!("/tables/{t}/items"), r#"{"Artist":"A","SongTitle":"S"}"#));
    }
    v.push(case("GET", "/tables/../../etc/passwd", ""));
    v.push(case("GET", "/tables/Music/../../../etc/passwd", ""));
    v.push(case("GET", "//tables//Music", ""));
    // Bad query parameters.
    for q in [
        "",
        "sk=S",
        "pk=A",
        "pk=A&sk=S&pk=B",
        "pk=A&sk=S&evil=1",
        "pk=%FF&sk=S",
        "pk=A&sk=S&consistency=maybe",
        "pk=A&sk=S&after_index=-5",
        "pk=A&sk=S&after_index=1e3",
    ] {
        v.push(case("GET", format!("/tables/Music/items?{q}"), ""));
    }
    for q in [
        "",
        "pk=A&limit=0",
        "pk=A&limit=-1",
        "pk=A&limit=99999999999999999999",
        "pk=A&desc=perhaps",
        "pk=A&sk_gt=",
        "pk=A&start_after=",
        "pk=A&unknown=1",
        "pk=A&limit=abc",
    ] {
        v.push(case("GET", format!("/tables/Music/query?{q}"), ""));
    }
    for q in ["limit=0", "start_after=%%%", "start_after=!!", "limit=x", "foo=bar"] {
        v.push(case("GET", format!("/tables/Music/scan?{q}"), ""));
    }
    // Garbage on the Raft endpoints.
    for (rpc, body) in [
        ("append", &b"garbage"[..]),
        ("append", b"{}"),
        ("append", b"[1,2,3]"),
        ("append", b"{\"vote\": 1}"),
        ("vote", b"{}"),
        ("vote", b"null"),
        ("vote", b"\xff"),
        ("snapshot", b"{}"),
        ("snapshot", b"{\"data\": \"x\"}"),
        ("bogus", b"{}"),
    ] {
        v.push(case("POST", format!("/raft/{rpc}"), body));
    }
    v.push(case("GET", "/raft/append", ""));
    // Wrong methods, unknown routes, bad admin bodies.
    v.push(case("PATCH", "/tables", "{}"));
    v.push(case("PUT", "/tables", "{}"));
    v.push(case("POST", "/status", ""));
    v.push(case("GET", "/nowhere", ""));
    v.push(case("GET", "/tables/Music/items/extra", ""));
    v.push(case("POST", "/admin/simulation", "{\"apply_delay_ms\": \"slow\"}"));
    v.push(case("POST", "/admin/simulation", "{\"apply_delay_ms\": 99999999}"));
    v.push(case("POST", "/admin/faults", "{\"drop_rate\": 7}"));
    v.push(case("POST", "/admin/faults", "{\"partitioned_from\": \"all\"}"));
    v
}

/// Every hostile request gets a 4xx with a JSON error; the node stays up; nothing
/// stored changes.
#[test]
fn hostile_requests_get_4xx_json_errors_and_change_nothing() {
    let c = TestCluster::start(3);
    let leader = c.wait_leader();
    let music = json!({"table_name": "Music", "partition_key": {"name": "Artist"}, "sort_key": {"name": "SongTitle"}});
    let numbers = json!({"table_name": "Numbers", "partition_key": {"name": "id", "type": "N"}});
    for t in [&music, &numbers] {
        assert_eq!(
            send_following(Method::POST, &c.url(leader, "/tables"), Some(t)).unwrap().status(),
            201
        );
    }
    let item = json!({"Artist": "A", "SongTitle": "S", "n": 1});
    assert_eq!(
        send_following(Method::PUT, &c.url(leader, "/tables/Music/items"), Some(&item))
            .unwrap()
            .status(),
        200
    );
    let before = c.status(leader).unwrap();

    let cases = battery();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    eprintln!("sending {} hostile requests", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let (status, body) = raw(&c.addrs[leader], case);
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let has_error = json.as_ref().and_then(|j| j["error"]["code"].as_str()).is_some();
        if !(400..500).contains(&status) || !has_error {
            let shown: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            failures.push(format!(
                "{} {} -> {status} {shown}",
                case.method,
                &case.path[..case.path.len().min(80)]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases misbehaved:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    let after = c.status(leader).expect("the node is still up");
    assert_eq!(before["digest"], after["digest"], "stored data unchanged");
    assert_eq!(before["items"], after["items"]);
    assert_eq!(before["tables"], after["tables"]);
    for i in 0..3 {
        assert!(c.status(i).is_some(), "node {i} is still up");
    }
    let r = http().get(c.url(leader, "/tables/Music/items?pk=A&sk=S")).send().unwrap();
    assert_eq!(r.json::<Value>().unwrap()["item"], item);
}
