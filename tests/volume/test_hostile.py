"""An image is hostile input: bad geometry, looping maps, broken chains and absurd sizes
give a clear error or a bounded answer, never a hang or an unbounded allocation."""

from __future__ import annotations

import struct

import pytest

from tests.conftest import run
from vexfs_tools.errors import BadMagicError, ChecksumError, CorruptionError, FormatError, TruncatedImageError
from vexfs_tools.format import constants as C
from vexfs_tools.volume import Volume, checksums
from vexfs_tools.volume.directory import walk_block
from vexfs_tools.volume.findings import Code, Finding


def patch(path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def reseal_superblock(path) -> None:
    with open(path, "r+b") as f:
        raw = f.read(1024)
        f.seek(1020)
        f.write(struct.pack("<I", checksums.superblock_checksum(raw)))


@pytest.fixture
def extended(tmp_path):
    image = tmp_path / "x.img"
    run("mkfs.vexfs", "-q", "-s", "4M", image, check=True)
    return image


def test_wrong_magic(tmp_path):
    image = tmp_path / "junk.img"
    image.write_bytes(b"\xaa" * (1 << 20))
    with pytest.raises(BadMagicError):
        Volume.open(str(image))


def test_truncated_image_is_reported_not_crashed(extended):
    with open(extended, "r+b") as f:
        f.truncate(8192)
    with pytest.raises(FormatError, match="device holds only"):
        Volume.open(str(extended))


def test_tiny_file(tmp_path):
    image = tmp_path / "tiny.img"
    image.write_bytes(b"FXEV")
    with pytest.raises((FormatError, TruncatedImageError)):
        Volume.open(str(image))


@pytest.mark.parametrize("offset,value,message", [
    (648, 5000, "overlap|inode table|past the end"),   # inode table beyond the device
    (652, 1, "can not hold"),                             # table too small for the inode count
    (644, 7, "bitmap geometry"),                          # bitmap block count wrong
    (24, 1, "first data block"),                          # data inside the inode table
])
def test_bad_geometry_is_refused(extended, offset, value, message):
    patch(extended, offset, struct.pack("<I", value))
    reseal_superblock(extended)
    with pytest.raises(FormatError, match=message):
        Volume.open(str(extended))


def test_superblock_checksum_mismatch_is_strict_unless_asked(extended):
    patch(extended, 116, b"X")  # the label, without resealing
    with pytest.raises(ChecksumError):
        Volume.open(str(extended))
    with Volume.open(str(extended), ignore_checksums=True) as volume:
        [finding] = volume.problems
        assert finding.code is Code.SUPERBLOCK_CHECKSUM and finding.block == 0
        assert finding.found == volume.sb.s_checksum != finding.expected
        assert "superblock checksum" in str(finding)


def test_inode_number_out_of_range(extended):
    with Volume.open(str(extended)) as volume:
        with pytest.raises(CorruptionError):
            volume.read_inode(0)
        with pytest.raises(CorruptionError):
            volume.read_inode(volume.geometry.inode_slots + 1)


def test_huge_i_size_reads_a_bounded_amount(extended):
    with Volume.open(str(extended), writable=True) as volume:
        ino = volume.create_file(1, b"big", b"x" * 5000)
        inode = volume.read_inode(ino)
        inode.fields.i_size = 2**63
        volume.write_inode(ino, inode.fields)
    with Volume.open(str(extended)) as volume:
        inode = volume.resolve("/big")
        pieces = volume.read_file(inode, chunk=1 << 16)
        first = next(pieces)
        assert first.startswith(b"x" * 4096)
        assert volume.max_file_size() < 2**43  # the read is bounded by what a map can address


def test_indirect_block_pointing_at_itself_does_not_loop(extended):
    with Volume.open(str(extended), writable=True) as volume:
        ino = volume.create_file(1, b"loop", b"y" * (13 * 4096))
        inode = volume.read_inode(ino)
        ind = inode.i_indirect
        assert ind
        # double indirect -> the single indirect block, whose pointers are data blocks; and
        # triple indirect -> itself: the walk must stop.
        inode.fields.i_double_indirect = ind
        inode.fields.i_triple_indirect = ind
        volume.write_inode(ino, inode.fields)
    with Volume.open(str(extended)) as volume:
        block_map = volume.block_map(volume.resolve("/loop"))
        mapped = list(block_map.mapping())
        assert len(mapped) < 13 + 1023 * 3
        ino = volume.resolve("/loop").ino
        assert Finding(Code.INDIRECT_TWICE, inode=ino, block=ind) in block_map.problems
        assert any("referenced twice" in str(p) for p in block_map.problems)


def test_out_of_range_block_pointers_are_skipped_and_reported(extended):
    with Volume.open(str(extended), writable=True) as volume:
        ino = volume.create_file(1, b"f", b"z" * 100)
        inode = volume.read_inode(ino)
        inode.fields.i_block[1] = 10**9
        inode.fields.i_block[2] = 1  # the bitmap: metadata, not data
        volume.write_inode(ino, inode.fields)
    with Volume.open(str(extended)) as volume:
        block_map = volume.block_map(volume.resolve("/f"))
        assert [p for _, p in block_map.mapping()] == [volume.read_inode(ino).i_block[0]]
        assert block_map.problems == [Finding(Code.BLOCK_OUT_OF_RANGE, inode=ino, block=10**9, index=1),
                                      Finding(Code.BLOCK_OUT_OF_RANGE, inode=ino, block=1, index=2)]


@pytest.mark.parametrize("rec_len,problem", [(0, "rec_len 0"), (6, "bad rec_len"), (5000, "bad rec_len"),
                                             (13, "bad rec_len")])
def test_broken_rec_len_chains_stop_the_walk(rec_len, problem):
    block = bytearray(C.BLOCK_SIZE)
    struct.pack_into("<IHBB", block, 0, 1, 12, 1, 2)
    block[8] = ord(".")
    struct.pack_into("<IHBB", block, 12, 1, rec_len, 2, 2)
    walk = walk_block(block)
    assert len(walk.records) == 1 and problem in walk.problem


def test_a_broken_chain_is_a_finding_of_the_directory_walk(extended):
    with Volume.open(str(extended), writable=True) as volume:
        a = volume.mkdir(1, b"a")
        block = volume.read_inode(a).i_block[0]
        data = bytearray(volume.read_block(block))
        struct.pack_into("<H", data, 12 + 4, 0)  # ".."'s rec_len
        volume.write_dir_block(block, data)
    with Volume.open(str(extended)) as volume:
        names = [r.name for r in volume.iter_dir(volume.read_inode(a))]
        assert names == [b"."]
        assert volume.problems == [Finding(Code.DIRECTORY_CHAIN, inode=a, block=block,
                                           detail="rec_len 0 at offset 12")]
        assert str(volume.problems[0]) == f"directory inode {a}, block {block}: rec_len 0 at offset 12"


def test_name_len_larger_than_rec_len_is_refused():
    block = bytearray(C.BLOCK_SIZE)
    struct.pack_into("<IHBB", block, 0, 1, 12, 200, 1)
    assert walk_block(block).problem


def test_directory_cycle_does_not_loop_the_walk(extended):
    from vexfs_tools.inspect.walk import walk_tree

    with Volume.open(str(extended), writable=True) as volume:
        a = volume.mkdir(1, b"a")
        volume.add_entry(a, b"back-to-root", 1, C.FT_DIR)
        volume.add_entry(a, b"self", a, C.FT_DIR)
    with Volume.open(str(extended)) as volume:
        paths = [p for p, _ in walk_tree(volume)]
    assert sorted(paths) == sorted([b"/lost+found", b"/a", b"/a/back-to-root", b"/a/self"])
