"""`vexfs resize`: grown and shrunk images keep every file, vector file and checksum and pass
fsck.vexfs -fn; refusals write nothing; -z undo files put back every byte."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.cli.helpers import error_line
from tests.conftest import Unchanged, digest, kernel_image, run, stray_bitmap_bits
from tests.safety.crash import file_bytes, vector_files
from vexfs_tools.errors import DeviceBusyError
from vexfs_tools.format import constants as C
from vexfs_tools.maintenance import resize as resize_module
from vexfs_tools.maintenance.resize_plan import parse_size
from vexfs_tools.volume.namespace import Namespace
from vexfs_tools.volume.volume import Volume

ENV = {"SOURCE_DATE_EPOCH": "1700000000"}
VECTORS = np.random.default_rng(12).standard_normal((700, 8)).astype(np.float32)
MIB = 1 << 20


def fsck_clean(image: Path) -> None:
    result = run("fsck.vexfs", "-fn", image)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Pass 5" in result.stdout


def blocks_of(image: Path) -> int:
    with Volume.open(str(image)) as volume:
        return volume.geometry.blocks_count


def scatter(image: Path) -> None:
    """Files far from the start and inodes far into the table, so that a shrink has blocks
    (data, indirect, directory) and inodes (files and a directory) to move."""
    with Volume.open(str(image), writable=True) as volume:
        ns = Namespace(volume)
        filler = ns.create(C.ROOT_INO, b"filler")
        ns.write(filler, 0, bytes(6 * MIB))
        many = ns.mkdir(C.ROOT_INO, b"many")
        for i in range(400):
            ino = ns.create(many, b"f%03d" % i)
            ns.write(ino, 0, b"file %d\n" % i)
        late = ns.mkdir(many, b"late-dir")
        big = ns.create(late, b"big.bin")
        ns.write(big, 0, os.urandom(300_000))  # an indirect block, far out
        for i in range(360):
            ns.unlink(many, b"f%03d" % i)
        ns.unlink(C.ROOT_INO, b"filler")
        ns.fsync()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("resize")
    tree = where / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"hello\n")
    (tree / "sub" / "big.bin").write_bytes(bytes(range(256)) * 1000)
    (tree / "link").symlink_to("a.txt")
    for i in range(150):  # a directory of more than one block
        (tree / "sub" / f"a-rather-long-file-name-{i:04d}").write_bytes(b"x" * i)
    image = where / "base.img"
    run("mkfs.vexfs", "-q", "-s", "16M", "-d", tree, image, env=ENV, check=True)
    np.save(where / "v.npy", VECTORS)
    run("vexfs", "vectors", "add", image, "/emb.vec", "--from", where / "v.npy", check=True)
    scatter(image)
    fsck_clean(image)
    return image


@pytest.fixture
def image(source, tmp_path) -> Path:
    target = tmp_path / "r.img"
    shutil.copyfile(source, target)
    return target


def same_contents(before: Path, after: Path) -> None:
    assert file_bytes(after) == file_bytes(before)
    got = vector_files(after)
    np.testing.assert_array_equal(got["/emb.vec"], VECTORS)


def test_parse_size_units():
    assert parse_size("1000") == 1000
    assert parse_size("64M") == 16384 and parse_size("64m") == 16384
    assert parse_size("1G") == 262144 and parse_size("1T") == 1 << 28
    assert parse_size("4096K") == 1024 and parse_size("16s") == 2


def test_grow_to_the_file_size(image, source):
    os.truncate(image, 64 * MIB)
    result = run("vexfs", "resize", image, check=True)
    assert "is now 16384 (4k) blocks long" in result.stdout
    assert blocks_of(image) == 16384
    fsck_clean(image)
    same_contents(source, image)


def test_grow_across_bitmap_blocks_moves_the_bitmap_once(image, source):
    run("vexfs", "resize", image, "300M", check=True)
    assert image.stat().st_size == 300 * MIB
    fsck_clean(image)
    with Volume.open(str(image)) as volume:
        g = volume.geometry
        assert g.bitmap_blocks == 3 and g.bitmap_start == g.inode_table_start + g.inode_table_blocks
        assert g.backup_sb_block == g.blocks_count - 1
    same_contents(source, image)
    run("vexfs", "resize", image, "1G", check=True)  # the table grows: the bitmap moves past it
    fsck_clean(image)
    with Volume.open(str(image)) as volume:
        big = volume.geometry
        assert big.bitmap_blocks == 9 and big.bitmap_start == big.inode_table_start + big.inode_table_blocks
        assert big.inode_table_start == g.inode_table_start and big.inode_table_blocks > g.inode_table_blocks
    same_contents(source, image)


def test_grow_adds_inodes_at_the_same_ratio_and_they_hold_files(image, source):
    """As resize2fs adds inode tables with the groups it adds: 4x the blocks, 4x the inodes
    (whole table blocks), and more files fit than the old table could hold."""
    with Volume.open(str(image)) as volume:
        old = volume.geometry
        free_before = volume.count_free_inodes()
    run("vexfs", "resize", image, "64M", check=True)
    fsck_clean(image)
    same_contents(source, image)
    with Volume.open(str(image), writable=True) as volume:
        g = volume.geometry
        per = C.INODES_PER_BLOCK
        assert g.inodes_count == -(-old.inodes_count * 4 // per) * per
        assert g.inode_table_start == old.inode_table_start
        assert volume.count_free_inodes() == free_before + g.inodes_count - old.inodes_count
        ns = Namespace(volume)
        crowd = ns.mkdir(C.ROOT_INO, b"crowd")
        last = max(ns.create(crowd, b"n%05d" % i) for i in range(free_before + 10))
        ns.fsync()
    assert last > old.inodes_count
    fsck_clean(image)
    kept = {path: data for path, data in file_bytes(image).items() if not path.startswith("/crowd/")}
    assert kept == file_bytes(source)


def test_print_minimum_changes_nothing_and_shrink_to_it(image, source):
    with Unchanged(image):
        printed = run("vexfs", "resize", "-P", image, check=True).stdout
    minimum = int(printed.split(":")[-1])
    with Volume.open(str(image)) as volume:
        inodes_before = volume.geometry.inodes_count
    result = run("vexfs", "resize", "-M", "-p", image, check=True)
    assert "Relocating blocks" in result.stderr and "Relocating inodes" in result.stderr
    assert blocks_of(image) == minimum
    assert image.stat().st_size == minimum * C.BLOCK_SIZE
    fsck_clean(image)
    same_contents(source, image)
    with Volume.open(str(image)) as volume:
        assert volume.geometry.inodes_count < inodes_before
        assert volume.resolve("/many/late-dir/big.bin").ino <= volume.geometry.inodes_count


def test_shrink_then_grow_back(image, source):
    run("vexfs", "resize", image, "6M", check=True)
    fsck_clean(image)
    same_contents(source, image)
    run("vexfs", "resize", image, "40M", check=True)
    fsck_clean(image)
    same_contents(source, image)
    assert blocks_of(image) == 10240


def test_nothing_to_do(image):
    with Unchanged(image):
        result = run("vexfs", "resize", image, "4096", check=True)
    assert "Nothing to do" in result.stdout


@pytest.mark.parametrize("args, words", [
    (["100"], ["smaller than the minimum", "blocks"]),
    (["20T"], ["more than the extended layout addresses"]),
    (["12X"], ["invalid size"]),
    (["-P", "8M"], ["-P takes no SIZE"]),
    (["-M", "8M"], ["either -M or SIZE"]),
])
def test_refusals_write_nothing(image, args, words):
    with Unchanged(image):
        result = run("vexfs", "resize", image, *args)
    error_line(result, "vexfs", *words, code=1)


def test_minimum_is_named_when_too_small(image):
    minimum = int(run("vexfs", "resize", "-P", image, check=True).stdout.split(":")[-1])
    result = run("vexfs", "resize", image, str(minimum - 1))
    error_line(result, "vexfs", f"minimum ({minimum} blocks)", code=1)


def test_kernel_layout_is_refused(tmp_path):
    image = kernel_image("tree", tmp_path)
    for args in ([], ["-P"], ["-M"]):
        with Unchanged(image):
            result = run("vexfs", "resize", *args, image)
        error_line(result, "vexfs", "kernel layout", "geometry is fixed", code=1)


def test_damaged_image_is_refused_unless_forced(image):
    stray_bitmap_bits(image, 300)
    with Volume.open(str(image), writable=True, check_trust=False) as volume:
        volume.sb.s_free_blocks = volume.count_free_blocks()  # damage only fsck's pass 5 sees
        volume.sb_dirty = True
    with Unchanged(image):
        result = run("vexfs", "resize", image, "20M")
    error_line(result, "vexfs", "run fsck.vexfs", "-f", code=1)
    run("vexfs", "resize", "-f", image, "20M", check=True)
    assert blocks_of(image) == 5120


def test_locked_and_mounted_images_are_refused(image, monkeypatch):
    import fcntl
    with open(image, "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with Unchanged(image):
            result = run("vexfs", "resize", image, "20M")
        error_line(result, "vexfs", "being written by another program", code=1)
    monkeypatch.setattr("vexfs_tools.device.mount_point_of", lambda path: "/mnt/vexfs")
    with Unchanged(image), pytest.raises(DeviceBusyError, match="mounted on /mnt/vexfs"):
        resize_module.resize(str(image), resize_module.ResizeRequest(size="20M"))


def test_undo_of_a_shrink_puts_back_every_byte(image, tmp_path):
    before = digest(image)
    undo = tmp_path / "s.undo"
    result = run("vexfs", "resize", "-z", undo, "-M", image, check=True)
    assert "keeps its size" in result.stdout
    fsck_clean(image)
    assert digest(image) != before
    run("vexfs", "undo", undo, image, check=True)
    assert digest(image) == before


def test_undo_of_a_grow_puts_back_the_old_file_system(image, tmp_path, source):
    undo = tmp_path / "g.undo"
    run("vexfs", "resize", "-z", undo, image, "300M", check=True)
    run("vexfs", "undo", undo, image, check=True)
    assert blocks_of(image) == 4096
    with open(image, "rb") as f:
        assert f.read(16 * MIB) == source.read_bytes()
    fsck_clean(image)


def test_a_grown_block_device(image, source):
    """On a loop device: without SIZE the file system takes the whole device; a SIZE past
    the device is refused with its size."""
    from tests.cli.helpers import loop_device
    os.truncate(image, 24 * MIB)
    with loop_device(image) as device:
        with Unchanged(image):
            result = run("vexfs", "resize", device, "32M")
        error_line(result, "vexfs", "holds only 6144 blocks", code=1)
        run("vexfs", "resize", device, check=True)
        fsck_clean(Path(device))
    assert blocks_of(image) == 6144
    same_contents(source, image)
