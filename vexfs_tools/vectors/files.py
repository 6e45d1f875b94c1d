"""Vector files inside an image: find them, read their header, ids and vectors.

Vectors and ids come back as numpy arrays, memory-mapped from the device when their bytes
lie in one run of blocks (mkfs -d and `vexfs vectors add` write them so), read otherwise.
The file's runs are found once per VectorFile (volume.fileio) and kept.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..errors import CorruptionError, UsageError
from ..format import constants as C
from ..format import vector as V
from ..inspect.walk import walk_tree
from ..volume.checksums import crc32c
from ..volume.fileio import FileData
from ..volume.geometry import KERNEL
from ..volume.inodes import InodeRecord
from ..volume.volume import Volume
from .codec import CHUNK_SIZE, ID_DTYPE, VectorInfo, chunk_checksums, decode_header

MAX_HEADER_BYTES = 64 << 20  # a header this large would describe ~16 PiB of vectors
NORM_BLOCK_ROWS = 8192  # rows whose norms are computed at a time (row_norms)


@dataclass
class VectorFile:
    volume: Volume
    inode: InodeRecord
    info: VectorInfo
    path: str = ""
    _contents: FileData | None = field(default=None, init=False, repr=False, compare=False)
    _mapped: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    skipped: tuple[tuple[int, int], ...] = field(default=(), init=False, compare=False)  # rows left out
    window: tuple[int, int] | None = field(default=None, init=False, compare=False)  # [low, high) rows only
    _checked: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # window -> bad chunks
    _norms: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def open(cls, volume: Volume, inode: InodeRecord, path: str = "") -> "VectorFile":
        if not inode.is_reg:
            raise UsageError(f"{path or inode.ino}: not a regular file")
        size = min(inode.i_size, volume.max_file_size())
        first = _head(volume, inode, min(size, C.BLOCK_SIZE))
        if len(first) < sum(V.HEADER_BLOCKS_SPAN):
            raise CorruptionError(f"{path or inode.ino}: not a vector file (too short)")
        header_bytes = V.parse_field(V.VectorHeader, "header_blocks", first) * C.BLOCK_SIZE
        head = _head(volume, inode, min(max(header_bytes, C.BLOCK_SIZE), MAX_HEADER_BYTES, size))
        try:
            info = decode_header(head, size)
        except CorruptionError as e:
            raise CorruptionError(f"{path or inode.ino}: {e}") from None
        return cls(volume, inode, info, path)

    # --- where the bytes are ------------------------------------------------------------------

    @property
    def contents(self) -> FileData:
        """The file's bytes by offset, through its runs (found on first use, then kept)."""
        if self._contents is None:
            end = self.info.ids_offset + self.info.ids_bytes
            self._contents = FileData(self.volume, self.inode, -(-end // C.BLOCK_SIZE))
        return self._contents

    def use_contents(self, contents: FileData) -> "VectorFile":
        """Take the file's runs found already (fsck reads the header through them): a large
        file's block map is walked once, not once per reader."""
        self._contents = contents
        return self

    def contiguous_offset(self) -> int | None:
        """Device byte offset of the vector data when it is one physical run, else None."""
        return self.contents.device_offset(self.info.data_offset, self.info.data_bytes)

    def mapped(self) -> bool:
        """Is the vector data memory-mapped (iter_rows gives views of the map, not reads)?"""
        return self._view(self.info.data_offset, self.info.data_bytes) is not None

    def _view(self, offset: int, length: int) -> memoryview | None:
        """A read-only memory map of the range when it is one run on the device, else None.
        Kept: later searches of the same opened file start at once."""
        key = (offset, length)
        if key not in self._mapped:
            self._mapped[key] = self.contents.map_readonly(offset, length)
        return self._mapped[key]

    def _array(self, offset: int, length: int, dtype: np.dtype, *, mmap: bool = True) -> np.ndarray:
        """The range as an array: over the memory map where there is one, else read."""
        view = self._view(offset, length) if mmap else None
        return np.frombuffer(view if view is not None else self.contents.read(offset, length), dtype)

    # --- ids and vectors --------------------------------------------------------------------

    def ids(self) -> np.ndarray:
        """The ids, u64, one per row (read-only when memory-mapped)."""
        return self._array(self.info.ids_offset, self.info.ids_bytes, ID_DTYPE)

    def shape(self) -> tuple[int, int]:
        return self.info.count, self.info.row_bytes // self.info.numpy_type.itemsize

    def vectors(self, *, mmap: bool = True) -> np.ndarray:
        """All vectors, (count, dims) — binary: (count, row_bytes) packed bits."""
        info = self.info
        return self._array(info.data_offset, info.data_bytes, info.numpy_type, mmap=mmap).reshape(self.shape())

    def iter_rows(self, rows_per_chunk: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, rows) in bounded chunks: search and export over files larger than
        memory. Slices of the memory map where there is one, reads otherwise."""
        info = self.info
        mapped = self._view(info.data_offset, info.data_bytes)
        rows = None if mapped is None else np.frombuffer(mapped, info.numpy_type).reshape(self.shape())
        for low, high in self._kept_ranges():
            for start in range(low, high, rows_per_chunk):
                n = min(rows_per_chunk, high - start)
                if rows is not None:
                    yield start, rows[start:start + n]
                else:
                    offset = info.data_offset + start * info.row_bytes
                    yield start, self._array(offset, n * info.row_bytes, info.numpy_type,
                                             mmap=False).reshape(n, -1)

    def row_norms(self) -> np.ndarray | None:
        """float32 |x|^2 of every row of a float32 file, computed on first use (a bounded
        block of rows at a time) and kept with the opened file, 4 bytes a row: the searches
        after the first read each row once instead of twice. None for other element types,
        and for a window or a file searched without its damaged chunks (searched once)."""
        info = self.info
        if info.element_type != V.ELEMENT_FLOAT32 or self.window is not None or self.skipped:
            return None
        if self._norms is None:
            norms = np.empty(info.count, np.float32)
            for start, rows in self.iter_rows(NORM_BLOCK_ROWS):
                np.einsum("ij,ij->i", rows, rows, out=norms[start:start + len(rows)])
            self._norms = norms
        return self._norms

    def _kept_ranges(self) -> list[tuple[int, int]]:
        """[low, high) row ranges iter_rows goes over: all rows but the skipped ones."""
        low, high = self.window or (0, self.info.count)
        out, position = [], low
        for first, last in self.skipped:
            if first > position:
                out.append((position, min(first, high)))
            position = max(position, last + 1)
        if position < high:
            out.append((position, high))
        return [(a, b) for a, b in out if a < b]

    def require_intact(self, *, skip_damaged: bool = False, offer_skip: bool = False) -> None:
        """Refuse a file whose chunks or ids do not match their checksums, naming the chunk
        and its rows; with skip_damaged, leave the rows of damaged chunks out of iter_rows
        instead (the ids must be intact: they say which row is which)."""
        bad = self.bad_chunks()
        if not bad:
            return
        name = self.path or str(self.inode.ino)
        if -1 in bad:
            raise CorruptionError(f"{name}: the ids' checksum does not match (rows 0-{self.info.count - 1}); "
                                  "run fsck.vexfs")
        ranges = [self.info.rows_of_chunk(index) for index in bad]
        if skip_damaged:
            self.skipped = tuple(ranges)
            return
        shown = ", ".join(f"chunk {index} (rows {first}-{last})" for index, (first, last) in zip(bad[:5], ranges))
        more = f" and {len(bad) - 5} more chunks" if len(bad) > 5 else ""
        hint = " (or --skip-damaged to search the other chunks)" if offer_skip else ""
        raise CorruptionError(f"{name}: {shown}{more}: checksum does not match; run fsck.vexfs{hint}")

    def _in_window(self, index: int) -> bool:
        first, last = self.info.rows_of_chunk(index)
        return first < self.window[1] and last >= self.window[0]

    def bad_chunks(self) -> list[int]:
        """Indexes of data chunks whose crc32c does not match (and -1 for the ids). Found
        once per window of an opened file, then kept: the volume is open read-only or by
        this process's one writer, so its bytes do not change under it, and the next search
        of the same opened file does not read every chunk again."""
        if self.window not in self._checked:
            self._checked[self.window] = self._find_bad_chunks()
        return list(self._checked[self.window])

    def _find_bad_chunks(self) -> list[int]:
        info = self.info
        mapped = self._view(info.data_offset, info.data_bytes)
        if mapped is not None and info.chunk_size == CHUNK_SIZE:
            bad = self._bad_mapped_chunks(mapped)
        else:
            bad = self._bad_read_chunks(mapped)
        if crc32c(self.ids()) != info.ids_checksum:
            bad.append(-1)
        return bad

    def _chunk_range(self) -> tuple[int, int]:
        """[first, last + 1) of the chunks to check: all, or those the window touches."""
        count = len(self.info.chunk_checksums)
        if self.window is None:
            return 0, count
        inside = [index for index in range(count) if self._in_window(index)]
        return (inside[0], inside[-1] + 1) if inside else (0, 0)

    def _bad_mapped_chunks(self, mapped: memoryview) -> list[int]:
        """The damaged chunks of a memory-mapped file: their checksums in one threaded pass
        (codec.chunk_checksums), not a chunk at a time on one thread."""
        info = self.info
        low, high = self._chunk_range()
        if low >= high:
            return []
        data = np.frombuffer(mapped[low * CHUNK_SIZE:min(high * CHUNK_SIZE, info.data_bytes)], np.uint8)
        found = chunk_checksums([data])
        return [low + index for index, (value, expected) in
                enumerate(zip(found, info.chunk_checksums[low:high])) if value != expected]

    def _bad_read_chunks(self, mapped: memoryview | None) -> list[int]:
        info = self.info
        bad = []
        for index, expected in enumerate(info.chunk_checksums):
            if self.window is not None and not self._in_window(index):
                continue
            start = index * info.chunk_size
            length = min(info.chunk_size, info.data_bytes - start)
            chunk = mapped[start:start + length] if mapped is not None else \
                self.contents.read(info.data_offset + start, length)
            if crc32c(chunk) != expected:
                bad.append(index)
        return bad


def _head(volume: Volume, inode: InodeRecord, length: int) -> bytes:
    """The file's first `length` bytes, walking only the part of its map that holds them
    (a whole-file read would walk all of a large file's map to find its first run)."""
    return FileData(volume, inode, -(-length // C.BLOCK_SIZE)).read(0, length)


def find_vector_files(volume: Volume) -> Iterator[tuple[str, InodeRecord]]:
    """(path, inode) of every file flagged as a vector file, found by a bulk scan of the
    inode table's flags; names come from one walk of the tree."""
    if volume.layout == KERNEL:
        return
    flagged = set()
    for first_ino, records in volume.inode_table(skip_holes=True):
        hit = (records["i_mode"] != 0) & ((records["i_flags"] & C.INODE_FLAG_VECTOR) != 0)
        flagged.update((np.flatnonzero(hit) + first_ino).tolist())
    if not flagged:
        return
    for path, inode in walk_tree(volume):
        if inode.ino in flagged and inode.is_reg:
            flagged.discard(inode.ino)
            yield os.fsdecode(path), inode
