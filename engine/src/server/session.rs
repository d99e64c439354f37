//! One client's session: the per-connection state (`HELLO`'s protocol, `AUTH`,
//! `CLIENT SETNAME`) and the loop that runs pipelined commands in batches.
//!
//! A batch is every complete command already read (up to a cap). Its commands run
//! in order, each seeing the writes before it; write commands hand back a
//! [`WriteTicket`]. Before any reply of the batch goes out, the session waits for the
//! batch's last ticket: the WAL makes writes durable in sequence order, so the last
//! one covers them all, and one wait per batch instead of per command is what makes
//! pipelined writes cheap. If that wait fails, every reply that belonged to a write
//! becomes the error, so a write is never acknowledged when the WAL did not keep it.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::net::TcpStream;

use crate::engine::WriteTicket;
use crate::server::cmd::{Applied, Command, Ctx};
use crate::server::connection::Connection;
use crate::server::frame::{Frame, Protocol};
use crate::server::Shared;

/// Most commands run before the batch's replies are sent, so a client pipelining
/// without pause still gets replies (and its writes acknowledged) as it goes.
const MAX_BATCH_COMMANDS: usize = 4096;

/// A batch is also cut once its replies add up to this many bytes (or half the
/// output limit, if that is smaller), so that only one large reply — not a long
/// pipeline of ordinary ones — can push a client over the output limit.
const BATCH_REPLY_BYTES: usize = 1024 * 1024;

/// What a connection remembers about its client.
#[derive(Debug)]
pub(crate) struct ClientState {
    pub(crate) id: u64,
    pub(crate) addr: Option<SocketAddr>,
    pub(crate) local_addr: Option<SocketAddr>,
    pub(crate) name: Option<Bytes>,
    pub(crate) lib_name: Option<Bytes>,
    pub(crate) lib_ver: Option<Bytes>,
    pub(crate) proto: Protocol,
    pub(crate) authenticated: bool,
    pub(crate) connected_at: Instant,
}

/// Why a session ended (for the log).
#[derive(Debug)]
enum End {
    ClientClosed,
    Quit,
    Protocol,
    OutputLimit,
    Idle,
    Shutdown,
    Io(io::Error),
}

/// One reply of a batch, not yet written.
struct Pending {
    reply: Frame,
    /// `HELLO` can switch the protocol mid-batch; each reply is encoded under the
    /// protocol in force when its command ran, as Redis does.
    proto: Protocol,
    /// Replaced by the WAL's error if the batch's writes fail to become durable.
    is_write: bool,
}

#[derive(Default)]
struct Batch {
    replies: Vec<Pending>,
    ticket: Option<WriteTicket>,
    reply_bytes: usize,
    commands: usize,
}

impl Batch {
    fn push(&mut self, reply: Frame, proto: Protocol, is_write: bool) {
        self.reply_bytes = self.reply_bytes.saturating_add(reply.size_hint());
        self.replies.push(Pending { reply, proto, is_write });
    }

    fn add(&mut self, applied: Applied, proto: Protocol) {
        self.commands += 1;
        let is_write = applied.ticket.is_some();
        if let Some(ticket) = applied.ticket {
            self.ticket = Some(match self.ticket.take() {
                Some(earlier) => earlier.max(ticket),
                None => ticket,
            });
        }
        if let Some(reply) = applied.reply {
            self.push(reply, proto, is_write);
        }
    }

    /// Waits for durability, then writes the replies.
    async fn send(self, conn: &mut Connection) -> io::Result<()> {
        let mut replies = self.replies;
        if let Some(ticket) = self.ticket {
            if let Err(error) = ticket.durable().await {
                tracing::warn!(%error, "writes not durable; failing their replies");
                let text = error.reply_text();
                for pending in replies.iter_mut().filter(|p| p.is_write) {
                    pending.reply = Frame::Error(text.clone());
                }
            }
        }
        for pending in &replies {
            conn.write_frame(&pending.reply, pending.proto).await?;
        }
        conn.flush().await
    }
}

/// How long a client has to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs one client's session to its end and closes the socket.
pub(crate) async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    // Replies are small and latency-bound; Nagle's delay would stall request/reply
    // clients for up to 40 ms per round trip.
    let _ = stream.set_nodelay(true);
    let mut client = ClientState {
        id: shared.next_client_id.fetch_add(1, Ordering::Relaxed),
        addr: stream.peer_addr().ok(),
        local_addr: stream.local_addr().ok(),
        name: None,
        lib_name: None,
        lib_ver: None,
        proto: Protocol::Resp2,
        authenticated: shared.requirepass.is_none(),
        connected_at: Instant::now(),
    };
    let mut conn = match &shared.tls {
        None => Connection::new(stream),
        Some(tls) => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.0.accept(stream)).await {
            Ok(Ok(tls)) => Connection::new(tls),
            Ok(Err(error)) => {
                tracing::debug!(id = client.id, %error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(id = client.id, "TLS handshake timed out");
                return;
            }
        },
    };
    // Access-log events carry the connection id (truncated to the log's 32 bits).
    let connection = client.id as u32;
    let events = crate::access_log::ConnectionEvents::new(connection);
    let end = crate::access_log::CONNECTION
        .scope(events, async {
            let end = run(&mut conn, &mut client, &shared).await;
            shared.engine.flush_connection_events();
            end
        })
        .await;
    match &end {
        End::Io(error) => tracing::debug!(id = client.id, %error, "client connection failed"),
        End::OutputLimit => tracing::warn!(
            id = client.id,
            addr = ?client.addr,
            limit = shared.max_output_buffer,
            "client closed for overcoming the output buffer limit"
        ),
        other => tracing::debug!(id = client.id, reason = ?other, "client connection closed"),
    }
    if !matches!(end, End::Io(_) | End::ClientClosed) {
        conn.close().await;
    }
}

