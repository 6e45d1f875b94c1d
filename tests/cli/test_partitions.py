"""Whole disks: `vexfs partitions` (mmls-like) and -o SECTORS / --offset BYTES / --partition N
on the read-only commands, on MBR (with a logical partition) and GPT disk images made with
util-linux sfdisk, VexFS file systems put inside with dd as an examiner's disk would hold them."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import run
from tests.inspect.images import TREE, Unchanged, build, vexfs
from vexfs_tools.device import Device
from vexfs_tools.errors import TruncatedImageError
from vexfs_tools.inspect.dfxml import DFXML_NS
from vexfs_tools.window import OffsetDevice

D = "{%s}" % DFXML_NS
MIB = 1 << 20
DOS = "label: dos\nstart=2048, size=16M, type=83\nstart=36864, type=5\nstart=38912, size=16M, type=83\n"
GPT = ("label: gpt\nstart=2048, size=4M, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=boot\n"
       "start=10240, size=16M, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=vexfs\n")


def sfdisk() -> str:
    found = shutil.which("sfdisk") or shutil.which("/usr/sbin/sfdisk") or shutil.which("/sbin/sfdisk")
    if found is None:
        pytest.skip("util-linux sfdisk is not installed (apt-get install fdisk)")
    return found


def disk(tmp_path, script: str, size_mb: int, placements: dict[int, object]):
    """A disk image partitioned by `script`; each {start sector: fs image} copied in with dd."""
    image = tmp_path / "disk.img"
    with open(image, "wb") as f:
        f.truncate(size_mb * MIB)
    subprocess.run([sfdisk(), "-q", str(image)], input=script.encode(), check=True, capture_output=True)
    for start, fs in placements.items():
        subprocess.run(["dd", f"if={fs}", f"of={image}", "bs=512", f"seek={start}", "conv=notrunc", "status=none"],
                       check=True)
    return image


@pytest.fixture
def dos_disk(tmp_path):
    tree = build(tmp_path, size="16M")
    kernel = tmp_path / "k.img"
    run("mkfs.vexfs", "-q", "--compat", "kernel", "-s", "16M", kernel, check=True)
    return disk(tmp_path, DOS, 60, {2048: tree, 38912: kernel})


@pytest.fixture
def gpt_disk(tmp_path):
    tree = build(tmp_path, size="16M")
    return disk(tmp_path, GPT, 40, {10240: tree})


def test_partitions_dos(dos_disk):
    with Unchanged(dos_disk):
        out = vexfs("partitions", dos_disk, check=True).stdout.splitlines()
        table = json.loads(vexfs("partitions", "--json", dos_disk, check=True).stdout)
    assert out[0] == "DOS Partition Table"
    assert [(p["number"], p["start"], p["sectors"], p["vexfs"]) for p in table["partitions"]] == \
        [(1, 2048, 32768, True), (2, 36864, 86016, False), (5, 38912, 32768, True)]
    assert out[4].startswith("000:  1      0000002048   0000034815   0000032768   Linux") and out[4].endswith("[VexFS]")
    assert "Extended" in out[5] and "[VexFS]" not in out[5]


def test_partitions_gpt(gpt_disk):
    table = json.loads(vexfs("partitions", "--json", gpt_disk, check=True).stdout)
    assert table["label"] == "gpt"
    assert [(p["number"], p["start"], p["name"], p["type"], p["vexfs"]) for p in table["partitions"]] == \
        [(1, 2048, "boot", "Linux filesystem", False), (2, 10240, "vexfs", "Linux filesystem", True)]
    assert "GUID Partition Table" in vexfs("partitions", gpt_disk, check=True).stdout


def test_views_inside_partitions(dos_disk):
    with Unchanged(dos_disk):
        by_number = vexfs("ls", "--partition", "1", dos_disk, "/docs", check=True).stdout
        by_sector = vexfs("ls", "-o", "2048", dos_disk, "/docs", check=True).stdout
        by_byte = vexfs("ls", "--offset", str(2048 * 512), dos_disk, "/docs", check=True).stdout
        assert by_number == by_sector == by_byte and "a.txt" in by_number
        cat = vexfs("cat", "--partition", "1", dos_disk, "/docs/b.txt", check=True).stdout_bytes
        assert cat == TREE["docs/b.txt"]
        assert "kernel" in run("dump.vexfs", "--partition", "5", dos_disk, check=True).stdout.lower()
        logical = vexfs("ls", "--partition", "5", dos_disk, "/", check=True)
        assert logical.stdout.split() == [".", ".."]
        first = vexfs("blkcat", "-o", "2048", dos_disk, "0", check=True).stdout_bytes
    assert first == dos_disk.read_bytes()[2048 * 512:2048 * 512 + 4096]


def test_dfxml_img_offset(gpt_disk):
    root = ET.fromstring(vexfs("dfxml", "--partition", "2", gpt_disk, check=True).stdout_bytes)
    volume = root.find(D + "volume")
    assert volume.get("offset") == str(10240 * 512)
    fo = [f for f in volume.iter(D + "fileobject") if f.findtext(D + "filename") == "docs/b.txt"][0]
    run_ = fo.find(D + "byte_runs")[0]
    start = int(run_.get("img_offset"))
    assert start == int(run_.get("fs_offset")) + 10240 * 512
    assert gpt_disk.read_bytes()[start:start + 5000] == TREE["docs/b.txt"][:5000]
    assert fo.find(D + "hashdigest[@type='md5']").text == hashlib.md5(TREE["docs/b.txt"]).hexdigest()
    rows = vexfs("blkls", "--map", "--partition", "2", gpt_disk, check=True).stdout.splitlines()[1:]
    assert int(rows[0].split("\t")[1]) > 10240 * 512


def test_offset_errors(dos_disk, tmp_path):
    out = vexfs("ls", "--partition", "9", dos_disk, "/")
    assert out.returncode == 1 and "no partition 9 (partitions: 1, 2, 5)" in out.stderr and out.stdout == ""
    out = vexfs("ls", "--partition", "1", "-o", "2048", dos_disk, "/")
    assert out.returncode == 1 and "exclude each other" in out.stderr
    out = vexfs("ls", "-o", "1", dos_disk, "/")
    assert out.returncode == 1 and "not a VexFS file system" in out.stderr
    out = vexfs("partitions", build(tmp_path, name="plain.img"))
    assert out.returncode == 1 and "no partition table" in out.stderr and "holds a VexFS" in out.stderr
    out = vexfs("ls", "--offset", str(1 << 40), dos_disk, "/")
    assert out.returncode == 1 and "outside the device" in out.stderr


def test_window_reads_nothing_outside(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(bytes(range(256)) * 64)
    window = OffsetDevice(Device(str(path)), 1000, 2000)
    try:
        assert window.size == 2000 and window.read(0, 4) == bytes([1000 % 256, 1001 % 256, 1002 % 256, 1003 % 256])
        with pytest.raises(TruncatedImageError):
            window.read(1999, 2)
        assert list(window.data_ranges(0, 5000)) == [(0, 2000)]
    finally:
        window.close()
