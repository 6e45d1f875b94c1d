"""Smaller findings of issue 14 (7): how many more blocks differ when the bitmap list is cut
short; a newline in a path does not split an error line; names checked before any write."""

from __future__ import annotations

import numpy as np

from tests.cli.helpers import error_line
from tests.conftest import digest, run
from vexfs_tools.format import constants as C
from vexfs_tools.volume import Volume


def test_bitmap_differences_say_how_many_more(fresh_image):
    image = fresh_image("64M")
    with Volume.open(str(image)) as volume:
        g = volume.geometry
        used = volume.bitmap.count_used()
    with open(image, "r+b") as f:  # every bit set: all free blocks differ
        f.seek(g.bitmap_start * C.BLOCK_SIZE)
        f.write(b"\xff" * (g.bitmap_blocks * C.BLOCK_SIZE))
    result = run("fsck.vexfs", "-n", image)
    line = next(x for x in result.stdout.splitlines() if x.startswith("Block bitmap differences"))
    differ = g.addressable_blocks - used
    shown = 80
    assert f" ... and {differ - shown:,} more" in line, line


def test_newline_in_a_path_stays_on_one_line(fresh_image, tmp_path):
    image = fresh_image("16M")
    np.save(tmp_path / "v.npy", np.zeros((3, 4), np.float32))
    before = digest(image)
    line = error_line(run("vexfs", "vectors", "add", image, "/no\nsuch/v.vec", "--from", tmp_path / "v.npy"),
                      "vexfs", "no such file")
    assert "\\n" in line
    assert digest(image) == before


def test_too_long_a_name_refused_before_any_write(fresh_image, tmp_path):
    image = fresh_image("16M")
    np.save(tmp_path / "v.npy", np.random.default_rng(0).standard_normal((20000, 16)).astype(np.float32))
    before = digest(image)
    error_line(run("vexfs", "vectors", "add", image, "/" + "n" * 300 + ".vec", "--from", tmp_path / "v.npy"),
               "vexfs", "name")
    assert digest(image) == before


def test_append_says_it_needs_room_for_a_full_copy(fresh_image, tmp_path):
    image = fresh_image("16M")
    rng = np.random.default_rng(7)
    np.save(tmp_path / "big.npy", rng.standard_normal((40000, 64)).astype(np.float32))  # 10 MB
    np.save(tmp_path / "more.npy", rng.standard_normal((100, 64)).astype(np.float32))
    run("vexfs", "vectors", "add", image, "/e.vec", "--from", tmp_path / "big.npy", check=True)
    before = digest(image)
    line = error_line(run("vexfs", "vectors", "add", image, "/e.vec", "--from", tmp_path / "more.npy", "--append"),
                      "vexfs", "full new copy")
    assert "/e.vec" in line and "no room" in line, line
    assert digest(image) == before
