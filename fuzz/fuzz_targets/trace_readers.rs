//! Every trace reader on arbitrary file contents (the first byte picks the format):
//! a malformed record is an error naming where it is, never a panic. Readers read
//! from memory here; zstd detection (a magic-byte check) is left out.
#![no_main]

use augur_simulators::trace::{open_trace_bytes, ReadOptions, TraceFormat};
use libfuzzer_sys::fuzz_target;

const FORMATS: [TraceFormat; 6] = [
    TraceFormat::OracleGeneral,
    TraceFormat::Vscsi,
    TraceFormat::Csv,
    TraceFormat::Txt,
    TraceFormat::Twitter,
    TraceFormat::Augur,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let format = FORMATS[usize::from(pick) % FORMATS.len()];
    let options = ReadOptions { skip_bad: pick & 0x80 != 0, ..ReadOptions::default() };
    if let Ok(mut reader) = open_trace_bytes(body.to_vec(), "fuzz-input", format, &options) {
        for _ in 0..100_000 {
            match reader.next_request() {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
});
