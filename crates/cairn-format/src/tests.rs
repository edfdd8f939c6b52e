//! Tests of every format: property round trips (`roundtrip`), table-driven rejections
//! (`negative`), parsers fed arbitrary or damaged bytes (`robustness`), and regression tests
//! for what fuzzing found (`regressions`). The strategies here generate only valid values.

mod blocklist;
mod negative;
mod regressions;
mod robustness;
mod roundtrip;

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;

use crate::{
    BlobKind, ChunkerConfig, Extent, Id, IndexFile, IndexPack, KdfSpec, KeyFile, Lock, Node,
    NodeKind, PACK_HEADER, PackBlob, PackTrailer, RepoConfig, Root, Snapshot, SnapshotSummary,
    Source, SourceKind, Tree, VolChunk, VolumeLeaf, VolumeMap, VolumeNode, VolumePatch, Xattr,
};

pub(super) fn arb_id() -> impl Strategy<Value = Id> {
    any::<[u8; 32]>().prop_map(Id)
}

pub(super) fn arb_timestamp() -> impl Strategy<Value = jiff::Timestamp> {
    (
        jiff::Timestamp::MIN.as_second()..=jiff::Timestamp::MAX.as_second(),
        0i32..1_000_000_000,
    )
        .prop_filter_map("in jiff's range", |(s, ns)| {
            jiff::Timestamp::new(s, ns).ok()
        })
}

/// A valid entry name: non-empty, no `/` or NUL, not `.` or `..`.
pub(super) fn arb_name() -> impl Strategy<Value = Vec<u8>> {
    vec(
        any::<u8>().prop_filter("no / or NUL", |b| *b != b'/' && *b != 0),
        1..12,
    )
    .prop_filter("not . or ..", |n| n != b"." && n != b"..")
}

fn arb_extent() -> impl Strategy<Value = Extent> {
    prop_oneof![
        (arb_id(), any::<u32>()).prop_map(|(id, len)| Extent::Data { id, len }),
        (0u64..1 << 40).prop_map(|len| Extent::Hole { len }),
        (arb_id(), 0u32..1 << 24, 0u32..1 << 24).prop_map(|(id, offset, len)| Extent::Slice {
            id,
            offset,
            len
        }),
    ]
}

fn arb_xattrs() -> impl Strategy<Value = Vec<Xattr>> {
    btree_map(vec(any::<u8>(), 1..8), vec(any::<u8>(), 0..16), 0..3).prop_map(|m| {
        m.into_iter()
            .map(|(name, value)| Xattr { name, value })
            .collect()
    })
}

/// The kind-specific part of a node: kind, size, content, subtree, link target, rdev.
fn arb_kind_body() -> impl Strategy<Value = Node> {
    prop_oneof![
        vec(arb_extent(), 0..5).prop_map(|content| {
            let mut n = Node::new(Vec::new(), NodeKind::File);
            n.size = content.iter().map(Extent::len).sum();
            n.content = content;
            n
        }),
        arb_id().prop_map(|id| {
            let mut n = Node::new(Vec::new(), NodeKind::Dir);
            n.subtree = Some(id);
            n
        }),
        vec(any::<u8>(), 1..32).prop_map(|t| {
            let mut n = Node::new(Vec::new(), NodeKind::Symlink);
            n.link_target = t;
            n
        }),
        (
            prop_oneof![Just(NodeKind::CharDevice), Just(NodeKind::BlockDevice)],
            any::<u64>()
        )
            .prop_map(|(k, rdev)| {
                let mut n = Node::new(Vec::new(), k);
                n.rdev = rdev;
                n
            }),
        prop_oneof![Just(NodeKind::Fifo), Just(NodeKind::Socket)]
            .prop_map(|k| Node::new(Vec::new(), k)),
    ]
}

/// A valid node with an empty name (the caller names it).
pub(super) fn arb_node() -> impl Strategy<Value = Node> {
    (
        arb_kind_body(),
        (any::<u32>(), any::<u32>(), any::<u32>()),
        (any::<i64>(), any::<i64>(), any::<i64>()),
        (any::<u64>(), any::<u64>(), any::<u64>()),
        arb_xattrs(),
    )
        .prop_map(
            |(mut n, (mode, uid, gid), (mtime, atime, ctime), (dev, inode, nlink), xattrs)| {
                n.mode = mode;
                n.uid = uid;
                n.gid = gid;
                n.mtime_ns = mtime;
                n.atime_ns = atime;
                n.ctime_ns = ctime;
                n.dev = dev;
                n.inode = inode;
                n.nlink = nlink;
                n.xattrs = xattrs;
                n
            },
        )
}

