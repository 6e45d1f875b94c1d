"""The whole of mkfs as one library call: size, plan, checks, format, populate.

Every refusal happens before the first write, and before an image file is created.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..device import Device
from ..errors import DeviceError, UsageError
from ..format import constants as C
from ..format.offsets import SUPERBLOCK_LABEL, SUPERBLOCK_MAGIC
from . import populate as populate_mod
from .create import format_device, planned_volume
from .plan import MkfsOptions, MkfsPlan, make_plan

SIZE_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
# ext2/3/4's superblock: 1024 bytes in, its s_magic 0xEF53 at byte 56 (not ours to declare).
EXT2_MAGIC_AT, EXT2_MAGIC = 1024 + 56, b"\x53\xef"


def parse_size(text: str) -> int:
    """'64M', '1T', '1GiB', '4096' -> bytes (binary units, as mke2fs and truncate use)."""
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    number, suffix = raw, ""
    if raw and raw[-1] in SIZE_SUFFIXES:
        number, suffix = raw[:-1], raw[-1]
    try:
        value = int(number) * SIZE_SUFFIXES[suffix]
    except (ValueError, KeyError):
        raise UsageError(f"invalid size {text!r} (examples: 64M, 10G, 1T)") from None
    if value <= 0:
        raise UsageError(f"invalid size {text!r}: must be positive")
    return value


@dataclass
class MkfsResult:
    plan: MkfsPlan
    inodes_written: int = 0
    created: bool = False
    messages: list[str] = field(default_factory=list)


def describe_existing(device: Device) -> str | None:
    """What the first 4 KiB of a device hold, if anything (None when all zero)."""
    head = device.read(0, min(C.BLOCK_SIZE, device.size))
    if not any(head):
        return None
    if int.from_bytes(SUPERBLOCK_MAGIC.of(head), "little") == C.MAGIC:
        label = SUPERBLOCK_LABEL.of(head).split(b"\0")[0].decode("utf-8", "replace")
        return f"a VexFS file system (label {label!r})"
    if device.size >= EXT2_MAGIC_AT + len(EXT2_MAGIC):
        if device.read(EXT2_MAGIC_AT, len(EXT2_MAGIC)) == EXT2_MAGIC:
            return "an ext2/3/4 file system"
    return "data"


def run_mkfs(path: str, options: MkfsOptions, *, size: int | None = None, force: bool = False,
             dry_run: bool = False) -> MkfsResult:
    exists = os.path.lexists(path)
    if exists and os.path.isdir(path):
        raise DeviceError(f"{path}: is a directory, not an image file or a block device")
    if not exists and size is None:
        raise DeviceError(f"{path}: no such file or device (give -s SIZE to create an image file)")
    if exists:
        with Device(path) as probe:
            device_size = probe.size
            is_block = probe.is_block_device
            existing = describe_existing(probe) if probe.size else None
    else:
        device_size, is_block, existing = 0, False, None
    if size is not None:
        if is_block and size > device_size:
            raise UsageError(f"-s {size} is larger than the device ({device_size} bytes)")
        device_size = size
    plan = make_plan(options, device_size)
    result = MkfsResult(plan)
    if existing and not force and not dry_run:
        raise UsageError(f"{path} contains {existing}; use -f to overwrite it")
    nodes = None
    if options.root_directory is not None:
        nodes = populate_mod.scan_tree(planned_volume(plan), options.root_directory)
    if dry_run:
        return result
    create_size = None
    if size is not None and not is_block:
        create_size = max(size, os.path.getsize(path) if exists else 0)
    device = Device(path, writable=True, create_size=create_size)
    result.created = not exists
    try:
        volume = format_device(device, plan)
        if nodes is not None:
            clamp = plan.timestamp if "SOURCE_DATE_EPOCH" in os.environ else None
            result.inodes_written = populate_mod.populate(volume, nodes, clamp_time=clamp)
        volume.close()
    except BaseException:
        device.close()
        raise
    return result

