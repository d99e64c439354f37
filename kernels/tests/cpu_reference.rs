//! Property tests of the CPU reference against `HashMap` models, on seeded random
//! batches: inserts, updates, erases and finds over small key spaces so the table
//! runs full and evicts. A failure prints the seed; `AUGUR_SEED=n cargo test -p
//! augur-kernels --test cpu_reference` replays exactly that case.
//!
//! Why a seeded loop and not proptest: the state machine needs the insert report
//! (which payload left the table) to keep the model exact, which a seeded loop
//! expresses directly, and the workspace already has `rand`.

use std::collections::HashMap;

use augur_kernels::kv::{cpu_kv_table, KvConfig, KvItem};
use augur_kernels::layout::{bucket_pair, NO_PAYLOAD, SLOTS_PER_BUCKET};
use augur_kernels::slab::MAX_RECORD;
use augur_kernels::{CpuTable, InsertStatus, TableState};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn seeds(default: u64) -> Vec<u64> {
    match std::env::var("AUGUR_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => (0..default).collect(),
    }
}

/// Structural invariants of an index image: every entry in one of its two buckets,
/// no fingerprint twice.
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

/// The fingerprint table against a model kept exact through the insert reports.
#[test]
fn index_matches_a_hashmap_model_through_updates_erases_and_evictions() {
    for seed in seeds(40) {
        let mut rng = StdRng::seed_from_u64(seed);
        let buckets = rng.random_range(2..12u64);
        let key_space = buckets * 16 * rng.random_range(1..4u64); // up to 3x capacity: runs full
        let max_chain = [0, 1, 4, 16][rng.random_range(0..4)];
        let mut table = CpuTable::with_buckets(buckets).unwrap();
        let mut model: HashMap<u64, u64> = HashMap::new();
        let mut owner: HashMap<u64, u64> = HashMap::new(); // payload -> fp
        let mut next_payload = 1u64;
        for round in 0..60 {
            let ctx = format!("seed {seed} round {round} (buckets {buckets}, max_chain {max_chain})");
            let n = rng.random_range(1..40usize);
            let fps: Vec<u64> = (0..n).map(|_| rng.random_range(1..=key_space)).collect();
            match rng.random_range(0..3) {
                0 => {
                    let payloads: Vec<u64> = (0..n).map(|i| next_payload + i as u64).collect();
                    next_payload += n as u64;
                    let report = table.insert(&fps, &payloads, max_chain).unwrap();
                    for i in 0..n {
                        let (fp, p, released) = (fps[i], payloads[i], report.released[i]);
                        match report.status[i] {
                            InsertStatus::Superseded => {
                                assert_eq!(released, p, "{ctx}: superseded item releases its own payload");
                                continue;
                            }
                            InsertStatus::Updated => {
                                assert_eq!(model.get(&fp), Some(&released), "{ctx}: update released the old value");
                                owner.remove(&released);
                            }
                            InsertStatus::Inserted => {
                                assert!(!model.contains_key(&fp), "{ctx}: 'inserted' an existing key");
                                assert_eq!(released, NO_PAYLOAD);
                            }
                            InsertStatus::Evicted if released == p => {
                                // The relocation chain came back through the new entry's
                                // bucket and evicted it: possible on a full table.
                                assert!(!model.contains_key(&fp), "{ctx}: an update cannot evict");
                                continue;
                            }
                            InsertStatus::Evicted => {
                                let victim = owner.remove(&released).unwrap_or_else(|| {
                                    panic!("{ctx}: evicted payload {released} belongs to no live entry")
                                });
                                assert_ne!(victim, fp, "{ctx}: evicted the old copy of the key being inserted");
                                model.remove(&victim);
                            }
                            InsertStatus::Stale => panic!("{ctx}: stale copies only arise from concurrency"),
                        }
                        model.insert(fp, p);
                        owner.insert(p, fp);
                    }
                }
                1 => {
                    let erased = table.erase(&fps, None).unwrap();
                    for (fp, got) in fps.iter().zip(erased) {
                        let want = model.remove(fp).unwrap_or(NO_PAYLOAD);
                        assert_eq!(got, want, "{ctx}: erase of {fp}");
                        owner.remove(&want);
                    }
                }
                _ => {
                    let found = table.find(&fps);
                    for (fp, got) in fps.iter().zip(found) {
                        assert_eq!(got, model.get(fp).copied().unwrap_or(NO_PAYLOAD), "{ctx}: find {fp}");
                    }
                }
            }
            assert_eq!(table.len(), model.len() as u64, "{ctx}: len");
            let state = table.state();
            assert_eq!(state.occupied(), table.len(), "{ctx}: occupied slots");
            check_structure(&state, buckets);
        }
        // Every model key is found with its value, and nothing else is.
        for (fp, p) in &model {
            assert_eq!(table.find_one(*fp), *p, "seed {seed}: final find {fp}");
        }
    }
}

