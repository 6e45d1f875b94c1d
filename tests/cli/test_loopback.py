"""The tools on a real block device: an image attached to /dev/loopN."""

from __future__ import annotations

import json

from tests.conftest import run

from .helpers import digest, error_line, loop_device

SIZE = 32 << 20


def new_image(tmp_path, name="disk.img"):
    image = tmp_path / name
    with open(image, "wb") as f:
        f.truncate(SIZE)
    return image


def dumped(target) -> dict:
    return json.loads(run("dump.vexfs", "--json", target, check=True).stdout)


def test_mkfs_extended_on_a_loop_device(tmp_path):
    image = new_image(tmp_path)
    with loop_device(image) as device:
        made = run("mkfs.vexfs", "-L", "loopy", "-U", "11111111-2222-3333-4444-555555555555", device)
        assert made.returncode == 0, made.stderr
        assert device in made.stdout
        info = dumped(device)
        assert info["label"] == "loopy"
        assert info["uuid"] == "11111111-2222-3333-4444-555555555555"
        assert info["layout"] == "extended"
        assert info["blocks_count"] == info["device_blocks"] == SIZE // 4096
        assert info["free_blocks"]["recorded"] == info["free_blocks"]["counted"]
        assert info["free_inodes"]["recorded"] == info["free_inodes"]["counted"]
        assert info["used_inodes"] == 2  # the root and lost+found
        through_device = digest(device)
    # what was written went to the backing file
    assert digest(image) == through_device
    assert dumped(image)["label"] == "loopy"


def test_mkfs_compat_kernel_on_a_loop_device(tmp_path):
    image = new_image(tmp_path)
    with loop_device(image) as device:
        made = run("mkfs.vexfs", "-q", "--compat", "kernel", "-L", "kern", device)
        assert made.returncode == 0, made.stderr
        info = dumped(device)
        assert (info["label"], info["layout"], info["features"]) == ("kern", "kernel", [])
        assert info["blocks_count"] == SIZE // 4096
        assert info["inodes_count"] == 1024
        assert info["free_blocks"] == {"recorded": SIZE // 4096 - 67, "counted": SIZE // 4096 - 67}
        assert info["free_inodes"] == {"recorded": 1023, "counted": 1023}
        assert info["used_inodes"] == 1


def test_mkfs_refuses_a_loop_device_holding_a_file_system(tmp_path):
    image = new_image(tmp_path)
    run("mkfs.vexfs", "-q", "-L", "first", image, check=True)
    before = digest(image)
    with loop_device(image) as device:
        error_line(run("mkfs.vexfs", device), "mkfs.vexfs", "contains", "VexFS", "first", "-f")
        error_line(run("mkfs.vexfs", "-f", "-s", "64M", device), "mkfs.vexfs", "larger than the device")
        assert digest(device) == before
    assert digest(image) == before


def test_mkfs_d_on_a_loop_device_then_cat(tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "hello.txt").write_bytes(b"hello from a loop device\n")
    payload = bytes((i * 7 + 3) % 256 for i in range(100_000))
    (tree / "data.bin").write_bytes(payload)
    image = new_image(tmp_path)
    with loop_device(image) as device:
        made = run("mkfs.vexfs", "-q", "-d", tree, device)
        assert made.returncode == 0, made.stderr
        assert run("vexfs", "cat", device, "/sub/hello.txt", check=True).stdout_bytes == \
            b"hello from a loop device\n"
        assert run("vexfs", "cat", device, "/data.bin", check=True).stdout_bytes == payload
        assert dumped(device)["used_inodes"] == 5  # root, lost+found, sub, two files
    assert run("vexfs", "cat", image, "/data.bin", check=True).stdout_bytes == payload
