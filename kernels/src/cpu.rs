//! The CPU reference of the GPU table: the same buckets, hashing, slot choices and
//! CLOCK evictions, executed one item at a time in input order.
//!
//! It exists for three reasons: the property tests check the table's semantics
//! against a `HashMap` model on machines without a GPU; the differential tests
//! compare the GPU's results and, for sequential batches, its whole memory image
//! against this; and the benchmark measures it next to moka. Each step below
//! mirrors a block of `cuda/fp_table.cu`; keep them in lockstep.
//!
//! On the GPU the items of one batch run concurrently, so when two items of one
//! batch compete for a bucket the placement (and, on a full table, which entry is
//! evicted) may differ from this sequential order. Results that do not depend on
//! that order (finds of keys no insert in the batch evicted, erases, counts) agree
//! exactly; `tests/gpu_differential.rs` checks both levels.

use crate::batch::{self, InsertReport, InsertStatus};
use crate::error::{KernelError, KernelResult};
use crate::layout::{bucket_pair, clock_pick, EMPTY_FP, LOCK_BIT, NO_PAYLOAD, SLOTS_PER_BUCKET};

/// A bucketed cuckoo table in host memory; see `docs/gpu-table.md` for the layout.
#[derive(Debug, Clone)]
pub struct CpuTable {
    buckets: u64,
    /// `buckets * 16` fingerprints; [`EMPTY_FP`] marks a free slot.
    fps: Vec<u64>,
    /// Payloads, parallel to `fps`; meaningless where the slot is free.
    payloads: Vec<u64>,
    /// One word per bucket: reference bits, CLOCK hand, lock bit.
    meta: Vec<u32>,
    len: u64,
}

/// A table's memory image, for comparing the GPU against the reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableState {
    /// Fingerprints per slot.
    pub fps: Vec<u64>,
    /// Payloads per slot (zeroed where the slot is free, by [`TableState::canonical`]).
    pub payloads: Vec<u64>,
    /// Meta word per bucket (lock bit cleared by [`TableState::canonical`]).
    pub meta: Vec<u32>,
}

impl TableState {
    /// Clears what carries no meaning (payloads of free slots, the lock bit), so two
    /// images of the same logical state compare equal.
    pub fn canonical(mut self) -> Self {
        for (fp, p) in self.fps.iter().zip(self.payloads.iter_mut()) {
            if *fp == EMPTY_FP {
                *p = 0;
            }
        }
        for m in &mut self.meta {
            *m &= !LOCK_BIT;
        }
        self
    }

    /// Occupied slots.
    pub fn occupied(&self) -> u64 {
        self.fps.iter().filter(|&&fp| fp != EMPTY_FP).count() as u64
    }

    /// The (fingerprint, payload) pairs held, sorted: the table's contents
    /// regardless of where each entry sits.
    pub fn entries(&self) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> =
            self.fps.iter().zip(&self.payloads).filter(|(fp, _)| **fp != EMPTY_FP).map(|(fp, p)| (*fp, *p)).collect();
        v.sort_unstable();
        v
    }
}

/// Bucket count for a requested capacity in slots (at least two buckets, so every
/// key has two distinct candidates).
pub fn buckets_for_capacity(slots: u64) -> KernelResult<u64> {
    let buckets = slots.div_ceil(SLOTS_PER_BUCKET as u64).max(2);
    if buckets > u64::from(u32::MAX) {
        return Err(KernelError::Config(format!("{slots} slots is more than this table addresses")));
    }
    Ok(buckets)
}

impl CpuTable {
    /// A table with room for at least `slots` entries (rounded up to whole buckets).
    pub fn with_capacity(slots: u64) -> KernelResult<Self> {
        Self::with_buckets(buckets_for_capacity(slots)?)
    }