/// With relocation chains, a table fills to 95% without evicting anything.
#[test]
fn random_keys_fill_95_percent_without_eviction() {
    for seed in seeds(8) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut table = CpuTable::with_buckets(1024).unwrap();
        let n = (table.capacity() as f64 * 0.95) as usize;
        let keys: Vec<u64> = (0..n).map(|_| rng.random_range(1..u64::MAX)).collect();
        for chunk in keys.chunks(4096) {
            let report = table.insert(chunk, chunk, augur_kernels::layout::DEFAULT_MAX_CHAIN).unwrap();
            assert_eq!(report.evictions(), 0, "seed {seed}: evicted below 95% load");
        }
        assert_eq!(table.len() as usize, {
            let mut k = keys.clone();
            k.sort_unstable();
            k.dedup();
            k.len()
        });
        assert!(keys.iter().all(|&k| table.find_one(k) == k), "seed {seed}");
    }
}

/// The same operations give the same memory image: the reference is deterministic
/// (the GPU differential tests rely on it).
#[test]
fn the_reference_is_deterministic() {
    let run = || {
        let mut rng = StdRng::seed_from_u64(7);
        let mut t = CpuTable::with_buckets(8).unwrap();
        for _ in 0..50 {
            let fps: Vec<u64> = (0..20).map(|_| rng.random_range(1..400)).collect();
            t.insert(&fps, &fps, 2).unwrap();
            t.find(&fps[..5]);
            t.erase(&fps[15..], None).unwrap();
        }
        t.state()
    };
    assert_eq!(run(), run());
}

fn key(i: u64) -> Vec<u8> {
    format!("key:{i}").into_bytes()
}

/// Full keys and values: never a wrong or stale value, even with a fingerprint so
/// weak that most keys collide, and misses bounded by what was evicted.
fn kv_model_check(seed: u64, weak_fingerprint: bool) {
    let mut rng = StdRng::seed_from_u64(seed);
    let index_slots = rng.random_range(32..256u64);
    let arena = (1u64 << 20) * rng.random_range(1..4u64);
    let mut table = cpu_kv_table(KvConfig { max_chain: rng.random_range(0..8), ..KvConfig::new(index_slots, arena) })
        .expect("table config");
    if weak_fingerprint {
        // 8 distinct fingerprints for every key: collisions on almost every insert.
        table = table.with_fingerprint(|k| (k.len() as u64 % 8) + 1);
    }
    let key_space = index_slots * 2;
    let mut model: HashMap<Vec<u8>, (Vec<u8>, u32)> = HashMap::new();
    let mut lost = 0u64; // entries the table may have dropped (evictions, collisions, refusals)
    for round in 0..80 {
        let ctx = format!("seed {seed} round {round} weak={weak_fingerprint}");
        let n = rng.random_range(1..30usize);
        let keys: Vec<Vec<u8>> = (0..n).map(|_| key(rng.random_range(0..key_space))).collect();
        match rng.random_range(0..3) {
            0 => {
                let values: Vec<Vec<u8>> = (0..n)
                    .map(|_| {
                        let len = if rng.random_bool(0.05) { MAX_RECORD } else { rng.random_range(0..3000) };
                        (0..len).map(|_| rng.random()).collect()
                    })
                    .collect();
                let flags: Vec<u32> = (0..n).map(|_| rng.random_range(0..4)).collect();
                let items: Vec<KvItem<'_>> =
                    (0..n).map(|i| KvItem { key: &keys[i], value: &values[i], flags: flags[i] }).collect();
                let report = table.insert(&items).expect("insert");
                for (i, why) in &report.refused {
                    assert!(
                        *why != augur_kernels::kv::Refusal::TooLarge
                            || values[*i].len() + keys[*i].len() + 16 > MAX_RECORD,
                        "{ctx}: refused a record that fits"
                    );
                }
                let refused: std::collections::HashSet<usize> = report.refused.iter().map(|(i, _)| *i).collect();
                for i in 0..n {
                    if refused.contains(&i) {
                        // A refused insert must not leave the old value readable.
                        model.remove(&keys[i]);
                    } else {
                        model.insert(keys[i].clone(), (values[i].clone(), flags[i]));
                    }
                }
                lost += report.evicted + report.slab_evicted;
                if weak_fingerprint {
                    // A colliding insert replaces the other key's entry.
                    lost += n as u64;
                }
            }
            1 => {
                let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
                table.erase(&refs).expect("erase");
                for k in &keys {
                    model.remove(k);
                }
            }
            _ => {}
        }
        // Every key ever used: the table answers the model's value or nothing.
        let all: Vec<Vec<u8>> = (0..key_space).map(key).collect();
        let refs: Vec<&[u8]> = all.iter().map(Vec::as_slice).collect();
        let found = table.find(&refs).expect("find");
        let mut missing = 0u64;
        for (k, got) in all.iter().zip(found) {
            match (model.get(k), got) {
                (Some((v, f)), Some(got)) => {
                    assert_eq!(
                        (&got.value, got.flags),
                        (v, *f),
                        "{ctx}: wrong value for {:?}",
                        String::from_utf8_lossy(k)
                    );
                }
                (None, Some(got)) => panic!(
                    "{ctx}: {:?} found ({} bytes) but erased or never stored",
                    String::from_utf8_lossy(k),
                    got.value.len()
                ),
                (Some(_), None) => missing += 1,
                (None, None) => {}
            }
        }
        assert!(missing <= lost, "{ctx}: {missing} keys missing but only {lost} could have been dropped");
        let state = table.index_state().expect("index state");
        assert_eq!(state.occupied(), table.len(), "{ctx}: len");
        assert!(table.used_bytes() <= table.arena_bytes());
    }
}

