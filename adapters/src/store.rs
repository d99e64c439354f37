//! The backing-store plugin interface.
//!
//! Augur fronts a database; everything it needs from that database is in [`Store`].
//! The interface is batch-first because the engine only ever talks to a store in
//! bulk: read misses are coalesced into `get_many`, the write-back flusher drains
//! dirty entries with `write_batch`, and the prefetcher reads candidates in batches.
//! Per-key methods exist for convenience and default to the batch ones.
//!
//! `docs/adapters.md` is the guide for writing a new adapter; the
//! [`conformance`](crate::conformance) suite checks one.

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::StoreResult;

/// What survives once a write call on a store has returned `Ok`.
///
/// The engine reports it next to its own WAL durability so an operator can see the
/// guarantee end to end (the weaker of the two applies until the flusher has
/// written an entry to the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Durability {
    /// On stable storage: survives a crash of this process, of the store's server
    /// and of the machine (RocksDB with `sync`, PostgreSQL with synchronous commit).
    Synced,
    /// Survives a crash of this process but not necessarily of the machine or the
    /// store's server (RocksDB's WAL in the OS page cache, PostgreSQL with
    /// `synchronous_commit = off`).
    ProcessCrashSafe,
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Durability::Synced => "synced (survives machine crash)",
            Durability::ProcessCrashSafe => "process-crash-safe (not machine crash)",
        })
    }
}

/// A key/value store Augur can front.
///
/// # Contract
///
/// Every adapter must pass [`conformance`](crate::conformance); in short:
///
/// - Keys and values are arbitrary bytes: empty, containing zero bytes, not UTF-8.
///   An empty value is a present value, distinct from an absent key.
/// - `get_many` answers in request order, one slot per requested key, duplicates
///   included.
/// - `put_many` is an upsert. If a key appears more than once in one call, the last
///   occurrence wins. `delete_many` of absent keys is not an error.
/// - A call that returns `Ok` has applied all of its entries with the guarantee
///   [`Store::durability`] states. A call that returns `Err` may have applied some, none
///   or all of them; the engine only ever retries writes whose outcome is the same
///   when applied twice (upserts and deletes are idempotent).
/// - Concurrent calls are allowed. Between two calls that overlap in time, either may
///   win; between calls that do not overlap, the later one wins.
/// - Errors are classified by [`ErrorKind`](crate::ErrorKind), never by message.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// A short name for logs and INFO, such as `rocksdb` or `postgres`.
    fn name(&self) -> &str;

    /// What a successful write call guarantees.
    fn durability(&self) -> Durability;

    /// Reads many keys; the result has one slot per requested key, in order.
    async fn get_many(&self, keys: &[Bytes]) -> StoreResult<Vec<Option<Bytes>>>;

    /// Upserts many entries; the last occurrence of a repeated key wins.
    async fn put_many(&self, entries: &[(Bytes, Bytes)]) -> StoreResult<()>;

    /// Deletes many keys; absent keys are ignored.
    async fn delete_many(&self, keys: &[Bytes]) -> StoreResult<()>;

    /// Applies upserts and deletes together. Callers guarantee that no key appears in
    /// both lists. Adapters that can apply both atomically (one RocksDB WriteBatch, one
    /// SQL transaction) override this; the default is two calls.
    async fn write_batch(&self, puts: &[(Bytes, Bytes)], deletes: &[Bytes]) -> StoreResult<()> {
        if !puts.is_empty() {
            self.put_many(puts).await?;
        }
        if !deletes.is_empty() {
            self.delete_many(deletes).await?;
        }
        Ok(())
    }

    /// Cheap liveness check: `Ok` when the store currently answers.
    async fn health(&self) -> StoreResult<()>;

    /// Reads many keys on the calling thread, as `get_many` would, for a caller
    /// that is a thread of its own and whose latency matters more than the
    /// thread's: the prefetcher, whose read must land before the client asks, and
    /// which saves two thread hand-offs (to a runtime worker and to the blocking
    /// pool) this way. `None`: this store can only read asynchronously (a network
    /// store), and the caller falls back to `get_many`.
    fn get_many_blocking(&self, keys: &[Bytes]) -> Option<StoreResult<Vec<Option<Bytes>>>> {
        let _ = keys;
        None
    }

    /// Reads one key.
    async fn get(&self, key: &Bytes) -> StoreResult<Option<Bytes>> {
        let mut values = self.get_many(std::slice::from_ref(key)).await?;
        Ok(values.pop().flatten())
    }
}

/// Keeps the last occurrence of each key, preserving first-seen order otherwise.
/// Adapters whose bulk statements reject repeated keys (PostgreSQL's `ON CONFLICT`)
/// use it to honour "last occurrence wins".
pub fn last_occurrence_wins(entries: &[(Bytes, Bytes)]) -> Vec<(Bytes, Bytes)> {
    let mut index: std::collections::HashMap<&Bytes, usize> = std::collections::HashMap::with_capacity(entries.len());
    let mut out: Vec<(Bytes, Bytes)> = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        match index.get(key) {
            Some(&at) => out[at].1 = value.clone(),
            None => {
                index.insert(key, out.len());
                out.push((key.clone(), value.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_occurrence_wins_keeps_newest_value() {
        let b = Bytes::from_static;
        let entries = vec![(b(b"a"), b(b"1")), (b(b"b"), b(b"2")), (b(b"a"), b(b"3"))];
        let deduped = last_occurrence_wins(&entries);
        assert_eq!(deduped, vec![(b(b"a"), b(b"3")), (b(b"b"), b(b"2"))]);
    }
}
