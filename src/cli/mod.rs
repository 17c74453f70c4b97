//! The command line: one file per command group. Each parses its flags, calls the
//! client, the supervisor or the node, and prints. Exit codes scripts can trust:
//! 0 ok, 1 not found / rejected / unreachable, 2 usage.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, ClusterConfig, Overrides};

pub mod bench;
pub mod cluster;
pub mod data;
pub mod logs;
pub mod node;

/// Exit code for "not found", "rejected" or "unreachable".
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for bad usage (bad flags, bad input).
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(name = "raft-nosql", version, about = "A DynamoDB-style NoSQL database replicated with Raft, run as a real multi-process cluster", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command understands.
#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// Cluster config file [default: ./cluster.toml if present, else built-in defaults]
    #[arg(long, global = true, env = "RAFT_NOSQL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Root directory of the nodes' data (node N uses <root>/nodeN); also env DATA_DIR
    #[arg(long, global = true)]
    pub data_dir_root: Option<PathBuf>,
}

impl GlobalOpts {
    /// Loads the cluster config with these options applied.
    pub fn load_config(&self) -> Result<ClusterConfig, config::ConfigError> {
        config::load(self.config.as_deref(), &Overrides { data_root: self.data_dir_root.clone() })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one node process (what the supervisor spawns)
    Node(node::NodeArgs),
    /// Run the supervisor in the foreground: start every node of the config; Ctrl+C stops all
    Server(cluster::ServerArgs),
    /// Control a running cluster through its supervisor
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    #[command(flatten)]
    Data(data::DataCommand),
    /// Show the nodes' logs merged in time order, filtered; --timeline for the cluster's story
    Logs(logs::LogsArgs),
    /// Load-test a cluster (or etcd): throughput and latency percentiles
    Bench(bench::BenchArgs),
}

/// Runs the parsed command line and returns the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Node(args) => node::run(&cli.global, args).await,
            Command::Server(args) => cluster::run_server(&cli.global, args).await,
            Command::Cluster(cmd) => cluster::run(&cli.global, cmd).await,
            Command::Data(cmd) => data::run(&cli.global, cmd).await,
            Command::Logs(args) => logs::run(&cli.global, args).await,
            Command::Bench(args) => bench::run(&cli.global, args).await,
        }
    })
}
