#![no_main]
//! `VolumeNode::from_bytes` never panics and round-trips stably.

use cairn_format::VolumeNode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cairn_fuzz::stable(data, VolumeNode::from_bytes, VolumeNode::to_bytes);
});
