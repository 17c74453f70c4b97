//! The load generator behind `raft-nosql bench`.
