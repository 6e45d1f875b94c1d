"""The read-only views are strict as debugfs is: a damaged image stays readable, but every
problem met is one warning line on stderr, while stdout and the exit code stay what they
are on a sound image (pipes are unaffected). The damage is made here, on images built here.
"""

from __future__ import annotations

import shutil

import pytest

from tests.inspect.images import TREE, build, cli
from vexfs_tools.cli.common import prog_name, warn_findings
from vexfs_tools.format.superblock import Superblock
from vexfs_tools.format import constants as C
from vexfs_tools.volume import Volume
from vexfs_tools.volume.findings import Code, Finding
from vexfs_tools.volume.inodes import build_inode

NEEDS_FSCK = "the image needs fsck.vexfs"


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ": warning: " in line]


def break_superblock_checksum(image) -> None:
    """Store a checksum that can not match (every bit of the right one flipped)."""
    with Volume.open(str(image), writable=True) as volume:
        raw = volume.device.read(0, C.SUPERBLOCK_SIZE)
        sb = Superblock.parse(raw)
        sb.s_checksum ^= 0xFFFFFFFF
        volume.device.write(0, Superblock.build(sb))


def rewrite_inode(image, path: str, change) -> int:
    """Apply `change(fields)` to the inode `path` names and write the record back as it is
    (no checksum recomputed); its number."""
    with Volume.open(str(image), writable=True) as volume:
        inode = volume.resolve(path)
        change(inode.fields)
        block, offset = volume.geometry.inode_location(inode.ino)
        volume.device.write(block * C.BLOCK_SIZE + offset, build_inode(inode.fields))
        return inode.ino


@pytest.fixture(scope="module")
def sound(tmp_path_factory):
    return build(tmp_path_factory.mktemp("sound"))


def test_every_code_is_one_warning_line_made_from_its_fields(capsys):
    findings = [Finding(Code.SUPERBLOCK_CHECKSUM, block=0, expected=0x1234, found=0x4321),
                Finding(Code.SUPERBLOCK_CHECKSUM, block=2047, expected=1, found=2),
                Finding(Code.INODE_CHECKSUM, inode=12, expected=1, found=2),
                Finding(Code.BLOCK_OUT_OF_RANGE, inode=13, block=99999, index=3),
                Finding(Code.INDIRECT_OUT_OF_RANGE, inode=14, block=88888),
                Finding(Code.INDIRECT_TWICE, inode=15, block=777),
                Finding(Code.DIRECTORY_CHAIN, inode=16, block=66, detail="rec_len 3 is too short"),
                Finding(Code.SIZE_BEYOND_LAYOUT, inode=17, found=10 ** 9, expected=49152),
                Finding(Code.ENTRY_INODE_OUT_OF_RANGE, inode=1, found=999999, detail="/docs/x")]
    assert {f.code for f in findings} == set(Code), "a code without a warning test"
    warn_findings("dump.vexfs", findings)
    captured = capsys.readouterr()
    assert captured.out == ""
    got = captured.err.splitlines()
    assert len(got) == len(findings)
    assert all(line.startswith("dump.vexfs: warning: ") and line.endswith(NEEDS_FSCK) for line in got)
    assert got[0] == f"dump.vexfs: warning: superblock checksum does not match; {NEEDS_FSCK}"
    assert "block 2047" in got[1]
    assert got[2] == f"dump.vexfs: warning: inode 12: checksum does not match; {NEEDS_FSCK}"
    assert "inode 13" in got[3] and "99999" in got[3] and "logical 3" in got[3]
    assert "inode 14" in got[4] and "88888" in got[4]
    assert "inode 15" in got[5] and "777" in got[5] and "twice" in got[5]
    assert "inode 16" in got[6] and "block 66" in got[6] and "rec_len 3 is too short" in got[6]
    assert "inode 17" in got[7] and "1000000000" in got[7] and "49152" in got[7]
    assert got[8] == f"dump.vexfs: warning: /docs/x: inode 999999 is out of range; {NEEDS_FSCK}"


