//! One node's lifecycle: open storage, build Raft, serve HTTP, shut down in order.
//!
//! Shutdown (SIGTERM or SIGINT) is drained in this order:
//! 1. stop accepting HTTP requests and let in-flight ones finish (bounded);
//! 2. shut openraft down (its tasks stop; nothing more is appended or applied);
//! 3. persist fjall with `SyncAll`;
//! 4. exit 0.
//!
//! If openraft's core stops by itself (a storage error is fatal to it), the node does
//! not linger answering HTTP with a dead Raft: [`run`] returns an error and the process
//! exits non-zero, so the supervisor sees a crash and restarts it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use openraft::storage::RaftLogStorage;
use tokio::net::TcpListener;

use crate::config::ClusterConfig;
use crate::raft::lease::Lease;
use crate::raft::network::{Faults, Network};
use crate::raft::payload::PayloadBudget;
use crate::raft::{openraft_config, Raft};
use crate::server::{routes, App};
use crate::storage::{LogStore, Progress, StateMachine, Store};

/// The data directory cannot be used as it is: damaged or unreadable files. The message
/// names what is wrong and the remedy; the process exits with `EXIT_CORRUPT`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DataDamaged(pub String);

pub use crate::storage::disk::rejoin_remedy;

fn damaged(id: u64, dir: &std::path::Path, what: &str, e: impl std::fmt::Display) -> anyhow::Error {
    let text = e.to_string();
    if crate::storage::disk::is_disk_full(&text) {
        return anyhow!("{what}: {text}");
    }
    // fjall's errors name no file: read every segment to find the one that fails.
    let file = match crate::storage::disk::damaged_segment(&dir.join("db")) {
        Some((path, why)) => format!(" ({} fails its checks: {why})", path.display()),
        None => String::new(),
    };
    DataDamaged(format!("{what}{file}: {text}; {}", rejoin_remedy(id))).into()
}

/// How long in-flight HTTP requests get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// An opened node: storage, Raft and the request handlers' shared state, not yet
/// serving HTTP.
pub struct Node {
    pub app: Arc<App>,
    pub raft: Raft,
    pub store: Store,
}

