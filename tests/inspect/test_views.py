"""The forensic views on images with known content, exact output: `vexfs ls -d/-R`,
`dump.vexfs --blocks/--inodes` and the superblock comparison, `icheck`, `ncheck`, `blkcat`.

Two images are made from the same tree (tests/inspect/images.py): one in the kernel layout,
where /docs then loses its block pointer as the kernel's mkdir leaves it, and one in the
extended layout. In both, /docs/old.txt and /gone.bin are deleted the kernel's way (the
previous entry's rec_len swallows the entry; inode and bitmap untouched). Every command
is run read-only and the image bytes are checked unchanged.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import run

from .images import (
    Unchanged,
    build,
    cli,
    delete_like_kernel,
    orphan_like_kernel_mkdir,
)


@pytest.fixture(scope="module")
def kernel_img(tmp_path_factory):
    image = build(tmp_path_factory.mktemp("kern"), "--compat", "kernel")
    assert delete_like_kernel(image, "/docs/old.txt") == 8
    assert delete_like_kernel(image, "/gone.bin") == 3
    assert orphan_like_kernel_mkdir(image, "/docs") == (2, 67)
    return image


@pytest.fixture(scope="module")
def extended_img(tmp_path_factory):
    image = build(tmp_path_factory.mktemp("ext"))
    assert delete_like_kernel(image, "/docs/old.txt") == 18
    assert delete_like_kernel(image, "/gone.bin") == 13
    return image


def lines(text: str) -> list[str]:
    return text.rstrip("\n").split("\n")


# --- vexfs ls -d / -R ---------------------------------------------------------------------

KERNEL_LS_ROOT = """\
       1  drwxr-xr-x    3     0     0         4096  Sun Sep 13 12:26:39 2020 UTC  .
       1  drwxr-xr-x    3     0     0         4096  Sun Sep 13 12:26:39 2020 UTC  ..
       2  drwxr-xr-x    3     0     0         4096  Sun Sep 13 12:26:40 2020 UTC  docs
       4  -rw-r--r--    1     0     0          100  Sun Sep 13 12:26:47 2020 UTC  keep.bin
       5  lrwxrwxrwx    1     0     0           10  Sun Sep 13 12:26:48 2020 UTC  link
       3  -rw-r--r--    1     0     0         9216  Sun Sep 13 12:26:46 2020 UTC  gone.bin  (deleted, intact)
"""

KERNEL_LS_R = """\
/:
       2  drwxr-xr-x    3     0     0         4096  Sun Sep 13 12:26:40 2020 UTC  docs
       4  -rw-r--r--    1     0     0          100  Sun Sep 13 12:26:47 2020 UTC  keep.bin
       5  lrwxrwxrwx    1     0     0           10  Sun Sep 13 12:26:48 2020 UTC  link
       3  -rw-r--r--    1     0     0         9216  Sun Sep 13 12:26:46 2020 UTC  gone.bin  (deleted, intact)

/docs:  [recovered from orphaned block 67]
       6  -rw-r--r--    1     0     0            6  Sun Sep 13 12:26:41 2020 UTC  a.txt
       7  -rw-r--r--    1     0     0         5000  Sun Sep 13 12:26:42 2020 UTC  b.txt
       9  drwxr-xr-x    2     0     0         4096  Sun Sep 13 12:26:44 2020 UTC  sub
       8  -rw-r--r--    1     0     0            9  Sun Sep 13 12:26:43 2020 UTC  old.txt  (deleted, intact)

/docs/sub:
      10  -rw-r--r--    1     0     0           15  Sun Sep 13 12:26:45 2020 UTC  deep.txt
"""

EXTENDED_LS_R = """\
/:
      12  drwxr-xr-x    3     0     0         4096  Sun Sep 13 12:26:40 2020 UTC  docs
      14  -rw-r--r--    1     0     0          100  Sun Sep 13 12:26:47 2020 UTC  keep.bin
      15  lrwxrwxrwx    1     0     0           10  Sun Sep 13 12:26:48 2020 UTC  link
      11  drwx------    2     0     0         4096  Tue Nov 14 22:13:20 2023 UTC  lost+found
      13  -rw-r--r--    1     0     0         9216  Sun Sep 13 12:26:46 2020 UTC  gone.bin  (deleted, intact)

