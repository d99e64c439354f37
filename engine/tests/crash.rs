//! The crash harness: writes keys with increasing, recorded versions through RESP,
//! crashes `augur serve` (SIGKILL at a random moment, or a failpoint that aborts the
//! process between WAL append, fsync, acknowledgement, flush to the store and WAL
//! truncation), restarts it, and checks every acknowledged write.
//!
//! - `always`: every acknowledged value, or a newer one, is readable after each
//!   restart and reaches the store.
//! - `everysec`: the harness also simulates a *machine* crash by cutting off the WAL
//!   bytes that were not fsynced (the failpoint build records the synced length).
//!   Writes may then be lost, but only ones acknowledged within the last
//!   `EVERYSEC_WINDOW` before the crash.
//!
//! Short form in CI (`./x test`): 3 kills per store and mode. Long form:
//! `./x crash 100` (see docs/RESULTS.md). Settings: `AUGUR_CRASH_KILLS`,
//! `AUGUR_CRASH_STORES` (`rocksdb,postgres`), `AUGUR_CRASH_MODES` (`always,everysec`).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use augur_adapters::{PostgresStore, RocksDbStore, Store};
use bytes::Bytes;
use common::process::Augur;
use rand::{Rng, SeedableRng};

const KEYS: u64 = 100;
const EVERYSEC_WINDOW: Duration = Duration::from_secs(2);
const FAILPOINTS: [&str; 6] = [
    "wal::before_write",
    "wal::after_write",
    "wal::after_fsync",
    "flush::before_store_write",
    "flush::after_store_write",
    "wal::before_segment_remove",
];

/// Every acknowledged version per key, in order, with when it was acknowledged.
type Acked = Arc<Mutex<HashMap<u64, Vec<(u64, Instant)>>>>;

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name).unwrap_or_else(|_| default.into()).split(',').map(|s| s.trim().to_string()).collect()
}

