//! `INFO [section …]`: server, client, memory, persistence, stats and keyspace
//! figures in Redis's `# Section` / `field:value` text.
//!
//! Monitoring built for Redis (exporters, dashboards, redis-cli `--stat`) reads
//! these by field name, so the Redis fields are filled with their nearest Augur
//! meaning (`used_memory` is cached plus dirty bytes, `aof_enabled:1` is the WAL,
//! `keyspace_hits` are cache hits), and every engine counter is added under its own
//! name in the section it belongs to.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::{Applied, Ctx, Parse};
use crate::server::frame::Frame;
use crate::server::Shared;
use crate::stats::EngineStats;

/// The Redis version Augur presents itself as: the release whose commands and reply
/// shapes it follows.
pub(crate) const REDIS_VERSION: &str = "7.2.0";

const SECTIONS: &[&str] =
    &["server", "clients", "memory", "persistence", "stats", "prefetch", "ab", "latencystats", "keyspace"];

/// Left out of a bare `INFO` (and `INFO default`), as in Redis; `all` includes them.
const NOT_DEFAULT: &[&str] = &["latencystats"];

#[derive(Debug)]
pub(crate) struct Info {
    sections: Vec<Bytes>,
}

impl Info {
    pub(crate) fn parse(parse: &mut Parse) -> Info {
        Info { sections: parse.rest() }
    }

    pub(crate) fn apply(self, ctx: &mut Ctx<'_>) -> Applied {
        let asked =
            |words: &[&str]| self.sections.iter().any(|s| words.iter().any(|w| s.eq_ignore_ascii_case(w.as_bytes())));
        let all = asked(&["all", "everything"]);
        let default = self.sections.is_empty() || asked(&["default"]);
        let wanted: Vec<&str> = SECTIONS
            .iter()
            .copied()
            .filter(|name| all || (default && !NOT_DEFAULT.contains(name)) || asked(std::slice::from_ref(name)))
            .collect();
        Applied::reply(Frame::text(render(ctx.shared, &wanted)))
    }
}

/// The INFO text for the named sections, in Redis's layout: a blank line between
/// sections, CRLF line ends.
pub(crate) fn render(shared: &Shared, sections: &[&str]) -> String {
    // One snapshot serves every section so their figures agree with each other.
    let stats = if sections.iter().any(|s| ["memory", "persistence", "stats", "prefetch", "ab", "keyspace"].contains(s))
    {
        shared.engine.stats()
    } else {
        EngineStats::default()
    };
    let mut out = String::new();
    for section in sections {
        let fields: Vec<(String, String)> = match *section {
            "latencystats" => latencystats(shared),
            "prefetch" => prefetch_versions(&stats),
            "ab" => live_ab(&stats),
            other => {
                let fields = match other {
                    "server" => server(shared),
                    "clients" => clients(shared),
                    "memory" => memory(&stats),
                    "persistence" => persistence(&stats),
                    "stats" => counters(shared, &stats),
                    "keyspace" => {
                        vec![("db0", format!("keys={},expires=0,avg_ttl=0", shared.engine.memory_keys()))]
                    }
                    _ => vec![],
                };
                fields.into_iter().map(|(name, value)| (name.to_string(), value)).collect()
            }
        };
        // Sections that only exist with a feature on (`ab`, `prefetch`) are left
        // out entirely when it is off.
        if fields.is_empty() && ["ab", "prefetch"].contains(section) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let mut title = section.to_string();
        if let Some(first) = title.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        out.push_str("# ");
        out.push_str(&title);
        out.push_str("\r\n");
        for (name, value) in fields {
            out.push_str(&name);
            out.push(':');
            // A value with a line break would end the field early and forge another.
            out.push_str(&value.replace(['\r', '\n'], " "));
            out.push_str("\r\n");
        }
    }
    out
}

type Fields = Vec<(&'static str, String)>;

/// A ratio with four decimals, or `-` when nothing was behind it (0/0).
fn ratio_or_dash(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.4}")
    } else {
        "-".to_string()
    }
}

