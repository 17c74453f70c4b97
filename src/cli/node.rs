//! `raft-nosql node --id N`: run one node process.

use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// This node's id (one of the ids in the config)
    #[arg(long)]
    pub id: u64,
}

pub async fn run(_global: &GlobalOpts, _args: NodeArgs) -> ExitCode {
    ExitCode::from(super::EXIT_FAILURE)
}
