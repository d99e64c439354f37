//! The key/value table the GPU tier uses: full keys and values on top of the
//! fingerprint index, one code path for every backend.
//!
//! [`KvTable`] owns the host-side logic (fingerprints, de-duplication, slab
//! allocation, freeing what the index releases, counting) and drives a
//! [`KvBackend`] that holds the index and the arena: [`CpuKvBackend`] here, the
//! CUDA one in `gpu.rs`. So the GPU tier and its CPU reference differ only in
//! where the index and the bytes live, and the property tests of this file cover
//! the logic the GPU tier runs.
//!
//! A find returns a value only after comparing the stored key with the query key
//! (on the GPU, inside the find kernel): two keys sharing a fingerprint cost a
//! miss, never a wrong value.

use std::collections::{HashMap, HashSet};

use crate::batch::{self, InsertStatus};
use crate::cpu::{CpuTable, TableState};
use crate::error::{KernelError, KernelResult};
use crate::layout::{fingerprint, DEFAULT_MAX_CHAIN, EMPTY_FP, NO_PAYLOAD};
use crate::slab::{self, Allocation, SlabAllocator, RECORD_HEADER};

/// A find hit as the backend reports it, before the value bytes are gathered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The record's handle, or [`NO_PAYLOAD`] on a miss.
    pub handle: u64,
    /// Value bytes.
    pub value_len: u32,
    /// The record's flags.
    pub flags: u32,
}

impl Hit {
    /// A miss.
    pub const MISS: Hit = Hit { handle: NO_PAYLOAD, value_len: 0, flags: 0 };
}

/// Where the index and the arena live. Every method takes a batch; fingerprints
/// within one call are distinct (the caller de-duplicates) except for finds.
pub trait KvBackend: Send {
    /// Short name for reports.
    fn name(&self) -> &'static str;
    /// Index slots.
    fn index_capacity(&self) -> u64;
    /// Erases `(fp, handle)` pairs whose stored handle matches; returns the erased
    /// handle or [`NO_PAYLOAD`] per item.
    fn erase_handles(&mut self, fps: &[u64], handles: &[u64]) -> KernelResult<Vec<u64>>;
    /// Copies record `i` (bytes `staging[offsets[i]..offsets[i + 1]]`, 16-byte
    /// aligned) to arena offset `dst[i]`.
    fn write_records(&mut self, staging: &[u8], offsets: &[u64], dst: &[u64]) -> KernelResult<()>;
    /// Upserts distinct fingerprints; per item the status code and released handle.
    fn insert_index(&mut self, fps: &[u64], handles: &[u64], max_chain: u32) -> KernelResult<(Vec<u32>, Vec<u64>)>;
    /// Finds and verifies full keys (`keys[key_offsets[i]..key_offsets[i + 1]]`);
    /// a verified hit sets the entry's reference bit.
    fn find_verified(&mut self, fps: &[u64], keys: &[u8], key_offsets: &[u64]) -> KernelResult<Vec<Hit>>;
    /// Concatenates the values of `handles` (skipping [`NO_PAYLOAD`]) at
    /// `out_offsets`, whose last element is the total length.
    fn gather(&mut self, handles: &[u64], out_offsets: &[u64]) -> KernelResult<Vec<u8>>;
    /// Erases verified full keys (distinct keys; fingerprints may repeat, since
    /// only the key stored in a slot can clear it); released handle or
    /// [`NO_PAYLOAD`] per item.
    fn erase_verified(&mut self, fps: &[u64], keys: &[u8], key_offsets: &[u64]) -> KernelResult<Vec<u64>>;
    /// The index's memory image.
    fn index_state(&mut self) -> KernelResult<TableState>;
}

/// Sizes of a [`KvTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvConfig {
    /// Index slots (entries at most).
    pub index_slots: u64,
    /// Arena bytes for records.
    pub arena_bytes: u64,
    /// Arena page size (a multiple of [`slab::MAX_RECORD`]).
    pub page_bytes: u64,
    /// Relocations before an insert evicts (see [`DEFAULT_MAX_CHAIN`]).
    pub max_chain: u32,
}

