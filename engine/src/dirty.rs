//! Acknowledged writes that the store does not have yet.
//!
//! They live here, not in the cache tier, because a cache may evict anything at any
//! time (moka cannot pin an entry) and a dirty entry must never be evicted before
//! the store has it. Reads check this set first, so a dirty value always shadows an
//! older cached or stored one. The set is bounded in bytes; writers wait for room
//! (see [`DirtySet::wait_for_room`]).
//!
//! Each entry carries the sequence number of its latest write. The flusher takes
//! entries oldest first and, when the store confirms, removes only those whose
//! sequence number did not change meanwhile; a newer write stays dirty and is
//! flushed later, so the store receives a key's values in sequence order.

use std::collections::{BTreeMap, HashMap};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

/// Per-entry bookkeeping charged against the bound, besides key and value bytes.
pub(crate) const ENTRY_OVERHEAD: u64 = 64;

/// A dirty entry: the latest acknowledged value (`None` = deleted), its sequence, and
/// when it was written (for the flush-lag figures).
#[derive(Debug, Clone)]
pub(crate) struct DirtyEntry {
    pub seq: u64,
    pub value: Option<Bytes>,
    pub since: Instant,
}

/// Bytes a write of `key`/`value` holds while dirty.
pub(crate) fn weight(key: &Bytes, value: &Option<Bytes>) -> u64 {
    key.len() as u64 + value.as_ref().map_or(0, |v| v.len() as u64) + ENTRY_OVERHEAD
}

#[derive(Debug, Default)]
pub(crate) struct DirtyState {
    map: HashMap<Bytes, DirtyEntry>,
    /// Sequence number → key, for oldest-first flushing and the WAL watermark.
    by_seq: BTreeMap<u64, Bytes>,
    bytes: u64,
}

impl DirtyState {
    /// The entry for `key`, if dirty.
    pub fn get(&self, key: &Bytes) -> Option<&DirtyEntry> {
        self.map.get(key)
    }

    /// Records a write. An older sequence number than the one held is ignored (a
    /// newer write already won).
    pub fn insert(&mut self, key: Bytes, seq: u64, value: Option<Bytes>) {
        if let Some(old) = self.map.get(&key) {
            if old.seq > seq {
                return;
            }
            self.bytes -= weight(&key, &old.value);
            self.by_seq.remove(&old.seq);
        }
        self.bytes += weight(&key, &value);
        self.by_seq.insert(seq, key.clone());
        self.map.insert(key, DirtyEntry { seq, value, since: Instant::now() });
    }
}

/// The set, behind one lock (see the module docs).
#[derive(Debug)]
pub(crate) struct DirtySet {
    state: Mutex<DirtyState>,
    /// The number of dirty entries, published by every guard as it unlocks. A GET
    /// checks it before taking the lock: in a read-mostly workload the set is
    /// usually empty, and the lock shared by every connection was a cache line
    /// bouncing between cores on each cache hit.
    entries: AtomicUsize,
    room: Notify,
    limit: u64,
}

/// The locked state; on unlock it publishes the entry count to
/// [`DirtySet::maybe_dirty`].
pub(crate) struct DirtyGuard<'a> {
    state: MutexGuard<'a, DirtyState>,
    entries: &'a AtomicUsize,
}

impl Deref for DirtyGuard<'_> {
    type Target = DirtyState;
    fn deref(&self) -> &DirtyState {
        &self.state
    }
}

impl DerefMut for DirtyGuard<'_> {
    fn deref_mut(&mut self) -> &mut DirtyState {
        &mut self.state
    }
}

impl Drop for DirtyGuard<'_> {
    fn drop(&mut self) {
        // Still under the lock (the MutexGuard field drops after this). Release pairs
        // with `maybe_dirty`'s Acquire: a reader that sees 0 also sees every tier
        // insert `complete` made before the entries left.
        self.entries.store(self.state.map.len(), Ordering::Release);
    }
}

impl DirtySet {
    pub fn new(limit: u64) -> Self {
        Self { state: Mutex::new(DirtyState::default()), entries: AtomicUsize::new(0), room: Notify::new(), limit }
    }

