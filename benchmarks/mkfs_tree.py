"""mkfs -d of a tree of many small files: `mkfs.vexfs -q -d TREE -s SIZE IMG` vs
`mke2fs -q -F -t ext4 -d TREE IMG SIZE`, same tree, same image size.

The tree (default 100,000 files) is generated deterministically: directories of 1000 files,
sizes 0..8 KiB, one file in 10,000 of 1..16 MiB. It is read once before timing so that both
tools see a warm page cache (the cache is not dropped: that needs root and is not reliable).
Each run writes a fresh image; the best of --repeat wall-clock times is printed with the
ratio ours/anchor. Afterwards our last image is checked: fsck.vexfs -n, `vexfs ls` of the
root and of one directory, and `vexfs cat` of a sample of files compared with the source.

Goal (the issue): ours is no slower than mke2fs (ratio <= 1.0).

    python benchmarks/mkfs_tree.py [--files 100000] [--repeat 3] [--size 2G] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import allocated, anchor, human, remove, report, run_timed, tool  # noqa: E402

FILES_PER_DIR = 1000
SMALL_MAX = 8 << 10
BIG_EVERY = 10_000
BIG_MIN, BIG_MAX = 1 << 20, 16 << 20
SEED = 20240601


def build_tree(root: str, files: int) -> tuple[int, int, list[str]]:
    """Write the tree; returns (files, bytes, relative paths of all files)."""
    rng = random.Random(SEED)
    pool = rng.randbytes(BIG_MAX + SMALL_MAX)  # file contents are slices of this
    total = 0
    paths = []
    dirs = max(1, -(-files // FILES_PER_DIR))
    for d in range(dirs):
        sub = os.path.join(root, f"d{d:04d}")
        os.mkdir(sub)
        for f in range(d * FILES_PER_DIR, min(files, (d + 1) * FILES_PER_DIR)):
            if f % BIG_EVERY == BIG_EVERY - 1:
                size = rng.randint(BIG_MIN, BIG_MAX)
            else:
                size = rng.randint(0, SMALL_MAX)
            offset = rng.randrange(0, len(pool) - size + 1)
            rel = f"d{d:04d}/f{f:06d}.dat"
            with open(os.path.join(root, rel), "wb") as out:
                out.write(pool[offset:offset + size])
            total += size
            paths.append(rel)
    return files, total, paths


def warm(root: str) -> int:
    """Read every file of the tree (and stat everything) so the page cache holds it."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            os.lstat(path)
            with open(path, "rb", buffering=0) as f:
                while chunk := f.read(1 << 20):
                    total += len(chunk)
    return total


