//! Directory listings with full file metadata.

use serde::{Deserialize, Serialize};

use crate::versioned::{decode, encode};
use crate::{FormatError, Id};

/// The type of a filesystem entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum NodeKind {
    /// Regular file.
    File,
    /// Directory (its entries are in `subtree`).
    Dir,
    /// Symbolic link (`link_target`).
    Symlink,
    /// Character device (`rdev`).
    CharDevice,
    /// Block device (`rdev`).
    BlockDevice,
    /// Named pipe.
    Fifo,
    /// Unix socket (restored as nothing: sockets cannot be recreated meaningfully).
    Socket,
}

/// A piece of file content: a chunk, part of a bundle of small files, or a run of zeros
/// stored as nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Extent {
    /// A data blob of `len` plaintext bytes.
    Data {
        /// Blob id.
        id: Id,
        /// Plaintext length.
        len: u32,
    },
    /// `len` bytes of zeros, restored as a hole.
    Hole {
        /// Length of the hole.
        len: u64,
    },
    /// Bytes `offset .. offset + len` of a data blob that bundles several small files (so
    /// they compress as one block and cost one blob, not one each).
    Slice {
        /// Blob id of the bundle.
        id: Id,
        /// Start of this file's bytes in the bundle's plaintext.
        offset: u32,
        /// Length.
        len: u32,
    },
}

impl Extent {
    /// Bytes this extent covers.
    pub fn len(&self) -> u64 {
        match *self {
            Self::Data { len, .. } | Self::Slice { len, .. } => u64::from(len),
            Self::Hole { len } => len,
        }
    }

    /// The data blob this extent reads from, if any. Everything that follows references
    /// (check, prune, copy) must use this rather than matching one variant.
    pub fn blob(&self) -> Option<Id> {
        match *self {
            Self::Data { id, .. } | Self::Slice { id, .. } => Some(id),
            Self::Hole { .. } => None,
        }
    }

    /// True for a zero-length extent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An extended attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Xattr {
    /// Name, e.g. `user.comment`.
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    /// Value.
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}

/// One entry of a directory, with everything needed to restore it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// File name (bytes: names need not be UTF-8).
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    /// Type.
    pub kind: NodeKind,
    /// Permission bits including setuid/setgid/sticky (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Size in bytes (files) or 0.
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// Access time, ns since the epoch.
    pub atime_ns: i64,
    /// Status change time, ns since the epoch (not restorable; used to detect changes).
    pub ctime_ns: i64,
    /// Device of the source filesystem (with `inode`, identifies hard links).
    pub dev: u64,
    /// Inode number at the source.
    pub inode: u64,
    /// Link count at the source.
    pub nlink: u64,
    /// Device number, for device nodes.
    pub rdev: u64,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<Xattr>,
    /// Target of a symbolic link.
    #[serde(with = "serde_bytes")]
    pub link_target: Vec<u8>,
    /// Content of a regular file, in order; holes keep sparse files sparse.
    pub content: Vec<Extent>,
    /// The listing of a directory.
    pub subtree: Option<Id>,
}

impl Node {
    /// An empty node of the given kind and name.
    pub fn new(name: Vec<u8>, kind: NodeKind) -> Self {
        Self {
            name,
            kind,
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            mtime_ns: 0,
            atime_ns: 0,
            ctime_ns: 0,
            dev: 0,
            inode: 0,
            nlink: 0,
            rdev: 0,
            xattrs: Vec::new(),
            link_target: Vec::new(),
            content: Vec::new(),
            subtree: None,
        }
    }

    /// The name, lossily as UTF-8, for messages.
    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// A directory listing, sorted by name, names unique.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Tree {
    /// Entries, sorted by name.
    pub nodes: Vec<Node>,
}

impl Tree {
    const VERSION: u8 = 1;

    /// Encodes the plaintext.
    ///
    /// # Errors
    /// Never in practice.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        encode("tree", Self::VERSION, self)
    }

    /// Parses and validates: names non-empty, without `/` or NUL, not `.` or `..`, sorted and
    /// unique; every node consistent (see [`Node`]).
    ///
    /// # Errors
    /// Malformed bytes or an invalid entry (which could otherwise escape the restore target).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        let t: Self = decode("tree", Self::VERSION, bytes)?;
        let mut prev: Option<&[u8]> = None;
        for n in &t.nodes {
            if n.name.is_empty() {
                return Err(FormatError::invalid("tree", "empty entry name"));
            }
            check_name("tree", &n.name)?;
            if prev.is_some_and(|p| p >= n.name.as_slice()) {
                return Err(FormatError::invalid(
                    "tree",
                    "entries not sorted or not unique",
                ));
            }
            prev = Some(&n.name);
            n.validate("tree")?;
        }
        Ok(t)
    }
}

/// Refuses names that could escape the restore target or that a filesystem cannot hold.
/// The empty name is left to the caller (entries refuse it; a snapshot root may have it).
pub(crate) fn check_name(what: &'static str, name: &[u8]) -> Result<(), FormatError> {
    if name.contains(&b'/') || name.contains(&0) || name == b"." || name == b".." {
        return Err(FormatError::invalid(
            what,
            format!("bad entry name {:?}", String::from_utf8_lossy(name)),
        ));
    }
    Ok(())
}

impl Node {
    /// Checks the node on its own: only files have content and it adds up to the size
    /// exactly (without overflow); only directories have a subtree, and they always do;
    /// xattr names are non-empty, sorted and unique (one canonical encoding per directory,
    /// so an unchanged directory dedupes to the same tree blob).
    pub(crate) fn validate(&self, what: &'static str) -> Result<(), FormatError> {
        let total = self
            .content
            .iter()
            .try_fold(0u64, |acc, e| acc.checked_add(e.len()));
        match (self.kind, total) {
            (NodeKind::File, Some(total)) if total == self.size => {}
            (NodeKind::File, _) => {
                return Err(FormatError::invalid(
                    what,
                    format!(
                        "content of {:?} does not add up to its size",
                        self.display_name()
                    ),
                ));
            }
            (_, _) if !self.content.is_empty() => {
                return Err(FormatError::invalid(
                    what,
                    format!("{:?} has content but is not a file", self.display_name()),
                ));
            }
            _ => {}
        }
        if self.content.iter().any(|e| {
            matches!(*e, Extent::Slice { offset, len, .. } if offset.checked_add(len).is_none())
        }) {
            return Err(FormatError::invalid(
                what,
                format!(
                    "a slice of {:?} ends beyond any blob",
                    self.display_name()
                ),
            ));
        }
        if (self.kind == NodeKind::Dir) != self.subtree.is_some() {
            return Err(FormatError::invalid(
                what,
                "only directories have subtrees, and every directory has one",
            ));
        }
        let mut prev: Option<&[u8]> = None;
        for x in &self.xattrs {
            if x.name.is_empty() || prev.is_some_and(|p| p >= x.name.as_slice()) {
                return Err(FormatError::invalid(
                    what,
                    format!(
                        "xattrs of {:?} empty, unsorted or not unique",
                        self.display_name()
                    ),
                ));
            }
            prev = Some(&x.name);
        }
        Ok(())
    }
}
