//! `augur serve`: flags, the TOML config file, start-up and graceful shutdown.
//!
//! Every setting can come from a flag or from the file given with `--config`; a
//! flag wins over the file, the file over the default. Keys in the file are the
//! flag names with `_` for `-` (e.g. `cache_size = "1GiB"`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use augur_adapters::{PostgresStore, RocksDbStore, Store, StoreSpec};
use augur_engine::server::{self, ServerConfig, Shutdown};
use augur_engine::sim::PrefetchKind;
use augur_engine::{parse_bytes, Engine, EngineConfig, EvictionKind, SyncPolicy, TierKind};
use clap::Args;
use serde::Deserialize;

/// Flags of `augur serve`. All optional so that the config file can supply them.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// TOML file with any of these settings (flags override it).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:6380].
    #[arg(long)]
    listen: Option<String>,
    /// Backing store: rocksdb:PATH or postgres:URL [default: rocksdb:./augur-data/rocksdb].
    #[arg(long)]
    store: Option<String>,
    /// Bytes of cached (clean) data, e.g. 256MiB [default: 256MiB].
    #[arg(long)]
    cache_size: Option<String>,
    /// WAL fsync policy: always, everysec or no [default: everysec].
    #[arg(long)]
    durability: Option<String>,
    /// WAL directory [default: ./augur-data/wal].
    #[arg(long)]
    wal_dir: Option<PathBuf>,
    /// Cache tier: auto (GPU when usable, else CPU), gpu or cpu [default: auto].
    #[arg(long)]
    tier: Option<String>,
    /// CPU tier eviction: quick, moka or lru [default: quick].
    #[arg(long)]
    eviction: Option<String>,
    /// Cache "absent" answers from the store [default: false].
    #[arg(long)]
    negative_cache: Option<bool>,
    /// Read prefetches on the predictor thread when the store can (RocksDB); false
    /// hands every prefetch read to the runtime, as PostgreSQL's are [default: true].
    #[arg(long)]
    prefetch_read_inline: Option<bool>,
    /// Bound on acknowledged-but-unflushed bytes [default: 256MiB].
    #[arg(long)]
    dirty_limit: Option<String>,
    /// Milliseconds a write waits at the dirty bound before failing [default: 1000].
    #[arg(long)]
    dirty_wait_ms: Option<u64>,
    /// Most entries per flush batch [default: 1024].
    #[arg(long)]
    flush_batch: Option<usize>,
    /// Longest a dirty entry waits before a flush, in ms [default: 50].
    #[arg(long)]
    flush_delay_ms: Option<u64>,
    /// Record an access-log event per key touched [default: true].
    #[arg(long)]
    access_log: Option<bool>,
    /// Also write every access-log event to FILE (.csv: CSV; else Augur's binary
    /// access-log format, replayable with `augur sim --format augur`).
    #[arg(long)]
    access_log_export: Option<PathBuf>,
    /// Require clients to AUTH with this password.
    #[arg(long)]
    requirepass: Option<String>,
    /// Maximum concurrent clients [default: 10000].
    #[arg(long)]
    max_clients: Option<usize>,
    /// With no password, refuse clients not on loopback, as Redis does [default: true].
    #[arg(long)]
    protected_mode: Option<bool>,
    /// Serve TLS only, with this PEM certificate chain (needs --tls-key).
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Largest accepted bulk string (key or value), e.g. 64MiB [default: 64MiB].
    #[arg(long)]
    max_bulk: Option<String>,
    /// PostgreSQL table [default: augur_kv].
    #[arg(long)]
    pg_table: Option<String>,
    /// fsync RocksDB's own WAL on each flush batch [default: true].
    #[arg(long)]
    rocksdb_sync: Option<bool>,
    /// Serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9180 [default: off].
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Prefetcher: none, obl, markov, mithril or ml (the learned predictor) [default: none].
    #[arg(long)]
    prefetch: Option<String>,
    /// Most store reads per second spent on prefetching [default: 5000].
    #[arg(long)]
    prefetch_budget: Option<u32>,
    /// Most of the store's read load prefetching may be, 0-1 (0.5: no more prefetch
    /// reads than demand reads; 1: no share limit) [default: 0.5].
    #[arg(long)]
    prefetch_store_share: Option<f64>,
    /// Where `--prefetch ml` keeps its model checkpoints [default: models/ beside the WAL directory].
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// Live A/B test of prefetching: keys split by hash into a control group (no
    /// prefetching) and a treatment group, each with half the cache; INFO ab shows
    /// per-group hit ratios and the test [default: false].
    #[arg(long)]
    ab: Option<bool>,
    /// Length of one A/B window in milliseconds [default: 10000].
    #[arg(long)]
    ab_window_ms: Option<u64>,
    #[command(flatten)]
    ml: super::MlTuningArgs,
    /// Most of one core `--prefetch ml`'s background training may use, 0-1 [default: 0.5].
    #[arg(long)]
    train_cpu_share: Option<f64>,
    /// `--prefetch ml` retrains after this many requests [default: 50000].
    #[arg(long)]
    retrain_every: Option<u64>,
    /// …or after this many seconds with at least 5,000 new requests [default: 600].
    #[arg(long)]
    retrain_every_s: Option<f64>,
    /// Scores per window of the KS drift test [default: 2000].
    #[arg(long)]
    drift_window: Option<usize>,
    /// The KS test's p-value below which the score windows differ [default: 0.0001].
    #[arg(long)]
    drift_p_value: Option<f64>,
    /// The least KS statistic D that counts as drift [default: 0.15].
    #[arg(long)]
    drift_min_statistic: Option<f64>,
}