    pub fn lock(&self) -> DirtyGuard<'_> {
        // The state is only ever mutated by complete, short methods; a panic
        // elsewhere cannot leave it half-updated.
        DirtyGuard { state: self.state.lock().unwrap_or_else(|p| p.into_inner()), entries: &self.entries }
    }

    /// False when nothing is dirty, read without the lock. A write is in the set
    /// (and so counted here) before it is acknowledged, so a read that starts after
    /// the acknowledgement sees true and looks the key up under the lock.
    pub fn maybe_dirty(&self) -> bool {
        self.entries.load(Ordering::Acquire) > 0
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// (entries, bytes).
    pub fn usage(&self) -> (u64, u64) {
        let s = self.lock();
        (s.map.len() as u64, s.bytes)
    }

    /// Waits until `size` more bytes fit under the bound, up to `timeout`. Returns
    /// the dirty bytes at the moment it gave up. Writers that pass concurrently may
    /// overshoot the bound by their own sizes, which keeps this lock-free on the
    /// common path; the overshoot is bounded by the number of concurrent writers.
    pub async fn wait_for_room(&self, size: u64, timeout: Duration) -> Result<(), u64> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.room.notified();
            let bytes = self.lock().bytes;
            if bytes + size <= self.limit {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let bytes = self.lock().bytes;
                return if bytes + size <= self.limit { Ok(()) } else { Err(bytes) };
            }
        }
    }

    /// Up to `max_entries` / `max_bytes` of the oldest dirty entries, left in place.
    pub fn oldest(&self, max_entries: usize, max_bytes: u64) -> Vec<(Bytes, DirtyEntry)> {
        let s = self.lock();
        let mut out = Vec::new();
        let mut bytes = 0;
        for key in s.by_seq.values() {
            if out.len() >= max_entries || (bytes >= max_bytes && !out.is_empty()) {
                break;
            }
            if let Some(entry) = s.map.get(key) {
                bytes += weight(key, &entry.value);
                out.push((key.clone(), entry.clone()));
            }
        }
        out
    }

    /// Removes entries the store now has, unless a newer write replaced them
    /// meanwhile, and hands the removed ones to `on_clean` (key and value) while
    /// still holding the lock, so no write or reader can slip between leaving the
    /// dirty set and entering the tier.
    pub fn complete(&self, flushed: &[(Bytes, DirtyEntry)], on_clean: impl FnOnce(Vec<(Bytes, Option<Bytes>)>)) {
        let mut s = self.lock();
        let mut cleaned = Vec::with_capacity(flushed.len());
        for (key, entry) in flushed {
            if s.map.get(key).is_some_and(|cur| cur.seq == entry.seq) {
                if let Some(removed) = s.map.remove(key) {
                    s.by_seq.remove(&removed.seq);
                    s.bytes -= weight(key, &removed.value);
                    cleaned.push((key.clone(), removed.value));
                }
            }
        }
        on_clean(cleaned);
        drop(s);
        self.room.notify_waiters();
    }

    /// How long the oldest dirty entry has waited for the store (zero when nothing is
    /// dirty).
    pub fn oldest_age(&self) -> Duration {
        let s = self.lock();
        let oldest = s.by_seq.values().next().and_then(|key| s.map.get(key));
        oldest.map_or(Duration::ZERO, |entry| entry.since.elapsed())
    }

    /// Every record with a smaller sequence number is in the store or superseded by
    /// a dirty one; `next_seq` when nothing is dirty.
    pub fn watermark(&self, next_seq: u64) -> u64 {
        self.lock().by_seq.keys().next().copied().unwrap_or(next_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn newer_write_survives_completion_of_older_flush() {
        let set = DirtySet::new(1 << 20);
        set.lock().insert(b("k"), 1, Some(b("v1")));
        let batch = set.oldest(10, 1 << 20);
        set.lock().insert(b("k"), 2, Some(b("v2")));
        let mut cleaned = Vec::new();
        set.complete(&batch, |c| cleaned = c);
        assert!(cleaned.is_empty(), "the flush of seq 1 must not clean seq 2");
        assert_eq!(set.lock().get(&b("k")).map(|e| e.seq), Some(2));
        assert_eq!(set.watermark(10), 2);
        let batch = set.oldest(10, 1 << 20);
        set.complete(&batch, |_| {});
        assert_eq!(set.usage(), (0, 0));
        assert_eq!(set.watermark(10), 10);
    }

    #[test]
    fn the_lock_free_check_follows_the_entries() {
        let set = DirtySet::new(1 << 20);
        assert!(!set.maybe_dirty());
        set.lock().insert(b("k"), 1, Some(b("v")));
        assert!(set.maybe_dirty(), "a dirty key must send readers to the set");
        let batch = set.oldest(10, 1 << 20);
        set.complete(&batch, |_| {});
        assert!(!set.maybe_dirty());
    }

    #[test]
    fn older_sequence_never_replaces_newer() {
        let set = DirtySet::new(1 << 20);
        set.lock().insert(b("k"), 5, Some(b("new")));
        set.lock().insert(b("k"), 3, Some(b("old")));
        assert_eq!(set.lock().get(&b("k")).and_then(|e| e.value.clone()), Some(b("new")));
    }

    #[tokio::test]
    async fn writers_wait_for_room_then_give_up() {
        let set = DirtySet::new(200);
        set.lock().insert(b("a"), 1, Some(Bytes::from(vec![0u8; 100])));
        let err = set.wait_for_room(100, Duration::from_millis(50)).await;
        assert_eq!(err, Err(165));
        let batch = set.oldest(10, 1 << 20);
        set.complete(&batch, |_| {});
        assert_eq!(set.wait_for_room(100, Duration::from_millis(50)).await, Ok(()));
    }
}
