//! A/B tests of prefetching in the simulator: what `augur ab` runs.
//!
//! One replay of the trace serves two caches side by side. Each request goes to
//! one of them by a fixed hash of its key ([`group_of`]):
//! - the **control** group's cache fetches on demand only;
//! - the **treatment** group's cache has the prefetcher under test. It observes
//!   only treatment requests, and candidates it names from the control group are
//!   dropped (counted in [`AbReport::candidates_dropped`]), so the two groups
//!   share no state: no key, no cache entry, no prefetcher history.
//!
//! Both caches run the same eviction policy, and each gets the same share of the
//! configured size as its share of the working set (distinct objects, or bytes
//! without `--ignore-obj-size`): `--sizes 10%` gives each group 10% of its own
//! working set, and an absolute size is divided in the proportion of the two
//! working sets. The control's hit ratio is therefore close to what `augur sim
//! --prefetch none` reports at the same size, and the two caches are configured
//! alike but for the prefetcher.
//!
//! The trace is cut into windows of `--window` requests (trace positions, so
//! window `i` of the control and window `i` of the treatment cover the same
//! span of time). Each window yields one hit ratio per group, and
//! [`AbSummary::from_windows`] turns the paired series into the improvement, its
//! 95% interval, Welch's and the paired t-test and Cohen's d.
//!
//! Splitting by key has a cost an A/B test by client would not: the groups hold
//! different keys. Where a few keys carry much of the traffic (a steep Zipf), the
//! group that drew them hits more with or without prefetching, and with enough
//! windows the tests call that difference significant: on 60,000 requests of
//! Zipf(1.0) over 4,000 keys at 10%, LRU with no prefetcher on either side (an
//! A/A test, `--prefetch none`) shows −4.2% at a paired p below 1e-8; on uniform
//! popularity it finds nothing. Run the A/A test to see how large that bias is on
//! a trace. The simulator can also remove it: with
//! `--crossover` the trace is replayed a second time with the roles swapped (the
//! prefetcher serves the control group's keys), and each arm pools its two
//! replays, so both arms cover every key and differ only in prefetching (an A/A
//! crossover is then exactly 0, with no variance to test). A live server cannot
//! replay, so this is for the simulator's estimates, at twice the time.
//!
//! Prefetchers whose candidates are neighbours of the requested key (OBL) lose
//! the half of them that fall in the other group.
//!
//! The replay loop is the harness's own ([`harness::replay`]): `SplitCache`
//! is one [`SimCache`] that routes each call to the group's cache and tallies
//! each lookup into its window, so the request rules (what a miss reads, how a
//! prefetch is fetched and counted) are the same as `augur sim`'s.
//!
//! A learning prefetcher's [`Timeline`] (model versions, trials, drift) comes
//! back in [`AbReport::timeline`], its positions moved from the prefetcher's own
//! request count to trace positions, so it lines up with the windows.

use augur_simulators::harness::{self, Counters};
use augur_simulators::prepass;
use augur_simulators::stats::{AbSummary, Interval};
use augur_simulators::trace::TraceReader;
use augur_simulators::{Access, ReplayOptions, Request, SimCache, TraceError};
use rustc_hash::FxHashSet;
use serde::Serialize;

use crate::predict::timeline::Timeline;
use crate::prefetch::Prefetcher;
use crate::sim::{CacheUser, PolicyKind, PrefetchKind, PrefetchingCache, SimPlan, TraceSource};

/// One side of the split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Demand fetching only.
    Control = 0,
    /// The prefetcher under test.
    Treatment = 1,
}

/// The group of a key id: the top bit of SplitMix64's output function over the
/// id, so sequential ids (block numbers, generated keys) fall into both groups
/// evenly and independently of their neighbours. Fixed forever: a trace splits
/// the same way on every run and machine. For a live server, apply it to the
/// key hash its access log records, and a replay of the exported log splits the
/// same way.
pub fn group_of(key: u64) -> Group {
    let mut z = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    if z >> 63 == 0 {
        Group::Control
    } else {
        Group::Treatment
    }
}

