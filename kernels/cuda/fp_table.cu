// The fingerprint index: batched upsert, find and erase of (64-bit fingerprint,
// 64-bit payload) pairs in a bucketed cuckoo table (BGHT's BCHT layout: two hash
// functions, 16-slot buckets, one half-warp per item, bounded relocation chains),
// with CLOCK eviction so a full table keeps accepting inserts.
//
// The CPU reference (kernels/src/cpu.rs, CpuTable::insert_one) executes the same
// steps in the same order for one item; keep the two in lockstep.
//
// Memory: fps[buckets*16] (0 = empty), payloads[buckets*16], meta[buckets]
// (bits 0-15 reference bits, 16-19 CLOCK hand, 31 insert lock).
//
// Preconditions (checked on the host): no fingerprint is 0 or repeated within
// one launch, no payload is ~0, buckets >= 2, blockDim.x is a multiple of 32.
// Launches on one table are serialised on one stream, so an insert never runs
// beside a find or an erase: only inserts take bucket locks.
#include "bucket.cuh"

#define STATUS_INSERTED 0u
#define STATUS_UPDATED 1u
#define STATUS_EVICTED 2u
#define STATUS_STALE 3u

// One item per half-warp. Each step locks the carried entry's two buckets in
// index order (no deadlock: at most two locks, always ascending, all released
// before the next step), then in that order of preference: updates the entry if
// present, places it in the emptier bucket if either has room, or swaps it with
// the CLOCK victim of the bucket it did not come from and carries the victim on.
// After max_chain relocations the carried entry is evicted.
extern "C" __global__ void fp_insert(u64* fps, u64* payloads, u32* meta, u64 buckets, const u64* in_fps,
                                     const u64* in_payloads, u32* out_status, u64* out_released, u64 n,
                                     u32 max_chain) {
    Tile t = tile_of();
    u64 item = tile_item();
    if (item >= n) return;

    u64 fp = in_fps[item];
    u64 payload = in_payloads[item];
    u64 from = NO_BUCKET;
    u32 status = STATUS_INSERTED;
    u64 released = AUGUR_NO_PAYLOAD;

    for (u32 step = 0;; ++step) {
        u64 b1, b2;
        bucket_pair(fp, buckets, &b1, &b2);
        u64 lo = b1 < b2 ? b1 : b2;
        u64 hi = b1 < b2 ? b2 : b1;
        u32 meta_lo = 0, meta_hi = 0;
        if (t.lane == 0) {
            meta_lo = lock_bucket(meta + lo);
            meta_hi = lock_bucket(meta + hi);
            __threadfence();  // acquire: see the previous holder's slot writes
        }
        __syncwarp(t.mask);

        u64 k1 = __ldcg(fps + b1 * AUGUR_SLOTS + t.lane);
        u64 k2 = __ldcg(fps + b2 * AUGUR_SLOTS + t.lane);
        u32 f1 = tile_ballot(t, k1 == fp), f2 = tile_ballot(t, k2 == fp);
        u32 e1 = tile_ballot(t, k1 == AUGUR_EMPTY_FP), e2 = tile_ballot(t, k2 == AUGUR_EMPTY_FP);

        // Every lane computes the same decision; lane 0 alone writes, so the
        // writes and the lock release are ordered by one thread's fence.
        bool done = true;
        if (t.lane == 0) {
            u32 meta_b1 = b1 == lo ? meta_lo : meta_hi;
            u32 meta_b2 = b1 == lo ? meta_hi : meta_lo;
            if (f1 | f2) {
                u64 b = f1 ? b1 : b2;
                u32 s = __ffs(f1 ? f1 : f2) - 1;
                u64 i = b * AUGUR_SLOTS + s;
                if (step == 0) {
                    // An update counts as an access: it sets the reference bit.
                    released = __ldcg(payloads + i);
                    __stcg(payloads + i, payload);
                    if (b == b1) meta_b1 |= 1u << s; else meta_b2 |= 1u << s;
                    status = STATUS_UPDATED;
                } else {
                    // The relocated entry met a newer copy of its key: drop it.
                    released = payload;
                    status = STATUS_STALE;
                }
            } else if (e1 | e2) {
                // Two-choice placement: the emptier bucket, the first on a tie.
                u32 c1 = AUGUR_SLOTS - __popc(e1), c2 = AUGUR_SLOTS - __popc(e2);
                bool use1 = e1 && (!e2 || c1 <= c2);
                u64 b = use1 ? b1 : b2;
                u32 s = __ffs(use1 ? e1 : e2) - 1;
                u64 i = b * AUGUR_SLOTS + s;
                __stcg(payloads + i, payload);
                __stcg(fps + i, fp);
                if (use1) meta_b1 &= ~(1u << s); else meta_b2 &= ~(1u << s);
            } else {
                // Both full: displace the CLOCK victim of the bucket the carried
                // entry did not come from (a new key starts at its first bucket).
                bool victim_in_b1 = from != b1;
                u64 vb = victim_in_b1 ? b1 : b2;
                // A copy, not a pointer to meta_b1/meta_b2: taking a local's
                // address puts it in (slow) local memory.
                u32 vmeta = victim_in_b1 ? meta_b1 : meta_b2;
                u32 s = clock_pick(&vmeta);
                if (victim_in_b1) meta_b1 = vmeta; else meta_b2 = vmeta;
                u64 i = vb * AUGUR_SLOTS + s;
                u64 victim_fp = __ldcg(fps + i);
                u64 victim_payload = __ldcg(payloads + i);
                __stcg(fps + i, fp);
                __stcg(payloads + i, payload);
                if (step >= max_chain) {
                    released = victim_payload;
                    status = STATUS_EVICTED;
                } else {
                    fp = victim_fp;
                    payload = victim_payload;
                    from = vb;
                    done = false;
                }
            }
            __threadfence();  // release: slot writes before the unlock
            atomicExch(meta + b1, meta_b1 & ~AUGUR_LOCK_BIT);
            atomicExch(meta + b2, meta_b2 & ~AUGUR_LOCK_BIT);
        }
        done = tile_bcast32(t, done ? 1u : 0u, 0) != 0;
        if (done) break;
        fp = tile_bcast64(t, fp, 0);
        payload = tile_bcast64(t, payload, 0);
        from = tile_bcast64(t, from, 0);
    }
    if (t.lane == 0) {
        out_status[item] = status;
        out_released[item] = released;
    }
}

