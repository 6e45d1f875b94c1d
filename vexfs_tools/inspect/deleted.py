"""Deleted entries still readable in directory slack, and what became of their inodes.

The kernel deletes a name by growing the previous entry's rec_len over it (the first
entry of a block gets inode 0 instead); the old bytes — inode number, name — stay in the
slack. The kernel's delete changes nothing else: the inode keeps its mode, links, size,
block pointers and bitmap bits, so the data is usually all there. Our own tools free the
inode (mode 0, pointers kept) and its blocks (bitmap cleared), so the data may be gone.

Status of a deleted entry's inode:
  intact     the inode still holds data: in use, of the entry's type, every block it maps
             still marked in use
  linked     as intact, and a live name elsewhere still names it (renamed, or a hard link)
  freed      the inode slot is free (mode 0) or some of its blocks are marked free: the
             data may have been overwritten
  reused     the inode now holds a file of another type
  unknown    the entry's inode field was cleared (the first entry of a block)
  bad inode  the inode number is out of range
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import VexfsError
from ..format import constants as C
from ..volume import directory
from ..volume.inodes import InodeRecord
from .names import display

INTACT, LINKED, FREED, REUSED, UNKNOWN, BAD = "intact", "linked", "freed", "reused", "unknown", "bad inode"
TYPE_OF_FORMAT = {v: k for k, v in C.MODE_TO_FILE_TYPE.items()}


@dataclass
class DeletedEntry:
    name: bytes
    ino: int  # 0: unknown (the inode field was cleared)
    file_type: int
    block: int
    offset: int
    status: str
    inode: InodeRecord | None  # None when unknown or out of range

    @property
    def holds_data(self) -> bool:
        return self.status in (INTACT, LINKED)

    @property
    def reallocated(self) -> bool:
        """TSK's "realloc": the inode belongs to something live now."""
        return self.status in (LINKED, REUSED)

    def as_dict(self) -> dict:
        return {"name": display(self.name), "inode": self.ino, "file_type": C.FILE_TYPE_NAMES.get(self.file_type,
                                                                                                  str(self.file_type)),
                "block": self.block, "offset": self.offset, "status": self.status, "holds_data": self.holds_data}


def deleted_in_block(data: bytes, chain_end: int, walk: directory.BlockWalk | None = None) -> list[directory.DirRecord]:
    """Deleted entries of one directory block: those in the slack of every record on the
    chain, and a cleared first entry (inode 0) that still has a name. `walk`: the block's
    chain, when the caller walked it already."""
    if walk is None:
        walk = directory.walk_block(data, chain_end=chain_end)
    found = []
    for record in walk.records:
        if record.inode == 0 and record.offset == 0 and record.name_len and record.file_type != C.DIR_TAIL_FILE_TYPE \
                and b"\0" not in record.name and b"/" not in record.name:
            found.append(record)
        found.extend(directory.deleted_in_slack(data, record))
    return found


def inode_status(volume, ino: int, file_type: int, *, live: np.ndarray | None = None) -> tuple[str, InodeRecord | None]:
    if ino == 0:
        return UNKNOWN, None
    try:
        inode = volume.read_inode(ino)
    except VexfsError:
        return BAD, None
    if not inode.in_use:
        return FREED, inode
    expected = TYPE_OF_FORMAT.get(file_type)
    if file_type != C.FT_UNKNOWN and expected is not None and inode.file_format != expected:
        return REUSED, inode
    if live is not None and ino < live.size and live[ino]:
        return LINKED, inode
    if not _blocks_in_use(volume, inode):
        return FREED, inode
    return INTACT, inode


def _blocks_in_use(volume, inode: InodeRecord) -> bool:
    """Are all blocks the inode maps (up to its size) still marked in use?"""
    if inode.file_format in (C.S_IFCHR, C.S_IFBLK, C.S_IFIFO, C.S_IFSOCK):
        return True
    if inode.is_dir:
        blocks = [b for _, b in volume.dir_blocks(inode)]
    else:
        limit = -(-min(inode.i_size, volume.max_file_size()) // C.BLOCK_SIZE)
        blocks = []
        try:
            for _, physical, count in volume.block_map(inode).runs(limit):
                blocks.append((physical, count))
        except VexfsError:
            return False
        return all(volume.bitmap.bits(first, count).all() for first, count in blocks)
    return all(volume.bitmap.bits(b, 1)[0] for b in blocks)


def deleted_entries(recovery, inode: InodeRecord, *, live: np.ndarray | None = None) -> list[DeletedEntry]:
    """Every deleted entry still readable in the blocks of directory `inode` (its own
    blocks or its recovered one), with the state of the inode it named."""
    volume = recovery.volume
    out = []
    for block, data, walk in recovery.dir_block_data(inode, skip_quiet=True):
        for record in deleted_in_block(data, volume.chain_end, walk):
            if record.name in (b".", b".."):
                continue
            status, target = inode_status(volume, record.inode, record.file_type, live=live)
            out.append(DeletedEntry(record.name, record.inode, record.file_type, block, record.offset, status, target))
    return out
