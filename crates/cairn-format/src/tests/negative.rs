//! Table tests: inputs every parser must refuse, and the error it must give.

use rstest::rstest;

use super::sample;
use crate::{
    Extent, FormatError, Id, IndexFile, KeyFile, Lock, Node, NodeKind, PackTrailer, RepoConfig,
    Root, Snapshot, Tree, VolChunk, VolumeLeaf, VolumeNode, Xattr, parse_pack_footer,
};

/// The four binary (version byte + postcard) formats.
#[derive(Debug, Clone, Copy)]
enum Bin {
    Tree,
    Index,
    Trailer,
    Volume,
}

impl Bin {
    fn sample(self) -> Vec<u8> {
        match self {
            Self::Tree => sample::tree().to_bytes(),
            Self::Index => sample::index().to_bytes(),
            Self::Trailer => sample::trailer().to_bytes(),
            Self::Volume => sample::volume_node().to_bytes(),
        }
        .unwrap()
    }

    fn parse(self, b: &[u8]) -> Result<(), FormatError> {
        match self {
            Self::Tree => Tree::from_bytes(b).map(drop),
            Self::Index => IndexFile::from_bytes(b).map(drop),
            Self::Trailer => PackTrailer::from_bytes(b, 1000).map(drop),
            Self::Volume => VolumeNode::from_bytes(b).map(drop),
        }
    }
}

/// The four JSON formats.
#[derive(Debug, Clone, Copy)]
enum Json {
    Config,
    Key,
    Snapshot,
    Lock,
}

impl Json {
    fn sample(self) -> serde_json::Value {
        let b = match self {
            Self::Config => sample::config().to_bytes(),
            Self::Key => sample::key().to_bytes(),
            Self::Snapshot => sample::tree_snapshot().to_bytes(),
            Self::Lock => sample::lock().to_bytes(),
        }
        .unwrap();
        serde_json::from_slice(&b).unwrap()
    }

    fn parse(self, b: &[u8]) -> Result<(), FormatError> {
        match self {
            Self::Config => RepoConfig::from_bytes(b).map(drop),
            Self::Key => KeyFile::from_bytes(b).map(drop),
            Self::Snapshot => Snapshot::from_bytes(b).map(drop),
            Self::Lock => Lock::from_bytes(b).map(drop),
        }
    }

    fn parse_value(self, v: &serde_json::Value) -> Result<(), FormatError> {
        self.parse(&serde_json::to_vec(v).unwrap())
    }
}

fn is_invalid(r: &Result<(), FormatError>) -> bool {
    matches!(r, Err(FormatError::Invalid { .. }))
}

#[rstest]
fn binary_samples_parse(#[values(Bin::Tree, Bin::Index, Bin::Trailer, Bin::Volume)] f: Bin) {
    f.parse(&f.sample()).unwrap();
}

#[rstest]
fn binary_version_is_checked(
    #[values(Bin::Tree, Bin::Index, Bin::Trailer, Bin::Volume)] f: Bin,
    #[values(0, 2, 255)] version: u8,
) {
    let mut b = f.sample();
    b[0] = version;
    assert!(matches!(
        f.parse(&b),
        Err(FormatError::UnsupportedVersion { version: v, supported: 1, .. }) if v == u32::from(version)
    ));
}

#[rstest]
fn binary_trailing_bytes_are_refused(
    #[values(Bin::Tree, Bin::Index, Bin::Trailer, Bin::Volume)] f: Bin,
    #[values(&[0][..], &[1, 2, 3][..])] extra: &[u8],
) {
    let mut b = f.sample();
    b.extend_from_slice(extra);
    let e = f.parse(&b).unwrap_err();
    assert!(e.to_string().contains("trailing bytes"), "{e}");
}

#[rstest]
fn binary_truncation_is_refused(
    #[values(Bin::Tree, Bin::Index, Bin::Trailer, Bin::Volume)] f: Bin,
) {
    let b = f.sample();
    assert!(matches!(f.parse(&[]), Err(FormatError::Truncated(_))));
    for len in 1..b.len() {
        assert!(f.parse(&b[..len]).is_err(), "{f:?} truncated to {len}");
    }
}

