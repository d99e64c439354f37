//! `augur ab` on generated workloads whose answer is known: Markov prefetching wins
//! on sessions with a tiny p-value, an A/A test (no prefetcher on either side) on
//! uniform popularity finds nothing, a crossover A/A is exactly zero, and the JSON
//! and table carry what the issue asks for.

use std::path::{Path, PathBuf};
use std::process::Command;

use augur_engine::ab::{run_ab, AbPlan, AbReport};
use augur_engine::sim::{MlTuning, PolicyKind, PrefetchKind, SimPlan};
use augur_simulators::gen::{write_trace, GenConfig, GenFormat, GenKind};
use augur_simulators::size::parse_sizes;
use augur_simulators::trace::ReadOptions;
use serde_json::Value;

fn augur() -> Command {
    Command::new(env!("CARGO_BIN_EXE_augur"))
}

/// 60,000 requests over about 4,000 keys, seed 9 (as in `sim_prefetch.rs`).
fn trace(dir: &Path, kind: GenKind) -> PathBuf {
    let path = dir.join(format!("{kind}.oracleGeneral.bin"));
    let cfg = GenConfig { kind, requests: 60_000, keys: 4_000, alpha: 0.9, seed: 9, ..GenConfig::default() };
    write_trace(&cfg, &path, GenFormat::OracleGeneral).expect("gen");
    path
}

fn ab(trace: PathBuf, prefetch: PrefetchKind, crossover: bool) -> AbReport {
    let sim = SimPlan {
        trace,
        format: None,
        read: ReadOptions::default(),
        policies: vec![PolicyKind::Lru],
        prefetchers: vec![prefetch],
        sizes: parse_sizes("10%").expect("sizes"),
        ignore_obj_size: true,
        progress: false,
        prefetch_delay: 0,
        ml: MlTuning::default(),
    };
    let plan = AbPlan { sim, window: None, crossover };
    let mut reports = run_ab(&plan, |_| {}).expect("ab").reports;
    assert_eq!(reports.len(), 1);
    reports.remove(0)
}

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

#[test]
fn markov_beats_control_on_sessions_and_the_json_has_the_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = augur()
        .args(["ab", "--trace"])
        .arg(trace(dir.path(), GenKind::Sessions))
        .args(["--sizes", "10%", "--ignore-obj-size", "--prefetch", "markov", "--json"])
        .output()
        .expect("run augur ab");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(v.is_object(), "one run: one object, not an array: {v}");
    for key in ["control_hit_ratio", "treatment_hit_ratio", "improvement", "ci95", "p_value", "windows"] {
        assert!(!v[key].is_null(), "{key} missing in {v}");
    }
    assert_eq!((v["policy"].as_str(), v["prefetch"].as_str()), (Some("lru"), Some("markov")));
    let size = v["cache_size"].as_u64().expect("cache_size");
    assert!((650..750).contains(&size), "10% of about 7,000 objects: {size}");
    let shares = v["control_cache_size"].as_u64().zip(v["treatment_cache_size"].as_u64());
    assert_eq!(shares.map(|(c, t)| c + t), Some(size), "the groups' shares add up to the size");
    // The default window: a fiftieth of the trace, at least 1,000 requests.
    assert_eq!((v["window"].as_u64(), v["windows"].as_u64()), (Some(1200), Some(50)));
    let (control, treatment) = (f(&v, "control_hit_ratio"), f(&v, "treatment_hit_ratio"));
    assert!(treatment > control + 0.1, "control {control}, treatment {treatment}");
    assert!((f(&v, "improvement") - (treatment / control - 1.0)).abs() < 1e-12);
    assert!(f(&v, "p_value") < 0.01 && f(&v, "paired_p_value") < 0.01, "{v}");
    assert!(f(&v["ci95"], "low") > 0.0 && f(&v["ci95"], "high") > f(&v["ci95"], "low"));
    assert!(f(&v, "effect_size") > 1.0);
    assert_eq!(v["control_windows"].as_array().map(Vec::len), Some(50));
    let requests = v["control_requests"].as_u64().unwrap_or(0) + v["treatment_requests"].as_u64().unwrap_or(0);
    assert_eq!(requests, 60_000);
    assert!(v["prefetches_issued"].as_u64().is_some_and(|n| n > 0));
}

#[test]
fn an_a_a_test_on_uniform_popularity_finds_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = ab(trace(dir.path(), GenKind::Uniform), PrefetchKind::None, false);
    let ci = r.ci95.expect("ci95");
    assert!(ci.low < 0.0 && ci.high > 0.0, "{r:?}");
    assert!(r.p_value.is_some_and(|p| p > 0.2) && r.paired_p_value.is_some_and(|p| p > 0.2), "{r:?}");
    assert_eq!(r.prefetches_issued, 0);
}

#[test]
fn a_crossover_cancels_the_split_bias() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Zipf: the split alone makes the groups differ (the module doc's example)...
    let zipf = trace(dir.path(), GenKind::Zipf);
    let plain = ab(zipf.clone(), PrefetchKind::None, false);
    assert!(plain.improvement.is_some_and(|i| i.abs() > 0.01), "the bias this test is about: {plain:?}");
    // ...and a crossover A/A has identical arms, window by window.
    let aa = ab(zipf, PrefetchKind::None, true);
    assert!(aa.crossover);
    assert_eq!(aa.control_windows, aa.treatment_windows);
    assert_eq!((aa.improvement, aa.paired_p_value), (Some(0.0), None));
    assert_eq!(aa.control_requests, 60_000, "each arm covers every request once");
    // Markov still wins on sessions, significantly.
    let r = ab(trace(dir.path(), GenKind::Sessions), PrefetchKind::Markov, true);
    assert!(r.improvement.is_some_and(|i| i > 0.2) && r.paired_p_value.is_some_and(|p| p < 0.01), "{r:?}");
    assert!(r.ci95.is_some_and(|ci| ci.low > 0.0));
}

#[test]
fn table_arrays_and_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sessions = trace(dir.path(), GenKind::Sessions);
    let out = augur()
        .args(["ab", "--trace"])
        .arg(&sessions)
        .args(["--sizes", "5%,10%", "--ignore-obj-size", "--prefetch", "none,markov", "--window", "3000"])
        .output()
        .expect("run augur ab");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    let header = table.lines().nth(1).unwrap_or_default();
    for col in ["control", "treatment", "improvement", "ci95", "welch_p", "paired_p", "effect", "windows"] {
        assert!(header.contains(col), "{col} missing: {table}");
    }
    assert_eq!(table.lines().filter(|l| l.starts_with("lru")).count(), 4, "{table}");
    assert!(table.contains("20 x 3000"), "{table}");

    let out = augur()
        .args(["ab", "--trace"])
        .arg(&sessions)
        .args(["--sizes", "5%,10%", "--ignore-obj-size", "--json"])
        .output()
        .expect("run augur ab");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(2), "several sizes: an array");

    for (args, want) in [
        (&["--window", "0"][..], "--window 0"),
        (&["--sizes", "1", "--ignore-obj-size"][..], "too small to split"),
        (&["--prefetch", "psychic"][..], "unknown prefetcher"),
    ] {
        let out = augur().args(["ab", "--trace"]).arg(&sessions).args(args).output().expect("run augur ab");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(want), "{args:?}: {stderr}");
    }
}
