// Full keys and values on top of the fingerprint index: record scatter and
// gather, and the find and erase that compare the stored key with the query key
// before answering, so two keys sharing a fingerprint never return a wrong value.
//
// A record lives at arena + handle: a 16-byte header (key_len, value_len, flags,
// reserved; u32 each) then the key, then the value (kernels/src/slab.rs). Query
// keys arrive packed back to back with n + 1 offsets. The CPU twin of each kernel
// is in kernels/src/kv.rs (CpuKvBackend).
#include "bucket.cuh"

// Does the record at `rec` hold exactly `key`? Each lane compares every 16th byte.
__device__ __forceinline__ bool tile_key_equals(Tile t, const u8* rec, const u8* key, u64 key_len) {
    const u32* header = (const u32*)rec;
    if ((u64)header[0] != key_len) return false;
    const u8* stored = rec + AUGUR_RECORD_HEADER;
    bool differ = false;
    for (u64 i = t.lane; i < key_len; i += AUGUR_SLOTS) differ |= stored[i] != key[i];
    return tile_ballot(t, differ) == 0;
}

// One query per half-warp: on a verified hit writes the handle, value length and
// flags and sets the reference bit; otherwise handle ~0.
extern "C" __global__ void kv_find(const u64* fps, const u64* payloads, u32* meta, u64 buckets, const u8* arena,
                                   const u64* in_fps, const u8* keys, const u64* key_offsets, u64* out_handle,
                                   u32* out_value_len, u32* out_flags, u64 n) {
    Tile t = tile_of();
    u64 item = tile_item();
    if (item >= n) return;
    u64 fp = in_fps[item];
    u64 b1, b2;
    bucket_pair(fp, buckets, &b1, &b2);
    long long at = tile_locate<false>(t, fps, b1, b2, fp);
    u64 handle = AUGUR_NO_PAYLOAD;
    bool hit = false;
    if (at >= 0) {
        handle = __ldg(payloads + at);
        u64 k0 = key_offsets[item];
        hit = tile_key_equals(t, arena + handle, keys + k0, key_offsets[item + 1] - k0);
    }
    if (t.lane == 0) {
        if (hit) {
            const u32* header = (const u32*)(arena + handle);
            out_handle[item] = handle;
            out_value_len[item] = header[1];
            out_flags[item] = header[2];
            touch_slot(meta, (u64)at);
        } else {
            out_handle[item] = AUGUR_NO_PAYLOAD;
            out_value_len[item] = 0;
            out_flags[item] = 0;
        }
    }
}

// One key per half-warp (fingerprints distinct within the launch): erases the
// entry if its stored key matches; writes the released handle or ~0.
extern "C" __global__ void kv_erase(u64* fps, const u64* payloads, u32* meta, u64 buckets, const u8* arena,
                                    const u64* in_fps, const u8* keys, const u64* key_offsets, u64* out_released,
                                    u64 n) {
    Tile t = tile_of();
    u64 item = tile_item();
    if (item >= n) return;
    u64 fp = in_fps[item];
    u64 b1, b2;
    bucket_pair(fp, buckets, &b1, &b2);
    long long at = tile_locate<true>(t, fps, b1, b2, fp);
    bool hit = false;
    u64 handle = AUGUR_NO_PAYLOAD;
    if (at >= 0) {
        handle = payloads[at];
        u64 k0 = key_offsets[item];
        hit = tile_key_equals(t, arena + handle, keys + k0, key_offsets[item + 1] - k0);
    }
    if (t.lane == 0) {
        if (hit) {
            fps[at] = AUGUR_EMPTY_FP;
            atomicAnd(meta + (u64)at / AUGUR_SLOTS, ~(1u << ((u64)at % AUGUR_SLOTS)));
        }
        out_released[item] = hit ? handle : AUGUR_NO_PAYLOAD;
    }
}

// Copies record i (16-byte aligned in staging and in the arena; sizes multiples of
// 16) from staging[offsets[i]..offsets[i+1]] to arena + dst[i].
extern "C" __global__ void kv_scatter(u8* arena, const u8* staging, const u64* offsets, const u64* dst, u64 n) {
    Tile t = tile_of();
    u64 item = tile_item();
    if (item >= n) return;
    const uint4* src = (const uint4*)(staging + offsets[item]);
    uint4* out = (uint4*)(arena + dst[item]);
    u64 words = (offsets[item + 1] - offsets[item]) / 16;
    for (u64 w = t.lane; w < words; w += AUGUR_SLOTS) out[w] = src[w];
}

// Concatenates the values of hits: value i goes to out[out_offsets[i]..out_offsets[i+1]].
extern "C" __global__ void kv_gather(const u8* arena, const u64* handles, const u64* out_offsets, u8* out, u64 n) {
    Tile t = tile_of();
    u64 item = tile_item();
    if (item >= n) return;
    u64 handle = handles[item];
    if (handle == AUGUR_NO_PAYLOAD) return;
    const u8* rec = arena + handle;
    const u8* value = rec + AUGUR_RECORD_HEADER + ((const u32*)rec)[0];
    u64 a = out_offsets[item], len = out_offsets[item + 1] - a;
    for (u64 i = t.lane; i < len; i += AUGUR_SLOTS) out[a + i] = value[i];
}
