//! The learned predictor: which cold keys will be requested soon.
//!
//! One job per module:
//! - [`features`]: incremental per-key, frequency, sequence and successor state.
//! - [`candidates`]: the few keys worth scoring after each request.
//! - [`dataset`]: self-supervised labels ("requested within the horizon") and the
//!   validation metrics.
//! - [`model`]: the scorer contract, Platt calibration, the trained-model bundle.
//! - [`torch`]: logistic, MLP and GRU models through libtorch.
//! - [`gbdt`]: a bagged gradient-boosted-tree ensemble with uncertainty.
//! - [`trainer`]: time-ordered train / calibrate / validate, model choice,
//!   permutation importance.
//! - [`report`]: the offline validation table behind `augur predict`.
//! - [`registry`]: model versions, shadow trials, promotion, rollback, checkpoints.
//! - [`timeline`]: what the predictor did when (versions, trials, drift), for reports.
//! - [`predictor`]: [`MlPrefetcher`], the [`Prefetcher`](crate::prefetch::Prefetcher)
//!   that ties them together, used by `augur sim` and `augur serve` alike.

pub mod candidates;
pub mod dataset;
pub mod features;
pub mod forest;
pub mod gbdt;
pub mod model;
pub mod predictor;
pub mod registry;
pub mod report;
pub mod throttle;
pub mod timeline;
pub mod torch;
pub mod trainer;

pub use self::model::ModelKind;
pub use self::predictor::{DriftEvent, LiveTarget, MlConfig, MlPrefetcher, PredictorStatus, THRESHOLD_FLOOR};

/// Why training or scoring failed.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    /// A setting is unusable.
    #[error("predictor configuration: {0}")]
    BadConfig(String),
    /// A model could not be trained.
    #[error("training: {0}")]
    Training(String),
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(String),
    /// A checkpoint could not be written or read.
    #[error("model checkpoint: {0}")]
    Checkpoint(String),
}
