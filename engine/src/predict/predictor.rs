//! The learned prefetcher: features → candidates → calibrated scores → the keys
//! above an adaptive threshold, with self-supervised online retraining.
//!
//! It implements the same [`Prefetcher`] trait as the baselines, so `augur sim`
//! (virtual clock: request positions and trace timestamps) and `augur serve` (the
//! prefetch engine's thread, off the request path) run this exact code.
//!
//! Life cycle: until the first model is trained it only observes and collects
//! labelled samples. Once `first_train_after` samples are labelled it trains every
//! configured model, keeps the one with the best validation log loss, and then
//! retrains every `retrain_every` requests on the newest samples. Training runs
//! inline (the simulator: deterministic) or on its own thread (serving: the
//! predictor keeps the previous model until the new one is ready).
//!
//! The threshold starts at the lower of `threshold` and `target_accuracy` and moves
//! to hold the measured accuracy of issued prefetches (did the key come within the
//! horizon) at `target_accuracy`: calibration makes the starting point right on
//! average, the controller keeps it right when the workload shifts. It starts no
//! higher than the target because the controller only hears about prefetches it
//! issued: on a workload whose best candidates score 0.5, a threshold of 0.6 would
//! issue nothing, hear nothing and never come down to a target of 0.35. For the
//! same reason a threshold that a bad spell pushed above every score of a later
//! model would stay there: when nothing has been issued and no outcome has come
//! back for `RELAX_AFTER` requests, the threshold halves its distance to the
//! start, never going below it.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::candidates;
use super::dataset::{Dataset, Labeller, Sample};
use super::features::{key_hash, FeatureConfig, FeatureState, N_FEATURES};
use super::model::{BatchBuf, ModelKind, TrainedModel, Validation};
use super::registry::{AdminCommand, Decision, Registry};
use super::trainer::{self, TrainConfig};
use super::PredictError;
use crate::prefetch::{Prefetcher, SequentialKey};

/// The lowest the threshold controller takes the probability threshold.
pub const THRESHOLD_FLOOR: f32 = 0.2;

/// The accuracy target as a server changes it at runtime (`CONFIG SET
/// prefetch-target-accuracy`): the connection that sets it writes, the predictor
/// thread reads it once per request and, on every set, restarts its threshold
/// there. An atomic rather than a message, so the setting is in force for INFO
/// and `CONFIG GET` the moment it is acknowledged. The high 32 bits count the
/// sets, so setting the value already in force (an operator un-sticking the
/// threshold) or A, B, A between two requests is still seen as a set.
#[derive(Debug, Clone)]
pub struct LiveTarget(Arc<AtomicU64>);

impl LiveTarget {
    /// A cell holding `target`.
    pub fn new(target: f32) -> Self {
        Self(Arc::new(AtomicU64::new(u64::from(target.to_bits()))))
    }

    /// The target now.
    pub fn get(&self) -> f32 {
        Self::target_of(self.raw())
    }

    /// Sets the target; the caller has checked its range.
    pub fn set(&self, target: f32) {
        let _ = self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |raw| {
            Some((raw & !u64::from(u32::MAX)).wrapping_add(1 << 32) | u64::from(target.to_bits()))
        });
    }

    /// The target and its set count, as one value: unequal after every set.
    fn raw(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn target_of(raw: u64) -> f32 {
        f32::from_bits(raw as u32)
    }
}

