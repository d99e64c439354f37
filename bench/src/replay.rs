//! `augur-bench replay`: `augur serve` configurations against each other under the
//! same live replay: prefetching on against off, the access log on against off.
//!
//! One run of the benchmark generates a sessions trace (`augur gen --kind sessions`),
//! loads every key it touches into a RocksDB store (an `augur serve` with a large
//! cache, `augur replay` with cache-aside fills, then SHUTDOWN, which flushes), and
//! then, for every round and variant, starts a fresh `augur serve` on that store with
//! a small `--cache-size` and a fresh WAL directory (and so a fresh `models/` beside
//! it: no learned model carries over from an earlier run), and replays the whole trace with
//! `augur replay`. Every key is in the store, so every GET is either a cache hit or a
//! read-through from RocksDB (the trace has no writes): the hit ratio is the cache's,
//! and throughput includes what the misses cost. Variants alternate within a round,
//! the first one rotating each round; the table reports medians and ratios to the
//! baseline (no prefetching, access log on: the server's defaults) and each round's
//! ratio.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::peers::{free_port, median, section_header, ReportArgs, Server};

/// A server configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// `--prefetch none` (the baseline: the server's defaults).
    None,
    /// `--prefetch obl` (one-block lookahead).
    Obl,
    /// `--prefetch markov`.
    Markov,
    /// `--prefetch mithril`.
    Mithril,
    /// `--prefetch ml` (the learned predictor).
    Ml,
    /// `--prefetch none --access-log false`.
    LogOff,
}

impl Variant {
    fn flags(self) -> Vec<&'static str> {
        match self {
            Variant::None => vec!["--prefetch", "none"],
            Variant::Obl => vec!["--prefetch", "obl"],
            Variant::Markov => vec!["--prefetch", "markov"],
            Variant::Mithril => vec!["--prefetch", "mithril"],
            Variant::Ml => vec!["--prefetch", "ml"],
            Variant::LogOff => vec!["--prefetch", "none", "--access-log", "false"],
        }
    }

    fn is_prefetch(self) -> bool {
        !matches!(self, Variant::None | Variant::LogOff)
    }
}

/// Options of `augur-bench replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Server configurations, comma-separated; `none` is the baseline and always runs.
    #[arg(long, value_delimiter = ',', default_value = "none,markov,ml,log-off")]
    variants: Vec<Variant>,
    /// Rounds; each runs every variant once on a fresh server.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Trace length (requests).
    #[arg(long, default_value_t = 200_000)]
    requests: u64,
    /// Distinct session keys (`augur gen --keys`).
    #[arg(long, default_value_t = 50_000)]
    keys: u64,
    /// Value size in bytes (`augur gen --value-size fixed:N`).
    #[arg(long, default_value_t = 1024)]
    value_size: u64,
    /// Trace seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The server's `--cache-size`: small against the working set, so misses show.
    #[arg(long, default_value = "4MiB")]
    cache_size: String,
    /// `augur replay --concurrency`:
    /// 1 keeps the trace's order: with more, each connection replays its own share of
    /// the keys at its own pace, which interleaves sessions and hides their order from
    /// the prefetchers.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// `augur replay --rate` for the measured runs (requests per second over all
    /// connections) [default: as fast as the server answers]. A paced replay gives
    /// prefetches the time between a user's requests that a back-to-back replay
    /// does not.
    #[arg(long)]
    rate: Option<f64>,
    /// One more flag for every variant's `augur serve` (repeatable), e.g.
    /// --augur-arg=--prefetch-budget=50000.
    #[arg(long = "augur-arg", allow_hyphen_values = true)]
    augur_args: Vec<String>,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

/// What one `augur replay` reported, plus the server's prefetch figures.
#[derive(Debug, Clone, Default, PartialEq)]
struct Outcome {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    hit_ratio: f64,
    fills: u64,
    prefetch_accuracy: Option<f64>,
    prefetch_coverage: Option<f64>,
    /// Proposals a client got to first (read late, or not read at all because
    /// the client's own read was in flight or done) / (those + cached).
    prefetch_late_share: Option<f64>,
    /// Median `prefetch_lead` (µs): from the predictor taking a read to the
    /// prefetches it released being in memory.
    prefetch_lead_p50_us: Option<f64>,
    /// INFO's `prefetch_drifts`: the predictor's drift detections (learned
    /// prefetcher only; the trace is stationary, so each is a false alarm).
    drifts: Option<u64>,
}

