//! `augur-bench peers`: Augur against redis-server on the same machine, in the same
//! run, with the same redis-benchmark command, printing medians and ratios.
//!
//! Both servers run for the whole benchmark: redis-server with no persistence on a
//! free loopback port, `augur serve` on RocksDB in a temporary directory. Each cell
//! (command, clients, pipeline depth, value size) runs the same
//! `redis-benchmark -c C -n N -r K -t get|set -P P -d D` against one and then the
//! other, alternating which goes first (A B B A …) so drift on the machine falls on
//! both sides alike, for `--rounds` rounds; the table reports medians.
//!
//! GETs are measured on cached keys: before a value size's GET cells, every key
//! redis-benchmark can pick (`key:000000000000` … `key:K-1`, its `-r` format) is
//! written to both servers with a value of that size (`redis-cli --pipe`). Every run,
//! on either side, starts once Augur has nothing dirty: its GETs read the cache tier,
//! and the flushing left over from a SET run does not slow the run after it.
//!
//! Latency: redis-benchmark's `--csv` has throughput, p50 and p99 but no p99.9, so the
//! driver reads its plain report instead: the summary holds the CSV's figures, and the
//! "latency by percentile distribution" gives p99.9 as the first printed percentile at
//! or above 99.9% (an upper bound within the report's own resolution).
//!
//! `--markdown PATH` writes a section for docs/RESULTS.md (machine, date, command,
//! tables); `--plot PATH.png` draws throughput and p99 bars per cell (one more PNG per
//! scaling sweep, named after it).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Bytes written per value size to load the key space; a larger size gets fewer keys
/// (`K = min(--keyspace, this / size)`) so 64 KiB values do not need gigabytes.
const LOAD_BYTES: u64 = 128 << 20;

/// The redis-benchmark test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Test {
    /// GET on keys both servers hold in memory.
    Get,
    /// SET of random keys.
    Set,
}

impl Test {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Test::Get => "get",
            Test::Set => "set",
        }
    }
}

/// The redis-benchmark load and the Augur settings `peers` and `gpu-serve` share.
#[derive(Debug, clap::Args)]
pub(crate) struct Load {
    /// Rounds per cell; each round runs both servers, the order alternating.
    #[arg(long, default_value_t = 5)]
    pub(crate) rounds: usize,
    /// Requests per redis-benchmark run (-n).
    #[arg(long, default_value_t = 200_000)]
    pub(crate) requests: u64,
    /// Concurrent clients (-c).
    #[arg(long, default_value_t = 50)]
    pub(crate) clients: u32,
    /// Pipeline depths (-P), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pub(crate) pipelines: Vec<u32>,
    /// Value sizes (-d), comma-separated: bytes, or with K/KiB, M/MiB.
    #[arg(long, value_delimiter = ',', default_value = "64,1KiB", value_parser = parse_size)]
    pub(crate) sizes: Vec<u64>,
    /// Commands, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "get,set")]
    pub(crate) tests: Vec<Test>,
    /// Key space (-r): keys key:000000000000 to key:K-1.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) keyspace: u64,
    /// Augur's WAL durability (always, everysec, no); Redis, in `peers`, runs without persistence.
    #[arg(long, default_value = "everysec")]
    pub(crate) durability: String,
    /// Augur's cache size (the GPU tier's arena, or the CPU tier's bound).
    #[arg(long, default_value = "1GiB")]
    pub(crate) cache_size: String,
}

/// Options of `augur-bench peers`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub(crate) load: Load,
    /// Scaling sweep over client counts (pipeline 1, 64 B values), e.g. 1,10,50,100,500,1000.
    #[arg(long, value_delimiter = ',')]
    sweep_clients: Vec<u32>,
    /// Scaling sweep over value sizes (50 clients, pipeline 1), e.g. 64,1K,4K,16K,64K.
    #[arg(long, value_delimiter = ',', value_parser = parse_size)]
    sweep_sizes: Vec<u64>,
    /// Scaling sweep over pipeline depths (50 clients, 64 B values), e.g. 1,4,16,64,256.
    #[arg(long, value_delimiter = ',')]
    sweep_pipelines: Vec<u32>,
    /// Draw throughput and p99 bars to this PNG (sweeps go to PATH-STEM-sweep-*.png).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// One more flag for `augur serve` (repeatable), e.g. --augur-arg=--access-log=false.
    #[arg(long = "augur-arg", allow_hyphen_values = true)]
    augur_args: Vec<String>,
    /// The redis-server binary.
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

