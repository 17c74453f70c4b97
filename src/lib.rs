//! raft-nosql: a DynamoDB-style NoSQL store replicated with Raft, one OS process per node.
//!
//! Dependencies point down: `cli` → `client`/`supervisor` → `server` → `raft` →
//! `storage` → `model`. `model` imports nothing of ours; nothing imports `cli`.

// The warp filter tree of a node (REST, DynamoDB, Raft and admin routes) is nested deeper
// than the default limit of 128 lets an optimised build evaluate.
#![recursion_limit = "256"]
// openraft's error types (StorageError, RaftError) are large by design and are what
// its traits return; boxing them at every call site would only add noise.
#![allow(clippy::result_large_err)]

pub mod bench;
pub mod check;
pub mod cli;
pub mod client;
pub mod config;
pub mod error;
pub mod logs;
pub mod metrics;
pub mod model;
pub mod node;
pub mod raft;
pub mod security;
pub mod server;
pub mod storage;
pub mod supervisor;
pub mod tls;