    /// A table of exactly `buckets` buckets (at least 2).
    pub fn with_buckets(buckets: u64) -> KernelResult<Self> {
        if buckets < 2 {
            return Err(KernelError::Config("a table needs at least 2 buckets".into()));
        }
        let slots = usize::try_from(buckets * SLOTS_PER_BUCKET as u64)
            .map_err(|_| KernelError::Config(format!("{buckets} buckets do not fit in memory")))?;
        Ok(Self {
            buckets,
            fps: vec![EMPTY_FP; slots],
            payloads: vec![0; slots],
            meta: vec![0; buckets as usize],
            len: 0,
        })
    }

    /// Buckets.
    pub fn buckets(&self) -> u64 {
        self.buckets
    }

    /// Slots (the most entries the table can hold).
    pub fn capacity(&self) -> u64 {
        self.buckets * SLOTS_PER_BUCKET as u64
    }

    /// Entries held.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The memory image (already canonical).
    pub fn state(&self) -> TableState {
        TableState { fps: self.fps.clone(), payloads: self.payloads.clone(), meta: self.meta.clone() }.canonical()
    }

    fn mask(&self, bucket: u64, fp: u64) -> u32 {
        let base = bucket as usize * SLOTS_PER_BUCKET;
        let mut m = 0u32;
        for (s, &k) in self.fps[base..base + SLOTS_PER_BUCKET].iter().enumerate() {
            m |= u32::from(k == fp) << s;
        }
        m
    }

    fn index(bucket: u64, slot: usize) -> usize {
        bucket as usize * SLOTS_PER_BUCKET + slot
    }

    /// Upserts one entry. Returns what happened and the payload released (or
    /// [`NO_PAYLOAD`]). Mirrors `fp_insert` in `cuda/fp_table.cu` step by step.
    pub fn insert_one(&mut self, fp: u64, payload: u64, max_chain: u32) -> (InsertStatus, u64) {
        let (mut fp, mut payload) = (fp, payload);
        let mut from: Option<u64> = None;
        let mut step = 0u32;
        loop {
            let (b1, b2) = bucket_pair(fp, self.buckets);
            let (f1, f2) = (self.mask(b1, fp), self.mask(b2, fp));
            if f1 | f2 != 0 {
                let (b, m) = if f1 != 0 { (b1, f1) } else { (b2, f2) };
                let s = m.trailing_zeros() as usize;
                let i = Self::index(b, s);
                if step == 0 {
                    // An update counts as an access: it sets the reference bit.
                    let old = std::mem::replace(&mut self.payloads[i], payload);
                    self.meta[b as usize] |= 1 << s;
                    return (InsertStatus::Updated, old);
                }
                // A relocated entry met a newer copy of its key: drop the old one.
                self.len -= 1;
                return (InsertStatus::Stale, payload);
            }
            let (e1, e2) = (self.mask(b1, EMPTY_FP), self.mask(b2, EMPTY_FP));
            if e1 | e2 != 0 {
                // Two-choice placement: the emptier bucket, the first on a tie.
                let (c1, c2) = (16 - e1.count_ones(), 16 - e2.count_ones());
                let use1 = e1 != 0 && (e2 == 0 || c1 <= c2);
                let (b, m) = if use1 { (b1, e1) } else { (b2, e2) };
                let s = m.trailing_zeros() as usize;
                let i = Self::index(b, s);
                self.fps[i] = fp;
                self.payloads[i] = payload;
                self.meta[b as usize] &= !(1 << s);
                if step == 0 {
                    self.len += 1;
                }
                // Either the new key found room, or the last relocated entry did.
                return (InsertStatus::Inserted, NO_PAYLOAD);
            }
            // Both full: displace the CLOCK victim of the bucket the carried entry
            // did not just come from (a new key starts at its first bucket).
            let vb = if from == Some(b1) { b2 } else { b1 };
            let (s, new_meta) = clock_pick(self.meta[vb as usize]);
            self.meta[vb as usize] = new_meta;
            let i = Self::index(vb, s);
            let (vfp, vpay) = (self.fps[i], self.payloads[i]);
            self.fps[i] = fp;
            self.payloads[i] = payload;
            if step == 0 {
                self.len += 1;
            }
            if step >= max_chain {
                self.len -= 1;
                return (InsertStatus::Evicted, vpay);
            }
            fp = vfp;
            payload = vpay;
            from = Some(vb);
            step += 1;
        }
    }
}

