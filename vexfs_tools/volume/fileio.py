"""A file's bytes by file offset: its physical runs, read, mapped and written through them.

Bulk readers (vector files) address a file as a byte range, not block by block: the runs of
its block map are found once (`physical_runs`), then each read, map or write looks up only
the runs it touches. Holes read as zeros. Writes go into blocks already mapped (allocation
and the block map stay the caller's), through Volume.write_data.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from ..errors import CorruptionError
from ..format import constants as C
from .blockmap import bulk_runs
from .inodes import InodeRecord
from .volume import Volume

Run = tuple[int, int, int]  # (first logical block, first physical block, block count)


def physical_runs(volume: Volume, inode: InodeRecord, limit: int | None = None) -> list[Run]:
    """The file's runs of consecutive blocks below logical block `limit`, in logical order."""
    return bulk_runs(volume.block_map(inode), limit, volume.data_block_mask)


class FileData:
    """One file's bytes, addressed by file offset through its runs (found once, here)."""

    def __init__(self, volume: Volume, inode: InodeRecord, limit: int | None = None):
        self.volume = volume
        self.runs = physical_runs(volume, inode, limit)
        self._starts = [logical for logical, _, _ in self.runs]

    def pieces(self, offset: int, length: int) -> Iterator[tuple[int, int | None, int]]:
        """(file offset, device offset or None for a hole, length) covering the range in
        order; only the runs that overlap it are looked at."""
        end = offset + length
        position = offset
        index = max(0, bisect.bisect_right(self._starts, offset // C.BLOCK_SIZE) - 1)
        for logical, physical, count in self.runs[index:]:
            start, stop = logical * C.BLOCK_SIZE, (logical + count) * C.BLOCK_SIZE
            if start >= end:
                break
            lo, hi = max(start, position), min(stop, end)
            if lo >= hi:
                continue
            if lo > position:
                yield position, None, lo - position
            yield lo, physical * C.BLOCK_SIZE + lo - start, hi - lo
            position = hi
        if position < end:
            yield position, None, end - position

    def device_offset(self, offset: int, length: int) -> int | None:
        """Where [offset, offset+length) lies on the device when it is inside one run,
        else None (an empty range, or one crossing a run's end or a hole)."""
        if length <= 0:
            return None
        _, where, size = next(self.pieces(offset, length))
        return where if size == length else None

    def read(self, offset: int, length: int) -> bytes:
        """Exactly `length` bytes from `offset`, holes (and anything past the map) as zeros."""
        out = bytearray(length)
        for position, where, size in self.pieces(offset, length):
            if where is not None:
                out[position - offset:position - offset + size] = self.volume.device.read(where, size)
        return bytes(out)

    def map_readonly(self, offset: int, length: int) -> memoryview | None:
        """A read-only memory map of the range when it is one run on the device, else None."""
        where = self.device_offset(offset, length)
        return None if where is None else self.volume.device.map_readonly(where, length)

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Write `data` at file offset `offset`, into blocks the map already holds. A write
        that starts inside a block keeps the block's bytes before it."""
        view = memoryview(data).cast("B")
        for position, where, size in self.pieces(offset, len(view)):
            if where is None:
                raise CorruptionError(f"write at file offset {position}: no block is mapped there")
            piece = view[position - offset:position - offset + size]
            head = where % C.BLOCK_SIZE
            block = where // C.BLOCK_SIZE
            if head:
                piece = self.volume.read_block(block)[:head] + bytes(piece)
            self.volume.write_data(block, piece)
