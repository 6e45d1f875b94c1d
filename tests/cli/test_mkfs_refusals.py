"""Every refusal of mkfs.vexfs: a non-zero exit, one line on stderr that names the problem,
no traceback, and not one byte written (nor an image file created)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from contextlib import contextmanager

import pytest

from tests.conftest import run

from .helpers import digest, error_line, is_all_zero, loop_device

MKFS = "mkfs.vexfs"
MAGIC_BYTES = (0x56455846).to_bytes(4, "little")
KERNEL_MAX_FILE = 12 * 4096  # 49,152 bytes: twelve direct blocks


def zero_image(path, size: int = 16 << 20):
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def refused(result, *words: str) -> str:
    """A refusal by mkfs.vexfs: exit != 0, one line naming the problem, nothing on stdout."""
    line = error_line(result, MKFS, *words)
    assert result.stdout == "", result.stdout
    return line


def has_vexfs_magic(path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == MAGIC_BYTES


# --- a device that already holds something --------------------------------------------------

def _data_at_start(path):
    with open(path, "r+b") as f:
        f.write(b"precious user data, not a file system")


def _byte_at_4095(path):
    with open(path, "r+b") as f:
        f.seek(4095)
        f.write(b"\x01")


def _ext2_signature(path):
    with open(path, "r+b") as f:
        f.seek(1024 + 56)
        f.write(b"\x53\xef")


def _vexfs(path):
    path.unlink()
    run(MKFS, "-q", "-L", "mine", "-s", "4M", path, check=True)


@pytest.mark.parametrize("fill, words, also_with_size", [
    (_data_at_start, ("contains", "data", "-f"), True),
    (_byte_at_4095, ("contains", "data", "-f"), False),
    (_ext2_signature, ("contains", "ext2", "-f"), False),
    (_vexfs, ("contains", "VexFS", "mine", "-f"), False),
], ids=["data-at-0", "one-byte-at-4095", "ext2", "vexfs"])
def test_data_in_first_4k_needs_force(tmp_path, fill, words, also_with_size):
    image = zero_image(tmp_path / "disk.img", 4 << 20)
    fill(image)
    before = digest(image)

    line = refused(run(MKFS, image), *words)
    assert str(image) in line
    assert digest(image) == before

    if also_with_size:  # -s on an existing image is no way around the check
        refused(run(MKFS, "-s", "4M", image), "contains", "-f")
        assert digest(image) == before

    forced = run(MKFS, "-q", "-f", image)
    assert forced.returncode == 0, forced.stderr
    assert has_vexfs_magic(image)
    assert digest(image) != before


def test_data_past_the_first_4k_does_not_need_force(tmp_path):
    """Like the C mkfs: only the first 4 KiB are looked at."""
    image = zero_image(tmp_path / "disk.img", 4 << 20)
    with open(image, "r+b") as f:
        f.seek(4096)
        f.write(b"\x01")
    result = run(MKFS, "-q", image)
    assert result.returncode == 0, result.stderr
    assert has_vexfs_magic(image)


# --- size ----------------------------------------------------------------------------------

def test_too_small_new_image_is_not_created(tmp_path):
    image = tmp_path / "small.img"
    line = refused(run(MKFS, "-s", "300K", image), "too small", "100")
    assert "75" in line  # 300 KiB is 75 blocks: the message says what it found
    assert not image.exists()


def test_too_small_existing_image_is_untouched(tmp_path):
    image = zero_image(tmp_path / "small.img", 99 * 4096)
    refused(run(MKFS, image), "too small", "100")
    assert os.path.getsize(image) == 99 * 4096
    assert is_all_zero(image)


@pytest.mark.parametrize("layout", [[], ["--compat", "kernel"]], ids=["extended", "kernel"])
def test_one_hundred_blocks_is_enough(tmp_path, layout):
    image = tmp_path / "hundred.img"
    result = run(MKFS, "-q", *layout, "-s", str(100 * 4096), image)
    assert result.returncode == 0, result.stderr
    assert os.path.getsize(image) == 100 * 4096
    assert has_vexfs_magic(image)


# --- options -------------------------------------------------------------------------------

def test_unknown_feature(tmp_path):
    image = tmp_path / "new.img"
    refused(run(MKFS, "-O", "nosuch", "-s", "16M", image), "unknown feature", "nosuch")
    assert not image.exists()


def test_unknown_feature_on_existing_image_writes_nothing(tmp_path):
    image = zero_image(tmp_path / "disk.img")
    refused(run(MKFS, "-f", "-O", "backup_super,nosuch", image), "unknown feature", "nosuch")
    assert is_all_zero(image)


def test_flex_geometry_can_not_be_turned_off(tmp_path):
    image = tmp_path / "new.img"
    refused(run(MKFS, "-O", "^flex_geometry", "-s", "16M", image), "flex_geometry", "--compat kernel")
    assert not image.exists()


@pytest.mark.parametrize("label", ["0123456789abcdef", "é" * 8], ids=["16-ascii", "8-chars-16-bytes"])
def test_label_over_15_bytes(tmp_path, label):
    image = tmp_path / "new.img"
    refused(run(MKFS, "-L", label, "-s", "16M", image), "label", "16 bytes", "15")
    assert not image.exists()


def test_label_of_15_bytes_is_written(tmp_path):
    image = tmp_path / "new.img"
    result = run(MKFS, "-q", "-L", "0123456789abcde", "-s", "1M", image)
    assert result.returncode == 0, result.stderr
    with open(image, "rb") as f:
        f.seek(116)
        assert f.read(16) == b"0123456789abcde\0"


def test_directory_as_device(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    refused(run(MKFS, "-s", "16M", folder), "directory", str(folder))
    assert list(folder.iterdir()) == []


def test_missing_path_without_size(tmp_path):
    image = tmp_path / "missing.img"
    refused(run(MKFS, image), str(image), "-s")
    assert not image.exists()


@pytest.mark.parametrize("option", [["-O", "backup_super"], ["-N", "2048"], ["-i", "4096"]],
                         ids=["-O", "-N", "-i"])
def test_extended_only_options_with_compat_kernel(tmp_path, option):
    image = tmp_path / "new.img"
    refused(run(MKFS, "--compat", "kernel", *option, "-s", "16M", image), "kernel", option[0])
    assert not image.exists()


def test_compat_kernel_with_features_on_existing_image_writes_nothing(tmp_path):
    existing = zero_image(tmp_path / "disk.img")
    refused(run(MKFS, "--compat", "kernel", "-f", "-O", "large_dir", existing), "kernel", "-O")
    assert is_all_zero(existing)


# --- -d content the kernel layout can not hold ---------------------------------------------

def _spread_tree(root, nodes: int):
    """`nodes` inodes besides the root: eight small directories and files spread over them,
    so that no directory outgrows its one block."""
    dirs = [root / f"d{i}" for i in range(8)]
    for d in dirs:
        d.mkdir(parents=True)
    for i in range(nodes - len(dirs)):
        (dirs[i % len(dirs)] / f"f{i:04d}").touch()
    return root


def _assert_nothing_written(make, words, tmp_path, pattern=None, existing=True, missing=True):
    """Run mkfs -d on a zeroed image made beforehand (it must stay all zero) and on a path
    that does not exist (it must not be created)."""
    if existing:
        image = zero_image(tmp_path / "zeroed.img")
        line = refused(make(image, "-f"), *words)
        if pattern:
            assert re.search(pattern, line), line
        assert os.path.getsize(image) == 16 << 20
        assert is_all_zero(image)
    if missing:
        image = tmp_path / "missing.img"
        line = refused(make(image, "-s", "16M"), *words)
        if pattern:
            assert re.search(pattern, line), line
        assert not image.exists()


def test_kernel_file_over_48k(tmp_path):
    tree = tmp_path / "tree"
    (tree / "docs").mkdir(parents=True)
    (tree / "small.txt").write_bytes(b"fits")
    (tree / "docs" / "big.bin").write_bytes(b"x" * (KERNEL_MAX_FILE + 1))
    _assert_nothing_written(
        lambda image, *extra: run(MKFS, "--compat", "kernel", "-d", tree, *extra, image),
        ("/docs/big.bin", str(KERNEL_MAX_FILE), "49153", "kernel"), tmp_path)


def test_kernel_file_of_exactly_48k_fits(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "max.bin").write_bytes(bytes(range(256)) * (KERNEL_MAX_FILE // 256))
    image = tmp_path / "k.img"
    result = run(MKFS, "-q", "--compat", "kernel", "-d", tree, "-s", "1M", image)
    assert result.returncode == 0, result.stderr
    assert run("vexfs", "cat", image, "/max.bin").stdout_bytes == (tree / "max.bin").read_bytes()


def test_kernel_more_than_1022_inodes(tmp_path):
    tree = _spread_tree(tmp_path / "tree", 1023)
    _assert_nothing_written(
        lambda image, *extra: run(MKFS, "--compat", "kernel", "-d", tree, *extra, image),
        ("1022", "inodes", "kernel"), tmp_path, pattern=r"/d[0-7](/f\d{4})?\b", existing=False)


def test_kernel_exactly_1022_inodes_fit(tmp_path):
    tree = _spread_tree(tmp_path / "tree", 1022)
    result = run(MKFS, "-q", "--compat", "kernel", "-d", tree, "-s", "16M", tmp_path / "k.img")
    assert result.returncode == 0, result.stderr


def test_kernel_directory_over_one_block(tmp_path):
    tree = tmp_path / "tree"
    wide = tree / "wide"
    wide.mkdir(parents=True)
    (tree / "ok.txt").write_bytes(b"fine")
    for i in range(300):
        (wide / f"a_rather_long_file_name_number_{i:04d}.txt").touch()
    _assert_nothing_written(
        lambda image, *extra: run(MKFS, "--compat", "kernel", "-d", tree, *extra, image),
        ("/wide", "300", "one block", "kernel"), tmp_path, missing=False)


def test_missing_source_directory(tmp_path):
    image = tmp_path / "new.img"
    refused(run(MKFS, "-d", tmp_path / "no-such-tree", "-s", "16M", image), "-d", "no-such-tree")
    assert not image.exists()


def test_dry_run_writes_nothing(tmp_path):
    existing = zero_image(tmp_path / "disk.img")
    result = run(MKFS, "-n", existing)
    assert result.returncode == 0, result.stderr
    assert "nothing was written" in result.stdout
    assert is_all_zero(existing)
    missing = tmp_path / "missing.img"
    assert run(MKFS, "-n", "-s", "16M", missing).returncode == 0
    assert not missing.exists()


# --- a mounted device ------------------------------------------------------------------------

@contextmanager
def mounted_ext2(tmp_path):
    """An ext2 image attached to a loop device and mounted (read-only, so that its bytes
    stay put): yields (image, loop device). Unmounted and detached afterwards."""
    for program in ("mke2fs", "mount", "umount"):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed")
    image = zero_image(tmp_path / "ext2.img")
    made = subprocess.run(["mke2fs", "-q", "-F", "-t", "ext2", str(image)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"mke2fs failed: {made.stderr.strip()}")
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    with loop_device(image) as device:
        mounted = subprocess.run(["mount", "-t", "ext2", "-o", "ro", device, str(mountpoint)],
                                 capture_output=True, text=True)
        if mounted.returncode != 0:
            pytest.skip(f"can not mount {device}: {mounted.stderr.strip()}")
        try:
            yield image, device
        finally:
            subprocess.run(["umount", str(mountpoint)], capture_output=True)


def test_mounted_device_and_its_backing_file(tmp_path):
    with mounted_ext2(tmp_path) as (image, device):
        before = digest(image)
        refused(run(MKFS, "-f", device), "mounted", device)
        refused(run(MKFS, "-f", image), "mounted", str(image))
        refused(run(MKFS, "-f", "-s", "16M", image), "mounted")
        assert digest(image) == before
        assert digest(device) == before
    with open(image, "rb") as f:
        f.seek(1024 + 56)
        assert f.read(2) == b"\x53\xef"  # still the ext2 file system


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_mounted_backing_file_under_another_name(tmp_path, kind):
    """The same file by another name is still the mounted file system's backing file."""
    with mounted_ext2(tmp_path) as (image, device):
        other = tmp_path / f"other-name-{kind}.img"
        if kind == "symlink":
            other.symlink_to(image)
        else:
            os.link(image, other)
        before = digest(image)
        refused(run(MKFS, "-f", other), "mounted")
        assert digest(image) == before
