//! Parsers fed arbitrary or damaged bytes never panic, and what they accept re-encodes to
//! bytes that parse to the same value and re-encode identically (the fuzz targets check the
//! same property with coverage guidance; see `fuzz/`).

use proptest::prelude::*;

use super::*;
use crate::{
    FormatError, IndexFile, KeyFile, Lock, PackTrailer, RepoConfig, Snapshot, Tree, VolumeNode,
    decode_blob_payload_header, parse_pack_footer,
};

/// Parses `bytes`; if that succeeds, checks the encode → parse → encode cycle is stable.
fn stable<T: PartialEq + std::fmt::Debug>(
    bytes: &[u8],
    parse: impl Fn(&[u8]) -> Result<T, FormatError>,
    encode: impl Fn(&T) -> Result<Vec<u8>, FormatError>,
) {
    if let Ok(v) = parse(bytes) {
        let again = encode(&v).unwrap();
        let w = parse(&again).unwrap();
        assert_eq!(v, w);
        assert_eq!(encode(&w).unwrap(), again);
    }
}

/// Runs every parser on `bytes`.
pub(super) fn parse_everything(bytes: &[u8], pack_len: u64) {
    stable(bytes, Tree::from_bytes, Tree::to_bytes);
    stable(bytes, IndexFile::from_bytes, IndexFile::to_bytes);
    stable(
        bytes,
        |b| PackTrailer::from_bytes(b, pack_len),
        PackTrailer::to_bytes,
    );
    stable(bytes, VolumeNode::from_bytes, VolumeNode::to_bytes);
    stable(bytes, Snapshot::from_bytes, Snapshot::to_bytes);
    stable(bytes, RepoConfig::from_bytes, RepoConfig::to_bytes);
    stable(bytes, KeyFile::from_bytes, KeyFile::to_bytes);
    stable(bytes, Lock::from_bytes, Lock::to_bytes);
    if let Ok((codec, body)) = decode_blob_payload_header(bytes) {
        assert_eq!(bytes[0], codec.as_byte());
        assert_eq!(body, &bytes[1..]);
    }
    if bytes.len() >= crate::PACK_FOOTER_LEN {
        let footer = &bytes[bytes.len() - crate::PACK_FOOTER_LEN..];
        if let Ok((offset, len)) = parse_pack_footer(footer, pack_len) {
            assert_eq!(crate::pack_footer(len), footer);
            assert!(offset >= PACK_HEADER.len() as u64);
            assert_eq!(
                offset + u64::from(len) + crate::PACK_FOOTER_LEN as u64,
                pack_len
            );
        }
    }
    let _ = parse_pack_footer(bytes, pack_len);
    let _ = std::str::from_utf8(bytes).map(str::parse::<Id>);
}

/// A damage to apply to a valid encoding.
#[derive(Debug, Clone)]
enum Damage {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
}

fn arb_damage() -> impl Strategy<Value = Vec<Damage>> {
    proptest::collection::vec(
        prop_oneof![
            (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Damage::Flip(i, x)),
            any::<usize>().prop_map(Damage::Truncate),
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Damage::Insert(i, b)),
            any::<usize>().prop_map(Damage::Remove),
        ],
        1..4,
    )
}

fn damage(mut b: Vec<u8>, ds: &[Damage]) -> Vec<u8> {
    for d in ds {
        let n = b.len();
        match *d {
            Damage::Flip(i, x) if n > 0 => b[i % n] ^= x,
            Damage::Truncate(i) => b.truncate(i % (n + 1)),
            Damage::Insert(i, x) => b.insert(i % (n + 1), x),
            Damage::Remove(i) if n > 0 => {
                b.remove(i % n);
            }
            _ => {}
        }
    }
    b
}

fn arb_valid_encoding() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        arb_tree().prop_map(|v| v.to_bytes().unwrap()),
        arb_index().prop_map(|v| v.to_bytes().unwrap()),
        arb_trailer().prop_map(|(v, _)| v.to_bytes().unwrap()),
        arb_volume_node().prop_map(|v| v.to_bytes().unwrap()),
        arb_snapshot().prop_map(|v| v.to_bytes().unwrap()),
        arb_config().prop_map(|v| v.to_bytes().unwrap()),
        arb_key().prop_map(|v| v.to_bytes().unwrap()),
        arb_lock().prop_map(|v| v.to_bytes().unwrap()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        pack_len in prop_oneof![any::<u64>(), 0u64..4096],
    ) {
        parse_everything(&bytes, pack_len);
    }

    #[test]
    fn arbitrary_json_never_panics(
        v in proptest::arbitrary::any::<String>().prop_map(|s| format!("{{\"version\":1,{s}}}")),
    ) {
        parse_everything(v.as_bytes(), 1000);
    }

    #[test]
    fn damaged_encodings_never_panic(
        b in arb_valid_encoding(),
        ds in arb_damage(),
        pack_len in 0u64..100_000,
    ) {
        parse_everything(&damage(b, &ds), pack_len);
    }
}
