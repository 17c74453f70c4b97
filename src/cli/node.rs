//! `raft-nosql node --id N`: run one node process (what the supervisor spawns).

use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  raft-nosql node --id 1 --config cluster.toml    # what the supervisor runs for node 1\n\
    Its JSON log lines go to stdout; the supervisor appends them to <data_root>/node1/node.log.\n\
    On several hosts, run this on each host (e.g. under systemd: deploy/raft-nosql@.service) with\n\
    the same cluster.toml and secret file; the node binds its `listen` address (default `addr`)\n\
    and refuses a non-loopback one without [security] secret_file unless given --insecure."
)]
pub struct NodeArgs {
    /// This node's id (one of the ids in the config's [[nodes]])
    #[arg(long)]
    pub id: u64,
    /// Wipe this node's data (database and snapshots; node.log stays) and start empty,
    /// catching up from the leader by log or snapshot. The remedy for damaged data; the
    /// other nodes must hold a quorum
    #[arg(long)]
    pub rejoin: bool,
    /// Listen on a non-loopback address although no cluster secret is configured
    /// ([security] secret_file): anyone who can reach the port can then send Raft
    /// messages and admin calls. Only for a network you trust
    #[arg(long)]
    pub insecure: bool,
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
    let me = config.node(args.id).expect("checked above");
    let secured = config.security.secret_file.is_some();
    if let Err(e) = crate::security::check_listen(me.listen_addr(), secured, args.insecure) {
        eprintln!("error: {e}");
        return ExitCode::from(super::EXIT_USAGE);
    }
    // A missing or short secret file is a configuration mistake: exit 2, as for a bad
    // config, so that systemd does not restart the node in a loop.
    if let Err(e) = crate::security::Security::from_config(&config) {
        eprintln!("error: {e}");
        return ExitCode::from(super::EXIT_USAGE);
    }
    let _log_guard = crate::node::init_logging(args.id, &config.log_level);
    let dir = config.node_dir(args.id);
    if args.rejoin {
        if let Err(e) = wipe(&dir) {
            eprintln!("error: cannot wipe {}: {e}", dir.display());
            return ExitCode::from(super::EXIT_FAILURE);
        }
        tracing::warn!(
            event = "node_rejoin",
            data_dir = %dir.display(),
            "data wiped on request (--rejoin); catching up from the leader"
        );
    }
    match crate::node::run(config, args.id, crate::node::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let text = format!("{e:#}");
            tracing::error!(error = %text, "node failed");
            eprintln!("error: {text}");
            if crate::storage::disk::is_disk_full(&text) {
                crate::node::report_disk_full(&dir, &text);
                ExitCode::from(crate::storage::disk::EXIT_DISK_FULL)
            } else if e.downcast_ref::<crate::node::DataDamaged>().is_some() {
                tracing::error!(event = "storage_damaged", error = %text, "data damaged");
                ExitCode::from(crate::storage::disk::EXIT_CORRUPT)
            } else {
                ExitCode::from(super::EXIT_FAILURE)
            }
        }
    }
}

/// Removes the node's database, snapshot files and the record of what the database
/// had made durable (`--rejoin`).
///
/// Shortcut taken: the wiped node also forgets its vote, so in the term it is in it
/// could vote a second time. openraft 0.9 has no way to rejoin as a non-voter first; the
/// window is one term, and a rejoin is a manual repair.
fn wipe(dir: &std::path::Path) -> std::io::Result<()> {
    for sub in ["db", "snapshots"] {
        match std::fs::remove_dir_all(dir.join(sub)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    match std::fs::remove_file(crate::storage::watermark::path(dir)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
