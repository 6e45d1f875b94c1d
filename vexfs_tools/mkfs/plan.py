"""Turning mkfs options and a device size into a complete, checked plan (nothing written)."""

from __future__ import annotations

import os
import uuid as uuidlib
from dataclasses import dataclass, field

from ..errors import UsageError
from ..format import constants as C
from ..format import features as F
from ..volume.geometry import EXTENDED, KERNEL, Geometry, ceil_div
from ..volume.superblock import FeatureSet
from ..volume.volume import now

DEFAULT_BYTES_PER_INODE = 16384  # mke2fs's default ratio


@dataclass
class MkfsOptions:
    layout: str = EXTENDED
    label: str | None = None
    uuid: str | None = None
    inodes: int | None = None
    bytes_per_inode: int | None = None
    features: str | None = None  # "-O" list: "a,^b"
    root_directory: str | None = None


@dataclass
class MkfsPlan:
    geometry: Geometry
    features: FeatureSet
    label: bytes
    uuid: bytes
    timestamp: int
    device_blocks: int
    warnings: list[str] = field(default_factory=list)

    @property
    def layout(self) -> str:
        return self.geometry.layout


def parse_label(label: str | None) -> bytes:
    if label is None:
        return C.KERNEL_DEFAULT_LABEL
    raw = os.fsencode(label)
    if len(raw) > 15:
        raise UsageError(f"label {label!r} is {len(raw)} bytes long; the limit is 15")
    if b"\0" in raw:
        raise UsageError("a label can not contain a NUL byte")
    return raw


def parse_uuid(text: str | None, layout: str) -> bytes:
    if text is None:
        return bytes(16) if layout == KERNEL else uuidlib.uuid4().bytes
    if text == "null":
        return bytes(16)
    if text == "random":
        return uuidlib.uuid4().bytes
    if text == "time":
        return uuidlib.uuid1().bytes
    try:
        return uuidlib.UUID(text).bytes
    except ValueError:
        raise UsageError(f"invalid UUID {text!r}") from None


def parse_features(spec: str | None, layout: str) -> FeatureSet:
    if layout == KERNEL:
        if spec:
            raise UsageError("the kernel layout has no features; -O can not be used with --compat kernel")
        return FeatureSet(0, 0, 0)
    names = list(F.DEFAULT_EXTENDED)
    for token in (spec or "").split(","):
        token = token.strip()
        if not token or token == "none":
            if token == "none":
                names = list(F.REQUIRED_EXTENDED)
            continue
        off = token.startswith("^")
        name = token[1:] if off else token
        if name not in F.BY_NAME:
            known = ", ".join(f.name for f in F.FEATURES)
            raise UsageError(f"unknown feature {name!r} (known: {known})")
        if off:
            if name in F.REQUIRED_EXTENDED:
                raise UsageError(f"{name} is what makes the extended layout; use --compat kernel instead")
            names = [n for n in names if n != name]
        elif name not in names:
            names.append(name)
    return FeatureSet.from_names(names)


def make_plan(options: MkfsOptions, device_size: int) -> MkfsPlan:
    """Everything mkfs will write, decided and checked before a byte is written."""
    layout = options.layout
    label = parse_label(options.label)
    features = parse_features(options.features, layout)
    device_blocks = device_size // C.BLOCK_SIZE
    if device_blocks < C.MIN_BLOCKS:
        raise UsageError(f"device is too small: {device_blocks} blocks of 4096 bytes "
                         f"({device_size} bytes); at least {C.MIN_BLOCKS} are needed")
    warnings = []
    if layout == KERNEL:
        if options.inodes is not None or options.bytes_per_inode is not None:
            raise UsageError("the kernel layout has a fixed inode count (1024); -N and -i can not be used with it")
        blocks = device_blocks
        if blocks > C.KERNEL_MAX_BLOCKS:
            warnings.append(
                f"the kernel layout addresses only the first {C.KERNEL_MAX_BLOCKS} blocks (128 MiB) "
                f"of this {device_blocks}-block device; formatting just those")
            blocks = C.KERNEL_MAX_BLOCKS
        geometry = Geometry.kernel(blocks)
    else:
        blocks = min(device_blocks, C.MAX_BLOCKS_COUNT)
        if device_blocks > C.MAX_BLOCKS_COUNT:
            warnings.append(f"32-bit block numbers reach {C.MAX_BLOCKS_COUNT} blocks; the rest of the "
                            "device is left unused")
        geometry = Geometry.extended(blocks, _inode_count(options, blocks),
                                     backup=features.has("backup_super"))
        needed = geometry.first_data_block + 2 + (1 if geometry.backup_sb_block else 0)
        if needed > blocks:
            raise UsageError(f"{geometry.inodes_count} inodes need {geometry.inode_table_blocks} "
                             f"inode table blocks; the device has only {blocks} blocks in all")
    return MkfsPlan(geometry, features, label, parse_uuid(options.uuid, layout), now(), device_blocks,
                    warnings)


def _inode_count(options: MkfsOptions, blocks: int) -> int:
    if options.inodes is not None:
        if not 16 <= options.inodes <= C.MAX_INODES_COUNT:
            raise UsageError(f"inode count {options.inodes} is out of range (16..{C.MAX_INODES_COUNT})")
        return options.inodes
    ratio = options.bytes_per_inode or DEFAULT_BYTES_PER_INODE
    if not 1024 <= ratio <= 1 << 26:
        raise UsageError(f"bytes per inode {ratio} is out of range (1024..67108864)")
    count = blocks * C.BLOCK_SIZE // ratio
    return max(C.EXTENDED_FIRST_INO + 16, min(count, C.MAX_INODES_COUNT - C.INODES_PER_BLOCK))


def describe(plan: MkfsPlan) -> list[str]:
    """The layout, as -n and -v print it."""
    g = plan.geometry
    lines = [
        f"Layout:                   {plan.layout}",
        f"Block size:               {C.BLOCK_SIZE}",
        f"Blocks:                   {g.blocks_count} ({g.blocks_count * C.BLOCK_SIZE} bytes)",
        f"Inodes:                   {g.inodes_count}",
        f"Features:                 {' '.join(plan.features.names()) or '(none)'}",
        f"Label:                    {plan.label.decode('utf-8', 'replace')}",
        f"UUID:                     {uuidlib.UUID(bytes=plan.uuid)}",
        f"Block bitmap:             blocks {g.bitmap_start}-{g.bitmap_start + g.bitmap_blocks - 1}",
        f"Inode table:              blocks {g.inode_table_start}-{g.inode_table_start + g.inode_table_blocks - 1}",
        f"Root directory block:     {g.first_data_block}",
    ]
    if g.layout == EXTENDED:
        lines.append(f"lost+found block:         {g.first_data_block + 1} (inode {C.LOST_FOUND_INO})")
    if g.backup_sb_block:
        lines.append(f"Backup superblock:        block {g.backup_sb_block}")
    return lines


__all__ = ["MkfsOptions", "MkfsPlan", "make_plan", "describe", "ceil_div"]
