//! Test support: a PostgreSQL server for tests, and conformance targets for the
//! built-in adapters.
//!
//! [`postgres_url`] finds a server in this order: `AUGUR_PG_URL`; a server on
//! 127.0.0.1:5432 with trust auth (database `test`, then `postgres`); a private
//! cluster started with `initdb` and `pg_ctl` in a temporary directory on a free
//! loopback port, stopped when the test process exits. If none of that works the
//! call fails with instructions; PostgreSQL tests never pass silently.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;

use crate::conformance::{Location, Target};
use crate::error::StoreResult;
use crate::postgres::{PostgresStore, UpsertMethod};
use crate::rocksdb::RocksDbStore;
use crate::store::Store;

const HOW_TO: &str = "PostgreSQL tests need a server: set AUGUR_PG_URL=postgres://user@host:port/db, \
    run one on 127.0.0.1:5432 with trust auth and a database named test, or install the \
    PostgreSQL server binaries (Debian: apt-get install postgresql) so the tests can start a \
    private cluster with initdb and pg_ctl";

/// A URL for a PostgreSQL server the tests may create tables in, shared by every
/// test in this process. Panics with instructions when none can be found or started.
pub fn postgres_url() -> String {
    static URL: OnceLock<Result<String, String>> = OnceLock::new();
    match URL.get_or_init(find_or_start_postgres) {
        Ok(url) => url.clone(),
        Err(why) => panic!("{why}\n{HOW_TO}"),
    }
}

fn find_or_start_postgres() -> Result<String, String> {
    if let Ok(url) = std::env::var("AUGUR_PG_URL") {
        return Ok(url);
    }
    for db in ["test", "postgres"] {
        let url = format!("postgres://postgres@127.0.0.1:5432/{db}");
        if answers(&url) {
            return Ok(url);
        }
    }
    let cluster = PgCluster::start().map_err(|e| format!("no PostgreSQL on 127.0.0.1:5432 and {e}"))?;
    let url = cluster.url();
    // Lives until the process exits; the watchdog started with it stops it then.
    std::mem::forget(cluster);
    Ok(url)
}

/// True when a server at `url` accepts a connection and a query.
fn answers(url: &str) -> bool {
    let url = url.to_string();
    let probe = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
        rt.block_on(async {
            let mut config: tokio_postgres::Config = url.parse().ok()?;
            config.connect_timeout(Duration::from_secs(2));
            let (client, conn) = config.connect(tokio_postgres::NoTls).await.ok()?;
            tokio::spawn(conn);
            client.simple_query("SELECT 1").await.ok()
        })
    });
    matches!(probe.join(), Ok(Some(_)))
}

/// A private PostgreSQL cluster in a temporary directory, listening on a free
/// loopback port. Tests that need to stop and restart the server (outage tests)
/// own one; dropping it stops the server and removes the directory.
#[derive(Debug)]
pub struct PgCluster {
    dir: tempfile::TempDir,
    data: PathBuf,
    port: u16,
    bin: PathBuf,
    as_postgres_user: bool,
}

