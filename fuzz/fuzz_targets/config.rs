#![no_main]
//! `RepoConfig::from_bytes` never panics and round-trips stably.

use cairn_format::RepoConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cairn_fuzz::stable(data, RepoConfig::from_bytes, RepoConfig::to_bytes);
});
