//! The embedded default store: RocksDB in a local directory.
//!
//! RocksDB's API is blocking, so every call runs on tokio's blocking pool; a batch
//! costs one hop there, which is why the engine sends batches. Writes go through one
//! `WriteBatch` (atomic, one WAL record) and reads through `multi_get`.
//! Durability maps onto RocksDB's own write-ahead log: with `sync` each write batch
//! is fsynced before the call returns ([`Durability::Synced`]); without it the WAL is
//! in the OS page cache ([`Durability::ProcessCrashSafe`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use rocksdb::{DBCompressionType, Options, WriteBatch, WriteOptions, DB};

use crate::error::{ErrorKind, StoreError, StoreResult};
use crate::store::{Durability, Store};

/// Settings for [`RocksDbStore`]; start from [`RocksDbStore::builder`].
#[derive(Debug, Clone)]
pub struct RocksDbBuilder {
    path: PathBuf,
    sync: bool,
    create_if_missing: bool,
}

impl RocksDbBuilder {
    /// fsync RocksDB's WAL on every write call (default `true`). Augur's own WAL
    /// already makes acknowledged writes durable, so turning this off is safe for
    /// the write-back flusher as long as WAL segments are only removed after
    /// RocksDB has flushed its memtables; see docs/ARCHITECTURE.md.
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// Create the database when the directory holds none (default `true`).
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create_if_missing = create;
        self
    }

    /// Opens the database. Errors name the path and RocksDB's reason (held lock,
    /// corrupt manifest, permissions).
    pub fn open(self) -> StoreResult<RocksDbStore> {
        let mut opts = Options::default();
        opts.create_if_missing(self.create_if_missing);
        opts.increase_parallelism(std::thread::available_parallelism().map(|n| n.get() as i32).unwrap_or(2));
        opts.set_compression_type(DBCompressionType::Lz4);
        opts.set_bottommost_compression_type(DBCompressionType::Zstd);
        // Big values (up to the proxy's bulk limit) go to the WAL and memtable as-is;
        // a larger write buffer keeps 4 MiB values from forcing a flush each time.
        opts.set_write_buffer_size(128 << 20);
        if self.create_if_missing {
            std::fs::create_dir_all(&self.path).map_err(|e| {
                StoreError::new(
                    ErrorKind::Unavailable,
                    format!("cannot create RocksDB directory {}", self.path.display()),
                )
                .with_source(e)
            })?;
        }
        let db = DB::open(&opts, &self.path).map_err(|e| open_error(&self.path, e))?;
        let mut write_opts = WriteOptions::default();
        write_opts.set_sync(self.sync);
        Ok(RocksDbStore { inner: Arc::new(Inner { db, write_opts, path: self.path, sync: self.sync }) })
    }
}

/// A [`Store`] on a RocksDB database in a local directory.
#[derive(Debug, Clone)]
pub struct RocksDbStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: DB,
    write_opts: WriteOptions,
    path: PathBuf,
    sync: bool,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksDb").field("path", &self.path).field("sync", &self.sync).finish()
    }
}

impl RocksDbStore {
    /// Settings for a database at `path`, with `sync` on.
    pub fn builder(path: impl Into<PathBuf>) -> RocksDbBuilder {
        RocksDbBuilder { path: path.into(), sync: true, create_if_missing: true }
    }

    /// Opens (creating if needed) a synced database at `path`.
    pub fn open(path: impl Into<PathBuf>) -> StoreResult<Self> {
        Self::builder(path).open()
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs a blocking RocksDB call on the blocking pool.
    async fn blocking<T, F>(&self, op: &'static str, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, rocksdb::Error> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let result = tokio::task::spawn_blocking(move || f(&inner).map_err(|e| (inner.path.clone(), e)))
            .await
            .map_err(|e| StoreError::new(ErrorKind::Other, format!("rocksdb {op}: task failed")).with_source(e))?;
        result.map_err(|(path, e)| call_error(op, &path, e))
    }
}

fn multi_get(inner: &Inner, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>, rocksdb::Error> {
    inner.db.multi_get(keys.iter().map(|k| k.as_ref())).into_iter().map(|r| r.map(|v| v.map(Bytes::from))).collect()
}

#[async_trait]
impl Store for RocksDbStore {
    fn name(&self) -> &str {
        "rocksdb"
    }

    fn durability(&self) -> Durability {
        if self.inner.sync {
            Durability::Synced
        } else {
            Durability::ProcessCrashSafe
        }
    }

    async fn get_many(&self, keys: &[Bytes]) -> StoreResult<Vec<Option<Bytes>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys = keys.to_vec();
        self.blocking("get_many", move |inner| multi_get(inner, &keys)).await
    }

    fn get_many_blocking(&self, keys: &[Bytes]) -> Option<StoreResult<Vec<Option<Bytes>>>> {
        Some(multi_get(&self.inner, keys).map_err(|e| call_error("get_many", &self.inner.path, e)))
    }

    async fn put_many(&self, entries: &[(Bytes, Bytes)]) -> StoreResult<()> {
        self.write_batch(entries, &[]).await
    }

    async fn delete_many(&self, keys: &[Bytes]) -> StoreResult<()> {
        self.write_batch(&[], keys).await
    }

    async fn write_batch(&self, puts: &[(Bytes, Bytes)], deletes: &[Bytes]) -> StoreResult<()> {
        if puts.is_empty() && deletes.is_empty() {
            return Ok(());
        }
        // Entries are applied in order inside one batch, so a repeated key's last
        // occurrence wins without deduplication.
        let mut batch = WriteBatch::default();
        for (key, value) in puts {
            batch.put(key, value);
        }
        for key in deletes {
            batch.delete(key);
        }
        self.blocking("write", move |inner| inner.db.write_opt(batch, &inner.write_opts)).await
    }

    async fn health(&self) -> StoreResult<()> {
        self.blocking("health", |inner| inner.db.property_value("rocksdb.background-errors").map(|_| ())).await
    }
}

fn classify(e: &rocksdb::Error) -> ErrorKind {
    use rocksdb::ErrorKind as K;
    match e.kind() {
        K::Corruption => ErrorKind::Corruption,
        K::InvalidArgument | K::NotSupported => ErrorKind::BadRequest,
        K::IOError | K::Busy | K::TimedOut | K::TryAgain | K::Incomplete | K::ShutdownInProgress | K::Aborted => {
            ErrorKind::Unavailable
        }
        _ => ErrorKind::Other,
    }
}

fn open_error(path: &Path, e: rocksdb::Error) -> StoreError {
    let kind = classify(&e);
    let text = e.into_string();
    let hint = if text.contains("lock") {
        " (the database is locked: is another augur or RocksDB process using this directory?)"
    } else if kind == ErrorKind::Corruption {
        " (the database is corrupt: restore it from a backup or repair it with RocksDB's ldb tool)"
    } else {
        ""
    };
    StoreError::new(kind, format!("cannot open RocksDB at {}: {text}{hint}", path.display()))
}

fn call_error(op: &str, path: &Path, e: rocksdb::Error) -> StoreError {
    let kind = classify(&e);
    StoreError::new(kind, format!("rocksdb {op} at {}: {}", path.display(), e.into_string()))
}
