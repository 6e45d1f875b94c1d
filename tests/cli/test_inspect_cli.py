"""dump.vexfs and `vexfs ls / stat / cat`: what they print, how they fail, and that they never
change a byte of what they read."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest


from .helpers import error_line
from tests.conftest import Unchanged, kernel_image, kernel_md5, run

UUID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
EPOCH = "1700000000"
BIG = bytes((i * 31 + (i >> 8)) % 256 for i in range(200 * 1024))  # 50 blocks: needs an indirect block
SMALL = b"hello, world\n\x00\xff binary too\n"


def fields(text: str) -> dict[str, str]:
    """'Name:   value' lines of dump.vexfs's text output."""
    out = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            out.setdefault(name.strip(), value.strip())
    return out


def dump_json(image) -> dict:
    return json.loads(run("dump.vexfs", "--json", image, check=True).stdout)


# --- images, made once per module (the tests only read them) --------------------------------

@pytest.fixture(scope="module")
def source_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("src")
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "docs" / "a.txt").write_bytes(SMALL)
    (root / "docs" / "deep" / "big.bin").write_bytes(BIG)
    (root / "empty").write_bytes(b"")
    os.symlink("docs/a.txt", root / "link")
    return root


@pytest.fixture(scope="module")
def tree_image(tmp_path_factory, source_tree):
    image = tmp_path_factory.mktemp("tree") / "tree.img"
    run("mkfs.vexfs", "-q", "-U", UUID, "-L", "treeimg", "-d", source_tree, "-s", "4M", image,
        env={"SOURCE_DATE_EPOCH": EPOCH}, check=True)
    return image


@pytest.fixture(scope="module")
def extended_image(tmp_path_factory):
    image = tmp_path_factory.mktemp("ext") / "ext.img"
    run("mkfs.vexfs", "-q", "-U", UUID, "-L", "extlabel", "-s", "16M", image, check=True)
    return image


@pytest.fixture(scope="module")
def compat_image(tmp_path_factory):
    image = tmp_path_factory.mktemp("kern") / "kern.img"
    run("mkfs.vexfs", "-q", "--compat", "kernel", "-U", UUID, "-L", "kernlabel", "-s", "8M", image,
        check=True)
    return image


@pytest.fixture(scope="module")
def real_kernel_image(tmp_path_factory):
    return kernel_image("tree", tmp_path_factory.mktemp("real"))


# --- dump.vexfs ---------------------------------------------------------------------------

def test_dump_text_extended(extended_image):
    with Unchanged(extended_image):
        result = run("dump.vexfs", extended_image, check=True)
    f = fields(result.stdout)
    assert f["Filesystem volume name"] == "extlabel"
    assert f["Filesystem UUID"] == UUID
    assert f["Filesystem magic number"] == "0x56455846"
    assert f["Layout"] == "extended"
    assert f["Filesystem features"].split() == [
        "backup_super", "metadata_csum", "lazy_itable", "flex_geometry", "indirect_blocks", "large_dir"]
    assert f["Block count"] == "4096"
    assert f["Used inodes"] == "2"
    free = int(f["Free blocks"].split()[0])
    assert f["Free blocks"] == f"{free} recorded, {free} counted from the bitmap"
    assert f["Used blocks"] == str(4096 - free)
    # free inode slots are counted from the first allocatable inode, 11 (lost+found) on
    assert f["First allocatable inode"] == "11"
    free_inodes = int(f["Inode count"]) - 11
    assert f["Free inodes"] == f"{free_inodes} recorded, {free_inodes} counted from the inode table"
    assert f["Backup superblock at"] == "4095"
    assert f["Checksum"].startswith("crc32c") and f["Checksum"].endswith("(ok)")
    assert result.stderr == ""


def test_dump_json_extended(extended_image):
    with Unchanged(extended_image):
        info = dump_json(extended_image)
    assert info["label"] == "extlabel"
    assert info["uuid"] == UUID
    assert info["layout"] == "extended"
    assert "flex_geometry" in info["features"] and "metadata_csum" in info["features"]
    assert info["blocks_count"] == info["device_blocks"] == 4096
    assert info["used_inodes"] == 2
    assert info["free_blocks"]["recorded"] == info["free_blocks"]["counted"]
    assert info["first_inode"] == 11
    assert info["free_inodes"]["recorded"] == info["free_inodes"]["counted"] == info["inodes_count"] - 11
    assert info["used_blocks"] == 4096 - info["free_blocks"]["counted"]
    assert info["geometry"]["backup_superblock"] == 4095
    assert info["checksum"]["ok"] is True
    assert info["problems"] == []


