"""Moving things out of the way for `vexfs resize`: blocks out of a range, inodes out of the
part of the table a shrink gives up. Everything goes through the Volume and its write order
(FORMAT.md section 12): a moved block is copied to a newly allocated block first, the
pointer to it (inode, indirect or directory block) is switched in the cache and reaches the
disk after the copy; the old block is never written, and never freed here (it stays marked
used: it becomes metadata or leaves the file system)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from ..errors import NoSpaceError
from ..format import constants as C
from ..format.dtypes import DIRENT_HEADER
from ..volume import checksums, directory
from ..volume.blockmap import P, TOP_FIELDS, build_indirect, indirect_pointers
from ..volume.inodes import InodeRecord, parse_inode
from ..volume.volume import Volume
from .walk import used_inodes

MAPPED_FORMATS = (C.S_IFREG, C.S_IFDIR, C.S_IFLNK)  # the others keep no block pointers
Progress = Callable[[str, int, int], None]


class BlockMover:
    """Moves every block of every inode that lies in [first, end) to a free block outside
    it (the range is marked used first, so the allocator skips it). Data is copied as is;
    directory and indirect blocks get their tails for the new place. A file's moved data
    blocks go to one run of free blocks where there is one (and its indirect blocks to
    another), so that a file written contiguously, a vector file, stays so. `moved`
    counts the blocks."""

    def __init__(self, volume: Volume, first: int, end: int, progress: Progress | None = None):
        self.volume = volume
        self.first, self.end = first, end
        self.progress = progress
        self.moved = 0
        self._total = 0
        self._pools: dict[bool, list[int]] = {False: [], True: []}  # data, indirect: targets

    def _inside(self, block: int) -> bool:
        return self.first <= block < self.end

    def run(self) -> int:
        volume = self.volume
        if self.end <= self.first:
            return 0
        self._total = int(volume.bitmap.bits(self.first, self.end - self.first).sum())
        volume.bitmap.set_range(self.first, self.end - self.first)  # no move lands there
        if self._total:
            for inode in self._candidates():
                self._reserve_runs(inode)
                self._move_inode(inode)
                self._release_runs()
            volume.flush_metadata()
        # The range holds nothing of an inode now: free on disk until the new geometry
        # claims it, so that fsck -y after a later crash has free blocks to work with.
        volume.bitmap.set_range(self.first, self.end - self.first, False)
        backup = volume.geometry.backup_sb_block
        if backup and self._inside(backup):
            volume.bitmap.set(backup)
        volume.flush_metadata()
        return self.moved

    def _candidates(self) -> Iterator[InodeRecord]:
        """The inodes that may own a block in the range, a table chunk at a time: a pointer
        in the record in the range, a single indirect block pointing into it (those are
        read in bulk), or a double or triple indirect block (walked)."""
        volume = self.volume
        for first_ino, records in volume.inode_table(skip_holes=True):
            formats = records["i_mode"] & C.S_IFMT
            used = np.isin(formats, MAPPED_FORMATS)
            if not used.any():
                continue
            hit = self._in_range(records["i_block"]).any(axis=1)
            if volume.indirect:
                single = records["i_indirect"]
                hit |= self._in_range(single) | (records["i_double_indirect"] != 0) | \
                    (records["i_triple_indirect"] != 0)
                look = np.flatnonzero(used & ~hit & (single != 0) & volume.data_block_mask(single))
                if look.size:
                    tables = volume.read_blocks(single[look]).view(np.uint32)[:, :P]
                    hit[look] = self._in_range(tables).any(axis=1)
            raw = records.view(np.uint8).reshape(-1, C.INODE_SIZE)
            for index in np.flatnonzero(used & hit).tolist():
                yield parse_inode(first_ino + index, raw[index].tobytes())

    def _in_range(self, blocks: np.ndarray) -> np.ndarray:
        return (blocks >= self.first) & (blocks < self.end)

    def _reserve_runs(self, inode: InodeRecord) -> None:
        """Runs of targets for the inode's blocks in the range: one for data, one for
        indirect blocks (single blocks when no run is free)."""
        block_map = self.volume.block_map(inode)
        counts = {False: sum(1 for _, b in block_map.mapping() if self._inside(b)),
                  True: sum(1 for b in block_map.indirect_blocks() if self._inside(b))}
        for indirect, count in counts.items():
            if count > 1:
                try:
                    first = self.volume.allocate_run(count)
                except NoSpaceError:
                    continue
                self._pools[indirect] = list(range(first + count - 1, first - 1, -1))

    def _release_runs(self) -> None:
        for pool in self._pools.values():
            while pool:
                self.volume.free_block(pool.pop())

    def _tick(self) -> None:
        self.moved += 1
        if self.progress is not None:
            self.progress("Relocating blocks", self.moved, self._total)

    def _target(self, indirect: bool = False) -> int:
        pool = self._pools[indirect]
        if pool:
            return pool.pop()
        block = self.volume.allocate_block()
        if self._inside(block):
            raise NoSpaceError("no free block left to move a block to")
        return block

    def _copy(self, block: int, *, is_dir: bool) -> int:
        volume = self.volume
        target = self._target()
        data = bytearray(volume.read_block(block))
        if is_dir:
            volume.write_dir_block(target, data)  # the tail's checksum names the new block
        else:
            volume.write_data(target, bytes(data))
        self._tick()
        return target

    def _move_inode(self, inode: InodeRecord) -> None:
        fields = inode.fields
        changed = False
        for index, block in enumerate(fields.i_block):
            if block and self._inside(block):
                fields.i_block[index] = self._copy(block, is_dir=inode.is_dir)
                changed = True
        if self.volume.indirect:
            for level, field in enumerate(TOP_FIELDS):
                top = getattr(fields, field)
                if top:
                    new = self._move_indirect(top, level, inode.is_dir)
                    if new != top:
                        setattr(fields, field, new)
                        changed = True
        if changed:
            self.volume.write_inode(inode.ino, fields)

    def _move_indirect(self, block: int, level: int, is_dir: bool) -> int:
        """Move what this indirect block points to (and the block itself when it is in the
        range); returns where it is now."""
        volume = self.volume
        if not volume.is_data_block(block):
            return block
        pointers = indirect_pointers(volume.read_block(block)).copy()
        changed = False
        for index in np.flatnonzero(pointers).tolist():
            child = int(pointers[index])
            if level:
                new = self._move_indirect(child, level - 1, is_dir)
            else:
                new = self._copy(child, is_dir=is_dir) if self._inside(child) else child
            if new != child:
                pointers[index] = new
                changed = True
        target = block
        if self._inside(block):
            target = self._target(indirect=True)
            self._tick()
        if changed or target != block:
            data = build_indirect(pointers[:P])
            if volume.seed is not None:
                checksums.set_tail(volume.seed, target, data)
            volume.write_meta_block(target, data)
        return target


def renumber_inodes(volume: Volume, slots: int, progress: Progress | None = None) -> dict[int, int]:
    """Give every inode in use past slot `slots` a free slot at or below it, and point the
    directory entries at the new numbers. Three barriers: the copies are on disk before an
    entry names them, and the entries before the old slots are freed (a crash in between
    leaves a copy fsck -y files in /lost+found, never a file without its blocks)."""
    g = volume.geometry
    movers = [inode for inode in used_inodes(volume) if inode.ino > slots]
    if not movers:
        return {}
    free = _free_slots(volume, g.first_allocatable_ino, slots, len(movers))
    mapping = {inode.ino: new for inode, new in zip(movers, free)}
    for count, inode in enumerate(movers, 1):
        volume.write_inode(mapping[inode.ino], inode.fields)
        if progress is not None:
            progress("Relocating inodes", count, len(movers))
    volume.flush_metadata()
    _retarget_entries(volume, mapping)
    volume.flush_metadata()
    for old in mapping:
        volume.free_inode(old)
    volume.flush_metadata()
    return mapping


def _free_slots(volume: Volume, first: int, last: int, count: int) -> list[int]:
    found: list[int] = []
    for first_ino, records in volume.inode_table():
        numbers = np.flatnonzero(records["i_mode"] == 0) + first_ino
        numbers = numbers[(numbers >= first) & (numbers <= last)]
        found += numbers[:count - len(found)].tolist()
        if len(found) == count or first_ino > last:
            break
    if len(found) < count:
        raise NoSpaceError(f"{count} inodes must move below inode {last + 1} and only {len(found)} slots are free")
    return found


def _retarget_entries(volume: Volume, mapping: dict[int, int]) -> None:
    """Every entry (".", ".." included) naming a moved inode names its new number."""
    for inode in used_inodes(volume):
        if not inode.is_dir or inode.ino in mapping:
            continue  # a moved directory's blocks are its copy's: walked once, under the copy
        for _, block in volume.dir_blocks(inode):
            data = bytearray(volume.read_block(block))
            walk = directory.walk_block(data, chain_end=volume.chain_end)
            changed = False
            for record in walk.records:
                if record.inode in mapping:
                    DIRENT_HEADER.pack_into(data, record.offset, mapping[record.inode],
                                                      record.rec_len, record.name_len, record.file_type)
                    changed = True
            if changed:
                volume.write_dir_block(block, data)
