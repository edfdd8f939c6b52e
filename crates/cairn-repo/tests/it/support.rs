//! Shared fixtures: repositories, random content, tree builders and comparisons.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use cairn_repo::format::{ChunkerConfig, Id, Snapshot};
use cairn_repo::{
    BackupOptions, BackupOutcome, CancellationToken, DynProgress, InitOptions, KdfParams,
    NoProgress, Repository, RestoreOptions, RestoreOutcome,
};
use cairn_storage::{DynStorage, MemoryStorage, Storage};

/// The passphrase of every test repository.
pub const PASS: &[u8] = b"correct horse battery staple";

/// A runtime like the CLI's, sized for the 2-core test machines.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Small chunks (so files of a few hundred KiB have many), 1 MiB packs (so a few MiB make
/// several), 4 KiB volume chunks (so a 4 MiB image fills a leaf), and a cheap KDF.
pub fn init_options() -> InitOptions {
    let mut o = InitOptions::default();
    o.kdf = KdfParams::insecure_for_tests();
    o.chunker = ChunkerConfig {
        min: 4096,
        avg: 16384,
        max: 65536,
    };
    o.pack_size = 1024 * 1024;
    o.volume_chunk_size = 4096;
    o
}

pub fn no_progress() -> DynProgress {
    Arc::new(NoProgress)
}

/// A new repository in memory; the returned storage shares its objects.
pub async fn init_mem() -> (MemoryStorage, Arc<Repository>) {
    let mem = MemoryStorage::new();
    let repo = Repository::init(Arc::new(mem.clone()), PASS, &init_options())
        .await
        .unwrap();
    (mem, Arc::new(repo))
}

/// Opens a repository with [`PASS`].
pub async fn open(storage: DynStorage) -> Arc<Repository> {
    Arc::new(Repository::open(storage, PASS).await.unwrap())
}

pub async fn try_backup(
    repo: &Arc<Repository>,
    path: &Path,
    opts: &BackupOptions,
) -> cairn_repo::Result<BackupOutcome> {
    cairn_repo::backup_paths(
        repo,
        &[path.to_path_buf()],
        opts,
        no_progress(),
        CancellationToken::new(),
    )
    .await
}

pub async fn backup(repo: &Arc<Repository>, path: &Path, opts: &BackupOptions) -> BackupOutcome {
    try_backup(repo, path, opts).await.unwrap()
}

pub async fn try_restore_with(
    repo: &Arc<Repository>,
    snap: &Snapshot,
    target: &Path,
    opts: &RestoreOptions,
) -> cairn_repo::Result<RestoreOutcome> {
    cairn_repo::restore(
        repo,
        snap,
        "test",
        "",
        target,
        opts,
        no_progress(),
        CancellationToken::new(),
    )
    .await
}

pub async fn try_restore(
    repo: &Arc<Repository>,
    snap: &Snapshot,
    target: &Path,
) -> cairn_repo::Result<RestoreOutcome> {
    try_restore_with(repo, snap, target, &RestoreOptions::default()).await
}

/// Restores and insists on a clean outcome.
pub async fn restore(repo: &Arc<Repository>, snap: &Snapshot, target: &Path) -> RestoreOutcome {
    let out = try_restore(repo, snap, target).await.unwrap();
    assert!(out.errors.is_empty(), "restore reported {:#?}", out.errors);
    out
}

/// A copy of every object of a memory storage, to damage or replay without touching the
/// original.
pub async fn objects(mem: &MemoryStorage) -> Vec<(String, Bytes)> {
    let mut out = Vec::new();
    for p in mem.paths() {
        let b = mem.read(&p).await.unwrap();
        out.push((p, b));
    }
    out
}

/// A fresh memory storage holding `objects`.
pub fn storage_from(objects: &[(String, Bytes)]) -> MemoryStorage {
    let m = MemoryStorage::new();
    for (p, b) in objects {
        m.insert(p.clone(), b.clone());
    }
    m
}

