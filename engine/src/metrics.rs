//! Metrics: latency histograms the engine records, and the Prometheus endpoint of
//! `augur serve --metrics ADDR`.
//!
//! # What is recorded where
//! - Latencies ([`Latency`]): store reads (`core.rs`), store writes and the flush
//!   delay (`flusher.rs`), WAL writes and fsyncs (`wal/`). Each observation goes to
//!   an HDR histogram (cumulative since start; INFO `latencystats` prints its
//!   p50/p99/p99.9 in Redis's format) and to the `metrics` facade as a histogram
//!   (`augur_NAME_seconds`, Prometheus buckets, so Grafana can take quantiles over
//!   any window and across instances).
//! - Engine counters and gauges ([`EngineStats`]): not pushed on the request path at
//!   all. They are atomics the engine keeps anyway; at scrape time [`Exporter`]
//!   takes one [`EngineStats`] snapshot and publishes every field that
//!   [`EngineStats::export`] lists (`augur_NAME_total` for counters, `augur_NAME`
//!   for gauges). A new field appears in /metrics once it is listed there.
//! - Connections (`server/`): counted through the facade when they open and close.
//!
//! # Cost on the request path
//! A GET that hits memory records nothing here. A [`Latency`] observation (store
//! calls, WAL writes: none of them per GET hit) takes one uncontended mutex: the
//! histogram is striped, each thread sticking to one stripe, so concurrent threads
//! do not share a lock; the facade's histogram appends to a lock-free bucket that the
//! exporter drains at scrape and upkeep time.
//!
//! # Why no HTTP library
//! `metrics-exporter-prometheus` is built without its `http-listener` feature, which
//! would add hyper, hyper-util and h2 to the build (the slowest part of a fresh build
//! on two cores after RocksDB). Serving one fixed path to a scraper needs none of
//! HTTP's generality: [`Exporter::serve`] reads a request head, answers
//! `GET /metrics` with [`PrometheusHandle::render`]'s text, and closes.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::Duration;

use hdrhistogram::Histogram;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::server::Shutdown;
use crate::stats::{EngineStats, StatKind};

/// Longest latency the histograms tell apart (one hour, in microseconds); longer
/// ones are recorded as this.
const MAX_MICROS: u64 = 3_600_000_000;

/// Prometheus bucket bounds for every latency histogram, in seconds: 10 µs (a store
/// read from RocksDB's block cache) to 10 s (a stalled fsync).
const BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The stripe each thread records into, picked once per thread round-robin.
fn thread_stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    STRIPE.with(|s| *s)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A histogram is plain counts; a panic mid-record leaves nothing inconsistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One latency figure: an HDR histogram (microseconds, 2 significant digits, so
/// percentiles are within 1%) striped by thread, mirrored to the `metrics` facade.
pub struct Latency {
    name: &'static str,
    stripes: Box<[Mutex<Histogram<u64>>]>,
    facade: metrics::Histogram,
}

impl std::fmt::Debug for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latency").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Latency {
    /// A histogram named `name` (INFO `latency_percentiles_usec_NAME`, Prometheus
    /// `augur_NAME_seconds`). The facade handle is taken now: a recorder installed
    /// later (see [`Exporter::install`]) does not see this one.
    pub fn new(name: &'static str, help: &'static str) -> Latency {
        let stripes = std::thread::available_parallelism().map_or(4, |n| n.get()).clamp(1, 16);
        let metric = format!("augur_{name}_seconds");
        metrics::describe_histogram!(metric.clone(), metrics::Unit::Seconds, help);
        Latency {
            name,
            stripes: (0..stripes).map(|_| Mutex::new(empty_histogram())).collect(),
            facade: metrics::histogram!(metric),
        }
    }

    /// Records one observation.
    #[inline]
    pub fn record(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).min(MAX_MICROS);
        let stripe = &self.stripes[thread_stripe() % self.stripes.len()];
        lock(stripe).saturating_record(micros);
        self.facade.record(elapsed.as_secs_f64());
    }

    /// The name given to [`Latency::new`].
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Percentiles over every observation since start.
    pub fn snapshot(&self) -> LatencyStats {
        let mut all = lock(&self.stripes[0]).clone();
        for stripe in &self.stripes[1..] {
            // Same bounds everywhere, so adding cannot fail.
            let _ = all.add(&*lock(stripe));
        }
        let q = |q: f64| if all.is_empty() { 0 } else { all.value_at_quantile(q) };
        LatencyStats {
            name: self.name,
            count: all.len(),
            p50_us: q(0.5),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: all.max(),
            mean_us: if all.is_empty() { 0.0 } else { all.mean() },
        }
    }
}

