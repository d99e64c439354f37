//! The RESP wire format: one [`Frame`] type for RESP2 and RESP3 replies, the request
//! decoder the server reads clients with, and a general frame parser.
//!
//! Two parsers exist because the two directions have different shapes and threats:
//!
//! - [`RequestDecoder`] reads what a client may send a Redis server: an array of bulk
//!   strings, or a telnet-style inline line. It keeps its position inside a
//!   half-received array between calls, so a command with a million arguments that
//!   arrives in thousands of reads is scanned once, not once per read. It enforces the
//!   server's limits before buffering anything a length claims.
//! - [`Frame::parse`] reads any RESP2/RESP3 frame from a byte slice (what a server
//!   sends back). The server itself does not need it; tools and tests that talk to a
//!   server do, and it doubles as the reference for what [`Frame::encode`] writes.
//!
//! Neither parser panics or allocates by a length the peer claims: aggregates
//! pre-allocate a few slots and grow as elements actually arrive, and nesting depth is
//! capped so a stream of `*1\r\n*1\r\n…` cannot overflow the stack.
//!
//! Encoding depends on the connection's [`Protocol`]: RESP3 types that RESP2 lacks are
//! written the way Redis downgrades them (a map becomes a flat array, a null becomes
//! `$-1`, a boolean becomes `:1`/`:0`, a double or big number becomes a bulk string).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Longest header or inline line accepted before its CRLF, as Redis's
/// `PROTO_INLINE_MAX_SIZE`; a peer that sends more without a newline is not speaking
/// RESP.
pub const MAX_LINE: usize = 64 * 1024;

/// Deepest aggregate nesting [`Frame::parse`] accepts; replies from a real server
/// nest a handful of levels at most.
pub const MAX_DEPTH: usize = 64;

/// Largest bulk [`Frame::parse`] accepts (Redis's own `proto-max-bulk-len` ceiling).
pub const MAX_PARSE_BULK: usize = 512 * 1024 * 1024;

/// Slots an aggregate reserves up front whatever length it claims; the rest grows as
/// elements arrive.
const PREALLOC: usize = 64;

/// The protocol version a connection speaks (switched by `HELLO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, what every connection starts with.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

impl Protocol {
    /// The number `HELLO` uses for this version.
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// One RESP value. Simple strings and errors are text; everything that can carry a
/// client's bytes is [`Bytes`] so binary keys and values pass through untouched.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `+OK`.
    Simple(String),
    /// `-ERR …`; the text includes the error code.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$3\r\nfoo`.
    Bulk(Bytes),
    /// RESP3 `_`, RESP2 `$-1` (a missing key).
    Null,
    /// `*N`.
    Array(Vec<Frame>),
    /// RESP3 `%N` (key/value pairs); a flat array of 2N in RESP2.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~N`; an array in RESP2.
    Set(Vec<Frame>),
    /// RESP3 `,1.5`; a bulk string in RESP2.
    Double(f64),
    /// RESP3 `#t`; `:1`/`:0` in RESP2.
    Boolean(bool),
    /// RESP3 `(123…`; a bulk string in RESP2.
    BigNumber(String),
    /// RESP3 `=N\r\ntxt:…`; a bulk string of the text in RESP2.
    Verbatim {
        /// Three-byte format such as `txt` or `mkd`.
        format: [u8; 3],
        /// The text itself.
        text: Bytes,
    },
    /// RESP3 `>N` out-of-band data; an array in RESP2.
    Push(Vec<Frame>),
}

impl Frame {
    /// `+OK`.
    pub fn ok() -> Frame {
        Frame::Simple("OK".to_string())
    }

    /// A simple string.
    pub fn simple(text: impl Into<String>) -> Frame {
        Frame::Simple(text.into())
    }

    /// An error reply; `text` starts with its code (`ERR`, `WRONGPASS`, …).
    pub fn error(text: impl Into<String>) -> Frame {
        Frame::Error(text.into())
    }

    /// A bulk string.
    pub fn bulk(data: impl Into<Bytes>) -> Frame {
        Frame::Bulk(data.into())
    }

    /// A bulk string, or null when absent (a GET reply).
    pub fn from_option(value: Option<Bytes>) -> Frame {
        value.map_or(Frame::Null, Frame::Bulk)
    }

    /// Plain text as RESP3 verbatim (`txt`), which is how Redis returns INFO and
    /// CLIENT INFO; RESP2 clients get a bulk string.
    pub fn text(text: impl Into<Bytes>) -> Frame {
        Frame::Verbatim { format: *b"txt", text: text.into() }
    }

