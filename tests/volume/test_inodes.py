"""Inode records: compiled and interpreted construct agree; table views round-trip."""

from __future__ import annotations

import os

import numpy as np

from vexfs_tools.format import constants as C
from vexfs_tools.format.inode import Inode
from vexfs_tools.volume.inodes import array_as_table, parse_inode, table_as_array


def test_fast_parser_agrees_with_construct():
    for raw in [bytes(112), bytes(range(112)), *(os.urandom(C.INODE_SIZE) for _ in range(200))]:
        a, b = Inode.parse(raw), parse_inode(3, raw).fields
        assert {k: v for k, v in a.items() if k != "_io"} == dict(b)
        assert Inode.build(b) == raw


def test_parsed_record_exposes_fields():
    raw = bytearray(C.INODE_SIZE)
    raw[0:2] = (0o40755).to_bytes(2, "little")
    inode = parse_inode(7, bytes(raw))
    assert inode.is_dir and inode.in_use and inode.ino == 7 and inode.i_size == 0


def test_table_view_round_trips_whole_blocks_and_zero_slack():
    blocks = 3
    data = bytearray(os.urandom(blocks * C.BLOCK_SIZE))
    for b in range(blocks):
        data[b * C.BLOCK_SIZE + 4032:(b + 1) * C.BLOCK_SIZE] = bytes(64)
    records = table_as_array(bytes(data), blocks)
    assert len(records) == blocks * 36
    assert array_as_table(records) == bytes(data)
    assert int(records[37]["i_mode"]) == int.from_bytes(data[C.BLOCK_SIZE + 112:C.BLOCK_SIZE + 114], "little")
    assert np.array_equal(records["i_mode"][:36], table_as_array(bytes(data[:C.BLOCK_SIZE]), 1)["i_mode"])
