//! The model contract, calibration and the trained-model bundle.
//!
//! Every model maps a batch of candidates to raw scores in [0, 1]. Raw scores are
//! not probabilities (a tree ensemble's 0.7 need not mean 70%), so each trained
//! model carries a Platt calibration fitted on held-out data; thresholds and the
//! prefetch queue only ever see calibrated probabilities.

use std::fmt;
use std::str::FromStr;

use super::dataset::{Dataset, CONTEXT};
use super::features::N_FEATURES;
use super::PredictError;

/// A batch of candidates to score.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// Row-major, `n × N_FEATURES`.
    pub features: &'a [f32],
    /// Row-major, `n × CONTEXT` key hashes.
    pub context: &'a [u64],
    /// `n` candidate key hashes.
    pub candidates: &'a [u64],
}

impl Batch<'_> {
    /// Candidates in the batch.
    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }
}

/// Owned batch storage, reused between calls to avoid allocation.
#[derive(Debug, Default, Clone)]
pub struct BatchBuf {
    /// See [`Batch::features`].
    pub features: Vec<f32>,
    /// See [`Batch::context`].
    pub context: Vec<u64>,
    /// See [`Batch::candidates`].
    pub candidates: Vec<u64>,
}

impl BatchBuf {
    /// Empties it.
    pub fn clear(&mut self) {
        self.features.clear();
        self.context.clear();
        self.candidates.clear();
    }

    /// Borrowed view.
    pub fn view(&self) -> Batch<'_> {
        Batch { features: &self.features, context: &self.context, candidates: &self.candidates }
    }

    /// The samples of a dataset as one batch.
    pub fn from_dataset(data: &Dataset) -> Self {
        let mut b = BatchBuf::default();
        for s in &data.samples {
            b.features.extend_from_slice(&s.features);
            b.context.extend_from_slice(&s.context);
            b.candidates.push(s.candidate);
        }
        b
    }
}

/// A trained scorer.
pub trait Scorer: Send {
    /// Raw scores in [0, 1], one per candidate.
    fn score(&self, batch: Batch<'_>) -> Vec<f32>;

    /// Writes its parameters to files named `stem.*` (see `registry.rs`).
    fn save(&self, stem: &std::path::Path) -> Result<(), PredictError>;
}

/// The models the predictor can train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// Logistic regression over the features (tch).
    Logistic,
    /// A two-hidden-layer perceptron over the features (tch).
    Mlp,
    /// A GRU over hashed embeddings of the context keys, joined with the
    /// candidate's embedding and its features (tch).
    Gru,
    /// A bagged ensemble of gradient-boosted trees (perpetual); the ensemble's
    /// spread is the uncertainty.
    Gbdt,
}

impl ModelKind {
    /// Every kind, in report order.
    pub const ALL: [ModelKind; 4] = [ModelKind::Logistic, ModelKind::Mlp, ModelKind::Gru, ModelKind::Gbdt];

    /// Name for reports and flags.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Logistic => "logistic",
            ModelKind::Mlp => "mlp",
            ModelKind::Gru => "gru",
            ModelKind::Gbdt => "gbdt",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = PredictError;

    fn from_str(s: &str) -> Result<Self, PredictError> {
        ModelKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| PredictError::BadConfig(format!("unknown model {s:?} (logistic, mlp, gru, gbdt)")))
    }
}

/// Per-feature standardization learned on the training set; the neural models
/// train badly on raw counts next to 0/1 flags.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Standardizer {
    mean: [f32; N_FEATURES],
    inv_std: [f32; N_FEATURES],
}

impl Standardizer {
    /// Fitted on row-major features.
    pub fn fit(rows: &[f32]) -> Self {
        let n = (rows.len() / N_FEATURES).max(1) as f64;
        let mut mean = [0f64; N_FEATURES];
        let mut sq = [0f64; N_FEATURES];
        for row in rows.chunks_exact(N_FEATURES) {
            for (j, &v) in row.iter().enumerate() {
                mean[j] += f64::from(v);
                sq[j] += f64::from(v) * f64::from(v);
            }
        }
        let mut out = Standardizer { mean: [0.0; N_FEATURES], inv_std: [1.0; N_FEATURES] };
        for j in 0..N_FEATURES {
            let m = mean[j] / n;
            let var = (sq[j] / n - m * m).max(0.0);
            out.mean[j] = m as f32;
            out.inv_std[j] = if var > 1e-12 { (1.0 / var.sqrt()) as f32 } else { 0.0 };
        }
        out
    }