/// Opens node `id` of `config`: its fjall database and its Raft instance.
pub async fn open(config: ClusterConfig, id: u64) -> anyhow::Result<Node> {
    let me = config.node(id).ok_or_else(|| anyhow!("node id {id} is not in the config"))?.clone();
    let dir = config.node_dir(id);
    std::fs::create_dir_all(&dir)
        .map_err(|e| damaged(id, &dir, &format!("cannot create {}", dir.display()), e))?;
    crate::storage::disk::keep_reserve(&dir);
    // Before fjall opens: it would cut a damaged journal short without an error.
    let started = std::time::Instant::now();
    let damage = crate::storage::journal::damaged_journal(&dir.join("db"));
    tracing::info!(
        journals = crate::storage::journal::journals(&dir.join("db")).len(),
        ms = started.elapsed().as_millis() as u64,
        "journals checked"
    );
    if let Some(j) = damage {
        return Err(DataDamaged(format!(
            "cannot open the database in {}: the journal {j}; reading it would drop the \
             writes after the damage; {}",
            dir.display(),
            rejoin_remedy(id)
        ))
        .into());
    }
    let store = Store::open(&dir).map_err(|e| {
        damaged(id, &dir, &format!("cannot open the database in {}", dir.display()), e)
    })?;
    let progress = Arc::new(Progress::default());
    progress.set_apply_delay_ms(config.simulation.apply_delay_for(id));
    let payload = Arc::new(PayloadBudget::default());
    let log_store = LogStore::new(store.clone(), progress.clone())
        .map_err(|e| {
            damaged(id, &dir, &format!("cannot read the raft log in {}", dir.display()), e)
        })?
        .with_payload_budget(payload.clone());
    let lost = log_store.lost_writes().map_err(|e| {
        damaged(id, &dir, &format!("cannot check the raft log in {}", dir.display()), e)
    })?;
    if let Some(lost) = lost {
        let journal = crate::storage::journal::journals(&dir.join("db")).pop();
        let journal = journal.map_or("its journal".to_string(), |j| j.display().to_string());
        return Err(DataDamaged(format!(
            "the database in {} has lost writes it had synced: {lost}, recorded in {}; \
             {journal} was most likely cut short; {}",
            dir.display(),
            crate::storage::watermark::path(&dir).display(),
            rejoin_remedy(id)
        ))
        .into());
    }
    let state_machine = StateMachine::new(store.clone(), progress.clone()).map_err(|e| {
        damaged(id, &dir, &format!("cannot read the state machine in {}", dir.display()), e)
    })?;
    let tables = state_machine.tables();
    let raft_config = Arc::new(openraft_config(&config.raft).context("invalid raft timing")?);
    let faults = Arc::new(Faults::default());
    let security = Arc::new(crate::security::Security::from_config(&config)?);
    let had_vote = log_store
        .clone()
        .read_vote()
        .await
        .map_err(|e| anyhow!("cannot read the stored vote: {e}"))?
        .is_some();
    let lease = Arc::new(Lease::new(
        config.raft.lease_reads,
        Duration::from_millis(config.raft.election_timeout_min_ms / 2),
        had_vote,
    ));
    let network = Network::new(id, faults.clone(), lease.clone(), payload, security.clone());
    let log = log_store.clone();
    let raft = Raft::new(id, raft_config, network.clone(), log_store, state_machine)
        .await
        .map_err(|e| anyhow!("cannot start raft: {e}"))?;
    let writes = crate::server::writes::Batcher::start(
        raft.clone(),
        &config.raft,
        progress.metrics.write_batch_size.clone(),
    );
    let request_log = crate::server::RequestLogBudget::new(config.request_log_per_sec);
    let reads = crate::server::reads::ReadIndex::start(
        id,
        raft.clone(),
        network,
        progress.clone(),
        lease.clone(),
    );
    // DynamoDB writes forwarded to the leader: the leader's own write timeout plus a
    // margin, so the leader's answer (even a timeout) arrives first.
    let forward = crate::server::dynamodb::Forwarder::new(
        Duration::from_millis(config.raft.client_write_timeout_ms + 2000),
        &security,
    );
    let app = Arc::new(App {
        id,
        addr: me.addr,
        raft: raft.clone(),
        tables,
        log,
        config,
        progress,
        faults,
        writes,
        reads,
        lease,
        request_log,
        forward,
        security,
    });
    Ok(Node { app, raft, store })
}

/// Runs node `id` of `config` until `shutdown` resolves (Ok) or Raft dies (Err).
pub async fn run(
    config: ClusterConfig,
    id: u64,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let dir = config.node_dir(id);
    // Bound where `listen` says (default `addr`); advertised to peers as `addr`.
    let listen = config
        .node(id)
        .ok_or_else(|| anyhow!("node id {id} is not in the config"))?
        .listen_addr()
        .to_string();
    // Certificates are read before anything else starts, so a bad file stops the node
    // with a message that names it, and every peer client built later uses them.
    let tls = crate::tls::NodeTls::load(&config.tls, id)
        .with_context(|| format!("cannot set up TLS for node {id}"))?;
    if let Some(tls) = &tls {
        crate::tls::install(tls.client.clone());
    }
    let Node { app, raft, store } = open(config, id).await?;
    let addr = app.addr.clone();
    let secured = app.security.enabled();
    let listener =
        TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stopped = async move {
        let _ = stop_rx.await;
    };
    let server = match tls {
        Some(tls) => tokio::spawn(crate::tls::serve(listener, routes(app), tls.server, stopped)),
        None => tokio::spawn(warp::serve(routes(app)).incoming(listener).graceful(stopped).run()),
    };
    let watcher = crate::raft::events::spawn_watcher(&raft);
    tracing::info!(
        event = "node_started",
        addr = %addr,
        listen = %listen,
        secured,
        scheme = crate::tls::scheme(),
        data_dir = %dir.display(),
        "node started"
    );

    let mut metrics = raft.metrics();
    let raft_died = async move {
        loop {
            if let Err(e) = &metrics.borrow().running_state {
                return e.to_string();
            }
            if metrics.changed().await.is_err() {
                return "raft metrics channel closed".to_string();
            }
        }
    };
    let outcome = tokio::select! {
        _ = shutdown => Ok(()),
        why = raft_died => Err(anyhow!("raft stopped: {why}")),
    };
    let reason = match &outcome {
        Ok(()) => "shutdown requested (SIGTERM or SIGINT)".to_string(),
        Err(e) => e.to_string(),
    };
    if crate::storage::disk::is_disk_full(&reason) {
        report_disk_full(&dir, &reason);
    }
    tracing::info!(event = "node_stopping", reason = %reason, "node stopping");

    let _ = stop_tx.send(());
    if tokio::time::timeout(DRAIN_TIMEOUT, server).await.is_err() {
        tracing::warn!("HTTP requests still running after {DRAIN_TIMEOUT:?}; closing anyway");
    }
    watcher.abort();
    if let Err(e) = raft.shutdown().await {
        tracing::warn!(error = %e, "raft shutdown reported an error");
    }
    let db = store.db.clone();
    let persisted = tokio::task::spawn_blocking(move || db.persist(fjall::PersistMode::SyncAll))
        .await?
        .context("final persist failed");
    // A failed run says why it failed, even if the final persist fails too (it will,
    // on a full disk).
    outcome?;
    persisted?;
    tracing::info!(event = "node_stopped", "node stopped");
    Ok(())
}

