//! Shared test support: a fault-injecting wrapper around a real store.
#![allow(dead_code)]

pub mod process;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use augur_adapters::{Durability, Store, StoreError, StoreResult};
use bytes::Bytes;

/// Wraps a real store; can fail writes, delay reads and counts calls. Only for
/// injecting faults: the data always lives in the real store underneath.
#[derive(Debug)]
pub struct Faulty {
    pub inner: Arc<dyn Store>,
    pub fail_writes: AtomicBool,
    pub fail_reads: AtomicBool,
    pub read_delay: Mutex<Duration>,
    pub read_calls: AtomicU64,
    pub keys_read: AtomicU64,
    pub write_calls: AtomicU64,
}

impl Faulty {
    pub fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            fail_writes: AtomicBool::new(false),
            fail_reads: AtomicBool::new(false),
            read_delay: Mutex::new(Duration::ZERO),
            read_calls: AtomicU64::new(0),
            keys_read: AtomicU64::new(0),
            write_calls: AtomicU64::new(0),
        })
    }

    pub fn set_read_delay(&self, d: Duration) {
        *self.read_delay.lock().expect("lock") = d;
    }
}

#[async_trait]
impl Store for Faulty {
    fn name(&self) -> &str {
        "faulty"
    }
    fn durability(&self) -> Durability {
        self.inner.durability()
    }
    async fn get_many(&self, keys: &[Bytes]) -> StoreResult<Vec<Option<Bytes>>> {
        self.read_calls.fetch_add(1, Ordering::SeqCst);
        self.keys_read.fetch_add(keys.len() as u64, Ordering::SeqCst);
        // Read first, then wait: models a read whose answer arrives late.
        let result = self.inner.get_many(keys).await;
        let delay = *self.read_delay.lock().expect("lock");
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if self.fail_reads.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("injected read failure"));
        }
        result
    }
    async fn put_many(&self, entries: &[(Bytes, Bytes)]) -> StoreResult<()> {
        self.write_batch(entries, &[]).await
    }
    async fn delete_many(&self, keys: &[Bytes]) -> StoreResult<()> {
        self.write_batch(&[], keys).await
    }
    async fn write_batch(&self, puts: &[(Bytes, Bytes)], deletes: &[Bytes]) -> StoreResult<()> {
        self.write_calls.fetch_add(1, Ordering::SeqCst);
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("injected write failure (store down)"));
        }
        self.inner.write_batch(puts, deletes).await
    }
    async fn health(&self) -> StoreResult<()> {
        self.inner.health().await
    }
}

pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}
