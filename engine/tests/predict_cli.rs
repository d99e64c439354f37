//! `augur predict` as a user runs it: every model and baseline validated on the
//! same later data, the learned models ahead of the baselines on a workload with
//! structure, importance for every feature, and latency figures.

use std::process::Command;

use augur_simulators::gen::{write_trace, GenConfig, GenFormat, GenKind};

#[test]
fn predict_compares_models_and_baselines_on_held_out_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = dir.path().join("sessions.oracleGeneral.bin");
    let cfg = GenConfig { kind: GenKind::Sessions, requests: 30_000, keys: 3_000, seed: 4, ..GenConfig::default() };
    write_trace(&cfg, &trace, GenFormat::OracleGeneral).expect("gen");
    let out = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["predict", "--trace"])
        .arg(&trace)
        .args(["--requests", "30000", "--samples", "40000", "--models", "logistic,mlp,gbdt", "--json"])
        .output()
        .expect("run augur predict");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let rows = report["rows"].as_array().expect("rows");
    let row = |name: &str| rows.iter().find(|r| r["model"] == name).unwrap_or_else(|| panic!("row {name}"));
    let auc = |name: &str| row(name)["validation"]["auc"].as_f64().expect("auc");
    let log_loss = |name: &str| row(name)["validation"]["log_loss"].as_f64().expect("log loss");
    let best = report["best"].as_str().expect("best");
    assert!(["logistic", "mlp", "gbdt"].contains(&best));
    assert!(auc(best) > 0.85, "best model AUC {}", auc(best));
    for baseline in ["baseline:markov", "baseline:obl", "baseline:cooccur"] {
        assert!(log_loss(best) < log_loss(baseline), "{best} should beat {baseline}");
    }
    assert!(row(best)["infer_256_p50_us"].as_f64().is_some_and(|v| v > 0.0));
    assert_eq!(report["importance"].as_array().expect("importance").len(), 16, "one entry per feature");
    // Calibrated: a model's mean absolute calibration error stays small.
    assert!(row(best)["validation"]["calibration_error"].as_f64().expect("ece") < 0.1);

    let bad = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["predict", "--trace"])
        .arg(&trace)
        .args(["--models", "forest"])
        .output()
        .expect("run augur predict");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown model \"forest\""));
}
