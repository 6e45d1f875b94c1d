"""Putting vector files into an image: from mkfs -d sources, and offline into an existing
image (`vexfs vectors add`)."""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import NoSpaceError, UsageError
from ..format import constants as C
from ..format import vector as V
from ..format import features as F
from ..volume.fileio import FileData
from ..volume.geometry import KERNEL
from ..volume.inodes import InodeRecord
from ..volume.volume import Volume, check_name
from . import sources
from .codec import CHUNK_SIZE, METRIC_CODES, check_vectors, chunk_checksums, encode, layout, scan_rows
from .files import VectorFile
from .queries import check_metric

WRITEBACK_BYTES = 32 << 20  # data written between two starts of its writeback to the disk
SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback of the range's dirty pages, no wait


@dataclass
class VectorSource:
    """A host array ready to become a vector file; `size` is the vector file's size."""

    array: np.ndarray
    ids: np.ndarray | None
    element_type: int
    dimensions: int
    metric: int
    size: int
    checked: bool = False  # rows finite and ids unique already checked (source_from_file)
    checksums: list[int] | None = None  # the chunks' crc32c, when known already (scan_rows)

    def chunks(self) -> Iterator[bytes]:
        return encode(self.array, self.ids, element_type=self.element_type, metric=self.metric,
                      dimensions=self.dimensions, check=not self.checked, checksums=self.checksums)[1]


def source_from_file(path: str, ids_path: str | None = None, metric: str | None = None, *,
                     dataset: str = "train") -> VectorSource:
    """Read (memory-mapped) and check a host vector file; ids from `ids_path` or 0..n-1.
    HDF5 (ann-benchmarks): the `dataset` (train), its metric from the "distance" attribute."""
    if sources.is_hdf5(path) and metric is None:
        metric = sources.hdf5_metric(path)
    array = sources.load_array(path, dataset)
    array, element_type, dims = sources.as_element_type(array, path)
    if metric is None:
        metric = "hamming" if element_type == V.ELEMENT_BINARY else "l2"
    check_metric(metric, element_type)
    try:
        checksums = scan_rows([array], element_type, dims)  # checked and summed in one read
    except UsageError as e:
        raise UsageError(f"{path}: {e}") from None
    ids = sources.load_ids(ids_path, len(array)) if ids_path else None
    if ids is not None and len(np.unique(ids)) != len(ids):
        raise UsageError(f"{ids_path}: ids must be unique")
    return VectorSource(array, ids, element_type, dims, METRIC_CODES[metric],
                        layout(dims, element_type, len(array))[3], checked=True, checksums=checksums)


def mkfs_vector_name(name: bytes) -> bytes | None:
    """mkfs -d's naming rule: NAME.vec.npy|.fvecs|.bvecs|.ivecs becomes the vector file
    NAME.vec; anything else is copied as it is (None)."""
    text = os.fsdecode(name)
    for suffix in sources.VECTOR_SOURCE_SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            return os.fsencode(text[:-len(suffix)] + ".vec")
    return None


def is_ids_companion(name: bytes, siblings: set[bytes]) -> bool:
    text = os.fsdecode(name)
    for suffix in sources.IDS_SUFFIXES:
        if text.endswith(suffix):
            base = text[:-len(suffix)]
            return any(os.fsencode(base + s) in siblings for s in sources.VECTOR_SOURCE_SUFFIXES)
    return False


def add_vector_file(volume: Volume, path: str, source: VectorSource, *, append: bool = False) -> int:
    """Create the vector file `path` (or, with append, add rows to the one there: the file is
    rewritten with old and new rows, ids concatenated and still unique). Returns its inode."""
    if volume.layout == KERNEL:
        raise UsageError("the kernel layout has no vector files (no inode flags); use the extended layout")
    parent_path, _, name = path.rstrip("/").rpartition("/")
    check_name(os.fsencode(name))  # before a byte is written
    parent = volume.resolve(parent_path or "/")
    existing = volume.lookup(parent, os.fsencode(name))
    if existing is not None:
        if not append:
            raise UsageError(f"{path} exists; use --append to add vectors to it")
        old = VectorFile.open(volume, volume.read_inode(existing), path)
        old.require_intact()  # never re-seal damaged rows under new checksums
        if (old.info.dimensions, old.info.element_type) != (source.dimensions, source.element_type):
            raise UsageError(f"{path} holds {old.info.dimensions}-dimensional {old.info.element_name} "
                             "vectors; the new ones differ")
        merged = _appended(old, source)
        # Crash-safe order: the new contents go to new blocks while the old ones are still
        # allocated; only then does the inode switch over and the old blocks get freed.
        inode = volume.read_inode(existing)
        old_fields = inode.fields.copy()
        old_fields.i_block = list(inode.fields.i_block)
        fields = inode.fields
        fields.i_block = [0] * C.DIRECT_BLOCKS
        fields.i_indirect = fields.i_double_indirect = fields.i_triple_indirect = 0
        fields.i_blocks = 0
        try:
            _write_stream(volume, fields, merged.size, merged.chunks())
        except NoSpaceError as e:
            raise NoSpaceError(f"appending to {path} writes a full new copy of it ({merged.size:,} bytes) "
                               f"before the old one is freed, and there is no room for it: {e}") from None
        volume.flush_metadata()
        volume.write_inode(existing, fields)
        volume.flush_metadata()
        volume.free_blocks_of(old_fields)
        volume.write_inode(existing, fields)
        _enable_feature(volume)
        return existing
    fields = volume.new_inode_fields(0o100644)
    fields.i_flags = C.INODE_FLAG_VECTOR
    ino = volume.allocate_inode()
    try:
        _write_stream(volume, fields, source.size, source.chunks())
        volume.add_entry(parent.ino, os.fsencode(name), ino, C.FT_REG_FILE)
    except BaseException:
        volume.free_blocks_of(fields)
        volume.release_inode(ino)
        raise
    volume.write_inode(ino, fields)
    _enable_feature(volume)
    return ino