/// The same settings as read from the TOML file.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    store: Option<String>,
    cache_size: Option<String>,
    durability: Option<String>,
    wal_dir: Option<PathBuf>,
    tier: Option<String>,
    eviction: Option<String>,
    negative_cache: Option<bool>,
    prefetch_read_inline: Option<bool>,
    dirty_limit: Option<String>,
    dirty_wait_ms: Option<u64>,
    flush_batch: Option<usize>,
    flush_delay_ms: Option<u64>,
    access_log: Option<bool>,
    access_log_export: Option<PathBuf>,
    requirepass: Option<String>,
    max_clients: Option<usize>,
    protected_mode: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    max_bulk: Option<String>,
    pg_table: Option<String>,
    rocksdb_sync: Option<bool>,
    metrics: Option<String>,
    prefetch: Option<String>,
    prefetch_budget: Option<u32>,
    prefetch_store_share: Option<f64>,
    model_dir: Option<PathBuf>,
    ab: Option<bool>,
    ab_window_ms: Option<u64>,
    prefetch_target_accuracy: Option<f64>,
    train_cpu_share: Option<f64>,
    retrain_every: Option<u64>,
    retrain_every_s: Option<f64>,
    drift_window: Option<usize>,
    drift_p_value: Option<f64>,
    drift_min_statistic: Option<f64>,
}

/// Settings after merging flags, file and defaults.
#[derive(Debug)]
struct Settings {
    listen: String,
    store: StoreSpec,
    engine: EngineConfig,
    server: ServerConfig,
    pg_table: String,
    rocksdb_sync: bool,
    metrics: Option<String>,
}

