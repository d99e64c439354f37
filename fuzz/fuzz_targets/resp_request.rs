//! The RESP request decoder on arbitrary client bytes, fed in arbitrary chunks:
//! never a panic, never an allocation sized by a claimed length, and decoding in
//! pieces agrees with decoding at once.
#![no_main]

use augur_engine::server::frame::{Limits, RequestDecoder};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fn decode_all(chunks: &[&[u8]], limits: &Limits) -> Vec<Result<Vec<bytes::Bytes>, String>> {
    let mut decoder = RequestDecoder::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf, limits) {
                Ok(Some(args)) => out.push(Ok(args)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out; // the server closes the connection on a protocol error
                }
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_bulk_len: 4096, max_args: 64, max_query_bytes: 16384, unauthenticated: false };
    let whole = decode_all(&[data], &limits);
    let split = data.len() / 2 + usize::from(data.first().copied().unwrap_or(0) % 3);
    let split = split.min(data.len());
    let pieces = decode_all(&[&data[..split], &data[split..]], &limits);
    assert_eq!(whole, pieces, "decoding must not depend on how bytes arrive");
});
