//! Cairn's on-disk formats: every type that is stored in a repository, and its encoder and
//! parser. No I/O, no crypto, no compression: bytes in, values out, so every parser can be
//! fuzzed (see `fuzz/`). `docs/format.md` is the prose specification of what lives here.
//!
//! Two encodings are used:
//! - JSON for small documents a human may want to inspect once decrypted: the public
//!   [`RepoConfig`], [`KeyFile`]s, [`Snapshot`]s and [`Lock`]s. Each carries `"version"`.
//! - A version byte followed by postcard (a compact, specified serde wire format) for the bulk
//!   metadata: [`Tree`]s, volume map nodes, [`IndexFile`]s and pack trailers.

mod blob;
mod blocklist;
mod config;
mod error;
mod garbage;
mod id;
mod index;
mod key;
mod lock;
mod pack;
mod snapshot;
mod tree;
mod versioned;
mod volume;

pub use blob::{BlobCodec, BlobKind, blob_aad, decode_blob_payload_header, object_aad};
pub use blocklist::{BlockList, BlockListError, BlockRange};
pub use config::{ChunkerConfig, RepoConfig};
pub use error::FormatError;
pub use garbage::GarbagePlan;
pub use id::Id;
pub use index::{IndexFile, IndexPack};
pub use key::{KdfSpec, KeyFile};
pub use lock::Lock;
pub use pack::{
    PACK_FOOTER_LEN, PACK_HEADER, PackBlob, PackTrailer, pack_footer, parse_pack_footer,
};
pub use snapshot::{Root, Snapshot, SnapshotSummary, Source, SourceKind};
pub use tree::{Extent, Node, NodeKind, Tree, Xattr};
pub use volume::{VolChunk, VolumeLeaf, VolumeMap, VolumeNode, VolumePatch};

/// The repository format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Object kinds and their directories in a repository.
pub mod layout {
    /// The public repository config (not encrypted).
    pub const CONFIG: &str = "config";
    /// Key files: the master key wrapped by passphrase-derived keys.
    pub const KEYS: &str = "keys";
    /// Pack files, fanned out by the first two hex digits of their id.
    pub const DATA: &str = "data";
    /// Index files.
    pub const INDEX: &str = "index";
    /// Snapshot manifests.
    pub const SNAPSHOTS: &str = "snapshots";
    /// Lock files.
    pub const LOCKS: &str = "locks";
    /// Garbage plans: packs marked by prune, deleted after the safety margin.
    pub const GARBAGE: &str = "garbage";
    /// The sealed copy of `config` that authenticates it.
    pub const CONFIG_SEALED: &str = "config.sealed";

    /// The storage path of a pack.
    pub fn pack_path(id: &crate::Id) -> String {
        let hex = id.to_hex();
        format!("{DATA}/{}/{hex}", &hex[..2])
    }

    /// The storage path of an object in a flat directory.
    pub fn object_path(dir: &str, id: &crate::Id) -> String {
        format!("{dir}/{}", id.to_hex())
    }
}

#[cfg(test)]
mod tests;
