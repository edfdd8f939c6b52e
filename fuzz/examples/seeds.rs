//! Writes one valid input per target into `fuzz/seeds/<target>/`, so the fuzzers start from
//! real structure instead of discovering JSON field names byte by byte.
//! Run: `cargo run --example seeds` (from `fuzz/`).

use std::path::Path;

use cairn_format::{
    BlobKind, ChunkerConfig, Extent, Id, IndexFile, IndexPack, KdfSpec, KeyFile, Lock, Node,
    NodeKind, PackBlob, PackTrailer, RepoConfig, Root, Snapshot, SnapshotSummary, Source,
    SourceKind, Tree, VolChunk, VolumeLeaf, VolumeMap, VolumeNode, VolumePatch, Xattr,
};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn file() -> Node {
    let mut n = Node::new(b"file.txt".to_vec(), NodeKind::File);
    n.mode = 0o644;
    n.size = 15;
    n.mtime_ns = 1_700_000_000_000_000_000;
    n.content = vec![
        Extent::Data {
            id: Id([1; 32]),
            len: 10,
        },
        Extent::Hole { len: 5 },
    ];
    n.xattrs = vec![Xattr {
        name: b"user.a".to_vec(),
        value: b"v".to_vec(),
    }];
    n
}

fn tree() -> Tree {
    let mut d = Node::new(b"dir".to_vec(), NodeKind::Dir);
    d.subtree = Some(Id([2; 32]));
    let mut l = Node::new(b"link".to_vec(), NodeKind::Symlink);
    l.link_target = b"../x".to_vec();
    let mut c = Node::new(b"tty".to_vec(), NodeKind::CharDevice);
    c.rdev = 0x0501;
    Tree {
        nodes: vec![d, file(), l, c],
    }
}

fn blobs() -> Vec<PackBlob> {
    vec![
        PackBlob {
            id: Id([3; 32]),
            kind: BlobKind::Data,
            offset: 8,
            length: 40,
            raw_length: 7,
        },
        PackBlob {
            id: Id([4; 32]),
            kind: BlobKind::Tree,
            offset: 48,
            length: 100,
            raw_length: 300,
        },
    ]
}

fn snapshot(root: Root, kind: SourceKind) -> Snapshot {
    Snapshot {
        version: 1,
        time: "2024-05-01T12:34:56.789Z".parse().unwrap(),
        hostname: "host".into(),
        username: "user".into(),
        tags: vec!["daily".into()],
        source: Source {
            kind,
            paths: vec!["/data".into()],
            identity: "tree:host:/data".into(),
        },
        parent: Some(Id([5; 32])),
        root,
        summary: SnapshotSummary {
            files: 3,
            dirs: 1,
            total_bytes: 15,
            ..Default::default()
        },
        program: "cairn 0.1.0".into(),
    }
}

fn main() {
    write("tree", "sample", &tree().to_bytes().unwrap());
    write("tree", "empty", &Tree::default().to_bytes().unwrap());

    let index = IndexFile {
        packs: vec![IndexPack {
            id: Id([6; 32]),
            size: 300,
            blobs: blobs(),
        }],
        supersedes: vec![Id([7; 32])],
    };
    write("index", "sample", &index.to_bytes().unwrap());

    let trailer = PackTrailer { blobs: blobs() }.to_bytes().unwrap();
    let mut input = 148u64.to_le_bytes().to_vec();
    input.extend_from_slice(&trailer);
    write("pack_trailer", "trailer", &input);
    let mut input = 200u64.to_le_bytes().to_vec();
    input.extend_from_slice(&cairn_format::pack_footer(176));
    write("pack_trailer", "footer", &input);

    let leaf = VolumeNode::Leaf(VolumeLeaf {
        chunks: vec![
            VolChunk::Zero,
            VolChunk::Data(Id([8; 32])),
            VolChunk::Patched {
                base: Some(Id([9; 32])),
                patches: vec![VolumePatch {
                    offset: 4,
                    len: 8,
                    id: Id([10; 32]),
                }],
            },
        ],
    });
    write("volume_node", "leaf", &leaf.to_bytes().unwrap());
    let interior = VolumeNode::Interior(vec![None, Some(Id([11; 32]))]);
    write("volume_node", "interior", &interior.to_bytes().unwrap());

    let s = snapshot(Root::Node(Box::new(file())), SourceKind::Stream);
    write("snapshot", "node", &s.to_bytes().unwrap());
    let map = VolumeMap {
        capacity: 1 << 30,
        chunk_size: 64 * 1024,
        leaf_chunks: 1024,
        fanout: 1024,
        height: 0,
        top: vec![
            Some(Id([12; 32])),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ],
    };
    let s = snapshot(Root::Volume(map), SourceKind::Volume);
    write("snapshot", "volume", &s.to_bytes().unwrap());

    let config = RepoConfig {
        version: 1,
        id: Id([13; 32]),
        created: "2024-05-01T12:00:00Z".parse().unwrap(),
        chunker: ChunkerConfig::default(),
        volume_chunk_size: 64 * 1024,
        compression_level: 3,
        pack_size: 16 << 20,
    };
    write("config", "sample", &config.to_bytes().unwrap());

    let key = KeyFile {
        version: 1,
        created: "2024-05-01T12:00:00Z".parse().unwrap(),
        hostname: "host".into(),
        username: "user".into(),
        kdf: KdfSpec {
            algorithm: "argon2id".into(),
            memory_kib: 65536,
            iterations: 3,
            parallelism: 1,
            salt: "00112233445566778899aabbccddeeff".into(),
        },
        wrapped: "ab".repeat(KeyFile::WRAPPED_LEN),
    };
    write("key", "sample", &key.to_bytes().unwrap());

    let lock = Lock {
        version: 1,
        exclusive: true,
        hostname: "host".into(),
        pid: 4242,
        operation: "prune".into(),
        created: "2024-05-01T12:00:00Z".parse().unwrap(),
        refreshed: "2024-05-01T12:05:00.5Z".parse().unwrap(),
    };
    write("lock", "sample", &lock.to_bytes().unwrap());

    write("blob_payload", "raw", b"\x00hello");
    write("blob_payload", "zstd", b"\x01\x28\xb5\x2f\xfd");
}
