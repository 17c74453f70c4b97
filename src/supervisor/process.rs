//! Starting and stopping OS processes: the node children, and the detached supervisor of
//! `raft-nosql cluster start`.
//!
//! Rules this module keeps:
//!
//! - **Never `fork(2)` by hand inside tokio.** Every child is started with
//!   [`std::process::Command`], which forks and immediately execs; the only code that runs
//!   in the forked child is the small `pre_exec` hook below, which calls async-signal-safe
//!   functions only (`prctl`, `getppid`, `setsid`, `signal`).
//! - **Children die with their supervisor.** On Linux each node sets a parent-death signal
//!   (`PR_SET_PDEATHSIG` = SIGKILL): if the supervisor is SIGKILLed, the kernel kills the
//!   nodes. The signal fires when the *thread* that forked the child ends, not the
//!   process, so all nodes are spawned from one [`Spawner`] thread that lives as long as
//!   the process. `pre_exec` then checks `getppid()`: if the supervisor died between
//!   `fork` and `prctl`, the child gives up instead of running orphaned.
//! - **Nodes get their own process group**, so a Ctrl+C in the terminal reaches only the
//!   supervisor, which then stops the nodes in order (SIGTERM, wait, SIGKILL).
//! - **The pid file follows the process**: `<data_root>/node<N>/node.pid` is written after
//!   a successful spawn and removed once the process has been reaped.
//! - **We only signal pids we hold.** The supervisor keeps each [`Child`] until it has
//!   reaped it, so its pid cannot be reused by another process while we might signal it.
//!
//! Shortcuts taken: the parent-death signal is Linux-only; on other Unixes a SIGKILLed
//! supervisor leaves its nodes running (the pid files name them).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// How a node process is launched; the same for every node of a supervisor.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// The `raft-nosql` executable (`std::env::current_exe()`).
    pub exe: PathBuf,
    /// Absolute path of the config file, passed as `--config`; `None` = built-in defaults.
    pub config_file: Option<PathBuf>,
    /// Absolute data root, passed as `--data-dir-root` so that a node resolves exactly the
    /// directory the supervisor does, whatever `DATA_DIR` or the working directory say.
    pub data_root: PathBuf,
    /// `--insecure` is passed on: nodes may listen off loopback without a secret.
    pub insecure: bool,
    /// The cluster secret's proof, sent by every client the supervisor builds (status
    /// polls, init, membership steps, the dashboard's admin calls).
    pub security: std::sync::Arc<crate::security::Security>,
}

impl LaunchSpec {
    /// `<data_root>/node<id>`.
    pub fn node_dir(&self, id: u64) -> PathBuf {
        self.data_root.join(format!("node{id}"))
    }

    /// `<data_root>/node<id>/node.pid`.
    pub fn pid_file(&self, id: u64) -> PathBuf {
        self.node_dir(id).join("node.pid")
    }

    /// `<data_root>/node<id>/node.log`.
    pub fn log_file(&self, id: u64) -> PathBuf {
        self.node_dir(id).join("node.log")
    }

    /// The command line of node `id`:
    /// `raft-nosql node --id N [--config F] --data-dir-root D [--insecure]`.
    pub fn node_args(&self, id: u64) -> Vec<String> {
        let mut args = vec!["node".to_string(), "--id".to_string(), id.to_string()];
        if let Some(c) = &self.config_file {
            args.push("--config".to_string());
            args.push(c.display().to_string());
        }
        args.push("--data-dir-root".to_string());
        args.push(self.data_root.display().to_string());
        if self.insecure {
            args.push("--insecure".to_string());
        }
        args
    }
}

/// Starts node `id`: creates its directory, appends its stdout and stderr to `node.log`,
/// spawns it (with the parent-death signal) and writes `node.pid`. `extra` arguments
/// apply to this start only (`--rejoin`).
pub fn spawn_node(spec: &LaunchSpec, id: u64, extra: &[&str]) -> io::Result<Child> {
    fs::create_dir_all(spec.node_dir(id))?;
    let log = open_append(&spec.log_file(id))?;
    let mut cmd = Command::new(&spec.exe);
    cmd.args(spec.node_args(id))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    let parent = std::process::id();
    // SAFETY: the hook runs in the forked child before exec and calls only
    // async-signal-safe functions; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || die_with_parent(parent));
    }
    let child = spawner().spawn(cmd)?;
    write_pid_file(&spec.pid_file(id), child.id())?;
    Ok(child)
}

