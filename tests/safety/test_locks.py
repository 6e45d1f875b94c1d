"""One writer at a time (issue 14, finding 1): a second writer of an image file is refused
while another program holds it for writing, and nothing the first wrote is lost."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.cli.helpers import error_line
from tests.conftest import digest, run
from vexfs_tools.device import Device
from vexfs_tools.errors import DeviceBusyError, LockedForWritingError
from vexfs_tools.vectors.files import VectorFile
from vexfs_tools.volume import Volume

HOLD = """
import sys
from vexfs_tools.volume import Volume
volume = Volume.open(sys.argv[1], writable=True)
print("ready", flush=True)
sys.stdin.readline()
volume.close()
"""


class Writer:
    """Another process that holds the image open for writing until told to stop."""

    def __init__(self, image):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD, str(image)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def stop(self) -> None:
        self.proc.communicate("\n", timeout=30)
        assert self.proc.returncode == 0


@pytest.fixture
def vector_image(fresh_image, tmp_path):
    image = fresh_image("16M")
    rows = np.random.default_rng(1).standard_normal((500, 8)).astype(np.float32)
    np.save(tmp_path / "base.npy", rows)
    np.save(tmp_path / "more.npy", rows[:100] + 1)
    run("vexfs", "vectors", "add", image, "/emb.vec", "--from", tmp_path / "base.npy", check=True)
    return image


def count_vectors(image) -> int:
    with Volume.open(str(image)) as volume:
        return VectorFile.open(volume, volume.resolve("/emb.vec"), "/emb.vec").info.count


def test_second_writer_is_refused_in_process(tmp_path):
    path = tmp_path / "a.img"
    path.write_bytes(bytes(8192))
    with Device(str(path), writable=True):
        with pytest.raises(DeviceBusyError, match="in use by another program"):
            Device(str(path), writable=True)
        with pytest.raises(LockedForWritingError, match="being written"):
            Device(str(path))
    with Device(str(path)), Device(str(path)):  # readers share
        with pytest.raises(DeviceBusyError):
            Device(str(path), writable=True)
    with Device(str(path), writable=True):  # every lock went with its close
        pass


def test_fsck_refused_while_vectors_append_holds_the_image(vector_image, tmp_path):
    writer = Writer(vector_image)
    try:
        before = digest(vector_image)
        line = error_line(run("fsck.vexfs", "-y", vector_image), "fsck.vexfs", code=8)
        assert line == (f"fsck.vexfs: {vector_image} is in use by another program (locked for writing); "
                        "refusing to write to it")
        error_line(run("vexfs", "vectors", "add", vector_image, "/emb.vec", "--from",
                       tmp_path / "more.npy", "--append"), "vexfs", "in use by another program")
        error_line(run("fsck.vexfs", "-n", vector_image), "fsck.vexfs", "being written", code=8)
        assert digest(vector_image) == before
    finally:
        writer.stop()
    run("vexfs", "vectors", "add", vector_image, "/emb.vec", "--from", tmp_path / "more.npy", "--append",
        check=True)
    assert count_vectors(vector_image) == 600
    assert run("fsck.vexfs", "-fn", vector_image).returncode == 0


def test_two_fsck_y_at_once(vector_image):
    writer = Writer(vector_image)  # the first fsck -y, as far as the lock goes
    try:
        before = digest(vector_image)
        error_line(run("fsck.vexfs", "-y", vector_image), "fsck.vexfs", "in use", code=8)
        assert digest(vector_image) == before
    finally:
        writer.stop()
    assert run("fsck.vexfs", "-y", vector_image).returncode == 0
    assert count_vectors(vector_image) == 500
