//! What the supervisor knows about the cluster, as data: the JSON of the control API's
//! `GET /status`, and its rendering as the table `raft-nosql cluster status` prints.
//!
//! Two sources meet in a [`NodeView`]:
//!
//! - the *process* facts the supervisor owns: pid, [`ProcState`], restarts, last exit;
//! - the *Raft* facts only the node knows, copied from its own `GET /status`
//!   ([`NodeStatus`]): role, term, leader, last log index, committed, applied.
//!
//! The two can disagree for a moment (a node that was just killed still has its last
//! status cached until the next poll clears it); the process state is the truth about
//! the process, the node's status is the truth about Raft.
//!
//! The cluster's leader ([`ClusterView::leader`]) is the node that says it is `Leader`
//! in the highest term. Two nodes can both say `Leader` for a while (a paused old leader
//! that has just been resumed has not heard of the new term yet); Raft guarantees at most
//! one leader *per term*, so the highest term wins.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};
use serde::{Deserialize, Serialize};

/// The lifecycle of a node *process*, as the supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcState {
    /// The process is alive (it may not answer HTTP yet).
    Running,
    /// Stopped on purpose (graceful SIGTERM through the control API or at shutdown);
    /// stays down until `start-node` / `restart`.
    Stopped,
    /// Killed on purpose (SIGKILL through the control API); stays down until told.
    Killed,
    /// Frozen with SIGSTOP; `resume` sends SIGCONT.
    Paused,
    /// Exited on its own and automatic restarts are disabled.
    Crashed,
    /// Exited on its own; will be started again after a backoff delay.
    Restarting,
}

impl ProcState {
    /// True if the supervisor holds a live child process in this state.
    pub fn has_process(self) -> bool {
        matches!(self, ProcState::Running | ProcState::Paused)
    }
}

impl std::fmt::Display for ProcState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ProcState::Running => "running",
            ProcState::Stopped => "stopped",
            ProcState::Killed => "killed",
            ProcState::Paused => "paused",
            ProcState::Crashed => "crashed",
            ProcState::Restarting => "restarting",
        };
        f.write_str(s)
    }
}

/// A node's own answer to `GET /status` (missing fields default, unknown ones are
/// ignored, so the two sides can evolve separately).
pub use crate::server::admin::NodeStatus;

/// One node as the supervisor sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    pub id: u64,
    pub addr: String,
    /// The pid of the live process, if any.
    pub pid: Option<u32>,
    pub state: ProcState,
    /// How many times the supervisor started this node after its first start.
    pub restarts: u32,
    /// How the last process of this node ended (`exit status: 0`, `signal: 9 (SIGKILL)`).
    pub last_exit: Option<String>,
    /// The node's own status, `None` while it does not answer.
    pub status: Option<NodeStatus>,
    /// Why the last status poll failed, if it did.
    pub unreachable: Option<String>,
    /// Why the node is down and waits instead of being restarted (`disk full`,
    /// `data damaged`), from its exit status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl NodeView {
    pub fn new(id: u64, addr: String) -> NodeView {
        NodeView {
            id,
            addr,
            pid: None,
            state: ProcState::Stopped,
            restarts: 0,
            last_exit: None,
            status: None,
            unreachable: None,
            reason: None,
        }
    }
}

/// The leader as the cluster reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderInfo {
    pub id: u64,
    pub term: u64,
}

/// Facts about the supervisor process itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupervisorInfo {
    pub pid: u32,
    pub control_addr: String,
    pub data_root: String,
    /// The config file the nodes were started with, if any.
    pub config_file: Option<String>,
    /// Seconds since the supervisor started.
    pub uptime_s: u64,
}

/// The whole answer of the control API's `GET /status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    pub supervisor: SupervisorInfo,
    pub leader: Option<LeaderInfo>,
    pub nodes: Vec<NodeView>,
}

/// The node that says it leads in the highest term, if any.
pub fn find_leader(nodes: &[NodeView]) -> Option<LeaderInfo> {
    nodes
        .iter()
        .filter(|n| n.state == ProcState::Running)
        .filter_map(|n| n.status.as_ref().map(|s| (n.id, s)))
        .filter(|(_, s)| s.is_leader())
        .max_by_key(|(_, s)| s.term)
        .map(|(id, s)| LeaderInfo { id, term: s.term })
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".to_string())
}