/// Settings of the learned prefetcher.
#[derive(Debug, Clone)]
pub struct MlConfig {
    /// Feature state sizes.
    pub features: FeatureConfig,
    /// Candidates scored per request.
    pub max_candidates: usize,
    /// Most keys prefetched per request.
    pub degree: usize,
    /// A candidate is labelled positive if requested within this many requests.
    pub horizon: u64,
    /// Labelled samples kept for training.
    pub window: usize,
    /// Labelled samples before the first model.
    pub first_train_after: u64,
    /// Requests between retrainings.
    pub retrain_every: u64,
    /// Also retrain when this many seconds (of the host's clock) have passed since
    /// the last training and at least `MIN_NEW_REQUESTS` requests came meanwhile,
    /// so a server with little traffic still follows a slow change. `None` (the
    /// simulator's default): by requests only, which keeps replays deterministic.
    pub retrain_every_s: Option<f64>,
    /// Starting probability threshold (capped at `target_accuracy`).
    pub threshold: f32,
    /// Accuracy the threshold controller aims for.
    pub target_accuracy: f32,
    /// Where a server's operator changes `target_accuracy` at runtime (`None`:
    /// fixed, as in the simulator).
    pub live_target: Option<LiveTarget>,
    /// What to train.
    pub train: TrainConfig,
    /// Scores per window of the drift test (reference: after a model is
    /// installed; recent: the newest).
    pub drift_window: usize,
    /// The two-sample KS test's p-value below which the windows differ.
    pub drift_p_value: f64,
    /// …and the least KS statistic: scores are autocorrelated, so with thousands
    /// of them a tiny, harmless shift is "significant"; this asks for a real one.
    pub drift_min_statistic: f64,
    /// Train on a background thread (serving) or inline (simulation).
    pub background: bool,
    /// Labelled samples that decide a shadow or rollback trial.
    pub trial_samples: usize,
    /// Where model checkpoints live (serving); `None`: in memory only.
    pub model_dir: Option<std::path::PathBuf>,
    /// Most of one core background training may use, in (0, 1]; 1: unbounded
    /// (see `super::throttle`). Inline training (the simulator) is never paced.
    pub train_cpu_share: f64,
}

impl Default for MlConfig {
    fn default() -> Self {
        Self {
            features: FeatureConfig::default(),
            max_candidates: 8,
            degree: 4,
            horizon: 64,
            window: 60_000,
            first_train_after: 30_000,
            retrain_every: 50_000,
            retrain_every_s: None,
            threshold: 0.6,
            target_accuracy: 0.65,
            live_target: None,
            // The GRU is compared offline (`augur predict`) but not retrained online:
            // it validated worse than the MLP at 20x the training time.
            train: TrainConfig {
                models: vec![ModelKind::Logistic, ModelKind::Mlp, ModelKind::Gbdt],
                ..TrainConfig::default()
            },
            drift_window: 2_000,
            drift_p_value: 1e-4,
            drift_min_statistic: 0.15,
            background: false,
            trial_samples: 4_000,
            model_dir: None,
            train_cpu_share: 0.5,
        }
    }
}

/// Where the predictor stands, for INFO, metrics and reports.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PredictorStatus {
    /// Models installed so far (0: none yet).
    pub version: u32,
    /// Kind of the active model.
    pub model: Option<&'static str>,
    /// Its validation figures.
    pub validation: Option<Validation>,
    /// Current threshold.
    pub threshold: f32,
    /// Prefetches issued.
    pub issued: u64,
    /// Issued prefetches whose key came within the horizon / labelled issued.
    pub accuracy: f64,
    /// Requests observed.
    pub requests: u64,
    /// Samples labelled.
    pub labelled: u64,
    /// Mean scoring time per request with candidates, microseconds.
    pub mean_score_us: f64,
    /// Drift detections so far.
    pub drifts: u64,
    /// Prefetches read before eviction / prefetches resolved (used, wasted or
    /// late), as the cache reported them: the figure the threshold is steered by.
    pub outcome_accuracy: f64,
}

/// One drift detection: the KS test between the reference and recent score
/// windows fired (or the measured accuracy fell), and a retraining was started.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct DriftEvent {
    /// Request position.
    pub seq: u64,
    /// KS statistic D (NaN when the accuracy trigger fired).
    pub statistic: f64,
    /// Its p-value.
    pub p_value: f64,
    /// Scores per window.
    pub window: usize,
    /// Measured prefetch accuracy over the last controller window.
    pub accuracy: f64,
}