/// Everything `augur ab` was asked to do.
#[derive(Debug, Clone)]
pub struct AbPlan {
    /// The trace and the configurations, as `augur sim` takes them: each policy
    /// runs on both groups, the prefetchers are the treatment's (`none`: an A/A
    /// test), and each size is split between the groups.
    pub sim: SimPlan,
    /// Requests per window; `None`: a fiftieth of the trace, at least [`MIN_DEFAULT_WINDOW`].
    pub window: Option<u64>,
    /// Replay twice, the second time with the groups' roles swapped, and compare the
    /// pooled arms: the split's own bias cancels (see the module doc).
    pub crossover: bool,
}

/// The smallest default window: below about 500 requests per group a window's hit
/// ratio is mostly sampling noise.
pub const MIN_DEFAULT_WINDOW: u64 = 1000;

/// Windows the default window size aims for.
pub const DEFAULT_WINDOWS: u64 = 50;

/// One (policy, prefetcher, size) A/B run. The JSON output serializes this.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AbReport {
    /// Eviction policy (both groups).
    pub policy: String,
    /// The treatment's prefetcher.
    pub prefetch: String,
    /// The configured size in objects or bytes, both groups together.
    pub cache_size: u64,
    /// The share of `cache_size` for the control group's keys.
    pub control_cache_size: u64,
    /// The share of `cache_size` for the treatment group's keys.
    pub treatment_cache_size: u64,
    /// Requests per window (trace positions, both groups).
    pub window: u64,
    /// Whether this was a crossover: each arm then covers both groups' keys, one
    /// group per replay, and its counts below are over both replays.
    pub crossover: bool,
    /// Mean of the control's per-window hit ratios.
    pub control_hit_ratio: f64,
    /// Mean of the treatment's per-window hit ratios.
    pub treatment_hit_ratio: f64,
    /// `treatment_hit_ratio / control_hit_ratio − 1`; `null` when the control never hit.
    pub improvement: Option<f64>,
    /// Approximate 95% interval of `improvement` (see [`AbSummary::ci95`]).
    pub ci95: Option<Interval>,
    /// Welch's two-sided p-value.
    pub p_value: Option<f64>,
    /// The paired t-test's two-sided p-value, window by window.
    pub paired_p_value: Option<f64>,
    /// Cohen's d.
    pub effect_size: Option<f64>,
    /// Windows compared (pairs).
    pub windows: usize,
    /// Windows left out because one group had no request in them.
    pub windows_skipped: usize,
    /// Requests the control group received.
    pub control_requests: u64,
    /// Of which hits.
    pub control_hits: u64,
    /// Requests the treatment group received.
    pub treatment_requests: u64,
    /// Of which hits (first uses of prefetched entries included).
    pub treatment_hits: u64,
    /// Objects the treatment's prefetcher fetched.
    pub prefetches_issued: u64,
    /// Prefetched objects hit before eviction.
    pub prefetches_used: u64,
    /// Prefetches a read joined in flight (with a prefetch delay).
    pub prefetches_joined: u64,
    /// Prefetched objects dropped without a hit.
    pub prefetches_evicted_unused: u64,
    /// Candidates the prefetcher named in the control group, dropped unfetched.
    pub candidates_dropped: u64,
    /// The control's hit ratio per window, in trace order.
    pub control_windows: Vec<f64>,
    /// The treatment's hit ratio per window, in trace order.
    pub treatment_windows: Vec<f64>,
    /// What the treatment's prefetcher did, if it learns (`ml`), at trace
    /// positions (interpolated within windows); with `--crossover`, the first
    /// replay's. Absent from the JSON for the baselines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Timeline>,
    /// How the gain fared across a change in the workload (`augur ab --change-at`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Recovery>,
}

impl AbReport {
    /// The treatment's prefetches that served a read: hit before eviction, or
    /// joined in flight.
    pub fn prefetches_useful(&self) -> u64 {
        self.prefetches_used + self.prefetches_joined
    }

    /// Useful prefetches / prefetches issued (`None` when none was issued).
    pub fn accuracy(&self) -> Option<f64> {
        augur_simulators::report::prefetch_accuracy(
            self.prefetches_used,
            self.prefetches_joined,
            self.prefetches_issued,
        )
    }
}

