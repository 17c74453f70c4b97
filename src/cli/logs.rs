//! `raft-nosql logs`: the nodes' JSON logs, merged and filtered.

use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct LogsArgs {}

pub async fn run(_global: &GlobalOpts, _args: LogsArgs) -> ExitCode {
    eprintln!("not yet available");
    ExitCode::from(super::EXIT_FAILURE)
}
