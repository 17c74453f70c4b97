//! The Raft network: openraft's RPCs (AppendEntries, Vote, InstallSnapshot) as HTTP
//! POSTs of JSON to the peer's `/raft/append`, `/raft/vote` and `/raft/snapshot`.
//!
//! - One `reqwest::Client` per peer, kept for the life of the process, so connections
//!   are reused (keep-alive) instead of opened per RPC.
//! - Each RPC has the timeout openraft gives in its `RPCOption` (for AppendEntries that
//!   is the heartbeat interval).
//! - A refused connection is reported as `Unreachable`, so openraft backs off instead
//!   of retrying hot; other transport failures are `Network` errors; a Raft error the
//!   peer returned is a `RemoteError`.
//!
//! The server side of these RPCs is `server::raft`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{NodeAddr, NodeId, TypeConfig};

/// Builds per-peer connections; keeps one HTTP client per peer.
#[derive(Clone, Default)]
pub struct Network {
    clients: Arc<Mutex<HashMap<NodeId, reqwest::Client>>>,
}

impl Network {
    pub fn new() -> Network {
        Network::default()
    }

    fn client_for(&self, target: NodeId) -> reqwest::Client {
        let mut clients = self.clients.lock().expect("network lock");
        clients
            .entry(target)
            .or_insert_with(|| {
                reqwest::Client::builder()
                    .no_proxy()
                    .tcp_nodelay(true)
                    .pool_max_idle_per_host(4)
                    .build()
                    .expect("reqwest client builds")
            })
            .clone()
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &NodeAddr) -> PeerConnection {
        // Must not connect here: openraft calls this eagerly; the first RPC connects.
        PeerConnection { target, addr: node.addr.clone(), client: self.client_for(target) }
    }
}

/// The RPC client of one peer.
pub struct PeerConnection {
    target: NodeId,
    addr: String,
    client: reqwest::Client,
}

impl PeerConnection {
    async fn send<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, NodeAddr, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let url = format!("http://{}/raft/{}", self.addr, path);
        let resp =
            self.client.post(&url).timeout(option.hard_ttl()).json(req).send().await.map_err(
                |e| {
                    if e.is_connect() {
                        RPCError::Unreachable(Unreachable::new(&e))
                    } else {
                        RPCError::Network(NetworkError::new(&e))
                    }
                },
            )?;
        if !resp.status().is_success() {
            let msg = format!("peer {} answered {} to {path}", self.target, resp.status());
            return Err(RPCError::Network(NetworkError::new(&std::io::Error::other(msg))));
        }
        let result: Result<Resp, RaftError<NodeId, E>> =
            resp.json().await.map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeAddr, RaftError<NodeId>>> {
        self.send("append", &req, &option).await
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, NodeAddr, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.send("snapshot", &req, &option).await
    }

    async fn vote(
        &mut self,
        req: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeAddr, RaftError<NodeId>>> {
        self.send("vote", &req, &option).await
    }
}
