"""Exact search past one machine, on dask.distributed (`vexfs search/verify --dask ADDRESS`).

The vector files are cut into row ranges on chunk boundaries; each task opens the image
read-only (its path must be visible to the workers, as on any shared file system), takes
the top k of its range with the local engine, and the client merges with the same float64
distances and the same tie rule (smaller id, then the earlier file): the answer is the
local one, exactly. A task that fails is retried by Dask; if it still fails the search
fails, never answering from part of the data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import UsageError, VexfsError
from ..volume.volume import Volume
from .files import VectorFile
from .manage import open_vector_file
from .queries import check_metric, prepare_queries
from .search import SearchResult, search_files

CHUNKS_PER_TASK = 64  # 64 MiB of vector data per task at the 1 MiB chunk size
RETRIES = 3
CONNECT_TIMEOUT = 10  # seconds to reach the scheduler


def client_for(address: str):
    """A dask.distributed Client connected to the scheduler at `address`."""
    try:
        from distributed import Client
    except ImportError:
        raise UsageError("--dask needs dask.distributed: pip install 'vexfs-tools[dask]'") from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as e:
        raise VexfsError(f"--dask {address}: can not reach the scheduler ({e})") from None


def row_ranges(file: VectorFile, chunks_per_task: int = CHUNKS_PER_TASK) -> list[tuple[int, int]]:
    """[low, high) row ranges that start on chunk boundaries (a row beginning in a chunk
    goes with it), chunks_per_task chunks each."""
    info = file.info
    if not info.count:
        return []
    starts = [-(-(index * info.chunk_size) // info.row_bytes)
              for index in range(0, len(info.chunk_checksums), chunks_per_task)]
    starts = sorted({min(s, info.count) for s in starts} | {0})
    bounds = starts + [info.count]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if a < b]


def _search_range(image: str, path: str, low: int, high: int, queries: np.ndarray, k: int, metric: str,
                  skip_damaged: bool) -> SearchResult:
    """One task: the top k of rows [low, high) of the vector file `path` of `image`."""
    with Volume.open(image) as volume:
        file = open_vector_file(volume, path)
        file.window = (low, high)
        return search_files(queries, [file], k, metric, skip_damaged=skip_damaged)


def merge(parts: Sequence[tuple[int, SearchResult]], nq: int, k: int, metric: str) -> SearchResult:
    """The global top k of per-range results ((file index, result)): nearer first, then the
    smaller id (as u64), then the earlier file; the rule of the local search."""
    ids = np.concatenate([r.ids for _, r in parts], axis=1)
    distances = np.concatenate([r.distances for _, r in parts], axis=1)
    sources = np.concatenate([np.where(r.sources >= 0, index, -1).astype(np.int32) for index, r in parts], axis=1)
    missing = sources < 0
    key = np.where(missing, np.inf, -distances if metric == "dot" else distances)
    out_ids = np.full((nq, k), -1, np.int64)
    out_distances = np.full((nq, k), np.nan)
    out_sources = np.full((nq, k), -1, np.int32)
    for q in range(nq):
        order = np.lexsort((sources[q], ids[q].view(np.uint64), key[q], missing[q]))
        order = order[~missing[q][order]][:k]
        out_ids[q, :len(order)] = ids[q][order]
        out_distances[q, :len(order)] = distances[q][order]
        out_sources[q, :len(order)] = sources[q][order]
    return SearchResult(out_ids, out_distances, out_sources, metric, k)


def _check(files: list[VectorFile], queries, metric: str | None, skip_damaged: bool) -> tuple[str, int]:
    """The local search's refusals, on the client before any task: (metric, queries)."""
    if not files:
        raise UsageError("no vector files to search")
    first = files[0].info
    for f in files:
        if (f.info.dimensions, f.info.element_type) != (first.dimensions, first.element_type):
            raise UsageError(f"{f.path} holds {f.info.dimensions}-dimensional {f.info.element_name} vectors; "
                             f"{files[0].path} holds {first.dimensions}-dimensional {first.element_name} ones: "
                             "search files of one kind at a time")
        f.require_intact(skip_damaged=skip_damaged, offer_skip=True)
    metric = metric or first.metric_name
    check_metric(metric, first.element_type)
    return metric, len(prepare_queries(queries, first.dimensions, first.element_type))


def search_dask(address: str, image: str, files: Sequence[VectorFile], queries, k: int,
                metric: str | None = None, *, skip_damaged: bool = False,
                chunks_per_task: int = CHUNKS_PER_TASK) -> SearchResult:
    """search_files over `files` of `image`, on the Dask scheduler at `address`: the same
    result. The client checks the files first (the same refusals as a local search)."""
    files = list(files)
    metric, nq = _check(files, queries, metric, skip_damaged)
    tasks = [(index, f.path, low, high) for index, f in enumerate(files)
             for low, high in row_ranges(f, chunks_per_task)]
    if not tasks:
        return search_files(queries, files, k, metric)
    client = client_for(address)
    try:
        q = np.asarray(queries)
        futures = [client.submit(_search_range, image, path, low, high, q, k, metric, skip_damaged,
                                 retries=RETRIES, pure=False) for _, path, low, high in tasks]
        results = client.gather(futures)
    finally:
        client.close()
    return merge([(index, result) for (index, *_), result in zip(tasks, results)], nq, k, metric)
