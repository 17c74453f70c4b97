//! Prometheus metrics of one node, served as text at `GET /metrics`.
//!
//! Counters and histograms are updated where things happen (the request path, the log
//! store's fsync, snapshot building); gauges that mirror Raft's own state (term, role,
//! indexes, per-follower matched index) are refreshed from openraft's metrics when
//! `/metrics` is scraped, so they always agree with `/status`.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// All metrics of a node, registered in one registry.
pub struct Metrics {
    registry: Registry,
    pub term: IntGauge,
    /// 1 for the current role, 0 for the others (label `role`).
    pub role: IntGaugeVec,
    pub last_log_index: IntGauge,
    pub committed_index: IntGauge,
    pub applied_index: IntGauge,
    /// On the leader: each member's matched log index (label `peer`).
    pub matched_index: IntGaugeVec,
    pub requests: IntCounterVec,
    pub request_seconds: HistogramVec,
    pub fsync_seconds: HistogramVec,
    /// Leader: item writes per proposed write entry (group commit).
    pub write_batch_size: Histogram,
    /// Strong reads (and followers' read-index requests) served per read-index round.
    pub read_index_batch_size: Histogram,
    /// Read indexes handed out on the leader lease, without a heartbeat round.
    pub lease_reads: IntCounter,
    pub snapshots_built: IntCounter,
    pub snapshots_installed: IntCounter,
    pub snapshot_bytes: Gauge,
    pub tables: IntGauge,
    pub items: IntGauge,
    /// Simulated apply delay in ms.
    pub apply_delay_ms: IntGauge,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, m: T) -> T {
    r.register(Box::new(m.clone())).expect("metric names are unique");
    m
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new_custom(Some("raft_nosql".into()), None).expect("registry");
        let lat_buckets = prometheus::exponential_buckets(0.0001, 2.0, 18).expect("buckets");
        Metrics {
            term: reg(&r, IntGauge::new("raft_term", "Current Raft term").unwrap()),
            role: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new("raft_role", "1 for this node's current role"),
                    &["role"],
                )
                .unwrap(),
            ),
            last_log_index: reg(
                &r,
                IntGauge::new("raft_last_log_index", "Last log index").unwrap(),
            ),
            committed_index: reg(
                &r,
                IntGauge::new("raft_committed_index", "Committed log index known here").unwrap(),
            ),
            applied_index: reg(
                &r,
                IntGauge::new("raft_applied_index", "Last applied index").unwrap(),
            ),
            matched_index: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new("raft_matched_index", "Leader only: each member's matched log index"),
                    &["peer"],
                )
                .unwrap(),
            ),
            requests: reg(
                &r,
                IntCounterVec::new(
                    Opts::new("http_requests_total", "Client requests by route, method and status"),
                    &["route", "method", "status"],
                )
                .unwrap(),
            ),
            request_seconds: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new("http_request_duration_seconds", "Client request latency")
                        .buckets(lat_buckets.clone()),
                    &["route", "method", "status"],
                )
                .unwrap(),
            ),
            fsync_seconds: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new("fsync_duration_seconds", "Durations of journal fsyncs")
                        .buckets(lat_buckets),
                    &["what"],
                )
                .unwrap(),
            ),
            write_batch_size: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "write_batch_size",
                        "Item writes per log entry proposed by this node (group commit)",
                    )
                    .buckets(prometheus::exponential_buckets(1.0, 2.0, 10).expect("buckets")),
                )
                .unwrap(),
            ),
            read_index_batch_size: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "read_index_batch_size",
                        "Strong reads (on the leader: with followers' requests) per read-index round",
                    )
                    .buckets(prometheus::exponential_buckets(1.0, 2.0, 10).expect("buckets")),
                )
                .unwrap(),
            ),
            lease_reads: reg(
                &r,
                IntCounter::new(
                    "lease_reads_total",
                    "Read indexes the leader handed out on its lease, without a heartbeat round",
                )
                .unwrap(),
            ),
            snapshots_built: reg(
                &r,
                IntCounter::new("snapshots_built_total", "Snapshots built here").unwrap(),
            ),
            snapshots_installed: reg(
                &r,
                IntCounter::new("snapshots_installed_total", "Snapshots installed from a leader")
                    .unwrap(),
            ),
            snapshot_bytes: reg(
                &r,
                Gauge::new("snapshot_size_bytes", "Size of the last snapshot sent or installed")
                    .unwrap(),
            ),
            tables: reg(&r, IntGauge::new("tables", "Number of tables").unwrap()),
            items: reg(&r, IntGauge::new("items", "Number of items").unwrap()),
            apply_delay_ms: reg(
                &r,
                IntGauge::new("apply_delay_ms", "Simulated apply delay").unwrap(),
            ),
            registry: r,
        }
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("text encoding");
        String::from_utf8(out).expect("metrics are UTF-8")
    }
}
