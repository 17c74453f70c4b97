//! Data commands: tables and items, and one node's status.

use std::process::ExitCode;

use clap::Subcommand;

use super::GlobalOpts;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Show one node's view of the cluster
    Status,
}

pub async fn run(_global: &GlobalOpts, _cmd: DataCommand) -> ExitCode {
    eprintln!("not yet available");
    ExitCode::from(super::EXIT_FAILURE)
}
