//! Prefetchers: given the request stream, name keys worth loading before they are
//! asked for.
//!
//! The non-learned baselines live here, one file each, so the learned predictor is
//! judged against them in the same harness and later served by the same engine
//! code:
//! - [`Obl`]: one-block lookahead, the next sequential key after a sequential run.
//! - [`Markov`]: a bounded first-order successor table.
//! - [`Mithril`]: association mining of keys missed close together in time
//!   (Yang et al., SoCC'17), with bounded tables.
//!
//! A prefetcher only predicts; the mechanism (the simulator's cache, later the
//! engine's read path) checks what is already cached, fetches the rest and tracks
//! whether each prefetch was used.

mod markov;
mod mithril;
mod obl;
pub mod service;
pub mod successors;

use std::hash::Hash;

use bytes::Bytes;

use crate::predict::{MlConfig, MlPrefetcher, PredictError};

pub use self::markov::{Markov, MarkovConfig};
pub use self::mithril::{Mithril, MithrilConfig};
pub use self::obl::Obl;

/// The prefetchers `augur sim` and `augur serve --prefetch` know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefetchKind {
    /// Demand fetching only.
    None,
    /// Next sequential key.
    Obl,
    /// Successor table.
    Markov,
    /// Association mining.
    Mithril,
    /// The learned predictor.
    Ml,
}

impl PrefetchKind {
    /// Name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PrefetchKind::None => "none",
            PrefetchKind::Obl => "obl",
            PrefetchKind::Markov => "markov",
            PrefetchKind::Mithril => "mithril",
            PrefetchKind::Ml => "ml",
        }
    }

    /// A fresh prefetcher over keys `K` for the simulator (`None` for demand
    /// fetching): the learned predictor, tuned by `tuning`, trains inline, in memory.
    pub fn build<K>(self, tuning: MlTuning) -> Option<Box<dyn Prefetcher<K>>>
    where
        K: Hash + Eq + Clone + Send + SequentialKey + 'static,
    {
        match self {
            PrefetchKind::Ml => Some(Box::new(MlPrefetcher::<K>::new(tuning.apply(MlConfig::default())))),
            baseline => baseline.baseline(),
        }
    }

    /// A fresh prefetcher with the learned predictor's settings given (serving:
    /// background training, checkpoints in `ml.model_dir`, which may fail to open).
    pub fn build_with<K>(self, ml: MlConfig) -> Result<Option<Box<dyn Prefetcher<K>>>, PredictError>
    where
        K: Hash + Eq + Clone + Send + SequentialKey + 'static,
    {
        match self {
            PrefetchKind::Ml => Ok(Some(Box::new(MlPrefetcher::<K>::open(ml)?))),
            baseline => Ok(baseline.baseline()),
        }
    }

    /// The non-learned prefetchers (`None` for `none` and `ml`).
    fn baseline<K>(self) -> Option<Box<dyn Prefetcher<K>>>
    where
        K: Hash + Eq + Clone + Send + SequentialKey + 'static,
    {
        match self {
            PrefetchKind::None | PrefetchKind::Ml => None,
            PrefetchKind::Obl => Some(Box::new(Obl::<K>::default())),
            PrefetchKind::Markov => Some(Box::new(Markov::<K>::new(MarkovConfig::default()))),
            PrefetchKind::Mithril => Some(Box::new(Mithril::<K>::new(MithrilConfig::default()))),
        }
    }
}

/// The learned predictor's settings an operator chooses, the same on both hosts
/// (`augur serve` and `augur sim`/`augur ab` take the same flag).
///
/// Why the accuracy target is a setting: it is the price of a hit. On a workload
/// whose best guess is right half the time (a walk that takes its likeliest next
/// key with probability 0.475), no prefetcher can be above 60% accurate and still
/// prefetch; the default declines, while a store with read capacity to spare is
/// better served by a lower target that prefetches those guesses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MlTuning {
    /// Share of issued prefetches that should be read before eviction; the
    /// threshold controller moves the probability threshold to hold it.
    pub target_accuracy: f32,
}

impl Default for MlTuning {
    fn default() -> Self {
        Self { target_accuracy: MlConfig::default().target_accuracy }
    }
}

impl MlTuning {
    /// Lowest accepted accuracy target: the threshold's floor, below which the
    /// controller cannot lower the threshold to chase a target.
    pub const MIN_TARGET_ACCURACY: f32 = crate::predict::THRESHOLD_FLOOR;

    /// `self` with the accuracy target `target`, which must lie in
    /// [[`MIN_TARGET_ACCURACY`](Self::MIN_TARGET_ACCURACY), 1).
    pub fn with_target_accuracy(self, target: f64) -> Result<Self, String> {
        // Checked as stored: 0.2 given is 0.2 kept, and 0.99999999 would round to 1.
        let stored = target as f32;
        if !(Self::MIN_TARGET_ACCURACY..1.0).contains(&stored) {
            return Err(format!(
                "the prefetch accuracy target must be in [{}, 1), got {target}",
                Self::MIN_TARGET_ACCURACY
            ));
        }
        Ok(Self { target_accuracy: stored })
    }

    /// `config` with these settings.
    pub fn apply(self, config: MlConfig) -> MlConfig {
        MlConfig { target_accuracy: self.target_accuracy, ..config }
    }
}

/// Predicts keys to fetch ahead of demand.
pub trait Prefetcher<K>: Send {
    /// Observes one demand request for `key` (`hit`: it was cached) and appends
    /// the keys worth fetching now to `out`.
    fn on_request(&mut self, key: &K, hit: bool, out: &mut Vec<K>);

