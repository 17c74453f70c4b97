//! Cluster configuration: which nodes exist, where they keep data, Raft timing, and how
//! the supervisor behaves.
//!
//! One [`load`] function layers the sources, lowest first:
//!
//! 1. built-in defaults ([`ClusterConfig::default`]: 3 nodes on 127.0.0.1:8100–8102);
//! 2. the TOML file (`cluster.toml` unless `--config` names another);
//! 3. environment variables `RAFT_NOSQL_*` (nested keys with `__`, e.g.
//!    `RAFT_NOSQL_RAFT__HEARTBEAT_MS=200`), `DATA_DIR` for the data root, as in the
//!    original project, and `RAFT_NOSQL_SECRET_FILE` for `security.secret_file`;
//! 4. command-line flags (`--data-dir-root`).
//!
//! The node list has one more source: once the membership changed at run time
//! (`raft-nosql cluster add-node` / `remove-node`), the supervisor records the nodes it
//! runs in `<data_root>/members.json` ([`record_members`]), and [`load`] takes the node
//! list from there instead of the file: every command that lists nodes then follows the
//! live membership, and a restarted cluster comes back as it was, not as `cluster.toml`
//! first described it. The file stays the *initial* membership.
//!
//! Unknown keys and wrong types are errors that name the key's path; so are semantic
//! mistakes (duplicate node ids or addresses, an election timeout not above the
//! heartbeat). Nothing starts with a config that fails [`ClusterConfig::validate`].

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The whole cluster's configuration, identical for every process of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Directory under which node N keeps its data in `node<N>/`. Relative paths are
    /// relative to the working directory. Default `data`.
    pub data_root: PathBuf,
    /// Log filter for the nodes and the supervisor (`RUST_LOG` syntax); `RUST_LOG`
    /// overrides it. Default `info`.
    pub log_level: String,
    /// Most `request` log lines a node writes per second; requests beyond it are still
    /// counted in `/metrics`, and one `requests_not_logged` line per second says how
    /// many went unlogged. 0 = no request lines. Default 200.
    pub request_log_per_sec: u64,
    /// The members of the cluster. Default: ids 0, 1, 2 on 127.0.0.1:8100–8102.
    pub nodes: Vec<NodeConfig>,
    /// Raft timing and log compaction.
    pub raft: RaftConfig,
    /// The supervisor (`raft-nosql server` / `cluster start`).
    pub supervisor: SupervisorConfig,
    /// Knobs that make replication visible on one machine. They change when entries
    /// become visible, never what is durable or safe.
    pub simulation: SimulationConfig,
    /// The cluster secret that peers and admin calls must prove (see `security`).
    pub security: SecurityConfig,
    /// TLS for the client API and peer traffic (off by default: plain HTTP).
    pub tls: crate::tls::TlsConfig,
    /// Where `nodes` came from, when it was `<data_root>/members.json` rather than the
    /// config file (never read from or written to TOML).
    #[serde(skip)]
    pub recorded_members: Option<PathBuf>,
}

/// Simulation knobs (all off by default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulationConfig {
    /// Delay, in ms, before a node applies committed entries to its state machine, so
    /// eventual reads on it are visibly stale. Can be changed at runtime with
    /// `raft-nosql cluster set-delay`. Default 0.
    pub apply_delay_ms: u64,
    /// The nodes the delay applies to; empty = every node. Default empty.
    pub apply_delay_nodes: Vec<u64>,
}

impl SimulationConfig {
    /// The apply delay node `id` starts with.
    pub fn apply_delay_for(&self, id: u64) -> u64 {
        if self.apply_delay_nodes.is_empty() || self.apply_delay_nodes.contains(&id) {
            self.apply_delay_ms
        } else {
            0
        }
    }
}

