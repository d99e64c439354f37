//! `augur-bench stores`: Augur against its backing stores used directly, in the
//! same run, printing medians and ratios with each figure's durability next to it.
//!
//! - Read-through: Augur GET on cached keys against one-row point reads from
//!   PostgreSQL (`SELECT value … WHERE key = $1`, a prepared statement per
//!   connection) and point gets from RocksDB (the `rocksdb` crate in this process, on
//!   its own database holding the same keys and values).
//! - Write-back: Augur SET at each durability mode (`always`, `everysec`, `no`: one
//!   `augur serve` per mode) against one-row upserts into PostgreSQL
//!   (`synchronous_commit = on`) and RocksDB puts with `WriteOptions::set_sync` on
//!   and off.
//!
//! Every variant runs the same closed loop: `--clients` concurrent clients (a TCP
//! connection to Augur, a PostgreSQL connection, or an OS thread for RocksDB), each
//! issuing one request at a time on a uniformly random key of the `--keyspace` for
//! `--seconds`; throughput is requests completed over the wall time, latency is per
//! request. The Augur clients speak RESP directly (no pipelining), like
//! `redis-benchmark -P 1`. All stores hold the whole key space before the first run,
//! so writes update rows and reads always find them. Variants run one after the
//! other within a round, the starting variant rotating each round, so drift on the
//! machine falls on all of them alike; the table reports medians over `--rounds`.
//! Before every run Augur has nothing dirty, so its background flushing from an
//! earlier SET run does not eat into the next run.
//!
//! The client runs on the same machine as every server: on a small machine the
//! load generator's CPU is part of every figure. RocksDB's gets and puts run in this
//! process with no network hop and no protocol, which no networked server can match;
//! the ratio says what Augur's RESP round trip costs against an embedded store.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use augur_adapters::testing::unique_table_name;
use augur_adapters::{PostgresStore, Store};
use bytes::Bytes;
use hdrhistogram::Histogram;
use rocksdb::{DBCompressionType, Options, WriteBatch, WriteOptions, DB};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_postgres::types::ToSql;

use crate::peers::{free_port, human_size, median, parse_size, section_header, ReportArgs, Server};

/// A comparison `augur-bench stores` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compare {
    /// Augur GET on cached keys against point reads from PostgreSQL and RocksDB.
    ReadThrough,
    /// Augur SET at each durability mode against per-operation upserts.
    WriteBack,
}

/// The store behind the Augur servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AugurStore {
    /// Embedded RocksDB in a temporary directory.
    Rocksdb,
    /// The PostgreSQL server the direct variants use, one table per Augur server.
    Postgres,
}

/// Options of `augur-bench stores`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Comparisons to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "read-through,write-back")]
    compare: Vec<Compare>,
    /// Rounds; each round runs every variant once, the starting one rotating.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Concurrent clients per run (connections, or threads for RocksDB).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Requests in flight per client: RESP pipelining for Augur, pipelined
    /// statements on one connection for PostgreSQL, calls in a row for RocksDB.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Keys key:000000000000 to key:K-1, all present in every store.
    #[arg(long, default_value_t = 100_000)]
    keyspace: u64,
    /// Value size: bytes, or with K/KiB.
    #[arg(long, default_value = "64", value_parser = parse_size)]
    size: u64,
    /// The store behind Augur (its flushes run alongside the SET runs).
    #[arg(long, value_enum, default_value = "rocksdb")]
    augur_store: AugurStore,
    /// Augur's cache size.
    #[arg(long, default_value = "1GiB")]
    cache_size: String,
    /// PostgreSQL URL [default: the test server: AUGUR_PG_URL, 127.0.0.1:5432, or a private cluster].
    #[arg(long)]
    url: Option<String>,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

/// One side of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    AugurGet,
    PgSelect,
    RocksGet,
    AugurSet(Mode),
    PgUpsert,
    RocksPut { sync: bool },
}

/// Augur's WAL durability modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Always,
    Everysec,
    No,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::Always, Mode::Everysec, Mode::No];

    fn name(self) -> &'static str {
        match self {
            Mode::Always => "always",
            Mode::Everysec => "everysec",
            Mode::No => "no",
        }
    }
}

