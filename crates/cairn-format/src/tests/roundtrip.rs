//! `decode(encode(x)) == x` for every format, and the encoding of ids.

use proptest::prelude::*;

use super::*;
use crate::{IndexFile, KeyFile, Lock, PackTrailer, RepoConfig, Snapshot, Tree, VolumeNode};

proptest! {
    #[test]
    fn tree_roundtrips(t in arb_tree()) {
        let bytes = t.to_bytes().unwrap();
        prop_assert_eq!(Tree::from_bytes(&bytes).unwrap(), t);
    }

    #[test]
    fn index_roundtrips(i in arb_index()) {
        let bytes = i.to_bytes().unwrap();
        prop_assert_eq!(IndexFile::from_bytes(&bytes).unwrap(), i);
    }

    #[test]
    fn pack_trailer_roundtrips((t, data_end) in arb_trailer()) {
        let bytes = t.to_bytes().unwrap();
        prop_assert_eq!(PackTrailer::from_bytes(&bytes, data_end).unwrap(), t);
    }

    #[test]
    fn pack_footer_locates_the_trailer(len in 0u32..1 << 20, data in 0u64..1 << 20) {
        let pack_len = PACK_HEADER.len() as u64 + data + u64::from(len) + crate::PACK_FOOTER_LEN as u64;
        let (offset, got) = crate::parse_pack_footer(&crate::pack_footer(len), pack_len).unwrap();
        prop_assert_eq!(got, len);
        prop_assert_eq!(offset, PACK_HEADER.len() as u64 + data);
    }

    #[test]
    fn volume_node_roundtrips(n in arb_volume_node()) {
        let bytes = n.to_bytes().unwrap();
        prop_assert_eq!(VolumeNode::from_bytes(&bytes).unwrap(), n);
    }

    #[test]
    fn volume_map_validates(m in arb_volume_map()) {
        prop_assert!(m.validate().is_ok());
    }

    #[test]
    fn snapshot_roundtrips(s in arb_snapshot()) {
        let bytes = s.to_bytes().unwrap();
        prop_assert_eq!(Snapshot::from_bytes(&bytes).unwrap(), s);
    }

    #[test]
    fn config_roundtrips(c in arb_config()) {
        let bytes = c.to_bytes().unwrap();
        prop_assert_eq!(RepoConfig::from_bytes(&bytes).unwrap(), c);
    }

    #[test]
    fn key_roundtrips(k in arb_key()) {
        let bytes = k.to_bytes().unwrap();
        prop_assert_eq!(KeyFile::from_bytes(&bytes).unwrap(), k);
    }

    #[test]
    fn lock_roundtrips(l in arb_lock()) {
        let bytes = l.to_bytes().unwrap();
        prop_assert_eq!(Lock::from_bytes(&bytes).unwrap(), l);
    }

    #[test]
    fn id_hex_roundtrips(id in arb_id()) {
        let hex = id.to_hex();
        prop_assert_eq!(hex.len(), 64);
        prop_assert!(hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        prop_assert_eq!(hex.parse::<Id>().unwrap(), id);
        prop_assert_eq!(hex.to_uppercase().parse::<Id>().unwrap(), id);
        prop_assert_eq!(id.to_string(), hex.clone());
        prop_assert_eq!(&id.short(), &hex[..8]);
        prop_assert_eq!(crate::layout::pack_path(&id), format!("data/{}/{hex}", &hex[..2]));
    }

    #[test]
    fn id_is_a_hex_string_in_json(id in arb_id()) {
        let json = serde_json::to_string(&id).unwrap();
        prop_assert_eq!(&json, &format!("\"{}\"", id.to_hex()));
        prop_assert_eq!(serde_json::from_str::<Id>(&json).unwrap(), id);
    }

    #[test]
    fn id_is_32_raw_bytes_in_postcard(id in arb_id()) {
        let bytes = postcard::to_allocvec(&id).unwrap();
        prop_assert_eq!(bytes.as_slice(), id.0.as_slice());
        prop_assert_eq!(postcard::from_bytes::<Id>(&bytes).unwrap(), id);
    }
}

fn roundtrip<T: PartialEq + std::fmt::Debug>(
    value: &T,
    encode: impl Fn(&T) -> Result<Vec<u8>, crate::FormatError>,
    parse: impl Fn(&[u8]) -> Result<T, crate::FormatError>,
) {
    assert_eq!(&parse(&encode(value).unwrap()).unwrap(), value);
}

#[test]
fn samples_roundtrip() {
    use super::sample;
    roundtrip(&sample::tree(), Tree::to_bytes, Tree::from_bytes);
    roundtrip(&sample::index(), IndexFile::to_bytes, IndexFile::from_bytes);
    roundtrip(&sample::trailer(), PackTrailer::to_bytes, |b| {
        PackTrailer::from_bytes(b, 98)
    });
    roundtrip(
        &sample::volume_node(),
        VolumeNode::to_bytes,
        VolumeNode::from_bytes,
    );
    roundtrip(
        &sample::tree_snapshot(),
        Snapshot::to_bytes,
        Snapshot::from_bytes,
    );
    roundtrip(
        &sample::snapshot(crate::Root::Volume(sample::volume_map())),
        Snapshot::to_bytes,
        Snapshot::from_bytes,
    );
    roundtrip(
        &sample::config(),
        RepoConfig::to_bytes,
        RepoConfig::from_bytes,
    );
    roundtrip(&sample::key(), KeyFile::to_bytes, KeyFile::from_bytes);
    roundtrip(&sample::lock(), Lock::to_bytes, Lock::from_bytes);
}

/// The byte layout that `docs/format.md` specifies, pinned.
#[test]
fn wire_layout_matches_the_spec() {
    use super::sample;
    // Tree: version 1, one node; postcard varint lengths; the name as length-prefixed bytes.
    let mut fifo = crate::Node::new(b"p".to_vec(), crate::NodeKind::Fifo);
    fifo.mode = 0o644;
    let bytes = Tree { nodes: vec![fifo] }.to_bytes().unwrap();
    let mut expect = vec![1, 1, 1, b'p', 5];
    expect.extend([0xa4, 0x03]); // mode 420 as varint
    expect.extend([0; 2 + 1 + 3 + 4]); // uid gid size mtime atime ctime dev inode nlink rdev
    expect.extend([0, 0, 0, 0]); // xattrs, link_target, content, subtree None
    assert_eq!(bytes, expect);

    // Pack trailer: version 1, count, then id(32) kind offset length raw_length.
    let bytes = PackTrailer {
        blobs: vec![sample::blob(8, 40)],
    }
    .to_bytes()
    .unwrap();
    let mut expect = vec![1, 1];
    expect.extend([3; 32]);
    expect.extend([0, 8, 40, 40]);
    assert_eq!(bytes, expect);

    // Volume node: version 1, variant 1 (leaf), count, chunk variants.
    let bytes = sample::volume_node().to_bytes().unwrap();
    assert_eq!(&bytes[..5], &[1, 1, 3, 0, 1]);

    // Footer: length LE, then "CPK1".
    assert_eq!(crate::pack_footer(0x0102_0304), *b"\x04\x03\x02\x01CPK1");

    // Associated data.
    let aad = crate::blob_aad(crate::BlobKind::Tree, &Id([0xee; 32]));
    assert_eq!(&aad[..13], b"cairn blob v1");
    assert_eq!(aad[13], 1);
    assert_eq!(&aad[14..], &[0xee; 32]);
    assert_eq!(crate::object_aad("pack trailer"), b"cairn pack trailer v1");
    assert_eq!(
        crate::layout::object_path("index", &Id([0xab; 32])),
        format!("index/{}", "ab".repeat(32))
    );
}

/// JSON field names and forms that `docs/format.md` documents.
#[test]
fn json_forms_match_the_spec() {
    use super::sample;
    let v: serde_json::Value =
        serde_json::from_slice(&sample::tree_snapshot().to_bytes().unwrap()).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["time"], "2024-05-01T12:34:56.789Z");
    assert_eq!(v["source"]["kind"], "tree");
    assert_eq!(v["parent"], serde_json::Value::Null);
    let node = &v["root"]["node"];
    assert_eq!(node["name"], serde_json::json!([100, 97, 116, 97]));
    assert_eq!(node["kind"], "File");
    assert_eq!(node["content"], serde_json::json!([{"Hole": {"len": 3}}]));
    let v: serde_json::Value = serde_json::from_slice(
        &sample::snapshot(crate::Root::Volume(sample::volume_map()))
            .to_bytes()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(v["root"]["volume"]["top"][0], "09".repeat(32));
    let v: serde_json::Value =
        serde_json::from_slice(&sample::config().to_bytes().unwrap()).unwrap();
    assert_eq!(v["id"], "02".repeat(32));
    assert_eq!(v["chunker"]["avg"], 1024 * 1024);
}
