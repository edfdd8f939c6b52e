#!/usr/bin/env python3
"""Copies the bench kit (../shared/bench) to DEST with one more tool config, `cairn-cbt`:
Cairn with one source identity for vol.img and vol2.img, whose vol2 incremental is given
the exact changed-block list (scripts/vol2-changed-blocks.py writes it to LIST). Everything
else, including every peer's line, stays as the kit has it. Fails loudly if the kit's cairn
lines changed shape.

  scripts/bench-kit-cbt.py KIT DEST LIST
"""
import shutil, sys

kit, dest, lst = sys.argv[1:]
shutil.copytree(kit, dest, dirs_exist_ok=True)
p = dest + "/bench.sh"
s = open(p).read()
swaps = [
    ("    cairn) $CAIRN init --repo $1 ;;", "    cairn*) $CAIRN init --repo $1 ;;"),
    ("    cairn) case $2 in *.img)",
     "    cairn-cbt) case $2 in *vol2.img) echo $CAIRN backup --repo $1 --source-id benchvol "
     "--volume $2 --changed-blocks " + lst + " ;; *.img) echo $CAIRN backup --repo $1 "
     "--source-id benchvol --volume $2 ;; *) echo $CAIRN backup --repo $1 $2 ;; esac ;;\n"
     "    cairn) case $2 in *.img)"),
    ("      cairn) measure vol_restore", "      cairn*) measure vol_restore"),
    ("      cairn) measure tree_restore", "      cairn*) measure tree_restore"),
]
for a, b in swaps:
    if s.count(a) != 1:
        sys.exit("bench-kit-cbt: the kit's bench.sh no longer has %r" % a)
    s = s.replace(a, b)
open(p, "w").write(s)