impl Variant {
    fn label(self) -> String {
        match self {
            Variant::AugurGet => "Augur GET (cached key)".into(),
            Variant::PgSelect => "PostgreSQL SELECT by primary key".into(),
            Variant::RocksGet => "RocksDB get (in process)".into(),
            Variant::AugurSet(m) => format!("Augur SET, durability {}", m.name()),
            Variant::PgUpsert => "PostgreSQL single-row upsert".into(),
            Variant::RocksPut { sync: true } => "RocksDB put, sync on (in process)".into(),
            Variant::RocksPut { sync: false } => "RocksDB put, sync off (in process)".into(),
        }
    }

    fn durability(self, pg: &PgSettings) -> String {
        match self {
            Variant::AugurGet | Variant::PgSelect | Variant::RocksGet => "read; none involved".into(),
            Variant::AugurSet(Mode::Always) => {
                "WAL fsynced before the reply (group commit): survives a machine crash".into()
            }
            Variant::AugurSet(Mode::Everysec) => {
                "WAL written before the reply, fsynced within 1 s: survives a process crash; a machine crash may lose about 1 s"
                    .into()
            }
            Variant::AugurSet(Mode::No) => {
                "WAL written before the reply, fsync left to the OS: survives a process crash".into()
            }
            Variant::PgUpsert => format!(
                "synchronous_commit={}, fsync={}: commit record fsynced before the reply (server groups concurrent commits)",
                pg.synchronous_commit, pg.fsync
            ),
            Variant::RocksPut { sync: true } => {
                "WAL fsynced before the put returns (RocksDB groups concurrent writers): survives a machine crash".into()
            }
            Variant::RocksPut { sync: false } => {
                "WAL written to the OS before the put returns: survives a process crash".into()
            }
        }
    }
}

/// What PostgreSQL's server says about its durability.
#[derive(Debug, Default)]
struct PgSettings {
    version: String,
    fsync: String,
    synchronous_commit: String,
}

/// One run's outcome.
#[derive(Debug, Clone, Copy)]
struct Sample {
    ops_per_s: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Per-client closed loop: batches of `pipeline` random keys until the deadline;
/// latency per batch in nanoseconds (per request without pipelining).
struct Loop {
    end: Instant,
    rng: u64,
    keyspace: u64,
    pipeline: usize,
    /// The current batch's key indexes.
    keys: Vec<u64>,
    ops: u64,
    hist: Histogram<u64>,
}

impl Loop {
    fn new(end: Instant, seed: u64, args: &Args) -> Self {
        let hist = Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("constant bounds are valid");
        let pipeline = args.pipeline.max(1);
        Self {
            end,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            keyspace: args.keyspace,
            pipeline,
            keys: Vec::with_capacity(pipeline),
            ops: 0,
            hist,
        }
    }

    /// Draws the next batch into `keys` and returns when it starts, or None past the deadline.
    fn next(&mut self) -> Option<Instant> {
        let now = Instant::now();
        if now >= self.end {
            return None;
        }
        self.keys.clear();
        for _ in 0..self.pipeline {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            self.keys.push(self.rng % self.keyspace);
        }
        Some(now)
    }

    fn done(&mut self, started: Instant) {
        self.ops += self.keys.len() as u64;
        let _ = self.hist.record((started.elapsed().as_nanos() as u64).max(1));
    }

