"""Shared fixtures: fresh images, the real kernel's images, and running the installed CLIs."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vexfs_tools.format import constants as C
from vexfs_tools.volume import Volume

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
KERNEL_IMAGES = SHARED / "kernel-images"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """The installed console script `name` (mkfs.vexfs, fsck.vexfs, dump.vexfs, vexfs)."""
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is not installed (pip install -e .)")
        return found
    return str(path)


def run(name: str, *args, input: bytes | None = None, env: dict | None = None,
        check: bool = False) -> subprocess.CompletedProcess:
    """Run an installed CLI; stdout/stderr as text (binary stdout via .stdout_bytes)."""
    full_env = dict(os.environ)
    full_env.pop("VEXFS_TRACEBACK", None)
    if env:
        full_env.update(env)
    proc = subprocess.run([tool(name), *map(str, args)], capture_output=True, input=input, env=full_env)
    result = subprocess.CompletedProcess(proc.args, proc.returncode,
                                         proc.stdout.decode("utf-8", "replace"),
                                         proc.stderr.decode("utf-8", "replace"))
    result.stdout_bytes = proc.stdout
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} {args} exited {proc.returncode}:\n{result.stdout}\n{result.stderr}")
    assert "Traceback" not in result.stderr, result.stderr
    return result


def kernel_image(name: str, dest: Path) -> Path:
    """Unpack shared/kernel-images/NAME.img.gz (or NAME.mkfs-before.img.gz) into dest."""
    source = KERNEL_IMAGES / f"{name}.img.gz"
    if not source.exists():
        pytest.skip(f"{source} is not here (shared/ missing)")
    target = dest / f"{name}.img"
    with gzip.open(source, "rb") as f, open(target, "wb") as out:
        shutil.copyfileobj(f, out)
    return target


def kernel_md5(name: str) -> dict[str, str]:
    source = KERNEL_IMAGES / f"{name}.md5"
    if not source.exists():
        pytest.skip(f"{source} is not here (shared/ missing)")
    lines = source.read_text().split("\n")
    return {path: digest for digest, path in (line.split(None, 1) for line in lines if line.strip())}


@pytest.fixture
def fresh_image(tmp_path):
    """A factory: fresh_image(size='16M', *mkfs_args) -> Path of a newly made image."""

    def make(size: str = "16M", *args) -> Path:
        image = tmp_path / f"img{len(list(tmp_path.glob('img*')))}.img"
        run("mkfs.vexfs", "-q", "-s", size, *args, image, check=True)
        return image

    return make


def digest(path: Path | str) -> str:
    """sha256 of every byte of an image file or block device."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def stray_bitmap_bits(image: Path | str, byte: int) -> None:
    """Set byte `byte` of the block bitmap to 0xff: blocks marked used that no inode owns,
    the damage fsck.vexfs -fn reports and preflight checks refuse."""
    with Volume.open(str(image)) as volume:
        block = volume.geometry.bitmap_start
    with open(image, "r+b") as f:
        f.seek(block * C.BLOCK_SIZE + byte)
        f.write(b"\xff")


class Unchanged:
    """with Unchanged(image): ... asserts that the bytes of `image` are the same afterwards."""

    def __init__(self, *paths):
        self.paths = paths

    def __enter__(self):
        self.before = [digest(p) for p in self.paths]
        return self

    def __exit__(self, exc_type, *rest):
        if exc_type is None:
            assert [digest(p) for p in self.paths] == self.before, "a read-only command changed the image"