/// In the forked child: ask the kernel for SIGKILL when the supervisor goes away, then
/// make sure it has not gone already.
fn die_with_parent(parent: u32) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls, async-signal-safe.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if unsafe { libc::getppid() } as u32 != parent {
            // The supervisor died between fork and prctl: do not start an orphan.
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = parent;
    Ok(())
}

/// Starts `exe args…` as a new session, detached from the terminal: stdin is null,
/// stdout and stderr are appended to `log`, SIGHUP is ignored. Used by `cluster start`.
pub fn spawn_detached(exe: &Path, args: &[String], log: &Path) -> io::Result<Child> {
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir)?;
    }
    let out = open_append(log)?;
    let mut cmd = Command::new(exe);
    cmd.args(args).stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out);
    // SAFETY: setsid and signal are async-signal-safe; nothing is allocated.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            // A new session has no controlling terminal, so no hangup reaches it; ignoring
            // SIGHUP also covers a `kill -HUP` meant for the shell's job.
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    cmd.spawn()
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Writes `pid\n` to `path` (replacing it).
pub fn write_pid_file(path: &Path, pid: u32) -> io::Result<()> {
    fs::write(path, format!("{pid}\n"))
}

/// The pid in `path`, if the file exists and holds one.
pub fn read_pid_file(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Removes a pid file; a missing file is fine.
pub fn remove_pid_file(path: &Path) {
    let _ = fs::remove_file(path);
}

/// Whether a process with this pid exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid_t) = libc::pid_t::try_from(pid) else { return false };
    if pid_t <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    if unsafe { libc::kill(pid_t, 0) } != 0 {
        return io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    }
    // A zombie still "exists" for kill(0) until its parent reaps it.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(')').next().and_then(|r| r.split_whitespace().next()) != Some("Z"),
        Err(_) => true,
    }
}

/// The command line of a live process, arguments joined by spaces (Linux `/proc`).
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Sends `signal` to a child we hold.
pub fn signal(child: &Child, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: the child has not been reaped (we hold it), so the pid is still ours.
    if unsafe { libc::kill(child.id() as libc::pid_t, signal) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Graceful stop: SIGTERM (plus SIGCONT, in case it is paused), wait up to `timeout`,
/// then SIGKILL. Returns the exit status and whether SIGKILL was needed.
pub async fn stop_child(child: &mut Child, timeout: Duration) -> io::Result<(ExitStatus, bool)> {
    if let Some(status) = child.try_wait()? {
        return Ok((status, false));
    }
    let _ = signal(child, libc::SIGTERM);
    // A SIGSTOPped process keeps SIGTERM pending until it runs again.
    let _ = signal(child, libc::SIGCONT);
    if let Some(status) = wait_until(child, Instant::now() + timeout).await? {
        return Ok((status, false));
    }
    Ok((kill_child(child).await?, true))
}

/// SIGKILL and reap.
pub async fn kill_child(child: &mut Child) -> io::Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    let _ = signal(child, libc::SIGKILL);
    // SIGKILL cannot be caught; the kernel needs only a moment to tear the process down.
    match wait_until(child, Instant::now() + Duration::from_secs(10)).await? {
        Some(status) => Ok(status),
        None => child.wait(),
    }
}

/// Polls `try_wait` until the child exits or `deadline` passes.
async fn wait_until(child: &mut Child, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(20)).await; // poll interval, bounded by the deadline
    }
}

/// Describes how a process ended: `exit status 0`, `signal 9 (SIGKILL)`.
pub fn describe_exit(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(sig) => format!("signal {sig} ({})", signal_name(sig)),
        None => status.to_string(),
    }
}