VIEWS = [("ls", "-l", "{image}", "/"), ("ls", "-lRd", "{image}", "/"), ("cat", "{image}", "/docs/b.txt"),
         ("stat", "{image}", "/docs/a.txt"), ("stat", "--json", "{image}", "12"), ("timeline", "{image}"),
         ("ncheck", "{image}", "12", "13"), ("icheck", "{image}", "66", "70"), ("extract", "-q", "{image}", "/", "{dest}")]


@pytest.mark.parametrize("view", VIEWS, ids=[" ".join(v[:2]) for v in VIEWS])
def test_bad_superblock_checksum_warns_once_and_changes_no_output(sound, tmp_path, view):
    damaged = tmp_path / "damaged.img"
    shutil.copyfile(sound, damaged)
    break_superblock_checksum(damaged)
    name, *args = view
    before = cli(name, *[a.format(image=sound, dest=tmp_path / "out-sound") for a in args])
    after = cli(name, *[a.format(image=damaged, dest=tmp_path / "out-damaged") for a in args])
    assert (after.returncode, after.stdout_bytes) == (before.returncode, before.stdout_bytes)
    assert warnings(before.stderr) == []
    [line] = warnings(after.stderr)
    assert "superblock" in line and "does not match" in line and line.endswith(NEEDS_FSCK), line
    assert after.stderr.replace(line + "\n", "", 1) == before.stderr


def test_dump_warns_on_a_bad_superblock_checksum(sound, tmp_path):
    damaged = tmp_path / "damaged.img"
    shutil.copyfile(sound, damaged)
    break_superblock_checksum(damaged)
    for args in ((), ("--json",), ("--blocks", "--inodes")):
        before, after = cli("dump.vexfs", *args, sound), cli("dump.vexfs", *args, damaged)
        assert before.returncode == after.returncode == 0
        assert warnings(before.stderr) == [] and len(warnings(after.stderr)) == 1
        assert "warning" not in after.stdout
    assert "MISMATCH" in cli("dump.vexfs", damaged).stdout  # stdout tells as it always did


def test_bad_inode_checksum_warns_in_stat_and_cat(sound, tmp_path):
    damaged = tmp_path / "damaged.img"
    shutil.copyfile(sound, damaged)

    def flip(fields):
        fields.i_checksum ^= 0xFFFFFFFF

    ino = rewrite_inode(damaged, "/docs/b.txt", flip)
    expected = f"{prog_name()}: warning: inode {ino}: checksum does not match; {NEEDS_FSCK}"
    cat = cli("cat", damaged, "/docs/b.txt")
    assert (cat.returncode, cat.stdout_bytes) == (0, TREE["docs/b.txt"])
    assert warnings(cat.stderr) == [expected]
    stat = cli("stat", damaged, "/docs/b.txt")
    assert stat.returncode == 0 and "(MISMATCH)" in stat.stdout
    assert warnings(stat.stderr) == [expected]
    sound_cat = cli("cat", sound, "/docs/b.txt")
    assert warnings(sound_cat.stderr) == [] and warnings(cli("stat", sound, "/docs/b.txt").stderr) == []


def test_cat_warns_when_i_size_is_past_what_the_layout_addresses(tmp_path):
    image = build(tmp_path, "--compat", "kernel")

    def huge(fields):
        fields.i_size = 10 ** 9

    ino = rewrite_inode(image, "/keep.bin", huge)
    limit = C.DIRECT_BLOCKS * C.BLOCK_SIZE
    result = cli("cat", image, "/keep.bin")
    assert result.returncode == 0
    assert result.stdout_bytes == TREE["keep.bin"] + bytes(limit - len(TREE["keep.bin"]))  # what it printed before
    [line] = warnings(result.stderr)
    assert line == (f"{prog_name()}: warning: inode {ino}: i_size 1000000000 is more than its layout can "
                    f"address; only the first {limit} bytes are read; {NEEDS_FSCK}")
    assert warnings(cli("stat", image, "/keep.bin").stderr) == [line]
