//! Per-run results and their two renderings: a human table and JSON for scripts.
//!
//! The JSON keys are a contract (CI and docs scripts read them): `policy`,
//! `prefetch`, `cache_size`, `requests`, `hit_ratio`, `miss_ratio`,
//! `byte_hit_ratio`, `store_reads`, `prefetches_issued`, `prefetches_used`,
//! `prefetches_evicted_unused`, `prefetches_late`, `prefetches_joined`, `accuracy`,
//! `coverage`, `requests_per_sec`.
//! `accuracy` and `coverage` are `null` where undefined (no prefetcher, nothing
//! issued, or a baseline without misses).

use serde::{Deserialize, Serialize};

use crate::error::TraceError;
use crate::harness::Counters;

/// Results of one (policy, prefetcher, cache size) replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Eviction policy.
    pub policy: String,
    /// Prefetcher (`none` for demand fetching only).
    pub prefetch: String,
    /// Capacity in objects (object mode) or bytes.
    pub cache_size: u64,
    /// Requests replayed.
    pub requests: u64,
    /// Hits ÷ requests.
    pub hit_ratio: f64,
    /// Misses ÷ requests.
    pub miss_ratio: f64,
    /// Bytes of hits ÷ bytes requested (real sizes, even in object mode).
    pub byte_hit_ratio: f64,
    /// Reads the store served: read misses plus prefetches.
    pub store_reads: u64,
    /// Objects the prefetcher fetched.
    pub prefetches_issued: u64,
    /// Prefetched objects hit before eviction.
    pub prefetches_used: u64,
    /// Prefetched objects dropped without a hit (evicted, or refused entry).
    pub prefetches_evicted_unused: u64,
    /// Prefetches that landed after a demand read had cached the key (with a
    /// simulated prefetch delay).
    pub prefetches_late: u64,
    /// Prefetches a demand read joined while in flight (with a simulated prefetch
    /// delay): late, but they saved that read's store read.
    pub prefetches_joined: u64,
    /// (used + joined) ÷ issued.
    pub accuracy: Option<f64>,
    /// (baseline misses − misses) ÷ baseline misses, where the baseline is the same
    /// policy and size without prefetching.
    pub coverage: Option<f64>,
    /// Replay speed, harness and trace decoding included.
    pub requests_per_sec: f64,
    /// Writes and deletes the store received (table only).
    #[serde(skip)]
    pub store_writes: u64,
    /// Misses (table only; used for coverage).
    #[serde(skip)]
    pub misses: u64,
}

