//! The engine's read-through and write-back guarantees, against real stores.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use augur_adapters::testing::postgres_url;
use augur_adapters::{PostgresStore, RocksDbStore, Store};
use augur_engine::{Engine, EngineConfig, EngineError, SetCondition, SyncPolicy};
use bytes::Bytes;
use common::{b, Faulty};

/// Writes one key and waits until the write is acknowledged (durable in the WAL).
async fn set_durably(engine: &Engine, key: Bytes, value: Bytes) {
    engine.set(key, value).await.expect("set").durable().await.expect("durable");
}

fn config(dir: &std::path::Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir.join("wal"));
    c.flush_delay = Duration::from_millis(10);
    c.shutdown_flush_timeout = Duration::from_millis(300);
    c
}

async fn writes_reach_the_store(store: Arc<dyn Store>, dir: &std::path::Path) {
    let engine = Engine::open(config(dir), Arc::clone(&store)).await.expect("open");
    set_durably(&engine, b("a"), b("1")).await;
    engine
        .set_many(vec![(b("b"), b("2")), (Bytes::from_static(b"\0\xff"), Bytes::new())])
        .await
        .expect("mset")
        .durable()
        .await
        .expect("durable");
    let (n, t) = engine.delete_many(vec![b("a"), b("missing")]).await.expect("del");
    t.durable().await.expect("durable");
    assert_eq!(n, 1);
    // Read-your-writes before any flush.
    assert_eq!(engine.get(&b("b")).await.expect("get"), Some(b("2")));
    assert_eq!(engine.get(&b("a")).await.expect("get"), None);
    engine.flush_all().await.expect("flush");
    let got = store.get_many(&[b("a"), b("b"), Bytes::from_static(b"\0\xff")]).await.expect("store get");
    assert_eq!(got, vec![None, Some(b("2")), Some(Bytes::new())]);
    engine.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_reach_rocksdb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(RocksDbStore::open(dir.path().join("db")).expect("rocksdb"));
    writes_reach_the_store(store, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_reach_postgres() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = augur_adapters::testing::unique_table_name();
    let store = Arc::new(PostgresStore::builder(postgres_url()).table(&table).open().await.expect("postgres"));
    writes_reach_the_store(Arc::clone(&store) as Arc<dyn Store>, dir.path()).await;
    store.drop_table().await.expect("drop");
}

async fn rocks_faulty(dir: &std::path::Path) -> Arc<Faulty> {
    Faulty::new(Arc::new(RocksDbStore::open(dir.join("db")).expect("rocksdb")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_share_one_store_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rocks_faulty(dir.path()).await;
    store.inner.put_many(&[(b("hot"), b("v"))]).await.expect("seed");
    store.set_read_delay(Duration::from_millis(200));
    let engine = Engine::open(config(dir.path()), store.clone()).await.expect("open");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let e = engine.clone();
        tasks.push(tokio::spawn(async move { e.get(&b("hot")).await }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("join").expect("get"), Some(b("v")));
    }
    assert_eq!(store.keys_read.load(Ordering::SeqCst), 1, "50 concurrent misses must cost one store read");
    // Now cached: no further store reads.
    assert_eq!(engine.get(&b("hot")).await.expect("get"), Some(b("v")));
    assert_eq!(store.keys_read.load(Ordering::SeqCst), 1);
    assert_eq!(engine.stats().hits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_store_read_never_replaces_a_newer_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rocks_faulty(dir.path()).await;
    store.inner.put_many(&[(b("k"), b("old"))]).await.expect("seed");
    store.set_read_delay(Duration::from_millis(300));
    let engine = Engine::open(config(dir.path()), store.clone()).await.expect("open");
    let reader = {
        let e = engine.clone();
        tokio::spawn(async move { e.get(&b("k")).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await; // the read is in flight
    set_durably(&engine, b("k"), b("new")).await;
    engine.flush_all().await.expect("flush"); // the store has "new" before the read returns
    let seen = reader.await.expect("join").expect("get");
    assert_eq!(seen, Some(b("old")), "the read began before the write");
    store.set_read_delay(Duration::ZERO);
    assert_eq!(engine.get(&b("k")).await.expect("get"), Some(b("new")), "stale read was cached");
    assert_eq!(engine.stats().stale_reads_dropped, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dirty_bound_refuses_writes_then_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rocks_faulty(dir.path()).await;
    store.fail_writes.store(true, Ordering::SeqCst);
    let mut cfg = config(dir.path());
    cfg.dirty_limit_bytes = 64 * 1024;
    cfg.dirty_wait = Duration::from_millis(200);
    let engine = Engine::open(cfg, store.clone()).await.expect("open");
    let value = Bytes::from(vec![b'x'; 1000]);
    let mut accepted = 0;
    let err = loop {
        match engine.set(Bytes::from(format!("k{accepted}")), value.clone()).await {
            Ok(t) => {
                t.durable().await.expect("durable");
                accepted += 1;
                assert!(accepted < 1000, "the bound never applied");
            }
            Err(e) => break e,
        }
    };
    assert!(matches!(err, EngineError::DirtyBound { .. }), "{err}");
    assert!(err.reply_text().starts_with("OOM"), "{}", err.reply_text());
    let stats = engine.stats();
    assert!(stats.dirty_bytes <= 64 * 1024 + 1100, "dirty bytes {} exceed the bound", stats.dirty_bytes);
    // Acknowledged writes stay readable while the store is down.
    assert_eq!(engine.get(&b("k0")).await.expect("get"), Some(value.clone()));
    store.fail_writes.store(false, Ordering::SeqCst);
    // The flusher retries a failing store with backoff (up to 3.2 s), so room comes
    // back at its next attempt, not at once: a client retrying its refused write
    // (as it would after OOM) gets in within that.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let ticket = loop {
        match engine.set(b("after"), value.clone()).await {
            Ok(ticket) => break ticket,
            Err(EngineError::DirtyBound { .. }) if std::time::Instant::now() < deadline => continue,
            Err(e) => panic!("not accepted once the store is back: {e}"),
        }
    };
    ticket.durable().await.expect("durable");
    engine.flush_all().await.expect("flush");
    for i in 0..accepted {
        let key = Bytes::from(format!("k{i}"));
        assert_eq!(store.inner.get(&key).await.expect("get"), Some(value.clone()), "k{i} lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_set_semantics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rocks_faulty(dir.path()).await;
    store.inner.put_many(&[(b("stored"), b("s"))]).await.expect("seed");
    let engine = Engine::open(config(dir.path()), store).await.expect("open");
    let nx = engine.set_conditional(b("stored"), b("x"), SetCondition::IfAbsent).await.expect("nx");
    assert!(!nx.written, "key exists in the store, NX must not write");
    assert_eq!(nx.previous, Some(b("s")));
    let xx = engine.set_conditional(b("absent"), b("x"), SetCondition::IfPresent).await.expect("xx");
    assert!(!xx.written);
    let nx = engine.set_conditional(b("absent"), b("y"), SetCondition::IfAbsent).await.expect("nx");
    assert!(nx.written);
    nx.ticket.durable().await.expect("durable");
    assert_eq!(engine.get(&b("absent")).await.expect("get"), Some(b("y")));
    // Many racing NX on one key: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let e = engine.clone();
        tasks.push(tokio::spawn(async move {
            e.set_conditional(b("race"), Bytes::from(format!("{i}")), SetCondition::IfAbsent).await
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.expect("join").expect("nx").written);
    }
    assert_eq!(winners, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_read_failure_is_reported_not_cached() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rocks_faulty(dir.path()).await;
    store.inner.put_many(&[(b("k"), b("v"))]).await.expect("seed");
    store.fail_reads.store(true, Ordering::SeqCst);
    let engine = Engine::open(config(dir.path()), store.clone()).await.expect("open");
    let err = engine.get(&b("k")).await.expect_err("store down");
    assert!(err.reply_text().starts_with("TRYAGAIN"), "{}", err.reply_text());
    store.fail_reads.store(false, Ordering::SeqCst);
    assert_eq!(engine.get(&b("k")).await.expect("get"), Some(b("v")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_replays_unflushed_writes_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rocks_faulty(dir.path()).await;
    store.fail_writes.store(true, Ordering::SeqCst); // nothing reaches the store
    let mut cfg = config(dir.path());
    cfg.sync = SyncPolicy::Always;
    {
        let engine = Engine::open(cfg.clone(), store.clone()).await.expect("open");
        for i in 0..100 {
            set_durably(&engine, Bytes::from(format!("k{i}")), Bytes::from(format!("v{i}"))).await;
        }
        engine.delete_many(vec![b("k0")]).await.expect("del").1.durable().await.expect("durable");
        // "Crash": the engine is abandoned without shutdown.
    }
    store.fail_writes.store(false, Ordering::SeqCst);
    let engine = Engine::open(cfg, store.clone()).await.expect("reopen replays the WAL");
    assert_eq!(engine.get(&b("k0")).await.expect("get"), None);
    assert_eq!(engine.get(&b("k99")).await.expect("get"), Some(b("v99")));
    engine.flush_all().await.expect("flush replayed writes");
    assert_eq!(store.inner.get(&b("k50")).await.expect("get"), Some(b("v50")));
    engine.shutdown().await.expect("shutdown");
    let left = std::fs::read_dir(dir.path().join("wal")).expect("ls").count();
    assert_eq!(left, 0, "a clean shutdown leaves nothing to replay");
}

fn segments(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    v
}

async fn write_then_abandon(dir: &std::path::Path, cfg: &EngineConfig, n: usize) {
    let store = rocks_faulty(dir).await;
    store.fail_writes.store(true, Ordering::SeqCst);
    let engine = Engine::open(cfg.clone(), store).await.expect("open");
    for i in 0..n {
        set_durably(&engine, Bytes::from(format!("k{i}")), Bytes::from(vec![b'v'; 100])).await;
    }
    engine.shutdown().await.expect_err("store down: shutdown cannot flush");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_wal_tail_is_truncated_and_start_continues() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.sync = SyncPolicy::Always;
    write_then_abandon(dir.path(), &cfg, 10).await;
    let last = segments(dir.path()).pop().expect("a segment");
    let len = std::fs::metadata(&last).expect("meta").len();
    // Half a record at the end: a crash in the middle of a write.
    let mut f = std::fs::OpenOptions::new().append(true).open(&last).expect("open");
    std::io::Write::write_all(&mut f, &[200, 0, 0, 0, 1, 2, 3, 4, 5, 6]).expect("append");
    drop(f);
    let store = rocks_faulty(dir.path()).await;
    let engine = Engine::open(cfg, store).await.expect("a torn tail must not stop start-up");
    assert_eq!(std::fs::metadata(&last).expect("meta").len(), len, "torn tail truncated");
    for i in 0..10 {
        assert!(engine.get(&Bytes::from(format!("k{i}"))).await.expect("get").is_some(), "k{i} lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_wal_in_the_middle_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.sync = SyncPolicy::Always;
    write_then_abandon(dir.path(), &cfg, 10).await;
    let seg = segments(dir.path())
        .into_iter()
        .find(|p| std::fs::metadata(p).map(|m| m.len() > 100).unwrap_or(false))
        .expect("segment with records");
    let mut data = std::fs::read(&seg).expect("read");
    data[40] ^= 0xff; // inside the first record, well before the end
    std::fs::write(&seg, &data).expect("write");
    let store = rocks_faulty(dir.path()).await;
    let err = Engine::open(cfg, store).await.expect_err("mid-log corruption must refuse start");
    let text = err.to_string();
    assert!(text.contains(&seg.display().to_string()), "file missing: {text}");
    assert!(text.contains("offset 12"), "offset missing: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushed_segments_are_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.wal_segment_bytes = 4096;
    let store = rocks_faulty(dir.path()).await;
    let engine = Engine::open(cfg, store).await.expect("open");
    for i in 0..500 {
        set_durably(&engine, Bytes::from(format!("k{i}")), Bytes::from(vec![b'v'; 100])).await;
    }
    assert!(engine.stats().wal_segments >= 1);
    engine.flush_all().await.expect("flush");
    set_durably(&engine, b("one-more"), b("v")).await;
    engine.flush_all().await.expect("flush");
    let stats = engine.stats();
    assert!(stats.wal_segments <= 2, "flushed segments kept: {}", stats.wal_segments);
    assert_eq!(stats.dirty_keys, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_cache_is_off_by_default_and_works_when_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rocks_faulty(dir.path()).await;
    let engine = Engine::open(config(dir.path()), store.clone()).await.expect("open");
    assert_eq!(engine.get(&b("ghost")).await.expect("get"), None);
    store.inner.put_many(&[(b("ghost"), b("appeared"))]).await.expect("write behind augur's back");
    assert_eq!(
        engine.get(&b("ghost")).await.expect("get"),
        Some(b("appeared")),
        "absent must not be cached by default"
    );
    drop(engine);

    let dir2 = tempfile::tempdir().expect("tempdir");
    let store = rocks_faulty(dir2.path()).await;
    let mut cfg = config(dir2.path());
    cfg.negative_cache = true;
    let engine = Engine::open(cfg, store.clone()).await.expect("open");
    assert_eq!(engine.get(&b("ghost")).await.expect("get"), None);
    assert_eq!(engine.get(&b("ghost")).await.expect("get"), None);
    assert_eq!(store.keys_read.load(Ordering::SeqCst), 1, "second read answered from the negative cache");
    assert_eq!(engine.stats().negative_hits, 1);
    // A write replaces the cached "absent".
    set_durably(&engine, b("ghost"), b("now")).await;
    assert_eq!(engine.get(&b("ghost")).await.expect("get"), Some(b("now")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_length_in_the_last_segment_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.sync = SyncPolicy::Always;
    write_then_abandon(dir.path(), &cfg, 10).await;
    let last = segments(dir.path()).pop().expect("a segment");
    let mut data = std::fs::read(&last).expect("read");
    // The first record's length field (just after the 12-byte file header) now claims
    // more bytes than the file holds; nine intact records follow it.
    data[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&last, &data).expect("write");
    let store = rocks_faulty(dir.path()).await;
    let err = Engine::open(cfg, store).await.expect_err("must refuse, not truncate acknowledged records");
    let text = err.to_string();
    assert!(text.contains("offset 12") && text.contains("damaged"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_twice_without_writes_keeps_the_wal_consistent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.sync = SyncPolicy::Always;
    write_then_abandon(dir.path(), &cfg, 5).await;
    // Restart with a working store, flush everything, then "crash" with no new writes.
    for _ in 0..2 {
        let store = rocks_faulty(dir.path()).await;
        let engine = Engine::open(cfg.clone(), store).await.expect("open");
        engine.flush_all().await.expect("flush");
        drop(engine);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let store = rocks_faulty(dir.path()).await;
    let engine = Engine::open(cfg, store.clone()).await.expect("open after two empty restarts");
    let ticket = engine.set(b("after"), b("restarts")).await.expect("set");
    assert!(ticket.seq() > 5, "sequence numbers went back to {}", ticket.seq());
    ticket.durable().await.expect("durable");
    engine.flush_all().await.expect("flush");
    assert!(engine.stats().wal_segments <= 2, "stale segments kept: {}", engine.stats().wal_segments);
    assert_eq!(store.inner.get(&b("k4")).await.expect("get").map(|v| v.len()), Some(100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_after_a_write_never_joins_an_older_store_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rocks_faulty(dir.path()).await;
    store.inner.put_many(&[(b("k"), b("v0"))]).await.expect("seed");
    let mut cfg = config(dir.path());
    cfg.eviction = augur_engine::EvictionKind::Lru;
    cfg.tier = augur_engine::TierKind::Cpu;
    cfg.cache_bytes = 400; // room for about two entries
    let engine = Engine::open(cfg, store.clone()).await.expect("open");
    store.set_read_delay(Duration::from_millis(1500));
    let old_reader = {
        let e = engine.clone();
        tokio::spawn(async move { e.get(&b("k")).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    set_durably(&engine, b("k"), b("v1")).await;
    engine.flush_all().await.expect("flush");
    // Push k out of the cache so the next read must go to the store.
    for i in 0..4 {
        set_durably(&engine, Bytes::from(format!("other{i}")), Bytes::from(vec![b'x'; 100])).await;
    }
    engine.flush_all().await.expect("flush");
    let got = engine.get(&b("k")).await.expect("get");
    assert_eq!(got, Some(b("v1")), "a read that began after the write returned the older store read's value");
    assert_eq!(old_reader.await.expect("join").expect("get"), Some(b("v0")));
}