fn empty_histogram() -> Histogram<u64> {
    // Constant bounds that hdrhistogram accepts (low >= 1, high >= 2 * low, 2 digits).
    Histogram::new_with_bounds(1, MAX_MICROS, 2).unwrap_or_else(|e| unreachable!("histogram bounds: {e}"))
}

/// A [`Latency`]'s percentiles, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyStats {
    /// The histogram's name.
    pub name: &'static str,
    /// Observations.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest observation.
    pub max_us: u64,
    /// Mean.
    pub mean_us: f64,
}

/// The engine's latency histograms other than the WAL's (which the WAL owns).
#[derive(Debug)]
pub(crate) struct Latencies {
    /// One `Store::get_many` call (a miss, or a batch of misses).
    pub(crate) store_read: Latency,
    /// One `Store::write_batch` call of the flusher.
    pub(crate) store_write: Latency,
    /// Per flush round: how long its oldest entry waited, from acknowledgement to
    /// being in the store.
    pub(crate) flush_delay: Latency,
    /// Per prefetch batch: from the predictor thread taking the reads that
    /// released it to the values being in memory. A prefetch is late when this
    /// exceeds the gap until the client's own read, so it is the lead the
    /// predictor must aim beyond.
    pub(crate) prefetch_lead: Latency,
}

impl Latencies {
    pub(crate) fn new() -> Latencies {
        Latencies {
            store_read: Latency::new("store_read", "Store read calls (misses), seconds."),
            store_write: Latency::new("store_write", "Store batch writes by the flusher, seconds."),
            flush_delay: Latency::new(
                "flush_delay",
                "Per flush round, seconds its oldest entry waited from acknowledgement until in the store.",
            ),
            prefetch_lead: Latency::new(
                "prefetch_lead",
                "Per prefetch batch, seconds from the predictor taking the reads that released it until in memory.",
            ),
        }
    }
}

impl crate::core::Core {
    /// Every latency histogram, engine and WAL, in INFO order.
    pub(crate) fn latency_stats(&self) -> Vec<LatencyStats> {
        let l = &self.latency;
        [
            &l.store_read,
            &l.store_write,
            &l.flush_delay,
            &l.prefetch_lead,
            &self.wal.write_latency,
            &self.wal.fsync_latency,
        ]
        .iter()
        .map(|h| h.snapshot())
        .collect()
    }
}

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Another `metrics` recorder is already installed in this process.
    #[error("a metrics recorder is already installed")]
    AlreadyInstalled,
    /// The exporter's configuration was refused.
    #[error("metrics exporter setup: {0}")]
    Setup(String),
}

/// A callback run before each scrape to publish figures kept elsewhere.
type Source = Box<dyn Fn() + Send + Sync>;

/// The Prometheus exporter: the process's `metrics` recorder, the sources polled at
/// scrape time, and the HTTP endpoint.
pub struct Exporter {
    handle: PrometheusHandle,
    sources: Vec<Source>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter").field("sources", &self.sources.len()).finish_non_exhaustive()
    }
}

