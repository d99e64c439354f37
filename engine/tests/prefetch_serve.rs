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
    let augur = Augur::start(dir.path(), &["--prefetch", "ml", "--prefetch-target-accuracy", "0.4"]);
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
    assert_eq!(info_field(&mut con, "prefetch_target_accuracy"), "0.400", "the operator's target");
    // The predictor's threshold starts at a target below its default start.
    while info_field(&mut con, "prefetch_threshold") == "NaN" {
        assert!(Instant::now() < deadline, "INFO never reported the predictor's threshold");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(info_field(&mut con, "prefetch_threshold"), "0.400", "the predictor was given the target");

    // An operator changes the target while serving; a bad value changes nothing.
    let set = |con: &mut redis::Connection, value: &str| {
        redis::cmd("CONFIG").arg("SET").arg("prefetch-target-accuracy").arg(value).query::<()>(con)
    };
    let get = |con: &mut redis::Connection| {
        redis::cmd("CONFIG").arg("GET").arg("prefetch-target-accuracy").query::<Vec<String>>(con).expect("CONFIG GET")
    };
    for (bad, why) in [("1", "[0.2, 1)"), ("0.1", "[0.2, 1)"), ("most", "couldn't be parsed into a number")] {
        let err = set(&mut con, bad).expect_err("out of range or not a number");
        assert!(err.to_string().contains(why), "{bad}: {err}");
    }
    assert_eq!(get(&mut con), ["prefetch-target-accuracy", "0.4"], "a refused value changes nothing");
    set(&mut con, "0.3").expect("CONFIG SET prefetch-target-accuracy 0.3");
    assert_eq!(get(&mut con), ["prefetch-target-accuracy", "0.3"]);
    assert_eq!(info_field(&mut con, "prefetch_target_accuracy"), "0.300");
    // The predictor takes the new target up with its next request.
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut con, "prefetch_threshold") != "0.300" {
        assert!(Instant::now() < deadline, "the predictor never restarted its threshold at the new target");
        let _: Option<String> = con.get("k0").expect("GET");
        std::thread::sleep(Duration::from_millis(50));
    }
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

#[test]
fn a_live_ab_test_prefetches_only_the_treatment_group_and_reports_the_effect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let augur = Augur::start(
        dir.path(),
        &["--prefetch", "markov", "--cache-size", "1MiB", "--eviction", "lru", "--ab", "true", "--ab-window-ms", "250"],
    );
    let client = redis::Client::open(augur.url()).expect("client");
    let mut con = client.get_connection().expect("connect");
    let keys: Vec<String> = (0..3000).map(|i| format!("page:{}", (i * 7919) % 100_003)).collect();
    let value = "v".repeat(2048);
    // A few hot keys read all along give the control group hits of its own, so
    // the relative improvement is defined.
    let hot: Vec<String> = (0..20).map(|i| format!("hot:{i}")).collect();
    for k in keys.iter().chain(&hot) {
        let _: () = con.set(k, &value).expect("SET");
    }
    wait_flushed(&mut con);
    let field = |con: &mut redis::Connection, name: &str| -> f64 {
        info_field(con, name).parse().unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let started = Instant::now();
    for _ in 0..4 {
        for (i, k) in keys.iter().enumerate() {
            let got: String = con.get(k).expect("GET");
            assert_eq!(got.len(), 2048);
            if i % 20 == 0 {
                let _: String = con.get(&hot[i / 20 % hot.len()]).expect("GET hot");
            }
            std::thread::sleep(Duration::from_micros(300));
        }
    }
    // Let at least one more window close after the last read.
    std::thread::sleep(Duration::from_millis(600));
    assert!(started.elapsed() > Duration::from_secs(1), "several windows must have closed");

    // Every read is counted in exactly one group.
    let group_hits = field(&mut con, "ab_control_hits") + field(&mut con, "ab_treatment_hits");
    let group_misses = field(&mut con, "ab_control_misses") + field(&mut con, "ab_treatment_misses");
    assert_eq!(group_hits, field(&mut con, "keyspace_hits"));
    assert_eq!(group_misses, field(&mut con, "keyspace_misses"));
    // A cycle through ~6 MB with half of 1 MiB per group: only prefetching hits.
    let control = field(&mut con, "ab_control_hit_ratio");
    let treatment = field(&mut con, "ab_treatment_hit_ratio");
    assert!(control > 0.0 && control < 0.2, "the control group has no prefetching: hit ratio {control}");
    assert!(treatment > control + 0.3, "treatment {treatment} against control {control}");
    // The prefetcher sees only treatment reads, so its proposals are treatment keys
    // (a control key it names is dropped and counted here).
    let _dropped = field(&mut con, "ab_control_candidates_dropped");
    let windows = field(&mut con, "ab_windows");
    let info: String = redis::cmd("INFO").arg("ab").query(&mut con).expect("INFO ab");
    assert!(windows >= 3.0, "{info}");
    assert!(field(&mut con, "ab_improvement") > 0.5);
    assert!(field(&mut con, "ab_paired_p_value") < 0.01);
    // Outcomes per model version (v0: a non-learned prefetcher).
    let v0 = info_field(&mut con, "prefetch_model_v0");
    let issued: u64 = v0
        .split(',')
        .find_map(|kv| kv.strip_prefix("issued="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{v0}"));
    assert!(issued > 500, "{v0}");
}