pub(super) fn arb_tree() -> impl Strategy<Value = Tree> {
    btree_map(arb_name(), arb_node(), 0..8).prop_map(|m: BTreeMap<_, _>| Tree {
        nodes: m
            .into_iter()
            .map(|(name, mut n)| {
                n.name = name;
                n
            })
            .collect(),
    })
}

fn arb_kind() -> impl Strategy<Value = BlobKind> {
    prop_oneof![
        Just(BlobKind::Data),
        Just(BlobKind::Tree),
        Just(BlobKind::VolumeMap)
    ]
}

/// Blobs laid out after the pack header in file order, with optional gaps, and the offset
/// where they end.
pub(super) fn arb_pack_blobs() -> impl Strategy<Value = (Vec<PackBlob>, u64)> {
    vec(
        (arb_id(), arb_kind(), 33u32..5000, 0u32..64, any::<u32>()),
        0..8,
    )
    .prop_map(|specs| {
        let mut at = PACK_HEADER.len() as u32;
        let blobs = specs
            .into_iter()
            .map(|(id, kind, length, gap, raw_length)| {
                let offset = at + gap;
                at = offset + length;
                PackBlob {
                    id,
                    kind,
                    offset,
                    length,
                    raw_length,
                }
            })
            .collect();
        (blobs, u64::from(at))
    })
}

/// A valid trailer and a `data_end` at or past its last blob.
pub(super) fn arb_trailer() -> impl Strategy<Value = (PackTrailer, u64)> {
    (arb_pack_blobs(), 0u64..100)
        .prop_map(|((blobs, end), extra)| (PackTrailer { blobs }, end + extra))
}

pub(super) fn arb_index() -> impl Strategy<Value = IndexFile> {
    (
        vec((arb_id(), arb_pack_blobs(), 40u64..1000), 0..4),
        vec(arb_id(), 0..3),
    )
        .prop_map(|(packs, supersedes)| IndexFile {
            packs: packs
                .into_iter()
                .map(|(id, (blobs, end), tail)| IndexPack {
                    id,
                    size: end + tail,
                    blobs,
                })
                .collect(),
            supersedes,
        })
}

/// Sorted, non-overlapping, non-empty patch runs.
fn arb_patches() -> impl Strategy<Value = Vec<VolumePatch>> {
    vec((0u32..100, 1u32..100, arb_id()), 0..5).prop_map(|specs| {
        let mut at = 0u32;
        specs
            .into_iter()
            .map(|(gap, len, id)| {
                let offset = at + gap;
                at = offset + len;
                VolumePatch { offset, len, id }
            })
            .collect()
    })
}

fn arb_vol_chunk() -> impl Strategy<Value = VolChunk> {
    prop_oneof![
        Just(VolChunk::Zero),
        arb_id().prop_map(VolChunk::Data),
        (option::of(arb_id()), arb_patches())
            .prop_map(|(base, patches)| VolChunk::Patched { base, patches }),
    ]
}

pub(super) fn arb_volume_node() -> impl Strategy<Value = VolumeNode> {
    prop_oneof![
        vec(option::of(arb_id()), 0..16).prop_map(VolumeNode::Interior),
        vec(arb_vol_chunk(), 0..16).prop_map(|chunks| VolumeNode::Leaf(VolumeLeaf { chunks })),
    ]
}

/// A volume map whose geometry validates: the smallest height whose top fits the fanout.
pub(super) fn arb_volume_map() -> impl Strategy<Value = VolumeMap> {
    (0u64..1 << 44, 9u32..23, 1u32..64, 2u32..64)
        .prop_filter_map(
            "fits in 8 levels",
            |(capacity, shift, leaf_chunks, fanout)| {
                let mut m = VolumeMap {
                    capacity,
                    chunk_size: 1 << shift,
                    leaf_chunks,
                    fanout,
                    height: 0,
                    top: Vec::new(),
                };
                while m.chunk_count().div_ceil(m.top_span_chunks()) > u64::from(fanout) {
                    m.height += 1;
                    if m.height > 8 {
                        return None;
                    }
                }
                Some(m)
            },
        )
        .prop_flat_map(|m| {
            let need = m.chunk_count().div_ceil(m.top_span_chunks()) as usize;
            vec(option::of(arb_id()), need..=need)
                .prop_map(move |top| VolumeMap { top, ..m.clone() })
        })
}

fn arb_source() -> impl Strategy<Value = Source> {
    (
        prop_oneof![
            Just(SourceKind::Tree),
            Just(SourceKind::Volume),
            Just(SourceKind::Stream)
        ],
        vec(any::<String>(), 0..3),
        any::<String>(),
    )
        .prop_map(|(kind, paths, identity)| Source {
            kind,
            paths,
            identity,
        })
}