    /// Like [`on_request`](Self::on_request), with each key's confidence in [0, 1]
    /// (the prefetch queue's priority). Baselines have no probabilities and say 1.
    fn on_request_scored(&mut self, key: &K, hit: bool, out: &mut Vec<(K, f32)>) {
        let mut keys = Vec::new();
        self.on_request(key, hit, &mut keys);
        out.extend(keys.into_iter().map(|k| (k, 1.0)));
    }

    /// Several requests in order, as the serving host drains them: the same as
    /// calling [`on_request_scored`](Self::on_request_scored) for each, except
    /// that a learning prefetcher may score them all in one model call.
    fn on_requests_scored(&mut self, requests: &[(K, bool)], out: &mut Vec<(K, f32)>) {
        for (key, hit) in requests {
            self.on_request_scored(key, *hit, out);
        }
    }

    /// The clock of the next request, seconds (trace time or wall time).
    fn set_time(&mut self, _now_s: f64) {}

    /// The mechanism fetched `key` (it was proposed and not cached).
    fn on_issued(&mut self, _key: &K) {}

    /// Since the last call, `used` prefetched entries were read, `wasted` were
    /// evicted unread, and `late` landed after a client had read the key itself:
    /// the accuracy the spec measures, fed back so a learning prefetcher can hold
    /// it at its target and aim far enough ahead.
    fn on_outcomes(&mut self, _used: u64, _wasted: u64, _late: u64) {}

    /// An operator command for a learning prefetcher's models.
    fn admin(&mut self, _command: &crate::predict::registry::AdminCommand) -> Result<String, String> {
        Err(format!("the {} prefetcher has no models", self.name()))
    }

    /// Where a learning prefetcher stands (model version, threshold, accuracy).
    fn status(&self) -> Option<crate::predict::PredictorStatus> {
        None
    }

    /// What a learning prefetcher did along the way (model versions, trial
    /// decisions, drift detections, at the positions of the requests it saw), for
    /// reports such as `augur validate`'s plots; `None` for the baselines.
    fn timeline(&self) -> Option<crate::predict::timeline::Timeline> {
        None
    }

    /// Name for reports.
    fn name(&self) -> &'static str;
}

/// Keys with a shape: a "next" key, for sequential prefetching, and a prefix
/// shared with related keys.
pub trait SequentialKey: Sized {
    /// The key after this one, if there is one.
    fn successor(&self) -> Option<Self>;

    /// A hash of the key's prefix, the part that related keys share (`None`: the
    /// key has no structure to group by).
    fn prefix_hash(&self) -> Option<u64> {
        None
    }
}

impl SequentialKey for u64 {
    fn successor(&self) -> Option<Self> {
        self.checked_add(1)
    }
}

/// Bytes that end a key's prefix, as Redis key names are usually built
/// (`user:1234:profile`, `img/2024/a.png`).
const PREFIX_SEPARATORS: &[u8] = b":/|#";

/// `user:0099` → `user:0100`: the trailing decimal number incremented, its width
/// kept (growing on overflow, `k99` → `k100`). Keys without trailing digits have no
/// successor. This is how ranges of Redis keys are usually named.
impl SequentialKey for Bytes {
    fn successor(&self) -> Option<Self> {
        let digits = self.iter().rev().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let mut out = self.to_vec();
        let start = out.len() - digits;
        for i in (start..out.len()).rev() {
            if out[i] == b'9' {
                out[i] = b'0';
            } else {
                out[i] += 1;
                return Some(Bytes::from(out));
            }
        }
        out.insert(start, b'1');
        Some(Bytes::from(out))
    }

    /// Everything up to and including the last separator: `user:1234:` for
    /// `user:1234:profile`, so `user:1234:orders` is its sibling.
    fn prefix_hash(&self) -> Option<u64> {
        let end = self.iter().rposition(|b| PREFIX_SEPARATORS.contains(b))?;
        if end == 0 || end + 1 == self.len() {
            return None;
        }
        Some(std::hash::BuildHasher::hash_one(&rustc_hash::FxBuildHasher, &self[..=end]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successors_of_integer_and_textual_keys() {
        assert_eq!(41u64.successor(), Some(42));
        assert_eq!(u64::MAX.successor(), None);
        let next = |s: &'static str| Bytes::from_static(s.as_bytes()).successor();
        assert_eq!(next("user:0099"), Some(Bytes::from_static(b"user:0100")));
        assert_eq!(next("k99"), Some(Bytes::from_static(b"k100")));
        assert_eq!(next("7"), Some(Bytes::from_static(b"8")));
        assert_eq!(next("user:"), None);
    }

    #[test]
    fn keys_that_share_everything_up_to_the_last_separator_share_a_prefix() {
        let prefix = |s: &'static str| Bytes::from_static(s.as_bytes()).prefix_hash();
        assert_eq!(prefix("user:1234:profile"), prefix("user:1234:orders"));
        assert_ne!(prefix("user:1234:profile"), prefix("user:1235:profile"));
        assert_eq!(prefix("img/2024/a.png"), prefix("img/2024/b.png"));
        assert_eq!(prefix("plainkey"), None);
        assert_eq!(prefix("trailing:"), None);
        assert_eq!(prefix(":leading"), None);
        assert_eq!(7u64.prefix_hash(), None);
    }
}
