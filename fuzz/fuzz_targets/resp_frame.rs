//! The general RESP2/RESP3 frame parser on arbitrary bytes: never a panic; a parsed
//! frame never claims more bytes than it was given.
#![no_main]

use augur_engine::server::frame::Frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((_frame, used)) = Frame::parse(data) {
        assert!(used <= data.len());
    }
});
