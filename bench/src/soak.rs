//! Memory under abuse: many concurrent clients mixing GET and SET over a keyspace
//! larger than the cache, plus slow readers that pipeline large replies and barely
//! read them, for minutes. Prints the server's resident memory (from /proc) every
//! few seconds and checks it stays bounded: the cache, the dirty bound and
//! per-connection buffers are the only things that may hold memory.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Options of `augur-bench soak`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Concurrent clients mixing GET and SET.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Clients that pipeline big GETs and read 4 KiB a second.
    #[arg(long, default_value_t = 20)]
    slow_readers: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 180)]
    seconds: u64,
    /// Distinct keys (values are `value_size` bytes).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    value_size: usize,
    /// Cache size given to augur serve.
    #[arg(long, default_value = "64MiB")]
    cache_size: String,
    /// The augur binary [default: next to this one].
    #[arg(long)]
    augur: Option<PathBuf>,
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one reply (simple string, error, integer or bulk) and discards it.
async fn read_reply(stream: &mut tokio::io::BufReader<TcpStream>) -> std::io::Result<()> {
    use tokio::io::AsyncBufReadExt;
    let mut line = Vec::new();
    stream.read_until(b'\n', &mut line).await?;
    if line.first() == Some(&b'$') {
        let len: i64 =
            std::str::from_utf8(&line[1..line.len().saturating_sub(2)]).ok().and_then(|s| s.parse().ok()).unwrap_or(-1);
        if len >= 0 {
            let mut body = vec![0u8; len as usize + 2];
            stream.read_exact(&mut body).await?;
        }
    } else if line.is_empty() {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

async fn mixed_client(port: u16, id: u64, keys: u64, value: Arc<Vec<u8>>, ops: Arc<AtomicU64>, stop: Instant) {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await else { return };
    let _ = stream.set_nodelay(true);
    let mut stream = tokio::io::BufReader::new(stream);
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while Instant::now() < stop {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = format!("soak:{}", x % keys);
        let req = if x.is_multiple_of(5) {
            command(&[b"SET", key.as_bytes(), &value])
        } else {
            command(&[b"GET", key.as_bytes()])
        };
        if stream.get_mut().write_all(&req).await.is_err() || read_reply(&mut stream).await.is_err() {
            return;
        }
        ops.fetch_add(1, Ordering::Relaxed);
    }
}

/// Pipelines 1,000 GETs of a 64 KiB value (64 MiB of replies) and reads 4 KiB a
/// second: the server must apply backpressure, not buffer the replies.
async fn slow_reader(port: u16, stop: Instant) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else { return };
    let get = command(&[b"GET", b"soak:big"]);
    let mut batch = Vec::new();
    for _ in 0..1000 {
        batch.extend_from_slice(&get);
    }
    let (mut rd, mut wr) = stream.split();
    let writer = async {
        let _ = wr.write_all(&batch).await;
    };
    let reader = async {
        let mut buf = [0u8; 4096];
        while Instant::now() < stop {
            if rd.read(&mut buf).await.unwrap_or(0) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    tokio::join!(writer, reader);
}

/// Runs the soak test and prints the RSS table.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let augur = crate::peers::augur_binary(args.augur.as_deref())?;
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new(&augur)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--cache-size", &args.cache_size])
        .arg("--wal-dir")
        .arg(dir.path().join("wal"))
        .arg("--store")
        .arg(format!("rocksdb:{}", dir.path().join("rocksdb").display()))
        .args(["--max-clients", &(args.clients + args.slow_readers + 10).to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", augur.display()))?;
    let server = Server(child);
    let pid = server.0.id();
    let ready = Instant::now() + Duration::from_secs(30);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        if Instant::now() > ready {
            bail!("augur did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(&command(&[b"SET", b"soak:big", &vec![b'b'; 64 * 1024]])).await?;
        let mut r = tokio::io::BufReader::new(s);
        read_reply(&mut r).await?;
    }
    let start_rss = rss_kib(pid).unwrap_or(0);
    println!(
        "soak: {} clients (GET 80% / SET 20%, {} keys of {} B, cache {}), {} slow readers, {} s; augur pid {pid}",
        args.clients, args.keys, args.value_size, args.cache_size, args.slow_readers, args.seconds
    );
    let stop = Instant::now() + Duration::from_secs(args.seconds);
    let ops = Arc::new(AtomicU64::new(0));
    let value = Arc::new(vec![b'v'; args.value_size]);
    let mut tasks = Vec::new();
    for id in 0..args.clients as u64 {
        tasks.push(tokio::spawn(mixed_client(port, id, args.keys, Arc::clone(&value), Arc::clone(&ops), stop)));
    }
    for _ in 0..args.slow_readers {
        tasks.push(tokio::spawn(slow_reader(port, stop)));
    }
    println!("\n| t (s) | ops/s | RSS (MiB) |\n|---|---|---|");
    let mut samples = Vec::new();
    let mut last_ops = 0;
    let started = Instant::now();
    while Instant::now() < stop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let total = ops.load(Ordering::Relaxed);
        let rss = rss_kib(pid).context("augur exited during the soak")?;
        samples.push(rss);
        println!("| {} | {} | {:.1} |", started.elapsed().as_secs(), (total - last_ops) / 5, rss as f64 / 1024.0);
        last_ops = total;
    }
    for t in tasks {
        let _ = t.await;
    }
    let peak = samples.iter().copied().max().unwrap_or(0);
    let half = samples.len() / 2;
    let first_half_peak = samples[..half.max(1)].iter().copied().max().unwrap_or(0);
    let second_half_peak = samples[half..].iter().copied().max().unwrap_or(0);
    println!(
        "\nRSS: start {:.1} MiB, peak {:.1} MiB; peak in the first half {:.1} MiB, in the second half {:.1} MiB; {} operations",
        start_rss as f64 / 1024.0,
        peak as f64 / 1024.0,
        first_half_peak as f64 / 1024.0,
        second_half_peak as f64 / 1024.0,
        ops.load(Ordering::Relaxed)
    );
    // Bounded: the second half of the run must not keep growing past the first by more
    // than a small margin (allocator fragmentation), and the server must be alive.
    let growth = second_half_peak as f64 / first_half_peak.max(1) as f64;
    println!("second-half / first-half peak RSS: {growth:.2}");
    if growth > 1.25 {
        bail!("RSS kept growing: {growth:.2}x between the halves of the run");
    }
    drop(server);
    Ok(())
}