/// Bytes from `64`, `1K`, `1KiB`, `2M`, `2MiB` (binary multiples).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let n: u64 = n.parse().map_err(|_| format!("not a size: {s:?}"))?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        _ => return Err(format!("unknown unit in {s:?}: use B, KiB or MiB")),
    };
    n.checked_mul(1 << shift).filter(|&b| b > 0).ok_or_else(|| format!("size out of range: {s:?}"))
}

pub(crate) fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// One benchmark configuration, run against both servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Cell {
    pub(crate) size: u64,
    pub(crate) test: Test,
    pub(crate) clients: u32,
    pub(crate) pipeline: u32,
}

impl Cell {
    pub(crate) fn label(&self) -> String {
        format!("{} c{} P{} {}", self.test.name().to_uppercase(), self.clients, self.pipeline, human_size(self.size))
    }
}

/// What one redis-benchmark run reported.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Measurement {
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: Option<f64>,
}

/// Parses redis-benchmark's plain report (not `-q`, not `--csv`) for one test.
fn parse_report(text: &str) -> anyhow::Result<Measurement> {
    // Progress updates end in carriage returns; the report's lines in newlines.
    let lines: Vec<&str> = text.split(['\r', '\n']).map(str::trim).collect();
    let rps = lines
        .iter()
        .find_map(|l| l.strip_prefix("throughput summary:")?.split_whitespace().next()?.parse::<f64>().ok())
        .with_context(|| format!("no throughput summary in redis-benchmark's report:\n{text}"))?;
    // "avg min p50 p95 p99 max" then the figures on the next line.
    let header = lines
        .iter()
        .position(|l| l.split_whitespace().eq(["avg", "min", "p50", "p95", "p99", "max"]))
        .with_context(|| format!("no latency summary in redis-benchmark's report:\n{text}"))?;
    let figures: Vec<f64> = lines
        .get(header + 1)
        .map(|l| l.split_whitespace().filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_default();
    if figures.len() != 6 {
        bail!("malformed latency summary in redis-benchmark's report:\n{text}");
    }
    // "99.902% <= 3.895 milliseconds (cumulative count 19981)" in the percentile
    // distribution, which comes before the cumulative distribution.
    let distribution = lines.iter().skip_while(|l| !l.starts_with("Latency by percentile distribution"));
    let p999_ms = distribution
        .take_while(|l| !l.starts_with("Cumulative distribution"))
        .filter_map(|l| {
            let (pct, rest) = l.split_once("% <= ")?;
            let ms = rest.split_whitespace().next()?.parse::<f64>().ok()?;
            Some((pct.parse::<f64>().ok()?, ms))
        })
        .find(|&(pct, _)| pct >= 99.9)
        .map(|(_, ms)| ms);
    Ok(Measurement { rps, p50_ms: figures[2], p99_ms: figures[4], p999_ms })
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Medians over rounds.
pub(crate) fn summarize(runs: &[Measurement]) -> Measurement {
    let p999: Vec<f64> = runs.iter().filter_map(|m| m.p999_ms).collect();
    Measurement {
        rps: median(runs.iter().map(|m| m.rps).collect()),
        p50_ms: median(runs.iter().map(|m| m.p50_ms).collect()),
        p99_ms: median(runs.iter().map(|m| m.p99_ms).collect()),
        p999_ms: (p999.len() == runs.len() && !p999.is_empty()).then(|| median(p999)),
    }
}

/// A child process killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) port: u16,
    pub(crate) name: &'static str,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub(crate) fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .context("redis-cli (install redis-tools)")?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    pub(crate) fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.cli(&["PING"]).unwrap_or_default() != "PONG" {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited during start-up: {status}", self.name);
            }
            if Instant::now() > deadline {
                bail!("{} did not answer PING within 60 s", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    pub(crate) fn info_field(&self, section: &str, field: &str) -> anyhow::Result<String> {
        let info = self.cli(&["INFO", section])?;
        info.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .map(|v| v.trim().to_string())
            .with_context(|| format!("{field} not in {}'s INFO {section}", self.name))
    }

    /// Resident memory of the server process, bytes.
    fn rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kb: u64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()?;
        Some(kb * 1024)
    }

    /// Writes `key:000000000000` … `key:keys-1` with `size`-byte values of `x`, as
    /// redis-benchmark's SET would, through `redis-cli --pipe`.
    pub(crate) fn load(&self, keys: u64, size: u64) -> anyhow::Result<()> {
        let mut child = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--pipe"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("redis-cli --pipe (install redis-tools)")?;
        let stdin = child.stdin.take().context("redis-cli stdin")?;
        let value = vec![b'x'; size as usize];
        let writer = std::thread::spawn(move || -> std::io::Result<()> {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, stdin);
            for k in 0..keys {
                let key = format!("key:{k:012}");
                write!(out, "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n", key.len(), value.len())?;
                out.write_all(&value)?;
                out.write_all(b"\r\n")?;
            }
            out.flush()
        });
        let out = child.wait_with_output()?;
        writer.join().map_err(|_| anyhow::anyhow!("the load writer panicked"))??;
        let text = String::from_utf8_lossy(&out.stdout);
        let errors =
            text.lines().find_map(|l| l.strip_prefix("errors: ")?.split(',').next()?.trim().parse::<u64>().ok());
        if !out.status.success() || errors != Some(0) {
            bail!("loading {} failed: {text}{}", self.name, String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// For Augur: waits until every write is in the store and so in the cache tier.
    pub(crate) fn wait_flushed(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(300);
        while self.info_field("persistence", "dirty_keys")? != "0" {
            if Instant::now() > deadline {
                bail!("{} still has dirty keys after 5 minutes", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    pub(crate) fn benchmark(&self, cell: &Cell, requests: u64, keyspace: u64) -> anyhow::Result<Measurement> {
        let out = Command::new("redis-benchmark")
            .args(benchmark_args(self.port, cell, requests, keyspace))
            .stdin(Stdio::null())
            .output()
            .context("redis-benchmark (install redis-tools)")?;
        if !out.status.success() {
            bail!("redis-benchmark against {} failed: {}", self.name, String::from_utf8_lossy(&out.stderr));
        }
        parse_report(&String::from_utf8_lossy(&out.stdout)).with_context(|| format!("against {}", self.name))
    }
}

fn benchmark_args(port: u16, cell: &Cell, requests: u64, keyspace: u64) -> Vec<String> {
    let mut args: Vec<String> = vec!["-h".into(), "127.0.0.1".into(), "-p".into(), port.to_string()];
    for (flag, value) in [
        ("-c", cell.clients.to_string()),
        ("-n", requests.to_string()),
        ("-r", keyspace.to_string()),
        ("-t", cell.test.name().to_string()),
        ("-P", cell.pipeline.to_string()),
        ("-d", cell.size.to_string()),
    ] {
        args.push(flag.into());
        args.push(value);
    }
    args
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A table of cells: the main matrix or one scaling sweep.
struct Table {
    title: String,
    /// File-name suffix of its plot ("" for the main one).
    slug: &'static str,
    cells: Vec<Cell>,
}

fn tables(args: &Args) -> Vec<Table> {
    let mut main = Vec::new();
    for &size in &args.load.sizes {
        for &pipeline in &args.load.pipelines {
            for &test in &args.load.tests {
                main.push(Cell { size, test, clients: args.load.clients, pipeline });
            }
        }
    }
    main.sort_by_key(|c| (c.test, c.pipeline, c.size));
    let mut out = vec![Table { title: "Augur against Redis".into(), slug: "", cells: main }];
    let sweep = |title: &str, slug, cells: Vec<Cell>| Table { title: title.to_string(), slug, cells };
    let both = |f: &dyn Fn(Test) -> Vec<Cell>| args.load.tests.iter().copied().flat_map(f).collect::<Vec<_>>();
    if !args.sweep_clients.is_empty() {
        let cells = both(&|test| {
            args.sweep_clients.iter().map(|&clients| Cell { size: 64, test, clients, pipeline: 1 }).collect()
        });
        out.push(sweep("Scaling with clients (pipeline 1, 64 B values)", "sweep-clients", cells));
    }
    if !args.sweep_sizes.is_empty() {
        let cells =
            both(&|test| args.sweep_sizes.iter().map(|&size| Cell { size, test, clients: 50, pipeline: 1 }).collect());
        out.push(sweep("Scaling with value size (50 clients, pipeline 1)", "sweep-sizes", cells));
    }
    if !args.sweep_pipelines.is_empty() {
        let cells = both(&|test| {
            args.sweep_pipelines.iter().map(|&pipeline| Cell { size: 64, test, clients: 50, pipeline }).collect()
        });
        out.push(sweep("Scaling with pipeline depth (50 clients, 64 B values)", "sweep-pipelines", cells));
    }
    out
}

/// Every run of one cell, per server.
#[derive(Debug, Default)]
struct Runs {
    redis: Vec<Measurement>,
    augur: Vec<Measurement>,
}

/// Runs every cell against both servers, `load.rounds` times, A B then B A so each
/// goes first in half the rounds, and returns each cell's measurements per server.
/// Before a value size's first GET cell, `fill(keyspace, size)` loads the key space
/// (so GETs read cached keys); before every run, every server that flushes (Augur)
/// is waited for, so no earlier SET run's flushing eats into the next run.
pub(crate) fn alternate(
    tag: &str,
    cells: &[Cell],
    load: &Load,
    servers: [&Server; 2],
    mut fill: impl FnMut(u64, u64) -> anyhow::Result<()>,
) -> anyhow::Result<HashMap<Cell, [Vec<Measurement>; 2]>> {
    let total_runs = cells.len() * load.rounds * 2;
    eprintln!(
        "{tag}: {} cells x {} rounds x 2 servers = {total_runs} redis-benchmark runs of {} requests",
        cells.len(),
        load.rounds,
        load.requests
    );
    let mut results: HashMap<Cell, [Vec<Measurement>; 2]> = HashMap::new();
    let mut loaded: Option<u64> = None;
    let mut done = 0;
    for cell in cells {
        let keyspace = keyspace_for(load.keyspace, cell.size);
        if cell.test == Test::Get && loaded != Some(cell.size) {
            eprintln!("{tag}: loading {keyspace} keys of {} into both servers", human_size(cell.size));
            fill(keyspace, cell.size)?;
            loaded = Some(cell.size);
        }
        let runs = results.entry(*cell).or_default();
        for round in 0..load.rounds {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for side in order {
                // Only Augur servers flush (their names start with "augur").
                for server in servers.iter().filter(|s| s.name.starts_with("augur")) {
                    server.wait_flushed()?;
                }
                let server = servers[side];
                let m = server.benchmark(cell, load.requests, keyspace)?;
                done += 1;
                eprintln!(
                    "{tag}: [{done}/{total_runs}] {} {}: {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms",
                    cell.label(),
                    server.name,
                    m.rps,
                    m.p50_ms,
                    m.p99_ms
                );
                runs[side].push(m);
            }
        }
    }
    Ok(results)
}

/// The extra `augur serve` flags as a Markdown suffix (empty when there are none).
pub(crate) fn flags_suffix(flags: &[String]) -> String {
    if flags.is_empty() {
        String::new()
    } else {
        format!(" `{}`", flags.join(" "))
    }
}

/// The report's "Load" line: the redis-benchmark command, the rounds and the key
/// space used for each value size among `cells`.
pub(crate) fn load_line<'a>(out: &mut String, load: &Load, cells: impl Iterator<Item = &'a Cell>) {
    let mut sizes: Vec<u64> = cells.map(|c| c.size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let keyspaces: Vec<String> =
        sizes.iter().map(|&s| format!("{} for {}", keyspace_for(load.keyspace, s), human_size(s))).collect();
    let _ = writeln!(
        out,
        "- Load: `redis-benchmark -h 127.0.0.1 -p PORT -c C -n {} -r K -t get|set -P P -d D`, the same \
         command against each server, alternating which goes first; medians of {} rounds per cell. \
         Key space K: {}. p99.9 is redis-benchmark's first printed percentile at or above 99.9% (its \
         `--csv` has no p99.9).",
        load.requests,
        load.rounds,
        keyspaces.join(", ")
    );
}

/// A Markdown table of two servers side by side, one row per cell with runs:
/// medians, the throughput ratio `names[1] / names[0]` and both latency triples.
pub(crate) fn ratio_table<'a>(
    out: &mut String,
    names: [&str; 2],
    cells: &[Cell],
    runs: impl Fn(&Cell) -> Option<[&'a [Measurement]; 2]>,
) {
    let [a, b] = names;
    let _ = writeln!(
        out,
        "| test | clients | pipeline | value | {a} req/s | {b} req/s | {b} / {a} | \
         {a} p50 / p99 / p99.9 ms | {b} p50 / p99 / p99.9 ms | p99 {b} / {a} |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---|---|---:|");
    let lat = |m: &Measurement| format!("{} / {} / {}", ms(m.p50_ms), ms(m.p99_ms), m.p999_ms.map_or("n/a".into(), ms));
    for cell in cells {
        let Some([base, other]) = runs(cell) else { continue };
        let (x, y) = (summarize(base), summarize(other));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.0} | {:.0} | **{:.2}** | {} | {} | {:.2} |",
            cell.test.name().to_uppercase(),
            cell.clients,
            cell.pipeline,
            human_size(cell.size),
            x.rps,
            y.rps,
            y.rps / x.rps,
            lat(&x),
            lat(&y),
            y.p99_ms / x.p99_ms
        );
    }
}

/// Memory after loading a key space, per server.
#[derive(Debug)]
struct Memory {
    keys: u64,
    size: u64,
    redis_used_memory: Option<u64>,
    redis_rss_growth: Option<u64>,
    augur_rss_growth: Option<u64>,
}

/// The key space for values of `size` bytes: `keyspace`, capped at [`LOAD_BYTES`] of values.
pub(crate) fn keyspace_for(keyspace: u64, size: u64) -> u64 {
    keyspace.min((LOAD_BYTES / size).max(1)).max(1)
}

/// Runs the benchmark and prints (and optionally writes) the Markdown section.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.load.rounds == 0 || args.load.requests == 0 {
        bail!("--rounds and --requests must be at least 1");
    }
    let augur_bin = augur_binary(args.report.augur.as_deref())?;
    let idle = args.report.hold_cpu_idle();
    let dir = tempfile::tempdir()?;
    let redis_port = free_port()?;
    let mut redis = Server {
        child: Command::new(&args.redis_server)
            .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {} (apt-get install redis-server)", args.redis_server.display()))?,
        port: redis_port,
        name: "redis-server",
    };
    let augur_port = free_port()?;
    let mut augur = Server {
        child: Command::new(&augur_bin)
            .args(["serve", "--listen", &format!("127.0.0.1:{augur_port}")])
            .args(["--cache-size", &args.load.cache_size, "--durability", &args.load.durability])
            .arg("--wal-dir")
            .arg(dir.path().join("wal"))
            .arg("--store")
            .arg(format!("rocksdb:{}", dir.path().join("rocksdb").display()))
            .args(&args.augur_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", augur_bin.display()))?,
        port: augur_port,
        name: "augur",
    };
    redis.wait_ready()?;
    augur.wait_ready()?;
    let redis_version = redis.info_field("server", "redis_version").unwrap_or_else(|_| "?".into());

    let tables = tables(&args);
    let mut cells: Vec<Cell> = tables.iter().flat_map(|t| t.cells.iter().copied()).collect();
    // By value size (one load each), GETs before SETs within a size: a SET run
    // rewrites values of the same size, so the loaded key space stays as it was.
    cells.sort();
    cells.dedup();
    let mut memory: Option<Memory> = None;
    let measured = alternate("peers", &cells, &args.load, [&redis, &augur], |keyspace, size| {
        let before = (redis.rss(), augur.rss());
        redis.load(keyspace, size)?;
        augur.load(keyspace, size)?;
        augur.wait_flushed()?;
        if memory.is_none() {
            let growth = |before: Option<u64>, after: Option<u64>| Some(after?.saturating_sub(before?));
            memory = Some(Memory {
                keys: keyspace,
                size,
                redis_used_memory: redis.info_field("memory", "used_memory").ok().and_then(|v| v.parse().ok()),
                redis_rss_growth: growth(before.0, redis.rss()),
                augur_rss_growth: growth(before.1, augur.rss()),
            });
        }
        Ok(())
    })?;
    let results: HashMap<Cell, Runs> =
        measured.into_iter().map(|(cell, [redis, augur])| (cell, Runs { redis, augur })).collect();
    drop(augur);
    drop(redis);

    let plots = match &args.plot {
        Some(path) => tables
            .iter()
            .map(|t| {
                let file = plot_path(path, t.slug);
                crate::bars::draw(&file, &t.title, &bars(t, &results))
                    .with_context(|| format!("plot {}", file.display()))?;
                Ok(Some(file))
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
        None => vec![None; tables.len()],
    };
    let text = markdown(&args, &redis_version, &tables, &results, memory.as_ref(), &plots, idle.note());
    println!("{text}");
    if let Some(path) = &args.report.markdown {
        std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("peers: wrote {}", path.display());
    }
    Ok(())
}

fn plot_path(path: &Path, slug: &str) -> PathBuf {
    if slug.is_empty() {
        return path.to_path_buf();
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "peers".into());
    let ext = path.extension().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "png".into());
    path.with_file_name(format!("{stem}-{slug}.{ext}"))
}

fn bars(table: &Table, results: &HashMap<Cell, Runs>) -> Vec<crate::bars::Group> {
    table
        .cells
        .iter()
        .filter_map(|cell| {
            let runs = results.get(cell)?;
            let (r, a) = (summarize(&runs.redis), summarize(&runs.augur));
            Some(crate::bars::Group { label: cell.label(), redis: (r.rps, r.p99_ms), augur: (a.rps, a.p99_ms) })
        })
        .collect()
}

pub(crate) use augur_simulators::report::machine;

/// Where a benchmark's report goes and which augur it runs: the options every
/// side-by-side subcommand shares.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct ReportArgs {
    /// Write the results as a Markdown section to this file.
    #[arg(long)]
    pub(crate) markdown: Option<PathBuf>,
    /// The augur binary [default: next to this one].
    #[arg(long)]
    pub(crate) augur: Option<PathBuf>,
    /// Let the CPUs go idle during the runs (by default held off through
    /// /dev/cpu_dma_latency when permitted; see bench/src/idle.rs).
    #[arg(long)]
    pub(crate) allow_cpu_idle: bool,
    /// The command line the Markdown reports; empty: this process's own
    /// (`augur-bench all` sets it to the equivalent subcommand).
    #[arg(skip)]
    pub(crate) command: Vec<String>,
}

impl ReportArgs {
    /// Holds CPU idle off for as long as the result lives, unless
    /// `--allow-cpu-idle` (see `crate::idle`).
    pub(crate) fn hold_cpu_idle(&self) -> crate::idle::IdleHold {
        crate::idle::IdleHold::acquire(self.allow_cpu_idle)
    }
}

/// The lines a side-by-side section opens with: machine, what CPU idle was
/// allowed (`idle`: [`crate::idle::IdleHold::note`]), date and command line.
pub(crate) fn section_header(out: &mut String, report: &ReportArgs, idle: &str) {
    let _ = writeln!(out, "- Machine: {}", machine());
    let _ = writeln!(out, "- CPU idle during the runs: {idle}");
    let _ = writeln!(out, "- Date: {}", now_utc());
    let _ = writeln!(out, "- Command: `{}`", command_line(&report.command));
}

/// The augur binary: `given`, else the one next to this executable.
pub(crate) fn augur_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    Ok(match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()?.with_file_name("augur"),
    })
}

/// The command line a Markdown section reports: `recorded` when `augur-bench all`
/// built the run, else this process's own; arguments with spaces quoted.
pub(crate) fn command_line(recorded: &[String]) -> String {
    let args: Vec<String> = if recorded.is_empty() { std::env::args().collect() } else { recorded.to_vec() };
    args.iter().map(|a| augur_simulators::report::shell_quote(a)).collect::<Vec<_>>().join(" ")
}

pub(crate) use augur_simulators::report::utc_now as now_utc;

pub(crate) fn ms(v: f64) -> String {
    format!("{v:.3}")
}

fn markdown(
    args: &Args,
    redis_version: &str,
    tables: &[Table],
    results: &HashMap<Cell, Runs>,
    memory: Option<&Memory>,
    plots: &[Option<PathBuf>],
    idle: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### Augur against Redis (redis-benchmark, same machine, same run)\n");
    section_header(&mut out, &args.report, idle);
    let _ = writeln!(
        out,
        "- Redis: redis-server {redis_version}, no persistence (`--save \"\" --appendonly no`), loopback."
    );
    let _ = writeln!(
        out,
        "- Augur: `augur serve` on RocksDB in a temporary directory, `--durability {}` (every write in \
         the OS before its reply; {}), `--cache-size {}`{}. GETs read cached keys: the key space was \
         loaded and flushed into the cache tier before each GET run.",
        args.load.durability,
        match args.load.durability.as_str() {
            "always" => "fsynced before its reply",
            "no" => "never fsynced by Augur",
            _ => "fsynced within a second",
        },
        args.load.cache_size,
        flags_suffix(&args.augur_args)
    );
    load_line(&mut out, &args.load, tables.iter().flat_map(|t| t.cells.iter()));
    for (table, plot) in tables.iter().zip(plots) {
        let _ = writeln!(out, "\n#### {}\n", table.title);
        ratio_table(&mut out, ["Redis", "Augur"], &table.cells, |cell| {
            results.get(cell).map(|runs| [&runs.redis[..], &runs.augur[..]])
        });
        if let Some(plot) = plot {
            let name = plot.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let _ = writeln!(out, "\n![{}]({name})", table.title);
        }
    }
    if let Some(m) = memory {
        let per_key =
            |bytes: Option<u64>| bytes.map_or("n/a".to_string(), |b| format!("{:.0}", b as f64 / m.keys as f64));
        let _ = writeln!(out, "\n#### Memory per cached key ({} keys, {} values)\n", m.keys, human_size(m.size));
        let _ = writeln!(out, "| server | bytes per key | measured as |\n|---|---:|---|");
        let _ = writeln!(out, "| Redis | {} | `used_memory` / keys |", per_key(m.redis_used_memory));
        let _ = writeln!(out, "| Redis | {} | RSS growth while loading / keys |", per_key(m.redis_rss_growth));
        let _ = writeln!(
            out,
            "| Augur | {} | RSS growth while loading and flushing / keys (includes RocksDB's memtable and block cache) |",
            per_key(m.augur_rss_growth)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "GET: rps=0.0 (overall: nan) avg_msec=nan (overall: nan)\r\
GET: rps=53123.5 (overall: 53123.5) avg_msec=0.610 (overall: 0.610)\r\
====== GET ======
  20000 requests completed in 0.37 seconds
  50 parallel clients

Latency by percentile distribution:
0.000% <= 0.175 milliseconds (cumulative count 2)
50.000% <= 0.575 milliseconds (cumulative count 10024)
99.805% <= 3.687 milliseconds (cumulative count 19962)
99.902% <= 3.895 milliseconds (cumulative count 19981)
100.000% <= 4.207 milliseconds (cumulative count 20000)

Cumulative distribution of latencies:
0.000% <= 0.103 milliseconds (cumulative count 0)
99.995% <= 4.103 milliseconds (cumulative count 19999)

Summary:
  throughput summary: 53475.93 requests per second
  latency summary (msec):
          avg       min       p50       p95       p99       max
        0.610     0.168     0.575     0.895     1.863     4.207
";

    #[test]
    fn parses_redis_benchmark_report() {
        let m = parse_report(REPORT).expect("parses");
        assert_eq!(m, Measurement { rps: 53475.93, p50_ms: 0.575, p99_ms: 1.863, p999_ms: Some(3.895) });
        let no_distribution = REPORT.replace("Latency by percentile distribution:", "");
        assert_eq!(parse_report(&no_distribution).expect("parses").p999_ms, None);
        assert!(parse_report("ERROR: connection refused").is_err());
    }

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("64"), Ok(64));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("2MiB"), Ok(2 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1GB").is_err());
        assert_eq!(human_size(65536), "64 KiB");
        assert_eq!(human_size(100), "100 B");
    }

    #[test]
    fn medians_and_ratios_of_rounds() {
        let m = |rps, p999| Measurement { rps, p50_ms: 1.0, p99_ms: 2.0, p999_ms: p999 };
        let s = summarize(&[m(3.0, Some(1.0)), m(1.0, Some(3.0)), m(2.0, Some(2.0))]);
        assert_eq!((s.rps, s.p999_ms), (2.0, Some(2.0)));
        assert_eq!(summarize(&[m(1.0, None), m(3.0, Some(1.0))]).p999_ms, None, "a run without p99.9: none");
        assert_eq!(median(vec![1.0, 2.0, 3.0, 10.0]), 2.5);
    }

    #[test]
    fn plot_paths_name_the_sweep() {
        assert_eq!(plot_path(Path::new("/tmp/peers.png"), ""), PathBuf::from("/tmp/peers.png"));
        assert_eq!(
            plot_path(Path::new("/tmp/peers.png"), "sweep-clients"),
            PathBuf::from("/tmp/peers-sweep-clients.png")
        );
    }
}
