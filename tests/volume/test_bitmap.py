"""The block bitmap on its own, and Volume.allocate_run, where runs cross a bitmap block and
a bulk chunk (bitmap.CHUNK_BLOCKS bitmap blocks): the places a carry or an index can slip."""

from __future__ import annotations

import numpy as np
import pytest

from vexfs_tools.device import Device
from vexfs_tools.errors import NoSpaceError
from vexfs_tools.format import constants as C
from vexfs_tools.mkfs.plan import MkfsOptions
from vexfs_tools.mkfs.run import run_mkfs
from vexfs_tools.volume import bitmap as bitmap_mod
from vexfs_tools.volume import checksums
from vexfs_tools.volume.bitmap import BlockBitmap
from vexfs_tools.volume.geometry import Geometry
from vexfs_tools.volume.volume import Volume

BITS = C.BITMAP_BITS_PER_BLOCK  # blocks described by one extended-layout bitmap block
BLOCKS = 3 * BITS - 100  # three bitmap blocks, the last one short


@pytest.fixture(params=[1, bitmap_mod.CHUNK_BLOCKS], ids=["chunk=1 block", "chunk=default"])
def chunk(request, monkeypatch):
    """Each test twice: with every bitmap block a chunk of its own (a bitmap block boundary
    is a chunk boundary), and with the default chunk (the whole bitmap one chunk)."""
    monkeypatch.setattr(bitmap_mod, "CHUNK_BLOCKS", request.param)
    return request.param


@pytest.fixture
def device(tmp_path):
    path = tmp_path / "bitmap.img"
    with open(path, "wb") as f:
        f.truncate(BLOCKS * C.BLOCK_SIZE)
    with Device(str(path), writable=True) as dev:
        yield dev


def geometry() -> Geometry:
    return Geometry.extended(BLOCKS, 1000)


def all_bits(bitmap: BlockBitmap) -> np.ndarray:
    """Every bit the chunks hand out, one byte a bit, cut at the last block."""
    parts = [(first, np.unpackbits(packed, bitorder="little")) for first, packed in bitmap.iter_chunks()]
    assert [first for first, _ in parts] == [i * bitmap_mod.CHUNK_BLOCKS * BITS for i in range(len(parts))]
    return np.concatenate([bits for _, bits in parts])[:BLOCKS]


def test_set_range_across_bitmap_blocks(device, chunk):
    bitmap = BlockBitmap(device, geometry(), seed=None)
    bitmap.set_range(BITS - 5, 10)
    bitmap.set_range(2 * BITS - 1, 2)
    expected = np.zeros(BLOCKS, np.uint8)
    expected[BITS - 5:BITS + 5] = 1
    expected[2 * BITS - 1:2 * BITS + 1] = 1
    assert (all_bits(bitmap) == expected).all()
    assert [bitmap.test(b) for b in (BITS - 6, BITS - 5, BITS, BITS + 4, BITS + 5)] == [False, True, True, True,
                                                                                      False]
    assert bitmap.count_used() == 12
    assert bitmap.find_free(BITS - 5) == BITS + 5
    assert bitmap.find_free(2 * BITS - 1) == 2 * BITS + 1
    bitmap.set_range(BITS - 2, 4, False)
    assert bitmap.find_free(BITS - 5) == BITS - 2 and bitmap.count_used() == 8


def test_flush_writes_each_block_with_its_tail_and_reads_back(device, chunk):
    seed = 0x5EED
    bitmap = BlockBitmap(device, geometry(), seed=seed)
    bitmap.set_range(BITS - 3, 6)
    bitmap.set(BLOCKS - 1)
    bitmap.flush()
    again = BlockBitmap(device, geometry(), seed=seed)
    assert (all_bits(again) == all_bits(bitmap)).all() and again.count_used() == 7
    for index in range(geometry().bitmap_blocks):
        assert again.checksum_ok(index)
        raw = device.read((geometry().bitmap_start + index) * C.BLOCK_SIZE, C.BLOCK_SIZE)
        assert checksums.block_checksum_ok(seed, geometry().bitmap_start + index, raw)


def test_chunks_see_bits_set_but_not_yet_flushed(device, chunk):
    bitmap = BlockBitmap(device, geometry(), seed=None)
    bitmap.set(BITS)  # first bit of the second bitmap block: the second chunk with chunk=1
    bits = all_bits(bitmap)
    assert bits[BITS] == 1 and bits.sum() == 1


def test_find_free_wraps_to_the_floor_and_skips(device, chunk):
    bitmap = BlockBitmap(device, geometry(), seed=None)
    bitmap.set_range(0, BLOCKS)
    bitmap.set(BITS + 7, False)
    bitmap.set(BITS + 9, False)
    assert bitmap.find_free(2 * BITS, floor=BITS) == BITS + 7
    assert bitmap.find_free(2 * BITS, floor=BITS, skip=BITS + 7) == BITS + 9
    assert bitmap.find_free(2 * BITS, floor=BITS + 10) is None


# --- Volume.allocate_run ----------------------------------------------------------------------


@pytest.fixture
def volume(tmp_path):
    image = tmp_path / "run.img"
    run_mkfs(str(image), MkfsOptions(), size=BLOCKS * C.BLOCK_SIZE)
    with Volume.open(str(image), writable=True) as vol:
        yield vol


def only_free(volume: Volume, *runs: tuple[int, int]) -> None:
    """Mark every block used but the (first, count) runs given."""
    volume.bitmap.set_range(0, volume.geometry.addressable_blocks)
    for first, count in runs:
        volume.bitmap.set_range(first, count, False)


@pytest.mark.parametrize("first,count", [
    (BITS - 10, 20),           # across the first bitmap block (chunk) boundary
    (BITS - 1, 2),             # one block on each side
    (BITS, 30),                # starting at a boundary
    (BITS - 10, BITS + 20),    # the whole second bitmap block and into the third
])
def test_allocate_run_across_a_boundary(volume, chunk, first, count):
    only_free(volume, (first, count))
    free_before = volume.sb.s_free_blocks
    assert volume.allocate_run(count) == first
    assert volume.sb.s_free_blocks == free_before - count
    assert all(volume.bitmap.test(b) for b in range(first, first + count))
    with pytest.raises(NoSpaceError):
        volume.allocate_run(1)


def test_allocate_run_takes_the_first_run_long_enough(volume, chunk):
    # A run too short ends the first block; one long enough straddles the next boundary.
    only_free(volume, (BITS - 4, 4), (BITS + 100, 3), (2 * BITS - 8, 16))
    assert volume.allocate_run(5) == 2 * BITS - 8
    assert volume.allocate_run(4) == BITS - 4  # what was too short before is first now
    assert volume.allocate_run(3) == BITS + 100


def test_a_run_ending_a_chunk_does_not_carry_past_a_used_block(volume, chunk):
    # Free: the last 5 blocks before the boundary and 5 after it but one, used, in between.
    only_free(volume, (BITS - 5, 5), (BITS + 1, 5))
    with pytest.raises(NoSpaceError):
        volume.allocate_run(7)
    assert volume.allocate_run(5) == BITS - 5


def test_allocate_run_never_takes_metadata_or_the_backup_superblock(volume, chunk):
    g = volume.geometry
    only_free(volume, (0, g.first_data_block + 3), (g.backup_sb_block - 3, 4))
    assert volume.allocate_run(3) == g.first_data_block  # not block 0, the bitmap or the table
    with pytest.raises(NoSpaceError):
        volume.allocate_run(4)  # the last 4 blocks hold the backup superblock
    assert volume.allocate_run(3) == g.backup_sb_block - 3
