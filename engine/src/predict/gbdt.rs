//! Gradient-boosted trees: a small bagged ensemble of `forust-ml` boosters.
//!
//! Why forust: the spec names XGBoost and NGBoost, but both are C++ or Python;
//! their Rust bindings compile a C++ library on every fresh machine (minutes here)
//! and NGBoost has no Rust port. forust is a pure-Rust, XGBoost-style histogram
//! booster (log loss, depth-wise trees) that builds on stable Rust; its successor,
//! perpetual, needs a nightly compiler. Uncertainty, NGBoost's contribution, comes
//! from the ensemble: each
//! member trains on a bootstrap (Poisson-weighted) resample, and the spread of
//! their predictions is reported next to the mean. Inference is pure Rust, so it
//! costs microseconds per candidate.

use std::path::Path;

use forust_ml::objective::ObjectiveType;
use forust_ml::{GradientBooster, Matrix};

use super::dataset::Dataset;
use super::features::N_FEATURES;
use super::forest::CompiledBooster;
use super::model::{Batch, Scorer};
use super::PredictError;

/// Ensemble settings.
#[derive(Debug, Clone, Copy)]
pub struct GbdtConfig {
    /// Boosters in the ensemble.
    pub members: usize,
    /// Boosting rounds per member.
    pub iterations: usize,
    /// Shrinkage per round.
    pub learning_rate: f32,
    /// Tree depth.
    pub max_depth: usize,
    /// Seed for the resampling.
    pub seed: u64,
}

impl Default for GbdtConfig {
    fn default() -> Self {
        Self { members: 3, iterations: 60, learning_rate: 0.15, max_depth: 5, seed: 11 }
    }
}

/// The trained ensemble.
pub struct GbdtEnsemble {
    members: Vec<GradientBooster>,
    /// The members laid out for fast inference (see `forest`); `None` if one of
    /// them does not fit that layout, and then forust scores.
    compiled: Option<Vec<CompiledBooster>>,
}

impl std::fmt::Debug for GbdtEnsemble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GbdtEnsemble").field("members", &self.members.len()).finish()
    }
}

/// Row-major f32 rows of `width` values → column-major f64, forust's layout.
pub(super) fn column_major(rows: &[f32], width: usize) -> Vec<f64> {
    let n = rows.len() / width.max(1);
    let mut out = vec![0f64; rows.len()];
    for (i, row) in rows.chunks_exact(width.max(1)).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            out[j * n + i] = f64::from(v);
        }
    }
    out
}

/// Poisson(1) draw from a uniform, by inversion (bootstrap weights).
fn poisson1(u: f64) -> f64 {
    let (mut k, mut p, mut cdf) = (0u32, (-1f64).exp(), (-1f64).exp());
    while u > cdf && k < 16 {
        k += 1;
        p /= f64::from(k);
        cdf += p;
    }
    f64::from(k)
}

impl GbdtEnsemble {
    /// Trains the ensemble on `data`.
    pub fn train(data: &Dataset, config: GbdtConfig) -> Result<Self, PredictError> {
        let rows = data.feature_rows();
        let cols = column_major(&rows, N_FEATURES);
        let n = data.len();
        let matrix = Matrix::new(&cols, n, N_FEATURES);
        let y: Vec<f64> = data.labels().into_iter().map(f64::from).collect();
        let mut members = Vec::with_capacity(config.members);
        let mut rng = config.seed | 1;
        for m in 0..config.members.max(1) {
            super::throttle::pace();
            let weights: Vec<f64> = (0..n)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    poisson1((rng >> 11) as f64 / (1u64 << 53) as f64)
                })
                .collect();
            let mut booster = GradientBooster::default()
                .set_objective_type(ObjectiveType::LogLoss)
                .set_iterations(config.iterations)
                .set_learning_rate(config.learning_rate)
                .set_max_depth(config.max_depth)
                .set_parallel(false)
                .set_seed(config.seed + m as u64);
            booster
                .fit(&matrix, &y, &weights, None)
                .map_err(|e| PredictError::Training(format!("gbdt member {m}: {e}")))?;
            members.push(booster);
        }
        Ok(Self::new(members))
    }

    fn new(members: Vec<GradientBooster>) -> Self {
        let compiled = members.iter().map(|b| CompiledBooster::new(b, N_FEATURES)).collect();
        Self { members, compiled }
    }

    /// Each member's probability per candidate, member-major.
    fn member_probabilities(&self, features: &[f32], n: usize) -> Vec<Vec<f64>> {
        // forust predicts log-odds under log loss.
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        if let Some(compiled) = &self.compiled {
            let mut all = Vec::with_capacity(compiled.len());
            for member in compiled {
                let mut raw = vec![0.0; n];
                if member.predict_into(features, &mut raw).is_none() {
                    break;
                }
                all.push(raw.into_iter().map(sigmoid).collect());
            }
            if all.len() == compiled.len() {
                return all;
            }
        }
        let cols = column_major(features, N_FEATURES);
        let matrix = Matrix::new(&cols, n, N_FEATURES);
        self.members.iter().map(|b| b.predict(&matrix, false).into_iter().map(sigmoid).collect()).collect()
    }

    /// Mean and standard deviation of the members' probabilities per candidate.
    pub fn predict_with_spread(&self, features: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let n = features.len() / N_FEATURES;
        if n == 0 || self.members.is_empty() {
            return (vec![0.0; n], vec![0.0; n]);
        }
        let all = self.member_probabilities(features, n);
        let k = all.len() as f64;
        let mut mean = Vec::with_capacity(n);
        let mut spread = Vec::with_capacity(n);
        for i in 0..n {
            let m = all.iter().map(|p| p[i]).sum::<f64>() / k;
            let var = all.iter().map(|p| (p[i] - m).powi(2)).sum::<f64>() / k;
            mean.push(m as f32);
            spread.push(var.sqrt() as f32);
        }
        (mean, spread)
    }
}

