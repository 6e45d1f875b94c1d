"""Helpers for tests with a real FUSE mount: skip with a reason where the machine can not
mount, mount in the foreground (so the test knows when the daemon has written everything)
or in the background (as users do), and unmount."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import tool


def fuse_missing() -> str | None:
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse on this machine"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed (Debian: fuse3)"
    try:
        os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")
        import mfusepy  # noqa: F401, PLC0415
    except (ImportError, OSError) as exc:
        return f"mfusepy or libfuse3 is missing: {exc}"
    return None


needs_fuse = pytest.mark.skipif(fuse_missing() is not None, reason=fuse_missing() or "")


def is_mounted(mnt: Path) -> bool:
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == str(mnt) for line in f if len(line.split()) > 1)


def wait_for(predicate, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@contextlib.contextmanager
def mounted(image: Path, mnt: Path, options: str = "rw"):
    """A foreground `vexfs mount -f` as a child; unmounted and waited for at the end."""
    mnt.mkdir(exist_ok=True)
    proc = subprocess.Popen([tool("vexfs"), "mount", "-f", "-o", options, str(image), str(mnt)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if not wait_for(lambda: is_mounted(mnt) or proc.poll() is not None):
        proc.kill()
        raise AssertionError("the mount did not come up")
    if proc.poll() is not None:
        raise AssertionError(f"vexfs mount exited {proc.returncode}: {proc.stderr.read().decode()}")
    try:
        yield proc
    finally:
        if proc.poll() is None:
            subprocess.run(["fusermount3", "-u", str(mnt)], check=False, capture_output=True)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-uz", str(mnt)], check=False, capture_output=True)
        err = proc.stderr.read().decode()
        assert "Traceback" not in err, err
