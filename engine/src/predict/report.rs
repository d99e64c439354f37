//! `augur predict`: the offline model report. Runs the feature pipeline over a
//! trace, labels candidates self-supervised, trains every model and the feature
//! baselines on the same time-ordered split, and reports one validation table,
//! permutation importance of the winner, and inference / training-step latency.

use std::time::Instant;

use augur_simulators::trace::TraceReader;
use augur_simulators::TraceError;

use super::dataset::{Dataset, CONTEXT};
use super::features::N_FEATURES;
use super::model::{Batch, BatchBuf, ModelKind, Platt, Scorer, TrainedModel};
use super::trainer::{self, TrainConfig};
use super::{MlConfig, MlPrefetcher, PredictError};
use crate::prefetch::Prefetcher;

/// Non-learned scores read straight off one feature: how the baselines rank the
/// same candidates (Markov: P(successor); OBL: numeric next; co-occurrence: the
/// association Mithril mines).
#[derive(Debug, Clone, Copy)]
struct FeatureScorer(usize);

impl Scorer for FeatureScorer {
    fn score(&self, batch: Batch<'_>) -> Vec<f32> {
        // Squeezed off exact 0 and 1: a 0/1 flag (OBL's "numeric next") would
        // otherwise sit at ±14 in logit space, where Platt's fit cannot move it.
        batch.features.chunks_exact(N_FEATURES).map(|row| row[self.0].clamp(0.01, 0.99)).collect()
    }

    fn save(&self, _stem: &std::path::Path) -> Result<(), PredictError> {
        Err(PredictError::Checkpoint("a baseline scorer has no parameters to save".into()))
    }
}

const BASELINES: [(&str, usize); 3] = [("baseline:markov", 0), ("baseline:obl", 5), ("baseline:cooccur", 4)];

/// One row of the validation table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelRow {
    /// Model or baseline name.
    pub model: String,
    /// Validation figures.
    pub validation: super::model::Validation,
    /// Training wall time per optimizer step (neural models: 512 samples per
    /// step), ms; NaN for the tree ensemble, which fits in one call.
    pub train_step_ms: f64,
    /// Inference latency for a batch of 256 candidates, p50 / p99 microseconds.
    pub infer_256_p50_us: f64,
    /// See above.
    pub infer_256_p99_us: f64,
    /// …and the mean (the spec's bar is on the average).
    pub infer_256_mean_us: f64,
}

/// The whole report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PredictReport {
    /// Requests read.
    pub requests: u64,
    /// Labelled samples.
    pub samples: usize,
    /// Fraction of positive labels.
    pub positive_rate: f64,
    /// Rows, models first (best first), then baselines.
    pub rows: Vec<ModelRow>,
    /// Permutation importance of the best model: (feature, AUC drop).
    pub importance: Vec<(String, f64)>,
    /// Name of the best model.
    pub best: String,
}

/// Labelled samples from the first `max_requests` of a trace: the predictor's own
/// pipeline (features, candidates, labels) with training switched off, replayed
/// without a cache (every request a miss).
pub fn collect(
    reader: &mut dyn TraceReader,
    max_requests: u64,
    horizon: u64,
    cap: usize,
) -> Result<(Dataset, u64), TraceError> {
    let config =
        MlConfig { horizon, window: cap, first_train_after: u64::MAX, retrain_every: u64::MAX, ..MlConfig::default() };
    let mut predictor = MlPrefetcher::<u64>::new(config);
    let mut proposals = Vec::new();
    let mut n = 0u64;
    while n < max_requests {
        let Some(req) = reader.next_request()? else { break };
        n += 1;
        predictor.set_time(req.time_us as f64 / 1e6);
        predictor.on_request(&req.key, false, &mut proposals);
    }
    Ok((predictor.dataset(), n))
}

