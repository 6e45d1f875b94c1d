"""fsck.vexfs -n and `vexfs diff` on file systems inside whole disk images: -o SECTORS,
--offset BYTES, --partition N (diff: one set per image), against the same commands on the
file system images themselves; repairs through a window are refused, nothing written."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.cli.test_partitions import DOS, disk
from tests.conftest import run
from tests.inspect.images import Unchanged, build, delete_like_kernel, orphan_like_kernel_mkdir, vexfs
from vexfs_tools.inspect.dfxml import DFXML_NS

D = "{%s}" % DFXML_NS
START = 2048  # DOS's partition 1, in sectors


@pytest.fixture
def damaged(tmp_path):
    """A file system fsck -n has something to say about, and a DOS disk holding it as partition 1."""
    fs = build(tmp_path, size="16M")
    orphan_like_kernel_mkdir(fs, "/docs/sub")
    return fs, disk(tmp_path, DOS, 60, {START: fs})


def fsck(*args):
    return run("fsck.vexfs", *map(str, args))


def same_report(inside, alone, disk_path, fs_path) -> None:
    assert inside.returncode == alone.returncode
    assert inside.stdout.replace(str(disk_path), "X") == alone.stdout.replace(str(fs_path), "X")


def test_fsck_n_in_a_partition(damaged):
    fs, whole = damaged
    alone = fsck("-n", fs)
    assert alone.returncode == 4, alone.stdout
    with Unchanged(whole):
        for where in (["--partition", "1"], ["-o", str(START)], ["--offset", str(START * 512)]):
            same_report(fsck("-n", *where, whole), alone, whole, fs)
        as_json = json.loads(fsck("-n", "--json", "--partition", "1", whole).stdout)
    assert as_json["findings"] == json.loads(fsck("-n", "--json", fs).stdout)["findings"]


def test_fsck_repair_in_a_window_refused(damaged):
    _, whole = damaged
    with Unchanged(whole):
        for mode in ("-y", "-p"):
            out = fsck(mode, "--partition", "1", whole)
            assert out.returncode == 16 and out.stdout == ""
            assert out.stderr.startswith("fsck.vexfs: a file system inside a disk image") and "-n only" in out.stderr
            assert len(out.stderr.splitlines()) == 1
        out = fsck("-n", "--partition", "9", whole)
        assert out.returncode == 16 and "no partition 9" in out.stderr and "Traceback" not in out.stderr
        out = fsck("-n", "-o", "1", "--partition", "1", whole)
        assert out.returncode == 16 and "exclude each other" in out.stderr


def test_fsck_n_nothing_there(tmp_path, damaged):
    _, whole = damaged
    out = fsck("-n", "-o", "1", whole)
    assert out.returncode == 8 and out.stderr.startswith("fsck.vexfs: ") and "Traceback" not in out.stderr


def test_diff_sides_in_partitions(tmp_path):
    before = build(tmp_path, size="16M", name="before.img")
    after = build(tmp_path, size="16M", name="after.img")
    delete_like_kernel(after, "/gone.bin")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    disk_a = disk(tmp_path / "a", DOS, 60, {START: before})
    disk_b = disk(tmp_path / "b", DOS, 60, {START: after})
    alone = vexfs("diff", "--json", before, after)
    assert alone.returncode == 1
    with Unchanged(disk_a), Unchanged(disk_b):
        both = vexfs("diff", "--json", "--partition-a", "1", "--sector-offset-b", START, disk_a, disk_b)
        mixed = vexfs("diff", "--json", "--offset-a", START * 512, disk_a, after)
        same = vexfs("diff", "--partition-a", "1", "--partition-b", "1", disk_a, disk_a)
        xml = vexfs("diff", "--dfxml", "--partition-a", "1", "--partition-b", "1", disk_a, disk_b)
    assert both.returncode == mixed.returncode == 1
    assert json.loads(both.stdout) == json.loads(mixed.stdout) == json.loads(alone.stdout)
    assert same.returncode == 0
    plain = ET.fromstring(vexfs("diff", "--dfxml", before, after).stdout_bytes)
    root = ET.fromstring(xml.stdout_bytes)
    assert root.find(D + "volume").get("offset") == str(START * 512)
    runs = [(r.get("fs_offset"), int(r.get("img_offset"))) for r in root.iter(D + "byte_run")]
    plain_runs = [(r.get("fs_offset"), int(r.get("img_offset"))) for r in plain.iter(D + "byte_run")]
    assert runs and [(f, i - START * 512) for f, i in runs] == plain_runs


def test_diff_bad_side_option(tmp_path):
    fs = build(tmp_path, size="16M")
    out = vexfs("diff", "--partition-b", "1", fs, fs)
    assert out.returncode == 2 and "no partition table" in out.stderr and len(out.stderr.splitlines()) == 1