/docs:
      16  -rw-r--r--    1     0     0            6  Sun Sep 13 12:26:41 2020 UTC  a.txt
      17  -rw-r--r--    1     0     0         5000  Sun Sep 13 12:26:42 2020 UTC  b.txt
      19  drwxr-xr-x    2     0     0         4096  Sun Sep 13 12:26:44 2020 UTC  sub
      18  -rw-r--r--    1     0     0            9  Sun Sep 13 12:26:43 2020 UTC  old.txt  (deleted, intact)

/docs/sub:
      20  -rw-r--r--    1     0     0           15  Sun Sep 13 12:26:45 2020 UTC  deep.txt

/lost+found:
"""


def test_ls_long_deleted_kernel(kernel_img):
    with Unchanged(kernel_img):
        result = cli("ls", "-l", "-d", kernel_img, "/")
    assert result.stdout == KERNEL_LS_ROOT
    assert result.stderr == ""


def test_ls_short_deleted_in_a_recovered_directory(kernel_img):
    with Unchanged(kernel_img):
        result = cli("ls", "-d", kernel_img, "/docs")
        plain = cli("ls", kernel_img, "/docs")
    assert result.stdout == ".\n..\na.txt\nb.txt\nsub\nold.txt  (deleted: inode 8, intact)\n"
    assert plain.stdout == ".\n..\na.txt\nb.txt\nsub\n"  # without -d, no deleted entry
    assert result.stderr.endswith(": /docs: read from orphaned block 67 (recovered: the directory's inode "
                                  "maps no block)\n")


def test_ls_recursive_kernel(kernel_img):
    with Unchanged(kernel_img):
        result = cli("ls", "-lRd", kernel_img, "/")
        without = cli("ls", "-R", kernel_img, "/")
        below = cli("ls", "-R", kernel_img, "/docs/sub")
    assert result.stdout == KERNEL_LS_R
    assert without.stdout == ("/:\ndocs\nkeep.bin\nlink\n\n/docs:  [recovered from orphaned block 67]\na.txt\n"
                              "b.txt\nsub\n\n/docs/sub:\ndeep.txt\n")
    assert below.stdout == "/docs/sub:\ndeep.txt\n"


def test_ls_recursive_extended(extended_img):
    with Unchanged(extended_img):
        result = cli("ls", "-l", "-R", "-d", extended_img, "/")
    assert result.stdout == EXTENDED_LS_R


def test_ls_json_deleted_and_recovered(kernel_img):
    with Unchanged(kernel_img):
        entries = json.loads(cli("ls", "--json", "-d", kernel_img, "/docs").stdout)
        tree = json.loads(cli("ls", "--json", "-R", "-d", kernel_img, "/").stdout)
    assert [e["name"] for e in entries] == [".", "..", "a.txt", "b.txt", "sub", "old.txt"]
    assert all(e["recovered_block"] == 67 for e in entries)
    old = entries[-1]
    assert (old["inode"], old["deleted"], old["status"], old["holds_data"], old["size"]) == (8, True, "intact", True, 9)
    assert not any(e.get("deleted") for e in entries[:-1])
    assert [(d["path"], d["inode"], d["recovered_block"]) for d in tree] == [
        ("/", 1, None), ("/docs", 2, 67), ("/docs/sub", 9, None)]
    assert [e["name"] for e in tree[0]["entries"]] == ["docs", "keep.bin", "link", "gone.bin"]
    assert tree[0]["entries"][-1]["deleted"] is True


# --- dump.vexfs --blocks, --inodes, superblocks ----------------------------------------------

KERNEL_BLOCKS = """\
Block map (2048 blocks of the device):
                      0  superblock
                      1  block bitmap
                   2-65  inode table
                     66  directory               inode 1
                     67  directory (recovered)   inode 2
                  68-70  file data               inode 3
                     71  file data               inode 4
                     72  symlink                 inode 5
                     73  file data               inode 6
                  74-75  file data               inode 7
                     76  file data               inode 8
                     77  directory               inode 9
                     78  file data               inode 10
                79-2047  free
