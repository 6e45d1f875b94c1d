"""Feature flags: names, bits, and which word each lives in (docs/FORMAT.md, "Features").

ext4's rules: a tool must refuse to read an image with an unknown incompat bit, and to
write one with an unknown incompat or ro_compat bit. Unknown compat bits are harmless.
"""

from __future__ import annotations

from dataclasses import dataclass

COMPAT = "compat"
RO_COMPAT = "ro_compat"
INCOMPAT = "incompat"


@dataclass(frozen=True)
class Feature:
    """A feature flag: its name, its word (compat, ro_compat, incompat) and its bit."""
    name: str
    word: str  # COMPAT, RO_COMPAT or INCOMPAT
    bit: int
    summary: str


FEATURES: tuple[Feature, ...] = (
    Feature("backup_super", COMPAT, 0x0001,
            "a backup superblock in the last block of the file system"),
    Feature("metadata_csum", RO_COMPAT, 0x0001,
            "crc32c checksums on superblock, inodes, bitmaps, directory and indirect blocks"),
    Feature("vector_files", RO_COMPAT, 0x0002,
            "vector files may exist (inode flag 0x1); their content format is versioned"),
    Feature("lazy_itable", RO_COMPAT, 0x0004,
            "inodes from s_itable_mark on were never used: their table blocks are not read"),
    Feature("flex_geometry", INCOMPAT, 0x0001,
            "geometry recorded in the superblock; the extended layout"),
    Feature("indirect_blocks", INCOMPAT, 0x0002,
            "single/double/triple indirect block pointers: files beyond 48 KiB"),
    Feature("large_dir", INCOMPAT, 0x0004,
            "directories of more than one block"),
)

BY_NAME = {f.name: f for f in FEATURES}
KNOWN_MASK = {
    word: sum(f.bit for f in FEATURES if f.word == word) for word in (COMPAT, RO_COMPAT, INCOMPAT)
}
DEFAULT_EXTENDED = ("backup_super", "metadata_csum", "lazy_itable", "flex_geometry", "indirect_blocks",
                    "large_dir")
# Features that every extended-layout image carries (mkfs refuses ^flex_geometry).
REQUIRED_EXTENDED = ("flex_geometry",)