/// Logs `storage_full`: the node cannot write, it stops taking part (its process exits
/// with `EXIT_DISK_FULL`), nothing it acknowledged is lost (acknowledged entries were
/// fsynced before; what failed was never acknowledged).
pub fn report_disk_full(dir: &std::path::Path, error: &str) {
    crate::storage::disk::release_reserve(dir);
    let free = crate::storage::disk::free_space(dir).map(|(f, _)| f);
    tracing::error!(
        event = "storage_full",
        data_dir = %dir.display(),
        free_bytes = free,
        error = %error,
        "disk full: this node cannot write and stops; free space in its data directory \
         (or grow the disk) and it rejoins and catches up by itself"
    );
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Sets up JSON-lines logging on stdout; every line carries `node_id`.
///
/// The filter is `RUST_LOG` if set, else the config's `log_level` with openraft's noisy
/// transient errors (unreachable peers during elections) turned down. Lines are handed
/// to a background writer thread (no write syscall on the request path); keep the
/// returned guard alive until exit, it flushes what is left when dropped.
pub fn init_logging(id: u64, level: &str) -> tracing_appender::non_blocking::WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        // Never drop a line: when the buffer is full, the logging thread waits.
        .lossy(false)
        .finish(std::io::stdout());
    use tracing_subscriber::fmt::format::{Format, JsonFields};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{filter, EnvFilter, Layer};
    let env = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},openraft=warn")));
    // openraft's replication task reports every failed RPC to an unreachable or slow
    // peer at ERROR, once per retry, although nothing is wrong with this node. The
    // transport logs `peer_unreachable` / `peer_reachable` once per change instead.
    // Both filters tell tracing the most verbose level they let through, so disabled
    // spans and events (openraft's debug spans on every request) cost one comparison.
    let hint = env.max_level_hint().unwrap_or(filter::LevelFilter::TRACE);
    let transient = filter::filter_fn(|meta| {
        !(meta.target() == "openraft::replication" && *meta.level() == tracing::Level::ERROR)
    })
    .with_max_level_hint(hint);
    let format = NodeIdJson { node_id: id, inner: Format::default().json().flatten_event(true) };
    let layer = tracing_subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(format)
        .with_writer(writer)
        .with_filter(env)
        .with_filter(transient);
    let _ = tracing_subscriber::registry().with(layer).try_init();
    guard
}

/// tracing's JSON format with `"node_id": N` added to every line.
struct NodeIdJson<F> {
    node_id: u64,
    inner: F,
}

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for NodeIdJson<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        self.inner.format_event(
            ctx,
            tracing_subscriber::fmt::format::Writer::new(&mut line),
            event,
        )?;
        match line.strip_prefix('{') {
            Some(rest) => write!(writer, "{{\"node_id\":{},{}", self.node_id, rest),
            None => writer.write_str(&line),
        }
    }
}
