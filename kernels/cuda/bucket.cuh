// Shared device code of the Augur GPU table: layout constants, the two bucket
// hashes, the CLOCK victim choice, half-warp tiles and bucket locks.
//
// Every constant comes from the host as a -D define (kernels/src/layout.rs,
// cuda_defines()), so the CPU reference and these kernels cannot disagree on
// layout. Each function here has a Rust twin in layout.rs; keep them in lockstep.
// No #include: NVRTC ships without the CUDA headers, and none are needed.
#pragma once

#if !defined(AUGUR_SLOTS) || !defined(AUGUR_SEED1) || !defined(AUGUR_RECORD_HEADER)
#error "compile through augur-kernels, which passes the layout constants as -D defines"
#endif
#if AUGUR_SLOTS != 16
#error "one half-warp probes a bucket: the tile code below assumes 16 slots"
#endif

typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned char u8;

#define NO_BUCKET (~0ULL)

// splitmix64's finaliser (layout.rs: mix64).
__device__ __forceinline__ u64 mix64(u64 x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

// The two distinct candidate buckets (layout.rs: bucket_pair).
__device__ __forceinline__ void bucket_pair(u64 fp, u64 buckets, u64* b1, u64* b2) {
    *b1 = __umul64hi(mix64(fp ^ AUGUR_SEED1), buckets);
    u64 second = __umul64hi(mix64(fp ^ AUGUR_SEED2), buckets);
    if (second == *b1) second = (*b1 + 1 == buckets) ? 0 : *b1 + 1;
    *b2 = second;
}

// CLOCK on a full bucket (layout.rs: clock_pick). Returns the victim slot and
// updates *meta: passed reference bits cleared, victim's bit cleared, hand moved.
__device__ __forceinline__ u32 clock_pick(u32* meta) {
    u32 refs = *meta & AUGUR_REF_MASK;
    u32 hand = (*meta >> AUGUR_HAND_SHIFT) & AUGUR_HAND_MASK;
    u32 victim = hand;
    for (u32 i = 0; i < AUGUR_SLOTS; ++i) {
        u32 s = (hand + i) & AUGUR_HAND_MASK;
        if ((refs & (1u << s)) == 0) {
            victim = s;
            break;
        }
        refs &= ~(1u << s);
    }
    refs &= ~(1u << victim);
    hand = (victim + 1) & AUGUR_HAND_MASK;
    *meta = (*meta & ~(AUGUR_REF_MASK | (AUGUR_HAND_MASK << AUGUR_HAND_SHIFT))) | refs | (hand << AUGUR_HAND_SHIFT);
    return victim;
}

// A half-warp working on one item: lane = slot index within a bucket.
struct Tile {
    u32 lane;   // 0..15
    u32 mask;   // this half-warp's lanes in the warp
    u32 shift;  // 0 or 16: where this half-warp's bits sit in a warp ballot
};

__device__ __forceinline__ Tile tile_of() {
    u32 l = threadIdx.x & 31;
    Tile t;
    t.lane = l & 15;
    t.shift = l & 16;
    t.mask = 0xFFFFu << t.shift;
    return t;
}

// Item handled by the calling half-warp (blockDim.x is a multiple of 32).
__device__ __forceinline__ u64 tile_item() {
    return ((u64)blockIdx.x * blockDim.x + threadIdx.x) / AUGUR_SLOTS;
}

// One bit per slot: which lanes of the tile satisfy `pred`.
__device__ __forceinline__ u32 tile_ballot(Tile t, bool pred) {
    return (__ballot_sync(t.mask, pred) & t.mask) >> t.shift;
}

__device__ __forceinline__ u64 tile_bcast64(Tile t, u64 v, u32 from) {
    return __shfl_sync(t.mask, v, from, 16);
}

__device__ __forceinline__ u32 tile_bcast32(Tile t, u32 v, u32 from) {
    return __shfl_sync(t.mask, v, from, 16);
}

// Spins until the bucket's lock bit is ours; returns the meta word as it was
// (lock bit set). Only inserts lock; finds and erases run in other launches.
__device__ __forceinline__ u32 lock_bucket(u32* meta) {
    u32 backoff = 32;
    for (;;) {
        u32 old = atomicOr(meta, AUGUR_LOCK_BIT);
        if ((old & AUGUR_LOCK_BIT) == 0) return old | AUGUR_LOCK_BIT;
        __nanosleep(backoff);
        if (backoff < 2048) backoff *= 2;
    }
}

// Slot index of `fp` in bucket b1 or b2, or -1. Inside an insert launch other SMs
// write the table, so reads go through L2 (ld.cg); a find launch writes only
// reference bits, so it may use the read-only path (ld.global.nc).
template <bool WRITERS>
__device__ __forceinline__ long long tile_locate(Tile t, const u64* fps, u64 b1, u64 b2, u64 fp) {
    if (fp == AUGUR_EMPTY_FP) return -1;
    const u64* p1 = fps + b1 * AUGUR_SLOTS + t.lane;
    u32 m = tile_ballot(t, (WRITERS ? __ldcg(p1) : __ldg(p1)) == fp);
    if (m) return (long long)(b1 * AUGUR_SLOTS + (__ffs(m) - 1));
    const u64* p2 = fps + b2 * AUGUR_SLOTS + t.lane;
    m = tile_ballot(t, (WRITERS ? __ldcg(p2) : __ldg(p2)) == fp);
    if (m) return (long long)(b2 * AUGUR_SLOTS + (__ffs(m) - 1));
    return -1;
}

// Sets a slot's reference bit (a hit), skipping the atomic when already set.
__device__ __forceinline__ void touch_slot(u32* meta, u64 slot_index) {
    u32* m = meta + slot_index / AUGUR_SLOTS;
    u32 bit = 1u << (slot_index % AUGUR_SLOTS);
    if ((*((volatile u32*)m) & bit) == 0) atomicOr(m, bit);
}
