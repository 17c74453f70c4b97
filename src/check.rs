//! Checking recorded histories for linearizability.
