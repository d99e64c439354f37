//! Cross-check against libCacheSim: on the CloudPhysics sample in object mode, our
//! FIFO, LRU, CLOCK, SIEVE and Belady miss ratios must match the `cachesim` table in
//! shared/traces/README.md within 0.005 at every size. This is what lets us trust
//! every other number the simulator produces.
//!
//! The trace is found at `$AUGUR_TRACES_DIR`, else `<workspace>/../shared/traces`;
//! if it is missing the test fails and says where it looked.

use augur_simulators::testing::shared_trace;
use std::path::PathBuf;

use augur_engine::sim::{run_plan, MlTuning, PolicyKind, PrefetchKind, SimPlan};
use augur_simulators::size::parse_sizes;
use augur_simulators::trace::{ReadOptions, TraceFormat};

/// libCacheSim `cachesim --ignore-obj-size 1`, develop@aa0fc40 (README table).
const SIZES: &str = "0.1%,1%,5%,10%,20%,40%";
const CAPACITIES: [u64; 6] = [48, 489, 2448, 4897, 9794, 19589];
const LIBCACHESIM: [(PolicyKind, [f64; 6]); 5] = [
    (PolicyKind::Fifo, [0.9121, 0.8476, 0.8266, 0.8054, 0.7128, 0.6343]),
    (PolicyKind::Lru, [0.9030, 0.8380, 0.8246, 0.8049, 0.7249, 0.6328]),
    (PolicyKind::Clock, [0.9010, 0.8372, 0.8240, 0.8044, 0.7483, 0.6359]),
    (PolicyKind::Sieve, [0.8809, 0.8292, 0.8172, 0.7907, 0.7162, 0.5720]),
    (PolicyKind::Belady, [0.8476, 0.7927, 0.7032, 0.6290, 0.5449, 0.4589]),
];

fn plan(trace: PathBuf, format: TraceFormat, policies: Vec<PolicyKind>) -> SimPlan {
    SimPlan {
        trace,
        format: Some(format),
        read: ReadOptions::default(),
        policies,
        prefetchers: vec![PrefetchKind::None],
        sizes: parse_sizes(SIZES).expect("sizes"),
        ignore_obj_size: true,
        progress: false,
        prefetch_delay: 0,
        ml: MlTuning::default(),
    }
}

fn check(format: TraceFormat, file: &str, policies: &[PolicyKind]) {
    let p = plan(shared_trace(file), format, policies.to_vec());
    let out = run_plan(&p, |_| {}).expect("simulation");
    let stats = out.stats.expect("fractional sizes need the pre-pass");
    assert_eq!((stats.requests, stats.objects), (113_872, 48_974));
    for (policy, expected) in LIBCACHESIM.iter().filter(|(p, _)| policies.contains(p)) {
        for (i, (&cap, &want)) in CAPACITIES.iter().zip(expected).enumerate() {
            let r = out
                .reports
                .iter()
                .find(|r| r.policy == policy.name() && r.cache_size == cap)
                .unwrap_or_else(|| panic!("no report for {} at {cap}", policy.name()));
            assert_eq!(r.requests, 113_872);
            assert!(
                (r.miss_ratio - want).abs() <= 0.005,
                "{} at {} ({cap} objects): miss ratio {:.4}, libCacheSim {want:.4}",
                policy.name(),
                SIZES.split(',').nth(i).unwrap_or("?"),
                r.miss_ratio
            );
        }
    }
}

#[test]
fn fifo_lru_clock_sieve_belady_match_libcachesim_on_oracle_general() {
    let all: Vec<PolicyKind> = LIBCACHESIM.iter().map(|(p, _)| *p).collect();
    check(TraceFormat::OracleGeneral, "cloudPhysicsIO.oracleGeneral.bin", &all);
}

#[test]
fn belady_from_the_next_access_pre_pass_matches_too() {
    // vSCSI has no next-access field: Belady runs off the pre-pass's temp file.
    check(TraceFormat::Vscsi, "cloudPhysicsIO.vscsi", &[PolicyKind::Belady, PolicyKind::Lru]);
}
