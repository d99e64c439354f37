//! The RESP2/RESP3 server: what lets unmodified Redis clients use Augur.
//!
//! Layout, after tokio's mini-redis:
//! - [`frame`]: the wire format (the [`Frame`] type, request decoding,
//!   protocol-dependent encoding).
//! - `connection`: one socket's buffered reads and writes.
//! - `session`: one client's loop: decode a batch of pipelined commands, run them in
//!   order, wait until the batch's writes are durable, send the replies.
//! - `cmd`: one module per command, each parsing its own arguments and applying
//!   itself to the engine.
//! - [`Shutdown`]: the signal that stops the accept loop and the connections.
//!
//! [`run`] is the whole public surface the `augur serve` CLI needs: hand it a bound
//! listener, an open engine, a [`ServerConfig`] and a [`Shutdown`]; it returns once
//! shutdown was triggered and the connections are closed. Shutting the engine down
//! (flushing dirty data) stays with the caller, which owns the engine.

mod cmd;
mod connection;
pub mod frame;
mod session;
mod shutdown;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub use self::shutdown::Shutdown;
use crate::engine::Engine;
use crate::server::connection::Connection;
use crate::server::frame::{Frame, Limits, Protocol};

/// How long [`run`] waits for connections to finish their batch after shutdown was
/// triggered before it aborts them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Redis's limits on what a client that has not authenticated may send in one
/// command.
const UNAUTHENTICATED_MAX_ARGS: usize = 10;
const UNAUTHENTICATED_MAX_BULK: usize = 16 * 1024;

/// Redis's default `client-query-buffer-limit`: the most bytes one command's arguments
/// may add up to. Raised with `max_bulk_len` so a single permitted bulk always fits.
const MIN_QUERY_BYTES: usize = 1024 * 1024 * 1024;

/// Server settings; see each field for its default.
#[derive(Clone)]
pub struct ServerConfig {
    /// Most simultaneous clients; one more gets `-ERR max number of clients reached`.
    /// Default 10,000.
    pub max_clients: usize,
    /// Longest bulk string a client may send (Redis's `proto-max-bulk-len`); a longer
    /// one gets `-ERR Protocol error: invalid bulk length` and the connection closes.
    /// Default 64 MiB.
    pub max_bulk_len: usize,
    /// Most arguments in one command; more gets `-ERR Protocol error: invalid
    /// multibulk length` and the connection closes. Default 1,048,576.
    pub max_args: usize,
    /// Most reply bytes a client may have pending (produced, not yet written);
    /// beyond it the client is disconnected, as with Redis's output buffer hard
    /// limit. Default 64 MiB.
    pub max_output_buffer: usize,
    /// When set, clients must `AUTH` (or `HELLO … AUTH`) with this password first.
    /// An empty password means none, as in Redis.
    pub requirepass: Option<String>,
    /// Close clients idle this long (Redis's `timeout`). Default `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Redis's protected mode: with no password set, refuse clients that do not
    /// connect from a loopback address. Default on.
    pub protected_mode: bool,
    /// Serve TLS only (no plaintext) with this acceptor; see [`tls_acceptor`].
    /// Default `None`: plaintext.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// The TLS acceptor, wrapped for `Debug` (rustls's config holds the private key).
pub(crate) struct Tls(pub(crate) tokio_rustls::TlsAcceptor);

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tls(..)")
    }
}

/// A TLS acceptor from PEM files: a certificate chain and its private key.
pub fn tls_acceptor(
    cert_pem: &std::path::Path,
    key_pem: &std::path::Path,
) -> std::io::Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let invalid = |what: &str, path: &std::path::Path, e: &dyn fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what} {}: {e}", path.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_pem)
        .map_err(|e| invalid("cannot read certificate", cert_pem, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| invalid("invalid certificate", cert_pem, &e))?;
    if certs.is_empty() {
        return Err(invalid("no certificate in", cert_pem, &"empty file"));
    }
    let key = PrivateKeyDer::from_pem_file(key_pem).map_err(|e| invalid("cannot read private key", key_pem, &e))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("TLS setup for", cert_pem, &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid("certificate and key do not match:", cert_pem, &e))?;
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_clients: 10_000,
            max_bulk_len: 64 * 1024 * 1024,
            max_args: 1024 * 1024,
            max_output_buffer: 64 * 1024 * 1024,
            requirepass: None,
            idle_timeout: None,
            protected_mode: true,
            tls: None,
        }
    }
}

// Hand-written so the password never reaches a log line.
impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("max_clients", &self.max_clients)
            .field("max_bulk_len", &self.max_bulk_len)
            .field("max_args", &self.max_args)
            .field("max_output_buffer", &self.max_output_buffer)
            .field("requirepass", &self.requirepass.as_ref().map(|_| "***"))
            .field("idle_timeout", &self.idle_timeout)
            .field("protected_mode", &self.protected_mode)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Server-wide counters INFO reports. Relaxed atomics: each is independent and
