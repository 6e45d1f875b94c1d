"""The device layer: bounds, read-only by default, holes, refusals."""

from __future__ import annotations

import os

import pytest

from vexfs_tools.device import Device
from vexfs_tools.errors import DeviceError, TruncatedImageError


def test_read_only_unless_asked(tmp_path):
    path = tmp_path / "a.img"
    path.write_bytes(bytes(8192))
    with Device(str(path)) as device:
        assert device.size == 8192 and not device.writable
        with pytest.raises(DeviceError, match="read-only"):
            device.write(0, b"x")
    assert path.read_bytes() == bytes(8192)


def test_read_past_the_end_says_truncated(tmp_path):
    path = tmp_path / "a.img"
    path.write_bytes(bytes(100))
    with Device(str(path)) as device:
        with pytest.raises(TruncatedImageError, match="truncated"):
            device.read(64, 64)


@pytest.mark.parametrize("kind", ["directory", "missing", "fifo"])
def test_not_an_image(tmp_path, kind):
    path = tmp_path / "x"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    with pytest.raises(DeviceError):
        Device(str(path))


def test_zero_range_punches_a_hole_and_holes_are_seen(tmp_path):
    path = tmp_path / "a.img"
    path.write_bytes(b"\xff" * (1 << 20))
    with Device(str(path), writable=True) as device:
        assert not device.is_hole(0, 4096)
        device.zero_range(4096, 512 * 1024)
        assert device.read(4096, 512 * 1024) == bytes(512 * 1024)
        assert device.read(0, 4096) == b"\xff" * 4096
        assert device.is_hole(8192, 4096)
        assert device.read_or_zeros(8192, 4096) == bytes(4096)
    assert os.stat(path).st_blocks * 512 < (1 << 20)


def test_create_size_extends_a_new_file_sparsely(tmp_path):
    path = tmp_path / "new.img"
    with Device(str(path), writable=True, create_size=1 << 30) as device:
        assert device.size == 1 << 30
    assert os.stat(path).st_blocks == 0


def test_data_ranges_leave_holes_out_and_stay_inside_the_range(tmp_path):
    path = tmp_path / "sparse.img"
    with open(path, "wb") as f:
        f.truncate(4 << 20)
        f.write(b"\x01" * 4096)
        f.seek(2 << 20)
        f.write(b"\x02" * 4096)
    with Device(str(path)) as device:
        if not device.is_hole(1 << 20, 4096):
            pytest.skip("this file system does not report holes")
        ranges = list(device.data_ranges(0, 4 << 20))
        assert ranges and ranges == sorted(ranges)
        covered = lambda offset: any(start <= offset < end for start, end in ranges)
        assert covered(0) and covered(4095) and covered(2 << 20) and covered((2 << 20) + 4095)
        assert not covered(1 << 20) and not covered(3 << 20)
        assert all(0 <= start < end <= 4 << 20 for start, end in ranges)
        # clipped to the range asked for; a range of holes only has none
        assert list(device.data_ranges(100, 50)) == [(100, 150)]
        assert list(device.data_ranges(1 << 20, 4096)) == []
        assert list(device.data_ranges(3 << 20, 1 << 20)) == []
        assert list(device.data_ranges(0, 0)) == []


def _runs_image(tmp_path, units: int = 16, unit: int = 512):
    path = tmp_path / "runs.img"
    data = bytes(range(256)) * (units * unit // 256)
    path.write_bytes(data)
    return path, data


def test_read_runs_fills_each_run_from_its_offset(tmp_path):
    import numpy as np

    path, data = _runs_image(tmp_path)
    out = np.zeros((5, 512), np.uint8)
    firsts, ends, offsets = [0, 1, 4], [1, 4, 5], [512 * 7, 100, 512 * 15]
    with Device(str(path)) as device:
        device.read_runs(out, firsts, ends, offsets, 512)
    assert out.tobytes() == data[3584:4096] + data[100:1636] + data[7680:8192]


def test_read_runs_past_the_end_says_truncated(tmp_path):
    import numpy as np

    path, _ = _runs_image(tmp_path)
    out = np.zeros((2, 512), np.uint8)
    with Device(str(path)) as device:
        with pytest.raises(TruncatedImageError, match="truncated"):
            device.read_runs(out, [0, 1], [1, 2], [0, 512 * 16 - 100], 512)


def test_read_runs_in_a_window_is_relative_and_bounded(tmp_path):
    import numpy as np

    from vexfs_tools.window import OffsetDevice

    path, data = _runs_image(tmp_path)
    out = np.zeros((2, 512), np.uint8)
    with Device(str(path)) as device:
        window = OffsetDevice(device, 1024, 4096)
        window.read_runs(out, [0, 1], [1, 2], [0, 3584], 512)
        assert out.tobytes() == data[1024:1536] + data[4608:5120]
        with pytest.raises(TruncatedImageError, match="truncated"):
            window.read_runs(out, [0, 1], [1, 2], [0, 3585], 512)