/// The prefetcher's gain (treatment minus control hit ratio, per window) before a
/// change in the workload, its dip after, and how long it took to come back.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Recovery {
    /// The request position of the change.
    pub change_at: u64,
    /// Mean control and treatment hit ratios over the windows before the change.
    pub control_before: f64,
    /// See `control_before`.
    pub treatment_before: f64,
    /// Mean gain over the windows before the change.
    pub gain_before: f64,
    /// The smallest gain in a window after the change.
    pub dip_gain: f64,
    /// The end (request position) of the window with that dip.
    pub dip_at: u64,
    /// Requests from the change to the end of the first window after the dip whose
    /// gain is at least 90% of `gain_before`; `None`: never within the trace.
    pub recovered_after: Option<u64>,
}

/// [`Recovery`] of `report` around request `change_at`. Window `i` covers requests
/// `(i·window, (i+1)·window]`; a window straddling the change counts as after it.
/// `None` when a window was skipped (the series would not line up with request
/// positions), when no whole window lies before the change or none after, or
/// when there was no gain before it to recover.
pub fn recovery(report: &AbReport, change_at: u64) -> Option<Recovery> {
    if report.windows_skipped > 0 || report.window == 0 {
        return None;
    }
    let (control, treatment) = (&report.control_windows, &report.treatment_windows);
    let before = usize::try_from(change_at / report.window).ok()?.min(control.len());
    if before == 0 || before == control.len() {
        return None;
    }
    let gain = |i: usize| treatment[i] - control[i];
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let gain_before = (0..before).map(gain).sum::<f64>() / before as f64;
    if gain_before <= 0.0 {
        return None;
    }
    let dip = (before..control.len()).min_by(|&a, &b| gain(a).total_cmp(&gain(b)))?;
    let end_of = |i: usize| (i as u64 + 1) * report.window;
    let recovered = (dip..control.len()).find(|&i| gain(i) >= 0.9 * gain_before);
    Some(Recovery {
        change_at,
        control_before: mean(&control[..before]),
        treatment_before: mean(&treatment[..before]),
        gain_before,
        dip_gain: gain(dip),
        dip_at: end_of(dip),
        recovered_after: recovered.map(|i| end_of(i) - change_at),
    })
}

/// What [`run_ab`] produced.
#[derive(Debug, Clone)]
pub struct AbOutcome {
    /// One report per (policy, prefetcher, size), policy-major.
    pub reports: Vec<AbReport>,
    /// Requests in the trace.
    pub requests: u64,
    /// Distinct objects in (control, treatment).
    pub objects: [u64; 2],
    /// Working set of (control, treatment): objects, or bytes by first-seen size.
    pub working_set: [u64; 2],
    /// Malformed records skipped per replay (the same records every time).
    pub skipped: u64,
    /// The first skipped record's error.
    pub first_skip: Option<String>,
}

/// Hits and requests of one arm in one window.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    requests: u64,
    hits: u64,
}

/// The two arms' caches behind one [`SimCache`], so the harness's replay loop
/// drives both. It relies on the harness calling [`SimCache::get`] once per
/// request with the request's trace position as `now`.
struct SplitCache<C> {
    control: C,
    treatment: C,
    /// The group the treatment arm serves ([`Group::Treatment`] but in the swapped
    /// replay of a crossover).
    treated: Group,
    window: u64,
    /// `tallies[w][a]`: window `w`, arm `a` (0 control, 1 treatment).
    tallies: Vec<[Tally; 2]>,
    candidates_dropped: u64,
}

impl<C: SimCache> SplitCache<C> {
    fn new(control: C, treatment: C, treated: Group, window: u64) -> Self {
        Self { control, treatment, treated, window, tallies: Vec::new(), candidates_dropped: 0 }
    }

    fn treats(&self, key: u64) -> bool {
        group_of(key) == self.treated
    }

    fn cache(&mut self, key: u64) -> &mut C {
        if self.treats(key) {
            &mut self.treatment
        } else {
            &mut self.control
        }
    }
}

impl<C: SimCache> SimCache for SplitCache<C> {
    fn get(&mut self, req: &Request, now: u64) -> Access {
        let access = self.cache(req.key).get(req, now);
        let w = (now.saturating_sub(1) / self.window) as usize;
        if self.tallies.len() <= w {
            self.tallies.resize(w + 1, [Tally::default(); 2]);
        }
        let arm = usize::from(self.treats(req.key));
        let t = &mut self.tallies[w][arm];
        t.requests += 1;
        t.hits += u64::from(access != Access::Miss);
        access
    }

