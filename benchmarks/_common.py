"""Shared helpers for the benchmark scripts (not a test module, not part of CI).

Each benchmark runs one of our console scripts and its e2fsprogs anchor on the same input,
in the same run, and reports the best of --repeat wall-clock times and the ratio ours/anchor.
"""

from __future__ import annotations

import compileall
import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable


def tool(name: str) -> str:
    """An installed console script of ours, next to the running interpreter."""
    path = os.path.join(os.path.dirname(sys.executable), name)
    if not os.access(path, os.X_OK):
        sys.exit(f"{name} not found next to {sys.executable}; install the package first "
                 "(pip install -e .) and run this script with that environment's python")
    compile_package()
    return path


@functools.cache
def compile_package() -> None:
    """Write the package's bytecode as `pip install` does, so that no timed run compiles
    source: an editable install under PYTHONDONTWRITEBYTECODE=1 would otherwise recompile
    every module edited since its .pyc was written, at every run (10-20 ms each)."""
    spec = importlib.util.find_spec("vexfs_tools")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            compileall.compile_dir(folder, quiet=1)


def anchor(name: str) -> str:
    """An e2fsprogs program from PATH (or /sbin, /usr/sbin, where it usually lives)."""
    extra = os.pathsep.join(["/usr/sbin", "/sbin"])
    path = shutil.which(name, path=os.environ.get("PATH", "") + os.pathsep + extra)
    if path is None:
        sys.exit(f"{name} not found; install e2fsprogs")
    return path


def run_timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Run argv once; the wall-clock seconds it took. Exits the benchmark if it fails."""
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(f"command failed (exit {proc.returncode}): {' '.join(argv)}\n")
        sys.stderr.write(proc.stdout.decode(errors="replace"))
        sys.stderr.write(proc.stderr.decode(errors="replace"))
        sys.exit(2)
    return elapsed


def start_up_floor(modules: str = "numpy, construct, click", repeat: int = 5) -> tuple[float, float]:
    """(seconds to start this interpreter and exit, seconds to start it and import `modules`),
    best of `repeat`: what every run of our tools pays before doing anything. It depends on
    the interpreter's build (PGO/LTO or not) and on what its site-packages run at start-up
    (.pth files, an editable install's import hook), not on our code."""
    bare = min(run_timed([sys.executable, "-c", "pass"]) for _ in range(repeat))
    loaded = min(run_timed([sys.executable, "-c", f"import {modules}"]) for _ in range(repeat))
    return bare, loaded


def allocated(path: str) -> int:
    """Bytes actually allocated on disk for a (possibly sparse) file."""
    return os.stat(path).st_blocks * 512


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def report(ours_name: str, ours: list[float], anchor_name: str, theirs: list[float]) -> float:
    """Print every run and the best of each; returns ratio best(ours) / best(anchor)."""
    fmt = lambda ts: ", ".join(f"{t:.3f}" for t in ts)  # noqa: E731
    width = max(len(ours_name), len(anchor_name))
    print(f"  {ours_name:<{width}}  runs (s): {fmt(ours)}")
    print(f"  {anchor_name:<{width}}  runs (s): {fmt(theirs)}")
    best_ours, best_anchor = min(ours), min(theirs)
    ratio = best_ours / best_anchor
    print(f"{ours_name + ' best:':<{width + 6}} {best_ours:.3f} s")
    print(f"{anchor_name + ' best:':<{width + 6}} {best_anchor:.3f} s")
    print(f"ratio (ours / anchor): {ratio:.2f}")
    return ratio


def alternate(repeat: int, ours: Callable[[], float], theirs: Callable[[], float]) -> tuple[list[float], list[float]]:
    """Time ours and the anchor `repeat` times each, alternating which goes first so that
    neither always meets the caches the other warmed; returns (ours, anchor) seconds."""
    times: dict[str, list[float]] = {"ours": [], "anchor": []}
    runs = {"ours": ours, "anchor": theirs}
    for i in range(repeat):
        for which in (("ours", "anchor") if i % 2 == 0 else ("anchor", "ours")):
            times[which].append(runs[which]())
    return times["ours"], times["anchor"]


def timed_round(batch, one, queries, single: int) -> tuple[float, float, float, object]:
    """One timed round of a search, ours or an anchor's: batch(queries) once, then
    one(query i) for the first `single` queries. (batch seconds, batch CPU seconds, median
    single-query seconds, what batch returned)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = batch(queries)
    elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - cpu
    lat = []
    for i in range(single):
        start = time.perf_counter()
        one(i)
        lat.append(time.perf_counter() - start)
    lat.sort()
    median = (lat[(len(lat) - 1) // 2] + lat[len(lat) // 2]) / 2 if lat else float("nan")
    return elapsed, elapsed_cpu, median, result


def faiss_round(index, queries, k: int, single: int) -> tuple[float, float, float, object, object]:
    """timed_round of a FAISS index (the anchor of the vector benchmarks): (batch seconds,
    batch CPU seconds, median single-query seconds, ids, distances) of the batch."""
    batch, cpu, median, (distances, ids) = timed_round(
        lambda q: index.search(q, k), lambda i: index.search(queries[i:i + 1], k), queries, single)
    return batch, cpu, median, ids, distances


def faiss_flat(vectors, metric: str = "l2", rows_per_add: int = 1 << 18):
    """IndexFlatL2 (l2) or IndexFlatIP (dot) over `vectors` (e.g. a memory map), added a
    bounded block at a time."""
    import faiss
    import numpy as np

    index = (faiss.IndexFlatL2 if metric == "l2" else faiss.IndexFlatIP)(vectors.shape[1])
    for start in range(0, len(vectors), rows_per_add):
        index.add(np.ascontiguousarray(vectors[start:start + rows_per_add], dtype=np.float32))
    return index


def child_env() -> dict[str, str]:
    """The environment our commands run in: without PYTHONDONTWRITEBYTECODE (set on some
    machines, it makes every command compile each module it imports again: most of a
    short command's time) and without the OpenBLAS overrides that slow numpy's BLAS."""
    env = dict(os.environ)
    for var in ("PYTHONDONTWRITEBYTECODE", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(var, None)
    return env


def random_npy(path: str, rows: int, dims: int, rng, rows_per_block: int = 1 << 18) -> None:
    """A float32 .npy of `rows` standard-normal rows, written a bounded block at a time
    through a memory map (10M rows never sit in memory at once)."""
    import numpy as np

    out = np.lib.format.open_memmap(path, mode="w+", dtype="<f4", shape=(rows, dims))
    for start in range(0, rows, rows_per_block):
        n = min(rows_per_block, rows - start)
        out[start:start + n] = rng.standard_normal((n, dims), dtype=np.float32)
    out.flush()
    del out


def big_and_tree_arguments(doc: str):
    """The options of the benchmarks that time one big file, a tree of small ones and one of
    larger ones (dfxml_hash, extract_debugfs): --only, --big-mib, --files, --repeat, --dir."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("big", "tree", "large"),
                        help="large: 20,000 files of 49-128 KiB (single indirect blocks)")
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    return parser.parse_args()
