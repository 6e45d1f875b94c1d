"""`vexfs diff`: the shared kernel images explained (every file and directory the scenario
made, the directories without a block pointer), changes made here through the volume
library (a kernel-style delete, a rewrite, a rename, a new file), --json and --dfxml."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET

from tests.conftest import kernel_image, kernel_md5
from tests.inspect.images import Unchanged, build, delete_like_kernel, vexfs
from vexfs_tools.format import constants as C
from vexfs_tools.inspect.dfxml import DFXML_NS
from vexfs_tools.inspect.diff import DELTA_NS
from vexfs_tools.volume import Volume, directory

D = "{%s}" % DFXML_NS
DELTA = "{%s}" % DELTA_NS
SCENARIO_DIRS = {"/docs", "/docs/deep", "/vectors"}


def kernel_pair(tmp_path):
    before = kernel_image("tree.mkfs-before", tmp_path)
    after = kernel_image("tree", tmp_path)
    return before, after


def test_kernel_tree_json(tmp_path):
    before, after = kernel_pair(tmp_path)
    with Unchanged(before), Unchanged(after):
        out = vexfs("diff", "--json", before, after)
    assert out.returncode == 1, out.stderr
    result = json.loads(out.stdout)
    md5 = kernel_md5("tree")
    added = {item["path"]: item for item in result["names"]["added"]}
    assert set(added) == set(md5) | SCENARIO_DIRS
    for path, digest in md5.items():
        assert added[path]["md5"] == digest and added[path]["type"] == "file"
    assert {added[p]["type"] for p in SCENARIO_DIRS} == {"dir"}
    flagged = {item["path"]: item for item in result["blockless_directories"] if item["image"] == "b"}
    assert set(flagged) == SCENARIO_DIRS
    assert all(item["recovered_block"] for item in flagged.values())
    assert result["inodes"]["allocated"] == list(range(2, 18))
    assert result["inodes"]["freed"] == [] and result["names"]["removed"] == []
    root = {item["inode"]: item for item in result["inodes"]["changed"]}[C.ROOT_INO]
    assert root["fields"]["i_links_count"] == {"a": 2, "b": 4}
    owned = {(run["first"], run["b"]) for run in result["blocks"]["owner_changed"]}
    for item in flagged.values():
        assert (item["recovered_block"], item["inode"]) in owned
    assert result["blocks"]["allocated"] and result["blocks"]["content_changed"]


def test_kernel_tree_human_grouped_by_path(tmp_path):
    before, after = kernel_pair(tmp_path)
    out = vexfs("diff", before, after)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    for path in sorted(set(kernel_md5("tree")) | SCENARIO_DIRS):
        assert f"{path}:" in lines
    for path in SCENARIO_DIRS:
        group = lines[lines.index(f"{path}:") + 1:lines.index(f"{path}:") + 3]
        assert any("has no block pointer (read from orphaned block" in line for line in group), group
    assert "Inodes:" in lines and "  allocated: 2-17" in lines and "Blocks:" in lines


def test_kernel_tree_differential_dfxml(tmp_path):
    before, after = kernel_pair(tmp_path)
    out = vexfs("diff", "--dfxml", before, after)
    assert out.returncode == 1
    root = ET.fromstring(out.stdout_bytes)
    new = [fo.findtext(D + "filename") for fo in root.iter(D + "fileobject") if fo.get(DELTA + "new_file") == "1"]
    assert {"/" + name for name in new} == set(kernel_md5("tree")) | SCENARIO_DIRS
    changed = [fo for fo in root.iter(D + "fileobject") if fo.get(DELTA + "changed_file")]
    assert changed == []  # the root is no name of its own


def test_same_image_exit_zero(tmp_path):
    image = build(tmp_path)
    copy = tmp_path / "copy.img"
    shutil.copyfile(image, copy)
    out = vexfs("diff", image, copy)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    assert json.loads(vexfs("diff", "--json", image, copy).stdout)["names"] == \
        {"added": [], "removed": [], "renamed": []}


def test_changes_made_here(tmp_path):
    image = build(tmp_path)
    after = tmp_path / "after.img"
    shutil.copyfile(image, after)
    gone = delete_like_kernel(after, "/gone.bin")
    with Volume.open(str(after), writable=True) as volume:
        inode = volume.resolve("/keep.bin")
        volume.write_data(inode.i_block[0], b"K" * 100 + bytes(C.BLOCK_SIZE - 100))
        new = volume.create_file(C.ROOT_INO, b"new.txt", b"fresh\n")
        docs = volume.resolve("/docs")
        for _, block in volume.dir_blocks(docs):
            data = bytearray(volume.read_block(block))
            moved = directory.remove_entry(data, b"old.txt", chain_end=volume.chain_end)
            if moved is not None:
                volume.write_dir_block(block, data)
                break
        volume.add_entry(docs.ino, b"renamed.txt", moved, C.FT_REG_FILE)
    result = json.loads(vexfs("diff", "--json", image, after).stdout)
    assert [item["path"] for item in result["names"]["removed"]] == ["/gone.bin"]
    assert result["names"]["removed"][0]["inode"] == gone
    assert result["names"]["renamed"] == [{"from": "/docs/old.txt", "to": "/docs/renamed.txt", "inode": moved}]
    assert [(item["path"], item["inode"]) for item in result["names"]["added"]] == [("/new.txt", new)]
    content = {item["path"]: item for item in result["content_changed"]}
    assert set(content) == {"/keep.bin"} and content["/keep.bin"]["md5_a"] != content["/keep.bin"]["md5_b"]
    assert new in result["inodes"]["allocated"]
    human = vexfs("diff", image, after).stdout.splitlines()
    assert "/docs/renamed.txt:" in human and any(line.startswith("  renamed from /docs/old.txt") for line in human)
    assert "/gone.bin:" in human and "/keep.bin:" in human
    delta = ET.fromstring(vexfs("diff", "--dfxml", image, after).stdout_bytes)
    markers = {fo.findtext(D + "filename"): [k[len(DELTA):] for k in fo.attrib]
               for fo in delta.findall(f"{D}volume/{D}fileobject")}
    assert markers["gone.bin"] == ["deleted_file"] and markers["new.txt"] == ["new_file"]
    assert markers["docs/renamed.txt"] == ["renamed_file"] and markers["keep.bin"] == ["modified_file"]
    modified = [fo for fo in delta.findall(f"{D}volume/{D}fileobject") if fo.findtext(D + "filename") == "keep.bin"][0]
    assert modified.find(f"{DELTA}original_fileobject/{D}fileobject") is not None


def test_errors(tmp_path):
    image = build(tmp_path)
    bad = tmp_path / "bad.img"
    bad.write_bytes(bytes(1 << 16))
    out = vexfs("diff", image, bad)
    assert out.returncode == 2 and out.stdout == "" and len(out.stderr.strip().splitlines()) == 1
    out = vexfs("diff", "--json", "--dfxml", image, image)
    assert out.returncode == 2 and "exclude each other" in out.stderr