    fn insert(&mut self, req: &Request, now: u64) {
        self.cache(req.key).insert(req, now);
    }

    fn contains(&self, key: u64) -> bool {
        if self.treats(key) {
            self.treatment.contains(key)
        } else {
            self.control.contains(key)
        }
    }

    fn prefetches(&self) -> bool {
        self.treatment.prefetches()
    }

    fn prefetch_candidates(&mut self, req: &Request, hit: bool, now: u64, out: &mut Vec<u64>) {
        // The prefetcher never sees a control request.
        if !self.treats(req.key) {
            return;
        }
        let start = out.len();
        self.treatment.prefetch_candidates(req, hit, now, out);
        // Keep the treatment's candidates, in order.
        let mut kept = start;
        for i in start..out.len() {
            if self.treats(out[i]) {
                out.swap(kept, i);
                kept += 1;
            }
        }
        self.candidates_dropped += (out.len() - kept) as u64;
        out.truncate(kept);
    }

    fn insert_prefetched(&mut self, key: u64, size: u32, now: u64) {
        // Only treatment keys get here (`prefetch_candidates` filters).
        self.treatment.insert_prefetched(key, size, now);
    }

    fn prefetch_late(&mut self, key: u64) {
        self.treatment.prefetch_late(key);
    }

    fn prefetch_joined(&mut self, key: u64) {
        self.treatment.prefetch_joined(key);
    }

    fn evicted_unused(&self) -> u64 {
        self.control.evicted_unused() + self.treatment.evicted_unused()
    }
}

/// Per-window hit ratios of both groups, paired; windows in which a group had no
/// request are skipped. A trailing window shorter than half a window is folded
/// into the one before it rather than compared on its own few requests.
fn window_ratios(mut tallies: Vec<[Tally; 2]>, window: u64) -> (Vec<f64>, Vec<f64>, usize) {
    if let [.., prev, last] = tallies.as_mut_slice() {
        if last[0].requests + last[1].requests < window.div_ceil(2) {
            for (p, l) in prev.iter_mut().zip(last.iter()) {
                p.requests += l.requests;
                p.hits += l.hits;
            }
            tallies.pop();
        }
    }
    let (mut control, mut treatment, mut skipped) = (Vec::new(), Vec::new(), 0);
    for [c, t] in tallies {
        if c.requests == 0 || t.requests == 0 {
            skipped += 1;
            continue;
        }
        control.push(c.hits as f64 / c.requests as f64);
        treatment.push(t.hits as f64 / t.requests as f64);
    }
    (control, treatment, skipped)
}

/// What one replay of both arms produced.
#[derive(Debug, Default)]
struct ArmsRun {
    counters: Counters,
    /// `tallies[w][a]`: window `w`, arm `a` (0 control, 1 treatment).
    tallies: Vec<[Tally; 2]>,
    candidates_dropped: u64,
    /// The treatment's prefetcher's timeline, at trace positions.
    timeline: Option<Timeline>,
}

impl ArmsRun {
    /// Adds `other`'s counts to these, window by window (the two halves of a
    /// crossover). The timeline stays this run's: the two replays' prefetchers
    /// learned from different keys, and one timeline per plot reads clearly.
    fn add(&mut self, other: ArmsRun) {
        let (c, o) = (&mut self.counters, &other.counters);
        c.prefetches_issued += o.prefetches_issued;
        c.prefetches_used += o.prefetches_used;
        c.prefetches_joined += o.prefetches_joined;
        c.prefetches_evicted_unused += o.prefetches_evicted_unused;
        c.skipped = o.skipped;
        if self.tallies.len() < other.tallies.len() {
            self.tallies.resize(other.tallies.len(), [Tally::default(); 2]);
        }
        for (mine, theirs) in self.tallies.iter_mut().zip(other.tallies) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                m.requests += t.requests;
                m.hits += t.hits;
            }
        }
        self.candidates_dropped += other.candidates_dropped;
    }
}

