"""`vexfs tune`: every change leaves an image fsck.vexfs -fn passes; refusals write nothing;
-z undo files put back every byte."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.cli.helpers import error_line
from tests.conftest import Unchanged, digest, kernel_image, run, stray_bitmap_bits
from vexfs_tools.errors import DeviceBusyError
from vexfs_tools.format import constants as C
from vexfs_tools.maintenance import tune as tune_module
from vexfs_tools.volume.volume import Volume

UUID = "0b0e1b2c-3d4e-4f50-8192-a3b4c5d6e7f8"
ENV = {"SOURCE_DATE_EPOCH": "1700000000"}


def fsck_clean(image: Path) -> None:
    result = run("fsck.vexfs", "-fn", image)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Pass 5" in result.stdout


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"hello\n")
    (root / "sub" / "big.bin").write_bytes(bytes(range(256)) * 1000)  # indirect blocks
    (root / "link").symlink_to("a.txt")
    return root


@pytest.fixture
def image(tmp_path, tree) -> Path:
    path = tmp_path / "d.img"
    run("mkfs.vexfs", "-q", "-s", "16M", "-U", UUID, "-d", tree, path, env=ENV, check=True)
    return path


def test_list_prints_what_dump_prints(image):
    tuned = run("vexfs", "tune", "-l", image, check=True).stdout.splitlines()
    dumped = run("dump.vexfs", image, check=True).stdout.splitlines()
    assert tuned[0].startswith("vexfs tune ") and dumped[0].startswith("dump.vexfs ")
    assert tuned[1:] == dumped[1:]


def test_fields_change_and_fsck_passes(image):
    result = run("vexfs", "tune", "-L", "data", "-U", "random", "-e", "remount-ro", "-c", "30",
                 "-i", "2w", image, check=True)
    assert "Setting the volume name to 'data'" in result.stdout
    fsck_clean(image)
    with Volume.open(str(image)) as volume:
        sb = volume.sb
        assert sb.s_volume_name.rstrip(b"\0") == b"data"
        assert (sb.s_errors, sb.s_max_mnt_count, sb.s_checkinterval) == (2, 30, 14 * 86400)
        assert str(bytes(sb.s_uuid)) != UUID
    listing = run("vexfs", "tune", "-l", image, check=True).stdout
    assert "Remount read-only" in listing and "Maximum mount count:      30" in listing


def test_new_uuid_keeps_the_checksum_seed(image):
    with Volume.open(str(image)) as volume:
        seed = volume.sb.s_checksum_seed
    run("vexfs", "tune", "-U", "clear", image, check=True)
    with Volume.open(str(image)) as volume:
        assert bytes(volume.sb.s_uuid) == bytes(16)
        assert volume.sb.s_checksum_seed == seed
    fsck_clean(image)


def test_max_mount_count_minus_one_and_interval_units(image):
    run("vexfs", "tune", "-c", "-1", "-i", "3", image, check=True)
    with Volume.open(str(image)) as volume:
        assert volume.sb.s_max_mnt_count == 0xFFFF
        assert volume.sb.s_checkinterval == 3 * 86400
    fsck_clean(image)


def test_metadata_csum_off_then_on_gives_back_the_same_bytes(image, tmp_path, tree):
    before = digest(image)
    run("vexfs", "tune", "-O", "^metadata_csum", image, check=True)
    fsck_clean(image)
    plain = tmp_path / "plain.img"
    run("mkfs.vexfs", "-q", "-s", "16M", "-U", UUID, "-O", "^metadata_csum", "-d", tree, plain,
        env=ENV, check=True)
    assert digest(image) == digest(plain), "tune -O ^metadata_csum is not what mkfs -O ^metadata_csum makes"
    with Volume.open(str(image)) as volume:
        assert not volume.features.has("metadata_csum") and volume.sb.s_checksum == 0
    run("vexfs", "tune", "-O", "metadata_csum", image, check=True)
    fsck_clean(image)
    assert digest(image) == before


def test_metadata_csum_on_is_checked_by_fsck(tmp_path, tree):
    image = tmp_path / "p.img"
    run("mkfs.vexfs", "-q", "-s", "16M", "-O", "^metadata_csum", "-d", tree, image, check=True)
    run("vexfs", "tune", "-O", "metadata_csum", image, check=True)
    fsck_clean(image)
    with Volume.open(str(image)) as volume:
        ino = volume.resolve("/sub/big.bin").ino
        block, offset = volume.geometry.inode_location(ino)
    with open(image, "r+b") as f:  # flip a bit of the inode: now caught by its checksum
        f.seek(block * C.BLOCK_SIZE + offset + 24)
        byte = f.read(1)[0]
        f.seek(block * C.BLOCK_SIZE + offset + 24)
        f.write(bytes([byte ^ 1]))
    result = run("fsck.vexfs", "-fn", image)
    assert result.returncode == 4 and "checksum" in result.stdout.lower()


def test_backup_super_off_and_on(image):
    with Volume.open(str(image)) as volume:
        last = volume.geometry.blocks_count - 1
        free = volume.sb.s_free_blocks
    run("vexfs", "tune", "-O", "^backup_super", image, check=True)
    fsck_clean(image)
    with Volume.open(str(image)) as volume:
        assert volume.geometry.backup_sb_block == 0 and not volume.bitmap.test(last)
        assert volume.sb.s_free_blocks == free + 1
        assert volume.device.read(last * C.BLOCK_SIZE, C.BLOCK_SIZE) == bytes(C.BLOCK_SIZE)
    run("vexfs", "tune", "-O", "backup_super", image, check=True)
    fsck_clean(image)
    listing = run("vexfs", "tune", "-l", image, check=True).stdout
    assert f"block {last}, identical to the primary" in listing


def _take_last_block(image: Path) -> None:
    """A file whose one block is the last block of the file system (where a backup goes)."""
    with Volume.open(str(image), writable=True) as volume:
        last = volume.geometry.blocks_count - 1
        ino = volume.allocate_inode()
        fields = volume.new_inode_fields(0o100644)
        volume.bitmap.set(last)
        volume.sb.s_free_blocks -= 1
        volume.write_data(last, b"x" * C.BLOCK_SIZE)
        fields.i_block[0] = last
        fields.i_blocks, fields.i_size = 1, C.BLOCK_SIZE
        volume.add_entry(C.ROOT_INO, b"last", ino, C.FT_REG_FILE)
        volume.write_inode(ino, fields)


def test_backup_super_refused_when_its_block_holds_data(tmp_path, tree):
    image = tmp_path / "nb.img"
    run("mkfs.vexfs", "-q", "-s", "16M", "-O", "^backup_super", "-d", tree, image, check=True)
    _take_last_block(image)
    fsck_clean(image)
    with Unchanged(image):
        result = run("vexfs", "tune", "-O", "backup_super", "-z", tmp_path / "u", image)
    error_line(result, "vexfs", "backup_super", "in use", "moved", code=1)
    assert not (tmp_path / "u").exists()


def _vector_image(tmp_path: Path) -> Path:
    root = tmp_path / "vtree"
    root.mkdir()
    np.save(root / "e.vec.npy", np.arange(64, dtype=np.float32).reshape(8, 8))
    for i in range(300):  # a directory of more than one block
        (root / f"a-rather-long-file-name-{i:04d}").write_bytes(b"x")
    (root / "big").write_bytes(b"y" * 100000)
    image = tmp_path / "v.img"
    run("mkfs.vexfs", "-q", "-s", "16M", "-d", root, image, check=True)
    return image


@pytest.mark.parametrize("spec, words", [
    ("^vector_files", ["vector file", "moved"]),
    ("^large_dir", ["more than one block", "moved"]),
    ("^indirect_blocks", ["indirect blocks", "moved"]),
    ("^flex_geometry", ["extended layout itself"]),
    ("metadata_csum,nonsense", ["unknown feature", "nonsense"]),
])
def test_feature_refusals_write_nothing(tmp_path, spec, words):
    image = _vector_image(tmp_path)
    with Unchanged(image):
        result = run("vexfs", "tune", "-O", spec, image)
    error_line(result, "vexfs", *words, code=1)


@pytest.mark.parametrize("args, words", [
    (["-L", "a-label-of-sixteen"], ["limit is 15"]),
    (["-U", "not-a-uuid"], ["invalid uuid"]),
    (["-c", "20000"], ["mount count"]),
    (["-i", "3y"], ["interval"]),
    ([], ["nothing to do"]),
    (["-z", "u.undo"], ["nothing to do"]),
])
def test_option_refusals_write_nothing(image, args, words):
    with Unchanged(image):
        result = run("vexfs", "tune", *args, image)
    error_line(result, "vexfs", *words)


def test_existing_undo_file_is_refused_before_anything_is_written(image, tmp_path):
    undo = tmp_path / "u.undo"
    undo.write_bytes(b"keep")
    with Unchanged(image):
        result = run("vexfs", "tune", "-L", "x", "-z", undo, image)
    error_line(result, "vexfs", "exists already", code=1)
    assert undo.read_bytes() == b"keep"


def test_feature_change_refused_on_a_damaged_image(image):
    stray_bitmap_bits(image, 100)
    with Unchanged(image):
        result = run("vexfs", "tune", "-O", "^metadata_csum", image)
    error_line(result, "vexfs", "run fsck.vexfs", code=1)


def test_mounted_device_is_refused(image, monkeypatch):
    monkeypatch.setattr("vexfs_tools.device.mount_point_of", lambda path: "/mnt/vexfs")
    with Unchanged(image), pytest.raises(DeviceBusyError, match="mounted on /mnt/vexfs"):
        tune_module.tune(str(image), tune_module.TuneRequest(label="x"))


@pytest.mark.parametrize("args", [
    ["-L", "undone", "-U", "time"],
    ["-O", "^metadata_csum"],
    ["-O", "^backup_super,^vector_files"],
    ["-e", "panic", "-O", "^metadata_csum,^backup_super"],
])
def test_undo_puts_back_every_byte(image, tmp_path, args):
    before = digest(image)
    undo = tmp_path / "t.undo"
    run("vexfs", "tune", *args, "-z", undo, image, check=True)
    fsck_clean(image)
    assert digest(image) != before
    run("vexfs", "undo", undo, image, check=True)
    assert digest(image) == before


def test_kernel_layout_takes_label_and_uuid_only(tmp_path):
    image = kernel_image("tree", tmp_path)
    before = image.read_bytes()
    fsck_before = run("fsck.vexfs", "-fn", image)
    for args in (["-e", "panic"], ["-c", "5"], ["-i", "1d"], ["-O", "backup_super"]):
        with Unchanged(image):
            result = run("vexfs", "tune", *args, image)
        error_line(result, "vexfs", "kernel layout", "-L and -U", code=1)
    run("vexfs", "tune", "-L", "kern", "-U", UUID, image, check=True)
    after = image.read_bytes()
    changed = [i for i in range(len(before)) if before[i] != after[i]] if len(before) < (64 << 20) else []
    assert changed and all(100 <= i < 132 for i in changed), changed[:10]
    assert run("fsck.vexfs", "-fn", image).returncode == fsck_before.returncode
    with Volume.open(str(image)) as volume:
        assert volume.sb.s_volume_name.rstrip(b"\0") == b"kern" and volume.sb.s_checksum == 0


def test_lazy_itable_off_and_on(image):
    """^lazy_itable clears the bit and the mark; lazy_itable computes the mark from a scan."""
    with Volume.open(str(image)) as volume:
        mark = volume.sb.s_itable_mark
        assert volume.lazy_itable and mark > C.LOST_FOUND_INO + 1
    result = run("vexfs", "tune", "-O", "^lazy_itable", image, check=True)
    assert "Clearing feature lazy_itable" in result.stdout
    fsck_clean(image)
    with Volume.open(str(image)) as volume:
        assert not volume.lazy_itable and volume.sb.s_itable_mark == 0
    run("vexfs", "tune", "-O", "lazy_itable", image, check=True)
    fsck_clean(image)
    with Volume.open(str(image)) as volume:
        assert volume.lazy_itable and volume.sb.s_itable_mark == mark
