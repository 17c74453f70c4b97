//! The dashboard's HTTP side against a real cluster under a real supervisor: the page and
//! its assets, the event stream, the JSON API and its errors, and the nodes' log endpoint.
//! (The page in a real browser: `tests/dashboard_browser.rs`.)

mod common;

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::supervised::{Supervised, WAIT};
use common::{eventually, http};
use serde_json::{json, Value};

/// One Server-Sent Event: its name and its JSON data.
#[derive(Debug)]
struct Sse {
    name: String,
    data: Value,
    at: Instant,
}

/// Reads `GET /events` on a thread; events arrive on the channel as they come.
fn subscribe(url: String) -> mpsc::Receiver<Sse> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        raft_nosql::tls::install_provider(); // reqwest needs a rustls provider
        let client = reqwest::blocking::Client::builder().no_proxy().timeout(None).build().unwrap();
        let resp = client.get(url).send().unwrap();
        assert_eq!(resp.status(), 200);
        let mut name = String::new();
        let mut data = String::new();
        for line in BufReader::new(resp).lines() {
            let Ok(line) = line else { return };
            if let Some(n) = line.strip_prefix("event:") {
                name = n.trim().to_string();
            } else if let Some(d) = line.strip_prefix("data:") {
                data.push_str(d);
            } else if line.is_empty() && !data.is_empty() {
                let ev = Sse {
                    name: std::mem::take(&mut name),
                    data: serde_json::from_str(&std::mem::take(&mut data)).unwrap(),
                    at: Instant::now(),
                };
                if tx.send(ev).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// The next event for which `f` says `Some`, within the deadline.
fn next_matching<T>(
    rx: &mpsc::Receiver<Sse>,
    what: &str,
    mut f: impl FnMut(&Sse) -> Option<T>,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(ev) => {
                if let Some(v) = f(&ev) {
                    return v;
                }
            }
            Err(_) => panic!("timed out after {WAIT:?} waiting on the event stream for {what}"),
        }
    }
}

fn node(state: &Value, id: u64) -> &Value {
    state["view"]["nodes"].as_array().unwrap().iter().find(|n| n["id"] == id).unwrap()
}

