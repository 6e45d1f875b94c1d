"""The inodes in use and the metadata blocks each one owns, read a table chunk at a time
(as fsck reads them): tune rewrites their checksums, image copies them."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..format import constants as C
from ..volume.inodes import InodeRecord, parse_inode
from ..volume.volume import Volume


def used_inodes(volume: Volume) -> Iterator[InodeRecord]:
    """Every inode with i_mode != 0, in inode order; holes of the table are not read."""
    for first_ino, records in volume.inode_table(skip_holes=True):
        raw = records.view(np.uint8).reshape(-1, C.INODE_SIZE)
        for index in np.flatnonzero(records["i_mode"]).tolist():
            yield parse_inode(first_ino + index, raw[index].tobytes())


def directory_blocks(volume: Volume, inode: InodeRecord) -> list[int]:
    return [block for _, block in volume.dir_blocks(inode)] if inode.is_dir else []


def indirect_blocks(volume: Volume, inode: InodeRecord) -> list[int]:
    return volume.block_map(inode).indirect_blocks() if volume.indirect else []


def data_blocks(volume: Volume, inode: InodeRecord, limit_blocks: int | None = None) -> list[int]:
    """Physical blocks of the first `limit_blocks` logical blocks (all below i_size when None)."""
    size_blocks = -(-min(inode.i_size, volume.max_file_size()) // C.BLOCK_SIZE)
    limit = size_blocks if limit_blocks is None else min(size_blocks, limit_blocks)
    return [block for _, block in volume.block_map(inode).mapping(limit)]