/// Peer and admin authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// A file holding the cluster secret, the same on every host (relative paths are
    /// relative to the working directory). When set, Raft RPCs, forwarded writes and
    /// admin calls must prove it (header `x-raft-nosql-auth`); every process of the
    /// cluster sends that proof. Env `RAFT_NOSQL_SECRET_FILE` sets it too. Default: none
    /// (nothing checked; nodes then listen on loopback only unless `--insecure`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
}

/// One member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The Raft node id; unique.
    pub id: u64,
    /// `host:port` of the node's one HTTP port (client API, Raft RPC and admin) as the
    /// other nodes and clients reach it: what the node advertises; unique.
    pub addr: String,
    /// `host:port` the node binds, when it differs from `addr` (`0.0.0.0:8100` behind
    /// `addr = "10.0.0.1:8100"`). Default: `addr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

impl NodeConfig {
    /// A node that listens where it is reached.
    pub fn new(id: u64, addr: impl Into<String>) -> NodeConfig {
        NodeConfig { id, addr: addr.into(), listen: None }
    }

    /// The address the node binds: `listen`, else `addr`.
    pub fn listen_addr(&self) -> &str {
        self.listen.as_deref().unwrap_or(&self.addr)
    }
}

/// Raft timing. openraft's AppendEntries RPC timeout equals the heartbeat interval, so
/// the heartbeat must leave room for an fsync and a loaded machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftConfig {
    /// Leader heartbeat interval in ms (also the AppendEntries timeout). Default 100.
    pub heartbeat_ms: u64,
    /// A follower that hears no leader for a random time in
    /// [election_timeout_min_ms, election_timeout_max_ms) starts an election.
    /// Must be above the heartbeat; 3–10× is sensible. Default 500.
    pub election_timeout_min_ms: u64,
    /// Upper end of the election timeout range, in ms. Default 1000.
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many log entries since the last one. Default 5000.
    pub snapshot_logs_since_last: u64,
    /// Log entries kept after a snapshot, so slightly lagging followers can catch up by
    /// log rather than by snapshot. Default 1000.
    pub max_in_snapshot_log_to_keep: u64,
    /// Most entries sent in one AppendEntries RPC. Default 300.
    pub max_payload_entries: u64,
    /// Timeout for one snapshot chunk transfer, in ms. Default 2000.
    pub install_snapshot_timeout_ms: u64,
    /// How long a client write waits to be committed and applied before the client is
    /// told 504 `write_timeout` (the write may still commit later). Default 5000.
    pub client_write_timeout_ms: u64,
    /// Most item writes proposed together as one log entry (group commit). 1 turns
    /// batching off: one entry, and one leader fsync, per write. Default 256.
    pub max_batch_writes: usize,
    /// How many write entries may be proposed and not yet applied at once; writes that
    /// arrive meanwhile wait and leave together as the next batch. Default 2.
    pub max_batches_in_flight: usize,
    /// Strong reads on the leader's lease: while a quorum acknowledged the leader within
    /// half the minimum election timeout, its commit index is the read index, with no
    /// heartbeat round (see `raft::lease`). false: a heartbeat round for every batch of
    /// strong reads. Default true.
    pub lease_reads: bool,
}

/// How the supervisor runs the node processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisorConfig {
    /// `host:port` of the supervisor's control API (used by `raft-nosql cluster …`).
    /// Default `127.0.0.1:8099`.
    pub control_addr: String,
    /// After SIGTERM, how long to wait for a node to exit before SIGKILL, in ms.
    /// Default 5000.
    pub stop_timeout_ms: u64,
    /// What to do when a node process exits on its own.
    pub restart: RestartPolicy,
}

