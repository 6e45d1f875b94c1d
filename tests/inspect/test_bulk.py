"""The fast paths of the tree views give what the plain ones give: inodes parsed in bulk
(inodes.parse_inode_rows, recovery.bulk_inodes), plain files extracted from the table in
the image map (Extractor.plain_files), on a friendly tree and on the hostile image."""

from __future__ import annotations

import os
import random
import threading
import time
import xml.etree.ElementTree as ET

import pytest

from vexfs_tools.format import constants as C
from vexfs_tools.inspect import dfxml as dfxml_module
from vexfs_tools.inspect import extract as extract_module
from vexfs_tools.inspect import extract_writers
from vexfs_tools.inspect.deleted import deleted_entries
from vexfs_tools.inspect.dfxml import write_dfxml
from vexfs_tools.inspect.extract import extract
from vexfs_tools.inspect.recovery import Recovery, bulk_inodes, walk
from vexfs_tools.volume import Volume
from vexfs_tools.volume.inodes import parse_inode, parse_inode_rows

from .hostile import build_hostile
from .images import build, delete_like_kernel, make_tree, run
from .test_extract import tree_of

# Files the fast extract path takes and those it must leave to the general one: empty,
# one block, several contiguous blocks, set-ID bits, permissions a 022 umask removes, a
# hard link, a file past the direct blocks.
ODD_TREE: dict = {
    "d": None,
    "d/empty": b"",
    "d/one": b"1" * 100,
    "d/three": bytes(range(256)) * 40,
    "d/setuid": b"s" * 10,
    "d/open": b"o" * 10,
    "d/big": b"b" * (C.DIRECT_BLOCKS * C.BLOCK_SIZE + 5000),
}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bulk")
    source = make_tree(tmp / "odd.src", ODD_TREE)
    os.chmod(source / "d/setuid", 0o4755)
    os.chmod(source / "d/open", 0o777)
    os.link(source / "d/one", source / "d/again")
    odd = tmp / "odd.img"
    run("mkfs.vexfs", "-q", "-d", source, "-s", "8M", odd, env={"SOURCE_DATE_EPOCH": "1700000000"}, check=True)
    victim = tmp / "victim"
    victim.mkdir()
    return {"odd": odd, "friendly": build(tmp, name="friendly.img"), "hostile": build_hostile(tmp, victim)}


def test_parse_inode_rows_is_parse_inode():
    raw = random.Random(7).randbytes(40 * C.INODE_SIZE)
    inos = list(range(100, 140))
    for one, bulk in zip([parse_inode(ino, raw[n * C.INODE_SIZE:(n + 1) * C.INODE_SIZE])
                          for n, ino in enumerate(inos)], parse_inode_rows(inos, raw)):
        assert (bulk.ino, bulk.raw, list(bulk.fields.items())) == (one.ino, one.raw, list(one.fields.items()))
        assert (bulk.fields.i_mode, bulk.i_size, bulk.file_format, bulk.is_dir, bulk.in_use) == \
            (one.fields.i_mode, one.i_size, one.file_format, one.is_dir, one.in_use)
    with pytest.raises(ValueError):
        parse_inode_rows(inos, raw[:-1])


def _listings(recovery: Recovery, plain) -> list:
    out = []
    for listing in walk(recovery, deleted=True, into_deleted=True, plain=plain):
        entries = [(entry, None if inode is None else (inode.ino, list(inode.fields.items()), inode.raw))
                   for entry, inode in listing.entries]
        out.append((listing.path, entries, listing.problems, [d.name for d in listing.deleted]))
    return out


@pytest.mark.parametrize("which", ["odd", "friendly", "hostile"])
def test_bulk_inodes_walk_alike(images, which):
    with Volume.open(str(images[which])) as v:
        hook = bulk_inodes(Recovery(v))
        assert hook is not None
        assert _listings(Recovery(v), hook) == _listings(Recovery(v), None)


