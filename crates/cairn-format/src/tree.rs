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

/// A piece of file content: a chunk, or a run of zeros stored as nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl Extent {
    /// Bytes this extent covers.
    pub fn len(&self) -> u64 {
        match *self {
            Self::Data { len, .. } => u64::from(len),
            Self::Hole { len } => len,
        }
    }

    /// True for a zero-length extent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An extended attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

    /// Parses and validates: names non-empty, without `/`, not `.` or `..`, sorted and unique;
    /// extents sum to the size.
    ///
    /// # Errors
    /// Malformed bytes or an invalid entry (which could otherwise escape the restore target).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        let t: Self = decode("tree", Self::VERSION, bytes)?;
        let mut prev: Option<&[u8]> = None;
        for n in &t.nodes {
            if n.name.is_empty()
                || n.name.contains(&b'/')
                || n.name.contains(&0)
                || n.name == b"."
                || n.name == b".."
            {
                return Err(FormatError::invalid(
                    "tree",
                    format!("bad entry name {:?}", n.display_name()),
                ));
            }
            if prev.is_some_and(|p| p >= n.name.as_slice()) {
                return Err(FormatError::invalid(
                    "tree",
                    "entries not sorted or not unique",
                ));
            }
            prev = Some(&n.name);
            let total: u64 = n
                .content
                .iter()
                .map(Extent::len)
                .fold(0u64, u64::saturating_add);
            if n.kind == NodeKind::File && total != n.size {
                return Err(FormatError::invalid(
                    "tree",
                    format!(
                        "content of {:?} does not add up to its size",
                        n.display_name()
                    ),
                ));
            }
            if (n.kind == NodeKind::Dir) != n.subtree.is_some() {
                return Err(FormatError::invalid(
                    "tree",
                    "only directories have subtrees",
                ));
            }
        }
        Ok(t)
    }
}
