"""Findings: what the volume library noticed while reading, handed up as data.

The library never hands a sentence to another layer. Each finding is a code and its fields;
fsck's problem table and the CLIs' warning printer turn them into text at the edge, so a
rewording can not change what a caller decides. `describe` holds the library's own words
for a finding, for the views that list findings as they are.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Code(enum.Enum):
    """What was found. Fields used by each code are listed beside it."""

    SUPERBLOCK_CHECKSUM = "superblock_checksum"      # block, expected, found, detail (device path)
    INODE_CHECKSUM = "inode_checksum"                # inode, expected, found
    BLOCK_OUT_OF_RANGE = "block_out_of_range"        # inode, block, index (logical block)
    INDIRECT_OUT_OF_RANGE = "indirect_out_of_range"  # inode, block
    INDIRECT_TWICE = "indirect_twice"                # inode, block
    DIRECTORY_CHAIN = "directory_chain"              # inode, block, detail (walk_block's words)
    SIZE_BEYOND_LAYOUT = "size_beyond_layout"        # inode, found (i_size), expected (max)
    ENTRY_INODE_OUT_OF_RANGE = "entry_inode_out_of_range"  # inode (directory), found (entry's), detail (path)


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

    def __str__(self) -> str:
        return describe(self)


def describe(finding: Finding) -> str:
    """The finding in the library's words (what the block map and directory walk said
    before findings were data; the views print these)."""
    f = finding
    if f.code is Code.SUPERBLOCK_CHECKSUM:
        where = f.detail if not f.block else f"{f.detail} (superblock at block {f.block})"
        return f"{where}: superblock checksum 0x{f.found:08x} does not match its contents (0x{f.expected:08x})"
    if f.code is Code.INODE_CHECKSUM:
        return f"inode {f.inode}: checksum 0x{f.found:08x} does not match its contents (0x{f.expected:08x})"
    if f.code is Code.BLOCK_OUT_OF_RANGE:
        return f"block {f.block} at logical {f.index} is out of range"
    if f.code is Code.INDIRECT_OUT_OF_RANGE:
        return f"indirect block {f.block} is out of range"
    if f.code is Code.INDIRECT_TWICE:
        return f"indirect block {f.block} is referenced twice"
    if f.code is Code.DIRECTORY_CHAIN:
        return f"directory inode {f.inode}, block {f.block}: {f.detail}"
    if f.code is Code.ENTRY_INODE_OUT_OF_RANGE:
        return f"{f.detail}: inode {f.found} is out of range"
    return f"inode {f.inode}: i_size {f.found} is more than its layout can address ({f.expected} bytes)"
