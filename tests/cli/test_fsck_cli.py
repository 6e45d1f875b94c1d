"""fsck.vexfs as fsck(8) and scripts see it: exit codes (0 clean, 1 corrected, 8 operational
error, 16 usage), what -n / -p / -y change, and what it says."""

from __future__ import annotations

import json
import struct

import pytest

from tests.conftest import run

from .helpers import digest, error_line

FSCK = "fsck.vexfs"


@pytest.fixture
def stale_image(fresh_image):
    """A kernel-layout image whose only fault is what the kernel's fsync leaves: stale free
    counters in the superblock (4000 blocks and 1000 inodes recorded; 4029 and 1023 true)."""
    image = fresh_image("16M", "--compat", "kernel")
    with open(image, "r+b") as f:
        f.seek(12)
        f.write(struct.pack("<I", 4000))
        f.seek(20)
        f.write(struct.pack("<I", 1000))
    return image


def counters(image) -> tuple[int, int]:
    """s_free_blocks and s_free_inodes, read straight from the superblock."""
    with open(image, "rb") as f:
        head = f.read(24)
    return struct.unpack_from("<I", head, 12)[0], struct.unpack_from("<I", head, 20)[0]


@pytest.mark.parametrize("layout", [[], ["--compat", "kernel"]], ids=["extended", "kernel"])
def test_fresh_image_is_clean(fresh_image, layout):
    image = fresh_image("16M", *layout)
    before = digest(image)
    for args in ([], ["-n"]):
        result = run(FSCK, *args, image)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        assert "wrong" not in result.stdout
        assert "MODIFIED" not in result.stdout
        assert f"{image}: " in result.stdout and " files, " in result.stdout
    assert digest(image) == before


def test_n_on_stale_kernel_counters_exits_0_and_writes_nothing(stale_image):
    before = digest(stale_image)
    result = run(FSCK, "-n", stale_image)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Free blocks count wrong (4000, counted=4029)" in result.stdout
    assert "Free inodes count wrong (1000, counted=1023)" in result.stdout
    assert "Fix? no" in result.stdout
    assert "MODIFIED" not in result.stdout
    assert f"{stale_image}: 1/1024 files, 67/4096 blocks" in result.stdout
    assert digest(stale_image) == before


def test_n_json_findings(stale_image):
    before = digest(stale_image)
    result = run(FSCK, "-n", "--json", stale_image)
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert report["exit_code"] == 0
    assert [(f["message"], f["fixed"]) for f in report["findings"]] == [
        ("Free blocks count wrong (4000, counted=4029)", False),
        ("Free inodes count wrong (1000, counted=1023)", False)]
    assert digest(stale_image) == before


def test_y_fixes_stale_counters_exits_1_and_touches_only_the_superblock(stale_image):
    original = stale_image.read_bytes()
    result = run(FSCK, "-y", stale_image)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Free blocks count wrong" in result.stdout
    assert "FILE SYSTEM WAS MODIFIED" in result.stdout
    assert counters(stale_image) == (4029, 1023)
    repaired = stale_image.read_bytes()
    assert len(repaired) == len(original)
    assert repaired[4096:] == original[4096:]  # bitmap, inode table and data untouched

    again = run(FSCK, "-n", stale_image)
    assert again.returncode == 0, (again.stdout, again.stderr)
    assert "count wrong" not in again.stdout
    assert "MODIFIED" not in again.stdout
    dumped = json.loads(run("dump.vexfs", "--json", stale_image, check=True).stdout)
    assert dumped["free_blocks"] == {"recorded": 4029, "counted": 4029}
    assert dumped["free_inodes"] == {"recorded": 1023, "counted": 1023}


@pytest.mark.parametrize("mode", ["-p", "-a"])
def test_preen_fixes_stale_counters_without_asking(stale_image, mode):
    original = stale_image.read_bytes()
    result = run(FSCK, mode, stale_image)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "FIXED." in result.stdout
    assert counters(stale_image) == (4029, 1023)
    assert stale_image.read_bytes()[4096:] == original[4096:]


@pytest.mark.parametrize("flags", [["-n", "-y"], ["-n", "-p"], ["-p", "-y"]], ids=["n-y", "n-p", "p-y"])
def test_conflicting_modes_are_a_usage_error(stale_image, flags):
    before = digest(stale_image)
    result = run(FSCK, *flags, stale_image)
    error_line(result, FSCK, "only one of", code=16)
    assert digest(stale_image) == before


def test_unknown_option_is_a_usage_error(stale_image):
    before = digest(stale_image)
    result = run(FSCK, "--no-such-option", stale_image)
    assert result.returncode == 16, (result.stdout, result.stderr)
    assert "no-such-option" in result.stderr
    assert digest(stale_image) == before


@pytest.mark.parametrize("mode", ["-n", "-y"])
def test_bad_magic_is_an_operational_error(tmp_path, mode):
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"\xaa" * (1 << 20))
    result = run(FSCK, mode, junk)
    error_line(result, FSCK, str(junk), "bad magic", code=8)
    assert junk.read_bytes() == b"\xaa" * (1 << 20)


def test_missing_device_is_an_operational_error(tmp_path):
    missing = tmp_path / "nothing.img"
    error_line(run(FSCK, "-n", missing), FSCK, str(missing), "no such file", code=8)
    assert not missing.exists()


def test_truncated_image_is_an_operational_error(tmp_path, stale_image):
    short = tmp_path / "short.img"
    short.write_bytes(stale_image.read_bytes()[:8192])
    error_line(run(FSCK, "-y", short), FSCK, "truncated", code=8)
    assert short.stat().st_size == 8192
