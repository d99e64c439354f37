//! Access-log overhead: `augur serve` throughput with the log on and off in the same
//! run. One server; the log is switched with `CONFIG SET access-log yes|no` between
//! rounds, the order alternating, so both sides see the same process, cache and
//! machine state. The load is redis-benchmark GET on cached keys and SET.
//!
//! The table is printed as a Markdown section (machine, date, command, load, table);
//! `--markdown PATH` also writes it to a file.

use std::fmt::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::peers::{section_header, ReportArgs};

/// Options of `augur-bench access-log`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rounds per setting (on and off alternate).
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Requests per redis-benchmark run.
    #[arg(long, default_value_t = 300_000)]
    requests: u64,
    /// Pipeline depth.
    #[arg(long, default_value_t = 16)]
    pipeline: u32,
    /// Concurrent clients.
    #[arg(long, default_value_t = 50)]
    clients: u32,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cli(port: u16, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("redis-cli").arg("-p").arg(port.to_string()).args(args).output().context("redis-cli")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Requests per second redis-benchmark reports for `test`.
fn throughput(port: u16, test: &str, args: &Args) -> anyhow::Result<f64> {
    let out = Command::new("redis-benchmark")
        .args(["-p", &port.to_string(), "-t", test, "-q", "-r", "100000", "-d", "64"])
        .args(["-n", &args.requests.to_string(), "-P", &args.pipeline.to_string(), "-c", &args.clients.to_string()])
        .output()
        .context("redis-benchmark (install redis-tools)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let label = format!("{}:", test.to_uppercase());
    // Progress updates are separated by carriage returns, the summary by a newline.
    text.split(['\r', '\n'])
        .rev()
        .find_map(|l| l.trim().strip_prefix(&label)?.split_whitespace().next()?.parse::<f64>().ok())
        .with_context(|| format!("no {label} figure in redis-benchmark output: {text}"))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs the benchmark and prints (and optionally writes) the Markdown section.
pub fn run(args: Args) -> anyhow::Result<()> {
    let augur = crate::peers::augur_binary(args.report.augur.as_deref())?;
    let idle = args.report.hold_cpu_idle();
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let server = Server(
        Command::new(&augur)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--cache-size", "1GiB"])
            .arg("--wal-dir")
            .arg(dir.path().join("wal"))
            .arg("--store")
            .arg(format!("rocksdb:{}", dir.path().join("rocksdb").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", augur.display()))?,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while cli(port, &["PING"])? != "PONG" {
        if Instant::now() > deadline {
            bail!("augur did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Load the key space so every GET below is a cache hit.
    throughput(port, "set", &args)?;
    eprintln!(
        "access-log overhead: redis-benchmark -n {} -P {} -c {} -r 100000 -d 64, {} rounds per setting, alternating",
        args.requests, args.pipeline, args.clients, args.rounds
    );
    let mut results = Vec::new();
    for test in ["get", "set"] {
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for round in 0..args.rounds * 2 {
            let enabled = (round % 2 == 0) == (round / 2 % 2 == 0);
            cli(port, &["CONFIG", "SET", "access-log", if enabled { "yes" } else { "no" }])?;
            let ops = throughput(port, test, &args)?;
            if enabled {
                on.push(ops)
            } else {
                off.push(ops)
            }
        }
        results.push((test, median(&mut on), median(&mut off)));
    }
    let info = cli(port, &["INFO", "stats"])?;
    let field = |name: &str| info.lines().find_map(|l| l.strip_prefix(name)).unwrap_or("?").to_string();
    let events = (field("access_log_events:"), field("access_log_dropped:"));
    drop(server);
    let text = markdown(&args, &results, &events, idle.note());
    println!("{text}");
    if let Some(path) = &args.report.markdown {
        std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("access-log: wrote {}", path.display());
    }
    Ok(())
}

/// The section: how it was measured, then on against off per command.
fn markdown(args: &Args, results: &[(&str, f64, f64)], (recorded, dropped): &(String, String), idle: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### Access-log overhead (`CONFIG SET access-log`, one server, same run)\n");
    section_header(&mut out, &args.report, idle);
    let _ = writeln!(
        out,
        "- Load: `redis-benchmark -n {} -P {} -c {} -r 100000 -d 64 -t get|set` against one `augur serve` \
         (RocksDB, `--cache-size 1GiB`, durability everysec, GETs on cached keys), the log switched with \
         `CONFIG SET access-log yes|no` between runs, on and off alternating; medians of {} runs per setting.",
        args.requests, args.pipeline, args.clients, args.rounds
    );
    let _ = writeln!(
        out,
        "\n| command | log on (median req/s) | log off (median req/s) | on / off | overhead |\n|---|---|---|---|---|"
    );
    for (test, on, off) in results {
        let _ = writeln!(
            out,
            "| {} | {on:.0} | {off:.0} | {:.4} | {:+.2}% |",
            test.to_uppercase(),
            on / off,
            (1.0 - on / off) * 100.0
        );
    }
    let _ = writeln!(out, "\naccess-log events recorded: {recorded}, dropped: {dropped}");
    out
}