fn post(url: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = http().post(url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

/// A kill made through the control API reaches a connected page as state (the node
/// killed, then a new leader in a higher term) and as timeline events (`node_exited`,
/// `became_leader`).
#[test]
fn a_kill_shows_up_in_the_event_stream_as_state_and_events() {
    let c = Supervised::start(3);
    let rx = subscribe(c.url("/events"));
    let hello = next_matching(&rx, "hello", |e| (e.name == "hello").then(|| e.data.clone()));
    assert!(hello["timeline"].is_array() && hello["samples"].is_array(), "{hello}");
    // The first state may predate the election by a tick: wait for one with a leader
    // and every node's log strip.
    let ready = |s: &Value| {
        s["view"]["leader"]["id"].is_u64()
            && (0..3).all(|n| s["strips"][n.to_string()]["stale"] == false)
    };
    let state = if ready(&hello["state"]) {
        hello["state"].clone()
    } else {
        next_matching(&rx, "a state with a leader and three log strips", |e| {
            (e.name == "state" && ready(&e.data)).then(|| e.data.clone())
        })
    };
    assert_eq!(state["view"]["nodes"].as_array().unwrap().len(), 3);
    let leader = state["view"]["leader"]["id"].as_u64().unwrap();
    let term = state["view"]["leader"]["term"].as_u64().unwrap();
    let tl: Value =
        http().get(c.url("/api/timeline?event=became_leader")).send().unwrap().json().unwrap();
    assert!(tl.as_array().unwrap().iter().any(|e| e["node"] == leader), "{tl}");

    let sent = Instant::now();
    let (status, report) = post(&c.url(&format!("/nodes/{leader}/kill")), None);
    assert_eq!(status, 200, "{report}");
    let answered = Instant::now();
    // State and events arrive in either order (events come from the log files, state
    // from the status polls): wait for all four.
    let mut shown = None;
    let mut exited = false;
    let mut new_leader = None;
    let mut became_leader = std::collections::BTreeSet::new();
    next_matching(
        &rx,
        "the kill, its node_exited event and a new leader with its became_leader event",
        |e| {
            match e.name.as_str() {
                "state" => {
                    if node(&e.data, leader)["state"] == "killed" {
                        shown.get_or_insert(e.at);
                    }
                    let l = &e.data["view"]["leader"];
                    if let (Some(id), Some(t)) = (l["id"].as_u64(), l["term"].as_u64()) {
                        if id != leader && t > term {
                            new_leader = Some((id, t));
                        }
                    }
                }
                "event" if e.data["node"] == leader && e.data["event"] == "node_exited" => {
                    exited = true
                }
                "event" if e.data["event"] == "became_leader" => {
                    became_leader.insert(e.data["node"].as_u64().unwrap());
                }
                _ => {}
            }
            let done = shown.is_some()
                && exited
                && new_leader.is_some_and(|(id, _)| became_leader.contains(&id));
            done.then_some(())
        },
    );
    let (shown, (new_leader, new_term)) = (shown.unwrap(), new_leader.unwrap());
    eprintln!(
        "kill of node {leader}: control API answered in {:?}; the stream showed it {:?} after the answer; node {new_leader} leads in term {new_term}",
        answered - sent,
        shown.saturating_duration_since(answered)
    );

    // The JSON views agree with the stream.
    let state: Value = http().get(c.url("/api/state")).send().unwrap().json().unwrap();
    assert_eq!(node(&state, leader)["state"], "killed");
    let tl: Value = http()
        .get(c.url(&format!("/api/timeline?node={leader}&event=exited")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let tl = tl.as_array().unwrap();
    assert!(
        !tl.is_empty() && tl.iter().all(|e| e["node"] == leader && e["event"] == "node_exited")
    );
    // A sample a second: the stream carries them and /api/metrics keeps them.
    next_matching(&rx, "a traffic sample", |e| (e.name == "sample").then_some(()));
    let samples: Value = http().get(c.url("/api/metrics")).send().unwrap().json().unwrap();
    assert!(samples[0]["writes_per_s"].is_number(), "{samples}");
}

/// The page and its assets are served from the binary; the dashboard's actions answer
/// JSON, and bad input a JSON error with a code the page can show.
#[test]
fn the_page_is_served_and_bad_input_gets_clear_json_errors() {
    let c = Supervised::start(3);
    let page = http().get(c.url("/")).send().unwrap();
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().unwrap();
    assert!(html.contains("/assets/app.js") && !html.contains("://"), "no external URL");
    for (path, ty) in [("/assets/app.js", "text/javascript"), ("/assets/style.css", "text/css")] {
        let r = http().get(c.url(path)).send().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with(ty), "{path}");
    }

    let leader = c.wait_leader_other_than(None);
    let follower = (0..3).find(|i| *i != leader).unwrap();
    let error = |(status, body): (u16, Value)| {
        (status, body["error"]["code"].as_str().unwrap_or("").to_string())
    };
    let api = |p: &str| c.url(&format!("/api/{p}"));
    assert_eq!(error(post(&api("partition"), None)), (400, "bad_request".into()));
    assert_eq!(
        error(post(&api("partition"), Some(json!({"nodes": [7]})))),
        (404, "node_not_found".into())
    );
    assert_eq!(
        error(post(&api("partition"), Some(json!({"nodes": [0, 1, 2]})))),
        (400, "bad_request".into())
    );
    assert_eq!(
        error(post(&api("partition"), Some(json!({"nodez": [1]})))),
        (400, "bad_request".into())
    );
    assert_eq!(
        error(post(&api("nodes/9/slow"), Some(json!({"delay_ms": 10})))),
        (404, "node_not_found".into())
    );
    assert_eq!(
        error(post(&api("nodes/x/slow"), Some(json!({"delay_ms": 10})))),
        (404, "node_not_found".into())
    );
    assert_eq!(
        error(post(&api(&format!("nodes/{follower}/slow")), Some(json!({"drop_rate": 2.0})))),
        (400, "bad_request".into())
    );
    assert_eq!(
        error(post(
            &api(&format!("nodes/{follower}/apply-delay")),
            Some(json!({"apply_delay_ms": 999999}))
        )),
        (400, "bad_request".into())
    );
    assert_eq!(
        error(post(&api("item"), Some(json!({"op": "frob", "node": 0, "key": "k"})))),
        (400, "bad_request".into())
    );
    assert_eq!(
        error(post(
            &api("item"),
            Some(json!({"op": "get", "node": 0, "key": "k", "consistency": "psychic"}))
        )),
        (400, "bad_request".into())
    );
    assert_eq!(error(post(&api("load/stop"), None)), (409, "invalid_state".into()));
    assert_eq!(
        error(post(&api("load/start"), Some(json!({"rate": 0})))),
        (400, "bad_request".into())
    );
    assert_eq!(error(post(&api("explode"), None)), (404, "not_found".into()));
    let r = http().get(c.url("/api/timeline?limit=lots")).send().unwrap();
    assert_eq!(r.status(), 400);

    // Actions on a node in the wrong state.
    let (status, _) = post(&c.url(&format!("/nodes/{follower}/kill")), None);
    assert_eq!(status, 200);
    assert_eq!(
        error(post(
            &api(&format!("nodes/{follower}/apply-delay")),
            Some(json!({"apply_delay_ms": 10}))
        )),
        (409, "invalid_state".into())
    );
    assert_eq!(
        error(post(&c.url(&format!("/nodes/{follower}/pause")), None)),
        (409, "invalid_state".into())
    );
    assert_eq!(
        error(post(
            &api("item"),
            Some(json!({"op": "put", "node": follower, "key": "k", "value": 1}))
        )),
        (409, "invalid_state".into())
    );
    let (status, _) = post(&c.url(&format!("/nodes/{follower}/start")), None);
    assert_eq!(status, 200);

    // What works: a put through a follower is redirected to the leader; a strong get
    // through the follower sees it.
    let other = (0..3).find(|i| *i != leader && *i != follower).unwrap();
    let (status, put) = post(
        &api("item"),
        Some(json!({"op": "put", "node": other, "key": "k", "value": {"n": 1}})),
    );
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["answered_by"], leader);
    assert!(put["redirected_to"].is_string(), "{put}");
    let (status, got) = post(
        &api("item"),
        Some(json!({"op": "get", "node": other, "key": "k", "consistency": "strong"})),
    );
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["version"], put["version"]);
    assert_eq!(got["stale"], false);

    // The nodes' log endpoint: index, term and kind of the last entries.
    let addr = &c.addrs[leader as usize];
    let tail: Value =
        http().get(format!("http://{addr}/admin/log?last=3")).send().unwrap().json().unwrap();
    let entries = tail["entries"].as_array().unwrap();
    assert!(!entries.is_empty() && entries.len() <= 3, "{tail}");
    assert_eq!(entries.last().unwrap()["kind"], "put");
    assert!(entries.windows(2).all(|w| w[0]["index"].as_u64() < w[1]["index"].as_u64()));
    let r = http().get(format!("http://{addr}/admin/log?last=0")).send().unwrap();
    assert_eq!(r.status(), 400);

    // The light load writes, and stops.
    let (status, _) = post(&api("load/start"), Some(json!({"rate": 50})));
    assert_eq!(status, 200);
    assert_eq!(error(post(&api("load/start"), None)), (409, "invalid_state".into()));
    eventually(Duration::from_secs(60), "the load to write", || {
        let s: Value = http().get(c.url("/api/state")).send().ok()?.json().ok()?;
        (s["load"]["writes"].as_u64()? >= 10).then_some(())
    });
    let (status, _) = post(&api("load/stop"), None);
    assert_eq!(status, 200);
    let _ = c.output();
}