fn tree_of(names: &[&[u8]]) -> Tree {
    Tree {
        nodes: names
            .iter()
            .map(|n| Node::new(n.to_vec(), NodeKind::Fifo))
            .collect(),
    }
}

#[rstest]
#[case::unsorted(&["b", "a"])]
#[case::duplicate(&["a", "a"])]
#[case::dotdot(&[".."])]
#[case::dot(&["."])]
#[case::slash(&["a/b"])]
#[case::leading_slash(&["/etc"])]
#[case::empty(&[""])]
#[case::nul(&["a\0b"])]
#[case::later_bad(&["a", "b/.."])]
fn bad_tree_names_are_refused(#[case] names: &[&str]) {
    let names: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
    let b = tree_of(&names).to_bytes().unwrap();
    assert!(is_invalid(&Tree::from_bytes(&b).map(drop)));
}

#[rstest]
#[case::dots(&["...", ".a", "a."])]
#[case::prefix(&["a", "ab", "b"])]
#[case::unicode(&["Z", "a", "é"])]
fn odd_but_valid_names_are_accepted(#[case] names: &[&str]) {
    let names: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
    Tree::from_bytes(&tree_of(&names).to_bytes().unwrap()).unwrap();
}

#[test]
fn names_sort_as_bytes_and_need_not_be_utf8() {
    Tree::from_bytes(
        &tree_of(&[b"\xef", b"\xff\xfe", b"\xff\xff"])
            .to_bytes()
            .unwrap(),
    )
    .unwrap();
    assert!(Tree::from_bytes(&tree_of(&[b"\xff", b"a"]).to_bytes().unwrap()).is_err());
}

fn with_one(n: Node) -> Result<(), FormatError> {
    Tree::from_bytes(&Tree { nodes: vec![n] }.to_bytes().unwrap()).map(drop)
}

fn data(len: u32) -> Extent {
    Extent::Data {
        id: Id([1; 32]),
        len,
    }
}

#[rstest]
#[case::short(vec![data(5)], 10)]
#[case::long(vec![data(5), Extent::Hole { len: 6 }], 10)]
#[case::no_content(vec![], 1)]
#[case::content_without_size(vec![data(1)], 0)]
#[case::overflow(vec![Extent::Hole { len: u64::MAX }, data(1)], u64::MAX)]
#[case::overflow_wraps(vec![Extent::Hole { len: u64::MAX }, data(2)], 1)]
fn file_extents_must_sum_to_size(#[case] content: Vec<Extent>, #[case] size: u64) {
    let mut n = sample::file("f", content);
    n.size = size;
    assert!(is_invalid(&with_one(n)));
}

#[test]
fn a_slice_past_u32_is_refused() {
    let id = Id([7; 32]);
    let ok = sample::file(
        "f",
        vec![Extent::Slice {
            id,
            offset: 10,
            len: 20,
        }],
    );
    assert!(!is_invalid(&with_one(ok)));
    let bad = sample::file(
        "f",
        vec![Extent::Slice {
            id,
            offset: u32::MAX,
            len: 20,
        }],
    );
    assert!(is_invalid(&with_one(bad)));
}

#[test]
fn inconsistent_nodes_are_refused() {
    let mut n = sample::dir("d");
    n.subtree = None;
    assert!(is_invalid(&with_one(n)), "directory without subtree");

    let mut n = sample::file("f", vec![]);
    n.subtree = Some(Id([1; 32]));
    assert!(is_invalid(&with_one(n)), "file with subtree");

    let mut n = Node::new(b"l".to_vec(), NodeKind::Symlink);
    n.content = vec![data(1)];
    n.size = 1;
    assert!(is_invalid(&with_one(n)), "symlink with content");

    let x = |name: &[u8]| Xattr {
        name: name.to_vec(),
        value: Vec::new(),
    };
    for xattrs in [
        vec![x(b"user.b"), x(b"user.a")],
        vec![x(b"user.a"), x(b"user.a")],
        vec![x(b"")],
    ] {
        let mut n = sample::file("f", vec![]);
        n.xattrs = xattrs;
        assert!(is_invalid(&with_one(n)), "bad xattrs");
    }
}

