//! raft-nosql: a DynamoDB-style NoSQL store replicated with Raft, one OS process per node.
//!
//! Dependencies point down: `cli` → `client`/`supervisor` → `server` → `raft` →
//! `storage` → `model`. `model` imports nothing of ours; nothing imports `cli`.

pub mod cli;
pub mod client;
pub mod config;
pub mod error;
pub mod model;
pub mod node;
pub mod raft;
pub mod server;
pub mod storage;
pub mod supervisor;