    /// Appends this frame's encoding under `proto` to `out`.
    pub fn encode(&self, proto: Protocol, out: &mut BytesMut) {
        let resp3 = proto == Protocol::Resp3;
        match self {
            Frame::Simple(s) => put_line(out, b'+', s.as_bytes()),
            Frame::Error(s) => put_line(out, b'-', s.as_bytes()),
            Frame::Integer(n) => {
                out.put_u8(b':');
                put_decimal(out, *n);
                out.put_slice(b"\r\n");
            }
            Frame::Bulk(data) => put_bulk(out, b'$', data),
            Frame::Null if resp3 => out.put_slice(b"_\r\n"),
            Frame::Null => out.put_slice(b"$-1\r\n"),
            Frame::Array(items) => put_aggregate(out, proto, b'*', items),
            Frame::Set(items) => put_aggregate(out, proto, if resp3 { b'~' } else { b'*' }, items),
            Frame::Push(items) => put_aggregate(out, proto, if resp3 { b'>' } else { b'*' }, items),
            Frame::Map(pairs) => {
                if resp3 {
                    put_header(out, b'%', pairs.len());
                } else {
                    put_header(out, b'*', pairs.len().saturating_mul(2));
                }
                for (key, value) in pairs {
                    key.encode(proto, out);
                    value.encode(proto, out);
                }
            }
            Frame::Double(d) => {
                let text = format_double(*d);
                if resp3 {
                    put_line(out, b',', text.as_bytes());
                } else {
                    put_bulk(out, b'$', text.as_bytes());
                }
            }
            Frame::Boolean(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Frame::Boolean(b) => out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
            Frame::BigNumber(n) if resp3 => put_line(out, b'(', n.as_bytes()),
            Frame::BigNumber(n) => put_bulk(out, b'$', n.as_bytes()),
            Frame::Verbatim { format, text } if resp3 => {
                put_header(out, b'=', text.len() + 4);
                out.put_slice(format);
                out.put_u8(b':');
                out.put_slice(text);
                out.put_slice(b"\r\n");
            }
            Frame::Verbatim { text, .. } => put_bulk(out, b'$', text),
        }
    }

    /// This frame encoded under `proto`, as a fresh buffer.
    pub fn to_bytes(&self, proto: Protocol) -> Bytes {
        let mut out = BytesMut::with_capacity(self.size_hint());
        self.encode(proto, &mut out);
        out.freeze()
    }

    /// Roughly how many bytes the encoding takes (never much less than the truth);
    /// cheap enough to call per reply when accounting a client's pending output.
    pub fn size_hint(&self) -> usize {
        match self {
            Frame::Simple(s) | Frame::Error(s) | Frame::BigNumber(s) => s.len() + 3,
            Frame::Integer(_) => 24,
            Frame::Bulk(b) => b.len() + 16,
            Frame::Verbatim { text, .. } => text.len() + 20,
            Frame::Null | Frame::Boolean(_) => 5,
            Frame::Double(_) => 32,
            Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
                items.iter().fold(16, |n, f| n.saturating_add(f.size_hint()))
            }
            Frame::Map(pairs) => {
                pairs.iter().fold(16, |n, (k, v)| n.saturating_add(k.size_hint()).saturating_add(v.size_hint()))
            }
        }
    }

    /// Parses one complete frame of any RESP2/RESP3 type from the start of `buf`,
    /// returning it and how many bytes it used. [`FrameError::Incomplete`] means more
    /// bytes are needed; any other error means `buf` is not RESP.
    pub fn parse(buf: &[u8]) -> Result<(Frame, usize), FrameError> {
        let mut parser = Parser { buf, pos: 0 };
        let frame = parser.frame(0)?;
        Ok((frame, parser.pos))
    }
}

/// Why [`Frame::parse`] returned no frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The buffer holds a prefix of a frame; read more and try again.
    #[error("incomplete frame")]
    Incomplete,
    /// The buffer is not valid RESP.
    #[error("Protocol error: {0}")]
    Invalid(String),
}

/// A client sent bytes that are not a valid request. Each message is Redis's own
/// wording, so clients and operators see the errors they know; the server replies
/// `-ERR <message>` and closes the connection, as Redis does, because the stream can
/// no longer be split into commands reliably.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// `*` count not a number, or above the argument limit.
    #[error("Protocol error: invalid multibulk length")]
    MultibulkLength,
    /// `$` length not a number, negative, above the bulk limit, or not followed by
    /// exactly that many bytes and a CRLF.
    #[error("Protocol error: invalid bulk length")]
    BulkLength,
    /// An array element was not a bulk string.
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedBulk(char),
    /// An inline command line without a newline in its first 64 KiB.
    #[error("Protocol error: too big inline request")]
    InlineTooBig,
    /// A `*` header without a CRLF in its first 64 KiB.
    #[error("Protocol error: too big mbulk count string")]
    MultibulkCountTooBig,
    /// A `$` header without a CRLF in its first 64 KiB.
    #[error("Protocol error: too big bulk count string")]
    BulkCountTooBig,
    /// An inline command with an unterminated quote (or a closing quote followed by
    /// something other than a space).
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// An unauthenticated client's `*` count above Redis's limit for that state.
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    /// An unauthenticated client's `$` length above Redis's limit for that state.
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
    /// One command's arguments add up to more than the query buffer limit.
    #[error("Protocol error: query buffer limit exceeded")]
    QueryTooBig,
}