/// Parses `augur replay`'s report (engine/src/cli/replay.rs).
fn parse_replay(text: &str) -> anyhow::Result<Outcome> {
    let after = |prefix: &str| text.lines().find_map(|l| l.trim().strip_prefix(prefix).map(str::trim));
    let first_number = |s: &str| s.split_whitespace().next().and_then(|v| v.parse::<f64>().ok());
    let rps = after("throughput:").and_then(first_number).context("no throughput line")?;
    let latency = after("latency:").context("no latency line")?;
    let quantile = |name: &str| {
        latency
            .split(',')
            .find_map(|part| part.trim().strip_prefix(name)?.split_whitespace().next()?.parse::<f64>().ok())
    };
    let hit_ratio = after("server hit ratio:").and_then(first_number).context("no server hit ratio")?;
    let requests = after("requests:").context("no requests line")?;
    let (fills, errors) = {
        // "N (F cache-aside fills, E errors)"
        let inner = requests.split_once('(').map(|(_, r)| r).unwrap_or_default();
        let mut nums = inner.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty());
        (nums.next().and_then(|v| v.parse().ok()), nums.next().and_then(|v| v.parse::<u64>().ok()))
    };
    if errors != Some(0) {
        bail!("augur replay reported errors: {requests}");
    }
    Ok(Outcome {
        rps,
        p50_us: quantile("p50").context("no p50")?,
        p99_us: quantile("p99").context("no p99")?,
        hit_ratio,
        fills: fills.context("no fill count")?,
        prefetch_accuracy: None,
        prefetch_coverage: None,
        prefetch_late_share: None,
        prefetch_lead_p50_us: None,
        drifts: None,
    })
}