fn leaf(patches: Vec<crate::VolumePatch>) -> Result<(), FormatError> {
    let n = VolumeNode::Leaf(VolumeLeaf {
        chunks: vec![
            VolChunk::Zero,
            VolChunk::Patched {
                base: Some(Id([1; 32])),
                patches,
            },
        ],
    });
    VolumeNode::from_bytes(&n.to_bytes().unwrap()).map(drop)
}

#[rstest]
#[case::overlap(vec![(0, 10), (5, 10)])]
#[case::unsorted(vec![(10, 5), (0, 5)])]
#[case::same_start(vec![(3, 1), (3, 1)])]
#[case::empty_run(vec![(0, 0)])]
#[case::empty_run_later(vec![(0, 4), (9, 0)])]
fn bad_patches_are_refused(#[case] runs: Vec<(u32, u32)>) {
    let p = runs.into_iter().map(|(o, l)| sample::patch(o, l)).collect();
    assert!(is_invalid(&leaf(p)));
}

#[rstest]
#[case::none(vec![])]
#[case::adjacent(vec![(0, 5), (5, 5)])]
#[case::gap(vec![(1, 1), (3, 1)])]
#[case::at_u32_end(vec![(u32::MAX - 1, 1), (u32::MAX, 1)])]
fn good_patches_are_accepted(#[case] runs: Vec<(u32, u32)>) {
    let p = runs.into_iter().map(|(o, l)| sample::patch(o, l)).collect();
    leaf(p).unwrap();
}

#[rstest]
#[case::bad_magic(b"\x00\x00\x00\x00CPK2".to_vec(), 100, "magic")]
#[case::lowercase_magic(b"\x00\x00\x00\x00cpk1".to_vec(), 100, "magic")]
#[case::short(b"\x00\x00\x00CPK1".to_vec(), 100, "truncated")]
#[case::long(b"\x00\x00\x00\x00\x00CPK1".to_vec(), 100, "truncated")]
#[case::empty(Vec::new(), 100, "truncated")]
#[case::trailer_past_pack(crate::pack_footer(100).to_vec(), 50, "exceeds")]
#[case::trailer_over_header(crate::pack_footer(85).to_vec(), 100, "exceeds")]
#[case::max_len(crate::pack_footer(u32::MAX).to_vec(), u64::from(u32::MAX), "exceeds")]
fn bad_pack_footers_are_refused(#[case] footer: Vec<u8>, #[case] pack_len: u64, #[case] msg: &str) {
    let e = parse_pack_footer(&footer, pack_len).unwrap_err();
    assert!(e.to_string().contains(msg), "{e}");
}

#[test]
fn pack_footer_boundaries() {
    // The smallest pack: header, no blobs, a trailer of `len` bytes, footer.
    assert_eq!(
        parse_pack_footer(&crate::pack_footer(84), 100).unwrap(),
        (8, 84)
    );
    assert_eq!(
        parse_pack_footer(&crate::pack_footer(0), 16).unwrap(),
        (8, 0)
    );
    assert!(parse_pack_footer(&crate::pack_footer(0), 15).is_err());
    assert!(parse_pack_footer(&crate::pack_footer(0), 0).is_err());
}

#[rstest]
#[case::over_header(vec![(0, 40)], 1000)]
#[case::overlap(vec![(8, 40), (47, 40)], 1000)]
#[case::out_of_order(vec![(48, 40), (8, 40)], 1000)]
#[case::past_data(vec![(8, 40)], 47)]
#[case::too_short(vec![(8, 32)], 1000)]
#[case::empty(vec![(8, 0)], 1000)]
fn bad_trailer_offsets_are_refused(#[case] blobs: Vec<(u32, u32)>, #[case] data_end: u64) {
    let t = PackTrailer {
        blobs: blobs.into_iter().map(|(o, l)| sample::blob(o, l)).collect(),
    };
    assert!(is_invalid(
        &PackTrailer::from_bytes(&t.to_bytes().unwrap(), data_end).map(drop)
    ));
}

