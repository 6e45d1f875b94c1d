"""Exact search throughput, latency and memory: our search reading a vector file from an
image (memory-mapped) against faiss-cpu's IndexFlatL2 and IndexFlatIP over the same
vectors, in one run.

Data (deterministic): --rows vectors of --dims float32 components (default 1,000,000 x 128,
standard normal) and --queries queries (default 1,000) drawn the same way. The vectors are
stored in an image made with the library's tools: `mkfs.vexfs -q -s SIZE IMG`, then
vexfs_tools.vectors.store.add_vector_file(Volume.open(IMG, writable=True), '/big.vec',
source_from_file(NPY)). FAISS indexes the same vectors (read back from the image).

Measured, per metric (l2 against IndexFlatL2, dot against IndexFlatIP), best of --repeat
rounds, ours and FAISS alternating:
  batch: all queries at once, k = -k (default 10); throughput = queries / second;
  single: --single queries one at a time; the median latency of a round.
Our side runs in a child process (`--child`), so its peak RSS (VmHWM) is its own: it is
compared with the child's RSS before searching plus the vector file's data and ids plus the
engine's declared buffer bound (vexfs_tools.vectors.search.buffer_bytes).

Unless --no-one-thread, both sides also run once on one
thread each (our search on one worker, BLAS held to one thread; FAISS with one OpenMP
thread): less at the mercy of other work on the machine. Its single-query latency has a
goal (issue 10 §2: no worse than FAISS's, ratio <= 1.0); its batch numbers are informational.

Then: our ids equal FAISS's except where distances tie (FAISS ranks by float32 distances: a
rank where the ids differ counts as a tie when the float64 distances of the two ids differ
by no more than float32 rounding of the distance, 1e-5 of |q|^2 + |x|^2).

Goals (the issue): batch throughput >= 0.9x FAISS's; single-query latency <= 1.5x FAISS's;
peak memory <= the vector data plus a bounded batch buffer.

Needs faiss-cpu (and threadpoolctl, to show which BLAS kernel runs): pip install -e '.[bench]'.
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, where this machine sets them, slow a current numpy:
unset both for the benchmark command alone:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/search_faiss.py \\
        [--rows 1000000] [--dims 128] [--queries 1000] [-k 10] [--repeat 3] [--single 20] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import faiss_flat, faiss_round, human, timed_round, tool  # noqa: E402

SEED = 20240917
GOAL_THROUGHPUT = 0.9
GOAL_LATENCY = 1.5
GOAL_LATENCY_ONE_THREAD = 1.0  # issue 10 §2: one thread each, single-query latency no worse than FAISS's
VECTOR_PATH = "/big.vec"
METRICS = (("l2", "IndexFlatL2"), ("dot", "IndexFlatIP"))


def rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    """This process's own peak RSS: VmHWM (ru_maxrss would carry the parent's peak over
    fork and exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed (pip install threadpoolctl): BLAS kernel unknown"
    parts = []
    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            name = os.path.basename(lib.get("filepath", "?"))
            parts.append(f"{lib.get('internal_api')} {lib.get('version')} kernel {lib.get('architecture')} "
                         f"threads {lib.get('num_threads')} ({name})")
    return "; ".join(parts) or "no BLAS found"


def make_data(workdir: str, rows: int, dims: int, nq: int) -> tuple[str, str]:
    base, queries = os.path.join(workdir, "base.vec.npy"), os.path.join(workdir, "queries.npy")
    rng = np.random.default_rng(SEED)
    out = np.lib.format.open_memmap(base, mode="w+", dtype=np.float32, shape=(rows, dims))
    for s in range(0, rows, 1 << 16):
        e = min(rows, s + (1 << 16))
        out[s:e] = rng.standard_normal((e - s, dims), dtype=np.float32)
    out.flush()
    del out
    np.save(queries, rng.standard_normal((nq, dims), dtype=np.float32))
    return base, queries


