//! The learned prefetcher's timeline: when each model version was trained, when
//! a trial promoted, rejected or rolled back a version, and when drift was
//! detected, by request position.
//!
//! It exists for reports. A hit ratio that dips and recovers means little on its
//! own; next to "drift detected here, v3 promoted there" it explains itself, so
//! `augur validate` marks these events on its hit-ratio plots. It is an owned
//! snapshot, taken through [`Prefetcher::timeline`](crate::prefetch::Prefetcher::timeline)
//! after a replay, and kept apart from the predictor so that reading it never
//! touches the predictor's hot state.

use serde::Serialize;

use super::registry::{Decision, ModelMeta};
use super::DriftEvent;

/// One model version as trained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionMark {
    /// Request position at which its training started.
    pub at: u64,
    /// 1, 2, …
    pub version: u32,
    /// Model kind name.
    pub model: String,
    /// Where it ended up: active, shadow, previous, retired, rejected or rolled-back.
    pub state: String,
}

/// One drift detection.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DriftMark {
    /// Request position.
    pub at: u64,
    /// KS statistic D (NaN when the accuracy trigger fired).
    pub statistic: f64,
    /// Its p-value (NaN when the accuracy trigger fired).
    pub p_value: f64,
}

/// What a learning prefetcher did, in order. Positions are those of the requests
/// the prefetcher saw until a runner rewrites them ([`Timeline::map_positions`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timeline {
    /// Every version trained, oldest first.
    pub versions: Vec<VersionMark>,
    /// Every trial's outcome: (position, decision).
    pub decisions: Vec<(u64, Decision)>,
    /// Every drift detection.
    pub drifts: Vec<DriftMark>,
}

impl Timeline {
    /// A snapshot of a predictor's registry, trial decisions and drift detections.
    pub fn new(versions: &[ModelMeta], decisions: &[(u64, Decision)], drifts: &[DriftEvent]) -> Self {
        Timeline {
            versions: versions
                .iter()
                .map(|m| VersionMark {
                    at: m.trained_at_seq,
                    version: m.version,
                    model: m.kind.clone(),
                    state: m.state.clone(),
                })
                .collect(),
            decisions: decisions.to_vec(),
            drifts: drifts
                .iter()
                .map(|d| DriftMark { at: d.seq, statistic: d.statistic, p_value: d.p_value })
                .collect(),
        }
    }

    /// When the active model changed, and to which version, in order. The first
    /// version becomes active as soon as it is trained (a registry with no active
    /// model takes its first one at once); later ones by promotion or rollback.
    /// Operator commands (`AUGUR.MODEL PROMOTE`) and a model reloaded from a
    /// checkpoint are not events here: the simulator has neither.
    pub fn activations(&self) -> Vec<(u64, u32)> {
        let mut out: Vec<(u64, u32)> = self.versions.first().map(|v| (v.at, v.version)).into_iter().collect();
        out.extend(self.decisions.iter().filter_map(|&(at, d)| match d {
            Decision::Promoted(v) | Decision::RolledBack { to: v, .. } => Some((at, v)),
            Decision::Rejected(_) | Decision::Retired(_) => None,
        }));
        out
    }

    /// The same timeline with every position passed through `f` (for example from
    /// the prefetcher's own request count to positions in a trace it saw part of).
    pub fn map_positions(mut self, f: impl Fn(u64) -> u64) -> Self {
        for v in &mut self.versions {
            v.at = f(v.at);
        }
        for (at, _) in &mut self.decisions {
            *at = f(*at);
        }
        for d in &mut self.drifts {
            d.at = f(d.at);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(at: u64, version: u32) -> VersionMark {
        VersionMark { at, version, model: "mlp".into(), state: "active".into() }
    }

    #[test]
    fn activations_follow_the_first_version_then_promotions_and_rollbacks() {
        let t = Timeline {
            versions: vec![version(100, 1), version(500, 2), version(900, 3)],
            decisions: vec![
                (700, Decision::Promoted(2)),
                (800, Decision::Retired(1)),
                (1000, Decision::Rejected(3)),
                (1200, Decision::RolledBack { to: 1, from: 2 }),
            ],
            drifts: vec![DriftMark { at: 850, statistic: 0.3, p_value: 1e-6 }],
        };
        assert_eq!(t.activations(), vec![(100, 1), (700, 2), (1200, 1)]);
        let doubled = t.map_positions(|at| at * 2);
        assert_eq!(doubled.activations(), vec![(200, 1), (1400, 2), (2400, 1)]);
        assert_eq!(doubled.drifts[0].at, 1700);
        assert_eq!(doubled.versions[2].at, 1800);
        assert!(Timeline::default().activations().is_empty());
    }
}
