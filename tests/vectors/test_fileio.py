"""volume/fileio, as vector files use it: a file's runs found once, reads and maps and
writes by file offset across runs and holes, unaligned writes keeping the bytes before them."""

from __future__ import annotations

import os

from vexfs_tools.device import Device
from vexfs_tools.format import constants as C
from vexfs_tools.mkfs.plan import MkfsOptions
from vexfs_tools.mkfs.run import run_mkfs
from vexfs_tools.volume import Volume
from vexfs_tools.volume.fileio import FileData, physical_runs
from vexfs_tools.volume.inodes import InodeRecord

B = C.BLOCK_SIZE


def test_runs_reads_maps_and_writes(tmp_path):
    image = str(tmp_path / "io.img")
    run_mkfs(image, MkfsOptions(), size=16 << 20)
    content = os.urandom(6 * B)
    with Volume.open(image, writable=True) as volume:
        fields = volume.new_inode_fields(0o100644)
        first = volume.allocate_run(2)  # logical 0-1: one run
        volume.set_block(fields, 0, first)
        volume.set_block(fields, 1, first + 1)
        volume.allocate_block()  # a gap
        volume.set_block(fields, 2, volume.allocate_block())
        volume.set_block(fields, 5, volume.allocate_block())  # logical 3-4: a hole
        fields.i_size = len(content)
        inode = InodeRecord(0, fields, b"")
        runs = physical_runs(volume, inode)
        assert [(logical, count) for logical, _, count in runs] == [(0, 2), (2, 1), (5, 1)]
        data = FileData(volume, inode)
        for logical in (0, 1, 2, 5):
            data.write(logical * B, content[logical * B:(logical + 1) * B])
        data.write(100, b"x" * 10)  # inside a block: the bytes before it stay
        expected = bytearray(content)
        expected[100:110] = b"x" * 10
        expected[3 * B:5 * B] = bytes(2 * B)
        assert data.read(0, len(expected)) == bytes(expected)
        assert data.read(B - 7, 20) == bytes(expected[B - 7:B + 13])  # across blocks of one run
        assert data.read(2 * B + 5, 4 * B) == bytes(expected[2 * B + 5:6 * B + 5]) + bytes(5)  # hole, past the end
        assert data.device_offset(10, 2 * B - 10) == first * B + 10
        assert data.device_offset(10, 2 * B) is None  # crosses into the next run
        assert data.device_offset(3 * B, 10) is None  # a hole
        assert data.device_offset(0, 0) is None
        assert bytes(data.map_readonly(10, 2 * B - 10)) == bytes(expected[10:2 * B])
        assert data.map_readonly(B, 2 * B) is None


def test_device_map_readonly(tmp_path):
    path = tmp_path / "dev.img"
    path.write_bytes(bytes(range(256)) * 64)
    with Device(str(path)) as device:
        assert bytes(device.map_readonly(4097, 300)) == device.read(4097, 300)
        assert device.map_readonly(0, 0) is None
        assert device.map_readonly(16000, 1000) is None  # past the end
        view = device.map_readonly(5, 10)
    assert bytes(view) == bytes(range(5, 15))  # the map outlives close()


def test_bulk_runs_equal_runs(tmp_path):
    """The numpy walk of a map gives the one-by-one walk's runs: holes, gaps, all three
    indirect levels' first reaches, limits inside them; a bad pointer falls back to it."""
    from vexfs_tools.volume.blockmap import LEVEL_START, bulk_runs

    image = str(tmp_path / "runs.img")
    run_mkfs(image, MkfsOptions(), size=64 << 20)
    with Volume.open(image, writable=True) as volume:
        fields = volume.new_inode_fields(0o100644)
        logicals = list(range(0, 5)) + list(range(7, 1100)) + list(range(LEVEL_START[1], LEVEL_START[1] + 1500))
        for i, logical in enumerate(logicals):
            if i % 97 == 0:
                volume.allocate_block()  # a gap: a new run
            volume.set_block(fields, logical, volume.allocate_block())
        inode = InodeRecord(0, fields, b"")
        for limit in (None, 3, 12, 600, LEVEL_START[1] + 700, 10 ** 9):
            slow = list(volume.block_map(inode).runs(limit))
            assert bulk_runs(volume.block_map(inode), limit, volume.data_block_mask) == slow
        fields.i_block[2] = volume.geometry.blocks_count + 5  # out of range: the slow walk's findings
        block_map = volume.block_map(inode)
        assert bulk_runs(block_map, None, volume.data_block_mask) == list(volume.block_map(inode).runs())
        assert block_map.problems


def test_bulk_mapping_arrays_equal_mapping(tmp_path):
    from vexfs_tools.volume.blockmap import LEVEL_START, bulk_mapping_arrays

    image = str(tmp_path / "map.img")
    run_mkfs(image, MkfsOptions(), size=32 << 20)
    with Volume.open(image, writable=True) as volume:
        fields = volume.new_inode_fields(0o100644)
        for logical in list(range(3, 40)) + list(range(LEVEL_START[1] + 5, LEVEL_START[1] + 30)):
            volume.set_block(fields, logical, volume.allocate_block())
        inode = InodeRecord(0, fields, b"")
        logical, physical = bulk_mapping_arrays(volume.block_map(inode), volume.data_block_mask)
        assert list(zip(logical.tolist(), physical.tolist())) == list(volume.block_map(inode).mapping())
        fields.i_block[0] = volume.geometry.blocks_count + 7  # a bad pointer: the walk's answer
        bad = InodeRecord(0, fields, b"")
        logical, physical = bulk_mapping_arrays(volume.block_map(bad), volume.data_block_mask)
        assert list(zip(logical.tolist(), physical.tolist())) == list(volume.block_map(bad).mapping())
