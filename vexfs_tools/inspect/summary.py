"""The superblock and what the bitmaps and inode table really hold (dumpe2fs -h, plus counts)."""

from __future__ import annotations

import uuid as uuidlib

from ..format import constants as C
from ..volume import checksums
from ..volume.volume import Volume

STATES = {C.STATE_CLEAN: "clean", C.STATE_ERRORS: "with errors", 0: "not clean"}
ERRORS = {1: "Continue", 2: "Remount read-only", 3: "Panic"}


def label_of(sb) -> str:
    return sb.s_volume_name.split(b"\0")[0].decode("utf-8", "replace")


def summary(volume: Volume) -> dict:
    """Every field a person checks first, recorded and counted side by side."""
    sb, g = volume.sb, volume.geometry
    used_inodes = volume.count_used_inodes()
    free_blocks = volume.count_free_blocks()
    raw = volume.device.read(0, C.SUPERBLOCK_SIZE) if not volume.superblock_block else None
    result = {
        "device": volume.device.path,
        "superblock": f"backup at block {volume.superblock_block}" if volume.superblock_block else "primary",
        "label": label_of(sb),
        "uuid": str(uuidlib.UUID(bytes=bytes(sb.s_uuid))),
        "magic": f"0x{sb.s_magic:08x}",
        "layout": volume.layout,
        "features": volume.features.names(),
        "state": STATES.get(sb.s_state, f"unknown ({sb.s_state})"),
        "errors_behavior": ERRORS.get(sb.s_errors, f"unknown ({sb.s_errors})"),
        "revision": sb.s_rev_level,
        "block_size": C.BLOCK_SIZE,
        "blocks_count": g.blocks_count,
        "device_blocks": volume.device.size // C.BLOCK_SIZE,
        "inodes_count": g.inodes_count,
        "inode_size": sb.s_inode_size,
        "first_inode": g.first_allocatable_ino,
        "free_blocks": {"recorded": sb.s_free_blocks, "counted": free_blocks},
        "free_inodes": {"recorded": sb.s_free_inodes, "counted": volume.count_free_inodes()},
        "used_inodes": used_inodes,
        "used_blocks": g.addressable_blocks - free_blocks,
        "geometry": {
            "block_bitmap": [g.bitmap_start, g.bitmap_blocks],
            "inode_table": [g.inode_table_start, g.inode_table_blocks],
            "first_data_block": g.first_data_block,
            "backup_superblock": g.backup_sb_block or None,
            "addressable_blocks": g.addressable_blocks,
        },
        "times": {"mkfs": sb.s_mkfs_time, "write": sb.s_wtime, "mount": sb.s_mtime,
                  "last_check": sb.s_lastcheck},
        "mount_count": sb.s_mnt_count,
        "max_mount_count": sb.s_max_mnt_count,
        "checksum": None,
        "problems": [str(problem) for problem in volume.problems],
    }
    if volume.features.has("metadata_csum"):
        stored = sb.s_checksum
        computed = checksums.superblock_checksum(raw) if raw is not None else None
        result["checksum"] = {"type": "crc32c", "stored": f"0x{stored:08x}",
                              "ok": computed is None or computed == stored}
    return result