def make_image(workdir: str, base: str, rows: int, dims: int) -> str:
    from vexfs_tools.vectors.store import add_vector_file, source_from_file
    from vexfs_tools.volume import Volume

    image = os.path.join(workdir, "search.img")
    need = rows * dims * 4 + rows * 8
    size_mib = max(256, -(-int(need * 1.1 + (64 << 20)) // (1 << 20)))
    subprocess.run([tool("mkfs.vexfs"), "-q", "-s", f"{size_mib}M", image], check=True)
    with Volume.open(image, writable=True) as volume:
        add_vector_file(volume, VECTOR_PATH, source_from_file(base))
    return image


# --- our side, in a child process ---------------------------------------------------------------

def child(args) -> None:
    from vexfs_tools.vectors import search
    from vexfs_tools.vectors.files import VectorFile
    from vexfs_tools.volume import Volume

    queries = np.load(args.child_queries)
    out = {"blas": blas_info()}
    with Volume.open(args.child_image) as volume:
        vf = VectorFile.open(volume, volume.resolve(VECTOR_PATH), VECTOR_PATH)
        assert vf.contiguous_offset() is not None, "the vector data is not one run: no memory map"
        out["baseline_rss"] = rss_now()
        search.search_files(queries[:1], [vf], args.k, "l2")  # map the pages (page cache warm)
        out["data_bytes"] = vf.info.data_bytes + 8 * vf.info.count + 4 * vf.info.count  # data, ids, norms
        out["buffer_bound"] = search.buffer_bytes(len(queries), vf.info.dimensions, args.k)
        def ours(metric: str):
            return timed_round(lambda q: search.search_files(q, [vf], args.k, metric),
                               lambda i: search.search_files(queries[i], [vf], args.k, metric),
                               queries, args.single)

        for metric in args.child_metrics.split(","):
            out[f"{metric}_batch"], out[f"{metric}_batch_cpu"], out[f"{metric}_single"], result = ours(metric)
            np.save(os.path.join(args.child_out, f"{metric}_ids.npy"), result.ids)
            np.save(os.path.join(args.child_out, f"{metric}_dist.npy"), result.distances)
        if args.one_thread:  # one thread each: the single-query latency goal
            from threadpoolctl import threadpool_limits

            search.MAX_WORKERS = 1
            with threadpool_limits(limits=1, user_api="blas"):
                for metric in args.child_metrics.split(","):
                    out[f"{metric}_batch_1t"], _, out[f"{metric}_single_1t"], _ = ours(metric)
    out["peak_rss"] = peak_rss()
    print(json.dumps(out))


def run_ours(image: str, queries: str, outdir: str, args, metrics: str) -> dict:
    argv = [sys.executable, os.path.abspath(__file__), "--child", "--child-image", image, "--child-queries",
            queries, "--child-out", outdir, "--child-metrics", metrics, "-k", str(args.k),
            "--single", str(args.single)] + (["--one-thread"] if args.one_thread else [])
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        sys.exit(2)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- FAISS, and the comparison ---------------------------------------------------------------------

def compare_ids(metric: str, ours: np.ndarray, ours_d: np.ndarray, theirs: np.ndarray,
                queries: np.ndarray, vectors: np.ndarray) -> tuple[int, int, int]:
    """(ranks compared, ranks whose ids differ, of those not explained by a tie)."""
    from vexfs_tools.vectors.queries import pair_distances

    differ = np.argwhere(ours != theirs)
    unexplained = 0
    for qi, rank in differ:
        fid = int(theirs[qi, rank])
        q = queries[qi:qi + 1].astype(np.float64)
        if fid < 0:
            unexplained += 1
            continue
        d = float(pair_distances(q, vectors[fid:fid + 1], metric, vectors.shape[1])[0])
        scale = float((q * q).sum()) + float(np.dot(vectors[fid].astype(np.float64), vectors[fid]))
        if abs(d - float(ours_d[qi, rank])) > 1e-5 * scale:
            unexplained += 1
    return ours.size, len(differ), unexplained


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--dims", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--single", type=int, default=20, help="queries timed one at a time per round")
    p.add_argument("--dir", default=None, help="where the data and the image go (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the data and image")
    p.add_argument("--no-one-thread", dest="one_thread", action="store_false",
                   help="skip the informational comparison with one thread each")
    p.add_argument("--one-thread", dest="one_thread", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child-image", help=argparse.SUPPRESS)
    p.add_argument("--child-queries", help=argparse.SUPPRESS)
    p.add_argument("--child-out", help=argparse.SUPPRESS)
    p.add_argument("--child-metrics", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    try:
        import faiss
    except ImportError:
        sys.exit("faiss is not installed: pip install -e '.[bench]' (faiss-cpu)")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if os.environ.get(var):
            print(f"warning: {var}={os.environ[var]} is set; it slows numpy's BLAS. Run with "
                  f"`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` for a fair comparison")

    workdir = tempfile.mkdtemp(prefix="vexfs-bench-search-", dir=args.dir)
    try:
        print(f"data: {args.rows:,} x {args.dims} float32 vectors, {args.queries:,} queries, k={args.k}, "
              f"{args.repeat} rounds, {args.single} single queries a round; cpus: {os.cpu_count()}, "
              f"load average {os.getloadavg()[0]:.2f}")
        start = time.perf_counter()
        base, queries_path = make_data(workdir, args.rows, args.dims, args.queries)
        image = make_image(workdir, base, args.rows, args.dims)
        os.unlink(base)
        print(f"image: {human(os.path.getsize(image))} made in {time.perf_counter() - start:.1f} s")
        queries = np.load(queries_path)

        from vexfs_tools.vectors.files import VectorFile
        from vexfs_tools.volume import Volume

        volume = Volume.open(image)
        vf = VectorFile.open(volume, volume.resolve(VECTOR_PATH), VECTOR_PATH)
        vectors = vf.vectors()
        print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} OpenMP threads")

        indexes = {metric: faiss_flat(vectors, metric) for metric, _ in METRICS}
        outdir = os.path.join(workdir, "out")
        os.makedirs(outdir)
        ours_runs: list[dict] = []
        theirs: dict[str, list] = {m: [] for m, _ in METRICS}
        for _ in range(args.repeat):
            ours_runs.append(run_ours(image, queries_path, outdir, args, ",".join(m for m, _ in METRICS)))
            for metric, _ in METRICS:
                theirs[metric].append(faiss_round(indexes[metric], queries, args.k, args.single))
        one_thread = {}
        if args.one_thread:
            from threadpoolctl import threadpool_limits

            threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)
            with threadpool_limits(limits=1, user_api="blas"):
                for metric, _ in METRICS:
                    one_thread[metric] = faiss_round(indexes[metric], queries, args.k, args.single)
            faiss.omp_set_num_threads(threads)
        print(f"our BLAS (child): {ours_runs[0]['blas']}")
        print(f"parent BLAS: {blas_info()}")

        failures = 0
        for metric, cls in METRICS:
            ob = min(r[f"{metric}_batch"] for r in ours_runs)
            ob_cpu = min(r[f"{metric}_batch_cpu"] for r in ours_runs)
            os_ = min(r[f"{metric}_single"] for r in ours_runs)
            fb = min(t[0] for t in theirs[metric])
            fb_cpu = min(t[1] for t in theirs[metric])
            fs = min(t[2] for t in theirs[metric])
            ratio = fb / ob  # throughput ours / faiss
            lat_ratio = os_ / fs
            print(f"\n{metric} vs {cls}:")
            key = f"{metric}_batch"
            print(f"  ours  batch runs (s): {', '.join(f'{r[key]:.3f}' for r in ours_runs)}")
            print(f"  faiss batch runs (s): {', '.join(f'{t[0]:.3f}' for t in theirs[metric])}")
            print(f"  batch best: ours {ob:.3f} s ({args.queries / ob:,.0f} q/s, cpu {ob_cpu:.2f} s), "
                  f"faiss {fb:.3f} s ({args.queries / fb:,.0f} q/s, cpu {fb_cpu:.2f} s)")
            verdict = "PASS" if ratio >= GOAL_THROUGHPUT else "FAIL"
            failures += verdict == "FAIL"
            print(f"  throughput ratio (ours / faiss): {ratio:.2f}  goal >= {GOAL_THROUGHPUT}: {verdict}")
            print(f"  single-query latency, median of {args.single}, best round: ours {os_ * 1e3:.1f} ms, "
                  f"faiss {fs * 1e3:.1f} ms")
            verdict = "PASS" if lat_ratio <= GOAL_LATENCY else "FAIL"
            failures += verdict == "FAIL"
            print(f"  latency ratio (ours / faiss): {lat_ratio:.2f}  goal <= {GOAL_LATENCY}: {verdict}")
            ours_ids = np.load(os.path.join(outdir, f"{metric}_ids.npy"))
            ours_d = np.load(os.path.join(outdir, f"{metric}_dist.npy"))
            faiss_ids = theirs[metric][-1][3]
            total, differ, unexplained = compare_ids(metric, ours_ids, ours_d, faiss_ids, queries, vectors)
            verdict = "PASS" if unexplained == 0 else "FAIL"
            failures += verdict == "FAIL"
            print(f"  ids vs faiss: {total - differ:,} of {total:,} ranks equal; {differ} differ, "
                  f"{differ - unexplained} of them at tied distances: {verdict}")
            if one_thread:
                ob1 = min(r[f"{metric}_batch_1t"] for r in ours_runs)
                os1 = min(r[f"{metric}_single_1t"] for r in ours_runs)
                fb1, fs1 = one_thread[metric][0], one_thread[metric][2]
                verdict = "PASS" if os1 / fs1 <= GOAL_LATENCY_ONE_THREAD else "FAIL"
                failures += verdict == "FAIL"
                print(f"  one thread each: batch ours {ob1:.3f} s, faiss {fb1:.3f} s (informational), "
                      f"throughput ratio {fb1 / ob1:.2f}; single ours {os1 * 1e3:.1f} ms, faiss {fs1 * 1e3:.1f} ms, "
                      f"latency ratio {os1 / fs1:.2f}  goal <= {GOAL_LATENCY_ONE_THREAD}: {verdict}")
        peak = max(r["peak_rss"] for r in ours_runs)
        run = ours_runs[0]
        allowed = run["baseline_rss"] + run["data_bytes"] + run["buffer_bound"]
        verdict = "PASS" if peak <= allowed else "FAIL"
        failures += verdict == "FAIL"
        print(f"\nmemory (our child process): peak RSS {human(peak)}; before searching {human(run['baseline_rss'])}; "
              f"vector data + ids + norms {human(run['data_bytes'])}; buffer bound {human(run['buffer_bound'])}")
        print(f"  peak - before - data: {human(peak - run['baseline_rss'] - run['data_bytes'])} "
              f"<= buffer bound {human(run['buffer_bound'])}: {verdict}")
        print(f"  (faiss process peak RSS, index copies included: {human(peak_rss())})")
        print(f"\nload average at the end: {os.getloadavg()[0]:.2f} (other work on the machine skews "
              f"both sides' times)")
        print(f"overall: {'PASS' if not failures else f'FAIL ({failures} goals missed)'}")
        volume.close()
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
