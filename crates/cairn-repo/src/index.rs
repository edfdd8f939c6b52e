//! The blob index: which pack holds each blob, loaded from the index files.
//!
//! Memory: one entry is a 32-byte id plus a 20-byte location in a hash table, about 64 bytes
//! with table overhead. At the default 1 MiB average file chunk that is ~64 MiB per TiB of
//! unique file data; at the 64 KiB volume chunk, ~1 GiB per TiB of unique volume data.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use cairn_format::{BlobKind, Id, IndexFile, IndexPack};

/// Hashes an [`Id`] by its first 8 bytes: ids are already uniform.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (i * 8);
        }
    }
    fn write_usize(&mut self, _: usize) {}
}

/// A hash map keyed by [`Id`].
pub(crate) type IdMap<V> = HashMap<Id, V, BuildHasherDefault<IdHasher>>;
/// A hash set of [`Id`]s.
pub(crate) type IdSet = std::collections::HashSet<Id, BuildHasherDefault<IdHasher>>;

/// Where a blob is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    /// Pack id.
    pub pack: Id,
    /// Kind of blob.
    pub kind: BlobKind,
    /// Offset of the envelope in the pack.
    pub offset: u32,
    /// Length of the envelope.
    pub length: u32,
    /// Plaintext length.
    pub raw_length: u32,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    pack: u32,
    kind: BlobKind,
    offset: u32,
    length: u32,
    raw_length: u32,
}

/// The in-memory index of a repository.
#[derive(Debug, Default)]
pub struct Index {
    blobs: IdMap<Entry>,
    packs: Vec<(Id, u64)>,
    pack_pos: IdMap<u32>,
    files: Vec<Id>,
    /// Packs a prune marked as garbage (docs/format.md §14): still readable, but a backup
    /// must not reuse a blob that only they hold, and readers prefer other copies.
    garbage: IdSet,
}

impl Index {
    /// Adds the contents of one index file.
    pub(crate) fn add_file(&mut self, file_id: Id, file: &IndexFile) {
        self.files.push(file_id);
        for p in &file.packs {
            self.add_pack(p);
        }
    }

    /// Declares packs marked as garbage; call before adding index files.
    pub(crate) fn set_garbage(&mut self, packs: IdSet) {
        self.garbage = packs;
    }

    /// True if the pack is marked as garbage.
    pub fn is_garbage(&self, pack: &Id) -> bool {
        self.garbage.contains(pack)
    }

    /// True if any pack is marked as garbage.
    pub fn has_garbage(&self) -> bool {
        !self.garbage.is_empty()
    }

    /// Adds one pack's blobs.
    pub(crate) fn add_pack(&mut self, p: &IndexPack) {
        let n = if let Some(&n) = self.pack_pos.get(&p.id) {
            n
        } else {
            let n = self.packs.len() as u32;
            self.packs.push((p.id, p.size));
            self.pack_pos.insert(p.id, n);
            n
        };
        self.blobs.reserve(p.blobs.len());
        let garbage = self.garbage.contains(&p.id);
        for b in &p.blobs {
            // Keep a copy in a live pack over one in a garbage pack.
            if garbage
                && self
                    .blobs
                    .get(&b.id)
                    .is_some_and(|e| !self.garbage.contains(&self.packs[e.pack as usize].0))
            {
                continue;
            }
            self.blobs.insert(
                b.id,
                Entry {
                    pack: n,
                    kind: b.kind,
                    offset: b.offset,
                    length: b.length,
                    raw_length: b.raw_length,
                },
            );
        }
    }

    /// Where a blob is, if indexed.
    pub fn get(&self, id: &Id) -> Option<BlobLocation> {
        let e = self.blobs.get(id)?;
        Some(BlobLocation {
            pack: self.packs[e.pack as usize].0,
            kind: e.kind,
            offset: e.offset,
            length: e.length,
            raw_length: e.raw_length,
        })
    }

    /// True if the blob is indexed.
    pub fn contains(&self, id: &Id) -> bool {
        self.blobs.contains_key(id)
    }

    /// True if a backup may reference the blob without storing it: it is indexed in a pack
    /// that is not marked as garbage (the rule that makes prune safe, docs/format.md §14).
    pub fn is_reusable(&self, id: &Id) -> bool {
        self.blobs
            .get(id)
            .is_some_and(|e| !self.garbage.contains(&self.packs[e.pack as usize].0))
    }

    /// Number of blobs.
    pub fn len(&self) -> usize {
        self.blobs.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Indexed packs with their sizes.
    pub fn packs(&self) -> impl Iterator<Item = (Id, u64)> + '_ {
        self.packs.iter().copied()
    }

    /// Ids of the index files loaded.
    pub fn files(&self) -> &[Id] {
        &self.files
    }

    /// Every blob with its location.
    pub fn blobs(&self) -> impl Iterator<Item = (Id, BlobLocation)> + '_ {
        self.blobs.iter().map(|(id, e)| {
            (
                *id,
                BlobLocation {
                    pack: self.packs[e.pack as usize].0,
                    kind: e.kind,
                    offset: e.offset,
                    length: e.length,
                    raw_length: e.raw_length,
                },
            )
        })
    }
}
