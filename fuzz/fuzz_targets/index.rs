#![no_main]
//! `IndexFile::from_bytes` never panics and round-trips stably.

use cairn_format::IndexFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cairn_fuzz::stable(data, IndexFile::from_bytes, IndexFile::to_bytes);
});