/// The learned prefetcher over keys `K`.
pub struct MlPrefetcher<K> {
    config: MlConfig,
    state: FeatureState<K>,
    labeller: Labeller,
    registry: Registry,
    /// Resolved samples waiting to be judged by a running trial.
    trial_samples: Vec<Sample>,
    training: Option<JoinHandle<TrainingResult>>,
    last_train_seq: u64,
    last_train_time: f64,
    version: u32,
    threshold: f32,
    time_s: f64,
    issued: u64,
    issued_labelled: u64,
    issued_used: u64,
    window_issued: u64,
    window_used: u64,
    outcomes_used: u64,
    outcomes_total: u64,
    last_window_accuracy: f64,
    /// Requests since the predictor last issued a prefetch or heard an outcome
    /// of one: only a threshold that does neither is stranded.
    requests_unheard: u64,
    /// The last [`LiveTarget`] value taken up (target and set count).
    live_target_seen: u64,
    reference_scores: Vec<f64>,
    recent_scores: std::collections::VecDeque<f64>,
    scores_since_test: usize,
    retrain_now: bool,
    drifts: Vec<DriftEvent>,
    score_ns: u128,
    scored: u64,
    candidates: Vec<K>,
    batch: BatchBuf,
    history: Vec<(u64, ModelKind, Validation)>,
    decisions: Vec<(u64, Decision)>,
}

/// Requests a time-scheduled retraining needs since the last one: fewer would
/// retrain on almost the same samples.
const MIN_NEW_REQUESTS: u64 = 5_000;

/// Requests with nothing issued and no outcome heard after which a threshold
/// above its start is relaxed toward it: about 30 horizons. Issuing counts as
/// activity because an outcome can take far longer than this to come back (an
/// unread prefetch is reported only when evicted, and a server reports outcomes
/// in batches every 200 ms), and relaxing a threshold whose prefetches are still
/// in flight would undo the controller's raises.
const RELAX_AFTER: u64 = 2_000;

/// Where the threshold starts: calibration makes the target itself the right
/// threshold on average, but no higher than the configured start and never
/// below the floor.
fn start_threshold(config: &MlConfig) -> f32 {
    config.threshold.min(config.target_accuracy).max(THRESHOLD_FLOOR)
}

type TrainingResult = Result<(Vec<TrainedModel>, usize), PredictError>;

/// Training is background work: let serving threads win the CPU (nice 10).
fn lower_priority() {
    // SAFETY: setpriority on the calling thread (who = 0 with PRIO_PROCESS means the
    // calling thread on Linux) has no memory-safety preconditions.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
    if rc != 0 {
        tracing::debug!("predictor: could not lower the training thread's priority");
    }
}

impl<K> std::fmt::Debug for MlPrefetcher<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlPrefetcher").field("version", &self.version).field("threshold", &self.threshold).finish()
    }
}

impl<K: Hash + Eq + Clone + Send + SequentialKey> MlPrefetcher<K> {
    /// A predictor with no model yet (in memory only).
    pub fn new(config: MlConfig) -> Self {
        let registry = Registry::in_memory(config.trial_samples);
        Self::with_registry(config, registry)
    }

    /// A predictor whose models are checkpointed in `config.model_dir` (the active
    /// one is reloaded from there).
    pub fn open(config: MlConfig) -> Result<Self, PredictError> {
        let registry = Registry::open(config.trial_samples, config.model_dir.clone())?;
        Ok(Self::with_registry(config, registry))
    }

    fn with_registry(config: MlConfig, registry: Registry) -> Self {
        let version = registry.active_version();
        Self {
            state: FeatureState::new(config.features),
            labeller: Labeller::new(config.horizon, config.window),
            registry,
            trial_samples: Vec::new(),
            training: None,
            last_train_seq: 0,
            last_train_time: 0.0,
            version,
            threshold: start_threshold(&config),
            time_s: 0.0,
            issued: 0,
            issued_labelled: 0,
            issued_used: 0,
            window_issued: 0,
            window_used: 0,
            outcomes_used: 0,
            outcomes_total: 0,
            last_window_accuracy: f64::NAN,
            requests_unheard: 0,
            live_target_seen: config.live_target.as_ref().map_or(0, LiveTarget::raw),
            reference_scores: Vec::new(),
            recent_scores: std::collections::VecDeque::new(),
            scores_since_test: 0,
            retrain_now: false,
            drifts: Vec::new(),
            score_ns: 0,
            scored: 0,
            candidates: Vec::new(),
            batch: BatchBuf::default(),
            history: Vec::new(),
            decisions: Vec::new(),
            config,
        }
    }

