#![no_main]
//! `Lock::from_bytes` never panics and round-trips stably.

use cairn_format::Lock;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cairn_fuzz::stable(data, Lock::from_bytes, Lock::to_bytes);
});