impl CpuTable {
    /// Upserts a batch: validated and de-duplicated like the GPU's batches, then
    /// applied in input order.
    pub fn insert(&mut self, fps: &[u64], payloads: &[u64], max_chain: u32) -> KernelResult<InsertReport> {
        batch::validate(fps, Some(payloads))?;
        let (launched, superseded) = batch::dedupe_last(fps);
        let mut status = Vec::with_capacity(launched.len());
        let mut released = Vec::with_capacity(launched.len());
        for &i in &launched {
            let (st, rel) = self.insert_one(fps[i], payloads[i], max_chain);
            status.push(st as u32);
            released.push(rel);
        }
        batch::assemble_insert(fps.len(), &launched, &superseded, payloads, &status, &released)
    }

    /// Where `fp` sits, without touching its reference bit.
    pub fn locate(&self, fp: u64) -> Option<usize> {
        if fp == EMPTY_FP {
            return None;
        }
        let (b1, b2) = bucket_pair(fp, self.buckets);
        for b in [b1, b2] {
            let m = self.mask(b, fp);
            if m != 0 {
                return Some(Self::index(b, m.trailing_zeros() as usize));
            }
        }
        None
    }

    /// Payload stored at a slot index from [`CpuTable::locate`].
    pub fn payload_at(&self, index: usize) -> u64 {
        self.payloads[index]
    }

    /// Marks the entry at `index` as recently used (a find hit).
    pub fn touch(&mut self, index: usize) {
        self.meta[index / SLOTS_PER_BUCKET] |= 1 << (index % SLOTS_PER_BUCKET);
    }

    /// Looks up one fingerprint; a hit sets its reference bit.
    pub fn find_one(&mut self, fp: u64) -> u64 {
        match self.locate(fp) {
            Some(i) => {
                self.touch(i);
                self.payloads[i]
            }
            None => NO_PAYLOAD,
        }
    }

    /// Looks up a batch: payload or [`NO_PAYLOAD`] per item.
    pub fn find(&mut self, fps: &[u64]) -> Vec<u64> {
        fps.iter().map(|&fp| self.find_one(fp)).collect()
    }

    /// Empties the slot at `index`, returning its payload.
    pub fn clear_at(&mut self, index: usize) -> u64 {
        self.fps[index] = EMPTY_FP;
        self.meta[index / SLOTS_PER_BUCKET] &= !(1 << (index % SLOTS_PER_BUCKET));
        self.len -= 1;
        self.payloads[index]
    }

