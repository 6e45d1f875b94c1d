"""Pass 0: the superblock — checksum, geometry the kernel can not handle, the backup copy."""

from __future__ import annotations

import dataclasses
from collections.abc import Container

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
    if g.layout != KERNEL:
        _check_fields(checker)
    if g.layout != KERNEL and volume.features.has("backup_super") and g.backup_sb_block \
            and volume.superblock_block == 0:
        raw = volume.device.read(g.backup_sb_block * C.BLOCK_SIZE, C.SUPERBLOCK_SIZE)
        if not _same_superblock(volume, raw):
            if checker.fix("SB_BACKUP_DIFFERS", block=g.backup_sb_block):
                volume.sb_dirty = True


def field_rules(volume) -> list[tuple[str, Container[int], int, str]]:
    """(field, allowed values, value to set, why) of the extended superblock's fields that
    have one right value (FORMAT.md's field-by-field table); the kernel reads none of them."""
    csum = C.CHECKSUM_TYPE_CRC32C if volume.features.has("metadata_csum") else 0
    past_table = volume.geometry.inode_slots + 1
    if volume.lazy_itable:  # at least past /lost+found, at most past the last slot
        mark = ("s_itable_mark", range(C.LOST_FOUND_INO + 1, past_table + 1), past_table,
                f"{C.LOST_FOUND_INO + 1} to {past_table} with lazy_itable")
    else:
        mark = ("s_itable_mark", {0}, 0, "no lazy_itable")
    return [
        ("s_block_size", {C.BLOCK_SIZE}, C.BLOCK_SIZE, "the block size is fixed"),
        ("s_log_block_size", {C.LOG_BLOCK_SIZE}, C.LOG_BLOCK_SIZE, "1024 << 2 is the block size"),
        ("s_inode_size", {C.INODE_SIZE}, C.INODE_SIZE, "the inode record is fixed"),
        ("s_first_ino", {C.EXTENDED_FIRST_INO}, C.EXTENDED_FIRST_INO, "inodes 2-10 are reserved"),
        ("s_lpf_ino", {C.LOST_FOUND_INO}, C.LOST_FOUND_INO, "/lost+found is inode 11"),
        ("s_errors", {1, 2, 3}, C.ERRORS_CONTINUE, "continue, remount-ro or panic"),
        ("s_checksum_type", {csum}, csum, "crc32c with metadata_csum, else none"),
        mark,
    ]


def _check_fields(checker: Checker) -> None:
    volume = checker.volume
    for name, allowed, fix, why in field_rules(volume):
        found = getattr(volume.sb, name)
        if found not in allowed and checker.fix("SB_FIELD", field=name, found=found, expected=fix, why=why):
            setattr(volume.sb, name, fix)
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
