"""vexfs_tools.vectors.search: the exact engine equals the float64 brute-force reference on
every input, ties included (random data with planted ties, every metric and element type,
awkward dimensions, magnitudes that defeat float32), search_files over vector files in an
image, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest

from vexfs_tools.device import Device
from vexfs_tools.errors import UsageError
from vexfs_tools.format import constants as C
from vexfs_tools.format import vector as V
from vexfs_tools.mkfs.plan import MkfsOptions
from vexfs_tools.mkfs.run import run_mkfs
from vexfs_tools.vectors import search
from vexfs_tools.vectors.codec import METRIC_CODES, layout
from vexfs_tools.vectors.files import VectorFile
from vexfs_tools.vectors.search import SearchResult, reference_search, search_arrays, search_files
from vexfs_tools.vectors.store import VectorSource, add_vector_file
from vexfs_tools.volume import Volume
from vexfs_tools.volume.fileio import physical_runs

from .fragmented import add_fragmented_vector_file

F32, F16, I8, BIN = V.ELEMENT_FLOAT32, V.ELEMENT_FLOAT16, V.ELEMENT_INT8, V.ELEMENT_BINARY
NUMERIC = [(F32, "float32"), (F16, "float16"), (I8, "int8")]
KINDS = [(et, name, metric) for et, name in NUMERIC for metric in ("l2", "cosine", "dot")] + \
        [(BIN, "binary", "hamming")]
DTYPES = {F32: np.float32, F16: np.float16, I8: np.int8, BIN: np.uint8}


def assert_same(got: SearchResult, want: SearchResult, *, sources: np.ndarray | None = None) -> None:
    assert got.ids.shape == want.ids.shape and got.ids.dtype == np.int64
    assert got.distances.dtype == np.float64 and got.sources.dtype == np.int32
    assert (got.metric, got.k) == (want.metric, want.k)
    np.testing.assert_array_equal(got.ids, want.ids)
    # Bit for bit, NaN padding included.
    np.testing.assert_array_equal(got.distances.view(np.int64), want.distances.view(np.int64))
    np.testing.assert_array_equal(got.sources, want.sources if sources is None else sources)


# --- data with planted ties ------------------------------------------------------------------------

def make_vectors(rng: np.random.Generator, n: int, dims: int, et: int) -> np.ndarray:
    """Rows of the element type (binary: packed), with duplicates, small-integer rows (exact
    distance ties with integer queries), zero rows, and rows mirrored around a point."""
    if et == BIN:
        rb = -(-dims // 8)
        x = rng.integers(0, 256, (n, rb), dtype=np.uint8)
        if dims % 8:
            x[:, -1] &= (1 << (dims % 8)) - 1
    elif et == I8:
        x = rng.integers(-128, 128, (n, dims)).astype(np.int8)
        x[n // 3: n // 3 + n // 6] = rng.integers(-2, 3, (n // 6, dims))
    else:
        scale = 3.0 if et == F32 else 1.0
        x = (rng.standard_normal((n, dims)) * scale).astype(DTYPES[et])
        small = rng.integers(-2, 3, (n // 6, dims))
        x[n // 3: n // 3 + n // 6] = small
        half = n // 10
        if half and dims:
            # equal l2 distance from the integer point c: c + v and c - v.
            c = rng.integers(-2, 3, dims)
            v = rng.integers(-3, 4, (half, dims))
            x[-2 * half - 3:-half - 3] = c + v
            x[-half - 3:-3] = c - v
    dup = n // 8
    x[n // 2: n // 2 + dup] = x[:dup]  # the same vectors under other ids
    if n >= 3:
        x[-3:] = 0
    return x


def make_queries(rng: np.random.Generator, x: np.ndarray, dims: int, et: int, nq: int) -> np.ndarray:
    if et == BIN:
        rb = -(-dims // 8)
        q = rng.integers(0, 256, (nq, rb), dtype=np.uint8)  # padding bits set: ignored
        if len(x):
            q[: nq // 3] = x[rng.integers(0, len(x), nq // 3)]
        return q
    q = rng.standard_normal((nq, dims)) * 2
    q[nq // 3: 2 * nq // 3] = rng.integers(-2, 3, (2 * nq // 3 - nq // 3, dims))
    if len(x):
        q[: nq // 6] = x[rng.integers(0, len(x), nq // 6)]
    q[-1] = 0  # a zero query: every cosine is 0
    if et == I8:
        q[2 * nq // 3:] = rng.integers(-128, 128, (nq - 2 * nq // 3, dims))
    return q.astype(np.float32) if et == F32 else q


def make_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(10 ** 12, size=n, replace=False).astype(np.uint64)


@pytest.fixture(params=["one-block", "small-blocks", "threads"])
def blocks(request, monkeypatch):
    """small-blocks: blocks of 8 segments of 8 rows, a tiny candidate pool and query tiles of
    3, so running thresholds, margins growing block by block, skipped and live segments,
    tiling and pool compaction all run. threads: the same on two worker threads sharing the
    blocks (each with its own engine; their candidates merged)."""
    if request.param == "threads":
        monkeypatch.setattr(search, "PARALLEL_MIN_ELEMENTS", 0)
        monkeypatch.setattr(search, "_cpus", lambda: 2)
    if request.param in ("small-blocks", "threads"):
        monkeypatch.setattr(search, "SCORE_BLOCK_BYTES", 1)
        monkeypatch.setattr(search, "POOL_MIN_CAP", 16)
        monkeypatch.setattr(search, "QUERY_TILE", 3)
        monkeypatch.setattr(search, "PAIR_CHUNK_ELEMENTS", 1000)
        monkeypatch.setattr(search, "SEGMENT", 8)
        monkeypatch.setattr(search, "HIT_CHUNK", 50)
    return request.param


# --- search_arrays equals the reference ---------------------------------------------------------------

@pytest.mark.parametrize("dims", [1, 2, 3, 127, 128])
@pytest.mark.parametrize("et,name,metric", KINDS, ids=[f"{n}-{m}" for _, n, m in KINDS])
def test_matches_reference(et, name, metric, dims, blocks):
    rng = np.random.default_rng([et, dims, len(metric)])
    n = 300
    x = make_vectors(rng, n, dims, et)
    ids = make_ids(rng, n)
    q = make_queries(rng, x, dims, et, 13)
    for k in (1, 7, n + 5):
        want = reference_search(q, x, ids, k, metric, element_type=et)
        assert_same(search_arrays(q, x, ids, k, metric, element_type=et), want)
        # one query and a few (einsum instead of BLAS)
        for pick in ([4], [0, 6, 12]):
            sub = SearchResult(want.ids[pick], want.distances[pick], want.sources[pick], metric, k)
            assert_same(search_arrays(q[pick], x, ids, k, metric, element_type=et), sub)
        assert_same(search_arrays(q[4], x, ids, k, metric, element_type=et),
                    SearchResult(want.ids[[4]], want.distances[[4]], want.sources[[4]], metric, k))
    # k > n: n answers, then -1 and NaN
    got = search_arrays(q, x, ids, n + 5, metric, element_type=et)
    assert (got.ids[:, :n] >= 0).all() and (got.ids[:, n:] == -1).all()
    assert np.isnan(got.distances[:, n:]).all() and (got.sources[:, n:] == -1).all()
    assert (got.sources[:, :n] == 0).all()


@pytest.mark.parametrize("et,name,metric", KINDS, ids=[f"{n}-{m}" for _, n, m in KINDS])
def test_4096_dimensions(et, name, metric, blocks):
    rng = np.random.default_rng([4096, et, len(metric)])
    x = make_vectors(rng, 40, 4096, et)
    q = make_queries(rng, x, 4096, et, 6)
    for k in (1, 5, 45):
        assert_same(search_arrays(q, x, None, k, metric, element_type=et),
                    reference_search(q, x, None, k, metric, element_type=et))


@pytest.mark.parametrize("et,name,metric", KINDS, ids=[f"{n}-{m}" for _, n, m in KINDS])
def test_many_ties(et, name, metric, blocks):
    """Few distinct vectors, many ids: nearly every distance ties; ids decide."""
    rng = np.random.default_rng([7, et, len(metric)])
    base = make_vectors(rng, 12, 5, et)
    x = base[rng.integers(0, len(base), 500)]
    ids = make_ids(rng, 500)
    q = make_queries(rng, base, 5, et, 9)
    for k in (1, 3, 40, 600):
        assert_same(search_arrays(q, x, ids, k, metric, element_type=et),
                    reference_search(q, x, ids, k, metric, element_type=et))


@pytest.mark.parametrize("metric", ["l2", "cosine", "dot"])
def test_float32_can_not_separate(metric, blocks):
    """Vectors far from the origin that differ in their last bits: float32 scores can not
    tell them apart; float64 distances can, and decide."""
    rng = np.random.default_rng(11)
    center = np.float32(1000.0)
    ulp = np.spacing(center)
    x = (center + ulp * rng.integers(-20, 21, (400, 16))).astype(np.float32)
    x[200:] = x[:200]
    q = (center + ulp * rng.integers(-20, 21, (10, 16))).astype(np.float64)
    q[5:] += rng.standard_normal((5, 16)) * 1e-6
    for k in (1, 10, 250):
        assert_same(search_arrays(q, x, None, k, metric), reference_search(q, x, None, k, metric))


@pytest.mark.parametrize("metric", ["l2", "cosine", "dot"])
@pytest.mark.parametrize("scale", [1e30, 1e-30, 1e-44, 3e38])
def test_extreme_magnitudes(metric, scale, blocks):
    """Norms that overflow or underflow float32 (the candidate stage switches to float64)
    and subnormal components."""
    rng = np.random.default_rng(int(np.log10(scale)) + 100)
    x = (rng.standard_normal((200, 7)) * scale / 3).astype(np.float32)
    x[50:60] = x[:10]
    x[-1] = 0
    if scale < 1:  # a few ordinary rows mixed in
        x[100:103] = rng.standard_normal((3, 7))
    q = (rng.standard_normal((8, 7)) * min(scale, 1e30)).astype(np.float32).astype(np.float64)
    q[0] = x[3]
    for k in (1, 6, 201):
        assert_same(search_arrays(q, x, None, k, metric), reference_search(q, x, None, k, metric))


@pytest.mark.parametrize("metric", ["l2", "cosine", "dot"])
@pytest.mark.parametrize("qscale", [1e-42, 1e-160, 1e-20, 1e25, 1e37])
def test_extreme_queries(metric, qscale, blocks):
    """Queries with subnormal float32 components, components whose squares underflow even in
    float64, and huge ones; against ordinary and huge vectors."""
    rng = np.random.default_rng(int(np.log10(qscale)) + 400)
    for xscale in (1.0, 1e20):
        x = (rng.standard_normal((150, 9)) * xscale).astype(np.float32)
        x[70:80] = x[:10]
        q = rng.standard_normal((7, 9)) * qscale
        q[1, :4] = 0
        q[2] = q[2] * np.logspace(0, -8, 9)
        for k in (1, 5, 160):
            assert_same(search_arrays(q, x, None, k, metric), reference_search(q, x, None, k, metric))


def test_huge_k_costs_no_memory():
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    got = search_arrays(np.zeros((3, 2)), x, None, 2_000_000, "l2")
    assert got.ids.shape == (3, 2_000_000) and (got.ids[:, :5] == np.arange(5)).all()
    assert (got.ids[:, 5:] == -1).all()


def test_cosine_zero_vectors():
    """A zero vector has cosine 0 with everything (distance 1), and so does a zero query."""
    x = np.array([[0, 0], [1, 0], [-1, 0], [0, 0], [0, 2]], np.float32)
    ids = np.array([50, 40, 30, 20, 10], np.uint64)
    got = search_arrays(np.array([[1.0, 0.0], [0.0, 0.0]]), x, ids, 5, "cosine")
    assert got.ids.tolist() == [[40, 10, 20, 50, 30], [10, 20, 30, 40, 50]]
    assert got.distances.tolist() == [[0.0, 1.0, 1.0, 1.0, 2.0], [1.0] * 5]


def test_dot_larger_is_nearer_with_negatives():
    x = np.array([[-3, 1], [2, 2], [-1, -5], [2, 2], [0, 0]], np.float32)
    got = search_arrays(np.array([-1.0, 0.5]), x, None, 5, "dot")
    assert got.ids.tolist() == [[0, 4, 1, 3, 2]]
    assert got.distances.tolist() == [[3.5, 0.0, -1.0, -1.0, -1.5]]


def test_l2_is_squared_and_hamming_counts_bits():
    got = search_arrays(np.array([0.0, 0.0]), np.array([[3, 4], [1, 1]], np.float32), None, 2, "l2")
    assert got.distances.tolist() == [[2.0, 25.0]] and got.ids.tolist() == [[1, 0]]
    bits = np.array([[1, 0, 1, 1, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]], bool)
    packed = np.packbits(bits, axis=1, bitorder="little")
    q = np.zeros(10, bool)
    q[0] = True
    got = search_arrays(q, packed, None, 2, "hamming", element_type=BIN)
    assert got.ids.tolist() == [[1, 0]] and got.distances.tolist() == [[1.0, 4.0]]


def test_single_query_and_empty_sets():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 4)).astype(np.float32)
    one = search_arrays(x[7].astype(np.float64), x, None, 3, "l2")
    assert one.ids.shape == (1, 3) and one.ids[0, 0] == 7 and one.distances[0, 0] == 0.0
    assert_same(one, reference_search(x[7], x, None, 3, "l2"))
    for et, metric in [(F32, "l2"), (F16, "cosine"), (I8, "dot"), (BIN, "hamming")]:
        width = 1 if et == BIN else 4
        empty = np.zeros((0, width), DTYPES[et])
        queries = np.zeros((2, width), np.uint8 if et == BIN else np.float64)
        got = search_arrays(queries, empty, None, 3, metric, element_type=et)
        assert (got.ids == -1).all() and np.isnan(got.distances).all() and (got.sources == -1).all()
        assert got.ids.shape == (2, 3)
        assert_same(got, reference_search(queries, empty, None, 3, metric, element_type=et))


def test_ids_beyond_int64():
    """u64 ids order as unsigned numbers; those above 2^63 - 1 come out as their int64 view."""
    x = np.zeros((3, 2), np.float32)
    ids = np.array([2 ** 64 - 1, 5, 2 ** 63], np.uint64)
    got = search_arrays(np.zeros(2), x, ids, 3, "l2")
    assert got.ids.view(np.uint64).tolist() == [[5, 2 ** 63, 2 ** 64 - 1]]


# --- search_files: vector files in an image ------------------------------------------------------------

def image_with(tmp_path, files: dict[str, tuple[np.ndarray, np.ndarray | None, int, str, int]], *,
               fragmented: bool = False) -> str:
    """An image holding `files`, each one run of blocks (as `vexfs vectors add` writes
    them) or, with fragmented, many runs with holes (tests/vectors/fragmented.py)."""
    image = str(tmp_path / "vectors.img")
    run_mkfs(image, MkfsOptions(), size=64 << 20)
    with Volume.open(image, writable=True) as volume:
        for path, (array, ids, et, metric, dims) in files.items():
            source = VectorSource(array, ids, et, dims, METRIC_CODES[metric],
                                  layout(dims, et, len(array))[3])
            (add_fragmented_vector_file if fragmented else add_vector_file)(volume, path, source)
    return image


def open_files(volume, paths):
    return [VectorFile.open(volume, volume.resolve(p), p) for p in paths]


@pytest.fixture(params=["mapped", "read", "fragmented"])
def mapping(request, monkeypatch):
    """mapped: each file one run of blocks, memory-mapped; read: one run, but the device
    refuses to map it (vector data and ids read at the run's offset); fragmented: files
    written as many runs with holes, so nothing can be mapped and every read follows the
    block map."""
    if request.param == "read":
        monkeypatch.setattr(Device, "map_readonly", lambda *a: None)
    return request.param


def check_layout(volume, files, mapping: str) -> int:
    """The files are laid out as `mapping` says, and the memory map is taken exactly when
    a range (the vector data, the ids) is one run: fragmented, every range of more than one
    block is split. Returns how many ranges are split."""
    split = 0
    for f in files:
        info = f.info
        runs = physical_runs(volume, f.inode)
        if mapping == "fragmented":
            assert all(count == 1 for _, _, count in runs)  # no two blocks side by side
        else:
            assert len(runs) == 1
        for offset, length in ((info.data_offset, info.data_bytes), (info.ids_offset, info.ids_bytes)):
            blocks = -(-(offset + length) // C.BLOCK_SIZE) - offset // C.BLOCK_SIZE if length else 0
            one_run = mapping != "fragmented" or blocks == 1
            split += not one_run and length > 0
            assert (f.contents.device_offset(offset, length) is not None) == (one_run and length > 0)
            mapped = f.contents.map_readonly(offset, length)
            assert (mapped is not None) == (one_run and length > 0 and mapping != "read")
    return split


@pytest.mark.parametrize("et,name,metric", KINDS, ids=[f"{n}-{m}" for _, n, m in KINDS])
def test_files_equal_reference_over_concatenation(tmp_path, et, name, metric, mapping):
    rng = np.random.default_rng([5, et, len(metric)])
    dims = 37
    a, b = make_vectors(rng, 700, dims, et), make_vectors(rng, 333, dims, et)
    b[:40] = a[100:140]  # the same vectors in both files...
    ids_a, ids_b = make_ids(rng, 700), make_ids(rng, 333)
    ids_b[:20] = ids_a[100:120]  # ...some under the same ids: the file index decides
    image = image_with(tmp_path, {"/a.vec": (a, ids_a, et, metric, dims),
                                  "/b.vec": (b, ids_b, et, metric, dims)}, fragmented=mapping == "fragmented")
    q = make_queries(rng, np.concatenate([a, b]), dims, et, 11)
    # The reference over the concatenation orders ties by (id, file) when ids become 2 id + file.
    both = np.concatenate([a, b])
    keyed = np.concatenate([ids_a * 2, ids_b * 2 + 1])
    # Packed arrays do not say how many bits count: boolean queries tell the reference.
    ref_q = np.unpackbits(q, axis=1, count=dims, bitorder="little").astype(bool) if et == BIN else q
    with Volume.open(image) as volume:
        files = open_files(volume, ["/a.vec", "/b.vec"])
        assert check_layout(volume, files, mapping) >= (mapping == "fragmented")
        for k in (1, 10, 1100):
            want = reference_search(ref_q, both, keyed, k, metric, element_type=et)
            src = np.where(want.ids >= 0, want.ids % 2, -1).astype(np.int32)
            want.ids = np.where(want.ids >= 0, want.ids // 2, -1)
            for batch_rows in (None, 50):
                got = search_files(q, files, k, batch_rows=batch_rows)  # the files' metric
                assert_same(got, want, sources=src)
        # One file alone, and an explicit metric.
        assert_same(search_files(q, files[1:], 5, metric),
                    reference_search(ref_q, b, ids_b, 5, metric, element_type=et))


@pytest.mark.parametrize("metric", ["l2", "dot"])
def test_few_queries_scored_in_the_map_block_by_block(tmp_path, metric, monkeypatch):
    """Few float32 queries over a memory-mapped file score the map's own rows in blocks of
    VIEW_BLOCK_ROWS (64 here: thresholds rise block by block); read or converted rows keep
    the data block's size. The answers are the reference's."""
    monkeypatch.setattr(search, "VIEW_BLOCK_ROWS", 64)
    rng = np.random.default_rng(17)
    x, ids = make_vectors(rng, 1000, 16, F32), make_ids(rng, 1000)
    image = image_with(tmp_path, {"/a.vec": (x, ids, F32, metric, 16)})
    q1 = np.zeros((1, 16))
    assert search._Engine(q1, 16, metric, 7, np.float32, np.dtype(np.float32)).block_rows == 64
    assert search._Engine(q1, 16, metric, 7, np.float32, None).block_rows > 64
    assert search._Engine(q1, 16, metric, 7, np.float64, np.dtype(np.float32)).block_rows > 64
    with Volume.open(image) as volume:
        files = open_files(volume, ["/a.vec"])
        assert files[0].mapped()
        for nq in (1, 3):
            q = make_queries(rng, x, 16, F32, nq)
            assert_same(search_files(q, files, 7), reference_search(q, x, ids, 7, metric))
            assert_same(search_arrays(q, x, ids, 7, metric), reference_search(q, x, ids, 7, metric))


@pytest.mark.parametrize("et,name,metric", KINDS, ids=[f"{n}-{m}" for _, n, m in KINDS])
def test_first_block_scored_apart_and_one_query_without_segments(et, name, metric, monkeypatch):
    """Few queries score the first FIRST_BLOCK_ROWS rows of their first block alone (20
    here, not a whole number of segments), then the rest; one query's block is taken by
    comparing its scores whole (no segments). The answers, ties included, are the
    reference's, for k below, at and above the first rows."""
    monkeypatch.setattr(search, "FIRST_BLOCK_ROWS", 20)
    monkeypatch.setattr(search, "VIEW_BLOCK_ROWS", 128)
    rng = np.random.default_rng([et, 20])
    x, ids = make_vectors(rng, 700, 9, et), make_ids(rng, 700)
    for nq in (1, 3):
        q = make_queries(rng, x, 9, et, nq)
        for k in (1, 20, 45):
            want = reference_search(q, x, ids, k, metric, element_type=et)
            assert_same(search_arrays(q, x, ids, k, metric, element_type=et), want)


def test_files_with_an_empty_file(tmp_path, mapping):
    rng = np.random.default_rng(9)
    a = rng.standard_normal((30, 6)).astype(np.float32)
    image = image_with(tmp_path, {"/empty.vec": (np.zeros((0, 6), np.float32), None, F32, "l2", 6),
                                  "/a.vec": (a, None, F32, "l2", 6)}, fragmented=mapping == "fragmented")
    q = rng.standard_normal((4, 6))
    with Volume.open(image) as volume:
        empty, full = open_files(volume, ["/empty.vec", "/a.vec"])
        check_layout(volume, [empty, full], mapping)
        got = search_files(q, [empty], 3)
        assert (got.ids == -1).all() and np.isnan(got.distances).all()
        got = search_files(q, [empty, full], 40)
        assert (got.sources[:, :30] == 1).all() and (got.ids[:, 30:] == -1).all()
        assert_same(got, reference_search(q, a, None, 40, "l2"), sources=got.sources)


# --- refusals ------------------------------------------------------------------------------------

def test_refusals_of_arrays():
    x = np.zeros((5, 4), np.float32)
    q = np.zeros((2, 4))
    bits = np.zeros((5, 1), np.uint8)
    bad = [
        lambda: search_arrays(q, x, None, 0, "l2"),
        lambda: search_arrays(q, x, None, -3, "l2"),
        lambda: search_arrays(q, x, None, 1.5, "l2"),
        lambda: search_arrays(q, x, None, 3, "euclid"),
        lambda: search_arrays(q, x, None, 3, "hamming"),
        lambda: search_arrays(np.zeros((2, 1), np.uint8), bits, None, 3, "l2", element_type=BIN),
        lambda: search_arrays(np.zeros((2, 1), np.uint8), bits, None, 3, "dot", element_type=BIN),
        lambda: search_arrays(np.zeros((2, 3)), x, None, 3, "l2"),
        lambda: search_arrays(np.zeros((2, 2, 4)), x, None, 3, "l2"),
        lambda: search_arrays(np.full((1, 4), np.nan), x, None, 3, "l2"),
        lambda: search_arrays(np.full((1, 4), 1e300), x, None, 3, "l2"),
        lambda: search_arrays(q, np.full((5, 4), np.inf, np.float32), None, 3, "l2"),
        lambda: search_arrays(q, x, np.arange(4), 3, "l2"),
        lambda: search_arrays(np.zeros((2, 2), np.uint8), bits, None, 3, "hamming", element_type=BIN),
        lambda: reference_search(q, x, None, 0, "l2"),
        lambda: reference_search(q, np.full((5, 4), np.nan, np.float32), None, 3, "l2"),
    ]
    for call in bad:
        with pytest.raises(UsageError):
            call()


def test_refusals_of_files(tmp_path):
    rng = np.random.default_rng(1)
    f4 = rng.standard_normal((10, 4)).astype(np.float32)
    image = image_with(tmp_path, {
        "/f4.vec": (f4, None, F32, "l2", 4),
        "/f5.vec": (rng.standard_normal((10, 5)).astype(np.float32), None, F32, "l2", 5),
        "/h4.vec": (f4.astype(np.float16), None, F16, "l2", 4),
        "/b4.vec": (np.zeros((10, 1), np.uint8), None, BIN, "hamming", 4),
    })
    with Volume.open(image) as volume:
        f4v, f5v, h4v, b4v = open_files(volume, ["/f4.vec", "/f5.vec", "/h4.vec", "/b4.vec"])
        q = np.zeros((1, 4))
        bad = [
            lambda: search_files(q, [f4v, f5v], 3),
            lambda: search_files(q, [f4v, h4v], 3),
            lambda: search_files(q, [f4v, b4v], 3),
            lambda: search_files(np.zeros((1, 5)), [f4v], 3),
            lambda: search_files(q, [f4v], 3, "hamming"),
            lambda: search_files(np.zeros((1, 1), np.uint8), [b4v], 3, "l2"),
            lambda: search_files(q, [f4v], 0),
            lambda: search_files(q, [], 3),
            lambda: search_files(q, [f4v], 3, batch_rows=0),
        ]
        for call in bad:
            with pytest.raises(UsageError):
                call()
        # What is allowed: float16 files with float queries, binary with packed or bool queries.
        assert search_files(q, [h4v], 2).ids.shape == (1, 2)
        got = search_files(np.zeros((1, 4), bool), [b4v], 2)
        assert got.ids.tolist() == [[0, 1]] and got.distances.tolist() == [[0.0, 0.0]]