    fn finish(self) -> (Histogram<u64>, u64) {
        (self.hist, self.ops)
    }
}

fn key(i: u64) -> String {
    format!("key:{i:012}")
}

/// Sums the clients' histograms and counts into one sample over `elapsed`.
fn sample(parts: Vec<(Histogram<u64>, u64)>, elapsed: Duration) -> anyhow::Result<Sample> {
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut ops = 0;
    for (h, n) in parts {
        all.add(&h)?;
        ops += n;
    }
    if all.is_empty() {
        bail!("no request completed");
    }
    Ok(Sample {
        ops_per_s: ops as f64 / elapsed.as_secs_f64(),
        p50_us: all.value_at_quantile(0.5) as f64 / 1e3,
        p99_us: all.value_at_quantile(0.99) as f64 / 1e3,
    })
}

/// Reads one RESP reply: `+OK` for SET, a bulk string of `size` bytes for GET.
async fn expect_reply(
    conn: &mut BufReader<TcpStream>,
    line: &mut Vec<u8>,
    body: &mut Vec<u8>,
    get: bool,
    size: usize,
) -> anyhow::Result<()> {
    line.clear();
    conn.read_until(b'\n', line).await?;
    if get {
        let len: Option<usize> = line
            .strip_prefix(b"$")
            .and_then(|l| l.strip_suffix(b"\r\n"))
            .and_then(|l| std::str::from_utf8(l).ok())
            .and_then(|l| l.parse().ok());
        if len != Some(size) {
            bail!("GET: expected a {size}-byte value, got {:?}", String::from_utf8_lossy(line));
        }
        body.resize(size + 2, 0);
        conn.read_exact(body).await?;
    } else if line.as_slice() != b"+OK\r\n" {
        bail!("SET: expected +OK, got {:?}", String::from_utf8_lossy(line));
    }
    Ok(())
}

/// GET or SET against Augur over RESP: a batch of `--pipeline` requests written at
/// once per connection, then its replies read.
async fn run_augur(port: u16, get: bool, args: &Args, round: u64) -> anyhow::Result<Sample> {
    let mut conns = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        conns.push(BufReader::new(stream));
    }
    let size = args.size as usize;
    let value = Arc::new(vec![b'y'; size]);
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(args.seconds);
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(c, mut conn)| {
            let value = Arc::clone(&value);
            let mut lp = Loop::new(end, round * 1000 + c as u64 + 1, args);
            tokio::spawn(async move {
                let (mut req, mut line, mut body) = (Vec::new(), Vec::new(), Vec::new());
                while let Some(t0) = lp.next() {
                    req.clear();
                    for &k in &lp.keys {
                        let key = key(k);
                        if get {
                            write!(req, "*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len())?;
                        } else {
                            write!(req, "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n", key.len(), value.len())?;
                            req.extend_from_slice(&value);
                            req.extend_from_slice(b"\r\n");
                        }
                    }
                    conn.get_mut().write_all(&req).await?;
                    for _ in 0..lp.keys.len() {
                        expect_reply(&mut conn, &mut line, &mut body, get, size).await?;
                    }
                    lp.done(t0);
                }
                anyhow::Ok(lp.finish())
            })
        })
        .collect();
    gather(tasks, started).await
}

/// One client's latencies and operation count.
type ClientTask = tokio::task::JoinHandle<anyhow::Result<(Histogram<u64>, u64)>>;

/// Waits for every client task and merges their figures into one sample.
async fn gather(tasks: Vec<ClientTask>, started: Instant) -> anyhow::Result<Sample> {
    let mut parts = Vec::new();
    for t in tasks {
        parts.push(t.await??);
    }
    sample(parts, started.elapsed())
}

