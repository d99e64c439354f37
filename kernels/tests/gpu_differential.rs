//! The GPU table against the CPU reference on random batches. Runs when a CUDA
//! device is present; otherwise each test prints `SKIP: no CUDA driver (…)` (or
//! `no CUDA device`) and passes, so CI without a GPU stays green and the skip is
//! visible in `cargo test -- --nocapture` and in the test binary's output on a GPU
//! machine.
//!
//! Two levels of agreement (see `src/cpu.rs`):
//! - one item per launch: the GPU executes exactly the reference's steps, so the
//!   whole memory image (slots, payloads, reference bits, CLOCK hands) must match;
//! - large batches: items run concurrently, so placement may differ, but with no
//!   eviction the contents, every find and every erase must match, and on a full
//!   table the accounting and the "never a wrong value" rules must hold.

use std::collections::HashMap;
use std::sync::Arc;

use augur_kernels::gpu::{driver_present, gpu_kv_table, GpuDevice};
use augur_kernels::kv::{cpu_kv_table, KvConfig, KvItem};
use augur_kernels::layout::{bucket_pair, DEFAULT_MAX_CHAIN, NO_PAYLOAD, SLOTS_PER_BUCKET};
use augur_kernels::{CpuTable, GpuTable, InsertStatus, KernelError, TableState};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Writes to the process's stderr directly: libtest captures `println!` and
/// `eprintln!` of passing tests, and a skip must stay visible in `cargo test`.
fn skip(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn device(test: &str) -> Option<Arc<GpuDevice>> {
    match GpuDevice::open(0) {
        Ok(dev) => {
            let info = dev.info();
            println!(
                "{test}: {} (sm_{}{}), kernels as {:?}",
                info.name, info.compute_capability.0, info.compute_capability.1, info.image
            );
            Some(dev)
        }
        Err(KernelError::NoGpu { reason }) => {
            let what = if driver_present() { "no CUDA device" } else { "no CUDA driver" };
            skip(&format!("SKIP: {what} ({reason}): {test}"));
            None
        }
        Err(e) => panic!("a CUDA driver is present but the GPU table cannot start: {e}"),
    }
}

fn check_structure(state: &TableState, buckets: u64) {
    let mut seen = std::collections::HashSet::new();
    for (i, &fp) in state.fps.iter().enumerate() {
        if fp == 0 {
            continue;
        }
        let bucket = (i / SLOTS_PER_BUCKET) as u64;
        let (b1, b2) = bucket_pair(fp, buckets);
        assert!(bucket == b1 || bucket == b2, "fp {fp:#x} in bucket {bucket}, not {b1} or {b2}");
        assert!(seen.insert(fp), "fp {fp:#x} stored twice");
    }
}

#[test]
fn opening_without_a_gpu_is_an_error_not_a_panic() {
    let result = GpuDevice::open(0);
    if driver_present() {
        match result {
            Ok(dev) => {
                assert!(dev.info().compute_capability.0 >= 7, "the kernels need sm_70+ (independent thread scheduling)")
            }
            Err(e) => println!("driver present, no usable device: {e}"),
        }
    } else {
        match result {
            Err(KernelError::NoGpu { reason }) => {
                assert!(reason.contains("libcuda"), "{reason}");
                skip(&format!("SKIP: no CUDA driver ({reason}): GPU differential tests"));
            }
            other => panic!("expected NoGpu without a driver, got {other:?}"),
        }
    }
}

#[test]
fn one_item_per_launch_leaves_the_same_memory_image() {
    let Some(dev) = device("one_item_per_launch_leaves_the_same_memory_image") else { return };
    let mut rng = StdRng::seed_from_u64(11);
    let buckets = 4;
    let mut cpu = CpuTable::with_buckets(buckets).unwrap();
    let mut gpu = GpuTable::with_capacity(dev, buckets * 16).unwrap();
    assert_eq!(gpu.buckets(), buckets);
    let mut payload = 1u64;
    for op in 0..3000 {
        let fp = rng.random_range(1..200u64);
        match rng.random_range(0..3) {
            0 => {
                payload += 1;
                let chain = rng.random_range(0..4);
                assert_eq!(
                    gpu.insert(&[fp], &[payload], chain).unwrap(),
                    cpu.insert(&[fp], &[payload], chain).unwrap(),
                    "op {op}: insert {fp}"
                );
            }
            1 => assert_eq!(gpu.find(&[fp]).unwrap(), cpu.find(&[fp]), "op {op}: find {fp}"),
            _ => assert_eq!(gpu.erase(&[fp], None).unwrap(), cpu.erase(&[fp], None).unwrap(), "op {op}: erase {fp}"),
        }
        if op % 50 == 0 {
            assert_eq!(gpu.state().unwrap(), cpu.state(), "op {op}: memory images differ");
        }
    }
    assert_eq!(gpu.state().unwrap(), cpu.state());
}

#[test]
fn random_batches_without_eviction_agree_exactly() {
    let Some(dev) = device("random_batches_without_eviction_agree_exactly") else { return };
    for seed in 0..4u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let capacity = 1u64 << 16;
        let mut cpu = CpuTable::with_capacity(capacity).unwrap();
        let mut gpu = GpuTable::with_capacity(Arc::clone(&dev), capacity).unwrap();
        let key_space = capacity * 9 / 10; // at most 90% full: no eviction expected
        for round in 0..30 {
            let ctx = format!("seed {seed} round {round}");
            let n = rng.random_range(1..20_000usize);
            let fps: Vec<u64> = (0..n).map(|_| rng.random_range(1..=key_space)).collect();
            match rng.random_range(0..3) {
                0 => {
                    let payloads: Vec<u64> = (0..n).map(|_| rng.random_range(0..u64::MAX)).collect();
                    let g = gpu.insert(&fps, &payloads, DEFAULT_MAX_CHAIN).unwrap();
                    let c = cpu.insert(&fps, &payloads, DEFAULT_MAX_CHAIN).unwrap();
                    assert_eq!((g.evictions(), c.evictions()), (0, 0), "{ctx}: evicted below 90% load");
                    // Without eviction the same payloads leave the table and the count
                    // moves the same. (Which item reports a release can differ: a
                    // relocated entry upserted by the same batch is `Stale` for the
                    // relocating item on the GPU, `Updated` for the upserting one here.)
                    let released = |r: &augur_kernels::InsertReport| {
                        let mut v: Vec<u64> = r.released.iter().copied().filter(|&p| p != NO_PAYLOAD).collect();
                        v.sort_unstable();
                        v
                    };
                    assert_eq!(released(&g), released(&c), "{ctx}: released payloads");
                    assert_eq!(g.entries_delta(), c.entries_delta(), "{ctx}: entry count change");
                }
                1 => assert_eq!(gpu.erase(&fps, None).unwrap(), cpu.erase(&fps, None).unwrap(), "{ctx}: erase"),
                _ => assert_eq!(gpu.find(&fps).unwrap(), cpu.find(&fps), "{ctx}: find"),
            }
            let (gs, cs) = (gpu.state().unwrap(), cpu.state());
            assert_eq!(gs.entries(), cs.entries(), "{ctx}: contents");
            check_structure(&gs, gpu.buckets());
        }
    }
}

