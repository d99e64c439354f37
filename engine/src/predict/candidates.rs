//! Candidate generation: the few keys worth scoring after a request.
//!
//! Scoring every key is impossible and unnecessary: a key is requested soon either
//! because it tends to follow the current one (successor graph), because it shows
//! up near it (co-occurrence within a window), because it follows the likely next
//! key (two hops), or because of the key's shape (the next number in a run, e.g.
//! `user:0100` after `user:0099`), or because it shares the key's prefix (the
//! other records of `user:42:`). Each source contributes its strongest few; the
//! union is bounded to `max` per request.

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
    // Siblings first, at most two: a successor row alone can fill every slot,
    // and a narrow prefix (one user's records) is a signal no other source has.
    // Keys without a prefix (the simulator's integer ids) have none.
    for k in state.siblings(cur).take(2) {
        push(out, k.clone());
    }
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
    use bytes::Bytes;

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

    #[test]
    fn keys_under_a_narrow_prefix_propose_their_siblings_and_a_wide_prefix_does_not() {
        fn observe(f: &mut FeatureState<Bytes>, key: String) {
            let key = Bytes::from(key);
            f.observe(&key, key_hash(&key), false, 0.0);
        }
        let mut f = FeatureState::new(FeatureConfig::default());
        // One user's three records, revisited in varying order, each visit followed
        // by more unrelated requests than the co-occurrence window spans, under a
        // wide prefix (`item:`, a new key every time): only the prefix links them.
        let mut item = 0u32;
        for i in 0..12usize {
            for part in ["profile", "orders", "cart"].iter().cycle().skip(i % 3).take(3) {
                observe(&mut f, format!("user:42:{part}"));
                for _ in 0..10 {
                    item += 1;
                    observe(&mut f, format!("item:{item}"));
                }
            }
        }
        observe(&mut f, "user:42:profile".into());
        let mut out = Vec::new();
        generate(&f, 8, &mut out);
        let has = |k: &str| out.contains(&Bytes::from(k.to_string()));
        assert!(has("user:42:cart") && has("user:42:orders"), "{out:?}");
        observe(&mut f, "item:999999".into());
        let key = Bytes::from_static(b"item:999999");
        assert_eq!(f.siblings(&key).count(), 0, "item: is a wide prefix");
    }
}
