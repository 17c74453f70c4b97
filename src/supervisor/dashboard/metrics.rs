//! writes/s, reads/s and p99 latency of the whole cluster, from the nodes' Prometheus
//! `/metrics` text.
//!
//! Each node counts client requests in `raft_nosql_http_requests_total{route,method,status}`
//! and times them in the histogram `raft_nosql_http_request_duration_seconds`. The dashboard scrapes
//! every running node once a second and turns the *differences* between two scrapes
//! into rates:
//!
//! - a **write** is a `PUT` or `DELETE` of `/tables/{table}/items` answered with a 2xx
//!   status (a 307 from a follower is the same write on its way to the leader and is not
//!   counted twice);
//! - a **read** is a `GET` of an item, a query or a scan answered with 2xx or 404;
//! - **p99** is read off the summed bucket differences of those same requests, as the
//!   upper bound of the bucket holding the 99th percentile (Prometheus' own
//!   `histogram_quantile` interpolates inside the bucket; an upper bound is the honest
//!   answer with few samples).
//!
//! A counter that went down belongs to a restarted node: its new value is the
//! difference.
//!
//! Shortcuts taken: the text parser reads only what it needs (one sample per line, no
//! escaped quotes inside label values, which these metrics never have).

use std::collections::BTreeMap;

/// The namespace of the nodes' metric names (`raft_nosql_http_requests_total`).
const PREFIX: &str = "raft_nosql_";

/// The numbers of one scrape of one node that the dashboard uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// Completed writes so far.
    pub writes: f64,
    /// Completed reads so far.
    pub reads: f64,
    /// Cumulative bucket counts of read and write latencies: upper bound (s) → count.
    pub buckets: BTreeMap<u64, f64>,
}

/// Seconds as a sortable key (microseconds; `+Inf` is `u64::MAX`).
fn bound_key(le: &str) -> Option<u64> {
    if le == "+Inf" {
        return Some(u64::MAX);
    }
    le.parse::<f64>().ok().map(|s| (s * 1e6).round() as u64)
}

/// Splits `name{a="x",b="y"} value` into name, labels and value.
fn parse_sample(line: &str) -> Option<(&str, BTreeMap<&str, &str>, f64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (head, value) = line.rsplit_once(' ')?;
    let value = value.parse::<f64>().ok()?;
    let (name, labels) = match head.split_once('{') {
        Some((name, rest)) => {
            let body = rest.strip_suffix('}')?;
            let mut labels = BTreeMap::new();
            for kv in body.split(',').filter(|kv| !kv.is_empty()) {
                let (k, v) = kv.split_once('=')?;
                labels.insert(k, v.trim_matches('"'));
            }
            (name, labels)
        }
        None => (head, BTreeMap::new()),
    };
    Some((name, labels, value))
}

fn is_write(route: &str, method: &str, status: &str) -> bool {
    route == "/tables/{table}/items"
        && matches!(method, "PUT" | "DELETE")
        && status.starts_with('2')
}

fn is_read(route: &str, method: &str, status: &str) -> bool {
    matches!(route, "/tables/{table}/items" | "/tables/{table}/query" | "/tables/{table}/scan")
        && method == "GET"
        && (status.starts_with('2') || status == "404")
}

/// Reads one node's `/metrics` text.
pub fn parse(text: &str) -> Scrape {
    let mut s = Scrape::default();
    for line in text.lines() {
        let Some((name, labels, value)) = parse_sample(line) else { continue };
        let name = name.strip_prefix(PREFIX).unwrap_or(name);
        let route = labels.get("route").copied().unwrap_or("");
        let method = labels.get("method").copied().unwrap_or("");
        let status = labels.get("status").copied().unwrap_or("");
        match name {
            "http_requests_total" if is_write(route, method, status) => s.writes += value,
            "http_requests_total" if is_read(route, method, status) => s.reads += value,
            "http_request_duration_seconds_bucket"
                if is_write(route, method, status) || is_read(route, method, status) =>
            {
                if let Some(k) = labels.get("le").and_then(|le| bound_key(le)) {
                    *s.buckets.entry(k).or_default() += value;
                }
            }
            _ => {}
        }
    }
    s
}