    /// Standardized copy of row-major features.
    pub fn apply(&self, rows: &[f32]) -> Vec<f32> {
        rows.chunks_exact(N_FEATURES)
            .flat_map(|row| (0..N_FEATURES).map(move |j| (row[j] - self.mean[j]) * self.inv_std[j]))
            .collect()
    }
}

/// Platt scaling: P = σ(a · logit(raw) + b), fitted by Newton's method on held-out
/// data.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Platt {
    /// Slope on the raw score's logit.
    pub a: f64,
    /// Intercept.
    pub b: f64,
}

impl Default for Platt {
    fn default() -> Self {
        Platt { a: 1.0, b: 0.0 }
    }
}

fn logit(p: f32) -> f64 {
    let p = f64::from(p).clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Platt {
    /// Fits on raw scores and 0/1 labels. With one class only it returns the
    /// identity, which is all such data can support.
    pub fn fit(raw: &[f32], labels: &[f32]) -> Platt {
        let pos = labels.iter().filter(|&&y| y > 0.5).count();
        if pos == 0 || pos == labels.len() {
            return Platt::default();
        }
        // Platt's smoothed targets keep the fit finite on separable data.
        let t_pos = (pos as f64 + 1.0) / (pos as f64 + 2.0);
        let neg = labels.len() - pos;
        let t_neg = 1.0 / (neg as f64 + 2.0);
        let xs: Vec<f64> = raw.iter().map(|&r| logit(r)).collect();
        let targets: Vec<f64> = labels.iter().map(|&y| if y > 0.5 { t_pos } else { t_neg }).collect();
        let loss = |a: f64, b: f64| -> f64 {
            xs.iter()
                .zip(&targets)
                .map(|(x, t)| {
                    let z = a * x + b;
                    // log(1 + e^z) - t z, computed stably.
                    z.max(0.0) + (-z.abs()).exp().ln_1p() - t * z
                })
                .sum()
        };
        let (mut a, mut b) = (1.0f64, 0.0f64);
        let mut current = loss(a, b);
        for _ in 0..100 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
            for (x, t) in xs.iter().zip(&targets) {
                let p = sigmoid(a * x + b);
                let d = p - t;
                let w = p * (1.0 - p);
                ga += d * x;
                gb += d;
                haa += w * x * x;
                hab += w * x;
                hbb += w;
            }
            let det = haa * hbb - hab * hab;
            if det.abs() < 1e-18 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            // Backtracking: scores piled at 0 or 1 (a baseline's raw feature, a
            // confident model) make the full Newton step overshoot.
            let mut step = 1.0;
            let mut improved = false;
            while step > 1e-6 {
                let (na, nb) = (a - step * da, b - step * db);
                let l = loss(na, nb);
                if l.is_finite() && l <= current {
                    a = na;
                    b = nb;
                    improved = current - l > 1e-12 * current.abs().max(1.0);
                    current = l;
                    break;
                }
                step /= 2.0;
            }
            if !improved {
                break;
            }
        }
        if a.is_finite() && b.is_finite() {
            Platt { a, b }
        } else {
            Platt::default()
        }
    }

    /// Calibrated probability of a raw score.
    pub fn apply(&self, raw: f32) -> f32 {
        sigmoid(self.a * logit(raw) + self.b) as f32
    }
}

/// Reads a float that JSON may hold as `null`: serde_json writes NaN (a metric
/// with no samples behind it, e.g. precision when nothing scored above the
/// threshold) as `null`, and a checkpoint must read back what it wrote.
pub(crate) fn nan_from_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    <Option<f64> as serde::Deserialize>::deserialize(d).map(|v| v.unwrap_or(f64::NAN))
}