impl Exporter {
    /// Installs the Prometheus recorder as the process's global `metrics` recorder.
    /// Call it before opening the engine: [`Latency`] handles taken earlier record
    /// into the no-op recorder.
    pub fn install() -> Result<Exporter, MetricsError> {
        let recorder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .map_err(|e| MetricsError::Setup(e.to_string()))?
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).map_err(|_| MetricsError::AlreadyInstalled)?;
        metrics::describe_gauge!("augur_connected_clients", "Clients connected now.");
        metrics::describe_counter!("augur_connections_received_total", "Client connections accepted.");
        metrics::describe_counter!(
            "augur_rejected_connections_total",
            "Connections refused (max clients reached, or protected mode)."
        );
        Ok(Exporter { handle, sources: Vec::new() })
    }

    /// Adds a callback that publishes figures through the facade before each scrape.
    pub fn add_source(&mut self, source: impl Fn() + Send + Sync + 'static) {
        self.sources.push(Box::new(source));
    }

    /// Publishes `engine`'s [`EngineStats`] before each scrape.
    pub fn add_engine(&mut self, engine: crate::Engine) {
        self.add_source(move || publish_engine(&engine.stats()));
    }

    /// The Prometheus text for a scrape now.
    pub fn render(&self) -> String {
        for source in &self.sources {
            source();
        }
        self.handle.render()
    }

    /// Serves `GET /metrics` on `listener` until `shutdown`; also drains the facade's
    /// histograms every few seconds so they stay bounded between scrapes.
    pub async fn serve(self, listener: TcpListener, shutdown: Shutdown) {
        /// Scrapes served at once; more are closed unanswered.
        const MAX_CONCURRENT: usize = 16;
        let this = Arc::new(self);
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT));
        let mut upkeep = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                _ = upkeep.tick() => this.handle.run_upkeep(),
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else { continue };
                        let this = Arc::clone(&this);
                        tokio::spawn(async move {
                            let _permit = permit;
                            if let Err(error) = this.answer(stream).await {
                                tracing::debug!(%error, "metrics request failed");
                            }
                        });
                    }
                    Err(error) => {
                        tracing::warn!(%error, "metrics accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
    }

    /// Reads one request head and answers it; the connection then closes.
    async fn answer(&self, mut stream: TcpStream) -> io::Result<()> {
        let head = tokio::time::timeout(Duration::from_secs(5), read_head(&mut stream))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "request head not received in 5 s"))??;
        let (status, body, head_only) = match route(&head) {
            Route::Metrics { head_only } => ("200 OK", self.render(), head_only),
            Route::NotFound => ("404 Not Found", "only /metrics is served here\n".to_string(), false),
            Route::BadMethod => ("405 Method Not Allowed", "GET /metrics\n".to_string(), false),
            Route::Bad => ("400 Bad Request", "malformed request\n".to_string(), false),
        };
        let mut reply = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        if !head_only {
            reply.extend_from_slice(body.as_bytes());
        }
        stream.write_all(&reply).await?;
        stream.shutdown().await
    }
}

/// Reads until the blank line that ends an HTTP request head (at most 8 KiB).
async fn read_head(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    const MAX_HEAD: usize = 8 * 1024;
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() >= MAX_HEAD {
            break;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(head)
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics { head_only: bool },
    NotFound,
    BadMethod,
    Bad,
}

/// What a request head asks for: only its request line matters.
fn route(head: &[u8]) -> Route {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Route::Bad;
    };
    if !version.starts_with("HTTP/") {
        return Route::Bad;
    }
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => Route::Metrics { head_only: method == "HEAD" },
        ("GET" | "HEAD", _) => Route::NotFound,
        _ => Route::BadMethod,
    }
}

/// Per-model-version prefetch counters, labelled `version` (accuracy and
/// coverage are ratios of these, left to the query).
const VERSION_FIGURES: [(&str, &str); 5] = [
    ("issued", "Keys read from the store for prefetching while this model version was active."),
    ("used", "Prefetched entries read while this model version was active."),
    ("joined", "Prefetch reads a client's read joined in flight while this model version was active."),
    ("evicted_unused", "Prefetched entries evicted unread while this model version was active."),
    ("late", "Prefetch reads that landed after a client had the key while this model version was active."),
];

