//! `augur serve` as a user runs it: a real process, real clients, real stores,
//! SIGKILL and SIGTERM.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use augur_adapters::{PostgresStore, RocksDbStore, Store};
use bytes::Bytes;
use common::process::{redis_tool, Augur};

async fn connect(augur: &Augur) -> redis::aio::MultiplexedConnection {
    redis::Client::open(augur.url()).expect("client").get_multiplexed_async_connection().await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_write_with_always() {
    sigkill_loses_no_acknowledged_write("always").await;
}

// A process crash loses nothing in the other modes either: every write is in the OS
// before it is acknowledged; only a machine crash can lose the unsynced tail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_write_with_everysec() {
    sigkill_loses_no_acknowledged_write("everysec").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_write_with_no() {
    sigkill_loses_no_acknowledged_write("no").await;
}

async fn sigkill_loses_no_acknowledged_write(durability: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    // The flusher is held back so that the acknowledged writes live only in the WAL
    // when the process is killed.
    let hold = ["--durability", durability, "--flush-delay-ms", "600000", "--flush-batch", "1000000"];
    let mut augur = Augur::start(dir.path(), &hold);
    let acked: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..4 {
        let url = augur.url();
        let acked = Arc::clone(&acked);
        writers.push(tokio::spawn(async move {
            let client = redis::Client::open(url).expect("client");
            let Ok(mut con) = client.get_multiplexed_async_connection().await else { return };
            for version in 1..u64::MAX {
                for k in 0..25 {
                    let key = format!("w{w}-k{k}");
                    let reply: redis::RedisResult<()> =
                        redis::cmd("SET").arg(&key).arg(version.to_string()).query_async(&mut con).await;
                    match reply {
                        Ok(()) => {
                            acked.lock().expect("lock").insert(key, version);
                        }
                        Err(_) => return, // the server was killed
                    }
                }
            }
        }));
    }
    while acked.lock().expect("lock").values().sum::<u64>() < 600 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    augur.kill9();
    for w in writers {
        w.await.expect("writer task");
    }
    let acked = acked.lock().expect("lock").clone();
    assert_eq!(acked.len(), 100);

    let mut augur = Augur::start(dir.path(), &["--durability", durability]);
    let mut con = connect(&augur).await;
    for (key, version) in &acked {
        let value: Option<String> = redis::cmd("GET").arg(key).query_async(&mut con).await.expect("GET");
        let got: u64 = value.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
        assert!(got >= *version, "{key}: acknowledged version {version}, found {got} after SIGKILL");
    }
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query_async(&mut con).await;
    let status = augur.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "SHUTDOWN must exit 0: {status}\n{}", augur.log());
    // Every acknowledged write reached RocksDB.
    let store = RocksDbStore::open(dir.path().join("rocksdb")).expect("open rocksdb");
    for (key, version) in &acked {
        let value = store.get(&Bytes::from(key.clone())).await.expect("get").expect("missing in RocksDB");
        let got: u64 = std::str::from_utf8(&value).ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        assert!(got >= *version, "{key}: {got} < {version} in RocksDB");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_everything_and_exits_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut augur = Augur::start(dir.path(), &["--flush-delay-ms", "600000", "--flush-batch", "1000000"]);
    let mut con = connect(&augur).await;
    for i in 0..500 {
        let _: () =
            redis::cmd("SET").arg(format!("key{i}")).arg(format!("value{i}")).query_async(&mut con).await.expect("SET");
    }
    let info: String = redis::cmd("INFO").arg("persistence").query_async(&mut con).await.expect("INFO");
    assert!(info.contains("dirty_keys:500"), "writes should still be dirty:\n{info}");
    augur.sigterm();
    let status = augur.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "SIGTERM must exit 0: {status}\n{}", augur.log());
    let segments = std::fs::read_dir(dir.path().join("wal")).expect("wal dir").count();
    assert_eq!(segments, 0, "a clean shutdown leaves nothing to replay");
    // User data on disk is private to the owner.
    use std::os::unix::fs::PermissionsExt;
    let mut checked = 0;
    for entry in std::fs::read_dir(dir.path().join("rocksdb")).expect("rocksdb dir") {
        let meta = entry.expect("entry").metadata().expect("meta");
        if meta.is_file() {
            assert_eq!(meta.permissions().mode() & 0o077, 0, "RocksDB file readable by others");
            checked += 1;
        }
    }
    assert!(checked > 3);
    let store = RocksDbStore::open(dir.path().join("rocksdb")).expect("open rocksdb");
    for i in [0, 250, 499] {
        let v = store.get(&Bytes::from(format!("key{i}"))).await.expect("get");
        assert_eq!(v, Some(Bytes::from(format!("value{i}"))));
    }
}