impl KvConfig {
    /// A configuration with default page size and chain length.
    pub fn new(index_slots: u64, arena_bytes: u64) -> Self {
        Self { index_slots, arena_bytes, page_bytes: slab::DEFAULT_PAGE_BYTES, max_chain: DEFAULT_MAX_CHAIN }
    }
}

/// One entry to insert.
#[derive(Debug, Clone, Copy)]
pub struct KvItem<'a> {
    /// Full key.
    pub key: &'a [u8],
    /// Value.
    pub value: &'a [u8],
    /// Caller's flags, returned with the value (the tier keeps "absent" and
    /// "prefetched" here).
    pub flags: u32,
}

/// Why an item of an insert batch was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Header + key + value exceed [`slab::MAX_RECORD`]: keep it in the CPU tier.
    TooLarge,
    /// Its size class has no slot this batch could take (the batch alone needs more
    /// slots of that class than the class has).
    NoRoom,
}

/// What an insert batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvInsertReport {
    /// Items not stored, by input index.
    pub refused: Vec<(usize, Refusal)>,
    /// Entries the index evicted to make room.
    pub evicted: u64,
    /// Entries the arena evicted to make room in a size class.
    pub slab_evicted: u64,
}

/// A found value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The value bytes.
    pub value: Vec<u8>,
    /// The flags it was inserted with.
    pub flags: u32,
}

/// Running counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvStats {
    /// Finds answered with a value.
    pub hits: u64,
    /// Finds answered with nothing.
    pub misses: u64,
    /// Index evictions.
    pub evictions: u64,
    /// Arena (size-class) evictions.
    pub slab_evictions: u64,
    /// Items refused by inserts.
    pub refused: u64,
}

/// A key/value table over a backend; see the module docs.
#[derive(Debug)]
pub struct KvTable<B> {
    backend: B,
    slabs: SlabAllocator,
    max_chain: u32,
    len: u64,
    stats: KvStats,
    fingerprint: fn(&[u8]) -> u64,
}

/// Packs keys back to back, with `n + 1` offsets.
fn pack_keys<'a>(keys: impl Iterator<Item = &'a [u8]>) -> (Vec<u8>, Vec<u64>) {
    let mut bytes = Vec::new();
    let mut offsets = vec![0u64];
    for k in keys {
        bytes.extend_from_slice(k);
        offsets.push(bytes.len() as u64);
    }
    (bytes, offsets)
}

impl<B: KvBackend> KvTable<B> {
    /// A table over `backend` whose arena holds `config.arena_bytes`.
    pub fn new(backend: B, config: KvConfig) -> KernelResult<Self> {
        Ok(Self {
            backend,
            slabs: SlabAllocator::new(config.arena_bytes, config.page_bytes)?,
            max_chain: config.max_chain,
            len: 0,
            stats: KvStats::default(),
            fingerprint,
        })
    }

    /// Replaces the fingerprint function. For tests: a weak one (say, the key's
    /// length) makes collisions common, to show they never return a wrong value.
    /// The function must never return 0.
    pub fn with_fingerprint(mut self, f: fn(&[u8]) -> u64) -> Self {
        self.fingerprint = f;
        self
    }

    /// The backend (for its own reports).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Entries held.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Arena bytes in allocated slots.
    pub fn used_bytes(&self) -> u64 {
        self.slabs.used_bytes()
    }

    /// Arena bytes.
    pub fn arena_bytes(&self) -> u64 {
        self.slabs.arena_bytes()
    }

    /// Index slots.
    pub fn index_capacity(&self) -> u64 {
        self.backend.index_capacity()
    }

    /// Counters so far.
    pub fn stats(&self) -> KvStats {
        self.stats
    }

