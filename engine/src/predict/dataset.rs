//! Self-supervised training data and the validation metrics.
//!
//! Every scored candidate becomes a sample once its outcome is known: the label is
//! 1 if the candidate was requested within the next `horizon` requests. The label
//! comes from the feature state's "last requested at" for the candidate, checked
//! exactly `horizon` requests later, so labelling is O(1) per sample. Samples are
//! kept in arrival order in a bounded ring; validation splits by time (train on the
//! older part, validate on the newer), so no sample's future leaks into training.

use std::collections::VecDeque;

use super::features::N_FEATURES;

/// Context tokens per sample (hashed key buckets) for the sequence model.
pub const CONTEXT: usize = 8;

/// One labelled candidate.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Request position at which it was scored.
    pub seq: u64,
    /// Per-candidate features.
    pub features: [f32; N_FEATURES],
    /// Hashes of the context keys, oldest first, zero-padded at the front.
    pub context: [u64; CONTEXT],
    /// Hash of the candidate.
    pub candidate: u64,
    /// Requested within the horizon.
    pub label: bool,
    /// The prefetcher acted on it (its outcome drives the threshold).
    pub issued: bool,
}

/// A time-ordered set of samples.
#[derive(Debug, Default, Clone)]
pub struct Dataset {
    /// Oldest first.
    pub samples: Vec<Sample>,
}

impl Dataset {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Fraction of positive labels.
    pub fn positive_rate(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        self.samples.iter().filter(|s| s.label).count() as f64 / self.samples.len() as f64
    }

    /// The older `1 - fraction` for training and the newer `fraction` for
    /// validation.
    pub fn time_split(&self, fraction: f64) -> (Dataset, Dataset) {
        let cut = ((self.samples.len() as f64) * (1.0 - fraction)).round() as usize;
        let cut = cut.min(self.samples.len());
        (Dataset { samples: self.samples[..cut].to_vec() }, Dataset { samples: self.samples[cut..].to_vec() })
    }

    /// Labels as 0/1.
    pub fn labels(&self) -> Vec<f32> {
        self.samples.iter().map(|s| f32::from(u8::from(s.label))).collect()
    }

    /// Features, row-major.
    pub fn feature_rows(&self) -> Vec<f32> {
        self.samples.iter().flat_map(|s| s.features).collect()
    }
}

/// Candidates waiting for their outcome, then the labelled ring.
#[derive(Debug)]
pub struct Labeller {
    horizon: u64,
    pending: VecDeque<Sample>,
    ring: VecDeque<Sample>,
    capacity: usize,
    labelled: u64,
}

impl Labeller {
    /// Labels against `horizon` requests and keeps the newest `capacity` samples.
    pub fn new(horizon: u64, capacity: usize) -> Self {
        Self { horizon: horizon.max(1), pending: VecDeque::new(), ring: VecDeque::new(), capacity, labelled: 0 }
    }

    /// The horizon, requests.
    pub fn horizon(&self) -> u64 {
        self.horizon
    }

    /// Queues an unlabelled sample.
    pub fn push(&mut self, sample: Sample) {
        self.pending.push_back(sample);
    }

    /// Marks the pending sample for `candidate` among the newest `recent` as issued.
    pub fn mark_issued(&mut self, candidate: u64, recent: usize) {
        if let Some(s) = self.pending.iter_mut().rev().take(recent).find(|s| s.candidate == candidate) {
            s.issued = true;
        }
    }

    /// Labels every pending sample whose horizon has passed at request `seq`;
    /// `last_seen(hash)` is the last position at which a key was requested.
    /// Returns the samples labelled this call (for accuracy tracking).
    pub fn resolve(&mut self, seq: u64, last_seen: impl Fn(u64) -> Option<u64>, mut on_label: impl FnMut(&Sample)) {
        while self.pending.front().is_some_and(|s| s.seq + self.horizon <= seq) {
            let Some(mut s) = self.pending.pop_front() else { break };
            s.label = last_seen(s.candidate).is_some_and(|at| at > s.seq);
            on_label(&s);
            self.labelled += 1;
            if self.ring.len() == self.capacity {
                self.ring.pop_front();
            }
            if self.capacity > 0 {
                self.ring.push_back(s);
            }
        }
    }

    /// Samples labelled since the start.
    pub fn labelled(&self) -> u64 {
        self.labelled
    }