    /// Where it stands.
    pub fn status(&self) -> PredictorStatus {
        PredictorStatus {
            version: self.version,
            model: self.registry.active().map(|m| m.kind.name()),
            validation: self.registry.active().map(|m| m.validation),
            threshold: self.threshold,
            issued: self.issued,
            accuracy: if self.issued_labelled == 0 {
                f64::NAN
            } else {
                self.issued_used as f64 / self.issued_labelled as f64
            },
            requests: self.state.seq,
            labelled: self.labeller.labelled(),
            mean_score_us: if self.scored == 0 { 0.0 } else { self.score_ns as f64 / self.scored as f64 / 1e3 },
            drifts: self.drifts.len() as u64,
            outcome_accuracy: if self.outcomes_total == 0 {
                f64::NAN
            } else {
                self.outcomes_used as f64 / self.outcomes_total as f64
            },
        }
    }

    /// Every drift detection so far.
    pub fn drifts(&self) -> &[DriftEvent] {
        &self.drifts
    }

    /// Every trial decision: (request position, decision).
    pub fn decisions(&self) -> &[(u64, Decision)] {
        &self.decisions
    }

    /// Every model made active: (request position, kind, validation).
    pub fn history(&self) -> &[(u64, ModelKind, Validation)] {
        &self.history
    }

    /// The labelled samples held now.
    pub fn dataset(&self) -> Dataset {
        self.labeller.snapshot()
    }