    /// The index's memory image (for tests and the differential check).
    pub fn index_state(&mut self) -> KernelResult<TableState> {
        self.backend.index_state()
    }

    fn fp(&self, key: &[u8]) -> u64 {
        match (self.fingerprint)(key) {
            EMPTY_FP => 1,
            fp => fp,
        }
    }

    /// Upserts a batch. Later items win over earlier items with the same key.
    pub fn insert(&mut self, items: &[KvItem<'_>]) -> KernelResult<KvInsertReport> {
        let mut report = KvInsertReport::default();
        let fps: Vec<u64> = items.iter().map(|it| self.fp(it.key)).collect();
        let (launched, superseded) = batch::dedupe_last(&fps);
        let mut reserved = HashSet::with_capacity(launched.len());
        let (mut l_fps, mut l_handles) = (Vec::with_capacity(launched.len()), Vec::with_capacity(launched.len()));
        let (mut victims_fp, mut victims_h) = (Vec::new(), Vec::new());
        let mut staging = Vec::new();
        let mut offsets = vec![0u64];
        for i in launched {
            let item = &items[i];
            let Some(class) = slab::class_of(slab::record_size(item.key.len(), item.value.len())) else {
                report.refused.push((i, Refusal::TooLarge));
                continue;
            };
            let Some(allocation) = self.slabs.alloc(class, fps[i], &reserved) else {
                report.refused.push((i, Refusal::NoRoom));
                continue;
            };
            if let Allocation::Evicted { handle, victim_fp } = allocation {
                victims_fp.push(victim_fp);
                victims_h.push(handle);
            }
            let handle = allocation.handle();
            reserved.insert(handle);
            slab::encode_record(item.key, item.value, item.flags, &mut staging)?;
            offsets.push(staging.len() as u64);
            l_fps.push(fps[i]);
            l_handles.push(handle);
        }
        if !victims_fp.is_empty() {
            let erased = self.backend.erase_handles(&victims_fp, &victims_h)?;
            let n = erased.iter().filter(|&&h| h != NO_PAYLOAD).count();
            if n != victims_fp.len() {
                return Err(KernelError::Invalid(format!(
                    "slab bookkeeping out of step with the index: {n} of {} evicted records found",
                    victims_fp.len()
                )));
            }
            self.len -= n as u64;
            report.slab_evicted = n as u64;
        }
        if !l_fps.is_empty() {
            self.backend.write_records(&staging, &offsets, &l_handles)?;
            let (status, released) = self.backend.insert_index(&l_fps, &l_handles, self.max_chain)?;
            for (code, rel) in status.iter().zip(&released) {
                match InsertStatus::from_code(*code)? {
                    InsertStatus::Inserted => self.len += 1,
                    InsertStatus::Evicted => report.evicted += 1,
                    InsertStatus::Updated | InsertStatus::Stale | InsertStatus::Superseded => {}
                }
                if *rel != NO_PAYLOAD {
                    self.slabs.free(*rel);
                }
            }
        }
        // A refused item's key may hold an older value here, and so may a key
        // dropped because a *different* key with the same fingerprint came later in
        // the batch (if that later one was refused, nothing replaced the slot).
        // Serving either after a newer write would go back in time.
        let mut stale: Vec<&[u8]> = report.refused.iter().map(|&(i, _)| items[i].key).collect();
        if superseded.iter().any(|&s| s) {
            let kept: HashMap<u64, usize> = (0..items.len()).filter(|&i| !superseded[i]).map(|i| (fps[i], i)).collect();
            stale.extend(
                (0..items.len())
                    .filter(|&i| superseded[i] && items[kept[&fps[i]]].key != items[i].key)
                    .map(|i| items[i].key),
            );
        }
        if !stale.is_empty() {
            self.erase(&stale)?;
        }
        self.stats.evictions += report.evicted;
        self.stats.slab_evictions += report.slab_evicted;
        self.stats.refused += report.refused.len() as u64;
        Ok(report)
    }

    /// Looks up a batch; `None` for a miss.
    pub fn find(&mut self, keys: &[&[u8]]) -> KernelResult<Vec<Option<Found>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let fps: Vec<u64> = keys.iter().map(|k| self.fp(k)).collect();
        let (packed, key_offsets) = pack_keys(keys.iter().copied());
        let hits = self.backend.find_verified(&fps, &packed, &key_offsets)?;
        let mut out_offsets = Vec::with_capacity(hits.len() + 1);
        out_offsets.push(0u64);
        for h in &hits {
            let len = if h.handle == NO_PAYLOAD { 0 } else { u64::from(h.value_len) };
            out_offsets.push(out_offsets[out_offsets.len() - 1] + len);
        }
        let handles: Vec<u64> = hits.iter().map(|h| h.handle).collect();
        let values = if hits.iter().any(|h| h.handle != NO_PAYLOAD) {
            self.backend.gather(&handles, &out_offsets)?
        } else {
            Vec::new()
        };
        let mut out = Vec::with_capacity(keys.len());
        for (i, h) in hits.iter().enumerate() {
            if h.handle == NO_PAYLOAD {
                self.stats.misses += 1;
                out.push(None);
            } else {
                self.stats.hits += 1;
                let (a, b) = (out_offsets[i] as usize, out_offsets[i + 1] as usize);
                out.push(Some(Found { value: values[a..b].to_vec(), flags: h.flags }));
            }
        }
        Ok(out)
    }