impl ProtocolError {
    /// The error reply's text, with its code.
    pub fn reply_text(&self) -> String {
        format!("ERR {self}")
    }
}

/// Bounds the decoder enforces on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest bulk string argument.
    pub max_bulk_len: usize,
    /// Most arguments in one command.
    pub max_args: usize,
    /// Most bytes all arguments of one command may add up to (Redis's
    /// `client-query-buffer-limit`): without it a command of a million 64 MiB
    /// arguments could buffer terabytes.
    pub max_query_bytes: usize,
    /// The client has not authenticated yet: the limits are Redis's tight ones for
    /// that state, and exceeding them is reported as such.
    pub unauthenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 64 * 1024 * 1024,
            max_args: 1024 * 1024,
            max_query_bytes: 1024 * 1024 * 1024,
            unauthenticated: false,
        }
    }
}

/// Decodes client requests from a connection's read buffer, consuming what it uses.
///
/// Stateful on purpose: a half-received array keeps its completed arguments and its
/// position here, so bytes are looked at once however the command is split across
/// reads. Arguments are copied out of the read buffer rather than sliced from it: a
/// slice would pin the whole read allocation for as long as the cache holds the
/// value.
#[derive(Debug, Default)]
pub struct RequestDecoder {
    pending: Option<Multibulk>,
}

/// A `*N` request whose header was read but not all of its elements.
#[derive(Debug)]
struct Multibulk {
    remaining: usize,
    args: Vec<Bytes>,
    /// Length of the bulk whose `$` header was consumed and whose data has not all
    /// arrived yet.
    bulk_len: Option<usize>,
    bytes: usize,
}

impl RequestDecoder {
    /// A decoder at a command boundary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the decoder is inside a command (some of it consumed from the buffer).
    pub fn in_progress(&self) -> bool {
        self.pending.is_some()
    }

    /// Decodes the next complete command from `buf`: `Ok(Some(args))` with at least one
    /// argument, `Ok(None)` when `buf` holds no complete command yet (whatever part of
    /// one it held is kept here), or the protocol error that ends the connection.
    /// Empty commands (`*0`, blank inline lines) are skipped, as Redis does.
    pub fn decode(&mut self, buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if self.pending.is_none() {
                let Some(&first) = buf.first() else {
                    return Ok(None);
                };
                if first == b'*' {
                    let Some(count) =
                        take_header(buf, ProtocolError::MultibulkCountTooBig, ProtocolError::MultibulkLength)?
                    else {
                        return Ok(None);
                    };
                    if count <= 0 {
                        continue;
                    }
                    let count = usize::try_from(count).map_err(|_| ProtocolError::MultibulkLength)?;
                    if count > limits.max_args {
                        return Err(if limits.unauthenticated {
                            ProtocolError::UnauthenticatedMultibulkLength
                        } else {
                            ProtocolError::MultibulkLength
                        });
                    }
                    self.pending = Some(Multibulk {
                        remaining: count,
                        args: Vec::with_capacity(count.min(PREALLOC)),
                        bulk_len: None,
                        bytes: 0,
                    });
                } else {
                    match take_inline(buf, limits)? {
                        None => return Ok(None),
                        Some(args) if args.is_empty() => continue,
                        Some(args) => return Ok(Some(args)),
                    }
                }
            }
            let Some(mb) = self.pending.as_mut() else {
                continue;
            };
            while mb.remaining > 0 {
                let len = match mb.bulk_len {
                    Some(len) => len,
                    None => {
                        let Some(&first) = buf.first() else {
                            return Ok(None);
                        };
                        if first != b'$' {
                            return Err(ProtocolError::ExpectedBulk(char::from(first)));
                        }
                        let Some(len) = take_header(buf, ProtocolError::BulkCountTooBig, ProtocolError::BulkLength)?
                        else {
                            return Ok(None);
                        };
                        let len = usize::try_from(len).map_err(|_| ProtocolError::BulkLength)?;
                        if len > limits.max_bulk_len {
                            return Err(if limits.unauthenticated {
                                ProtocolError::UnauthenticatedBulkLength
                            } else {
                                ProtocolError::BulkLength
                            });
                        }
                        if mb.bytes.saturating_add(len) > limits.max_query_bytes {
                            return Err(ProtocolError::QueryTooBig);
                        }
                        mb.bulk_len = Some(len);
                        len
                    }
                };
                let Some(terminator) = buf.get(len..len.saturating_add(2)) else {
                    return Ok(None);
                };
                if terminator != b"\r\n" {
                    return Err(ProtocolError::BulkLength);
                }
                mb.args.push(Bytes::copy_from_slice(&buf[..len]));
                buf.advance(len + 2);
                mb.bytes += len;
                mb.bulk_len = None;
                mb.remaining -= 1;
            }
            if let Some(done) = self.pending.take() {
                return Ok(Some(done.args));
            }
        }
    }
}

