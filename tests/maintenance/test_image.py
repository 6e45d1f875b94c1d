"""`vexfs image`: the metadata image reads as the original does (fsck, dump, ls give the same
output), holds no file data, scrambles names without breaking anything, and the compact
form restores to the raw image byte for byte."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.check.corpus import CORRUPTIONS, EPOCH, MKFS_ENV, Img, cases, make_tree, mkfs_args
from tests.cli.helpers import error_line
from tests.conftest import Unchanged, digest, kernel_image, run
from vexfs_tools.format import constants as C
from vexfs_tools.maintenance.image import scrambled_name
from vexfs_tools.volume.volume import Volume

SECRET = b"secret-name-of-a-file"
DATA = b"the contents nobody may see\n" * 200


@pytest.fixture
def image(tmp_path) -> Path:
    root = tmp_path / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / SECRET.decode()).write_bytes(DATA)
    (root / "sub" / "big.bin").write_bytes(os.urandom(300000))  # indirect blocks
    (root / "sub" / "deeper" / "x").write_bytes(b"x")
    (root / "link").symlink_to("sub/deeper/x")
    for i in range(200):  # a directory of several blocks
        (root / "sub" / f"entry-number-{i:05d}").write_bytes(b"")
    np.save(root / "e.vec.npy", np.arange(800, dtype=np.float32).reshape(100, 8))
    path = tmp_path / "d.img"
    run("mkfs.vexfs", "-q", "-s", "32M", "-d", root, path, check=True)
    return path


def same_views(original: Path, copy: Path) -> None:
    """fsck -fn, dump, dump --inodes and ls -lR print the same of both."""
    for tool, args in [("fsck.vexfs", ["-fn"]), ("dump.vexfs", []), ("dump.vexfs", ["--inodes"]),
                       ("vexfs", ["ls", "-lR"])]:
        tail = ["/"] if args[:1] == ["ls"] else []
        a = run(tool, *args, original, *tail)
        b = run(tool, *args, copy, *tail)
        assert a.returncode == b.returncode, (tool, args, a.stdout, b.stdout)
        assert a.stdout.replace(str(original), "IMG") == b.stdout.replace(str(copy), "IMG"), (tool, args)
        assert a.stderr.replace(str(original), "IMG") == b.stderr.replace(str(copy), "IMG"), (tool, args)


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def test_raw_image_reads_as_the_original_and_holds_no_data(image, tmp_path):
    out = tmp_path / "meta.img"
    with Unchanged(image):
        run("vexfs", "image", image, out, check=True)
    assert out.stat().st_size == image.stat().st_size
    assert allocated(out) < allocated(image) // 2
    same_views(image, out)
    raw = out.read_bytes()
    assert DATA[:40] not in raw
    assert SECRET in raw  # names are metadata (see -s)
    assert run("vexfs", "cat", out, "/link").returncode == 0
    # The vector header is there (shape, type, metric); the data it checksums is not.
    a = run("vexfs", "vectors", "ls", image, check=True).stdout.splitlines()
    b = run("vexfs", "vectors", "ls", out, check=True).stdout.splitlines()
    assert [line.split()[:5] for line in a] == [line.split()[:5] for line in b]


def test_scrambled_image_passes_fsck_and_keeps_lengths_and_tree(image, tmp_path):
    out = tmp_path / "s.img"
    run("vexfs", "image", "-s", image, out, check=True)
    assert SECRET not in out.read_bytes()
    assert b"entry-number-00042" not in out.read_bytes()
    fsck = run("fsck.vexfs", "-fn", out)
    assert fsck.returncode == 0, fsck.stdout
    with Volume.open(str(image)) as a, Volume.open(str(out)) as b:
        assert _shape(a, a.read_inode(C.ROOT_INO)) == _shape(b, b.read_inode(C.ROOT_INO))
        names = [r.name for r in b.iter_dir(b.read_inode(C.ROOT_INO))]
        assert b"lost+found" in names and b"." in names and b".." in names


def _shape(volume, inode) -> list:
    """(name length, inode, type, subtree) of every entry, in directory order."""
    out = []
    for record in volume.iter_dir(inode):
        sub = None
        if record.file_type == C.FT_DIR and record.name not in (b".", b".."):
            sub = _shape(volume, volume.read_inode(record.inode))
        out.append((record.name_len, record.inode, record.file_type, sub))
    return out


def test_scrambled_names_are_unique_and_of_the_same_length():
    assert scrambled_name(0, 3) == b"aaa" and len({scrambled_name(i, 1) for i in range(62)}) == 62
    assert scrambled_name(62, 1) is None
    assert len(scrambled_name(10 ** 9, 255)) == 255


def test_compact_form_restores_the_raw_image(image, tmp_path):
    raw, compact, back = tmp_path / "m.img", tmp_path / "m.qimg", tmp_path / "back.img"
    run("vexfs", "image", image, raw, check=True)
    run("vexfs", "image", "-Q", image, compact, check=True)
    assert compact.stat().st_size < 64 * 1024
    run("vexfs", "image", "--restore", compact, back, check=True)
    assert digest(back) == digest(raw)
    assert allocated(back) <= allocated(raw)
    streamed = run("vexfs", "image", "--restore", compact, "-")
    assert streamed.returncode == 0 and streamed.stdout_bytes == raw.read_bytes()


def test_output_to_stdout_streams(image, tmp_path):
    raw, compact = tmp_path / "m.img", tmp_path / "m.qimg"
    run("vexfs", "image", image, raw, check=True)
    run("vexfs", "image", "--compact", image, compact, check=True)
    assert run("vexfs", "image", image, "-").stdout_bytes == raw.read_bytes()
    assert run("vexfs", "image", "-Q", image, "-").stdout_bytes == compact.read_bytes()


def test_all_data_copies_the_files(image, tmp_path):
    out = tmp_path / "a.img"
    run("vexfs", "image", "-a", image, out, check=True)
    assert digest(out) == digest(image)  # mkfs leaves free blocks zero
    assert run("vexfs", "cat", out, "/" + SECRET.decode()).stdout_bytes == DATA


@pytest.mark.parametrize("name", ["tree", "overwrite"])
def test_kernel_images(tmp_path, name):
    image = kernel_image(name, tmp_path)
    out = tmp_path / f"{name}.meta"
    run("vexfs", "image", image, out, check=True)
    same_views(image, out)


CORPUS = [case for case in cases() if case[0] not in ("sb_primary_destroyed",)]


@pytest.fixture(scope="module")
def base_images(tmp_path_factory):
    from tests.check.corpus import LAYOUTS
    images = {}
    for layout in LAYOUTS:
        where = tmp_path_factory.mktemp(f"base-{layout}")
        make_tree(where / "tree", layout)
        image = where / "base.img"
        run("mkfs.vexfs", *mkfs_args(layout, where / "tree", image), env=MKFS_ENV, check=True)
        images[layout] = image
    return images


@pytest.mark.parametrize("name, layout", CORPUS[::3])
def test_damaged_images_give_the_same_findings(base_images, tmp_path, monkeypatch, name, layout):
    """Every third corpus class (they cost a mkfs each): fsck -fn of the metadata image
    reports what it reports of the damaged original."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    image = tmp_path / "bad.img"
    shutil.copyfile(base_images[layout], image)
    CORRUPTIONS[name].generate(Img(image, layout))
    out = tmp_path / "bad.meta"
    run("vexfs", "image", image, out, check=True)
    a, b = run("fsck.vexfs", "-fn", image), run("fsck.vexfs", "-fn", out)
    assert (a.returncode, a.stdout.replace(str(image), "IMG")) == \
        (b.returncode, b.stdout.replace(str(out), "IMG"))


def test_refusals(image, tmp_path):
    with Unchanged(image):
        error_line(run("vexfs", "image", image, image), "vexfs", "the image itself", code=1)
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a compact image at all")
    error_line(run("vexfs", "image", "--restore", junk, tmp_path / "o"), "vexfs", "not a compact", code=1)
    compact = tmp_path / "m.qimg"
    run("vexfs", "image", "-Q", image, compact, check=True)
    cut = tmp_path / "cut.qimg"
    cut.write_bytes(compact.read_bytes()[:-40])
    error_line(run("vexfs", "image", "--restore", cut, tmp_path / "o2"), "vexfs", "truncated", code=1)
    error_line(run("vexfs", "image", "--restore", "-s", compact, tmp_path / "o3"), "vexfs", "--restore", code=1)
    error_line(run("vexfs", "image", tmp_path / "missing.img", tmp_path / "o4"), "vexfs", "no such file")
