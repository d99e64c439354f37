//! The GPU tier: clean and prefetched entries in GPU memory, in the bucketed
//! cuckoo table of `augur-kernels` (`docs/gpu-table.md`).
//!
//! Why a GPU tier: device memory is large and fast, and batched kernel launches
//! answer millions of lookups per launch, so write batches and prefetched keys can
//! be staged there without crowding the CPU tier. Every call here is one batched
//! launch sequence: `insert_many` and `get_many` are the calls worth making; the
//! single-key methods are batches of one and pay a full launch each.
//!
//! Records over the table's largest size class (64 KiB including key and header)
//! do not fit a slab: they go to a small moka tier inside this one (an eighth of
//! the capacity), so a caller never sees a refusal. A GPU error never fails a
//! request: a failed lookup is a miss and a failed insert removes the key (so no
//! older copy can be served), each logged once.
//!
//! Constructible only when a GPU is present: [`GpuTier::open`] returns
//! [`KernelError::NoGpu`] otherwise, which the engine turns into one log line and
//! the CPU tier.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use augur_kernels::gpu::{gpu_kv_table, GpuInfo};
use augur_kernels::kv::{KvConfig, KvItem, Refusal};
use augur_kernels::{GpuDevice, GpuKvBackend, KernelError, KernelResult, KvTable};
use bytes::Bytes;

use super::{Cached, EntryState, MokaTier, Tier, TierEntry};

/// Record flag: the store has no such key (negative caching).
const FLAG_ABSENT: u32 = 1;
/// Record flag: pulled in by the prefetcher and not yet read.
const FLAG_PREFETCHED: u32 = 2;

/// Bytes of arena per index slot: one slot per smallest-class record, so the index
/// (16 B per slot plus 4 B per 16 slots) costs a quarter of the arena at most and
/// never runs out before the arena does.
const ARENA_BYTES_PER_SLOT: u64 = 64;

/// Clean and prefetched entries in GPU memory.
#[derive(Debug)]
pub struct GpuTier {
    table: Mutex<KvTable<GpuKvBackend>>,
    /// Entries too large for a slab.
    overflow: MokaTier,
    info: GpuInfo,
    capacity: u64,
    warned: AtomicBool,
    /// Set once anything went to `overflow`; until then lookups skip it.
    overflow_used: AtomicBool,
}

impl GpuTier {
    /// Opens GPU 0 and allocates `capacity` bytes of records there (plus the index,
    /// a quarter of that, and an eighth of `capacity` in host memory for records too
    /// large for the GPU). Fails with [`KernelError::NoGpu`] when there is no GPU.
    pub fn open(capacity: u64) -> KernelResult<Self> {
        let dev = GpuDevice::open(0)?;
        let info = dev.info().clone();
        let arena = capacity.max(augur_kernels::slab::DEFAULT_PAGE_BYTES);
        let index_slots = (arena / ARENA_BYTES_PER_SLOT).max(64);
        let table = gpu_kv_table(dev, KvConfig::new(index_slots, arena))?;
        let overflow_bytes = (capacity / 8).max(1 << 20);
        Ok(Self {
            table: Mutex::new(table),
            overflow: MokaTier::new(overflow_bytes),
            info,
            capacity: arena + overflow_bytes,
            warned: AtomicBool::new(false),
            overflow_used: AtomicBool::new(false),
        })
    }

    /// The device and how its kernels were built (for the start-up log and INFO).
    pub fn info(&self) -> &GpuInfo {
        &self.info
    }

    fn lock(&self) -> MutexGuard<'_, KvTable<GpuKvBackend>> {
        // A panic while holding the lock leaves the table as consistent as the last
        // completed launch; keep serving rather than poison every later request.
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn warn(&self, what: &str, error: &KernelError) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::error!(%error, "GPU tier: {what} failed; answering from the store (logged once)");
        }
    }

    fn overflow_in_use(&self) -> bool {
        self.overflow_used.load(Ordering::Relaxed)
    }
}

fn flags_of(entry: &TierEntry) -> u32 {
    let absent = if matches!(entry.value, Cached::Absent) { FLAG_ABSENT } else { 0 };
    let prefetched = if entry.state == EntryState::Prefetched { FLAG_PREFETCHED } else { 0 };
    absent | prefetched
}

fn entry_of(value: Vec<u8>, flags: u32) -> TierEntry {
    TierEntry {
        value: if flags & FLAG_ABSENT != 0 { Cached::Absent } else { Cached::Present(Bytes::from(value)) },
        state: if flags & FLAG_PREFETCHED != 0 { EntryState::Prefetched } else { EntryState::Clean },
    }
}