    /// The model versions.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn install(&mut self, mut models: Vec<TrainedModel>, samples: usize) {
        if models.is_empty() {
            return;
        }
        let best = models.swap_remove(0);
        let (kind, validation) = (best.kind, best.validation);
        let version = self.registry.add(best, self.last_train_seq, samples);
        tracing::info!(
            version,
            model = kind.name(),
            log_loss = validation.log_loss,
            auc = validation.auc,
            shadow = self.registry.active_version() != version,
            "predictor: new model"
        );
        self.trial_samples.clear();
        self.on_active_changed();
    }

    /// Records a change of active model (new drift reference, history).
    fn on_active_changed(&mut self) {
        let version = self.registry.active_version();
        if version == self.version {
            return;
        }
        self.version = version;
        if let Some(m) = self.registry.active() {
            self.history.push((self.state.seq, m.kind, m.validation));
        }
        self.reference_scores.clear();
        self.recent_scores.clear();
        self.scores_since_test = 0;
    }

    fn maybe_train(&mut self) {
        if let Some(handle) = self.training.take_if(|h| h.is_finished()) {
            match handle.join() {
                Ok(Ok((models, samples))) => self.install(models, samples),
                Ok(Err(e)) => tracing::warn!("predictor: training failed: {e}"),
                Err(_) => tracing::warn!("predictor: training thread panicked"),
            }
        }
        let due = if self.version == 0 && self.training.is_none() {
            self.labeller.labelled() >= self.config.first_train_after
        } else {
            let since = self.state.seq - self.last_train_seq;
            let timed = self
                .config
                .retrain_every_s
                .is_some_and(|every| self.time_s - self.last_train_time >= every && since >= MIN_NEW_REQUESTS);
            self.retrain_now || since >= self.config.retrain_every || timed
        };
        if !due || self.training.is_some() {
            return;
        }
        self.last_train_seq = self.state.seq;
        self.last_train_time = self.time_s;
        self.retrain_now = false;
        let data = self.labeller.snapshot();
        let config = self.config.train.clone();
        if self.config.background {
            let share = self.config.train_cpu_share;
            let spawned = std::thread::Builder::new().name("augur-train".into()).spawn(move || {
                lower_priority();
                super::throttle::limit_this_thread(share);
                trainer::train_all(&data, &config).map(|m| (m, data.len()))
            });
            match spawned {
                Ok(handle) => self.training = Some(handle),
                Err(e) => tracing::warn!("predictor: cannot start the training thread: {e}"),
            }
        } else {
            match trainer::train_all(&data, &config) {
                Ok(models) => self.install(models, data.len()),
                Err(e) => tracing::warn!("predictor: training failed: {e}"),
            }
        }
    }

    /// The label of an issued prefetch: kept for the status (the model's own
    /// view of its accuracy); the threshold follows the cache's outcomes instead.
    fn count_issued_label(&mut self, used: bool) {
        self.issued_labelled += 1;
        self.issued_used += u64::from(used);
    }

    /// Steers the threshold by the cache's outcomes, 200 at a time: up fast when
    /// the accuracy of the prefetches that landed in time is below target
    /// (wasted reads cost store load and cache space), down slowly when
    /// comfortably above it (more coverage).
    ///
    /// Late prefetches (a client read the key before the prefetch landed) are
    /// counted in the reported accuracy but do not move the threshold: lateness
    /// is a matter of the host's speed against the client's, not of the model's
    /// confidence, and raising the threshold only trades late prefetches for
    /// none (`augur sim --prefetch-delay` shows the effect offline).
    fn steer(&mut self, used: u64, wasted: u64, late: u64) {
        if used + wasted + late > 0 {
            self.requests_unheard = 0;
        }
        self.outcomes_used += used;
        self.outcomes_total += used + wasted + late;
        self.window_used += used;
        self.window_issued += used + wasted;
        if self.window_issued < 200 {
            return;
        }
        let accuracy = self.window_used as f64 / self.window_issued as f64;
        self.last_window_accuracy = accuracy;
        let target = f64::from(self.config.target_accuracy);
        if accuracy < target - 0.02 {
            self.threshold = (self.threshold + 0.03).min(0.97);
            if accuracy < target - 0.2 && self.threshold >= 0.97 && self.version > 0 {
                // Even the most confident proposals miss: the model is stale.
                self.record_drift(f64::NAN, f64::NAN, accuracy);
            }
        } else if accuracy > target + 0.05 {
            self.threshold = (self.threshold - 0.01).max(THRESHOLD_FLOOR);
        }
        self.window_issued = 0;
        self.window_used = 0;
    }

    /// Takes up a target the operator changed: the threshold restarts where a
    /// new target puts it, and the controller's window (outcomes measured
    /// against the old target) starts afresh.
    fn follow_live_target(&mut self) {
        let Some(raw) = self.config.live_target.as_ref().map(LiveTarget::raw) else {
            return;
        };
        if raw == self.live_target_seen {
            return;
        }
        self.live_target_seen = raw;
        let target = LiveTarget::target_of(raw);
        tracing::info!(from = self.config.target_accuracy, to = target, "predictor: accuracy target set");
        self.config.target_accuracy = target;
        self.threshold = start_threshold(&self.config);
        self.window_issued = 0;
        self.window_used = 0;
        self.requests_unheard = 0;
    }

    /// Called once per request: a threshold that neither issues nor hears is
    /// relaxed toward its start. Above every score it issues nothing and so would
    /// never hear the outcomes that could bring it down (a model retrained after
    /// a bad spell scores differently from the one the threshold was raised for).
    fn relax_if_unheard(&mut self) {
        self.requests_unheard += 1;
        if self.requests_unheard < RELAX_AFTER {
            return;
        }
        self.requests_unheard = 0;
        let start = start_threshold(&self.config);
        if self.threshold > start {
            let halfway = start + (self.threshold - start) / 2.0;
            self.threshold = if halfway - start < 0.01 { start } else { halfway };
        }
    }

    fn record_drift(&mut self, statistic: f64, p_value: f64, accuracy: f64) {
        let event = DriftEvent { seq: self.state.seq, statistic, p_value, window: self.config.drift_window, accuracy };
        tracing::info!(?event, "predictor: drift detected, retraining");
        self.drifts.push(event);
        self.retrain_now = true;
        self.reference_scores.clear();
        self.recent_scores.clear();
        self.scores_since_test = 0;
    }

    /// Feeds the drift test: the first window of scores after a model is
    /// installed is the reference; every half window, the newest window is
    /// compared with it.
    fn watch_drift(&mut self, scores: &[f32]) {
        let window = self.config.drift_window.max(10);
        for &p in scores {
            if self.reference_scores.len() < window {
                self.reference_scores.push(f64::from(p));
                continue;
            }
            if self.recent_scores.len() == window {
                self.recent_scores.pop_front();
            }
            self.recent_scores.push_back(f64::from(p));
            self.scores_since_test += 1;
        }
        if self.recent_scores.len() < window || self.scores_since_test < window / 2 || self.retrain_now {
            return;
        }
        self.scores_since_test = 0;
        let recent: Vec<f64> = self.recent_scores.iter().copied().collect();
        if let Some(ks) = augur_simulators::stats::ks_two_sample(&self.reference_scores, &recent) {
            if ks.p_value < self.config.drift_p_value && ks.statistic >= self.config.drift_min_statistic {
                let accuracy = self.last_window_accuracy;
                self.record_drift(ks.statistic, ks.p_value, accuracy);
            }
        }
    }

    /// Scores the current candidates; appends those above the threshold to `out`,
    /// best first, at most `degree`, with their probabilities.
    fn score_and_choose(&mut self, out: &mut Vec<(K, f32)>) {
        self.candidates.clear();
        self.batch.clear();
        let n = self.gather();
        if n == 0 {
            return;
        }
        if let Some(scores) = self.predict(1) {
            self.choose(0..n, &scores, out);
        }
    }

    /// Appends the candidates of the current request, their features and context
    /// to the batch, and queues each as an unlabelled sample. Returns how many.
    fn gather(&mut self) -> usize {
        let start = self.candidates.len();
        candidates::generate(&self.state, self.config.max_candidates, &mut self.candidates);
        if self.candidates.len() == start {
            return 0;
        }
        let context = self.state.context_hashes();
        let seq = self.state.seq;
        let mut features = [0f32; N_FEATURES];
        for cand in &self.candidates[start..] {
            let hash = key_hash(cand);
            self.state.candidate_features(cand, hash, &mut features);
            self.batch.features.extend_from_slice(&features);
            self.batch.context.extend_from_slice(&context);
            self.batch.candidates.push(hash);
            self.labeller.push(Sample { seq, features, context, candidate: hash, label: false, issued: false });
        }
        self.candidates.len() - start
    }

    /// Scores the whole batch with the active model (`None` before the first);
    /// `requests`: how many requests' candidates it holds, for the timing.
    fn predict(&mut self, requests: u64) -> Option<Vec<f32>> {
        let model = self.registry.active()?;
        let started = std::time::Instant::now();
        let p = model.predict(self.batch.view());
        self.score_ns += started.elapsed().as_nanos();
        self.scored += requests;
        self.watch_drift(&p);
        Some(p)
    }

    /// Appends the candidates in `range` scoring above the threshold, best first,
    /// at most `degree`.
    fn choose(&self, range: std::ops::Range<usize>, scores: &[f32], out: &mut Vec<(K, f32)>) {
        let mut chosen: Vec<(usize, f32)> =
            range.filter(|&i| scores[i] >= self.threshold).map(|i| (i, scores[i])).collect();
        chosen.sort_by(|a, b| b.1.total_cmp(&a.1));
        chosen.truncate(self.config.degree);
        out.extend(chosen.into_iter().map(|(i, p)| (self.candidates[i].clone(), p)));
    }

    /// Takes one request into the feature state, labels the samples whose
    /// horizon it closes, and lets a running trial judge them.
    fn observe(&mut self, key: &K, hit: bool) {
        let hash = key_hash(key);
        self.state.observe(key, hash, hit, self.time_s);
        self.follow_live_target();
        self.relax_if_unheard();
        let seq = self.state.seq;
        let state = &self.state;
        let mut outcomes = Vec::new();
        let in_trial = self.registry.in_trial();
        let trial = &mut self.trial_samples;
        self.labeller.resolve(
            seq,
            |h| state.key_stats(h).map(|s| s.last_seq),
            |s| {
                if s.issued {
                    outcomes.push(s.label);
                }
                if in_trial {
                    trial.push(s.clone());
                }
            },
        );
        for used in outcomes {
            self.count_issued_label(used);
        }
        if self.trial_samples.len() >= 512 {
            let samples = std::mem::take(&mut self.trial_samples);
            if let Some(decision) = self.registry.judge(&samples, self.threshold) {
                self.decisions.push((seq, decision));
                self.on_active_changed();
            }
        }
    }
}