fn signal_name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGPIPE => "SIGPIPE",
        _ => "signal",
    }
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// The one thread that forks every node; see the module docs for why it must outlive
/// the children.
pub struct Spawner {
    tx: mpsc::Sender<SpawnRequest>,
}

/// The process-wide [`Spawner`], started on first use.
pub fn spawner() -> &'static Spawner {
    static SPAWNER: OnceLock<Spawner> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("node-spawner".to_string())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("cannot start the node spawner thread");
        Spawner { tx }
    })
}

impl Spawner {
    /// Spawns `cmd` on the spawner thread. Blocks for the duration of one fork+exec.
    pub fn spawn(&self, cmd: Command) -> io::Result<Child> {
        let (tx, rx) = mpsc::channel();
        self.tx.send((cmd, tx)).map_err(|_| io::Error::other("node spawner thread is gone"))?;
        rx.recv().map_err(|_| io::Error::other("node spawner thread is gone"))?
    }
}

/// Appends one supervisor event to a node's own log file, as a JSON line in the nodes'
/// format, so `raft-nosql logs` shows a node's exit (which the node, if SIGKILLed,
/// could not log itself) in place among its lines.
pub fn log_node_event(
    log: &Path,
    node: u64,
    level: &str,
    event: &str,
    message: &str,
    fields: serde_json::Value,
) {
    let mut line = serde_json::json!({
        "node_id": node,
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "level": level,
        "message": message,
        "event": event,
        "source": "supervisor",
        "target": "raft_nosql::supervisor",
    });
    if let (Some(obj), serde_json::Value::Object(extra)) = (line.as_object_mut(), fields) {
        obj.extend(extra);
    }
    let text = format!("{line}\n");
    // One append of one short line: atomic with respect to the node's own appends.
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
        use std::io::Write;
        let _ = f.write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_args_pass_config_and_absolute_root() {
        let spec = LaunchSpec {
            exe: "/bin/raft-nosql".into(),
            config_file: Some("/etc/c.toml".into()),
            data_root: "/var/data".into(),
            insecure: false,
            security: Default::default(),
        };
        assert_eq!(
            spec.node_args(2),
            ["node", "--id", "2", "--config", "/etc/c.toml", "--data-dir-root", "/var/data"]
        );
        let insecure = LaunchSpec { insecure: true, ..spec.clone() };
        assert_eq!(insecure.node_args(0).last().map(String::as_str), Some("--insecure"));
        assert_eq!(spec.pid_file(2), PathBuf::from("/var/data/node2/node.pid"));
    }

    #[tokio::test]
    async fn stop_child_escalates_to_sigkill_and_reports_it() {
        // `sh` ignores SIGTERM here, so the stop must fall back to SIGKILL.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "trap '' TERM; echo ready; while :; do sleep 1; done"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()); // its `sleep` outlives it for a moment; keep it off our stderr
        let mut child = spawner().spawn(cmd).unwrap();
        let pid = child.id();
        // Only once the trap is set is SIGTERM ignored.
        let mut line = String::new();
        io::BufRead::read_line(&mut io::BufReader::new(child.stdout.take().unwrap()), &mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        assert!(pid_alive(pid));
        let (status, killed) = stop_child(&mut child, Duration::from_millis(200)).await.unwrap();
        assert!(killed);
        assert_eq!(describe_exit(&status), "signal 9 (SIGKILL)");
        assert!(!pid_alive(pid));
    }

    #[tokio::test]
    async fn stop_child_is_graceful_when_the_child_obeys() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let mut child = spawner().spawn(cmd).unwrap();
        let (status, killed) = stop_child(&mut child, Duration::from_secs(10)).await.unwrap();
        assert!(!killed);
        assert_eq!(describe_exit(&status), "signal 15 (SIGTERM)");
    }

    #[test]
    fn pid_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.pid");
        write_pid_file(&f, 4242).unwrap();
        assert_eq!(read_pid_file(&f), Some(4242));
        remove_pid_file(&f);
        assert_eq!(read_pid_file(&f), None);
    }
}
