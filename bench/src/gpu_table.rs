//! Insert and find throughput of the GPU hash table, its CPU reference and moka,
//! at several load factors and batch sizes: the figures issue 7 asks for, and the
//! evidence for where the engine should batch.
//!
//! What one cell measures, for load factor L and batch B over a table of C slots:
//! the table is filled (untimed) to L*C - B entries, then one batch of B new keys
//! is inserted (timed: the inserts that bring the table to L), then B present keys
//! are looked up (timed, at load L). The batch is erased again (untimed) and the
//! next repetition starts from the same state; the median repetition is reported.
//! Keys are distinct 64-bit fingerprints, values 64-bit handles (the kernel-level
//! case of the bar: 8-byte keys, 8-byte value handles).
//!
//! - GPU: kernel time only (CUDA events around one launch; the batch is already
//!   in device memory), as BGHT and HierarchicalKV report.
//! - CPU reference: `CpuTable::insert_one` / `find_one`, one thread (it is a
//!   sequential reference, not a competitor).
//! - moka: `moka::sync::Cache<u64, u64>` bounded at C entries, one thread: the
//!   CPU tier's engine.

use std::time::Instant;

use augur_kernels::layout::{mix64, DEFAULT_MAX_CHAIN, NO_PAYLOAD};
use augur_kernels::{CpuTable, GpuDevice, GpuTable, KernelError};

/// Options of `augur-bench gpu-table`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Table capacity in slots (rounded up to 16-slot buckets). Use at least 16x
    /// the largest batch so one batch moves the load factor little; on a GPU,
    /// 67108864 (1 GiB of index) matches the published anchors.
    #[arg(long, default_value_t = 1 << 22)]
    capacity: u64,
    /// Load factors to measure at.
    #[arg(long, value_delimiter = ',', default_values_t = vec![0.5, 0.8, 0.9, 0.95])]
    loads: Vec<f64>,
    /// Batch sizes.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1_000usize, 10_000, 100_000, 1_000_000])]
    batches: Vec<usize>,
    /// Repetitions per cell (the median is reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Which implementations to run.
    #[arg(long, value_delimiter = ',', default_values_t = vec!["cpu".to_string(), "moka".to_string(), "gpu".to_string()])]
    only: Vec<String>,
}

/// Distinct non-zero keys: `mix64` is a bijection and maps only 0 to 0.
struct Keys(u64);

impl Keys {
    fn take(&mut self, n: usize) -> Vec<u64> {
        let start = self.0;
        self.0 += n as u64;
        (start..start + n as u64).map(mix64).collect()
    }
}

fn payload(key: u64) -> u64 {
    let p = key.rotate_left(17);
    if p == NO_PAYLOAD {
        1
    } else {
        p
    }
}

/// Operations per second of one cell: (insert, find).
type Cell = Option<(f64, f64)>;

/// A table under test.
trait Subject {
    fn fill(&mut self, keys: &[u64]) -> anyhow::Result<()>;
    /// Seconds to insert then to find `keys`.
    fn measure(&mut self, keys: &[u64]) -> anyhow::Result<(f64, f64)>;
    fn remove(&mut self, keys: &[u64]) -> anyhow::Result<()>;
}

struct Cpu(CpuTable);

impl Subject for Cpu {
    fn fill(&mut self, keys: &[u64]) -> anyhow::Result<()> {
        for &k in keys {
            self.0.insert_one(k, payload(k), DEFAULT_MAX_CHAIN);
        }
        Ok(())
    }
    fn measure(&mut self, keys: &[u64]) -> anyhow::Result<(f64, f64)> {
        let t = Instant::now();
        for &k in keys {
            std::hint::black_box(self.0.insert_one(k, payload(k), DEFAULT_MAX_CHAIN));
        }
        let insert = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut hits = 0usize;
        for &k in keys {
            hits += usize::from(std::hint::black_box(self.0.find_one(k)) != NO_PAYLOAD);
        }
        let find = t.elapsed().as_secs_f64();
        anyhow::ensure!(hits == keys.len(), "cpu reference lost {} of {} keys", keys.len() - hits, keys.len());
        Ok((insert, find))
    }
    fn remove(&mut self, keys: &[u64]) -> anyhow::Result<()> {
        self.0.erase(keys, None)?;
        Ok(())
    }
}

struct Moka(moka::sync::Cache<u64, u64>);

impl Subject for Moka {
    fn fill(&mut self, keys: &[u64]) -> anyhow::Result<()> {
        for &k in keys {
            self.0.insert(k, payload(k));
        }
        self.0.run_pending_tasks();
        Ok(())
    }
    fn measure(&mut self, keys: &[u64]) -> anyhow::Result<(f64, f64)> {
        let t = Instant::now();
        for &k in keys {
            self.0.insert(k, payload(k));
        }
        let insert = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for &k in keys {
            std::hint::black_box(self.0.get(&k));
        }
        Ok((insert, t.elapsed().as_secs_f64()))
    }
    fn remove(&mut self, keys: &[u64]) -> anyhow::Result<()> {
        for k in keys {
            self.0.invalidate(k);
        }
        self.0.run_pending_tasks();
        Ok(())
    }
}

struct Gpu(GpuTable);

