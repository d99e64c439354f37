//! Black-box tests of the RESP server: each test starts a real server on
//! 127.0.0.1:0 over a RocksDB store in a temporary directory and talks to it over
//! TCP, either byte for byte (to pin down exact wire replies, pipelining, malformed
//! input and connection handling) or through the `redis` crate (to prove a real
//! client library works against it, in RESP2 and RESP3).
//!
//! Replies are checked as exact bytes where Redis's wire format is fixed, and with a
//! small reply reader written here (independent of the server's own frame code) where
//! the content varies (INFO, HELLO's map, COMMAND).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use augur_engine::server::{run, ServerConfig, Shutdown};
use augur_engine::{Engine, EngineConfig, SyncPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Upper bound for any single wait; a test that hits it has failed.
const WAIT: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    shutdown: Shutdown,
    handle: Option<JoinHandle<std::io::Result<()>>>,
    engine: Engine,
    dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        Self::with(ServerConfig::default()).await
    }

    async fn with(config: ServerConfig) -> Server {
        Self::with_engine(config, |_| {}).await
    }

    async fn with_engine(config: ServerConfig, tune: impl FnOnce(&mut EngineConfig)) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = augur_adapters::RocksDbStore::open(dir.path().join("db")).expect("open rocksdb");
        let mut engine_config = EngineConfig::new(dir.path().join("wal"));
        tune(&mut engine_config);
        let engine = Engine::open(engine_config, Arc::new(store)).await.expect("open engine");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = Shutdown::new();
        let handle = tokio::spawn(run(listener, engine.clone(), config, shutdown.clone()));
        Server { addr, shutdown, handle: Some(handle), engine, dir }
    }

    async fn raw(&self) -> Raw {
        Raw { stream: TcpStream::connect(self.addr).await.expect("connect"), buf: Vec::new() }
    }

    fn url(&self, resp3: bool) -> String {
        let proto = if resp3 { "?protocol=resp3" } else { "" };
        format!("redis://{}/{proto}", self.addr)
    }

    /// Waits for `run` to return (after something triggered shutdown).
    async fn join(&mut self) -> std::io::Result<()> {
        let handle = self.handle.take().expect("joined twice");
        tokio::time::timeout(WAIT, handle).await.expect("server did not stop in time").expect("server task panicked")
    }

    async fn stop(mut self) {
        self.shutdown.trigger();
        self.join().await.expect("run failed");
        self.engine.shutdown().await.expect("engine shutdown");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failed test must not leave the accept loop running.
        self.shutdown.trigger();
    }
}

/// A RESP request: an array of bulk strings.
fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn bulk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// A reply as this test's own reader understands it.
#[derive(Debug, Clone, PartialEq)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    Array(Vec<Reply>),
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    Verbatim(String),
}

impl Reply {
    fn text(&self) -> String {
        match self {
            Reply::Simple(s) | Reply::Error(s) | Reply::Verbatim(s) => s.clone(),
            Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("not text: {other:?}"),
        }
    }

    fn items(&self) -> &[Reply] {
        match self {
            Reply::Array(items) | Reply::Set(items) => items,
            other => panic!("not an array: {other:?}"),
        }
    }

    /// Key/value pairs of a RESP3 map or a RESP2 flat array.
    fn pairs(&self) -> Vec<(String, Reply)> {
        match self {
            Reply::Map(pairs) => pairs.iter().map(|(k, v)| (k.text(), v.clone())).collect(),
            Reply::Array(items) => {
                assert!(items.len() % 2 == 0, "odd flat map {items:?}");
                items.chunks(2).map(|kv| (kv[0].text(), kv[1].clone())).collect()
            }
            other => panic!("not a map: {other:?}"),
        }
    }

    fn field(&self, name: &str) -> Reply {
        self.pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no field {name} in {self:?}"))
    }
}

/// Parses one reply from the front of `buf`; `None` if incomplete. Panics on bytes
/// that are not RESP: in a test that is a failure of the server.
fn parse_reply(buf: &[u8]) -> Option<(Reply, usize)> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&buf[1..line_end]).expect("utf-8 header");
    let mut used = line_end + 2;
    let int = || line.parse::<i64>().unwrap_or_else(|_| panic!("bad number {line:?}"));
    let blob = |used: &mut usize, len: usize| -> Option<Vec<u8>> {
        let data = buf.get(*used..*used + len)?.to_vec();
        assert_eq!(buf.get(*used + len..*used + len + 2)?, b"\r\n", "bulk not followed by CRLF");
        *used += len + 2;
        Some(data)
    };
    let items = |used: &mut usize, n: usize| -> Option<Vec<Reply>> {
        let mut out = Vec::new();
        for _ in 0..n {
            let (item, len) = parse_reply(&buf[*used..])?;
            *used += len;
            out.push(item);
        }
        Some(out)
    };
    let reply = match buf[0] {
        b'+' => Reply::Simple(line.to_string()),
        b'-' => Reply::Error(line.to_string()),
        b':' => Reply::Int(int()),
        b'_' => Reply::Null,
        b'$' if int() < 0 => Reply::Null,
        b'$' => Reply::Bulk(blob(&mut used, int() as usize)?),
        b'=' => {
            let data = blob(&mut used, int() as usize)?;
            assert_eq!(&data[..4], b"txt:");
            Reply::Verbatim(String::from_utf8(data[4..].to_vec()).expect("utf-8 verbatim"))
        }
        b'*' if int() < 0 => Reply::Null,
        b'*' => Reply::Array(items(&mut used, int() as usize)?),
        b'~' => Reply::Set(items(&mut used, int() as usize)?),
        b'%' => {
            let flat = items(&mut used, 2 * int() as usize)?;
            Reply::Map(flat.chunks(2).map(|kv| (kv[0].clone(), kv[1].clone())).collect())
        }
        other => panic!("unexpected reply type {:?} in {:?}", other as char, String::from_utf8_lossy(buf)),
    };
    Some((reply, used))
}