/// Publishes one [`EngineStats`] snapshot through the facade (see the module docs
/// for the names).
pub fn publish_engine(stats: &EngineStats) {
    static DESCRIBED: Once = Once::new();
    let fields = stats.export();
    DESCRIBED.call_once(|| {
        for f in &fields {
            match f.kind {
                StatKind::Counter => metrics::describe_counter!(format!("augur_{}_total", f.name), f.help),
                StatKind::Gauge => metrics::describe_gauge!(format!("augur_{}", f.name), f.help),
            }
        }
        metrics::describe_gauge!("augur_info", "Always 1; the labels say what this server runs.");
        for (name, help) in VERSION_FIGURES {
            metrics::describe_counter!(format!("augur_prefetch_model_{name}_total"), help);
        }
        metrics::describe_counter!("augur_ab_hits_total", "Live A/B test: reads served from memory, by group.");
        metrics::describe_counter!("augur_ab_misses_total", "Live A/B test: reads that asked the store, by group.");
        metrics::describe_gauge!(
            "augur_ab_improvement",
            "Live A/B test: relative hit-ratio improvement over the windows."
        );
        metrics::describe_gauge!("augur_ab_paired_p_value", "Live A/B test: the paired t-test's p-value.");
    });
    if let Some(ab) = &stats.ab {
        for (g, group) in ["control", "treatment"].into_iter().enumerate() {
            metrics::counter!("augur_ab_hits_total", "group" => group).absolute(ab.hits[g]);
            metrics::counter!("augur_ab_misses_total", "group" => group).absolute(ab.misses[g]);
        }
        if let Some(s) = &ab.summary {
            metrics::gauge!("augur_ab_improvement").set(s.improvement);
            metrics::gauge!("augur_ab_paired_p_value").set(s.paired_p_value.unwrap_or(f64::NAN));
        }
    }
    for v in &stats.prefetch_versions {
        let version = v.version.to_string();
        for (name, value) in [
            ("issued", v.issued),
            ("used", v.used),
            ("joined", v.joined),
            ("evicted_unused", v.evicted_unused),
            ("late", v.late),
        ] {
            metrics::counter!(format!("augur_prefetch_model_{name}_total"), "version" => version.clone())
                .absolute(value);
        }
    }
    for f in &fields {
        match f.kind {
            // Counters are exported exactly: the engine's own counts are u64.
            StatKind::Counter => metrics::counter!(format!("augur_{}_total", f.name)).absolute(f.value as u64),
            StatKind::Gauge => metrics::gauge!(format!("augur_{}", f.name)).set(f.value),
        }
    }
    metrics::gauge!(
        "augur_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "store" => stats.store.clone(),
        "store_durability" => stats.store_durability.clone(),
        "sync_policy" => stats.sync_policy.clone(),
        "eviction" => stats.eviction.clone(),
    )
    .set(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_only_get_metrics() {
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Route::Metrics { head_only: false });
        assert_eq!(route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Route::Metrics { head_only: false });
        assert_eq!(route(b"HEAD /metrics HTTP/1.1\r\n\r\n"), Route::Metrics { head_only: true });
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), Route::BadMethod);
        assert_eq!(route(b"\xff\xfe garbage"), Route::Bad);
        assert_eq!(route(b""), Route::Bad);
    }

    #[test]
    fn latency_percentiles_merge_every_thread() {
        let latency = Arc::new(Latency::new("test_merge", "test"));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let latency = Arc::clone(&latency);
                std::thread::spawn(move || {
                    for i in 0..250u64 {
                        latency.record(Duration::from_micros(t * 250 + i + 1));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let s = latency.snapshot();
        assert_eq!(s.count, 1000);
        // 1..=1000 µs: within the histogram's 1% precision.
        assert!((495..=505).contains(&s.p50_us), "{s:?}");
        assert!((985..=1000).contains(&s.p99_us), "{s:?}");
        assert!((995..=1010).contains(&s.max_us), "{s:?}");
        assert_eq!(Latency::new("test_empty", "test").snapshot().p99_us, 0);
    }

    #[test]
    fn overlong_latencies_are_clamped_not_lost() {
        let latency = Latency::new("test_clamp", "test");
        latency.record(Duration::from_secs(10 * 3600));
        latency.record(Duration::ZERO);
        let s = latency.snapshot();
        assert_eq!(s.count, 2);
        assert!(s.max_us >= MAX_MICROS * 99 / 100, "{s:?}");
    }
}