def _untimed(tree: dict[str, tuple]) -> dict[str, tuple]:
    """tree_of without the times of the directories a run makes under .deleted (the time
    of the run: they copy no directory of the image)."""
    return {path: (mode, None if path.startswith(".deleted") and content is None else mtime, content)
            for path, (mode, mtime, content) in tree.items()}


@pytest.mark.parametrize("which", ["odd", "friendly", "hostile"])
def test_fast_extract_writes_what_the_general_path_writes(images, which, tmp_path, monkeypatch):
    old = os.umask(0o022)
    try:
        with Volume.open(str(images[which])) as v:
            fast = extract(v, "/", str(tmp_path / "fast"), deleted=True)
        monkeypatch.setattr(extract_module.Extractor, "plain_files", lambda self, entries: [None] * len(entries))
        with Volume.open(str(images[which])) as v:
            general = extract(v, "/", str(tmp_path / "general"), deleted=True)
    finally:
        os.umask(old)
    assert fast.as_dict() == general.as_dict()
    assert _untimed(tree_of(tmp_path / "fast")) == _untimed(tree_of(tmp_path / "general"))
    if which == "odd":
        assert fast.files == 6 and fast.hard_links == 1


@pytest.mark.parametrize("which", ["odd", "hostile"])
def test_dfxml_with_and_without_bulk_inodes(images, which, monkeypatch):
    def document() -> str:
        out: list[str] = []
        with Volume.open(str(images[which])) as v:
            # The hostile image names files of terabytes (sparse): hashed, they take hours.
            write_dfxml(out.append, v, image="x", hashes=which != "hostile")
        return "".join(line for line in "".join(out).splitlines(True) if "<start_time>" not in line)

    fast = document()
    monkeypatch.setattr(dfxml_module, "bulk_inodes", lambda recovery: None)
    assert document() == fast


def test_plain_files_takes_only_what_needs_no_report(images, tmp_path):
    old = os.umask(0o022)
    try:
        with Volume.open(str(images["odd"])) as v:
            recovery = Recovery(v)
            entries = recovery.read_directory(v.resolve(b"/d")).entries
            plain = extract_module.Extractor(v, str(tmp_path / "out"), recovery=recovery).plain_files(entries)
    finally:
        os.umask(old)
    taken = {entry.name for entry, value in zip(entries, plain) if value is not None}
    assert taken == {b"empty", b"one", b"three", b"again", b"big"}


def _build_mapped(tmp) -> tuple:
    """Files past the direct blocks, each through its single indirect block: one
    contiguous, one whose map jumps to another file's block (two runs), one with a hole,
    one naming a block outside the file system, one whose indirect pointer is bad."""
    image = tmp / "mapped.img"
    run("mkfs.vexfs", "-q", "-s", "16M", image, env={"SOURCE_DATE_EPOCH": "1700000000"}, check=True)
    size = (C.DIRECT_BLOCKS + 20) * C.BLOCK_SIZE - 123
    with Volume.open(str(image), writable=True) as v:
        d = v.mkdir(1, b"m")
        made = {name: v.create_file(d, name, bytes([65 + n]) * size)
                for n, name in enumerate([b"whole", b"jumps", b"hole", b"outside", b"badtop"])}
        other = v.create_file(d, b"other", b"X" * 5000)
        changes = {b"jumps": (C.DIRECT_BLOCKS + 3, v.read_inode(other).i_block[1]), b"hole": (C.DIRECT_BLOCKS + 5, 0),
                   b"outside": (C.DIRECT_BLOCKS + 7, v.geometry.blocks_count + 10)}
        for name, (logical, block) in changes.items():
            inode = v.read_inode(made[name])
            v.set_block(inode.fields, logical, block)
            v.write_inode(made[name], inode.fields)
        inode = v.read_inode(made[b"badtop"])
        inode.fields.i_indirect = v.geometry.blocks_count + 1
        v.write_inode(made[b"badtop"], inode.fields)
    return image