#[test]
fn trailer_blob_may_end_exactly_at_data_end() {
    let t = PackTrailer {
        blobs: vec![sample::blob(8, 40), sample::blob(u32::MAX - 40, 40)],
    };
    let end = u64::from(u32::MAX);
    assert_eq!(
        PackTrailer::from_bytes(&t.to_bytes().unwrap(), end).unwrap(),
        t
    );
    assert!(PackTrailer::from_bytes(&t.to_bytes().unwrap(), end - 1).is_err());
}

#[rstest]
#[case::over_header(0, 40, 200)]
#[case::into_footer(150, 43, 200)]
#[case::past_pack(180, 40, 200)]
#[case::tiny_pack(8, 40, 10)]
#[case::too_short(8, 10, 200)]
fn index_blobs_outside_their_pack_are_refused(
    #[case] offset: u32,
    #[case] length: u32,
    #[case] size: u64,
) {
    let mut i = sample::index();
    i.packs[0].size = size;
    i.packs[0].blobs = vec![sample::blob(offset, length)];
    assert!(is_invalid(
        &IndexFile::from_bytes(&i.to_bytes().unwrap()).map(drop)
    ));
}

/// Paths to every JSON object (top level and nested) of each document; unknown fields must
/// be refused at each of them.
#[rstest]
#[case::config(Json::Config, &[][..])]
#[case::config_chunker(Json::Config, &["chunker"][..])]
#[case::key(Json::Key, &[][..])]
#[case::key_kdf(Json::Key, &["kdf"][..])]
#[case::lock(Json::Lock, &[][..])]
#[case::snapshot(Json::Snapshot, &[][..])]
#[case::snapshot_source(Json::Snapshot, &["source"][..])]
#[case::snapshot_summary(Json::Snapshot, &["summary"][..])]
#[case::snapshot_root(Json::Snapshot, &["root"][..])]
#[case::snapshot_node(Json::Snapshot, &["root", "node"][..])]
#[case::snapshot_extent(Json::Snapshot, &["root", "node", "content", "0", "Hole"][..])]
#[case::snapshot_xattr(Json::Snapshot, &["root", "node", "xattrs", "0"][..])]
fn json_unknown_fields_are_refused(#[case] f: Json, #[case] path: &[&str]) {
    let mut v = f.sample();
    f.parse_value(&v).unwrap();
    let mut at = &mut v;
    for p in path {
        at = match p.parse::<usize>() {
            Ok(i) => &mut at[i],
            Err(_) => &mut at[*p],
        };
    }
    at.as_object_mut()
        .expect("path names an object")
        .insert("surprise".into(), serde_json::json!(1));
    assert!(matches!(f.parse_value(&v), Err(FormatError::Decode { .. })));
}

#[test]
fn volume_map_unknown_fields_are_refused() {
    let mut v: serde_json::Value = serde_json::from_slice(
        &sample::snapshot(Root::Volume(sample::volume_map()))
            .to_bytes()
            .unwrap(),
    )
    .unwrap();
    Json::Snapshot.parse_value(&v).unwrap();
    v["root"]["volume"]["surprise"] = serde_json::json!(1);
    assert!(Json::Snapshot.parse_value(&v).is_err());
}

#[rstest]
fn json_version_is_checked(
    #[values(Json::Config, Json::Key, Json::Snapshot, Json::Lock)] f: Json,
    #[values(0, 3, 1 << 20)] version: u64,
) {
    // Snapshots are at version 2 (retain_until); the other documents at 1.
    let newest = if matches!(f, Json::Snapshot) { 2 } else { 1 };
    let mut v = f.sample();
    v["version"] = serde_json::json!(version);
    let e = f.parse_value(&v).unwrap_err();
    assert!(
        matches!(e, FormatError::UnsupportedVersion { version: got, supported, .. } if u64::from(got) == version && supported == newest),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains(&format!("this build reads up to {newest}")),
        "{e}"
    );
}