fn run_ok(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn start(augur: &Path, store: &Path, wal: &Path, cache_size: &str, flags: &[&str]) -> anyhow::Result<Server> {
    let port = free_port()?;
    let mut server = Server {
        child: Command::new(augur)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--cache-size", cache_size])
            .arg("--store")
            .arg(format!("rocksdb:{}", store.display()))
            .arg("--wal-dir")
            .arg(wal)
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", augur.display()))?,
        port,
        name: "augur",
    };
    server.wait_ready()?;
    Ok(server)
}

fn replay(augur: &Path, trace: &Path, port: u16, concurrency: usize, rate: Option<f64>) -> anyhow::Result<String> {
    let mut cmd = Command::new(augur);
    cmd.arg("replay").arg("--trace").arg(trace).args([
        "--target",
        &format!("127.0.0.1:{port}"),
        "--concurrency",
        &concurrency.to_string(),
    ]);
    if let Some(rate) = rate {
        cmd.args(["--rate", &rate.to_string()]);
    }
    run_ok(&mut cmd)
}

/// The p50 of `latency_percentiles_usec_<name>:p50=…,p99=…` in INFO latencystats.
fn latency_p50(server: &Server, name: &str) -> Option<f64> {
    let line = server.info_field("latencystats", &format!("latency_percentiles_usec_{name}")).ok()?;
    line.split(',').find_map(|part| part.strip_prefix("p50=")?.parse().ok())
}

/// Runs the benchmark and prints (and optionally writes) the Markdown section.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.rounds == 0 || args.concurrency == 0 {
        bail!("--rounds and --concurrency must be at least 1");
    }
    if args.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        bail!("--rate must be positive");
    }
    let mut variants = vec![Variant::None];
    variants.extend(args.variants.iter().copied().filter(|&v| v != Variant::None));
    variants.dedup();
    let augur = crate::peers::augur_binary(args.report.augur.as_deref())?;
    let idle = args.report.hold_cpu_idle();
    let dir = tempfile::tempdir()?;
    let trace = dir.path().join("sessions.oracleGeneral.bin");
    let store = dir.path().join("rocksdb");
    run_ok(
        Command::new(&augur)
            .args(["gen", "--kind", "sessions", "--requests", &args.requests.to_string()])
            .args(["--keys", &args.keys.to_string(), "--seed", &args.seed.to_string()])
            .args(["--value-size", &format!("fixed:{}", args.value_size), "-o"])
            .arg(&trace),
    )?;

    eprintln!("replay: loading every key of the trace into {}", store.display());
    let mut loader = start(&augur, &store, &dir.path().join("wal-load"), "1GiB", &["--access-log", "false"])?;
    let load = parse_replay(&replay(&augur, &trace, loader.port, args.concurrency, None)?)?;
    let _ = loader.cli(&["SHUTDOWN"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = loader.child.try_wait()? {
            if !status.success() {
                bail!("the loading server exited with {status} on SHUTDOWN");
            }
            break;
        }
        if Instant::now() > deadline {
            bail!("the loading server did not exit within 120 s of SHUTDOWN");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(loader);
    eprintln!("replay: {} objects loaded", load.fills);

    let mut results: Vec<Vec<Outcome>> = vec![Vec::new(); variants.len()];
    for round in 0..args.rounds {
        for offset in 0..variants.len() {
            let i = (round + offset) % variants.len();
            let v = variants[i];
            // Each run in a directory of its own: `augur serve` keeps model
            // checkpoints in `models/` beside its WAL directory and reloads them, and
            // a round that started from the last round's model would not be a fresh
            // server.
            let run_dir = dir.path().join(format!("run-{round}-{i}"));
            std::fs::create_dir_all(&run_dir)?;
            let wal = run_dir.join("wal");
            // One eviction policy for every variant, so only prefetching (or the log)
            // differs: LRU, the tier `--prefetch` picks by default, unless asked otherwise.
            let mut flags = v.flags();
            if !args.augur_args.iter().any(|a| a.starts_with("--eviction")) {
                flags.extend(["--eviction", "lru"]);
            }
            flags.extend(args.augur_args.iter().map(String::as_str));
            let server = start(&augur, &store, &wal, &args.cache_size, &flags)?;
            let mut out = parse_replay(&replay(&augur, &trace, server.port, args.concurrency, args.rate)?)
                .with_context(|| format!("replay against {}", v.flags().join(" ")))?;
            if out.fills != 0 {
                bail!("{} GETs found nothing: the store was not fully loaded", out.fills);
            }
            let field = |name: &str| server.info_field("stats", name).ok().and_then(|s| s.parse::<f64>().ok());
            if v.is_prefetch() {
                out.prefetch_accuracy = field("prefetch_accuracy");
                out.prefetch_coverage = field("prefetch_coverage");
                let late = field("prefetch_late").zip(field("prefetch_redundant")).map(|(l, r)| l + r);
                out.prefetch_late_share = match (late, field("prefetch_inserted")) {
                    (Some(late), Some(cached)) if late + cached > 0.0 => Some(late / (late + cached)),
                    _ => None,
                };
                out.prefetch_lead_p50_us = latency_p50(&server, "prefetch_lead");
                if v == Variant::Ml {
                    out.drifts = field("prefetch_drifts").map(|n| n as u64);
                }
            }
            drop(server);
            let _ = std::fs::remove_dir_all(&run_dir);
            eprintln!(
                "replay: round {}/{} {}: {:.0} req/s, hit ratio {:.4}, p99 {} us",
                round + 1,
                args.rounds,
                v.flags().join(" "),
                out.rps,
                out.hit_ratio,
                out.p99_us
            );
            results[i].push(out);
        }
    }
    let text = markdown(&args, &variants, &results, load.fills, idle.note());
    println!("{text}");
    if let Some(path) = &args.report.markdown {
        std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("replay: wrote {}", path.display());
    }
    Ok(())
}

fn markdown(args: &Args, variants: &[Variant], results: &[Vec<Outcome>], objects: u64, idle: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### Prefetching and access log on against off (`augur replay`, same run)\n");
    section_header(&mut out, &args.report, idle);
    let _ = writeln!(
        out,
        "- Trace: `augur gen --kind sessions --requests {} --keys {} --seed {} --value-size fixed:{}` \
         ({objects} objects, all reads), every object loaded into RocksDB first.",
        args.requests, args.keys, args.seed, args.value_size
    );
    let _ = writeln!(
        out,
        "- Each run: a fresh `augur serve --store rocksdb:… --cache-size {} --eviction lru FLAGS` (durability everysec; \
         nothing is written; its own WAL directory and so its own `models/`: no model carries over) and `augur replay --concurrency {}{}` of the whole trace (one request at a \
         time per connection); a miss is a read-through from RocksDB. Medians of {} rounds, variants \
         alternating, the first rotating each round. Hit ratio from the server's INFO; prefetch lead \
         is the median of INFO's `prefetch_lead` (from the predictor taking a read to the prefetches \
         it released being in memory). Prefetch accuracy is INFO's (used + joined) / (used + joined + \
         evicted unread + late), over the keys read for prefetching; late is the share of the proposals \
         the executor took that a client's own read beat, (late + redundant) / (late + redundant + \
         cached). Drifts: INFO's `prefetch_drifts` per round, the predictor's drift detections (the \
         trace is stationary).{}",
        args.cache_size,
        args.concurrency,
        args.rate.map(|r| format!(" --rate {r}")).unwrap_or_default(),
        args.rounds,
        if args.augur_args.is_empty() {
            String::new()
        } else {
            format!(" Every variant also ran with `{}`.", args.augur_args.join(" "))
        }
    );
    let _ = writeln!(
        out,
        "\n| flags | median req/s | vs baseline | per-round ratio | hit ratio (per round) | hit ratio − baseline | p50 us | p99 us | prefetch accuracy / coverage / late | prefetch lead p50 us | drifts |"
    );
    let _ = writeln!(out, "|---|---:|---:|---|---:|---:|---:|---:|---|---:|---|");
    let med = |i: usize, f: &dyn Fn(&Outcome) -> f64| median(results[i].iter().map(f).collect());
    let base_rps = med(0, &|o| o.rps);
    let base_hit = med(0, &|o| o.hit_ratio);
    for (i, v) in variants.iter().enumerate() {
        let per_round: Vec<String> =
            results[i].iter().zip(&results[0]).map(|(a, b)| format!("{:.3}", a.rps / b.rps)).collect();
        let prefetch = match (v.is_prefetch(), results[i].iter().all(|o| o.prefetch_accuracy.is_some())) {
            (false, _) => "-".to_string(),
            (true, false) => "n/a".to_string(),
            (true, true) => format!(
                "{:.3} / {:.3} / {:.3}",
                med(i, &|o| o.prefetch_accuracy.unwrap_or(f64::NAN)),
                med(i, &|o| o.prefetch_coverage.unwrap_or(f64::NAN)),
                med(i, &|o| o.prefetch_late_share.unwrap_or(f64::NAN))
            ),
        };
        let lead = match results[i].iter().map(|o| o.prefetch_lead_p50_us).collect::<Option<Vec<f64>>>() {
            Some(leads) if v.is_prefetch() => format!("{:.0}", median(leads)),
            _ => "-".to_string(),
        };
        let drifts = match results[i].iter().map(|o| o.drifts).collect::<Option<Vec<u64>>>() {
            Some(each) => each.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
            None => "-".to_string(),
        };
        let rps = med(i, &|o| o.rps);
        let hit = med(i, &|o| o.hit_ratio);
        // Per round too: a learned prefetcher's rounds differ (training finishes at
        // different points of the replay), and a median alone would hide how much.
        let hit_cell = match results[i].as_slice() {
            [_] => format!("{hit:.4}"),
            rounds => {
                let each: Vec<String> = rounds.iter().map(|o| format!("{:.4}", o.hit_ratio)).collect();
                format!("{hit:.4} ({})", each.join(", "))
            }
        };
        let _ = writeln!(
            out,
            "| `{}` | {rps:.0} | **{:.3}** | {} | {hit_cell} | {:+.4} | {:.0} | {:.0} | {prefetch} | {lead} | {drifts} |",
            v.flags().join(" "),
            rps / base_rps,
            per_round.join(", "),
            hit - base_hit,
            med(i, &|o| o.p50_us),
            med(i, &|o| o.p99_us),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "replay of /tmp/s.oracleGeneral.bin against 127.0.0.1:6380 (8 connections)
requests:    200000 (0 cache-aside fills, 0 errors)
throughput:  41234 requests/s over 4.85 s
latency:     p50 180 us, p99 900 us, p999 2100 us, max 9000 us
server hit ratio: 0.6012 (120240 hits, 79760 misses, from INFO)
";

    #[test]
    fn parses_the_replay_report() {
        let o = parse_replay(REPORT).expect("parses");
        assert_eq!((o.rps, o.p50_us, o.p99_us, o.hit_ratio, o.fills), (41234.0, 180.0, 900.0, 0.6012, 0));
        assert!(parse_replay(&REPORT.replace("0 errors", "3 errors")).is_err());
        assert!(parse_replay("requests: 1 (0 cache-aside fills, 0 errors)").is_err());
    }
}