/// The live A/B test (`augur serve --ab`): per-group counters since start and
/// the test over the closed windows, with the names `augur ab --json` uses.
fn live_ab(s: &EngineStats) -> Vec<(String, String)> {
    let Some(ab) = &s.ab else { return Vec::new() };
    let ratio = |g: usize| {
        let reads = ab.hits[g] + ab.misses[g];
        if reads == 0 {
            f64::NAN
        } else {
            ab.hits[g] as f64 / reads as f64
        }
    };
    let opt = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |v| format!("{v:.6}"));
    // p-values span many orders of magnitude: scientific notation keeps them.
    let p = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |v| format!("{v:.3e}"));
    let mut fields = vec![
        ("ab_window_seconds", format!("{}", ab.window_s)),
        ("ab_control_hits", ab.hits[0].to_string()),
        ("ab_control_misses", ab.misses[0].to_string()),
        ("ab_control_hit_ratio", format!("{:.4}", ratio(0))),
        ("ab_treatment_hits", ab.hits[1].to_string()),
        ("ab_treatment_misses", ab.misses[1].to_string()),
        ("ab_treatment_hit_ratio", format!("{:.4}", ratio(1))),
        ("ab_control_candidates_dropped", ab.control_candidates_dropped.to_string()),
        ("ab_windows_skipped", ab.windows_skipped.to_string()),
    ];
    let summary = ab.summary.as_ref();
    fields.extend([
        ("ab_windows", ab.windows.to_string()),
        ("ab_window_control_hit_ratio", opt(summary.map(|s| s.control_hit_ratio))),
        ("ab_window_treatment_hit_ratio", opt(summary.map(|s| s.treatment_hit_ratio))),
        ("ab_improvement", opt(summary.map(|s| s.improvement))),
        ("ab_ci95_low", opt(summary.and_then(|s| s.ci95).map(|c| c.low))),
        ("ab_ci95_high", opt(summary.and_then(|s| s.ci95).map(|c| c.high))),
        ("ab_p_value", p(summary.and_then(|s| s.p_value))),
        ("ab_paired_p_value", p(summary.and_then(|s| s.paired_p_value))),
        ("ab_effect_size", opt(summary.and_then(|s| s.effect_size))),
    ]);
    fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// `prefetch_model_v<N>:issued=…,used=…,joined=…,evicted_unused=…,late=…,accuracy=…,coverage=…`
/// per model version (v0: before the first model, or a non-learned prefetcher),
/// in the style of Redis's `db0:keys=…` lines.
fn prefetch_versions(s: &EngineStats) -> Vec<(String, String)> {
    s.prefetch_versions
        .iter()
        .map(|v| {
            (
                format!("prefetch_model_v{}", v.version),
                format!(
                    "issued={},used={},joined={},evicted_unused={},late={},accuracy={},coverage={}",
                    v.issued,
                    v.used,
                    v.joined,
                    v.evicted_unused,
                    v.late,
                    ratio_or_dash(v.accuracy()),
                    ratio_or_dash(v.coverage())
                ),
            )
        })
        .collect()
}

fn server(shared: &Shared) -> Fields {
    let uptime = shared.started.elapsed().as_secs();
    let now_usec = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
    let started = shared.started_wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    vec![
        ("redis_version", REDIS_VERSION.to_string()),
        ("augur_version", env!("CARGO_PKG_VERSION").to_string()),
        ("redis_mode", "standalone".to_string()),
        ("os", format!("{} {}", std::env::consts::OS, std::env::consts::ARCH)),
        ("arch_bits", usize::BITS.to_string()),
        ("process_id", std::process::id().to_string()),
        ("tcp_port", shared.local_addr.port().to_string()),
        ("server_time_usec", now_usec.to_string()),
        ("server_start_time", started.to_string()),
        ("uptime_in_seconds", uptime.to_string()),
        ("uptime_in_days", (uptime / 86_400).to_string()),
    ]
}

fn clients(shared: &Shared) -> Fields {
    vec![
        ("connected_clients", shared.stats.connected_clients.load(Ordering::Relaxed).to_string()),
        ("maxclients", shared.max_clients.load(Ordering::Relaxed).to_string()),
        ("blocked_clients", "0".to_string()),
    ]
}

fn memory(s: &EngineStats) -> Fields {
    let used = s.cached_bytes.saturating_add(s.dirty_bytes);
    vec![
        ("used_memory", used.to_string()),
        ("used_memory_human", human_bytes(used)),
        ("maxmemory", s.cache_capacity.to_string()),
        ("maxmemory_human", human_bytes(s.cache_capacity)),
        ("eviction", s.eviction.clone()),
        ("cached_keys", s.cached_keys.to_string()),
        ("cached_bytes", s.cached_bytes.to_string()),
        ("cache_capacity", s.cache_capacity.to_string()),
    ]
}

fn persistence(s: &EngineStats) -> Fields {
    vec![
        ("loading", "0".to_string()),
        ("aof_enabled", "1".to_string()),
        ("appendfsync", s.sync_policy.clone()),
        ("aof_last_write_status", if s.wal_error.is_some() { "err" } else { "ok" }.to_string()),
        ("sync_policy", s.sync_policy.clone()),
        ("wal_error", s.wal_error.clone().unwrap_or_default()),
        ("wal_last_seq", s.wal_last_seq.to_string()),
        ("wal_durable_seq", s.wal_durable_seq.to_string()),
        ("wal_segments", s.wal_segments.to_string()),
        ("wal_bytes", s.wal_bytes.to_string()),
        ("dirty_keys", s.dirty_keys.to_string()),
        ("dirty_bytes", s.dirty_bytes.to_string()),
        ("dirty_limit", s.dirty_limit.to_string()),
        ("dirty_bound_rejections", s.dirty_bound_rejections.to_string()),
        ("store", s.store.clone()),
        ("store_durability", s.store_durability.clone()),
        ("store_watermark", s.store_watermark.to_string()),
        ("flush_lag_seconds", format!("{:.3}", s.flush_lag_seconds)),
        ("wal_pending_bytes", s.wal_pending_bytes.to_string()),
        ("flushed_entries", s.flushed_entries.to_string()),
        ("flush_batches", s.flush_batches.to_string()),
        ("flush_errors", s.flush_errors.to_string()),
    ]
}

