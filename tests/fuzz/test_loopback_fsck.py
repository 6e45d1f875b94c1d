"""fsck.vexfs through a real block device (/dev/loopN): a known fixable fault found by -n,
fixed by -y, gone for the next -n; and -y refused on a mounted device.

Needs root, the loop driver and losetup (and, for the mounted case, mkfs.ext2 and mount);
skips with the reason otherwise. Every loop device and mount is undone in `finally`.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess

import pytest

from tests.cli.helpers import digest, loop_device, require_loop_devices
from tests.conftest import run, tool

FSCK = "fsck.vexfs"
TIMEOUT = 60


def fsck(*args) -> subprocess.CompletedProcess:
    """fsck.vexfs under a timeout (a hang fails the test); never a traceback."""
    try:
        result = subprocess.run([tool(FSCK), *map(str, args)], capture_output=True,
                                text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
                                env={k: v for k, v in os.environ.items() if k != "VEXFS_TRACEBACK"})
    except subprocess.TimeoutExpired:
        pytest.fail(f"{FSCK} {args} did not end in {TIMEOUT} s")
    out = result.stdout + result.stderr
    assert "Traceback" not in out and "internal error" not in out, out
    return result


@pytest.fixture
def stale_kernel_image(tmp_path):
    """A 16 MiB kernel-layout image whose only fault is a stale s_free_blocks (4000 recorded,
    4029 true), what the kernel's fsync-only counter updates leave."""
    image = tmp_path / "stale.img"
    run("mkfs.vexfs", "-q", "-s", "16M", "--compat", "kernel", image, check=True)
    with open(image, "r+b") as f:
        f.seek(12)
        f.write(struct.pack("<I", 4000))
    return image


def free_blocks_recorded(path) -> int:
    with open(path, "rb") as f:
        return struct.unpack("<I", f.read(16)[12:16])[0]


def test_check_and_repair_through_a_loop_device(stale_kernel_image):
    original = stale_kernel_image.read_bytes()
    with loop_device(stale_kernel_image) as device:
        before = digest(device)
        checked = fsck("-n", device)
        assert checked.returncode == 0, (checked.stdout, checked.stderr)
        assert "Free blocks count wrong (4000, counted=4029)" in checked.stdout
        assert "Fix? no" in checked.stdout
        assert "MODIFIED" not in checked.stdout
        assert digest(device) == before  # -n wrote nothing

        repaired = fsck("-y", device)
        assert repaired.returncode == 1, (repaired.stdout, repaired.stderr)
        assert "Free blocks count wrong (4000, counted=4029)" in repaired.stdout
        assert "FILE SYSTEM WAS MODIFIED" in repaired.stdout
        assert free_blocks_recorded(device) == 4029

        again = fsck("-n", device)
        assert again.returncode == 0, (again.stdout, again.stderr)
        assert "count wrong" not in again.stdout
        assert "MODIFIED" not in again.stdout
    # the repair reached the backing file, and touched nothing but the superblock
    assert free_blocks_recorded(stale_kernel_image) == 4029
    assert stale_kernel_image.read_bytes()[4096:] == original[4096:]


@pytest.fixture
def mounted_loop_device(tmp_path):
    """An ext2 image attached to a loop device and mounted: (device, image, mount point)."""
    require_loop_devices()
    mkfs_ext2 = shutil.which("mkfs.ext2") or shutil.which("mke2fs")
    if mkfs_ext2 is None:
        pytest.skip("mkfs.ext2 (e2fsprogs) is not installed")
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("mount/umount (util-linux) is not installed")
    image = tmp_path / "ext2.img"
    with open(image, "wb") as f:
        f.truncate(8 << 20)
    made = subprocess.run([mkfs_ext2, "-q", "-F", str(image)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"mkfs.ext2 failed: {made.stderr.strip()}")
    where = tmp_path / "mnt"
    where.mkdir()
    with loop_device(image) as device:
        mounted = subprocess.run(["mount", "-t", "ext2", device, str(where)], capture_output=True, text=True)
        if mounted.returncode != 0:
            pytest.skip(f"can not mount here: {mounted.stderr.strip()}")
        try:
            yield device, image, where
        finally:
            subprocess.run(["umount", str(where)], capture_output=True)


def test_y_on_a_mounted_device_is_refused(mounted_loop_device):
    device, image, where = mounted_loop_device
    before = digest(device)
    for target in (device, image):  # the device, and the image file behind it
        result = fsck("-y", target)
        assert result.returncode == 8, (target, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"{FSCK}:") and "mounted" in lines[0], lines[0]
        assert str(where) in lines[0]
    assert digest(device) == before
