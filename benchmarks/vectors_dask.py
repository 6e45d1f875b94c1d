"""`vexfs search --dask`: throughput on a real dask.distributed cluster of 1 worker and of 2
workers on 127.0.0.1, beside the local search, in one run (issue 10, §3).

Data (deterministic): --rows vectors (default 1,000,000) of 128 float32 components,
standard normal, put into an image by `mkfs.vexfs -d`, and --queries queries (default
1,000) drawn the same way. Each cluster is a distributed.LocalCluster of worker processes
with one thread each, their BLAS held to one thread (OPENBLAS_NUM_THREADS=1 and the like in
their environment), so that a worker is one core's worth of work. For each: the wall-clock
seconds of `vexfs search IMG /base.vec --query Q -k K --dask ADDRESS` (best of --repeat),
queries per second, and whether its output equals the local search's, byte for byte.

The workers open the image by its path (on one machine it is visible to them as to any
shared file system). On a machine whose cores other work shares, 2 workers gain less
than 2x: the load average is printed at the start and the end.

    .venv/bin/python benchmarks/vectors_dask.py [--rows 1000000] [--queries 1000] [-k 10] [--repeat 2] [--dir tmp]

Needs dask[distributed] (pip install -e '.[dask]').
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import child_env, human, random_npy, tool  # noqa: E402

DIMS = 128
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def make_image(where: str, rows: int, nq: int) -> tuple[str, str]:
    rng = np.random.default_rng(11)
    tree = os.path.join(where, "tree")
    os.makedirs(tree)
    base = os.path.join(tree, "base.vec.npy")
    random_npy(base, rows, DIMS, rng)
    queries = os.path.join(where, "q.npy")
    np.save(queries, rng.standard_normal((nq, DIMS), dtype=np.float32))
    image = os.path.join(where, "v.img")
    size = f"{int(os.path.getsize(base) * 1.2 / (1 << 20)) + 64}M"
    subprocess.run([tool("mkfs.vexfs"), "-q", "-s", size, "-d", tree, image], check=True, env=child_env())
    os.unlink(base)
    return image, queries


def search(argv: list[str], repeat: int) -> tuple[float, bytes]:
    """(best wall-clock seconds, stdout) of a search command run `repeat` times."""
    best, out = float("inf"), b""
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, env=child_env())
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"command failed (exit {proc.returncode}): {' '.join(argv)}\n"
                     f"{proc.stderr.decode(errors='replace')}")
        best, out = min(best, elapsed), proc.stdout
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    try:
        from distributed import LocalCluster
    except ImportError:
        sys.exit("dask.distributed is not installed: pip install -e '.[dask]'")
    where = tempfile.mkdtemp(prefix="vexfs-dask-", dir=args.dir)
    load = os.getloadavg()[0]
    try:
        image, queries = make_image(where, args.rows, args.queries)
        argv = [tool("vexfs"), "search", image, "/base.vec", "--query", queries, "-k", str(args.k), "--json"]
        local, expected = search(argv, args.repeat)
        rows = [("local (this machine's threads)", local, True)]
        saved = {name: os.environ.get(name) for name in ONE_THREAD}
        os.environ.update(ONE_THREAD)  # the worker processes inherit it
        try:
            for workers in (1, 2):
                with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
                    seconds, out = search(argv + ["--dask", cluster.scheduler_address], args.repeat)
                    rows.append((f"dask, {workers} worker{'s' if workers > 1 else ''}", seconds, out == expected))
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        print(f"{args.rows:,} x {DIMS} float32 ({human(args.rows * DIMS * 4)}), {args.queries:,} queries, "
              f"k={args.k}, best of {args.repeat}; {os.cpu_count()} CPUs, load average {load:.2f} at the "
              f"start, {os.getloadavg()[0]:.2f} at the end")
        print(f"{'search':<32} {'seconds':>9} {'queries/s':>10}  same answers as local")
        for name, seconds, same in rows:
            print(f"{name:<32} {seconds:>9.3f} {args.queries / seconds:>10.1f}  {'yes' if same else 'NO'}")
        one, two = rows[1][1], rows[2][1]
        print(f"2 workers / 1 worker throughput: {one / two:.2f}x")
        if not all(same for _, _, same in rows):
            sys.exit(1)
    finally:
        shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    main()
