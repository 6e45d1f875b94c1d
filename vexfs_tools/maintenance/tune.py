"""`vexfs tune` (tune2fs): change superblock fields and offline features of an unmounted image.

Everything is checked before the first byte is written, so a refusal leaves the image as it
was. The superblock is written last: an interrupted checksum rewrite leaves an image whose
superblock still says what it said before (fsck reports the blocks already rewritten; the
undo file, -z, puts every byte back).

A new UUID keeps s_checksum_seed (ext4's metadata_csum_seed idea, FORMAT.md section 7), so no
checksum changes with it.
"""

from __future__ import annotations

import dataclasses
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import UsageError
from ..format import constants as C
from ..format import features as F
from ..format.offsets import BLOCK_TAIL_OFFSET, INODE_CHECKSUM_OFFSET
from ..mkfs.plan import parse_label
from ..mkfs.plan import parse_uuid as mkfs_uuid
from ..undo import UndoRecorder
from ..volume import checksums, directory
from ..volume import superblock as sbio
from ..volume.bitmap import BlockBitmap
from ..volume.blockmap import block_runs
from ..volume.geometry import EXTENDED, KERNEL
from ..volume.volume import Volume
from .walk import directory_blocks, indirect_blocks, used_inodes

ERRORS_BEHAVIOR = {"continue": 1, "remount-ro": 2, "panic": 3}
INTERVAL_UNITS = {"s": 1, "d": 86400, "w": 7 * 86400, "m": 30 * 86400}
# Features whose change needs no data moved, with what has to hold first.
OFFLINE_FEATURES = ("backup_super", "metadata_csum", "vector_files", "indirect_blocks", "large_dir",
                    "lazy_itable")
CHUNK_BLOCKS = 256  # inode table and bitmap blocks rewritten per read: 1 MiB


@dataclass
class TuneRequest:
    """What to change; None: leave as it is."""
    label: str | None = None
    uuid: str | None = None
    errors: str | None = None
    max_mount_count: int | None = None
    check_interval: str | None = None
    features: str | None = None

    def only_kernel_fields(self) -> bool:
        return (self.errors, self.max_mount_count, self.check_interval, self.features) == (None,) * 4

    def empty(self) -> bool:
        return self.only_kernel_fields() and self.label is None and self.uuid is None