/// Replays both arms through caches of `policy`, the treatment's with `prefetcher`
/// serving the keys of group `treated`. `capacities` is indexed by group.
///
/// For Belady: next-access positions are trace-wide, and a key's next request is
/// in its own group, so each group's Belady sees its own future correctly.
fn replay_split(
    reader: &mut dyn TraceReader,
    policy: PolicyKind,
    prefetcher: Option<Box<dyn Prefetcher<u64>>>,
    capacities: [u64; 2],
    treated: Group,
    window: u64,
    options: &ReplayOptions,
) -> Result<ArmsRun, TraceError> {
    struct Split<'a> {
        reader: &'a mut dyn TraceReader,
        prefetcher: Option<Box<dyn Prefetcher<u64>>>,
        /// The control arm's capacity, then the treatment arm's.
        capacities: [u64; 2],
        treated: Group,
        window: u64,
        options: &'a ReplayOptions,
    }
    impl CacheUser for Split<'_> {
        type Output = Result<ArmsRun, TraceError>;
        fn run<C: PrefetchingCache>(self, make: impl Fn(u64, Option<Box<dyn Prefetcher<u64>>>) -> C) -> Self::Output {
            let [cc, tc] = self.capacities;
            let mut split = SplitCache::new(make(cc, None), make(tc, self.prefetcher), self.treated, self.window);
            let counters = harness::replay(self.reader, &mut split, self.options)?;
            let (tallies, window) = (&split.tallies, self.window);
            let timeline = split
                .treatment
                .prefetcher()
                .and_then(|p| p.timeline())
                .map(|t| t.map_positions(|seq| trace_position(tallies, window, seq)));
            Ok(ArmsRun { counters, tallies: split.tallies, candidates_dropped: split.candidates_dropped, timeline })
        }
    }
    let capacities = match treated {
        Group::Treatment => capacities,
        Group::Control => [capacities[1], capacities[0]],
    };
    policy.with_cache(None, Split { reader, prefetcher, capacities, treated, window, options })
}

/// The trace position of the `seq`-th request the treatment arm served (its
/// prefetcher counts only those), interpolated within its window from the
/// windows' treatment counts; past the last one, the end of the trace.
fn trace_position(tallies: &[[Tally; 2]], window: u64, seq: u64) -> u64 {
    let mut before = 0u64;
    for (w, t) in tallies.iter().enumerate() {
        let n = t[1].requests;
        if n > 0 && seq <= before + n {
            let into = (seq - before) as f64 / n as f64;
            return w as u64 * window + (into * window as f64).round() as u64;
        }
        before += n;
    }
    tallies.len() as u64 * window
}

/// Requests, distinct objects and working set (objects or first-seen bytes) per group.
struct SplitScan {
    requests: u64,
    objects: [u64; 2],
    bytes: [u64; 2],
}

fn scan_split(reader: &mut dyn TraceReader) -> Result<SplitScan, TraceError> {
    let mut seen: FxHashSet<u64> = FxHashSet::default();
    let mut scan = SplitScan { requests: 0, objects: [0; 2], bytes: [0; 2] };
    while let Some(req) = reader.next_request()? {
        scan.requests += 1;
        if seen.insert(req.key) {
            let g = group_of(req.key) as usize;
            scan.objects[g] += 1;
            scan.bytes[g] += u64::from(req.size);
        }
    }
    Ok(scan)
}

/// Divides `total` between the groups in proportion to their working sets; the
/// shares add up to `total`.
fn split_capacity(total: u64, working_set: [u64; 2]) -> [u64; 2] {
    let ws = working_set[0] + working_set[1];
    if ws == 0 {
        let half = total / 2;
        return [half, total - half];
    }
    let control = (total as f64 * working_set[0] as f64 / ws as f64).round() as u64;
    [control, total - control]
}

