//! The dashboard in a real browser: Debian's headless `chromium`, driven over WebDriver
//! (`chromedriver` on a free port) with `fantoccini`, against a real cluster under a real
//! supervisor.
//!
//! The failover story with the mouse alone: the page shows three nodes and one leader;
//! kill the leader and see it killed and a new leader in a higher term; restart it and
//! see it rejoin as a follower; with the page's light load running, cut a follower off
//! and see its lag grow, heal and see it converge; put an item through a follower from
//! the form and see the redirect to the leader; and no error in the browser console.
//!
//! Needs `chromium` and `chromedriver` (`make browser-deps` installs Debian's
//! `chromium chromium-driver`; `CHROMIUM=` and `CHROMEDRIVER=` point elsewhere). Without
//! them the test fails and says so: it is part of `make test`, and CI installs them.
//! `DASHBOARD_SCREENSHOT=path.png` saves a screenshot of the page mid-story (`make
//! screenshot` writes `docs/dashboard.png`).
//!
//! Every wait polls what the page shows, with a deadline; nothing sleeps a fixed time.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::free_port;
use common::supervised::Supervised;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

/// The first of `names` found as `$env` or on the PATH.
fn find_program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in names {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn programs() -> (PathBuf, PathBuf) {
    let chromium = find_program("CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]);
    let driver = find_program("CHROMEDRIVER", &["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => (c, d),
        (c, d) => panic!(
            "the dashboard's browser test needs chromium and chromedriver (found chromium: {c:?}, chromedriver: {d:?}).\n\
             Install Debian's packages with 'make browser-deps' (apt-get install -y chromium chromium-driver, as root),\n\
             or set CHROMIUM=/path/to/chrome and CHROMEDRIVER=/path/to/chromedriver."
        ),
    }
}

/// A chromedriver we started, in its own process group so that the browsers it starts
/// go with it.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(exe: &Path, log: &Path) -> Driver {
        let port = free_port();
        let out = std::fs::File::create(log).unwrap();
        let child = Command::new(exe)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        Driver { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group is ours: chromedriver and the chromium it started.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// What the page shows, read in one script: every card's data attributes, the leader
/// pill, the verdict, the load, the put/get result.
const PROBE: &str = r#"
const cards = [...document.querySelectorAll('.card')].map(c => ({...c.dataset}));
const l = document.querySelector('#leader').dataset;
const r = document.querySelector('#item-result');
return {
  conn: document.querySelector('#conn').dataset.conn,
  cards,
  leader: l.leader === undefined || l.leader === '' ? null : Number(l.leader),
  term: l.term === undefined || l.term === '' ? null : Number(l.term),
  verdict: document.querySelector('#verdict').dataset.kind,
  load: document.querySelector('#load-status').dataset.running,
  strips: document.querySelectorAll('.strip').length,
  cells: document.querySelectorAll('.strip .cell:not(.empty)').length,
  timeline: document.querySelectorAll('#timeline li').length,
  result: {cls: r.className, text: r.textContent, answeredBy: r.dataset.answeredBy, redirected: r.dataset.redirected},
  actions: [...document.querySelectorAll('#actions li')].map(li => li.className + ': ' + li.textContent),
};
"#;

async fn probe(b: &Client) -> Value {
    b.execute(PROBE, vec![]).await.expect("the probe script runs")
}

fn card(p: &Value, id: u64) -> &Value {
    p["cards"].as_array().unwrap().iter().find(|c| num(&c["node"]) == Some(id)).unwrap()
}

fn num(v: &Value) -> Option<u64> {
    v.as_str()?.parse().ok()
}

/// Polls the page until `f` says `Some`, or fails with `what` and the last probe.
async fn until<T>(b: &Client, what: &str, mut f: impl FnMut(&Value) -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let p = probe(b).await;
        if let Some(v) = f(&p) {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {WAIT:?} waiting for the page to show {what}; it shows:\n{p:#}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval, bounded by the deadline
    }
}

async fn click(b: &Client, css: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// The browser console's messages so far (chromedriver's log endpoint).
async fn console(driver: &Driver, b: &Client) -> Vec<Value> {
    let session = b.session_id().await.unwrap().unwrap();
    raft_nosql::tls::install_provider(); // reqwest needs a rustls provider
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let resp = http
        .post(format!("{}/session/{session}/se/log", driver.url()))
        .json(&json!({"type": "browser"}))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    v["value"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_story_with_the_mouse_alone() {
    let (chromium, chromedriver) = programs();
    let cluster = tokio::task::spawn_blocking(|| Supervised::start(3)).await.unwrap();
    let driver = Driver::start(&chromedriver, &cluster.dir.path().join("chromedriver.log"));
    let profile = cluster.dir.path().join("chromium-profile");
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1400,1500",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    let caps = caps.as_object().unwrap().clone();
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    // chromedriver takes a moment to listen: retry the session until the deadline.
    let deadline = Instant::now() + WAIT;
    let b = loop {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&driver.url())
            .await
        {
            Ok(b) => break b,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await; // poll interval, bounded by the deadline
            }
            Err(e) => panic!("no WebDriver session from {}: {e}", chromedriver.display()),
        }
    };
    b.goto(&cluster.url("/")).await.unwrap();

    // Three nodes, exactly one leader.
    let (leader, term) = until(&b, "three nodes and exactly one leader", |p| {
        let cards = p["cards"].as_array()?;
        let leaders: Vec<&Value> = cards.iter().filter(|c| c["leader"] == "true").collect();
        (p["conn"] == "live" && cards.len() == 3 && leaders.len() == 1 && p["strips"] == 3)
            .then(|| (num(&leaders[0]["node"]).unwrap(), p["term"].as_u64().unwrap()))
    })
    .await;

    // A light load from the page, so the logs move.
    click(&b, "#load-start").await;
    until(&b, "the load running", |p| (p["load"] == "true").then_some(())).await;

    // Kill the leader: it shows killed, and a new leader in a higher term.
    let clicked = Instant::now();
    click(&b, &format!("button[data-action='kill'][data-node='{leader}']")).await;
    until(&b, "the old leader killed", |p| (card(p, leader)["state"] == "killed").then_some(()))
        .await;
    let shown_killed = clicked.elapsed();
    let (new_leader, new_term) = until(&b, "a new leader in a higher term", |p| {
        let l = p["leader"].as_u64()?;
        let t = p["term"].as_u64()?;
        (l != leader && t > term && card(p, l)["leader"] == "true").then_some((l, t))
    })
    .await;
    let shown_new_leader = clicked.elapsed();

    // Restart it: it rejoins as a follower and catches up.
    click(&b, &format!("button[data-action='restart'][data-node='{leader}']")).await;
    until(&b, "the old leader back as a follower with no lag", |p| {
        let c = card(p, leader);
        (c["state"] == "running" && c["role"] == "Follower" && c["lag"] == "0").then_some(())
    })
    .await;

    // Cut a follower off: its lag grows while the load runs.
    let follower = [0u64, 1, 2].into_iter().find(|i| *i != new_leader && *i != leader).unwrap();
    click(&b, &format!("button[data-action='partition'][data-node='{follower}']")).await;
    until(&b, "the cut-off follower's lag growing", |p| {
        let c = card(p, follower);
        (c["cut"] == "true" && num(&c["lag"]).is_some_and(|lag| lag >= 10)).then_some(())
    })
    .await;
    if let Some(path) = std::env::var_os("DASHBOARD_SCREENSHOT") {
        let png = b.screenshot().await.unwrap();
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot saved to {}", Path::new(&path).display());
    }

    // Heal, stop the load, and see every node converge on one leader.
    click(&b, "#heal-btn").await;
    click(&b, "#load-stop").await;
    until(&b, "the follower healed, caught up and the cluster converged", |p| {
        let cards = p["cards"].as_array()?;
        let leaders = cards.iter().filter(|c| c["leader"] == "true").count();
        let c = card(p, follower);
        (c["cut"] == "false"
            && c["lag"] == "0"
            && leaders == 1
            && p["load"] == "false"
            && p["verdict"] == "converged")
            .then_some(())
    })
    .await;

    // A put through a follower, from the form: redirected to the leader, who answers.
    let p = probe(&b).await;
    let now_leader = p["leader"].as_u64().unwrap();
    let through = [0u64, 1, 2].into_iter().find(|i| *i != now_leader).unwrap();
    b.find(Locator::Css("#item-op")).await.unwrap().select_by_value("put").await.unwrap();
    b.find(Locator::Css("#item-node"))
        .await
        .unwrap()
        .select_by_value(&through.to_string())
        .await
        .unwrap();
    let key = b.find(Locator::Css("#item-key")).await.unwrap();
    key.clear().await.unwrap();
    key.send_keys("from-the-browser").await.unwrap();
    click(&b, "#item-send").await;
    until(&b, "the put's answer: redirected to the leader", |p| {
        let r = &p["result"];
        (r["cls"] == "result ok"
            && r["redirected"] == "true"
            && num(&r["answeredBy"]) == Some(now_leader))
        .then_some(())
    })
    .await;

    // The timeline has the story; every action answered without an error.
    let p = probe(&b).await;
    assert!(p["timeline"].as_u64().unwrap() > 0, "{p:#}");
    assert!(p["cells"].as_u64().unwrap() > 0, "{p:#}");
    let failed: Vec<&Value> = p["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a.as_str().unwrap().starts_with("error"))
        .collect();
    assert!(failed.is_empty(), "actions that failed: {failed:#?}");

    // No errors in the browser console.
    let errors: Vec<Value> =
        console(&driver, &b).await.into_iter().filter(|m| m["level"] == "SEVERE").collect();
    assert!(errors.is_empty(), "errors in the browser console: {errors:#?}");

    eprintln!(
        "page showed node {leader} killed {shown_killed:?} after the click, and node {new_leader} leading in term {new_term} after {shown_new_leader:?}"
    );
    b.close().await.unwrap();
    drop(driver);
    drop(cluster);
}
