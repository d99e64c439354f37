//! A client's read of a key whose prefetch is still in flight joins that read
//! instead of starting its own: the prefetch was late, but it served the client.
//! The other way round, a prefetch of a key a client is already reading is not
//! read at all: redundant, never issued, so not charged to accuracy.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use augur_adapters::{RocksDbStore, Store};
use augur_engine::prefetch::PrefetchKind;
use augur_engine::{Engine, EngineConfig};
use common::{b, Faulty};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_of_a_key_in_flight_joins_its_prefetch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rocks: Arc<dyn Store> = Arc::new(RocksDbStore::open(dir.path().join("db")).expect("rocksdb"));
    let entries: Vec<_> = (1..=6).map(|i| (b(&format!("k:{i}")), b(&format!("v{i}")))).collect();
    rocks.put_many(&entries).await.expect("load");
    let store = Faulty::new(Arc::clone(&rocks));
    let mut config = EngineConfig::new(dir.path().join("wal"));
    // One-block lookahead: after k:1 … k:4 in order, a read of k:5 proposes k:6.
    config.prefetch = PrefetchKind::Obl;
    let engine = Engine::open(config, store.clone() as Arc<dyn Store>).await.expect("open");
    for i in 1..=4 {
        assert_eq!(engine.get(&b(&format!("k:{i}"))).await.expect("get"), Some(b(&format!("v{i}"))));
    }
    // From now on every store read answers after 400 ms, long enough for the
    // client's read of k:6 to arrive while k:6's prefetch is still in flight.
    store.set_read_delay(Duration::from_millis(400));
    let reader = engine.clone();
    let k5 = tokio::spawn(async move { reader.get(&b("k:5")).await });
    let deadline = Instant::now() + Duration::from_secs(10);
    // Both reads under way: k:5's (the fifth demand read) and k:6's prefetch.
    while !matches!(engine.stats(), s if s.prefetch_reads == 1 && s.store_reads == 5) {
        assert!(Instant::now() < deadline, "no prefetch of k:6 was issued");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let before = engine.stats();
    assert_eq!(engine.get(&b("k:6")).await.expect("get"), Some(b("v6")), "the joined read answers");
    assert_eq!(k5.await.expect("task").expect("get"), Some(b("v5")));
    let after = engine.stats();
    assert_eq!(after.store_reads, before.store_reads, "the client started no store read of its own");
    assert_eq!(after.prefetch_joined, 1);
    assert_eq!(after.prefetch_late, 0, "a joined prefetch is not a wasted one");
    assert_eq!(after.misses, before.misses + 1, "the client still waited for the store: a miss, not a hit");
    assert!(after.prefetch_accuracy > 0.99, "the joined prefetch counts as useful: {}", after.prefetch_accuracy);
    // The key is cached as an ordinary entry: its next read is a hit, not a
    // prefetch hit (the prefetch was already credited once).
    assert_eq!(engine.get(&b("k:6")).await.expect("get"), Some(b("v6")));
    let last = engine.stats();
    assert_eq!((last.hits, last.prefetch_hits), (after.hits + 1, after.prefetch_hits));
    engine.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefetch_of_a_key_a_client_is_reading_is_redundant_not_issued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rocks: Arc<dyn Store> = Arc::new(RocksDbStore::open(dir.path().join("db")).expect("rocksdb"));
    // y is not in the store, and absent keys are not cached (no negative
    // caching), so y is never in memory: every read of it goes to the store.
    rocks.put_many(&[(b("x"), b("vx"))]).await.expect("load");
    let store = Faulty::new(Arc::clone(&rocks));
    let mut config = EngineConfig::new(dir.path().join("wal"));
    // Markov proposes y on a read of x once it has seen x → y twice.
    config.prefetch = PrefetchKind::Markov;
    // No store-share limit, so the proposal is taken at once rather than when the
    // demand reads of a 200 ms window have earned it a token.
    config.prefetch_budget.store_share = 1.0;
    let engine = Engine::open(config, store.clone() as Arc<dyn Store>).await.expect("open");
    for key in ["x", "y", "x", "y"] {
        engine.get(&b(key)).await.expect("get");
    }
    let before = engine.stats();
    // Long enough for the predictor thread to take x's read and propose y while
    // the client's read of y is still in flight, even on a busy machine.
    store.set_read_delay(Duration::from_secs(2));
    // A client's read of y, slow in the store; then a read of x (a hit) proposes y.
    let reader = engine.clone();
    let y = tokio::spawn(async move { reader.get(&b("y")).await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while engine.stats().store_reads == before.store_reads {
        assert!(Instant::now() < deadline, "the client's read of y did not start");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let x = engine.clone();
    let x = tokio::spawn(async move { x.get(&b("x")).await });
    while engine.stats().prefetch_redundant == before.prefetch_redundant {
        assert!(Instant::now() < deadline, "the proposal of y was not counted redundant");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(y.await.expect("task").expect("get"), None);
    assert_eq!(x.await.expect("task").expect("get"), Some(b("vx")));
    let after = engine.stats();
    assert_eq!(after.prefetch_redundant, before.prefetch_redundant + 1);
    assert_eq!(after.prefetch_reads, before.prefetch_reads, "no store read for a key already being read");
    assert_eq!(after.prefetch_late, before.prefetch_late, "not issued, so not a late (wasted) prefetch");
    assert_eq!(after.store_reads, before.store_reads + 1, "only the client's own read of y went to the store");
    engine.shutdown().await.expect("shutdown");
}
