"""The shared `tree` image, written by the real kernel: its three directories lost their
block pointers (the kernel's mkdir), so 9 of its 13 files are unreachable by following
pointers. The forensic views read them from the orphaned blocks: every path of tree.md5 is
listed by `ls -R`, named by `ncheck`, in the timeline and extracted with its md5 — and the
image is not changed by any of it."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.conftest import kernel_image, kernel_md5

from .images import Unchanged, cli, vexfs

DIRECTORIES = {"/docs": (2, 67), "/docs/deep": (3, 68), "/vectors": (4, 69)}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return kernel_image("tree", tmp_path_factory.mktemp("tree"))


def test_ls_recursive_lists_every_path(tree):
    expected = kernel_md5("tree")
    with Unchanged(tree):
        listings = json.loads(cli("ls", "--json", "-R", tree, "/").stdout)
        text = cli("ls", "-R", tree, "/").stdout
    paths = {(d["path"].rstrip("/") + "/" + e["name"]) for d in listings for e in d["entries"]}
    assert set(expected) <= paths
    assert paths - set(expected) == set(DIRECTORIES)
    recovered = {d["path"]: (d["inode"], d["recovered_block"]) for d in listings if d["recovered_block"]}
    assert recovered == DIRECTORIES
    for path, (_, block) in DIRECTORIES.items():
        assert f"{path}:  [recovered from orphaned block {block}]" in text


def test_extract_everything_with_its_md5(tree, tmp_path):
    expected = kernel_md5("tree")
    out = tmp_path / "out"
    with Unchanged(tree):
        result = vexfs("extract", tree, "/", out)  # the installed command, end to end
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    got = {"/" + str(p.relative_to(out)): hashlib.md5(p.read_bytes()).hexdigest()
           for p in out.rglob("*") if p.is_file()}
    assert got == expected
    assert {"/" + str(p.relative_to(out)) for p in out.rglob("*") if p.is_dir()} == set(DIRECTORIES)


def test_extract_one_recovered_file_and_directory(tree, tmp_path):
    expected = kernel_md5("tree")
    with Unchanged(tree):
        single = cli("extract", tree, "/docs/deep/full12.bin", tmp_path / "one")
        subtree = cli("extract", tree, "/docs/deep", tmp_path / "sub")
    assert single.returncode == subtree.returncode == 0
    assert hashlib.md5((tmp_path / "one" / "full12.bin").read_bytes()).hexdigest() == expected["/docs/deep/full12.bin"]
    assert sorted(p.name for p in (tmp_path / "sub" / "deep").iterdir()) == ["full12.bin", "one.txt", "page2.bin"]


def test_ncheck_timeline_icheck_see_the_recovered_tree(tree):
    expected = kernel_md5("tree")
    with Unchanged(tree):
        named = cli("ncheck", tree, *range(1, 18)).stdout.splitlines()[1:]
        body = cli("timeline", tree).stdout
        checked = json.loads(cli("icheck", "--json", tree, 67, 68, 69, 94).stdout)
        blocks = cli("dump.vexfs", "--blocks", tree).stdout
    assert set(expected) | set(DIRECTORIES) | {"/"} == {line.split("\t")[1] for line in named}
    names = {line.split("|")[1] for line in body.splitlines()}
    assert names == set(expected) | set(DIRECTORIES)
    assert [(c["inodes"], c["kind"]) for c in checked] == [
        ([2], "directory (recovered)"), ([3], "directory (recovered)"), ([4], "directory (recovered)"),
        ([14], "file data")]
    assert "                     67  directory (recovered)   inode 2\n" in blocks
    assert "               114-4095  free\n" in blocks


def test_cat_and_stat_through_recovered_directories(tree):
    expected = kernel_md5("tree")
    with Unchanged(tree):
        data = cli("cat", tree, "/vectors/v0002.vec").stdout_bytes
        stat = json.loads(cli("stat", "--json", tree, "/docs/deep").stdout)
    assert hashlib.md5(data).hexdigest() == expected["/vectors/v0002.vec"]
    assert any("orphaned block 68" in note for note in stat["notes"])
