"""Sizes and offsets of every declaration, against docs/FORMAT.md and the kernel reference."""

from __future__ import annotations

import os

import pytest
from construct import Container

from vexfs_tools.format import constants as C
from vexfs_tools.format import features as F
from vexfs_tools.format.blocks import BitmapBlock, IndirectBlock
from vexfs_tools.format.directory import DirEntry, DirEntryHeader, DirTail
from vexfs_tools.format.inode import Inode
from vexfs_tools.format.superblock import Superblock


def offsets(struct) -> dict[str, int]:
    result, offset = {}, 0
    for sub in struct.subcons:
        result[sub.name] = offset
        offset += sub.sizeof()
    return result


def test_superblock_is_1024_bytes_with_checksum_last():
    assert Superblock.sizeof() == 1024
    assert offsets(Superblock)["s_checksum"] == 1020


@pytest.mark.parametrize("field,offset", [
    ("s_magic", 0), ("s_blocks_count", 8), ("s_free_blocks", 12), ("s_inodes_count", 16),
    ("s_free_inodes", 20), ("s_first_data_block", 24), ("s_wtime", 44), ("s_mnt_count", 48),
    ("s_state", 52), ("s_pad58", 58), ("s_lastcheck", 60), ("s_rev_level", 72),
    ("s_first_ino", 80), ("s_inode_size", 84), ("s_block_group_nr", 86),
    ("s_feature_compat", 88), ("s_feature_incompat", 92), ("s_feature_ro_compat", 96),
    ("s_uuid", 100), ("s_volume_name", 116), ("s_last_mounted", 132),
    ("s_algorithm_usage_bitmap", 196), ("s_reserved_gdt_blocks", 202), ("s_journal_uuid", 204),
    ("s_hash_seed", 232), ("s_desc_size", 250), ("s_mkfs_time", 260), ("s_jnl_blocks", 264),
    ("s_blocks_count_hi", 332), ("s_flags", 348), ("s_pad356", 356), ("s_mmp_block", 360),
    ("s_checksum_type", 373), ("s_kbytes_written", 376), ("s_first_error_block", 416),
    ("s_first_error_func", 424), ("s_last_error_block", 472), ("s_mount_opts", 512),
    ("s_backup_bgs", 588), ("s_encrypt_pw_salt", 600), ("s_lpf_ino", 616),
    ("s_checksum_seed", 624), ("s_wtime_hi", 628), ("s_encoding", 636),
    ("s_bitmap_start", 640), ("s_bitmap_blocks", 644), ("s_inode_table_start", 648),
    ("s_inode_table_blocks", 652), ("s_backup_sb_block", 656), ("s_reserved", 660),
    ("s_itable_mark", 1016),
])
def test_superblock_offsets_match_the_spec(field, offset):
    assert offsets(Superblock)[field] == offset


def test_inode_is_112_bytes_36_per_block():
    assert Inode.sizeof() == C.INODE_SIZE == 112
    assert C.INODES_PER_BLOCK * 112 <= C.BLOCK_SIZE < (C.INODES_PER_BLOCK + 1) * 112
    o = offsets(Inode)
    assert (o["i_size"], o["i_blocks"], o["i_block"], o["i_flags"], o["i_generation"]) == (16, 36, 40, 88, 92)
    assert (o["i_indirect"], o["i_double_indirect"], o["i_triple_indirect"], o["i_checksum"]) == (96, 100, 104, 108)


@pytest.mark.parametrize("ino", [1, 2, 36, 37, 72, 1023, 1024, 2304])
def test_kernel_inode_location(ino):
    from vexfs_tools.volume.geometry import Geometry

    block, offset = Geometry.kernel(4096).inode_location(ino)
    assert block == 2 + (ino - 1) // 36
    assert offset == ((ino - 1) % 36) * 112


def test_directory_entry_header_and_alignment():
    assert DirEntryHeader.sizeof() == C.DIRENT_HEADER_SIZE == 8
    from vexfs_tools.volume.directory import min_rec_len

    for n in range(1, 256):
        assert min_rec_len(n) % 4 == 0 and 8 + n <= min_rec_len(n) < 8 + n + 4
    raw = DirEntry.build(Container(inode=5, rec_len=12, name_len=1, file_type=1, name=b"a"))
    assert raw[:8] == bytes([5, 0, 0, 0, 12, 0, 1, 1])


def test_tails_and_whole_blocks():
    assert DirTail.sizeof() == C.DIR_TAIL_SIZE == 12
    assert DirTail.build(Container(checksum=0xAABBCCDD))[:8] == bytes([0, 0, 0, 0, 12, 0, 0, 0xDE])
    assert BitmapBlock.sizeof() == IndirectBlock.sizeof() == C.BLOCK_SIZE
    assert C.BITMAP_BITS_PER_BLOCK == 32736 and C.POINTERS_PER_INDIRECT == 1023


@pytest.mark.parametrize("struct", [Superblock, Inode, DirEntryHeader, BitmapBlock, IndirectBlock])
def test_every_declaration_round_trips_bytes(struct):
    raw = os.urandom(struct.sizeof())
    assert struct.build(struct.parse(raw)) == raw


def test_dir_tail_refuses_wrong_constants():
    from construct import ConstError

    with pytest.raises(ConstError):
        DirTail.parse(bytes(4) + bytes([12, 0, 0, 0x00]) + bytes(4))


def test_feature_bits_are_unique_per_word():
    seen = set()
    for feature in F.FEATURES:
        assert bin(feature.bit).count("1") == 1
        assert (feature.word, feature.bit) not in seen
        seen.add((feature.word, feature.bit))
    assert set(F.DEFAULT_EXTENDED) <= set(F.BY_NAME)
