"""Findings: what the volume library noticed while reading, handed up as data.

The library never hands a sentence to another layer. Each finding is a code and its fields;
fsck's problem table and the CLIs' warning printer turn them into text at the edge, so a
rewording can not change what a caller decides.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Code(enum.Enum):
    """What was found. Fields used by each code are listed beside it."""

    SUPERBLOCK_CHECKSUM = "superblock_checksum"      # block, expected, found
    INODE_CHECKSUM = "inode_checksum"                # inode, expected, found
    BLOCK_OUT_OF_RANGE = "block_out_of_range"        # inode, block, index (logical block)
    INDIRECT_OUT_OF_RANGE = "indirect_out_of_range"  # inode, block
    INDIRECT_TWICE = "indirect_twice"                # inode, block
    DIRECTORY_CHAIN = "directory_chain"              # inode, block, detail (walk_block's words)
    SIZE_BEYOND_LAYOUT = "size_beyond_layout"        # inode, found (i_size), expected (max)


@dataclass(frozen=True)
class Finding:
    """One observation. Fields a code does not use stay None."""

    code: Code
    inode: int | None = None
    block: int | None = None
    index: int | None = None
    expected: int | None = None
    found: int | None = None
    detail: str | None = None