impl Tier for GpuTier {
    fn name(&self) -> &'static str {
        "gpu (bucketed cuckoo, CLOCK eviction)"
    }

    fn get(&self, key: &Bytes) -> Option<TierEntry> {
        self.get_many(std::slice::from_ref(key)).pop().flatten()
    }

    fn insert(&self, key: Bytes, entry: TierEntry) {
        self.insert_many(vec![(key, entry)]);
    }

    fn remove(&self, key: &Bytes) {
        self.remove_many(std::slice::from_ref(key));
    }

    fn len(&self) -> u64 {
        self.lock().len() + self.overflow.len()
    }

    fn weighted_bytes(&self) -> u64 {
        self.lock().used_bytes() + self.overflow.weighted_bytes()
    }

    fn capacity(&self) -> u64 {
        self.capacity
    }

    fn get_many(&self, keys: &[Bytes]) -> Vec<Option<TierEntry>> {
        let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_ref()).collect();
        let found = match self.lock().find(&refs) {
            Ok(found) => found,
            Err(e) => {
                self.warn("a lookup", &e);
                vec![None; keys.len()]
            }
        };
        let overflow = self.overflow_in_use();
        found
            .into_iter()
            .zip(keys)
            .map(|(hit, key)| match hit {
                Some(f) => Some(entry_of(f.value, f.flags)),
                None if overflow => self.overflow.get(key),
                None => None,
            })
            .collect()
    }

    fn insert_many(&self, entries: Vec<(Bytes, TierEntry)>) {
        let empty = Bytes::new();
        let items: Vec<KvItem<'_>> = entries
            .iter()
            .map(|(key, entry)| KvItem {
                key: key.as_ref(),
                value: match &entry.value {
                    Cached::Present(v) => v.as_ref(),
                    Cached::Absent => empty.as_ref(),
                },
                flags: flags_of(entry),
            })
            .collect();
        let result = self.lock().insert(&items);
        match result {
            Ok(report) => {
                let mut refused = vec![false; entries.len()];
                for (i, why) in report.refused {
                    refused[i] = true;
                    if why == Refusal::TooLarge {
                        self.overflow_used.store(true, Ordering::Relaxed);
                        self.overflow.insert(entries[i].0.clone(), entries[i].1.clone());
                    }
                }
                if self.overflow_in_use() {
                    // A value that now fits the GPU must not leave an older large one
                    // behind to be served after the GPU copy is evicted.
                    for (i, (key, _)) in entries.iter().enumerate() {
                        if !refused[i] {
                            self.overflow.remove(key);
                        }
                    }
                }
            }
            Err(e) => {
                self.warn("an insert", &e);
                let keys: Vec<Bytes> = entries.into_iter().map(|(k, _)| k).collect();
                self.remove_many(&keys);
            }
        }
    }

    fn remove_many(&self, keys: &[Bytes]) {
        let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_ref()).collect();
        if let Err(e) = self.lock().erase(&refs) {
            self.warn("a removal", &e);
        }
        if self.overflow_in_use() {
            for key in keys {
                self.overflow.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bypasses libtest's capture so a skip is visible in `cargo test`.
    fn skip(line: &str) {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "{line}");
    }

    #[test]
    fn without_a_gpu_the_tier_is_an_error_not_a_panic() {
        match GpuTier::open(1 << 20) {
            Err(KernelError::NoGpu { reason }) => {
                assert!(!reason.is_empty());
                skip(&format!("SKIP: no CUDA driver ({reason}): GPU tier round trip"));
            }
            Err(e) => panic!("expected NoGpu or a working tier, got {e}"),
            Ok(tier) => round_trip(&tier),
        }
    }

    fn round_trip(tier: &GpuTier) {
        let k = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        tier.insert_many(vec![
            (k("a"), TierEntry::clean(Some(k("1")))),
            (k("b"), TierEntry::clean(None)),
            (k("c"), TierEntry { value: Cached::Present(k("3")), state: EntryState::Prefetched }),
        ]);
        let got = tier.get_many(&[k("a"), k("b"), k("c"), k("d")]);
        assert_eq!(got[0], Some(TierEntry::clean(Some(k("1")))));
        assert_eq!(got[1], Some(TierEntry::clean(None)));
        assert_eq!(got[2].as_ref().map(|e| e.state), Some(EntryState::Prefetched));
        assert_eq!(got[3], None);
        // Too large for a slab: served from the overflow tier, and replaced cleanly.
        let big = Bytes::from(vec![9u8; 100 << 10]);
        tier.insert(k("big"), TierEntry::clean(Some(big.clone())));
        assert_eq!(tier.get(&k("big")), Some(TierEntry::clean(Some(big))));
        tier.insert(k("big"), TierEntry::clean(Some(k("small now"))));
        assert_eq!(tier.get(&k("big")), Some(TierEntry::clean(Some(k("small now")))));
        tier.remove_many(&[k("a"), k("big")]);
        assert_eq!(tier.get(&k("a")), None);
        assert_eq!(tier.get(&k("big")), None);
        assert_eq!(tier.len(), 2);
    }
}
