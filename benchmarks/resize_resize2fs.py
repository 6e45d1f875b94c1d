"""Growing and shrinking an image holding a tree: `vexfs resize` vs `resize2fs`, the images
made from the same tree at the same size, in the same run.

A tree of --files files (sizes 0..64 KiB, 1000 a directory) becomes an extended-layout image
(`mkfs.vexfs -q -d TREE -s SIZE`) and an ext4 image (`mke2fs -q -F -t ext4 -d TREE IMG
SIZE`). For each --repeat, fresh copies of both are (1) grown: the file extended to 4 x SIZE
and `vexfs resize -f IMG` / `resize2fs IMG` run (to the file's size); (2) shrunk:
`vexfs resize -f -M IMG` / `resize2fs -M IMG` on the grown copies, which moves the blocks
that the grow left past the minimum (few: both keep data where it was; ext4's inode tables
of the removed groups and our table's tail go). `-f` skips our fsck preflight, as resize2fs
does not check either (it only asks for a recent e2fsck). The best wall-clock time of each,
the ratio ours/anchor, and the time of the preflight fsck alone are printed.

    python benchmarks/resize_resize2fs.py [--files 20000] [--size 1G] [--repeat 3] [--dir /tmp]

Results depend on the machine's load: the ratio is taken within one run.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import anchor, remove, report, run_timed, tool  # noqa: E402

SEED = 20261201
PER_DIR = 1000
MAX_SIZE = 64 << 10


def build_tree(root: str, files: int) -> None:
    rng = random.Random(SEED)
    pool = rng.randbytes(MAX_SIZE * 16)
    for index in range(files):
        sub = os.path.join(root, f"d{index // PER_DIR:04d}")
        os.makedirs(sub, exist_ok=True)
        size = rng.randint(0, MAX_SIZE)
        offset = rng.randrange(0, len(pool) - size + 1)
        with open(os.path.join(sub, f"f{index:07d}.dat"), "wb") as f:
            f.write(pool[offset:offset + size])


def sparse_copy(source: str, target: str) -> None:
    remove(target)
    subprocess.run(["cp", "--sparse=always", source, target], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--size", default="1G", help="image size (mkfs -s / mke2fs)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    mkfs, vexfs, fsck = tool("mkfs.vexfs"), tool("vexfs"), tool("fsck.vexfs")
    mke2fs, resize2fs = anchor("mke2fs"), anchor("resize2fs")
    work = tempfile.mkdtemp(prefix="resize-bench-", dir=args.dir)
    try:
        tree = os.path.join(work, "tree")
        build_tree(tree, args.files)
        ours_base, theirs_base = os.path.join(work, "base.vexfs"), os.path.join(work, "base.ext4")
        subprocess.run([mkfs, "-q", "-d", tree, "-s", args.size, ours_base], check=True)
        subprocess.run([mke2fs, "-q", "-F", "-t", "ext4", "-d", tree, theirs_base, args.size], check=True)
        shutil.rmtree(tree)
        grown_size = 4 * os.path.getsize(ours_base)
        ours_img, theirs_img = os.path.join(work, "r.vexfs"), os.path.join(work, "r.ext4")
        times = {key: [] for key in ("grow-ours", "grow-anchor", "shrink-ours", "shrink-anchor", "fsck")}
        for turn in range(args.repeat):
            sparse_copy(ours_base, ours_img)
            sparse_copy(theirs_base, theirs_img)
            os.truncate(ours_img, grown_size)
            os.truncate(theirs_img, grown_size)
            pairs = [("grow-ours", [vexfs, "resize", "-f", ours_img]),
                     ("grow-anchor", [resize2fs, theirs_img])]
            for key, argv in (pairs if turn % 2 == 0 else pairs[::-1]):
                times[key].append(run_timed(argv))
            times["fsck"].append(run_timed([fsck, "-fn", ours_img]))
            pairs = [("shrink-ours", [vexfs, "resize", "-f", "-M", ours_img]),
                     ("shrink-anchor", [resize2fs, "-M", theirs_img])]
            for key, argv in (pairs if turn % 2 == 0 else pairs[::-1]):
                times[key].append(run_timed(argv))
        print(f"{args.files} files in {args.size}, grown to {grown_size >> 20} MiB, then shrunk to the minimum")
        print("grow:")
        report("vexfs resize", times["grow-ours"], "resize2fs", times["grow-anchor"])
        print("shrink (-M):")
        report("vexfs resize -M", times["shrink-ours"], "resize2fs -M", times["shrink-anchor"])
        print(f"the preflight fsck.vexfs -fn (skipped by -f) best: {min(times['fsck']):.3f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
