"""The numpy dtypes are derived from the construct declarations: prove they agree."""

from __future__ import annotations

import os

import numpy as np
import pytest

from vexfs_tools.format.blocks import IndirectBlock
from vexfs_tools.format.directory import DirEntryHeader, DirTail
from vexfs_tools.format.dtypes import (DIR_TAIL, DIRENT_HEADER, DIRENT_HEADER_DTYPE, INDIRECT_DTYPE,
                                       INODE_DTYPE, SUPERBLOCK_DTYPE, dtype_of)
from vexfs_tools.format.inode import Inode
from vexfs_tools.format.superblock import Superblock


@pytest.mark.parametrize("struct,dtype", [(Inode, INODE_DTYPE), (Superblock, SUPERBLOCK_DTYPE),
                                          (DirEntryHeader, DIRENT_HEADER_DTYPE),
                                          (IndirectBlock, INDIRECT_DTYPE)])
def test_dtype_reads_what_construct_reads(struct, dtype):
    assert dtype.itemsize == struct.sizeof()
    for _ in range(20):
        raw = os.urandom(struct.sizeof())
        parsed = struct.parse(raw)
        record = np.frombuffer(raw, dtype)[0]
        for name in dtype.names:
            expected = parsed[name]
            got = record[name]
            if isinstance(expected, bytes):
                assert bytes(got) == expected, name
            elif isinstance(expected, list):
                assert list(got) == expected, name
            else:
                assert int(got) == expected, name


def test_dtype_offsets_follow_the_declaration_order():
    offsets = [INODE_DTYPE.fields[name][1] for name in INODE_DTYPE.names]
    assert offsets == sorted(offsets) and offsets[0] == 0
    assert INODE_DTYPE.fields["i_checksum"][1] == 108


def test_struct_packers_match_construct():
    raw = os.urandom(8)
    parsed = DirEntryHeader.parse(raw)
    assert DIRENT_HEADER.unpack(raw) == (parsed.inode, parsed.rec_len, parsed.name_len, parsed.file_type)
    packed = DIR_TAIL.pack(0, 12, 0, 0xDE, 0x12345678)
    assert DirTail.parse(packed).checksum == 0x12345678


def test_dtype_of_rejects_variable_fields():
    from vexfs_tools.format.directory import DirEntry

    with pytest.raises(TypeError):
        dtype_of(DirEntry)
