"""The mount's fast paths give what the plain ones give: Volume.patch_inode writes the bytes
write_inode writes (checksums and counts too), a new inode's template is never shared, a
struct stat filled from raw values equals the getattr answer, and the request buffer view
reads and writes libfuse's own memory."""

from __future__ import annotations

import ctypes

import pytest

from tests.writes import fsck_clean, image, layout  # noqa: F401 (fixtures)
from vexfs_tools.format import constants as C
from vexfs_tools.volume import Volume
from vexfs_tools.volume.inodes import new_inode, parse_inode
from vexfs_tools.volume.namespace import Namespace


def table_bytes(volume: Volume) -> bytes:
    volume.flush_metadata()
    g = volume.geometry
    return volume.device.read(g.inode_table_start * C.BLOCK_SIZE, g.inode_table_blocks * C.BLOCK_SIZE)


@pytest.mark.parametrize("names", [("i_links_count", "i_mtime", "i_ctime"), ("i_links_count", "i_ctime"),
                                   ("i_mode", "i_links_count", "i_ctime")])
def test_patch_inode_writes_what_write_inode_writes(image, names):  # noqa: F811
    with Volume.open(str(image), writable=True) as volume:
        ns = Namespace(volume)
        ino = ns.create(C.ROOT_INO, b"f", 0o644, uid=7, gid=8)
        ns.write(ino, 0, b"x" * 5000)
    before = image.read_bytes()
    results = []
    for patch in (False, True):
        image.write_bytes(before)
        with Volume.open(str(image), writable=True) as volume:
            fields = volume.read_inode(ino).fields
            values = dict(zip(names, (0, 3, 12345)))
            if patch:
                volume.patch_inode(ino, values)
            else:
                fields.update(values)
                volume.write_inode(ino, fields)
            results.append((table_bytes(volume), volume.sb.s_free_inodes, volume.sb_dirty))
            assert volume.inode_checksum_ok(volume.read_inode(ino))
    assert results[0] == results[1]


def test_unlink_and_rmdir_through_patches_leave_a_clean_image(image):  # noqa: F811
    with Volume.open(str(image), writable=True) as volume:
        ns = Namespace(volume)
        d = ns.mkdir(C.ROOT_INO, b"d", 0o755)
        inos = [ns.create(d, b"f%d" % i, 0o644) for i in range(40)]
        for i, ino in enumerate(inos):
            ns.write(ino, 0, bytes([i]) * (i * 100 + 1))
        ns.link(inos[0], C.ROOT_INO, b"hard")
        free = volume.sb.s_free_inodes
        for i in range(40):
            ns.unlink(d, b"f%d" % i)
        assert volume.sb.s_free_inodes == free + 39  # inos[0] keeps its other name
        assert volume.read_inode(inos[0]).i_links_count == 1
        ns.rmdir(C.ROOT_INO, b"d")
        assert ns.read(inos[0], 0, 10) == b"\0"
    fsck_clean(image)


def test_new_inode_template_is_never_shared():
    a, b = new_inode(i_mode=0o100644), new_inode()
    a.i_block[0] = 99
    a["i_size"] = 5
    assert b.i_block[0] == 0 and b.i_size == 0 and new_inode().i_block[0] == 0
    assert list(a) == list(parse_inode(0, bytes(C.INODE_SIZE)).fields)


def test_stat_values_equal_the_getattr_answer(image):  # noqa: F811
    mfusepy = pytest.importorskip("mfusepy")
    from vexfs_tools.mount.ops import VexfsOperations, fill_stat_values  # noqa: PLC0415

    with Volume.open(str(image), writable=True) as volume:
        ops = VexfsOperations(volume, writable=True, uid=1234)
        ino = ops.ns.create(C.ROOT_INO, b"f", 0o640, uid=5, gid=6)
        ops.ns.write(ino, 0, b"y" * 9000)
        answer = ops.getattr("/f")
        st = mfusepy.c_stat()
        fill_stat_values(st, *ops.stat_values("/f"), ops.uid, ops.gid)
        assert (st.st_ino, st.st_mode, st.st_nlink, st.st_uid, st.st_gid, st.st_size, st.st_blocks) == (
            answer["st_ino"], answer["st_mode"], answer["st_nlink"], answer["st_uid"], answer["st_gid"],
            answer["st_size"], answer["st_blocks"])
        assert (answer["st_uid"], answer["st_gid"], answer["st_size"]) == (1234, 6, 9000)
        assert st.st_mtimespec.tv_sec * 10**9 == answer["st_mtime"]
        with pytest.raises(mfusepy.FuseOSError):
            ops.stat_values("/missing")


