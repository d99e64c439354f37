//! `augur replay`: live replay of a trace against a running server over RESP.
//!
//! Reads become GET, writes SET with a value of the trace's size (capped), deletes
//! DEL. A GET that finds nothing is followed by a SET of the object, as a
//! cache-aside application would (`--fill-on-miss`, on by default), so objects
//! exist after their first touch and the server's hit ratio means what it does in
//! the simulator. Each key always goes to the same connection, which keeps the
//! trace's per-key order. Latency is per request, recorded in hdrhistogram.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use augur_engine::parse_bytes;
use augur_simulators::{open_trace, Op, Request};
use clap::Args;
use hdrhistogram::Histogram;
use tokio::sync::mpsc;

use super::trace_args::TraceArgs;

/// Flags of `augur replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    trace: TraceArgs,
    /// Server to drive, HOST:PORT (Augur, redis-server, …).
    #[arg(long)]
    target: String,
    /// Concurrent connections.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Requests per second over all connections [default: as fast as possible].
    #[arg(long)]
    rate: Option<f64>,
    /// Stop after this many trace requests.
    #[arg(long)]
    limit: Option<u64>,
    /// Largest value written; bigger trace sizes are capped to it.
    #[arg(long, default_value = "1MiB")]
    max_value: String,
    /// After a GET miss, SET the object (cache-aside fill).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    fill_on_miss: bool,
    /// Password for AUTH.
    #[arg(long)]
    password: Option<String>,
}

#[derive(Debug)]
struct WorkerResult {
    latency_us: Histogram<u64>,
    requests: u64,
    fills: u64,
    errors: u64,
    first_error: Option<String>,
}

/// Microseconds from 1 µs to 60 s at 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant bounds are valid")
}

async fn connect(url: &str) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url).context("invalid target")?;
    client.get_multiplexed_async_connection().await.with_context(|| format!("cannot connect to {url}"))
}

/// keyspace_hits and keyspace_misses from INFO stats (present in Redis and Augur).
async fn hits_misses(con: &mut redis::aio::MultiplexedConnection) -> Option<(u64, u64)> {
    let info: String = redis::cmd("INFO").arg("stats").query_async(con).await.ok()?;
    let field = |name: &str| info.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok());
    Some((field("keyspace_hits:")?, field("keyspace_misses:")?))
}

async fn worker(
    mut con: redis::aio::MultiplexedConnection,
    mut rx: mpsc::Receiver<Vec<Request>>,
    value: Arc<Vec<u8>>,
    fill_on_miss: bool,
) -> WorkerResult {
    let mut out = WorkerResult { latency_us: histogram(), requests: 0, fills: 0, errors: 0, first_error: None };
    while let Some(batch) = rx.recv().await {
        for req in batch {
            let key = req.key.to_string();
            let size = (req.size as usize).min(value.len());
            let started = Instant::now();
            let result: redis::RedisResult<()> = match req.op {
                Op::Write | Op::Other => redis::cmd("SET").arg(&key).arg(&value[..size]).query_async(&mut con).await,
                Op::Delete => redis::cmd("DEL").arg(&key).query_async(&mut con).await,
                Op::Read => match redis::cmd("GET").arg(&key).query_async::<Option<Vec<u8>>>(&mut con).await {
                    Ok(Some(_)) => Ok(()),
                    Ok(None) if fill_on_miss => {
                        out.fills += 1;
                        redis::cmd("SET").arg(&key).arg(&value[..size]).query_async(&mut con).await
                    }
                    Ok(None) => Ok(()),
                    Err(e) => Err(e),
                },
            };
            let _ = out.latency_us.record(started.elapsed().as_micros().max(1) as u64);
            out.requests += 1;
            if let Err(e) = result {
                out.errors += 1;
                out.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    out
}

/// Runs `augur replay`.
pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let max_value = parse_bytes(&args.max_value).map_err(|e| anyhow::anyhow!("--max-value: {e}"))? as usize;
    let (path, format, read) = args.trace.resolve()?;
    let mut reader = open_trace(&path, format, &read).with_context(|| format!("cannot read {}", path.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let url = match &args.password {
        Some(p) => format!("redis://:{p}@{}/", args.target),
        None => format!("redis://{}/", args.target),
    };
    runtime.block_on(async move {
        let mut control = connect(&url).await?;
        let before = hits_misses(&mut control).await;
        let value = Arc::new(vec![b'x'; max_value]);
        let mut senders = Vec::new();
        let mut workers = Vec::new();
        for _ in 0..args.concurrency {
            let (tx, rx) = mpsc::channel::<Vec<Request>>(64);
            senders.push(tx);
            workers.push(tokio::spawn(worker(connect(&url).await?, rx, Arc::clone(&value), args.fill_on_miss)));
        }
        let started = Instant::now();
        // The trace is read on a blocking thread and dealt out in per-connection
        // batches; the rate limit paces the dealing.
        let limit = args.limit.unwrap_or(u64::MAX);
        let rate = args.rate;
        let feeder = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
            const BATCH: usize = 64;
            let n = senders.len();
            let mut pending: Vec<Vec<Request>> = (0..n).map(|_| Vec::with_capacity(BATCH)).collect();
            let mut sent = 0u64;
            while sent < limit {
                let Some(req) = reader.next_request()? else { break };
                let lane = (req.key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % n;
                pending[lane].push(req);
                sent += 1;
                if pending[lane].len() >= BATCH || rate.is_some() {
                    let batch = std::mem::replace(&mut pending[lane], Vec::with_capacity(BATCH));
                    if senders[lane].blocking_send(batch).is_err() {
                        bail!("a replay connection stopped");
                    }
                }
                if let Some(rate) = rate {
                    let due = started + Duration::from_secs_f64(sent as f64 / rate);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
            }
            for (lane, batch) in pending.into_iter().enumerate() {
                if !batch.is_empty() && senders[lane].blocking_send(batch).is_err() {
                    bail!("a replay connection stopped");
                }
            }
            Ok(sent)
        });
        let sent = feeder.await.context("trace reader failed")??;
        let mut total = WorkerResult { latency_us: histogram(), requests: 0, fills: 0, errors: 0, first_error: None };
        for w in workers {
            let r = w.await.context("replay connection failed")?;
            let _ = total.latency_us.add(&r.latency_us);
            total.requests += r.requests;
            total.fills += r.fills;
            total.errors += r.errors;
            if total.first_error.is_none() {
                total.first_error = r.first_error;
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let after = hits_misses(&mut control).await;
        let h = &total.latency_us;
        println!("replay of {} against {} ({} connections)", path.display(), args.target, args.concurrency);
        println!("requests:    {} ({} cache-aside fills, {} errors)", sent, total.fills, total.errors);
        println!("throughput:  {:.0} requests/s over {:.2} s", total.requests as f64 / elapsed, elapsed);
        println!(
            "latency:     p50 {} us, p99 {} us, p999 {} us, max {} us",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max()
        );
        match (before, after) {
            (Some((h0, m0)), Some((h1, m1))) if h1 + m1 > h0 + m0 => {
                let (hits, misses) = (h1 - h0, m1 - m0);
                println!(
                    "server hit ratio: {:.4} ({hits} hits, {misses} misses, from INFO)",
                    hits as f64 / (hits + misses) as f64
                );
            }
            _ => println!("server hit ratio: unavailable (no keyspace_hits/keyspace_misses in INFO)"),
        }
        if let Some(e) = total.first_error {
            println!("first error: {e}");
        }
        Ok(())
    })
}