"""

KERNEL_INODES = """\
Inodes (every slot in use, unlinked or freed):
       1  in use    drwxr-xr-x     3     0     0         4096  a:2020-09-13 12:26:39  c:2023-11-14 22:13:20  m:2020-09-13 12:26:39  blocks: 66
       2  in use    drwxr-xr-x     3     0     0         4096  a:2020-09-13 12:26:40  c:2023-11-14 22:13:20  m:2020-09-13 12:26:40  blocks: - (recovered: orphaned block 67)
       3  unlinked  -rw-r--r--     1     0     0         9216  a:2020-09-13 12:26:46  c:2023-11-14 22:13:20  m:2020-09-13 12:26:46  blocks: 68-70
       4  in use    -rw-r--r--     1     0     0          100  a:2020-09-13 12:26:47  c:2023-11-14 22:13:20  m:2020-09-13 12:26:47  blocks: 71
       5  in use    lrwxrwxrwx     1     0     0           10  a:2020-09-13 12:26:48  c:2023-11-14 22:13:20  m:2020-09-13 12:26:48  blocks: 72
       6  in use    -rw-r--r--     1     0     0            6  a:2020-09-13 12:26:41  c:2023-11-14 22:13:20  m:2020-09-13 12:26:41  blocks: 73
       7  in use    -rw-r--r--     1     0     0         5000  a:2020-09-13 12:26:42  c:2023-11-14 22:13:20  m:2020-09-13 12:26:42  blocks: 74-75
       8  unlinked  -rw-r--r--     1     0     0            9  a:2020-09-13 12:26:43  c:2023-11-14 22:13:20  m:2020-09-13 12:26:43  blocks: 76
       9  in use    drwxr-xr-x     2     0     0         4096  a:2020-09-13 12:26:44  c:2023-11-14 22:13:20  m:2020-09-13 12:26:44  blocks: 77
      10  in use    -rw-r--r--     1     0     0           15  a:2020-09-13 12:26:45  c:2023-11-14 22:13:20  m:2020-09-13 12:26:45  blocks: 78
"""

EXTENDED_BLOCKS = """\
Block map (2048 blocks of the device):
                      0  superblock
                      1  block bitmap
                   2-16  inode table
                     17  directory               inode 1
                     18  directory               inode 11
                     19  directory               inode 12
                  20-22  file data               inode 13
                     23  file data               inode 14
                     24  symlink                 inode 15
                     25  file data               inode 16
                  26-27  file data               inode 17
                     28  file data               inode 18
                     29  directory               inode 19
                     30  file data               inode 20
                31-2046  free
                   2047  backup superblock