async fn run(conn: &mut Connection, client: &mut ClientState, shared: &Shared) -> End {
    loop {
        // Checked between batches: a batch that started runs to completion and its
        // replies are sent, then the connection closes.
        if shared.shutdown.is_triggered() {
            return End::Shutdown;
        }
        let batch_bytes = BATCH_REPLY_BYTES.min(shared.max_output_buffer / 2);
        let mut batch = Batch::default();
        let mut end = None;
        // At least one command per batch, however small the output limit, or
        // buffered commands would never run.
        while batch.commands == 0 || (batch.commands < MAX_BATCH_COMMANDS && batch.reply_bytes < batch_bytes) {
            // Per command: an AUTH earlier in the same pipeline lifts the limits
            // for the commands after it.
            let limits = if client.authenticated { shared.limits() } else { shared.unauthenticated_limits() };
            match conn.next_frame(&limits) {
                Ok(Some(frame)) => {
                    let applied = execute(frame, client, shared).await;
                    let close = applied.close;
                    batch.add(applied, client.proto);
                    if batch.reply_bytes > shared.max_output_buffer {
                        return End::OutputLimit;
                    }
                    if close {
                        end = Some(End::Quit);
                        break;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    batch.push(Frame::Error(error.reply_text()), client.proto, false);
                    end = Some(End::Protocol);
                    break;
                }
            }
        }
        if batch.commands == 0 && end.is_none() {
            if let Err(end) = wait_for_input(conn, shared).await {
                return end;
            }
            continue;
        }
        // Before the replies: a client that has its answer finds its reads counted.
        shared.engine.flush_connection_events();
        if let Err(error) = batch.send(conn).await {
            return End::Io(error);
        }
        if let Some(end) = end {
            return end;
        }
    }
}

/// Waits until the client sends more bytes, or a reason to stop waiting.
async fn wait_for_input(conn: &mut Connection, shared: &Shared) -> Result<(), End> {
    let idle = shared.idle_timeout();
    let idle_expired = async {
        match idle {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        read = conn.read_more() => match read {
            Ok(0) => Err(End::ClientClosed),
            Ok(_) => Ok(()),
            Err(error) => Err(End::Io(error)),
        },
        () = shared.shutdown.wait() => Err(End::Shutdown),
        () = idle_expired => Err(End::Idle),
    }
}

/// Parses, authorises and runs one command.
async fn execute(frame: Frame, client: &mut ClientState, shared: &Shared) -> Applied {
    let command = match Command::from_frame(frame) {
        Ok(command) => command,
        Err(error) => return Applied::reply(Frame::Error(error.to_string())),
    };
    if !client.authenticated && !command.allowed_unauthenticated() {
        return Applied::reply(Frame::error("NOAUTH Authentication required."));
    }
    shared.stats.total_commands.fetch_add(1, Ordering::Relaxed);
    command.apply(&mut Ctx { shared, client }).await
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;
    use crate::config::SyncPolicy;
    use crate::wal::Wal;

    /// A ticket for a write that a failed WAL never made durable.
    fn failed_ticket(dir: &std::path::Path) -> WriteTicket {
        let wal_dir = dir.join("wal");
        let (wal, _) = Wal::open(&wal_dir, SyncPolicy::EverySec, 1, |_, _| {}).expect("open WAL");
        // With one-byte segments the writer starts a new segment after this record,
        // in a directory that no longer exists, and the log fails.
        std::fs::remove_dir_all(&wal_dir).expect("remove WAL directory");
        let entry = (Bytes::from_static(b"k"), Some(Bytes::from_static(b"v")));
        let seq = wal.append(&[entry], |seq| seq).expect("append");
        // One past the last record: only the failure can resolve the wait.
        WriteTicket { seq: seq + 1, wal: Some(wal) }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn write_replies_become_the_wal_error_when_durability_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).await.expect("connect");
        let (server_side, _) = listener.accept().await.expect("accept");
        let mut conn = Connection::new(server_side);

        let mut batch = Batch::default();
        batch.add(Applied::write(Frame::ok(), failed_ticket(dir.path())), Protocol::Resp2);
        batch.add(Applied::reply(Frame::bulk("read")), Protocol::Resp2);
        batch.add(Applied::write(Frame::Integer(1), WriteTicket::none()), Protocol::Resp2);
        batch.send(&mut conn).await.expect("send");
        drop(conn);

        let mut sent = String::new();
        client.read_to_string(&mut sent).await.expect("read replies");
        let lines: Vec<&str> = sent.split("\r\n").collect();
        assert_eq!(lines.len(), 5, "{sent:?}");
        assert!(lines[0].starts_with("-MISCONF write-ahead log failed"), "{sent:?}");
        assert_eq!(&lines[1..3], ["$4", "read"], "a read's reply is untouched");
        assert_eq!(lines[3], lines[0], "every write's reply is the error: {sent:?}");
    }
}
