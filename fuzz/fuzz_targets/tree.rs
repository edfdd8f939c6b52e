#![no_main]
//! `Tree::from_bytes` never panics and round-trips stably.

use cairn_format::Tree;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cairn_fuzz::stable(data, Tree::from_bytes, Tree::to_bytes);
});
