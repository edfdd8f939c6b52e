#![no_main]
//! `KeyFile::from_bytes` never panics and round-trips stably.

use cairn_format::KeyFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cairn_fuzz::stable(data, KeyFile::from_bytes, KeyFile::to_bytes);
});