    /// Erases a batch of keys; returns how many were present.
    ///
    /// De-duplicated by full key, not by fingerprint: two different keys sharing a
    /// fingerprint may share a launch, because only the one whose stored key
    /// matches clears the slot.
    pub fn erase(&mut self, keys: &[&[u8]]) -> KernelResult<u64> {
        let mut seen = HashSet::with_capacity(keys.len());
        let launched: Vec<usize> = (0..keys.len()).filter(|&i| seen.insert(keys[i])).collect();
        if launched.is_empty() {
            return Ok(0);
        }
        let fps: Vec<u64> = keys.iter().map(|k| self.fp(k)).collect();
        let l_fps: Vec<u64> = launched.iter().map(|&i| fps[i]).collect();
        let (packed, offsets) = pack_keys(launched.iter().map(|&i| keys[i]));
        let released = self.backend.erase_verified(&l_fps, &packed, &offsets)?;
        let mut n = 0;
        for h in released.into_iter().filter(|&h| h != NO_PAYLOAD) {
            self.slabs.free(h);
            n += 1;
        }
        self.len -= n;
        Ok(n)
    }
}

/// The CPU backend: the reference index and a host arena.
#[derive(Debug, Clone)]
pub struct CpuKvBackend {
    table: CpuTable,
    arena: Vec<u8>,
}

impl CpuKvBackend {
    /// A backend with `index_slots` slots and an arena of `arena_bytes`.
    pub fn new(index_slots: u64, arena_bytes: u64) -> KernelResult<Self> {
        let bytes = usize::try_from(arena_bytes).map_err(|_| KernelError::Config("arena too large".into()))?;
        Ok(Self { table: CpuTable::with_capacity(index_slots)?, arena: vec![0; bytes] })
    }

    fn record(&self, handle: u64) -> KernelResult<(u32, u32, u32, usize)> {
        let at = usize::try_from(handle).map_err(|_| KernelError::Invalid("handle out of range".into()))?;
        let (klen, vlen, flags) = self
            .arena
            .get(at..)
            .and_then(slab::decode_header)
            .ok_or_else(|| KernelError::Invalid(format!("handle {handle} outside the arena")))?;
        Ok((klen, vlen, flags, at))
    }

    fn verify(&self, handle: u64, key: &[u8]) -> KernelResult<Option<(u32, u32)>> {
        let (klen, vlen, flags, at) = self.record(handle)?;
        let start = at + RECORD_HEADER;
        let stored = self.arena.get(start..start + klen as usize);
        Ok((stored == Some(key)).then_some((vlen, flags)))
    }
}

