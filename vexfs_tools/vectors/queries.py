"""What exact search (`vexfs search`) and the scoring of answers (`vexfs verify`) share, so
that both take the same inputs by the same rules: the metrics and the vectors each goes
with, the check of k, the preparation of queries, and the float64 distance of a pair — the
definition of every distance either reports (docs/FORMAT.md section 9)."""

from __future__ import annotations

import numpy as np

from ..errors import UsageError
from ..format import vector as V
from .codec import NUMPY_TYPES

METRICS = ("l2", "cosine", "dot", "hamming")
F32_MAX = float(np.finfo(np.float32).max)  # query components beyond this are refused
_POPCOUNT = np.array([i.bit_count() for i in range(256)], np.uint8)


def check_metric(metric: str, element_type: int) -> str:
    """The metric, if it exists and goes with the element type (hamming with binary
    vectors, the others with numeric ones)."""
    if metric not in METRICS:
        raise UsageError(f"unknown metric {metric!r} (l2, cosine, dot, hamming)")
    if element_type not in NUMPY_TYPES:
        raise UsageError(f"unknown element type {element_type}")
    binary = element_type == V.ELEMENT_BINARY
    if (metric == "hamming") != binary:
        raise UsageError(f"metric {metric} does not go with {'binary' if binary else 'numeric'} vectors")
    return metric


def check_k(k) -> int:
    """k as an int: a whole number (not a bool), at least 1."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise UsageError(f"k must be a whole number, at least 1, not {k!r}")
    return int(k)


def prepare_queries(queries, dimensions: int, element_type: int) -> np.ndarray:
    """Queries as the distance functions take them: float64 (nq, dims), or for binary
    vectors packed bits (nq, ceil(dims / 8)) uint8 with the bits past the last dimension
    cleared. One vector is one query. Refused: no queries, arrays of more dimensions,
    rows of the wrong width, components that are NaN, infinite or beyond float32."""
    q = np.asarray(queries)
    if q.ndim == 1:
        q = q.reshape(1, -1)
    if q.ndim != 2:
        raise UsageError(f"queries must be one vector or a 2-D array of them, not {q.ndim}-D")
    if not len(q):
        raise UsageError("there are no queries")
    if element_type == V.ELEMENT_BINARY:
        return _binary_queries(q, dimensions)
    return _numeric_queries(q, dimensions)


def _binary_queries(q: np.ndarray, dimensions: int) -> np.ndarray:
    """Bool rows or rows of 0s and 1s (dims a row), or packed bytes (uint8, least
    significant bit first, ceil(dims / 8) a row)."""
    packed_width = -(-dimensions // 8)
    bits = q.dtype.kind == "b" or (q.shape[1] == dimensions != packed_width and q.dtype.kind in "iuf"
                                   and np.isin(q, (0, 1)).all())
    if bits:
        if q.shape[1] != dimensions:
            raise UsageError(f"queries have {q.shape[1]} dimensions; the vectors have {dimensions}")
        packed = np.packbits(q.astype(bool), axis=1, bitorder="little")
    elif q.dtype == np.uint8 and q.shape[1] == packed_width:
        packed = q.copy()
    else:
        raise UsageError(f"queries for {dimensions}-bit binary vectors must be bool or 0/1 rows of "
                         f"{dimensions}, or packed bytes ({packed_width} a row)")
    if dimensions % 8:
        packed[:, -1] &= (1 << (dimensions % 8)) - 1
    return packed


def _numeric_queries(q: np.ndarray, dimensions: int) -> np.ndarray:
    if q.dtype.kind not in "iuf":
        raise UsageError(f"queries must be numbers, not {q.dtype}")
    if q.shape[1] != dimensions:
        raise UsageError(f"queries have {q.shape[1]} dimensions; the vectors have {dimensions}")
    q = np.ascontiguousarray(q, dtype=np.float64)
    bad = ~np.isfinite(q).all(axis=1)
    if bad.any():
        raise UsageError(f"query {int(np.flatnonzero(bad)[0])} has a NaN or infinite component")
    huge = (np.abs(q) > F32_MAX).any(axis=1)
    if huge.any():
        raise UsageError(f"query {int(np.flatnonzero(huge)[0])} has a component beyond the float32 range")
    return q


def pair_distances(queries: np.ndarray, rows: np.ndarray, metric: str, dimensions: int) -> np.ndarray:
    """Float64 distances of pairs: queries[i] with rows[i]. Numeric: queries float64 (P, d),
    rows any numeric (P, d); hamming: packed uint8 rows, bits past `dimensions` ignored. l2
    is the squared distance, cosine 1 - cos (0 for a zero vector), dot the inner product.

    Each value depends only on its own two rows (element-wise IEEE operations, then one
    reduction along a contiguous row), so the search engine, its reference and verify get
    the same bits whichever pairs they compute together."""
    if metric == "hamming":
        diff = np.bitwise_xor(queries, rows)
        if dimensions % 8:
            diff[:, -1] &= (1 << (dimensions % 8)) - 1
        return _POPCOUNT[diff].sum(axis=1, dtype=np.int64).astype(np.float64)
    rows = rows.astype(np.float64)
    if metric == "l2":
        diff = rows - queries
        return (diff * diff).sum(axis=1)
    dot = (rows * queries).sum(axis=1)
    if metric == "dot":
        return dot
    query_norms = np.sqrt((queries * queries).sum(axis=1))
    row_norms = np.sqrt((rows * rows).sum(axis=1))
    cos = np.zeros(len(dot))
    ok = (query_norms > 0) & (row_norms > 0)
    cos[ok] = dot[ok] / query_norms[ok] / row_norms[ok]
    return 1.0 - cos