/// A simulated prefetcher's accuracy: prefetches that served a read (hit before
/// eviction, or joined in flight) over prefetches issued; `None` before the first.
pub fn prefetch_accuracy(used: u64, joined: u64, issued: u64) -> Option<f64> {
    (issued > 0).then(|| ratio(used + joined, issued))
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

impl Report {
    /// Builds a report; `baseline_misses` is the no-prefetch run's misses, needed
    /// for coverage when a prefetcher ran.
    pub fn new(policy: &str, prefetch: &str, cache_size: u64, c: &Counters, baseline_misses: Option<u64>) -> Self {
        let prefetching = prefetch != "none";
        let accuracy = prefetching
            .then(|| prefetch_accuracy(c.prefetches_used, c.prefetches_joined, c.prefetches_issued))
            .flatten();
        let coverage = match baseline_misses {
            Some(b) if prefetching && b > 0 => Some((b as f64 - c.misses() as f64) / b as f64),
            _ => None,
        };
        let secs = c.elapsed.as_secs_f64();
        Self {
            policy: policy.to_string(),
            prefetch: prefetch.to_string(),
            cache_size,
            requests: c.requests,
            hit_ratio: ratio(c.hits, c.requests),
            miss_ratio: ratio(c.misses(), c.requests),
            byte_hit_ratio: ratio(c.hit_bytes, c.bytes),
            store_reads: c.store_reads,
            prefetches_issued: c.prefetches_issued,
            prefetches_used: c.prefetches_used,
            prefetches_evicted_unused: c.prefetches_evicted_unused,
            prefetches_late: c.prefetches_late,
            prefetches_joined: c.prefetches_joined,
            accuracy,
            coverage,
            requests_per_sec: if secs > 0.0 { c.requests as f64 / secs } else { 0.0 },
            store_writes: c.store_writes,
            misses: c.misses(),
        }
    }
}

/// The reports as a JSON array.
pub fn to_json(reports: &[Report]) -> String {
    serde_json::to_string_pretty(reports).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Parses the output of [`to_json`] (`augur sim --json`); fails on missing or
/// unknown keys, so it also checks the output contract.
pub fn from_json(text: &str) -> Result<Vec<Report>, TraceError> {
    serde_json::from_str(text).map_err(|e| TraceError::InvalidSpec(format!("not augur sim JSON: {e}")))
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"))
}

/// What the machine is, from /proc: CPU model, CPUs this process may use, memory and
/// kernel, for the header of every measured report.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, v)| v.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:")?.split_whitespace().next()?.parse::<f64>().ok())
        .map_or("?".to_string(), |kb| format!("{:.1}", kb / (1 << 20) as f64));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, {cpus} CPUs (nproc), {mem_gib} GiB RAM, Linux {}", kernel.trim())
}

/// `a` as a POSIX shell reads it back: bare when it is plain, else single-quoted.
pub fn shell_quote(a: &str) -> String {
    if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,%@+".contains(c)) {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`), so a report header needs no date crate and no `date` process.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Formats a size for the table: objects as a count, bytes with a binary unit.
pub fn human_size(n: u64, object_mode: bool) -> String {
    if object_mode {
        return n.to_string();
    }
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

/// The reports as an aligned text table.
pub fn to_table(reports: &[Report], object_mode: bool) -> String {
    let columns = [
        "requests",
        "hit",
        "miss",
        "byte_hit",
        "store_rd",
        "store_wr",
        "pf_issued",
        "pf_used",
        "pf_unused",
        "pf_late",
        "pf_joined",
        "accuracy",
        "coverage",
        "Mreq/s",
    ];
    let rows = reports.iter().map(|r| {
        let cells = vec![
            r.requests.to_string(),
            format!("{:.4}", r.hit_ratio),
            format!("{:.4}", r.miss_ratio),
            format!("{:.4}", r.byte_hit_ratio),
            r.store_reads.to_string(),
            r.store_writes.to_string(),
            r.prefetches_issued.to_string(),
            r.prefetches_used.to_string(),
            r.prefetches_evicted_unused.to_string(),
            r.prefetches_late.to_string(),
            r.prefetches_joined.to_string(),
            opt(r.accuracy),
            opt(r.coverage),
            format!("{:.2}", r.requests_per_sec / 1e6),
        ];
        (r.policy.as_str(), r.prefetch.as_str(), r.cache_size, cells)
    });
    runs_table(&columns, rows, object_mode)
}

/// An aligned text table with one row per (policy, prefetcher, size) run, for
/// `augur sim` and `augur ab` alike. Each row names what ran (policy, prefetcher
/// and cache size, shown with [`human_size`]) and then gives the run's results
/// under `columns`. Columns are two spaces apart and as wide as their widest
/// cell; the two names are aligned left, the numbers right.
pub fn runs_table<'a>(
    columns: &[&str],
    rows: impl IntoIterator<Item = (&'a str, &'a str, u64, Vec<String>)>,
    object_mode: bool,
) -> String {
    let header: Vec<&str> = ["policy", "prefetch", "size"].into_iter().chain(columns.iter().copied()).collect();
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(policy, prefetch, size, cells)| {
            let mut row = vec![policy.to_string(), prefetch.to_string(), human_size(size, object_mode)];
            row.extend(cells);
            row
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let parts: Vec<String> = cells
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| if i < 2 { format!("{c:<w$}") } else { format!("{c:>w$}") })
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn json_has_exactly_the_documented_keys() {
        let c = Counters {
            requests: 10,
            hits: 6,
            bytes: 100,
            hit_bytes: 50,
            store_reads: 5,
            prefetches_issued: 4,
            prefetches_used: 1,
            prefetches_joined: 1,
            elapsed: Duration::from_millis(1),
            ..Counters::default()
        };
        let r = Report::new("lru", "obl", 48, &c, Some(5));
        assert_eq!(r.accuracy, Some(0.5), "used and joined of issued");
        assert_eq!(r.coverage, Some(0.2));
        let v: serde_json::Value = serde_json::from_str(&to_json(&[r])).expect("json");
        let obj = v[0].as_object().expect("object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut want = vec![
            "policy",
            "prefetch",
            "cache_size",
            "requests",
            "hit_ratio",
            "miss_ratio",
            "byte_hit_ratio",
            "store_reads",
            "prefetches_issued",
            "prefetches_used",
            "prefetches_evicted_unused",
            "prefetches_late",
            "prefetches_joined",
            "accuracy",
            "coverage",
            "requests_per_sec",
        ];
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(obj["miss_ratio"].as_f64(), Some(0.4));
    }

    #[test]
    fn dates_from_day_counts() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
