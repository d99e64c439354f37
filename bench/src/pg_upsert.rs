//! Which bulk-upsert statement shape the PostgreSQL adapter should use.
//!
//! Each round writes the same batches with each method in turn (the order rotates
//! between rounds so no method always runs on a warm cache), on its own table, and
//! records rows per second. The report gives the median per method and value size
//! and each method's ratio to the fastest.

use std::time::Instant;

use augur_adapters::testing::unique_table_name;
use augur_adapters::{PostgresStore, Store, UpsertMethod};
use bytes::Bytes;

/// Options of `augur-bench pg-upsert`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// PostgreSQL URL [default: the test server: AUGUR_PG_URL or 127.0.0.1:5432].
    #[arg(long)]
    url: Option<String>,
    /// Rows per put_many call (one statement per call below 10,000 rows).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Batches per method per round.
    #[arg(long, default_value_t = 20)]
    batches: usize,
    /// Rounds (each method runs once per round).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Value sizes in bytes.
    #[arg(long, value_delimiter = ',', default_values_t = vec![64usize, 1024, 4096])]
    sizes: Vec<usize>,
}

const METHODS: [(UpsertMethod, &str); 3] =
    [(UpsertMethod::Unnest, "unnest"), (UpsertMethod::Values, "values"), (UpsertMethod::Copy, "copy")];

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs the benchmark and prints a Markdown table.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let url = args.url.clone().unwrap_or_else(augur_adapters::testing::postgres_url);
    println!(
        "pg-upsert: {} rows per call, {} calls per method per round, {} rounds, synchronous_commit=on",
        args.batch, args.batches, args.rounds
    );
    println!("\n| value size | method | median rows/s | vs fastest |\n|---|---|---|---|");
    for &size in &args.sizes {
        let mut stores = Vec::new();
        for (method, _) in METHODS {
            let table = unique_table_name();
            stores.push(PostgresStore::builder(&url).table(&table).pool_size(1).upsert_method(method).open().await?);
        }
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); METHODS.len()];
        for round in 0..args.rounds {
            for offset in 0..METHODS.len() {
                let m = (round + offset) % METHODS.len();
                let started = Instant::now();
                for b in 0..args.batches {
                    let entries: Vec<(Bytes, Bytes)> = (0..args.batch)
                        .map(|i| {
                            let key = Bytes::from(format!("k{:08}", (b * args.batch + i) % 50_000));
                            let value = Bytes::from(vec![(round + i) as u8; size]);
                            (key, value)
                        })
                        .collect();
                    stores[m].put_many(&entries).await?;
                }
                let rows = (args.batch * args.batches) as f64;
                samples[m].push(rows / started.elapsed().as_secs_f64());
            }
        }
        let medians: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
        let best = medians.iter().cloned().fold(0.0, f64::max);
        for (m, (_, name)) in METHODS.iter().enumerate() {
            println!("| {size} B | {name} | {:.0} | {:.2} |", medians[m], medians[m] / best);
        }
        for store in stores {
            store.drop_table().await?;
        }
    }
    Ok(())
}
