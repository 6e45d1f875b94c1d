"""A crash at every point for the offline writes (`vexfs write|rm|mv|ln`, the write API the
mount uses) and for `vexfs tune`: after fsck.vexfs -y a forced -n is clean, no file that
was not touched changes, and a touched file has its old contents or its new ones, under its
old name, its new name or in /lost+found — never a mix, never gone unless removed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vexfs_tools.cli.maintenance import tune_command
from vexfs_tools.cli.write import ln_command, mv_command, rm_command, write_command

from .crash import Files, click_run, copy, crash_each_point, file_bytes, found_in_lost_found

DATA = os.urandom(70_000)  # 18 blocks: through an indirect block


def places(files: Files, *names: str, tail: str = "") -> list[str]:
    """`names`, and whatever fsck put in /lost+found (ending in `tail` when given)."""
    return [*names, *(p for p in found_in_lost_found(files) if p.endswith(tail))]


def host_file(tmp_path: Path) -> Path:
    host = tmp_path / "host.bin"
    host.write_bytes(DATA)
    return host


def test_write_new_file(base, tmp_path):
    def check(before: Files, files: Files, after: int) -> None:
        for path in set(places(files, "/docs/new.bin")) & set(files):
            assert files[path] == DATA, f"{path}: a mix after crash {after}"

    host = host_file(tmp_path)
    crash_each_point(base[1], tmp_path, write_command, lambda t: [t, host, "/docs/new.bin"], check=check)


def test_write_over_a_file(base, tmp_path):
    def check(before: Files, files: Files, after: int) -> None:
        assert files.get("/five_k.bin") in (before["/five_k.bin"], DATA), f"a mix after crash {after}"
        for path in set(files) - set(before):  # the new copy under its temporary name, or the old
            assert path in places(files, "/.five_k.bin.vexfs-new"), path
            assert files[path] in (DATA, before["/five_k.bin"]), f"{path}: a mix after crash {after}"

    host = host_file(tmp_path)
    crash_each_point(base[1], tmp_path, write_command, lambda t: [t, host, "/five_k.bin"],
                     {"/five_k.bin"}, check)


def test_rm_recursive(base, tmp_path):
    removed = {p for p in file_bytes(base[1]) if p.startswith("/docs/")}

    def check(before: Files, files: Files, after: int) -> None:
        for path in removed & set(files):
            assert files[path] == before[path], f"{path}: changed by crash {after}"
        for path in places(files):
            assert files[path] in {before[p] for p in removed}, f"{path}: a stranger after crash {after}"

    crash_each_point(base[1], tmp_path, rm_command, lambda t: [t, "-r", "/docs"], removed, check)


@pytest.mark.parametrize("command, args, new", [
    (mv_command, ["/five_k.bin", "/docs/deep/moved.bin"], "/docs/deep/moved.bin"),
    (mv_command, ["/five_k.bin", "/hundred.txt"], "/hundred.txt"),
    (ln_command, ["/five_k.bin", "/docs/again.bin"], "/docs/again.bin"),
], ids=["mv-across", "mv-over", "ln"])
def test_rename_and_link(base, tmp_path, command, args, new):
    def check(before: Files, files: Files, after: int) -> None:
        moved = before["/five_k.bin"]
        assert any(files.get(p) == moved for p in places(files, "/five_k.bin", new)), f"lost after crash {after}"
        if new in before and new in files:  # a replaced target: its old bytes or the moved file's
            assert files[new] in (before[new], moved), f"{new}: a mix after crash {after}"

    crash_each_point(base[1], tmp_path, command, lambda t: [t, *args], {"/five_k.bin", new}, check)


def test_mv_a_directory(base, tmp_path):
    moved = {p for p in file_bytes(base[1]) if p.startswith("/docs/deep/")}

    def check(before: Files, files: Files, after: int) -> None:
        for path in moved:
            rel = path.removeprefix("/docs/deep/")
            where = places(files, path, "/vectors/deep/" + rel, tail="/" + rel)
            assert any(files.get(p) == before[path] for p in where), f"{path} lost after crash {after}"

    crash_each_point(base[1], tmp_path, mv_command, lambda t: [t, "/docs/deep", "/vectors"], moved, check)


@pytest.mark.parametrize("args", [["-L", "renamed"], ["-U", "random"], ["-O", "^metadata_csum"],
                                  ["-O", "^backup_super"]])
def test_tune(base, tmp_path, args):
    crash_each_point(base[1], tmp_path, tune_command, lambda t: [*args, t], limit=25)


def test_tune_metadata_csum_on(base, tmp_path):
    plain = tmp_path / "plain.img"
    copy(base[1], plain)
    click_run(tune_command, ["-O", "^metadata_csum", plain])()
    crash_each_point(plain, tmp_path, tune_command, lambda t: ["-O", "metadata_csum", t], limit=25)
