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

use bytes::Bytes;

pub use self::markov::{Markov, MarkovConfig};
pub use self::mithril::{Mithril, MithrilConfig};
pub use self::obl::Obl;

/// Predicts keys to fetch ahead of demand.
pub trait Prefetcher<K>: Send {
    /// Observes one demand request for `key` (`hit`: it was cached) and appends
    /// the keys worth fetching now to `out`.
    fn on_request(&mut self, key: &K, hit: bool, out: &mut Vec<K>);
    /// Name for reports.
    fn name(&self) -> &'static str;
}

/// Keys with a "next" key, for sequential prefetching.
pub trait SequentialKey: Sized {
    /// The key after this one, if there is one.
    fn successor(&self) -> Option<Self>;
}

impl SequentialKey for u64 {
    fn successor(&self) -> Option<Self> {
        self.checked_add(1)
    }
}

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
}
