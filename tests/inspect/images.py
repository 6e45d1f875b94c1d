"""Images with known content for the forensic views, built by the tests themselves:
mkfs.vexfs -d from a tree made here (fixed times, so every output is exact), then the
kernel's own ways of changing an image, written through the volume library:

- delete_like_kernel: the previous entry's rec_len swallows the entry, whose bytes stay in
  the slack; the inode and the bitmap are left as they were (the kernel's rm/rmdir);
- orphan_like_kernel_mkdir: a directory's inode loses its block pointer (i_block[0] = 0,
  i_blocks 0) while the block stays allocated with "." naming it (the kernel's mkdir).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vexfs_tools.volume import Volume, directory
from tests.conftest import Unchanged, digest, run, tool  # noqa: F401  (Unchanged, digest re-exported)

EPOCH = 1700000000  # SOURCE_DATE_EPOCH: every ctime; atime = mtime = the time set below
UUID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
T0 = 1600000000  # host mtimes are T0 + n

# name -> contents (bytes), or None for a directory; a str value is a symlink target.
TREE: dict[str, bytes | str | None] = {
    "docs": None,
    "docs/a.txt": b"alpha\n",
    "docs/b.txt": b"bravo" * 1000,
    "docs/old.txt": b"old data\n",
    "docs/sub": None,
    "docs/sub/deep.txt": b"deep\n" * 3,
    "gone.bin": bytes(range(256)) * 36,  # 9216 bytes: 3 blocks
    "keep.bin": b"k" * 100,
    "link": "docs/a.txt",
}


def make_tree(root: Path, tree: dict = TREE) -> Path:
    """Write `tree` under root, each entry with mtime T0 + its index (directories last,
    so that writing their children does not move their times)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, content in tree.items():
        path = root / name
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        elif isinstance(content, str):
            os.symlink(content, path)
        else:
            path.write_bytes(content)
    for index, name in reversed(list(enumerate(tree))):
        os.utime(root / name, (T0 + index, T0 + index), follow_symlinks=False)
    os.utime(root, (T0 - 1, T0 - 1))
    return root


def build(tmp: Path, *mkfs_args: str, tree: dict = TREE, size: str = "8M", name: str = "img.img") -> Path:
    source = make_tree(tmp / (name + ".src"), tree)
    image = tmp / name
    run("mkfs.vexfs", "-q", "-U", UUID, "-L", "forensic", "-d", source, "-s", size, *mkfs_args, image,
        env={"SOURCE_DATE_EPOCH": str(EPOCH)}, check=True)
    return image


def delete_like_kernel(image: Path, path: str) -> int:
    """Remove the entry `path` as the kernel's unlink/rmdir does; returns its inode."""
    parent_path, _, name = path.rstrip("/").rpartition("/")
    with Volume.open(str(image), writable=True) as volume:
        parent = volume.resolve(parent_path or "/")
        for _, block in volume.dir_blocks(parent):
            data = bytearray(volume.read_block(block))
            ino = directory.remove_entry(data, os.fsencode(name), chain_end=volume.chain_end)
            if ino is not None:
                volume.write_dir_block(block, data)
                return ino
    raise AssertionError(f"{path} not found")


def orphan_like_kernel_mkdir(image: Path, path: str) -> tuple[int, int]:
    """Make `path`'s directory look as the kernel's mkdir leaves it: (inode, its block)."""
    with Volume.open(str(image), writable=True) as volume:
        inode = volume.resolve(path)
        block = inode.i_block[0]
        inode.fields.i_block[0] = 0
        inode.fields.i_blocks = 0
        volume.write_inode(inode.ino, inode.fields)
        return inode.ino, block


def _registered(command: str) -> bool:
    from vexfs_tools.cli.main import COMMANDS
    return command in COMMANDS


def vexfs(*args, check: bool = False, env: dict | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    """`vexfs COMMAND ...`; for forensic commands the lead has not registered in
    vexfs_tools/cli/main.py yet, the same command through vexfs_tools.cli.forensic."""
    if _registered(str(args[0])):
        argv = [tool("vexfs"), *map(str, args)]
    else:
        argv = [sys.executable, "-m", "vexfs_tools.cli.forensic", *map(str, args)]
    full_env = dict(os.environ)
    full_env.pop("VEXFS_TRACEBACK", None)
    full_env.update(env or {})
    proc = subprocess.run(argv, capture_output=True, env=full_env, timeout=timeout, check=False)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode("utf-8", "replace"),
                                         proc.stderr.decode("utf-8", "replace"))
    result.stdout_bytes = proc.stdout
    if check and proc.returncode != 0:
        raise AssertionError(f"vexfs {args} exited {proc.returncode}:\n{result.stdout}\n{result.stderr}")
    assert "Traceback" not in result.stderr, result.stderr
    return result


def snapshot(root: Path, exclude: Path | None = None) -> dict[str, tuple]:
    """Every path under `root` (not below `exclude`): type, size, mode, mtime, content hash."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        if exclude is not None and (here == exclude or exclude in here.parents):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            path = here / name
            if exclude is not None and path == exclude:
                continue
            st = path.lstat()
            content = ""
            if path.is_symlink():
                content = os.readlink(path)
            elif path.is_file():
                content = digest(path)
            out[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, content)
    return out


def _commands() -> dict:
    from vexfs_tools.cli.dump import dump_command
    from vexfs_tools.cli.files import cat_command, ls_command, stat_command
    from vexfs_tools.cli.forensic import COMMANDS

    commands = {command.name: command for command in COMMANDS}
    commands.update({"dump.vexfs": dump_command, "ls": ls_command, "stat": stat_command, "cat": cat_command})
    return commands


def cli(name: str, *args) -> subprocess.CompletedProcess:
    """Run a command in this process (click's test runner): what `vexfs NAME ARGS` (or
    dump.vexfs) prints and returns, without starting an interpreter each time. Messages
    carry this process's program name, not "vexfs:"."""
    from click.testing import CliRunner

    result = CliRunner().invoke(_commands()[name], [str(a) for a in args], catch_exceptions=False)
    out = subprocess.CompletedProcess([name, *args], result.exit_code, result.stdout, result.stderr)
    out.stdout_bytes = result.stdout_bytes
    assert "Traceback" not in out.stderr, out.stderr
    return out