#[rstest]
fn json_version_beyond_u32_is_unsupported(
    #[values(Json::Config, Json::Key, Json::Snapshot, Json::Lock)] f: Json,
) {
    let mut v = f.sample();
    v["version"] = serde_json::json!(1u64 << 40);
    assert!(matches!(
        f.parse_value(&v),
        Err(FormatError::UnsupportedVersion {
            version: u32::MAX,
            ..
        })
    ));
}

#[rstest]
fn json_without_version_or_malformed_is_refused(
    #[values(Json::Config, Json::Key, Json::Snapshot, Json::Lock)] f: Json,
) {
    let mut v = f.sample();
    v.as_object_mut().unwrap().remove("version");
    assert!(matches!(f.parse_value(&v), Err(FormatError::Decode { .. })));
    for bad in [
        &b""[..],
        b"{",
        b"[]",
        b"null",
        b"1",
        b"{\"version\":\"1\"}",
        b"{\"version\":-1}",
    ] {
        assert!(
            matches!(f.parse(bad), Err(FormatError::Decode { .. })),
            "{bad:?}"
        );
    }
    let mut b = serde_json::to_vec(&f.sample()).unwrap();
    b.extend_from_slice(b" {}");
    assert!(f.parse(&b).is_err(), "trailing JSON");
}

#[rstest]
fn json_duplicate_version_is_refused(
    #[values(Json::Config, Json::Key, Json::Snapshot, Json::Lock)] f: Json,
) {
    let b = serde_json::to_string(&f.sample()).unwrap();
    let dup = b.replacen("{\"", "{\"version\":1,\"", 1);
    assert!(f.parse(dup.as_bytes()).is_err());
}

#[rstest]
#[case::chunk_not_pow2(|c: &mut RepoConfig| c.volume_chunk_size = 65 * 1024)]
#[case::chunk_small(|c: &mut RepoConfig| c.volume_chunk_size = 2048)]
#[case::chunk_large(|c: &mut RepoConfig| c.volume_chunk_size = 8 << 20)]
#[case::chunk_zero(|c: &mut RepoConfig| c.volume_chunk_size = 0)]
#[case::level_low(|c: &mut RepoConfig| c.compression_level = -8)]
#[case::level_high(|c: &mut RepoConfig| c.compression_level = 23)]
#[case::pack_small(|c: &mut RepoConfig| c.pack_size = (1 << 20) - 1)]
#[case::pack_large(|c: &mut RepoConfig| c.pack_size = (512 << 20) + 1)]
#[case::min_small(|c: &mut RepoConfig| c.chunker.min = 63)]
#[case::min_large(|c: &mut RepoConfig| { c.chunker.min = (1 << 20) + 1; c.chunker.avg = 2 << 20; })]
#[case::avg_small(|c: &mut RepoConfig| { c.chunker.min = 64; c.chunker.avg = 255; })]
#[case::avg_large(|c: &mut RepoConfig| { c.chunker.avg = (4 << 20) + 1; c.chunker.max = 8 << 20; })]
#[case::max_small(|c: &mut RepoConfig| { c.chunker.min = 64; c.chunker.avg = 256; c.chunker.max = 1023; })]
#[case::max_large(|c: &mut RepoConfig| c.chunker.max = (16 << 20) + 1)]
#[case::min_over_avg(|c: &mut RepoConfig| c.chunker.min = c.chunker.avg + 1)]
#[case::avg_over_max(|c: &mut RepoConfig| c.chunker.avg = c.chunker.max + 1)]
fn config_ranges_are_checked(#[case] change: fn(&mut RepoConfig)) {
    let mut c = sample::config();
    change(&mut c);
    assert!(is_invalid(&c.validate()));
    assert!(is_invalid(
        &RepoConfig::from_bytes(&c.to_bytes().unwrap()).map(drop)
    ));
}

