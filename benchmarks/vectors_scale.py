"""Every vector command at scale, each beside its anchor in the same run (issue 10, §2).

Data (deterministic): --rows vectors (default 1,000,000; the issue's second size is
10,000,000) of 128 float32 components, standard normal, written as base.vec.npy, and 1,000
queries drawn the same way. For each command: wall-clock seconds, peak RSS and peak
anonymous RSS (sampled from /proc), then its anchor, measured in the same run:

  vectors add, export, mkfs -d: `cp` of the source .npy (goal: within 1.5x); add --append
  (which writes a new copy of the file, old rows and new): cp of the source plus cp of the
  appended .npy; add, add --append and mkfs -d also beside cp then `sync` of the copy (they
  fsync before the inode points at the data; cp does not), printed after the table;
  vectors ls, fsck.vexfs -fn: crc32c over the same bytes in this process (goal: within 2x);
  search and verify of 1,000 queries: FAISS IndexFlatL2 over the same vectors (goal: no
  slower); one query, one thread each, in process (goal: no slower). Needs faiss-cpu
  (pip install -e '.[bench]'); skipped otherwise.

Run it with the worktree's python: .venv/bin/python benchmarks/vectors_scale.py --rows 1000000
Growth from 1M to 10M should be at most 11x for every command: run both sizes and compare.
--dir chooses where the (large) files go; they are removed afterwards unless --keep. Disk:
about four copies of the data at the peak (source, image with room for append, export).
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
from _common import child_env, faiss_flat, faiss_round, human, random_npy, timed_round, tool  # noqa: E402

DIMS = 128
QUERIES = 1000
DURABLE = ("vectors add", "mkfs -d", "vectors add --append")  # also beside cp then sync (they fsync; cp does not)


def _status(pid: int) -> dict[str, int]:
    """VmHWM and RssAnon of a running process, in bytes ({} once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f
                    if line.startswith(("VmHWM:", "RssAnon:"))}
    except (OSError, ValueError, IndexError):
        return {}