impl GbdtEnsemble {
    /// Loads an ensemble saved by [`Scorer::save`].
    pub fn load(stem: &Path) -> Result<Self, PredictError> {
        let path = stem.with_extension("gbdt.json");
        let text =
            std::fs::read_to_string(&path).map_err(|e| PredictError::Checkpoint(format!("{}: {e}", path.display())))?;
        let dumps: Vec<String> = serde_json::from_str(&text)
            .map_err(|e| PredictError::Checkpoint(format!("{} is corrupt: {e}", path.display())))?;
        let members = dumps
            .iter()
            .map(|d| GradientBooster::from_json(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PredictError::Checkpoint(format!("{}: {e}", path.display())))?;
        Ok(Self::new(members))
    }
}

impl Scorer for GbdtEnsemble {
    /// The ensemble mean less one standard deviation: a candidate the members
    /// disagree on is scored as the pessimistic member would, so uncertainty
    /// lowers confidence before calibration.
    fn score(&self, batch: Batch<'_>) -> Vec<f32> {
        let (mean, spread) = self.predict_with_spread(batch.features);
        mean.iter().zip(&spread).map(|(m, s)| (m - s).clamp(0.0, 1.0)).collect()
    }

    fn save(&self, stem: &Path) -> Result<(), PredictError> {
        let dumps = self
            .members
            .iter()
            .map(|b| b.json_dump())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PredictError::Checkpoint(e.to_string()))?;
        let path = stem.with_extension("gbdt.json");
        let text = serde_json::to_vec(&dumps).map_err(|e| PredictError::Checkpoint(e.to_string()))?;
        std::fs::write(&path, text).map_err(|e| PredictError::Checkpoint(format!("{}: {e}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use augur_simulators::rng::Rng;

    use super::*;

    #[test]
    fn the_compiled_ensemble_scores_exactly_as_forust_does() {
        let n = 2_000;
        let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
        let rows: Vec<f32> = (0..n * N_FEATURES).map(|_| rng.next_f64() as f32).collect();
        let y: Vec<f64> = rows.chunks_exact(N_FEATURES).map(|r| f64::from(u8::from(r[0] + r[1] > 1.0))).collect();
        let cols = column_major(&rows, N_FEATURES);
        let members = || -> Vec<GradientBooster> {
            (0..3)
                .map(|m| {
                    let mut b = GradientBooster::default()
                        .set_objective_type(ObjectiveType::LogLoss)
                        .set_iterations(20)
                        .set_max_depth(5)
                        .set_parallel(false)
                        .set_seed(m);
                    b.fit(&Matrix::new(&cols, n, N_FEATURES), &y, &vec![1.0; n], None).expect("fit");
                    b
                })
                .collect()
        };
        let fast = GbdtEnsemble::new(members());
        assert!(fast.compiled.is_some(), "depth-5 trees compile");
        let slow = GbdtEnsemble { members: members(), compiled: None };
        let batch = &rows[..256 * N_FEATURES];
        assert_eq!(fast.predict_with_spread(batch), slow.predict_with_spread(batch));
    }
}
