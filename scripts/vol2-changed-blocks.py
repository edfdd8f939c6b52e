#!/usr/bin/env python3
"""Prints the exact changed-block list of the bench kit's vol2.img (relative to vol.img) as
CSI SnapshotMetadata JSON, by replaying the seeded choices of ../shared/bench/gen.py mutvol
(the same random.Random sequence, without writing anything).

  scripts/vol2-changed-blocks.py KIT_DIR IMG > delta.json

IMG is vol.img (or vol2.img: same size); KIT_DIR holds gen.py. If gen.py's mutvol changes,
this must change with it: scripts/chunk-sizes.sh checks the list against
`cairn backup --since-image` output sizes.
"""
import json, os, random, sys

sys.path.insert(0, sys.argv[1])
import gen  # noqa: E402

size = os.path.getsize(sys.argv[2])
rng = random.Random(gen.SEED + 1)
nblk = size // 4096
picks = rng.sample(range(nblk), nblk // 100)   # as gen.mutvol: 1% scattered 4K blocks
run = nblk // 200                               # and a 0.5% contiguous run
start = rng.randrange(0, nblk - run)
blocks = sorted(set(picks) | set(range(start, start + run)))
ranges = []
for b in blocks:
    if ranges and ranges[-1][0] + ranges[-1][1] == b * 4096:
        ranges[-1][1] += 4096
    else:
        ranges.append([b * 4096, 4096])
json.dump({"block_metadata_type": "VARIABLE_LENGTH", "volume_capacity_bytes": size,
           "block_metadata": [{"byte_offset": o, "size_bytes": n} for o, n in ranges]},
          sys.stdout)
print()
