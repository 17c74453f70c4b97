//! `raft-nosql node --id N`: run one node process (what the supervisor spawns).

use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  raft-nosql node --id 1 --config cluster.toml    # what the supervisor runs for node 1\n\
    Its JSON log lines go to stdout; the supervisor appends them to <data_root>/node1/node.log."
)]
pub struct NodeArgs {
    /// This node's id (one of the ids in the config's [[nodes]])
    #[arg(long)]
    pub id: u64,
}

/// Runs the node until SIGTERM/SIGINT (exit 0) or a fatal error (exit 1).
pub async fn run(global: &GlobalOpts, args: NodeArgs) -> ExitCode {
    let config = match global.load_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(super::EXIT_USAGE);
        }
    };
    if config.node(args.id).is_none() {
        let ids: Vec<String> = config.nodes.iter().map(|n| n.id.to_string()).collect();
        eprintln!("error: node id {} is not in the config (ids: {})", args.id, ids.join(", "));
        return ExitCode::from(super::EXIT_USAGE);
    }
    let _log_guard = crate::node::init_logging(args.id, &config.log_level);
    match crate::node::run(config, args.id, crate::node::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "node failed");
            eprintln!("error: {e:#}");
            ExitCode::from(super::EXIT_FAILURE)
        }
    }
}
