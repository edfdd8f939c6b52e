#![no_main]
//! `Snapshot::from_bytes` never panics and round-trips stably.

use cairn_format::Snapshot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cairn_fuzz::stable(data, Snapshot::from_bytes, Snapshot::to_bytes);
});