def verify(image: str, tree: str, paths: list[str], sample: int) -> list[str]:
    """Read our image back with fsck.vexfs / vexfs ls / vexfs cat; the problems found."""
    problems = []
    vexfs = tool("vexfs")
    fsck = subprocess.run([tool("fsck.vexfs"), "-n", image], capture_output=True, text=True)
    print(f"  fsck.vexfs -n: exit {fsck.returncode}: "
          f"{(fsck.stdout.strip().splitlines() or [''])[-1]}")
    if fsck.returncode != 0:
        problems.append(f"fsck.vexfs -n {image}: exit {fsck.returncode}\n{fsck.stdout}{fsck.stderr}")

    ls = subprocess.run([vexfs, "ls", image, "/"], capture_output=True, text=True)
    names = set(ls.stdout.split())
    want = {p.split("/")[0] for p in paths} | {"lost+found"}
    print(f"  vexfs ls IMG /: exit {ls.returncode}, {len(names)} names")
    if ls.returncode != 0 or not want <= names:
        problems.append(f"vexfs ls {image} /: exit {ls.returncode}, missing {sorted(want - names)[:5]}"
                        f"\n{ls.stderr}")

    first_dir = paths[0].split("/")[0]
    ls = subprocess.run([vexfs, "ls", image, "/" + first_dir], capture_output=True, text=True)
    names = set(ls.stdout.split())
    want = {p.split("/")[1] for p in paths if p.startswith(first_dir + "/")}
    print(f"  vexfs ls IMG /{first_dir}: exit {ls.returncode}, {len(names & want)}/{len(want)} files")
    if ls.returncode != 0 or not want <= names:
        problems.append(f"vexfs ls {image} /{first_dir}: exit {ls.returncode}, "
                        f"missing {sorted(want - names)[:5]}\n{ls.stderr}")

    rng = random.Random(SEED + 1)
    chosen = set(rng.sample(paths, min(sample, len(paths))))
    chosen |= {paths[0], paths[-1]}
    chosen |= {p for i, p in enumerate(paths) if i % BIG_EVERY == BIG_EVERY - 1}  # the big ones
    good = 0
    for rel in sorted(chosen):
        cat = subprocess.run([vexfs, "cat", image, "/" + rel], capture_output=True)
        with open(os.path.join(tree, rel), "rb") as f:
            expected = f.read()
        if cat.returncode == 0 and cat.stdout == expected:
            good += 1
        else:
            problems.append(f"vexfs cat {image} /{rel}: exit {cat.returncode}, {len(cat.stdout)} bytes "
                            f"read, {len(expected)} expected, equal={cat.stdout == expected}\n"
                            f"{cat.stderr.decode(errors='replace')}")
    print(f"  vexfs cat IMG FILE vs source: {good}/{len(chosen)} files identical")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100_000, help="files in the tree (default 100000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each tool (best is kept)")
    parser.add_argument("--size", default="2G", help="image size, as both tools read it (default 2G)")
    parser.add_argument("--dir", default="/tmp", help="where the tree and images go")
    parser.add_argument("--sample", type=int, default=20, help="files compared with vexfs cat")
    parser.add_argument("--no-verify", action="store_true", help="skip reading our image back")
    args = parser.parse_args()

    mkfs = tool("mkfs.vexfs")
    mke2fs = anchor("mke2fs")
    ours_times: list[float] = []
    anchor_times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="vexfs-bench-tree-", dir=args.dir) as tmp:
        tree = os.path.join(tmp, "tree")
        os.mkdir(tree)
        start = time.perf_counter()
        files, data, paths = build_tree(tree, args.files)
        print(f"tree: {files} files in {-(-files // FILES_PER_DIR)} directories, {human(data)} "
              f"({data} bytes) of data, built in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        warm(tree)
        print(f"warm-up read of the tree: {time.perf_counter() - start:.2f} s")

        ours_img = os.path.join(tmp, "vexfs.img")
        ext4_img = os.path.join(tmp, "ext4.img")
        ours_argv = [mkfs, "-q", "-d", tree, "-s", args.size, ours_img]
        anchor_argv = [mke2fs, "-q", "-F", "-t", "ext4", "-d", tree, ext4_img, args.size]
        ours_alloc = anchor_alloc = 0
        for i in range(args.repeat):
            order = ["ours", "anchor"] if i % 2 == 0 else ["anchor", "ours"]
            last = i == args.repeat - 1
            for who in order:
                if who == "ours":
                    remove(ours_img)
                    ours_times.append(run_timed(ours_argv))
                    ours_alloc = allocated(ours_img)
                    if not last:
                        remove(ours_img)
                else:
                    remove(ext4_img)
                    anchor_times.append(run_timed(anchor_argv))
                    anchor_alloc = allocated(ext4_img)
                    remove(ext4_img)

        print(f"mkfs -d of {files} files into a {args.size} image, best of {args.repeat}")
        print(f"  mkfs.vexfs: {mkfs} -q -d TREE -s {args.size} IMG")
        print(f"  mke2fs:     {mke2fs} -q -F -t ext4 -d TREE IMG {args.size}")
        ratio = report("mkfs.vexfs -d", ours_times, "mke2fs -t ext4 -d", anchor_times)
        print(f"allocated on disk afterwards: mkfs.vexfs {human(ours_alloc)}, mke2fs {human(anchor_alloc)}")

        problems = []
        if not args.no_verify:
            print("reading our image back:")
            problems = verify(ours_img, tree, paths, args.sample)
            for problem in problems:
                print(f"PROBLEM: {problem.rstrip()}")
        remove(ours_img)

        verdict = "PASS" if ratio <= 1.0 else "FAIL"
        print(f"{verdict}: ratio {ratio:.2f} vs goal <= 1.00 "
              f"(mkfs.vexfs {min(ours_times):.3f} s, mke2fs {min(anchor_times):.3f} s)")
        if problems:
            print(f"FAIL: the image did not read back correctly ({len(problems)} problems)")
    return 0 if verdict == "PASS" and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
