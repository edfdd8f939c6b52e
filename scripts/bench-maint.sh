#!/usr/bin/env bash
# Prune and check of a repository with N snapshots of the shared tree, for Cairn, restic and
# rustic on the same contents (same run): medians of 3, peak RSS (GNU time -v).
#
#   scripts/bench-maint.sh [DATA_DIR] [SNAPSHOTS]
#
# DATA_DIR defaults to ~/.cache/cairn-bench/data/tree; SNAPSHOTS to 50. Each snapshot backs
# up the tree plus a small varying directory (a copy of one file of the tree, alternating),
# so that forget + prune has something to free. Results go to stdout as a Markdown table.
set -euo pipefail

DATA=${1:-$HOME/.cache/cairn-bench/data/tree}
N=${2:-50}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-maint.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export CAIRN_PASSWORD=bench RESTIC_PASSWORD=bench RUSTIC_PASSWORD=bench
CAIRN=${CAIRN:-$ROOT/target/release/cairn}
[ -x "$CAIRN" ] || (cd "$ROOT" && cargo build --release -p cairn-cli >&2)
command -v restic >/dev/null || { echo "restic not installed" >&2; exit 2; }
command -v rustic >/dev/null || { echo "rustic not installed" >&2; exit 2; }

SRC=$WORK/src
mkdir -p "$SRC/vary"
ln -s "$DATA" "$SRC/tree"
mapfile -t FILES < <(find "$DATA" -type f -size -4M -print | head -20 || true)

# measure CMD…: runs 3 times, prints "median_seconds peak_rss_kib". With RESET set, runs it
# before each run (untimed): prune must find the same garbage every time.
measure() {
    local times=() rss=0
    for _ in 1 2 3; do
        [ -n "${RESET:-}" ] && eval "$RESET"
        /usr/bin/time -v -o "$WORK/time" "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; return 1; }
        times+=("$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$WORK/time")")
        local r; r=$(awk -F': ' '/Maximum resident/{print $2}' "$WORK/time")
        (( r > rss )) && rss=$r
    done
    printf '%s %s\n' "$(printf '%s\n' "${times[@]}" | sort -g | sed -n 2p)" "$rss"
}

fill() { # fill TOOL: N backups of the same varying tree
    local tool=$1
    for i in $(seq 1 "$N"); do
        rm -rf "$SRC/vary"/*; [ ${#FILES[@]} -gt 0 ] && cp "${FILES[$(( i % ${#FILES[@]} ))]}" "$SRC/vary/f$((i % 2))"
        echo "$i" > "$SRC/vary/round"
        case $tool in
            cairn) "$CAIRN" backup -q --repo "$WORK/cairn" "$SRC/tree/" "$SRC/vary" >/dev/null ;;
            restic) restic -q -r "$WORK/restic" backup "$SRC/tree/" "$SRC/vary" >/dev/null ;;
            rustic) rustic --no-progress -r "$WORK/rustic" backup "$SRC/tree/" "$SRC/vary" >/dev/null 2>&1 ;;
        esac
    done
}

"$CAIRN" init -q --repo "$WORK/cairn" >/dev/null
restic -q -r "$WORK/restic" init >/dev/null
rustic -r "$WORK/rustic" init >/dev/null 2>&1
for t in cairn restic rustic; do fill "$t"; done
# Forget half, so prune has garbage; Cairn prunes twice (mark, then sweep) with the margin
# set to zero for the benchmark only (docs/format.md §14).
"$CAIRN" forget -q --repo "$WORK/cairn" --keep-last $((N / 2)) >/dev/null
restic -q -r "$WORK/restic" forget --keep-last $((N / 2)) >/dev/null
rustic -r "$WORK/rustic" forget --keep-last $((N / 2)) >/dev/null 2>&1

echo "| tool | operation | median s | peak RSS MiB |"
echo "| --- | --- | --- | --- |"
row() { read -r s k; printf '| %s | %s | %s | %.0f |\n' "$1" "$2" "$s" "$(echo "$k / 1024" | bc -l)"; }
for t in cairn restic rustic; do cp -a "$WORK/$t" "$WORK/$t.orig"; done
fresh() { echo "rm -rf '$WORK/$1' && cp -a '$WORK/$1.orig' '$WORK/$1' && sync"; }
RESET=$(fresh cairn) measure env CAIRN_TEST_PRUNE_MARGIN_SECS=0 sh -c "'$CAIRN' prune -q --repo '$WORK/cairn' && '$CAIRN' prune -q --repo '$WORK/cairn'" | row cairn "prune (mark + sweep)"
RESET=$(fresh restic) measure restic -q -r "$WORK/restic" prune | row restic prune
RESET=$(fresh rustic) measure rustic -r "$WORK/rustic" prune | row rustic prune
measure "$CAIRN" check -q --repo "$WORK/cairn" | row cairn check
measure restic -q -r "$WORK/restic" check | row restic check
measure rustic -r "$WORK/rustic" check | row rustic check
measure "$CAIRN" check -q --read-data --repo "$WORK/cairn" | row cairn "check --read-data"
measure restic -q -r "$WORK/restic" check --read-data | row restic "check --read-data"
measure rustic -r "$WORK/rustic" check --read-data | row rustic "check --read-data"
