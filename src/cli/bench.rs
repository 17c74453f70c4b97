//! `raft-nosql bench`: a load generator with latency percentiles, for a raft-nosql
//! cluster (native REST API, or DynamoDB's protocol with `--api dynamodb`) or, with
//! `--system etcd` / `--system dynamodb`, an etcd cluster or any DynamoDB-compatible
//! endpoint (moto, dynalite) driven the same way.
//!
//! The work happens in [`crate::bench`]; this file turns flags into a
//! [`BenchConfig`], shows progress on stderr (only when it is a terminal) and prints
//! the report (a table, or one JSON object with `--json`). Exit codes: 0 when at least
//! one operation was acknowledged, 1 when every operation failed, setup failed or the
//! `update`/`transact` check found a lost update or a changed total, 2 for bad flags.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{GlobalOpts, EXIT_FAILURE, EXIT_USAGE};
use crate::bench::{self, Api, BenchConfig, BenchError, ReadLevel, Stop, System, Workload};

/// The system `--system` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SystemArg {
    /// A raft-nosql cluster (default targets: the nodes of the cluster config)
    RaftNosql,
    /// An etcd 3.x cluster through its HTTP/JSON gateway (pass --target)
    Etcd,
    /// Any DynamoDB-compatible endpoint: moto_server, dynalite, DynamoDB Local (pass
    /// --target; implies --api dynamodb)
    Dynamodb,
}

/// `--api` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApiArg {
    /// raft-nosql's REST API (PUT/GET /tables/{t}/items)
    Native,
    /// DynamoDB's wire protocol: PutItem and GetItem on POST / (ConsistentRead for
    /// --consistency strong)
    Dynamodb,
}

/// `--consistency` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LevelArg {
    /// raft-nosql: any node answers from what it has applied; etcd: serializable reads
    Eventual,
    /// raft-nosql: linearizable reads through the leader; etcd: linearizable reads
    Strong,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    raft-nosql bench --workload write --clients 64 --duration 10\n  \
    raft-nosql bench --workload mixed:90 --clients 64 --consistency strong --json\n  \
    raft-nosql bench --workload write --clients 64 --duration 30 --interval 1\n  \
    raft-nosql bench --api dynamodb --workload update --hot-keys 100 --clients 64\n  \
    raft-nosql bench --api dynamodb --workload transact --clients 64\n  \
    raft-nosql bench --system etcd --target 127.0.0.1:2379,127.0.0.1:22379 --workload read
      raft-nosql bench --api dynamodb --workload read --clients 64 --consistency strong
      raft-nosql bench --system dynamodb --target 127.0.0.1:5000 --workload write --check-crc")]
pub struct BenchArgs {
    /// The system under test
    #[arg(long, value_enum, default_value_t = SystemArg::RaftNosql)]
    pub system: SystemArg,
    /// The protocol [default: native; dynamodb with --system dynamodb]
    #[arg(long, value_enum, value_name = "API")]
    pub api: Option<ApiArg>,
    /// DynamoDB API: check every answer's x-amz-crc32 against its body, as botocore
    /// does; a mismatch counts as an error
    #[arg(long)]
    pub check_crc: bool,
    /// What to send: write, read, mixed:R (R = percentage of reads, 0-100), update
    /// (conditional increments of counters on --hot-keys items, read then write if
    /// unchanged, retried on conflict) or transact (transfers between --hot-keys
    /// accounts, one TransactWriteItems each; needs --api dynamodb)
    #[arg(long, default_value = "write", value_parser = parse_workload, value_name = "WORKLOAD")]
    pub workload: Workload,
    /// Concurrent clients, each with its own connection(s)
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub clients: u32,
    /// Measure for this many seconds [default: 10 unless --ops is given]
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, conflicts_with = "ops")]
    pub duration: Option<Duration>,
    /// Measure this many operations in total instead of a duration
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub ops: Option<u64>,
    /// Bytes per written value
    #[arg(long, default_value_t = 100, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(0..=300_000))]
    pub value_size: u32,
    /// Size of the key space (keys key000000, key000001, ...)
    #[arg(long, default_value_t = 10_000, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pub keys: u64,
    /// update and transact: number of hot items (counters or accounts key000000, ...)
    #[arg(long, default_value_t = bench::conditional::DEFAULT_HOT_KEYS, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pub hot_keys: u64,
    /// How fresh reads must be
    #[arg(long, value_enum, default_value_t = LevelArg::Eventual, value_name = "LEVEL")]
    pub consistency: LevelArg,
    /// Node(s) to drive, host:port; repeat or separate with commas. Reads go to each in
    /// turn; raft-nosql writes find the leader [default: every node of the cluster config]
    #[arg(long = "target", alias = "target-addr", value_delimiter = ',', value_name = "HOST:PORT")]
    pub targets: Vec<String>,
    /// Table to use (raft-nosql, DynamoDB); created with partition key `k` (S) if missing
    #[arg(long, default_value = "bench", value_name = "NAME")]
    pub table: String,
    /// Delete and recreate the table (etcd: delete the benchmark keys) first
    #[arg(long)]
    pub fresh: bool,
    /// Run the workload this many seconds before measuring (0: no warm-up)
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds_or_zero)]
    pub warmup: Option<Duration>,
    /// Do not write the key space before a workload with reads
    #[arg(long)]
    pub no_preload: bool,
    /// Print the report as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
    /// Also report the throughput of every interval of this many seconds of the
    /// measurement (and, in --json, when it began, to line it up with other events)
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub interval: Option<Duration>,
}

