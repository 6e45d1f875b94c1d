"""The forensic library (vexfs_tools/inspect) without the CLI: orphaned directory blocks,
deleted entries and the state of their inodes, the block classification, names."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from vexfs_tools.format import constants as C
from vexfs_tools.inspect import blockmap as bm
from vexfs_tools.inspect.deleted import deleted_entries, deleted_in_block
from vexfs_tools.inspect.extract import sanitize
from vexfs_tools.inspect.names import display
from vexfs_tools.inspect.recovery import (
    Recovery,
    blockless_directories,
    find_orphan_directory_blocks,
    live_inodes,
    walk,
)
from vexfs_tools.inspect.timeline import escape, mode_string
from vexfs_tools.volume import Volume, directory
from vexfs_tools.volume.inodes import InodeRecord

from .images import Unchanged, build, delete_like_kernel, orphan_like_kernel_mkdir


@pytest.fixture
def kernel_img(tmp_path):
    image = build(tmp_path, "--compat", "kernel")
    assert orphan_like_kernel_mkdir(image, "/docs/sub") == (9, 77)
    assert orphan_like_kernel_mkdir(image, "/docs") == (2, 67)
    return image


# --- orphaned directory blocks ------------------------------------------------------------

def test_orphans_found_and_only_unowned_allocated_blocks_count(kernel_img):
    with Unchanged(kernel_img), Volume.open(str(kernel_img)) as volume:
        assert blockless_directories(volume) == {2, 9}
        owned = bm.collect_ownership(volume)
        calls = []
        found = find_orphan_directory_blocks(volume, {2, 9}, owned.is_owned, progress=lambda d, t: calls.append(t))
        assert found == {2: 67, 9: 77}
        assert calls and calls[-1] == volume.geometry.addressable_blocks
        # the caller's idea of ownership is honoured: an owned block is never an orphan
        assert find_orphan_directory_blocks(volume, {2, 9}, lambda b: b == 67 or owned.is_owned(b)) == {9: 77}
        # only the inodes asked for
        assert find_orphan_directory_blocks(volume, {9}, owned.is_owned) == {9: 77}
        assert find_orphan_directory_blocks(volume, {5}, owned.is_owned) == {}


def test_nothing_wanted_scans_nothing(kernel_img, monkeypatch):
    with Volume.open(str(kernel_img)) as volume:
        monkeypatch.setattr(volume.bitmap, "iter_chunks", lambda: pytest.fail("scanned"))
        assert find_orphan_directory_blocks(volume, set(), lambda b: False) == {}


def test_orphan_copies_lowest_wins_and_free_blocks_are_not_candidates(kernel_img):
    with Volume.open(str(kernel_img), writable=True) as volume:
        copy = volume.read_block(67)
        volume.write_data(300, copy)  # allocated copy, higher: loses
        volume.bitmap.set(300)
        volume.write_data(60 + 250, copy)  # a free copy (bitmap clear): not a candidate
        volume.write_data(301, copy[:0] + (12).to_bytes(4, "little") + copy[4:])  # "." naming inode 12
        volume.bitmap.set(301)
    with Volume.open(str(kernel_img)) as volume:
        owned = bm.collect_ownership(volume)
        assert find_orphan_directory_blocks(volume, {2, 9}, owned.is_owned) == {2: 67, 9: 77}
        assert find_orphan_directory_blocks(volume, {12}, owned.is_owned) == {12: 301}  # only what is asked


def test_recovered_tree_and_resolve(kernel_img):
    with Unchanged(kernel_img), Volume.open(str(kernel_img)) as volume:
        recovery = Recovery(volume)
        listings = list(walk(recovery))
        assert [(l.path, l.recovered_block) for l in listings] == [(b"/", None), (b"/docs", 67), (b"/docs/sub", 77)]
        assert recovery.resolve("/docs/sub/deep.txt").ino == 10
        assert recovery.find("<10>").ino == 10
        assert Recovery(volume, enabled=False).read_directory(volume.read_inode(2)).entries == []
        live = live_inodes(recovery)
        assert np.flatnonzero(live).tolist() == list(range(1, 11))


def test_walk_stops_at_cycles_and_depth(tmp_path):
    image = build(tmp_path)
    with Volume.open(str(image), writable=True) as volume:
        docs = volume.resolve("/docs").ino
        sub = volume.resolve("/docs/sub").ino
        volume.add_entry(sub, b"loop", docs, C.FT_DIR)  # /docs/sub/loop -> /docs
        volume.add_entry(sub, b"root", 1, C.FT_DIR)
    with Volume.open(str(image)) as volume:
        recovery = Recovery(volume)
        listings = list(walk(recovery))
        assert [l.path for l in listings] == [b"/", b"/docs", b"/docs/sub", b"/lost+found"]
        problems = [p for l in listings for p in l.problems]
        assert len(problems) == 2 and all("not entered again" in p for p in problems)
        shallow = list(walk(recovery, max_depth=1))
        assert [l.path for l in shallow] == [b"/", b"/docs", b"/lost+found"]
        assert any("deeper than 1 levels" in p for l in shallow for p in l.problems)


# --- deleted entries ------------------------------------------------------------------------

def test_deleted_entry_states(tmp_path):
    image = build(tmp_path)
    delete_like_kernel(image, "/docs/old.txt")  # intact
    freed = delete_like_kernel(image, "/gone.bin")
    renamed = delete_like_kernel(image, "/docs/a.txt")
    reused = delete_like_kernel(image, "/docs/b.txt")
    with Volume.open(str(image), writable=True) as volume:
        inode = volume.read_inode(freed)  # as our tools delete: slot and blocks freed
        volume.free_blocks_of(inode.fields)
        volume.free_inode(freed)
        volume.add_entry(1, b"renamed.txt", renamed, C.FT_REG_FILE)  # a rename: a live name elsewhere
        inode = volume.read_inode(reused)
        inode.fields.i_mode = 0o40755  # the slot now holds a directory
        volume.write_inode(reused, inode.fields)
    with Volume.open(str(image)) as volume:
        recovery = Recovery(volume)
        live = live_inodes(recovery)
        root = {d.name: d for d in deleted_entries(recovery, volume.read_inode(1), live=live)}
        docs = {d.name: d for d in deleted_entries(recovery, volume.resolve("/docs"), live=live)}
        assert root[b"gone.bin"].status == "freed" and not root[b"gone.bin"].holds_data
        assert docs[b"old.txt"].status == "intact" and docs[b"old.txt"].holds_data
        assert docs[b"a.txt"].status == "linked" and docs[b"a.txt"].reallocated
        assert docs[b"b.txt"].status == "reused" and docs[b"b.txt"].reallocated
        without_live = {d.name: d.status for d in deleted_entries(recovery, volume.resolve("/docs"))}
        assert without_live[b"a.txt"] == "intact"


def test_deleted_in_block_first_entry_and_garbage():
    entries = [(b"first", 20, C.FT_REG_FILE), (b"second", 21, C.FT_REG_FILE), (b"third", 999999, C.FT_REG_FILE)]
    block = directory.pack_entries(entries, chain_end=C.BLOCK_SIZE)[0]
    assert directory.remove_entry(block, b"first", chain_end=C.BLOCK_SIZE) == 20  # inode field cleared
    assert directory.remove_entry(block, b"third", chain_end=C.BLOCK_SIZE) == 999999
    found = deleted_in_block(bytes(block), C.BLOCK_SIZE)
    assert [(r.name, r.inode) for r in found] == [(b"first", 0), (b"third", 999999)]
    assert deleted_in_block(bytes(directory.empty_block(chain_end=4084)), 4084) == []


# --- block classification --------------------------------------------------------------------

def test_classify_shared_unowned_nonzero_and_marked_free(tmp_path):
    image = build(tmp_path)
    with Volume.open(str(image), writable=True) as volume:
        keep = volume.resolve("/keep.bin")
        a = volume.resolve("/docs/a.txt")
        a.fields.i_block[1] = keep.i_block[0]  # a block claimed by two inodes
        volume.write_inode(a.ino, a.fields)
        volume.write_data(1000, b"junk" * 1024)  # free but not zero
        volume.bitmap.set(1500)  # allocated, owned by nobody
        volume.bitmap.set(keep.i_block[0] + 1, False)  # the next file's block: owned, marked free
        shared, nonzero_free = keep.i_block[0], 1000
    with Unchanged(image), Volume.open(str(image)) as volume:
        owned = bm.collect_ownership(volume)
        runs = list(bm.classify_blocks(volume, owned))
        assert sum(r.count for r in runs) == 2048
        assert all(a.last + 1 == b.first for a, b in itertools.pairwise(runs))
        at = {r.first: r for r in runs}
        assert at[shared].shared and at[shared].count == 1
        assert at[shared + 1].marked_free and at[shared + 1].owner is not None
        assert at[nonzero_free].kind == "free, not zero" and at[nonzero_free].count == 1
        assert at[1500].kind == "allocated, unowned"
        assert [r.kind for r in bm.classify_blocks(volume, owned, scan_free=False) if r.first == 1000] == []
        found = bm.icheck(volume, owned, [shared, nonzero_free, 1500, 2047])
        assert sorted(found[0]["inodes"]) == sorted([keep.ino, a.ino])
        assert [f["kind"] for f in found[1:]] == ["free, not zero", "allocated, unowned", "backup superblock"]
        assert owned.is_owned(shared) and not owned.is_owned(1000)


def test_ownership_bounded_on_a_looping_map(tmp_path):
    image = build(tmp_path)
    with Volume.open(str(image), writable=True) as volume:
        ino = volume.create_file(1, b"big", b"z" * (20 * 4096))
        inode = volume.read_inode(ino)
        inode.fields.i_double_indirect = inode.i_indirect  # points back at the single indirect block
        volume.write_inode(ino, inode.fields)
    with Volume.open(str(image)) as volume:
        owned = bm.collect_ownership(volume)
        assert any(f"inode {ino}" in p for p in owned.problems) or owned.starts.size
        assert int(owned.counts[owned.inos == ino].sum()) < 20 + 1023 + 2


# --- names ------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,safe", [
    (b"plain.txt", b"plain.txt"), (b"a/b", b"a%2Fb"), (b"..", b"%2E%2E"), (b".", b"%2E"), (b"", b"_"),
    (b"nul\x00x", b"nul%00x"), (b"esc\x1b[0m\n", b"esc%1B[0m%0A"), (b"\xff\xfe", b"\xff\xfe"),
    (b"100%", b"100%"), (b"..x", b"..x"),
])
def test_sanitize(raw, safe):
    assert sanitize(raw) == safe


def test_sanitize_long_names_stay_distinct():
    a, b = sanitize(b"/" * 200 + b"a"), sanitize(b"/" * 200 + b"b")
    assert len(a) <= 255 and len(b) <= 255 and a != b and b"/" not in a


def test_display_and_body_escape():
    assert display(b"ok") == "ok"
    assert display(b"a\nb\\\xff") == "a\\x0ab\\\\\\xff"
    assert escape(b"/a|b%c\x01\xff") == "/a%7Cb%25c^%FF"


def _inode(mode: int) -> InodeRecord:
    from vexfs_tools.volume.inodes import new_inode
    return InodeRecord(5, new_inode(i_mode=mode), b"")


def test_mode_string_as_tsk():
    assert mode_string(C.FT_REG_FILE, _inode(0o100644)) == "r/rrw-r--r--"
    assert mode_string(C.FT_DIR, _inode(0o41777)) == "d/drwxrwxrwt"
    assert mode_string(C.FT_REG_FILE, _inode(0o104754)) == "r/rrwsr-xr--"
    assert mode_string(C.FT_SYMLINK, _inode(0o120777)) == "l/lrwxrwxrwx"
    assert mode_string(C.FT_UNKNOWN, None) == "-/----------"


def test_progress_only_on_a_terminal():
    import io

    from vexfs_tools.cli.output import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    shown, piped, quiet = Terminal(), io.StringIO(), Terminal()
    for stream, kwargs in ((shown, {}), (piped, {}), (quiet, {"quiet": True})):
        progress = Progress("reading", stream=stream, **kwargs)
        progress(5, 10)
        progress.done()
    assert shown.getvalue().startswith("\rreading: 5/10 (50%)") and shown.getvalue().endswith("\r")
    assert piped.getvalue() == "" and quiet.getvalue() == ""


# --- the bitmap as the views read it -------------------------------------------------------

def test_bitmap_bits_agree_with_test_across_a_bitmap_block(fresh_image):
    image = fresh_image("256M")  # extended: 32736 bits a bitmap block, so two blocks or more
    with Volume.open(str(image), writable=True) as volume:
        g = volume.geometry
        per = g.bits_per_bitmap_block
        assert g.bitmap_blocks >= 2
        for block in (per - 3, per, per + 2):
            volume.bitmap.set(block, True)  # cached, not yet written: the views see it too
        bits = volume.bitmap.bits(per - 10, 20)
        assert bits.dtype == bool and bits.shape == (20,)
        assert bits.tolist() == [volume.bitmap.test(b) for b in range(per - 10, per + 10)]
        assert bits[7] and bits[10] and bits[12]
        assert volume.bitmap.bits(0, g.first_data_block).all()  # the metadata is in use
        end = g.addressable_blocks
        assert volume.bitmap.bits(end - 2, 5).tolist() == [volume.bitmap.test(end - 2), volume.bitmap.test(end - 1),
                                                          False, False, False]
        assert volume.bitmap.bits(end, 3).tolist() == [False] * 3
        assert volume.bitmap.bits(5, 0).size == 0
        for block in (per - 3, per, per + 2):
            volume.bitmap.set(block, False)
