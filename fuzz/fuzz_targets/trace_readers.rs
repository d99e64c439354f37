//! Every trace reader on arbitrary file contents (the first byte picks the format):
//! a malformed record is an error naming where it is, never a panic. The bytes go
//! through a file because readers take paths (zstd detection reads the magic).
#![no_main]

use augur_simulators::trace::{open_trace, ReadOptions, TraceFormat};
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
    let path = std::env::temp_dir().join(format!("augur-fuzz-{}.trace", std::process::id()));
    if std::fs::write(&path, body).is_err() {
        return;
    }
    let options = ReadOptions { skip_bad: pick & 0x80 != 0, ..ReadOptions::default() };
    if let Ok(mut reader) = open_trace(&path, Some(format), &options) {
        for _ in 0..100_000 {
            match reader.next_request() {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
});
