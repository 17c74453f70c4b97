//! `raft-nosql logs`: the nodes' JSON logs, merged in time order and filtered.
//!
//! Reading, parsing, merging and filtering live in [`crate::logs`]; this file turns flags
//! into a [`Filter`], finds the files from the cluster config, and prints: one readable
//! line per entry, the raw JSON lines (`--output json`, or `--json`), or the cluster's
//! story (`--timeline`), once or continuously (`--follow`, which like `tail -f` starts
//! with the last few entries).
//!
//! Which cluster: `--config` (or `RAFT_NOSQL_CONFIG`) if given. Otherwise
//! `./cluster.toml`, unless the supervisor answering on its control address runs
//! another config (`make server CONFIG=config/five-nodes.toml`): then the logs of that
//! running cluster, and a note on stderr says so.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use chrono::{DateTime, Local, NaiveDate, Utc};
use clap::Args;
use serde_json::Value;

use super::{Failure, GlobalOpts, Output, EXIT_FAILURE, EXIT_USAGE};
use crate::config::ClusterConfig;
use crate::logs::{
    merge, read_file, read_supervisor_log, Filter, Level, LogEntry, Since, Tail, EVENTS,
};

/// How often `--follow` looks for appended lines.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

const EXAMPLES: &str = "\
Times are local (UTC with --utc), to the millisecond; an entry from another day than today
shows its date too. Colour is used when stdout is a terminal, unless --no-color or NO_COLOR.

Examples:
  raft-nosql logs --timeline                          # the cluster's story: starts, exits, elections, leaders
  raft-nosql logs --node 1 --level warn --since 10m   # node 1's warnings and errors of the last 10 minutes
  raft-nosql logs --event request --json | jq .latency_ms
  raft-nosql logs --follow --timeline                 # the last 10 entries, then new ones as they come
  raft-nosql logs --follow --lines 50                 # start with the last 50 entries
  raft-nosql logs --grep snapshot --since 2026-11-28T07:00:00Z

Timeline events: node_started node_stopping node_stopped node_exited node_spawned election_started
  became_leader became_follower became_candidate leader_changed term_changed membership_changed
  learner_added learner_caught_up node_removed snapshot_built snapshot_installed storage_full
  storage_damaged node_waiting node_rejoin faults_changed simulation_changed
Other events: snapshot_written snapshot_install_resumed log_purged peer_unreachable peer_reachable
  peer_rejected proof_refused tls_refused vote_refused forward_failed requests_not_logged request

Exit status: 0 ok; 1 no node log file exists; 2 bad flag value or a config that does not load.";

/// Show the nodes' logs (`<data_root>/nodeN/node.log`) merged in time order and filtered.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct LogsArgs {
    /// Only this node; repeat or comma-separate for several (--node 0,2); `node1` works too
    #[arg(long = "node", short = 'n', value_name = "N", value_delimiter = ',', value_parser = parse_node)]
    pub nodes: Vec<u64>,
    /// Only entries at this level or above: trace, debug, info, warn, error
    #[arg(long, short = 'l', value_name = "LEVEL")]
    pub level: Option<Level>,
    /// Only this structured event; repeat or comma-separate for any of several
    #[arg(long = "event", short = 'e', value_name = "EVENT", value_delimiter = ',')]
    pub events: Vec<String>,
    /// Only entries since WHEN: a duration ago (30s, 5m, 2h, 1d, 1h30m) or an RFC 3339 time
    #[arg(long, value_name = "WHEN")]
    pub since: Option<Since>,
    /// Only entries whose raw JSON line contains TEXT (case-sensitive)
    #[arg(long, value_name = "TEXT")]
    pub grep: Option<String>,
    /// Like tail -f: print the last --lines entries, then entries as they are appended,
    /// until Ctrl+C
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// With --follow: how many of the latest entries to print before following
    #[arg(long, value_name = "N", default_value_t = 10, requires = "follow")]
    pub lines: usize,
    /// Print the raw JSON lines unchanged (merged and filtered), e.g. for jq; the same
    /// as --output json
    #[arg(long)]
    pub json: bool,
    /// Only the cluster's story: process starts and exits, elections, leaders, terms,
    /// membership, snapshots, faults
    #[arg(long)]
    pub timeline: bool,
    /// Show times in UTC instead of local time
    #[arg(long)]
    pub utc: bool,
    /// Never colour the output (NO_COLOR in the environment does the same)
    #[arg(long)]
    pub no_color: bool,
}

