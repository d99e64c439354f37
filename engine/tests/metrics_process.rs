//! `augur serve --metrics`: the Prometheus endpoint scraped over TCP as Prometheus
//! would, checked against the traffic sent and against INFO.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::process::{free_port, Augur};

/// A scrape: `name{labels}` → value, and the raw text for messages.
struct Scrape {
    values: HashMap<String, f64>,
    text: String,
}

impl Scrape {
    fn get(&self, series: &str) -> f64 {
        *self.values.get(series).unwrap_or_else(|| panic!("{series} not in /metrics:\n{}", self.text))
    }

    /// Whether a series whose name (before any label) is `name` is present.
    fn has(&self, name: &str) -> bool {
        self.values.keys().any(|k| k == name || k.starts_with(&format!("{name}{{")))
    }
}

/// One HTTP request; returns the status line and the body.
fn http_get(port: u16, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/plain\r\n\r\n").expect("send");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read reply (the server closes after one)");
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no header end in {reply:?}"));
    let status = head.lines().next().unwrap_or_default().to_string();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
    assert_eq!(length, body.len(), "Content-Length matches the body");
    (status, body.to_string())
}

fn scrape(port: u16) -> Scrape {
    let (status, text) = http_get(port, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let values = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("malformed line {l:?}"));
            (series.to_string(), value.parse::<f64>().unwrap_or_else(|_| panic!("bad value in {l:?}")))
        })
        .collect();
    Scrape { values, text }
}

async fn info(con: &mut redis::aio::MultiplexedConnection, section: &str) -> HashMap<String, String> {
    let text: String = redis::cmd("INFO").arg(section).query_async(con).await.expect("INFO");
    text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.trim().to_string())).collect()
}

async fn get(con: &mut redis::aio::MultiplexedConnection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query_async(con).await.expect("GET")
}

