"""fsck on loop devices (no holes to skip): `fsck.vexfs -fn /dev/loopN` vs `e2fsck -fn
/dev/loopM`, both images made from the same input, in one run.

Cases (each against its anchor, on loop devices over sparse image files):

- empty:    a near-empty 1 TiB extended VexFS (`mkfs.vexfs -s 1T`) vs a 1 TiB ext4;
- files:    a 1 TiB image holding --files small files (default 1,000,000; 0-2 KiB, 1000 a
            directory) vs a 1 TiB ext4 of the same tree;
- indirect: 20,000 files of 49-128 KiB (single indirect blocks) vs ext2 (`mke2fs -t ext2 -d`:
            ext2 has indirect blocks too);
- small:    100,000 small files (0-2 KiB) vs ext4, at the size fsck_tree.py gives them.

Each fsck runs --repeat times, alternating which goes first; the best wall-clock time, the
peak RSS of the child (GNU time's %M, else wait4's ru_maxrss) and the ratios ours/anchor are
printed; the goals are <= 2x e2fsck's time in each case and, on the two terabyte devices
(empty, files), a peak RSS <= 2x the metadata in use (the used inodes' records, the bitmap,
and the blocks that are neither file data nor the inode table: directories, indirect
blocks, superblocks; from `dump.vexfs --json`). The images live under --dir (sparse;
removed at the end, as are the loop devices). Needs root (losetup).

Our tools are the ones installed next to the python that runs this script, so run it with the
python of the installation to measure. Start-up is part of every run (a third of a check of
100,000 small files), and it depends on the interpreter and on what its site-packages run at
start-up (an editable install's import hook, other .pth files): the script prints that floor.
To measure the tools as a user installs them (`pip install .` into a fresh environment):

    python3 -m venv /tmp/v && /tmp/v/bin/pip install . && /tmp/v/bin/python benchmarks/fsck_terabyte.py

    python benchmarks/fsck_terabyte.py [--files 1000000] [--repeat 3] [--dir DIR] [--tree-dir /dev/shm]
                                       [--cases empty,files,indirect,small]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import anchor, human, remove, start_up_floor, tool  # noqa: E402
from fsck_tree import (BLOCK, build_tree, dump_info, inodes_for, last_line, run_checked, run_measured,  # noqa: E402
                       size_for)

GOAL_RATIO = 2.0
RSS_GOAL_RATIO = 2.0  # peak RSS against the metadata in use, on the terabyte devices
RSS_CASES = ("empty", "files")  # the small images' metadata is less than Python's own start-up
TIB = "1T"
CASES = ("empty", "files", "indirect", "small")


class Loop:
    """A read-only loop device over an image file, detached on exit."""

    def __init__(self, image: str):
        self.image = image
        self.device = ""

    def __enter__(self) -> str:
        out = subprocess.run(["losetup", "--find", "--show", "--read-only", self.image],
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"losetup failed (root needed): {out.stderr.strip()}")
        self.device = out.stdout.strip()
        return self.device

    def __exit__(self, *exc) -> None:
        if self.device:
            subprocess.run(["losetup", "-d", self.device], check=False)


def compare(name: str, ours_dev: str, anchor_dev: str, repeat: int) -> dict:
    """Run both checks `repeat` times on their loop devices; print and return the figures."""
    argv = {"ours": [tool("fsck.vexfs"), "-fn", ours_dev], "anchor": [anchor("e2fsck"), "-fn", anchor_dev]}
    times: dict[str, list[float]] = {"ours": [], "anchor": []}
    rss: dict[str, list[int]] = {"ours": [], "anchor": []}
    last: dict[str, str] = {}
    problems = []
    for i in range(repeat):
        for who in (["ours", "anchor"] if i % 2 == 0 else ["anchor", "ours"]):
            elapsed, maxrss, code, text, _ = run_measured(argv[who])
            times[who].append(elapsed)
            rss[who].append(maxrss)
            last[who] = last_line(text)
            if code != 0:
                problems.append(f"{' '.join(argv[who])}: exit {code}\n{text[-2000:]}")
    best = {who: min(ts) for who, ts in times.items()}
    peak = {who: max(r) for who, r in rss.items()}
    ratio = best["ours"] / best["anchor"]
    print(f"--- {name}: best of {repeat} ---")
    print(f"  fsck.vexfs -fn {ours_dev}: {best['ours']:.3f} s (runs {', '.join(f'{t:.3f}' for t in times['ours'])}), "
          f"peak RSS {human(peak['ours'] * 1024)}  -> {last['ours']}")
    print(f"  e2fsck -fn {anchor_dev}:  {best['anchor']:.3f} s (runs {', '.join(f'{t:.3f}' for t in times['anchor'])}), "
          f"peak RSS {human(peak['anchor'] * 1024)}  -> {last['anchor']}")
    print(f"  ratio time {ratio:.2f}, RSS {peak['ours'] / peak['anchor']:.2f}")
    for problem in problems:
        print(f"  PROBLEM: {problem.rstrip()}")
    return {"ours": best["ours"], "anchor": best["anchor"], "ratio": ratio, "ours_rss": peak["ours"],
            "anchor_rss": peak["anchor"], "problems": problems}


def metadata_in_use(image: str, data_blocks: int) -> int:
    """Bytes of metadata a check must look at: the used inodes' records, the bitmap, and every
    used block that is neither file data nor inode table."""
    info = dump_info(image)
    if not info:
        sys.exit(f"dump.vexfs --json {image} failed")
    geometry = info["geometry"]
    bitmap_blocks = geometry["block_bitmap"][1] - geometry["block_bitmap"][0] + 1
    table_blocks = geometry["inode_table"][1] - geometry["inode_table"][0] + 1
    other_blocks = info["used_blocks"] - data_blocks - table_blocks - bitmap_blocks
    return info["used_inodes"] * info["inode_size"] + (bitmap_blocks + other_blocks) * BLOCK


def run_case(case: str, args, tmp: str, tree_dir: str) -> dict:
    ours, theirs = os.path.join(tmp, f"{case}.vexfs"), os.path.join(tmp, f"{case}.e2")
    mkfs, mke2fs = tool("mkfs.vexfs"), anchor("mke2fs")
    tree = os.path.join(tree_dir, f"tree-{case}")
    try:
        if case == "empty":
            run_checked([mkfs, "-q", "-s", TIB, ours])
            run_checked([mke2fs, "-q", "-F", "-t", "ext4", theirs, TIB])
            label = "near-empty 1 TiB (ext4 anchor)"
            data_blocks = 0
        else:
            files, sizes, fs_type = {"files": (args.files, (0, 2048), "ext4"),
                                     "indirect": (20_000, (49 << 10, 128 << 10), "ext2"),
                                     "small": (100_000, (0, 2048), "ext4")}[case]
            start = time.perf_counter()
            os.makedirs(tree)
            dirs, data, data_blocks = build_tree(tree, files, sizes)
            print(f"[{case}] tree: {files} files in {dirs} directories, {human(data)}, "
                  f"{time.perf_counter() - start:.1f} s")
            size = TIB if case == "files" else f"{size_for(files, sizes[1])}M"
            inodes = str(inodes_for(files))
            t = run_checked([mkfs, "-q", "-N", inodes, "-d", tree, "-s", size, ours])
            t2 = run_checked([mke2fs, "-q", "-F", "-t", fs_type, "-N", inodes, "-d", tree, theirs, size])
            print(f"[{case}] mkfs.vexfs -d {t:.1f} s, mke2fs -t {fs_type} -d {t2:.1f} s")
            shutil.rmtree(tree)
            label = f"{files} files of {sizes[0]}-{sizes[1]} bytes in {size} ({fs_type} anchor)"
        metadata = metadata_in_use(ours, data_blocks)
        with Loop(ours) as ours_dev, Loop(theirs) as anchor_dev:
            result = compare(f"{case}: {label}", ours_dev, anchor_dev, args.repeat)
        result.update(label=label, metadata=metadata)
        print(f"  metadata in use {human(metadata)}: peak RSS {result['ours_rss'] * 1024 / metadata:.2f}x of it")
        return result
    finally:
        shutil.rmtree(tree, ignore_errors=True)
        remove(ours)
        remove(theirs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=1_000_000, help="files in the 'files' case")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the sparse images go")
    parser.add_argument("--tree-dir", help="where the source trees go (default --dir; /dev/shm is faster)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    args = parser.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    if unknown := [c for c in cases if c not in CASES]:
        sys.exit(f"unknown case(s) {unknown}; known: {', '.join(CASES)}")
    # Measured as installed: with bytecode cached (a PYTHONDONTWRITEBYTECODE environment
    # would have every run compile the package again); the warm-up writes it.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([tool("fsck.vexfs"), "--help"], capture_output=True, check=False)
    bare, loaded = start_up_floor()
    print(f"interpreter {sys.executable} ({sys.version.split()[0]}): starts in {bare:.3f} s, "
          f"{loaded:.3f} s with numpy, construct and click imported (every fsck.vexfs pays this)")
    results = {}
    with tempfile.TemporaryDirectory(prefix="vexfs-bench-tb-", dir=args.dir) as tmp, \
            tempfile.TemporaryDirectory(prefix="vexfs-bench-tb-tree-", dir=args.tree_dir or args.dir) as trees:
        for case in cases:
            results[case] = run_case(case, args, tmp, trees)
    print(f"=== summary (goals: time ratio <= {GOAL_RATIO:.2f} in each case; peak RSS <= "
          f"{RSS_GOAL_RATIO:.2f}x the metadata in use in {', '.join(RSS_CASES)}) ===")
    ok = True
    for case, r in results.items():
        rss_ratio = r["ours_rss"] * 1024 / r["metadata"]
        time_ok = r["ratio"] <= GOAL_RATIO and not r["problems"]
        rss_ok = rss_ratio <= RSS_GOAL_RATIO or case not in RSS_CASES
        verdict = "PASS" if time_ok and rss_ok else "FAIL"
        rss_verdict = ("ok" if rss_ok else "FAIL") if case in RSS_CASES else "(no goal)"
        ok &= verdict == "PASS"
        print(f"  {verdict} {case:<8} {r['label']}: time {'ok' if time_ok else 'FAIL'} fsck.vexfs {r['ours']:.3f} s / "
              f"e2fsck {r['anchor']:.3f} s = {r['ratio']:.2f}; RSS {rss_verdict} "
              f"{human(r['ours_rss'] * 1024)} / metadata {human(r['metadata'])} = {rss_ratio:.2f} "
              f"(e2fsck {human(r['anchor_rss'] * 1024)})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
