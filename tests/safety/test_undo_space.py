"""fsck.vexfs -z with the undo file on a full file system (issue 14, finding 4): the run
stops before the first device block whose old bytes could not be saved, naming the undo
file, and what it did change is put back exactly from what was saved."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.cli.helpers import error_line
from tests.conftest import digest, run
from vexfs_tools import undo
from vexfs_tools.format import constants as C
from vexfs_tools.volume import Volume


@pytest.fixture
def small_fs(tmp_path):
    """A 96 KiB tmpfs to hold the undo file (root only)."""
    where = tmp_path / "full"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(where)],
                      capture_output=True).returncode != 0:
        pytest.skip("can not mount a tmpfs here")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def damaged(fresh_image):
    """An image with a zeroed bitmap and wrong counters: the repair changes the bitmap and
    both superblocks."""
    image = fresh_image("64M")
    with Volume.open(str(image), writable=True, check_trust=False) as volume:
        g = volume.geometry
        volume.sb.s_free_blocks -= 5
        volume.sb_dirty = True
    with open(image, "r+b") as f:
        f.seek(g.bitmap_start * C.BLOCK_SIZE)
        f.write(bytes(g.bitmap_blocks * C.BLOCK_SIZE))
    return image


def test_undo_on_a_full_file_system(fresh_image, small_fs, tmp_path):
    image = damaged(fresh_image)
    (small_fs / "filler").write_bytes(os.urandom(88 * 1024))  # leaves room for one record
    original = digest(image)
    undo_file = small_fs / "fix.undo"
    result = run("fsck.vexfs", "-y", "-z", undo_file, image)
    line = error_line(result, "fsck.vexfs", str(undo_file), code=8)
    assert "stopped before changing it" in line and "1 block(s) changed so far" in line
    assert digest(image) != original  # one block was changed, and saved
    restored = run("vexfs", "undo", "--force", undo_file, image)
    assert restored.returncode == 0, restored.stderr
    assert digest(image) == original


def test_undo_header_size_is_documented():
    assert undo.HEADER.size == 68
    assert f"a {undo.HEADER.size}-byte header" in undo.__doc__
