//! The A/B test on a live server (`augur serve --ab`): the same split and the
//! same statistics as `augur ab` in the simulator, over real traffic.
//!
//! Keys are split by [`group_of`] their hash (the hash the access log records, so
//! a replay of the exported log splits identically). Each group gets its own cache
//! of half the configured size ([`crate::tier::SplitTier`]). As in the simulator's
//! `augur ab`, the prefetcher sees only the treatment group's requests and may
//! only fetch treatment keys (a candidate in the control group is dropped and
//! counted), so the groups share no state. Per group
//! the read path counts hits and misses; every `window` the counts since the last
//! window become one hit ratio per group, and the paired series is reduced by
//! [`AbSummary::from_windows`]: improvement with its 95% interval, Welch's and the
//! paired p-value, Cohen's d. INFO's `# AB` section shows it all.
//!
//! Why halve the cache rather than share one: with one shared cache the
//! treatment's prefetched keys would evict the control's entries, and the test
//! would charge prefetching's cost to the control group.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use augur_simulators::stats::AbSummary;

pub use crate::ab::{group_of, Group};

/// Windows kept (at 10 s each, a bit under three hours).
const WINDOWS_KEPT: usize = 1_000;

/// Per-group counters and the closed windows.
#[derive(Debug)]
pub struct LiveAb {
    /// How often a window closes.
    pub window: Duration,
    hits: [AtomicU64; 2],
    misses: [AtomicU64; 2],
    /// Prefetch candidates dropped because their key belongs to the control group.
    pub control_candidates_dropped: AtomicU64,
    closed: Mutex<Closed>,
}

#[derive(Debug, Default)]
struct Closed {
    /// Totals (hits, misses) per group when the last window closed.
    at: [(u64, u64); 2],
    /// (control, treatment) hit ratio per window, oldest first.
    ratios: VecDeque<(f64, f64)>,
    /// Windows in which a group had no read (left out of the test).
    skipped: u64,
}

/// What INFO reports.
#[derive(Debug, Clone, Default)]
pub struct LiveAbStats {
    /// Seconds per window.
    pub window_s: f64,
    /// Hits and misses of (control, treatment) since start.
    pub hits: [u64; 2],
    /// See `hits`.
    pub misses: [u64; 2],
    /// Candidates the prefetcher named in the control group, dropped.
    pub control_candidates_dropped: u64,
    /// Windows left out because a group had no read in them.
    pub windows_skipped: u64,
    /// Windows closed with reads in both groups (the series the test runs on).
    pub windows: usize,
    /// The test over the closed windows (`None` before the first).
    pub summary: Option<AbSummary>,
}

impl LiveAb {
    /// A test closing a window every `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            hits: Default::default(),
            misses: Default::default(),
            control_candidates_dropped: AtomicU64::new(0),
            closed: Mutex::new(Closed::default()),
        }
    }

    /// Counts one read of the key with hash `hash`; true when the key is in the
    /// treatment group.
    #[inline]
    pub fn record(&self, hash: u64, hit: bool) -> bool {
        let g = group_of(hash);
        let counter = if hit { &self.hits[g as usize] } else { &self.misses[g as usize] };
        counter.fetch_add(1, Ordering::Relaxed);
        g == Group::Treatment
    }

    /// True when prefetching may fetch the key with hash `hash`.
    pub fn treated(&self, hash: u64) -> bool {
        group_of(hash) == Group::Treatment
    }

    fn totals(&self) -> [(u64, u64); 2] {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [0, 1].map(|g| (get(&self.hits[g]), get(&self.misses[g])))
    }

    /// Closes the current window: its hit ratio per group joins the series
    /// (unless a group had no read in it).
    pub fn close_window(&self) {
        let now = self.totals();
        let mut closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
        let ratio = |g: usize| {
            let hits = now[g].0 - closed.at[g].0;
            let reads = hits + now[g].1 - closed.at[g].1;
            (reads > 0).then(|| hits as f64 / reads as f64)
        };
        match (ratio(0), ratio(1)) {
            (Some(c), Some(t)) => {
                if closed.ratios.len() == WINDOWS_KEPT {
                    closed.ratios.pop_front();
                }
                closed.ratios.push_back((c, t));
            }
            _ => closed.skipped += 1,
        }
        closed.at = now;
    }

    /// Counters and the test so far.
    pub fn stats(&self) -> LiveAbStats {
        let totals = self.totals();
        let closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
        let (control, treatment): (Vec<f64>, Vec<f64>) = closed.ratios.iter().copied().unzip();
        LiveAbStats {
            window_s: self.window.as_secs_f64(),
            hits: totals.map(|t| t.0),
            misses: totals.map(|t| t.1),
            control_candidates_dropped: self.control_candidates_dropped.load(Ordering::Relaxed),
            windows_skipped: closed.skipped,
            windows: closed.ratios.len(),
            summary: AbSummary::from_windows(&control, &treatment),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes of keys in each group.
    fn keys_of(group: Group, n: usize) -> Vec<u64> {
        (0u64..).filter(|&h| group_of(h) == group).take(n).collect()
    }

    #[test]
    fn windows_become_per_group_hit_ratios_and_the_test_sees_the_difference() {
        let ab = LiveAb::new(Duration::from_secs(1));
        let control = keys_of(Group::Control, 10);
        let treatment = keys_of(Group::Treatment, 10);
        for w in 0..6u64 {
            // Control hits 5 of 10 reads every window, treatment 8 or 9 of 10.
            for (i, &h) in control.iter().enumerate() {
                ab.record(h, i < 5);
            }
            for (i, &h) in treatment.iter().enumerate() {
                ab.record(h, i < 8 + (w % 2) as usize);
            }
            ab.close_window();
        }
        // A window with reads in one group only is left out.
        ab.record(control[0], true);
        ab.close_window();
        let s = ab.stats();
        assert_eq!(s.hits, [31, 51]);
        assert_eq!(s.misses, [30, 9]);
        assert_eq!(s.windows_skipped, 1);
        let summary = s.summary.expect("six windows");
        assert_eq!(summary.windows, 6);
        assert!((summary.control_hit_ratio - 0.5).abs() < 1e-12);
        assert!((summary.treatment_hit_ratio - 0.85).abs() < 1e-12);
        assert!((summary.improvement - 0.7).abs() < 1e-9);
        assert!(summary.paired_p_value.is_some_and(|p| p < 1e-3));
    }

    #[test]
    fn only_treatment_keys_may_be_prefetched() {
        let ab = LiveAb::new(Duration::from_secs(1));
        assert!(keys_of(Group::Treatment, 50).iter().all(|&h| ab.treated(h)));
        assert!(keys_of(Group::Control, 50).iter().all(|&h| !ab.treated(h)));
    }
}