#[test]
fn a_full_table_keeps_working_on_the_gpu() {
    let Some(dev) = device("a_full_table_keeps_working_on_the_gpu") else { return };
    let mut rng = StdRng::seed_from_u64(5);
    let capacity = 1u64 << 14;
    let mut gpu = GpuTable::with_capacity(dev, capacity).unwrap();
    let mut latest: HashMap<u64, u64> = HashMap::new(); // fp -> newest payload written
    let mut expected_len: i64 = 0;
    let mut next = 1u64;
    for round in 0..40 {
        let n = rng.random_range(1000..30_000usize);
        let fps: Vec<u64> = (0..n).map(|_| rng.random_range(1..=capacity * 3)).collect();
        if rng.random_bool(0.8) {
            let payloads: Vec<u64> = (0..n as u64).map(|i| next + i).collect();
            next += n as u64;
            let report = gpu.insert(&fps, &payloads, rng.random_range(0..=DEFAULT_MAX_CHAIN)).unwrap();
            expected_len += report.entries_delta();
            for (i, &fp) in fps.iter().enumerate() {
                latest.insert(fp, payloads[i]);
                if report.status[i] == InsertStatus::Updated {
                    assert_ne!(report.released[i], NO_PAYLOAD, "round {round}: update released nothing");
                }
            }
        } else {
            let erased = gpu.erase(&fps, None).unwrap();
            expected_len -= erased.iter().filter(|&&p| p != NO_PAYLOAD).count() as i64;
            for fp in &fps {
                latest.remove(fp);
            }
        }
        let state = gpu.state().unwrap();
        check_structure(&state, gpu.buckets());
        assert_eq!(state.occupied() as i64, expected_len, "round {round}: entry count");
        // Whatever the table holds is the newest value written for that key.
        for (fp, p) in state.entries() {
            assert_eq!(latest.get(&fp), Some(&p), "round {round}: fp {fp} holds an old or erased payload");
        }
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("user:{i}:profile").into_bytes()
}

#[test]
fn gpu_kv_table_matches_the_cpu_one_and_never_returns_a_wrong_value() {
    let Some(dev) = device("gpu_kv_table_matches_the_cpu_one_and_never_returns_a_wrong_value") else { return };
    for weak in [false, true] {
        let config = KvConfig::new(4096, 16 << 20);
        let mut gpu = gpu_kv_table(Arc::clone(&dev), config).unwrap();
        let mut cpu = cpu_kv_table(config).unwrap();
        if weak {
            gpu = gpu.with_fingerprint(|k| k.len() as u64 % 5 + 1);
            cpu = cpu.with_fingerprint(|k| k.len() as u64 % 5 + 1);
        }
        let mut rng = StdRng::seed_from_u64(3);
        let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        for round in 0..40 {
            let n = rng.random_range(1..500usize);
            let keys: Vec<Vec<u8>> = (0..n).map(|_| key(rng.random_range(0..3000))).collect();
            if rng.random_bool(0.7) {
                let values: Vec<Vec<u8>> =
                    (0..n).map(|_| (0..rng.random_range(0..2000)).map(|_| rng.random()).collect()).collect();
                let items: Vec<KvItem<'_>> =
                    (0..n).map(|i| KvItem { key: &keys[i], value: &values[i], flags: i as u32 % 3 }).collect();
                let g = gpu.insert(&items).unwrap();
                let c = cpu.insert(&items).unwrap();
                if !weak {
                    assert_eq!(g, c, "round {round}: insert reports (no pressure, exact fingerprints)");
                }
                for i in 0..n {
                    model.insert(keys[i].clone(), values[i].clone());
                }
            } else {
                let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
                let (g, c) = (gpu.erase(&refs).unwrap(), cpu.erase(&refs).unwrap());
                if !weak {
                    assert_eq!(g, c, "round {round}: erase count");
                }
                for k in &keys {
                    model.remove(k);
                }
            }
            let all: Vec<Vec<u8>> = (0..3000).map(key).collect();
            let refs: Vec<&[u8]> = all.iter().map(Vec::as_slice).collect();
            let g = gpu.find(&refs).unwrap();
            let c = cpu.find(&refs).unwrap();
            for (i, k) in all.iter().enumerate() {
                if let Some(found) = &g[i] {
                    assert_eq!(
                        Some(&found.value),
                        model.get(k),
                        "round {round} weak={weak}: GPU wrong value for key {i}"
                    );
                }
                if !weak {
                    assert_eq!(g[i], c[i], "round {round}: key {i}");
                }
            }
            assert_eq!(gpu.index_state().unwrap().occupied(), gpu.len(), "round {round}: GPU len");
        }
    }
}