#[rstest]
#[case::smallest(|c: &mut RepoConfig| { c.volume_chunk_size = 4096; c.compression_level = -7; c.pack_size = 1 << 20; c.chunker = crate::ChunkerConfig { min: 64, avg: 256, max: 1024 }; })]
#[case::largest(|c: &mut RepoConfig| { c.volume_chunk_size = 4 << 20; c.compression_level = 22; c.pack_size = 512 << 20; c.chunker = crate::ChunkerConfig { min: 1 << 20, avg: 4 << 20, max: 16 << 20 }; })]
#[case::no_compression(|c: &mut RepoConfig| c.compression_level = 0)]
fn config_range_edges_are_accepted(#[case] change: fn(&mut RepoConfig)) {
    let mut c = sample::config();
    change(&mut c);
    c.validate().unwrap();
}

#[rstest]
#[case::scrypt(|k: &mut KeyFile| k.kdf.algorithm = "scrypt".into())]
#[case::argon2i(|k: &mut KeyFile| k.kdf.algorithm = "argon2i".into())]
#[case::case(|k: &mut KeyFile| k.kdf.algorithm = "Argon2id".into())]
#[case::empty(|k: &mut KeyFile| k.kdf.algorithm = String::new())]
#[case::memory(|k: &mut KeyFile| k.kdf.memory_kib = (4 << 20) + 1)]
#[case::memory_per_lane(|k: &mut KeyFile| { k.kdf.parallelism = 4; k.kdf.memory_kib = 31; })]
#[case::passes_zero(|k: &mut KeyFile| k.kdf.iterations = 0)]
#[case::passes(|k: &mut KeyFile| k.kdf.iterations = 65)]
#[case::lanes_zero(|k: &mut KeyFile| k.kdf.parallelism = 0)]
#[case::lanes(|k: &mut KeyFile| k.kdf.parallelism = 65)]
#[case::salt_not_hex(|k: &mut KeyFile| k.kdf.salt = "zz".repeat(16))]
#[case::salt_odd(|k: &mut KeyFile| k.kdf.salt = "a".repeat(33))]
#[case::salt_short(|k: &mut KeyFile| k.kdf.salt = "aa".repeat(7))]
#[case::wrapped_not_hex(|k: &mut KeyFile| k.wrapped = "g".repeat(192))]
#[case::wrapped_short(|k: &mut KeyFile| k.wrapped = "aa".repeat(95))]
#[case::wrapped_long(|k: &mut KeyFile| k.wrapped = "aa".repeat(97))]
fn bad_key_files_are_refused(#[case] change: fn(&mut KeyFile)) {
    let mut k = sample::key();
    change(&mut k);
    assert!(is_invalid(
        &KeyFile::from_bytes(&k.to_bytes().unwrap()).map(drop)
    ));
}

#[rstest]
#[case::unnamed(b"")]
#[case::named(b"data")]
fn snapshot_root_may_be_unnamed(#[case] name: &[u8]) {
    let mut n = sample::dir("x");
    n.name = name.to_vec();
    let s = sample::snapshot(Root::Node(Box::new(n)));
    Snapshot::from_bytes(&s.to_bytes().unwrap()).unwrap();
}

#[rstest]
#[case::dotdot(|n: &mut Node| n.name = b"..".to_vec())]
#[case::slash(|n: &mut Node| n.name = b"a/b".to_vec())]
#[case::size(|n: &mut Node| n.size += 1)]
#[case::subtree(|n: &mut Node| n.subtree = Some(Id([1; 32])))]
fn invalid_snapshot_root_nodes_are_refused(#[case] change: fn(&mut Node)) {
    let mut s = sample::tree_snapshot();
    let Root::Node(n) = &mut s.root else {
        unreachable!()
    };
    change(n);
    assert!(is_invalid(
        &Snapshot::from_bytes(&s.to_bytes().unwrap()).map(drop)
    ));
}

