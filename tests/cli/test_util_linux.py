"""util-linux finds the tools by name: `mkfs -t vexfs` runs mkfs.vexfs, `fsck -t vexfs` runs
fsck.vexfs, once the package's bin directory is on PATH (as after pip install)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run

from .helpers import digest

BIN = Path(sys.executable).parent
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def util_linux(program: str) -> str:
    found = shutil.which(program, path=SYSTEM_PATH)
    if found is None:
        pytest.skip(f"util-linux {program} is not installed")
    # mkfs/fsck search /sbin, /sbin/fs.d, /sbin/fs before PATH: another mkfs.vexfs there
    # (the kernel project's C tool) would be run instead of ours
    for folder in ("/sbin", "/sbin/fs.d", "/sbin/fs"):
        if os.path.exists(os.path.join(folder, f"{program}.vexfs")):
            pytest.skip(f"{folder}/{program}.vexfs shadows the installed one")
    return found


def wrapper(program: str, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("VEXFS_TRACEBACK", None)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', SYSTEM_PATH)}"
    proc = subprocess.run([util_linux(program), *map(str, args)], capture_output=True, text=True, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def dumped(image) -> dict:
    return json.loads(run("dump.vexfs", "--json", image, check=True).stdout)


def test_mkfs_t_vexfs_makes_an_image(tmp_path):
    image = tmp_path / "disk.img"
    image.write_bytes(b"")
    os.truncate(image, 16 << 20)
    result = wrapper("mkfs", "-t", "vexfs", image)
    assert result.returncode == 0, result.stderr
    info = dumped(image)
    assert info["label"] == "VexFS"
    assert info["layout"] == "extended"
    assert info["blocks_count"] == 4096


def test_mkfs_t_vexfs_passes_options(tmp_path):
    image = tmp_path / "disk.img"
    result = wrapper("mkfs", "-t", "vexfs", "--compat", "kernel", "-L", "viamkfs", "-s", "8M", image)
    assert result.returncode == 0, result.stderr
    info = dumped(image)
    assert (info["label"], info["layout"], info["blocks_count"]) == ("viamkfs", "kernel", 2048)


def test_mkfs_t_vexfs_passes_a_refusal_through(tmp_path):
    image = tmp_path / "disk.img"
    image.write_bytes(b"user data" + bytes(8 << 20))
    before = digest(image)
    result = wrapper("mkfs", "-t", "vexfs", image)
    assert result.returncode != 0
    assert "-f" in result.stderr and "contains" in result.stderr, result.stderr
    assert digest(image) == before


def test_fsck_t_vexfs_checks_a_fresh_image(tmp_path, fresh_image):
    # an absolute path: util-linux fsck takes an argument not starting with "/" for an option
    image = fresh_image("16M").resolve()
    before = digest(image)
    for args in ([], ["-n"]):
        result = wrapper("fsck", "-t", "vexfs", *args, image)
        assert result.returncode == 0, (result.stdout, result.stderr)
        # fsck.vexfs really ran: its summary line names the image
        assert f"{image}: 2/" in result.stdout, result.stdout
        assert "Pass 1" in result.stdout
    assert digest(image) == before


def test_fsck_t_vexfs_passes_the_exit_code_through(tmp_path):
    image = tmp_path / "junk.img"
    image.write_bytes(b"\xaa" * (1 << 20))
    result = wrapper("fsck", "-t", "vexfs", "-n", image)
    assert result.returncode == 8, (result.stdout, result.stderr)
    assert "magic" in result.stderr
    assert image.read_bytes() == b"\xaa" * (1 << 20)