fn resolve(args: ServeArgs) -> anyhow::Result<Settings> {
    let file: FileConfig = match &args.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    macro_rules! pick {
        ($field:ident) => {
            args.$field.or(file.$field)
        };
    }
    let prefetch_target_accuracy = args.ml.prefetch_target_accuracy.or(file.prefetch_target_accuracy);
    let store: StoreSpec = pick!(store)
        .unwrap_or_else(|| "rocksdb:./augur-data/rocksdb".into())
        .parse()
        .map_err(|e| anyhow::anyhow!("--store: {e}"))?;
    let mut engine = EngineConfig::new(pick!(wal_dir).unwrap_or_else(|| PathBuf::from("./augur-data/wal")));
    if let Some(s) = pick!(cache_size) {
        engine.cache_bytes = parse_bytes(&s).map_err(|e| anyhow::anyhow!("--cache-size: {e}"))?;
    }
    if let Some(s) = pick!(durability) {
        engine.sync = s.parse::<SyncPolicy>().map_err(|e| anyhow::anyhow!("--durability: {e}"))?;
    }
    if let Some(s) = pick!(tier) {
        engine.tier = s.parse::<TierKind>().map_err(|e| anyhow::anyhow!("--tier: {e}"))?;
    }
    if let Some(s) = pick!(eviction) {
        engine.eviction = s.parse::<EvictionKind>().map_err(|e| anyhow::anyhow!("--eviction: {e}"))?;
    }
    if let Some(b) = pick!(negative_cache) {
        engine.negative_cache = b;
    }
    if let Some(b) = pick!(prefetch_read_inline) {
        engine.prefetch_read_inline = b;
    }
    if let Some(s) = pick!(dirty_limit) {
        engine.dirty_limit_bytes = parse_bytes(&s).map_err(|e| anyhow::anyhow!("--dirty-limit: {e}"))?;
    }
    if let Some(ms) = pick!(dirty_wait_ms) {
        engine.dirty_wait = Duration::from_millis(ms);
    }
    if let Some(n) = pick!(flush_batch) {
        if n == 0 {
            bail!("--flush-batch must be at least 1");
        }
        engine.flush_batch_entries = n;
    }
    if let Some(ms) = pick!(flush_delay_ms) {
        engine.flush_delay = Duration::from_millis(ms.max(1));
    }
    if let Some(on) = pick!(access_log) {
        engine.access_log = on;
    }
    engine.access_log_export = pick!(access_log_export);
    if let Some(s) = pick!(prefetch) {
        engine.prefetch = s.parse::<PrefetchKind>().map_err(|e| anyhow::anyhow!("--prefetch: {e}"))?;
    }
    if let Some(n) = pick!(prefetch_budget) {
        engine.prefetch_budget.store_reads_per_sec = n;
    }
    engine.ml = super::ml_tuning(prefetch_target_accuracy)?;
    if let Some(share) = pick!(train_cpu_share) {
        if !(share > 0.0 && share <= 1.0) {
            bail!("--train-cpu-share must be in (0, 1], got {share}");
        }
        engine.train_cpu_share = share;
    }
    let learning = &mut engine.learning;
    if let Some(n) = pick!(retrain_every) {
        learning.retrain_every = n.max(1);
    }
    if let Some(s) = pick!(retrain_every_s) {
        if s.is_nan() || s <= 0.0 {
            bail!("--retrain-every-s must be positive, got {s}");
        }
        learning.retrain_every_s = s;
    }
    if let Some(n) = pick!(drift_window) {
        if n < 10 {
            bail!("--drift-window must be at least 10 scores, got {n}");
        }
        learning.drift_window = n;
    }
    if let Some(p) = pick!(drift_p_value) {
        if !(p > 0.0 && p < 1.0) {
            bail!("--drift-p-value must be in (0, 1), got {p}");
        }
        learning.drift_p_value = p;
    }
    if let Some(d) = pick!(drift_min_statistic) {
        if !(0.0..=1.0).contains(&d) {
            bail!("--drift-min-statistic must be in [0, 1], got {d}");
        }
        learning.drift_min_statistic = d;
    }
    if pick!(ab).unwrap_or(false) {
        engine.ab_window = Some(Duration::from_millis(pick!(ab_window_ms).unwrap_or(10_000).max(10)));
    }
    if let Some(share) = pick!(prefetch_store_share) {
        if !(share > 0.0 && share <= 1.0) {
            bail!("--prefetch-store-share must be in (0, 1], got {share}");
        }
        engine.prefetch_budget.store_share = share;
    }
    if engine.prefetch != PrefetchKind::Ml && prefetch_target_accuracy.is_some() {
        // Only the learned predictor has a threshold to steer.
        tracing::warn!("--prefetch-target-accuracy has no effect without --prefetch ml");
    }
    if engine.prefetch != PrefetchKind::None && engine.eviction == EvictionKind::Moka {
        // TinyLFU admission refuses most prefetched keys (they have no request
        // history yet): in the simulator, Markov's accuracy fell from 0.68 under LRU
        // to 0.03 under moka on the same sessions trace. The default (quick) admits
        // them into its cold queue.
        tracing::warn!("--prefetch with --eviction moka: TinyLFU admission refuses most prefetched keys");
    }
    engine.model_dir = Some(pick!(model_dir).unwrap_or_else(|| {
        let wal = &engine.wal_dir;
        wal.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).join("models")
    }));
    let mut server = ServerConfig::default();
    if let Some(p) = pick!(requirepass) {
        server.requirepass = Some(p);
    }
    if let Some(n) = pick!(max_clients) {
        server.max_clients = n;
    }
    if let Some(on) = pick!(protected_mode) {
        server.protected_mode = on;
    }
    match (pick!(tls_cert), pick!(tls_key)) {
        (Some(cert), Some(key)) => server.tls = Some(server::tls_acceptor(&cert, &key)?),
        (None, None) => {}
        _ => bail!("--tls-cert and --tls-key go together"),
    }
    if let Some(s) = pick!(max_bulk) {
        server.max_bulk_len = parse_bytes(&s).map_err(|e| anyhow::anyhow!("--max-bulk: {e}"))? as usize;
    }
    Ok(Settings {
        listen: pick!(listen).unwrap_or_else(|| "127.0.0.1:6380".into()),
        store,
        engine,
        server,
        pg_table: pick!(pg_table).unwrap_or_else(|| "augur_kv".into()),
        rocksdb_sync: pick!(rocksdb_sync).unwrap_or(true),
        metrics: pick!(metrics),
    })
}