def test_files_past_the_direct_blocks_fast_and_general(tmp_path, monkeypatch):
    image = _build_mapped(tmp_path)
    old = os.umask(0o022)
    try:
        with Volume.open(str(image)) as v:
            recovery = Recovery(v)
            entries = recovery.read_directory(v.resolve(b"/m")).entries
            plain = extract_module.Extractor(v, str(tmp_path / "probe"), recovery=recovery).plain_files(entries)
            fast = extract(v, "/", str(tmp_path / "fast"))
        monkeypatch.setattr(extract_module.Extractor, "plain_files", lambda self, entries: [None] * len(entries))
        with Volume.open(str(image)) as v:
            general = extract(v, "/", str(tmp_path / "general"))
    finally:
        os.umask(old)
    taken = {entry.name: value for entry, value in zip(entries, plain) if value is not None}
    assert set(taken) == {b"whole", b"jumps", b"other"}
    assert len(taken[b"jumps"][1]) == len(taken[b"whole"][1]) + 2  # the jump there and back
    assert fast.as_dict() == general.as_dict() and fast.problem_count == 2  # the hole is no problem
    assert tree_of(tmp_path / "fast") == tree_of(tmp_path / "general")
    assert (tmp_path / "fast/m/jumps").read_bytes()[(C.DIRECT_BLOCKS + 3) * C.BLOCK_SIZE:][:4] == b"XXXX"


def test_dfxml_hashes_a_hostile_image_without_hashing_terabytes_of_holes(images):
    """The hostile image's inodes claim 2^40 and 2^63 bytes over a few blocks: those get
    a <vexfs:unhashed> instead of digests (hours of zeros), everything else its digests."""
    out: list[str] = []
    start = time.monotonic()
    with Volume.open(str(images["hostile"])) as v:
        write_dfxml(out.append, v, image="x", hashes=True)
    assert time.monotonic() - start < 60
    root = ET.fromstring("".join(out))
    ns = {"d": dfxml_module.DFXML_NS, "v": dfxml_module.VEXFS_NS}
    by_name = {}
    for obj in root.iter(f"{{{dfxml_module.DFXML_NS}}}fileobject"):
        by_name.setdefault(obj.findtext("d:filename", namespaces=ns), obj)
    for name in ("huge", "looped", "repeats"):
        obj = by_name[name]
        assert obj.find("d:hashdigest", ns) is None
        assert "not hashed" in obj.findtext("v:unhashed", namespaces=ns)
    small = by_name["many/same"]
    assert small.find("v:unhashed", ns) is None and len(small.findall("d:hashdigest", ns)) == 2


@pytest.mark.parametrize("which", ["odd", "friendly", "hostile", "deleted"])
def test_quiet_blocks_hide_no_deleted_entry(images, which, tmp_path):
    """Blocks read_directory finds quiet (live records, zero slack) are passed over by the
    deleted scan: it finds what a scan of every block finds."""
    image = images.get(which)
    if image is None:
        image = build(tmp_path, name="deleted.img")
        delete_like_kernel(image, "/docs/old.txt")
        delete_like_kernel(image, "/gone.bin")
    with Volume.open(str(image)) as v:
        recovery = Recovery(v)
        quiet, found = [], 0
        for listing in walk(recovery, deleted=True, into_deleted=True):
            quiet.append(len(recovery._quiet))
            found += len(listing.deleted)
            full = deleted_entries(Recovery(v), listing.inode)
            assert [(d.name, d.ino, d.block, d.offset, d.status) for d in listing.deleted] == \
                [(d.name, d.ino, d.block, d.offset, d.status) for d in full]
    assert any(quiet)
    assert found >= 2 or which != "deleted"


