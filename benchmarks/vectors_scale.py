"""Every vector command at scale, each beside its anchor in the same run (issue 10, §2).

Data (deterministic): --rows vectors (default 1,000,000; the issue's second size is
10,000,000) of 128 float32 components, standard normal, written as base.vec.npy, and 1,000
queries drawn the same way. For each command: wall-clock seconds and the peak RSS of the
command's process (from wait4's rusage), then its anchor, measured in the same run:

  vectors add, add --append, export, mkfs -d: `cp` of the source .npy (goal: within 1.5x);
  vectors ls, fsck.vexfs -fn: crc32c over the same bytes in this process (goal: within 2x);
  search, one query and 1,000: FAISS IndexFlatL2 over the same vectors, when faiss-cpu is
  installed (pip install -e '.[bench]'); skipped otherwise.

Run it with the worktree's python: .venv/bin/python benchmarks/vectors_scale.py --rows 1000000
Growth from 1M to 10M should be at most 11x for every command: run both sizes and compare.
--dir chooses where the (large) files go; they are removed afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from crc32c import crc32c

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import human, tool  # noqa: E402

DIMS = 128
QUERIES = 1000


def timed(argv: list[str]) -> tuple[float, int]:
    """(seconds, peak RSS bytes) of one command, which must succeed."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"command failed (exit {code}): {' '.join(argv)}\n{err}")
    return elapsed, usage.ru_maxrss * 1024


def crc_seconds(path: str, offset: int = 0) -> float:
    start = time.perf_counter()
    value = 0
    with open(path, "rb") as f:
        f.seek(offset)
        while piece := f.read(1 << 20):
            value = crc32c(piece, value)
    return time.perf_counter() - start


def write_data(where: str, rows: int) -> tuple[str, str, str]:
    rng = np.random.default_rng(10)
    base = os.path.join(where, "tree", "base.vec.npy")
    os.makedirs(os.path.dirname(base))
    out = np.lib.format.open_memmap(base, mode="w+", dtype="<f4", shape=(rows, DIMS))
    for start in range(0, rows, 1 << 18):
        n = min(1 << 18, rows - start)
        out[start:start + n] = rng.standard_normal((n, DIMS), dtype=np.float32)
    out.flush()
    del out
    more = os.path.join(where, "more.npy")
    np.save(more, rng.standard_normal((max(1, rows // 100), DIMS), dtype=np.float32))
    queries = os.path.join(where, "q.npy")
    np.save(queries, rng.standard_normal((QUERIES, DIMS), dtype=np.float32))
    np.save(os.path.join(where, "q1.npy"), np.load(queries)[:1])
    return base, more, queries


def faiss_seconds(base: str, queries: str, k: int) -> tuple[float, float] | None:
    try:
        import faiss
    except ImportError:
        return None
    x = np.load(base, mmap_mode="r")
    index = faiss.IndexFlatL2(DIMS)
    for start in range(0, len(x), 1 << 18):
        index.add(np.ascontiguousarray(x[start:start + (1 << 18)]))
    q = np.load(queries)
    start = time.perf_counter()
    index.search(q[:1], k)
    one = time.perf_counter() - start
    start = time.perf_counter()
    index.search(q, k)
    return one, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--dir", default=None, help="where the files go (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    where = tempfile.mkdtemp(prefix="vexfs-scale-", dir=args.dir)
    try:
        base, more, queries = write_data(where, args.rows)
        data_bytes = os.path.getsize(base)
        size = f"{int(data_bytes * 1.2 / (1 << 20)) + 64}M"
        image, tree_image = os.path.join(where, "v.img"), os.path.join(where, "tree.img")
        vexfs, mkfs, fsck = tool("vexfs"), tool("mkfs.vexfs"), tool("fsck.vexfs")
        timed([mkfs, "-q", "-s", size, image])
        copy = os.path.join(where, "copy.npy")
        cp = timed(["cp", base, copy])[0]
        os.unlink(copy)
        crc = crc_seconds(base)
        rows: list[tuple[str, float, int, str, float]] = []

        def measure(name: str, argv: list[str], anchor_name: str, anchor: float) -> None:
            seconds, rss = timed(argv)
            rows.append((name, seconds, rss, anchor_name, anchor))

        measure("vectors add", [vexfs, "vectors", "add", image, "/base.vec", "--from", base], "cp", cp)
        measure("vectors add --append", [vexfs, "vectors", "add", image, "/base.vec", "--from", more, "--append"],
                "cp", cp)
        measure("vectors ls", [vexfs, "vectors", "ls", image], "crc32c", crc)
        out = os.path.join(where, "e.npy")
        measure("vectors export", [vexfs, "vectors", "export", image, "/base.vec", "-o", out], "cp", cp)
        os.unlink(out)
        measure("fsck.vexfs -fn", [fsck, "-fn", image], "crc32c", crc)
        anchors = faiss_seconds(base, queries, args.k)
        one, many = anchors if anchors else (float("nan"), float("nan"))
        faiss_name = "faiss" if anchors else "faiss (not installed)"
        measure("search, 1 query", [vexfs, "search", image, "/base.vec", "--query",
                                    os.path.join(where, "q1.npy"), "-k", str(args.k)], faiss_name, one)
        measure(f"search, {QUERIES} queries", [vexfs, "search", image, "/base.vec", "--query", queries,
                                               "-k", str(args.k)], faiss_name, many)
        measure("mkfs -d", [mkfs, "-q", "-s", size, "-d", os.path.dirname(base), tree_image], "cp", cp)
        print(f"{args.rows} x {DIMS} float32 ({human(data_bytes)}), k={args.k}, {os.cpu_count()} CPUs")
        print(f"{'command':<24} {'seconds':>9} {'peak RSS':>11}   {'anchor':<22} {'seconds':>9} {'ratio':>7}")
        for name, seconds, rss, anchor_name, anchor in rows:
            ratio = seconds / anchor if anchor == anchor and anchor > 0 else float("nan")
            print(f"{name:<24} {seconds:>9.3f} {human(rss):>11}   {anchor_name:<22} {anchor:>9.3f} {ratio:>7.2f}")
        print(f"(this process's peak RSS: {human(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)})")
    finally:
        if args.keep:
            print(f"files kept in {where}")
        else:
            shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    main()
