"""The lazy_itable mark (FORMAT.md, "The inode table mark"): every writer raises it over the
inodes it writes, readers never read the table past it, fsck checks it."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import run
from vexfs_tools.device import Device
from vexfs_tools.format import constants as C
from vexfs_tools.volume import Volume
from vexfs_tools.volume.namespace import Namespace


def mark_of(image: Path) -> int:
    with Volume.open(str(image)) as volume:
        return volume.sb.s_itable_mark


def fsck(image: Path, *args: str):
    return run("fsck.vexfs", "-f", *args, image)


def test_mkfs_sets_the_mark_past_lost_found(fresh_image):
    image = fresh_image("16M")
    assert mark_of(image) == C.LOST_FOUND_INO + 1


def test_mkfs_without_the_feature_leaves_zero(fresh_image):
    image = fresh_image("16M", "-O", "^lazy_itable")
    with Volume.open(str(image)) as volume:
        assert not volume.lazy_itable and volume.sb.s_itable_mark == 0
        assert volume.itable_end == volume.geometry.inode_slots
    assert fsck(image, "-n").returncode == 0


def test_mkfs_d_marks_past_the_last_inode(fresh_image, tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(50):
        (tree / f"f{i}").write_bytes(b"x" * i)
    image = fresh_image("16M", "-d", tree)
    with Volume.open(str(image)) as volume:
        last = max(volume.resolve(f"/f{i}").ino for i in range(50))
        assert volume.sb.s_itable_mark == last + 1
    assert fsck(image, "-n").returncode == 0


def test_the_write_api_raises_the_mark(fresh_image):
    image = fresh_image("16M")
    with Volume.open(str(image), writable=True) as volume:
        ns = Namespace(volume)
        inos = [ns.create(C.ROOT_INO, f"n{i}".encode()) for i in range(40)]
        volume.create_file(C.ROOT_INO, b"lib", b"data")
        assert len(set(inos)) == 40
    with Volume.open(str(image)) as volume:
        lib = volume.resolve("/lib").ino
        assert volume.sb.s_itable_mark == max(*inos, lib) + 1
    assert fsck(image, "-n").returncode == 0


def test_readers_stop_at_the_mark(fresh_image, monkeypatch):
    """On a block device (no holes to skip) the table past the mark is never read."""
    image = fresh_image("64M")
    reads: list[tuple[int, int]] = []
    real_read = Device.read

    def read(self, offset, length):
        reads.append((offset, length))
        return real_read(self, offset, length)

    monkeypatch.setattr(Device, "read", read)
    monkeypatch.setattr(Device, "is_hole", lambda self, offset, length: False)
    with Volume.open(str(image)) as volume:
        volume.device.is_block_device = True
        g = volume.geometry
        seen = sum(len(records) for _, records in volume.inode_table(skip_holes=True))
        assert seen == volume.itable_end == C.LOST_FOUND_INO
        assert volume.count_free_inodes() == g.inode_slots - C.LOST_FOUND_INO
        assert list(volume.inode_table_past_mark()) == []
        table_end = (g.inode_table_start + 1) * C.BLOCK_SIZE  # the mark is in the first block
        table = range(g.inode_table_start * C.BLOCK_SIZE, (g.inode_table_start + g.inode_table_blocks) * C.BLOCK_SIZE)
        assert all(offset + length <= table_end for offset, length in reads if offset in table)


def test_fsck_finds_a_mark_out_of_range(fresh_image):
    image = fresh_image("16M")
    with Volume.open(str(image), writable=True) as volume:
        volume.sb.s_itable_mark = 5
        volume.write_superblock()
    result = fsck(image, "-n")
    assert result.returncode == 4
    assert "Superblock field s_itable_mark is 5" in result.stdout
    assert fsck(image, "-y").returncode == 1
    assert fsck(image, "-n").returncode == 0
    assert os.path.getsize(image) == 16 << 20