async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match &settings.store {
        StoreSpec::RocksDb(path) => Arc::new(RocksDbStore::builder(path.clone()).sync(settings.rocksdb_sync).open()?),
        StoreSpec::Postgres(url) => Arc::new(PostgresStore::builder(url).table(&settings.pg_table).open().await?),
    })
}

/// Runs the server until SIGTERM, SIGINT or SHUTDOWN, then flushes and exits.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    super::init_logging();
    restrict_new_files();
    let settings = resolve(args)?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(serve(settings))
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    // Before the engine opens: its latency histograms bind to the recorder installed now.
    let mut metrics = match &settings.metrics {
        Some(addr) => {
            let exporter = augur_engine::metrics::Exporter::install()?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("--metrics: cannot listen on {addr}"))?;
            Some((exporter, listener))
        }
        None => None,
    };
    let store = open_store(&settings).await.with_context(|| format!("cannot open store {}", settings.store))?;
    tracing::info!(store = %settings.store, durability = %store.durability(), "store open");
    let engine = Engine::open(settings.engine.clone(), store).await.context("cannot start the engine")?;
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    tracing::info!(
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        wal = %settings.engine.wal_dir.display(),
        durability = %settings.engine.sync,
        cache_bytes = settings.engine.cache_bytes,
        "augur is ready; try: redis-cli -p {} SET hello world",
        listener.local_addr().map(|a| a.port()).unwrap_or(6380)
    );
    let shutdown = Shutdown::new();
    spawn_signal_handler(shutdown.clone());
    if let Some((mut exporter, listener)) = metrics.take() {
        tracing::info!(
            "Prometheus metrics at http://{}/metrics",
            listener.local_addr().map(|a| a.to_string()).unwrap_or_default()
        );
        exporter.add_engine(engine.clone());
        tokio::spawn(exporter.serve(listener, shutdown.clone()));
    }
    server::run(listener, engine.clone(), settings.server, shutdown).await.context("server failed")?;
    tracing::info!("shutting down: flushing dirty data to the store");
    engine.shutdown().await.context("shutdown incomplete (acknowledged writes remain safe in the WAL)")?;
    tracing::info!("bye");
    Ok(())
}

