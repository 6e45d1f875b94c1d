"""A crash at every point (issue 14, finding 2 and the write order of FORMAT.md): each
writer runs in a forked child that SIGKILLs itself before device write N+1, for every N (or
a dense sample); then fsck.vexfs -y must leave an image that a forced -n finds clean, in
which every file has its old contents or its new ones, and no vector file has bad chunks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.check.corpus import CORRUPTIONS, EPOCH, EXTENDED, Img, MKFS_ENV, make_tree, mkfs_args
from tests.conftest import run
from vexfs_tools.check.context import YES
from vexfs_tools.check.run import run_check
from vexfs_tools.cli.mkfs import mkfs_command
from vexfs_tools.cli.vectors import vectors_group
from vexfs_tools.errors import BadMagicError
from vexfs_tools.format import constants as C
from vexfs_tools.volume import Volume

from .crash import (NEW, OLD, Files, click_run, copy, crash_each_point, file_bytes, found_in_lost_found,
                    old_files_kept, repair_then_clean, sweep, vector_files)


def test_vectors_add_new_file(base, tmp_path):
    where, source = base

    def check(before: Files, files: Files, after: int) -> None:
        vectors = vector_files(tmp_path / "t.img")
        np.testing.assert_array_equal(vectors.pop("/emb.vec"), OLD)
        for path, rows in vectors.items():  # /new.vec, or its inode in /lost+found
            assert path == "/new.vec" or path.startswith("/lost+found/"), path
            assert rows is None or np.array_equal(rows, NEW), f"{path}: a mix after crash {after}"

    crash_each_point(source, tmp_path, vectors_group, lambda t: ["add", t, "/new.vec", "--from", where / "new.npy"],
                     check=check)


def test_vectors_add_append(base, tmp_path):
    where, source = base

    def check(before: Files, files: Files, after: int) -> None:
        rows = vector_files(tmp_path / "t.img")["/emb.vec"]
        assert rows is not None
        assert np.array_equal(rows, OLD) or np.array_equal(rows, np.concatenate([OLD, NEW])), after

    crash_each_point(source, tmp_path, vectors_group,
                     lambda t: ["add", t, "/emb.vec", "--from", where / "new.npy", "--append"], {"/emb.vec"}, check)


def test_volume_mkdir_and_create_file(base, tmp_path):
    _, source = base
    before = file_bytes(source)
    data = os.urandom(70_000)  # 18 blocks: an indirect block too
    image = tmp_path / "t.img"

    def work(target: Path):
        def body():
            with Volume.open(str(target), writable=True) as volume:
                parent = volume.mkdir(C.ROOT_INO, b"new_dir")
                volume.create_file(parent, b"file.bin", data)
                volume.create_file(C.ROOT_INO, b"small.txt", b"hello\n")
        return body

    def judge(image: Path, after: int) -> None:
        repair_then_clean(image)
        files = old_files_kept(before, image)
        for path in ("/new_dir/file.bin", "/small.txt", *found_in_lost_found(files)):
            if path in files and path not in before:
                assert files[path] in (data, b"hello\n"), f"{path}: a mix after crash {after}"

    sweep(image, lambda t: copy(source, t), work, judge)


def test_mkfs_d(base, tmp_path):
    where, _ = base
    tree = where / "tree"
    expected = file_bytes(base[1])
    image = tmp_path / "m.img"

    def fresh(target: Path) -> None:
        if target.exists():
            target.unlink()

    def judge(image: Path, after: int) -> None:
        try:
            repair_then_clean(image)
        except BadMagicError:
            return  # cut short before there was a file system at all: nothing to repair
        for path, data in file_bytes(image).items():
            if path in expected:
                assert data == expected[path], f"{path}: a mix after crash {after}"

    sweep(image, fresh, lambda t: click_run(mkfs_command, mkfs_args(EXTENDED, tree, t)[:-1] + [str(t)]),
          judge, limit=30)


@pytest.mark.parametrize("name", ["dup_blocks", "unattached_file", "bitmap_used_clear", "indirect_checksum"])
def test_fsck_y_repairs(base, tmp_path, name):
    where = tmp_path / "corpus"
    make_tree(where / "tree", EXTENDED)
    corrupted = where / "c.img"
    run("mkfs.vexfs", *mkfs_args(EXTENDED, where / "tree", corrupted), env=MKFS_ENV, check=True)
    CORRUPTIONS[name].generate(Img(corrupted, EXTENDED))
    image = tmp_path / "t.img"

    def work(target: Path):
        return lambda: run_check(str(target), YES)

    sweep(image, lambda t: copy(corrupted, t), work, lambda image, after: repair_then_clean(image))