fn parse_workload(s: &str) -> Result<Workload, String> {
    s.parse()
}

/// A positive number of seconds (fractions allowed).
fn parse_seconds(s: &str) -> Result<Duration, String> {
    match parse_seconds_or_zero(s)? {
        d if d.is_zero() => Err(format!("{s:?}: give more than 0 seconds")),
        d => Ok(d),
    }
}

/// A number of seconds from 0 to 86400 (fractions allowed).
fn parse_seconds_or_zero(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if (0.0..=86_400.0).contains(&x) => Ok(Duration::from_secs_f64(x)),
        _ => Err(format!("{s:?} is not a number of seconds from 0 to 86400")),
    }
}

pub async fn run(global: &GlobalOpts, args: BenchArgs) -> ExitCode {
    let system = match args.system {
        SystemArg::RaftNosql => System::RaftNosql,
        SystemArg::Etcd => System::Etcd,
        SystemArg::Dynamodb => System::Dynamodb,
    };
    let api = match (args.api, system) {
        (Some(ApiArg::Native), _) => Api::Native,
        (Some(ApiArg::Dynamodb), _) | (None, System::Dynamodb) => Api::Dynamodb,
        (None, _) => Api::Native,
    };
    let targets: Vec<String> = if !args.targets.is_empty() {
        args.targets.iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect()
    } else if system == System::Etcd {
        return usage("--system etcd needs --target HOST:PORT (the members' client addresses)");
    } else if system == System::Dynamodb {
        return usage("--system dynamodb needs --target HOST:PORT (the endpoint's address)");
    } else {
        match global.load_config() {
            Ok(c) if !c.nodes.is_empty() => c.nodes.into_iter().map(|n| n.addr).collect(),
            Ok(_) => return usage("the cluster config lists no nodes; pass --target"),
            Err(e) => return usage(&format!("cannot load the cluster config: {e}")),
        }
    };
    // https: the CA from --ca-file (or the config's [tls]); an https:// target needs it.
    if system == System::RaftNosql {
        match global.ca_file() {
            Some(ca) => match crate::tls::client_config(&ca, None) {
                Ok(c) => crate::tls::install(c),
                Err(e) => return usage(&format!("cannot use --ca-file: {e}")),
            },
            None => {
                if let Some(t) = targets.iter().find(|t: &&String| t.starts_with("https://")) {
                    return usage(&format!(
                        "{t} is an https address: give the cluster's CA certificate \
                         (--ca-file or RAFT_NOSQL_CA_FILE)"
                    ));
                }
            }
        }
    }
    let stop = match (args.duration, args.ops) {
        (_, Some(n)) => Stop::Ops(n),
        (Some(d), None) => Stop::After(d),
        (None, None) => Stop::After(Duration::from_secs(10)),
    };
    let cfg = BenchConfig {
        system,
        api,
        check_crc: args.check_crc,
        workload: args.workload,
        clients: args.clients as usize,
        stop,
        value_size: args.value_size as usize,
        keys: args.keys,
        hot_keys: args.hot_keys,
        read_level: match args.consistency {
            LevelArg::Eventual => ReadLevel::Eventual,
            LevelArg::Strong => ReadLevel::Strong,
        },
        targets,
        table: args.table,
        fresh: args.fresh,
        warmup: args.warmup,
        preload: !args.no_preload,
        progress: bench::stderr_is_terminal(),
        interval: args.interval,
    };
    let report = match bench::run(&cfg).await {
        Ok(r) => r,
        Err(BenchError::Usage(m)) => return usage(&m),
        Err(e @ BenchError::Setup(_)) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: cannot encode the report: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        }
    } else {
        print!("{}", report.to_text());
    }
    if let Some(c) = report.check.as_ref().filter(|c| !c.ok) {
        eprintln!("error: check failed: {}", c.line());
        return ExitCode::from(EXIT_FAILURE);
    }
    if report.ok == 0 {
        let why = match report.errors_by_kind.iter().max_by_key(|(_, n)| **n) {
            Some((kind, n)) => format!("most common error: {kind} ({n} times)"),
            None => "no operation finished".to_string(),
        };
        eprintln!("error: every operation failed ({} of {}); {why}", report.errors, report.ops);
        return ExitCode::from(EXIT_FAILURE);
    }
    ExitCode::SUCCESS
}

fn usage(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_USAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A duration must be positive; a warm-up may be 0 (none); garbage and out-of-range
    /// values say what is accepted.
    #[test]
    fn seconds_parse_with_zero_allowed_only_for_the_warm_up() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_seconds("0").unwrap_err().contains("more than 0"));
        assert_eq!(parse_seconds_or_zero("0"), Ok(Duration::ZERO));
        for bad in ["-1", "86401", "NaN", "inf", "soon"] {
            let e = parse_seconds_or_zero(bad).unwrap_err();
            assert!(e.contains("from 0 to 86400"), "{bad}: {e}");
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