/// Restarting crashed nodes. A node stopped or killed on purpose through the control
/// API is never restarted automatically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RestartPolicy {
    /// Restart a node that exited on its own. Default true.
    pub enabled: bool,
    /// Delay before the first restart, in ms; doubled after each crash. Default 500.
    pub initial_backoff_ms: u64,
    /// Upper bound of the restart delay, in ms. Default 10000.
    pub max_backoff_ms: u64,
    /// A node that stayed up this long (ms) has its backoff reset. Default 30000.
    pub reset_after_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            data_root: PathBuf::from("data"),
            log_level: "info".to_string(),
            request_log_per_sec: 200,
            nodes: (0..3).map(|i| NodeConfig::new(i, format!("127.0.0.1:{}", 8100 + i))).collect(),
            raft: RaftConfig::default(),
            supervisor: SupervisorConfig::default(),
            simulation: SimulationConfig::default(),
            security: SecurityConfig::default(),
            tls: crate::tls::TlsConfig::default(),
            recorded_members: None,
        }
    }
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            heartbeat_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1000,
            snapshot_logs_since_last: 5000,
            max_in_snapshot_log_to_keep: 1000,
            max_payload_entries: 300,
            install_snapshot_timeout_ms: 2000,
            client_write_timeout_ms: 5000,
            max_batch_writes: 256,
            max_batches_in_flight: 2,
            lease_reads: true,
        }
    }
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            control_addr: "127.0.0.1:8099".to_string(),
            stop_timeout_ms: 5000,
            restart: RestartPolicy::default(),
        }
    }
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            enabled: true,
            initial_backoff_ms: 500,
            max_backoff_ms: 10_000,
            reset_after_ms: 30_000,
        }
    }
}

/// A configuration that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an environment variable could not be parsed into the config (unknown
    /// key, wrong type, bad TOML). The message names the key as the user wrote it
    /// (`raft.heartbeat`), the file as it was given, and for an unknown key the valid
    /// ones.
    #[error("invalid configuration{}", describe_parse_errors(.error, .file.as_deref()))]
    Parse {
        error: Box<figment::Error>,
        /// The config file as given on the command line, if one was read.
        file: Option<PathBuf>,
    },
    /// The values parse but make no sense together.
    #[error("invalid configuration: {key}: {message}")]
    Invalid { key: String, message: String },
    /// `--config` names a file that does not exist.
    #[error("config file {0} not found")]
    NotFound(PathBuf),
    /// The recorded membership (`members.json`) cannot be read.
    #[error("cannot read the recorded membership {path}: {message} (it lists the nodes the supervisor runs; delete it to start over from the config file's nodes)")]
    Members { path: PathBuf, message: String },
}

/// The file that records the nodes of a cluster whose membership changed at run time.
pub fn members_file(data_root: &Path) -> PathBuf {
    data_root.join("members.json")
}

/// The content of `members.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordedMembers {
    nodes: Vec<NodeConfig>,
}

/// Records `nodes` as the cluster's nodes in `<data_root>/members.json`: written to a
/// temporary name, fsynced, renamed over the old one, and the directory fsynced, so a
/// crash leaves the old list or the new one, never half of one.
pub fn record_members(data_root: &Path, nodes: &[NodeConfig]) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(&RecordedMembers { nodes: nodes.to_vec() })
        .expect("members serialize");
    text.push('\n');
    crate::storage::disk::write_durably(&members_file(data_root), text.as_bytes())
}

/// Reads `<data_root>/members.json`, if there is one.
pub fn recorded_members(data_root: &Path) -> Result<Option<Vec<NodeConfig>>, ConfigError> {
    let path = members_file(data_root);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ConfigError::Members { path, message: e.to_string() }),
    };
    let rec: RecordedMembers = serde_json::from_str(&text)
        .map_err(|e| ConfigError::Members { path: path.clone(), message: e.to_string() })?;
    Ok(Some(rec.nodes))
}

