"""Vector files inside an image: find them, read their header, ids and vectors.

Vectors come back as numpy arrays, memory-mapped from the device when the file's data is one
contiguous run of blocks (mkfs -d and `vexfs vectors add` write it so), read otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from crc32c import crc32c

from ..errors import CorruptionError, UsageError
from ..format import constants as C
from ..inspect.walk import walk_tree
from ..volume.inodes import InodeRecord
from ..volume.volume import Volume
from .codec import VectorInfo, decode_header

MAX_HEADER_BYTES = 64 << 20  # a header this large would describe ~16 PiB of vectors


@dataclass
class VectorFile:
    volume: Volume
    inode: InodeRecord
    info: VectorInfo
    path: str = ""

    @classmethod
    def open(cls, volume: Volume, inode: InodeRecord, path: str = "") -> "VectorFile":
        if not inode.is_reg:
            raise UsageError(f"{path or inode.ino}: not a regular file")
        size = min(inode.i_size, volume.max_file_size())
        first = volume.read_bytes(inode, min(size, C.BLOCK_SIZE))
        if len(first) < 16:
            raise CorruptionError(f"{path or inode.ino}: not a vector file (too short)")
        header_bytes = int.from_bytes(first[10:12], "little") * C.BLOCK_SIZE
        head = volume.read_bytes(inode, min(max(header_bytes, C.BLOCK_SIZE), MAX_HEADER_BYTES, size))
        try:
            info = decode_header(head, size)
        except CorruptionError as e:
            raise CorruptionError(f"{path or inode.ino}: {e}") from None
        return cls(volume, inode, info, path)

    # --- ids and vectors --------------------------------------------------------------------

    def _read_range(self, offset: int, length: int) -> bytes:
        out = bytearray()
        for logical, physical, count in self.volume.block_map(self.inode).runs():
            start, end = logical * C.BLOCK_SIZE, (logical + count) * C.BLOCK_SIZE
            lo, hi = max(start, offset), min(end, offset + length)
            if lo < hi:
                if len(out) < lo - offset:
                    out += bytes(lo - offset - len(out))  # a hole
                out += self.volume.device.read(physical * C.BLOCK_SIZE + lo - start, hi - lo)
        out += bytes(length - len(out))
        return bytes(out)

    def ids(self) -> np.ndarray:
        raw = self._read_range(self.info.ids_offset, 8 * self.info.count)
        return np.frombuffer(raw, "<u8").copy()

    def contiguous_offset(self) -> int | None:
        """Device byte offset of the vector data when it is one physical run, else None."""
        info = self.info
        if not info.data_bytes:
            return None
        first, last = info.data_offset // C.BLOCK_SIZE, (info.data_offset + info.data_bytes - 1) // C.BLOCK_SIZE
        for logical, physical, count in self.volume.block_map(self.inode).runs(last + 1):
            if logical <= first and last < logical + count:
                return (physical + first - logical) * C.BLOCK_SIZE
        return None

    def shape(self) -> tuple[int, int]:
        return self.info.count, self.info.row_bytes // self.info.numpy_type.itemsize

    def vectors(self, *, mmap: bool = True) -> np.ndarray:
        """All vectors, (count, dims) — binary: (count, row_bytes) packed bits."""
        info = self.info
        offset = self.contiguous_offset() if mmap else None
        if offset is not None:
            try:
                return np.memmap(self.volume.device.path, dtype=info.numpy_type, mode="r", offset=offset,
                                 shape=self.shape())
            except (OSError, ValueError):
                pass
        raw = self._read_range(info.data_offset, info.data_bytes)
        return np.frombuffer(raw, info.numpy_type).reshape(self.shape())

    def iter_rows(self, rows_per_chunk: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, rows) in bounded chunks: search over files larger than memory."""
        info = self.info
        offset = self.contiguous_offset()
        for start in range(0, info.count, rows_per_chunk):
            n = min(rows_per_chunk, info.count - start)
            if offset is not None:
                raw = self.volume.device.read(offset + start * info.row_bytes, n * info.row_bytes)
            else:
                raw = self._read_range(info.data_offset + start * info.row_bytes, n * info.row_bytes)
            yield start, np.frombuffer(raw, info.numpy_type).reshape(n, -1)

    def bad_chunks(self) -> list[int]:
        """Indexes of data chunks whose crc32c does not match (and -1 for the ids)."""
        info = self.info
        bad = []
        for index, expected in enumerate(info.chunk_checksums):
            start = index * info.chunk_size
            length = min(info.chunk_size, info.data_bytes - start)
            if crc32c(self._read_range(info.data_offset + start, length)) != expected:
                bad.append(index)
        if crc32c(self._read_range(info.ids_offset, 8 * info.count)) != info.ids_checksum:
            bad.append(-1)
        return bad


def find_vector_files(volume: Volume) -> Iterator[tuple[str, InodeRecord]]:
    """(path, inode) of every file flagged as a vector file, found by a bulk scan of the
    inode table's flags; names come from one walk of the tree."""
    if volume.layout == "kernel":
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
