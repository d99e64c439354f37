//! Generator round trips: gen → write → read back gives the generated requests;
//! the same seed gives the same bytes; next-access positions are right.

mod common;

use std::collections::HashMap;

use augur_simulators::gen::{write_trace, GenConfig, GenFormat, GenKind, ValueSize};
use augur_simulators::trace::{ReadOptions, TraceFormat};
use augur_simulators::{Op, NEXT_ACCESS_NEVER};
use common::read_all;

fn config(kind: GenKind, seed: u64) -> GenConfig {
    GenConfig {
        kind,
        requests: 20_000,
        seed,
        keys: 2_000,
        alpha: 0.9,
        write_ratio: 0.25,
        value_size: ValueSize::LogNormal { median: 800.0, sigma: 1.0 },
        rate: 1_000,
    }
}

#[test]
fn every_kind_round_trips_through_oracle_general_and_csv() {
    let dir = tempfile::tempdir().expect("tempdir");
    for kind in GenKind::ALL {
        let cfg = config(kind, 42);
        let want: Vec<_> = cfg.requests().collect();
        assert_eq!(want.len(), 20_000);
        let oracle = dir.path().join(format!("{kind}.oracleGeneral.bin"));
        assert_eq!(write_trace(&cfg, &oracle, GenFormat::OracleGeneral).expect("gen oracle"), 20_000);
        let got = read_all(&oracle, TraceFormat::OracleGeneral, &ReadOptions::default()).expect("read oracle");
        assert_eq!(got.len(), want.len(), "{kind}");
        let mut last_seen: HashMap<u64, usize> = HashMap::new();
        let mut expected_next = vec![NEXT_ACCESS_NEVER; want.len()];
        for (i, r) in want.iter().enumerate() {
            if let Some(prev) = last_seen.insert(r.key, i) {
                expected_next[prev] = i as u64 + 1;
            }
        }
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!((g.key, g.size), (w.key, w.size), "{kind} request {i}");
            assert_eq!(g.time_us, w.time_us / 1_000_000 * 1_000_000, "{kind}: oracleGeneral keeps seconds");
            assert_eq!(g.next_access, expected_next[i], "{kind} next access of {i}");
        }
        let csv = dir.path().join(format!("{kind}.csv"));
        write_trace(&cfg, &csv, GenFormat::Csv).expect("gen csv");
        let got = read_all(&csv, TraceFormat::Csv, &ReadOptions::default()).expect("read csv");
        assert_eq!(got, want, "{kind}: CSV keeps time, key, size and op exactly");
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    for format in [GenFormat::OracleGeneral, GenFormat::Csv] {
        let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
        write_trace(&config(GenKind::Mix, 7), &a, format).expect("a");
        write_trace(&config(GenKind::Mix, 7), &b, format).expect("b");
        write_trace(&config(GenKind::Mix, 8), &c, format).expect("c");
        let (a, b, c) = (std::fs::read(a).expect("a"), std::fs::read(b).expect("b"), std::fs::read(c).expect("c"));
        assert_eq!(a, b, "{format:?}: same seed, same bytes");
        assert_ne!(a, c, "{format:?}: another seed, another trace");
    }
}

#[test]
fn workloads_have_the_shapes_they_claim() {
    let keys = |kind: GenKind| -> Vec<u64> { config(kind, 3).requests().map(|r| r.key).collect() };
    // Scan: strictly consecutive, never repeating.
    let scan = keys(GenKind::Scan);
    assert!(scan.windows(2).all(|w| w[1] == w[0] + 1));
    // Loop: period = --keys.
    let lp = keys(GenKind::Loop);
    assert!(lp.iter().enumerate().skip(2_000).all(|(i, k)| *k == lp[i - 2_000]));
    // Zipf(0.9) over 2,000 keys: the hottest key is far above uniform's 1/2000.
    let zipf = keys(GenKind::Zipf);
    let mut counts: HashMap<u64, u32> = HashMap::new();
    for k in &zipf {
        *counts.entry(*k).or_default() += 1;
    }
    let top = counts.values().max().copied().unwrap_or(0);
    assert!(top > 20_000 / 2_000 * 20, "hottest key seen {top} times");
    // Sessions: most consecutive pairs repeat (a fixed order), unlike uniform.
    let repeated_pairs = |ks: &[u64]| {
        let mut seen: HashMap<(u64, u64), u32> = HashMap::new();
        for w in ks.windows(2) {
            *seen.entry((w[0], w[1])).or_default() += 1;
        }
        seen.values().filter(|&&c| c > 1).map(|&c| c as usize).sum::<usize>() as f64 / ks.len() as f64
    };
    assert!(repeated_pairs(&keys(GenKind::Sessions)) > 0.5);
    assert!(repeated_pairs(&keys(GenKind::Uniform)) < 0.05);
    // Write ratio and per-key sizes.
    let reqs: Vec<_> = config(GenKind::Uniform, 3).requests().collect();
    let writes = reqs.iter().filter(|r| r.op == Op::Write).count() as f64 / reqs.len() as f64;
    assert!((writes - 0.25).abs() < 0.02, "write ratio {writes}");
    let mut size_of: HashMap<u64, u32> = HashMap::new();
    assert!(reqs.iter().all(|r| *size_of.entry(r.key).or_insert(r.size) == r.size), "one size per key");
}
