"""`vexfs dfxml`: the document re-read with Python's XML parsers (whole and iterparse), the
elements and their order as fiwalk emits them, digests against the kernel's own md5 list
and against hashlib over `vexfs cat`, deleted and recovered names, vector files' shape."""

from __future__ import annotations

import hashlib
import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from tests.conftest import kernel_image, kernel_md5
from tests.inspect.images import Unchanged, build, delete_like_kernel, vexfs
from vexfs_tools.format import constants as C
from vexfs_tools.inspect.dfxml import DFXML_NS, VEXFS_NS
from vexfs_tools.volume import Volume

D = "{%s}" % DFXML_NS
X = "{%s}" % VEXFS_NS
# fiwalk's order of a fileobject's children (those we write); ours come after all of them.
FILEOBJECT_ORDER = ["parent_object", "filename", "id", "name_type", "filesize", "alloc", "used", "meta_type",
                    "mode", "nlink", "uid", "gid", "mtime", "ctime", "atime", "inode", "byte_runs", "hashdigest"]
VOLUME_ORDER = ["partition_offset", "sector_size", "block_size", "ftype_str", "block_count", "first_block",
                "last_block", "allocated_only"]


def dfxml(image, *args) -> ET.Element:
    with Unchanged(image):
        out = vexfs("dfxml", *args, image, check=True)
    assert out.stderr == "" or "warning" in out.stderr
    return ET.fromstring(out.stdout_bytes)


def objects(root: ET.Element) -> dict[str, ET.Element]:
    return {fo.findtext(D + "filename"): fo for fo in root.iter(D + "fileobject")}


def check_order(element: ET.Element, order: list[str]) -> None:
    """DFXML's elements in fiwalk's order, then only elements of our namespace."""
    tags = [child.tag for child in element if child.tag != D + "fileobject"]
    ours = [t for t in tags if t.startswith(X)]
    theirs = [t[len(D):] for t in tags if t.startswith(D)]
    assert len(ours) + len(theirs) == len(tags), tags
    assert tags[len(theirs):] == ours, "our elements come after DFXML's"
    positions = [order.index(t) for t in theirs]
    assert positions == sorted(positions), theirs


def test_kernel_tree_inventory(tmp_path):
    image = kernel_image("tree", tmp_path)
    root = dfxml(image)
    assert root.tag == D + "dfxml" and root.get("xmloutputversion") == "1.0"
    assert [c.tag for c in root] == [D + "metadata", D + "creator", D + "source", D + "volume"]
    volume = root.find(D + "volume")
    check_order(volume, VOLUME_ORDER)
    tags = [child.tag for child in volume]
    assert tags.index(D + "fileobject") > tags.index(X + "uuid"), "the facts come before the fileobjects"
    assert volume.findtext(D + "block_size") == "4096" and volume.findtext(D + "block_count") == "4096"
    assert volume.findtext(X + "layout") == "kernel"
    found = objects(root)
    for fo in found.values():
        check_order(fo, FILEOBJECT_ORDER)
    md5 = kernel_md5("tree")
    for path, digest in md5.items():
        fo = found[path.lstrip("/")]
        assert fo.find(D + "hashdigest[@type='md5']").text == digest
        assert fo.findtext(D + "alloc") == "1"
        runs = fo.find(D + "byte_runs")
        total = sum(int(r.get("len")) for r in runs) if runs is not None else 0
        assert total == int(fo.findtext(D + "filesize"))
    # the three directories the kernel's mkdir left without a block pointer
    for name in ("docs", "docs/deep", "vectors"):
        assert found[name].findtext(X + "recovered_block") is not None
    assert found["docs/deep/one.txt"].findtext(X + "recovered") == "1"
    assert found["one.bin"].find(X + "recovered") is None
    assert len(found) == 16


def test_iterparse_and_no_hash(tmp_path):
    image = kernel_image("overwrite", tmp_path)
    with Unchanged(image):
        out = vexfs("dfxml", "--no-hash", image, check=True)
    names = [el.findtext(D + "filename") for _, el in ET.iterparse(io.BytesIO(out.stdout_bytes))
             if el.tag == D + "fileobject"]
    assert len(names) == 3
    assert b"hashdigest" not in out.stdout_bytes
    assert b"byte_run " in out.stdout_bytes


def test_deleted_names_and_sha1(tmp_path):
    image = build(tmp_path)
    ino = delete_like_kernel(image, "/gone.bin")
    found = objects(dfxml(image))
    gone = found["gone.bin"]
    assert gone.findtext(D + "alloc") == "0" and gone.findtext(D + "inode") == str(ino)
    data = bytes(range(256)) * 36
    assert gone.find(D + "hashdigest[@type='sha1']").text == hashlib.sha1(data).hexdigest()
    fo = found["docs/b.txt"]
    assert fo.find(D + "hashdigest[@type='sha1']").text == hashlib.sha1(b"bravo" * 1000).hexdigest()
    assert int(fo.findtext(D + "mode")) == volume_mode(image, "/docs/b.txt")
    assert found["link"].findtext(D + "name_type") == "l"
    assert found["docs/sub"].findtext(D + "meta_type") == "2"
    run = fo.find(D + "byte_runs")[0]
    assert run.get("img_offset") == run.get("fs_offset") and run.get("file_offset") == "0"
    with Volume.open(str(image)) as volume:
        inode = volume.resolve("/docs/b.txt")
        assert int(run.get("fs_offset")) == inode.i_block[0] * C.BLOCK_SIZE


def test_vector_file_shape(fresh_image, tmp_path):
    img = fresh_image("16M")
    np.save(tmp_path / "v.npy", np.arange(40, dtype=np.float32).reshape(5, 8))
    vexfs("vectors", "add", img, "/e.vec", "--from", tmp_path / "v.npy", check=True)
    vector = objects(dfxml(img))["e.vec"].find(X + "vector")
    assert vector is not None
    assert (vector.findtext(X + "dimensions"), vector.findtext(X + "element_type"),
            vector.findtext(X + "count")) == ("8", "float32", "5")


def test_bad_image_one_line(tmp_path):
    bad = tmp_path / "bad.img"
    bad.write_bytes(bytes(1 << 16))
    out = vexfs("dfxml", bad)
    assert out.returncode == 1 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["tree.mkfs-before"])
def test_fresh_kernel_image_has_no_fileobjects(tmp_path, name):
    image = kernel_image(name.replace(".img", ""), tmp_path)
    assert objects(dfxml(image)) == {}


def volume_mode(image, path: str) -> int:
    with Volume.open(str(image)) as volume:
        return volume.resolve(path).i_mode & 0o7777
