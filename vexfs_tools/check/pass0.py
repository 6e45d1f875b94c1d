"""Pass 0: the superblock — checksum, geometry the kernel can not handle, the backup copy."""

from __future__ import annotations

import dataclasses

from ..format import constants as C
from ..volume import superblock as sbio
from ..volume.checksums import superblock_checksum
from ..volume.findings import Code
from ..volume.geometry import KERNEL
from .context import Checker


def run_pass0(checker: Checker) -> None:
    volume = checker.volume
    sb, g = volume.sb, volume.geometry
    if any(finding.code is Code.SUPERBLOCK_CHECKSUM for finding in volume.problems):
        if checker.fix("SB_CHECKSUM"):
            volume.sb_dirty = True
    if g.layout == KERNEL and g.addressable_blocks < g.blocks_count:
        if checker.fix("SB_BLOCKS_PAST_BITMAP", blocks=g.blocks_count, limit=g.addressable_blocks):
            sb.s_blocks_count = g.addressable_blocks
            volume.sb_dirty = True
            g = _set_geometry(volume, blocks_count=g.addressable_blocks)
    if g.layout == KERNEL and g.inodes_count - 1 > g.inode_table_blocks * C.INODES_PER_BLOCK:
        fix = g.inode_table_blocks * C.INODES_PER_BLOCK + 1
        if checker.fix("SB_INODES_PAST_TABLE", count=g.inodes_count, slots=g.inode_slots, fix=fix):
            sb.s_inodes_count = fix
            volume.sb_dirty = True
            g = _set_geometry(volume, inodes_count=fix)
    if g.layout != KERNEL and volume.features.has("backup_super") and g.backup_sb_block \
            and volume.superblock_block == 0:
        raw = volume.device.read(g.backup_sb_block * C.BLOCK_SIZE, C.SUPERBLOCK_SIZE)
        if not _same_superblock(volume, raw):
            if checker.fix("SB_BACKUP_DIFFERS", block=g.backup_sb_block):
                volume.sb_dirty = True


def _set_geometry(volume, **changes):
    """The superblock's geometry was corrected: the passes after this one (and the counts
    they write) must see the new one."""
    volume.geometry = dataclasses.replace(volume.geometry, **changes)
    volume.bitmap.geometry = volume.geometry
    return volume.geometry


def _same_superblock(volume, backup_raw: bytes) -> bool:
    """The backup equals the primary but for s_block_group_nr and s_checksum, and (with
    metadata_csum) its own checksum holds."""
    backup = sbio.parse(backup_raw)
    stored = backup.s_checksum
    primary = volume.sb.copy()
    backup.s_block_group_nr = primary.s_block_group_nr = 0
    if sbio.build(backup, with_checksum=False) != sbio.build(primary, with_checksum=False):
        return False
    return not volume.features.has("metadata_csum") or stored == superblock_checksum(backup_raw)
