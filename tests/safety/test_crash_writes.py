"""A crash at every point for the offline writes (`vexfs write|rm|mv|ln`, the write API the
mount uses) and for `vexfs tune`: after fsck.vexfs -y a forced -n is clean, no file that
was not touched changes, and a touched file has its old contents or its new ones, under its
old name, its new name or in /lost+found — never a mix, never gone unless removed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vexfs_tools.cli.maintenance import tune_command
from vexfs_tools.cli.write import mv_command, rm_command, write_command, ln_command

from .crash import click_run, copy, file_bytes, found_in_lost_found, old_files_kept, repair_then_clean, sweep

DATA = os.urandom(70_000)  # 18 blocks: through an indirect block


def kept_somewhere(files: dict[str, bytes], data: bytes, names: tuple[str, ...]) -> bool:
    """`data` is under one of `names` or in /lost+found."""
    return any(files.get(p) == data for p in (*names, *found_in_lost_found(files)))


def test_write_new_file(base, tmp_path):
    _, source = base
    before = file_bytes(source)
    host = tmp_path / "host.bin"
    host.write_bytes(DATA)
    image = tmp_path / "t.img"

    def judge(image: Path, after: int) -> None:
        repair_then_clean(image)
        files = old_files_kept(before, image)
        for path in ("/docs/new.bin", *found_in_lost_found(files)):
            if path in files and path not in before:
                assert files[path] == DATA, f"{path}: a mix after crash {after}"

    sweep(image, lambda t: copy(source, t), lambda t: click_run(write_command, [t, host, "/docs/new.bin"]), judge)


def test_write_over_a_file(base, tmp_path):
    _, source = base
    before = file_bytes(source)
    host = tmp_path / "host.bin"
    host.write_bytes(DATA)
    image = tmp_path / "t.img"

    def judge(image: Path, after: int) -> None:
        repair_then_clean(image)
        files = old_files_kept(before, image, except_paths={"/five_k.bin"})
        assert files.get("/five_k.bin") in (before["/five_k.bin"], DATA), f"a mix after crash {after}"
        for path in set(files) - set(before):  # the new copy under its temporary name, or
            assert path in ("/.five_k.bin.vexfs-new", *found_in_lost_found(files)), path  # the old
            assert files[path] in (DATA, before["/five_k.bin"]), f"{path}: a mix after crash {after}"

    sweep(image, lambda t: copy(source, t), lambda t: click_run(write_command, [t, host, "/five_k.bin"]), judge)


def test_rm_recursive(base, tmp_path):
    _, source = base
    before = file_bytes(source)
    removed = {p for p in before if p.startswith("/docs/")}
    image = tmp_path / "t.img"

    def judge(image: Path, after: int) -> None:
        repair_then_clean(image)
        files = old_files_kept(before, image, except_paths=removed)
        for path in removed:
            if path in files:
                assert files[path] == before[path], f"{path}: changed by crash {after}"
        for path in found_in_lost_found(files):
            assert files[path] in {before[p] for p in removed}, f"{path}: a stranger after crash {after}"

    sweep(image, lambda t: copy(source, t), lambda t: click_run(rm_command, [t, "-r", "/docs"]), judge)


@pytest.mark.parametrize("command, args, new", [
    (mv_command, ["/five_k.bin", "/docs/deep/moved.bin"], "/docs/deep/moved.bin"),
    (mv_command, ["/five_k.bin", "/hundred.txt"], "/hundred.txt"),
    (ln_command, ["/five_k.bin", "/docs/again.bin"], "/docs/again.bin"),
], ids=["mv-across", "mv-over", "ln"])
def test_rename_and_link(base, tmp_path, command, args, new):
    _, source = base
    before = file_bytes(source)
    image = tmp_path / "t.img"
    touched = {"/five_k.bin", new}

    def judge(image: Path, after: int) -> None:
        repair_then_clean(image)
        files = old_files_kept(before, image, except_paths=touched)
        assert kept_somewhere(files, before["/five_k.bin"], ("/five_k.bin", new)), f"lost after crash {after}"
        if new in before and new in files:  # a replaced target: its old bytes or the moved file's
            assert files[new] in (before[new], before["/five_k.bin"]), f"{new}: a mix after crash {after}"

    sweep(image, lambda t: copy(source, t), lambda t: click_run(command, [t, *args]), judge)


@pytest.mark.parametrize("args", [["-L", "renamed"], ["-U", "random"], ["-O", "^metadata_csum"],
                                  ["-O", "^backup_super"]])
def test_tune(base, tmp_path, args):
    _, source = base
    before = file_bytes(source)
    image = tmp_path / "t.img"

    def judge(image: Path, after: int) -> None:
        repair_then_clean(image)
        old_files_kept(before, image)

    sweep(image, lambda t: copy(source, t), lambda t: click_run(tune_command, [*args, t]), judge, limit=25)


def test_mv_a_directory(base, tmp_path):
    _, source = base
    before = file_bytes(source)
    moved = {p for p in before if p.startswith("/docs/deep/")}
    image = tmp_path / "t.img"

    def judge(image: Path, after: int) -> None:
        repair_then_clean(image)
        files = old_files_kept(before, image, except_paths=moved)
        for path in moved:
            rel = path.removeprefix("/docs/deep/")
            places = [path, "/vectors/deep/" + rel, *(p for p in found_in_lost_found(files) if p.endswith("/" + rel))]
            assert any(files.get(p) == before[path] for p in places), f"{path} lost after crash {after}"

    sweep(image, lambda t: copy(source, t), lambda t: click_run(mv_command, [t, "/docs/deep", "/vectors"]), judge)


def test_tune_metadata_csum_on(base, tmp_path):
    _, source = base
    before = file_bytes(source)
    plain = tmp_path / "plain.img"
    copy(source, plain)
    click_run(tune_command, ["-O", "^metadata_csum", plain])()
    image = tmp_path / "t.img"

    def judge(image: Path, after: int) -> None:
        repair_then_clean(image)
        old_files_kept(before, image)

    sweep(image, lambda t: copy(plain, t), lambda t: click_run(tune_command, ["-O", "metadata_csum", t]),
          judge, limit=25)
