//! The table's layout constants and hash functions, shared by the CPU reference
//! and the CUDA kernels.
//!
//! This file is the single source of truth: the kernels receive every constant as
//! a `-D` define built by [`cuda_defines`], so the GPU and the CPU reference cannot
//! drift apart (a CUDA file compiled without them stops with `#error`). The hash
//! functions are written so that the CUDA versions in `cuda/bucket.cuh` are
//! line-for-line translations; the differential tests compare the two.

/// Slots per bucket. One half-warp (16 lanes) probes a bucket, one slot per lane,
/// and the 16 fingerprints of a bucket fill exactly one 128-byte cache line.
pub const SLOTS_PER_BUCKET: usize = 16;

/// A fingerprint of 0 marks an empty slot, so no key may have it:
/// [`fingerprint`] maps 0 to 1.
pub const EMPTY_FP: u64 = 0;

/// "No payload": a find miss, or nothing released by an insert. Payloads (slab
/// handles, or whatever 64-bit value a caller stores) must never be this value.
pub const NO_PAYLOAD: u64 = u64::MAX;

/// Bits 0..16 of a bucket's meta word: one CLOCK reference bit per slot, set by a
/// find hit and cleared as the CLOCK hand passes.
pub const REF_MASK: u32 = 0xFFFF;
/// The CLOCK hand (next slot to consider for eviction) sits at bits 16..20.
pub const HAND_SHIFT: u32 = 16;
/// Mask of the hand after shifting.
pub const HAND_MASK: u32 = 0xF;
/// Bit 31: the bucket's insert lock (held only inside one insert kernel step).
pub const LOCK_BIT: u32 = 1 << 31;

/// Seeds of the two bucket hash functions (odd 64-bit constants from splitmix64
/// and xxHash; any two distinct values work).
pub const SEED1: u64 = 0x9E37_79B9_7F4A_7C15;
/// Seed of the second bucket hash.
pub const SEED2: u64 = 0xC2B2_AE3D_27D4_EB4F;

/// How many times an insert may relocate a displaced entry to its other bucket
/// before the entry being carried is evicted from the table. Long chains reach
/// higher load factors before anything is evicted; short ones bound the work of an
/// insert into a full table (where every chain ends in an eviction anyway).
pub const DEFAULT_MAX_CHAIN: u32 = 16;

/// The CUDA `-D` options carrying these constants; every kernel build uses them.
pub fn cuda_defines() -> Vec<String> {
    vec![
        format!("-DAUGUR_SLOTS={SLOTS_PER_BUCKET}"),
        format!("-DAUGUR_EMPTY_FP={EMPTY_FP:#x}ULL"),
        format!("-DAUGUR_NO_PAYLOAD={NO_PAYLOAD:#x}ULL"),
        format!("-DAUGUR_REF_MASK={REF_MASK:#x}u"),
        format!("-DAUGUR_HAND_SHIFT={HAND_SHIFT}u"),
        format!("-DAUGUR_HAND_MASK={HAND_MASK:#x}u"),
        format!("-DAUGUR_LOCK_BIT={LOCK_BIT:#x}u"),
        format!("-DAUGUR_SEED1={SEED1:#x}ULL"),
        format!("-DAUGUR_SEED2={SEED2:#x}ULL"),
        format!("-DAUGUR_RECORD_HEADER={}u", crate::slab::RECORD_HEADER),
    ]
}

