"""Planning `vexfs resize` (resize2fs): the geometry a new size gets, which blocks must be
emptied first, and the smallest size the file system fits in. Nothing here writes.

The extended layout keeps its regions in this order: superblock, then the bitmap and the
inode table (mkfs: bitmap first), then data, the backup superblock last. The inode table
never moves (every inode's place is computed from its start): it grows and shrinks at its
end, keeping the bytes per inode; the bitmap grows in place when the blocks after it can be
emptied, or else moves to just after the table's new end (its old blocks stay reserved,
FORMAT.md "Resize").
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
MAX_INODES = C.MAX_INODES_COUNT // C.INODES_PER_BLOCK * C.INODES_PER_BLOCK  # whole table blocks


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
    """The geometry of `blocks` blocks and `inodes` inodes, keeping the table's start. A
    table grows at its end, in one step only over blocks the old file system can give up
    before the switch: never over the old bitmap nor the old backup superblock (a bitmap in
    the way moves past the table's new end first; run_resize takes another step)."""
    bitmap_blocks = ceil_div(blocks, C.BITMAP_BITS_PER_BLOCK)
    start, table = old.bitmap_start, old.inode_table_start
    wanted = ceil_div(inodes, C.INODES_PER_BLOCK)
    table_blocks = wanted
    if wanted > old.inode_table_blocks:
        limit = old.blocks_count - (1 if old.backup_sb_block else 0)
        if start > table:
            limit = min(limit, start)
        table_blocks = max(old.inode_table_blocks, min(wanted, limit - table))
        if table_blocks < wanted:
            inodes = table_blocks * C.INODES_PER_BLOCK
    if start > table:  # after the table (moved there by an earlier resize)
        if start < table + wanted:
            start = max(table + wanted, old.bitmap_start + old.bitmap_blocks)
    elif bitmap_blocks > old.bitmap_blocks and start + bitmap_blocks > table:
        start = table + wanted  # no room before the table: move after it
    first_data = max(table + table_blocks, start + bitmap_blocks)
    if blocks > old.blocks_count:
        first_data = max(first_data, old.first_data_block)
    backup = blocks - 1 if old.backup_sb_block else 0
    return Geometry(EXTENDED, blocks, inodes, start, bitmap_blocks, table, table_blocks, first_data, backup)


@dataclass(frozen=True)
class InodeRatio:
    """Inodes per block of the file system a resize started from: a grow in several steps
    ends with the inode count one step would give."""
    inodes: int
    blocks: int

    @classmethod
    def of(cls, geometry: Geometry) -> "InodeRatio":
        return cls(geometry.inodes_count, geometry.blocks_count)


def inodes_for(old: Geometry, usage: Usage, blocks: int, ratio: InodeRatio | None = None) -> int:
    """Growing keeps the blocks per inode (resize2fs adds inode tables with the groups it
    adds); shrinking keeps the bytes per inode too, never below what the inodes in use need.
    Whole table blocks either way."""
    ratio = ratio or InodeRatio.of(old)
    per = C.INODES_PER_BLOCK
    scaled = ceil_div(ceil_div(ratio.inodes * blocks, ratio.blocks), per) * per
    if blocks >= old.blocks_count:
        return max(old.inodes_count, min(scaled, MAX_INODES))
    return min(old.inodes_count, max(scaled, usage.inodes_needed()))


def minimum_blocks(old: Geometry, usage: Usage) -> int:
    """The smallest size a shrink can reach in one run (resize2fs -P): the data moved must
    fit between the old first data block and the new end."""
    backup = 1 if old.backup_sb_block else 0
    low = max(C.MIN_BLOCKS, old.first_data_block + usage.owned_blocks + backup)
    g = new_geometry(old, low, inodes_for(old, usage, low))
    return min(old.blocks_count, max(low, g.first_data_block + 2 + backup))


def plan_resize(old: Geometry, usage: Usage, blocks: int, ratio: InodeRatio | None = None) -> ResizePlan:
    """The plan for `blocks`, refused with the reason when the file system can not take it."""
    if blocks > C.MAX_BLOCKS_COUNT:
        raise UsageError(f"{blocks} blocks is more than the extended layout addresses "
                         f"({C.MAX_BLOCKS_COUNT} blocks of 4096 bytes: 32-bit block numbers)")
    if blocks < old.blocks_count:
        minimum = minimum_blocks(old, usage)
        if blocks < minimum:
            raise UsageError(f"new size {blocks} blocks is smaller than the minimum ({minimum} blocks)")
    plan = ResizePlan(old, new_geometry(old, blocks, inodes_for(old, usage, blocks, ratio)))
    plan.new.validate(blocks)
    return plan


def moves_needed(volume: Volume, plan: ResizePlan) -> tuple[int, int]:
    """(blocks in use that must move, free blocks they can go to)."""
    first, end = plan.vacate()
    inside = int(volume.bitmap.bits(first, end - first).sum()) if end > first else 0
    lo, hi = plan.target_range()
    room = hi - lo - int(volume.bitmap.bits(lo, hi - lo).sum()) if hi > lo else 0
    return inside, room


def grow_step(volume: Volume, usage: Usage, target: int, ratio: InodeRatio | None = None) -> ResizePlan:
    """The largest grow towards `target` whose moves fit in the free blocks (a grow that
    needs a bigger bitmap or table first empties the blocks they grow into; a nearly full or
    a tiny file system gets there in several steps)."""
    old = volume.geometry
    plan = plan_resize(old, usage, target, ratio)
    need, room = moves_needed(volume, plan)
    if need <= room:
        return plan
    low, high = old.blocks_count, target  # high does not fit; low may not either (its table may grow)
    while high - low > 1:
        middle = (low + high) // 2
        need, room = moves_needed(volume, plan_resize(old, usage, middle, ratio))
        low, high = (middle, high) if need <= room else (low, middle)
    step = plan_resize(old, usage, low, ratio)
    step_need, step_room = moves_needed(volume, step)
    if step.new == old or step_need > step_room:
        need, room = moves_needed(volume, plan)
        raise UsageError(f"growing needs {need} blocks in use moved out of the way of the bitmap "
                         f"and the inode table, and only {room} blocks are free; free some space first")
    return step