def _appended(old: VectorFile, source: VectorSource) -> VectorSource:
    """The old file's rows (memory-mapped, or read) then the new ones, as one source that
    streams both: nothing holds the rows in anonymous memory. New ids default to the ones
    after the old largest; given ones must not repeat old ones."""
    old_ids = old.ids()
    count = len(source.array)
    if source.ids is None:
        start = int(old_ids.max()) + 1 if len(old_ids) else 0
        new_ids = np.arange(start, start + count, dtype=np.uint64)
        repeats = start + count > 1 << 64
    else:
        new_ids = np.asarray(source.ids, np.uint64)
        repeats = len(np.unique(new_ids)) != count or bool(np.isin(new_ids, old_ids).any())
    if repeats:
        raise UsageError("ids must stay unique within a vector file: the new ids repeat old ones")
    if not source.checked:
        check_vectors(np.asarray(source.array), source.element_type, source.dimensions)
    total = old.info.count + count
    parts = (old.vectors(), np.asarray(source.array))
    return VectorSource(parts, np.concatenate([old_ids, new_ids]),
                        source.element_type, source.dimensions, old.info.metric,
                        layout(source.dimensions, source.element_type, total)[3], checked=True,
                        checksums=_appended_checksums(old, parts))


def _appended_checksums(old: VectorFile, parts: tuple[np.ndarray, np.ndarray]) -> list[int] | None:
    """The merged rows' chunk checksums: the old file's whole chunks keep theirs (the
    caller proved them intact), so only its last partial chunk and the new rows are read
    for new ones. None (encode computes them all) when the old chunks are of another size."""
    info = old.info
    if info.chunk_size != CHUNK_SIZE:
        return None
    whole = info.data_bytes // CHUNK_SIZE
    old_raw, new = (np.ascontiguousarray(part, info.numpy_type).view(np.uint8).reshape(-1) for part in parts)
    tail = chunk_checksums([old_raw[whole * CHUNK_SIZE:], new])
    return list(info.chunk_checksums[:whole]) + tail


def _write_stream(volume: Volume, fields, size: int, chunks: Iterator[bytes]) -> None:
    """Map a contiguous run of new blocks (so the data can be memory-mapped) into `fields`,
    then write `size` bytes into them, chunk after chunk. The caller writes the inode."""
    blocks = -(-size // C.BLOCK_SIZE)
    first = volume.allocate_run(blocks) if blocks else 0
    volume.map_run(fields, first, blocks)
    fields.i_blocks += blocks
    fields.i_size = size
    data = FileData(volume, InodeRecord(0, fields, b""), blocks)
    written = started = 0
    for chunk in chunks:
        data.write(written, chunk)
        written += len(chunk)
        if written - started >= WRITEBACK_BYTES:
            start_writeback(volume, first * C.BLOCK_SIZE + started, written - started)
            started = written
    if written != size:
        raise UsageError(f"internal size mismatch: wrote {written} of {size} bytes")


def start_writeback(volume: Volume, offset: int, length: int) -> None:
    """Have the kernel start writing these device bytes to the disk now, without waiting
    (Linux sync_file_range, SYNC_FILE_RANGE_WRITE): the disk works while the rest of the
    file is still being copied, and the fsync before the inode points at the data (the
    write order) finds little left to do. Elsewhere, or without it, nothing happens."""
    call = _sync_file_range()
    fd = getattr(volume.device, "fd", -1)
    if call is not None and fd >= 0:
        call(fd, offset, length, SYNC_FILE_RANGE_WRITE)  # a failure leaves it to the fsync


_SYNC_FILE_RANGE: list = []  # [libc's sync_file_range or None], looked up on first use


def _sync_file_range():
    if not _SYNC_FILE_RANGE:
        function = None
        if sys.platform.startswith("linux"):
            try:
                function = ctypes.CDLL(None, use_errno=True).sync_file_range
                function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
                function.restype = ctypes.c_int
            except (OSError, AttributeError):
                function = None
        _SYNC_FILE_RANGE.append(function)
    return _SYNC_FILE_RANGE[0]


def _enable_feature(volume: Volume) -> None:
    feature = F.BY_NAME["vector_files"]
    if not volume.sb.s_feature_ro_compat & feature.bit:
        volume.sb.s_feature_ro_compat |= feature.bit
        volume.features = type(volume.features).of(volume.sb)
        volume.sb_dirty = True
