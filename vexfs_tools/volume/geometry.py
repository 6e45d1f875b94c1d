"""Where everything is: computed for mkfs, or read and validated from a superblock.

The kernel layout's geometry is fixed (the kernel never reads it from disk); the extended
layout records it in the superblock (docs/FORMAT.md, "Geometry").
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..errors import FormatError
from ..format import constants as C

KERNEL = "kernel"
EXTENDED = "extended"


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Geometry:
    """Where a file system's regions lie, from its superblock (or a plan for one)."""
    layout: str
    blocks_count: int
    inodes_count: int
    bitmap_start: int
    bitmap_blocks: int
    inode_table_start: int
    inode_table_blocks: int
    first_data_block: int
    backup_sb_block: int  # 0: none

    @property
    def bits_per_bitmap_block(self) -> int:
        return C.BLOCK_SIZE * 8 if self.layout == KERNEL else C.BITMAP_BITS_PER_BLOCK

    @functools.cached_property  # a frozen dataclass: computed once (asked per inode read)
    def addressable_blocks(self) -> int:
        """Blocks the bitmap can describe: past these the kernel overruns its buffer."""
        return min(self.blocks_count, self.bitmap_blocks * self.bits_per_bitmap_block)

    @functools.cached_property  # a frozen dataclass: computed once (asked per inode read)
    def inode_slots(self) -> int:
        """Inode numbers 1..inode_slots have a slot in the inode table."""
        return min(self.inodes_count, self.inode_table_blocks * C.INODES_PER_BLOCK)

    @property
    def first_allocatable_ino(self) -> int:
        return 2 if self.layout == KERNEL else C.EXTENDED_FIRST_INO

    @property
    def last_allocatable_ino(self) -> int:
        # The kernel scans 1 .. s_inodes_count - 1.
        if self.layout == KERNEL:
            return min(self.inodes_count - 1, self.inode_slots)
        return self.inode_slots

    def is_data_block(self, block: int) -> bool:
        """May an inode's pointer name `block`? Inside the blocks the bitmap describes, not
        below the first data block, not the backup superblock: the one rule."""
        return self.first_data_block <= block < self.addressable_blocks and block != self.backup_sb_block

    def data_block_mask(self, blocks: np.ndarray) -> np.ndarray:
        """is_data_block over an array of block numbers (bools of the same shape). On uint32
        pointers one comparison finds both ends of the range: a block below the first data
        block wraps around to a large number."""
        blocks = np.asarray(blocks)
        first = self.first_data_block
        if blocks.dtype == np.uint32:
            mask = (blocks - np.uint32(first)) < np.uint32(self.addressable_blocks - first)
        else:
            mask = (blocks >= first) & (blocks < self.addressable_blocks)
        if self.backup_sb_block:
            mask &= blocks != self.backup_sb_block
        return mask

    def inode_location(self, ino: int) -> tuple[int, int]:
        """(block, byte offset) of inode `ino`."""
        index = ino - 1
        return (self.inode_table_start + index // C.INODES_PER_BLOCK,
                (index % C.INODES_PER_BLOCK) * C.INODE_SIZE)

    def metadata_ranges(self) -> list[tuple[int, int, str]]:
        """(first block, count, what) of every fixed metadata region."""
        ranges = [(0, 1, "superblock"),
                  (self.bitmap_start, self.bitmap_blocks, "block bitmap"),
                  (self.inode_table_start, self.inode_table_blocks, "inode table")]
        if self.backup_sb_block:
            ranges.append((self.backup_sb_block, 1, "backup superblock"))
        return ranges + self.reserved_gaps(ranges)

    def reserved_gaps(self, ranges: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
        """Blocks below the first data block that no region covers (left by vexfs resize
        when it moves the bitmap or shrinks the table): not data blocks, so metadata too."""
        gaps, position = [], 0
        for start, count, _ in sorted(r for r in ranges if r[0] < self.first_data_block):
            if start > position:
                gaps.append((position, start - position, "reserved"))
            position = max(position, start + count)
        if position < self.first_data_block:
            gaps.append((position, self.first_data_block - position, "reserved"))
        return gaps

    # --- construction -------------------------------------------------------------------

    @classmethod
    def kernel(cls, blocks_count: int, inodes_count: int = C.KERNEL_INODES_COUNT) -> "Geometry":
        return cls(KERNEL, blocks_count, inodes_count, C.KERNEL_BITMAP_BLOCK, 1,
                   C.KERNEL_INODE_TABLE_START, C.KERNEL_INODE_TABLE_BLOCKS,
                   C.KERNEL_ROOT_DIR_BLOCK, 0)

    @classmethod
    def extended(cls, blocks_count: int, inodes_wanted: int, *, backup: bool = True) -> "Geometry":
        """The extended layout for a new file system: superblock, bitmap, inode table, data;
        the backup superblock in the last block."""
        bitmap_blocks = ceil_div(blocks_count, C.BITMAP_BITS_PER_BLOCK)
        table_blocks = ceil_div(max(inodes_wanted, 1), C.INODES_PER_BLOCK)
        inodes = min(table_blocks * C.INODES_PER_BLOCK, C.MAX_INODES_COUNT)
        table_start = 1 + bitmap_blocks
        return cls(EXTENDED, blocks_count, inodes, 1, bitmap_blocks, table_start, table_blocks,
                   table_start + table_blocks, blocks_count - 1 if backup else 0)

    @classmethod
    def from_superblock(cls, sb, *, extended: bool, device_blocks: int) -> "Geometry":
        """Read the geometry a superblock describes, refusing one that can not be right."""
        if not extended:
            geometry = cls.kernel(sb.s_blocks_count, sb.s_inodes_count)
        else:
            geometry = cls(EXTENDED, sb.s_blocks_count, sb.s_inodes_count, sb.s_bitmap_start,
                           sb.s_bitmap_blocks, sb.s_inode_table_start, sb.s_inode_table_blocks,
                           sb.s_first_data_block, sb.s_backup_sb_block)
        geometry.validate(device_blocks)
        return geometry

    def validate(self, device_blocks: int) -> None:
        if self.blocks_count < C.MIN_BLOCKS:
            raise FormatError(f"superblock says {self.blocks_count} blocks; the minimum is {C.MIN_BLOCKS}")
        if self.blocks_count > device_blocks:
            raise FormatError(
                f"superblock says {self.blocks_count} blocks but the device holds only "
                f"{device_blocks}: truncated image or wrong device")
        if self.inodes_count < 2:
            raise FormatError(f"superblock says {self.inodes_count} inodes")
        if self.layout == KERNEL:
            return
        if self.bitmap_start < 1 or self.bitmap_blocks != ceil_div(self.blocks_count, C.BITMAP_BITS_PER_BLOCK):
            raise FormatError(f"bitmap geometry (start {self.bitmap_start}, {self.bitmap_blocks} blocks) "
                              f"does not fit {self.blocks_count} blocks")
        if self.inode_table_blocks * C.INODES_PER_BLOCK < self.inodes_count:
            raise FormatError(f"inode table of {self.inode_table_blocks} blocks can not hold "
                              f"{self.inodes_count} inodes")
        regions = sorted((start, count) for start, count, _ in self.metadata_ranges())
        for (a, na), (b, _) in zip(regions, regions[1:]):
            if a + na > b:
                raise FormatError("metadata regions in the superblock overlap")
        if regions[-1][0] + regions[-1][1] > self.blocks_count:
            raise FormatError("metadata regions reach past the end of the file system")
        if not self.inode_table_start + self.inode_table_blocks <= self.first_data_block < self.blocks_count:
            raise FormatError(f"first data block {self.first_data_block} is not after the inode table")
