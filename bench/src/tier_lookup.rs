//! `augur-bench tier-lookup`: what one lookup in the CPU tier's map costs, by key
//! count, against a plain `HashMap`. The GET-hit profile (bench/scripts/profile-get.sh)
//! puts moka's `get` at the top; this isolates it from the server.
//!
//! Each key count builds a `moka::sync::Cache<Bytes, Bytes>` the way the engine's
//! `MokaTier` does (a byte weigher, TinyLFU admission, LRU eviction, capacity far
//! above the data) and a `std::collections::HashMap<Bytes, Bytes>` (SipHash) over the
//! same keys (`key:000000000000`, … as redis-benchmark writes them) and 64-byte values,
//! then times uniformly random lookups of present keys on one thread: moka's `get`
//! (which also records the read for its policy), moka's `contains_key` (the lookup
//! alone) and the HashMap's lookup (`contains_key`, the same probe as `get`), alternating for `--rounds` rounds; medians.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;

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
    println!("| keys | moka get ns | moka contains_key ns | HashMap get ns | moka get / HashMap get |");
    println!("|---:|---:|---:|---:|---:|");
    for &n in &args.keys {
        let cache: moka::sync::Cache<Bytes, Bytes> = moka::sync::Cache::builder()
            .max_capacity(1 << 40)
            .weigher(|k: &Bytes, v: &Bytes| (k.len() + v.len()).min(u32::MAX as usize) as u32)
            .build();
        let keys: Vec<Bytes> = (0..n).map(|i| Bytes::from(format!("key:{i:012}"))).collect();
        let value = Bytes::from(vec![b'x'; 64]);
        for k in &keys {
            cache.insert(k.clone(), value.clone());
        }
        cache.run_pending_tasks();
        let map: HashMap<Bytes, Bytes> = keys.iter().map(|k| (k.clone(), value.clone())).collect();
        let (mut get, mut contains, mut hashmap) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..args.rounds {
            let seed = round as u64 + 1;
            let mut methods: [Method<'_>; 3] = [
                (&mut get, &|i| cache.get(&keys[i]).is_some()),
                (&mut contains, &|i| cache.contains_key(&keys[i])),
                (&mut hashmap, &|i| map.contains_key(&keys[i])),
            ];
            methods.rotate_left(round % 3);
            for (out, f) in methods {
                out.push(time(args.lookups, n, seed, f));
            }
        }
        let (g, c, h) = (median(get), median(contains), median(hashmap));
        println!("| {n} | {g:.0} | {c:.0} | {h:.0} | {:.1} |", g / h);
    }
    Ok(())
}