impl<K: Hash + Eq + Clone + Send + SequentialKey> Prefetcher<K> for MlPrefetcher<K> {
    fn set_time(&mut self, now_s: f64) {
        self.time_s = now_s;
    }

    fn on_request(&mut self, key: &K, hit: bool, out: &mut Vec<K>) {
        let mut scored = Vec::new();
        self.on_request_scored(key, hit, &mut scored);
        out.extend(scored.into_iter().map(|(k, _)| k));
    }

    fn on_request_scored(&mut self, key: &K, hit: bool, out: &mut Vec<(K, f32)>) {
        self.observe(key, hit);
        self.maybe_train();
        self.score_and_choose(out);
    }

    /// The serving host's path: every request updates the features and labels in
    /// order, exactly as one at a time, but the candidates of all of them are
    /// scored in one model call. Per-call overhead (a tch dispatch, a tree
    /// ensemble walk setup) is then paid once per batch instead of once per
    /// request, which is what lets the predictor keep up with a busy server
    /// instead of dropping events. The batch must be shorter than the horizon,
    /// so no sample is labelled before it is marked issued.
    fn on_requests_scored(&mut self, requests: &[(K, bool)], out: &mut Vec<(K, f32)>) {
        self.candidates.clear();
        self.batch.clear();
        let mut ranges = Vec::with_capacity(requests.len());
        for (key, hit) in requests {
            self.observe(key, *hit);
            let start = self.candidates.len();
            let n = self.gather();
            if n > 0 {
                ranges.push(start..start + n);
            }
        }
        self.maybe_train();
        if ranges.is_empty() {
            return;
        }
        if let Some(scores) = self.predict(ranges.len() as u64) {
            for range in ranges {
                self.choose(range, &scores, out);
            }
        }
    }