def test_buffer_view_is_the_request_buffer():
    pytest.importorskip("mfusepy")
    from vexfs_tools.mount.ops import buffer_view  # noqa: PLC0415

    raw = ctypes.create_string_buffer(b"abcdef", 6)
    pointer = ctypes.cast(raw, ctypes.POINTER(ctypes.c_byte))
    assert bytes(buffer_view(pointer, 4, writable=False)) == b"abcd"
    view = buffer_view(pointer, 6, writable=True)
    view[1:3] = b"XY"
    assert raw.raw == b"aXYdef"
    assert len(buffer_view(pointer, 0, writable=False)) == 0
    assert len(buffer_view(ctypes.POINTER(ctypes.c_byte)(), 0, writable=True)) == 0


def test_a_directory_touch_that_changes_nothing_is_not_written(image, monkeypatch):  # noqa: F811
    """rm -r empties a directory within a second: its record is rewritten once, not per name."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    with Volume.open(str(image), writable=True) as volume:
        ns = Namespace(volume)
        d = ns.mkdir(C.ROOT_INO, b"d", 0o755)
        for i in range(5):
            ns.create(d, b"f%d" % i, 0o644)
        ns.utimens(d, 5, 5)  # an old mtime: the first unlink must change it
        before = volume.inode_writes
        ns.unlink(d, b"f0")
        assert volume.inode_writes == before + 2  # the directory, then the freed file
        for i in range(1, 5):
            ns.unlink(d, b"f%d" % i)
        assert volume.inode_writes == before + 6  # each freed file only
        fields = volume.read_inode(d).fields
        assert (fields.i_mtime, fields.i_ctime) == (1700000000, 1700000000)
        assert volume.inode_checksum_ok(volume.read_inode(d))
    fsck_clean(image)


def test_unlink_frees_mapped_blocks_of_every_kind(image):  # noqa: F811
    """unlink reads the record's values, not a Container: files with direct blocks, with
    indirect ones (extended), sparse and open ones are freed as before."""
    with Volume.open(str(image), writable=True) as volume:
        ns = Namespace(volume)
        free_blocks = volume.sb.s_free_blocks
        small, sparse, big, held = (ns.create(C.ROOT_INO, name, 0o644) for name in (b"s", b"p", b"b", b"h"))
        ns.write(small, 0, b"a" * 5000)
        ns.write(sparse, 9 * C.BLOCK_SIZE, b"z")
        ns.write(big, 0, b"b" * (volume.max_file_size() if not volume.indirect else 20 * C.BLOCK_SIZE))
        ns.write(held, 0, b"h")
        ns.opened(held)
        for name in (b"s", b"p", b"b", b"h"):
            ns.unlink(C.ROOT_INO, name)
        assert volume.read_inode(held).i_mode and volume.read_inode(held).i_links_count == 0
        ns.released(held)
        assert not any(volume.read_inode(ino).i_mode for ino in (small, sparse, big, held))
        assert volume.sb.s_free_blocks == free_blocks
    fsck_clean(image)


def test_reads_from_values_equal_the_plain_reads(image):  # noqa: F811
    pytest.importorskip("mfusepy")
    from vexfs_tools.mount.ops import VexfsOperations  # noqa: PLC0415

    with Volume.open(str(image), writable=True) as volume:
        ops = VexfsOperations(volume, writable=True)
        ns = ops.ns
        ino = ns.create(C.ROOT_INO, b"f", 0o644)
        ns.write(ino, 0, bytes(range(256)) * 20)
        ns.write(ino, 7 * C.BLOCK_SIZE + 5, b"after a hole")
        if volume.indirect:
            ns.write(ino, 14 * C.BLOCK_SIZE, b"indirect")
        size = volume.read_inode(ino).i_size
        values = ops.volume.read_inode_values(ino)
        for offset, length in ((0, 1), (0, 4096), (100, 9000), (4090, 20), (5 * C.BLOCK_SIZE, 3 * C.BLOCK_SIZE),
                               (0, size + 100), (size - 3, 10), (size, 10), (size + 5, 10)):
            buffer = bytearray(b"\xff" * length)
            n = ns.read_values_into(ino, values, offset, buffer)
            assert bytes(buffer[:n]) == ns.read(ino, offset, length)


def test_freeing_a_free_block_changes_nothing(image):  # noqa: F811
    """Volume.free_block through BlockBitmap.clear: a bit already clear is not counted again."""
    with Volume.open(str(image), writable=True) as volume:
        block = volume.allocate_block()
        free = volume.sb.s_free_blocks
        volume.free_block(block)
        assert volume.sb.s_free_blocks == free + 1 and not volume.bitmap.test(block)
        volume.flush_metadata()
        assert not volume.bitmap.clear(block)
        assert not volume.bitmap._dirty
        volume.free_block(block)
        assert volume.sb.s_free_blocks == free + 1
    fsck_clean(image)