/// One-row SELECTs or upserts against PostgreSQL, one connection per client; with
/// `--pipeline N`, N statements in flight on the connection at once (tokio-postgres
/// pipelines them; each upsert is still its own transaction).
async fn run_pg(url: &str, table: &str, get: bool, args: &Args, round: u64) -> anyhow::Result<Sample> {
    let sql = if get {
        format!("SELECT value FROM {table} WHERE key = $1")
    } else {
        format!(
            "INSERT INTO {table} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        )
    };
    let mut clients = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client.batch_execute("SET synchronous_commit = on").await?;
        let stmt = client.prepare(&sql).await?;
        clients.push((client, stmt));
    }
    let size = args.size as usize;
    let value = Arc::new(vec![b'y'; size]);
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(args.seconds);
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(c, (client, stmt))| {
            let value = Arc::clone(&value);
            let mut lp = Loop::new(end, round * 1000 + c as u64 + 1, args);
            tokio::spawn(async move {
                while let Some(t0) = lp.next() {
                    let keys: Vec<Vec<u8>> = lp.keys.iter().map(|&k| key(k).into_bytes()).collect();
                    if get {
                        let params: Vec<[&(dyn ToSql + Sync); 1]> = keys.iter().map(|k| [k as _]).collect();
                        let rows =
                            futures::future::try_join_all(params.iter().map(|p| client.query_opt(&stmt, p))).await?;
                        for (row, k) in rows.into_iter().zip(&keys) {
                            let len = row.map(|r| r.get::<_, &[u8]>(0).len());
                            if len != Some(size) {
                                bail!(
                                    "PostgreSQL: expected a {size}-byte value for {}, got {len:?}",
                                    String::from_utf8_lossy(k)
                                );
                            }
                        }
                    } else {
                        let v = value.as_slice();
                        let params: Vec<[&(dyn ToSql + Sync); 2]> = keys.iter().map(|k| [k as _, &v as _]).collect();
                        futures::future::try_join_all(params.iter().map(|p| client.execute(&stmt, p))).await?;
                    }
                    lp.done(t0);
                }
                anyhow::Ok(lp.finish())
            })
        })
        .collect();
    gather(tasks, started).await
}

