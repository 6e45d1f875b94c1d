"""Bounded by the data (issue 14, finding 6, the part of the volume library): adding one
vector to a sparse 1 TiB image reads the bitmap and inode table in bounded slices, stopping
at the first fit, instead of holding them (or arrays the size of them) whole."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import run

TIB = 1 << 40
LIMIT_MB = 300  # Python, numpy and click alone take about 60

# Peak RSS from VmHWM (kB), which exec resets: ru_maxrss carries over across fork and exec,
# so under a large pytest process it would report the parent's size.
MEASURE = """
import sys
from vexfs_tools.cli.vectors import vectors_group
vectors_group.main(["add", sys.argv[1], "/one.vec", "--from", sys.argv[2]], standalone_mode=False)
with open("/proc/self/status") as status:
    print(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
"""


def sparse_tib(path) -> None:
    try:
        with open(path, "wb") as f:
            f.truncate(TIB)
    except OSError as e:
        pytest.skip(f"this file system can not hold a sparse 1 TiB file: {e.strerror}")
    if os.stat(path).st_blocks * 512 > 1 << 20:
        pytest.skip("this file system does not keep files sparse")


def test_add_one_vector_to_a_terabyte_image(tmp_path):
    image = tmp_path / "t.img"
    sparse_tib(image)
    run("mkfs.vexfs", "-q", "-f", image, check=True)
    np.save(tmp_path / "one.npy", np.ones((1, 8), np.float32))
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(image), str(tmp_path / "one.npy")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    peak_mb = int(proc.stdout.strip().splitlines()[-1]) / 1024
    assert peak_mb < LIMIT_MB, f"peak RSS {peak_mb:.0f} MB"
    assert run("fsck.vexfs", "-fn", image).returncode == 0
