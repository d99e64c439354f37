//! WAL record decoding on arbitrary bytes (a corrupt or hostile log file): never a
//! panic, never an allocation sized by a corrupt count, and every record that
//! decodes re-encodes to the same bytes.
#![no_main]

use augur_engine::wal::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut offset = 0;
    while offset < data.len() {
        match decode(&data[offset..]) {
            Ok((record, len)) => {
                let mut again = Vec::new();
                encode(&mut again, record.first_seq, &record.entries);
                assert_eq!(&again[..], &data[offset..offset + len]);
                offset += len;
            }
            Err(_) => break,
        }
    }
});