    /// The newest labelled samples, oldest first.
    pub fn snapshot(&self) -> Dataset {
        Dataset { samples: self.ring.iter().cloned().collect() }
    }
}

/// Log loss of probabilities against labels (clamped away from 0 and 1).
pub fn log_loss(p: &[f32], y: &[f32]) -> f64 {
    if p.is_empty() {
        return f64::NAN;
    }
    let sum: f64 = p
        .iter()
        .zip(y)
        .map(|(&p, &y)| {
            let p = f64::from(p).clamp(1e-6, 1.0 - 1e-6);
            -(f64::from(y) * p.ln() + (1.0 - f64::from(y)) * (1.0 - p).ln())
        })
        .sum();
    sum / p.len() as f64
}

/// Mean squared error of probabilities (Brier score).
pub fn brier(p: &[f32], y: &[f32]) -> f64 {
    if p.is_empty() {
        return f64::NAN;
    }
    p.iter().zip(y).map(|(&p, &y)| f64::from(p - y).powi(2)).sum::<f64>() / p.len() as f64
}

/// Area under the ROC curve (ties count half), O(n log n).
pub fn auc(p: &[f32], y: &[f32]) -> f64 {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let (mut rank_sum, mut pos, mut i) = (0.0f64, 0usize, 0usize);
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && p[idx[j + 1]] == p[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if y[k] > 0.5 {
                rank_sum += avg_rank;
                pos += 1;
            }
        }
        i = j + 1;
    }
    let neg = p.len() - pos;
    if pos == 0 || neg == 0 {
        return f64::NAN;
    }
    (rank_sum - (pos * (pos + 1)) as f64 / 2.0) / (pos as f64 * neg as f64)
}

/// Precision and recall of "p ≥ threshold".
pub fn precision_recall(p: &[f32], y: &[f32], threshold: f32) -> (f64, f64) {
    let (mut tp, mut fp, mut pos) = (0u64, 0u64, 0u64);
    for (&p, &y) in p.iter().zip(y) {
        let positive = y > 0.5;
        pos += u64::from(positive);
        if p >= threshold {
            if positive {
                tp += 1;
            } else {
                fp += 1;
            }
        }
    }
    let precision = if tp + fp == 0 { f64::NAN } else { tp as f64 / (tp + fp) as f64 };
    let recall = if pos == 0 { f64::NAN } else { tp as f64 / pos as f64 };
    (precision, recall)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_hand_computed_values() {
        let p = [0.1, 0.4, 0.35, 0.8];
        let y = [0.0, 0.0, 1.0, 1.0];
        // sklearn.metrics.roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.75
        assert!((auc(&p, &y) - 0.75).abs() < 1e-12);
        let brier_expected = (0.01 + 0.16 + 0.4225 + 0.04) / 4.0;
        assert!((brier(&p, &y) - brier_expected).abs() < 1e-6);
        let ll = -(0.9f64.ln() + 0.6f64.ln() + 0.35f64.ln() + 0.8f64.ln()) / 4.0;
        assert!((log_loss(&p, &y) - ll).abs() < 1e-6);
        assert_eq!(precision_recall(&p, &y, 0.38), (0.5, 0.5));
        assert!(auc(&[0.5, 0.5], &[1.0, 1.0]).is_nan(), "one class: undefined, not a number pretending");
    }

    #[test]
    fn labels_come_from_the_future_within_the_horizon_only() {
        let mut l = Labeller::new(4, 10);
        let sample = |seq, candidate| Sample {
            seq,
            features: [0.0; N_FEATURES],
            context: [0; CONTEXT],
            candidate,
            label: false,
            issued: false,
        };
        l.push(sample(1, 7));
        l.push(sample(2, 8));
        let seen = |h: u64| match h {
            7 => Some(3), // requested at 3: within (1, 5]
            8 => Some(2), // last at 2, not after
            _ => None,
        };
        let mut got = Vec::new();
        l.resolve(5, seen, |s| got.push(s.label));
        assert_eq!(got, vec![true], "only the first is due at 5");
        l.resolve(6, seen, |s| got.push(s.label));
        assert_eq!(got, vec![true, false]);
        let (train, valid) = l.snapshot().time_split(0.5);
        assert_eq!((train.samples[0].seq, valid.samples[0].seq), (1, 2), "older trains, newer validates");
    }
}