// One query per half-warp: payload or ~0; a hit sets the slot's reference bit.
extern "C" __global__ void fp_find(const u64* fps, const u64* payloads, u32* meta, u64 buckets, const u64* in_fps,
                                   u64* out_payloads, u64 n) {
    Tile t = tile_of();
    u64 item = tile_item();
    if (item >= n) return;
    u64 fp = in_fps[item];
    u64 b1, b2;
    bucket_pair(fp, buckets, &b1, &b2);
    long long at = tile_locate<false>(t, fps, b1, b2, fp);
    if (t.lane == 0) {
        u64 result = AUGUR_NO_PAYLOAD;
        if (at >= 0) {
            result = __ldg(payloads + at);
            touch_slot(meta, (u64)at);
        }
        out_payloads[item] = result;
    }
}

// One fingerprint per half-warp. With use_expected, only an entry whose payload
// equals expected[item] is erased (the slab allocator reclaiming a slot must not
// erase a newer entry of the same key). Writes the erased payload or ~0.
extern "C" __global__ void fp_erase(u64* fps, const u64* payloads, u32* meta, u64 buckets, const u64* in_fps,
                                    const u64* expected, u32 use_expected, u64* out_released, u64 n) {
    Tile t = tile_of();
    u64 item = tile_item();
    if (item >= n) return;
    u64 fp = in_fps[item];
    u64 b1, b2;
    bucket_pair(fp, buckets, &b1, &b2);
    long long at = tile_locate<true>(t, fps, b1, b2, fp);
    if (t.lane == 0) {
        u64 result = AUGUR_NO_PAYLOAD;
        if (at >= 0) {
            u64 p = payloads[at];
            if (!use_expected || p == expected[item]) {
                fps[at] = AUGUR_EMPTY_FP;
                atomicAnd(meta + (u64)at / AUGUR_SLOTS, ~(1u << ((u64)at % AUGUR_SLOTS)));
                result = p;
            }
        }
        out_released[item] = result;
    }
}