/// Point gets or puts on the embedded RocksDB, one OS thread per client; a
/// `--pipeline` batch is that many calls in a row (nothing to overlap in process).
fn run_rocks(db: &DB, variant: Variant, args: &Args, round: u64) -> anyhow::Result<Sample> {
    let size = args.size as usize;
    let value = vec![b'y'; size];
    let mut write_opts = WriteOptions::default();
    write_opts.set_sync(matches!(variant, Variant::RocksPut { sync: true }));
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(args.seconds);
    let parts = std::thread::scope(|s| {
        let handles: Vec<_> = (0..args.clients)
            .map(|c| {
                let (value, write_opts) = (&value, &write_opts);
                let mut lp = Loop::new(end, round * 1000 + c as u64 + 1, args);
                s.spawn(move || -> anyhow::Result<(Histogram<u64>, u64)> {
                    while let Some(t0) = lp.next() {
                        for &k in &lp.keys {
                            let key = key(k);
                            if variant == Variant::RocksGet {
                                let len = db.get_pinned(key.as_bytes())?.map(|v| v.len());
                                if len != Some(size) {
                                    bail!("RocksDB: expected a {size}-byte value for {key}, got {len:?}");
                                }
                            } else {
                                db.put_opt(key.as_bytes(), value, write_opts)?;
                            }
                        }
                        lp.done(t0);
                    }
                    Ok(lp.finish())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("a RocksDB client panicked"))?)
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    sample(parts, started.elapsed())
}

/// Opens RocksDB with the options the adapter uses (adapters/src/rocksdb.rs).
fn open_rocksdb(path: &Path) -> anyhow::Result<DB> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.increase_parallelism(std::thread::available_parallelism().map(|n| n.get() as i32).unwrap_or(2));
    opts.set_compression_type(DBCompressionType::Lz4);
    opts.set_bottommost_compression_type(DBCompressionType::Zstd);
    opts.set_write_buffer_size(128 << 20);
    Ok(DB::open(&opts, path)?)
}

/// Everything the runs need, started once.
struct Setup {
    dir: tempfile::TempDir,
    url: String,
    pg: PgSettings,
    /// The table the direct PostgreSQL variants use.
    table: PostgresStore,
    /// Tables behind Augur servers on PostgreSQL, dropped at the end.
    augur_tables: Vec<String>,
    db: DB,
    /// One server per durability mode, in `Mode::ALL` order.
    augur: Vec<Server>,
}

async fn pg_settings(url: &str) -> anyhow::Result<PgSettings> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let show = |name: &'static str| {
        let client = &client;
        async move { anyhow::Ok(client.query_one(&format!("SHOW {name}"), &[]).await?.get::<_, String>(0)) }
    };
    Ok(PgSettings {
        version: show("server_version").await?,
        fsync: show("fsync").await?,
        synchronous_commit: show("synchronous_commit").await?,
    })
}

fn start_augur(
    augur_bin: &Path,
    dir: &Path,
    mode: Mode,
    args: &Args,
    url: &str,
    table: Option<&str>,
) -> anyhow::Result<Server> {
    let port = free_port()?;
    let store = match table {
        Some(_) => format!("postgres:{url}"),
        None => format!("rocksdb:{}", dir.join(format!("augur-{}-rocksdb", mode.name())).display()),
    };
    let mut cmd = Command::new(augur_bin);
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--cache-size", &args.cache_size, "--durability", mode.name(), "--store", &store])
        .arg("--wal-dir")
        .arg(dir.join(format!("augur-{}-wal", mode.name())));
    if let Some(t) = table {
        cmd.args(["--pg-table", t]);
    }
    let mut server = Server {
        child: cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", augur_bin.display()))?,
        port,
        name: "augur",
    };
    server.wait_ready()?;
    Ok(server)
}

async fn setup(args: &Args) -> anyhow::Result<Setup> {
    let augur_bin = crate::peers::augur_binary(args.report.augur.as_deref())?;
    let dir = tempfile::tempdir()?;
    let url = match &args.url {
        Some(u) => u.clone(),
        // Panics with instructions when no server can be found or started.
        None => tokio::task::spawn_blocking(augur_adapters::testing::postgres_url).await?,
    };
    let pg = pg_settings(&url).await.with_context(|| format!("PostgreSQL at {url}"))?;
    let table = PostgresStore::builder(&url).table(unique_table_name()).pool_size(1).open().await?;
    let db = open_rocksdb(&dir.path().join("direct-rocksdb"))?;

    eprintln!(
        "stores: loading {} keys of {} into PostgreSQL, RocksDB and 3 Augur servers",
        args.keyspace,
        human_size(args.size)
    );
    let value = Bytes::from(vec![b'x'; args.size as usize]);
    let mut start = 0;
    while start < args.keyspace {
        let end = (start + 1000).min(args.keyspace);
        let rows: Vec<(Bytes, Bytes)> = (start..end).map(|i| (Bytes::from(key(i)), value.clone())).collect();
        table.put_many(&rows).await?;
        let mut batch = WriteBatch::default();
        for (k, v) in &rows {
            batch.put(k, v);
        }
        db.write(batch)?;
        start = end;
    }
    db.flush()?;
    let mut augur = Vec::new();
    let mut augur_tables = Vec::new();
    for mode in Mode::ALL {
        let table = (args.augur_store == AugurStore::Postgres).then(unique_table_name);
        let server = start_augur(&augur_bin, dir.path(), mode, args, &url, table.as_deref())?;
        augur_tables.extend(table);
        server.load(args.keyspace, args.size)?;
        server.wait_flushed()?;
        augur.push(server);
    }
    Ok(Setup { dir, url, pg, table, augur_tables, db, augur })
}

/// Runs one variant once.
async fn run_variant(s: &Setup, v: Variant, args: &Args, round: u64) -> anyhow::Result<Sample> {
    for server in &s.augur {
        server.wait_flushed()?;
    }
    let mode_index = |m: Mode| Mode::ALL.iter().position(|&x| x == m).expect("every mode has a server");
    match v {
        // GETs go to the everysec server (the default); the mode does not touch reads.
        Variant::AugurGet => run_augur(s.augur[mode_index(Mode::Everysec)].port, true, args, round).await,
        Variant::AugurSet(m) => run_augur(s.augur[mode_index(m)].port, false, args, round).await,
        Variant::PgSelect => run_pg(&s.url, s.table.table(), true, args, round).await,
        Variant::PgUpsert => run_pg(&s.url, s.table.table(), false, args, round).await,
        Variant::RocksGet | Variant::RocksPut { .. } => run_rocks(&s.db, v, args, round),
    }
}

/// One comparison's variants and the pairs whose ratios it reports.
struct Plan {
    compare: Compare,
    variants: Vec<Variant>,
    /// (numerator, denominator) pairs.
    ratios: Vec<(Variant, Variant)>,
}

fn plans(args: &Args) -> Vec<Plan> {
    args.compare
        .iter()
        .map(|&compare| match compare {
            Compare::ReadThrough => Plan {
                compare,
                variants: vec![Variant::AugurGet, Variant::PgSelect, Variant::RocksGet],
                ratios: vec![(Variant::AugurGet, Variant::PgSelect), (Variant::AugurGet, Variant::RocksGet)],
            },
            Compare::WriteBack => {
                let mut variants: Vec<Variant> = Mode::ALL.iter().map(|&m| Variant::AugurSet(m)).collect();
                variants.extend([
                    Variant::PgUpsert,
                    Variant::RocksPut { sync: true },
                    Variant::RocksPut { sync: false },
                ]);
                let ratios = Mode::ALL
                    .iter()
                    .flat_map(|&m| {
                        [Variant::PgUpsert, Variant::RocksPut { sync: true }, Variant::RocksPut { sync: false }]
                            .map(|d| (Variant::AugurSet(m), d))
                    })
                    .collect();
                Plan { compare, variants, ratios }
            }
        })
        .collect()
}

/// Runs the comparisons and prints (and optionally writes) the Markdown section.
pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.rounds == 0 || args.clients == 0 || args.keyspace == 0 || args.seconds <= 0.0 {
        bail!("--rounds, --clients, --keyspace and --seconds must be positive");
    }
    let idle = args.report.hold_cpu_idle();
    let setup = setup(&args).await?;
    let plans = plans(&args);
    let mut results: Vec<Vec<Vec<Sample>>> = Vec::new();
    for plan in &plans {
        let mut samples = vec![Vec::new(); plan.variants.len()];
        for round in 0..args.rounds {
            let n = plan.variants.len();
            for offset in 0..n {
                let i = (round + offset) % n;
                let v = plan.variants[i];
                let s = run_variant(&setup, v, &args, round as u64).await.with_context(|| v.label())?;
                eprintln!(
                    "stores: round {}/{} {}: {:.0} ops/s, p50 {:.1} us, p99 {:.1} us",
                    round + 1,
                    args.rounds,
                    v.label(),
                    s.ops_per_s,
                    s.p50_us,
                    s.p99_us
                );
                samples[i].push(s);
            }
        }
        results.push(samples);
    }
    let text = markdown(&args, &setup, &plans, &results, idle.note());
    // Tear down before printing: servers stopped, tables dropped.
    let Setup { dir, table, augur_tables, augur, url, db, .. } = setup;
    drop(augur);
    drop(db);
    table.drop_table().await?;
    for t in augur_tables {
        PostgresStore::builder(&url).table(t).pool_size(1).open().await?.drop_table().await?;
    }
    drop(dir);
    println!("{text}");
    if let Some(path) = &args.report.markdown {
        std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("stores: wrote {}", path.display());
    }
    Ok(())
}