/// Scrapes until `ready` holds (the flusher and the WAL work in the background).
fn scrape_until(port: u16, what: &str, ready: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = scrape(port);
        if ready(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what} not reached:\n{}", s.text);
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_counts_traffic_and_agrees_with_info() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics_port = free_port();
    let addr = format!("127.0.0.1:{metrics_port}");
    // `always`: every acknowledged write was fsynced, so the fsync histogram has
    // observations as soon as the SETs return.
    let augur = Augur::start(dir.path(), &["--metrics", &addr, "--durability", "always"]);
    let mut con =
        redis::Client::open(augur.url()).expect("client").get_multiplexed_async_connection().await.expect("connect");

    let before = scrape(metrics_port);
    assert_eq!(before.get("augur_hits_total"), 0.0);
    assert_eq!(before.get("augur_misses_total"), 0.0);
    let info_series = before.values.iter().find(|(k, _)| k.starts_with("augur_info{"));
    let (labels, value) = info_series.unwrap_or_else(|| panic!("no augur_info:\n{}", before.text));
    assert_eq!(*value, 1.0);
    for label in ["store=\"rocksdb\"", "sync_policy=\"always\"", &format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))]
    {
        assert!(labels.contains(label), "{label} not in {labels}");
    }

    for i in 0..10 {
        let _: () =
            redis::cmd("SET").arg(format!("k{i}")).arg(format!("v{i}")).query_async(&mut con).await.expect("SET");
    }
    for i in 0..10 {
        assert_eq!(get(&mut con, &format!("k{i}")).await, Some(format!("v{i}")));
    }
    for i in 0..5 {
        assert_eq!(get(&mut con, &format!("absent{i}")).await, None);
    }

    // Flushed means in the store and out of the dirty set.
    let s = scrape_until(metrics_port, "10 entries flushed", |s| {
        s.get("augur_flushed_entries_total") == 10.0 && s.get("augur_dirty_keys") == 0.0
    });
    assert_eq!(s.get("augur_hits_total"), 10.0);
    assert_eq!(s.get("augur_misses_total"), 5.0);
    assert_eq!(s.get("augur_writes_total"), 10.0);
    assert_eq!(s.get("augur_store_reads_total"), 5.0);
    assert_eq!(s.get("augur_dirty_bytes"), 0.0);
    assert_eq!(s.get("augur_flush_lag_seconds"), 0.0, "nothing dirty, no lag");
    assert!(s.get("augur_wal_last_seq") >= 10.0);
    assert!(s.get("augur_connected_clients") >= 1.0);
    assert!(s.get("augur_connections_received_total") >= 1.0);
    for gauge in ["augur_wal_pending_bytes", "augur_inflight_reads", "augur_cached_keys", "augur_wal_bytes"] {
        assert!(s.has(gauge), "{gauge} missing:\n{}", s.text);
    }
    // Every latency histogram has buckets, a sum and a count that moved.
    for name in ["store_read", "store_write", "flush_delay", "wal_write", "wal_fsync"] {
        let metric = format!("augur_{name}_seconds");
        assert!(s.has(&format!("{metric}_bucket")), "{metric} buckets missing:\n{}", s.text);
        assert!(s.has(&format!("{metric}_sum")), "{metric}_sum missing");
        assert!(s.get(&format!("{metric}_count")) >= 1.0, "{metric} has no observation:\n{}", s.text);
        assert_eq!(s.get(&format!("{metric}_bucket{{le=\"+Inf\"}}")), s.get(&format!("{metric}_count")));
    }
    assert!(s.text.contains("# TYPE augur_hits_total counter"), "{}", s.text);
    assert!(s.text.contains("# HELP augur_hits_total Reads served from memory"), "{}", s.text);
    assert!(s.text.contains("# TYPE augur_store_read_seconds histogram"), "{}", s.text);

    // Deltas: 3 more hits (now from the tier) and 2 more misses.
    for i in 0..3 {
        assert!(get(&mut con, &format!("k{i}")).await.is_some());
    }
    for i in 10..12 {
        assert_eq!(get(&mut con, &format!("absent{i}")).await, None);
    }
    let after = scrape(metrics_port);
    assert_eq!(after.get("augur_hits_total") - s.get("augur_hits_total"), 3.0);
    assert_eq!(after.get("augur_misses_total") - s.get("augur_misses_total"), 2.0);

    // INFO agrees with /metrics (no traffic in between).
    let stats = info(&mut con, "stats").await;
    assert_eq!(stats["keyspace_hits"], after.get("augur_hits_total").to_string());
    assert_eq!(stats["keyspace_misses"], after.get("augur_misses_total").to_string());
    assert_eq!(stats["hits"], "13");
    assert_eq!(stats["misses"], "7");

    // INFO latencystats: Redis's format, and the same number of observations as the
    // Prometheus histogram (both record every one).
    let latency = info(&mut con, "latencystats").await;
    for name in ["store_read", "store_write", "flush_delay", "wal_write", "wal_fsync"] {
        let line = &latency[&format!("latency_percentiles_usec_{name}")];
        let parts: Vec<&str> = line.split(',').collect();
        assert_eq!(parts.len(), 3, "{line}");
        for (part, key) in parts.iter().zip(["p50=", "p99=", "p99.9="]) {
            let v: f64 = part.strip_prefix(key).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{line}"));
            assert!(v >= 0.0, "{line}");
        }
        let count: f64 = latency[&format!("latency_stats_{name}")]
            .split(',')
            .find_map(|kv| kv.strip_prefix("count="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no count for {name}"));
        let scraped = scrape(metrics_port);
        assert_eq!(count, scraped.get(&format!("augur_{name}_seconds_count")), "{name}: INFO and /metrics counts");
    }
    let bare: String = redis::cmd("INFO").query_async(&mut con).await.expect("INFO");
    assert!(!bare.contains("# Latencystats"), "latencystats is not a default section, as in Redis");
    let all: String = redis::cmd("INFO").arg("all").query_async(&mut con).await.expect("INFO all");
    assert!(all.contains("# Latencystats"), "INFO all includes latencystats");

    // Only /metrics is served.
    let (status, _) = http_get(metrics_port, "/");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}