    /// Erases a batch; with `expected`, only entries whose payload matches. Returns
    /// the erased payload or [`NO_PAYLOAD`] per item.
    pub fn erase(&mut self, fps: &[u64], expected: Option<&[u64]>) -> KernelResult<Vec<u64>> {
        batch::validate(fps, None)?;
        if let Some(e) = expected {
            if e.len() != fps.len() {
                return Err(KernelError::Invalid(format!(
                    "{} fingerprints but {} expected payloads",
                    fps.len(),
                    e.len()
                )));
            }
        }
        let mut out = vec![NO_PAYLOAD; fps.len()];
        for i in batch::dedupe_first(fps) {
            if let Some(at) = self.locate(fps[i]) {
                if expected.is_none_or(|e| e[i] == self.payloads[at]) {
                    out[i] = self.clear_at(at);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{HAND_SHIFT, REF_MASK};

    /// Fingerprints whose two buckets, in a table of `buckets`, are `a` and `b`.
    fn fps_for(buckets: u64, a: u64, b: u64, n: usize) -> Vec<u64> {
        (1u64..).filter(|&fp| bucket_pair(fp, buckets) == (a, b)).take(n).collect()
    }

    #[test]
    fn upsert_replaces_and_releases_the_old_payload() {
        let mut t = CpuTable::with_buckets(4).unwrap();
        assert_eq!(t.insert_one(7, 70, 4), (InsertStatus::Inserted, NO_PAYLOAD));
        assert_eq!(t.insert_one(7, 71, 4), (InsertStatus::Updated, 70));
        assert_eq!(t.find_one(7), 71);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn placement_prefers_the_emptier_bucket() {
        let buckets = 8;
        let keys = fps_for(buckets, 2, 5, 3);
        let mut t = CpuTable::with_buckets(buckets).unwrap();
        // First key: tie (both empty) goes to the first bucket; second: bucket 2 now
        // holds one, bucket 5 none, so bucket 5; third: tie again, bucket 2.
        for &k in &keys {
            t.insert_one(k, k, 4);
        }
        let slot_bucket = |fp| t.locate(fp).unwrap() / SLOTS_PER_BUCKET;
        assert_eq!([slot_bucket(keys[0]), slot_bucket(keys[1]), slot_bucket(keys[2])], [2, 5, 2]);
    }

    #[test]
    fn a_full_pair_of_buckets_evicts_an_unreferenced_entry() {
        let buckets = 2;
        let keys = fps_for(buckets, 0, 1, 33);
        let mut t = CpuTable::with_buckets(buckets).unwrap();
        for &k in &keys[..32] {
            assert_eq!(t.insert_one(k, k, 0).0, InsertStatus::Inserted);
        }
        // Reference everything in bucket 0 except slot 3.
        for s in (0..16).filter(|&s| s != 3) {
            t.touch(s);
        }
        let victim_fp = t.state().fps[3];
        let (status, released) = t.insert_one(keys[32], keys[32], 0);
        assert_eq!(status, InsertStatus::Evicted);
        assert_eq!(released, victim_fp, "CLOCK must skip referenced slots 0..3");
        assert_eq!(t.find_one(victim_fp), NO_PAYLOAD);
        assert_eq!(t.find_one(keys[32]), keys[32]);
        assert_eq!(t.len(), 32);
        // The hand moved past the victim and the passed bits were cleared.
        let meta = t.state().meta[0];
        assert_eq!((meta >> HAND_SHIFT) & 0xF, 4);
        assert_eq!(meta & REF_MASK & 0b111, 0);
    }

    #[test]
    fn relocation_reaches_loads_where_two_choice_alone_evicts() {
        // 64 buckets, 1,000 keys: 97.7% full. Without relocation some pair of
        // buckets overflows first; with chains of 16 nothing is evicted.
        let keys: Vec<u64> = (1..=1000u64).map(crate::layout::mix64).collect();
        let mut plain = CpuTable::with_buckets(64).unwrap();
        let mut cuckoo = CpuTable::with_buckets(64).unwrap();
        let no_chain = plain.insert(&keys, &keys, 0).unwrap();
        let chain = cuckoo.insert(&keys, &keys, 16).unwrap();
        assert!(no_chain.evictions() > 0, "two-choice alone should overflow at 97.7%");
        assert_eq!(chain.evictions(), 0);
        assert_eq!(cuckoo.len(), 1000);
        assert!(keys.iter().all(|&k| cuckoo.find_one(k) == k));
        assert_eq!(plain.len() as usize, 1000 - no_chain.evictions());
    }

    #[test]
    fn erase_with_expected_payload_spares_a_replaced_entry() {
        let mut t = CpuTable::with_buckets(4).unwrap();
        t.insert(&[5, 6], &[50, 60], 4).unwrap();
        assert_eq!(t.erase(&[5, 6], Some(&[51, 60])).unwrap(), vec![NO_PAYLOAD, 60]);
        assert_eq!(t.find(&[5, 6]), vec![50, NO_PAYLOAD]);
        assert_eq!(t.len(), 1);
    }
}
