//! `augur sim` and `augur gen` as a user runs them: flags, JSON contract, table,
//! plot files and error messages.

use augur_simulators::testing::shared_trace;
use std::process::Command;

use augur_simulators::report::from_json;

fn augur() -> Command {
    Command::new(env!("CARGO_BIN_EXE_augur"))
}

#[test]
fn sim_json_runs_every_combination_with_the_documented_keys() {
    let out = augur()
        .args(["sim", "--trace"])
        .arg(shared_trace("cloudPhysicsIO.oracleGeneral.bin"))
        .args(["--policy", "lru,fifo", "--prefetch", "none,obl", "--sizes", "1%,128MiB", "--json"])
        .output()
        .expect("run augur sim");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    // from_json rejects missing and unknown keys: this checks the contract.
    let reports = from_json(&String::from_utf8_lossy(&out.stdout)).expect("JSON array of reports");
    assert_eq!(reports.len(), 2 * 2 * 2);
    let lru_128 = |pf: &str| {
        reports.iter().find(|r| r.policy == "lru" && r.prefetch == pf && r.cache_size == 128 << 20).expect("lru 128MiB")
    };
    // libCacheSim's byte-mode regression values: LRU 0.8200, LRU+OBL 0.8091.
    assert!((lru_128("none").miss_ratio - 0.8200).abs() <= 0.005);
    assert!((lru_128("obl").miss_ratio - 0.8091).abs() <= 0.005);
    let obl = lru_128("obl");
    assert!(obl.prefetches_issued > 0 && obl.accuracy.is_some() && obl.coverage.is_some_and(|c| c > 0.0));
    // 1% of the byte working set (2,029,769,728 bytes), truncated like cachesim.
    assert!(reports.iter().any(|r| r.cache_size == 20_297_697));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("requests/s"), "requests/s printed per run: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "no progress bar when stderr is not a terminal");
}

#[test]
fn sim_table_and_plot_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (png, svg) = (dir.path().join("hr.png"), dir.path().join("hr.svg"));
    for plot in [&png, &svg] {
        let out = augur()
            .args(["sim", "--trace"])
            .arg(shared_trace("cloudPhysicsIO.vscsi"))
            .args(["--policy", "lru,sieve", "--sizes", "489,2448,9794", "--ignore-obj-size", "--plot"])
            .arg(plot)
            .output()
            .expect("run augur sim");
        assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(table.lines().next().is_some_and(|h| h.starts_with("policy") && h.contains("byte_hit")), "{table}");
        assert_eq!(table.lines().filter(|l| l.starts_with("lru") || l.starts_with("sieve")).count(), 6);
    }
    let png_bytes = std::fs::read(&png).expect("png written");
    assert!(png_bytes.starts_with(b"\x89PNG\r\n\x1a\n") && png_bytes.len() > 5_000);
    let svg_text = std::fs::read_to_string(&svg).expect("svg written");
    assert!(svg_text.contains("<svg") && svg_text.contains("sieve") && svg_text.contains("hit ratio"));
}

#[test]
fn gen_then_sim_and_errors_are_explained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = dir.path().join("loop.oracleGeneral.bin");
    let out = augur()
        .args(["gen", "--kind", "loop", "--requests", "20000", "--keys", "1000", "--seed", "5", "-o"])
        .arg(&trace)
        .output()
        .expect("run augur gen");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::metadata(&trace).expect("written").len(), 20_000 * 24);
    // A loop of 1,000 keys in a 500-object cache: LRU misses everything, Belady
    // keeps about half, OBL prefetches the next key every time.
    let out = augur()
        .args(["sim", "--trace"])
        .arg(&trace)
        .args(["--policy", "lru,belady", "--prefetch", "none,obl", "--sizes", "500", "--ignore-obj-size", "--json"])
        .output()
        .expect("run augur sim");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let reports = from_json(&String::from_utf8_lossy(&out.stdout)).expect("json");
    let get = |p: &str, f: &str| reports.iter().find(|r| r.policy == p && r.prefetch == f).expect("report");
    assert_eq!(get("lru", "none").hit_ratio, 0.0);
    assert!(get("belady", "none").hit_ratio > 0.45);
    assert!(get("lru", "obl").hit_ratio > 0.95 && get("lru", "obl").accuracy.is_some_and(|a| a > 0.95));

    let missing = augur().args(["sim", "--trace", "/nonexistent/trace.oracleGeneral.bin"]).output().expect("run");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/trace.oracleGeneral.bin"));
    let bad_policy = augur().args(["sim", "--trace"]).arg(&trace).args(["--policy", "lfu"]).output().expect("run");
    assert!(String::from_utf8_lossy(&bad_policy.stderr).contains("unknown policy \"lfu\""));
    let bytes_in_object_mode = augur()
        .args(["sim", "--trace"])
        .arg(&trace)
        .args(["--sizes", "64MiB", "--ignore-obj-size"])
        .output()
        .expect("run");
    assert!(!bytes_in_object_mode.status.success());
}

#[test]
fn skip_bad_counts_malformed_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = dir.path().join("t.csv");
    std::fs::write(&trace, "time,key,size,op\n1,1,10,r\n2,2,x,r\n3,1,10,r\n").expect("write");
    let strict = augur().args(["sim", "--trace"]).arg(&trace).args(["--sizes", "10"]).output().expect("run");
    assert!(!strict.status.success());
    assert!(String::from_utf8_lossy(&strict.stderr).contains("line 3"));
    let lenient = augur()
        .args(["sim", "--trace"])
        .arg(&trace)
        .args(["--sizes", "100", "--skip-bad", "--json"])
        .output()
        .expect("run");
    assert!(lenient.status.success(), "{}", String::from_utf8_lossy(&lenient.stderr));
    assert!(String::from_utf8_lossy(&lenient.stderr).contains("skipped 1 malformed records"));
    let reports = from_json(&String::from_utf8_lossy(&lenient.stdout)).expect("json");
    assert_eq!((reports[0].requests, reports[0].hit_ratio), (2, 0.5));
}
