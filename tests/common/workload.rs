//! The Jepsen-style client workload shared by the nemesis tests (`tests/nemesis.rs`) and
//! the real-network tests (`tests/netns.rs`): clients that write and strongly read a few
//! registers through random nodes and record every operation's invocation, completion
//! and result for the linearizability checker (`raft_nosql::check`).
//!
//! A request without an answer is classified: a refused connection never reached a node
//! (a definite failure), a timeout or a broken connection may have been executed (an
//! indeterminate outcome, never a failure).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use raft_nosql::check::{Op, OpKind, Outcome};
use reqwest::Method;
use serde_json::{json, Value};

/// The table of the registers: one item per key, its value in attribute `v`.
pub const TABLE: &str = r#"{"table_name":"regs","partition_key":{"name":"k","type":"S"}}"#;
/// How many registers the clients share.
pub const KEYS: usize = 4;

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A tiny deterministic RNG (xorshift), seeded per thread from `NEMESIS_SEED`.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A client with a short timeout: a slow answer is an indeterminate outcome.
pub fn client() -> reqwest::blocking::Client {
    client_with_timeout(Duration::from_secs(3))
}

/// A client that does not follow redirects and gives up after `timeout`.
pub fn client_with_timeout(timeout: Duration) -> reqwest::blocking::Client {
    raft_nosql::tls::install_provider(); // reqwest needs a rustls provider
    reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .unwrap()
}

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoAnswer {
    /// The connection was refused: the request never reached a node (definite).
    Refused,
    /// Timeout or a broken connection: it may have been executed (indeterminate).
    Lost,
}

/// Sends one request, following 307s; classifies the outcome for the history.
pub fn perform(
    c: &reqwest::blocking::Client,
    method: Method,
    url: String,
    body: Option<&Value>,
) -> Result<(u16, Value), NoAnswer> {
    let mut url = url;
    for _ in 0..5 {
        let mut req = c.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp =
            req.send()
                .map_err(|e| if e.is_connect() { NoAnswer::Refused } else { NoAnswer::Lost })?;
        let status = resp.status().as_u16();
        if status == 307 {
            let location = resp.headers().get("location").and_then(|l| l.to_str().ok());
            url = location.ok_or(NoAnswer::Refused)?.to_string();
            continue;
        }
        let body: Value = resp.json().unwrap_or(Value::Null);
        return Ok((status, body));
    }
    Ok((307, Value::Null))
}

/// The outcome of a write for the checker: only a definite refusal is `Fail`.
pub fn write_outcome(r: &Result<(u16, Value), NoAnswer>) -> Outcome {
    match r {
        Ok((200, _)) => Outcome::Ok(None),
        Err(NoAnswer::Refused) => Outcome::Fail,
        Ok((307, _)) => Outcome::Fail,
        // A node answers 503 only for writes it certainly did not propose; a write whose
        // answer was lost after proposing is a 504 (`write_timeout`, `outcome_unknown`).
        Ok((503, _)) => Outcome::Fail,
        Ok((s, _)) if (400..500).contains(s) => Outcome::Fail,
        _ => Outcome::Unknown,
    }
}

pub fn read_outcome(r: &Result<(u16, Value), NoAnswer>) -> Outcome {
    match r {
        Ok((200, b)) => Outcome::Ok(b["item"]["v"].as_str().map(str::to_string)),
        Ok((404, b)) if b["error"]["code"] == "item_not_found" => Outcome::Ok(None),
        _ => Outcome::Unknown,
    }
}

/// The addresses the workload clients send to: the members as the nemesis last saw them.
pub type Targets = RwLock<Vec<String>>;

/// A random address of `targets`.
pub fn pick(targets: &Targets, rng: &mut Rng) -> String {
    let t = targets.read().unwrap();
    t[rng.below(t.len() as u64) as usize].clone()
}

/// One workload client until `stop`: random keys of [`KEYS`], half writes of a unique
/// value (`c<client_id>-<seq>`), half strong reads, each through a random node of
/// `targets`; every operation joins `history` with ids from `next_id` and times from
/// `now_us` (microseconds since the run began).
pub fn register_client(
    client_id: u64,
    seed: u64,
    targets: &Targets,
    history: &Mutex<Vec<Op>>,
    next_id: &AtomicU64,
    stop: &AtomicBool,
    now_us: impl Fn() -> u64,
) {
    let http = client();
    let mut rng = Rng::new(seed ^ ((client_id + 1) * 7919));
    let mut seq = 0;
    while !stop.load(Ordering::SeqCst) {
        let key = format!("k{}", rng.below(KEYS as u64));
        let node = pick(targets, &mut rng);
        let id = next_id.fetch_add(1, Ordering::SeqCst);
        let invoke = now_us();
        let (kind, outcome) = if rng.below(2) == 0 {
            seq += 1;
            let v = format!("c{client_id}-{seq}");
            let body = json!({"k": key, "v": v});
            let r = perform(
                &http,
                Method::PUT,
                format!("http://{node}/tables/regs/items"),
                Some(&body),
            );
            (OpKind::Write(v), write_outcome(&r))
        } else {
            let url = format!("http://{node}/tables/regs/items?pk={key}&consistency=strong");
            let r = perform(&http, Method::GET, url, None);
            (OpKind::Read, read_outcome(&r))
        };
        let complete = match outcome {
            Outcome::Unknown => None,
            _ => Some(now_us()),
        };
        if !matches!(outcome, Outcome::Ok(_)) {
            // A dead node is not hammered: a short client backoff after an error.
            std::thread::sleep(Duration::from_millis(20)); // client backoff
        }
        history.lock().unwrap().push(Op {
            id,
            client: client_id,
            key,
            kind,
            invoke,
            complete,
            outcome,
        });
    }
}