/// `now - before`, or `now` if the counter was reset (the node restarted).
fn delta(now: f64, before: f64) -> f64 {
    if now >= before {
        now - before
    } else {
        now
    }
}

/// What happened between two scrapes of one node: writes, reads and bucket counts.
pub fn diff(now: &Scrape, before: &Scrape) -> Scrape {
    let reset = now.writes < before.writes || now.reads < before.reads;
    let pick = |n: f64, b: f64| if reset { n } else { delta(n, b) };
    Scrape {
        writes: pick(now.writes, before.writes),
        reads: pick(now.reads, before.reads),
        buckets: now
            .buckets
            .iter()
            .map(|(k, n)| (*k, pick(*n, before.buckets.get(k).copied().unwrap_or(0.0))))
            .collect(),
    }
}

/// Adds `other` into `sum`.
pub fn add(sum: &mut Scrape, other: &Scrape) {
    sum.writes += other.writes;
    sum.reads += other.reads;
    for (k, v) in &other.buckets {
        *sum.buckets.entry(*k).or_default() += v;
    }
}

/// The upper bound (ms) of the bucket that holds the 99th percentile of the requests
/// counted in `buckets` (cumulative counts), or `None` without requests.
pub fn p99_ms(buckets: &BTreeMap<u64, f64>) -> Option<f64> {
    let total = buckets.get(&u64::MAX).copied().or_else(|| buckets.values().last().copied())?;
    if total <= 0.0 {
        return None;
    }
    let target = total * 0.99;
    let mut last_finite = None;
    for (k, count) in buckets {
        if *k != u64::MAX {
            last_finite = Some(*k);
        }
        if *count >= target {
            // Above the largest finite bucket: say "at least" that bound.
            let k = if *k == u64::MAX { last_finite? } else { *k };
            return Some(k as f64 / 1000.0);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP http_requests_total Client requests
# TYPE http_requests_total counter
raft_nosql_http_requests_total{method="PUT",route="/tables/{table}/items",status="200"} 10
http_requests_total{method="PUT",route="/tables/{table}/items",status="307"} 4
http_requests_total{method="GET",route="/tables/{table}/items",status="200"} 7
http_requests_total{method="GET",route="/tables/{table}/items",status="404"} 1
http_requests_total{method="GET",route="/status",status="200"} 99
raft_nosql_http_request_duration_seconds_bucket{method="PUT",route="/tables/{table}/items",status="200",le="0.001"} 2
http_request_duration_seconds_bucket{method="PUT",route="/tables/{table}/items",status="200",le="0.01"} 9
http_request_duration_seconds_bucket{method="PUT",route="/tables/{table}/items",status="200",le="+Inf"} 10
http_request_duration_seconds_bucket{method="GET",route="/status",status="200",le="+Inf"} 99
"#;

    #[test]
    fn counts_completed_writes_and_reads_but_not_redirects_or_status_polls() {
        let s = parse(TEXT);
        assert_eq!(s.writes, 10.0);
        assert_eq!(s.reads, 8.0);
        assert_eq!(s.buckets.get(&u64::MAX), Some(&10.0));
    }

    #[test]
    fn p99_is_the_upper_bound_of_its_bucket() {
        let s = parse(TEXT);
        // 9 of 10 requests took at most 10 ms; the 99th percentile is in the +Inf
        // bucket, reported as "at least" the largest finite bound.
        assert_eq!(p99_ms(&s.buckets), Some(10.0));
        let mut b = BTreeMap::new();
        b.insert(1000, 99.0);
        b.insert(5000, 100.0);
        b.insert(u64::MAX, 100.0);
        assert_eq!(p99_ms(&b), Some(1.0));
        assert_eq!(p99_ms(&BTreeMap::new()), None);
    }

    #[test]
    fn a_restarted_node_counts_from_zero() {
        let before = Scrape { writes: 100.0, reads: 50.0, buckets: BTreeMap::new() };
        let now = Scrape { writes: 3.0, reads: 2.0, buckets: BTreeMap::new() };
        let d = diff(&now, &before);
        assert_eq!((d.writes, d.reads), (3.0, 2.0));
        let later = Scrape { writes: 110.0, reads: 55.0, buckets: BTreeMap::new() };
        let d = diff(&later, &before);
        assert_eq!((d.writes, d.reads), (10.0, 5.0));
    }
}