/// Builds a CPU-backed table.
pub fn cpu_kv_table(config: KvConfig) -> KernelResult<KvTable<CpuKvBackend>> {
    KvTable::new(CpuKvBackend::new(config.index_slots, config.arena_bytes)?, config)
}

impl KvBackend for CpuKvBackend {
    fn name(&self) -> &'static str {
        "cpu-reference"
    }

    fn index_capacity(&self) -> u64 {
        self.table.capacity()
    }

    fn erase_handles(&mut self, fps: &[u64], handles: &[u64]) -> KernelResult<Vec<u64>> {
        self.table.erase(fps, Some(handles))
    }

    fn write_records(&mut self, staging: &[u8], offsets: &[u64], dst: &[u64]) -> KernelResult<()> {
        for (i, &d) in dst.iter().enumerate() {
            let src = &staging[offsets[i] as usize..offsets[i + 1] as usize];
            let d = d as usize;
            self.arena
                .get_mut(d..d + src.len())
                .ok_or_else(|| KernelError::Invalid(format!("record at {d} outside the arena")))?
                .copy_from_slice(src);
        }
        Ok(())
    }

    fn insert_index(&mut self, fps: &[u64], handles: &[u64], max_chain: u32) -> KernelResult<(Vec<u32>, Vec<u64>)> {
        let mut status = Vec::with_capacity(fps.len());
        let mut released = Vec::with_capacity(fps.len());
        for (&fp, &h) in fps.iter().zip(handles) {
            let (s, r) = self.table.insert_one(fp, h, max_chain);
            status.push(s as u32);
            released.push(r);
        }
        Ok((status, released))
    }

    fn find_verified(&mut self, fps: &[u64], keys: &[u8], key_offsets: &[u64]) -> KernelResult<Vec<Hit>> {
        let mut out = Vec::with_capacity(fps.len());
        for (i, &fp) in fps.iter().enumerate() {
            let key = &keys[key_offsets[i] as usize..key_offsets[i + 1] as usize];
            let hit = match self.table.locate(fp) {
                Some(at) => {
                    let handle = self.table.payload_at(at);
                    match self.verify(handle, key)? {
                        Some((value_len, flags)) => {
                            self.table.touch(at);
                            Hit { handle, value_len, flags }
                        }
                        None => Hit::MISS,
                    }
                }
                None => Hit::MISS,
            };
            out.push(hit);
        }
        Ok(out)
    }

    fn gather(&mut self, handles: &[u64], out_offsets: &[u64]) -> KernelResult<Vec<u8>> {
        let mut out = vec![0u8; out_offsets.last().copied().unwrap_or(0) as usize];
        for (i, &h) in handles.iter().enumerate() {
            if h == NO_PAYLOAD {
                continue;
            }
            let (klen, _, _, at) = self.record(h)?;
            let (a, b) = (out_offsets[i] as usize, out_offsets[i + 1] as usize);
            let start = at + RECORD_HEADER + klen as usize;
            out[a..b].copy_from_slice(&self.arena[start..start + (b - a)]);
        }
        Ok(out)
    }

    fn erase_verified(&mut self, fps: &[u64], keys: &[u8], key_offsets: &[u64]) -> KernelResult<Vec<u64>> {
        let mut out = Vec::with_capacity(fps.len());
        for (i, &fp) in fps.iter().enumerate() {
            let key = &keys[key_offsets[i] as usize..key_offsets[i + 1] as usize];
            let released = match self.table.locate(fp) {
                Some(at) if self.verify(self.table.payload_at(at), key)?.is_some() => self.table.clear_at(at),
                _ => NO_PAYLOAD,
            };
            out.push(released);
        }
        Ok(out)
    }

    fn index_state(&mut self) -> KernelResult<TableState> {
        Ok(self.table.state())
    }
}
