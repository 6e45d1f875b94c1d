"""Planning `vexfs resize` (resize2fs): the geometry a new size gets, which blocks must be
emptied first, and the smallest size the file system fits in. Nothing here writes.

The extended layout keeps its regions in this order: superblock, then the bitmap and the
inode table (mkfs: bitmap first), then data, the backup superblock last. The inode table
never moves (every inode's place is computed from its start); the bitmap grows in place
when the blocks after it can be emptied, or else moves once to just after the table
(its old blocks stay reserved, FORMAT.md "Resize"); the table shrinks at its end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UsageError
from ..format import constants as C
from ..volume.geometry import EXTENDED, Geometry, ceil_div
from ..volume.volume import Volume

SIZE_UNITS = {"s": 512, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
MIN_INODES = C.EXTENDED_FIRST_INO + 16  # what mkfs.vexfs gives the smallest file system


def parse_size(text: str) -> int:
    """resize2fs's SIZE: a number of 4 KiB blocks, or with a unit s (512-byte sectors), K, M,
    G or T (bytes, rounded down to whole blocks)."""
    match = re.fullmatch(r"\s*(\d+)\s*([sSkKmMgGtT]?)\s*", text)
    if not match:
        raise UsageError(f"invalid size {text!r} (a block count, or a number with s, K, M, G or T)")
    number, unit = int(match.group(1)), match.group(2).lower()
    return number if not unit else number * SIZE_UNITS[unit] // C.BLOCK_SIZE


@dataclass(frozen=True)
class Usage:
    """What the file system holds, as the resize plan needs it."""
    owned_blocks: int  # data, indirect and directory blocks of the inodes
    used_inodes_above: int  # inodes in use from s_first_ino on (lost+found included)

    @classmethod
    def of(cls, volume: Volume) -> "Usage":
        g = volume.geometry
        metadata = g.first_data_block + (1 if g.backup_sb_block else 0)
        free_inodes = volume.count_free_inodes()
        return cls(volume.bitmap.count_used() - metadata,
                   g.inode_slots - g.first_allocatable_ino + 1 - free_inodes)

    def inodes_needed(self) -> int:
        """Slots for the reserved inodes and every inode in use, whole table blocks."""
        slots = max(C.EXTENDED_FIRST_INO - 1 + self.used_inodes_above, MIN_INODES)
        return ceil_div(slots, C.INODES_PER_BLOCK) * C.INODES_PER_BLOCK


@dataclass(frozen=True)
class ResizePlan:
    old: Geometry
    new: Geometry

    @property
    def growing(self) -> bool:
        return self.new.blocks_count > self.old.blocks_count

    def vacate(self) -> tuple[int, int]:
        """(first, end) of the old file system's data blocks that must hold nothing of an
        inode before the new geometry is written: the new metadata region when growing, the
        blocks past the new end (and the new backup superblock's) when shrinking."""
        old, new = self.old, self.new
        if self.growing:
            return old.first_data_block, min(max(old.first_data_block, new.first_data_block), old.blocks_count)
        end_of_data = new.backup_sb_block or new.blocks_count
        return end_of_data, old.blocks_count

    def target_range(self) -> tuple[int, int]:
        """Blocks moved data may go to: data blocks in both geometries."""
        first = max(self.old.first_data_block, self.new.first_data_block)
        first_out, _ = self.vacate()
        return first, (self.old.blocks_count if self.growing else first_out)

    @property
    def renumbers(self) -> bool:
        return self.new.inode_slots < self.old.inode_slots


def new_geometry(old: Geometry, blocks: int, inodes: int) -> Geometry:
    """The geometry of `blocks` blocks and `inodes` inodes, keeping the table in place."""
    bitmap_blocks = ceil_div(blocks, C.BITMAP_BITS_PER_BLOCK)
    table_blocks = ceil_div(inodes, C.INODES_PER_BLOCK)
    start, table = old.bitmap_start, old.inode_table_start
    if bitmap_blocks > old.bitmap_blocks and table > start and start + bitmap_blocks > table:
        start = table + old.inode_table_blocks  # no room before the table: move after it
    first_data = max(table + table_blocks, start + bitmap_blocks)
    if blocks > old.blocks_count:
        first_data = max(first_data, old.first_data_block)
    backup = blocks - 1 if old.backup_sb_block else 0
    return Geometry(EXTENDED, blocks, inodes, start, bitmap_blocks, table, table_blocks, first_data, backup)


def inodes_for(old: Geometry, usage: Usage, blocks: int) -> int:
    """Growing keeps the inode count; shrinking keeps the bytes per inode (whole table
    blocks), never below what the inodes in use need."""
    if blocks >= old.blocks_count:
        return old.inodes_count
    scaled = ceil_div(ceil_div(old.inodes_count * blocks, old.blocks_count), C.INODES_PER_BLOCK) * C.INODES_PER_BLOCK
    return min(old.inodes_count, max(scaled, usage.inodes_needed()))


def minimum_blocks(old: Geometry, usage: Usage) -> int:
    """The smallest size a shrink can reach in one run (resize2fs -P): the data moved must
    fit between the old first data block and the new end."""
    backup = 1 if old.backup_sb_block else 0
    low = max(C.MIN_BLOCKS, old.first_data_block + usage.owned_blocks + backup)
    g = new_geometry(old, low, inodes_for(old, usage, low))
    return min(old.blocks_count, max(low, g.first_data_block + 2 + backup))


def plan_resize(old: Geometry, usage: Usage, blocks: int) -> ResizePlan:
    """The plan for `blocks`, refused with the reason when the file system can not take it."""
    if blocks > C.MAX_BLOCKS_COUNT:
        raise UsageError(f"{blocks} blocks is more than the extended layout addresses "
                         f"({C.MAX_BLOCKS_COUNT} blocks of 4096 bytes: 32-bit block numbers)")
    if blocks < old.blocks_count:
        minimum = minimum_blocks(old, usage)
        if blocks < minimum:
            raise UsageError(f"new size {blocks} blocks is smaller than the minimum ({minimum} blocks)")
    plan = ResizePlan(old, new_geometry(old, blocks, inodes_for(old, usage, blocks)))
    plan.new.validate(blocks)
    return plan


def moves_needed(volume: Volume, plan: ResizePlan) -> tuple[int, int]:
    """(blocks in use that must move, free blocks they can go to)."""
    first, end = plan.vacate()
    inside = int(volume.bitmap.bits(first, end - first).sum()) if end > first else 0
    lo, hi = plan.target_range()
    room = hi - lo - int(volume.bitmap.bits(lo, hi - lo).sum()) if hi > lo else 0
    return inside, room


def grow_step(volume: Volume, usage: Usage, target: int) -> ResizePlan:
    """The largest grow towards `target` whose moves fit in the free blocks (a grow that
    needs a bigger bitmap first empties the blocks the bitmap moves to; a nearly full or a
    tiny file system gets there in several steps)."""
    old = volume.geometry
    plan = plan_resize(old, usage, target)
    need, room = moves_needed(volume, plan)
    if need <= room:
        return plan
    low, high = old.blocks_count, target  # low fits (nothing moves), high does not
    while high - low > 1:
        middle = (low + high) // 2
        need, room = moves_needed(volume, plan_resize(old, usage, middle))
        low, high = (middle, high) if need <= room else (low, middle)
    if low == old.blocks_count:
        need, room = moves_needed(volume, plan)
        raise UsageError(f"growing needs {need} blocks in use moved out of the way of the bitmap, "
                         f"and only {room} blocks are free; free some space first")
    return plan_resize(old, usage, low)
