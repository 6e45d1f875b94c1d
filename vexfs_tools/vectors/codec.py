"""Encoding and decoding vector file contents (docs/FORMAT.md, "Vector files").

Layout of a vector file's bytes: the header (header_blocks * 4096 bytes: fixed fields, then
one crc32c per chunk of vector data), the vector data at data_offset (row after row,
row_bytes each), zero padding to a block boundary, then vector_count u64 ids at ids_offset.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from construct import Container

from ..errors import CorruptionError, UsageError
from ..format import constants as C
from ..format import vector as V
from ..volume.checksums import crc32c

CHUNK_SIZE = 1 << 20  # vector data bytes per checksum
SCAN_THREADS = 4  # threads that check and checksum rows before a write, at most
SCAN_THREAD_MIN_BYTES = 32 << 20  # rows per thread below which fewer threads are used
ID_DTYPE = V.VECTOR_ID_DTYPE
CHECKSUM_DTYPE = V.CHUNK_CHECKSUM_DTYPE

ELEMENT_NAMES = {V.ELEMENT_FLOAT32: "float32", V.ELEMENT_FLOAT16: "float16", V.ELEMENT_INT8: "int8",
                 V.ELEMENT_BINARY: "binary"}
NUMPY_TYPES = {V.ELEMENT_FLOAT32: np.dtype("<f4"), V.ELEMENT_FLOAT16: np.dtype("<f2"),
               V.ELEMENT_INT8: np.dtype("i1"), V.ELEMENT_BINARY: np.dtype("u1")}
METRIC_NAMES = {V.METRIC_L2: "l2", V.METRIC_COSINE: "cosine", V.METRIC_DOT: "dot", V.METRIC_HAMMING: "hamming"}
METRIC_CODES = {name: code for code, name in METRIC_NAMES.items()}


def row_bytes(dimensions: int, element_type: int) -> int:
    if element_type == V.ELEMENT_BINARY:
        return -(-dimensions // 8)
    return dimensions * NUMPY_TYPES[element_type].itemsize


def align(n: int) -> int:
    return -(-n // C.BLOCK_SIZE) * C.BLOCK_SIZE


@dataclass(frozen=True)
class VectorInfo:
    """A parsed, checked header."""

    dimensions: int
    element_type: int
    count: int
    metric: int
    row_bytes: int
    data_offset: int
    data_bytes: int
    ids_offset: int
    chunk_size: int
    chunk_checksums: tuple[int, ...]
    ids_checksum: int
    file_size: int
    header_bytes: int = 0
    flags: int = 0

    @property
    def ids_bytes(self) -> int:
        return ID_DTYPE.itemsize * self.count

    @property
    def copy_offset(self) -> int | None:
        """Where the header's copy starts (the first block boundary after the ids), or None
        for a file written without one."""
        if not self.flags & V.FLAG_HEADER_COPY:
            return None
        return align(self.ids_offset + self.ids_bytes)

    def rows_of_chunk(self, index: int) -> tuple[int, int]:
        """(first row, last row) that data chunk `index` holds bytes of."""
        start = index * self.chunk_size
        end = min(start + self.chunk_size, self.data_bytes)
        return start // self.row_bytes, min((end - 1) // self.row_bytes, self.count - 1)

    @property
    def element_name(self) -> str:
        return ELEMENT_NAMES[self.element_type]

    @property
    def metric_name(self) -> str:
        return METRIC_NAMES[self.metric]

    @property
    def numpy_type(self) -> np.dtype:
        return NUMPY_TYPES[self.element_type]


def layout(dimensions: int, element_type: int, count: int) -> tuple[int, int, int, int]:
    """(header bytes, data offset, ids offset, file size) for a new vector file: the file
    ends with the header's copy (FLAG_HEADER_COPY), at the first block boundary after the ids."""
    chunks = -(-count * row_bytes(dimensions, element_type) // CHUNK_SIZE)
    header = align(V.CHUNK_CHECKSUMS_OFFSET + CHECKSUM_DTYPE.itemsize * chunks)
    data_bytes = count * row_bytes(dimensions, element_type)
    ids_offset = header + align(data_bytes)
    return header, header, ids_offset, align(ids_offset + ID_DTYPE.itemsize * count) + header


CHECK_ROWS_BYTES = 4 << 20  # rows checked for finiteness at a time (memory stays bounded)


def check_vectors(vectors: np.ndarray, element_type: int, dimensions: int) -> None:
    """Refuse what can not be stored: wrong dimensions, NaN or infinite components. A
    bounded block of rows at a time: a row whose float32 sum is finite has only finite
    components (a NaN or infinity stays in the sum); a block where a sum is not finite
    (or overflowed) is looked at component by component."""
    if not V.MIN_DIMENSIONS <= dimensions <= V.MAX_DIMENSIONS:
        raise UsageError(f"{dimensions} dimensions is outside {V.MIN_DIMENSIONS}..{V.MAX_DIMENSIONS}")
    if vectors.dtype.kind != "f" or not vectors.size:
        return
    step = max(1, CHECK_ROWS_BYTES // max(1, vectors[:1].nbytes))
    for start in range(0, len(vectors), step):
        block = vectors[start:start + step]
        if np.isfinite(block.sum(axis=1, dtype=block.dtype)).all():
            continue
        bad = ~np.isfinite(block).all(axis=1)
        if bad.any():
            row = start + int(np.flatnonzero(bad)[0])
            raise UsageError(f"row {row} has a NaN or infinite component; vectors must be finite")


def _byte_pieces(parts: list[np.ndarray], piece: int) -> Iterator[memoryview]:
    """The rows of `parts`, one after the other, as flat byte views of at most `piece`
    bytes that never cross a multiple of `piece` of the whole stream (no copies)."""
    position = 0
    for raw in parts:
        start = 0
        while start < raw.size:
            n = min(raw.size - start, piece - position % piece)
            yield memoryview(raw[start:start + n])
            start += n
            position += n


def _chunk_checksums(parts: list[np.ndarray], finite: bool = False) -> list[int] | None:
    """crc32c of every CHUNK_SIZE bytes of the concatenated parts; with `finite` (float32
    rows), each piece is also checked for NaN and infinity while it is in the CPU's cache:
    one pass over the rows instead of two. None when a piece is not finite. Large inputs
    are shared out in runs of chunks to one thread per CPU (crc32c and BLAS let go of the
    GIL): the pass a writer makes before its first write takes a fraction of the time."""
    chunks = _chunk_views(parts)
    workers = min(_cpus(), SCAN_THREADS, max(1, len(chunks) * CHUNK_SIZE // SCAN_THREAD_MIN_BYTES))
    if workers < 2:
        return _sum_chunks(chunks, finite)
    step = -(-len(chunks) // workers)
    results: list[list[int] | None] = [None] * workers
    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            results[index] = _sum_chunks(chunks[index * step:(index + 1) * step], finite)
        except BaseException as e:  # noqa: BLE001 - raised again in the calling thread
            failures.append(e)

    threads = [threading.Thread(target=work, args=(index,), daemon=True) for index in range(1, workers)]
    for thread in threads:
        thread.start()
    work(0)
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    if any(result is None for result in results):
        return None
    return [value for result in results for value in result]


def _chunk_views(parts: list[np.ndarray]) -> list[list[memoryview]]:
    """The bytes of every CHUNK_SIZE chunk of the concatenated parts, as views (no copies)."""
    chunks: list[list[memoryview]] = [[]]
    filled = 0
    for view in _byte_pieces(parts, CHUNK_SIZE):
        chunks[-1].append(view)
        filled += len(view)
        if filled == CHUNK_SIZE:
            chunks.append([])
            filled = 0
    return chunks if chunks[-1] else chunks[:-1]


def _sum_chunks(chunks: list[list[memoryview]], finite: bool) -> list[int] | None:
    """crc32c of each chunk; None when `finite` and a float32 component is not finite."""
    zeros = np.zeros(CHUNK_SIZE // 4, np.float32) if finite else None
    checksums = []
    for views in chunks:
        value = 0
        for view in views:
            value = crc32c(view, value)
            if zeros is not None and not _finite_float32(view, zeros):
                return None
        checksums.append(value)
    return checksums


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def chunk_checksums(parts: list[np.ndarray]) -> list[int]:
    """crc32c of every CHUNK_SIZE bytes of the flat byte arrays `parts`, one after the other."""
    return _chunk_checksums(parts)


def _finite_float32(view: memoryview, zeros: np.ndarray) -> bool:
    """Are all float32 components of the bytes finite? Their dot product with zeros is 0
    exactly when they are (a NaN or an infinity times 0 is NaN, a finite one is 0: nothing
    can overflow), and BLAS computes it at memory speed."""
    values = np.frombuffer(view, np.float32)
    with np.errstate(invalid="ignore"):  # inf * 0: the NaN is the answer, not a warning
        return bool(np.isfinite(np.dot(values, zeros[:len(values)])))


def scan_rows(parts: list[np.ndarray], element_type: int, dimensions: int) -> list[int]:
    """Check rows for storing (as check_vectors) and return the crc32c of every chunk of
    their bytes, for rows about to be written: float32 rows are read once for both (the
    checksums are what `encode(checksums=...)` takes). A NaN or an infinity is named by
    its row, as check_vectors does."""
    dtype = NUMPY_TYPES[element_type]
    data = [np.ascontiguousarray(part, dtype=dtype).reshape(len(part), -1) for part in parts if len(part)]
    if element_type != V.ELEMENT_FLOAT32:
        for part in data or [np.zeros((0, row_bytes(dimensions, element_type)), dtype)]:
            check_vectors(part, element_type, dimensions)
        return _chunk_checksums([part.view(np.uint8).reshape(-1) for part in data])
    check_vectors(np.zeros((0, dimensions), dtype), element_type, dimensions)  # the dimensions' range
    checksums = _chunk_checksums([part.view(np.uint8).reshape(-1) for part in data], finite=True)
    if checksums is None:
        for part in data:
            check_vectors(part, element_type, dimensions)  # names the first row that is not finite
        raise UsageError("a row has a NaN or infinite component; vectors must be finite")
    return checksums


def encode(vectors, ids: np.ndarray | None, *, element_type: int, metric: int,
           dimensions: int | None = None, check: bool = True,
           checksums: list[int] | None = None) -> tuple[int, Iterator[bytes]]:
    """(file size, chunks of the file's bytes) for `vectors` (rows; binary: packed bytes),
    or a sequence of such arrays taken as their concatenation (`vectors add --append`
    streams the old rows and the new ones, never holding both). check=False: the caller
    has checked the rows (finite) and the ids (unique) already. The chunks are views of
    the rows where they are contiguous: memory stays bounded by the header and the ids.
    `checksums`: the chunks' crc32c, computed already (scan_rows): the rows are not read
    again before they are written."""
    parts = list(vectors) if isinstance(vectors, (list, tuple)) else [vectors]
    count = sum(len(part) for part in parts)
    if dimensions is None:
        first = next((part for part in parts if len(part)), None)
        dimensions = first.shape[1] * (8 if element_type == V.ELEMENT_BINARY else 1) if first is not None else 1
    rb = row_bytes(dimensions, element_type)
    dtype = NUMPY_TYPES[element_type]
    data = [np.ascontiguousarray(part, dtype=dtype).reshape(len(part), -1) for part in parts if len(part)]
    if check:
        for part in data or [np.zeros((0, rb), dtype)]:
            check_vectors(part, element_type, dimensions)
    if ids is None:
        ids = np.arange(count, dtype=np.uint64)
    elif check:
        ids = np.ascontiguousarray(ids, dtype=ID_DTYPE)
        if len(ids) == count and len(np.unique(ids)) != count:
            raise UsageError("ids must be unique within a vector file")
    ids = np.ascontiguousarray(ids, dtype=ID_DTYPE)
    if len(ids) != count:
        raise UsageError(f"{len(ids)} ids for {count} vectors")
    raws = [part.view(np.uint8).reshape(-1) for part in data]
    data_bytes = sum(raw.size for raw in raws)
    if data_bytes != count * rb:
        raise UsageError(f"vectors are {data_bytes // max(count, 1)} bytes a row; {rb} expected for "
                         f"{dimensions} {ELEMENT_NAMES[element_type]} dimensions")
    header_bytes, data_offset, ids_offset, size = layout(dimensions, element_type, count)
    if checksums is None:
        checksums = _chunk_checksums(raws)
    elif len(checksums) != -(-data_bytes // CHUNK_SIZE):
        raise UsageError(f"internal error: {len(checksums)} checksums for {data_bytes} bytes of rows")
    header = Container(
        version=V.VECTOR_VERSION, header_blocks=header_bytes // C.BLOCK_SIZE, flags=V.FLAG_HEADER_COPY,
        info=Container(dimensions=dimensions, element_type=element_type, vector_count=count,
                       storage_format=V.STORAGE_DENSE, data_offset=data_offset, index_offset=0,
                       compression_type=V.COMPRESSION_NONE, alignment_bytes=C.BLOCK_SIZE),
        default_metric=metric, row_bytes=rb, ids_offset=ids_offset, data_bytes=data_bytes,
        chunk_size=CHUNK_SIZE, chunk_count=len(checksums), ids_checksum=crc32c(ids),
        reserved=bytes(32), header_checksum=0)
    table = np.asarray(checksums, dtype=CHECKSUM_DTYPE).tobytes()
    block = bytearray((V.VectorHeader.build(header) + table).ljust(header_bytes, b"\0"))
    header.header_checksum = crc32c(bytes(block))
    block[:V.VECTOR_HEADER_FIXED] = V.VectorHeader.build(header)

    def chunks() -> Iterator[bytes]:
        yield bytes(block)
        yield from _byte_pieces(raws, 8 << 20)
        yield bytes(ids_offset - data_offset - data_bytes)
        yield memoryview(ids.view(np.uint8))
        ids_end = ids_offset + ids.nbytes
        yield bytes(align(ids_end) - ids_end)
        yield bytes(block)  # the header's copy

    return size, chunks()


def decode_header(head: bytes, file_size: int) -> VectorInfo:
    """Parse and check a header read from the start of a file (at least its first block;
    all header_blocks of it for the checksums). Hostile input: every size is checked
    against the file's size before anything is allocated."""
    if len(head) < V.VECTOR_HEADER_FIXED or head[:8] != V.VECTOR_MAGIC:
        raise CorruptionError("not a vector file (no VXVECTOR magic)")
    fixed = V.VectorHeader.parse(head[:V.VECTOR_HEADER_FIXED])
    info = fixed.info
    if fixed.version != V.VECTOR_VERSION:
        raise CorruptionError(f"vector file version {fixed.version} is not supported")
    if fixed.flags & ~V.KNOWN_FLAGS:
        raise CorruptionError(f"unknown header flags 0x{fixed.flags:x}")
    if info.element_type not in ELEMENT_NAMES:
        raise CorruptionError(f"unknown element type {info.element_type}")
    if fixed.default_metric not in METRIC_NAMES:
        raise CorruptionError(f"unknown metric {fixed.default_metric}")
    if not V.MIN_DIMENSIONS <= info.dimensions <= V.MAX_DIMENSIONS:
        raise CorruptionError(f"{info.dimensions} dimensions is out of range")
    if info.storage_format != V.STORAGE_DENSE or info.compression_type != V.COMPRESSION_NONE:
        raise CorruptionError("only dense, uncompressed vector files are supported")
    rb = row_bytes(info.dimensions, info.element_type)
    header_bytes = fixed.header_blocks * C.BLOCK_SIZE
    if fixed.row_bytes != rb or fixed.data_bytes != info.vector_count * rb:
        raise CorruptionError("row size or data size does not match dimensions and count")
    if info.data_offset != header_bytes or fixed.ids_offset != info.data_offset + align(fixed.data_bytes):
        raise CorruptionError("data or id offsets are not where the layout puts them")
    ids_end = fixed.ids_offset + ID_DTYPE.itemsize * info.vector_count
    if fixed.flags & V.FLAG_HEADER_COPY:
        ids_end = align(ids_end) + header_bytes
    if ids_end > file_size:
        raise CorruptionError(f"the header describes {ids_end} bytes; the file has {file_size}")
    chunks = -(-fixed.data_bytes // fixed.chunk_size) if fixed.chunk_size else -1
    if fixed.chunk_count != chunks or V.CHUNK_CHECKSUMS_OFFSET + CHECKSUM_DTYPE.itemsize * chunks > header_bytes:
        raise CorruptionError("the checksum table does not match the data size")
    if len(head) < header_bytes:
        raise CorruptionError("header truncated")
    block = bytearray(head[:header_bytes])
    start, size = V.HEADER_CHECKSUM_SPAN
    block[start:start + size] = bytes(size)
    if crc32c(bytes(block)) != fixed.header_checksum:
        raise CorruptionError("vector header checksum does not match")
    table = np.frombuffer(head, CHECKSUM_DTYPE, count=chunks, offset=V.CHUNK_CHECKSUMS_OFFSET)
    return VectorInfo(info.dimensions, info.element_type, info.vector_count, fixed.default_metric, rb,
                      info.data_offset, fixed.data_bytes, fixed.ids_offset, fixed.chunk_size,
                      tuple(int(x) for x in table), fixed.ids_checksum, file_size, header_bytes, fixed.flags)