/// Renders the view as the table of `raft-nosql cluster status`.
///
/// `lag` is how many entries a node's state machine is behind the leader's
/// (`leader.applied - node.applied`): 0 on a caught-up follower.
pub fn render_table(view: &ClusterView) -> String {
    let leader_applied = view
        .leader
        .and_then(|l| view.nodes.iter().find(|n| n.id == l.id))
        .and_then(|n| n.status.as_ref())
        .and_then(|s| s.applied);
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    table.set_header(vec![
        "node",
        "addr",
        "pid",
        "process",
        "role",
        "term",
        "leader",
        "last log",
        "committed",
        "applied",
        "lag",
        "digest",
        "faults",
    ]);
    for n in &view.nodes {
        let (digest, faults) = match &n.status {
            Some(s) => (s.digest.chars().take(8).collect::<String>(), describe_faults(s)),
            None => ("-".to_string(), "-".to_string()),
        };
        let (role, term, leader, last, committed, applied, lag) = match &n.status {
            Some(s) => (
                s.role.clone(),
                s.term.to_string(),
                opt(s.leader_id),
                opt(s.last_log_index),
                opt(s.committed),
                opt(s.applied),
                match (leader_applied, s.applied) {
                    (Some(l), Some(a)) => l.saturating_sub(a).to_string(),
                    _ => "-".to_string(),
                },
            ),
            None => {
                let role = if n.state.has_process() && n.state != ProcState::Paused {
                    "unreachable"
                } else {
                    "-"
                };
                let dash = || "-".to_string();
                (role.to_string(), dash(), dash(), dash(), dash(), dash(), dash())
            }
        };
        table.add_row(vec![
            Cell::new(n.id),
            Cell::new(&n.addr),
            Cell::new(opt(n.pid)),
            Cell::new(match &n.reason {
                Some(r) => format!("{} ({r})", n.state),
                None => n.state.to_string(),
            }),
            Cell::new(role),
            Cell::new(term),
            Cell::new(leader),
            Cell::new(last),
            Cell::new(committed),
            Cell::new(applied),
            Cell::new(lag),
            Cell::new(digest),
            Cell::new(faults),
        ]);
    }
    for i in [0, 2, 5, 6, 7, 8, 9, 10] {
        if let Some(c) = table.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    match electing(view) {
        Some(line) => format!("{table}\n{line}\n{}", convergence(view)),
        None => format!("{table}\n{}", convergence(view)),
    }
}

/// `electing...` and why, when no running node leads: right after the leader was
/// killed, stopped or paused the others still name it until their election timeout
/// passes and one of them wins a new term.
pub fn electing(view: &ClusterView) -> Option<String> {
    if view.leader.is_some() || !view.nodes.iter().any(|n| n.state == ProcState::Running) {
        return None;
    }
    let named = view
        .nodes
        .iter()
        .filter(|n| n.state == ProcState::Running)
        .filter_map(|n| n.status.as_ref()?.leader_id)
        .max();
    let gone = named
        .and_then(|id| view.nodes.iter().find(|n| n.id == id && n.state != ProcState::Running));
    Some(match gone {
        Some(old) => format!(
            "electing...: no node leads; the others still name node {} ({}) until their election timeout passes",
            old.id, old.state
        ),
        None => "electing...: no node leads at the moment".to_string(),
    })
}

/// Renders each node's disk use next to its live data, as `raft-nosql cluster du`
/// prints it. `ratio` = used / live; after compaction it stays a small multiple.
pub fn render_du(view: &ClusterView) -> String {
    use crate::storage::disk::human;
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    table.set_header(vec![
        "node",
        "process",
        "used",
        "live",
        "ratio",
        "items",
        "log",
        "journals",
        "segments",
        "snapshots",
        "free",
    ]);
    for n in &view.nodes {
        let process = match &n.reason {
            Some(r) => format!("{} ({r})", n.state),
            None => n.state.to_string(),
        };
        let mut row = vec![Cell::new(n.id), Cell::new(process)];
        match n.status.as_ref().and_then(|s| s.disk.as_ref()) {
            Some(d) => {
                let ratio = match d.live_bytes {
                    0 => "-".to_string(),
                    live => format!("{:.2}x", d.used_bytes as f64 / live as f64),
                };
                row.extend([
                    Cell::new(human(d.used_bytes)),
                    Cell::new(human(d.live_bytes)),
                    Cell::new(ratio),
                    Cell::new(human(d.items_bytes)),
                    Cell::new(human(d.log_bytes)),
                    Cell::new(human(d.journal_bytes)),
                    Cell::new(human(d.segment_bytes)),
                    Cell::new(human(d.snapshot_bytes)),
                    Cell::new(human(d.free_bytes)),
                ]);
            }
            None => row.extend((0..9).map(|_| Cell::new("-"))),
        }
        table.add_row(row);
    }
    for i in [0, 2, 3, 4, 5, 6, 7, 8, 9, 10] {
        if let Some(c) = table.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    format!(
        "{table}
used = journals + segments + snapshots; live = items + log kept after the last snapshot"
    )
}

/// The simulated faults and apply delay of a node, in a few words.
fn describe_faults(s: &NodeStatus) -> String {
    let mut parts = Vec::new();
    if let Some(f) = &s.faults {
        if !f.partitioned_from.is_empty() {
            let ids: Vec<String> = f.partitioned_from.iter().map(|i| i.to_string()).collect();
            parts.push(format!("cut off from {}", ids.join(",")));
        }
        if f.delay_ms > 0 || f.jitter_ms > 0 {
            parts.push(format!("slow {}±{} ms", f.delay_ms, f.jitter_ms));
        }
        if f.drop_rate > 0.0 {
            parts.push(format!("drops {:.0}%", f.drop_rate * 100.0));
        }
    }
    if s.apply_delay_ms > 0 {
        parts.push(format!("apply +{} ms", s.apply_delay_ms));
    }
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join("; ")
    }
}

/// Whether the answering nodes hold identical state: equal digests at one index.
pub fn convergence(view: &ClusterView) -> String {
    let answering: Vec<&NodeStatus> = view.nodes.iter().filter_map(|n| n.status.as_ref()).collect();
    let Some(first) = answering.first() else {
        return "no node answers".to_string();
    };
    let same_index = answering.iter().all(|s| s.digest_index == first.digest_index);
    let same_digest = answering.iter().all(|s| s.digest == first.digest);
    let of = format!("{} of {} nodes", answering.len(), view.nodes.len());
    match (same_index, same_digest) {
        (true, true) => {
            format!("converged: {of} hold identical state at index {}", first.digest_index)
        }
        (true, false) => {
            format!("DIVERGED: {of} are at index {} with different digests", first.digest_index)
        }
        (false, _) => {
            let idx: Vec<String> = answering.iter().map(|s| s.digest_index.to_string()).collect();
            format!("not converged yet: {of} are at indexes {}", idx.join(", "))
        }
    }
}

/// A one-line description of the leader for summaries and events.
pub fn describe_leader(view: &ClusterView) -> String {
    match view.leader {
        Some(l) => {
            let addr = view.nodes.iter().find(|n| n.id == l.id).map(|n| n.addr.as_str());
            format!("node {} ({}) leads in term {}", l.id, addr.unwrap_or("?"), l.term)
        }
        None => "no leader".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64, state: ProcState, role: &str, term: u64, applied: u64) -> NodeView {
        let mut n = NodeView::new(id, format!("127.0.0.1:{}", 8100 + id));
        n.state = state;
        n.pid = Some(1000 + id as u32);
        n.status = Some(NodeStatus {
            node_id: id,
            role: role.to_string(),
            term,
            leader_id: Some(1),
            applied: Some(applied),
            ..NodeStatus::default()
        });
        n
    }

    #[test]
    fn leader_is_the_one_claiming_the_highest_term() {
        // Node 0 was paused as leader of term 1 and has just been resumed; node 1 won term 2.
        let nodes = vec![
            node(0, ProcState::Running, "Leader", 1, 5),
            node(1, ProcState::Running, "Leader", 2, 7),
            node(2, ProcState::Running, "Follower", 2, 7),
        ];
        assert_eq!(find_leader(&nodes), Some(LeaderInfo { id: 1, term: 2 }));
    }

    #[test]
    fn paused_or_stopped_nodes_do_not_lead() {
        let nodes = vec![
            node(0, ProcState::Paused, "Leader", 3, 5),
            node(1, ProcState::Killed, "Leader", 3, 5),
        ];
        assert_eq!(find_leader(&nodes), None);
    }

    #[test]
    fn node_status_tolerates_missing_and_extra_fields() {
        let s: NodeStatus =
            serde_json::from_str(r#"{"role":"Follower","term":4,"leader_id":null,"new_field":1}"#)
                .unwrap();
        assert_eq!(s.term, 4);
        assert_eq!(s.leader_id, None);
        assert!(!s.initialized);
    }

    #[test]
    fn table_shows_lag_and_unreachable_nodes() {
        let mut down = NodeView::new(2, "127.0.0.1:8102".into());
        down.state = ProcState::Running;
        let view = ClusterView {
            supervisor: SupervisorInfo {
                pid: 1,
                control_addr: "127.0.0.1:8099".into(),
                data_root: "data".into(),
                config_file: None,
                uptime_s: 1,
            },
            leader: Some(LeaderInfo { id: 1, term: 2 }),
            nodes: vec![
                node(0, ProcState::Running, "Follower", 2, 4),
                node(1, ProcState::Running, "Leader", 2, 7),
                down,
            ],
        };
        let t = render_table(&view);
        assert!(t.contains("unreachable"), "{t}");
        let row0 = t.lines().find(|l| l.contains("127.0.0.1:8100")).unwrap();
        let cells: Vec<&str> = row0.split(['┆', '│']).map(str::trim).collect();
        assert_eq!(cells[11], "3", "lag column: {row0}");
        assert_eq!(describe_leader(&view), "node 1 (127.0.0.1:8101) leads in term 2");
    }
}
