//! `raft-nosql bench`: a load generator with latency percentiles.

use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct BenchArgs {}

pub async fn run(_global: &GlobalOpts, _args: BenchArgs) -> ExitCode {
    eprintln!("not yet available");
    ExitCode::from(super::EXIT_FAILURE)
}
