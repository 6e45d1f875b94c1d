"""The forensic views on a block device: the same image attached to /dev/loopN reads the
same as the image file, and neither is changed (skipped where loop devices are not
available)."""

from __future__ import annotations

import hashlib

import pytest

from tests.cli.helpers import loop_device

from .images import (
    Unchanged,
    build,
    cli,
    delete_like_kernel,
    digest,
    orphan_like_kernel_mkdir,
    vexfs,
)


@pytest.fixture(scope="module")
def kernel_img(tmp_path_factory):
    image = build(tmp_path_factory.mktemp("loop"), "--compat", "kernel")
    delete_like_kernel(image, "/docs/old.txt")
    orphan_like_kernel_mkdir(image, "/docs")
    return image


VIEWS = [
    ("ls", "-lRd", "{dev}", "/"),
    ("dump.vexfs", "--blocks", "--inodes", "{dev}"),
    ("icheck", "{dev}", "66", "67", "76", "1000"),
    ("ncheck", "-d", "{dev}", "6", "8", "10"),
    ("timeline", "{dev}"),
    ("blkcat", "--hex", "{dev}", "67"),
]


def test_views_on_a_loop_device_match_the_image_file(kernel_img, tmp_path):
    before = digest(kernel_img)
    with loop_device(kernel_img) as device, Unchanged(device):
        for name, *args in VIEWS:
            on_file = cli(name, *[a.format(dev=kernel_img) for a in args])
            on_device = cli(name, *[a.format(dev=device) for a in args])
            assert on_device.returncode == on_file.returncode == 0, (name, on_device.stderr)
            assert on_device.stdout.replace(device, "IMG") == on_file.stdout.replace(str(kernel_img), "IMG"), name
        extracted = vexfs("extract", "--deleted", device, "/", tmp_path / "out")  # the command, end to end
        assert extracted.returncode == 0, extracted.stderr
    assert digest(kernel_img) == before
    assert (tmp_path / "out" / "docs" / "b.txt").read_bytes() == b"bravo" * 1000
    assert (tmp_path / "out" / ".deleted" / "docs" / "old.txt").read_bytes() == b"old data\n"
    assert hashlib.md5((tmp_path / "out" / "keep.bin").read_bytes()).hexdigest() == hashlib.md5(b"k" * 100).hexdigest()
