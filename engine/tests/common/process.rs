//! Running the real `augur serve` binary in tests.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `augur serve` child process on a free loopback port.
#[derive(Debug)]
pub struct Augur {
    pub child: Child,
    pub port: u16,
    pub data: PathBuf,
    log: PathBuf,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

impl Augur {
    /// Starts `augur serve` with its data (WAL, RocksDB) under `data`, plus `extra` flags,
    /// and waits until it answers PING.
    pub fn start(data: &Path, extra: &[&str]) -> Augur {
        Self::start_with_env(data, extra, &[])
    }

    /// As [`Augur::start`], with extra environment variables.
    pub fn start_with_env(data: &Path, extra: &[&str], env: &[(&str, String)]) -> Augur {
        let port = free_port();
        let log = data.join(format!("augur-{port}.log"));
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_augur"));
        cmd.arg("serve").arg("--listen").arg(format!("127.0.0.1:{port}")).arg("--wal-dir").arg(data.join("wal"));
        if !extra.contains(&"--store") {
            cmd.arg("--store").arg(format!("rocksdb:{}", data.join("rocksdb").display()));
        }
        cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        cmd.args(extra).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log_file);
        let child = cmd.spawn().expect("spawn augur");
        let mut augur = Augur { child, port, data: data.to_path_buf(), log };
        augur.wait_ready(extra.contains(&"--tls-cert"));
        augur
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the server answers PING (with TLS: until it accepts connections).
    fn wait_ready(&mut self, tls: bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("augur exited during start-up ({status}):\n{}", self.log());
            }
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                if tls {
                    return;
                }
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 7];
                // +PONG, or -NOAUTH when a password is required: either way it serves.
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read_exact(&mut buf).is_ok()
                    && (&buf == b"+PONG\r\n" || buf.starts_with(b"-NOAUTH"))
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("augur did not become ready:\n{}", self.log());
    }

    /// SIGKILL: no destructor, no flush, no fsync beyond what the WAL already did.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    pub fn sigterm(&self) {
        let ok = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().expect("kill").success();
        assert!(ok, "kill -TERM failed");
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("augur did not exit within {timeout:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Augur {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Path of a Redis command-line tool, or a failure that says how to get it.
pub fn redis_tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.exists()));
    found.unwrap_or_else(|| panic!("{name} not found: install redis-tools (./x test installs it as root)"))
}
