"""Scoring real ANN engines with `vexfs verify` (issue 10, §5): recall@10 against queries
per second, one curve per engine, as ann-benchmarks draws it, with our exact search as the
ground truth.

Data (deterministic, ann-benchmarks-like): --rows vectors (default 200,000) of 128 float32
components around --clusters centres (default 1,000; clustered data is where approximate
engines differ), and --queries queries (default 1,000) drawn from the same mixture, not
from the train set. The vectors go into an image with `mkfs.vexfs -d` (tree/base.vec.npy
becomes /base.vec); every engine indexes the vector file read back from the image
(memory-mapped, VectorFile.vectors()).

Engines (all with one thread, queries in one batch, as ann-benchmarks' batch mode):
  hnswlib HNSW (M=16, ef_construction=100), sweeping ef;
  FAISS IndexHNSWFlat (M=16, efConstruction=100), sweeping efSearch;
  FAISS IndexIVFFlat (nlist=sqrt-ish of the rows, trained on the data), sweeping nprobe;
  and our exact search (vexfs_tools.vectors.search, one thread): recall 1 by definition.
Each answer set (ids, .npy) is scored by `vexfs verify IMG /base.vec --queries Q --results
IDS -k 10 --json`, which runs our exact search and reports recall@10.

Output: a CSV (engine, parameter, value, recall, queries/s, build seconds) and a PNG of
recall@10 against queries per second (log scale), by default docs/ann_engines.csv and
docs/ann_engines.png. Needs the bench extra: pip install -e '.[bench]' (faiss-cpu,
hnswlib, matplotlib).

    .venv/bin/python benchmarks/ann_engines.py [--rows 200000] [--queries 1000] [--out docs/ann_engines] [--dir tmp]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import child_env, tool  # noqa: E402

DIMS = 128
K = 10
EF = (10, 16, 24, 32, 48, 64, 96, 128, 192, 256)
NPROBE = (1, 2, 4, 8, 16, 32, 64, 128)
VECTOR_PATH = "/base.vec"


def clustered(rng: np.random.Generator, centres: np.ndarray, n: int, spread: float) -> np.ndarray:
    which = rng.integers(0, len(centres), n)
    out = centres[which] + spread * rng.standard_normal((n, centres.shape[1]), dtype=np.float32)
    return out.astype(np.float32)


def make_image(where: str, rows: int, nq: int, clusters: int) -> tuple[str, str]:
    rng = np.random.default_rng(12)
    centres = rng.standard_normal((clusters, DIMS), dtype=np.float32)
    tree = os.path.join(where, "tree")
    os.makedirs(tree)
    np.save(os.path.join(tree, "base.vec.npy"), clustered(rng, centres, rows, 0.35))
    queries = os.path.join(where, "q.npy")
    np.save(queries, clustered(rng, centres, nq, 0.35))
    image = os.path.join(where, "ann.img")
    size = f"{int(rows * DIMS * 4 * 1.3 / (1 << 20)) + 64}M"
    subprocess.run([tool("mkfs.vexfs"), "-q", "-s", size, "-d", tree, image], check=True, env=child_env())
    return image, queries


def recall_by_verify(image: str, queries: str, ids: np.ndarray, where: str) -> float:
    """recall@10 of an answer set, as `vexfs verify` scores it against our exact search."""
    answers = os.path.join(where, "answers.npy")
    np.save(answers, ids.astype(np.int64))
    proc = subprocess.run([tool("vexfs"), "verify", image, VECTOR_PATH, "--queries", queries, "--results", answers,
                           "-k", str(K), "--min-recall", "0", "--json"], capture_output=True, env=child_env())
    if proc.returncode != 0:
        sys.exit(f"vexfs verify failed (exit {proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return float(json.loads(proc.stdout)["overall"]["recall"])


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run_hnswlib(x: np.ndarray, q: np.ndarray):
    import hnswlib

    index = hnswlib.Index(space="l2", dim=DIMS)
    index.init_index(max_elements=len(x), M=16, ef_construction=100, random_seed=1)
    index.set_num_threads(1)
    build, _ = timed(lambda: index.add_items(x, np.arange(len(x))))
    for ef in EF:
        index.set_ef(max(ef, K))
        seconds, (labels, _) = timed(lambda: index.knn_query(q, k=K, num_threads=1))
        yield "hnswlib HNSW", "ef", ef, seconds, labels, build


def run_faiss_hnsw(x: np.ndarray, q: np.ndarray):
    import faiss

    index = faiss.IndexHNSWFlat(DIMS, 16)
    index.hnsw.efConstruction = 100
    build, _ = timed(lambda: index.add(x))
    for ef in EF:
        index.hnsw.efSearch = max(ef, K)
        seconds, (_, labels) = timed(lambda: index.search(q, K))
        yield "FAISS HNSW", "efSearch", ef, seconds, labels, build


def run_faiss_ivf(x: np.ndarray, q: np.ndarray):
    import faiss

    nlist = max(16, int(4 * np.sqrt(len(x))) // 64 * 64)
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(DIMS), DIMS, nlist)
    build, _ = timed(lambda: (index.train(x), index.add(x)))
    for nprobe in NPROBE:
        if nprobe > nlist:
            break
        index.nprobe = nprobe
        seconds, (_, labels) = timed(lambda: index.search(q, K))
        yield f"FAISS IVF{nlist},Flat", "nprobe", nprobe, seconds, labels, build


def run_exact(image: str, q: np.ndarray):
    """Our exact search on one thread: the point at recall 1."""
    from threadpoolctl import threadpool_limits

    from vexfs_tools.vectors import search
    from vexfs_tools.vectors.files import VectorFile
    from vexfs_tools.volume import Volume

    search.MAX_WORKERS = 1
    with Volume.open(image) as volume, threadpool_limits(limits=1, user_api="blas"):
        vf = VectorFile.open(volume, volume.resolve(VECTOR_PATH), VECTOR_PATH)
        search.search_files(q[:1], [vf], K, "l2")  # warm: the map and the page cache
        seconds, result = timed(lambda: search.search_files(q, [vf], K, "l2"))
    yield "vexfs search (exact)", "-", 0, seconds, result.ids, 0.0


def plot(rows: list[dict], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    for engine in dict.fromkeys(r["engine"] for r in rows):
        points = sorted((r["recall"], r["qps"]) for r in rows if r["engine"] == engine)
        single = len(points) == 1  # our exact search: one point, at recall 1
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="*" if single else "o",
                markersize=12 if single else 3, linestyle="none" if single else "-", label=engine, zorder=3)
    ax.set_yscale("log")
    ax.set_xlim(right=1.01)
    ax.set_xlabel("recall@10 (vexfs verify against vexfs search)")
    ax.set_ylabel("queries per second (1 thread)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs",
                                                      "ann_engines"),
                        help="PREFIX: writes PREFIX.csv and PREFIX.png (default: docs/ann_engines)")
    parser.add_argument("--dir", default=None, help="where the image goes (default: a temporary directory)")
    parser.add_argument("--replot", metavar="TITLE", help="only draw PREFIX.png again from PREFIX.csv")
    args = parser.parse_args()
    if args.replot:
        with open(os.path.abspath(args.out) + ".csv", newline="") as f:
            rows = [dict(r, recall=float(r["recall"]), qps=float(r["qps"])) for r in csv.DictReader(f)]
        plot(rows, os.path.abspath(args.out) + ".png", args.replot)
        return
    try:
        import faiss
        import hnswlib  # noqa: F401
        import matplotlib  # noqa: F401
    except ImportError as e:
        sys.exit(f"{e.name} is not installed: pip install -e '.[bench]' (faiss-cpu, hnswlib, matplotlib)")
    faiss.omp_set_num_threads(1)
    where = tempfile.mkdtemp(prefix="vexfs-ann-", dir=args.dir)
    load = os.getloadavg()[0]
    try:
        image, queries = make_image(where, args.rows, args.queries, args.clusters)
        from vexfs_tools.vectors.files import VectorFile
        from vexfs_tools.volume import Volume

        q = np.load(queries)
        rows: list[dict] = []
        with Volume.open(image) as volume:
            x = VectorFile.open(volume, volume.resolve(VECTOR_PATH), VECTOR_PATH).vectors()
            x = np.ascontiguousarray(x)  # the engines copy it into their indexes anyway
        for runs in (run_exact(image, q), run_hnswlib(x, q), run_faiss_hnsw(x, q), run_faiss_ivf(x, q)):
            for engine, parameter, value, seconds, labels, build in runs:
                recall = recall_by_verify(image, queries, np.asarray(labels), where)
                rows.append({"engine": engine, "parameter": parameter, "value": value,
                             "recall": round(recall, 4), "qps": round(len(q) / seconds, 1),
                             "build_seconds": round(build, 2)})
                print(f"{engine:<22} {parameter:>8}={value:<4} recall@10 {recall:.4f}  "
                      f"{len(q) / seconds:>9.1f} q/s  (build {build:.1f} s)", flush=True)
        out = os.path.abspath(args.out)
        with open(out + ".csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        title = (f"{args.rows:,} x {DIMS} clustered float32, {len(q):,} queries, k={K}; "
                 f"{os.cpu_count()} shared CPUs, load {load:.1f}-{os.getloadavg()[0]:.1f}")
        plot(rows, out + ".png", title)
        print(f"wrote {out}.csv and {out}.png")
    finally:
        shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    main()
