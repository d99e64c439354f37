//! Training, calibration, validation and model choice.
//!
//! The labelled samples are split by time into three consecutive parts: the
//! oldest 70% train, the next 15% fit each model's Platt calibration, the newest
//! 15% validate. Validation therefore measures calibrated probabilities on data
//! neither the model nor its calibration saw, in the order the model would meet it
//! when serving. The model with the lowest validation log loss becomes active.

use std::time::Instant;

use super::dataset::{auc, brier, log_loss, precision_recall, Dataset};
use super::features::{FEATURE_NAMES, N_FEATURES};
use super::gbdt::{GbdtConfig, GbdtEnsemble};
use super::model::{calibration_error, BatchBuf, ModelKind, Platt, Scorer, TrainedModel, Validation};
use super::torch::{self, TorchTrainConfig};
use super::PredictError;

/// What to train and how.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Kinds to train and compare.
    pub models: Vec<ModelKind>,
    /// Neural-model settings.
    pub torch: TorchTrainConfig,
    /// Tree-ensemble settings.
    pub gbdt: GbdtConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self { models: ModelKind::ALL.to_vec(), torch: TorchTrainConfig::default(), gbdt: GbdtConfig::default() }
    }
}

/// Trains one kind on `train` and returns the raw scorer.
pub fn fit(kind: ModelKind, train: &Dataset, config: &TrainConfig) -> Result<Box<dyn Scorer>, PredictError> {
    Ok(match kind {
        ModelKind::Gbdt => Box::new(GbdtEnsemble::train(train, config.gbdt)?),
        other => Box::new(torch::train(other, train, config.torch)?),
    })
}

/// Loads a checkpointed scorer of `kind` from `stem.*`.
pub fn load(kind: ModelKind, stem: &std::path::Path) -> Result<Box<dyn Scorer>, PredictError> {
    Ok(match kind {
        ModelKind::Gbdt => Box::new(GbdtEnsemble::load(stem)?),
        other => Box::new(torch::load(other, stem)?),
    })
}

/// Validation figures of calibrated probabilities `p` against labels `y`.
pub fn validate(p: &[f32], y: &[f32]) -> Validation {
    let (precision_at_06, recall_at_06) = precision_recall(p, y, 0.6);
    Validation {
        log_loss: log_loss(p, y),
        auc: auc(p, y),
        brier: brier(p, y),
        precision_at_06,
        recall_at_06,
        calibration_error: calibration_error(p, y),
        train_ms: 0.0,
        samples: p.len(),
    }
}

/// Splits `data` 70/15/15 by time.
pub fn split(data: &Dataset) -> (Dataset, Dataset, Dataset) {
    let (train, rest) = data.time_split(0.3);
    let (calibrate, valid) = rest.time_split(0.5);
    (train, calibrate, valid)
}

/// Trains every configured kind, calibrates and validates each; returns them all
/// (best first by validation log loss). Errors only if every kind failed.
pub fn train_all(data: &Dataset, config: &TrainConfig) -> Result<Vec<TrainedModel>, PredictError> {
    let (train, calibrate, valid) = split(data);
    if train.is_empty() || calibrate.is_empty() || valid.is_empty() {
        return Err(PredictError::Training(format!("{} samples are too few to train and validate", data.len())));
    }
    let cal_batch = BatchBuf::from_dataset(&calibrate);
    let valid_batch = BatchBuf::from_dataset(&valid);
    let (cal_y, valid_y) = (calibrate.labels(), valid.labels());
    let mut out = Vec::new();
    let mut last_error = None;
    for &kind in &config.models {
        super::throttle::pace();
        let started = Instant::now();
        let scorer = match fit(kind, &train, config) {
            Ok(s) => s,
            Err(e) => {
                last_error = Some(e);
                continue;
            }
        };
        let train_ms = started.elapsed().as_secs_f64() * 1e3;
        let platt = Platt::fit(&scorer.score(cal_batch.view()), &cal_y);
        let model = TrainedModel { kind, scorer, platt, validation: Validation::default() };
        let p = model.predict(valid_batch.view());
        let validation = Validation { train_ms, ..validate(&p, &valid_y) };
        out.push(TrainedModel { validation, ..model });
    }
    if out.is_empty() {
        return Err(last_error.unwrap_or_else(|| PredictError::BadConfig("no models configured".into())));
    }
    out.sort_by(|a, b| a.validation.log_loss.total_cmp(&b.validation.log_loss));
    Ok(out)
}

/// Permutation importance: the fall in validation AUC when one feature's column
/// is shuffled (features whose shuffle costs nothing carry no signal). Sorted by
/// importance, largest first.
pub fn permutation_importance(model: &TrainedModel, valid: &Dataset, seed: u64) -> Vec<(&'static str, f64)> {
    let y = valid.labels();
    let base = BatchBuf::from_dataset(valid);
    let reference = auc(&model.predict(base.view()), &y);
    let n = valid.len();
    let mut rng = seed | 1;
    let mut out = Vec::with_capacity(N_FEATURES);
    for (j, name) in FEATURE_NAMES.iter().enumerate() {
        let mut shuffled = base.clone();
        let mut column: Vec<f32> = (0..n).map(|i| base.features[i * N_FEATURES + j]).collect();
        for i in (1..n).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            column.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        for (i, v) in column.into_iter().enumerate() {
            shuffled.features[i * N_FEATURES + j] = v;
        }
        out.push((*name, reference - auc(&model.predict(shuffled.view()), &y)));
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}
