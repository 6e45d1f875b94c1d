"""fsck of an image holding a tree of many small files: `fsck.vexfs -fn IMG` vs
`e2fsck -fn IMG`, the images made from the same tree, at the same size and inode count.

For each --files N (default both 100,000 and 1,000,000) a tree is generated
deterministically: directories of 1000 files, sizes 0..2 KiB. From it an extended-layout
image (`mkfs.vexfs -q -N INODES -d TREE -s SIZE IMG`) and an ext4 image
(`mke2fs -q -F -t ext4 -N INODES -d TREE IMG SIZE`) are made; SIZE is N * 8 KiB (at least
256 MiB) and INODES is N * 1.1 + 1024, so both have room. The tree is removed once both
images exist. Then each fsck is run --repeat times, alternating which goes first; the best
wall-clock time and the peak RSS of each (that child's own ru_maxrss, through GNU time,
else os.wait4) are printed, with the ratios ours/anchor.

Afterwards: how each tool's time and memory grow from the smallest N to the largest (linear
would be N_max / N_min), and the start-up cost, `fsck.vexfs --help` and
`python -c "import numpy, construct, click, crc32c"`, which is paid on every run whatever
the image.

Goal (the issue): at 1,000,000 files fsck.vexfs takes no more than 2x e2fsck's time, and its
memory is bounded by the size of the metadata (not of the data). The PASS/FAIL line is for
the time ratio at 1,000,000 files (at the largest N run, if 1,000,000 is not among them).

    python benchmarks/fsck_tree.py [--files 100000 --files 1000000] [--repeat 3] [--sizes MIN:MAX] [--per-dir N]
                                   [--dir /tmp] [--tree-dir /dev/shm]

Time and disk: with 1,000,000 files, building the tree, both mkfs -d runs and removing the
tree take several minutes each on a plain disk; the tree holds ~1 GiB of data in ~4 GiB of
blocks, each image ~4 GiB (sparse, 7.7 GiB apparent).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import anchor, human, remove, report, tool  # noqa: E402

FILES_PER_DIR = 1000
SMALL_MAX = 2 << 10
BLOCK = 4096
SEED = 20240602
GOAL_FILES = 1_000_000
GOAL_RATIO = 2.0
DEFAULT_FILES = (100_000, 1_000_000)


def build_tree(root: str, files: int, sizes: tuple[int, int] = (0, SMALL_MAX),
               per_dir: int = FILES_PER_DIR) -> tuple[int, int, int]:
    """Write the tree: `per_dir` files a directory (more than 1000 directories are grouped
    1000 to a parent), file sizes uniform in `sizes` (bytes, both ends included); returns
    (directories, bytes of data, 4 KiB data blocks it needs)."""
    rng = random.Random(SEED)
    pool = rng.randbytes(max(sizes[1], SMALL_MAX) * 64)  # file contents are slices of this
    total = blocks = 0
    dirs = max(1, -(-files // per_dir))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for d in range(dirs):
        sub = os.path.join(root, f"d{d:04d}") if dirs <= 1000 else \
            os.path.join(root, f"g{d // 1000:04d}", f"d{d:07d}")
        os.makedirs(sub)
        for f in range(d * per_dir, min(files, (d + 1) * per_dir)):
            size = rng.randint(*sizes)
            offset = rng.randrange(0, len(pool) - size + 1)
            fd = os.open(os.path.join(sub, f"f{f:07d}.dat"), flags, 0o644)
            try:
                if size:
                    os.write(fd, pool[offset:offset + size])
            finally:
                os.close(fd)
            total += size
            blocks += -(-size // BLOCK)
    return dirs, total, blocks


GNU_TIME = "/usr/bin/time"


def run_measured(argv: list[str]) -> tuple[float, int, int, str, float]:
    """Run argv once: (wall-clock seconds, peak RSS of that process in KiB, exit status,
    its output, CPU seconds: user + system, the process and what it waited for). The RSS is the child's own ru_maxrss, read through GNU time (a small C
    process) when /usr/bin/time exists, else from os.wait4. Not a maximum over every child
    this script has run; but Linux folds the RSS of the process that exec()s into the
    child's maxrss, so under os.wait4 every figure is at least this script's own RSS
    (~15 MiB), which GNU time's ~1 MiB avoids."""
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as rss_file:
        wrapped = [GNU_TIME, "-f", "%M", "-o", rss_file.name, *argv] if os.access(GNU_TIME, os.X_OK) else argv
        start = time.perf_counter()
        proc = subprocess.Popen(wrapped, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
        maxrss = usage.ru_maxrss
        if wrapped is not argv:
            lines = rss_file.read().split()
            # GNU time writes "Command exited with non-zero status N" before the format.
            maxrss = int(lines[-1]) if lines and lines[-1].isdigit() else maxrss
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, maxrss, proc.returncode, text, cpu


def run_checked(argv: list[str]) -> float:
    """Run a set-up command (mkfs); its seconds. Exits the benchmark if it fails."""
    elapsed, _, code, text, _ = run_measured(argv)
    if code != 0:
        sys.stderr.write(f"command failed (exit {code}): {' '.join(argv)}\n{text}")
        sys.exit(2)
    return elapsed


def size_for(files: int, largest: int = SMALL_MAX) -> int:
    """Image size in MiB: room for every file at the largest size (in whole blocks) plus
    4 KiB (8 KiB a file for the default sizes), >= 256 MiB, a multiple of 64 MiB."""
    per_file_kib = -(-largest // BLOCK) * 4 + 4
    mib = max(256, -(-files * per_file_kib // 1024))
    return -(-mib // 64) * 64


def inodes_for(files: int, per_dir: int = FILES_PER_DIR) -> int:
    """Room for the files, their directories, and 10% more."""
    return files + -(-files // per_dir) + files // 10 + 1024


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def dump_info(image: str) -> dict:
    """What `dump.vexfs --json` says of the image ({} if it fails)."""
    dump = subprocess.run([tool("dump.vexfs"), "--json", image], capture_output=True, text=True)
    return json.loads(dump.stdout) if dump.returncode == 0 else {}


def vexfs_metadata_bytes(image: str, data_blocks: int) -> tuple[int, dict]:
    """Bytes of metadata in our image: every used block that is not file data (inode table,
    bitmap, directories, indirect blocks, superblocks)."""
    info = dump_info(image)
    if not info:
        return 0, {}
    used = info["used_blocks"]
    return (used - data_blocks) * BLOCK, info


def bench_one(files: int, args, results: dict) -> None:
    fsck, e2fsck = tool("fsck.vexfs"), anchor("e2fsck")
    mkfs, mke2fs = tool("mkfs.vexfs"), anchor("mke2fs")
    size_mib, inodes = size_for(files, args.sizes[1]), inodes_for(files, args.per_dir)
    size = f"{size_mib}M"
    print(f"=== {files} files ===")
    with tempfile.TemporaryDirectory(prefix="vexfs-bench-fsck-", dir=args.dir) as tmp, \
            tempfile.TemporaryDirectory(prefix="vexfs-bench-fsck-tree-", dir=args.tree_dir or args.dir) as tree:
        start = time.perf_counter()
        dirs, data, data_blocks = build_tree(tree, files, args.sizes, args.per_dir)
        print(f"tree: {files} files in {dirs} directories, {human(data)} ({data} bytes) of data "
              f"in {data_blocks} blocks, built in {time.perf_counter() - start:.1f} s")

        ours_img = os.path.join(tmp, "vexfs.img")
        ext4_img = os.path.join(tmp, "ext4.img")
        mkfs_argv = [mkfs, "-q", "-N", str(inodes), "-d", tree, "-s", size, ours_img]
        mke2fs_argv = [mke2fs, "-q", "-F", "-t", "ext4", "-N", str(inodes), "-d", tree, ext4_img, size]
        t_mkfs = run_checked(mkfs_argv)
        print(f"  mkfs.vexfs -q -N {inodes} -d TREE -s {size} IMG: {t_mkfs:.1f} s")
        t_mke2fs = run_checked(mke2fs_argv)
        print(f"  mke2fs -q -F -t ext4 -N {inodes} -d TREE IMG {size}: {t_mke2fs:.1f} s")
        start = time.perf_counter()
        shutil.rmtree(tree)
        os.mkdir(tree)  # so that the TemporaryDirectory finds it to clean up
        print(f"  tree removed in {time.perf_counter() - start:.1f} s")
        metadata, info = vexfs_metadata_bytes(ours_img, data_blocks)
        if info:
            print(f"  vexfs image: {info['used_inodes']}/{info['inodes_count']} inodes, "
                  f"{info['used_blocks']}/{info['blocks_count']} blocks used, "
                  f"metadata {human(metadata)} (used blocks that are not file data)")

        ours_argv = [fsck, "-fn", ours_img]
        anchor_argv = [e2fsck, "-fn", ext4_img]
        times = {"ours": [], "anchor": []}
        rss = {"ours": [], "anchor": []}
        cpu = {"ours": [], "anchor": []}
        outputs = {}
        problems = []
        for i in range(args.repeat):
            order = ["ours", "anchor"] if i % 2 == 0 else ["anchor", "ours"]
            for who in order:
                argv = ours_argv if who == "ours" else anchor_argv
                elapsed, maxrss, code, text, used = run_measured(argv)
                times[who].append(elapsed)
                cpu[who].append(used)
                rss[who].append(maxrss)
                outputs[who] = text
                if code != 0:
                    problems.append(f"{' '.join(argv)}: exit {code}\n{text[-3000:]}")

        print(f"fsck -fn of {files} files in a {size} image (-N {inodes}), best of {args.repeat}")
        print(f"  fsck.vexfs: {fsck} -fn IMG  -> {last_line(outputs['ours'])}")
        print(f"  e2fsck:     {e2fsck} -fn IMG  -> {last_line(outputs['anchor'])}")
        ratio = report("fsck.vexfs -fn", times["ours"], "e2fsck -fn", times["anchor"])
        cpu_ratio = min(cpu["ours"]) / max(min(cpu["anchor"]), 1e-6)
        print(f"CPU (user+sys) best: fsck.vexfs {min(cpu['ours']):.3f} s, e2fsck {min(cpu['anchor']):.3f} s, "
              f"ratio {cpu_ratio:.2f} (less affected than wall time by other load on the machine)")
        ours_rss, anchor_rss = max(rss["ours"]), max(rss["anchor"])
        print(f"peak RSS: fsck.vexfs {human(ours_rss * 1024)} ({ours_rss} KiB), "
              f"e2fsck {human(anchor_rss * 1024)} ({anchor_rss} KiB), "
              f"ratio {ours_rss / anchor_rss:.2f}")
        if metadata:
            print(f"peak RSS of fsck.vexfs per file: {ours_rss * 1024 / files:.0f} bytes; "
                  f"metadata of the image: {human(metadata)}")
        for problem in problems:
            print(f"PROBLEM: {problem.rstrip()}")
        remove(ours_img)
        remove(ext4_img)
    results[files] = {"ours": min(times["ours"]), "anchor": min(times["anchor"]), "ratio": ratio,
                      "ours_cpu": min(cpu["ours"]), "anchor_cpu": min(cpu["anchor"]), "cpu_ratio": cpu_ratio,
                      "ours_rss": ours_rss, "anchor_rss": anchor_rss, "metadata": metadata,
                      "problems": problems}


def startup(args) -> dict:
    """Cost paid by every fsck.vexfs run before it reads the image."""
    python = sys.executable
    cases = [
        ("fsck.vexfs --help", [tool("fsck.vexfs"), "--help"]),
        ('python -c "import numpy, construct, click, crc32c"',
         [python, "-c", "import numpy, construct, click, crc32c"]),
        ("python -c pass", [python, "-c", "pass"]),
        ("e2fsck -V", [anchor("e2fsck"), "-V"]),
    ]
    print(f"=== start-up, best of {max(args.repeat, 5)} ===")
    out = {}
    width = max(len(name) for name, _ in cases)
    for name, argv in cases:
        runs = [run_measured(argv) for _ in range(max(args.repeat, 5))]
        best = min(r[0] for r in runs)
        peak = max(r[1] for r in runs)
        out[name] = (best, peak)
        print(f"  {name:<{width}}  {best:.3f} s  (CPU {min(r[4] for r in runs):.3f} s)  "
              f"peak RSS {human(peak * 1024)}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, action="append",
                        help="files in the tree; may be given more than once "
                             "(default: 100000 and 1000000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each fsck (best is kept)")
    parser.add_argument("--per-dir", type=int, default=FILES_PER_DIR, metavar="N",
                        help=f"files a directory (default {FILES_PER_DIR}); 10 makes a tree of many "
                             "small directories")
    parser.add_argument("--sizes", default=f"0:{SMALL_MAX}", metavar="MIN:MAX",
                        help="file sizes in bytes, uniform between MIN and MAX (default 0:2048); "
                             "files over 48 KiB have an indirect block in our image, an extent "
                             "in ext4's")
    parser.add_argument("--dir", default="/tmp", help="where the images go (and the trees, by default)")
    parser.add_argument("--tree-dir", help="where the trees go (default --dir); a tmpfs such as "
                        "/dev/shm makes building and removing a 1,000,000-file tree much faster, "
                        "if it has ~5 GiB to spare")
    args = parser.parse_args()
    sizes = sorted(set(args.files or DEFAULT_FILES))
    low, _, high = args.sizes.partition(":")
    args.sizes = (int(low), int(high or low))

    results: dict[int, dict] = {}
    for files in sizes:
        bench_one(files, args, results)
        print()
    start = startup(args)
    print()

    print("=== summary ===")
    for files in sizes:
        r = results[files]
        print(f"  {files:>9} files: fsck.vexfs {r['ours']:.3f} s, e2fsck {r['anchor']:.3f} s, "
              f"ratio {r['ratio']:.2f} (CPU ratio {r['cpu_ratio']:.2f}); peak RSS fsck.vexfs {human(r['ours_rss'] * 1024)}, "
              f"e2fsck {human(r['anchor_rss'] * 1024)}, metadata {human(r['metadata'])}")
    if len(sizes) > 1:
        lo, hi = results[sizes[0]], results[sizes[-1]]
        scale = sizes[-1] / sizes[0]
        base = start["fsck.vexfs --help"][0]
        print(f"growth from {sizes[0]} to {sizes[-1]} files (x{scale:g} files; linear is x{scale:g}):")
        print(f"  fsck.vexfs time x{hi['ours'] / lo['ours']:.2f} "
              f"(x{(hi['ours'] - base) / max(lo['ours'] - base, 1e-9):.2f} without the "
              f"{base:.3f} s start-up), e2fsck time x{hi['anchor'] / lo['anchor']:.2f}")
        print(f"  fsck.vexfs peak RSS x{hi['ours_rss'] / lo['ours_rss']:.2f}, "
              f"e2fsck peak RSS x{hi['anchor_rss'] / lo['anchor_rss']:.2f}, "
              f"metadata x{hi['metadata'] / max(lo['metadata'], 1):.2f}")
    help_time, help_rss = start["fsck.vexfs --help"]
    import_time = start['python -c "import numpy, construct, click, crc32c"'][0]
    goal_n = GOAL_FILES if GOAL_FILES in results else sizes[-1]
    r = results[goal_n]
    print(f"start-up: fsck.vexfs --help {help_time:.3f} s "
          f"({100 * help_time / r['ours']:.1f}% of the {goal_n}-file check), "
          f"imports alone {import_time:.3f} s")
    grown = (r["ours_rss"] - help_rss) * 1024
    if r["metadata"]:
        print(f"memory at {goal_n} files: peak RSS {human(r['ours_rss'] * 1024)} = start-up "
              f"{human(help_rss * 1024)} + {human(grown)}; metadata {human(r['metadata'])}: "
              f"{'within' if grown <= r['metadata'] else 'MORE than'} the metadata size")
    verdict = "PASS" if r["ratio"] <= GOAL_RATIO and not r["problems"] else "FAIL"
    note = "" if goal_n == GOAL_FILES else f" (at {goal_n} files, not the goal's {GOAL_FILES})"
    print(f"{verdict}: ratio {r['ratio']:.2f} vs goal <= {GOAL_RATIO:.2f} at {goal_n} files{note} "
          f"(fsck.vexfs {r['ours']:.3f} s, e2fsck {r['anchor']:.3f} s)")
    if any(results[n]["problems"] for n in sizes):
        print("FAIL: a check did not exit 0 on a clean image (see PROBLEM above)")
        return 1
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
