//! `augur-bench tier-lookup`: what one lookup in the CPU tier's map costs, by key
//! count, against a plain `HashMap`. The GET-hit profile (bench/scripts/profile-get.sh)
//! puts moka's `get` at the top; this isolates it from the server.
//!
//! Each key count builds, over the same keys (`key:000000000000`, … as
//! redis-benchmark writes them) and 64-byte values:
//! - a `moka::sync::Cache<Bytes, Bytes>` the way `MokaTier` builds it (a byte
//!   weigher, TinyLFU admission, LRU eviction, capacity far above the data, SipHash);
//! - the same with FxHash, to see what the hash function costs;
//! - moka keyed by a keyed 64-bit hash of the key with the key stored beside the
//!   value and compared on a hit, to see what moka's key comparison through
//!   pointers costs (it made things slower: the idea was dropped);
//! - a `quick_cache::sync::Cache<Bytes, Bytes>` (`QuickTier`'s cache);
//! - a `std::collections::HashMap<Bytes, Bytes>` (SipHash), the floor;
//!
//! then times uniformly random lookups of present keys on one thread: each cache's
//! `get` (moka's also records the read for its policy), moka's `contains_key` (its
//! lookup alone) and the HashMap's lookup, methods rotating each round, for
//! `--rounds` rounds; medians.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use rustc_hash::FxBuildHasher;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use crate::peers::median;

/// Where a method's timings go, and the method (true when the key was found).
type Method<'a> = (&'a mut Vec<f64>, &'a dyn Fn(usize) -> bool);

/// Options of `augur-bench tier-lookup`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Key counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000,1000000")]
    keys: Vec<u64>,
    /// Lookups per method per round.
    #[arg(long, default_value_t = 2_000_000)]
    lookups: u64,
    /// Rounds (each method once per round).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// Bytes of key and value, as the tiers charge them.
#[derive(Debug, Clone, Copy)]
struct ByteWeighter;

impl quick_cache::Weighter<Bytes, Bytes> for ByteWeighter {
    fn weight(&self, key: &Bytes, value: &Bytes) -> u64 {
        (key.len() + value.len()) as u64
    }
}

/// Nanoseconds per call of `f` over `n` random indexes below `keys`.
fn time(n: u64, keys: u64, seed: u64, mut f: impl FnMut(usize) -> bool) -> f64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut found = 0u64;
    let started = Instant::now();
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        found += u64::from(f((x % keys) as usize));
    }
    let ns = started.elapsed().as_nanos() as f64 / n as f64;
    assert_eq!(found, n, "every key is present");
    ns
}

/// Runs the comparison and prints a Markdown table.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.rounds == 0 || args.lookups == 0 || args.keys.contains(&0) {
        anyhow::bail!("--rounds, --lookups and every --keys value must be positive");
    }
    println!(
        "tier-lookup: {} random lookups of present keys per method per round, {} rounds, one thread, 64 B values\n",
        args.lookups, args.rounds
    );
    println!(
        "| keys | moka get ns (SipHash, Bytes key) | moka get ns (FxHash, Bytes key) | moka get ns (u64 fingerprint key, key verified) | moka contains_key ns | quick_cache get ns | HashMap get ns | moka get / HashMap get | fingerprint / SipHash | quick_cache / moka |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &args.keys {
        let keys: Vec<Bytes> = (0..n).map(|i| Bytes::from(format!("key:{i:012}"))).collect();
        let value = Bytes::from(vec![b'x'; 64]);
        let weigh = |k: &Bytes, v: &Bytes| (k.len() + v.len()).min(u32::MAX as usize) as u32;
        let cache: moka::sync::Cache<Bytes, Bytes> =
            moka::sync::Cache::builder().max_capacity(1 << 40).weigher(weigh).build();
        let fx: moka::sync::Cache<Bytes, Bytes, FxBuildHasher> =
            moka::sync::Cache::builder().max_capacity(1 << 40).weigher(weigh).build_with_hasher(FxBuildHasher);
        // Keyed by the key's 64-bit hash, the full key stored beside the value and
        // compared on a hit: moka's probe compares integers, not key bytes behind two
        // pointers.
        let by_fp: moka::sync::Cache<u64, (Bytes, Bytes), FxBuildHasher> = moka::sync::Cache::builder()
            .max_capacity(1 << 40)
            .weigher(|_: &u64, (k, v): &(Bytes, Bytes)| (8 + k.len() + v.len()).min(u32::MAX as usize) as u32)
            .build_with_hasher(FxBuildHasher);
        let quick: quick_cache::sync::Cache<Bytes, Bytes, ByteWeighter> =
            quick_cache::sync::Cache::with_weighter(n as usize, 1 << 40, ByteWeighter);
        // The fingerprint is keyed SipHash, as moka's own default hasher: crafted keys
        // must not be able to collide on purpose.
        let fp_state = RandomState::new();
        for k in &keys {
            cache.insert(k.clone(), value.clone());
            fx.insert(k.clone(), value.clone());
            by_fp.insert(fp_state.hash_one(k.as_ref()), (k.clone(), value.clone()));
            quick.insert(k.clone(), value.clone());
        }
        cache.run_pending_tasks();
        fx.run_pending_tasks();
        by_fp.run_pending_tasks();
        let map: HashMap<Bytes, Bytes> = keys.iter().map(|k| (k.clone(), value.clone())).collect();
        let mut samples: [Vec<f64>; 6] = Default::default();
        for round in 0..args.rounds {
            let seed = round as u64 + 1;
            let [get, get_fx, get_fp, contains, quick_get, hashmap] = &mut samples;
            let mut methods: [Method<'_>; 6] = [
                (get, &|i| cache.get(&keys[i]).is_some()),
                (get_fx, &|i| fx.get(&keys[i]).is_some()),
                (get_fp, &|i| {
                    let key = &keys[i];
                    by_fp.get(&fp_state.hash_one(key.as_ref())).is_some_and(|(k, _)| k == key)
                }),
                (contains, &|i| cache.contains_key(&keys[i])),
                (quick_get, &|i| quick.get(&keys[i]).is_some()),
                (hashmap, &|i| map.contains_key(&keys[i])),
            ];
            methods.rotate_left(round % 6);
            for (out, f) in methods {
                out.push(time(args.lookups, n, seed, f));
            }
        }
        let [g, gx, gp, c, q, h] = samples.map(median);
        println!(
            "| {n} | {g:.0} | {gx:.0} | {gp:.0} | {c:.0} | {q:.0} | {h:.0} | {:.1} | {:.2} | {:.2} |",
            g / h,
            gp / g,
            q / g
        );
    }
    Ok(())
}