/// Consumes a `*N\r\n` or `$N\r\n` header from the front of `buf` and returns N, or
/// `None` (consuming nothing) when the CRLF has not arrived yet.
fn take_header(
    buf: &mut BytesMut,
    too_long: ProtocolError,
    invalid: ProtocolError,
) -> Result<Option<i64>, ProtocolError> {
    let window = &buf[..buf.len().min(MAX_LINE)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        return if buf.len() >= MAX_LINE { Err(too_long) } else { Ok(None) };
    };
    match buf.get(cr + 1) {
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return Err(invalid),
    }
    let value = buf.get(1..cr).and_then(parse_i64).ok_or(invalid)?;
    buf.advance(cr + 2);
    Ok(Some(value))
}

/// Consumes one inline command line and splits it into arguments.
fn take_inline(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let window = &buf[..buf.len().min(MAX_LINE)];
    let Some(newline) = window.iter().position(|&b| b == b'\n') else {
        return if buf.len() >= MAX_LINE { Err(ProtocolError::InlineTooBig) } else { Ok(None) };
    };
    let mut line = &buf[..newline];
    if let Some(stripped) = line.strip_suffix(b"\r") {
        line = stripped;
    }
    let args = split_inline(line)?;
    if args.len() > limits.max_args {
        return Err(ProtocolError::MultibulkLength);
    }
    buf.advance(newline + 1);
    Ok(Some(args))
}

/// Splits an inline command line the way Redis's `sdssplitargs` does: arguments are
/// separated by whitespace; `"double quotes"` understand `\n \r \t \b \a \\ \"` and
/// `\xHH`; `'single quotes'` understand only `\'`; a closing quote must be followed by
/// whitespace or the end of the line.
pub fn split_inline(line: &[u8]) -> Result<Vec<Bytes>, ProtocolError> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while line.get(i).is_some_and(|&c| is_space(c)) {
            i += 1;
        }
        if i >= line.len() {
            return Ok(args);
        }
        let mut current = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            let c = line.get(i).copied();
            if in_double {
                match c {
                    None => return Err(ProtocolError::UnbalancedQuotes),
                    Some(b'\\') => {
                        let hex = match (line.get(i + 1), line.get(i + 2), line.get(i + 3)) {
                            (Some(b'x'), Some(&h), Some(&l)) => hex_value(h).zip(hex_value(l)),
                            _ => None,
                        };
                        if let Some((h, l)) = hex {
                            current.push(h * 16 + l);
                            i += 3;
                        } else if let Some(&next) = line.get(i + 1) {
                            current.push(match next {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 0x08,
                                b'a' => 0x07,
                                other => other,
                            });
                            i += 1;
                        } else {
                            current.push(b'\\');
                        }
                    }
                    Some(b'"') => {
                        if line.get(i + 1).is_some_and(|&n| !is_space(n)) {
                            return Err(ProtocolError::UnbalancedQuotes);
                        }
                        i += 1;
                        break;
                    }
                    Some(other) => current.push(other),
                }
            } else if in_single {
                match c {
                    None => return Err(ProtocolError::UnbalancedQuotes),
                    Some(b'\\') if line.get(i + 1) == Some(&b'\'') => {
                        current.push(b'\'');
                        i += 1;
                    }
                    Some(b'\'') => {
                        if line.get(i + 1).is_some_and(|&n| !is_space(n)) {
                            return Err(ProtocolError::UnbalancedQuotes);
                        }
                        i += 1;
                        break;
                    }
                    Some(other) => current.push(other),
                }
            } else {
                match c {
                    None => break,
                    Some(c) if is_space(c) => break,
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(other) => current.push(other),
                }
            }
            i += 1;
        }
        args.push(Bytes::from(current));
    }
}

/// C's `isspace`, which `sdssplitargs` separates on.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses a decimal the way Redis's `string2ll` does: optional `-`, no `+`, no
/// spaces, no leading zeros, no overflow. Used for RESP lengths and for integer
/// arguments, so `SELECT 01` is refused exactly where Redis refuses it.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    let mut magnitude: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

fn put_decimal(out: &mut BytesMut, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        // `rest % 10` is below 10, so the cast cannot truncate.
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.put_u8(b'-');
    }
    out.put_slice(&digits[at..]);
}

fn put_header(out: &mut BytesMut, prefix: u8, len: usize) {
    out.put_u8(prefix);
    put_decimal(out, i64::try_from(len).unwrap_or(i64::MAX));
    out.put_slice(b"\r\n");
}

