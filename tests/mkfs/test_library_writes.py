"""The Volume's generic write path (what fsck repairs and future tools build on), on a
freshly made image of each layout: what is written reads back after a reopen, the free
counters stay true, and the kernel layout's limits and allocation order hold."""

from __future__ import annotations

import random
import struct

import pytest

from vexfs_tools.errors import CorruptionError, LimitError, NoSpaceError
from vexfs_tools.format import constants as C
from vexfs_tools.volume import Volume, checksums

BLOCK = 4096
TIMES = (1_500_000_001, 1_500_000_002, 1_500_000_003)


def data_of(name: bytes, size: int) -> bytes:
    return random.Random(name).randbytes(size)


def read_all(volume, inode) -> bytes:
    return b"".join(volume.read_file(inode))


def layout_args(layout):
    return ("--compat", "kernel") if layout == "kernel" else ()


@pytest.fixture(params=["kernel", "extended"])
def layout(request):
    return request.param


def assert_counters_true(image):
    with Volume.open(str(image)) as volume:
        assert volume.sb.s_free_blocks == volume.count_free_blocks()
        assert volume.sb.s_free_inodes == volume.count_free_inodes()


def test_files_and_directories_read_back(fresh_image, layout):
    image = fresh_image("16M", *layout_args(layout))
    sizes = [0, 1, 4095, 4096, 4097, 12 * BLOCK]
    if layout == "extended":
        sizes += [12 * BLOCK + 1, 300_000, (12 + 1023) * BLOCK, (12 + 1023) * BLOCK + 1, 5 << 20]
    with Volume.open(str(image), writable=True) as volume:
        sub = volume.mkdir(C.ROOT_INO, b"sub", mode=0o40750, uid=7, gid=8, times=TIMES)
        subsub = volume.mkdir(sub, b"subsub")
        for size in sizes:
            name = b"file-%d" % size
            volume.create_file(sub, name, data_of(name, size), mode=0o100640, uid=1000, gid=100,
                               times=TIMES)
        link = volume.create_file(subsub, b"link", b"../file-1", mode=0o120777)
        volume.add_entry(C.ROOT_INO, b"alias", volume.resolve("/sub/file-4096").ino, C.FT_REG_FILE)

    with Volume.open(str(image)) as volume:
        root, dsub = volume.read_inode(C.ROOT_INO), volume.resolve("/sub")
        assert dsub.ino == sub and dsub.i_mode == 0o40750
        assert (dsub.i_uid, dsub.i_gid, dsub.i_atime, dsub.i_ctime, dsub.i_mtime) == (7, 8, *TIMES)
        assert dsub.i_links_count == 3 and volume.resolve("/sub/subsub").i_links_count == 2
        assert root.i_links_count == (3 if layout == "kernel" else 4)  # + lost+found
        assert volume.lookup(dsub, b"..") == C.ROOT_INO and volume.lookup(dsub, b".") == sub
        assert volume.lookup(volume.resolve("/sub/subsub"), b"..") == sub
        for size in sizes:
            name = b"file-%d" % size
            inode = volume.resolve(b"/sub/" + name)
            assert inode.i_mode == 0o100640 and (inode.i_uid, inode.i_gid) == (1000, 100)
            assert (inode.i_atime, inode.i_ctime, inode.i_mtime) == TIMES
            assert inode.i_size == size
            assert read_all(volume, inode) == data_of(name, size), size
            block_map = volume.block_map(inode)
            assert inode.i_blocks == -(-size // BLOCK) + len(block_map.indirect_blocks())
            assert block_map.problems == []
            if layout == "extended":
                assert volume.inode_checksum_ok(inode)
                for block in block_map.indirect_blocks():
                    assert checksums.block_checksum_ok(volume.seed, block, volume.read_block(block))
        big = volume.resolve("/sub/file-%d" % (5 << 20)) if layout == "extended" else None
        if big is not None:
            assert big.i_indirect and big.i_double_indirect
        assert volume.resolve("/sub/subsub/link").ino == link
        assert read_all(volume, volume.resolve("/sub/subsub/link")) == b"../file-1"
        assert volume.resolve("/alias").ino == volume.resolve("/sub/file-4096").ino
        assert volume.problems == []
    assert_counters_true(image)


def test_directory_grows_past_one_block(fresh_image):
    image = fresh_image("16M")
    names = [b"entry-%04d-" % i + b"n" * (i % 40) for i in range(600)]
    with Volume.open(str(image), writable=True) as volume:
        d = volume.mkdir(C.ROOT_INO, b"big")
        target = volume.create_file(C.ROOT_INO, b"target", b"shared")
        for name in names:
            volume.add_entry(d, name, target, C.FT_REG_FILE)
    with Volume.open(str(image)) as volume:
        inode = volume.resolve("/big")
        blocks = volume.dir_blocks(inode)
        assert len(blocks) >= 4
        assert inode.i_size == len(blocks) * BLOCK
        assert inode.i_blocks == len(blocks)
        assert [logical for logical, _ in blocks] == list(range(len(blocks)))
        assert volume.inode_checksum_ok(inode)
        for _, block in blocks:
            assert volume.dir_block_checksum_ok(block, volume.read_block(block))
            assert volume.bitmap.test(block)
        listed = [r.name for r in volume.iter_dir(inode)]
        assert sorted(listed) == sorted([b".", b".."] + names)
        assert all(volume.lookup(inode, name) == target for name in names[::37])
        for index in range(volume.geometry.bitmap_blocks):
            assert volume.bitmap.checksum_ok(index)
        assert volume.problems == []
    assert_counters_true(image)


def test_free_counters_follow_allocations_and_frees(fresh_image, layout):
    image = fresh_image("16M", *layout_args(layout))
    with Volume.open(str(image), writable=True) as volume:
        blocks0, inodes0 = volume.count_free_blocks(), volume.count_free_inodes()
        assert (volume.sb.s_free_blocks, volume.sb.s_free_inodes) == (blocks0, inodes0)
        volume.create_file(C.ROOT_INO, b"a", b"a" * 10_000)  # 3 blocks
        d = volume.mkdir(C.ROOT_INO, b"d")  # 1 block
        ino = volume.allocate_inode()
        volume.write_inode(ino, volume.new_inode_fields(0o100600))
        block = volume.allocate_block()
        volume.free_block(block)
        volume.free_inode(ino)
        spare = [volume.allocate_block() for _ in range(5)]
        for b in spare[1::2]:
            volume.free_block(b)
        volume.create_file(d, b"b", b"b" * 5000)  # 2 blocks
        assert volume.count_free_blocks() == blocks0 - 3 - 1 - 3 - 2
        assert volume.count_free_inodes() == inodes0 - 3
    with Volume.open(str(image)) as volume:
        assert volume.sb.s_free_blocks == volume.count_free_blocks() == blocks0 - 9
        assert volume.sb.s_free_inodes == volume.count_free_inodes() == inodes0 - 3


def test_allocated_block_is_zeroed(fresh_image, layout):
    image = fresh_image("1M", *layout_args(layout))
    with Volume.open(str(image)) as volume:
        first = volume.bitmap.find_free(volume.geometry.first_data_block)
    with open(image, "r+b") as f:
        f.seek(first * BLOCK)
        f.write(b"\xee" * (4 * BLOCK))
    with Volume.open(str(image), writable=True) as volume:
        got = [volume.allocate_block() for _ in range(4)]
        assert got == list(range(first, first + 4))
    with open(image, "rb") as f:
        f.seek(first * BLOCK)
        assert f.read(4 * BLOCK) == bytes(4 * BLOCK)


# --- the kernel layout: its allocation order and its limits -------------------------------


def test_kernel_allocation_order(fresh_image):
    """As the kernel: the lowest inode with i_mode 0 from 2, the lowest free block from 66."""
    image = fresh_image("16M", "--compat", "kernel")
    with Volume.open(str(image), writable=True) as volume:
        assert volume.allocate_block() == 67
        assert volume.create_file(C.ROOT_INO, b"a", b"x" * 5000) == 2
        assert list(volume.read_inode(2).i_block[:2]) == [68, 69]
        assert volume.mkdir(C.ROOT_INO, b"d") == 3
        assert volume.read_inode(3).i_block[0] == 70
        assert volume.create_file(C.ROOT_INO, b"b", b"y") == 4
        assert volume.read_inode(4).i_block[0] == 71
        volume.free_inode(2)
        volume.free_block(68)
        volume.free_block(67)
        assert volume.create_file(3, b"c", b"z" * 4097) == 2  # the lowest free slot again
        assert list(volume.read_inode(2).i_block[:2]) == [67, 68]
        assert volume.allocate_block() == 72


def test_allocate_inode_twice_gives_two_inodes(fresh_image, layout):
    image = fresh_image("1M", *layout_args(layout))
    with Volume.open(str(image), writable=True) as volume:
        first = volume.allocate_inode()
        second = volume.allocate_inode()
        assert first == volume.geometry.first_allocatable_ino + (layout == "extended")  # 2, or 12
        assert second != first


def test_kernel_allocation_never_below_block_66(fresh_image):
    """The kernel searches from bit 66 to the end and never wraps: a clear bit in front of
    the data area (a damaged bitmap) must not hand out an inode table block."""
    image = fresh_image("400K", "--compat", "kernel")  # 100 blocks: 67..99 free
    with open(image, "r+b") as f:  # clear bit 5 (an inode table block) in the bitmap
        f.seek(BLOCK)
        f.write(bytes([0xFF & ~(1 << 5)]))
    got = []
    with Volume.open(str(image), writable=True) as volume:  # a writer refuses such an image
        with pytest.raises(CorruptionError, match="run fsck.vexfs"):
            volume.allocate_block()
    with Volume.open(str(image), writable=True, check_trust=False) as volume:  # the allocator's own rule
        with pytest.raises(NoSpaceError):
            while len(got) < 100:
                got.append(volume.allocate_block())
    assert got == list(range(67, 100))


def test_kernel_layout_blocks_on_disk(fresh_image):
    """What the library writes in the kernel layout is what the kernel reads: no checksums,
    no tails, the directory chain reaching byte 4096."""
    image = fresh_image("1M", "--compat", "kernel")
    with Volume.open(str(image), writable=True) as volume:
        volume.create_file(C.ROOT_INO, b"hello.txt", b"hello\n")
    with open(image, "rb") as f:
        data = f.read(68 * BLOCK)
    inode2 = data[2 * BLOCK + 112:2 * BLOCK + 224]
    assert struct.unpack_from("<HHII", inode2, 0) == (0o100644, 1, 0, 0)
    assert struct.unpack_from("<Q", inode2, 16)[0] == 6
    assert struct.unpack_from("<I", inode2, 36)[0] == 1  # i_blocks in 4 KiB blocks
    assert struct.unpack_from("<12I", inode2, 40) == (67,) + (0,) * 11
    assert inode2[88:112] == bytes(24)
    root_dir = data[66 * BLOCK:67 * BLOCK]
    assert struct.unpack_from("<IHBB", root_dir, 0) == (1, 12, 1, 2)
    assert struct.unpack_from("<IHBB", root_dir, 12) == (1, 12, 2, 2)
    assert struct.unpack_from("<IHBB", root_dir, 24) == (2, BLOCK - 24, 9, 1)
    assert root_dir[32:41] == b"hello.txt"
    assert data[67 * BLOCK:67 * BLOCK + 6] == b"hello\n"
    assert not any(data[67 * BLOCK + 6:])
    assert data[BLOCK + 8] == 0x0F  # bits 64..67
    assert struct.unpack_from("<I", data, 1020)[0] == 0  # no superblock checksum
    assert struct.unpack_from("<I", data, 12)[0] == 256 - 68  # s_free_blocks
    assert struct.unpack_from("<I", data, 20)[0] == 1022  # s_free_inodes


def fill_root_directory(volume) -> tuple[int, list[bytes]]:
    """Link 4-byte names (12-byte entries) into the root until its one block is full."""
    target = volume.create_file(C.ROOT_INO, b"t", b"t")
    names = []
    with pytest.raises(LimitError):
        for i in range(1000):
            name = b"%04d" % i
            volume.add_entry(C.ROOT_INO, name, target, C.FT_REG_FILE)
            names.append(name)
    # ".", "..", "t" and the names: 12 bytes each, 4096 in all
    assert len(names) == BLOCK // 12 - 3
    return target, names


def test_kernel_directory_full(fresh_image):
    image = fresh_image("16M", "--compat", "kernel")
    with Volume.open(str(image), writable=True) as volume:
        target, names = fill_root_directory(volume)
        with pytest.raises(LimitError):
            volume.mkdir(C.ROOT_INO, b"x")
        with pytest.raises(LimitError):
            volume.create_file(C.ROOT_INO, b"y", b"data")
        assert volume.read_inode(C.ROOT_INO).i_size == BLOCK
        assert volume.read_inode(C.ROOT_INO).i_blocks == 1
    with Volume.open(str(image)) as volume:
        root = volume.read_inode(C.ROOT_INO)
        assert [r.name for r in volume.iter_dir(root)] == [b".", b"..", b"t"] + names
        assert volume.dir_blocks(root) == [(0, 66)]
        assert volume.lookup(root, b"x") is None and volume.lookup(root, b"y") is None


@pytest.mark.parametrize("attempt", ["file in a full directory", "directory in a full directory",
                                     "file over 49152 bytes"])
def test_kernel_failed_creates_leak_nothing(fresh_image, attempt):
    """A create refused with LimitError leaves no inode, block or counter change behind
    (unlike the kernel, which leaks an inode)."""
    image = fresh_image("16M", "--compat", "kernel")
    with Volume.open(str(image), writable=True) as volume:
        if "full" in attempt:
            fill_root_directory(volume)
        else:
            volume.create_file(C.ROOT_INO, b"t", b"t")
    with Volume.open(str(image), writable=True) as volume:
        before = (volume.count_free_blocks(), volume.count_free_inodes())
        assert (volume.sb.s_free_blocks, volume.sb.s_free_inodes) == before
        with pytest.raises(LimitError):
            if attempt == "file in a full directory":
                volume.create_file(C.ROOT_INO, b"y", b"data")
            elif attempt == "directory in a full directory":
                volume.mkdir(C.ROOT_INO, b"x")
            else:
                volume.create_file(C.ROOT_INO, b"z", b"z" * 49153)
        assert (volume.count_free_blocks(), volume.count_free_inodes()) == before
    with Volume.open(str(image)) as volume:
        assert (volume.count_free_blocks(), volume.count_free_inodes()) == before
        assert (volume.sb.s_free_blocks, volume.sb.s_free_inodes) == before


def test_kernel_file_size_limit(fresh_image):
    image = fresh_image("16M", "--compat", "kernel")
    with Volume.open(str(image), writable=True) as volume:
        ino = volume.create_file(C.ROOT_INO, b"max", data_of(b"max", 49152))
        with pytest.raises(LimitError):
            volume.create_file(C.ROOT_INO, b"over", b"o" * 49153)
        fields = volume.read_inode(ino).fields
        with pytest.raises(LimitError):
            volume.set_block(fields, 12, volume.geometry.first_data_block + 100)
    with Volume.open(str(image)) as volume:
        inode = volume.resolve("/max")
        assert inode.i_blocks == 12 and all(inode.i_block)
        assert read_all(volume, inode) == data_of(b"max", 49152)
        assert volume.lookup(volume.read_inode(C.ROOT_INO), b"over") is None
