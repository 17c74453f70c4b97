//! Supervisor commands: `server` and `cluster …`.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct ServerArgs {}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show every node's state
    Status,
}

pub async fn run_server(_global: &GlobalOpts, _args: ServerArgs) -> ExitCode {
    eprintln!("not yet available");
    ExitCode::from(super::EXIT_FAILURE)
}

pub async fn run(_global: &GlobalOpts, _cmd: ClusterCommand) -> ExitCode {
    eprintln!("not yet available");
    ExitCode::from(super::EXIT_FAILURE)
}