    fn admin(&mut self, command: &AdminCommand) -> Result<String, String> {
        let reply = self.registry.admin(command);
        // Samples gathered for the trial that a command may have ended must not
        // count toward the next one.
        self.trial_samples.clear();
        self.on_active_changed();
        reply
    }

    fn on_outcomes(&mut self, used: u64, wasted: u64, late: u64) {
        self.steer(used, wasted, late);
    }

    fn on_issued(&mut self, key: &K) {
        self.issued += 1;
        self.requests_unheard = 0;
        // Search every pending sample: the host may issue (or, with a simulated
        // prefetch delay, land) a proposal several requests after it was made.
        self.labeller.mark_issued(key_hash(key), usize::MAX);
    }

    fn status(&self) -> Option<PredictorStatus> {
        Some(MlPrefetcher::status(self))
    }

    fn timeline(&self) -> Option<super::timeline::Timeline> {
        Some(super::timeline::Timeline::new(self.registry.versions(), &self.decisions, &self.drifts))
    }

    fn name(&self) -> &'static str {
        "ml"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::trainer::TrainConfig;

    /// A learnable stream: the cycle 0, 1, …, 99 over and over, one request per
    /// `dt` seconds of the host's clock.
    fn feed(p: &mut MlPrefetcher<u64>, from: u64, n: u64, dt: f64) {
        let mut out = Vec::new();
        for i in from..from + n {
            p.set_time(i as f64 * dt);
            out.clear();
            p.on_request_scored(&(i % 100), false, &mut out);
        }
    }

    fn config(retrain_every_s: Option<f64>) -> MlConfig {
        MlConfig {
            first_train_after: 2_000,
            window: 4_000,
            retrain_every: u64::MAX,
            retrain_every_s,
            // Only the schedule under test retrains: no drift trigger.
            drift_p_value: 0.0,
            train: TrainConfig { models: vec![ModelKind::Logistic], ..TrainConfig::default() },
            ..MlConfig::default()
        }
    }

