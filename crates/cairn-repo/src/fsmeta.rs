//! File metadata: reading it into [`Node`]s and applying it back on restore.

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use cairn_format::{Node, NodeKind, Xattr};

fn ns(sec: i64, nsec: i64) -> i64 {
    sec.saturating_mul(1_000_000_000).saturating_add(nsec)
}

/// The kind of an entry from its metadata.
pub(crate) fn kind_of(md: &Metadata) -> NodeKind {
    let ft = md.file_type();
    if ft.is_dir() {
        NodeKind::Dir
    } else if ft.is_symlink() {
        NodeKind::Symlink
    } else if ft.is_block_device() {
        NodeKind::BlockDevice
    } else if ft.is_char_device() {
        NodeKind::CharDevice
    } else if ft.is_fifo() {
        NodeKind::Fifo
    } else if ft.is_socket() {
        NodeKind::Socket
    } else {
        NodeKind::File
    }
}

/// A node from `lstat` metadata (without content, xattrs or link target).
pub(crate) fn node_from_metadata(name: Vec<u8>, md: &Metadata) -> Node {
    let kind = kind_of(md);
    let mut n = Node::new(name, kind);
    n.mode = md.mode() & 0o7777;
    n.uid = md.uid();
    n.gid = md.gid();
    n.size = if kind == NodeKind::File { md.size() } else { 0 };
    n.mtime_ns = ns(md.mtime(), md.mtime_nsec());
    n.atime_ns = ns(md.atime(), md.atime_nsec());
    n.ctime_ns = ns(md.ctime(), md.ctime_nsec());
    n.dev = md.dev();
    n.inode = md.ino();
    n.nlink = md.nlink();
    n.rdev = if matches!(kind, NodeKind::BlockDevice | NodeKind::CharDevice) {
        md.rdev()
    } else {
        0
    };
    n
}

/// A node from a raw `fstatat` result, as [`node_from_metadata`] does from `Metadata`.
#[allow(
    clippy::unnecessary_cast,
    clippy::cast_possible_wrap,
    reason = "the field types of `struct stat` differ between architectures"
)]
pub(crate) fn node_from_stat(name: Vec<u8>, st: &rustix::fs::Stat) -> Node {
    use rustix::fs::FileType;
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => NodeKind::Dir,
        FileType::Symlink => NodeKind::Symlink,
        FileType::BlockDevice => NodeKind::BlockDevice,
        FileType::CharacterDevice => NodeKind::CharDevice,
        FileType::Fifo => NodeKind::Fifo,
        FileType::Socket => NodeKind::Socket,
        _ => NodeKind::File,
    };
    let mut n = Node::new(name, kind);
    n.mode = st.st_mode & 0o7777;
    n.uid = st.st_uid;
    n.gid = st.st_gid;
    n.size = if kind == NodeKind::File {
        st.st_size as u64
    } else {
        0
    };
    n.mtime_ns = ns(st.st_mtime as i64, st.st_mtime_nsec as i64);
    n.atime_ns = ns(st.st_atime as i64, st.st_atime_nsec as i64);
    n.ctime_ns = ns(st.st_ctime as i64, st.st_ctime_nsec as i64);
    n.dev = st.st_dev;
    n.inode = st.st_ino;
    n.nlink = st.st_nlink as u64;
    n.rdev = if matches!(kind, NodeKind::BlockDevice | NodeKind::CharDevice) {
        st.st_rdev
    } else {
        0
    };
    n
}

/// True if `fresh` (from stat) describes the same file content as `old` (from the parent
/// snapshot): same type, size, mtime, ctime, inode and device. ctime catches metadata changes
/// (mode, owner, xattrs) too, so the old node can be reused whole.
pub(crate) fn unchanged(old: &Node, fresh: &Node) -> bool {
    old.kind == fresh.kind
        && old.size == fresh.size
        && old.mtime_ns == fresh.mtime_ns
        && old.ctime_ns == fresh.ctime_ns
        && old.inode == fresh.inode
        && old.dev == fresh.dev
        && old.mode == fresh.mode
        && old.uid == fresh.uid
        && old.gid == fresh.gid
}

/// Reads the extended attributes of a path (not following symlinks), sorted by name.
/// Filesystems without xattr support give none.
pub(crate) fn read_xattrs(path: &Path) -> std::io::Result<Vec<Xattr>> {
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) if is_unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names {
        if let Some(value) = xattr::get(path, &name)? {
            out.push(Xattr {
                name: name.as_encoded_bytes().to_vec(),
                value,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn is_unsupported(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::OPNOTSUPP.raw_os_error())
}

/// Applies owner (when running as root), mode, xattrs and times to a restored entry.
/// Returns the first error, after trying everything.
pub(crate) fn apply_metadata(path: &Path, node: &Node, is_root: bool) -> std::io::Result<()> {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, chmodat, chownat, utimensat};
    let mut first: Option<std::io::Error> = None;
    let mut keep = |r: std::io::Result<()>| {
        if let Err(e) = r {
            first.get_or_insert(e);
        }
    };
    if is_root {
        keep(
            chownat(
                CWD,
                path,
                Some(rustix::fs::Uid::from_raw(node.uid)),
                Some(rustix::fs::Gid::from_raw(node.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(Into::into),
        );
    }
    if node.kind != NodeKind::Symlink {
        keep(
            chmodat(
                CWD,
                path,
                rustix::fs::Mode::from_raw_mode(node.mode),
                AtFlags::empty(),
            )
            .map_err(Into::into),
        );
    }
    for x in &node.xattrs {
        let name = std::ffi::OsStr::from_bytes(&x.name);
        keep(xattr::set(path, name, &x.value));
    }
    let ts = |t: i64| Timespec {
        tv_sec: t.div_euclid(1_000_000_000),
        tv_nsec: t.rem_euclid(1_000_000_000),
    };
    let times = Timestamps {
        last_access: ts(node.atime_ns),
        last_modification: ts(node.mtime_ns),
    };
    keep(utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(Into::into));
    first.map_or(Ok(()), Err)
}

use std::os::unix::ffi::OsStrExt;