#[test]
fn kv_table_never_returns_a_wrong_value() {
    for seed in seeds(20) {
        kv_model_check(seed, false);
    }
}

#[test]
fn kv_table_survives_fingerprint_collisions() {
    for seed in seeds(20) {
        kv_model_check(1000 + seed, true);
    }
}

#[test]
fn kv_table_without_pressure_is_exact() {
    let mut table = cpu_kv_table(KvConfig::new(4096, 8 << 20)).unwrap();
    let keys: Vec<Vec<u8>> = (0..1000).map(key).collect();
    let values: Vec<Vec<u8>> = (0..1000).map(|i| vec![i as u8; i % 700]).collect();
    let items: Vec<KvItem<'_>> = keys.iter().zip(&values).map(|(k, v)| KvItem { key: k, value: v, flags: 1 }).collect();
    let report = table.insert(&items).unwrap();
    assert_eq!((report.evicted, report.slab_evicted, report.refused.len()), (0, 0, 0));
    assert_eq!(table.len(), 1000);
    let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    let found = table.find(&refs).unwrap();
    for (i, f) in found.iter().enumerate() {
        let f = f.as_ref().unwrap_or_else(|| panic!("key {i} missing"));
        assert_eq!((f.value.as_slice(), f.flags), (values[i].as_slice(), 1));
    }
    assert_eq!(table.erase(&refs[..10]).unwrap(), 10);
    assert_eq!(table.erase(&refs[..10]).unwrap(), 0);
    assert!(table.find(&refs[..10]).unwrap().iter().all(Option::is_none));
    assert_eq!(table.len(), 990);
}

#[test]
fn an_oversized_update_is_refused_and_leaves_no_stale_copy() {
    let mut table = cpu_kv_table(KvConfig::new(64, 4 << 20)).unwrap();
    let big = vec![7u8; MAX_RECORD];
    table.insert(&[KvItem { key: b"k", value: b"small", flags: 0 }]).unwrap();
    let report = table.insert(&[KvItem { key: b"k", value: &big, flags: 0 }]).unwrap();
    assert_eq!(report.refused, vec![(0, augur_kernels::kv::Refusal::TooLarge)]);
    // The old value must not outlive a newer write the table could not take.
    assert_eq!(table.find(&[b"k"]).unwrap(), vec![None]);
    assert_eq!(table.len(), 0);
    assert_eq!(table.used_bytes(), 0);
}