"""


def section(text: str, title: str) -> str:
    """From the line starting with `title` to the next empty line."""
    start = text.index(title)
    end = text.find("\n\n", start)
    return text[start:] if end < 0 else text[start:end + 1]


def test_dump_blocks_and_inodes_kernel(kernel_img):
    with Unchanged(kernel_img):
        result = cli("dump.vexfs", "--blocks", "--inodes", kernel_img)
    assert section(result.stdout, "Block map") == KERNEL_BLOCKS
    assert section(result.stdout, "Inodes (") == KERNEL_INODES
    assert "Backup superblock:" not in result.stdout  # the kernel layout keeps none


def test_dump_blocks_extended_and_superblocks_identical(extended_img):
    with Unchanged(extended_img):
        result = cli("dump.vexfs", "--blocks", extended_img)
    assert section(result.stdout, "Block map") == EXTENDED_BLOCKS
    assert "Backup superblock:        block 2047, identical to the primary\n" in result.stdout
    assert "Backup checksum:          ok\nPrimary checksum:         ok\n" in result.stdout


def test_dump_json_streams_blocks_and_inodes(extended_img):
    with Unchanged(extended_img):
        info = json.loads(cli("dump.vexfs", "--json", "--blocks", "--inodes", extended_img).stdout)
    assert info["summary"]["superblocks"]["status"] == "identical"
    assert [(b["first"], b["last"], b["kind"], b["inode"]) for b in info["blocks"]][:5] == [
        (0, 0, "superblock", None), (1, 1, "block bitmap", None), (2, 16, "inode table", None),
        (17, 17, "directory", 1), (18, 18, "directory", 11)]
    assert sum(b["count"] for b in info["blocks"]) == 2048
    by_ino = {i["inode"]: i for i in info["inodes"]}
    assert sorted(by_ino) == [1, *range(11, 21)]
    assert by_ino[13]["status"] == "unlinked" and by_ino[13]["blocks"] == [[20, 3]]
    assert by_ino[18]["status"] == "unlinked" and by_ino[16]["status"] == "in use"
    assert all(i["checksum_ok"] for i in info["inodes"])


def test_backup_superblock_difference_is_shown(tmp_path):
    image = build(tmp_path)
    with open(image, "r+b") as f:  # the backup's label (block 2047, offset 116): not resealed
        f.seek(2047 * 4096 + 116)
        f.write(b"tampered")
    with Unchanged(image):
        text = cli("dump.vexfs", image).stdout
        info = json.loads(cli("dump.vexfs", "--json", image).stdout)
    assert "Backup superblock:        block 2047, 1 fields differ from the primary\n" in text
    assert "Backup checksum:          MISMATCH\n" in text
    assert "  s_volume_name: primary " in text
    comparison = info["superblocks"]
    assert comparison["status"] == "different"
    assert [d["field"] for d in comparison["differences"]] == ["s_volume_name"]
    assert bytes.fromhex(comparison["differences"][0]["backup"]).startswith(b"tampered")
    assert comparison["backup"]["checksum_ok"] is False and comparison["primary"]["checksum_ok"] is True


# --- icheck, ncheck, blkcat ---------------------------------------------------------------

def test_icheck_exact(kernel_img):
    with Unchanged(kernel_img):
        result = cli("icheck", kernel_img, 0, 1, 2, 66, 67, 68, 100, 2047, 2048)
        as_json = json.loads(cli("icheck", "--json", kernel_img, 67, 76).stdout)
    assert result.stdout == """\