    #[test]
    fn with_a_time_schedule_a_quiet_stream_is_retrained_after_enough_time_and_requests() {
        // One request a second: 600 s pass every 600 requests, but a timed
        // retraining also needs MIN_NEW_REQUESTS new requests since the last.
        let mut timed = MlPrefetcher::<u64>::new(config(Some(600.0)));
        let mut untimed = MlPrefetcher::<u64>::new(config(None));
        feed(&mut timed, 0, 1_000, 1.0);
        feed(&mut untimed, 0, 1_000, 1.0);
        assert_eq!(timed.registry().versions().len(), 1, "the first model after 2,000 labels");
        assert_eq!(untimed.registry().versions().len(), 1);
        let trained_at = timed.last_train_seq;
        let quiet = trained_at + MIN_NEW_REQUESTS - 1 - timed.state.seq;
        feed(&mut timed, 1_000, quiet, 1.0);
        assert_eq!(timed.registry().versions().len(), 1, "time enough, but too few new requests");
        feed(&mut timed, 1_000 + quiet, 100, 1.0);
        feed(&mut untimed, 1_000, quiet + 100, 1.0);
        assert_eq!(timed.registry().versions().len(), 2, "retrained on the clock");
        assert_eq!(untimed.registry().versions().len(), 1, "by requests only: not yet due");
    }

    #[test]
    fn a_target_below_the_starting_threshold_is_where_the_threshold_starts() {
        // The controller only hears about prefetches it issued: a threshold above
        // every score would issue nothing and never come down to the target.
        let low = MlPrefetcher::<u64>::new(MlConfig { target_accuracy: 0.35, ..config(None) });
        assert_eq!(low.status().threshold, 0.35);
        let default = MlPrefetcher::<u64>::new(config(None));
        assert_eq!(default.status().threshold, MlConfig::default().threshold, "the default target is above it");
    }

    #[test]
    fn a_raised_threshold_that_hears_no_outcomes_relaxes_to_its_start_and_no_lower() {
        let mut p = MlPrefetcher::<u64>::new(config(None));
        let start = p.status().threshold;
        // A bad spell: every prefetch read from the store was wasted.
        for _ in 0..8 {
            p.on_outcomes(0, 200, 0);
        }
        let raised = p.status().threshold;
        assert!(raised > start + 0.2, "raised to {raised}");
        // While outcomes keep coming at the target, the controller's setting holds.
        for i in 0..10 {
            feed(&mut p, i * 1_000, 1_000, 1.0);
            p.on_outcomes(13, 7, 0);
        }
        assert_eq!(p.status().threshold, raised);
        // Prefetches still being issued, their outcomes slow to come back (a large
        // cache, a server reporting in batches): not stranded, so it holds.
        for i in 0..4 {
            feed(&mut p, 10_000 + i * 1_000, 1_000, 1.0);
            p.on_issued(&(i % 100));
        }
        p.on_outcomes(13, 7, 0);
        assert_eq!(p.status().threshold, raised, "relaxed while prefetches were in flight");
        // Nothing issued and nothing heard for RELAX_AFTER requests: halfway back to the start.
        feed(&mut p, 14_000, RELAX_AFTER, 1.0);
        let halfway = p.status().threshold;
        assert!((halfway - (start + (raised - start) / 2.0)).abs() < 1e-6, "{halfway}");
        // Still nothing: down to the start, and it stays there.
        feed(&mut p, 14_000 + RELAX_AFTER, 20 * RELAX_AFTER, 1.0);
        assert_eq!(p.status().threshold, start);
    }

    #[test]
    fn every_set_of_the_live_target_restarts_the_threshold_even_to_the_same_value() {
        let live = LiveTarget::new(0.65);
        let mut p = MlPrefetcher::<u64>::new(MlConfig { live_target: Some(live.clone()), ..config(None) });
        let start = p.status().threshold;
        for _ in 0..4 {
            p.on_outcomes(0, 200, 0);
        }
        assert!(p.status().threshold > start, "raised by wasted prefetches");
        feed(&mut p, 0, 1, 1.0);
        assert!(p.status().threshold > start, "no set, no restart");
        // An operator sets the value already in force to un-stick the threshold.
        live.set(0.65);
        feed(&mut p, 1, 1, 1.0);
        assert_eq!(p.status().threshold, start);
        live.set(0.3);
        live.set(0.5);
        feed(&mut p, 2, 1, 1.0);
        assert_eq!(p.status().threshold, 0.5, "the last of several sets between two requests");
        assert_eq!(live.get(), 0.5);
    }
}
