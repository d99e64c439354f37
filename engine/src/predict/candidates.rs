//! Candidate generation: the few keys worth scoring after a request.
//!
//! Scoring every key is impossible and unnecessary: a key is requested soon either
//! because it tends to follow the current one (successor graph), because it shows
//! up near it (co-occurrence within a window), because it follows the likely next
//! key (two hops), or because of the key's shape (the next number in a run, e.g.
//! `user:0100` after `user:0099`). Each source contributes its strongest few; the
//! union is bounded to `max` per request, strongest prior first.

use std::hash::Hash;

use super::features::FeatureState;
use crate::prefetch::SequentialKey;

/// Appends up to `max` distinct candidates for the current request to `out`,
/// excluding the current key itself.
pub fn generate<K: Hash + Eq + Clone + Send + SequentialKey>(state: &FeatureState<K>, max: usize, out: &mut Vec<K>) {
    let Some((cur, _)) = state.context().last() else { return };
    let start = out.len();
    let push = |out: &mut Vec<K>, k: K| {
        if out.len() - start < max && k != *cur && !out[start..].contains(&k) {
            out.push(k);
        }
    };
    let mut top = None;
    if let Some(row) = state.successors().row(cur) {
        for (i, (k, _)) in row.ranked().into_iter().enumerate() {
            if i == 0 {
                top = Some(k.clone());
            }
            push(out, k);
        }
    }
    if let Some(next) = cur.successor() {
        push(out, next.clone());
        if let Some(next2) = next.successor() {
            push(out, next2);
        }
    }
    if let Some(row) = state.cooccur().row(cur) {
        for (k, _) in row.ranked().into_iter().take(3) {
            push(out, k);
        }
    }
    if let Some(row) = top.and_then(|t| state.successors().row(&t)) {
        for (k, _) in row.ranked().into_iter().take(2) {
            push(out, k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::features::{key_hash, FeatureConfig};
    use super::*;

    #[test]
    fn candidates_come_from_successors_shape_and_two_hops_without_duplicates() {
        let mut f = FeatureState::new(FeatureConfig::default());
        for _ in 0..3 {
            for k in [5u64, 40, 70, 90] {
                f.observe(&k, key_hash(&k), false, 0.0);
            }
        }
        f.observe(&5, key_hash(&5), false, 0.0);
        let mut out = Vec::new();
        generate(&f, 8, &mut out);
        assert_eq!(out[0], 40, "the usual follower first");
        assert!(out.contains(&6), "numeric next");
        assert!(out.contains(&70), "two hops (and co-occurrence)");
        assert!(!out.contains(&5), "never the current key");
        let mut sorted = out.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), out.len());
        let mut few = Vec::new();
        generate(&f, 2, &mut few);
        assert_eq!(few.len(), 2);
    }
}