def timed(argv: list[str]) -> tuple[float, int, int]:
    """(seconds, peak RSS, peak anonymous RSS) of one command, which must succeed. The
    peaks are sampled from /proc every few milliseconds: wait4's ru_maxrss would carry this
    process's own peak over fork and exec. RSS counts the pages of memory maps; the
    anonymous peak is what the command holds in memory of its own."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_env())
    peak, anon = 0, 0
    while proc.poll() is None:
        status = _status(proc.pid)
        peak, anon = max(peak, status.get("VmHWM", 0)), max(anon, status.get("RssAnon", 0))
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        sys.exit(f"command failed (exit {proc.returncode}): {' '.join(argv)}\n{err}")
    return elapsed, peak, anon


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
    random_npy(base, rows, DIMS, rng)
    more = os.path.join(where, "more.npy")
    np.save(more, rng.standard_normal((max(1, rows // 100), DIMS), dtype=np.float32))
    queries = os.path.join(where, "q.npy")
    np.save(queries, rng.standard_normal((QUERIES, DIMS), dtype=np.float32))
    np.save(os.path.join(where, "q1.npy"), np.load(queries)[:1])
    return base, more, queries


def faiss_seconds(base: str, queries: str, k: int) -> tuple[float, float, float] | None:
    """FAISS IndexFlatL2 over the same vectors, in this process: (one query, all queries,
    one query on one thread); None without faiss-cpu. Its answers go to faiss_ids.npy."""
    try:
        import faiss
    except ImportError:
        return None
    index = faiss_flat(np.load(base, mmap_mode="r"))
    q = np.load(queries)
    index.search(q[:1], k)  # warm
    batch, _, one, ids, _ = faiss_round(index, q, k, 5)
    np.save(os.path.join(os.path.dirname(queries), "faiss_ids.npy"), ids.astype(np.int64))
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        one_1t = faiss_round(index, q[:5], k, 5)[2]
    finally:
        faiss.omp_set_num_threads(threads)
    return one, batch, one_1t


def inprocess_latency(image: str, queries: str, k: int, repeat: int = 5) -> float:
    """Median seconds of one query with our search in this process, on one thread (BLAS
    held to one thread, one worker): the issue's latency comparison, without the start of
    a command."""
    from threadpoolctl import threadpool_limits

    from vexfs_tools.vectors import search
    from vexfs_tools.vectors.files import VectorFile
    from vexfs_tools.volume import Volume

    q = np.load(queries)
    workers, search.MAX_WORKERS = search.MAX_WORKERS, 1
    try:
        with Volume.open(image) as volume, threadpool_limits(limits=1, user_api="blas"):
            vf = VectorFile.open(volume, volume.resolve("/base.vec"), "/base.vec")
            search.search_files(q[0], [vf], k, "l2")  # warm: the map and the page cache
            return timed_round(lambda _: None, lambda i: search.search_files(q[i], [vf], k, "l2"), q, repeat)[2]
    finally:
        search.MAX_WORKERS = workers


def verdict(ratio: float, goal: float | None) -> str:
    if goal is None or ratio != ratio:
        return "-"
    return "PASS" if ratio <= goal else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--dir", default=None, help="where the files go (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    where = tempfile.mkdtemp(prefix="vexfs-scale-", dir=args.dir)
    load = os.getloadavg()[0]
    try:
        base, more, queries = write_data(where, args.rows)
        os.sync()  # the data written: on the disk before anything is timed (cp's anchors too)
        data_bytes = os.path.getsize(base)
        # room for two copies: add --append writes old and new rows to new blocks before it
        # frees the old ones (crash-safe); the image is sparse, so unused room costs no disk
        size = f"{int(data_bytes * 2.3 / (1 << 20)) + 64}M"
        image, tree_image = os.path.join(where, "v.img"), os.path.join(where, "tree.img")
        vexfs, mkfs, fsck = tool("vexfs"), tool("mkfs.vexfs"), tool("fsck.vexfs")
        startup = min(timed([vexfs, "--help"])[0] for _ in range(3))  # also compiles the modules once
        timed([mkfs, "-q", "-s", size, image])
        copy = os.path.join(where, "copy.npy")
        cp = timed(["cp", base, copy])[0]
        os.unlink(copy)
        # add --append writes a whole new copy (old rows and new, crash-safe): its anchor is
        # cp of the file it rewrites plus cp of the rows it adds
        cp_append = cp + timed(["cp", more, copy])[0]
        os.unlink(copy)
        # our writers fsync before the inode points at the data (FORMAT.md, write order);
        # cp does not: cp then sync of the copy is the durable copy, shown beside
        os.sync()
        durable = timed(["sh", "-c", 'cp "$1" "$2" && sync "$2"', "sh", base, copy])[0]
        os.unlink(copy)
        os.sync()
        durable_append = durable + timed(["sh", "-c", 'cp "$1" "$2" && sync "$2"', "sh", more, copy])[0]
        os.unlink(copy)
        crc = crc_seconds(base)
        rows: list[tuple[str, float, int, int, str, float, float | None]] = []

        def measure(name: str, argv: list[str], anchor_name: str, anchor: float, goal: float | None) -> None:
            os.sync()  # the steps before leave nothing dirty for this command's fsync to wait for
            seconds, rss, anon = timed(argv)
            rows.append((name, seconds, rss, anon, anchor_name, anchor, goal))

        measure("vectors add", [vexfs, "vectors", "add", image, "/base.vec", "--from", base], "cp", cp, 1.5)
        measure("vectors add --append", [vexfs, "vectors", "add", image, "/base.vec", "--from", more, "--append"],
                "cp base + cp more", cp_append, 1.5)
        measure("vectors ls", [vexfs, "vectors", "ls", image], "crc32c", crc, 2.0)
        out = os.path.join(where, "e.npy")
        measure("vectors export", [vexfs, "vectors", "export", image, "/base.vec", "-o", out], "cp", cp, 1.5)
        os.unlink(out)
        measure("fsck.vexfs -fn", [fsck, "-fn", image], "crc32c", crc, 2.0)
        anchors = faiss_seconds(base, queries, args.k)
        one, many, one_1t = anchors if anchors else (float("nan"),) * 3
        faiss_name = "faiss IndexFlatL2" if anchors else "faiss (not installed)"
        measure("search, 1 query", [vexfs, "search", image, "/base.vec", "--query",
                                    os.path.join(where, "q1.npy"), "-k", str(args.k)], faiss_name, one, None)
        measure(f"search, {QUERIES} queries", [vexfs, "search", image, "/base.vec", "--query", queries,
                                               "-k", str(args.k)], faiss_name, many, 1.0)
        answers = os.path.join(where, "faiss_ids.npy")
        if os.path.exists(answers):  # FAISS's answers, scored against our exact search
            measure(f"verify, {QUERIES} queries", [vexfs, "verify", image, "/base.vec", "--queries", queries,
                                                   "--results", answers, "--min-recall", "0"], faiss_name, many, 1.0)
        ours_1t = inprocess_latency(image, queries, args.k)
        rows.append(("1 query, 1 thread (lib)", ours_1t, 0, 0, faiss_name + " 1 thr", one_1t, 1.0))
        os.unlink(image)  # disk: the tree's image is the next copy
        measure("mkfs -d", [mkfs, "-q", "-s", size, "-d", os.path.dirname(base), tree_image], "cp", cp, 1.5)
        print(f"{args.rows:,} x {DIMS} float32 ({human(data_bytes)}), k={args.k}, {os.cpu_count()} CPUs, "
              f"load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
        print(f"command start-up (vexfs --help, best of 3): {startup:.3f} s, in every command's time below")
        print(f"{'command':<26} {'seconds':>9} {'peak RSS':>11} {'peak anon':>11}   {'anchor':<24} "
              f"{'seconds':>9} {'ratio':>7} {'goal':>6}")
        for name, seconds, rss, anon, anchor_name, anchor, goal in rows:
            ratio = seconds / anchor if anchor == anchor and anchor > 0 else float("nan")
            rss_text = human(rss) if rss else "-"
            anon_text = human(anon) if anon else "-"
            goal_text = f"<={goal:g}" if goal else "-"
            print(f"{name:<26} {seconds:>9.3f} {rss_text:>11} {anon_text:>11}   {anchor_name:<24} {anchor:>9.3f} "
                  f"{ratio:>7.2f} {goal_text:>6} {verdict(ratio, goal)}")
        print("(peak RSS counts the pages of memory maps of the image; peak anon is memory of the command's own)")
        durable_rows = [(name, seconds) for name, seconds, *_ in rows if name in DURABLE]
        anchors = {"vectors add --append": durable_append}
        print(f"cp then sync of the copy (a durable copy, as our writers make): {durable:.3f} s "
              f"(base; for append: base, then more, {durable_append:.3f} s); "
              + ", ".join(f"{name} {seconds / anchors.get(name, durable):.2f}x of it" for name, seconds in durable_rows))
    finally:
        if args.keep:
            print(f"files kept in {where}")
        else:
            shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    main()
