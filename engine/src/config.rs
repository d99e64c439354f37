//! Engine settings. `augur serve` fills them from flags and the TOML file; tests and
//! the simulator build them directly.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// When the write-ahead log is fsynced, as Redis's `appendfsync`.
///
/// In every mode a write is in the OS (written, not necessarily synced) before it is
/// acknowledged, so a crash of the Augur process alone never loses an acknowledged
/// write. The modes differ on a crash of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SyncPolicy {
    /// fsync before acknowledging; writes arriving during one fsync share the next
    /// (group commit). A machine crash loses nothing acknowledged.
    Always,
    /// fsync once a second in the background. A machine crash loses at most about
    /// the last second of acknowledged writes.
    #[default]
    EverySec,
    /// Never fsync explicitly (the OS writes back when it likes, typically within 30
    /// s). A machine crash may lose that much.
    No,
}

impl FromStr for SyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Ok(Self::Always),
            "everysec" => Ok(Self::EverySec),
            "no" => Ok(Self::No),
            other => Err(format!("unknown durability {other:?}: expected always, everysec or no")),
        }
    }
}

impl fmt::Display for SyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Always => "always",
            Self::EverySec => "everysec",
            Self::No => "no",
        })
    }
}

/// Which eviction mechanism the CPU tier uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EvictionKind {
    /// moka: TinyLFU admission with LRU eviction, lock-free reads.
    Moka,
    /// Plain LRU behind the [`EvictionPolicy`](crate::tier::EvictionPolicy) trait,
    /// the same code the simulator replays.
    Lru,
    /// quick_cache: a Clock-PRO / S3-FIFO-like policy, sharded, with the cheapest
    /// hits (see `tier/quick_tier.rs`). The default: on key-value traces it kept
    /// more hits than moka and its hits cost a fraction of moka's (docs/RESULTS.md).
    #[default]
    Quick,
}

impl FromStr for EvictionKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "moka" | "tinylfu" => Ok(Self::Moka),
            "lru" => Ok(Self::Lru),
            "quick" | "s3fifo" => Ok(Self::Quick),
            other => Err(format!("unknown eviction {other:?}: expected moka, quick or lru")),
        }
    }
}

/// Which tier holds clean and prefetched entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TierKind {
    /// The GPU tier when a CUDA GPU is usable, else the CPU tier (one log line says
    /// why). The default.
    #[default]
    Auto,
    /// The GPU tier; start-up fails without a usable GPU.
    Gpu,
    /// The CPU tier (see [`EvictionKind`]).
    Cpu,
}

impl FromStr for TierKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "gpu" => Ok(Self::Gpu),
            "cpu" => Ok(Self::Cpu),
            other => Err(format!("unknown tier {other:?}: expected auto, gpu or cpu")),
        }
    }
}

/// Everything the engine needs to know; see each field for its default.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Bytes of clean cached data (keys + values + per-entry overhead). Default 256 MiB.
    pub cache_bytes: u64,
    /// GPU or CPU tier. Default auto.
    pub tier: TierKind,
    /// CPU tier mechanism. Default moka.
    pub eviction: EvictionKind,
    /// Cache "key absent in the store" answers. Off by default: with it on, a key
    /// written to the store behind Augur's back stays invisible until evicted.
    pub negative_cache: bool,
    /// Read prefetches on the predictor thread when the store can
    /// (`Store::get_many_blocking`), saving the hand-offs to a runtime worker and
    /// the blocking pool. Default true.
    pub prefetch_read_inline: bool,
    /// Directory of the write-ahead log.
    pub wal_dir: PathBuf,
    /// fsync policy for the WAL. Default everysec.
    pub sync: SyncPolicy,
    /// A WAL segment is closed and a new one started past this size. Default 64 MiB.
    pub wal_segment_bytes: u64,
    /// Most entries the flusher writes to the store in one batch. Default 1024.
    pub flush_batch_entries: usize,
    /// Most value bytes in one flush batch. Default 8 MiB.
    pub flush_batch_bytes: u64,
    /// Longest a dirty entry waits for a batch to fill before it is flushed anyway.
    /// Default 50 ms.
    pub flush_delay: Duration,
    /// Bound on dirty (acknowledged, not yet in the store) bytes. Default 256 MiB.
    pub dirty_limit_bytes: u64,
    /// How long a write waits for room under the dirty bound before failing.
    /// Default 1 s.
    pub dirty_wait: Duration,
    /// How long shutdown (and [`Engine::flush_all`](crate::Engine::flush_all)) keeps
    /// retrying a failing store before giving up; what is left stays in the WAL.
    /// Default 30 s.
    pub shutdown_flush_timeout: Duration,
    /// Record an access-log event per key touched. Default on.
    pub access_log: bool,
    /// Also write every access-log event to this file (`.csv` → CSV, else Augur's
    /// binary access-log format, which `augur sim --format augur` replays).
    pub access_log_export: Option<PathBuf>,
    /// Which prefetcher pulls cold keys in ahead of demand. Default none.
    pub prefetch: crate::prefetch::PrefetchKind,
    /// How much store traffic and queueing prefetching may use.
    pub prefetch_budget: crate::prefetch::service::PrefetchBudget,
    /// Where the learned prefetcher checkpoints its model versions (`None`: in
    /// memory only, retrained after a restart).
    pub model_dir: Option<PathBuf>,
    /// Run a live A/B test of prefetching with windows of this length: keys split
    /// by hash into a control group (no prefetching) and a treatment group, each
    /// with half the cache (see `crate::live_ab`). Default off.
    pub ab_window: Option<Duration>,
    /// Most of one core the learned prefetcher's background training may use,
    /// in (0, 1]. Default 0.5.
    pub train_cpu_share: f64,
    /// When the learned prefetcher retrains and what counts as drift.
    pub learning: LearningSchedule,
    /// The learned prefetcher's operator settings (its accuracy target), the
    /// same type `augur sim` takes.
    pub ml: crate::prefetch::MlTuning,
}

