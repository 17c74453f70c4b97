//! Rust client used by the CLI, bench and tests.
