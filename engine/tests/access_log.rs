//! The access log as users see it: exported from a running server, replayed by the
//! simulator, switched off and on at run time, counted in INFO.

mod common;

use std::process::Command;
use std::time::Duration;

use common::process::Augur;

async fn connect(augur: &Augur) -> redis::aio::MultiplexedConnection {
    redis::Client::open(augur.url()).expect("client").get_multiplexed_async_connection().await.expect("connect")
}

async fn info_field(con: &mut redis::aio::MultiplexedConnection, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").query_async(con).await.expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} not in INFO"))
}

/// Runs 300 GETs (100 distinct keys, each three times) and 100 SETs, shuts down, and
/// returns the export path.
async fn traffic_then_shutdown(dir: &std::path::Path, export: &str) -> std::path::PathBuf {
    let path = dir.join(export);
    let path_arg = path.to_str().expect("utf8").to_string();
    let mut augur = Augur::start(dir, &["--access-log-export", &path_arg]);
    let mut con = connect(&augur).await;
    for i in 0..100 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg("value").query_async(&mut con).await.expect("SET");
    }
    for _ in 0..3 {
        for i in 0..100 {
            let _: Option<String> = redis::cmd("GET").arg(format!("k{i}")).query_async(&mut con).await.expect("GET");
        }
    }
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query_async(&mut con).await;
    assert!(augur.wait_exit(Duration::from_secs(30)).success(), "{}", augur.log());
    path
}

fn sim_requests(trace: &std::path::Path, format_args: &[&str]) -> u64 {
    let out = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["sim", "--trace"])
        .arg(trace)
        .args(format_args)
        .args(["--policy", "lru", "--sizes", "1000", "--ignore-obj-size", "--json"])
        .output()
        .expect("augur sim");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let json: Vec<serde_json::Value> = serde_json::from_str(&stdout).expect("json");
    let first = json.first().expect("one result");
    let requests = first["requests"].as_u64().expect("requests");
    let hit_ratio = first["hit_ratio"].as_f64().expect("hit ratio");
    // 100 distinct keys in a 1,000-object cache: only the first touch of each misses.
    assert!((hit_ratio - 300.0 / 400.0).abs() < 1e-9, "hit ratio {hit_ratio}");
    requests
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_export_replays_in_the_simulator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = traffic_then_shutdown(dir.path(), "access.bin").await;
    assert_eq!(sim_requests(&path, &["--format", "augur"]), 400, "every SET and GET is one event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_export_replays_in_the_simulator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = traffic_then_shutdown(dir.path(), "access.csv").await;
    let text = std::fs::read_to_string(&path).expect("read csv");
    assert!(text.starts_with("time_s,key_hash,op,result,value_size,connection\n"));
    assert!(text.lines().any(|l| l.contains(",read,hit,5,")), "hits with the value size");
    let args = ["--format", "csv", "--csv-columns", "time=1,key=2,op=3,size=5", "--csv-header", "yes"];
    assert_eq!(sim_requests(&path, &args), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_can_be_switched_off_at_run_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let augur = Augur::start(dir.path(), &[]);
    let mut con = connect(&augur).await;
    let _: () = redis::cmd("SET").arg("a").arg("1").query_async(&mut con).await.expect("SET");
    let _: () = redis::cmd("CONFIG").arg("SET").arg("access-log").arg("no").query_async(&mut con).await.expect("SET");
    let before = info_field(&mut con, "access_log_events").await;
    assert_eq!(before, 1, "the SET before the switch");
    for _ in 0..100 {
        let _: Option<String> = redis::cmd("GET").arg("a").query_async(&mut con).await.expect("GET");
    }
    assert_eq!(info_field(&mut con, "access_log_events").await, before, "recorded while off");
    assert_eq!(info_field(&mut con, "access_log_enabled").await, 0);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("access-log").arg("yes").query_async(&mut con).await.expect("SET");
    let _: Option<String> = redis::cmd("GET").arg("a").query_async(&mut con).await.expect("GET");
    assert_eq!(info_field(&mut con, "access_log_events").await, before + 1);
}