fn arb_summary() -> impl Strategy<Value = SnapshotSummary> {
    (any::<[u64; 10]>()).prop_map(|v| SnapshotSummary {
        files: v[0],
        dirs: v[1],
        files_read: v[2],
        total_bytes: v[3],
        bytes_read: v[4],
        blobs_added: v[5],
        bytes_added: v[6],
        bytes_stored: v[7],
        errors: v[8],
        duration_ms: v[9],
    })
}

fn arb_root() -> impl Strategy<Value = Root> {
    prop_oneof![
        (prop_oneof![Just(Vec::new()), arb_name()], arb_node()).prop_map(|(name, mut n)| {
            n.name = name;
            Root::Node(Box::new(n))
        }),
        arb_volume_map().prop_map(Root::Volume),
    ]
}

pub(super) fn arb_snapshot() -> impl Strategy<Value = Snapshot> {
    (
        arb_timestamp(),
        (any::<String>(), any::<String>(), any::<String>()),
        vec(any::<String>(), 0..3),
        arb_source(),
        option::of(arb_id()),
        arb_root(),
        (arb_summary(), option::of(arb_timestamp())),
    )
        .prop_map(
            |(
                time,
                (hostname, username, program),
                tags,
                source,
                parent,
                root,
                (summary, until),
            )| {
                let mut s = Snapshot {
                    version: Snapshot::VERSION,
                    time,
                    hostname,
                    username,
                    tags,
                    source,
                    parent,
                    root,
                    summary,
                    program,
                    retain_until: None,
                };
                s.set_retain_until(until);
                s
            },
        )
}

pub(super) fn arb_chunker() -> impl Strategy<Value = ChunkerConfig> {
    (64u32..=1 << 20)
        .prop_flat_map(|min| (Just(min), min.max(256)..=4 << 20))
        .prop_flat_map(|(min, avg)| (Just(min), Just(avg), avg.max(1024)..=16 << 20))
        .prop_map(|(min, avg, max)| ChunkerConfig { min, avg, max })
}

pub(super) fn arb_config() -> impl Strategy<Value = RepoConfig> {
    (
        arb_id(),
        arb_timestamp(),
        arb_chunker(),
        12u32..=22,
        -7i32..=22,
        (1u32 << 20)..=512 << 20,
    )
        .prop_map(
            |(id, created, chunker, shift, compression_level, pack_size)| RepoConfig {
                version: crate::FORMAT_VERSION,
                id,
                created,
                chunker,
                volume_chunk_size: 1 << shift,
                compression_level,
                pack_size,
            },
        )
}

pub(super) fn arb_kdf() -> impl Strategy<Value = KdfSpec> {
    (1u32..=64, 1u32..=64, vec(any::<u8>(), 8..64))
        .prop_flat_map(|(parallelism, iterations, salt)| {
            (
                Just(parallelism),
                Just(iterations),
                Just(salt),
                8 * parallelism..=KdfSpec::MAX_MEMORY_KIB,
            )
        })
        .prop_map(|(parallelism, iterations, salt, memory_kib)| KdfSpec {
            algorithm: "argon2id".into(),
            memory_kib,
            iterations,
            parallelism,
            salt: hex::encode(salt),
        })
}

pub(super) fn arb_key() -> impl Strategy<Value = KeyFile> {
    (
        arb_timestamp(),
        any::<String>(),
        any::<String>(),
        arb_kdf(),
        vec(any::<u8>(), KeyFile::WRAPPED_LEN..=KeyFile::WRAPPED_LEN),
    )
        .prop_map(|(created, hostname, username, kdf, wrapped)| KeyFile {
            version: KeyFile::VERSION,
            created,
            hostname,
            username,
            kdf,
            wrapped: hex::encode(wrapped),
        })
}

pub(super) fn arb_lock() -> impl Strategy<Value = Lock> {
    (
        any::<bool>(),
        any::<String>(),
        any::<u32>(),
        any::<String>(),
        arb_timestamp(),
        arb_timestamp(),
    )
        .prop_map(
            |(exclusive, hostname, pid, operation, created, refreshed)| Lock {
                version: Lock::VERSION,
                exclusive,
                hostname,
                pid,
                operation,
                created,
                refreshed,
            },
        )
}

/// Fixed, valid examples of every format, for the table tests.
pub(super) mod sample {
    use super::{Extent, Id, IndexFile, IndexPack, Node, NodeKind, PackBlob, Tree, Xattr};
    use crate::{
        BlobKind, ChunkerConfig, KdfSpec, KeyFile, Lock, PackTrailer, RepoConfig, Root, Snapshot,
        SnapshotSummary, Source, SourceKind, VolChunk, VolumeLeaf, VolumeMap, VolumeNode,
        VolumePatch,
    };