impl Subject for Gpu {
    fn fill(&mut self, keys: &[u64]) -> anyhow::Result<()> {
        for chunk in keys.chunks(1 << 20) {
            let payloads: Vec<u64> = chunk.iter().map(|&k| payload(k)).collect();
            self.0.insert_unique(chunk, &payloads, DEFAULT_MAX_CHAIN)?;
        }
        Ok(())
    }
    fn measure(&mut self, keys: &[u64]) -> anyhow::Result<(f64, f64)> {
        let payloads: Vec<u64> = keys.iter().map(|&k| payload(k)).collect();
        let (k, p) = (self.0.upload(keys)?, self.0.upload(&payloads)?);
        let insert = self.0.time_insert(&k, &p, DEFAULT_MAX_CHAIN)?;
        let find = self.0.time_find(&k)?;
        Ok((insert, find))
    }
    fn remove(&mut self, keys: &[u64]) -> anyhow::Result<()> {
        self.0.erase(keys, None)?;
        Ok(())
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs every (load, batch) cell for one subject.
fn run_subject(subject: &mut dyn Subject, args: &Args, capacity: u64) -> anyhow::Result<Vec<Vec<Cell>>> {
    let max_batch = args.batches.iter().copied().max().unwrap_or(0);
    let mut rows = Vec::new();
    for &load in &args.loads {
        let mut keys = Keys(1);
        let target = (load * capacity as f64) as usize;
        let base_len = target.saturating_sub(max_batch);
        let base = keys.take(base_len);
        subject.fill(&base)?;
        let mut row = Vec::new();
        for &batch in &args.batches {
            if batch > target {
                row.push(None);
                continue;
            }
            let filler = keys.take(target - batch - base_len);
            subject.fill(&filler)?;
            let (mut ins, mut fnd) = (Vec::new(), Vec::new());
            for _ in 0..args.reps.max(1) {
                let measured = keys.take(batch);
                let (i, f) = subject.measure(&measured)?;
                ins.push(batch as f64 / i);
                fnd.push(batch as f64 / f);
                subject.remove(&measured)?;
            }
            subject.remove(&filler)?;
            row.push(Some((median(ins), median(fnd))));
        }
        subject.remove(&base)?;
        rows.push(row);
    }
    Ok(rows)
}

fn rate(c: &Cell, insert: bool) -> String {
    match c {
        Some((i, f)) => format!("{:.1} M", if insert { i } else { f } / 1e6),
        None => "skip".into(),
    }
}

fn ratio(a: &Cell, b: &Cell, insert: bool) -> String {
    match (a, b) {
        (Some(a), Some(b)) => {
            let (x, y) = if insert { (a.0, b.0) } else { (a.1, b.1) };
            format!("{:.2}x", x / y)
        }
        _ => "-".into(),
    }
}

/// Runs the benchmark and prints a Markdown table.
pub fn run(args: Args) -> anyhow::Result<()> {
    let wants = |name: &str| args.only.iter().any(|o| o == name);
    let capacity = augur_kernels::cpu::buckets_for_capacity(args.capacity)? * 16;
    println!(
        "gpu-table: {capacity} slots, 8-byte keys and 8-byte value handles, reps {} (median), max chain {DEFAULT_MAX_CHAIN}",
        args.reps
    );
    println!("insert = the B inserts that bring the table to the load factor; find = B present keys at that load");
    let empty = || vec![vec![None; args.batches.len()]; args.loads.len()];
    let cpu = if wants("cpu") {
        run_subject(&mut Cpu(CpuTable::with_capacity(capacity)?), &args, capacity)?
    } else {
        empty()
    };
    let moka = if wants("moka") {
        run_subject(&mut Moka(moka::sync::Cache::new(capacity)), &args, capacity)?
    } else {
        empty()
    };
    let gpu = if !wants("gpu") {
        empty()
    } else {
        match GpuDevice::open(0) {
            Ok(dev) => {
                println!("GPU: {}; GPU figures are kernel time only", dev.info());
                run_subject(&mut Gpu(GpuTable::with_capacity(dev, capacity)?), &args, capacity)?
            }
            Err(KernelError::NoGpu { reason }) => {
                println!("SKIP: no CUDA driver ({reason}): GPU columns left empty");
                empty()
            }
            Err(e) => return Err(e.into()),
        }
    };
    println!(
        "\n| load | batch | cpu-ref insert/s | moka insert/s | gpu insert/s | gpu vs cpu-ref | gpu vs moka | cpu-ref vs moka \
         | cpu-ref find/s | moka find/s | gpu find/s | gpu vs cpu-ref | gpu vs moka | cpu-ref vs moka |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (li, load) in args.loads.iter().enumerate() {
        for (bi, batch) in args.batches.iter().enumerate() {
            let (c, m, g) = (&cpu[li][bi], &moka[li][bi], &gpu[li][bi]);
            println!(
                "| {load} | {batch} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                rate(c, true),
                rate(m, true),
                rate(g, true),
                ratio(g, c, true),
                ratio(g, m, true),
                ratio(c, m, true),
                rate(c, false),
                rate(m, false),
                rate(g, false),
                ratio(g, c, false),
                ratio(g, m, false),
                ratio(c, m, false),
            );
        }
    }
    Ok(())
}
