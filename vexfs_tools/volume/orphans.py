"""Directory blocks the 2.0 kernel's mkdir left behind: allocated in the bitmap, owned by
no inode, and starting with "." naming a directory inode whose block pointer is 0. fsck
reattaches them; the forensic views read directories from them."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from ..format import constants as C
from ..format.directory import DirEntry
from ..format.offsets import DIRENT_INODE
from .blockmap import block_runs
from .directory import min_rec_len
from .volume import Volume

# What the kernel's mkdir writes first: "." as an entry of its own rec_len, name padded with
# NULs. A block is a candidate when it starts so, whatever the inode number (DIRENT_INODE).
_DOT_ENTRY = DirEntry.build({"inode": 0, "rec_len": min_rec_len(1), "name_len": 1, "file_type": C.FT_DIR,
                             "name": b"."}).ljust(min_rec_len(1), b"\0")
DOT_HEAD = _DOT_ENTRY[DIRENT_INODE.end:]  # the bytes after the inode number
HEAD_BYTES = len(_DOT_ENTRY)  # read of each candidate block
HEAD_READ_BLOCKS = 256  # contiguous candidates are read 1 MiB at a time


def find_orphan_directory_blocks(volume: Volume, wanted_inos: set[int], is_owned: Callable[[int], bool],
                                 *, progress: Callable[[int, int], None] | None = None) -> dict[int, int]:
    """{directory inode: block} for every directory in `wanted_inos` whose block was found
    orphaned: allocated in the bitmap, a data block (Volume.is_data_block), `is_owned(block)`
    false, and starting with "." naming that inode.

    The bitmap is scanned a chunk at a time (never unpacked whole), candidate blocks are
    read HEAD_BYTES at a time (1 MiB at a time where they are contiguous), and the scan stops
    as soon as every wanted inode has its block. When two blocks claim the same inode the
    lowest wins. `progress(done, total)` is told of blocks scanned.
    """
    wanted = {int(ino) for ino in wanted_inos}
    found: dict[int, int] = {}
    if not wanted:
        return found
    g = volume.geometry
    limit = g.addressable_blocks
    for first, packed in volume.bitmap.iter_chunks():
        if first >= limit:
            break
        bits = np.unpackbits(packed, bitorder="little")[:max(0, limit - first)]
        candidates = np.flatnonzero(bits) + first
        del bits
        candidates = candidates[volume.data_block_mask(candidates)]
        if candidates.size:
            keep = np.fromiter((not is_owned(int(b)) for b in candidates), dtype=bool, count=candidates.size)
            candidates = candidates[keep]
        for block, head in _heads(volume, candidates):
            owner = int.from_bytes(DIRENT_INODE.of(head), "little")
            if head[DIRENT_INODE.end:] == DOT_HEAD and owner in wanted and owner not in found:
                found[owner] = block
        if progress is not None:
            progress(min(limit, first + packed.size * 8), limit)
        if len(found) == len(wanted):
            break
    return found


def _heads(volume: Volume, blocks: np.ndarray) -> Iterator[tuple[int, bytes]]:
    """(block, its first HEAD_BYTES bytes) for sorted block numbers; runs are read in bulk."""
    if not blocks.size:
        return
    for start, count in block_runs(blocks):
        if count == 1:
            yield start, volume.device.read(start * C.BLOCK_SIZE, HEAD_BYTES)
            continue
        for offset in range(0, count, HEAD_READ_BLOCKS):
            n = min(HEAD_READ_BLOCKS, count - offset)
            data = volume.device.read((start + offset) * C.BLOCK_SIZE, n * C.BLOCK_SIZE)
            for i in range(n):
                yield start + offset + i, data[i * C.BLOCK_SIZE: i * C.BLOCK_SIZE + HEAD_BYTES]
