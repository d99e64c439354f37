//! Prefetching on a live server: `augur serve --prefetch` learns a repeated key
//! order from real GETs over TCP, pulls the next keys from RocksDB before they are
//! asked for, reports it in INFO, and never serves a value older than a write.

mod common;

use std::time::{Duration, Instant};

use common::process::Augur;
use redis::Commands;

fn info_field(con: &mut redis::Connection, name: &str) -> String {
    let info: String = redis::cmd("INFO").query(con).expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("INFO has no {name}:\n{info}"))
}

fn wait_flushed(con: &mut redis::Connection) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while info_field(con, "dirty_keys") != "0" {
        assert!(Instant::now() < deadline, "flush did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn markov_prefetching_serves_a_repeated_order_from_memory_and_stays_consistent() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A cache far smaller than the 3,000 keys x 2 KiB written: a cycle through
    // them misses on every key unless something fetches ahead.
    let augur = Augur::start(dir.path(), &["--prefetch", "markov", "--cache-size", "512KiB", "--eviction", "lru"]);
    let client = redis::Client::open(augur.url()).expect("client");
    let mut con = client.get_connection().expect("connect");
    assert_eq!(info_field(&mut con, "prefetcher"), "markov");
    let err = redis::cmd("AUGUR.MODEL").arg("LIST").query::<String>(&mut con).expect_err("markov has no models");
    assert!(err.to_string().contains("has no models"), "{err}");
    let keys: Vec<String> = (0..3000).map(|i| format!("page:{}", (i * 7919) % 100_003)).collect();
    let value = |k: &str, round: u32| format!("{k}:{round}:{}", "v".repeat(2048));
    for k in &keys {
        let _: () = con.set(k, value(k, 0)).expect("SET");
    }
    wait_flushed(&mut con);

    // Walk the same order a few times, one GET at a time as a client would.
    for _ in 0..4 {
        for k in &keys {
            let got: String = con.get(k).expect("GET");
            assert_eq!(got, value(k, 0));
            // Give the executor its chance: the budget is per second, not per request.
            std::thread::sleep(Duration::from_micros(300));
        }
    }
    let prefetch_hits: u64 = info_field(&mut con, "prefetch_hits").parse().expect("number");
    let inserted: u64 = info_field(&mut con, "prefetch_inserted").parse().expect("number");
    let reads: u64 = info_field(&mut con, "prefetch_reads").parse().expect("number");
    assert!(inserted > 500, "prefetched {inserted} keys into the cache (read {reads})");
    assert!(prefetch_hits > 500, "only {prefetch_hits} GETs were answered by a prefetch");
    assert!(prefetch_hits <= inserted, "a prefetch hit needs a prefetched entry");
    let accuracy: f64 = info_field(&mut con, "prefetch_accuracy").parse().expect("number");
    assert!(accuracy > 0.5, "accuracy {accuracy}");

    // Writes race the prefetcher: every GET after a SET sees the new value, whether
    // the key is dirty, flushed, prefetched or evicted.
    for (round, chunk) in keys.chunks(300).take(4).enumerate() {
        for k in chunk {
            let _: () = con.set(k, value(k, round as u32 + 1)).expect("SET");
        }
        for k in &keys[..1200] {
            let got: String = con.get(k).expect("GET");
            let newest = keys.chunks(300).take(round + 1).position(|c| c.contains(k)).map_or(0, |r| r as u32 + 1);
            assert_eq!(got, value(k, newest), "stale value for {k} after round {round}");
        }
    }
}

#[test]
fn learned_prefetcher_starts_reports_and_rejects_unknown_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let augur = Augur::start(dir.path(), &["--prefetch", "ml"]);
    let client = redis::Client::open(augur.url()).expect("client");
    let mut con = client.get_connection().expect("connect");
    for i in 0..200 {
        let _: Option<String> = con.get(format!("k{i}")).expect("GET");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut con, "prefetcher") != "ml" {
        assert!(Instant::now() < deadline, "INFO never reported the ml prefetcher");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(info_field(&mut con, "prefetch_model_version"), "0", "no model before enough samples");
    let list: String = redis::cmd("AUGUR.MODEL").arg("LIST").query(&mut con).expect("AUGUR.MODEL LIST");
    assert_eq!(list, "[]", "no versions yet");
    let err = redis::cmd("AUGUR.MODEL").arg("PROMOTE").arg(3).query::<String>(&mut con).expect_err("no v3");
    assert!(err.to_string().contains("no model version 3"), "{err}");
    let err = redis::cmd("AUGUR.MODEL").arg("FROB").query::<String>(&mut con).expect_err("bad subcommand");
    assert!(err.to_string().to_lowercase().contains("unknown subcommand"), "{err}");
    drop(augur);
    assert!(dir.path().join("models").is_dir(), "checkpoints go beside the WAL by default");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["serve", "--prefetch", "oracle", "--listen", "127.0.0.1:0"])
        .output()
        .expect("run augur");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--prefetch") && err.contains("oracle"), "{err}");
}