def test_dump_compat_kernel(compat_image):
    with Unchanged(compat_image):
        text = run("dump.vexfs", compat_image, check=True).stdout
        info = dump_json(compat_image)
    f = fields(text)
    assert f["Filesystem volume name"] == "kernlabel"
    assert f["Filesystem UUID"] == UUID
    assert f["Layout"] == "kernel"
    assert f["Filesystem features"] == "(none)"
    assert f["Free blocks"].startswith("1981 recorded, 1981 counted")  # 2048 - 67
    assert f["Free inodes"].startswith("1023 recorded, 1023 counted")
    assert f["Used inodes"] == "1"
    assert f["Inode table at"] == "blocks 2-65"
    assert f["First data block"] == "66"
    assert f["Backup superblock at"] == "none"
    assert (info["label"], info["uuid"], info["layout"], info["features"]) == ("kernlabel", UUID, "kernel", [])
    assert info["inodes_count"] == 1024 and info["blocks_count"] == 2048
    assert info["free_blocks"] == {"recorded": 1981, "counted": 1981}
    assert info["free_inodes"] == {"recorded": 1023, "counted": 1023}
    assert info["used_inodes"] == 1 and info["used_blocks"] == 67
    assert info["geometry"]["inode_table"] == [2, 64]
    assert info["checksum"] is None


def test_dump_real_kernel_image_shows_stale_counters(real_kernel_image):
    with Unchanged(real_kernel_image):
        text = run("dump.vexfs", real_kernel_image, check=True).stdout
        info = dump_json(real_kernel_image)
    f = fields(text)
    assert f["Filesystem volume name"] == "kernelimg"
    assert f["Layout"] == "kernel"
    assert f["Free blocks"] == "4029 recorded, 3982 counted from the bitmap"
    assert f["Free inodes"] == "1023 recorded, 1007 counted from the inode table"
    assert f["Used inodes"] == "17"
    assert info["free_blocks"] == {"recorded": 4029, "counted": 3982}
    assert info["free_inodes"] == {"recorded": 1023, "counted": 1007}
    assert info["used_inodes"] == 17
    assert info["label"] == "kernelimg" and info["layout"] == "kernel"


def test_cat_real_kernel_image_matches_what_the_kernel_returned(real_kernel_image):
    expected = kernel_md5("tree")
    with Unchanged(real_kernel_image):
        for path in ("/hundred.txt", "/page.bin"):  # two of the four files reachable from the root
            data = run("vexfs", "cat", real_kernel_image, path, check=True).stdout_bytes
            assert hashlib.md5(data).hexdigest() == expected[path], path


# --- vexfs ls ------------------------------------------------------------------------------

def test_ls_names(tree_image):
    with Unchanged(tree_image):
        result = run("vexfs", "ls", tree_image, check=True)
    assert result.stdout.split("\n")[:-1] == [".", "..", "docs", "empty", "link", "lost+found"]


def test_ls_long(tree_image, source_tree):
    with Unchanged(tree_image):
        result = run("vexfs", "ls", "-l", tree_image, "/docs", check=True)
    rows = {line.split()[-1]: line.split() for line in result.stdout.splitlines()}
    assert set(rows) == {".", "..", "a.txt", "deep"}
    assert rows["a.txt"][1] == stat.filemode((source_tree / "docs" / "a.txt").stat().st_mode)
    assert rows["a.txt"][5] == str(len(SMALL))
    assert rows["deep"][1].startswith("d")
    assert rows["."][0] != rows[".."][0]
    assert rows[".."][0] == "1"  # /docs's parent is the root
    assert "2023" in result.stdout  # mtimes clamped to SOURCE_DATE_EPOCH (Nov 14 2023)


def test_ls_json(tree_image):
    with Unchanged(tree_image):
        entries = json.loads(run("vexfs", "ls", "--json", tree_image, "/", check=True).stdout)
    by_name = {e["name"]: e for e in entries}
    assert stat.S_ISDIR(by_name["docs"]["mode"])
    assert stat.S_ISREG(by_name["empty"]["mode"]) and by_name["empty"]["size"] == 0
    assert stat.S_ISLNK(by_name["link"]["mode"]) and by_name["link"]["size"] == len("docs/a.txt")
    assert by_name["lost+found"]["inode"] == 11
    assert by_name["docs"]["links"] == 3  # ., .., and deep's ..


# --- vexfs stat ----------------------------------------------------------------------------

