//! TLS end to end: real node processes with `[tls]` in their config, certificates made by
//! `scripts/gen-certs.sh` (which installs openssl where it is missing).
//!
//! - a supervised three-node cluster with mutual TLS elects a leader, takes writes over
//!   https (the CLI with `--ca-file`), replicates them and answers reads on every node;
//!   peer-only routes refuse callers without a client certificate; plain http and a
//!   wrong CA fail with a message that says so;
//! - a node whose certificate comes from another CA is refused by the others: its Raft
//!   RPCs never get past the TLS handshake, so it cannot vote, join or disturb the term.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::supervised::Supervised;
use common::{bin, eventually, write_config};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// Runs `scripts/gen-certs.sh dir n`: a CA and certificates for nodes 0..n.
fn gen_certs(dir: &Path, n: usize) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-certs.sh");
    let out = Command::new("bash").arg(script).arg(dir).arg(n.to_string()).output().unwrap();
    assert!(out.status.success(), "gen-certs.sh failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// The `[tls]` section for certificates in `dir`.
fn tls_section(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "[tls]\nca_file = \"{d}/ca.pem\"\ncert_file = \"{d}/node{{id}}.pem\"\nkey_file = \"{d}/node{{id}}-key.pem\"\n"
    )
}

/// A blocking https client trusting `ca`, presenting `identity` (cert, key) if given.
fn https(ca: &Path, identity: Option<(&Path, &Path)>) -> reqwest::blocking::Client {
    let tls = raft_nosql::tls::client_config(ca, identity).unwrap();
    reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}

fn status(c: &reqwest::blocking::Client, addr: &str) -> Option<Value> {
    c.get(format!("https://{addr}/status")).send().ok()?.json().ok()
}

