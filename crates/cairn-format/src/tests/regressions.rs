//! Regression tests: every input that once crashed a fuzz target or broke a round trip gets a
//! test here, named after the target that found it, that feeds it to `parse_everything`.
//! Fuzzing has found none so far (see `fuzz/README.md`); the seeds the targets start from are
//! checked here so they stay valid as the format evolves.

use super::robustness::parse_everything;
use crate::{
    IndexFile, KeyFile, Lock, PackTrailer, RepoConfig, Snapshot, Tree, VolumeNode,
    decode_blob_payload_header, parse_pack_footer,
};

macro_rules! seed {
    ($target:literal, $name:literal) => {
        include_bytes!(concat!("../../../../fuzz/seeds/", $target, "/", $name)).as_slice()
    };
}

#[test]
fn fuzz_seeds_are_valid() {
    Tree::from_bytes(seed!("tree", "sample")).unwrap();
    Tree::from_bytes(seed!("tree", "empty")).unwrap();
    IndexFile::from_bytes(seed!("index", "sample")).unwrap();
    VolumeNode::from_bytes(seed!("volume_node", "leaf")).unwrap();
    VolumeNode::from_bytes(seed!("volume_node", "interior")).unwrap();
    Snapshot::from_bytes(seed!("snapshot", "node")).unwrap();
    Snapshot::from_bytes(seed!("snapshot", "volume")).unwrap();
    RepoConfig::from_bytes(seed!("config", "sample")).unwrap();
    KeyFile::from_bytes(seed!("key", "sample")).unwrap();
    Lock::from_bytes(seed!("lock", "sample")).unwrap();
    decode_blob_payload_header(seed!("blob_payload", "raw")).unwrap();
    decode_blob_payload_header(seed!("blob_payload", "zstd")).unwrap();

    // pack_trailer inputs are `pack length (u64 LE) ‖ bytes`.
    let split = |b: &'static [u8]| {
        let (len, rest) = b.split_first_chunk::<8>().unwrap();
        (u64::from_le_bytes(*len), rest)
    };
    let (data_end, trailer) = split(seed!("pack_trailer", "trailer"));
    PackTrailer::from_bytes(trailer, data_end).unwrap();
    let (pack_len, footer) = split(seed!("pack_trailer", "footer"));
    parse_pack_footer(footer, pack_len).unwrap();
}

#[test]
fn fuzz_seeds_survive_every_parser() {
    for seed in [
        seed!("tree", "sample"),
        seed!("index", "sample"),
        seed!("volume_node", "leaf"),
        seed!("snapshot", "node"),
        seed!("snapshot", "volume"),
        seed!("config", "sample"),
        seed!("key", "sample"),
        seed!("lock", "sample"),
        seed!("pack_trailer", "trailer"),
    ] {
        for pack_len in [0, 100, 1 << 20, u64::MAX] {
            parse_everything(seed, pack_len);
        }
    }
}