/// splitmix64's finaliser: a cheap bijective mix, so distinct fingerprints never
/// share both buckets by construction of the hash alone.
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Maps a 64-bit hash onto `0..n` without a division (Lemire's multiply-shift;
/// `__umul64hi` on the GPU). Works for any bucket count, not only powers of two.
#[inline]
pub fn fast_range(hash: u64, n: u64) -> u64 {
    ((u128::from(hash) * u128::from(n)) >> 64) as u64
}

/// The two candidate buckets of `fp` in a table of `buckets` buckets (at least 2).
/// They always differ: if both hashes land on one bucket, the second moves to the
/// next bucket, so every key has two real choices.
#[inline]
pub fn bucket_pair(fp: u64, buckets: u64) -> (u64, u64) {
    let b1 = fast_range(mix64(fp ^ SEED1), buckets);
    let mut b2 = fast_range(mix64(fp ^ SEED2), buckets);
    if b2 == b1 {
        b2 = if b1 + 1 == buckets { 0 } else { b1 + 1 };
    }
    (b1, b2)
}

/// The CLOCK decision for a full bucket: returns the victim slot and the bucket's
/// new meta word (reference bits cleared where the hand passed, the victim's bit
/// cleared for its new occupant, the hand moved past the victim). If every slot
/// was referenced, one full sweep clears them all and the slot under the hand is
/// the victim: classic second chance. `cuda/bucket.cuh::clock_pick` is the same
/// loop.
#[inline]
pub fn clock_pick(meta: u32) -> (usize, u32) {
    let mut refs = meta & REF_MASK;
    let hand = (meta >> HAND_SHIFT) & HAND_MASK;
    let mut victim = hand;
    for i in 0..SLOTS_PER_BUCKET as u32 {
        let s = (hand + i) & HAND_MASK;
        if refs & (1 << s) == 0 {
            victim = s;
            break;
        }
        refs &= !(1 << s);
    }
    refs &= !(1 << victim);
    let hand = (victim + 1) & HAND_MASK;
    (victim as usize, (meta & !(REF_MASK | (HAND_MASK << HAND_SHIFT))) | refs | (hand << HAND_SHIFT))
}

/// A key's 64-bit fingerprint: MurmurHash64A (seed fixed), never [`EMPTY_FP`].
///
/// Computed on the host only; the kernels see fingerprints. A collision between two
/// keys costs a miss, never a wrong answer: the table holds one entry per
/// fingerprint and the full key is compared before a value is returned.
pub fn fingerprint(key: &[u8]) -> u64 {
    const M: u64 = 0xC6A4_A793_5BD1_E995;
    const R: u32 = 47;
    let mut h: u64 = 0x5A17_AC3D_2B3D_9E4F ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let mut k = u64::from_le_bytes(word);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    if h == EMPTY_FP {
        1
    } else {
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_pair_is_in_range_and_distinct() {
        for buckets in [2u64, 3, 17, 1 << 20, (1 << 32) + 7] {
            for fp in (1..2000u64).map(|i| mix64(i).max(1)) {
                let (a, b) = bucket_pair(fp, buckets);
                assert!(a < buckets && b < buckets, "{a} {b} of {buckets}");
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn fast_range_spreads_evenly() {
        let n = 64u64;
        let mut counts = vec![0u32; n as usize];
        for i in 0..64_000u64 {
            counts[fast_range(mix64(i), n) as usize] += 1;
        }
        // 1,000 expected per bucket; a broken mapping (e.g. all in one) fails.
        assert!(counts.iter().all(|&c| (850..1150).contains(&c)), "{counts:?}");
    }

    #[test]
    fn clock_skips_referenced_slots_and_clears_them() {
        // Hand at 2, slots 2 and 3 referenced: victim 4, bits 2,3 cleared, hand 5.
        let meta = (2 << HAND_SHIFT) | 0b1100 | 0b1;
        let (victim, new) = clock_pick(meta);
        assert_eq!(victim, 4);
        assert_eq!(new & REF_MASK, 0b1);
        assert_eq!((new >> HAND_SHIFT) & HAND_MASK, 5);
    }

    #[test]
    fn clock_with_all_referenced_takes_the_hand_after_a_full_sweep() {
        let meta = (15 << HAND_SHIFT) | REF_MASK | LOCK_BIT;
        let (victim, new) = clock_pick(meta);
        assert_eq!(victim, 15);
        assert_eq!(new & REF_MASK, 0);
        assert_eq!((new >> HAND_SHIFT) & HAND_MASK, 0);
        assert_eq!(new & LOCK_BIT, LOCK_BIT, "the lock bit is not the policy's to touch");
    }

    #[test]
    fn fingerprint_is_stable_and_never_empty() {
        // Length is mixed in, so a key and its zero-padded extension differ.
        assert_eq!(fingerprint(b""), fingerprint(b""));
        assert_ne!(fingerprint(b"a"), fingerprint(b"b"));
        assert_ne!(fingerprint(b"12345678"), fingerprint(b"123456789"));
        assert_ne!(fingerprint(b"\0"), fingerprint(b""));
        for i in 0..10_000u32 {
            assert_ne!(fingerprint(&i.to_le_bytes()), EMPTY_FP);
        }
    }
}
