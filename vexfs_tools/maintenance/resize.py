"""`vexfs resize` (resize2fs): grow or shrink an unmounted extended-layout image.

The order of writes (FORMAT.md "Resize"): blocks in the way are moved first (copy, then the
pointer, through the Volume's write order), then inodes past a smaller table; then the new
bitmap blocks that lie outside the old bitmap and the new backup superblock, which the old
geometry does not see; then the primary superblock, the one write that switches geometry;
then the old bitmap blocks whose bits change and the old backup block; the file is cut last.
An interrupted resize leaves the old file system or the new one, with at worst blocks
marked used that no inode owns (fsck.vexfs -y frees them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from ..format import constants as C
from ..undo import UndoRecorder
from ..volume import checksums
from ..volume import superblock as sbio
from ..volume.bitmap import BlockBitmap
from ..volume.geometry import KERNEL
from ..volume.volume import Volume
from .resize_move import BlockMover, Progress, renumber_inodes
from .resize_plan import (InodeRatio, ResizePlan, Usage, grow_step, inodes_for, minimum_blocks, parse_size,
                          plan_resize)


@dataclass
class ResizeRequest:
    size: str | None = None  # None: the device's size (or the minimum with `minimum`)
    minimum: bool = False
    undo_path: str | None = None
    progress: Progress | None = None


def refuse_kernel(volume: Volume) -> None:
    if volume.layout == KERNEL:
        raise UsageError("the kernel layout can not be resized: its geometry is fixed (the 2.0 kernel "
                         "never reads it from disk); make an extended image with mkfs.vexfs instead")


def print_minimum(path: str) -> int:
    """resize2fs -P: the minimum size in blocks; nothing is written."""
    with Volume.open(path) as volume:
        refuse_kernel(volume)
        return minimum_blocks(volume.geometry, Usage.of(volume))


def target_blocks(volume: Volume, request: ResizeRequest) -> tuple[int, list[str]]:
    """The size asked for, in blocks, checked against the device; and notes."""
    notes: list[str] = []
    device = volume.device
    if request.minimum:
        blocks = minimum_blocks(volume.geometry, Usage.of(volume))
    elif request.size is not None:
        blocks = parse_size(request.size)
    else:
        blocks = device.size // C.BLOCK_SIZE
        if blocks > C.MAX_BLOCKS_COUNT:
            notes.append(f"32-bit block numbers reach {C.MAX_BLOCKS_COUNT} blocks; the rest of the device is left unused")
            blocks = C.MAX_BLOCKS_COUNT
    if device.is_block_device and blocks * C.BLOCK_SIZE > device.size:
        raise UsageError(f"the device {device.path} holds only {device.size // C.BLOCK_SIZE} blocks; "
                         f"the new size is {blocks} blocks")
    return blocks, notes


def check_request(path: str, request: ResizeRequest) -> tuple[int, int]:
    """(current blocks, new blocks), every refusal but fsck's made on a read-only open."""
    with Volume.open(path) as volume:
        refuse_kernel(volume)
        blocks, _ = target_blocks(volume, request)
        if blocks < volume.geometry.blocks_count:
            plan_resize(volume.geometry, Usage.of(volume), blocks)
        elif blocks > volume.geometry.blocks_count:
            grow_step(volume, Usage.of(volume), blocks)  # the first step must fit
        return volume.geometry.blocks_count, blocks


def resize(path: str, request: ResizeRequest, *, preflight: Callable[[str], None] | None = None) -> list[str]:
    """Resize the image at `path`; the messages say what was done. `preflight` (fsck) runs
    first, on the path, with nothing held: the CLI skips it with -f."""
    current, blocks = check_request(path, request)
    if blocks == current:
        return [f"The file system is already {blocks} (4k) blocks long.  Nothing to do!"]
    if preflight is not None:
        preflight(path)
    volume = Volume.open(path, writable=True)
    try:
        refuse_kernel(volume)
        blocks, messages = target_blocks(volume, request)
        messages.append(f"Resizing the file system on {path} to {blocks} (4k) blocks.")
        device = volume.device
        if not device.is_block_device and blocks * C.BLOCK_SIZE > device.size:
            device.set_size(blocks * C.BLOCK_SIZE)  # beyond the file system: nothing sees it
        if request.undo_path:
            device.undo = UndoRecorder(device, request.undo_path)
        run_resize(volume, blocks, request.progress)
        if blocks * C.BLOCK_SIZE < device.size and not device.is_block_device:
            if request.undo_path:
                messages.append(f"{path} keeps its size for the undo file; `truncate -s "
                                f"{blocks * C.BLOCK_SIZE} {path}` gives the space back")
            else:
                device.set_size(blocks * C.BLOCK_SIZE)
        messages.append(f"The file system on {path} is now {blocks} (4k) blocks long.")
        volume.close()
    except BaseException:
        volume.device.close()
        raise
    return messages