def _extract_both(image, tmp_path, monkeypatch) -> tuple:
    """extract with the writer threads and with none (every batch written by the walk's
    thread): (reports, trees)."""
    old = os.umask(0o022)
    try:
        with Volume.open(str(image)) as v:
            threaded = extract(v, "/", str(tmp_path / "threaded"), deleted=True)
        with monkeypatch.context() as m:
            m.setattr(extract_module, "WRITERS", 0)
            with Volume.open(str(image)) as v:
                alone = extract(v, "/", str(tmp_path / "alone"), deleted=True)
    finally:
        os.umask(old)
    return (threaded.as_dict(), alone.as_dict()), \
        (_untimed(tree_of(tmp_path / "threaded")), _untimed(tree_of(tmp_path / "alone")))


@pytest.mark.parametrize("which", ["odd", "friendly", "hostile"])
def test_writer_threads_write_what_one_thread_writes(images, which, tmp_path, monkeypatch):
    (threaded, alone), (threaded_tree, alone_tree) = _extract_both(images[which], tmp_path, monkeypatch)
    assert threaded == alone
    assert threaded_tree == alone_tree


WIDE_TREE: dict = {"w": None, **{f"w/f{n:03d}": bytes([n]) * (n * 37) for n in range(200)}}


def test_a_batch_gives_back_what_it_could_not_create(tmp_path, monkeypatch):
    """A writer that can not create a file leaves it to the walk's thread (the general
    path, which says why); a failed write is reported as the one-at-a-time path does."""
    image = build(tmp_path, tree=WIDE_TREE, name="wide.img")
    real = extract_writers.write_batch
    batches = []

    def flaky(dir_fd, image_map, plains):
        batches.append(len(plains))
        skip = {at for at, ((name, *_), _) in enumerate(plains) if name in (b"f007", b"f150")}
        kept = [at for at in range(len(plains)) if at not in skip]
        files, nbytes, failed, problems = real(dir_fd, image_map, [plains[at] for at in kept])
        problems = [(kept[at], error) for at, error in problems]
        problems += [(at, "Input/output error") for at in kept if plains[at][0][0] == b"f100"]
        return files, nbytes, sorted(skip | {kept[at] for at in failed}), problems

    monkeypatch.setattr(extract_writers, "write_batch", flaky)
    old = os.umask(0o022)
    try:
        with Volume.open(str(image)) as v:
            report = extract(v, "/", str(tmp_path / "out"))
    finally:
        os.umask(old)
    assert batches and sum(batches) == 200
    assert report.files == 200 and report.problems == ["/w/f100: writing failed: Input/output error"]
    monkeypatch.setattr(extract_writers, "write_batch", real)
    (threaded, alone), (threaded_tree, alone_tree) = _extract_both(image, tmp_path, monkeypatch)
    assert threaded == alone and threaded_tree == alone_tree
    assert _untimed(tree_of(tmp_path / "out")) == alone_tree


def test_an_error_in_the_walk_stops_the_writers(tmp_path, monkeypatch):
    """An exception out of the walk (here a bug planted in the third directory's reopen)
    waits for the batches queued, stops the threads and closes every directory."""
    tree = {**{f"d{n}": None for n in range(4)}, **{f"d{n}/f{m:02d}": b"x" * m for n in range(4) for m in range(40)}}
    image = build(tmp_path, tree=tree, name="dirs.img")
    real = extract_module.Extractor._reopen
    calls = []

    def failing(self, parent, made):
        calls.append(made)
        if len(calls) == 3:
            raise RuntimeError("planted")
        return real(self, parent, made)

    monkeypatch.setattr(extract_module.Extractor, "_reopen", failing)
    with Volume.open(str(image)) as v:
        before = set(os.listdir("/proc/self/fd"))  # the image map's descriptor lives on in the traceback
        with pytest.raises(RuntimeError, match="planted"):
            extract(v, "/", str(tmp_path / "out"))
        opened = set(os.listdir("/proc/self/fd")) - before
        assert [os.readlink(f"/proc/self/fd/{fd}") for fd in opened] == [os.path.realpath(image)]
    assert not [t for t in threading.enumerate() if t.name.startswith("extract-writer")]
    written = [d for d in sorted(os.listdir(tmp_path / "out")) if len(os.listdir(tmp_path / "out" / d)) == 40]
    assert len(written) == 2