Block       Inode       What
0           -           superblock
1           -           block bitmap
2           -           inode table
66          1           directory
67          2           directory (recovered)
68          3           file data
100         -           free
2047        -           free
2048        -           past the end of the device
"""
    assert as_json == [{"block": 67, "kind": "directory (recovered)", "inodes": [2], "kinds": ["directory (recovered)"]},
                       {"block": 76, "kind": "file data", "inodes": [8], "kinds": ["file data"]}]


def test_ncheck_exact(kernel_img, extended_img):
    with Unchanged(kernel_img, extended_img):
        live = cli("ncheck", kernel_img, 10, 9, 1)
        with_deleted = cli("ncheck", "-d", kernel_img, 3, 8, 10)
        missing = cli("ncheck", extended_img, 13)
        as_json = json.loads(cli("ncheck", "--json", "-d", extended_img, 18, 20).stdout)
        bad = cli("ncheck", extended_img, 0)
    assert live.stdout == "Inode\tPathname\n1\t/\n9\t/docs/sub\n10\t/docs/sub/deep.txt\n"
    assert with_deleted.stdout == ("Inode\tPathname\n3\t/gone.bin  (deleted)\n8\t/docs/old.txt  (deleted)\n"
                                   "10\t/docs/sub/deep.txt\n")
    assert missing.stdout == "Inode\tPathname\n"  # a deleted name is found only with -d
    assert missing.stderr.rstrip().endswith("inode 13: no name found")
    assert as_json == [{"inode": 18, "path": "/docs/old.txt", "deleted": True, "recovered": False},
                       {"inode": 20, "path": "/docs/sub/deep.txt", "deleted": False, "recovered": False}]
    assert bad.returncode != 0 and "inode 0 is out of range" in bad.stderr


def test_blkcat_raw_hex_json(kernel_img):
    with open(kernel_img, "rb") as f:
        f.seek(67 * 4096)
        block67 = f.read(4096)
        f.seek(76 * 4096)
        two = f.read(8192)
    with Unchanged(kernel_img):
        raw = cli("blkcat", kernel_img, 67)
        pair = cli("blkcat", kernel_img, 76, 2)
        hexed = cli("blkcat", "--hex", kernel_img, 67)
        as_json = json.loads(cli("blkcat", "--json", kernel_img, 76).stdout)
        past = cli("blkcat", kernel_img, 2048)
    assert raw.stdout_bytes == block67
    assert pair.stdout_bytes == two and two.startswith(b"old data\n")
    assert lines(hexed.stdout)[:3] == [
        "00043000  02 00 00 00 0c 00 01 02 2e 00 00 00 01 00 00 00  |................|",
        "00043010  0c 00 02 02 2e 2e 00 00 06 00 00 00 10 00 05 01  |................|",
        "00043020  61 2e 74 78 74 00 00 00 07 00 00 00 20 00 05 01  |a.txt....... ...|"]
    assert len(lines(hexed.stdout)) == 256
    assert as_json == [{"block": 76, "hex": two[:4096].hex()}]
    assert past.returncode != 0 and "outside the device" in past.stderr


@pytest.mark.parametrize("name", ["dump.vexfs", "ls", "icheck", "ncheck", "blkcat", "timeline", "extract"])
def test_help_shows_a_real_example(name):
    result = cli(name, "--help")
    assert result.returncode == 0
    assert "Example" in result.stdout
    prefix = name if name == "dump.vexfs" else f"vexfs {name}"
    assert any(line.strip().startswith(prefix + " ") for line in result.stdout.splitlines()), result.stdout


def test_installed_scripts_stream_quietly_when_piped(kernel_img):
    """Through the real console scripts: no progress display on a pipe, exit 0."""
    with Unchanged(kernel_img):
        dumped = run("dump.vexfs", "--blocks", "--inodes", kernel_img)
        listed = run("vexfs", "ls", "-R", "-d", kernel_img, "/")
    assert (dumped.returncode, dumped.stderr, listed.returncode, listed.stderr) == (0, "", 0, "")
    assert section(dumped.stdout, "Block map") == KERNEL_BLOCKS
    assert "/docs:  [recovered from orphaned block 67]" in listed.stdout


def test_block_map_kinds_vector_and_indirect(tmp_path):
    import numpy as np

    source = tmp_path / "src"
    source.mkdir()
    np.save(source / "emb.vec.npy", np.arange(64 * 8, dtype=np.float32).reshape(64, 8))
    (source / "big.bin").write_bytes(b"b" * (15 * 4096))  # 15 blocks: 12 direct, 3 through an indirect block
    image = tmp_path / "v.img"
    run("mkfs.vexfs", "-q", "-d", source, "-s", "8M", image, check=True)
    with Unchanged(image):
        blocks = json.loads(cli("dump.vexfs", "--json", "--blocks", image).stdout)["blocks"]
        ino = json.loads(cli("stat", "--json", image, "/big.bin").stdout)["inode"]
        vec = json.loads(cli("stat", "--json", image, "/emb.vec").stdout)["inode"]
    kinds = {(b["kind"], b["inode"]): b["count"] for b in blocks if b["inode"] in (ino, vec)}
    assert kinds[("file data", ino)] == 15 and kinds[("indirect", ino)] == 1
    assert kinds[("vector data", vec)] >= 2  # header block and data
