"""Extraction: `vexfs extract IMG / OUT` against `debugfs -R "rdump / OUT" IMG` on an ext4
image of the same content, for two workloads:

- big:  one 1 GiB file (--big-mib to change), in a 1.25 GiB image;
- tree: 100,000 small files (--files), directories of 1000, sizes 0..2 KiB, generated
        deterministically as in fsck_tree.py;
- large: 20,000 files of 49..128 KiB (each with a single indirect block), made the same way.

For each, the source tree is written once, then an extended-layout VexFS image
(`mkfs.vexfs -q -N INODES -d TREE -s SIZE IMG`) and an ext4 image
(`mke2fs -q -F -t ext4 -N INODES -d TREE IMG SIZE`) are made from it and the tree removed.
Each extraction runs --repeat times into a fresh directory, alternating which tool goes
first (both read warm images from the page cache; ours runs in _common.child_env, which
keeps Python's bytecode cache on); the output is checked against the other
tool's (same files, same sizes, same bytes for a sample), then removed. Printed: every run,
the best of each, and the ratio ours / debugfs.

    python benchmarks/extract_debugfs.py [--only big|tree|large] [--repeat 3] [--dir /tmp]

--dir /dev/shm (tmpfs) keeps the disk out of the measurement: both tools then read warm
images and write to memory, so what is compared is their own work.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (alternate, anchor, big_and_tree_arguments, child_env, human, remove, report,  # noqa: E402
                     run_timed, tool)

SEED = 20240602
FILES_PER_DIR = 1000
SMALL_MAX = 2 << 10
LARGE_FILES, LARGE_SIZES = 20_000, (49 << 10, 128 << 10)


def extract_argv(image: str, out: str) -> list[str]:
    return [tool("vexfs"), "extract", "-q", image, "/", out]


def build_big(root: str, mib: int) -> int:
    os.makedirs(root)
    rng = random.Random(SEED)
    pattern = rng.randbytes(8 << 20)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        for i in range(mib // 8):
            f.write(pattern[i % 7:] + pattern[:i % 7])
    return mib << 20


def build_tree(root: str, files: int, sizes: tuple[int, int] = (0, SMALL_MAX)) -> int:
    os.makedirs(root)
    rng = random.Random(SEED)
    pool = rng.randbytes(max(sizes[1], SMALL_MAX) * 64)
    total = 0
    for d in range(-(-files // FILES_PER_DIR)):
        sub = os.path.join(root, f"d{d:04d}")
        os.mkdir(sub)
        for f in range(d * FILES_PER_DIR, min(files, (d + 1) * FILES_PER_DIR)):
            size = rng.randint(*sizes)
            start = rng.randint(0, len(pool) - size)
            with open(os.path.join(sub, f"f{f:07d}.dat"), "wb") as out:
                out.write(pool[start:start + size])
            total += size
    return total


def summary(root: str) -> tuple[int, int, str]:
    """(files, bytes, digest of the sorted (path, size) list and of a sample of contents)."""
    files = size = 0
    h = hashlib.sha256()
    entries = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            entries.append((os.path.relpath(path, root), st.st_size))
    entries.sort()
    for index, (rel, n) in enumerate(entries):
        if rel == "lost+found" or rel.startswith("lost+found/"):
            continue
        files += 1
        size += n
        h.update(f"{rel}\0{n}\n".encode())
        if index % 997 == 0 or n > 1 << 20:
            with open(os.path.join(root, rel), "rb") as f:
                while chunk := f.read(8 << 20):
                    h.update(chunk)
    return files, size, h.hexdigest()


def run_case(name: str, source: str, nbytes: int, inodes: int, image_size: int, repeat: int, work: str) -> float:
    vexfs_img = os.path.join(work, f"{name}.vexfs.img")
    ext4_img = os.path.join(work, f"{name}.ext4.img")
    for path in (vexfs_img, ext4_img):
        remove(path)
    print(f"\n== {name}: {human(nbytes)} of data; images of {human(image_size)}")
    run_timed([tool("mkfs.vexfs"), "-q", "-N", str(inodes), "-d", source, "-s", str(image_size), vexfs_img],
              env=child_env())
    run_timed([anchor("mke2fs"), "-q", "-F", "-t", "ext4", "-N", str(inodes), "-d", source, ext4_img,
               f"{image_size // 1024}k"])
    shutil.rmtree(source)
    debugfs = anchor("debugfs")
    reference = None

    def timed(which: str, argv: Callable[[str], list[str]]) -> float:
        """One extraction into a fresh directory, its output checked against the first."""
        nonlocal reference
        out = os.path.join(work, f"out-{which}")
        shutil.rmtree(out, ignore_errors=True)
        os.mkdir(out)
        elapsed = run_timed(argv(out), env=child_env())
        got = summary(out)
        if reference is None:
            reference = got
        elif got != reference:
            sys.exit(f"{which}'s output differs: {got[:2]} vs {reference[:2]}")
        shutil.rmtree(out)
        return elapsed

    ours, theirs = alternate(repeat, lambda: timed("ours", lambda out: extract_argv(vexfs_img, out)),
                             lambda: timed("anchor", lambda out: [debugfs, "-R", f"rdump / {out}", ext4_img]))
    print(f"  extracted: {reference[0]} files, {human(reference[1])}, identical from both tools")
    ratio = report("vexfs extract", ours, "debugfs rdump", theirs)
    for path in (vexfs_img, ext4_img):
        remove(path)
    return ratio


def main() -> None:
    args = big_and_tree_arguments(__doc__)
    work = tempfile.mkdtemp(prefix="vexfs-extract-bench-", dir=args.dir)
    ratios = {}
    try:
        if args.only in (None, "big"):
            source = os.path.join(work, "big-src")
            nbytes = build_big(source, args.big_mib)
            size = (nbytes + (256 << 20)) // 4096 * 4096
            ratios["big"] = run_case(f"one {args.big_mib} MiB file", source, nbytes, 1024, size, args.repeat, work)
        if args.only in (None, "tree"):
            source = os.path.join(work, "tree-src")
            nbytes = build_tree(source, args.files)
            size = max(256 << 20, args.files * 8192)
            ratios["tree"] = run_case(f"{args.files} files", source, nbytes, int(args.files * 1.1) + 1024, size,
                                      args.repeat, work)
        if args.only in (None, "large"):
            source = os.path.join(work, "large-src")
            nbytes = build_tree(source, LARGE_FILES, LARGE_SIZES)
            size = LARGE_FILES * (LARGE_SIZES[1] + 8192) + (256 << 20)
            ratios["large"] = run_case(f"{LARGE_FILES} files of 49-128 KiB", source, nbytes,
                                       int(LARGE_FILES * 1.1) + 1024, size, args.repeat, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\nratios (vexfs extract / debugfs rdump): " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
