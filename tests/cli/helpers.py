"""Helpers shared by the CLI tests: hashing targets, checking refusals, loop devices."""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.conftest import digest  # noqa: F401  (re-exported for the cli tests)


def is_all_zero(path: Path | str) -> bool:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            if chunk.count(0) != len(chunk):
                return False
    return True


def error_line(result, prog: str, *words: str, code: int | None = None) -> str:
    """Assert that `result` is a refusal: exit code != 0 (or == code), exactly one line on
    stderr that starts with `prog:` and contains every one of `words` (case-insensitive),
    and no traceback. Returns that line."""
    assert "Traceback" not in result.stderr, result.stderr
    if code is None:
        assert result.returncode != 0, (result.stdout, result.stderr)
    else:
        assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    line = lines[0]
    assert line.startswith(f"{prog}:"), line
    for word in words:
        assert word.lower() in line.lower(), f"{word!r} not in {line!r}"
    return line


def require_loop_devices() -> None:
    """Skip unless this process can attach loop devices."""
    if os.geteuid() != 0:
        pytest.skip("loop devices need root")
    if not os.path.exists("/dev/loop-control"):
        pytest.skip("no /dev/loop-control (loop driver not available)")
    if shutil.which("losetup") is None:
        pytest.skip("losetup (util-linux) is not installed")


@contextmanager
def loop_device(image: Path | str):
    """Attach `image` to a free loop device (losetup -f --show); detach it afterwards."""
    require_loop_devices()
    proc = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip().startswith("/dev/"):
        pytest.skip(f"losetup -f --show failed: {proc.stderr.strip()}")
    device = proc.stdout.strip()
    try:
        yield device
    finally:
        subprocess.run(["losetup", "-d", device], capture_output=True)