fn markdown(args: &Args, setup: &Setup, plans: &[Plan], results: &[Vec<Vec<Sample>>], idle: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### Augur against its stores used directly (same machine, same run)\n");
    section_header(&mut out, &args.report, idle);
    let _ = writeln!(
        out,
        "- Load: {} concurrent clients per run, {} (one TCP connection each to Augur, one \
         PostgreSQL connection each, one OS thread each for RocksDB), uniformly random keys over {} keys \
         (all present in every store), {} values, {} s per run, medians of {} rounds, the starting \
         variant rotating each round. Client and servers share the machine.",
        args.clients,
        if args.pipeline <= 1 {
            "one request at a time each; latency per request".to_string()
        } else {
            format!(
                "{} requests in flight each (RESP pipelining for Augur, pipelined statements for \
                 PostgreSQL, each upsert its own transaction; {} calls in a row for RocksDB); latency per batch",
                args.pipeline, args.pipeline
            )
        },
        args.keyspace,
        human_size(args.size),
        args.seconds,
        args.rounds
    );
    let _ = writeln!(
        out,
        "- Augur: one `augur serve` per durability mode on {}, `--cache-size {}`, defaults otherwise \
         (access log on, no prefetching); nothing dirty at the start of any run.",
        match args.augur_store {
            AugurStore::Rocksdb => "RocksDB",
            AugurStore::Postgres => "PostgreSQL",
        },
        args.cache_size
    );
    let _ = writeln!(
        out,
        "- PostgreSQL {} on loopback (fsync={}, synchronous_commit={}), table `key bytea PRIMARY KEY, value bytea`; \
         RocksDB through the `rocksdb` crate (0.25.0) in the benchmark process, with the adapter's options.",
        setup.pg.version, setup.pg.fsync, setup.pg.synchronous_commit,
    );
    for (plan, samples) in plans.iter().zip(results) {
        let title = match plan.compare {
            Compare::ReadThrough => "Read-through: Augur GET on cached keys against direct point reads",
            Compare::WriteBack => "Write-back: Augur SET against direct per-operation writes",
        };
        let _ = writeln!(out, "\n#### {title}\n");
        let _ = writeln!(out, "| variant | median ops/s | p50 us | p99 us | durability |\n|---|---:|---:|---:|---|");
        let med = |i: usize| {
            let s = &samples[i];
            (
                median(s.iter().map(|x| x.ops_per_s).collect()),
                median(s.iter().map(|x| x.p50_us).collect()),
                median(s.iter().map(|x| x.p99_us).collect()),
            )
        };
        for (i, v) in plan.variants.iter().enumerate() {
            let (ops, p50, p99) = med(i);
            let _ = writeln!(out, "| {} | {ops:.0} | {p50:.1} | {p99:.1} | {} |", v.label(), v.durability(&setup.pg));
        }
        let _ = writeln!(out, "\n| ratio | median ops/s ratio | per-round ratios |\n|---|---:|---|");
        let index = |v: Variant| plan.variants.iter().position(|&x| x == v).expect("ratio of a planned variant");
        for &(a, b) in &plan.ratios {
            let (ia, ib) = (index(a), index(b));
            let per_round: Vec<String> = samples[ia]
                .iter()
                .zip(&samples[ib])
                .map(|(x, y)| format!("{:.2}", x.ops_per_s / y.ops_per_s))
                .collect();
            let _ = writeln!(
                out,
                "| {} / {} | **{:.2}x** | {} |",
                a.label(),
                b.label(),
                med(ia).0 / med(ib).0,
                per_round.join(", ")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_stops_at_the_deadline_and_stays_in_the_key_space() {
        let args = parse(&["--keyspace", "10", "--pipeline", "4"]);
        let mut lp = Loop::new(Instant::now() + Duration::from_millis(20), 1, &args);
        let mut batches = 0;
        while let Some(t0) = lp.next() {
            assert!(lp.keys.len() == 4 && lp.keys.iter().all(|&k| k < 10));
            lp.done(t0);
            batches += 1;
        }
        let (hist, ops) = lp.finish();
        assert!(batches > 0 && hist.len() == batches && ops == 4 * batches);
        assert!(Loop::new(Instant::now(), 1, &args).next().is_none());
    }

    #[test]
    fn write_back_ratios_cover_every_mode_against_every_direct_write() {
        let plan = &plans_for(&[Compare::WriteBack])[0];
        assert_eq!(plan.variants.len(), 6);
        assert_eq!(plan.ratios.len(), 9);
        assert!(plan.ratios.iter().all(|(a, b)| plan.variants.contains(a) && plan.variants.contains(b)));
    }

    fn parse(flags: &[&str]) -> Args {
        use clap::Parser;
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        Cli::parse_from(std::iter::once("x").chain(flags.iter().copied())).args
    }

    fn plans_for(compare: &[Compare]) -> Vec<Plan> {
        let list: Vec<&str> = compare
            .iter()
            .map(|c| match c {
                Compare::ReadThrough => "read-through",
                Compare::WriteBack => "write-back",
            })
            .collect();
        plans(&parse(&["--compare", &list.join(",")]))
    }
}