/// Runs every (policy, prefetcher, size) of `plan` as an A/B test; `on_report`
/// sees each report as it finishes.
pub fn run_ab(plan: &AbPlan, mut on_report: impl FnMut(&AbReport)) -> Result<AbOutcome, TraceError> {
    let sim = &plan.sim;
    sim.check()?;
    if plan.window == Some(0) {
        return Err(TraceError::InvalidSpec("--window 0: a window needs at least one request".into()));
    }
    let mut source = TraceSource::new(sim)?;
    // The split of the working set is needed for every size, so this pass always runs.
    let scan = scan_split(source.open()?.as_mut())?;
    if scan.requests == 0 {
        return Err(TraceError::InvalidSpec(format!("{}: no requests to compare", sim.trace.display())));
    }
    if source.needs_next_access()? {
        source.next_access = prepass::scan(source.open()?.as_mut(), true)?.next_access;
    }
    let working_set = if sim.ignore_obj_size { scan.objects } else { scan.bytes };
    let mut capacities = Vec::new();
    for s in &sim.sizes {
        let total = s.resolve(working_set[0] + working_set[1], sim.ignore_obj_size)?;
        let split = split_capacity(total, working_set);
        if split.contains(&0) {
            return Err(TraceError::InvalidSpec(format!(
                "cache size {total} is too small to split between the control and treatment groups"
            )));
        }
        if !capacities.iter().any(|&(t, _)| t == total) {
            capacities.push((total, split));
        }
    }
    let window = plan.window.unwrap_or((scan.requests / DEFAULT_WINDOWS).max(MIN_DEFAULT_WINDOW));
    let mut outcome = AbOutcome {
        reports: Vec::new(),
        requests: scan.requests,
        objects: scan.objects,
        working_set,
        skipped: 0,
        first_skip: None,
    };
    for &policy in &sim.policies {
        for &(total, split) in &capacities {
            for &prefetch in &sim.prefetchers {
                let mut reader = source.open_for(policy)?;
                let label = format!("ab {}/{}/{}", policy.name(), prefetch.name(), total);
                let options = sim.replay_options(Some(scan.requests), label);
                let mut run = replay_split(
                    reader.as_mut(),
                    policy,
                    prefetch.build(sim.ml),
                    split,
                    Group::Treatment,
                    window,
                    &options,
                )?;
                if outcome.first_skip.is_none() {
                    outcome.first_skip = reader.skip_log().first().map(str::to_string);
                }
                if plan.crossover {
                    let mut reader = source.open_for(policy)?;
                    let options = ReplayOptions { label: format!("{} (swapped)", options.label), ..options };
                    run.add(replay_split(
                        reader.as_mut(),
                        policy,
                        prefetch.build(sim.ml),
                        split,
                        Group::Control,
                        window,
                        &options,
                    )?);
                }
                outcome.skipped = run.counters.skipped;
                let report = report(policy, prefetch, total, split, window, plan.crossover, run);
                on_report(&report);
                outcome.reports.push(report);
            }
        }
    }
    Ok(outcome)
}

