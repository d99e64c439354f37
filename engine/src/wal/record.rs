//! WAL record encoding.
//!
//! A segment file starts with an 8-byte magic and a u32 format version, then holds
//! records back to back, all little-endian:
//!
//! ```text
//! record  = body_len:u32  crc32(body):u32  body
//! body    = first_seq:u64  count:u32  entry{count}
//! entry   = op:u8  key_len:u32  key  [value_len:u32  value]   (value only for SET)
//! ```
//!
//! One record holds one client call (a SET, or a whole MSET / DEL of many keys), so
//! recovery restores a multi-key write entirely or not at all. Entry `i` has
//! sequence number `first_seq + i`.

use bytes::{Buf, BufMut, Bytes};

/// Bytes at the start of every segment file.
pub const MAGIC: &[u8; 8] = b"AUGURWAL";
/// Format version after the magic.
pub const VERSION: u32 = 1;
/// Header length of a segment file.
pub const FILE_HEADER_LEN: usize = 12;
/// Bytes before a record's body.
pub const RECORD_HEADER_LEN: usize = 8;

const OP_SET: u8 = 1;
const OP_DEL: u8 = 2;

/// One logged write: a value, or `None` for a delete.
pub type Entry = (Bytes, Option<Bytes>);

/// Appends one record for `entries` (sequence numbers from `first_seq`) to `out`.
pub fn encode(out: &mut Vec<u8>, first_seq: u64, entries: &[Entry]) {
    let body_len: usize =
        12 + entries.iter().map(|(k, v)| 5 + k.len() + v.as_ref().map_or(0, |v| 4 + v.len())).sum::<usize>();
    out.reserve(RECORD_HEADER_LEN + body_len);
    let start = out.len();
    out.put_u32_le(body_len as u32);
    out.put_u32_le(0); // crc, filled below
    out.put_u64_le(first_seq);
    out.put_u32_le(entries.len() as u32);
    for (key, value) in entries {
        out.put_u8(if value.is_some() { OP_SET } else { OP_DEL });
        out.put_u32_le(key.len() as u32);
        out.put_slice(key);
        if let Some(value) = value {
            out.put_u32_le(value.len() as u32);
            out.put_slice(value);
        }
    }
    let crc = crc32fast::hash(&out[start + RECORD_HEADER_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A decoded record.
#[derive(Debug, PartialEq, Eq)]
pub struct Record {
    /// Sequence number of the first entry.
    pub first_seq: u64,
    /// The entries, in order.
    pub entries: Vec<Entry>,
}

/// Why bytes at some offset are not a valid record.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer ends before the record does (a torn write at the end of a log).
    Truncated,
    /// The record is complete but its checksum or structure is wrong.
    Corrupt(String),
}

/// Decodes the record at the start of `buf`; returns it and its total length.
pub fn decode(buf: &[u8]) -> Result<(Record, usize), DecodeError> {
    if buf.len() < RECORD_HEADER_LEN {
        return Err(DecodeError::Truncated);
    }
    let body_len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let total = RECORD_HEADER_LEN + body_len;
    if buf.len() < total {
        return Err(DecodeError::Truncated);
    }
    let body = &buf[RECORD_HEADER_LEN..total];
    if crc32fast::hash(body) != crc {
        return Err(DecodeError::Corrupt("checksum mismatch".into()));
    }
    let record = decode_body(body).ok_or_else(|| DecodeError::Corrupt("malformed record body".into()))?;
    Ok((record, total))
}

fn decode_body(mut body: &[u8]) -> Option<Record> {
    if body.len() < 12 {
        return None;
    }
    let first_seq = body.get_u64_le();
    let count = body.get_u32_le() as usize;
    // Each entry takes at least 5 bytes: a count larger than that is corrupt, and
    // checking first keeps a bad count from allocating.
    if count > body.len() / 5 {
        return None;
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        if body.remaining() < 5 {
            return None;
        }
        let op = body.get_u8();
        let key = take(&mut body)?;
        let value = match op {
            OP_SET => Some(take(&mut body)?),
            OP_DEL => None,
            _ => return None,
        };
        entries.push((key, value));
    }
    if body.has_remaining() {
        return None;
    }
    Some(Record { first_seq, entries })
}

fn take(body: &mut &[u8]) -> Option<Bytes> {
    if body.remaining() < 4 {
        return None;
    }
    let len = body.get_u32_le() as usize;
    if body.remaining() < len {
        return None;
    }
    let out = Bytes::copy_from_slice(&body[..len]);
    body.advance(len);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Entry> {
        vec![
            (Bytes::from_static(b"k\0\xff"), Some(Bytes::from_static(b""))),
            (Bytes::new(), None),
            (Bytes::from_static(b"x"), Some(Bytes::from(vec![7u8; 1000]))),
        ]
    }

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        encode(&mut buf, 42, &sample());
        let (record, len) = decode(&buf).expect("decodes");
        assert_eq!(len, buf.len());
        assert_eq!(record, Record { first_seq: 42, entries: sample() });
    }

    #[test]
    fn every_prefix_is_truncated_and_every_flip_is_detected() {
        let mut buf = Vec::new();
        encode(&mut buf, 1, &sample());
        for cut in 0..buf.len() {
            assert_eq!(decode(&buf[..cut]).err(), Some(DecodeError::Truncated), "cut at {cut}");
        }
        for i in RECORD_HEADER_LEN..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert!(matches!(decode(&bad), Err(DecodeError::Corrupt(_))), "flip at {i}");
        }
    }
}