fn counters(shared: &Shared, s: &EngineStats) -> Fields {
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed).to_string();
    vec![
        ("total_connections_received", load(&shared.stats.total_connections)),
        ("total_commands_processed", load(&shared.stats.total_commands)),
        ("rejected_connections", load(&shared.stats.rejected_connections)),
        ("keyspace_hits", s.hits.to_string()),
        ("keyspace_misses", s.misses.to_string()),
        ("hits", s.hits.to_string()),
        ("misses", s.misses.to_string()),
        ("negative_hits", s.negative_hits.to_string()),
        ("store_reads", s.store_reads.to_string()),
        ("store_read_errors", s.store_read_errors.to_string()),
        ("coalesced_reads", s.coalesced_reads.to_string()),
        ("inflight_reads", s.inflight_reads.to_string()),
        ("stale_reads_dropped", s.stale_reads_dropped.to_string()),
        ("writes", s.writes.to_string()),
        ("deletes", s.deletes.to_string()),
        ("prefetch_hits", s.prefetch_hits.to_string()),
        ("prefetcher", s.prefetcher.clone()),
        ("prefetch_reads", s.prefetch_reads.to_string()),
        ("prefetch_inserted", s.prefetch_inserted.to_string()),
        ("prefetch_late", s.prefetch_late.to_string()),
        ("prefetch_redundant", s.prefetch_redundant.to_string()),
        ("prefetch_joined", s.prefetch_joined.to_string()),
        ("prefetch_evicted_unused", s.prefetch_evicted_unused.to_string()),
        ("prefetch_accuracy", format!("{:.4}", s.prefetch_accuracy)),
        ("prefetch_coverage", format!("{:.4}", s.prefetch_coverage)),
        ("prefetch_model_version", s.prefetch_model_version.to_string()),
        ("prefetch_threshold", format!("{:.3}", s.prefetch_threshold)),
        ("prefetch_target_accuracy", format!("{:.3}", s.prefetch_target_accuracy)),
        ("prefetch_drifts", s.prefetch_drifts.to_string()),
        ("prefetch_model_accuracy", format!("{:.4}", s.prefetch_model_accuracy)),
        ("prefetch_events_dropped", s.prefetch_events_dropped.to_string()),
        ("prefetch_queue_dropped", s.prefetch_queue_dropped.to_string()),
        ("prefetch_queue_expired", s.prefetch_queue_expired.to_string()),
        ("prefetch_share_limited", s.prefetch_share_limited.to_string()),
        ("prefetch_queue_depth", s.prefetch_queue_depth.to_string()),
        ("access_log_enabled", u8::from(s.access_log.enabled).to_string()),
        ("access_log_events", s.access_log.recorded.to_string()),
        ("access_log_dropped", s.access_log.dropped.to_string()),
        ("access_log_exported", s.access_log.exported.to_string()),
    ]
}

/// Redis 7's `latency_percentiles_usec_<name>:p50=…,p99=…,p99.9=…` for each of the
/// engine's latency histograms (cumulative since start), plus
/// `latency_stats_<name>:count=…,mean=…,max=…` (microseconds) with what Redis's line
/// leaves out. A histogram with no observation yet is listed with zeros.
fn latencystats(shared: &Shared) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for l in shared.engine.latency_stats() {
        out.push((
            format!("latency_percentiles_usec_{}", l.name),
            format!("p50={:.3},p99={:.3},p99.9={:.3}", l.p50_us as f64, l.p99_us as f64, l.p999_us as f64),
        ));
        out.push((
            format!("latency_stats_{}", l.name),
            format!("count={},mean={:.3},max={}", l.count, l.mean_us, l.max_us),
        ));
    }
    out
}

/// Redis's `bytesToHuman`: `1023B`, `1.50K`, `256.00M`.
fn human_bytes(n: u64) -> String {
    const UNITS: &[(u64, &str)] = &[(1 << 50, "P"), (1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];
    for &(size, unit) in UNITS {
        if n >= size {
            return format!("{:.2}{unit}", n as f64 / size as f64);
        }
    }
    format!("{n}B")
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn human_bytes_matches_redis() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1536), "1.50K");
        assert_eq!(human_bytes(256 << 20), "256.00M");
    }
}