/// figment's errors in the user's words: `in cluster.toml: unknown key "raft.heartbeat"
/// (valid keys in [raft]: heartbeat_ms, ...)`, one line per error. figment's own text
/// prefixes the key with its profile (`default.`) and shows the file relative to the
/// working directory.
fn describe_parse_errors(error: &figment::Error, file: Option<&Path>) -> String {
    use figment::error::Kind;
    let mut lines = Vec::new();
    for e in error.clone() {
        let key = e.path.join(".");
        let source = match e.metadata.as_ref().and_then(|m| m.source.as_ref()) {
            Some(figment::Source::File(_)) => match file {
                Some(f) => format!(" in {}", f.display()),
                None => format!(" in {DEFAULT_CONFIG_FILE}"),
            },
            Some(_) | None => match &e.metadata {
                Some(m) if m.name.contains("environment") => {
                    format!(
                        " in environment variable RAFT_NOSQL_{}",
                        key.to_uppercase().replace('.', "__")
                    )
                }
                _ => String::new(),
            },
        };
        let what = match &e.kind {
            Kind::UnknownField(field, expected) => {
                let section = e.path[..e.path.len().saturating_sub(1)].join(".");
                let place = if section.is_empty() {
                    "at the top".to_string()
                } else {
                    format!("in [{section}]")
                };
                format!(
                    "unknown key {:?} (valid keys {place}: {})",
                    if key.is_empty() { field.clone() } else { key.clone() },
                    expected.join(", ")
                )
            }
            Kind::MissingField(field) => {
                let full =
                    if key.is_empty() { field.to_string() } else { format!("{key}.{field}") };
                format!("missing key {full:?}")
            }
            Kind::InvalidType(actual, expected) => {
                format!("key {key:?} must be {expected}, not {actual}")
            }
            Kind::InvalidValue(actual, expected) => {
                format!("key {key:?} must be {expected}, not {actual}")
            }
            other if key.is_empty() => other.to_string(),
            other => format!("key {key:?}: {other}"),
        };
        lines.push(format!("{source}: {what}"));
    }
    lines.join("\n")
}

/// Overrides from the command line, applied last.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--data-dir-root`.
    pub data_root: Option<PathBuf>,
}

/// The environment variable that names the secret file (as `security.secret_file`, which
/// `RAFT_NOSQL_SECURITY__SECRET_FILE` also sets).
pub const SECRET_FILE_ENV: &str = "RAFT_NOSQL_SECRET_FILE";

/// The default config file name, looked up in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "cluster.toml";

/// Loads the configuration: defaults < `path` < env `RAFT_NOSQL_*` / `DATA_DIR` /
/// `RAFT_NOSQL_SECRET_FILE` < flags.
///
/// `path = None` means `cluster.toml` in the working directory if it exists, else the
/// defaults alone. An explicit path that does not exist is an error.
pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<ClusterConfig, ConfigError> {
    let mut fig = Figment::from(Serialized::defaults(ClusterConfig::default()));
    match path {
        Some(p) => {
            if !p.exists() {
                return Err(ConfigError::NotFound(p.to_path_buf()));
            }
            fig = fig.merge(Toml::file_exact(p));
        }
        None => {
            if Path::new(DEFAULT_CONFIG_FILE).exists() {
                fig = fig.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
            }
        }
    }
    fig = fig.merge(Env::prefixed("RAFT_NOSQL_").ignore(&["CONFIG", "SECRET_FILE"]).split("__"));
    if let Some(file) = std::env::var_os(SECRET_FILE_ENV).filter(|f| !f.is_empty()) {
        fig = fig.merge(Serialized::default("security.secret_file", PathBuf::from(file)));
    }
    if let Some(dir) = std::env::var_os("DATA_DIR").filter(|d| !d.is_empty()) {
        fig = fig.merge(Serialized::default("data_root", PathBuf::from(dir)));
    }
    if let Some(dir) = &overrides.data_root {
        fig = fig.merge(Serialized::default("data_root", dir.clone()));
    }
    let mut config: ClusterConfig = fig.extract().map_err(|e| ConfigError::Parse {
        error: Box::new(e),
        file: path.map(Path::to_path_buf),
    })?;
    if let Some(nodes) = recorded_members(&config.data_root)? {
        config.nodes = nodes;
        config.recorded_members = Some(members_file(&config.data_root));
    }
    config.validate()?;
    Ok(config)
}

