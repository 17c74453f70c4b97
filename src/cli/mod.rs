//! The command line: one file per command group. Each parses its flags, calls the
//! client, the supervisor or the node, and prints. Exit codes scripts can trust:
//! 0 ok, 1 not found / rejected / unreachable, 2 usage (a bad flag, a node id that is
//! not in the config, a value out of range: the same mistake exits 2 in every command).
//!
//! Errors are one sentence on stderr (`error: table "Music" not found`). The machine
//! code of an error (`table_not_found`) is printed only with `--output json`, as one
//! JSON line `{"error":{"code":"…","message":"…"}}` on stderr. Every command takes
//! `--output json|table` the same way (a global flag); each has its own default.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, ClusterConfig, Overrides};

pub mod bench;
pub mod cluster;
pub mod data;
pub mod logs;
pub mod node;
pub mod quote;

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
    /// Output format: json, or table (readable). Data commands default to json, cluster
    /// and logs commands to table
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<Output>,
    /// PEM file of the cluster's CA: talk https to the nodes and trust the certificates
    /// it signed (needed for https:// targets) [default: the config's tls.ca_file]
    #[arg(long, global = true, env = "RAFT_NOSQL_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// How results (and, with `json`, errors) are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// JSON: pretty-printed answers; errors as one JSON line with their code
    Json,
    /// For people: tables and sentences
    Table,
}

/// Why a command failed: decides the exit code and how the error is printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Bad usage: a bad flag value, a node that is not in the config, a config that does
    /// not load. Exit 2.
    Usage { code: String, message: String },
    /// The cluster said no, or could not be reached. Exit 1.
    Failed { code: String, message: String },
}

impl Failure {
    /// A usage error with the generic code `usage`.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::Usage { code: "usage".into(), message: message.into() }
    }

    /// A failure with a machine code (`table_not_found`, `unreachable`, …).
    pub fn failed(code: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure::Failed { code: code.into(), message: message.into() }
    }

    /// The process exit code: 2 for usage, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage { .. } => EXIT_USAGE,
            Failure::Failed { .. } => EXIT_FAILURE,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            Failure::Usage { code, .. } | Failure::Failed { code, .. } => code,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Failure::Usage { message, .. } | Failure::Failed { message, .. } => message,
        }
    }

    /// The line printed on stderr: a sentence, or with `--output json` a JSON object
    /// that carries the code too.
    pub fn render(&self, output: Option<Output>) -> String {
        match output {
            Some(Output::Json) => serde_json::json!({
                "error": { "code": self.code(), "message": self.message() }
            })
            .to_string(),
            _ => format!("error: {}", self.message()),
        }
    }

    /// Prints the error on stderr and returns the exit code.
    pub fn report(&self, output: Option<Output>) -> ExitCode {
        eprintln!("{}", self.render(output));
        ExitCode::from(self.exit_code())
    }
}

impl From<config::ConfigError> for Failure {
    /// A config that does not load is a usage error: nothing was attempted.
    fn from(e: config::ConfigError) -> Failure {
        Failure::Usage { code: "invalid_config".into(), message: e.to_string() }
    }
}

impl GlobalOpts {
    /// Loads the cluster config with these options applied.
    /// The CA to check the nodes' certificates with: `--ca-file`, else the config's
    /// `[tls] ca_file` when the config turns TLS on (and loads), else none (plain http).
    pub fn ca_file(&self) -> Option<PathBuf> {
        if let Some(ca) = &self.ca_file {
            return Some(ca.clone());
        }
        let config = self.load_config().ok()?;
        let id = config.nodes.first()?.id;
        config.tls.files_for(id).map(|f| f.ca)
    }

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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every command a user can run shows an example in its `--help`.
    #[test]
    fn every_command_has_an_example_in_its_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name()).trim().to_string();
            if cmd.has_subcommands() {
                for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                    walk(sub, &path, missing);
                }
                return;
            }
            let help = cmd.get_after_help().map(|h| h.to_string()).unwrap_or_default();
            if !help.contains("Example") {
                missing.push(path);
            }
        }
        let mut missing = Vec::new();
        for sub in Cli::command().get_subcommands().filter(|s| s.get_name() != "help") {
            walk(sub, "", &mut missing);
        }
        assert!(missing.is_empty(), "no example in --help of: {missing:?}");
    }

    #[test]
    fn output_is_one_global_flag_and_usage_errors_exit_2() {
        for args in [
            &["raft-nosql", "list-tables", "--output", "table"][..],
            &["raft-nosql", "cluster", "status", "--output", "json"],
            &["raft-nosql", "logs", "--output", "json"],
            &["raft-nosql", "--output", "json", "status"],
        ] {
            let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(cli.global.output.is_some(), "{args:?}");
        }
        let e = Cli::try_parse_from(["raft-nosql", "scan", "--table-name", "T", "--limit", "0"])
            .unwrap_err();
        assert_eq!(e.exit_code(), i32::from(EXIT_USAGE));
        assert_eq!(Failure::usage("x").exit_code(), EXIT_USAGE);
        assert_eq!(Failure::failed("unreachable", "x").exit_code(), EXIT_FAILURE);
    }
}
