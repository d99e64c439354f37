//! `augur replay` drives a running `augur serve` with the shared CloudPhysics trace
//! and reports throughput, latency and the server's hit ratio.

mod common;

use augur_simulators::testing::shared_trace;
use std::process::Command;

use common::process::Augur;

#[test]
fn replay_reports_throughput_latency_and_hit_ratio() {
    let dir = tempfile::tempdir().expect("tempdir");
    let augur = Augur::start(dir.path(), &["--cache-size", "16MiB"]);
    let out = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["replay", "--trace"])
        .arg(shared_trace("cloudPhysicsIO.oracleGeneral.bin"))
        .args(["--target", &format!("127.0.0.1:{}", augur.port), "--concurrency", "4", "--limit", "5000"])
        .args(["--max-value", "4KiB"])
        .output()
        .expect("run augur replay");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("requests:    5000 "), "{stdout}");
    assert!(stdout.contains("0 errors"), "{stdout}");
    assert!(stdout.contains("requests/s") && stdout.contains("p999"), "{stdout}");
    let ratio: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("server hit ratio: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no hit ratio in {stdout}"));
    // The first 5,000 requests of this trace revisit objects: some hits, not all.
    assert!(ratio > 0.05 && ratio < 0.95, "hit ratio {ratio}");
}

#[test]
fn replay_against_nothing_fails_clearly() {
    let out = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["replay", "--trace"])
        .arg(shared_trace("cloudPhysicsIO.oracleGeneral.bin"))
        .args(["--target", "127.0.0.1:1"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot connect"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
