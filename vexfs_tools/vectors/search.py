"""Exact k-nearest-neighbour search over vector files (docs/FORMAT.md, "Vector files").

Exact means the answer equals `reference_search`, a float64 brute force (every distance in
float64, a full stable sort by (distance, id)), on every input, ties included. The engine
gets there fast in two stages:

1. Candidates, in float32. The data is read in blocks of rows; per block one matrix product
   (BLAS; for a handful of queries einsum, which has no threads to wake) gives every query a
   score per row that is larger for nearer rows: l2 q.x - |x|^2/2 (the -|x|^2/2 rides in
   the product as one more column), dot q.x, cosine q/|q| . x/|x|, hamming l2 on the
   unpacked bits (exact). Each query keeps the k-th best score seen so far, T, and a
   rigorous bound E of the difference between a float32 score and the same quantity
   derived from the float64 distance: Higham's gamma_n = n u / (1 - n u) for sums of n
   products, the rounding of the query into float32, of the norms and of the subtraction,
   underflow, and the float64 reference's own error, with |q| and the largest |x| seen so
   far. A row can be among the final k only if its float32 score is >= T - 2E. The scores'
   maxima over segments of SEGMENT rows tell which (segment, query) pairs can hold such a
   row; only those are looked at, so after the first blocks nearly all of a block is
   dropped by one pass over its scores (one query: the block's best score, then, where it
   reaches T - 2E, one comparison of all its scores; no segments). Few queries score the
   first rows of their first block alone: every row of it is above the first thresholds.
2. Exact selection. Survivors get their float64 distances computed while their block is in
   memory, by the function the reference uses, on the same float64 rows, so the values are
   the reference's bit for bit; the final k is chosen by (distance, id, file index).

Data whose magnitudes could overflow float32 (or underflow a cosine norm) makes the
candidate stage start again in float64, with the bound for float64. Large searches run on
one worker thread per CPU, each with its own engine over its share of the blocks and its
BLAS calls held to one thread (threadpoolctl; without it, searches that use BLAS keep one
worker and BLAS's own threads); their candidates are merged at the end.

Memory: the vector data (memory-mapped from the image where it is one run of blocks, read
in bounded chunks otherwise), its ids and, for float32 files, the rows' float32 norms
(4 bytes a row, kept with the opened file: VectorFile.row_norms), plus `buffer_bytes` at
most (score and data blocks, the float64 recomputation in chunks, per-query state of
O(k)) per worker.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from ..format import vector as V
from .codec import NUMPY_TYPES
from .queries import check_k, check_metric, pair_distances, prepare_queries

# Budgets of the candidate stage (bytes). The score block is block_rows x query_tile in the
# compute type; the data block is block_rows rows in the compute type.
SCORE_BLOCK_BYTES = 4 << 20
DATA_BLOCK_BYTES = 4 << 20
VIEW_BLOCK_ROWS = 1 << 18  # rows per block when they are scored where they lie (no copy): few Python steps
FIRST_BLOCK_ROWS = 1 << 12  # few queries: rows scored first, alone (they set the thresholds)
QUERY_TILE = 1024
SMALL_BATCH = 4  # up to this many queries, single-threaded einsum instead of BLAS
PAIR_CHUNK_ELEMENTS = 1 << 18  # float64 recomputation: pairs x dims per step
POOL_MIN_CAP = 1 << 16  # candidates kept before the pool is cut down to k per query
SEGMENT = 64  # rows per segment: the unit in which a block's scores are skipped or looked at
HIT_CHUNK = 1 << 18  # score values compared with the thresholds at a time
MAX_WORKERS = 8  # threads a search runs on (at most the CPUs it may use)
PARALLEL_MIN_ELEMENTS = 1 << 22  # rows x dims below which a search runs on one thread

_U32 = 2.0 ** -24
_U64 = 2.0 ** -53
_TINY32 = 2.0 ** -149  # smallest float32 subnormal: the absolute error of an underflow
_TINY64 = 2.0 ** -1074
# float32 candidate scores are used only inside these magnitudes (else float64 is used).
_F32_QUERY_NORM_MAX = 2.0 ** 60
_F32_ROW_NORM2_MAX = 2.0 ** 100
_F32_ROW_NORM2_MIN = 2.0 ** -100  # cosine: smaller nonzero rows are normalised in float64


@dataclass
class SearchResult:
    """The k nearest rows of every query, nearest first.

    ids: (nq, k) int64, -1 where there are fewer than k rows (ids above 2^63 - 1, legal u64
    ids in a vector file, come out as their two's complement: view them as uint64).
    distances: (nq, k) float64, NaN where ids is -1; l2: squared distance, cosine: 1 - cos,
    dot: the inner product (larger is nearer), hamming: differing bits.
    sources: (nq, k) int32, the index (in the list searched) of the file each id came from;
    -1 where missing; search_arrays and reference_search give 0.
    """

    ids: np.ndarray
    distances: np.ndarray
    sources: np.ndarray
    metric: str
    k: int


def buffer_bytes(nq: int, dims: int, k: int, workers: int | None = None) -> int:
    """An upper bound of what a search allocates besides the vector data, its ids and the
    caller's queries, with the default block sizes (a caller's batch_rows scales the data and
    score blocks), on `workers` threads (default: as many as a large search would use):
    the queries prepared (float64 once; compute type, norms, margins and running top k per
    worker) and per worker the score block and what is taken of it (its live segments, a
    partition of them, hits HIT_CHUNK values at a time), the data block converted, the
    float64 recomputation in chunks and the candidate pool."""
    if workers is None:
        workers = max(1, min(_cpus(), MAX_WORKERS))
    shared = nq * dims * 8
    tile = max(1, -(-nq // max(1, -(-nq // QUERY_TILE))))
    block = min(SCORE_BLOCK_BYTES, tile * 8 * max(SEGMENT, DATA_BLOCK_BYTES // (4 * (dims + 1)), VIEW_BLOCK_ROWS))
    scores = 4 * block + 6 * 8 * HIT_CHUNK
    data = 4 * DATA_BLOCK_BYTES + 4 * dims * 8 * SEGMENT
    pairs = 6 * 8 * max(PAIR_CHUNK_ELEMENTS, dims)
    chunk = max(1, PAIR_CHUNK_ELEMENTS // max(1, dims))
    pool = 100 * (max(POOL_MIN_CAP, 4 * nq * k) + chunk)
    per_worker = nq * (dims * 8 + 16 * k + 128) + scores + data + pairs + pool
    return shared + workers * per_worker


# --- float64 distances (queries.pair_distances) and the order of answers ------------------------

def _distances_chunked(q: np.ndarray, x: np.ndarray, metric: str, dims: int) -> np.ndarray:
    out = np.empty(len(x))
    step = max(1, PAIR_CHUNK_ELEMENTS // max(1, x.shape[1]))
    for s in range(0, len(x), step):
        e = min(len(x), s + step)
        out[s:e] = pair_distances(q[s:e], x[s:e], metric, dims)
    return out


def _sort_key(distances: np.ndarray, metric: str) -> np.ndarray:
    return -distances if metric == "dot" else distances


def _id_key(ids: np.ndarray) -> np.ndarray:
    return ids.astype(np.uint64) if ids.dtype.kind == "u" else ids.astype(np.int64)


# --- checking and preparing inputs -------------------------------------------------------------

def _prepare_vectors(vectors, element_type: int) -> tuple[np.ndarray, int]:
    """(rows in the element type's numpy type, dimensions)."""
    x = np.asarray(vectors)
    if x.ndim == 1:
        x = x.reshape(-1, 1) if element_type != V.ELEMENT_BINARY else x.reshape(1, -1)
    if x.ndim != 2:
        raise UsageError(f"vectors must be a 2-D array, not {x.ndim}-D")
    dtype = NUMPY_TYPES[element_type]
    if x.dtype != dtype:
        if element_type == V.ELEMENT_BINARY and x.dtype.kind == "b":
            dims = x.shape[1]
            return np.packbits(x, axis=1, bitorder="little"), dims
        x = x.astype(dtype)
    dims = x.shape[1] * (8 if element_type == V.ELEMENT_BINARY else 1)
    return x, dims


def _array_dims(queries, dims: int, element_type: int) -> int:
    """In-memory packed binary vectors do not say how many bits their last byte holds:
    boolean queries do (the bits past them do not count)."""
    q = np.asarray(queries)
    if element_type == V.ELEMENT_BINARY and q.dtype.kind == "b" and q.ndim in (1, 2) \
            and -(-q.shape[-1] // 8) == dims // 8:
        return q.shape[-1]
    return dims


def _prepare_ids(ids, n: int) -> np.ndarray:
    if ids is None:
        return np.arange(n, dtype=np.int64)
    ids = np.asarray(ids).reshape(-1)
    if ids.dtype.kind not in "iu" or len(ids) != n:
        raise UsageError(f"ids must be {n} integers")
    return ids


def _empty_result(nq: int, k: int, metric: str) -> SearchResult:
    return SearchResult(np.full((nq, k), -1, np.int64), np.full((nq, k), np.nan),
                        np.full((nq, k), -1, np.int32), metric, k)


# --- the reference -------------------------------------------------------------------------------

def reference_search(queries, vectors, ids, k, metric, *, element_type=V.ELEMENT_FLOAT32) -> SearchResult:
    """The definition of exact: every distance in float64 (`queries.pair_distances`), a full stable
    sort by (distance, id) per query (dot: larger first)."""
    k = check_k(k)
    check_metric(metric, element_type)
    x, dims = _prepare_vectors(vectors, element_type)
    dims = _array_dims(queries, dims, element_type)
    q = prepare_queries(queries, dims, element_type)
    ids = _prepare_ids(ids, len(x))
    if x.dtype.kind == "f" and x.size and not np.isfinite(x).all():
        raise UsageError("vectors must be finite (a row has a NaN or an infinite component)")
    result = _empty_result(len(q), k, metric)
    if not len(x):
        return result
    idk = _id_key(ids)
    for i in range(len(q)):
        d = _distances_chunked(np.broadcast_to(q[i], (len(x), q.shape[1])), x, metric, dims)
        order = np.lexsort((idk, _sort_key(d, metric)))[:k]
        m = len(order)
        result.ids[i, :m] = ids[order].astype(np.int64)
        result.distances[i, :m] = d[order]
        result.sources[i, :m] = 0
    return result


# --- the engine ------------------------------------------------------------------------------------

def _gamma(n: int, u: float) -> float:
    return n * u / (1.0 - n * u)


class _Fallback(Exception):
    """The data's magnitudes rule out float32 candidate scores: start again in float64."""


@dataclass
class _Live:
    """The live segments of one tile of queries, grouped by query: values (queries, most
    segments, SEGMENT) of scores, -inf padded; where (queries, most segments), the segment
    of each in the block, -1 for padding; queries, their indexes."""

    values: np.ndarray
    where: np.ndarray
    queries: np.ndarray


class _Engine:
    """Global top-k over a stream of row blocks (one or more sources): the candidate stage of
    the module docstring (scores, the k-th best score T and margin E of every query, the
    threshold T - 2E), then the exact selection of the survivors."""

    def __init__(self, queries: np.ndarray, dims: int, metric: str, k: int, compute,
                 views: np.dtype | None = None):
        self.queries = queries  # prepared: float64, or packed bits for hamming
        self.nq = len(queries)
        self.dims = dims
        self.metric = metric
        self.k = k
        self.dtype = np.dtype(compute)
        self.f32 = self.dtype == np.float32
        self.unit_roundoff = _U32 if self.f32 else _U64
        self.smallest_subnormal = _TINY32 if self.f32 else _TINY64
        self._prepare_query_matrix()
        self._error_constants()
        self.views = views  # the rows' type when blocks come as views (a map, an array), else None
        self._row_buffer = None
        self._half_buffer = None
        self.first_block = self.nq <= SMALL_BATCH  # the next block is the first: see feed
        self._score_buffers: dict[int, np.ndarray] = {}
        # Running state: the best k scores of every query, the k-th of them (T), the
        # margin E and the threshold T - 2E below which a row can not be among the final k.
        self.best_scores = np.full((self.nq, k), -np.inf, self.dtype)
        self.kth_score = np.full(self.nq, -np.inf)
        self.threshold = np.full(self.nq, -np.inf, self.dtype)
        self.max_norm = 0.0  # upper bound of every row's |x| seen so far
        self.margin = np.zeros(self.nq)
        self._update_margin()
        # Survivors: waiting for their float64 distances (pending), then in the pool.
        self.pool: list[tuple[np.ndarray, ...]] = []
        self.pool_size = 0
        self.pending: list[tuple] = []
        self.pending_size = 0
        self.pool_cap = max(POOL_MIN_CAP, 4 * self.nq * k)
        self._block_shape()

    def _prepare_query_matrix(self) -> None:
        """The queries in the compute type (cosine: unit vectors; hamming: unpacked bits), an
        upper bound of each |q|, and of each unit query's norm. Few queries: single-threaded
        einsum; more: BLAS, l2 and hamming folding |x|^2 / 2 into the product as one more
        column (a 1 in the queries)."""
        queries, metric = self.queries, self.metric
        self.unit_norm = np.ones(self.nq)
        if metric == "hamming":
            bits = np.unpackbits(queries, axis=1, count=self.dims, bitorder="little")
            self.query_matrix = bits.astype(self.dtype)
            self.query_norm = np.zeros(self.nq)
        else:
            norms = np.sqrt((queries * queries).sum(axis=1))
            self.query_norm = norms * (1 + 4 * _U64)
            if metric == "cosine":
                unit = np.zeros_like(queries)
                ok = norms > 0
                unit[ok] = queries[ok] / norms[ok, None]
                self.query_matrix = unit.astype(self.dtype)
                # |q / |q|| is 1 but where |q| lost bits to underflow (components below 1e-154)
                self.unit_norm = np.maximum(1.0, np.sqrt((unit * unit).sum(axis=1)) * (1 + 2 ** -20))
            else:
                if self.f32 and self.nq and norms.max() > _F32_QUERY_NORM_MAX:
                    raise _Fallback
                self.query_matrix = queries.astype(self.dtype)
        self.blas = self.nq > SMALL_BATCH
        self.fold = self.blas and metric in ("l2", "hamming")
        if self.fold:
            self.query_matrix = np.concatenate([self.query_matrix, np.ones((self.nq, 1), self.dtype)], axis=1)

    def _error_constants(self) -> None:
        """Higham's gamma for sums of products in the compute type and in float64, and the
        absolute errors of underflow: each product errs by at most the smallest subnormal; a
        query component rounded to the compute type by that much, times |x|_1 <= sqrt(d) |x|."""
        d = self.dims
        self.gamma = 1.02 * _gamma(d + 5, self.unit_roundoff)
        self.gamma64 = _gamma(d + 8, _U64)
        self.underflow_error = (2 * d + 8) * self.smallest_subnormal + (2 * d + 8) * _TINY64
        self.query_rounding = math.sqrt(d) * self.smallest_subnormal

    def _block_shape(self) -> None:
        """Queries per tile and rows per block, within the score and data block budgets."""
        row_bytes = max(self.query_matrix.shape[1], 1) * self.dtype.itemsize
        tiles = max(1, -(-self.nq // QUERY_TILE))
        self.query_tile = max(1, -(-self.nq // tiles))
        rows = min(SCORE_BLOCK_BYTES // (self.dtype.itemsize * self.query_tile), DATA_BLOCK_BYTES // row_bytes)
        if self._scored_in_place():
            rows = min(SCORE_BLOCK_BYTES // (self.dtype.itemsize * self.query_tile), VIEW_BLOCK_ROWS)
        self.block_rows = int(max(SEGMENT, rows // SEGMENT * SEGMENT))

    def _scored_in_place(self) -> bool:
        """Are blocks scored where they lie, with no copy in the compute type (views of
        rows already in it, l2 or dot, no folded column)? Then only the score block
        bounds their size, and larger blocks spare the per-block work (a query's latency)."""
        return self.views == self.dtype and not self.fold and self.metric in ("l2", "dot")

    # Margins: |float32 score - (c - a * float64 distance)| <= E for every row seen so far.
    def _update_margin(self) -> None:
        m, qn, g, g64 = self.max_norm, self.query_norm, self.gamma, self.gamma64
        if self.metric == "hamming":
            self.margin = np.zeros(self.nq)
        elif self.metric == "l2":
            # q.x (and q rounded to the compute type), |x|^2 / 2 computed and then summed into
            # the product (fold) or subtracted: gamma_{d+1} + gamma_d on |x|^2 / 2.
            self.margin = g * qn * m + 2 * g * m * m / 2 + g64 * (qn + m) ** 2 / 2 + self.query_rounding * m \
                + self.underflow_error
        elif self.metric == "dot":
            self.margin = g * qn * m + g64 * qn * m + self.query_rounding * m + self.underflow_error
        else:  # cosine: scores of unit vectors
            self.margin = (1.5 * g + 6 * self.unit_roundoff + 4 * g64 + self.underflow_error * 4) * self.unit_norm
        self._update_thresholds(np.arange(self.nq))

    def _update_thresholds(self, queries: np.ndarray) -> None:
        """threshold = T - 2E, rounded down into the compute type (one step below the
        nearest value: never above)."""
        threshold = (self.kth_score[queries] - 2 * self.margin[queries]).astype(self.dtype)
        self.threshold[queries] = np.nextafter(threshold, self.dtype.type(-np.inf))

    def _compute_block(self, raw: np.ndarray, norms: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """(rows in the compute type, per-row term to subtract from q.x or None); updates the
        running norm bound. With BLAS, l2's and hamming's term rides in the product: the rows
        get one more column, -|x|^2 / 2, and the queries a 1 there. `norms`: the rows'
        float32 |x|^2 computed before (VectorFile.row_norms), used by float32 candidates
        instead of a second pass over the rows (any float32 sum: the bounds hold for every
        order of summation)."""
        metric, d = self.metric, self.dims
        fold = self.fold
        if fold:
            if self._row_buffer is None or len(self._row_buffer) < len(raw):
                self._row_buffer = np.empty((len(raw), d + 1), self.dtype)
            out = self._row_buffer[:len(raw)]
            rows = out[:, :d]
        if metric == "hamming":
            bits = np.unpackbits(raw, axis=1, count=d, bitorder="little")
            if fold:
                rows[...] = bits
            else:
                rows = bits.astype(self.dtype)
            half = rows.sum(axis=1) * self.dtype.type(0.5)
            if fold:
                np.negative(half, out=out[:, d])
                return out, None
            return rows, half
        if fold:
            rows[...] = raw
        else:
            rows = np.ascontiguousarray(raw if raw.dtype == self.dtype else raw.astype(self.dtype))
        norm2 = norms if norms is not None and self.f32 else np.einsum("ij,ij->i", rows, rows)
        top = float(norm2.max())
        if not math.isfinite(top) and raw.dtype.kind == "f" and not np.isfinite(raw).all():
            raise UsageError("vectors must be finite (a row has a NaN or an infinite component)")
        if self.f32 and not top <= _F32_ROW_NORM2_MAX:
            raise _Fallback
        if metric == "cosine":
            small = norm2 < (_F32_ROW_NORM2_MIN if self.f32 else 0.0)
            if small.any() and np.any(rows[small] != 0):
                raise _Fallback  # a nonzero row too small to normalise in float32
            inverse_norm = np.zeros(len(norm2))
            positive = norm2 > 0
            inverse_norm[positive] = 1.0 / np.sqrt(norm2[positive].astype(np.float64))
            return rows * inverse_norm.astype(self.dtype)[:, None], None
        bound = math.sqrt((top + d * self.smallest_subnormal) / (1 - _gamma(d, self.unit_roundoff))) * (1 + 2 ** -40)
        if bound > self.max_norm:
            self.max_norm = bound
            self._update_margin()
        if metric != "l2":
            return rows, None
        if fold:
            np.multiply(norm2, self.dtype.type(-0.5), out=out[:, d])
            return out, None
        if self._half_buffer is None or len(self._half_buffer) < len(norm2):
            self._half_buffer = np.empty(len(norm2), self.dtype)
        half = self._half_buffer[:len(norm2)]  # not in place: `norms` is the file's
        np.multiply(norm2, self.dtype.type(0.5), out=half)
        return rows, half

    def _scores(self, rows: int, tile: int) -> np.ndarray:
        """A (rows, tile) score buffer, kept between blocks (no fresh pages every block)."""
        buf = self._score_buffers.get(tile)
        if buf is None or len(buf) < rows:
            buf = self._score_buffers[tile] = np.empty((rows, tile), self.dtype)
        return buf[:rows]

    def feed(self, raw: np.ndarray, ids: Callable[[np.ndarray], np.ndarray], source: int,
             norms: np.ndarray | None = None) -> None:
        """One block of rows (the element type's numpy array); ids(rows) gives their ids.

        Scores are (rows, queries); their maxima over segments of SEGMENT rows say which
        (segment, query) pairs can hold a row above the query's threshold: only those are
        looked at, first to update the queries' k best scores (so the thresholds), then to
        take the rows still above the new thresholds."""
        if not len(raw):
            return
        if self.first_block and len(raw) > FIRST_BLOCK_ROWS:
            self._feed_first(raw, ids, source, norms)
            return
        self.first_block = False
        rows, subtract = self._compute_block(raw, norms)
        for tile_start in range(0, self.nq, self.query_tile):
            tile_end = min(self.nq, tile_start + self.query_tile)
            segments = self._tile_scores(rows, subtract, tile_start, tile_end)
            if tile_end - tile_start == 1:
                self._feed_one(segments.reshape(-1)[:len(raw)], tile_start, raw, ids, source)
                continue
            live = self._live_segments(segments, tile_start, tile_end)
            if live is None:
                continue
            self._raise_best_scores(live)
            self._take_survivors(live, len(raw), raw, ids, source)

    def _feed_first(self, raw: np.ndarray, ids: Callable[[np.ndarray], np.ndarray], source: int,
                    norms: np.ndarray | None) -> None:
        """The first block of a few queries' search, its first FIRST_BLOCK_ROWS rows alone:
        every row of a search's first block is above the thresholds (nothing seen yet), and
        choosing the k best of a few thousand rows instead of a block's tens of thousands
        is most of what one query spends on a block besides its scores."""
        head = FIRST_BLOCK_ROWS
        self.feed(raw[:head], ids, source, None if norms is None else norms[:head])
        self.feed(raw[head:], lambda r: ids(r + head), source, None if norms is None else norms[head:])

    def _tile_scores(self, rows: np.ndarray, subtract: np.ndarray | None, tile_start: int,
                     tile_end: int) -> np.ndarray:
        """The block's scores for the queries of one tile, (segments, SEGMENT, queries); the
        rows past the block's end score -inf."""
        n, tile = len(rows), tile_end - tile_start
        segment_count = -(-n // SEGMENT)
        scores = self._scores(segment_count * SEGMENT, tile)
        if self.blas:
            np.matmul(rows, self.query_matrix[tile_start:tile_end].T, out=scores[:n])
        elif tile == 1:  # few queries: einsum (OpenBLAS's gemv is slower on these shapes)
            np.einsum("ij,j->i", rows, self.query_matrix[tile_start], out=scores[:n, 0])
        else:
            np.einsum("ij,kj->ik", rows, self.query_matrix[tile_start:tile_end], out=scores[:n])
        if subtract is not None:
            scores[:n] -= subtract[:, None]
        scores[n:] = -np.inf
        return scores.reshape(segment_count, SEGMENT, tile)

    def _feed_one(self, scores: np.ndarray, query: int, raw: np.ndarray, ids: Callable[[np.ndarray], np.ndarray],
                  source: int) -> None:
        """A tile of one query, its block's scores (rows,): the rows at or above the
        threshold are found by one comparison of the scores, without segments (their
        maxima, a reduction per 64 values, cost a one-query search more than the rest of
        its selection). The same rows are taken as through segments: a score below the
        old threshold is below the k-th best score kept, so it can not change it. Its k
        best scores and threshold are raised as _raise_best_scores and _update_thresholds
        do, for one query without their fancy indexing."""
        threshold = self.threshold[query]
        if not scores.max() >= threshold:
            return
        hits = np.flatnonzero(scores >= threshold)
        values = scores[hits]
        merged = np.concatenate([self.best_scores[query], values])
        cut = len(merged) - self.k
        top = np.partition(merged, cut)[cut:]
        self.best_scores[query] = top
        self.kth_score[query] = top[0]  # the partition's pivot: the k-th best
        threshold = self.dtype.type(self.kth_score[query] - 2 * self.margin[query])  # _update_thresholds
        self.threshold[query] = threshold = np.nextafter(threshold, self.dtype.type(-np.inf))
        keep = hits[values >= threshold]
        if len(keep):
            self._add(np.full(len(keep), query, np.int64), keep, raw, ids, source)

    def _live_segments(self, segments: np.ndarray, tile_start: int, tile_end: int) -> "_Live | None":
        """The (segment, query) pairs whose best score reaches the query's threshold, grouped
        by query; None when there are none (tiles of one query: _feed_one)."""
        segment, query = np.nonzero(segments.max(axis=1) >= self.threshold[tile_start:tile_end])
        if not len(segment):
            return None
        if np.bincount(query, minlength=tile_end - tile_start).max() == 1:  # the usual case: one each
            return _Live(segments[segment, :, query][:, None, :], segment[:, None], query + tile_start)
        order = np.argsort(query, kind="stable")
        segment, query = segment[order], query[order]
        starts = np.empty(len(query), bool)
        starts[0] = True
        np.not_equal(query[1:], query[:-1], out=starts[1:])
        first = np.flatnonzero(starts)
        group = np.cumsum(starts) - 1
        slot = np.arange(len(query)) - first[group]
        width = int(slot.max()) + 1
        values = np.empty((len(first), width, SEGMENT), self.dtype)
        values.fill(-np.inf)
        values[group, slot] = segments[segment, :, query]
        where = np.empty((len(first), width), np.int64)
        where.fill(-1)
        where[group, slot] = segment
        return _Live(values, where, query[first] + tile_start)

    def _raise_best_scores(self, live: "_Live") -> None:
        """The live queries' k best scores: the block's best k of each merged with the k so
        far; then their k-th best score and threshold."""
        k = self.k
        flat = live.values.reshape(len(live.queries), -1)
        if flat.shape[1] > 8 * k:
            cut = flat.shape[1] - k
            flat = np.partition(flat, cut, axis=1)[:, cut:]
        merged = np.concatenate([self.best_scores[live.queries], flat], axis=1)
        cut = merged.shape[1] - k
        top = np.partition(merged, cut, axis=1)[:, cut:]
        self.best_scores[live.queries] = top
        self.kth_score[live.queries] = top[:, 0]  # the partition's pivot: the k-th best
        self._update_thresholds(live.queries)

    def _take_survivors(self, live: "_Live", n: int, raw: np.ndarray, ids: Callable[[np.ndarray], np.ndarray],
                        source: int) -> None:
        """The rows still above the new thresholds become candidates, a bounded number of
        score values at a time (when everything ties, every value is one)."""
        queries = live.queries
        width = live.values.shape[1]
        per = max(1, HIT_CHUNK // (width * SEGMENT))
        for start in range(0, len(queries), per):
            chunk = live.values[start:start + per]
            group, slot, offset = np.nonzero(chunk >= self.threshold[queries[start:start + per]][:, None, None])
            group += start
            segment = live.where[group, slot]
            rows = segment * SEGMENT + offset
            keep = (segment >= 0) & (rows < n)
            if not keep.all():
                group, rows = group[keep], rows[keep]
            if len(group):
                self._add(queries[group], rows, raw, ids, source)

    def _add(self, qrows: np.ndarray, xrows: np.ndarray, raw: np.ndarray,
             ids: Callable[[np.ndarray], np.ndarray], source: int) -> None:
        """Candidates: their rows are copied out of the block now, their float64 distances
        computed a chunk of pairs at a time (`_flush`)."""
        step = max(1, PAIR_CHUNK_ELEMENTS // max(1, raw.shape[1]))
        for s in range(0, len(qrows), step):
            xr = xrows[s:s + step]
            self.pending.append((qrows[s:s + step], raw[xr], ids(xr), source))
            self.pending_size += len(xr)
            if self.pending_size >= step:
                self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        pending, self.pending, self.pending_size = self.pending, [], 0
        qrows = np.concatenate([p[0] for p in pending])
        rows = np.concatenate([p[1] for p in pending])
        ids = np.concatenate([p[2] for p in pending])
        sources = np.concatenate([np.full(len(p[0]), p[3], np.int32) for p in pending])
        step = max(1, PAIR_CHUNK_ELEMENTS // max(1, rows.shape[1]))
        for s in range(0, len(qrows), step):
            qr = qrows[s:s + step]
            d = pair_distances(self.queries[qr], rows[s:s + step], self.metric, self.dims)
            self.pool.append((qr.astype(np.int64), d, _id_key(ids[s:s + step]), sources[s:s + step]))
            self.pool_size += len(qr)
            if self.pool_size > self.pool_cap:
                self._compact()

    def _compact(self) -> None:
        """Keep only the best k candidates of every query by (distance, id, source), sorted
        by query then rank (a row that is not among its pool's best k can not be among the
        final best k)."""
        qr, d, idk, src = (np.concatenate(parts) for parts in zip(*self.pool))
        order = np.lexsort((src, idk, _sort_key(d, self.metric), qr))
        qs = qr[order]
        keep = order[np.arange(len(qs)) - np.searchsorted(qs, qs, side="left") < self.k]
        self.pool = [(qr[keep], d[keep], idk[keep], src[keep])]
        self.pool_size = len(keep)

    def result(self) -> SearchResult:
        self._flush()
        result = _empty_result(self.nq, self.k, self.metric)
        if not self.pool_size:
            return result
        self._compact()
        qr, d, idk, src = self.pool[0]
        rank = np.arange(len(qr)) - np.searchsorted(qr, qr, side="left")
        result.ids[qr, rank] = idk.astype(np.int64)
        result.distances[qr, rank] = d
        result.sources[qr, rank] = src
        return result


# --- threads ------------------------------------------------------------------------------------------

_CONTROLLER: list = []  # [threadpoolctl.ThreadpoolController or None], made on first use


def _blas_controller():
    """threadpoolctl's controller of the BLAS libraries loaded, or None without it."""
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER.append(ThreadpoolController())
        except Exception:  # noqa: BLE001 - not installed, or it could not inspect this process
            _CONTROLLER.append(None)
    return _CONTROLLER[0]


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _plan_threads(nq: int, dims: int, total: int) -> tuple[int, object | None]:
    """(worker threads, BLAS controller to hold at one thread each, or None). Each worker
    runs its own engine over its share of the blocks, its BLAS calls single-threaded: the
    selection work runs in parallel too, and no BLAS thread spins at a barrier while the
    machine is busy. Without threadpoolctl, searches that use BLAS keep one worker (and
    BLAS's own threads); the few-query path (einsum, no BLAS) always may use more."""
    workers = min(_cpus(), MAX_WORKERS)
    if workers < 2 or total * max(dims, 1) < PARALLEL_MIN_ELEMENTS or total < 2 * SEGMENT:
        return 1, None
    if nq <= SMALL_BATCH:
        return workers, None
    controller = _blas_controller()
    if controller is None:
        return 1, None
    blas = [lib["num_threads"] for lib in controller.info() if lib.get("user_api") == "blas"]
    workers = min(workers, max(blas, default=1))
    return (workers, controller) if workers > 1 else (1, None)


def _search(q: np.ndarray, dims: int, metric: str, k: int, compute,
            stream: Callable[[int], Iterator[tuple[np.ndarray, Callable, int]]], batch_rows: int | None,
            threads: tuple[int, object | None], views: np.dtype | None) -> SearchResult:
    first = _Engine(q, dims, metric, k, compute, views)
    blocks = stream(batch_rows or first.block_rows)
    workers, controller = threads
    if workers == 1:
        for item in blocks:
            first.feed(*item)
        return first.result()
    engines = [first] + [_Engine(q, dims, metric, k, compute, views) for _ in range(workers - 1)]
    lock, stop, errors = threading.Lock(), threading.Event(), []

    def work(engine: _Engine) -> None:
        try:
            while not stop.is_set():
                with lock:
                    item = next(blocks, None)
                if item is None:
                    return
                engine.feed(*item)
        except BaseException as e:  # noqa: BLE001 - handed to the calling thread
            errors.append(e)
            stop.set()

    with controller.limit(limits=1, user_api="blas") if controller is not None else contextlib.nullcontext():
        pool = [threading.Thread(target=work, args=(engine,), daemon=True) for engine in engines[1:]]
        for thread in pool:
            thread.start()
        work(first)
        for thread in pool:
            thread.join()
    if errors:
        raise next((e for e in errors if isinstance(e, _Fallback)), errors[0])
    # Each engine holds its share's best k (and more): the best k of them all is the answer.
    for engine in engines:
        engine._flush()
    first.pool = [part for engine in engines for part in engine.pool]
    first.pool_size = sum(engine.pool_size for engine in engines)
    return first.result()


def _run(q: np.ndarray, dims: int, metric: str, k: int, total: int,
         stream: Callable[[int], Iterator[tuple[np.ndarray, Callable, int]]], batch_rows: int | None,
         views: np.dtype | None = None) -> SearchResult:
    """Run the engine over the stream (float32 candidates, float64 if they fall back);
    `total` rows in all: a k beyond it costs nothing but the padding of the result.
    `views`: the rows' numpy type when the stream's blocks are views, not copies."""
    result = _empty_result(len(q), k, metric)
    if not total or not len(q):
        return result
    threads = _plan_threads(len(q), dims, total)
    for compute in (np.float32, np.float64):
        try:
            found = _search(q, dims, metric, min(k, total), compute, stream, batch_rows, threads, views)
            break
        except _Fallback:
            continue
    else:
        raise AssertionError("float64 candidates can not fall back")
    width = found.k
    result.ids[:, :width], result.distances[:, :width], result.sources[:, :width] = \
        found.ids, found.distances, found.sources
    return result


# --- public entry points ---------------------------------------------------------------------------

def search_arrays(queries: np.ndarray, vectors: np.ndarray, ids: np.ndarray | None, k: int, metric: str, *,
                  element_type: int = V.ELEMENT_FLOAT32, dimensions: int | None = None) -> SearchResult:
    """Exact top k of in-memory vectors (n, dims) — binary: (n, row_bytes) packed bits — for
    queries (dims,) or (nq, dims). ids default to 0 .. n - 1. Binary `dimensions`: the bits
    of a packed row that count (default: the boolean queries' width, else every bit)."""
    k = check_k(k)
    check_metric(metric, element_type)
    x, dims = _prepare_vectors(vectors, element_type)
    if dimensions is None:
        dims = _array_dims(queries, dims, element_type)
    elif dims - dimensions not in (range(8) if element_type == V.ELEMENT_BINARY else (0,)):
        raise UsageError(f"{dimensions} dimensions do not fit vectors of {dims}")
    else:
        dims = dimensions
    q = prepare_queries(queries, dims, element_type)
    ids = _prepare_ids(ids, len(x))

    def stream(rows: int):
        for s in range(0, len(x), rows):
            yield x[s:s + rows], (lambda r, s=s: ids[r + s]), 0

    return _run(q, dims, metric, k, len(x), stream, None, x.dtype)


def search_files(queries: np.ndarray, files: Sequence, k: int, metric: str | None = None, *,
                 batch_rows: int | None = None, skip_damaged: bool = False) -> SearchResult:
    """Exact global top k over several vector files (VectorFile) of the same dimensions and
    element type; ties by the smaller id, then the smaller file index. metric None: the
    first file's default metric. A file with a damaged chunk is refused (CorruptionError),
    or with skip_damaged searched without that chunk's rows."""
    k = check_k(k)
    files = list(files)
    if not files:
        raise UsageError("no vector files to search")
    for f in files:
        f.require_intact(skip_damaged=skip_damaged, offer_skip=True)
    if batch_rows is not None and (isinstance(batch_rows, bool) or int(batch_rows) < 1):
        raise UsageError(f"batch_rows must be >= 1, not {batch_rows!r}")
    first = files[0].info
    for f in files[1:]:
        if (f.info.dimensions, f.info.element_type) != (first.dimensions, first.element_type):
            raise UsageError(f"{f.path or 'a file'} holds {f.info.dimensions}-dimensional {f.info.element_name} "
                             f"vectors; {files[0].path or 'the first'} holds {first.dimensions}-dimensional "
                             f"{first.element_name} ones: search files of one kind at a time")
    if metric is None:
        metric = first.metric_name
    check_metric(metric, first.element_type)
    q = prepare_queries(queries, first.dimensions, first.element_type)

    def stream(rows: int):
        for index, f in enumerate(files):
            ids = f.ids()
            norms = f.row_norms() if metric != "hamming" else None
            for start, block in f.iter_rows(rows):
                yield (block, (lambda r, start=start, ids=ids: ids[r + start]), index,
                       None if norms is None else norms[start:start + len(block)])

    views = first.numpy_type if all(f.mapped() for f in files) else None  # iter_rows slices the maps
    return _run(q, first.dimensions, metric, k, sum(f.info.count for f in files), stream,
                int(batch_rows) if batch_rows is not None else None, views)