/// Ids of the snapshots stored (from the object names, without opening them).
pub fn snapshot_ids(mem: &MemoryStorage) -> Vec<Id> {
    mem.paths()
        .iter()
        .filter_map(|p| p.strip_prefix("snapshots/"))
        .map(|n| n.parse().unwrap())
        .collect()
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Deterministic pseudo-random numbers (SplitMix64): a failing case is reproduced from its
/// seed alone.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }

    /// Text-like bytes that compress well but do not repeat exactly.
    pub fn compressible(&mut self, n: usize) -> Vec<u8> {
        const WORDS: &[&str] = &[
            "cairn ",
            "backup ",
            "restore ",
            "snapshot ",
            "volume ",
            "chunk ",
            "pack ",
            "\n",
        ];
        let mut v = Vec::with_capacity(n + 16);
        while v.len() < n {
            v.extend_from_slice(self.pick(WORDS).as_bytes());
        }
        v.truncate(n);
        v
    }

    /// A mix of random, compressible and zero runs.
    pub fn mixed(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            let run = (self.range(1, 40_000) as usize).min(n - v.len());
            match self.below(3) {
                0 => v.extend(self.bytes(run)),
                1 => v.extend(self.compressible(run)),
                _ => v.resize(v.len() + run, 0),
            }
        }
        v
    }
}

/// Sets atime and mtime (ns since the epoch) without following symlinks.
pub fn set_times(path: &Path, mtime_ns: i64) {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, utimensat};
    let ts = Timespec {
        tv_sec: mtime_ns.div_euclid(1_000_000_000),
        tv_nsec: mtime_ns.rem_euclid(1_000_000_000),
    };
    let times = Timestamps {
        last_access: ts,
        last_modification: ts,
    };
    utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