/// p50, p99 and mean of `rounds` scorings of one batch of (up to) 256
/// validation candidates, microseconds.
fn latency_256(model: &TrainedModel, valid: &BatchBuf, rounds: usize) -> (f64, f64, f64) {
    let n = valid.candidates.len().min(256);
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let batch = Batch {
        features: &valid.features[..n * N_FEATURES],
        context: &valid.context[..n * CONTEXT],
        candidates: &valid.candidates[..n],
    };
    let mut hist = hdrhistogram::Histogram::<u64>::new(3).expect("3 significant figures is valid");
    for _ in 0..rounds {
        let started = Instant::now();
        std::hint::black_box(model.predict(batch));
        let _ = hist.record(started.elapsed().as_nanos() as u64);
    }
    (hist.value_at_quantile(0.5) as f64 / 1e3, hist.value_at_quantile(0.99) as f64 / 1e3, hist.mean() / 1e3)
}

/// Trains, validates and times every model and baseline on `data`.
pub fn build(data: &Dataset, requests: u64, config: &TrainConfig) -> Result<PredictReport, PredictError> {
    let models = trainer::train_all(data, config)?;
    let (train, calibrate, valid) = trainer::split(data);
    let steps = (config.torch.epochs * train.len().div_ceil(config.torch.batch.max(1))).max(1) as f64;
    let valid_batch = BatchBuf::from_dataset(&valid);
    let mut rows = Vec::new();
    for m in &models {
        let (p50, p99, mean) = latency_256(m, &valid_batch, 300);
        let train_step_ms = if m.kind == ModelKind::Gbdt { f64::NAN } else { m.validation.train_ms / steps };
        rows.push(ModelRow {
            model: m.kind.name().to_string(),
            validation: m.validation,
            train_step_ms,
            infer_256_p50_us: p50,
            infer_256_p99_us: p99,
            infer_256_mean_us: mean,
        });
    }
    let cal_batch = BatchBuf::from_dataset(&calibrate);
    for (name, column) in BASELINES {
        let scorer = FeatureScorer(column);
        let platt = Platt::fit(&scorer.score(cal_batch.view()), &calibrate.labels());
        let m =
            TrainedModel { kind: ModelKind::Logistic, scorer: Box::new(scorer), platt, validation: Default::default() };
        let validation = trainer::validate(&m.predict(valid_batch.view()), &valid.labels());
        rows.push(ModelRow {
            model: name.to_string(),
            validation,
            train_step_ms: f64::NAN,
            infer_256_p50_us: f64::NAN,
            infer_256_p99_us: f64::NAN,
            infer_256_mean_us: f64::NAN,
        });
    }
    let best = &models[0];
    let importance =
        trainer::permutation_importance(best, &valid, 3).into_iter().map(|(n, v)| (n.to_string(), v)).collect();
    Ok(PredictReport {
        requests,
        samples: data.len(),
        positive_rate: data.positive_rate(),
        rows,
        importance,
        best: best.kind.name().to_string(),
    })
}

/// Markdown rendering of the report.
pub fn to_markdown(r: &PredictReport) -> String {
    let mut s = format!(
        "{} requests, {} labelled candidates, {:.1}% positive; split 70/15/15 by time \
         (train / calibrate / validate). Best: {}.\n\n",
        r.requests,
        r.samples,
        r.positive_rate * 100.0,
        r.best
    );
    s.push_str(
        "| model | log loss | AUC | Brier | ECE | precision@0.6 | recall@0.6 | train ms | step ms | infer 256 p50 µs | p99 µs |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in &r.rows {
        let v = &row.validation;
        s.push_str(&format!(
            "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.3} | {:.3} | {:.0} | {:.2} | {:.0} | {:.0} |\n",
            row.model,
            v.log_loss,
            v.auc,
            v.brier,
            v.calibration_error,
            v.precision_at_06,
            v.recall_at_06,
            v.train_ms,
            row.train_step_ms,
            row.infer_256_p50_us,
            row.infer_256_p99_us
        ));
    }
    s.push_str("\nPermutation importance of the best model (validation AUC lost when the feature is shuffled):\n\n");
    s.push_str("| feature | AUC drop |\n|---|---|\n");
    for (name, drop) in &r.importance {
        s.push_str(&format!("| {name} | {drop:.4} |\n"));
    }
    s
}