/// A raw TCP client.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    async fn fill(&mut self) -> usize {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
            .await
            .expect("timed out waiting for the server")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// Asserts the next bytes from the server are exactly `want`.
    async fn expect(&mut self, want: &[u8]) {
        while self.buf.len() < want.len() {
            if self.fill().await == 0 {
                break;
            }
        }
        let got: Vec<u8> = self.buf.drain(..want.len().min(self.buf.len())).collect();
        if got != want {
            let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
            let from = at.saturating_sub(40);
            panic!(
                "reply differs at byte {at} of {}:\n  got:  {:?}\n  want: {:?}",
                want.len(),
                String::from_utf8_lossy(&got[from..(at + 40).min(got.len())]),
                String::from_utf8_lossy(&want[from..(at + 40).min(want.len())]),
            );
        }
    }

    async fn call(&mut self, args: &[&[u8]], want: &[u8]) {
        self.send(&resp(args)).await;
        self.expect(want).await;
    }

    async fn reply(&mut self) -> Reply {
        loop {
            if let Some((reply, used)) = parse_reply(&self.buf) {
                self.buf.drain(..used);
                return reply;
            }
            assert!(self.fill().await > 0, "connection closed mid-reply: {:?}", String::from_utf8_lossy(&self.buf));
        }
    }

    async fn query(&mut self, args: &[&[u8]]) -> Reply {
        self.send(&resp(args)).await;
        self.reply().await
    }

    /// Asserts the server closes the connection without sending anything more.
    async fn expect_closed(&mut self) {
        while self.fill().await > 0 {}
        assert!(self.buf.is_empty(), "unexpected bytes before close: {:?}", String::from_utf8_lossy(&self.buf));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_inline_and_resp() {
    let server = Server::start().await;
    let mut c = server.raw().await;
    c.send(b"PING\r\n").await;
    c.expect(b"+PONG\r\n").await;
    c.send(b"ping\n").await;
    c.expect(b"+PONG\r\n").await;
    c.call(&[b"PING"], b"+PONG\r\n").await;
    c.call(&[b"PiNg", b"hello"], b"$5\r\nhello\r\n").await;
    c.send(b"ECHO \"hello world\"\r\n").await;
    c.expect(b"$11\r\nhello world\r\n").await;
    // Blank inline lines and empty arrays are skipped without a reply, as in Redis.
    c.send(b"\r\n*0\r\nPING\r\n").await;
    c.expect(b"+PONG\r\n").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_commands_quote_like_redis() {
    let server = Server::start().await;
    let mut c = server.raw().await;
    c.send(b"SET \"a key\" 'it\\'s'\r\nGET \"a key\"\r\nSET k \"x\\x41\\n\"\r\nGET k\r\n").await;
    c.expect(b"+OK\r\n$4\r\nit's\r\n+OK\r\n$3\r\nxA\n\r\n").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_pipelined_commands_in_one_write_all_answered_in_order() {
    let server = Server::start().await;
    let mut c = server.raw().await;
    let mut request = Vec::new();
    let mut want = Vec::new();
    for i in 0..5_000 {
        let key = format!("key:{i}");
        let value = format!("value:{i}:{}", "x".repeat(i % 50));
        request.extend(resp(&[b"SET", key.as_bytes(), value.as_bytes()]));
        want.extend_from_slice(b"+OK\r\n");
        // Read back a key written earlier in the same pipeline (or one never written).
        let probe = i * 7 % 6_000;
        request.extend(resp(&[b"GET", format!("key:{probe}").as_bytes()]));
        if probe <= i {
            want.extend(bulk(format!("value:{probe}:{}", "x".repeat(probe % 50)).as_bytes()));
        } else {
            want.extend_from_slice(b"$-1\r\n");
        }
    }
    c.send(&request).await;
    c.expect(&want).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_keys_and_values_pass_through_untouched() {
    let server = Server::start().await;
    let mut c = server.raw().await;
    let key: &[u8] = b"k\0\xff\xfe\r\n*1";
    let value: &[u8] = b"\0\x01$-1\r\n\x80\xc3(";
    c.call(&[b"SET", key, value], b"+OK\r\n").await;
    c.call(&[b"GET", key], &bulk(value)).await;
    c.call(&[b"EXISTS", key, b"k"], b":1\r\n").await;
    c.call(&[b"GET", b"k"], b"$-1\r\n").await;
    let empty: &[u8] = b"";
    c.call(&[b"SET", empty, empty], b"+OK\r\n").await;
    c.call(&[b"GET", empty], b"$0\r\n\r\n").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_a_protocol_error_then_the_connection_closes() {
    let server = Server::start().await;
    let cases: &[(&[u8], &[u8])] = &[
        // Commands before the bad one in the same read are still answered.
        (b"SET a 1\r\n*2\r\n$3\r\nGET\r\n:5\r\n", b"+OK\r\n-ERR Protocol error: expected '$', got ':'\r\n"),
        (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*1\r\n$-3\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"*1\r\n$3\r\nPINGPONG\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"SET \"a b\r\n", b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    ];
    for (input, want) in cases {
        let mut c = server.raw().await;
        c.send(input).await;
        c.expect(want).await;
        c.expect_closed().await;
    }
    // A line with no newline in 64 KiB is not a command being typed slowly.
    let mut c = server.raw().await;
    c.send(&vec![b'a'; 70 * 1024]).await;
    c.expect(b"-ERR Protocol error: too big inline request\r\n").await;
    c.expect_closed().await;
    // The server is unaffected.
    server.raw().await.call(&[b"GET", b"a"], b"$1\r\n1\r\n").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_bulk_and_too_many_arguments_are_refused_before_buffering() {
    let server = Server::with(ServerConfig { max_bulk_len: 1024, max_args: 8, ..ServerConfig::default() }).await;
    let mut c = server.raw().await;
    // Only the header is sent: the refusal must not wait for the claimed bytes.
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1025\r\n").await;
    c.expect(b"-ERR Protocol error: invalid bulk length\r\n").await;
    c.expect_closed().await;

    let mut c = server.raw().await;
    c.send(b"*9\r\n").await;
    c.expect(b"-ERR Protocol error: invalid multibulk length\r\n").await;
    c.expect_closed().await;

    let mut c = server.raw().await;
    let at_limit = vec![b'v'; 1024];
    c.call(&[b"SET", b"k", &at_limit], b"+OK\r\n").await;
    c.call(&[b"MGET", b"1", b"2", b"3", b"4", b"5", b"6", b"k"], &{
        let mut want = b"*7\r\n".to_vec();
        want.extend(b"$-1\r\n".repeat(6));
        want.extend(bulk(&at_limit));
        want
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_commands_and_wrong_arity_use_redis_texts() {
    let server = Server::start().await;
    let mut c = server.raw().await;
    c.call(&[b"FOO", b"a", b"b"], b"-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n").await;
    c.call(&[b"foo"], b"-ERR unknown command 'foo', with args beginning with: \r\n").await;
    c.call(&[b"GET"], b"-ERR wrong number of arguments for 'get' command\r\n").await;
    c.call(&[b"get", b"a", b"b"], b"-ERR wrong number of arguments for 'get' command\r\n").await;
    c.call(&[b"MSET", b"a"], b"-ERR wrong number of arguments for 'mset' command\r\n").await;
    c.call(&[b"MSET", b"a", b"1", b"b"], b"-ERR wrong number of arguments for 'mset' command\r\n").await;
    c.call(&[b"CLIENT", b"SETNAME"], b"-ERR wrong number of arguments for 'client|setname' command\r\n").await;
    c.call(&[b"CLIENT", b"NOPE"], b"-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.\r\n").await;
    // Errors do not end the connection.
    c.call(&[b"PING"], b"+PONG\r\n").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_nx_xx_get_semantics() {
    let server = Server::start().await;
    let mut c = server.raw().await;
    c.call(&[b"SET", b"k", b"v1", b"XX"], b"$-1\r\n").await;
    c.call(&[b"GET", b"k"], b"$-1\r\n").await;
    c.call(&[b"SET", b"k", b"v1", b"NX"], b"+OK\r\n").await;
    c.call(&[b"SET", b"k", b"v2", b"nx"], b"$-1\r\n").await;
    c.call(&[b"GET", b"k"], b"$2\r\nv1\r\n").await;
    c.call(&[b"SET", b"k", b"v3", b"XX"], b"+OK\r\n").await;
    c.call(&[b"SET", b"k", b"v4", b"GET"], b"$2\r\nv3\r\n").await;
    c.call(&[b"SET", b"k", b"v5", b"NX", b"GET"], b"$2\r\nv4\r\n").await;
    c.call(&[b"GET", b"k"], b"$2\r\nv4\r\n").await;
    c.call(&[b"SET", b"new", b"n1", b"GET"], b"$-1\r\n").await;
    c.call(&[b"GET", b"new"], b"$2\r\nn1\r\n").await;
    c.call(&[b"SET", b"k", b"v", b"NX", b"XX"], b"-ERR syntax error\r\n").await;
    c.call(&[b"SET", b"k", b"v", b"BOGUS"], b"-ERR syntax error\r\n").await;
    for ttl in [&b"EX"[..], b"px", b"EXAT", b"PXAT", b"KEEPTTL"] {
        c.call(
            &[b"SET", b"k", b"v", ttl, b"10"],
            b"-ERR EX/PX are not supported: Augur does not expire keys (see docs)\r\n",
        )
        .await;
    }
    c.call(&[b"GET", b"k"], b"$2\r\nv4\r\n").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mget_del_exists_and_dbsize() {
    let server = Server::start().await;
    let mut c = server.raw().await;
    c.call(&[b"MSET", b"a", b"1", b"b", b"2", b"c", b"3"], b"+OK\r\n").await;
    c.call(&[b"MGET", b"x", b"c", b"a", b"y", b"b"], b"*5\r\n$-1\r\n$1\r\n3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n").await;
    c.call(&[b"DBSIZE"], b":3\r\n").await;
    c.call(&[b"EXISTS", b"a", b"a", b"x", b"b"], b":3\r\n").await;
    c.call(&[b"DEL", b"a", b"x"], b":1\r\n").await;
    c.call(&[b"UNLINK", b"b", b"c", b"a"], b":2\r\n").await;
    c.call(&[b"EXISTS", b"a", b"b", b"c"], b":0\r\n").await;
    c.call(&[b"MGET", b"a", b"b"], b"*2\r\n$-1\r\n$-1\r\n").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_3_switches_null_and_map_encoding() {
    let server = Server::start().await;
    let mut c = server.raw().await;
    // One pipeline: each reply is encoded in the protocol in force when it ran.
    c.send(&[resp(&[b"GET", b"nokey"]), resp(&[b"HELLO", b"3"]), resp(&[b"GET", b"nokey"])].concat()).await;
    c.expect(b"$-1\r\n").await;
    let hello = c.reply().await;
    assert!(matches!(hello, Reply::Map(_)), "HELLO 3 must reply with a RESP3 map: {hello:?}");
    assert_eq!(hello.field("proto"), Reply::Int(3));
    assert_eq!(hello.field("server").text(), "redis");
    assert_eq!(hello.field("version").text(), "7.2.0");
    assert_eq!(hello.field("mode").text(), "standalone");
    assert_eq!(hello.field("role").text(), "master");
    assert_eq!(hello.field("modules"), Reply::Array(vec![]));
    let Reply::Int(id) = hello.field("id") else { panic!("id") };
    c.expect(b"_\r\n").await;
    c.call(&[b"MGET", b"nokey", b"nokey"], b"*2\r\n_\r\n_\r\n").await;
    c.call(&[b"CLIENT", b"ID"], format!(":{id}\r\n").as_bytes()).await;
    c.call(&[b"HELLO", b"4"], b"-NOPROTO unsupported protocol version\r\n").await;
    c.call(&[b"HELLO", b"x"], b"-ERR Protocol version is not an integer or out of range\r\n").await;
    let hello2 = c.query(&[b"HELLO", b"2"]).await;
    assert!(matches!(&hello2, Reply::Array(items) if items.len() == 14), "{hello2:?}");
    assert_eq!(hello2.field("proto"), Reply::Int(2));
    c.call(&[b"GET", b"nokey"], b"$-1\r\n").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirepass_gates_every_command_until_auth() {
    let server = Server::with(ServerConfig { requirepass: Some("s3cret".into()), ..ServerConfig::default() }).await;
    let mut c = server.raw().await;
    c.call(&[b"PING"], b"-NOAUTH Authentication required.\r\n").await;
    c.call(&[b"SET", b"k", b"v"], b"-NOAUTH Authentication required.\r\n").await;
    c.call(&[b"AUTH", b"wrong"], b"-WRONGPASS invalid username-password pair or user is disabled.\r\n").await;
    c.call(&[b"AUTH", b"someone", b"s3cret"], b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
        .await;
    let hello = c.query(&[b"HELLO", b"3"]).await;
    assert!(matches!(&hello, Reply::Error(e) if e.starts_with("NOAUTH HELLO must be called")), "{hello:?}");
    c.call(&[b"AUTH", b"s3cret"], b"+OK\r\n").await;
    c.call(&[b"PING"], b"+PONG\r\n").await;
    c.call(&[b"SET", b"k", b"v"], b"+OK\r\n").await;
    c.call(&[b"AUTH", b"default", b"s3cret"], b"+OK\r\n").await;

    // HELLO can authenticate and switch protocol in one round trip.
    let mut c = server.raw().await;
    let hello = c.query(&[b"HELLO", b"3", b"AUTH", b"default", b"wrong"]).await;
    assert_eq!(hello, Reply::Error("WRONGPASS invalid username-password pair or user is disabled.".into()));
    c.call(&[b"GET", b"k"], b"-NOAUTH Authentication required.\r\n").await;
    let hello = c.query(&[b"HELLO", b"3", b"AUTH", b"default", b"s3cret", b"SETNAME", b"me"]).await;
    assert_eq!(hello.field("proto"), Reply::Int(3));
    c.call(&[b"GET", b"k"], b"$1\r\nv\r\n").await;
    c.call(&[b"CLIENT", b"GETNAME"], b"$2\r\nme\r\n").await;

    // Before AUTH only small commands are read (Redis's limits), so nobody without
    // the password can make the server buffer much; AUTH lifts that for the
    // commands pipelined right behind it.
    let mut c = server.raw().await;
    c.send(b"*11\r\n").await;
    c.expect(b"-ERR Protocol error: unauthenticated multibulk length\r\n").await;
    c.expect_closed().await;
    let mut c = server.raw().await;
    c.send(b"*2\r\n$3\r\nGET\r\n$16385\r\n").await;
    c.expect(b"-ERR Protocol error: unauthenticated bulk length\r\n").await;
    c.expect_closed().await;
    let mut c = server.raw().await;
    let big = vec![b'b'; 100_000];
    c.send(&[resp(&[b"AUTH", b"s3cret"]), resp(&[b"SET", b"big", &big])].concat()).await;
    c.expect(b"+OK\r\n+OK\r\n").await;

    // QUIT needs no authentication.
    let mut c = server.raw().await;
    c.call(&[b"QUIT"], b"+OK\r\n").await;
    c.expect_closed().await;

    // The password never comes back from CONFIG GET.
    let mut c = server.raw().await;
    c.call(&[b"AUTH", b"s3cret"], b"+OK\r\n").await;
    let config = c.query(&[b"CONFIG", b"GET", b"requirepass"]).await;
    assert_eq!(config.field("requirepass").text(), "***");

    // Real clients authenticate through the URL, in both protocols.
    for resp3 in [false, true] {
        let url = server.url(resp3).replace("redis://", "redis://:s3cret@");
        let client = redis::Client::open(url).expect("client");
        let mut con = client.get_multiplexed_async_connection().await.expect("authenticated connection");
        let value: Option<String> = redis::cmd("GET").arg("k").query_async(&mut con).await.expect("GET");
        assert_eq!(value.as_deref(), Some("v"));
    }
    let client = redis::Client::open(server.url(false)).expect("client");
    let mut con = client.get_multiplexed_async_connection().await.expect("connection");
    let refused: redis::RedisResult<Option<String>> = redis::cmd("GET").arg("k").query_async(&mut con).await;
    assert!(refused.is_err(), "unauthenticated GET must fail: {refused:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_without_a_configured_password_says_so() {
    let server = Server::start().await;
    let mut c = server.raw().await;
    c.call(
        &[b"AUTH", b"pw"],
        b"-ERR AUTH <password> called without any password configured for the default user. \
          Are you sure your configuration is correct?\r\n",
    )
    .await;
    c.call(&[b"AUTH", b"default", b"anything"], b"+OK\r\n").await;
    c.call(&[b"AUTH", b"a", b"b", b"c"], b"-ERR syntax error\r\n").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_beyond_max_clients_are_turned_away() {
    let server = Server::with(ServerConfig { max_clients: 2, ..ServerConfig::default() }).await;
    let mut first = server.raw().await;
    first.call(&[b"PING"], b"+PONG\r\n").await;
    let mut second = server.raw().await;
    second.call(&[b"PING"], b"+PONG\r\n").await;
    let mut third = server.raw().await;
    third.expect(b"-ERR max number of clients reached\r\n").await;
    third.expect_closed().await;
    second.call(&[b"PING"], b"+PONG\r\n").await;

    // Once a client leaves, its slot is free again.
    drop(first);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut next = server.raw().await;
        next.send(&resp(&[b"PING"])).await;
        match next.reply().await {
            Reply::Simple(s) if s == "PONG" => break,
            Reply::Error(e) if e == "ERR max number of clients reached" => {
                assert!(tokio::time::Instant::now() < deadline, "slot never freed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let info = second.query(&[b"INFO", b"stats"]).await.text();
    assert!(info.contains("rejected_connections:"), "{info}");
    assert!(!info.contains("rejected_connections:0\r\n"), "{info}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quit_replies_ok_and_closes_discarding_the_rest_of_the_pipeline() {
    let server = Server::start().await;
    let mut c = server.raw().await;
    c.send(&[resp(&[b"SET", b"q", b"1"]), resp(&[b"QUIT"]), resp(&[b"SET", b"q", b"2"])].concat()).await;
    c.expect(b"+OK\r\n+OK\r\n").await;
    c.expect_closed().await;
    server.raw().await.call(&[b"GET", b"q"], b"$1\r\n1\r\n").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_client_and_command_introspection() {
    let server = Server::start().await;
    let mut c = server.raw().await;
    c.call(&[b"SELECT", b"0"], b"+OK\r\n").await;
    c.call(&[b"SELECT", b"1"], b"-ERR DB index is out of range\r\n").await;
    c.call(&[b"SELECT", b"x"], b"-ERR value is not an integer or out of range\r\n").await;
    c.call(&[b"CLIENT", b"GETNAME"], b"$-1\r\n").await;
    c.call(&[b"CLIENT", b"SETNAME", b"worker-1"], b"+OK\r\n").await;
    c.call(&[b"CLIENT", b"GETNAME"], b"$8\r\nworker-1\r\n").await;
    c.call(
        &[b"CLIENT", b"SETNAME", b"has space"],
        b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
    )
    .await;
    c.call(&[b"CLIENT", b"SETINFO", b"LIB-NAME", b"mylib"], b"+OK\r\n").await;
    c.call(&[b"CLIENT", b"SETINFO", b"lib-ver", b"1.2"], b"+OK\r\n").await;
    let info = c.query(&[b"CLIENT", b"INFO"]).await.text();
    assert!(info.starts_with("id="), "{info}");
    for part in [" name=worker-1 ", " lib-name=mylib ", " lib-ver=1.2", " resp=2 "] {
        assert!(info.contains(part), "{part} missing from {info}");
    }
    assert!(matches!(c.query(&[b"CLIENT", b"ID"]).await, Reply::Int(id) if id > 0));

    let all = c.query(&[b"COMMAND"]).await;
    let Reply::Int(count) = c.query(&[b"COMMAND", b"COUNT"]).await else { panic!("COUNT") };
    assert_eq!(all.items().len() as i64, count);
    let names: Vec<String> = all.items().iter().map(|e| e.items()[0].text()).collect();
    for name in ["get", "set", "mget", "mset", "del", "unlink", "exists", "ping", "hello", "info"] {
        assert!(names.iter().any(|n| n == name), "{name} missing from COMMAND");
    }
    let info = c.query(&[b"COMMAND", b"INFO", b"get", b"nosuch", b"MSET"]).await;
    let entries = info.items();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].items()[0].text(), "get");
    assert_eq!(entries[0].items()[1], Reply::Int(2));
    assert_eq!(entries[1], Reply::Null);
    let mset = entries[2].items();
    assert_eq!(mset[0].text(), "mset");
    assert_eq!(
        [&mset[1], &mset[3], &mset[4], &mset[5]],
        [&Reply::Int(-3), &Reply::Int(1), &Reply::Int(-1), &Reply::Int(2)],
        "arity, first key, last key, step"
    );
    assert!(mset[2].items().contains(&Reply::Simple("write".into())));
    assert!(matches!(c.query(&[b"COMMAND", b"DOCS"]).await, Reply::Array(_)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_reports_redis_fields_and_engine_counters() {
    let server = Server::start().await;
    let mut c = server.raw().await;
    c.call(&[b"SET", b"k", b"v"], b"+OK\r\n").await;
    c.call(&[b"GET", b"k"], b"$1\r\nv\r\n").await;
    let info = c.query(&[b"INFO"]).await.text();
    for needle in [
        "# Server\r\nredis_version:7.2.0\r\n",
        &format!("tcp_port:{}\r\n", server.addr.port()),
        &format!("process_id:{}\r\n", std::process::id()),
        "augur_version:",
        "uptime_in_seconds:",
        "\r\n\r\n# Clients\r\nconnected_clients:1\r\n",
        "# Memory\r\nused_memory:",
        "maxmemory:268435456\r\n",
        "# Persistence\r\n",
        "aof_enabled:1\r\n",
        "appendfsync:everysec\r\n",
        "wal_last_seq:",
        "dirty_keys:",
        "store_watermark:",
        "# Stats\r\ntotal_connections_received:1\r\n",
        "total_commands_processed:",
        "keyspace_hits:",
        "keyspace_misses:",
        "prefetch_hits:",
        "# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n",
    ] {
        assert!(info.contains(needle), "{needle:?} missing from INFO:\n{info}");
    }
    assert!(info.ends_with("\r\n") && !info.ends_with("\r\n\r\n"));
    let hits: u64 = info_field(&info, "keyspace_hits").parse().expect("hits");
    assert!(hits >= 1, "the GET of a just-written key is a hit: {info}");

    let keyspace = c.query(&[b"INFO", b"KEYSPACE"]).await.text();
    assert_eq!(keyspace, "# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n");
    let two = c.query(&[b"INFO", b"server", b"clients"]).await.text();
    assert!(two.starts_with("# Server\r\n") && two.contains("\r\n\r\n# Clients\r\n") && !two.contains("# Stats"));

    // RESP3 gets INFO as a verbatim string, as from Redis 7.
    c.query(&[b"HELLO", b"3"]).await;
    assert!(matches!(c.query(&[b"INFO", b"clients"]).await, Reply::Verbatim(t) if t.starts_with("# Clients\r\n")));
    server.stop().await;
}

fn info_field(info: &str, name: &str) -> String {
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {info}"))
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_get_and_set() {
    let server = Server::start().await;
    let mut c = server.raw().await;
    c.call(&[b"CONFIG", b"GET", b"maxmemory"], b"*2\r\n$9\r\nmaxmemory\r\n$9\r\n268435456\r\n").await;
    let all = c.query(&[b"CONFIG", b"GET", b"*"]).await;
    assert_eq!(all.field("save").text(), "");
    assert_eq!(all.field("appendonly").text(), "yes");
    assert_eq!(all.field("appendfsync").text(), "everysec");
    assert_eq!(all.field("databases").text(), "1");
    assert_eq!(all.field("requirepass").text(), "");
    assert_eq!(all.field("maxclients").text(), "10000");
    assert_eq!(all.field("proto-max-bulk-len").text(), (64 * 1024 * 1024).to_string());
    assert_eq!(all.field("prefetch-target-accuracy").text(), "", "no learned prefetcher, no target");
    let some = c.query(&[b"CONFIG", b"GET", b"APPEND*", b"appendonly", b"max?lients"]).await;
    let names: Vec<String> = some.pairs().into_iter().map(|(k, _)| k).collect();
    assert_eq!(names, ["appendfsync", "appendonly", "maxclients"]);

    c.call(&[b"CONFIG", b"SET", b"maxclients", b"5", b"timeout", b"30"], b"+OK\r\n").await;
    c.call(&[b"CONFIG", b"GET", b"maxclients"], b"*2\r\n$10\r\nmaxclients\r\n$1\r\n5\r\n").await;
    c.call(&[b"CONFIG", b"GET", b"timeout"], b"*2\r\n$7\r\ntimeout\r\n$2\r\n30\r\n").await;
    c.call(
        &[b"CONFIG", b"SET", b"nosuch", b"1"],
        b"-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n",
    )
    .await;
    c.call(
        &[b"CONFIG", b"SET", b"appendonly", b"no"],
        b"-ERR CONFIG SET failed (possibly related to argument 'appendonly') - can't set immutable config\r\n",
    )
    .await;
    // A bad assignment in the list changes nothing.
    c.call(
        &[b"CONFIG", b"SET", b"maxclients", b"7", b"timeout", b"x"],
        b"-ERR CONFIG SET failed (possibly related to argument 'timeout') - argument couldn't be parsed into an integer\r\n",
    )
    .await;
    c.call(&[b"CONFIG", b"GET", b"maxclients"], b"*2\r\n$10\r\nmaxclients\r\n$1\r\n5\r\n").await;
    c.call(&[b"CONFIG", b"SET", b"timeout"], b"-ERR wrong number of arguments for 'config|set' command\r\n").await;
    c.call(&[b"CONFIG", b"SET", b"timeout", b"0"], b"+OK\r\n").await;
    // Refused without the learned prefetcher, and with it the whole list.
    c.call(
        &[b"CONFIG", b"SET", b"timeout", b"5", b"prefetch-target-accuracy", b"0.5"],
        b"-ERR CONFIG SET failed (possibly related to argument 'prefetch-target-accuracy') - only the learned prefetcher has an accuracy target (start with --prefetch ml)\r\n",
    )
    .await;
    c.call(&[b"CONFIG", b"GET", b"timeout"], b"*2\r\n$7\r\ntimeout\r\n$1\r\n0\r\n").await;

    c.query(&[b"HELLO", b"3"]).await;
    c.call(&[b"CONFIG", b"GET", b"save"], b"%1\r\n$4\r\nsave\r\n$0\r\n\r\n").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_over_the_output_limit_disconnects_the_client() {
    let server = Server::with(ServerConfig { max_output_buffer: 4096, ..ServerConfig::default() }).await;
    let mut c = server.raw().await;
    let big = vec![b'x'; 10_000];
    c.call(&[b"SET", b"big", &big], b"+OK\r\n").await;
    c.call(&[b"SET", b"small", b"s"], b"+OK\r\n").await;
    c.send(&resp(&[b"GET", b"big"])).await;
    c.expect_closed().await;
    // Many small replies in one pipeline are fine: the limit is on what is pending.
    let mut c = server.raw().await;
    let pipeline = resp(&[b"GET", b"small"]).repeat(2_000);
    c.send(&pipeline).await;
    c.expect(&b"$1\r\ns\r\n".repeat(2_000)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_are_closed_after_the_timeout() {
    let server =
        Server::with(ServerConfig { idle_timeout: Some(Duration::from_millis(300)), ..ServerConfig::default() }).await;
    let mut c = server.raw().await;
    c.call(&[b"PING"], b"+PONG\r\n").await;
    let started = tokio::time::Instant::now();
    c.expect_closed().await;
    assert!(started.elapsed() >= Duration::from_millis(250), "closed too early");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_command_stops_the_server_and_closes_every_client() {
    let mut server = Server::start().await;
    let mut idle = server.raw().await;
    idle.call(&[b"PING"], b"+PONG\r\n").await;
    let mut c = server.raw().await;
    c.call(&[b"SET", b"kept", b"1"], b"+OK\r\n").await;
    c.send(&resp(&[b"SHUTDOWN", b"NOSAVE"])).await;
    c.expect_closed().await;
    idle.expect_closed().await;
    server.join().await.expect("run returns Ok");
    assert!(server.shutdown.is_triggered());
    assert_eq!(server.engine.get(&"kept".into()).await.expect("get"), Some("1".into()));
    server.engine.shutdown().await.expect("engine shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggering_shutdown_lets_a_running_pipeline_finish_its_replies() {
    let mut server = Server::start().await;
    let mut c = server.raw().await;
    let n = 2_000;
    let mut pipeline = Vec::new();
    for i in 0..n {
        pipeline.extend(resp(&[b"SET", format!("s{i}").as_bytes(), b"v"]));
    }
    c.send(&pipeline).await;
    // Every reply the server sends is complete, and it stops between batches.
    tokio::time::sleep(Duration::from_millis(5)).await;
    server.shutdown.trigger();
    while c.fill().await > 0 {}
    assert!(c.buf.len() % 5 == 0 && c.buf.chunks(5).all(|r| r == b"+OK\r\n"), "partial or wrong replies");
    let acknowledged = c.buf.len() / 5;
    server.join().await.expect("run");
    for i in 0..acknowledged {
        let value = server.engine.get(&format!("s{i}").into()).await.expect("get");
        assert_eq!(value.as_deref(), Some(&b"v"[..]), "acknowledged s{i} missing");
    }
    server.engine.shutdown().await.expect("engine shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_are_durable_under_appendfsync_always() {
    let server = Server::with_engine(ServerConfig::default(), |c| c.sync = SyncPolicy::Always).await;
    let mut c = server.raw().await;
    // Several rounds: a server that replied before the fsync would be caught on most.
    for round in 0..5 {
        let mut pipeline = Vec::new();
        for i in 0..200 {
            pipeline.extend(resp(&[b"SET", format!("d{round}:{i}").as_bytes(), b"v"]));
        }
        c.send(&pipeline).await;
        c.expect(&b"+OK\r\n".repeat(200)).await;
        let stats = server.engine.stats();
        assert!(
            stats.wal_durable_seq >= stats.wal_last_seq && stats.wal_last_seq > 0,
            "replies were sent before the WAL was durable: {stats:?}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_the_wal_failed_to_keep_are_never_acknowledged() {
    // A one-byte segment size makes the WAL start a new segment file after every
    // write; with its directory gone, that fails and the log refuses all writes.
    let mut server = Server::with_engine(ServerConfig::default(), |c| c.wal_segment_bytes = 1).await;
    let mut c = server.raw().await;
    c.call(&[b"SET", b"before", b"1"], b"+OK\r\n").await;
    // The log may be creating its next segment while the directory goes (a busy
    // machine widens that window): removal then finds it not empty; try again.
    let wal = server.dir.path().join("wal");
    for attempt in 1.. {
        match std::fs::remove_dir_all(&wal) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty && attempt < 100 => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await
            }
            Err(e) => panic!("remove the WAL directory: {e}"),
        }
    }
    let mut pipeline = Vec::new();
    for i in 0..100 {
        pipeline.extend(resp(&[b"SET", format!("w{i}").as_bytes(), b"v"]));
    }
    c.send(&pipeline).await;
    let mut replies = Vec::new();
    for _ in 0..100 {
        replies.push(c.reply().await);
    }
    // Writes the log took before it failed may be acknowledged; from the first
    // refused one on, every reply is the WAL's error, never OK.
    let acknowledged = replies.iter().take_while(|r| **r == Reply::Simple("OK".into())).count();
    for reply in &replies[acknowledged..] {
        assert!(
            matches!(reply, Reply::Error(e) if e.starts_with("MISCONF write-ahead log failed")),
            "{reply:?} after {acknowledged} OKs"
        );
    }
    let after = c.query(&[b"SET", b"after", b"1"]).await;
    assert!(matches!(&after, Reply::Error(e) if e.starts_with("MISCONF ")), "{after:?}");
    let info = c.query(&[b"INFO", b"persistence"]).await.text();
    assert!(info.contains("aof_last_write_status:err\r\n"), "{info}");
    // Reads are unaffected.
    c.call(&[b"GET", b"before"], b"$1\r\n1\r\n").await;
    server.shutdown.trigger();
    server.join().await.expect("run");
    // The engine cannot shut down cleanly without its log; it only must not hang.
    let _ = tokio::time::timeout(WAIT, server.engine.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_crate_read_your_writes_mget_and_binary_values() {
    let server = Server::start().await;
    for resp3 in [false, true] {
        let client = redis::Client::open(server.url(resp3)).expect("client");
        let mut con = client.get_multiplexed_async_connection().await.expect("connect");
        let prefix = if resp3 { "r3" } else { "r2" };
        for i in 0..100 {
            let key = format!("{prefix}:{i}");
            let () = redis::cmd("SET").arg(&key).arg(i).query_async(&mut con).await.expect("SET");
            let got: i64 = redis::cmd("GET").arg(&key).query_async(&mut con).await.expect("GET");
            assert_eq!(got, i);
        }
        let missing: Option<String> = redis::cmd("GET").arg("nope").query_async(&mut con).await.expect("GET");
        assert_eq!(missing, None);
        let values: Vec<Option<i64>> = redis::cmd("MGET")
            .arg(format!("{prefix}:3"))
            .arg("nope")
            .arg(format!("{prefix}:1"))
            .query_async(&mut con)
            .await
            .expect("MGET");
        assert_eq!(values, vec![Some(3), None, Some(1)]);

        let key: Vec<u8> = vec![0, 255, 13, 10, b'k'];
        let value: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
        let () = redis::cmd("SET").arg(&key).arg(&value).query_async(&mut con).await.expect("SET binary");
        let back: Vec<u8> = redis::cmd("GET").arg(&key).query_async(&mut con).await.expect("GET binary");
        assert_eq!(back, value);

        let deleted: i64 = redis::cmd("DEL").arg(&key).arg("nope").query_async(&mut con).await.expect("DEL");
        assert_eq!(deleted, 1);
        let written: Option<String> = redis::cmd("SET")
            .arg(format!("{prefix}:1"))
            .arg("x")
            .arg("NX")
            .query_async(&mut con)
            .await
            .expect("SET NX");
        assert_eq!(written, None);

        let mut pipe = redis::pipe();
        for i in 0..500 {
            pipe.cmd("SET").arg(format!("{prefix}:p{i}")).arg(i).ignore();
        }
        pipe.cmd("GET").arg(format!("{prefix}:p499"));
        let (last,): (i64,) = pipe.query_async(&mut con).await.expect("pipeline");
        assert_eq!(last, 499);

        let pong: String = redis::cmd("PING").query_async(&mut con).await.expect("PING");
        assert_eq!(pong, "PONG");
        let info: String = redis::cmd("INFO").arg("server").query_async(&mut con).await.expect("INFO");
        assert!(info.contains("redis_version:7.2.0"), "{info}");
        let err = redis::cmd("GET").query_async::<Option<String>>(&mut con).await.expect_err("arity");
        assert!(err.to_string().contains("wrong number of arguments for 'get' command"), "{err}");
    }
    server.stop().await;
}