fn report(
    policy: PolicyKind,
    prefetch: PrefetchKind,
    total: u64,
    split: [u64; 2],
    window: u64,
    crossover: bool,
    run: ArmsRun,
) -> AbReport {
    let ArmsRun { counters: c, tallies, candidates_dropped, timeline } = run;
    let sum = |g: usize| {
        tallies
            .iter()
            .fold(Tally::default(), |a, t| Tally { requests: a.requests + t[g].requests, hits: a.hits + t[g].hits })
    };
    let (control_total, treatment_total) = (sum(0), sum(1));
    let (control, treatment, windows_skipped) = window_ratios(tallies, window);
    let summary = AbSummary::from_windows(&control, &treatment);
    let mean = |x: &[f64]| if x.is_empty() { 0.0 } else { x.iter().sum::<f64>() / x.len() as f64 };
    AbReport {
        policy: policy.name().to_string(),
        prefetch: prefetch.name().to_string(),
        cache_size: total,
        control_cache_size: split[0],
        treatment_cache_size: split[1],
        window,
        crossover,
        // The summary's means when it has them (it refuses a control that never hit).
        control_hit_ratio: summary.map_or_else(|| mean(&control), |s| s.control_hit_ratio),
        treatment_hit_ratio: summary.map_or_else(|| mean(&treatment), |s| s.treatment_hit_ratio),
        improvement: summary.map(|s| s.improvement),
        ci95: summary.and_then(|s| s.ci95),
        p_value: summary.and_then(|s| s.p_value),
        paired_p_value: summary.and_then(|s| s.paired_p_value),
        effect_size: summary.and_then(|s| s.effect_size),
        windows: control.len(),
        windows_skipped,
        control_requests: control_total.requests,
        control_hits: control_total.hits,
        treatment_requests: treatment_total.requests,
        treatment_hits: treatment_total.hits,
        prefetches_issued: c.prefetches_issued,
        prefetches_used: c.prefetches_used,
        prefetches_joined: c.prefetches_joined,
        prefetches_evicted_unused: c.prefetches_evicted_unused,
        candidates_dropped,
        control_windows: control,
        treatment_windows: treatment,
        timeline,
        recovery: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_finds_the_gain_before_a_change_its_dip_and_the_way_back() {
        let control = vec![0.5; 10];
        // Gain 0.2 for four windows, a change after request 400, then 0.0, 0.05, 0.1, 0.19.
        let gains = [0.2, 0.2, 0.2, 0.2, 0.0, 0.05, 0.1, 0.19, 0.2, 0.2];
        let treatment: Vec<f64> = gains.iter().map(|g| 0.5 + g).collect();
        let report = AbReport {
            policy: "lru".into(),
            prefetch: "ml".into(),
            cache_size: 10,
            control_cache_size: 5,
            treatment_cache_size: 5,
            window: 100,
            crossover: false,
            control_hit_ratio: 0.5,
            treatment_hit_ratio: 0.6,
            improvement: None,
            ci95: None,
            p_value: None,
            paired_p_value: None,
            effect_size: None,
            windows: 10,
            windows_skipped: 0,
            control_requests: 500,
            control_hits: 250,
            treatment_requests: 500,
            treatment_hits: 300,
            prefetches_issued: 0,
            prefetches_used: 0,
            prefetches_joined: 0,
            prefetches_evicted_unused: 0,
            candidates_dropped: 0,
            control_windows: control,
            treatment_windows: treatment,
            timeline: None,
            recovery: None,
        };
        let r = recovery(&report, 400).expect("a gain to recover");
        assert!((r.gain_before - 0.2).abs() < 1e-12);
        assert!((r.dip_gain - 0.0).abs() < 1e-12);
        assert_eq!(r.dip_at, 500);
        // 0.19 >= 0.9 x 0.2 in window 7, which ends at request 800.
        assert_eq!(r.recovered_after, Some(400));
        assert!(recovery(&report, 50).is_none(), "no whole window before the change");
        let skipped = AbReport { windows_skipped: 1, ..report.clone() };
        assert!(recovery(&skipped, 400).is_none());
        let flat = AbReport { treatment_windows: vec![0.5; 10], ..report };
        assert!(recovery(&flat, 400).is_none(), "no gain before: nothing to recover");
    }
    use crate::sim::PolicyCache;
    use crate::tier::Lru;
    use augur_simulators::Op;
    use rustc_hash::FxBuildHasher;

    #[test]
    fn groups_are_balanced_and_independent_of_neighbours() {
        let treatment = (0..100_000u64).filter(|&k| group_of(k) == Group::Treatment).count();
        assert!((49_000..51_000).contains(&treatment), "{treatment} of 100000 in treatment");
        // Sequential keys: the group of k + 1 does not follow from that of k.
        let same = (0..100_000u64).filter(|&k| group_of(k) == group_of(k + 1)).count();
        assert!((49_000..51_000).contains(&same), "{same}");
        // Fixed forever: these values are part of what a trace's split means. Key 0
        // maps to SplitMix64's published first output for seed 0, 0xe220a8397b1dcdaf.
        let first: Vec<u8> = (0..16u64).map(|k| group_of(k) as u8).collect();
        assert_eq!(first, [1, 1, 1, 0, 0, 0, 1, 0, 1, 1, 0, 0, 1, 1, 0, 1]);
    }

    #[test]
    fn split_cache_routes_tallies_and_filters_candidates() {
        /// Proposes every key from 0 to 9 after each request.
        struct All;
        impl Prefetcher<u64> for All {
            fn on_request(&mut self, _key: &u64, _hit: bool, out: &mut Vec<u64>) {
                out.extend(0..10);
            }
            fn name(&self) -> &'static str {
                "all"
            }
        }
        let lru = || Lru::<u64, FxBuildHasher>::new();
        let mut s = SplitCache::new(
            PolicyCache::new(lru(), 100, None),
            PolicyCache::new(lru(), 100, Some(Box::new(All))),
            Group::Treatment,
            4,
        );
        let t_key = (0..).find(|&k| group_of(k) == Group::Treatment).unwrap();
        let c_key = (0..).find(|&k| group_of(k) == Group::Control).unwrap();
        let req = |key| Request { key, size: 1, op: Op::Read, ..Request::default() };
        let mut out = Vec::new();
        s.prefetch_candidates(&req(c_key), false, 1, &mut out);
        assert!(out.is_empty(), "control requests are not shown to the prefetcher");
        s.prefetch_candidates(&req(t_key), false, 1, &mut out);
        let want: Vec<u64> = (0..10).filter(|&k| group_of(k) == Group::Treatment).collect();
        assert_eq!(out, want);
        assert_eq!(s.candidates_dropped, 10 - want.len() as u64);
        // The swapped replay of a crossover treats the control group's keys.
        let mut swapped = SplitCache::new(
            PolicyCache::new(lru(), 100, None),
            PolicyCache::new(lru(), 100, Some(Box::new(All))),
            Group::Control,
            4,
        );
        let mut out = Vec::new();
        swapped.prefetch_candidates(&req(c_key), false, 1, &mut out);
        assert_eq!(out, (0..10).filter(|&k| group_of(k) == Group::Control).collect::<Vec<_>>());
        for now in 1..=6 {
            let key = if now % 2 == 0 { t_key } else { c_key };
            if s.get(&req(key), now) == Access::Miss {
                s.insert(&req(key), now);
            }
        }
        assert!(s.contains(t_key) && s.contains(c_key));
        assert!(s.control.contains(c_key) && !s.control.contains(t_key));
        // Window 0: requests 1-4 (c, t, c, t), one miss each; window 1: 5-6, hits.
        let r: Vec<[(u64, u64); 2]> =
            s.tallies.iter().map(|w| [(w[0].requests, w[0].hits), (w[1].requests, w[1].hits)]).collect();
        assert_eq!(r, vec![[(2, 1), (2, 1)], [(1, 1), (1, 1)]]);
    }

    #[test]
    fn windows_fold_a_short_tail_and_skip_one_sided_ones() {
        let t = |requests, hits| Tally { requests, hits };
        let (c, tr, skipped) = window_ratios(vec![[t(4, 2), t(6, 3)], [t(2, 2), t(2, 0)]], 8);
        assert_eq!((c, tr, skipped), (vec![0.5, 1.0], vec![0.5, 0.0], 0), "a tail of half a window stays");
        let (c, tr, skipped) = window_ratios(vec![[t(4, 2), t(6, 3)], [t(2, 2), t(2, 0)]], 11);
        assert_eq!((c, tr, skipped), (vec![4.0 / 6.0], vec![3.0 / 8.0], 0), "a shorter one is folded");
        let (c, tr, skipped) = window_ratios(vec![[t(0, 0), t(10, 1)], [t(4, 2), t(6, 3)]], 10);
        assert_eq!((c, tr, skipped), (vec![0.5], vec![0.5], 1), "a window without control requests is skipped");
    }

    #[test]
    fn prefetcher_positions_become_trace_positions() {
        let t = |control, treatment| [Tally { requests: control, hits: 0 }, Tally { requests: treatment, hits: 0 }];
        // Windows of 10 requests: 5, 0 and 2 of them the treatment's.
        let tallies = [t(5, 5), t(10, 0), t(8, 2)];
        assert_eq!(trace_position(&tallies, 10, 1), 2);
        assert_eq!(trace_position(&tallies, 10, 5), 10);
        assert_eq!(trace_position(&tallies, 10, 6), 25, "the empty window is skipped");
        assert_eq!(trace_position(&tallies, 10, 7), 30);
        assert_eq!(trace_position(&tallies, 10, 99), 30, "past the end");
    }

    #[test]
    fn capacity_follows_the_working_sets() {
        assert_eq!(split_capacity(100, [30, 70]), [30, 70]);
        assert_eq!(split_capacity(101, [1, 1]), [51, 50]);
        assert_eq!(split_capacity(7, [0, 0]), [3, 4]);
    }
}
