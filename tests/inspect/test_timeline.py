"""`vexfs timeline`: The Sleuth Kit's body file, exact, parsed back field by field, and fed
to TSK's own `mactime -b` (Debian package sleuthkit), whose timeline must list every name."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess

import pytest

from vexfs_tools.format import constants as C
from vexfs_tools.inspect.timeline import parse_line
from vexfs_tools.volume import Volume

from .images import (
    TREE,
    Unchanged,
    build,
    cli,
    delete_like_kernel,
    orphan_like_kernel_mkdir,
)

KERNEL_BODY = """\
0|/docs|2|d/drwxr-xr-x|0|0|4096|1600000000|1600000000|1700000000|0
0|/keep.bin|4|r/rrw-r--r--|0|0|100|1600000007|1600000007|1700000000|0
0|/link -> docs/a.txt|5|l/lrwxrwxrwx|0|0|10|1600000008|1600000008|1700000000|0
0|/gone.bin (deleted)|3|r/rrw-r--r--|0|0|9216|1600000006|1600000006|1700000000|0
0|/docs/a.txt|6|r/rrw-r--r--|0|0|6|1600000001|1600000001|1700000000|0
0|/docs/b.txt|7|r/rrw-r--r--|0|0|5000|1600000002|1600000002|1700000000|0
0|/docs/sub|9|d/drwxr-xr-x|0|0|4096|1600000004|1600000004|1700000000|0
0|/docs/old.txt (deleted)|8|r/rrw-r--r--|0|0|9|1600000003|1600000003|1700000000|0
0|/docs/sub/deep.txt|10|r/rrw-r--r--|0|0|15|1600000005|1600000005|1700000000|0
0|/$OrphanFiles/OrphanFile-11 (deleted)|11|r/rrw-------|1000|1000|0|1650000000|1650000000|1650000000|0
"""

ODD_TREE = {"pipe|name": b"p", "per%41cent": b"q", "new\nline": b"n", "ctl\x01": b"c", "dir|x": None,
            "dir|x/in%side": b"i"}


@pytest.fixture(scope="module")
def kernel_img(tmp_path_factory):
    image = build(tmp_path_factory.mktemp("kern"), "--compat", "kernel")
    delete_like_kernel(image, "/docs/old.txt")
    delete_like_kernel(image, "/gone.bin")
    orphan_like_kernel_mkdir(image, "/docs")
    with Volume.open(str(image), writable=True) as volume:  # a failed create leaks an inode: no name
        ino = volume.allocate_inode()
        fields = volume.new_inode_fields(0o100600, uid=1000, gid=1000, times=(1650000000,) * 3)
        volume.write_inode(ino, fields)
        assert ino == 11
    return image


def mactime(body: str, tmp_path) -> list[dict]:
    """mactime -b BODY -d (comma separated), in UTC, from 1970 on; its rows as dicts."""
    if shutil.which("mactime") is None:
        pytest.skip("mactime is not installed (Debian package sleuthkit: apt-get install -y sleuthkit)")
    path = tmp_path / "body.txt"
    path.write_text(body)
    proc = subprocess.run(["mactime", "-b", str(path), "-d", "-y", "-z", "UTC", "1970-01-02"], capture_output=True,
                          text=True, env={**os.environ, "TZ": "UTC"}, check=False)
    assert proc.returncode == 0, proc.stderr
    return list(csv.DictReader(io.StringIO(proc.stdout)))


def test_body_file_exact(kernel_img):
    with Unchanged(kernel_img):
        result = cli("timeline", kernel_img)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == KERNEL_BODY


def test_body_file_parsed_back_field_by_field(kernel_img):
    body = cli("timeline", kernel_img).stdout
    records = [parse_line(line) for line in body.splitlines()]
    with Volume.open(str(kernel_img)) as volume:
        for record in records:
            assert record["md5"] == "0" and record["crtime"] == 0
            inode = volume.read_inode(record["inode"])
            assert (record["uid"], record["gid"], record["size"]) == (inode.i_uid, inode.i_gid, inode.i_size)
            assert (record["atime"], record["mtime"], record["ctime"]) == (inode.i_atime, inode.i_mtime, inode.i_ctime)
            name_type, _, meta = record["mode"].partition("/")
            assert meta[0] == {C.S_IFREG: "r", C.S_IFDIR: "d", C.S_IFLNK: "l"}[inode.file_format]
            assert name_type == meta[0]
            assert meta[1:] == "".join(c if inode.i_mode & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx"))
            assert record["name"].endswith(" (deleted)") == (record["inode"] in (3, 8, 11))
    names = {r["name"].removesuffix(" (deleted)").split(" -> ")[0] for r in records}
    expected = {"/" + name for name in TREE} | {"/$OrphanFiles/OrphanFile-11"}
    assert names == expected


def test_json_timeline_matches_the_body_file(kernel_img):
    rows = json.loads(cli("timeline", "--json", kernel_img).stdout)
    body = [parse_line(line) for line in cli("timeline", kernel_img).stdout.splitlines()]
    assert [{k: v for k, v in row.items() if k != "deleted"} for row in rows] == body
    assert [row["deleted"] for row in rows] == [r["name"].endswith("(deleted)") for r in body]


def test_mount_point_prefix_and_no_orphans(kernel_img):
    body = cli("timeline", "-m", "/mnt/evidence/", "--no-orphans", kernel_img).stdout
    assert body.splitlines()[0] == "0|/mnt/evidence/docs|2|d/drwxr-xr-x|0|0|4096|1600000000|1600000000|1700000000|0"
    assert "OrphanFile" not in body and len(body.splitlines()) == 9


def test_mactime_lists_every_name(kernel_img, tmp_path):
    body = cli("timeline", kernel_img).stdout
    rows = mactime(body, tmp_path)
    listed = {row["File Name"] for row in rows}
    wanted = {parse_line(line)["name"] for line in body.splitlines()}
    assert wanted <= listed
    modified = {row["File Name"]: row["Date"] for row in rows if row["Type"].startswith("m")}
    assert modified["/docs/a.txt"] == "2020-09-13T12:26:41Z"
    assert modified["/docs/old.txt (deleted)"] == "2020-09-13T12:26:43Z"
    assert modified["/$OrphanFiles/OrphanFile-11 (deleted)"] == "2022-04-15T05:20:00Z"
    assert {row["Meta"] for row in rows if row["File Name"] == "/gone.bin (deleted)"} == {"3"}


def test_odd_names_stay_one_record_and_mactime_decodes_them(tmp_path):
    image = build(tmp_path, tree=ODD_TREE)
    delete_like_kernel(image, "/pipe|name")
    with Unchanged(image):
        body = cli("timeline", image).stdout
    lines = body.splitlines()
    assert all(line.count("|") == 10 for line in lines)
    assert "0|/dir%7Cx/in%25side|" in body and "0|/new^line|" in body and "0|/ctl^|" in body
    assert "0|/pipe%7Cname (deleted)|" in body and "0|/per%2541cent|" in body
    names = {parse_line(line)["name"] for line in lines}
    assert {"/pipe|name (deleted)", "/per%41cent", "/dir|x/in%side", "/new^line", "/lost+found"} <= names
    listed = {row["File Name"] for row in mactime(body, tmp_path)}
    assert names <= listed
