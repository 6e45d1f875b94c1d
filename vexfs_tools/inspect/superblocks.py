"""Primary and backup superblocks side by side (dump.vexfs): which fields differ, and
whether each copy's checksum holds."""

from __future__ import annotations

from ..errors import VexfsError
from ..format import constants as C
from ..volume import checksums
from ..volume import superblock as sbio
from ..volume.volume import Volume

EXPECTED_DIFFERENT = ("s_block_group_nr", "s_checksum")  # the backup has 1 and its own checksum


def _value(value):
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, list):
        return list(value)
    return value


def _copy(volume: Volume, block: int) -> dict:
    raw = volume.device.read(block * C.BLOCK_SIZE, C.SUPERBLOCK_SIZE)
    sb = sbio.parse(raw)
    stored = sb.s_checksum
    computed = checksums.superblock_checksum(raw)
    checked = volume.features.has("metadata_csum") or stored != 0
    return {"block": block, "magic_ok": sb.s_magic == C.MAGIC, "group_nr": sb.s_block_group_nr,
            "checksum_ok": (stored == computed) if checked else None, "fields": sb}


def compare_superblocks(volume: Volume) -> dict:
    """{"status": "identical" | "different" | "none" | "unreadable", "primary": {...},
    "backup": {...}, "differences": [{"field", "primary", "backup"}]}. The backup is the one
    the superblock names (s_backup_sb_block); with the primary unusable (opened from the
    backup), block 0 is compared to the copy in use."""
    g = volume.geometry
    backup_block = g.backup_sb_block
    if volume.superblock_block:
        backup_block = volume.superblock_block
    result = {"status": "none", "primary": None, "backup": None, "differences": []}
    if not backup_block:
        return result
    try:
        primary = _copy(volume, 0)
        backup = _copy(volume, backup_block)
    except VexfsError as e:
        result["status"] = "unreadable"
        result["error"] = str(e)
        return result
    differences = []
    for name, value in primary["fields"].items():
        if name.startswith("_") or name in EXPECTED_DIFFERENT:
            continue
        other = backup["fields"][name]
        if value != other:
            differences.append({"field": name, "primary": _value(value), "backup": _value(other)})
    for copy in (primary, backup):
        del copy["fields"]
    notes = []
    if not backup["magic_ok"]:
        notes.append(f"no VexFS magic in block {backup_block}")
    if backup["group_nr"] != C.BACKUP_GROUP_NR:
        notes.append(f"the backup's s_block_group_nr is {backup['group_nr']}, not {C.BACKUP_GROUP_NR}")
    result.update(primary=primary, backup=backup, differences=differences, notes=notes,
                  status="identical" if not differences and backup["magic_ok"] else "different")
    return result
