//! Abuse the server must survive: a client that never reads its replies, and a WAL
//! whose fsync fails.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::process::Augur;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[test]
fn a_client_that_never_reads_cannot_grow_server_memory() {
    const VALUE: usize = 256 * 1024;
    const GETS: usize = 2000; // 500 MiB of replies
    let dir = tempfile::tempdir().expect("tempdir");
    let augur = Augur::start(dir.path(), &["--cache-size", "64MiB"]);
    let pid = augur.child.id();
    let mut setup = TcpStream::connect(("127.0.0.1", augur.port)).expect("connect");
    setup.write_all(&resp(&[b"SET", b"big", &vec![b'v'; VALUE]])).expect("SET");
    let mut ok = [0u8; 5];
    setup.read_exact(&mut ok).expect("reply");
    assert_eq!(&ok, b"+OK\r\n");
    let before = rss_kib(pid);

    // The slow reader sends every request and reads nothing for a while.
    let mut slow = TcpStream::connect(("127.0.0.1", augur.port)).expect("connect");
    let get = resp(&[b"GET", b"big"]);
    let requests: Vec<u8> = get.iter().copied().cycle().take(get.len() * GETS).collect();
    let mut writer = slow.try_clone().expect("clone");
    let sender = std::thread::spawn(move || writer.write_all(&requests));
    std::thread::sleep(Duration::from_secs(2));
    let during = rss_kib(pid);
    assert!(
        during < before + 100 * 1024,
        "server RSS grew from {before} KiB to {during} KiB: replies to a non-reading client were buffered"
    );
    // Everyone else is still served.
    let mut other = TcpStream::connect(("127.0.0.1", augur.port)).expect("connect");
    other.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    other.write_all(b"PING\r\n").expect("PING");
    let mut pong = [0u8; 7];
    other.read_exact(&mut pong).expect("another client must be served while one client stalls");
    assert_eq!(&pong, b"+PONG\r\n");
    // When the slow client finally reads, every reply is there, intact.
    slow.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let header = format!("${VALUE}\r\n");
    let mut reply = vec![0u8; header.len() + VALUE + 2];
    for i in 0..GETS {
        slow.read_exact(&mut reply).unwrap_or_else(|e| panic!("reply {i}: {e}"));
        assert!(reply.starts_with(header.as_bytes()) && reply.ends_with(b"\r\n"), "reply {i} malformed");
    }
    sender.join().expect("sender").expect("all requests sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_stops_acknowledging_writes() {
    if !cfg!(feature = "failpoints") {
        assert!(std::env::var_os("AUGUR_REQUIRE_FAILPOINTS").is_none(), "needs --features failpoints");
        println!("SKIP a_failed_fsync_stops_acknowledging_writes: built without failpoints");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let augur = Augur::start_with_env(
        dir.path(),
        &["--durability", "always"],
        &[("FAILPOINTS", "wal::fsync_fails=return".to_string())],
    );
    let client = redis::Client::open(augur.url()).expect("client");
    let mut con = client.get_multiplexed_async_connection().await.expect("connect");
    for _ in 0..3 {
        let err =
            redis::cmd("SET").arg("k").arg("v").query_async::<()>(&mut con).await.expect_err("never acknowledged");
        let text = err.to_string();
        assert!(text.contains("MISCONF") || text.to_lowercase().contains("misconf"), "{text}");
        assert!(text.contains("fsync"), "{text}");
    }
    // Reads keep working; the log says why writes stopped.
    let v: Option<String> = redis::cmd("GET").arg("other").query_async(&mut con).await.expect("GET still served");
    assert_eq!(v, None);
    assert!(augur.log().contains("WAL write failed") || augur.log().contains("fsync"), "{}", augur.log());
}