impl PgCluster {
    /// Runs `initdb` and starts the server. As root, both run as the `postgres`
    /// user (initdb refuses root).
    pub fn start() -> Result<Self, String> {
        let bin = find_pg_bin()
            .ok_or("no initdb/pg_ctl found (looked in pg_config --bindir, /usr/lib/postgresql/*/bin and PATH)")?;
        let as_postgres_user = is_root();
        let dir = tempfile::Builder::new()
            .prefix("augur-pg-")
            .tempdir()
            .map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let data = dir.path().join("data");
        if as_postgres_user {
            run(Command::new("chown").args(["-R", "postgres:"]).arg(dir.path()))?;
        }
        let port = free_port()?;
        let cluster = Self { dir, data, port, bin, as_postgres_user };
        let initdb = cluster.bin.join("initdb");
        let mut cmd = cluster.command(&initdb);
        cmd.arg("-D").arg(&cluster.data).args(["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]);
        run(&mut cmd)?;
        cluster.start_server()?;
        cluster.spawn_watchdog();
        Ok(cluster)
    }

    /// The connection URL (user `postgres`, database `postgres`).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server immediately (as a crash or an operator would), keeping data.
    pub fn stop(&self) -> Result<(), String> {
        let pg_ctl = self.bin.join("pg_ctl");
        let mut cmd = self.command(&pg_ctl);
        cmd.arg("-D").arg(&self.data).args(["-m", "immediate", "-w", "stop"]);
        run(&mut cmd)
    }

    /// Starts the server again on the same port and data.
    pub fn start_server(&self) -> Result<(), String> {
        let pg_ctl = self.bin.join("pg_ctl");
        let log = self.dir.path().join("server.log");
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c fsync=on",
            self.port,
            self.dir.path().display()
        );
        let mut cmd = self.command(&pg_ctl);
        cmd.arg("-D").arg(&self.data).arg("-l").arg(&log).args(["-w", "-t", "60", "start", "-o", &options]);
        run(&mut cmd)
    }

    fn command(&self, program: &Path) -> Command {
        if self.as_postgres_user {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    /// Stops the server once this process is gone, even if it was killed and no
    /// destructor ran.
    fn spawn_watchdog(&self) {
        let stop = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {run_as}{pg_ctl} -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            run_as = if self.as_postgres_user { "runuser -u postgres -- " } else { "" },
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.data.display(),
            dir = self.dir.path().display(),
        );
        let _ = Command::new("sh")
            .args(["-c", &stop])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

fn find_pg_bin() -> Option<PathBuf> {
    let has = |d: &Path| d.join("initdb").exists() && d.join("pg_ctl").exists();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has(&dir) {
            return Some(dir);
        }
    }
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).filter(|d| has(d)).collect();
        versions.sort();
        if let Some(dir) = versions.pop() {
            return Some(dir);
        }
    }
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).find(|d| has(d)))
}

/// Conformance target: each location is a fresh RocksDB directory.
#[derive(Debug, Default)]
pub struct RocksDbTarget;

struct RocksDbLocation(tempfile::TempDir);

#[async_trait]
impl Target for RocksDbTarget {
    async fn new_location(&self) -> Box<dyn Location> {
        Box::new(RocksDbLocation(tempfile::tempdir().expect("temp dir for RocksDB")))
    }
}

#[async_trait]
impl Location for RocksDbLocation {
    async fn open(&self) -> StoreResult<Arc<dyn Store>> {
        // RocksDB releases its lock on close; a reopen right after the last handle
        // drops can race the background close, so retry briefly.
        let mut attempt = 0;
        loop {
            match RocksDbStore::open(self.0.path().join("db")) {
                Ok(store) => return Ok(Arc::new(store)),
                Err(e) if attempt < 50 && e.message().contains("lock") => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Conformance target: each location is a fresh table on the test server.
#[derive(Debug)]
pub struct PostgresTarget {
    url: String,
    method: UpsertMethod,
}

impl PostgresTarget {
    /// A target on [`postgres_url`]'s server, with the default upsert method.
    pub fn new() -> Self {
        Self::with_method(UpsertMethod::Auto)
    }

    /// A target whose stores upsert with `method`.
    pub fn with_method(method: UpsertMethod) -> Self {
        Self { url: postgres_url(), method }
    }
}

impl Default for PostgresTarget {
    fn default() -> Self {
        Self::new()
    }
}

struct PostgresLocation {
    url: String,
    table: String,
    method: UpsertMethod,
}

#[async_trait]
impl Target for PostgresTarget {
    async fn new_location(&self) -> Box<dyn Location> {
        Box::new(PostgresLocation { url: self.url.clone(), table: unique_table_name(), method: self.method })
    }
}

#[async_trait]
impl Location for PostgresLocation {
    async fn open(&self) -> StoreResult<Arc<dyn Store>> {
        Ok(Arc::new(PostgresStore::builder(&self.url).table(&self.table).upsert_method(self.method).open().await?))
    }

    async fn destroy(self: Box<Self>) {
        if let Ok(store) = PostgresStore::builder(&self.url).table(&self.table).open().await {
            let _ = store.drop_table().await;
        }
    }
}

/// A table name no other test (in this or another process) uses.
pub fn unique_table_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("augur_test_{}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed), rand::random::<u32>())
}