fn put_bulk(out: &mut BytesMut, prefix: u8, data: &[u8]) {
    put_header(out, prefix, data.len());
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// A line-terminated frame. CR and LF inside the text (an engine error that quotes a
/// path, say) would end the frame early and desynchronise the client, so they become
/// spaces, as Redis does with error strings.
fn put_line(out: &mut BytesMut, prefix: u8, text: &[u8]) {
    out.put_u8(prefix);
    out.extend(text.iter().map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }));
    out.put_slice(b"\r\n");
}

fn put_aggregate(out: &mut BytesMut, proto: Protocol, prefix: u8, items: &[Frame]) {
    put_header(out, prefix, items.len());
    for item in items {
        item.encode(proto, out);
    }
}

/// RESP3's double syntax: `inf`, `-inf`, `nan`, otherwise the shortest text that
/// reads back as the same value.
fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".to_string()
    } else if d == f64::INFINITY {
        "inf".to_string()
    } else if d == f64::NEG_INFINITY {
        "-inf".to_string()
    } else {
        let text = format!("{d:?}");
        text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
    }
}

/// A cursor over a byte slice for [`Frame::parse`].
struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn invalid(msg: impl Into<String>) -> FrameError {
        FrameError::Invalid(msg.into())
    }

    /// The bytes up to the next CRLF, consuming them and the CRLF.
    fn line(&mut self) -> Result<&'a [u8], FrameError> {
        let buf: &'a [u8] = self.buf;
        let rest = buf.get(self.pos..).unwrap_or_default();
        let window = &rest[..rest.len().min(MAX_LINE)];
        let Some(cr) = window.iter().position(|&b| b == b'\r') else {
            return if rest.len() >= MAX_LINE {
                Err(Self::invalid("line too long"))
            } else {
                Err(FrameError::Incomplete)
            };
        };
        match rest.get(cr + 1) {
            None => return Err(FrameError::Incomplete),
            Some(b'\n') => {}
            Some(_) => return Err(Self::invalid("expected CRLF")),
        }
        self.pos += cr + 2;
        Ok(&rest[..cr])
    }

    fn integer(&mut self) -> Result<i64, FrameError> {
        let line = self.line()?;
        parse_i64(line).ok_or_else(|| Self::invalid("invalid integer"))
    }

    fn text(&mut self) -> Result<String, FrameError> {
        Ok(String::from_utf8_lossy(self.line()?).into_owned())
    }

    /// `len` bytes followed by CRLF.
    fn blob(&mut self, len: i64) -> Result<&'a [u8], FrameError> {
        let len = usize::try_from(len).map_err(|_| Self::invalid("invalid bulk length"))?;
        if len > MAX_PARSE_BULK {
            return Err(Self::invalid("invalid bulk length"));
        }
        let buf: &'a [u8] = self.buf;
        let rest = buf.get(self.pos..).unwrap_or_default();
        let (Some(data), Some(terminator)) = (rest.get(..len), rest.get(len..len + 2)) else {
            return Err(FrameError::Incomplete);
        };
        if terminator != b"\r\n" {
            return Err(Self::invalid("bulk data not followed by CRLF"));
        }
        self.pos += len + 2;
        Ok(data)
    }

    /// An aggregate's element count; `None` for RESP2's `*-1` null array.
    fn count(&mut self) -> Result<Option<usize>, FrameError> {
        match self.integer()? {
            -1 => Ok(None),
            n => usize::try_from(n).map(Some).map_err(|_| Self::invalid("invalid aggregate length")),
        }
    }

    fn items(&mut self, count: usize, depth: usize) -> Result<Vec<Frame>, FrameError> {
        let mut items = Vec::with_capacity(count.min(PREALLOC));
        for _ in 0..count {
            items.push(self.frame(depth + 1)?);
        }
        Ok(items)
    }

    fn frame(&mut self, depth: usize) -> Result<Frame, FrameError> {
        if depth > MAX_DEPTH {
            return Err(Self::invalid("aggregates nested too deep"));
        }
        let Some(&kind) = self.buf.get(self.pos) else {
            return Err(FrameError::Incomplete);
        };
        self.pos += 1;
        match kind {
            b'+' => Ok(Frame::Simple(self.text()?)),
            b'-' => Ok(Frame::Error(self.text()?)),
            b':' => Ok(Frame::Integer(self.integer()?)),
            b'$' => match self.integer()? {
                -1 => Ok(Frame::Null),
                len => Ok(Frame::Bulk(Bytes::copy_from_slice(self.blob(len)?))),
            },
            b'!' => {
                let len = self.integer()?;
                Ok(Frame::Error(String::from_utf8_lossy(self.blob(len)?).into_owned()))
            }
            b'=' => {
                let len = self.integer()?;
                let data = self.blob(len)?;
                match (data.get(..3), data.get(3), data.get(4..)) {
                    (Some(format), Some(b':'), Some(text)) => Ok(Frame::Verbatim {
                        format: [format[0], format[1], format[2]],
                        text: Bytes::copy_from_slice(text),
                    }),
                    _ => Err(Self::invalid("verbatim string without a format")),
                }
            }
            b'_' => match self.line()? {
                [] => Ok(Frame::Null),
                _ => Err(Self::invalid("null with data")),
            },
            b'#' => match self.line()? {
                b"t" => Ok(Frame::Boolean(true)),
                b"f" => Ok(Frame::Boolean(false)),
                _ => Err(Self::invalid("invalid boolean")),
            },
            b',' => {
                let text = self.text()?;
                let value = match text.as_str() {
                    "inf" | "+inf" => f64::INFINITY,
                    "-inf" => f64::NEG_INFINITY,
                    "nan" | "-nan" => f64::NAN,
                    other => other.parse().map_err(|_| Self::invalid("invalid double"))?,
                };
                Ok(Frame::Double(value))
            }
            b'(' => {
                let text = self.text()?;
                let digits = text.strip_prefix('-').unwrap_or(&text);
                if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(Self::invalid("invalid big number"));
                }
                Ok(Frame::BigNumber(text))
            }
            b'*' => match self.count()? {
                None => Ok(Frame::Null),
                Some(n) => Ok(Frame::Array(self.items(n, depth)?)),
            },
            b'~' => match self.count()? {
                None => Ok(Frame::Null),
                Some(n) => Ok(Frame::Set(self.items(n, depth)?)),
            },
            b'>' => match self.count()? {
                None => Ok(Frame::Null),
                Some(n) => Ok(Frame::Push(self.items(n, depth)?)),
            },
            b'%' => {
                let count = self.count()?.unwrap_or(0);
                let mut pairs = Vec::with_capacity(count.min(PREALLOC));
                for _ in 0..count {
                    let key = self.frame(depth + 1)?;
                    let value = self.frame(depth + 1)?;
                    pairs.push((key, value));
                }
                Ok(Frame::Map(pairs))
            }
            other => Err(Self::invalid(format!("unexpected type byte {:?}", char::from(other)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], limits: &Limits) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut buf = BytesMut::from(input);
        let mut decoder = RequestDecoder::new();
        let mut out = Vec::new();
        while let Some(args) = decoder.decode(&mut buf, limits)? {
            out.push(args);
        }
        Ok(out)
    }

    fn args(list: &[&[u8]]) -> Vec<Bytes> {
        list.iter().map(|a| Bytes::copy_from_slice(a)).collect()
    }

    #[test]
    fn decodes_multibulk_and_inline() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\0x\r\nPING\r\n  get   key \r\n";
        let got = decode_all(input, &Limits::default()).expect("valid input");
        assert_eq!(got, vec![args(&[b"SET", b"k", b"v\0x"]), args(&[b"PING"]), args(&[b"get", b"key"])]);
    }

    #[test]
    fn every_prefix_of_a_request_is_incomplete_and_leaves_nothing_lost() {
        let input: &[u8] = b"*3\r\n$3\r\nSET\r\n$4\r\nk\r\ny\r\n$0\r\n\r\n";
        for cut in 0..input.len() {
            let mut buf = BytesMut::from(&input[..cut]);
            let mut decoder = RequestDecoder::new();
            assert_eq!(decoder.decode(&mut buf, &Limits::default()), Ok(None), "prefix of {cut} bytes");
            // Feeding the rest to the same decoder completes the same command.
            buf.extend_from_slice(&input[cut..]);
            assert_eq!(
                decoder.decode(&mut buf, &Limits::default()),
                Ok(Some(args(&[b"SET", b"k\r\ny", b""]))),
                "split at {cut}"
            );
            assert!(buf.is_empty());
            assert!(!decoder.in_progress());
        }
    }

    #[test]
    fn byte_at_a_time_decoding_matches_whole_buffer() {
        let input: &[u8] = b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\nECHO \"a b\"\r\n*0\r\n*1\r\n$4\r\nPING\r\n";
        let whole = decode_all(input, &Limits::default()).expect("valid input");
        let mut decoder = RequestDecoder::new();
        let mut buf = BytesMut::new();
        let mut piecewise = Vec::new();
        for &b in input {
            buf.put_u8(b);
            while let Some(a) = decoder.decode(&mut buf, &Limits::default()).expect("valid input") {
                piecewise.push(a);
            }
        }
        assert_eq!(whole, piecewise);
        assert_eq!(whole.len(), 3);
    }

    #[test]
    fn malformed_requests_are_errors() {
        let limits = Limits::default();
        let cases: &[(&[u8], ProtocolError)] = &[
            (b"*x\r\n", ProtocolError::MultibulkLength),
            (b"*1\r\n:5\r\n", ProtocolError::ExpectedBulk(':')),
            (b"*1\r\n$-1\r\n", ProtocolError::BulkLength),
            (b"*1\r\n$abc\r\n", ProtocolError::BulkLength),
            (b"*1\r\n$3\r\nabcd\r\n", ProtocolError::BulkLength),
            (b"*1\r\n$+3\r\nabc\r\n", ProtocolError::BulkLength),
            (b"*01\r\n$3\r\nabc\r\n", ProtocolError::MultibulkLength),
            (b"*1\rx", ProtocolError::MultibulkLength),
            (b"*99999999999999999999999\r\n", ProtocolError::MultibulkLength),
            (b"SET \"a b\r\n", ProtocolError::UnbalancedQuotes),
            (b"SET 'a\r\n", ProtocolError::UnbalancedQuotes),
            (b"SET \"a\"b\r\n", ProtocolError::UnbalancedQuotes),
        ];
        for (input, want) in cases {
            assert_eq!(decode_all(input, &limits), Err(want.clone()), "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn limits_are_enforced_before_data_arrives() {
        let limits = Limits { max_bulk_len: 10, max_args: 3, max_query_bytes: 15, unauthenticated: false };
        assert_eq!(decode_all(b"*4\r\n", &limits), Err(ProtocolError::MultibulkLength));
        assert_eq!(decode_all(b"*1\r\n$11\r\n", &limits), Err(ProtocolError::BulkLength));
        assert_eq!(decode_all(b"*2\r\n$10\r\n0123456789\r\n$10\r\n", &limits), Err(ProtocolError::QueryTooBig));
        assert_eq!(decode_all(b"*1\r\n$10\r\n0123456789\r\n", &limits).map(|v| v.len()), Ok(1));
        assert_eq!(decode_all(b"PING a b c\r\n", &limits), Err(ProtocolError::MultibulkLength));
        let unauthenticated = Limits { unauthenticated: true, ..limits };
        assert_eq!(decode_all(b"*4\r\n", &unauthenticated), Err(ProtocolError::UnauthenticatedMultibulkLength));
        assert_eq!(decode_all(b"*1\r\n$11\r\n", &unauthenticated), Err(ProtocolError::UnauthenticatedBulkLength));
        // A claimed billion-element array allocates nothing up front.
        let mut buf = BytesMut::from(&b"*1000000000\r\n"[..]);
        let mut decoder = RequestDecoder::new();
        assert_eq!(decoder.decode(&mut buf, &Limits { max_args: usize::MAX, ..Limits::default() }), Ok(None));
        assert!(decoder.pending.as_ref().is_some_and(|mb| mb.args.capacity() <= PREALLOC));
    }

    #[test]
    fn overlong_lines_are_errors_not_waits() {
        let long = vec![b'a'; MAX_LINE + 1];
        assert_eq!(decode_all(&long, &Limits::default()), Err(ProtocolError::InlineTooBig));
        let mut header = b"*".to_vec();
        header.extend(std::iter::repeat_n(b'1', MAX_LINE));
        assert_eq!(decode_all(&header, &Limits::default()), Err(ProtocolError::MultibulkCountTooBig));
        let mut bulk = b"*1\r\n$".to_vec();
        bulk.extend(std::iter::repeat_n(b'1', MAX_LINE));
        assert_eq!(decode_all(&bulk, &Limits::default()), Err(ProtocolError::BulkCountTooBig));
    }

    #[test]
    fn inline_quoting_follows_sdssplitargs() {
        let split = |s: &[u8]| split_inline(s);
        assert_eq!(split(b"SET a b"), Ok(args(&[b"SET", b"a", b"b"])));
        assert_eq!(split(b"  \t "), Ok(vec![]));
        assert_eq!(split(b"SET \"hello world\" 'it\\'s'"), Ok(args(&[b"SET", b"hello world", b"it's"])));
        assert_eq!(split(b"ECHO \"\\x41\\x4a\\n\\t\\\"\\\\\""), Ok(args(&[b"ECHO", b"AJ\n\t\"\\"])));
        // Only \' is an escape inside single quotes.
        assert_eq!(split(b"ECHO 'a\\nb'"), Ok(args(&[b"ECHO", b"a\\nb"])));
        // Invalid hex falls back to the escaped character itself.
        assert_eq!(split(b"ECHO \"\\xZZ\""), Ok(args(&[b"ECHO", b"xZZ"])));
        // A quote inside a word opens a quoted section of that same word.
        assert_eq!(split(b"ECHO a\"b c\""), Ok(args(&[b"ECHO", b"ab c"])));
        assert_eq!(split(b"ECHO \"\""), Ok(args(&[b"ECHO", b""])));
        assert_eq!(split(b"ECHO 'it''s'"), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(split(b"ECHO \"abc"), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(split(b"ECHO \"abc\\"), Err(ProtocolError::UnbalancedQuotes));
    }

    #[test]
    fn integers_parse_like_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b""[..], b"-", b"-0", b"01", b"+1", b" 1", b"1 ", b"9223372036854775808", b"1a"] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    fn sample_frames() -> Vec<Frame> {
        vec![
            Frame::ok(),
            Frame::error("ERR boom"),
            Frame::Integer(-42),
            Frame::Integer(i64::MIN),
            Frame::bulk(&b"bin\0\r\nary"[..]),
            Frame::bulk(Bytes::new()),
            Frame::Null,
            Frame::Array(vec![Frame::Integer(1), Frame::Null, Frame::Array(vec![])]),
            Frame::Map(vec![(Frame::bulk("k"), Frame::Set(vec![Frame::simple("x")]))]),
            Frame::Double(1.5),
            Frame::Double(f64::INFINITY),
            Frame::Boolean(true),
            Frame::BigNumber("-123456789012345678901234567890".to_string()),
            Frame::text("line1\r\nline2"),
            Frame::Push(vec![Frame::bulk("message")]),
        ]
    }

    #[test]
    fn resp3_encoding_round_trips_through_the_parser() {
        for frame in sample_frames() {
            let bytes = frame.to_bytes(Protocol::Resp3);
            assert_eq!(Frame::parse(&bytes), Ok((frame.clone(), bytes.len())), "{frame:?}");
            assert!(frame.size_hint() + 8 >= bytes.len(), "size hint too small for {frame:?}");
        }
    }

    #[test]
    fn every_prefix_of_a_frame_is_incomplete() {
        for frame in sample_frames() {
            for proto in [Protocol::Resp2, Protocol::Resp3] {
                let bytes = frame.to_bytes(proto);
                for cut in 0..bytes.len() {
                    assert_eq!(Frame::parse(&bytes[..cut]), Err(FrameError::Incomplete), "{frame:?} cut at {cut}");
                }
                assert!(Frame::parse(&bytes).is_ok());
            }
        }
    }

    #[test]
    fn resp2_downgrades_resp3_types_like_redis() {
        let enc = |f: Frame| f.to_bytes(Protocol::Resp2);
        assert_eq!(enc(Frame::Null), &b"$-1\r\n"[..]);
        assert_eq!(Frame::Null.to_bytes(Protocol::Resp3), &b"_\r\n"[..]);
        assert_eq!(enc(Frame::Map(vec![(Frame::bulk("a"), Frame::Integer(1))])), &b"*2\r\n$1\r\na\r\n:1\r\n"[..]);
        assert_eq!(enc(Frame::Boolean(false)), &b":0\r\n"[..]);
        assert_eq!(enc(Frame::Double(2.5)), &b"$3\r\n2.5\r\n"[..]);
        assert_eq!(enc(Frame::text("hi")), &b"$2\r\nhi\r\n"[..]);
        assert_eq!(Frame::text("hi").to_bytes(Protocol::Resp3), &b"=6\r\ntxt:hi\r\n"[..]);
        assert_eq!(enc(Frame::Set(vec![Frame::Integer(7)])), &b"*1\r\n:7\r\n"[..]);
    }

    #[test]
    fn line_frames_cannot_be_broken_by_embedded_newlines() {
        assert_eq!(Frame::error("ERR a\r\nb").to_bytes(Protocol::Resp2), &b"-ERR a  b\r\n"[..]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let cases: &[&[u8]] = &[
            b"?\r\n",
            b"$-2\r\n",
            b"$3\r\nabcd\r\n",
            b":12x\r\n",
            b"#x\r\n",
            b",notanumber\r\n",
            b"(12a\r\n",
            b"=2\r\nab\r\n",
            b"_x\r\n",
            b"*-2\r\n",
            b"+ok\rX",
        ];
        for input in cases {
            assert!(
                matches!(Frame::parse(input), Err(FrameError::Invalid(_))),
                "{:?} -> {:?}",
                String::from_utf8_lossy(input),
                Frame::parse(input)
            );
        }
        let deep = b"*1\r\n".repeat(MAX_DEPTH + 2);
        assert!(matches!(Frame::parse(&deep), Err(FrameError::Invalid(_))));
    }

    #[test]
    fn random_bytes_never_panic_either_parser() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet = b"*$:+-_#,(=%~>!\r\n0123456789-abc \"'\\x";
        for _ in 0..20_000 {
            let len = rng.random_range(0..40);
            let input: Vec<u8> =
                (0..len)
                    .map(|_| {
                        if rng.random_bool(0.8) {
                            alphabet[rng.random_range(0..alphabet.len())]
                        } else {
                            rng.random()
                        }
                    })
                    .collect();
            let _ = Frame::parse(&input);
            let _ = decode_all(&input, &Limits::default());
        }
    }
}
