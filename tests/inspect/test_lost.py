"""`vexfs blkls` (unallocated blocks, -s slack, --map), `vexfs ils` (kernel-deleted,
unlinked and orphaned inodes; -m body file) and `vexfs extract --unallocated`, on images
built here and on the shared kernel images (the truncated files of `overwrite` keep their
old blocks past EOF)."""

from __future__ import annotations

import json

from tests.conftest import kernel_image
from tests.inspect.images import TREE, Unchanged, build, delete_like_kernel, vexfs
from vexfs_tools.format import constants as C
from vexfs_tools.inspect.timeline import parse_line
from vexfs_tools.volume import Volume, directory


def map_rows(out: str) -> list[tuple[int, int, int, int, str]]:
    lines = out.splitlines()
    assert lines[0] == "Output\tImage\tLength\tInode\tWhat"
    rows = []
    for line in lines[1:]:
        a, b, c, d, what = line.split("\t")
        rows.append((int(a), int(b), int(c), int(d), what))
    return rows


def test_blkls_unallocated_bytes_match_the_map(tmp_path):
    image = build(tmp_path)
    with Unchanged(image):
        data = vexfs("blkls", image, check=True).stdout_bytes
        rows = map_rows(vexfs("blkls", "--map", image, check=True).stdout)
    raw = image.read_bytes()
    assert sum(r[2] for r in rows) == len(data)
    for out_at, img_at, length, ino, what in rows:
        assert (ino, what) == (0, "unallocated")
        assert data[out_at:out_at + length] == raw[img_at:img_at + length]
    with Volume.open(str(image)) as volume:
        assert len(data) == volume.count_free_blocks() * C.BLOCK_SIZE


def test_blkls_slack_of_kernel_truncated_files(tmp_path):
    image = kernel_image("overwrite", tmp_path)
    with Unchanged(image):
        data = vexfs("blkls", "-s", image, check=True).stdout_bytes
        rows = map_rows(vexfs("blkls", "-s", "--map", image, check=True).stdout)
    raw = image.read_bytes()
    assert sum(r[2] for r in rows) == len(data)
    for out_at, img_at, length, _, _ in rows:
        assert data[out_at:out_at + length] == raw[img_at:img_at + length]
    past = {ino for _, _, _, ino, what in rows if what == "past EOF"}
    assert len(past) == 2  # the two files truncated after being written larger
    assert {what for *_, what in rows} <= {"past EOF", "file slack", "directory slack"}


def test_blkls_directory_slack_holds_deleted_names(tmp_path):
    image = build(tmp_path)
    delete_like_kernel(image, "/gone.bin")
    rows = map_rows(vexfs("blkls", "-s", "--map", image, check=True).stdout)
    data = vexfs("blkls", "-s", image, check=True).stdout_bytes
    slack = b"".join(data[a:a + n] for a, _, n, ino, what in rows if what == "directory slack" and ino == C.ROOT_INO)
    assert b"gone.bin" in slack


def lost_image(tmp_path):
    """gone.bin deleted as the kernel does; keep.bin's entry removed and its links set to 0
    (unlinked); an inode in use that nothing ever named (orphan)."""
    image = build(tmp_path)
    gone = delete_like_kernel(image, "/gone.bin")
    unlinked = delete_like_kernel(image, "/keep.bin")
    with Volume.open(str(image), writable=True) as volume:
        inode = volume.read_inode(unlinked)
        inode.fields.i_links_count = 0
        volume.write_inode(unlinked, inode.fields)
        orphan = volume.allocate_inode()
        fields = volume.new_inode_fields(0o100600, times=(5, 6, 7))
        volume.write_contents(fields, b"orphan data\n")
        volume.write_inode(orphan, fields)
    return image, gone, unlinked, orphan


def test_ils(tmp_path):
    image, gone, unlinked, orphan = lost_image(tmp_path)
    with Unchanged(image):
        listed = {item["inode"]: item for item in json.loads(vexfs("ils", "--json", image, check=True).stdout)}
        plain = vexfs("ils", image, check=True).stdout.splitlines()
        body = vexfs("ils", "-m", image, check=True).stdout.splitlines()
    assert {ino: item["status"] for ino, item in listed.items()} == \
        {gone: "deleted", unlinked: "unlinked", orphan: "orphan"}
    assert plain[0] == "class|host|device|start_time" and plain[2].startswith("st_ino|st_alloc|")
    rows = {int(line.split("|")[0]): line.split("|") for line in plain[3:]}
    assert rows[orphan][1] == "a" and rows[orphan][8] == "100600" and rows[orphan][10] == "12"
    records = {r["inode"]: r for r in map(parse_line, body)}
    assert set(records) == {gone, unlinked, orphan}
    assert records[orphan]["name"] == f"<{image.name}-alive-{orphan}>"
    assert records[orphan]["mode"] == "r/rrw-------" and records[orphan]["mtime"] == 7


def test_ils_kernel_images_have_none(tmp_path):
    for name in ("tree", "overwrite"):
        out = vexfs("ils", "--json", kernel_image(name, tmp_path), check=True)
        assert json.loads(out.stdout) == []


def test_ils_freed_slot(tmp_path):
    image = build(tmp_path)
    with Volume.open(str(image), writable=True) as volume:
        ino = volume.resolve("/gone.bin").ino
        parent = volume.read_inode(C.ROOT_INO)
        for _, block in volume.dir_blocks(parent):
            data = bytearray(volume.read_block(block))
            if directory.remove_entry(data, b"gone.bin", chain_end=volume.chain_end) is not None:
                volume.write_dir_block(block, data)
        volume.free_inode(ino)
    listed = json.loads(vexfs("ils", "--json", image, check=True).stdout)
    assert [(item["inode"], item["status"]) for item in listed] == [(ino, "freed")]
    assert f"{ino}|f|" in vexfs("ils", image, check=True).stdout


def test_extract_unallocated(tmp_path):
    image, gone, unlinked, orphan = lost_image(tmp_path)
    out = tmp_path / "out"
    with Unchanged(image):
        result = vexfs("extract", "--unallocated", "--json", image, "/", out)
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    folder = out / ".unallocated"
    assert report["unallocated_folder"].endswith(".unallocated")
    assert (folder / f"inode-{gone}").read_bytes() == TREE["gone.bin"]
    assert (folder / f"inode-{unlinked}").read_bytes() == TREE["keep.bin"]
    assert (folder / f"inode-{orphan}").read_bytes() == b"orphan data\n"
    assert (folder / f"inode-{orphan}").stat().st_mtime == 7
    assert not (out / "gone.bin").exists() and (out / "docs" / "a.txt").read_bytes() == TREE["docs/a.txt"]
