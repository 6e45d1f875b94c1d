"""Writing an empty file system: the kernel's C mkfs, bit for bit, or the extended layout.

Only metadata is written. In the extended layout the bitmap and inode table regions are
first made to read as zeros (a punched hole in an image, BLKZEROOUT on a device), so a
terabyte image stays sparse: an all-zero bitmap block or inode slot is valid as it is.
"""

from __future__ import annotations

from ..device import Device
from ..format import constants as C
from ..volume import checksums, directory
from ..volume import superblock as sbio
from ..volume.geometry import KERNEL
from ..volume.volume import Volume
from .plan import MkfsPlan


def superblock_for(plan: MkfsPlan):
    g = plan.geometry
    t = plan.timestamp
    kernel = g.layout == KERNEL
    sb = sbio.new_superblock(
        s_magic=C.MAGIC, s_block_size=C.BLOCK_SIZE, s_blocks_count=g.blocks_count,
        s_inodes_count=g.inodes_count, s_first_data_block=g.first_data_block,
        s_log_block_size=C.LOG_BLOCK_SIZE,
        s_blocks_per_group=8192 if kernel else g.bits_per_bitmap_block,
        s_inodes_per_group=g.inodes_count,
        s_wtime=t, s_max_mnt_count=20, s_state=C.STATE_CLEAN, s_errors=C.ERRORS_CONTINUE,
        s_lastcheck=t, s_rev_level=1, s_first_ino=C.KERNEL_FIRST_INO, s_inode_size=C.INODE_SIZE,
        s_feature_compat=plan.features.compat, s_feature_incompat=plan.features.incompat,
        s_feature_ro_compat=plan.features.ro_compat, s_uuid=plan.uuid,
        s_volume_name=plan.label.ljust(16, b"\0"), s_mkfs_time=t,
    )
    if not kernel:
        sb.update(dict(s_bitmap_start=g.bitmap_start, s_bitmap_blocks=g.bitmap_blocks,
                       s_inode_table_start=g.inode_table_start,
                       s_inode_table_blocks=g.inode_table_blocks,
                       s_backup_sb_block=g.backup_sb_block, s_lpf_ino=C.LOST_FOUND_INO,
                       s_checksum_seed=checksums.seed_for_uuid(plan.uuid)))
        if plan.features.has("metadata_csum"):
            sb.s_checksum_type = C.CHECKSUM_TYPE_CRC32C
        if plan.features.has("lazy_itable"):
            sb.s_itable_mark = 1  # nothing used yet; every inode written raises it
    return sb


def planned_volume(plan: MkfsPlan, device: Device | None = None) -> Volume:
    """The file system `plan` describes, on `device` (None: not attached, nothing to write)."""
    return Volume(device, superblock_for(plan), plan.geometry)


def format_device(device: Device, plan: MkfsPlan) -> Volume:
    """Write the empty file system of `plan`; returns it open for writing (for -d)."""
    g = plan.geometry
    if g.layout == KERNEL:
        # The C mkfs: bitmap block, the whole inode table, the root directory block; of
        # block 0 only the 1024 superblock bytes.
        zeros_from, zeros_to = g.bitmap_start, g.first_data_block + 1
    else:
        zeros_from, zeros_to = 0, g.first_data_block + 2
    device.zero_range(zeros_from * C.BLOCK_SIZE, (zeros_to - zeros_from) * C.BLOCK_SIZE)
    if g.backup_sb_block:
        device.zero_range(g.backup_sb_block * C.BLOCK_SIZE, C.BLOCK_SIZE)
    volume = planned_volume(plan, device)
    root_block = g.first_data_block
    used = [(0, g.first_data_block + 1)]
    if g.layout != KERNEL:
        used.append((root_block + 1, 1))
        if g.backup_sb_block:
            used.append((g.backup_sb_block, 1))
        volume.bitmap.set_padding()
    for first, count in used:
        volume.bitmap.set_range(first, count)
    volume.sb.s_free_blocks = g.blocks_count - sum(count for _, count in used)

    root = volume.new_inode_fields(0o40755, links=2, times=(plan.timestamp,) * 3)
    root.i_generation = 1
    root.i_size = C.BLOCK_SIZE
    root.i_blocks = 1
    root.i_block[0] = root_block
    entries = [(b".", C.ROOT_INO, C.FT_DIR), (b"..", C.ROOT_INO, C.FT_DIR)]
    if g.layout != KERNEL:
        root.i_links_count = 3
        entries.append((b"lost+found", C.LOST_FOUND_INO, C.FT_DIR))
        lpf = volume.new_inode_fields(0o40700, links=2, times=(plan.timestamp,) * 3)
        lpf.i_size, lpf.i_blocks = C.BLOCK_SIZE, 1
        lpf.i_block[0] = root_block + 1
        volume.write_dir_block(root_block + 1, directory.pack_entries(
            [(b".", C.LOST_FOUND_INO, C.FT_DIR), (b"..", C.ROOT_INO, C.FT_DIR)],
            chain_end=volume.chain_end)[0])
        volume.write_inode(C.LOST_FOUND_INO, lpf)
    volume.write_dir_block(root_block, directory.pack_entries(entries, chain_end=volume.chain_end)[0])
    volume.write_inode(C.ROOT_INO, root)
    volume.sb.s_free_inodes = volume.count_free_inodes()
    volume.sb_dirty = True
    volume.flush()
    return volume