#[test]
fn redis_cli_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let augur = Augur::start(dir.path(), &[]);
    let cli = redis_tool("redis-cli");
    let run = |args: &[&str]| -> String {
        let out = Command::new(&cli).arg("-p").arg(augur.port.to_string()).args(args).output().expect("redis-cli");
        assert!(out.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(run(&["SET", "greeting", "hello world"]), "OK");
    assert_eq!(run(&["GET", "greeting"]), "hello world");
    assert_eq!(run(&["MSET", "a", "1", "b", "2"]), "OK");
    assert_eq!(run(&["MGET", "a", "nope", "b"]), "1\n\n2");
    assert_eq!(run(&["DEL", "a", "nope"]), "1");
    assert_eq!(run(&["EXISTS", "a", "b"]), "1");
    assert!(run(&["INFO", "stats"]).contains("keyspace_hits:"));
    assert!(run(&["GET", "x", "y"]).contains("wrong number of arguments"));
}

fn redis_benchmark(augur: &Augur) {
    let bench = redis_tool("redis-benchmark");
    let out = Command::new(bench)
        .args(["-p", &augur.port.to_string(), "-t", "get,set", "-n", "100000", "-P", "16", "-q"])
        .output()
        .expect("redis-benchmark");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "redis-benchmark failed: {stdout}\n{stderr}\n{}", augur.log());
    for t in ["SET:", "GET:"] {
        let line = stdout.lines().rev().find(|l| l.contains(t)).unwrap_or_else(|| panic!("no {t} line in {stdout}"));
        assert!(line.contains("requests per second"), "{line}");
    }
    assert!(!stdout.to_lowercase().contains("error") && !stderr.to_lowercase().contains("error"), "{stdout}\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_benchmark_runs_clean_on_rocksdb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut augur = Augur::start(dir.path(), &[]);
    redis_benchmark(&augur);
    let mut con = connect(&augur).await;
    let v: Vec<u8> = redis::cmd("GET").arg("key:__rand_int__").query_async(&mut con).await.expect("GET");
    assert_eq!(v.len(), 3, "redis-benchmark writes 3-byte values");
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query_async(&mut con).await;
    assert!(augur.wait_exit(Duration::from_secs(30)).success());
    let store = RocksDbStore::open(dir.path().join("rocksdb")).expect("open");
    assert_eq!(store.get(&Bytes::from_static(b"key:__rand_int__")).await.expect("get").map(|v| v.len()), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_benchmark_runs_clean_on_postgres_and_values_reach_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = augur_adapters::testing::postgres_url();
    let table = augur_adapters::testing::unique_table_name();
    let store_arg = format!("postgres:{url}");
    let mut augur = Augur::start(dir.path(), &["--store", &store_arg, "--pg-table", &table]);
    redis_benchmark(&augur);
    let mut con = connect(&augur).await;
    let binary_key = b"bin\0key\xff".to_vec();
    let _: () =
        redis::cmd("SET").arg(&binary_key).arg(b"\x00\x01\x02".to_vec()).query_async(&mut con).await.expect("SET");
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query_async(&mut con).await;
    assert!(augur.wait_exit(Duration::from_secs(30)).success(), "{}", augur.log());
    let store = PostgresStore::builder(&url).table(&table).open().await.expect("open postgres");
    assert_eq!(store.get(&Bytes::from(binary_key)).await.expect("get"), Some(Bytes::from_static(b"\x00\x01\x02")));
    assert_eq!(store.get(&Bytes::from_static(b"key:__rand_int__")).await.expect("get").map(|v| v.len()), Some(3));
    store.drop_table().await.expect("drop");
}

#[test]
fn corrupt_wal_stops_start_up_with_file_and_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let mut augur = Augur::start(dir.path(), &["--flush-delay-ms", "600000", "--flush-batch", "1000000"]);
        rt.block_on(async {
            let mut con = connect(&augur).await;
            for i in 0..20 {
                let _: () = redis::cmd("SET").arg(format!("k{i}")).arg("v").query_async(&mut con).await.expect("SET");
            }
        });
        augur.kill9();
    }
    let wal = dir.path().join("wal");
    let segment = std::fs::read_dir(&wal)
        .expect("wal dir")
        .map(|e| e.expect("entry").path())
        .find(|p| std::fs::metadata(p).map(|m| m.len() > 200).unwrap_or(false))
        .expect("a segment with records");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&segment).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "WAL segments hold user data: owner-only");
    let mut data = std::fs::read(&segment).expect("read");
    data[30] ^= 0x55;
    std::fs::write(&segment, &data).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["serve", "--listen", "127.0.0.1:0", "--wal-dir"])
        .arg(&wal)
        .arg("--store")
        .arg(format!("rocksdb:{}", dir.path().join("rocksdb").display()))
        .output()
        .expect("run augur");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must refuse to start");
    assert!(stderr.contains(&segment.display().to_string()) && stderr.contains("offset 12"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_or_replies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let password = "pw-7c1d-do-not-log";
    let url = augur_adapters::testing::postgres_url();
    // A PostgreSQL URL carrying a password (trust auth ignores it) must be redacted too.
    let pg_secret = "pg-secret-9f3e";
    let url_with_password = url.replacen("postgres@", &format!("postgres:{pg_secret}@"), 1);
    assert!(url_with_password.contains(pg_secret), "test URL {url} has no user part to add a password to");
    let table = augur_adapters::testing::unique_table_name();
    let store = format!("postgres:{url_with_password}");
    let mut augur = Augur::start(dir.path(), &["--requirepass", password, "--store", &store, "--pg-table", &table]);
    let client = redis::Client::open(format!("redis://:{password}@127.0.0.1:{}/", augur.port)).expect("client");
    let mut con = client.get_multiplexed_async_connection().await.expect("AUTH works");
    let mut replies = String::new();
    let info: String = redis::cmd("INFO").query_async(&mut con).await.expect("INFO");
    replies.push_str(&info);
    let config: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("*").query_async(&mut con).await.expect("CONFIG GET");
    replies.push_str(&config.join("\n"));
    let wrong = redis::Client::open(format!("redis://:wrong-{password}@127.0.0.1:{}/", augur.port)).expect("client");
    assert!(wrong.get_multiplexed_async_connection().await.is_err(), "a wrong password must be refused");
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query_async(&mut con).await;
    assert!(augur.wait_exit(Duration::from_secs(30)).success());
    let log = augur.log();
    for secret in [password, pg_secret] {
        assert!(!log.contains(secret), "secret in the log:\n{log}");
        assert!(!replies.contains(secret), "secret in a reply:\n{replies}");
    }
    assert!(log.contains("***"), "the store spec is logged, redacted:\n{log}");
    let pg = PostgresStore::builder(&url).table(&table).open().await.expect("open");
    pg.drop_table().await.expect("drop");
}