@dataclass
class Plan:
    """The checked changes, ready to write."""
    fields: dict = field(default_factory=dict)
    feature_changes: list[tuple[str, bool]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


# --- parsing the options ------------------------------------------------------------------

def parse_uuid(text: str) -> bytes:
    """tune2fs's -U words: mkfs's, with `clear` for the null UUID."""
    return mkfs_uuid("null" if text == "clear" else text, EXTENDED)


def parse_errors(text: str) -> int:
    if text not in ERRORS_BEHAVIOR:
        raise UsageError(f"invalid error behavior {text!r} (continue, remount-ro or panic)")
    return ERRORS_BEHAVIOR[text]


def parse_max_mount_count(count: int) -> int:
    """tune2fs -c: 0 or -1 turn the count check off (-1 is stored as 65535)."""
    if not -1 <= count <= 16000:
        raise UsageError(f"invalid maximal mount count {count} (-1 to 16000)")
    return count & 0xFFFF


def parse_interval(text: str) -> int:
    """tune2fs -i: N[d|w|m] (days by default; s for seconds), stored as seconds."""
    unit = text[-1:].lower() if text[-1:].isalpha() else "d"
    number = text[:-1] if text[-1:].isalpha() else text
    if unit not in INTERVAL_UNITS or not number.isdigit():
        raise UsageError(f"invalid interval {text!r} (N[d|w|m|s])")
    seconds = int(number) * INTERVAL_UNITS[unit]
    if seconds > 0xFFFFFFFF:
        raise UsageError(f"interval {text!r} is too long (at most {0xFFFFFFFF} seconds)")
    return seconds


def parse_feature_changes(spec: str) -> list[tuple[str, bool]]:
    """'a,^b' -> [(a, True), (b, False)]; unknown names are refused."""
    changes = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        on = not item.startswith("^")
        name = item.lstrip("^")
        if name not in F.BY_NAME:
            raise UsageError(f"unknown feature {name!r} (known: {', '.join(F.BY_NAME)})")
        changes.append((name, on))
    if not changes:
        raise UsageError("-O needs a feature name")
    return changes


# --- planning: every check before any write ---------------------------------------------------

def plan_tune(volume: Volume, request: TuneRequest) -> Plan:
    plan = Plan()
    if volume.layout == KERNEL and not request.only_kernel_fields():
        raise UsageError("the kernel layout takes only -L and -U (the 2.0 kernel keeps no other field "
                         "tune can change, and has no features)")
    if request.label is not None:
        plan.fields["s_volume_name"] = parse_label(request.label).ljust(16, b"\0")
        plan.messages.append(f"Setting the volume name to {request.label!r}")
    if request.uuid is not None:
        new = parse_uuid(request.uuid)
        plan.fields["s_uuid"] = new
        plan.messages.append(f"Setting the UUID to {uuidlib.UUID(bytes=new)}")
    if request.errors is not None:
        plan.fields["s_errors"] = parse_errors(request.errors)
        plan.messages.append(f"Setting the error behavior to {request.errors}")
    if request.max_mount_count is not None:
        plan.fields["s_max_mnt_count"] = parse_max_mount_count(request.max_mount_count)
        plan.messages.append(f"Setting the maximal mount count to {request.max_mount_count}")
    if request.check_interval is not None:
        plan.fields["s_checkinterval"] = parse_interval(request.check_interval)
        plan.messages.append(f"Setting the interval between checks to {plan.fields['s_checkinterval']} seconds")
    if request.features is not None:
        _plan_features(volume, parse_feature_changes(request.features), plan)
    return plan


def _plan_features(volume: Volume, changes: list[tuple[str, bool]], plan: Plan) -> None:
    wanted: dict[str, bool] = {}
    for name, on in changes:
        wanted[name] = on
    for name, on in wanted.items():
        if name not in OFFLINE_FEATURES:
            raise UsageError(f"{name} can not be changed: it is the extended layout itself "
                             "(changing it would need every block moved)")
        if volume.features.has(name) == on:
            plan.messages.append(f"{name} is already {'on' if on else 'off'}")
            continue
        plan.feature_changes.append((name, on))
    if not plan.feature_changes:
        return
    usage = _scan_usage(volume)
    for name, on in plan.feature_changes:
        _check_feature_change(volume, name, on, usage)
        plan.messages.append(f"{'Setting' if on else 'Clearing'} feature {name}")


@dataclass
class Usage:
    """What the inodes in use need of the features (one scan of the table)."""
    vector_inode: int | None = None
    indirect_inode: int | None = None  # an inode with an indirect pointer or past 12 blocks
    large_dir_inode: int | None = None


def _scan_usage(volume: Volume) -> Usage:
    usage = Usage()
    for inode in used_inodes(volume):
        f = inode.fields
        if volume.layout != KERNEL and f.i_flags & C.INODE_FLAG_VECTOR and usage.vector_inode is None:
            usage.vector_inode = inode.ino
        if usage.indirect_inode is None and (f.i_indirect or f.i_double_indirect or f.i_triple_indirect
                                             or inode.i_size > C.DIRECT_BLOCKS * C.BLOCK_SIZE):
            usage.indirect_inode = inode.ino
        if inode.is_dir and inode.i_size > C.BLOCK_SIZE and usage.large_dir_inode is None:
            usage.large_dir_inode = inode.ino
    return usage


def _check_feature_change(volume: Volume, name: str, on: bool, usage: Usage) -> None:
    moved = "; that needs data moved, which tune does not do"
    if name == "vector_files" and not on and usage.vector_inode is not None:
        raise UsageError(f"^vector_files: inode {usage.vector_inode} is a vector file{moved}")
    if name == "indirect_blocks" and usage.indirect_inode is not None:
        what = "uses indirect blocks" if not on else "holds pointers in its indirect fields"
        raise UsageError(f"{'' if on else '^'}indirect_blocks: inode {usage.indirect_inode} {what}"
                         + (moved if not on else "; run fsck.vexfs first"))
    if name == "large_dir" and not on and usage.large_dir_inode is not None:
        raise UsageError(f"^large_dir: directory inode {usage.large_dir_inode} owns more than one block{moved}")
    if name == "backup_super" and on:
        block = volume.geometry.blocks_count - 1
        if not volume.is_data_block(block) or volume.bitmap.test(block):
            raise UsageError(f"backup_super: block {block}, the last block, is in use; the backup "
                             f"superblock needs it{moved}")


# --- writing ------------------------------------------------------------------------------

def tune(path: str, request: TuneRequest, *, undo_path: str | None = None,
         preflight: Callable[[str], None] | None = None) -> list[str]:
    """Apply `request` to the image at `path`; the messages say what was done. `preflight`,
    when given, is run on the path when the plan changes features, before the image is opened
    for writing (the CLI runs fsck there: metadata is rewritten only on an image that passes)."""
    if request.empty():
        raise UsageError("nothing to change (give -L, -U, -e, -c, -i or -O)")
    if preflight is not None:
        # The check opens the image itself, and an image has one writer at a time: plan on a
        # read-only open, check with nothing held, then plan again under the writer's lock.
        with Volume.open(path, ignore_checksums=True) as reader:
            planned = plan_tune(reader, request)
        if planned.feature_changes:
            preflight(path)
    volume = Volume.open(path, writable=True)
    try:
        plan = plan_tune(volume, request)
        if undo_path:
            volume.device.undo = UndoRecorder(volume.device, undo_path)
        apply_plan(volume, plan)
        volume.close()
    except BaseException:
        volume.device.close()
        raise
    return plan.messages


def apply_plan(volume: Volume, plan: Plan) -> None:
    sb = volume.sb
    for name, on in plan.feature_changes:
        if name == "metadata_csum":
            _set_metadata_csum(volume, on)
        elif name == "backup_super":
            _set_backup_super(volume, on)
        elif name == "lazy_itable":
            _set_lazy_itable(volume, on)
        _set_feature_bit(sb, name, on)
    for name, value in plan.fields.items():
        setattr(sb, name, value)
    volume.features = sbio.FeatureSet.of(sb)
    volume.flush_metadata()
    volume.write_superblock()


def _set_feature_bit(sb, name: str, on: bool) -> None:
    feature = F.BY_NAME[name]
    attr = f"s_feature_{feature.word}"
    word = getattr(sb, attr)
    setattr(sb, attr, word | feature.bit if on else word & ~feature.bit)


def _set_metadata_csum(volume: Volume, on: bool) -> None:
    """Every checksum computed (on) or cleared (off); then the seed and checksum type."""
    sb = volume.sb
    seed = checksums.seed_for_uuid(bytes(sb.s_uuid)) if on else None
    volume.flush_metadata()
    rewrite_checksums(volume, seed)
    if on:
        sb.s_checksum_seed = seed
        sb.s_checksum_type = C.CHECKSUM_TYPE_CRC32C
    else:
        sb.s_checksum_type = 0
    volume.seed = seed
    # The bitmap blocks cached so far carry the old tails: read them afresh.
    volume.bitmap = BlockBitmap(volume.device, volume.geometry, seed=seed)


def _set_backup_super(volume: Volume, on: bool) -> None:
    g, sb = volume.geometry, volume.sb
    block = g.blocks_count - 1 if on else g.backup_sb_block
    if on:
        volume.bitmap.set(block)
        sb.s_free_blocks = max(0, sb.s_free_blocks - 1)
        sb.s_backup_sb_block = block
    else:
        if block:
            volume.bitmap.set(block, False)
            sb.s_free_blocks += 1
            volume.device.zero_range(block * C.BLOCK_SIZE, C.BLOCK_SIZE)
        sb.s_backup_sb_block = 0
    volume.geometry = dataclasses.replace(g, backup_sb_block=sb.s_backup_sb_block)
    volume.bitmap.geometry = volume.geometry


def _set_lazy_itable(volume: Volume, on: bool) -> None:
    """On: the mark one past the last non-zero record (a scan of the table, holes skipped);
    off: the field cleared (FORMAT.md section 19)."""
    last = 0
    if on:
        for first_ino, records in volume.inode_table(skip_holes=True):
            used = np.flatnonzero(records.view(np.uint8).reshape(-1, C.INODE_SIZE).any(axis=1))
            if used.size:
                last = first_ino + int(used[-1])
    volume.sb.s_itable_mark = max(last + 1, C.LOST_FOUND_INO + 1) if on else 0
    volume.lazy_itable = on


def rewrite_checksums(volume: Volume, seed: int | None) -> None:
    """Set (seed) or clear (None) every metadata checksum but the superblock's: inode
    records, bitmap tails, directory tails, indirect tails. Memory stays bounded: the table
    and the bitmap are rewritten a chunk at a time, holes skipped."""
    g = volume.geometry
    _rewrite_table(volume, seed)
    _rewrite_tails(volume, g.bitmap_start, g.bitmap_blocks, seed)
    for inode in used_inodes(volume):
        for block in directory_blocks(volume, inode):
            data = bytearray(volume.read_block(block))
            directory.write_tail(data, 0)
            if seed is not None:
                directory.write_tail(data, checksums.block_checksum(seed, block, data))
            volume.device.write(block * C.BLOCK_SIZE, data)
        for block in indirect_blocks(volume, inode):
            data = bytearray(volume.read_block(block))
            _seal(data, block, seed)
            volume.device.write(block * C.BLOCK_SIZE, data)


def _seal(data: bytearray, block: int, seed: int | None) -> None:
    if seed is None:
        data[BLOCK_TAIL_OFFSET:] = bytes(C.BLOCK_SIZE - BLOCK_TAIL_OFFSET)
    else:
        checksums.set_tail(seed, block, data)


def _chunks(volume: Volume, start: int, count: int):
    """(first block, rows uint8 (n, 4096)) of the stored parts of a region, CHUNK_BLOCKS at a time."""
    device = volume.device
    for first in range(start, start + count, CHUNK_BLOCKS):
        n = min(CHUNK_BLOCKS, start + count - first)
        if device.is_hole(first * C.BLOCK_SIZE, n * C.BLOCK_SIZE):
            continue
        data = np.frombuffer(device.read(first * C.BLOCK_SIZE, n * C.BLOCK_SIZE), np.uint8)
        yield first, data.reshape(n, C.BLOCK_SIZE).copy()


def _write_changed(volume: Volume, first: int, before: np.ndarray, after: np.ndarray) -> None:
    """Write only the rows that changed, a run of consecutive ones at a time (holes stay)."""
    changed = np.flatnonzero((before != after).any(axis=1))
    if not changed.size:
        return
    for start, count in block_runs(changed):
        volume.device.write((first + start) * C.BLOCK_SIZE, after[start:start + count].tobytes())


def _rewrite_tails(volume: Volume, start: int, count: int, seed: int | None) -> None:
    for first, rows in _chunks(volume, start, count):
        after = rows.copy()
        for index in np.flatnonzero(rows.any(axis=1)).tolist():
            data = bytearray(after[index].tobytes())
            _seal(data, first + index, seed)
            after[index] = np.frombuffer(data, np.uint8)
        _write_changed(volume, first, rows, after)


def _rewrite_table(volume: Volume, seed: int | None) -> None:
    g = volume.geometry
    per_block = C.INODES_PER_BLOCK * C.INODE_SIZE
    stored = -(-volume.itable_end // C.INODES_PER_BLOCK)  # past the mark all is zero
    for first, rows in _chunks(volume, g.inode_table_start, stored):
        records = rows[:, :per_block].reshape(-1, C.INODE_SIZE).copy()
        first_ino = (first - g.inode_table_start) * C.INODES_PER_BLOCK + 1
        for index in np.flatnonzero(records.any(axis=1)).tolist():
            ino = first_ino + index
            if ino > g.inode_slots:
                break
            value = 0 if seed is None else checksums.inode_checksum(seed, ino, records[index].tobytes())
            records[index, INODE_CHECKSUM_OFFSET:] = np.frombuffer(value.to_bytes(4, "little"), np.uint8)
        after = rows.copy()
        after[:, :per_block] = records.reshape(len(rows), per_block)
        _write_changed(volume, first, rows, after)
