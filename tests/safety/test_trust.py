"""No blind trust (issue 14, finding 3): a writer refuses an image whose bitmap it can not
trust, saying to run fsck.vexfs, and writes nothing; fsck itself still repairs it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.cli.helpers import error_line
from tests.conftest import digest, run
from vexfs_tools.errors import CorruptionError
from vexfs_tools.format import constants as C
from vexfs_tools.volume import Volume


@pytest.fixture
def image(fresh_image, tmp_path):
    img = fresh_image("16M")
    np.save(tmp_path / "v.npy", np.random.default_rng(3).standard_normal((2000, 8)).astype(np.float32))
    run("vexfs", "vectors", "add", img, "/emb.vec", "--from", tmp_path / "v.npy", check=True)
    return img


def zero_bitmap(img) -> None:
    with Volume.open(str(img)) as volume:
        g = volume.geometry
    with open(img, "r+b") as f:
        f.seek(g.bitmap_start * C.BLOCK_SIZE)
        f.write(bytes(g.bitmap_blocks * C.BLOCK_SIZE))


def test_append_refuses_a_zeroed_bitmap(image, tmp_path):
    zero_bitmap(image)
    before = digest(image)
    line = error_line(run("vexfs", "vectors", "add", image, "/emb.vec", "--from", tmp_path / "v.npy",
                          "--append"), "vexfs", "run fsck.vexfs", code=1)
    assert "fixed metadata blocks free" in line
    assert digest(image) == before
    assert run("fsck.vexfs", "-y", image).returncode == 1
    assert run("fsck.vexfs", "-fn", image).returncode == 0
    run("vexfs", "vectors", "add", image, "/emb.vec", "--from", tmp_path / "v.npy", "--append", check=True)
    assert run("fsck.vexfs", "-fn", image).returncode == 0


def test_free_count_mismatch_and_error_state_refused(image):
    with Volume.open(str(image), writable=True) as volume:  # a bit cleared under a file
        block = volume.resolve("/emb.vec").i_block[0]
        volume.bitmap.set(block, False)
    with Volume.open(str(image), writable=True) as volume:
        with pytest.raises(CorruptionError, match="bitmap shows .* free blocks, the superblock"):
            volume.create_file(C.ROOT_INO, b"x", b"data")
    with Volume.open(str(image), writable=True) as volume:
        volume.bitmap.set(block, True)
        volume.sb.s_state |= C.STATE_ERRORS
        volume.sb_dirty = True
    with Volume.open(str(image), writable=True) as volume:
        with pytest.raises(CorruptionError, match="marked as having errors"):
            volume.mkdir(C.ROOT_INO, b"d")
