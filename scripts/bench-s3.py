#!/usr/bin/env python3
"""Helper of scripts/bench-s3.sh (backup and restore to s3s-fs on loopback).

  scripts/bench-s3.py kit KIT DEST      copy the kit (../shared/bench) to DEST with S3 repositories
  scripts/bench-s3.py report RESULTS    median tables and Cairn's ratios from a results TSV

`kit`: every repository becomes a bucket `CFG-RUN-vol` / `CFG-RUN-tree` (prefix `repo`) on the
s3s-fs server at $S3_PORT, whose data directory is $S3_DATA; each tool is given it the way it
names an S3 repository (restic `s3:http://…/bucket/repo`, rustic `opendal:s3` with the bucket
and root in RUSTIC_REPO_OPT_*, Cairn `s3://bucket/repo`). Repository bytes are the size of
bucket/repo in the data directory (s3s-fs's per-object metadata sidecars, kept at the top of
the data directory, are not counted); the page cache is warmed from there before a restore.
Cairn's local state goes to the run's cache directory. The commands of every tool, and
everything else, stay as the kit has them; fails loudly if the kit's lines changed shape.
"""
import collections, csv, shutil, statistics, sys

S3_PRIMITIVES = r'''# S3 (scripts/bench-s3.py): one bucket per repository on s3s-fs at $S3_PORT (data in $S3_DATA).
s3repo() { # KIND -> the repository, named as this tool names it
  case $CFG in
    restic) echo s3:http://127.0.0.1:$S3_PORT/$CFG-$RUN-$1/repo ;;
    rustic*) echo opendal:s3 ;;  # bucket and root: RUSTIC_REPO_OPT_* (s3use)
    cairn*) echo s3://$CFG-$RUN-$1/repo ;;
    *) echo "bench-s3: no S3 repository for $CFG" >&2; exit 2 ;;
  esac
}
s3use() { # KIND: the repository the next steps use
  export RUSTIC_REPO_OPT_BUCKET=$CFG-$RUN-$1 RUSTIC_REPO_OPT_ROOT=/repo
  S3B=$CFG-$RUN-$1; REPO_DIR=$S3_DATA/$S3B/repo; mkdir -p $S3_DATA/$S3B
}
s3wipe() { # empties the current bucket (objects and s3s-fs's metadata sidecars)
  rm -rf $S3_DATA/$S3B/repo
  find $S3_DATA -maxdepth 1 -name ".bucket-$(printf %s $S3B | base64 -w0 | tr '+/' '-_' | tr -d =).*" -delete
}
RV=$(s3repo vol); RT=$(s3repo tree)
export CAIRN_STATE_DIR=$PB/cache/$CFG-$RUN/cairn-state'''

SWAPS = [
    ("RV=$PB/repos/$CFG-$RUN-vol; RT=$PB/repos/$CFG-$RUN-tree\n", "__S3__\n"),
    ("  local rb=$(du -sb $repo | cut -f1)", "  local rb=$(du -sb $REPO_DIR | cut -f1)"),
    ("ops_vol() {\n", "ops_vol() {\n  s3use vol\n"),
    ("ops_tree() {\n", "ops_tree() {\n  s3use tree\n"),
    ("    rm -rf $RV; init_repo $RV", "    s3wipe; init_repo $RV"),
    ("    rm -rf $RT; init_repo $RT", "    s3wipe; init_repo $RT"),
    ("drop; warm $RV\n", "drop; warm $REPO_DIR\n"),
    ("drop; warm $RT\n", "drop; warm $REPO_DIR\n"),
]


def kit(src, dest):
    shutil.copytree(src, dest, dirs_exist_ok=True)
    p = dest + "/bench.sh"
    s = open(p).read()
    for a, b in SWAPS:
        if s.count(a) != 1:
            sys.exit("bench-s3: the kit's bench.sh no longer has %r exactly once" % a)
        s = s.replace(a, b)
    # `export CACHE=...` comes after RV/RT in the kit; CAIRN_STATE_DIR names $PB/cache directly.
    s = s.replace("__S3__", S3_PRIMITIVES)
    open(p, "w").write(s)


OPS = ["vol_full", "vol_incr", "vol_restore", "tree_full", "tree_incr", "tree_restore"]


def report(path):
    rows = [r for r in csv.reader(open(path), delimiter="\t") if r and not r[0].startswith("#")]
    g = collections.defaultdict(list)
    cfgs = []
    for r in rows:
        r = r + [""] * (11 - len(r))
        cfg, run, op, wall, user, sys_, rss, _sync, rb, _inb, ver = r[:11]
        if cfg not in cfgs:
            cfgs.append(cfg)
        g[(cfg, op)].append(dict(run=run, wall=float(wall), cpu=float(user or 0) + float(sys_ or 0),
                                 rss=int(rss or 0), repo=int(rb or 0), ver=ver))
    med = statistics.median
    ok = lambda v: [x for x in v if not x["ver"].startswith("RC=") and "MISMATCH" not in x["ver"]
                    and "DIFF" not in x["ver"]]
    print("| tool | operation | runs ok | wall s (median) | wall s (all runs) | CPU s | max RSS MiB | repo MB after | verify |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in cfgs:
        for op in OPS:
            v = g.get((c, op))
            if not v:
                continue
            good = ok(v)
            w = "%.2f" % med([x["wall"] for x in good]) if good else "failed"
            print("| %s | %s | %d/%d | %s | %s | %.1f | %.0f | %.1f | %s |" % (
                c, op, len(good), len(v), w, " / ".join("%.1f" % x["wall"] for x in v),
                med([x["cpu"] for x in v]), med([x["rss"] for x in v]) / 1024,
                med([x["repo"] for x in v]) / 1e6, ",".join(sorted({x["ver"] or "-" for x in v}))))
    print()
    mw = lambda c, op: med([x["wall"] for x in ok(g[(c, op)])]) if ok(g.get((c, op), [])) else None
    peers = [c for c in cfgs if not c.startswith("cairn")]
    for c in [c for c in cfgs if c.startswith("cairn")]:
        print("| operation | %s s | %s | fastest peer | ratio (peer s ÷ %s s) |" % (
            c, " | ".join("%s s" % p for p in peers), c))
        print("|---|---|%s---|---|" % ("---|" * len(peers)))
        for op in OPS:
            cw = mw(c, op)
            pw = {p: mw(p, op) for p in peers}
            best = min((w, p) for p, w in pw.items() if w is not None) if any(
                w is not None for w in pw.values()) else None
            ratio = "%.2f× %s" % ((best[0] / cw), "faster" if best[0] >= cw else "(slower)") if (
                best and cw) else "n/a"
            print("| %s | %s | %s | %s | %s |" % (
                op, "%.2f" % cw if cw else "failed",
                " | ".join("%.2f" % w if w else "failed" for w in pw.values()),
                "%s %.2f s" % (best[1], best[0]) if best else "n/a", ratio))
        print()
        print("| repository MB (median) | %s | %s |" % (c, " | ".join(peers)))
        print("|---|---|%s" % ("---|" * len(peers)))
        for op, label in (("vol_full", "volume after full"), ("vol_incr", "volume after incremental"),
                          ("tree_full", "tree after full"), ("tree_incr", "tree after incremental")):
            m = lambda x: "%.1f" % (med([r["repo"] for r in g[(x, op)]]) / 1e6) if (x, op) in g else "n/a"
            print("| %s | %s | %s |" % (label, m(c), " | ".join(m(p) for p in peers)))
        print()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "kit":
        kit(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "report":
        report(sys.argv[2])
    else:
        sys.exit(__doc__)