pub fn lchown(path: &Path, uid: u32, gid: u32) {
    use rustix::fs::{AtFlags, CWD, Gid, Uid, chownat};
    chownat(
        CWD,
        path,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn mkfifo(path: &Path, mode: u32) {
    use rustix::fs::{CWD, FileType, Mode, mknodat};
    mknodat(CWD, path, FileType::Fifo, Mode::from_raw_mode(mode), 0).unwrap();
}

/// Sets a `user.*` xattr; false if the filesystem refuses (no support, or not allowed on
/// this kind of entry).
pub fn try_set_xattr(path: &Path, name: &str, value: &[u8]) -> bool {
    xattr::set(path, name, value).is_ok()
}

/// A sparse file: `size` bytes with `data` written at `offset`, the rest holes.
pub fn write_sparse(path: &Path, size: u64, offset: u64, data: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    f.write_all_at(data, offset).unwrap();
}

/// True if the file allocates fewer bytes than its length.
pub fn is_sparse(md: &std::fs::Metadata) -> bool {
    md.len() > 0 && md.blocks() * 512 < md.len()
}

fn xattrs(path: &Path) -> Vec<(OsString, Vec<u8>)> {
    let mut v: Vec<(OsString, Vec<u8>)> = match xattr::list(path) {
        Ok(names) => names
            .map(|n| {
                let val = xattr::get(path, &n).ok().flatten().unwrap_or_default();
                (n, val)
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

fn sorted_names(dir: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    v.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    v
}

/// Compares a restored tree with its source: type, mode, owner, mtime (ns), xattrs, content,
/// symlink targets, device numbers, sparseness and hard-link identity. Returns the
/// differences, one line each.
pub fn compare_trees(src: &Path, dst: &Path) -> Vec<String> {
    let mut c = Comparison::default();
    c.entry(src, dst, Path::new("."));
    c.diffs
}

#[derive(Default)]
struct Comparison {
    diffs: Vec<String>,
    /// Source (dev, inode) of a hard-linked file → restored inode.
    links: HashMap<(u64, u64), u64>,
    /// Restored inode → the source (dev, inode) it stands for.
    restored: HashMap<u64, (u64, u64)>,
}

impl Comparison {
    fn entry(&mut self, s: &Path, d: &Path, rel: &Path) {
        let r = rel.display();
        let sm = std::fs::symlink_metadata(s).unwrap();
        let dm = match std::fs::symlink_metadata(d) {
            Ok(m) => m,
            Err(e) => {
                self.diffs.push(format!("{r}: not restored: {e}"));
                return;
            }
        };
        let (sft, dft) = (sm.file_type(), dm.file_type());
        if sft != dft {
            self.diffs
                .push(format!("{r}: type {sft:?} restored as {dft:?}"));
            return;
        }
        if !sft.is_symlink() && sm.mode() & 0o7777 != dm.mode() & 0o7777 {
            self.diffs.push(format!(
                "{r}: mode {:o} restored as {:o}",
                sm.mode() & 0o7777,
                dm.mode() & 0o7777
            ));
        }
        if (sm.uid(), sm.gid()) != (dm.uid(), dm.gid()) {
            self.diffs.push(format!(
                "{r}: owner {}:{} restored as {}:{}",
                sm.uid(),
                sm.gid(),
                dm.uid(),
                dm.gid()
            ));
        }
        if (sm.mtime(), sm.mtime_nsec()) != (dm.mtime(), dm.mtime_nsec()) {
            self.diffs.push(format!(
                "{r}: mtime {}.{:09} restored as {}.{:09}",
                sm.mtime(),
                sm.mtime_nsec(),
                dm.mtime(),
                dm.mtime_nsec()
            ));
        }
        let (sx, dx) = (xattrs(s), xattrs(d));
        if sx != dx {
            self.diffs
                .push(format!("{r}: xattrs {sx:?} restored as {dx:?}"));
        }
        if sft.is_file() {
            let (a, b) = (std::fs::read(s).unwrap(), std::fs::read(d).unwrap());
            if a != b {
                let first = a.iter().zip(&b).position(|(x, y)| x != y);
                self.diffs.push(format!(
                    "{r}: content differs ({} vs {} bytes, first difference at {first:?})",
                    a.len(),
                    b.len()
                ));
            }
            if is_sparse(&sm) && !is_sparse(&dm) {
                self.diffs.push(format!(
                    "{r}: sparse ({} blocks for {} bytes) restored dense ({} blocks)",
                    sm.blocks(),
                    sm.len(),
                    dm.blocks()
                ));
            }
            let key = (sm.dev(), sm.ino());
            if sm.nlink() > 1 {
                match self.links.get(&key) {
                    Some(&ino) if ino != dm.ino() => self
                        .diffs
                        .push(format!("{r}: hard link restored as a separate file")),
                    Some(_) => {}
                    None => {
                        self.links.insert(key, dm.ino());
                    }
                }
            }
            if let Some(prev) = self.restored.insert(dm.ino(), key)
                && prev != key
            {
                self.diffs
                    .push(format!("{r}: restored as a hard link of an unrelated file"));
            }
        }
        if sft.is_symlink() {
            let (a, b) = (
                std::fs::read_link(s).unwrap(),
                std::fs::read_link(d).unwrap(),
            );
            if a != b {
                self.diffs
                    .push(format!("{r}: link target {a:?} restored as {b:?}"));
            }
        }
        if (sft.is_char_device() || sft.is_block_device()) && sm.rdev() != dm.rdev() {
            self.diffs.push(format!(
                "{r}: device {} restored as {}",
                sm.rdev(),
                dm.rdev()
            ));
        }
        if sft.is_dir() {
            let (sn, dn) = (sorted_names(s), sorted_names(d));
            for extra in dn.iter().filter(|n| !sn.contains(n)) {
                self.diffs
                    .push(format!("{r}: unexpected entry {extra:?} in the restore"));
            }
            for n in sn {
                self.entry(&s.join(&n), &d.join(&n), &rel.join(&n));
            }
        }
    }
}

/// What a tree holds, without metadata: for comparing restores of older snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Dir,
    File(Vec<u8>),
    Symlink(PathBuf),
    Other,
}

/// Every entry below `root` (relative paths) with its content.
pub fn contents(root: &Path) -> BTreeMap<PathBuf, Content> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for name in sorted_names(&dir) {
            let r = rel.join(&name);
            let p = root.join(&r);
            let md = std::fs::symlink_metadata(&p).unwrap();
            let c = if md.is_dir() {
                stack.push(r.clone());
                Content::Dir
            } else if md.is_file() {
                Content::File(std::fs::read(&p).unwrap())
            } else if md.file_type().is_symlink() {
                Content::Symlink(std::fs::read_link(&p).unwrap())
            } else {
                Content::Other
            };
            out.insert(r, c);
        }
    }
    out
}

/// Options for [`build_random_tree`].
#[derive(Debug, Clone, Copy)]
pub struct TreeShape {
    pub seed: u64,
    pub entries: usize,
}

/// Builds a random tree at `root` (which must not exist): directories, empty, small and
/// multi-chunk files, sparse files, symlinks (some dangling), hard links, fifos; random
/// modes (setuid, setgid, sticky), owners (as root), xattrs and mtimes, some before 1970;
/// names with spaces, non-ASCII and non-UTF-8 bytes.
pub fn build_random_tree(root: &Path, shape: TreeShape) {
    let mut rng = Rng(shape.seed);
    std::fs::create_dir(root).unwrap();
    let mut dirs: Vec<PathBuf> = vec![root.to_path_buf()];
    let mut files: Vec<PathBuf> = Vec::new();
    // Every non-directory entry, for the metadata pass.
    let mut others: Vec<(PathBuf, bool)> = Vec::new();
    for i in 0..shape.entries {
        let parent = rng.pick(&dirs).clone();
        let name: OsString = match rng.below(6) {
            0 => format!("e{i} with space").into(),
            1 => format!("e{i}-ünïcødé").into(),
            2 => OsString::from_vec(
                [b"e".as_slice(), i.to_string().as_bytes(), b"-\xff\xfe"].concat(),
            ),
            _ => format!("e{i}").into(),
        };
        let path = parent.join(name);
        match rng.below(11) {
            0 | 1 => {
                std::fs::create_dir(&path).unwrap();
                dirs.push(path);
                continue;
            }
            2 => std::fs::write(&path, b"").unwrap(),
            3 | 4 => {
                let n = rng.range(1, 5000) as usize;
                std::fs::write(&path, rng.bytes(n)).unwrap();
            }
            5 => {
                let n = rng.range(40_000, 200_000) as usize;
                std::fs::write(&path, rng.mixed(n)).unwrap();
            }
            6 => {
                let size = rng.range(16, 256) * 4096 + rng.below(4096);
                let offset = rng.range(4, 12) * 4096;
                let n = rng.range(100, 20_000) as usize;
                write_sparse(&path, size, offset, &rng.bytes(n));
            }
            7 => {
                let target = match rng.below(3) {
                    0 => "dangling/nowhere".to_string(),
                    1 => "../".to_string(),
                    _ => format!("e{}", rng.below(shape.entries as u64)),
                };
                std::os::unix::fs::symlink(target, &path).unwrap();
                others.push((path, true));
                continue;
            }
            8 if !files.is_empty() => {
                let first = rng.pick(&files).clone();
                std::fs::hard_link(first, &path).unwrap();
            }
            8 => std::fs::write(&path, rng.bytes(10)).unwrap(),
            9 => {
                mkfifo(&path, 0o644);
                others.push((path, false));
                continue;
            }
            _ => {
                let n = rng.range(1, 300) as usize;
                std::fs::write(&path, rng.compressible(n)).unwrap();
            }
        }
        files.push(path.clone());
        others.push((path, false));
    }
    let root_ok = is_root();
    let owners = [0u32, 1, 1000, 4242, 65534];
    let file_modes: &[u32] = if root_ok {
        &[
            0o644, 0o600, 0o755, 0o4755, 0o2755, 0o6711, 0o444, 0o000, 0o1644,
        ]
    } else {
        &[0o644, 0o600, 0o755, 0o4755, 0o2755, 0o640]
    };
    let dir_modes: &[u32] = if root_ok {
        &[0o755, 0o700, 0o1777, 0o2775, 0o555, 0o3750]
    } else {
        &[0o755, 0o700, 0o1777, 0o2775, 0o750]
    };
    let mtime = |rng: &mut Rng| -> i64 {
        let secs = if rng.below(8) == 0 {
            -(rng.range(1, 1_000_000_000) as i64)
        } else {
            rng.range(1, 2_000_000_000) as i64
        };
        secs * 1_000_000_000 + rng.below(1_000_000_000) as i64
    };
    let meta = |path: &Path, symlink: bool, modes: &[u32], rng: &mut Rng| {
        if !symlink {
            for j in 0..rng.below(3) {
                let n = rng.below(64) as usize;
                try_set_xattr(path, &format!("user.k{j}"), &rng.bytes(n));
            }
        }
        if root_ok {
            lchown(path, *rng.pick(&owners), *rng.pick(&owners));
        }
        if !symlink {
            chmod(path, *rng.pick(modes));
        }
        let t = mtime(rng);
        set_times(path, t);
    };
    for (p, symlink) in &others {
        meta(p, *symlink, file_modes, &mut rng);
    }
    // Directories last, deepest (latest created) first, so their times stay as set.
    for d in dirs.iter().rev() {
        meta(d, false, dir_modes, &mut rng);
    }
}
