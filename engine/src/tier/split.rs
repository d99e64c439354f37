//! Two tiers behind one: the live A/B test's separate caches (see
//! `crate::live_ab`). Every call goes to the tier of the key's group, so the
//! control group's entries never compete with the treatment's prefetched ones.

use bytes::Bytes;

use super::{key_hash, Tier, TierEntry};
use crate::ab::{group_of, Group};

/// A control tier and a treatment tier, chosen per key by [`group_of`] its hash.
#[derive(Debug)]
pub struct SplitTier {
    groups: [Box<dyn Tier>; 2],
}

impl SplitTier {
    /// `control` and `treatment` (usually of equal capacity).
    pub fn new(control: Box<dyn Tier>, treatment: Box<dyn Tier>) -> Self {
        Self { groups: [control, treatment] }
    }

    fn of(&self, key: &[u8]) -> &dyn Tier {
        match group_of(key_hash(key)) {
            Group::Control => self.groups[0].as_ref(),
            Group::Treatment => self.groups[1].as_ref(),
        }
    }
}

impl Tier for SplitTier {
    fn name(&self) -> &'static str {
        self.groups[0].name()
    }
    fn get(&self, key: &Bytes) -> Option<TierEntry> {
        self.of(key).get(key)
    }
    fn contains(&self, key: &Bytes) -> bool {
        self.of(key).contains(key)
    }
    fn prefetched_evicted_unused(&self) -> u64 {
        self.groups.iter().map(|t| t.prefetched_evicted_unused()).sum()
    }
    fn insert(&self, key: Bytes, entry: TierEntry) {
        self.of(&key).insert(key, entry);
    }
    fn remove(&self, key: &Bytes) {
        self.of(key).remove(key);
    }
    fn len(&self) -> u64 {
        self.groups.iter().map(|t| t.len()).sum()
    }
    fn weighted_bytes(&self) -> u64 {
        self.groups.iter().map(|t| t.weighted_bytes()).sum()
    }
    fn capacity(&self) -> u64 {
        self.groups.iter().map(|t| t.capacity()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tier::{Lru, PolicyTier};

    #[test]
    fn each_group_fills_only_its_own_half() {
        let half = || Box::new(PolicyTier::new(Lru::<Bytes>::new(), 100 * 80)) as Box<dyn Tier>;
        let split = SplitTier::new(half(), half());
        let key = |i: u32| Bytes::from(format!("k{i}"));
        let (control, treatment): (Vec<u32>, Vec<u32>) =
            (0..2000).partition(|&i| group_of(key_hash(&key(i))) == Group::Control);
        // Flood the treatment group far past its half.
        for &i in &treatment {
            split.insert(key(i), TierEntry::clean(Some(Bytes::from_static(b"v"))));
        }
        for &i in control.iter().take(10) {
            split.insert(key(i), TierEntry::clean(Some(Bytes::from_static(b"v"))));
        }
        assert!(control.iter().take(10).all(|&i| split.contains(&key(i))), "control entries survive the flood");
        assert!(split.weighted_bytes() <= split.capacity());
        assert_eq!(split.capacity(), 2 * 100 * 80);
    }
}
