"""`vexfs extract`: a tree or one file out of an image, mode and times restored, deleted
files recovered apart; and a hostile image that must not get anything written outside
DEST, must not hang, and has every oddity reported.

Exit status (documented in `vexfs extract --help`): 0 nothing odd, 1 extracted with
oddities reported, 2 nothing extracted (bad image, PATH or DEST)."""

from __future__ import annotations

import json
import os
import resource
import stat
from pathlib import Path

import pytest

from .hostile import NAMES, SAME_COUNT, build_hostile
from .images import (
    T0,
    TREE,
    Unchanged,
    build,
    cli,
    delete_like_kernel,
    orphan_like_kernel_mkdir,
    snapshot,
    vexfs,
)


@pytest.fixture(scope="module", params=["kernel", "extended"])
def known(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    image = build(tmp, *(("--compat", "kernel") if request.param == "kernel" else ()))
    delete_like_kernel(image, "/docs/old.txt")
    delete_like_kernel(image, "/gone.bin")
    if request.param == "kernel":
        orphan_like_kernel_mkdir(image, "/docs")
    return image


def tree_of(root: Path) -> dict[str, tuple]:
    """path -> (type and permission bits, mtime, contents or link target)."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        content = os.readlink(path) if path.is_symlink() else (path.read_bytes() if path.is_file() else None)
        out[str(path.relative_to(root))] = (stat.filemode(st.st_mode), int(st.st_mtime), content)
    return out


def expected_tree(deleted: bool) -> dict[str, tuple]:
    out = {}
    for index, (name, content) in enumerate(TREE.items()):
        if name in ("docs/old.txt", "gone.bin"):
            if not deleted:
                continue
            name = ".deleted/" + name
        if content is None:
            out[name] = ("drwxr-xr-x", T0 + index, None)
        elif isinstance(content, str):
            out[name] = ("lrwxrwxrwx", T0 + index, content)
        else:
            out[name] = ("-rw-r--r--", T0 + index, content)
    return out


def test_extract_tree_restores_contents_modes_times(known, tmp_path):
    with Unchanged(known):
        result = cli("extract", known, "/", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    got = tree_of(tmp_path / "out")
    got.pop("lost+found", None)  # the extended layout's, made by mkfs
    assert got == expected_tree(deleted=False)
    directories = 2 if "kernel" in str(known) else 3  # and lost+found
    assert result.stdout == (f"Extracted 4 files, {directories} directories, 1 symlinks, 0 hard links (5121 bytes) "
                             f"into {tmp_path / 'out'}; 0 oddities reported\n")


def test_extract_deleted_into_a_separate_folder(known, tmp_path):
    with Unchanged(known):
        result = cli("extract", "--deleted", known, "/", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    got = tree_of(tmp_path / "out")
    got.pop("lost+found", None)
    folders = {name: got.pop(name) for name in (".deleted", ".deleted/docs")}
    assert got == expected_tree(deleted=True)
    assert all(mode.startswith("d") for mode, _, _ in folders.values())
    assert result.stdout.endswith("2 deleted entries recovered into .deleted; 0 oddities reported\n")


def test_extract_one_file_a_subtree_and_an_inode_number(known, tmp_path):
    with Unchanged(known):
        cli("extract", known, "/docs/b.txt", tmp_path / "one")
        cli("extract", known, "/docs", tmp_path / "sub")
        number = json.loads(cli("ls", "--json", known, "/docs").stdout)[2]["inode"]  # a.txt
        cli("extract", known, f"<{number}>", tmp_path / "num")
        as_json = json.loads(cli("extract", "--json", known, "/docs/sub", tmp_path / "js").stdout)
    assert (tmp_path / "one" / "b.txt").read_bytes() == TREE["docs/b.txt"]
    assert sorted(tree_of(tmp_path / "sub")) == ["docs", "docs/a.txt", "docs/b.txt", "docs/sub", "docs/sub/deep.txt"]
    assert (tmp_path / "num" / f"inode-{number}").read_bytes() == TREE["docs/a.txt"]
    assert as_json == {"files": 1, "directories": 1, "symlinks": 0, "hard_links": 0, "bytes": 15, "skipped": 0,
                       "recovered": 0, "deleted_folder": None, "problem_count": 0, "problems": []}


def test_a_symlink_planted_in_dest_is_not_followed(known, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(outside, dest / "docs")  # a trap where the image's /docs goes
    os.symlink(outside / "keep.bin", dest / "keep.bin")
    result = cli("extract", known, "/", dest)
    assert result.returncode == 1
    assert list(outside.iterdir()) == []
    assert (dest / "docs~1" / "a.txt").read_bytes() == TREE["docs/a.txt"]
    assert (dest / "keep.bin~1").read_bytes() == TREE["keep.bin"]
    assert "/docs: the name is taken in .; written as docs~1" in result.stderr


def test_unusable_image_path_or_dest_exit_2(known, tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    (tmp_path / "junk.img").write_bytes(b"\0" * (1 << 20))
    missing = vexfs("extract", known, "/nope", tmp_path / "a")
    not_a_dir = vexfs("extract", known, "/", tmp_path / "file")
    junk = vexfs("extract", tmp_path / "junk.img", "/", tmp_path / "b")
    for result, words in ((missing, "/nope: no such file"), (not_a_dir, "not a usable destination"),
                          (junk, "bad magic")):
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert len(result.stderr.splitlines()) == 1 and words in result.stderr


# --- the hostile image ------------------------------------------------------------------------

EXPECTED_ODDITIES = [
    '/../../escape: the name "../../escape" is sanitized to "..%2F..%2Fescape"',
    '/a\\x00b: the name "a\\x00b" is sanitized to "a%00b"',
    '/ctl\\x01\\x1b[31m: the name "ctl\\x01\\x1b[31m" is sanitized to "ctl%01%1B[31m"',
    '/: the name "" is sanitized to "_"',
    '/: an entry ".." of file type 1 names inode',
    "/cyc/back: directory inode 1 is listed elsewhere already (a cycle or a hard-linked directory)",
    "/cyc/self: directory inode",
    "/cyc/d2/up: directory inode",
    "/again: directory inode",
    "/evil: symlink points outside the extracted tree",
    "/evil: the name is taken in .; written as evil~1",
    "/up: symlink points outside the extracted tree (../../../../../../../../tmp); recreated as a link, not followed",
    "/huge: i_size 9223372036854775808 is more than the block map holds; written 8192 bytes",
    "/looped: indirect block",
    "is referenced twice (1024 times)",
    "/looped: i_size 1099511627776 is more than the block map holds; written 53248 bytes",
    "/repeats: its block map holds more data than the file system (16777216 bytes): blocks repeat",
    "/repeats: i_size 1099511627776 is more than the block map holds; written 21012480 bytes",
    "/dupdir: directory inode",
    "appears 6 times in its map; read once",
    "/many/same: inode",
    "is named more than once though its link count is 1; written once, the other names hard-linked",
    "/many/same: the name is taken in many; written as same~1",
    "/ghost: inode 999999 is out of range",
    "/chr: character device, not extracted",
    "/fifo: fifo, not extracted",
    "/suid: set-user/group-ID bits not restored (mode -rwsr-xr-x)",
    '/del\\x07eted: the name "del\\x07eted" is sanitized to "del%07eted"',
]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    (tmp / "outside").mkdir()
    victim = tmp / "outside" / "victim"
    victim.write_bytes(b"ORIGINAL\n")
    return tmp, build_hostile(tmp, victim), victim


def test_hostile_image_nothing_escapes_everything_reported(hostile):
    tmp, image, victim = hostile
    dest = tmp / "box" / "dest"
    dest.mkdir(parents=True)  # made beforehand: its parent's mtime is part of what must not change
    before = snapshot(tmp, exclude=dest)
    with Unchanged(image):
        result = vexfs("extract", "--deleted", image, "/", dest, timeout=120)
    # nothing outside DEST changed: the whole tree around it is as it was
    assert snapshot(tmp, exclude=dest) == before
    assert victim.read_bytes() == b"ORIGINAL\n"
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < 400 * 1024  # KiB: bounded memory
    assert result.returncode == 1, result.stderr
    problems = result.stderr
    for oddity in EXPECTED_ODDITIES:
        assert oddity in problems, oddity
    assert all(line.split(": ", 1)[0] in ("vexfs", "forensic.py") for line in problems.splitlines())
    # what was made, and only inside DEST
    top = {os.fsencode(p.name) for p in dest.iterdir()}
    assert top == {*NAMES.values(), b"x" * 255, b"cyc", b"evil", b"evil~1", b"up", b"huge", b"looped", b"many",
                   b"suid", b"locked", b"last", b".deleted", b"repeats", b"dupdir"}
    repeats = (dest / "repeats").stat()  # 4096 blocks of data (as many as the file system has), holes between
    assert repeats.st_size == 21012480 and repeats.st_blocks * 512 <= (16 << 20) + (1 << 20)
    assert [p.name for p in (dest / "dupdir").iterdir()] == ["once"]
    for path in dest.rglob("*"):
        if path.is_symlink():
            continue
        assert os.path.realpath(path).startswith(str(dest) + "/")
    assert os.readlink(dest / "evil") == str(victim) and (dest / "evil").is_symlink()
    assert (dest / "evil~1" / "pwned").read_bytes() == b"PWNED\n" and not (dest / "evil~1" / "pwned").is_symlink()
    assert os.readlink(dest / "up") == "../../../../../../../../tmp"
    assert [p.name for p in (dest / "cyc").iterdir()] == ["d2"] and list((dest / "cyc" / "d2").iterdir()) == []
    assert (dest / "huge").read_bytes() == b"H" * 5000 + bytes(8192 - 5000)
    assert (dest / "looped").read_bytes() == b"L" * 13 * 4096
    many = list((dest / "many").iterdir())
    assert len(many) == SAME_COUNT + 5 and {p.name for p in many} == {"same"} | {f"same~{i}" for i in range(1, 3005)}
    same = [p for p in many if p.read_bytes() == b"same\n"]
    assert len(same) == SAME_COUNT and (dest / "many" / "same").stat().st_nlink == SAME_COUNT  # one copy, linked
    assert stat.S_IMODE((dest / "suid").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "locked").stat().st_mode) == 0
    assert (dest / "locked" / "inside").read_bytes() == b"inside a mode-000 directory\n"
    assert (dest / ".deleted" / "del%07eted").read_bytes() == b"recovered despite its name\n"
    assert (dest / "\udcff\udcfe".encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")).exists()
    os.chmod(dest / "locked", 0o700)


def test_hostile_image_views_do_not_loop(hostile):
    _, image, _ = hostile
    with Unchanged(image):
        listing = cli("ls", "-R", "-d", image, "/")
        body = cli("timeline", image)
        blocks = cli("dump.vexfs", "--blocks", "--inodes", image)
    assert listing.returncode == body.returncode == blocks.returncode == 0
    assert "/cyc/d2:" in listing.stdout and "/cyc/d2/up:" not in listing.stdout
    assert "/many:" in listing.stdout and listing.stdout.count("\nsame\n") + listing.stdout.count("same\n") > 0
    assert "not entered again" in listing.stderr
    assert "0|/del^eted (deleted)|" in body.stdout
    assert "indirect block" in blocks.stdout and "referenced twice" in blocks.stdout


def test_open_descriptors_stay_one_a_level(tmp_path):
    """300 subdirectories in one directory, extracted under a limit of 40 open files."""
    import subprocess
    import sys

    tree = {f"d{i:03d}": None for i in range(300)} | {f"d{i:03d}/f": b"%d\n" % i for i in range(300)}
    image = build(tmp_path, "-N", "1000", tree=tree)

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))

    proc = subprocess.run([sys.executable, "-c", "from vexfs_tools.cli.forensic import main; main()", "extract", "-q",
                           str(image), "/", str(tmp_path / "out")], capture_output=True, text=True,
                          preexec_fn=limit, check=False)
    assert proc.returncode == 0, proc.stderr
    assert all((tmp_path / "out" / f"d{i:03d}" / "f").read_bytes() == b"%d\n" % i for i in range(300))