    pub(crate) fn ts() -> jiff::Timestamp {
        "2024-05-01T12:34:56.789Z".parse().unwrap()
    }

    pub(crate) fn file(name: &str, content: Vec<Extent>) -> Node {
        let mut n = Node::new(name.into(), NodeKind::File);
        n.size = content.iter().fold(0, |a, e| a.wrapping_add(e.len()));
        n.content = content;
        n
    }

    pub(crate) fn dir(name: &str) -> Node {
        let mut n = Node::new(name.into(), NodeKind::Dir);
        n.subtree = Some(Id([7; 32]));
        n
    }

    pub(crate) fn tree() -> Tree {
        let mut f = file(
            "b.txt",
            vec![
                Extent::Data {
                    id: Id([1; 32]),
                    len: 10,
                },
                Extent::Hole { len: 5 },
            ],
        );
        f.xattrs = vec![Xattr {
            name: b"user.a".to_vec(),
            value: b"1".to_vec(),
        }];
        Tree {
            nodes: vec![dir("a"), f, Node::new(b"c".to_vec(), NodeKind::Fifo)],
        }
    }

    pub(crate) fn blob(offset: u32, length: u32) -> PackBlob {
        PackBlob {
            id: Id([3; 32]),
            kind: BlobKind::Data,
            offset,
            length,
            raw_length: length,
        }
    }

    pub(crate) fn trailer() -> PackTrailer {
        PackTrailer {
            blobs: vec![blob(8, 40), blob(48, 50)],
        }
    }

    pub(crate) fn index() -> IndexFile {
        IndexFile {
            packs: vec![IndexPack {
                id: Id([4; 32]),
                size: 200,
                blobs: trailer().blobs,
            }],
            supersedes: vec![Id([5; 32])],
        }
    }

    pub(crate) fn patch(offset: u32, len: u32) -> VolumePatch {
        VolumePatch {
            offset,
            len,
            id: Id([6; 32]),
        }
    }

    pub(crate) fn volume_node() -> VolumeNode {
        VolumeNode::Leaf(VolumeLeaf {
            chunks: vec![
                VolChunk::Zero,
                VolChunk::Data(Id([8; 32])),
                VolChunk::Patched {
                    base: None,
                    patches: vec![patch(0, 10), patch(10, 5)],
                },
            ],
        })
    }

    pub(crate) fn volume_map() -> VolumeMap {
        VolumeMap {
            capacity: 10 * 1024 * 1024,
            chunk_size: 64 * 1024,
            leaf_chunks: 1024,
            fanout: 1024,
            height: 0,
            top: vec![Some(Id([9; 32]))],
        }
    }

    pub(crate) fn snapshot(root: Root) -> Snapshot {
        Snapshot {
            version: 1,
            time: ts(),
            hostname: "host".into(),
            username: "user".into(),
            tags: vec!["daily".into()],
            source: Source {
                kind: SourceKind::Tree,
                paths: vec!["/data".into()],
                identity: "tree:host:/data".into(),
            },
            parent: None,
            root,
            summary: SnapshotSummary::default(),
            program: "cairn 0.1.0".into(),
            retain_until: None,
        }
    }

    pub(crate) fn tree_snapshot() -> Snapshot {
        let mut root = file("data", vec![Extent::Hole { len: 3 }]);
        root.xattrs = vec![Xattr {
            name: b"user.x".to_vec(),
            value: Vec::new(),
        }];
        snapshot(Root::Node(Box::new(root)))
    }

    pub(crate) fn config() -> RepoConfig {
        RepoConfig {
            version: 1,
            id: Id([2; 32]),
            created: ts(),
            chunker: ChunkerConfig::default(),
            volume_chunk_size: 64 * 1024,
            compression_level: 3,
            pack_size: 16 * 1024 * 1024,
        }
    }

    pub(crate) fn key() -> KeyFile {
        KeyFile {
            version: 1,
            created: ts(),
            hostname: "host".into(),
            username: "user".into(),
            kdf: KdfSpec {
                algorithm: "argon2id".into(),
                memory_kib: 64 * 1024,
                iterations: 3,
                parallelism: 1,
                salt: hex::encode([0xaa; 16]),
            },
            wrapped: hex::encode([0xbb; KeyFile::WRAPPED_LEN]),
        }
    }

    pub(crate) fn lock() -> Lock {
        Lock {
            version: 1,
            exclusive: false,
            hostname: "host".into(),
            pid: 42,
            operation: "backup".into(),
            created: ts(),
            refreshed: ts(),
        }
    }
}
