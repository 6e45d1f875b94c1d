"""The offline writes (`vexfs write|mkdir|rm|mv|ln|chmod`) in both layouts: what they do
reads back through `vexfs cat/ls`, refusals are one line and change no byte, -z UNDO puts
every byte back, an image not cleanly unmounted is refused, and fsck -fn finds nothing."""

from __future__ import annotations

import os
import random

from tests.conftest import digest, run
from tests.writes import fsck_clean, image, layout  # noqa: F401 (fixtures)
from vexfs_tools.format import constants as C
from vexfs_tools.volume import Volume


def vexfs(*args, code: int = 0) -> str:
    result = run("vexfs", *args)
    assert result.returncode == code, result.stdout + result.stderr
    return result.stdout if code == 0 else result.stderr


def test_each_command(image, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(random.Random(1).randbytes(30_000))
    os.chmod(src, 0o640)
    vexfs("mkdir", "-p", image, "/a/b/c")
    vexfs("mkdir", image, "/d")
    vexfs("write", image, src, "/a/b")  # into a directory: keeps the name
    vexfs("write", image, src, "/d/copy")
    assert run("vexfs", "cat", image, "/a/b/src.bin").stdout_bytes == src.read_bytes()
    vexfs("ln", image, "/d/copy", "/hard")
    vexfs("ln", "-s", image, "d/copy", "/sym")
    vexfs("mv", image, "/a/b/src.bin", "/d")
    vexfs("mv", image, "/d/src.bin", "/d/copy")  # over a target: /hard keeps the old inode
    vexfs("chmod", image, "600", "/hard", "/d/copy")
    with Volume.open(str(image)) as volume:
        hard, copy = volume.resolve("/hard"), volume.resolve("/d/copy")
        assert hard.ino != copy.ino and hard.i_links_count == 1
        assert hard.i_mode == copy.i_mode == 0o100600
        assert volume.read_bytes(volume.resolve("/sym")) == b"d/copy"
    listing = vexfs("ls", "-R", image, "/")
    assert "c" in listing and "sym" in listing
    vexfs("rm", "-r", image, "/a", "/d")
    vexfs("rm", image, "/hard", "/sym")
    assert vexfs("ls", image, "/").split() in ([".", ".."], [".", "..", "lost+found"])
    fsck_clean(image)


def test_refusals_change_nothing(image, tmp_path):
    src = tmp_path / "big"
    src.write_bytes(bytes(100) + b"x" * 40_000)
    vexfs("mkdir", image, "/d")
    vexfs("write", image, src, "/d/x")
    before = digest(image)
    assert vexfs("rm", image, "/nope", code=1) == "vexfs: /nope: No such file or directory\n"
    assert vexfs("rm", image, "/d", code=1) == "vexfs: /d is a directory (use -r)\n"
    assert vexfs("mkdir", image, "/d", code=1) == "vexfs: /d: File exists\n"
    assert vexfs("mkdir", image, "/" + "n" * 256, code=1).endswith(": File name too long\n")
    assert vexfs("mv", image, "/d", "/d/e", code=1) == "vexfs: /d/e: Invalid argument\n"
    assert vexfs("chmod", image, "99", "/d", code=1) == "vexfs: mode '99' is not an octal number\n"
    assert digest(image) == before
    fsck_clean(image)


def test_kernel_layout_efbig(fresh_image, tmp_path):
    image = fresh_image("16M", "--compat", "kernel")
    src = tmp_path / "big"
    src.write_bytes(b"x" * (C.KERNEL_MAX_FILE_SIZE + 1))
    before = digest(image)
    message = vexfs("write", image, src, "/big", code=1)
    assert "File too large" in message and message.count("\n") == 1
    assert digest(image) == before


def test_undo_puts_every_byte_back(image, tmp_path):
    vexfs("mkdir", "-p", image, "/a/b")
    before = digest(image)
    undo = tmp_path / "rm.undo"
    vexfs("rm", "-r", "-z", undo, image, "/a")
    assert digest(image) != before
    vexfs("undo", undo, image)
    assert digest(image) == before


def test_not_clean_image_is_refused(image):
    with Volume.open(str(image), writable=True) as volume:
        volume.sb.s_state = 0
        volume.sb_dirty = True
    before = digest(image)
    message = vexfs("mkdir", image, "/x", code=1)
    assert message == f"vexfs: {image} was not cleanly unmounted (or is mounted); run fsck.vexfs on it first\n"
    assert digest(image) == before


def test_model_through_the_commands(image, layout, tmp_path):
    """A short seeded sequence of the commands, mirrored on a host directory."""
    host = tmp_path / "host"
    host.mkdir()
    if layout == "extended":
        (host / "lost+found").mkdir()
    rng = random.Random(7)
    for step in range(20):
        files = sorted(p.relative_to(host).as_posix() for p in host.rglob("*") if p.is_file())
        dirs = sorted(p.relative_to(host).as_posix() for p in host.rglob("*") if p.is_dir())
        name = rng.choice([""] + [d + "/" for d in dirs]) + rng.choice("abcd") + str(step)
        op = rng.choice(["write", "write", "mkdir", "rm", "mv", "ln", "chmod"])
        if op == "write":
            src = tmp_path / "src"
            src.write_bytes(rng.randbytes(rng.randrange(0, 40_000)))
            target = rng.choice(files) if files and rng.random() < 0.4 else name
            vexfs("write", image, src, "/" + target)
            (host / target).write_bytes(src.read_bytes())
        elif op == "mkdir":
            vexfs("mkdir", image, "/" + name)
            (host / name).mkdir()
        elif op == "rm" and files:
            path = rng.choice(files)
            vexfs("rm", image, "/" + path)
            (host / path).unlink()
        elif op == "mv" and files:
            path = rng.choice(files)
            target = rng.choice(files) if rng.random() < 0.5 else name
            if path != target:
                vexfs("mv", image, "/" + path, "/" + target)
                os.rename(host / path, host / target)
        elif op == "ln" and files:
            path = rng.choice(files)
            vexfs("ln", image, "/" + path, "/" + name)
            os.link(host / path, host / name)
        elif op == "chmod" and files:
            path, mode = rng.choice(files), rng.randrange(0o1000)
            vexfs("chmod", image, oct(mode)[2:], "/" + path)
            os.chmod(host / path, mode)
    with Volume.open(str(image)) as volume:
        for p in host.rglob("*"):
            inode = volume.resolve("/" + p.relative_to(host).as_posix())
            st = p.stat()
            assert inode.is_dir == p.is_dir()
            if p.is_file():
                assert (inode.i_size, inode.i_links_count, inode.i_mode & 0o777) == \
                       (st.st_size, st.st_nlink, st.st_mode & 0o777)
                assert b"".join(volume.read_file(inode)) == p.read_bytes()
    fsck_clean(image)