def run_resize(volume: Volume, blocks: int, progress: Progress | None = None) -> None:
    """Every step to `blocks`: a grow may take several (each one a complete resize), until
    the size and the inode count the original ratio gives are both reached."""
    ratio = InodeRatio.of(volume.geometry)
    while True:
        usage = Usage.of(volume)
        old = volume.geometry
        if blocks < old.blocks_count:
            plan = plan_resize(old, usage, blocks)
        elif blocks > old.blocks_count or inodes_for(old, usage, blocks, ratio) > old.inodes_count:
            plan = grow_step(volume, usage, blocks, ratio)
        else:
            return
        execute(volume, plan, usage, progress)


def execute(volume: Volume, plan: ResizePlan, usage: Usage, progress: Progress | None) -> None:
    first, end = plan.vacate()
    BlockMover(volume, first, end, progress).run()
    if plan.renumbers:
        renumber_inodes(volume, plan.new.inode_slots, progress)
    commit(volume, plan, usage)


def new_bitmap_bits(volume: Volume, plan: ResizePlan) -> np.ndarray:
    """One uint8 per block the new bitmap describes (padding past the end set)."""
    old, new = plan.old, plan.new
    bits = np.ones(new.bitmap_blocks * C.BITMAP_BITS_PER_BLOCK, np.uint8)
    common = min(old.blocks_count, new.blocks_count)
    bits[:common] = volume.bitmap.bits(0, common)
    bits[common:new.blocks_count] = 0
    bits[new.first_data_block:old.first_data_block] = 0  # metadata no more (a shrunk table)
    bits[:new.first_data_block] = 1  # superblock, bitmap, table and what lies between
    if old.backup_sb_block and new.is_data_block(old.backup_sb_block):
        bits[old.backup_sb_block] = 0
    if new.backup_sb_block:
        bits[new.backup_sb_block] = 1
    return bits


def bitmap_blocks(bits: np.ndarray, plan: ResizePlan, seed: int | None) -> list[tuple[int, bytearray]]:
    """(block, contents) of every block of the new bitmap, checksummed for its place."""
    out = []
    per = C.BITMAP_BITS_PER_BLOCK
    for index in range(plan.new.bitmap_blocks):
        data = bytearray(C.BLOCK_SIZE)
        data[:per // 8] = np.packbits(bits[index * per:(index + 1) * per], bitorder="little").tobytes()
        where = plan.new.bitmap_start + index
        if seed is not None:
            checksums.set_tail(seed, where, data)
        out.append((where, data))
    return out


def commit(volume: Volume, plan: ResizePlan, usage: Usage) -> None:
    """Write the new geometry: what the old one does not see, the superblock, the rest."""
    old, new = plan.old, plan.new
    device = volume.device
    volume.flush_metadata()
    bits = new_bitmap_bits(volume, plan)
    old_bitmap = range(old.bitmap_start, old.bitmap_start + old.bitmap_blocks)
    every = bitmap_blocks(bits, plan, volume.seed)
    before = [(b, d) for b, d in every if b not in old_bitmap]
    after = [(b, d) for b, d in every if b in old_bitmap]
    grown = new.inode_table_blocks - old.inode_table_blocks
    if grown > 0:  # blocks the old file system has let go of: the new slots read as zeros
        device.zero_range((old.inode_table_start + old.inode_table_blocks) * C.BLOCK_SIZE, grown * C.BLOCK_SIZE)
    for block, data in before:
        device.write(block * C.BLOCK_SIZE, data)
    sb = volume.sb
    sb.update(dict(s_blocks_count=new.blocks_count, s_inodes_count=new.inodes_count,
              s_inodes_per_group=new.inodes_count, s_first_data_block=new.first_data_block,
              s_bitmap_start=new.bitmap_start, s_bitmap_blocks=new.bitmap_blocks,
              s_inode_table_blocks=new.inode_table_blocks, s_backup_sb_block=new.backup_sb_block,
              s_free_blocks=new.addressable_blocks - int(bits[:new.blocks_count].sum(dtype=np.int64)),
              s_free_inodes=new.inode_slots - new.first_allocatable_ino + 1 - usage.used_inodes_above))
    if sb.s_itable_mark:  # lazy_itable: the mark stays within the (shrunk) table
        sb.s_itable_mark = min(sb.s_itable_mark, new.inode_slots + 1)
    checked = volume.features.has("metadata_csum")
    if new.backup_sb_block:
        backup = sb.copy()
        backup.s_block_group_nr = C.BACKUP_GROUP_NR
        block = bytearray(C.BLOCK_SIZE)
        block[:C.SUPERBLOCK_SIZE] = sbio.build(backup, with_checksum=checked)
        device.write(new.backup_sb_block * C.BLOCK_SIZE, block)
    device.flush()
    sb.s_block_group_nr = 0
    device.write(0, sbio.build(sb, with_checksum=checked))  # the switch
    device.flush()
    for block, data in after:
        if device.read(block * C.BLOCK_SIZE, C.BLOCK_SIZE) != data:
            device.write(block * C.BLOCK_SIZE, data)
    if old.backup_sb_block and new.is_data_block(old.backup_sb_block):
        device.zero_range(old.backup_sb_block * C.BLOCK_SIZE, C.BLOCK_SIZE)
    device.flush()
    volume.geometry = new
    volume.bitmap = BlockBitmap(device, new, seed=volume.seed)
    volume.sb_dirty = False