def test_stat_by_path_and_by_number(tree_image):
    with Unchanged(tree_image):
        by_path = json.loads(run("vexfs", "stat", "--json", tree_image, "/docs/deep/big.bin", check=True).stdout)
        number = by_path["inode"]
        by_number = json.loads(run("vexfs", "stat", "--json", tree_image, str(number), check=True).stdout)
        text = run("vexfs", "stat", tree_image, f"<{number}>", check=True).stdout
    assert by_number == by_path
    f = by_path["fields"]
    assert stat.S_ISREG(f["i_mode"])
    assert f["i_size"] == len(BIG)
    assert f["i_links_count"] == 1
    assert f["i_mtime"] == int(EPOCH)
    assert by_path["mapped_blocks"] == 50
    assert sum(r["count"] for r in by_path["blocks"]) == 50
    assert f["i_indirect"] != 0 and by_path["indirect_blocks"] == [f["i_indirect"]]
    assert f["i_blocks"] == 51  # 50 data blocks and the indirect block
    assert by_path["checksum_ok"] is True
    assert by_path["problems"] == []
    assert f"Inode: {number}" in text
    assert f"Size: {len(BIG)}" in text
    assert f"INDIRECT BLOCKS: {f['i_indirect']}" in text
    assert "TOTAL: 50" in text


def test_stat_symlink_and_empty_file(tree_image):
    with Unchanged(tree_image):
        link = json.loads(run("vexfs", "stat", "--json", tree_image, "/link", check=True).stdout)
        empty = json.loads(run("vexfs", "stat", "--json", tree_image, "/empty", check=True).stdout)
    assert link["type"].startswith("l")
    assert link["target"] == "docs/a.txt"
    assert link["fields"]["i_size"] == len("docs/a.txt")
    assert empty["type"].startswith("-")
    assert empty["fields"]["i_size"] == 0 and empty["blocks"] == [] and empty["mapped_blocks"] == 0


# --- vexfs cat -----------------------------------------------------------------------------

def test_cat_is_byte_exact(tree_image):
    with Unchanged(tree_image):
        big = run("vexfs", "cat", tree_image, "/docs/deep/big.bin", check=True)
        small = run("vexfs", "cat", tree_image, "/docs/a.txt", check=True)
        empty = run("vexfs", "cat", tree_image, "/empty", check=True)
    assert big.stdout_bytes == BIG
    assert small.stdout_bytes == SMALL
    assert empty.stdout_bytes == b""


def test_cat_by_inode_number(tree_image):
    number = json.loads(run("vexfs", "stat", "--json", tree_image, "/docs/a.txt", check=True).stdout)["inode"]
    with Unchanged(tree_image):
        assert run("vexfs", "cat", tree_image, str(number), check=True).stdout_bytes == SMALL


# --- errors: one line, exit != 0, no traceback, nothing changed --------------------------------

@pytest.mark.parametrize("args, words", [
    (["cat", "{img}", "/docs"], ["/docs", "is a directory"]),
    (["cat", "{img}", "/docs/nope.txt"], ["/docs/nope.txt", "no such file"]),
    (["ls", "{img}", "/missing"], ["/missing", "no such file"]),
    (["ls", "{img}", "/docs/a.txt"], ["/docs/a.txt", "not a directory"]),
    (["stat", "{img}", "0"], ["inode 0", "out of range"]),
    (["stat", "{img}", "99999"], ["inode 99999", "out of range"]),
], ids=["cat-dir", "cat-missing", "ls-missing", "ls-file", "stat-0", "stat-too-big"])
def test_file_command_errors(tree_image, args, words):
    with Unchanged(tree_image):
        result = run("vexfs", *[a.format(img=tree_image) for a in args])
    error_line(result, "vexfs", *words)
    assert result.stdout == ""


def test_stat_one_past_the_last_inode(tree_image):
    count = dump_json(tree_image)["inodes_count"]
    with Unchanged(tree_image):
        last = run("vexfs", "stat", "--json", tree_image, str(count))
        past = run("vexfs", "stat", tree_image, str(count + 1))
    assert last.returncode == 0, last.stderr
    error_line(past, "vexfs", f"inode {count + 1}", "out of range", str(count))


@pytest.mark.parametrize("program, args", [
    ("dump.vexfs", ["--json"]), ("vexfs", ["ls"]),
], ids=["dump-json", "ls"])
def test_wrong_magic(tmp_path, program, args):
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"\xaa" * (1 << 20))
    args = [*args, junk] if program == "dump.vexfs" else [*args, junk, "/"]
    result = run(program, *args)
    error_line(result, program, str(junk), "magic", "0xaaaaaaaa")
    assert result.stdout == ""
    assert junk.read_bytes() == b"\xaa" * (1 << 20)


@pytest.mark.parametrize("program, args", [
    ("dump.vexfs", []), ("vexfs", ["cat"]),
], ids=["dump", "cat"])
def test_truncated_image(tmp_path, tree_image, program, args):
    short = tmp_path / "short.img"
    short.write_bytes(tree_image.read_bytes()[:8192])
    with Unchanged(short):
        full = [*args, short] if program == "dump.vexfs" else [*args, short, "/docs/a.txt"]
        result = run(program, *full)
    error_line(result, program, "truncated")
    assert result.stdout == ""
    assert short.stat().st_size == 8192
