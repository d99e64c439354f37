//! Store outages: what a user sees while the database is gone, and that nothing
//! acknowledged is lost once it is back.
//!
//! - PostgreSQL stopped in the middle of a mixed load (a private cluster the test
//!   controls; `AUGUR_OUTAGE_SECS`, default 3, 30 for the long form): cached reads keep
//!   working, misses fail fast with `TRYAGAIN`, writes are accepted until the dirty
//!   bound and then refused with `OOM`, and after the restart everything flushes.
//! - RocksDB on a file system that fills up (a 4 MiB tmpfs; needs root to mount): the
//!   I/O error is reported in INFO and the log, writes stop at the dirty bound, and
//!   after space is freed and Augur restarts, every acknowledged write is in RocksDB.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use augur_adapters::testing::PgCluster;
use augur_adapters::{PostgresStore, RocksDbStore, Store};
use bytes::Bytes;
use common::process::Augur;

async fn connect(augur: &Augur) -> redis::aio::MultiplexedConnection {
    redis::Client::open(augur.url()).expect("client").get_multiplexed_async_connection().await.expect("connect")
}

async fn info_field(con: &mut redis::aio::MultiplexedConnection, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").query_async(con).await.expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} not in INFO:\n{info}"))
}

async fn wait_until_clean(con: &mut redis::aio::MultiplexedConnection, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while info_field(con, "dirty_keys").await > 0 {
        assert!(Instant::now() < deadline, "dirty data not flushed within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes until the server refuses; returns the acknowledged values and the refusal.
async fn write_until_refused(
    con: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
    acked: &mut HashMap<String, String>,
) -> String {
    let value = "v".repeat(4000);
    for i in 0..100_000 {
        let key = format!("{prefix}{i}");
        let reply: redis::RedisResult<()> = redis::cmd("SET").arg(&key).arg(&value).query_async(con).await;
        match reply {
            Ok(()) => {
                acked.insert(key, value.clone());
            }
            Err(e) => return e.to_string(),
        }
    }
    panic!("writes were never refused: the dirty bound did not apply");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_serves_cached_reads_and_loses_nothing() {
    let outage = Duration::from_secs(std::env::var("AUGUR_OUTAGE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(3));
    let cluster = tokio::task::spawn_blocking(PgCluster::start)
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("cannot start a private PostgreSQL cluster: {e}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("postgres:{}", cluster.url());
    let augur = Augur::start(
        dir.path(),
        &["--store", &store, "--dirty-limit", "512KiB", "--dirty-wait-ms", "200", "--flush-delay-ms", "20"],
    );
    let mut con = connect(&augur).await;
    let mut acked: HashMap<String, String> = HashMap::new();
    for i in 0..100 {
        let (k, v) = (format!("warm{i}"), format!("value{i}"));
        let _: () = redis::cmd("SET").arg(&k).arg(&v).query_async(&mut con).await.expect("SET");
        acked.insert(k, v);
    }
    wait_until_clean(&mut con, Duration::from_secs(10)).await;

    cluster.stop().expect("stop PostgreSQL");
    let started = Instant::now();
    // Cached reads keep working.
    for i in (0..100).step_by(7) {
        let v: Option<String> =
            redis::cmd("GET").arg(format!("warm{i}")).query_async(&mut con).await.expect("cached GET");
        assert_eq!(v, Some(format!("value{i}")));
    }
    // A miss fails fast, with an error saying the store is unavailable.
    let t = Instant::now();
    let err = redis::cmd("GET").arg("never-cached").query_async::<Option<String>>(&mut con).await.expect_err("miss");
    assert!(t.elapsed() < Duration::from_secs(6), "miss took {:?}", t.elapsed());
    // The redis crate shows the TRYAGAIN code as "TryAgain".
    assert!(err.to_string().to_uppercase().contains("TRYAGAIN"), "{err}");
    // Writes are accepted until the dirty bound, then refused with a clear error.
    let refusal = write_until_refused(&mut con, "during", &mut acked).await;
    assert!(refusal.contains("dirty") && refusal.to_uppercase().contains("OOM"), "{refusal}");
    assert!(info_field(&mut con, "flush_errors").await > 0, "flush failures must be reported");
    // Keep a mixed load going for the rest of the outage.
    while started.elapsed() < outage {
        let v: Option<String> = redis::cmd("GET").arg("warm3").query_async(&mut con).await.expect("cached GET");
        assert_eq!(v.as_deref(), Some("value3"));
        let r: redis::RedisResult<()> = redis::cmd("SET").arg("late").arg("x").query_async(&mut con).await;
        if r.is_ok() {
            acked.insert("late".into(), "x".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    cluster.start_server().expect("restart PostgreSQL");
    wait_until_clean(&mut con, Duration::from_secs(60)).await;
    let pg = PostgresStore::builder(cluster.url()).open().await.expect("open");
    let keys: Vec<Bytes> = acked.keys().map(|k| Bytes::from(k.clone())).collect();
    let values = pg.get_many(&keys).await.expect("read back");
    for (key, value) in keys.iter().zip(values) {
        let want = &acked[std::str::from_utf8(key).expect("utf8")];
        assert_eq!(value.as_deref(), Some(want.as_bytes()), "{key:?} lost across the outage");
    }
    println!("postgres outage of {outage:?}: {} acknowledged writes, 0 lost", acked.len());
}

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &std::path::Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(Tmpfs(path.to_path_buf()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("remount")
            .success();
        assert!(ok, "remount failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocksdb_disk_full_is_reported_and_nothing_is_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mount = match Tmpfs::mount(&dir.path().join("small"), "4m") {
        Ok(m) => m,
        Err(e) => panic!("this test mounts a 4 MiB tmpfs to fill RocksDB's disk and needs root: {e}"),
    };
    let rocks = mount.0.join("rocksdb");
    let store = format!("rocksdb:{}", rocks.display());
    let mut augur = Augur::start(
        dir.path(),
        &["--store", &store, "--dirty-limit", "2MiB", "--dirty-wait-ms", "200", "--flush-delay-ms", "20"],
    );
    let mut con = connect(&augur).await;
    let mut acked = HashMap::new();
    let refusal = write_until_refused(&mut con, "big", &mut acked).await;
    assert!(refusal.to_uppercase().contains("OOM"), "{refusal}");
    assert!(info_field(&mut con, "flush_errors").await > 0, "the I/O error must be counted");
    // Acknowledged writes are still served while the store cannot take them.
    let any = acked.keys().next().expect("some writes acknowledged").clone();
    let v: Option<String> = redis::cmd("GET").arg(&any).query_async(&mut con).await.expect("GET");
    assert_eq!(v.as_deref(), Some(acked[&any].as_str()));
    augur.kill9();
    let log = augur.log();
    assert!(log.contains("No space left") || log.contains("space"), "the cause must be logged:\n{log}");

    // Free space; the restarted server replays its WAL and flushes everything.
    mount.resize("256m");
    let mut augur = Augur::start(dir.path(), &["--store", &store]);
    let mut con = connect(&augur).await;
    wait_until_clean(&mut con, Duration::from_secs(60)).await;
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query_async(&mut con).await;
    assert!(augur.wait_exit(Duration::from_secs(30)).success(), "{}", augur.log());
    let db = RocksDbStore::open(&rocks).expect("open");
    for (k, v) in &acked {
        assert_eq!(db.get(&Bytes::from(k.clone())).await.expect("get").as_deref(), Some(v.as_bytes()), "{k} lost");
    }
}
