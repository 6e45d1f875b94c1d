"""Offsets used to slice raw bytes (checksums, bulk scans, mkfs's look at a device) come from
the construct declarations: each user is held to the field it means, on real bytes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from vexfs_tools.format import constants as C
from vexfs_tools.format import offsets
from vexfs_tools.format.blocks import BitmapBlock, IndirectBlock
from vexfs_tools.format.directory import DirEntry, DirEntryHeader, DirTail
from vexfs_tools.format.inode import Inode
from vexfs_tools.format.offsets import Span, field_span, word_field
from vexfs_tools.format.superblock import Superblock
from vexfs_tools.volume import checksums, dirscan, orphans


@pytest.mark.parametrize("declaration", [Superblock, Inode, DirEntryHeader, IndirectBlock, BitmapBlock])
def test_field_span_agrees_with_what_construct_parses(declaration):
    raw = os.urandom(declaration.sizeof())
    parsed = declaration.parse(raw)
    for sub in declaration.subcons:
        assert sub.parse(field_span(declaration, sub.name).of(raw)) == parsed[sub.name], sub.name


def test_field_span_of_an_unknown_field_and_a_straddling_word():
    with pytest.raises(KeyError):
        field_span(Inode, "i_nothing")
    with pytest.raises(ValueError):
        word_field(Inode, "i_size")  # 8 bytes at 16: two 4-byte words
    assert word_field(Inode, "i_links_count") == (0, 16, 0xFFFF)


def test_checksum_offsets_are_the_declared_checksum_fields():
    assert offsets.SUPERBLOCK_CHECKSUM_OFFSET == field_span(Superblock, "s_checksum").offset
    assert field_span(Superblock, "s_checksum").end == C.SUPERBLOCK_SIZE == Superblock.sizeof()
    assert offsets.INODE_CHECKSUM_OFFSET == field_span(Inode, "i_checksum").offset
    assert field_span(Inode, "i_checksum").end == C.INODE_SIZE == Inode.sizeof()
    # One tail offset serves bitmap, indirect and directory blocks (checksums.block_checksum).
    dir_tail = C.BLOCK_SIZE - DirTail.sizeof() + offsets.DIR_TAIL_CHECKSUM.offset
    for tail in (field_span(IndirectBlock, "checksum").offset, field_span(BitmapBlock, "checksum").offset,
                 dir_tail):
        assert tail == checksums.BLOCK_TAIL_OFFSET
    assert DirTail.sizeof() == C.DIR_TAIL_SIZE


def test_checksums_read_and_write_the_declared_fields():
    seed = 0x1234ABCD
    record = bytearray(os.urandom(C.INODE_SIZE))
    checksums.set_inode_checksum(seed, 7, record)
    assert Inode.parse(bytes(record)).i_checksum == checksums.inode_checksum(seed, 7, record)
    block = bytearray(os.urandom(C.BLOCK_SIZE))
    checksums.set_tail(seed, 99, block)
    assert IndirectBlock.parse(bytes(block)).checksum == checksums.block_checksum(seed, 99, block)


def test_dirscan_reads_the_declared_header_fields():
    """The bulk walk's words and shifts, against construct's parse of the same headers."""
    assert C.DIRENT_HEADER_SIZE == DirEntryHeader.sizeof()
    assert (dirscan._INODE.word, dirscan._INODE.shift, dirscan._INODE.mask) == (0, 0, 0xFFFFFFFF)
    assert dirscan._NAME_LEN.word == dirscan._FILE_TYPE.word == dirscan._PACKED_WORD
    headers = np.frombuffer(os.urandom(8 * 64), np.uint8).reshape(64, 8)
    words = headers.view("<u4")
    for row, raw in zip(words, headers):
        parsed = DirEntryHeader.parse(raw.tobytes())
        packed = row[dirscan._PACKED_WORD]
        assert int(row[dirscan._INODE.word]) == parsed.inode
        assert int(dirscan._unpack(packed, dirscan._REC_LEN)) == parsed.rec_len
        assert int(dirscan._unpack(packed, dirscan._NAME_LEN)) == parsed.name_len
        assert int(dirscan._unpack(packed, dirscan._FILE_TYPE)) == parsed.file_type


def test_the_orphan_scan_looks_for_a_declared_dot_entry():
    head = (12345).to_bytes(4, "little") + orphans.DOT_HEAD
    assert len(head) == orphans.HEAD_BYTES
    entry = DirEntry.parse(head)
    assert (entry.inode, entry.rec_len, entry.name_len, entry.file_type, entry.name) == \
        (12345, orphans.HEAD_BYTES, 1, C.FT_DIR, b".")
    assert head[DirEntryHeader.sizeof() + 1:] == bytes(orphans.HEAD_BYTES - DirEntryHeader.sizeof() - 1)


def test_mkfs_reads_the_label_and_magic_where_the_superblock_declares_them():
    sb = Superblock.parse(bytes(C.SUPERBLOCK_SIZE))
    sb.s_magic, sb.s_volume_name = C.MAGIC, b"a-label".ljust(16, b"\0")
    raw = Superblock.build(sb)
    assert int.from_bytes(offsets.SUPERBLOCK_MAGIC.of(raw), "little") == C.MAGIC
    assert offsets.SUPERBLOCK_LABEL.of(raw) == sb.s_volume_name
    assert offsets.SUPERBLOCK_LABEL == Span(116, 16)  # docs/FORMAT.md's table
