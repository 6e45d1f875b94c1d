"""Unallocated space and lost inodes, as The Sleuth Kit's blkls and ils see them.

- unallocated_runs: the data blocks the bitmap marks free (blkls's default);
- slack_pieces: bytes that belong to no file's content although a file holds them: past
  EOF in a file's last block, whole blocks a file still maps past its size (the kernel's
  truncate leaves them), and directory slack (past each entry's name, where deleted
  entries live) (blkls -s);
- lost_inodes: inodes in use that no live name reaches — kernel-deleted (a deleted entry
  in slack still names it), unlinked (no link left), orphans (nothing names them) — and
  freed slots that still hold block pointers (ils).

Every piece carries its offset in the image, for a map back from the output (blkcalc).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import VexfsError
from ..format import constants as C
from ..volume import directory
from ..volume.blockmap import block_runs
from ..volume.inodes import InodeRecord, parse_inode
from ..volume.volume import Volume
from .recovery import Recovery, live_inodes, walk

WINDOW = 1 << 16  # bitmap bits read at a time
DELETED, UNLINKED, ORPHAN, FREED = "deleted", "unlinked", "orphan", "freed"


@dataclass(frozen=True)
class Piece:
    """`length` bytes at image offset `offset`; `inode` 0 for unallocated blocks."""

    offset: int
    length: int
    inode: int = 0
    what: str = "unallocated"


@dataclass(frozen=True)
class LostInode:
    ino: int
    status: str
    inode: InodeRecord

    @property
    def allocated(self) -> bool:
        return self.status != FREED

    @property
    def recoverable(self) -> bool:
        return self.allocated and self.inode.file_format in (C.S_IFREG, C.S_IFLNK, C.S_IFDIR)


def unallocated_runs(volume: Volume, fs_offset: int = 0) -> Iterator[Piece]:
    """Runs of data blocks marked free, in block order."""
    g = volume.geometry
    end = min(g.blocks_count, g.addressable_blocks)
    for first in range(g.first_data_block, end, WINDOW):
        n = min(WINDOW, end - first)
        free = ~volume.bitmap.bits(first, n)
        if g.backup_sb_block and first <= g.backup_sb_block < first + n:
            free[g.backup_sb_block - first] = False
        blocks = np.flatnonzero(free) + first
        if not blocks.size:
            continue
        for start, count in block_runs(blocks):
            yield Piece(fs_offset + start * C.BLOCK_SIZE, count * C.BLOCK_SIZE)


def file_slack(volume: Volume, inode: InodeRecord, fs_offset: int = 0) -> Iterator[Piece]:
    """Past EOF in the last block, and blocks mapped past the size."""
    size = inode.i_size
    try:
        runs = list(volume.block_map(inode).runs())
    except VexfsError:
        return
    eof_block = -(-size // C.BLOCK_SIZE)  # the first logical block wholly past EOF
    for logical, physical, count in runs:
        tail = size - size // C.BLOCK_SIZE * C.BLOCK_SIZE
        if tail and logical <= size // C.BLOCK_SIZE < logical + count:
            where = fs_offset + (physical + size // C.BLOCK_SIZE - logical) * C.BLOCK_SIZE
            yield Piece(where + tail, C.BLOCK_SIZE - tail, inode.ino, "file slack")
        past = max(logical, eof_block)
        if past < logical + count:
            yield Piece(fs_offset + (physical + past - logical) * C.BLOCK_SIZE,
                        (logical + count - past) * C.BLOCK_SIZE, inode.ino, "past EOF")


def directory_slack(recovery: Recovery, inode: InodeRecord, fs_offset: int = 0) -> Iterator[Piece]:
    """Each record's bytes past its name, and the free records' whole space."""
    try:
        blocks = list(recovery.dir_block_data(inode))
    except VexfsError:
        return
    for block, _, walk_ in blocks:
        base = fs_offset + block * C.BLOCK_SIZE
        for record in walk_.records:
            used = directory.min_rec_len(record.name_len) if record.inode else C.DIRENT_HEADER_SIZE
            if record.rec_len > used:
                yield Piece(base + record.offset + used, record.rec_len - used, inode.ino, "directory slack")


def slack_pieces(recovery: Recovery, fs_offset: int = 0) -> Iterator[Piece]:
    """Slack of every inode in use, in inode order."""
    volume = recovery.volume
    for first_ino, records in volume.inode_table(skip_holes=True):
        formats = records["i_mode"] & C.S_IFMT
        for index in np.flatnonzero((formats == C.S_IFREG) | (formats == C.S_IFDIR) | (formats == C.S_IFLNK)).tolist():
            inode = parse_inode(first_ino + index, records[index].tobytes())
            if inode.is_dir:
                yield from directory_slack(recovery, inode, fs_offset)
            else:
                yield from file_slack(volume, inode, fs_offset)


def lost_inodes(recovery: Recovery) -> Iterator[LostInode]:
    """Inodes in use that no live name reaches, and freed slots with block pointers left."""
    volume = recovery.volume
    live = live_inodes(recovery)
    deleted_names = set()
    for listing in walk(recovery, deleted=True, into_deleted=True, live=live):
        deleted_names.update(item.ino for item in listing.deleted if item.ino)
    for first_ino, records in volume.inode_table(skip_holes=True):
        modes = records["i_mode"]
        pointers = records["i_block"].any(axis=1) | (records["i_size"] != 0)
        for index in np.flatnonzero((modes != 0) | pointers).tolist():
            ino = first_ino + index
            if ino == C.ROOT_INO or (ino < live.size and live[ino]):
                continue
            inode = parse_inode(ino, records[index].tobytes())
            if not inode.i_mode:
                status = FREED
            elif inode.i_links_count == 0:
                status = UNLINKED
            elif ino in deleted_names:
                status = DELETED
            else:
                status = ORPHAN
            yield LostInode(ino, status, inode)