/// Runs the CLI in `cwd` (no cluster.toml there, so only the flags count).
fn cli(cwd: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .current_dir(cwd)
        .args(args)
        .env_remove("RAFT_NOSQL_CA_FILE")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Kills the processes it holds on drop (only those this test started).
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The basic cluster test over mutual TLS: the supervisor starts three nodes serving
/// https, initialises them through the peer-only admin route with its client
/// certificate, and the CLI writes through any node (307s point at `https://`) and reads
/// the item back from every node with nothing but the CA file.
#[test]
fn mutual_tls_cluster_elects_a_leader_replicates_and_answers_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    gen_certs(&certs, 3);
    // Up once the supervisor, over https with its client certificate, initialised the
    // nodes and sees every one follow the leader.
    let sup = Supervised::start_with(3, &tls_section(&certs));
    let addrs = sup.addrs.clone();
    let ca = certs.join("ca.pem");
    let client = https(&ca, None);

    let leader = eventually(WAIT, "a leader every node agrees on, over https", || {
        let ids: Vec<u64> = addrs
            .iter()
            .map(|a| status(&client, a)?.get("leader_id")?.as_u64())
            .collect::<Option<_>>()?;
        ids.windows(2).all(|w| w[0] == w[1]).then(|| ids[0])
    });
    let follower = addrs[((leader + 1) % 3) as usize].clone();
    let cwd = dir.path().join("cli");
    std::fs::create_dir_all(&cwd).unwrap();
    let ca_s = ca.to_str().unwrap();
    let target = format!("https://{follower}");

    let o = cli(
        &cwd,
        &[
            "--ca-file",
            ca_s,
            "create-table",
            "--target-addr",
            &target,
            "--table-name",
            "Music",
            "--partition-key-name",
            "Artist",
            "--sort-key-name",
            "Song",
        ],
    );
    assert!(o.status.success(), "create-table over https: {}", text(&o));
    let o = cli(
        &cwd,
        &[
            "--ca-file",
            ca_s,
            "put-item",
            "--target-addr",
            &target,
            "--table-name",
            "Music",
            "--item-data",
            r#"{"Artist":"Nina","Song":"Sinnerman","year":1965}"#,
        ],
    );
    assert!(o.status.success(), "put-item over https through a follower: {}", text(&o));

    for a in &addrs {
        let t = format!("https://{a}");
        eventually(WAIT, &format!("the item on {a}"), || {
            let o = cli(
                &cwd,
                &[
                    "--ca-file",
                    ca_s,
                    "get-item",
                    "--target-addr",
                    &t,
                    "--table-name",
                    "Music",
                    "--partition-key",
                    "Nina",
                    "--sort-key",
                    "Sinnerman",
                ],
            );
            (o.status.success() && text(&o).contains("1965")).then_some(())
        });
    }

    // Peer-only routes: a caller with the CA but no client certificate gets 401; a node's
    // certificate is let in.
    let r = client.post(format!("https://{}/raft/vote", addrs[0])).body("{}").send().unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"]["code"], "client_certificate_required", "{body}");
    let r = client.get(format!("https://{}/admin/faults", addrs[0])).send().unwrap();
    assert_eq!(r.status(), 401);
    let peer = https(&ca, Some((&certs.join("node1.pem"), &certs.join("node1-key.pem"))));
    let r = peer.get(format!("https://{}/admin/faults", addrs[0])).send().unwrap();
    assert_eq!(r.status(), 200, "a node's certificate opens the admin routes");

    // Plain http to an https node: a 400 that says https, and the CLI says so too.
    raft_nosql::tls::install_provider();
    let plain = reqwest::blocking::Client::builder().no_proxy().build().unwrap();
    let r = plain.get(format!("http://{}/status", addrs[0])).send().unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"]["code"], "https_required", "{body}");
    let o = cli(&cwd, &["status", "--target-addr", &addrs[0]]);
    assert!(!o.status.success() && text(&o).contains("serves https only"), "{}", text(&o));

    // An https target without a CA, a CA file that is not there, and the wrong CA.
    let o = cli(&cwd, &["status", "--target-addr", &target]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--ca-file"), "{}", text(&o));
    let o = cli(&cwd, &["--ca-file", "no-such-ca.pem", "status", "--target-addr", &target]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot read the CA certificate no-such-ca.pem"), "{}", text(&o));
    let other = dir.path().join("other");
    gen_certs(&other, 1);
    let other_ca = other.join("ca.pem");
    let o =
        cli(&cwd, &["--ca-file", other_ca.to_str().unwrap(), "status", "--target-addr", &target]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("certificate"), "a wrong CA is named as such: {}", text(&o));
}

/// Node 2 holds a certificate from another CA (and trusts only that CA, as a node of
/// another cluster would). Nodes 0 and 1 form the cluster and take a write; node 2 never
/// learns of a leader, its elections raise only its own term, and a Raft RPC sent with
/// its certificate fails at the handshake.
#[test]
fn a_peer_with_a_certificate_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    let rogue = dir.path().join("rogue");
    gen_certs(&good, 3);
    gen_certs(&rogue, 3);
    // One directory as `{id}` expects it: nodes 0 and 1 from the cluster CA, node 2 from
    // the other one.
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let copy = |from: &Path, name: &str, to: &str| {
        std::fs::copy(from.join(name), certs.join(to)).unwrap();
    };
    for f in ["node0.pem", "node0-key.pem", "node1.pem", "node1-key.pem"] {
        copy(&good, f, f);
    }
    copy(&good, "ca.pem", "ca0.pem");
    copy(&good, "ca.pem", "ca1.pem");
    copy(&rogue, "ca.pem", "ca2.pem");
    copy(&rogue, "node2.pem", "node2.pem");
    copy(&rogue, "node2-key.pem", "node2-key.pem");
    let tls = tls_section(&certs).replace("ca.pem", "ca{id}.pem");

    let (config, addrs) = write_config(dir.path(), 3, &tls);
    let mut procs = Procs(Vec::new());
    for id in 0..3 {
        let log = std::fs::File::create(dir.path().join(format!("node{id}.out"))).unwrap();
        procs.0.push(
            Command::new(bin())
                .args(["node", "--id", &id.to_string(), "--config"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }
    let ca = good.join("ca.pem");
    let node0_id: (PathBuf, PathBuf) = (certs.join("node0.pem"), certs.join("node0-key.pem"));
    let admin = https(&ca, Some((&node0_id.0, &node0_id.1)));
    let client = https(&ca, None);
    let rogue_view = https(&rogue.join("ca.pem"), None);
    for a in &addrs[..2] {
        eventually(WAIT, &format!("{a} to answer over https"), || status(&client, a));
    }
    eventually(WAIT, "node 2 to answer (with its own CA)", || status(&rogue_view, &addrs[2]));

    let r = admin.post(format!("https://{}/admin/init", addrs[0])).send().unwrap();
    assert!(r.status().is_success(), "init: {}", r.status());
    let (leader, term) = eventually(WAIT, "nodes 0 and 1 to agree on a leader", || {
        let s0 = status(&client, &addrs[0])?;
        let s1 = status(&client, &addrs[1])?;
        let l = s0["leader_id"].as_u64()?;
        (s1["leader_id"].as_u64() == Some(l)).then(|| (l, s0["term"].as_u64().unwrap()))
    });
    assert!(leader < 2, "the rogue node cannot lead");

    // A write commits on the majority of nodes 0 and 1.
    let body = serde_json::json!({"table_name": "tls_table", "partition_key": {"name": "k"}});
    let r = client
        .post(format!("https://{}/tables", addrs[leader as usize]))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "create table on the leader");

    // Node 2, initialised with the same members (through its own admin route, with a
    // certificate of its CA), campaigns: its term climbs past the cluster's,
    // but its vote requests are never heard. The cluster keeps its leader and term, and
    // node 2 knows no leader.
    let to_rogue = https(
        &rogue.join("ca.pem"),
        Some((&certs.join("node2.pem"), &certs.join("node2-key.pem"))),
    );
    let r = to_rogue.post(format!("https://{}/admin/init", addrs[2])).send().unwrap();
    assert!(r.status().is_success(), "init node 2: {}", r.status());
    eventually(WAIT, "node 2 to campaign past the cluster's term", || {
        let s2 = status(&rogue_view, &addrs[2])?;
        (s2["term"].as_u64()? > term + 1).then_some(())
    });
    let s2 = status(&rogue_view, &addrs[2]).unwrap();
    assert!(s2["leader_id"].is_null(), "node 2 follows no leader: {s2}");
    assert_ne!(s2["role"], "Leader");
    for a in &addrs[..2] {
        let s = status(&client, a).unwrap();
        assert_eq!(s["leader_id"].as_u64(), Some(leader), "{s}");
        assert_eq!(s["term"].as_u64(), Some(term), "node 2's elections did not reach {a}: {s}");
    }

    // Its Raft RPCs fail at the handshake, before any request is read.
    let rogue_id = https(&ca, Some((&certs.join("node2.pem"), &certs.join("node2-key.pem"))));
    let err = rogue_id
        .post(format!("https://{}/raft/vote", addrs[leader as usize]))
        .body("{}")
        .send()
        .unwrap_err();
    assert!(err.is_connect() || err.is_request(), "refused at the handshake: {err:?}");
    let log = std::fs::read_to_string(dir.path().join(format!("node{leader}.out"))).unwrap();
    assert!(log.contains("tls_refused"), "the refusal is logged");
}

/// A node whose certificate the configured CA did not sign, or whose key file is missing,
/// refuses to start with a message naming the file; so does the supervisor, before it
/// starts any node.
#[test]
fn a_node_with_a_certificate_its_ca_did_not_sign_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    let rogue = dir.path().join("rogue");
    gen_certs(&good, 1);
    gen_certs(&rogue, 1);
    let tls = tls_section(&rogue)
        .replace(&format!("{}/ca.pem", rogue.display()), &format!("{}/ca.pem", good.display()));
    let (config, _) = write_config(dir.path(), 1, &tls);
    let cfg = config.to_str().unwrap();
    let o = cli(dir.path(), &["node", "--id", "0", "--config", cfg]);
    assert!(!o.status.success());
    let out = text(&o);
    assert!(
        out.contains("node0.pem is not a certificate the cluster CA")
            && out.contains("vouches for"),
        "{out}"
    );
    let o = cli(dir.path(), &["--config", cfg, "server"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("cannot set up TLS"), "{}", text(&o));

    std::fs::remove_file(rogue.join("node0-key.pem")).unwrap();
    let o = cli(dir.path(), &["node", "--id", "0", "--config", cfg]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("cannot read the private key") && text(&o).contains("node0-key.pem"),
        "{}",
        text(&o)
    );
}