/// `--node` accepts `1` or `node1`.
fn parse_node(s: &str) -> Result<u64, String> {
    let digits = s.trim().strip_prefix("node").unwrap_or(s.trim());
    digits.parse().map_err(|_| format!("{s:?} is not a node id (a number, like 1 or node1)"))
}

pub async fn run(global: &GlobalOpts, args: LogsArgs) -> ExitCode {
    let config = match find_cluster(global).await {
        Ok(c) => c,
        Err(f) => return f.report(global.output),
    };
    let members: Vec<u64> = config.nodes.iter().map(|n| n.id).collect();
    if let Some(n) = args.nodes.iter().find(|n| !members.contains(n)) {
        let list = members.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
        eprintln!("error: node {n} is not in the cluster (nodes: {list})");
        return ExitCode::from(EXIT_USAGE);
    }
    for e in args.events.iter().filter(|e| !EVENTS.contains(&e.as_str())) {
        eprintln!("note: {e:?} is not a known event name; known: {}", EVENTS.join(", "));
    }
    let selected: Vec<u64> = members
        .iter()
        .copied()
        .filter(|id| args.nodes.is_empty() || args.nodes.contains(id))
        .collect();
    let filter = Filter {
        nodes: args.nodes.clone(),
        min_level: args.level,
        events: args.events.clone(),
        since: args.since.map(|s| s.resolve(Utc::now())),
        grep: args.grep.clone(),
        timeline: args.timeline,
    };
    let color = !args.no_color
        && anstream::AutoStream::choice(&io::stdout()) != anstream::ColorChoice::Never;
    let printer = Printer {
        json: args.json || global.output == Some(Output::Json),
        timeline: args.timeline,
        utc: args.utc,
        color,
        node_width: members.iter().map(|id| node_name(*id).len()).max().unwrap_or(5),
        today: today(args.utc),
    };
    let result = if args.follow {
        follow(&config, &selected, &filter, &printer, args.lines).await
    } else {
        once(&config, &selected, &filter, &printer)
    };
    match result {
        Ok(code) => code,
        // `raft-nosql logs | head`: the reader is gone, which is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// The config whose logs to show (see the module docs).
async fn find_cluster(global: &GlobalOpts) -> Result<ClusterConfig, Failure> {
    let config = global.load_config()?;
    if global.config.is_some() || global.data_dir_root.is_some() {
        return Ok(config);
    }
    let client = crate::supervisor::control::ControlClient::new(
        &config.supervisor.control_addr,
        Duration::from_secs(2),
    );
    let Ok(view) = client.status().await else {
        return Ok(config);
    };
    let ours = std::path::absolute(&config.data_root).unwrap_or_else(|_| config.data_root.clone());
    let running = PathBuf::from(&view.supervisor.data_root);
    if running == ours {
        return Ok(config);
    }
    let overrides = crate::config::Overrides { data_root: Some(running.clone()) };
    let file = view.supervisor.config_file.as_deref().map(std::path::Path::new);
    let mut found = crate::config::load(file, &overrides).unwrap_or_else(|_| config.clone());
    found.data_root = running;
    eprintln!(
        "note: showing the logs of the running cluster ({}, data in {}), not those of {}",
        file.map_or_else(|| "built-in config".to_string(), |f| format!("config {}", f.display())),
        found.data_root.display(),
        ours.display()
    );
    Ok(found)
}

fn log_path(config: &ClusterConfig, id: u64) -> PathBuf {
    config.node_dir(id).join("node.log")
}

fn supervisor_log_path(config: &ClusterConfig) -> PathBuf {
    config.data_root.join("supervisor.log")
}

/// Reads every file once, prints the merged, filtered entries, then the skipped counts.
fn once(
    config: &ClusterConfig,
    nodes: &[u64],
    filter: &Filter,
    printer: &Printer,
) -> io::Result<ExitCode> {
    let mut sources = Vec::new();
    let mut skipped = Vec::new();
    let mut missing = Vec::new();
    for &id in nodes {
        let path = log_path(config, id);
        match read_file(&path, id) {
            Ok((mut entries, bad)) => {
                entries.retain(|e| filter.matches(e));
                sources.push(entries);
                if bad > 0 {
                    skipped.push((path, bad));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push((id, path)),
            Err(e) => eprintln!("warning: cannot read {}: {e}", path.display()),
        }
    }
    if sources.is_empty() {
        eprintln!(
            "error: no node log found under {} (has the cluster been started? the data root \
             comes from cluster.toml, DATA_DIR or --data-dir-root)",
            config.data_root.display()
        );
        return Ok(ExitCode::from(EXIT_FAILURE));
    }
    for (id, path) in missing {
        eprintln!("note: {} has no log yet ({} is missing)", node_name(id), path.display());
    }
    let supervisor = supervisor_log_path(config);
    match read_supervisor_log(&supervisor) {
        Ok(mut entries) => {
            entries.retain(|e| filter.matches(e));
            sources.push(entries);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => eprintln!("warning: cannot read {}: {e}", supervisor.display()),
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    for entry in merge(sources) {
        printer.print(&mut out, &entry)?;
    }
    out.flush()?;
    for (path, n) in skipped {
        eprintln!("skipped {n} malformed line(s) in {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the last `lines` entries that match so far, then polls every file for
/// appended lines until Ctrl+C. Each poll's new entries are printed in time order;
/// entries are never held back waiting for a slower node, so across polls the order is
/// arrival order.
async fn follow(
    config: &ClusterConfig,
    nodes: &[u64],
    filter: &Filter,
    printer: &Printer,
    lines: usize,
) -> io::Result<ExitCode> {
    let mut tails: Vec<Tail> =
        nodes.iter().map(|&id| Tail::node(log_path(config, id), id)).collect();
    let missing: Vec<u64> =
        nodes.iter().copied().filter(|&id| !log_path(config, id).exists()).collect();
    if missing.len() == nodes.len() {
        eprintln!(
            "note: no node log under {} yet; waiting for the cluster to start (Ctrl+C to stop)",
            config.data_root.display()
        );
    } else {
        for id in missing {
            eprintln!("note: {} has no log yet; waiting for it", node_name(id));
        }
    }
    tails.push(Tail::supervisor(supervisor_log_path(config)));
    let mut warned = vec![false; tails.len()];
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut tick = tokio::time::interval(FOLLOW_POLL);
    let mut first = true;
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(ExitCode::SUCCESS),
            _ = tick.tick() => {}
        }
        let mut batch = Vec::new();
        for (tail, warned) in tails.iter_mut().zip(warned.iter_mut()) {
            match tail.poll() {
                Ok(entries) => {
                    batch.extend(entries.into_iter().filter(|e| filter.matches(e)));
                    *warned = false;
                }
                Err(e) if !*warned => {
                    eprintln!("warning: cannot read {}: {e}", tail.path().display());
                    *warned = true;
                }
                Err(_) => {}
            }
        }
        if batch.is_empty() {
            first = false;
            continue;
        }
        let mut merged = merge([batch]);
        if std::mem::take(&mut first) {
            // The history: only its last `lines` entries, as `tail -f` does.
            merged.drain(..merged.len().saturating_sub(lines));
        }
        let mut out = io::stdout().lock();
        for entry in &merged {
            printer.print(&mut out, entry)?;
        }
        out.flush()?;
    }
}

fn node_name(id: u64) -> String {
    format!("node{id}")
}

fn today(utc: bool) -> NaiveDate {
    if utc {
        Utc::now().date_naive()
    } else {
        Local::now().date_naive()
    }
}

/// Formats entries for the terminal or for a pipe.
struct Printer {
    /// Raw JSON lines instead of readable ones.
    json: bool,
    /// Timeline layout: no level column.
    timeline: bool,
    /// Times in UTC rather than local time.
    utc: bool,
    /// ANSI colours.
    color: bool,
    /// Width of the node column (the longest `node<N>` of the cluster).
    node_width: usize,
    /// Entries of another day show their date.
    today: NaiveDate,
}

/// One colour per node id, stable across runs; none of them is WARN's or ERROR's.
const NODE_COLORS: [AnsiColor; 6] = [
    AnsiColor::Cyan,
    AnsiColor::Magenta,
    AnsiColor::Green,
    AnsiColor::Blue,
    AnsiColor::BrightCyan,
    AnsiColor::BrightMagenta,
];

impl Printer {
    fn print(&self, out: &mut impl Write, e: &LogEntry) -> io::Result<()> {
        if self.json {
            return writeln!(out, "{}", e.raw);
        }
        let line = self.format(e);
        writeln!(out, "{line}")
    }

    /// `07:09:17.165  node0  INFO  became_leader  term=3` (no level with `--timeline`).
    fn format(&self, e: &LogEntry) -> String {
        let mut s = String::new();
        let (date, time) = if self.utc {
            let t = e.timestamp;
            (t.date_naive(), t.format("%H:%M:%S%.3f").to_string())
        } else {
            let t: DateTime<Local> = e.timestamp.with_timezone(&Local);
            (t.date_naive(), t.format("%H:%M:%S%.3f").to_string())
        };
        if date != self.today {
            s.push_str(&date.format("%Y-%m-%d ").to_string());
        }
        s.push_str(&time);
        s.push_str("  ");
        let node_style = Style::new()
            .fg_color(Some(NODE_COLORS[(e.node % NODE_COLORS.len() as u64) as usize].into()));
        let name = format!("{:<width$}", node_name(e.node), width = self.node_width);
        self.styled(&mut s, node_style, &name);
        s.push_str("  ");
        let level_style = match e.level {
            Level::Trace | Level::Debug => Style::new().dimmed(),
            Level::Info => Style::new(),
            Level::Warn => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
            Level::Error => Style::new().fg_color(Some(AnsiColor::Red.into())).bold(),
        };
        match &e.event {
            Some(event) => {
                if !self.timeline {
                    self.styled(&mut s, level_style, &format!("{:<5}", e.level));
                    s.push_str("  ");
                    self.styled(&mut s, Style::new().bold(), event);
                } else if e.level >= Level::Warn {
                    self.styled(&mut s, level_style.bold(), event);
                } else {
                    self.styled(&mut s, Style::new().bold(), event);
                }
            }
            None => {
                self.styled(&mut s, level_style, &format!("{:<5}", e.level));
                s.push_str("  ");
                s.push_str(&e.message);
            }
        }
        let mut first = true;
        for (key, value) in e.key_fields() {
            s.push_str(if first { "  " } else { " " });
            first = false;
            self.styled(&mut s, Style::new().dimmed(), &format!("{key}="));
            match value {
                Value::String(v) if !v.is_empty() => s.push_str(v),
                other => s.push_str(&other.to_string()),
            }
        }
        s
    }

    fn styled(&self, s: &mut String, style: Style, text: &str) {
        if self.color {
            s.push_str(&format!("{style}{text}{style:#}"));
        } else {
            s.push_str(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::parse_line;

    /// `logs --help` names every event `--event` can filter on.
    #[test]
    fn help_names_every_event() {
        for e in crate::logs::EVENTS {
            let word = format!(" {e}");
            assert!(EXAMPLES.contains(&word), "logs --help does not name {e}");
        }
    }

    fn printer(timeline: bool) -> Printer {
        Printer {
            json: false,
            timeline,
            utc: true,
            color: false,
            node_width: 5,
            today: NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
        }
    }

    #[test]
    fn readable_line_shows_time_node_level_event_and_key_fields() {
        let e = parse_line(r#"{"node_id":0,"timestamp":"2026-11-28T07:09:17.165628Z","level":"INFO","message":"became leader","event":"became_leader","term":3,"target":"raft_nosql::events"}"#).unwrap();
        assert_eq!(printer(false).format(&e), "07:09:17.165  node0  INFO   became_leader  term=3");
    }

    #[test]
    fn timeline_line_has_no_level_and_unquoted_strings() {
        let e = parse_line(r#"{"node_id":2,"timestamp":"2026-11-28T07:09:24.585122Z","level":"WARN","message":"node exited","event":"node_exited","status":"signal 9 (SIGKILL)","pid":1234,"source":"supervisor","target":"raft_nosql::supervisor"}"#).unwrap();
        assert_eq!(
            printer(true).format(&e),
            "07:09:24.585  node2  node_exited  status=signal 9 (SIGKILL) pid=1234 source=supervisor"
        );
    }

    #[test]
    fn ordinary_line_shows_its_message_and_another_day_its_date() {
        let e = parse_line(r#"{"node_id":1,"timestamp":"2026-11-27T23:59:59.5Z","level":"DEBUG","message":"Creating database at x","log.target":"fjall::db","target":"fjall::db"}"#).unwrap();
        assert_eq!(
            printer(false).format(&e),
            "2026-11-27 23:59:59.500  node1  DEBUG  Creating database at x"
        );
    }

    #[test]
    fn node_accepts_a_number_or_node_name() {
        assert_eq!(parse_node("1"), Ok(1));
        assert_eq!(parse_node("node12"), Ok(12));
        assert!(parse_node("leader").is_err());
    }
}