/// When `--prefetch ml` retrains (by requests, by time, on drift) and the drift
/// test's thresholds; see `predict::MlConfig` for what each means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LearningSchedule {
    /// Requests between retrainings. Default 50,000.
    pub retrain_every: u64,
    /// Seconds between retrainings when traffic is light. Default 600.
    pub retrain_every_s: f64,
    /// Scores per window of the KS drift test. Default 2,000.
    pub drift_window: usize,
    /// p-value below which the windows differ. Default 1e-4.
    pub drift_p_value: f64,
    /// Least KS statistic that counts as drift. Default 0.15.
    pub drift_min_statistic: f64,
}

impl Default for LearningSchedule {
    fn default() -> Self {
        let ml = crate::predict::MlConfig::default();
        Self {
            retrain_every: ml.retrain_every,
            retrain_every_s: 600.0,
            drift_window: ml.drift_window,
            drift_p_value: ml.drift_p_value,
            drift_min_statistic: ml.drift_min_statistic,
        }
    }
}

impl EngineConfig {
    /// Defaults, with the WAL in `wal_dir`.
    pub fn new(wal_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_bytes: 256 << 20,
            tier: TierKind::default(),
            eviction: EvictionKind::default(),
            negative_cache: false,
            prefetch_read_inline: true,
            wal_dir: wal_dir.into(),
            sync: SyncPolicy::default(),
            wal_segment_bytes: 64 << 20,
            flush_batch_entries: 1024,
            flush_batch_bytes: 8 << 20,
            flush_delay: Duration::from_millis(50),
            dirty_limit_bytes: 256 << 20,
            dirty_wait: Duration::from_secs(1),
            shutdown_flush_timeout: Duration::from_secs(30),
            access_log: true,
            access_log_export: None,
            prefetch: crate::prefetch::PrefetchKind::None,
            prefetch_budget: Default::default(),
            model_dir: None,
            ab_window: None,
            train_cpu_share: 0.5,
            learning: LearningSchedule::default(),
            ml: Default::default(),
        }
    }
}

/// Parses `64MiB`, `1gb`, `512k`, `1000` (bytes). Binary units either way: `MB` and
/// `MiB` both mean 2^20, as in Redis's config.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().map_err(|_| format!("invalid size {s:?}: expected e.g. 64MiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => return Err(format!("invalid size unit {other:?} in {s:?}")),
    };
    let bytes = num * mult as f64;
    if !(0.0..=u64::MAX as f64).contains(&bytes) {
        return Err(format!("size {s:?} out of range"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("64mb"), Ok(64 << 20));
        assert_eq!(parse_bytes("1.5k"), Ok(1536));
        assert_eq!(parse_bytes("2G"), Ok(2 << 30));
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("").is_err());
    }

    #[test]
    fn sync_policy_round_trips() {
        for p in [SyncPolicy::Always, SyncPolicy::EverySec, SyncPolicy::No] {
            assert_eq!(p.to_string().parse::<SyncPolicy>(), Ok(p));
        }
        assert!("sometimes".parse::<SyncPolicy>().is_err());
    }
}
