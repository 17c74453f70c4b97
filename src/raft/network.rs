//! Raft RPC client over HTTP.