#[derive(Debug, Default)]
struct Summary {
    kills: u64,
    failpoint_crashes: u64,
    acknowledged: u64,
    lost_outside_window: u64,
    lost_inside_window: u64,
    worst_loss_age_ms: u128,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_harness() {
    if !cfg!(feature = "failpoints") {
        assert!(
            std::env::var_os("AUGUR_REQUIRE_FAILPOINTS").is_none(),
            "the crash harness needs `--features augur-engine/failpoints` (./x test passes it)"
        );
        println!("SKIP crash_harness: built without the failpoints feature (./x test enables it)");
        return;
    }
    let kills: u64 = std::env::var("AUGUR_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let mut table = Vec::new();
    for store in env_list("AUGUR_CRASH_STORES", "rocksdb,postgres") {
        for mode in env_list("AUGUR_CRASH_MODES", "always,everysec") {
            let summary = run(&store, &mode, kills).await;
            println!("crash harness: store={store} durability={mode} {summary:?}");
            assert_eq!(summary.lost_outside_window, 0, "{store}/{mode}: acknowledged writes lost: {summary:?}");
            if mode == "always" {
                assert_eq!(summary.lost_inside_window, 0, "{store}/always lost acknowledged writes: {summary:?}");
            }
            table.push((store.clone(), mode, summary));
        }
    }
    println!("\n| store | durability | kills | by failpoint | acknowledged writes | lost | lost (inside the everysec window) | oldest loss |");
    println!("|---|---|---|---|---|---|---|---|");
    for (store, mode, s) in &table {
        println!(
            "| {store} | {mode} | {} | {} | {} | {} | {} | {} ms |",
            s.kills,
            s.failpoint_crashes,
            s.acknowledged,
            s.lost_outside_window,
            s.lost_inside_window,
            s.worst_loss_age_ms
        );
    }
}

async fn run(store: &str, mode: &str, kills: u64) -> Summary {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store_args: Vec<String> = Vec::new();
    let mut pg_table = None;
    if store == "postgres" {
        let table = augur_adapters::testing::unique_table_name();
        store_args = vec![
            "--store".into(),
            format!("postgres:{}", augur_adapters::testing::postgres_url()),
            "--pg-table".into(),
            table.clone(),
        ];
        pg_table = Some(table);
    }
    let mut args: Vec<String> = vec!["--durability".into(), mode.into(), "--flush-delay-ms".into(), "20".into()];
    args.extend(store_args.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let seed: u64 = std::env::var("AUGUR_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random);
    println!("crash harness: store={store} durability={mode} seed={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let version = Arc::new(AtomicU64::new(0));
    let acked: Acked = Arc::default();
    let mut summary = Summary::default();

    for kill in 0..kills {
        let failpoint = (kill % 2 == 1).then(|| FAILPOINTS[rng.random_range(0..FAILPOINTS.len())]);
        let mut env: Vec<(&str, String)> = vec![("AUGUR_RECORD_SYNCED", "1".into())];
        if let Some(fp) = failpoint {
            env.push(("FAILPOINTS", format!("{fp}=2%return")));
        }
        let mut augur = Augur::start_with_env(dir.path(), &args, &env);
        let writers = spawn_writers(&augur, Arc::clone(&version), Arc::clone(&acked));
        let deadline = Instant::now() + Duration::from_millis(rng.random_range(300..1500));
        let mut died_by_failpoint = false;
        while Instant::now() < deadline {
            if augur.child.try_wait().expect("try_wait").is_some() {
                died_by_failpoint = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let crashed_at = Instant::now();
        if !died_by_failpoint {
            augur.kill9();
        }
        summary.kills += 1;
        summary.failpoint_crashes += u64::from(died_by_failpoint);
        for w in writers {
            let _ = w.await;
        }
        if mode == "everysec" {
            drop_unsynced_wal(&dir.path().join("wal"));
        }
        // Restart without failpoints and check every acknowledged write.
        let mut checker = Augur::start(dir.path(), &args);
        verify(&checker, &acked, crashed_at, mode, &mut summary).await;
        checker.kill9();
        summary.kills += 1; // the checker is killed too: another crash with nothing in flight
    }

    // Finally a clean shutdown, then the store itself must hold every acknowledged value.
    let mut last = Augur::start(dir.path(), &args);
    let mut con = connect(&last).await;
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query_async(&mut con).await;
    assert!(last.wait_exit(Duration::from_secs(60)).success(), "{}", last.log());
    let backing: Arc<dyn Store> = match &pg_table {
        Some(table) => Arc::new(
            PostgresStore::builder(augur_adapters::testing::postgres_url()).table(table).open().await.expect("pg"),
        ),
        None => Arc::new(RocksDbStore::open(dir.path().join("rocksdb")).expect("rocksdb")),
    };
    let acked_now = acked.lock().expect("lock").clone();
    for (k, history) in &acked_now {
        let Some(&(v, _)) = history.last() else { continue };
        let value = backing.get(&key(*k)).await.expect("store get");
        let got = parse(value.as_deref());
        assert!(got >= v, "store holds version {got} of key {k}, acknowledged {v}");
    }
    summary.acknowledged = version.load(Ordering::SeqCst);
    if let Some(table) = &pg_table {
        if let Ok(pg) = PostgresStore::builder(augur_adapters::testing::postgres_url()).table(table).open().await {
            let _ = pg.drop_table().await;
        }
    }
    summary
}

fn key(k: u64) -> Bytes {
    Bytes::from(format!("crash-{k}"))
}

fn parse(value: Option<&[u8]>) -> u64 {
    value.and_then(|v| std::str::from_utf8(v).ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

async fn connect(augur: &Augur) -> redis::aio::MultiplexedConnection {
    redis::Client::open(augur.url()).expect("client").get_multiplexed_async_connection().await.expect("connect")
}

/// Four writers, each owning a quarter of the keys: per key, writes are sequential
/// (each waits for its acknowledgement), so "newer" is well defined. With two
/// connections racing on one key, either write may legitimately win.
fn spawn_writers(augur: &Augur, version: Arc<AtomicU64>, acked: Acked) -> Vec<tokio::task::JoinHandle<()>> {
    const WRITERS: u64 = 4;
    (0..WRITERS)
        .map(|w| {
            let url = augur.url();
            let version = Arc::clone(&version);
            let acked = Arc::clone(&acked);
            tokio::spawn(async move {
                let Ok(client) = redis::Client::open(url) else { return };
                let Ok(mut con) = client.get_multiplexed_async_connection().await else { return };
                let mut rng = rand::rngs::StdRng::seed_from_u64(rand::random());
                loop {
                    let k = rng.random_range(0..KEYS / WRITERS) * WRITERS + w;
                    let v = version.fetch_add(1, Ordering::SeqCst) + 1;
                    let reply: redis::RedisResult<()> =
                        redis::cmd("SET").arg(key(k).as_ref()).arg(v.to_string()).query_async(&mut con).await;
                    if reply.is_err() {
                        return; // the server died
                    }
                    let mut map = acked.lock().expect("lock");
                    map.entry(k).or_default().push((v, Instant::now()));
                }
            })
        })
        .collect()
}

/// Cuts the WAL back to what was fsynced, as a machine crash that loses the page
/// cache would: the recorded segment is truncated and any later segment removed.
fn drop_unsynced_wal(wal: &Path) {
    let Ok(text) = std::fs::read_to_string(wal.join("synced")) else { return };
    let mut parts = text.split_whitespace();
    let (Some(name), Some(len)) = (parts.next(), parts.next().and_then(|l| l.parse::<u64>().ok())) else { return };
    for entry in std::fs::read_dir(wal).expect("wal dir") {
        let path = entry.expect("entry").path();
        let Some(file) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        if !file.ends_with(".wal") {
            continue;
        }
        if file.as_str() > name {
            std::fs::remove_file(&path).expect("remove unsynced segment");
        } else if file == name {
            let f = std::fs::OpenOptions::new().write(true).open(&path).expect("open");
            if f.metadata().expect("meta").len() > len {
                f.set_len(len).expect("truncate");
            }
        }
    }
}

async fn verify(augur: &Augur, acked: &Acked, crashed_at: Instant, mode: &str, summary: &mut Summary) {
    let mut con = connect(augur).await;
    let snapshot = acked.lock().expect("lock").clone();
    for (k, history) in snapshot {
        let value: Option<Vec<u8>> = redis::cmd("GET").arg(key(k).as_ref()).query_async(&mut con).await.expect("GET");
        let got = parse(value.as_deref());
        // Acknowledged versions newer than what survived: lost.
        let lost: Vec<&(u64, Instant)> = history.iter().filter(|(v, _)| *v > got).collect();
        let Some(oldest_lost) = lost.iter().map(|(_, at)| *at).min() else { continue };
        let age = crashed_at.saturating_duration_since(oldest_lost);
        if mode == "everysec" && age <= EVERYSEC_WINDOW {
            summary.lost_inside_window += lost.len() as u64;
            summary.worst_loss_age_ms = summary.worst_loss_age_ms.max(age.as_millis());
            // What survived is now the acknowledged state for the rest of the run.
            acked.lock().expect("lock").insert(k, history.into_iter().filter(|(v, _)| *v <= got).collect());
        } else {
            summary.lost_outside_window += lost.len() as u64;
            println!("LOST key {k}: {} acknowledged versions up to {age:?} before the crash; found {got}", lost.len());
        }
    }
}