/// Validation figures of one model on held-out, later data.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Validation {
    /// Log loss of calibrated probabilities (lower is better; selects the model).
    #[serde(deserialize_with = "nan_from_null")]
    pub log_loss: f64,
    /// Area under the ROC curve.
    #[serde(deserialize_with = "nan_from_null")]
    pub auc: f64,
    /// Brier score of calibrated probabilities.
    #[serde(deserialize_with = "nan_from_null")]
    pub brier: f64,
    /// Precision of "calibrated P ≥ 0.6".
    #[serde(deserialize_with = "nan_from_null")]
    pub precision_at_06: f64,
    /// Recall of "calibrated P ≥ 0.6".
    #[serde(deserialize_with = "nan_from_null")]
    pub recall_at_06: f64,
    /// Mean |predicted − observed| over 10 probability bins (calibration error).
    #[serde(deserialize_with = "nan_from_null")]
    pub calibration_error: f64,
    /// Training wall time, ms.
    #[serde(deserialize_with = "nan_from_null")]
    pub train_ms: f64,
    /// Validation samples.
    pub samples: usize,
}

/// A trained, calibrated model.
pub struct TrainedModel {
    /// Which model.
    pub kind: ModelKind,
    /// The scorer.
    pub scorer: Box<dyn Scorer>,
    /// Its calibration.
    pub platt: Platt,
    /// How it did on held-out data.
    pub validation: Validation,
}

impl fmt::Debug for TrainedModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrainedModel").field("kind", &self.kind).field("validation", &self.validation).finish()
    }
}

impl TrainedModel {
    /// Calibrated probabilities for a batch.
    pub fn predict(&self, batch: Batch<'_>) -> Vec<f32> {
        let mut p = self.scorer.score(batch);
        p.iter_mut().for_each(|v| *v = self.platt.apply(*v));
        p
    }
}

/// Expected calibration error over 10 equal-width bins.
pub fn calibration_error(p: &[f32], y: &[f32]) -> f64 {
    let mut bins = [(0f64, 0f64, 0usize); 10];
    for (&p, &y) in p.iter().zip(y) {
        let i = ((p * 10.0) as usize).min(9);
        bins[i].0 += f64::from(p);
        bins[i].1 += f64::from(y);
        bins[i].2 += 1;
    }
    let n = p.len().max(1) as f64;
    bins.iter().filter(|b| b.2 > 0).map(|b| (b.0 - b.1).abs() / n).sum()
}

/// Hash → one of `buckets` embedding rows (0 is reserved for padding).
pub fn bucket(hash: u64, buckets: i64) -> i64 {
    if hash == 0 {
        return 0;
    }
    1 + (hash % (buckets as u64 - 1)) as i64
}

/// Context width, re-exported for the sequence model.
pub const CONTEXT_LEN: usize = CONTEXT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platt_recovers_a_known_miscalibration() {
        // Raw scores r whose true probability is σ(2·logit(r) − 1).
        let mut raw = Vec::new();
        let mut y = Vec::new();
        let mut state = 12345u64;
        for i in 0..20_000 {
            let r = ((i % 97) as f32 + 0.5) / 97.0;
            let truth = sigmoid(2.0 * logit(r) - 1.0);
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            raw.push(r);
            y.push(if u < truth { 1.0 } else { 0.0 });
        }
        let platt = Platt::fit(&raw, &y);
        assert!((platt.a - 2.0).abs() < 0.15, "a = {}", platt.a);
        assert!((platt.b + 1.0).abs() < 0.15, "b = {}", platt.b);
        let calibrated: Vec<f32> = raw.iter().map(|&r| platt.apply(r)).collect();
        assert!(calibration_error(&calibrated, &y) < calibration_error(&raw, &y));
        assert_eq!(Platt::fit(&[0.2, 0.9], &[1.0, 1.0]), Platt::default(), "one class: identity");
    }

    #[test]
    fn standardizer_centres_and_scales_and_ignores_constant_columns() {
        let mut rows = vec![0f32; 2 * N_FEATURES];
        rows[0] = 1.0;
        rows[N_FEATURES] = 3.0;
        rows[1] = 5.0;
        rows[N_FEATURES + 1] = 5.0;
        let s = Standardizer::fit(&rows);
        let out = s.apply(&rows);
        assert!((out[0] + 1.0).abs() < 1e-6 && (out[N_FEATURES] - 1.0).abs() < 1e-6);
        assert_eq!(out[1], 0.0, "a constant column carries nothing");
    }
}
