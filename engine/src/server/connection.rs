//! One client socket: buffered reads decoded into request frames, and buffered reply
//! writes.
//!
//! Kept apart from the session logic (as mini-redis does) so the byte handling —
//! buffer growth, when to hit the socket, how to close without losing the last
//! reply — lives in one place and the session reads as "next command, run it, reply".

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::server::frame::{Frame, Limits, Protocol, ProtocolError, RequestDecoder};

/// Free space made before each read. A bulk larger than this grows the buffer as its
/// bytes arrive (amortised doubling), never by what its header claims.
const READ_CHUNK: usize = 16 * 1024;

/// Encoded replies are written to the socket whenever this many are buffered, so a
/// large pipeline's replies stream out instead of piling up in memory.
const WRITE_CHUNK: usize = 64 * 1024;

/// Buffers that grew past this for one large request or reply are dropped once empty:
/// an idle connection should not keep a 64 MiB allocation alive.
const KEEP_CAPACITY: usize = 1024 * 1024;

/// How long [`Connection::close`] keeps reading (and discarding) what the client still
/// sends.
const LINGER: Duration = Duration::from_millis(250);

/// How much [`Connection::close`] discards at most.
const LINGER_BYTES: usize = 1024 * 1024;

/// A client byte stream: a TCP socket, or a TLS session over one. Boxed so one
/// session type serves both; the indirect call is noise next to the system call
/// behind it.
pub(crate) trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> ClientStream for T {}

/// A client socket with its read and write buffers.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: Box<dyn ClientStream>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    decoder: RequestDecoder,
}

impl Connection {
    pub(crate) fn new(stream: impl ClientStream + 'static) -> Self {
        Connection {
            stream: Box::new(stream),
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: BytesMut::with_capacity(READ_CHUNK),
            decoder: RequestDecoder::new(),
        }
    }

    /// The next complete request already buffered, as an array of bulk strings;
    /// `Ok(None)` when more bytes must be read first. Never touches the socket, so a
    /// session can drain everything a pipelining client sent in one read.
    pub(crate) fn next_frame(&mut self, limits: &Limits) -> Result<Option<Frame>, ProtocolError> {
        let args = self.decoder.decode(&mut self.rbuf, limits)?;
        Ok(args.map(|args| Frame::Array(args.into_iter().map(Frame::Bulk).collect())))
    }

    /// Reads more bytes from the socket into the buffer; `Ok(0)` is end of stream.
    /// Cancel-safe: a read abandoned in a `select!` loses no data.
    pub(crate) async fn read_more(&mut self) -> io::Result<usize> {
        if self.rbuf.is_empty() && self.rbuf.capacity() > KEEP_CAPACITY {
            self.rbuf = BytesMut::with_capacity(READ_CHUNK);
        }
        self.rbuf.reserve(READ_CHUNK);
        self.stream.read_buf(&mut self.rbuf).await
    }

    /// Buffers one reply, writing buffered replies to the socket once there are
    /// enough of them.
    pub(crate) async fn write_frame(&mut self, frame: &Frame, proto: Protocol) -> io::Result<()> {
        frame.encode(proto, &mut self.wbuf);
        if self.wbuf.len() >= WRITE_CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes every buffered reply to the socket.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        if self.wbuf.capacity() > KEEP_CAPACITY {
            self.wbuf = BytesMut::with_capacity(READ_CHUNK);
        }
        Ok(())
    }

    /// Closes the connection so the client still receives the replies already
    /// written (flush first).
    ///
    /// Closing a socket whose receive queue holds unread bytes makes the kernel send
    /// a reset instead of an orderly close, and a reset can discard our final reply
    /// (the protocol error explaining why we hang up) before the client reads it. So
    /// the write side is shut first, then incoming bytes are drained briefly.
    pub(crate) async fn close(mut self) {
        if self.stream.shutdown().await.is_err() {
            return;
        }
        let deadline = tokio::time::Instant::now() + LINGER;
        let mut drained = 0;
        let mut scratch = [0u8; 4096];
        while drained < LINGER_BYTES {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut scratch)).await {
                Ok(Ok(n)) if n > 0 => drained += n,
                _ => break,
            }
        }
    }
}