/// Parses a config from TOML text alone (no env, no flags); for tests and tools.
pub fn from_toml_str(text: &str) -> Result<ClusterConfig, ConfigError> {
    let config: ClusterConfig = Figment::from(Serialized::defaults(ClusterConfig::default()))
        .merge(Toml::string(text))
        .extract()
        .map_err(|e| ConfigError::Parse { error: Box::new(e), file: None })?;
    config.validate()?;
    Ok(config)
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.to_string(), message: message.into() }
}

impl ClusterConfig {
    /// Checks what parsing cannot: the values must make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.nodes.is_empty() {
            return Err(invalid("nodes", "at least one node is required"));
        }
        let mut ids = HashSet::new();
        let mut addrs = HashSet::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if !ids.insert(n.id) {
                return Err(invalid(
                    &format!("nodes[{i}].id"),
                    format!("duplicate node id {}", n.id),
                ));
            }
            if n.addr.parse::<std::net::SocketAddr>().is_err() {
                return Err(invalid(
                    &format!("nodes[{i}].addr"),
                    format!("{:?} is not an ip:port address", n.addr),
                ));
            }
            if !addrs.insert(n.addr.clone()) {
                return Err(invalid(
                    &format!("nodes[{i}].addr"),
                    format!("duplicate address {}", n.addr),
                ));
            }
            if let Some(listen) = &n.listen {
                if listen.parse::<std::net::SocketAddr>().is_err() {
                    return Err(invalid(
                        &format!("nodes[{i}].listen"),
                        format!("{listen:?} is not an ip:port address"),
                    ));
                }
            }
        }
        let r = &self.raft;
        if r.heartbeat_ms == 0 {
            return Err(invalid("raft.heartbeat_ms", "must be above 0"));
        }
        if r.election_timeout_min_ms <= r.heartbeat_ms {
            return Err(invalid(
                "raft.election_timeout_min_ms",
                format!(
                    "must be above raft.heartbeat_ms ({} <= {}); 3-10x the heartbeat is sensible",
                    r.election_timeout_min_ms, r.heartbeat_ms
                ),
            ));
        }
        if r.election_timeout_max_ms <= r.election_timeout_min_ms {
            return Err(invalid(
                "raft.election_timeout_max_ms",
                format!(
                    "must be above raft.election_timeout_min_ms ({} <= {})",
                    r.election_timeout_max_ms, r.election_timeout_min_ms
                ),
            ));
        }
        if r.max_batch_writes == 0 {
            return Err(invalid("raft.max_batch_writes", "must be above 0 (1 = no batching)"));
        }
        if r.max_batches_in_flight == 0 {
            return Err(invalid("raft.max_batches_in_flight", "must be above 0"));
        }
        if r.max_payload_entries == 0 {
            return Err(invalid("raft.max_payload_entries", "must be above 0"));
        }
        if r.snapshot_logs_since_last == 0 {
            return Err(invalid("raft.snapshot_logs_since_last", "must be above 0"));
        }
        if self.supervisor.control_addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "supervisor.control_addr",
                format!("{:?} is not an ip:port address", self.supervisor.control_addr),
            ));
        }
        if addrs.contains(&self.supervisor.control_addr) {
            return Err(invalid("supervisor.control_addr", "is also a node's address"));
        }
        self.tls.check().map_err(|m| invalid("tls", m))?;
        Ok(())
    }

    /// The node with this id.
    pub fn node(&self, id: u64) -> Option<&NodeConfig> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Data directory of node `id`: `<data_root>/node<id>`.
    pub fn node_dir(&self, id: u64) -> PathBuf {
        self.data_root.join(format!("node{id}"))
    }

    /// All members: id → HTTP address.
    pub fn members(&self) -> BTreeMap<u64, String> {
        self.nodes.iter().map(|n| (n.id, n.addr.clone())).collect()
    }

    /// Renders the config as TOML (what `load` would read back).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serializes to TOML")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_three_nodes_on_8100_to_8102() {
        let c = from_toml_str("").unwrap();
        assert_eq!(c.nodes.len(), 3);
        assert_eq!(c.node(2).unwrap().addr, "127.0.0.1:8102");
        assert_eq!(c.node_dir(1), PathBuf::from("data/node1"));
    }

    #[test]
    fn unknown_key_is_named_as_written_with_the_valid_keys() {
        let err = from_toml_str("[raft]\nheartbeat = 5\n").unwrap_err().to_string();
        assert!(err.contains("unknown key \"raft.heartbeat\""), "{err}");
        assert!(err.contains("valid keys in [raft]: heartbeat_ms, "), "{err}");
        assert!(!err.contains("default."), "{err}");
        assert!(!err.contains('`'), "{err}");
    }

    #[test]
    fn a_bad_file_is_named_as_given() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "[raft]\nheartbeat = 5\n").unwrap();
        let err = load(Some(&file), &Overrides::default()).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("invalid configuration in {}: unknown key", file.display())),
            "{err}"
        );
    }

    #[test]
    fn wrong_type_is_named() {
        let err = from_toml_str("[raft]\nheartbeat_ms = \"fast\"\n").unwrap_err().to_string();
        assert!(err.contains("raft.heartbeat_ms"), "{err}");
    }

    #[test]
    fn election_timeout_must_exceed_heartbeat() {
        let err = from_toml_str("[raft]\nheartbeat_ms = 500\nelection_timeout_min_ms = 500\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("raft.election_timeout_min_ms"), "{err}");
    }

    #[test]
    fn duplicate_ids_and_addresses_are_rejected() {
        let dup_id = "[[nodes]]\nid = 1\naddr = \"127.0.0.1:1\"\n[[nodes]]\nid = 1\naddr = \"127.0.0.1:2\"\n";
        assert!(from_toml_str(dup_id).unwrap_err().to_string().contains("nodes[1].id"));
        let dup_addr = "[[nodes]]\nid = 1\naddr = \"127.0.0.1:1\"\n[[nodes]]\nid = 2\naddr = \"127.0.0.1:1\"\n";
        assert!(from_toml_str(dup_addr).unwrap_err().to_string().contains("nodes[1].addr"));
    }

    #[test]
    fn listen_defaults_to_addr_and_must_be_an_address() {
        let c = from_toml_str(
            "[[nodes]]\nid = 0\naddr = \"10.0.0.1:8100\"\nlisten = \"0.0.0.0:8100\"\n\
             [[nodes]]\nid = 1\naddr = \"10.0.0.2:8100\"\n",
        )
        .unwrap();
        assert_eq!(c.node(0).unwrap().listen_addr(), "0.0.0.0:8100");
        assert_eq!(c.node(0).unwrap().addr, "10.0.0.1:8100");
        assert_eq!(c.node(1).unwrap().listen_addr(), "10.0.0.2:8100");
        let bad = "[[nodes]]\nid = 0\naddr = \"10.0.0.1:8100\"\nlisten = \"anywhere\"\n";
        assert!(from_toml_str(bad).unwrap_err().to_string().contains("nodes[0].listen"));
    }

    #[test]
    fn secret_file_is_read_from_the_security_section() {
        let c = from_toml_str("[security]\nsecret_file = \"/etc/raft-nosql/secret\"\n").unwrap();
        assert_eq!(c.security.secret_file, Some(PathBuf::from("/etc/raft-nosql/secret")));
        assert_eq!(from_toml_str("").unwrap().security.secret_file, None);
        let err = from_toml_str("[security]\nsecret = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("valid keys in [security]: secret_file"), "{err}");
    }

    #[test]
    fn round_trips_through_toml() {
        let c = ClusterConfig::default();
        assert_eq!(from_toml_str(&c.to_toml()).unwrap(), c);
    }
}
