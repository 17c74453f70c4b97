//! In-process nodes for route tests (`warp::test::request()`), no sockets served.

use std::time::Duration;

use raft_nosql::config::{from_toml_str, ClusterConfig};
use raft_nosql::node::{open, Node};
use raft_nosql::server::admin;

/// A config of `nodes` nodes on free loopback ports with data under `dir`.
pub fn config(dir: &std::path::Path, nodes: usize) -> ClusterConfig {
    let mut text = format!("data_root = {:?}\n", dir.display().to_string());
    for i in 0..nodes {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        text.push_str(&format!("[[nodes]]\nid = {i}\naddr = \"127.0.0.1:{port}\"\n"));
    }
    text.push_str("[supervisor]\ncontrol_addr = \"127.0.0.1:1\"\n");
    from_toml_str(&text).unwrap()
}

/// A one-node cluster, initialised and leading.
pub async fn leader_node(dir: &std::path::Path) -> Node {
    let node = open(config(dir, 1), 0).await.unwrap();
    admin::init(&node.app).await.unwrap();
    node.raft
        .wait(Some(Duration::from_secs(10)))
        .state(openraft::ServerState::Leader, "single node leads")
        .await
        .unwrap();
    node
}