/// Files Augur creates (WAL segments, RocksDB's files) hold acknowledged user data:
/// readable and writable by the owner only (0600; directories 0700).
fn restrict_new_files() {
    // SAFETY: umask only swaps the process's file-creation mask; it cannot fail and
    // touches no memory. It runs before any thread that creates files exists.
    unsafe {
        libc::umask(0o077);
    }
}

fn spawn_signal_handler(shutdown: Shutdown) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            tracing::error!("cannot install signal handlers; use SHUTDOWN to stop");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        shutdown.trigger();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_defaults_apply() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("augur.toml");
        std::fs::write(&path, "cache_size = \"1GiB\"\ndurability = \"always\"\nlisten = \"127.0.0.1:7000\"\n")
            .expect("write");
        let args = ServeArgs { config: Some(path.clone()), durability: Some("no".into()), ..Default::default() };
        let s = resolve(args).expect("resolves");
        assert_eq!(s.engine.cache_bytes, 1 << 30);
        assert_eq!(s.engine.sync, SyncPolicy::No, "flag wins over file");
        assert_eq!(s.listen, "127.0.0.1:7000");
        assert_eq!(s.store, StoreSpec::RocksDb("./augur-data/rocksdb".into()));
        assert_eq!(s.engine.ml, augur_engine::prefetch::MlTuning::default(), "default accuracy target");
        std::fs::write(&path, "prefetch_target_accuracy = 0.4\n").expect("write");
        let s = resolve(ServeArgs { config: Some(path), ..Default::default() }).expect("resolves");
        assert_eq!(s.engine.ml.target_accuracy, 0.4, "from the file");
    }

    #[test]
    fn prefetching_keeps_the_default_eviction_unless_another_is_asked_for() {
        let args = ServeArgs { prefetch: Some("markov".into()), ..Default::default() };
        assert_eq!(resolve(args).expect("resolves").engine.eviction, EvictionKind::Quick);
        let args = ServeArgs { prefetch: Some("ml".into()), eviction: Some("lru".into()), ..Default::default() };
        assert_eq!(resolve(args).expect("resolves").engine.eviction, EvictionKind::Lru, "explicit choice kept");
        let args = ServeArgs { prefetch: Some("ml".into()), eviction: Some("moka".into()), ..Default::default() };
        assert_eq!(resolve(args).expect("resolves").engine.eviction, EvictionKind::Moka, "explicit choice kept");
        let args = ServeArgs { prefetch: Some("ml".into()), eviction: Some("quick".into()), ..Default::default() };
        assert_eq!(resolve(args).expect("resolves").engine.eviction, EvictionKind::Quick, "explicit choice kept");
        assert_eq!(resolve(ServeArgs::default()).expect("resolves").engine.eviction, EvictionKind::Quick);
    }

    #[test]
    fn bad_settings_are_reported() {
        let bad = |args: ServeArgs| resolve(args).expect_err("must fail").to_string();
        assert!(bad(ServeArgs { durability: Some("maybe".into()), ..Default::default() }).contains("--durability"));
        assert!(bad(ServeArgs { store: Some("mysql:x".into()), ..Default::default() }).contains("--store"));
        for target in [0.0, 1.0, 1.5] {
            let args = ServeArgs {
                ml: super::super::MlTuningArgs { prefetch_target_accuracy: Some(target) },
                ..Default::default()
            };
            assert!(bad(args).contains("--prefetch-target-accuracy"), "{target} accepted");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "no_such_key = 1\n").expect("write");
        assert!(bad(ServeArgs { config: Some(path), ..Default::default() }).contains("invalid config file"));
    }
}
