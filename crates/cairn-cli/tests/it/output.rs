//! Snapshots of stdout, stderr and the exit code of the everyday commands, human and JSON.

use crate::cairn_snapshot;
use crate::common::{TestContext, run_ok, small_tree};

#[test]
fn init() {
    let ctx = TestContext::new();
    cairn_snapshot!(ctx, ctx.cairn(["init", "--kdf-memory", "64", "--kdf-iterations", "1"]), @"
    success: true
    exit_code: 0
    ----- stdout -----
    created repository [ID] at [TMP]/repo
    ----- stderr -----
    ");
    // A second init refuses to overwrite.
    cairn_snapshot!(ctx, ctx.cairn(["init", "--kdf-memory", "64", "--kdf-iterations", "1"]), @"
    success: false
    exit_code: 2
    ----- stdout -----
    ----- stderr -----
    error: creating a repository at [TMP]/repo: a repository already exists at [TMP]/repo
    ");
}

#[test]
fn init_json() {
    let ctx = TestContext::new();
    cairn_snapshot!(ctx, ctx.cairn(["init", "--json", "--kdf-memory", "64", "--kdf-iterations", "1"]), @r#"
    success: true
    exit_code: 0
    ----- stdout -----
    {"id":"[ID]","key":"[ID]","location":"[TMP]/repo","schema":1,"type":"init"}
    ----- stderr -----
    "#);
}

/// First backup, a second one with nothing changed (0 B read), `snapshots`, `catalog`,
/// `restore` and `key list`, in human form.
#[test]
fn backup_and_browse_human() {
    let ctx = TestContext::new();
    ctx.init();
    small_tree(&ctx.root);

    cairn_snapshot!(ctx, ctx.cairn(["backup", "--host", "testhost", "tree"]), @"
    success: true
    exit_code: 0
    ----- stdout -----
    snapshot [ID] saved (parent none)
      3 files, 2 dirs, 1006 B read; 1006 B in total
      added [SIZE] (4 blobs), stored [SIZE] after compression and encryption, in [ELAPSED]
    ----- stderr -----
    ");
    // Nothing changed: nothing read, nothing added, the first is the parent.
    cairn_snapshot!(ctx, ctx.cairn(["backup", "--host", "testhost", "tree"]), @"
    success: true
    exit_code: 0
    ----- stdout -----
    snapshot [ID] saved (parent [ID])
      3 files, 2 dirs, 0 B read; 1006 B in total
      added 0 B (0 blobs), stored 0 B after compression and encryption, in [ELAPSED]
    ----- stderr -----
    ");

    cairn_snapshot!(ctx, ctx.cairn(["snapshots"]), @"
    success: true
    exit_code: 0
    ----- stdout -----
    ID        TIME                       HOST          KIND          SIZE  TAGS              SOURCE
    [ID]  [TIME]    testhost      tree        1006 B                    [TMP]/tree
    [ID]  [TIME]    testhost      tree        1006 B                    [TMP]/tree
    2 snapshots
    ----- stderr -----
    ");
    cairn_snapshot!(ctx, ctx.cairn(["catalog", "latest"]), @"
    success: true
    exit_code: 0
    ----- stdout -----
    -rw-r--r-- [UID] [GID]            6 [TIME] a.txt
    -rw------- [UID] [GID]            0 [TIME] empty
    lrwxrwxrwx [UID] [GID]            0 [TIME] link -> a.txt
    drwxr-x--- [UID] [GID]            0 [TIME] sub
    ----- stderr -----
    ");
    cairn_snapshot!(ctx, ctx.cairn(["catalog", "latest", "-R"]), @"
    success: true
    exit_code: 0
    ----- stdout -----
    -rw-r--r-- [UID] [GID]            6 [TIME] a.txt
    -rw------- [UID] [GID]            0 [TIME] empty
    lrwxrwxrwx [UID] [GID]            0 [TIME] link -> a.txt
    drwxr-x--- [UID] [GID]            0 [TIME] sub
    -rw-r--r-- [UID] [GID]         1000 [TIME] sub/b.bin
    ----- stderr -----
    ");
    cairn_snapshot!(ctx, ctx.cairn(["catalog", "latest:sub"]), @"
    success: true
    exit_code: 0
    ----- stdout -----
    -rw-r--r-- [UID] [GID]         1000 [TIME] sub/b.bin
    ----- stderr -----
    ");

    cairn_snapshot!(ctx, ctx.cairn(["restore", "latest", "--target", "out"]), @"
    success: true
    exit_code: 0
    ----- stdout -----
    restored snapshot [ID] to out: 3 files, 1 dirs, 1006 B
    ----- stderr -----
    ");
    assert_eq!(
        crate::common::manifest(&ctx.root.join("tree")),
        crate::common::manifest(&ctx.root.join("out"))
    );

    cairn_snapshot!(ctx, ctx.cairn(["key", "list"]), @"
    success: true
    exit_code: 0
    ----- stdout -----
     ID        USER              HOST          CREATED
    *[ID]  tester            [HOST]            [TIME]
    ----- stderr -----
    ");
}

/// The same in JSON.
#[test]
fn backup_and_browse_json() {
    let ctx = TestContext::new();
    ctx.init();
    small_tree(&ctx.root);

    cairn_snapshot!(ctx, ctx.cairn(["backup", "--json", "--host", "testhost", "tree"]), @r#"
    success: true
    exit_code: 0
    ----- stdout -----
    {"bytes_done":0,"bytes_total":null,"elapsed_seconds":"[ELAPSED]","items_done":0,"operation":"backup","schema":1,"type":"begin"}
    {"bytes_done":1006,"bytes_total":null,"elapsed_seconds":"[ELAPSED]","items_done":4,"operation":"backup","schema":1,"type":"end"}
    {"operation":"backup","parent":null,"schema":1,"snapshot":"[ID]","source":{"identity":"tree:testhost:[TMP]/tree","kind":"tree","paths":["[TMP]/tree"]},"summary":{"blobs_added":4,"bytes_added":"[SIZE]","bytes_read":1006,"bytes_stored":"[SIZE]","dirs":2,"duration_ms":"[ELAPSED]","errors":0,"files":3,"files_read":3,"total_bytes":1006},"type":"summary"}
    ----- stderr -----
    "#);
    cairn_snapshot!(ctx, ctx.cairn(["backup", "--json", "--host", "testhost", "tree"]), @r#"
    success: true
    exit_code: 0
    ----- stdout -----
    {"bytes_done":0,"bytes_total":null,"elapsed_seconds":"[ELAPSED]","items_done":0,"operation":"backup","schema":1,"type":"begin"}
    {"bytes_done":1006,"bytes_total":null,"elapsed_seconds":"[ELAPSED]","items_done":4,"operation":"backup","schema":1,"type":"end"}
    {"operation":"backup","parent":"[ID]","schema":1,"snapshot":"[ID]","source":{"identity":"tree:testhost:[TMP]/tree","kind":"tree","paths":["[TMP]/tree"]},"summary":{"blobs_added":0,"bytes_added":0,"bytes_read":0,"bytes_stored":0,"dirs":2,"duration_ms":"[ELAPSED]","errors":0,"files":3,"files_read":0,"total_bytes":1006},"type":"summary"}
    ----- stderr -----
    "#);
    cairn_snapshot!(ctx, ctx.cairn(["snapshots", "--json"]), @r#"
    success: true
    exit_code: 0
    ----- stdout -----
    {"schema":1,"snapshots":[{"host":"testhost","id":"[ID]","kind":"tree","parent":null,"source":{"identity":"tree:testhost:[TMP]/tree","kind":"tree","paths":["[TMP]/tree"]},"summary":{"blobs_added":4,"bytes_added":"[SIZE]","bytes_read":1006,"bytes_stored":"[SIZE]","dirs":2,"duration_ms":"[ELAPSED]","errors":0,"files":3,"files_read":3,"total_bytes":1006},"tags":[],"time":"[TIME]","user":"tester"},{"host":"testhost","id":"[ID]","kind":"tree","parent":"[ID]","source":{"identity":"tree:testhost:[TMP]/tree","kind":"tree","paths":["[TMP]/tree"]},"summary":{"blobs_added":0,"bytes_added":0,"bytes_read":0,"bytes_stored":0,"dirs":2,"duration_ms":"[ELAPSED]","errors":0,"files":3,"files_read":0,"total_bytes":1006},"tags":[],"time":"[TIME]","user":"tester"}]}
    ----- stderr -----
    "#);
    cairn_snapshot!(ctx, ctx.cairn(["catalog", "--json", "latest", "-R"]), @r#"
    success: true
    exit_code: 0
    ----- stdout -----
    {"entries":[{"gid":"[GID]","link_target":null,"mode":"644","mtime":"[TIME]","path":"a.txt","size":6,"type":"file","uid":"[UID]"},{"gid":"[GID]","link_target":null,"mode":"600","mtime":"[TIME]","path":"empty","size":0,"type":"file","uid":"[UID]"},{"gid":"[GID]","link_target":"a.txt","mode":"777","mtime":"[TIME]","path":"link","size":0,"type":"symlink","uid":"[UID]"},{"gid":"[GID]","link_target":null,"mode":"750","mtime":"[TIME]","path":"sub","size":0,"type":"dir","uid":"[UID]"},{"gid":"[GID]","link_target":null,"mode":"644","mtime":"[TIME]","path":"sub/b.bin","size":1000,"type":"file","uid":"[UID]"}],"schema":1,"snapshot":"[ID]"}
    ----- stderr -----
    "#);
    cairn_snapshot!(ctx, ctx.cairn(["restore", "--json", "latest", "--target", "out"]), @r#"
    success: true
    exit_code: 0
    ----- stdout -----
    {"bytes_done":0,"bytes_total":1006,"elapsed_seconds":"[ELAPSED]","items_done":0,"operation":"restore","schema":1,"type":"begin"}
    {"bytes_done":1006,"bytes_total":1006,"elapsed_seconds":"[ELAPSED]","items_done":3,"operation":"restore","schema":1,"type":"end"}
    {"bytes":1006,"dirs":1,"errors":[],"files":3,"operation":"restore","schema":1,"snapshot":"[ID]","target":"out","type":"summary"}
    ----- stderr -----
    "#);
    cairn_snapshot!(ctx, ctx.cairn(["key", "list", "--json"]), @r#"
    success: true
    exit_code: 0
    ----- stdout -----
    {"keys":[{"created":"[TIME]","current":true,"hostname":"[HOST]","id":"[ID]","username":"tester"}],"schema":1}
    ----- stderr -----
    "#);
}

/// `-q` prints only the result: the full snapshot id.
#[test]
fn backup_quiet_prints_the_id() {
    let ctx = TestContext::new();
    ctx.init();
    small_tree(&ctx.root);
    let out = cairn_snapshot!(ctx, ctx.cairn(["backup", "-q", "tree"]), @"
    success: true
    exit_code: 0
    ----- stdout -----
    [ID]
    ----- stderr -----
    ");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(crate::common::snapshot_ids(&ctx), vec![id]);
}

#[test]
fn help() {
    let ctx = TestContext::new();
    cairn_snapshot!(ctx, ctx.command().arg("--help"), @"
    success: true
    exit_code: 0
    ----- stdout -----
    Encrypted, deduplicated, incremental backups of volumes, file trees and streams

    Usage: cairn [OPTIONS] <COMMAND>

    Commands:
      init         Create a repository
      backup       Back up paths, a volume (--volume) or standard input (--stdin)
      restore      Restore a snapshot (or a path inside it) to a directory, file or device
      snapshots    List snapshots
      catalog      List the files inside a snapshot
      key          Manage the passphrases (keys) of a repository
      app          Kubernetes applications: back up, restore, list, describe
      status       Active and recent operations on this machine (backups, restores, copies, prunes …)
      schedule     Manage scheduled backups (run by `cairn daemon`)
      daemon       Run the schedules; optionally serve Prometheus metrics
      credentials  Manage stored credentials for remote locations (secrets are kept encrypted)
      copy         Copy snapshots to another repository (another store, credentials, passphrase)
      forget       Delete snapshots that keep rules do not keep (grouped by source and host)
      prune        Delete data no snapshot references; repack mostly-empty packs. Runs alongside backups
      check        Verify the repository's structure and, with --read-data, every stored byte
      repair       Repair a damaged repository
      diff         Show what changed between two snapshots
      unlock       Remove stale locks (left by processes that died)
      help         Print this message or the help of the given subcommand(s)

    Options:
      -r, --repo <REPO>                    Repository location: a path (local disk, NFS mount),
                                           s3://bucket/prefix, azblob://container/prefix,
                                           gs://bucket/prefix, or the name of stored credentials that
                                           have a location. Default: the embedded repository in the
                                           user's data directory [env: CAIRN_REPOSITORY]
          --password-file <PASSWORD_FILE>  Read the passphrase from this file (else CAIRN_PASSWORD, else
                                           a prompt on a terminal) [env: CAIRN_PASSWORD_FILE]
          --json                           Machine-readable JSON output on stdout
      -q, --quiet                          Print only results and errors
      -v, --verbose...                     More log output (repeat for more)
          --no-progress                    No progress bars
          --credentials <CREDENTIALS>      Stored credentials (name or id) for a remote --repo. Default:
                                           the only stored credentials of the location's provider, if
                                           there is exactly one [env: CAIRN_CREDENTIALS=]
          --limit-upload <KIB_PER_S>       Limit uploads to this many KiB/s
          --limit-download <KIB_PER_S>     Limit downloads to this many KiB/s
          --threads <THREADS>              Worker threads for hashing, compression and encryption
                                           (default: one per core)
      -h, --help                           Print help
      -V, --version                        Print version
    ----- stderr -----
    ");
}

#[test]
fn no_arguments_is_a_usage_error() {
    let ctx = TestContext::new();
    cairn_snapshot!(ctx, ctx.command(), @"
    success: false
    exit_code: 2
    ----- stdout -----
    ----- stderr -----
    Encrypted, deduplicated, incremental backups of volumes, file trees and streams

    Usage: cairn [OPTIONS] <COMMAND>

    Commands:
      init         Create a repository
      backup       Back up paths, a volume (--volume) or standard input (--stdin)
      restore      Restore a snapshot (or a path inside it) to a directory, file or device
      snapshots    List snapshots
      catalog      List the files inside a snapshot
      key          Manage the passphrases (keys) of a repository
      app          Kubernetes applications: back up, restore, list, describe
      status       Active and recent operations on this machine (backups, restores, copies, prunes …)
      schedule     Manage scheduled backups (run by `cairn daemon`)
      daemon       Run the schedules; optionally serve Prometheus metrics
      credentials  Manage stored credentials for remote locations (secrets are kept encrypted)
      copy         Copy snapshots to another repository (another store, credentials, passphrase)
      forget       Delete snapshots that keep rules do not keep (grouped by source and host)
      prune        Delete data no snapshot references; repack mostly-empty packs. Runs alongside backups
      check        Verify the repository's structure and, with --read-data, every stored byte
      repair       Repair a damaged repository
      diff         Show what changed between two snapshots
      unlock       Remove stale locks (left by processes that died)
      help         Print this message or the help of the given subcommand(s)

    Options:
      -r, --repo <REPO>                    Repository location: a path (local disk, NFS mount),
                                           s3://bucket/prefix, azblob://container/prefix,
                                           gs://bucket/prefix, or the name of stored credentials that
                                           have a location. Default: the embedded repository in the
                                           user's data directory [env: CAIRN_REPOSITORY]
          --password-file <PASSWORD_FILE>  Read the passphrase from this file (else CAIRN_PASSWORD, else
                                           a prompt on a terminal) [env: CAIRN_PASSWORD_FILE]
          --json                           Machine-readable JSON output on stdout
      -q, --quiet                          Print only results and errors
      -v, --verbose...                     More log output (repeat for more)
          --no-progress                    No progress bars
          --credentials <CREDENTIALS>      Stored credentials (name or id) for a remote --repo. Default:
                                           the only stored credentials of the location's provider, if
                                           there is exactly one [env: CAIRN_CREDENTIALS=]
          --limit-upload <KIB_PER_S>       Limit uploads to this many KiB/s
          --limit-download <KIB_PER_S>     Limit downloads to this many KiB/s
          --threads <THREADS>              Worker threads for hashing, compression and encryption
                                           (default: one per core)
      -h, --help                           Print help
      -V, --version                        Print version
    ");
}

/// `backup` with nothing to back up.
#[test]
fn backup_without_paths() {
    let ctx = TestContext::new();
    ctx.init();
    cairn_snapshot!(ctx, ctx.cairn(["backup"]), @"
    success: false
    exit_code: 2
    ----- stdout -----
    ----- stderr -----
    error: nothing to back up: give paths, --volume DEVICE, or --stdin --name NAME
    ");
}

/// An empty snapshot list still prints the header and the count.
#[test]
fn snapshots_empty() {
    let ctx = TestContext::new();
    ctx.init();
    cairn_snapshot!(ctx, ctx.cairn(["snapshots"]), @"
    success: true
    exit_code: 0
    ----- stdout -----
    ID        TIME                       HOST          KIND          SIZE  TAGS              SOURCE
    0 snapshots
    ----- stderr -----
    ");
    run_ok(&mut ctx.cairn(["snapshots", "--json"]));
}
