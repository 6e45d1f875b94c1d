"""The mount's caching rules (vexfs_tools/mount/ops.py): the kernel keeps attributes and
pages only of what one name reaches, so no name of a file ever shows a stale size, time,
link count or contents; readdirplus answers carry the same attributes as stat; reads
straight into libfuse's buffer give zeros in holes, small files and big."""

from __future__ import annotations

import os
import time

from tests.writes import fsck_clean, layout, layout_args  # noqa: F401 (fixtures)

from .fuse import mounted, needs_fuse

pytestmark = needs_fuse


def test_one_link_files_show_each_change_at_once(tmp_path, fresh_image, layout):
    image = fresh_image("16M", *layout_args(layout))
    mnt = tmp_path / "mnt"
    with mounted(image, mnt):
        f = mnt / "f"
        f.write_bytes(b"12345")
        assert os.stat(f).st_size == 5  # cached from here on (one link)
        with open(f, "ab") as out:
            out.write(b"678")
        assert os.stat(f).st_size == 8
        os.utime(f, (1_000_000_000, 1_000_000_000))
        assert os.stat(f).st_mtime == 1_000_000_000
        with open(f, "r+b") as out:
            out.write(b"x")
        assert os.stat(f).st_mtime > 1_000_000_000
        os.truncate(f, 2)
        assert os.stat(f).st_size == 2 and f.read_bytes() == b"x2"
        os.chmod(f, 0o640)
        assert os.stat(f).st_mode & 0o777 == 0o640
        d = mnt / "d"
        d.mkdir()
        before = os.stat(d).st_nlink
        (d / "sub").mkdir()
        assert os.stat(d).st_nlink == before + 1  # a directory's own changes show at once
    fsck_clean(image)


def test_a_second_name_drops_what_the_first_cached(tmp_path, fresh_image, layout):
    image = fresh_image("16M", *layout_args(layout))
    mnt = tmp_path / "mnt"
    with mounted(image, mnt):
        a, b = mnt / "a", mnt / "b"
        a.write_bytes(b"old contents")
        assert os.stat(a).st_nlink == 1 and os.stat(a).st_size == 12  # cached
        held = os.open(a, os.O_RDONLY)  # through the page cache (one link when opened)
        try:
            assert os.pread(held, 100, 0) == b"old contents"
            os.link(a, b)
            assert os.stat(a).st_nlink == 2  # not the cached 1
            with open(b, "r+b") as out:
                out.write(b"NEW")
                out.seek(0, os.SEEK_END)
                out.write(b" and more")
            assert os.stat(a).st_size == os.stat(b).st_size == 21
            assert os.pread(held, 100, 0) == b"NEW contents and more"  # no stale page
            assert a.read_bytes() == b"NEW contents and more"
            os.truncate(b, 3)
            assert os.stat(a).st_size == 3 and os.pread(held, 100, 0) == b"NEW"
        finally:
            os.close(held)
        os.unlink(b)
        assert os.stat(a).st_nlink == 1
    fsck_clean(image)


def test_an_open_file_renamed_then_linked_still_sees_writes(tmp_path, fresh_image):
    image = fresh_image("16M")
    mnt = tmp_path / "mnt"
    with mounted(image, mnt):
        (mnt / "d").mkdir()
        (mnt / "d" / "a").write_bytes(b"aaaa")
        held = os.open(mnt / "d" / "a", os.O_RDONLY)
        try:
            assert os.pread(held, 10, 0) == b"aaaa"
            os.rename(mnt / "d", mnt / "e")
            os.link(mnt / "e" / "a", mnt / "b")
            with open(mnt / "b", "r+b") as out:
                out.write(b"bb")
            assert os.pread(held, 10, 0) == b"bbaa"
        finally:
            os.close(held)
    fsck_clean(image)


def test_listing_attributes_match_stat(tmp_path, fresh_image, layout):
    image = fresh_image("16M", *layout_args(layout))
    mnt = tmp_path / "mnt"
    with mounted(image, mnt):
        for i in range(30):
            (mnt / f"f{i}").write_bytes(b"z" * i)
        os.link(mnt / "f3", mnt / "g3")
        (mnt / "dir").mkdir()
        os.symlink("f1", mnt / "s")
    with mounted(image, mnt):  # a fresh kernel cache: attributes come from readdirplus
        listed = {e.name: e.stat(follow_symlinks=False) for e in os.scandir(mnt)}
        time.sleep(0.05)
        for name, st in listed.items():
            again = os.stat(mnt / name, follow_symlinks=False)
            assert (st.st_ino, st.st_size, st.st_nlink, st.st_mode, st.st_mtime) == \
                (again.st_ino, again.st_size, again.st_nlink, again.st_mode, again.st_mtime), name
        assert listed["f7"].st_size == 7 and listed["f3"].st_nlink == 2 == listed["g3"].st_nlink
        with open(mnt / "g3", "ab") as out:  # through one name, seen through the other
            out.write(b"+")
        assert os.stat(mnt / "f3").st_size == 4
    fsck_clean(image)


def test_holes_read_as_zeros_small_and_big(tmp_path, fresh_image):
    image = fresh_image("32M")
    mnt = tmp_path / "mnt"
    sizes = {"small": (5000, b"tail"), "big": (3 << 20, b"end of a big sparse file")}
    with mounted(image, mnt):
        for name, (at, data) in sizes.items():
            with open(mnt / name, "wb") as out:
                out.write(b"head")
                out.seek(at)
                out.write(data)
        # the same read of each through the mount that wrote them
        for name, (at, data) in sizes.items():
            assert (mnt / name).read_bytes() == b"head" + bytes(at - 4) + data
    with mounted(image, mnt):
        for name, (at, data) in sizes.items():
            got = (mnt / name).read_bytes()
            assert got == b"head" + bytes(at - 4) + data, name
            with open(mnt / name, "rb") as f:
                f.seek(at - 10)
                assert f.read(10 + len(data)) == bytes(10) + data
    fsck_clean(image)