/// approximate-at-an-instant is what INFO promises anyway.
#[derive(Debug, Default)]
pub(crate) struct ServerStats {
    pub(crate) connected_clients: AtomicUsize,
    pub(crate) total_connections: AtomicU64,
    pub(crate) total_commands: AtomicU64,
    pub(crate) rejected_connections: AtomicU64,
}

/// The configured password, wrapped so that `Debug` (and so any log line that
/// prints the shared state) cannot show it.
pub(crate) struct Password(String);

impl Password {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// What every connection shares: the engine, the settings (those `CONFIG SET` may
/// change are atomics), the counters and the shutdown signal.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) shutdown: Shutdown,
    pub(crate) requirepass: Option<Password>,
    pub(crate) max_clients: AtomicUsize,
    pub(crate) max_bulk_len: AtomicUsize,
    pub(crate) max_args: usize,
    pub(crate) max_output_buffer: usize,
    /// Idle timeout in milliseconds, 0 for none. Milliseconds rather than the
    /// seconds `CONFIG SET timeout` takes, so a sub-second
    /// [`ServerConfig::idle_timeout`] survives.
    pub(crate) idle_timeout_ms: AtomicU64,
    pub(crate) stats: ServerStats,
    pub(crate) next_client_id: AtomicU64,
    pub(crate) protected_mode: bool,
    pub(crate) tls: Option<Tls>,
    pub(crate) started: Instant,
    pub(crate) started_wall: SystemTime,
    pub(crate) local_addr: SocketAddr,
}

impl Shared {
    fn new(engine: Engine, config: ServerConfig, shutdown: Shutdown, local_addr: SocketAddr) -> Self {
        let idle_ms = config.idle_timeout.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1));
        Shared {
            engine,
            shutdown,
            protected_mode: config.protected_mode,
            tls: config.tls.map(Tls),
            requirepass: config.requirepass.filter(|p| !p.is_empty()).map(Password),
            max_clients: AtomicUsize::new(config.max_clients),
            max_bulk_len: AtomicUsize::new(config.max_bulk_len),
            max_args: config.max_args,
            max_output_buffer: config.max_output_buffer,
            idle_timeout_ms: AtomicU64::new(idle_ms),
            stats: ServerStats::default(),
            next_client_id: AtomicU64::new(1),
            started: Instant::now(),
            started_wall: SystemTime::now(),
            local_addr,
        }
    }

    /// The decoder limits as of now (`CONFIG SET proto-max-bulk-len` applies to the
    /// next command read).
    pub(crate) fn limits(&self) -> Limits {
        let max_bulk_len = self.max_bulk_len.load(Ordering::Relaxed);
        Limits {
            max_bulk_len,
            max_args: self.max_args,
            max_query_bytes: MIN_QUERY_BYTES.max(max_bulk_len.saturating_mul(2)),
            unauthenticated: false,
        }
    }

    /// The limits for a client that has not authenticated: Redis's own (10
    /// arguments, 16 KiB per argument), so that without the password nobody can make
    /// the server buffer more than a few hundred kilobytes.
    pub(crate) fn unauthenticated_limits(&self) -> Limits {
        let limits = self.limits();
        Limits {
            max_bulk_len: limits.max_bulk_len.min(UNAUTHENTICATED_MAX_BULK),
            max_args: limits.max_args.min(UNAUTHENTICATED_MAX_ARGS),
            max_query_bytes: UNAUTHENTICATED_MAX_ARGS * UNAUTHENTICATED_MAX_BULK,
            unauthenticated: true,
        }
    }

    pub(crate) fn idle_timeout(&self) -> Option<Duration> {
        match self.idle_timeout_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }
}

/// Serves RESP clients on `listener` until `shutdown` is triggered (by the caller or
/// by a client's `SHUTDOWN`), then stops accepting, lets every connection finish the
/// batch it is running and send its replies, closes them, and returns after at most
/// [`SHUTDOWN_GRACE`] more. It does not shut the engine down: the caller does that
/// after this returns, so no connection can still be writing.
///
/// Errors only if the listener's address cannot be read; accept errors (out of file
/// descriptors, a connection reset before it was accepted) are logged and retried
/// with a back-off, since a server should outlive a transient resource shortage.
pub async fn run(
    listener: TcpListener,
    engine: Engine,
    config: ServerConfig,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let local_addr = listener.local_addr()?;
    let shared = Arc::new(Shared::new(engine, config, shutdown.clone(), local_addr));
    tracing::info!(%local_addr, "RESP server listening");
    let mut tasks = JoinSet::new();
    let mut backoff = Duration::from_millis(5);
    loop {
        tokio::select! {
            biased;
            () = shutdown.wait() => break,
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => log_join(joined),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    backoff = Duration::from_millis(5);
                    admit(stream, &shared, &mut tasks);
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed; retrying in {backoff:?}");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = shutdown.wait() => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            },
        }
    }
    drop(listener);
    tracing::info!(connections = tasks.len(), "RESP server stopping");
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(joined)) => log_join(joined),
            Ok(None) => break,
            Err(_) => {
                tracing::warn!(
                    remaining = tasks.len(),
                    "connections still busy {SHUTDOWN_GRACE:?} after shutdown; aborting them"
                );
                tasks.shutdown().await;
                break;
            }
        }
    }
    tracing::info!("RESP server stopped");
    Ok(())
}