#[rstest]
#[case::chunk_not_pow2(|m: &mut crate::VolumeMap| m.chunk_size = 3000)]
#[case::chunk_small(|m: &mut crate::VolumeMap| m.chunk_size = 256)]
#[case::leaf_zero(|m: &mut crate::VolumeMap| m.leaf_chunks = 0)]
#[case::fanout_one(|m: &mut crate::VolumeMap| m.fanout = 1)]
#[case::height(|m: &mut crate::VolumeMap| m.height = 9)]
#[case::top_short(|m: &mut crate::VolumeMap| m.top.clear())]
#[case::top_long(|m: &mut crate::VolumeMap| m.top.push(None))]
#[case::top_over_fanout(|m: &mut crate::VolumeMap| { m.fanout = 2; m.leaf_chunks = 1; m.capacity = 3 * 65536; m.top = vec![None; 3]; })]
fn invalid_volume_maps_are_refused(#[case] change: fn(&mut crate::VolumeMap)) {
    let mut m = sample::volume_map();
    change(&mut m);
    assert!(is_invalid(&m.validate()));
    let s = sample::snapshot(Root::Volume(m));
    assert!(is_invalid(
        &Snapshot::from_bytes(&s.to_bytes().unwrap()).map(drop)
    ));
}

#[rstest]
#[case::empty(&[], "truncated")]
#[case::codec2(&[2, 0], "unknown codec 2")]
#[case::codec255(&[255], "unknown codec 255")]
fn bad_blob_payloads_are_refused(#[case] plain: &[u8], #[case] msg: &str) {
    let e = crate::decode_blob_payload_header(plain).unwrap_err();
    assert!(e.to_string().contains(msg), "{e}");
}

#[rstest]
#[case::raw(&[0, 1, 2], crate::BlobCodec::Raw, &[1, 2])]
#[case::zstd(&[1], crate::BlobCodec::Zstd, &[])]
fn blob_payloads_split(#[case] plain: &[u8], #[case] codec: crate::BlobCodec, #[case] body: &[u8]) {
    assert_eq!(
        crate::decode_blob_payload_header(plain).unwrap(),
        (codec, body)
    );
    assert_eq!(plain[0], codec.as_byte());
}

#[rstest]
#[case::short("ab")]
#[case::long(&"ab".repeat(33))]
#[case::odd(&"a".repeat(63))]
#[case::not_hex(&"g".repeat(64))]
#[case::empty("")]
#[case::spaces(&format!(" {}", "a".repeat(63)))]
fn bad_ids_are_refused(#[case] s: &str) {
    assert!(s.parse::<Id>().is_err());
    assert!(serde_json::from_str::<Id>(&format!("\"{s}\"")).is_err());
}

#[test]
fn ids_in_postcard_need_all_32_bytes() {
    assert!(postcard::from_bytes::<Id>(&[0; 31]).is_err());
    assert!(postcard::from_bytes::<Id>(&[0; 32]).is_ok());
}

/// A lock needs snapshot version 2, and version 2 round-trips it; a v1 snapshot never
/// carries the field, so v1 readers keep reading unlocked snapshots.
#[test]
fn retain_until_needs_snapshot_version_2() {
    let mut s = sample::tree_snapshot();
    let until: jiff::Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
    s.set_retain_until(Some(until));
    assert_eq!(s.version, 2);
    let back = Snapshot::from_bytes(&s.to_bytes().unwrap()).unwrap();
    assert_eq!(back.retain_until, Some(until));
    assert!(back.is_retained_at("2029-12-31T23:59:59Z".parse().unwrap()));
    assert!(!back.is_retained_at(until));
    s.version = 1;
    assert!(is_invalid(
        &Snapshot::from_bytes(&s.to_bytes().unwrap()).map(drop)
    ));
    s.set_retain_until(None);
    assert_eq!(s.version, 1);
    let v: serde_json::Value = serde_json::from_slice(&s.to_bytes().unwrap()).unwrap();
    assert!(v.get("retain_until").is_none(), "{v}");
}