/// Redis's reply to a non-loopback client in protected mode.
const DENIED: &str = "DENIED Augur is running in protected mode because protected mode is enabled and no \
password is set. In this mode connections are only accepted from the loopback interface. To accept \
other clients, set a password with --requirepass (recommended) or disable protected mode with \
--protected-mode false, and bind to a trusted interface only.";

/// Whether protected mode lets a client from `peer` in.
pub(crate) fn allowed_by_protected_mode(peer: std::net::IpAddr, protected: bool, has_password: bool) -> bool {
    !protected || has_password || peer.to_canonical().is_loopback()
}

/// Starts a session for a new connection, or turns it away when the server is full
/// or protected mode refuses the client.
fn admit(stream: TcpStream, shared: &Arc<Shared>, tasks: &mut JoinSet<()>) {
    let peer = stream.peer_addr().map(|a| a.ip()).unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    if !allowed_by_protected_mode(peer, shared.protected_mode, shared.requirepass.is_some()) {
        shared.stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("augur_rejected_connections_total").increment(1);
        tracing::warn!(%peer, "refused a non-loopback client: protected mode and no password");
        tasks.spawn(reject(stream, DENIED));
        return;
    }
    // Only this loop increments the count, so checking then incrementing cannot let
    // two clients past the limit; sessions ending concurrently only lower it.
    let connected = shared.stats.connected_clients.load(Ordering::Relaxed);
    if connected >= shared.max_clients.load(Ordering::Relaxed) {
        shared.stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("augur_rejected_connections_total").increment(1);
        tasks.spawn(reject(stream, "ERR max number of clients reached"));
        return;
    }
    shared.stats.connected_clients.fetch_add(1, Ordering::Relaxed);
    shared.stats.total_connections.fetch_add(1, Ordering::Relaxed);
    // Through the facade directly (connections are rare next to commands); see metrics.rs.
    metrics::gauge!("augur_connected_clients").increment(1.0);
    metrics::counter!("augur_connections_received_total").increment(1);
    let guard = ConnectedGuard(Arc::clone(shared));
    let shared = Arc::clone(shared);
    tasks.spawn(async move {
        // Dropped however the task ends (a panic or an abort at the grace deadline
        // included), so the client count cannot leak.
        let _guard = guard;
        session::serve(stream, shared).await;
    });
}

async fn reject(stream: TcpStream, message: &'static str) {
    let mut conn = Connection::new(stream);
    let reply = Frame::error(message);
    // A client that never reads must not keep this task (and a shutdown) waiting.
    let written = tokio::time::timeout(Duration::from_secs(1), async {
        conn.write_frame(&reply, Protocol::Resp2).await?;
        conn.flush().await
    })
    .await;
    if matches!(written, Ok(Ok(()))) {
        conn.close().await;
    }
}

struct ConnectedGuard(Arc<Shared>);

impl Drop for ConnectedGuard {
    fn drop(&mut self) {
        self.0.stats.connected_clients.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("augur_connected_clients").decrement(1.0);
    }
}

fn log_join(joined: Result<(), tokio::task::JoinError>) {
    if let Err(error) = joined {
        if error.is_panic() {
            tracing::error!(%error, "connection task panicked");
        }
    }
}

#[cfg(test)]
mod protected_mode_tests {
    use super::allowed_by_protected_mode as allowed;
    use std::net::IpAddr;

    #[test]
    fn only_loopback_without_password() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        for local in ["127.0.0.1", "127.8.9.1", "::1", "::ffff:127.0.0.1"] {
            assert!(allowed(ip(local), true, false), "{local}");
        }
        for remote in ["10.0.0.5", "192.168.1.2", "8.8.8.8", "::ffff:10.0.0.5", "fe80::1"] {
            assert!(!allowed(ip(remote), true, false), "{remote} must be refused");
            assert!(allowed(ip(remote), true, true), "{remote} allowed with a password");
            assert!(allowed(ip(remote), false, false), "{remote} allowed with protected mode off");
        }
    }
}
