"""mkfs.vexfs -d: a directory tree copied in reads back exactly, in both layouts."""

from __future__ import annotations

import hashlib
import json
import os
import random
import stat
import struct

import pytest

from tests.conftest import run
from vexfs_tools.inspect.walk import walk_tree
from vexfs_tools.volume import Volume

BLOCK = 4096
MiB = 1 << 20
UUID = "5eed5eed-0000-4000-8000-000000000001"
BASE_TIME = 1_400_000_000


def content(name: str, size: int) -> bytes:
    return random.Random(name).randbytes(size)


def write(path, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def build_tree(root, *, extended: bool, many: int = 500) -> None:
    """The sample tree: what the kernel layout holds, and for the extended layout also what
    only it can (indirect and double-indirect files, symlinks, hard links, a fifo, a
    multi-block directory)."""
    files = {"empty": 0, "one": 1, "a/f4095": 4095, "a/b/f4096": 4096, "a/b/c/f4097": 4097,
             "f49152": 49152, "a/b/c/d/deep.txt": 100}
    if extended:
        files.update({"f49153": 49153, "big/five_mib": 5 * MiB, "hard1": 3000})
    for rel, size in files.items():
        write(os.path.join(root, rel), content(rel, size))
    os.makedirs(os.path.join(root, "emptydir"))
    os.chmod(os.path.join(root, "empty"), 0o600)
    os.chmod(os.path.join(root, "one"), 0o4755)
    os.chmod(os.path.join(root, "a/f4095"), 0o2640)
    os.chmod(os.path.join(root, "emptydir"), 0o1777)
    os.chown(os.path.join(root, "a/f4095"), 1234, 5678)
    os.chown(os.path.join(root, "a/b"), 1234, 5678)
    if extended:
        os.symlink("a/b/f4096", os.path.join(root, "link"))
        os.symlink("x" * 300, os.path.join(root, "a/long-dangling-link"))
        os.link(os.path.join(root, "hard1"), os.path.join(root, "a/b/hard2"))
        os.mkfifo(os.path.join(root, "fifo"), 0o640)
        os.makedirs(os.path.join(root, "many"))
        for i in range(many):
            open(os.path.join(root, "many", f"entry_{i:03d}"), "wb").close()
    # Distinct times for everything, set bottom-up (creating a child changes its parent).
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        paths += [os.path.join(dirpath, n) for n in dirnames + filenames]
    for i, path in enumerate(sorted(paths, key=lambda p: -p.count(os.sep))):
        t = BASE_TIME + 1000 * i
        os.utime(path, (t + 7, t), follow_symlinks=False)
    os.utime(root, (BASE_TIME - 5, BASE_TIME - 10))


def host_entries(root) -> dict[bytes, os.stat_result]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            out[os.fsencode("/" + os.path.relpath(path, root))] = os.lstat(path)
    return out


def read_all(volume, inode) -> bytes:
    return b"".join(volume.read_file(inode))


def mkfs(*args, env=None):
    return run("mkfs.vexfs", "-q", *args, env=env, check=True)


@pytest.fixture(params=["kernel", "extended"])
def layout(request):
    return request.param


def layout_args(layout):
    return ["--compat", "kernel"] if layout == "kernel" else []


def test_round_trip(tmp_path, layout, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    extended = layout == "extended"
    source = tmp_path / "tree"
    build_tree(source, extended=extended)
    expected = host_entries(source)
    root_st = os.stat(source)
    image = tmp_path / "img"
    mkfs(*layout_args(layout), "-d", source, "-s", "32M", image)

    with Volume.open(str(image)) as volume:
        found = dict(walk_tree(volume))
        assert volume.problems == []
        wanted = set(expected) | ({b"/lost+found"} if extended else set())
        assert set(found) == wanted

        root = volume.read_inode(1)
        assert root.i_mode == root_st.st_mode
        assert root.i_mtime == int(root_st.st_mtime) == BASE_TIME - 10
        subdirs_of_root = sum(1 for p, i in found.items() if p.count(b"/") == 1 and i.is_dir)
        assert root.i_links_count == 2 + subdirs_of_root

        for path, st in expected.items():
            inode = found[path]
            where = path.decode()
            assert inode.i_mode == st.st_mode, where
            assert stat.S_IFMT(inode.i_mode) == stat.S_IFMT(st.st_mode), where
            assert (inode.i_uid, inode.i_gid) == (st.st_uid, st.st_gid), where
            assert inode.i_mtime == int(st.st_mtime), where
            assert inode.i_ctime == int(st.st_ctime), where
            if stat.S_ISDIR(st.st_mode):
                subdirs = sum(1 for p, i in found.items()
                              if p.startswith(path + b"/") and p.count(b"/") == path.count(b"/") + 1
                              and i.is_dir)
                assert inode.i_links_count == 2 + subdirs, where
                assert inode.i_size % BLOCK == 0 and inode.i_size >= BLOCK, where
                dotdot = volume.lookup(inode, b"..")
                parent = path.rsplit(b"/", 1)[0] or b"/"
                assert dotdot == (1 if parent == b"/" else found[parent].ino), where
                assert volume.lookup(inode, b".") == inode.ino, where
            elif stat.S_ISLNK(st.st_mode):
                target = os.fsencode(os.readlink(source / path.decode()[1:]))
                assert inode.i_size == len(target), where
                assert read_all(volume, inode) == target, where
            elif stat.S_ISREG(st.st_mode):
                assert inode.i_size == st.st_size, where
                assert inode.i_links_count == st.st_nlink, where
                with open(source / path.decode()[1:], "rb") as f:
                    assert read_all(volume, inode) == f.read(), where
                assert inode.i_blocks == -(-st.st_size // BLOCK) + (
                    (st.st_size > 12 * BLOCK) + (st.st_size > (12 + 1023) * BLOCK) * 2), where
            else:
                assert stat.S_ISFIFO(st.st_mode), where
                assert inode.i_size == 0 and inode.i_blocks == 0, where
            if extended:
                assert volume.inode_checksum_ok(inode), where

        if extended:
            assert found[b"/hard1"].ino == found[b"/a/b/hard2"].ino
            assert found[b"/hard1"].i_links_count == 2
            five = found[b"/big/five_mib"]
            assert five.i_indirect and five.i_double_indirect and not five.i_triple_indirect
            assert five.i_blocks == 1280 + 3  # data, single, double and one of its children
            f49153 = found[b"/f49153"]
            assert f49153.i_indirect and not f49153.i_double_indirect
            many = found[b"/many"]
            assert len(volume.dir_blocks(many)) == many.i_size // BLOCK >= 3
            for _, block in volume.dir_blocks(many):
                assert volume.dir_block_checksum_ok(block, volume.read_block(block))
            lost = found[b"/lost+found"]
            assert lost.is_dir and lost.ino == 11

        # Every block an inode holds is unique, in the data area and marked used; nothing
        # else but fixed metadata is marked used.
        g = volume.geometry
        inodes = {i.ino: i for i in found.values()}
        inodes[1] = root
        held = []
        for inode in inodes.values():
            if stat.S_ISFIFO(inode.i_mode):
                continue
            block_map = volume.block_map(inode)
            mapped = [p for _, p in block_map.mapping()] + block_map.indirect_blocks()
            assert len(mapped) == inode.i_blocks, inode.ino
            assert block_map.problems == [], inode.ino
            held += mapped
        assert len(held) == len(set(held))
        assert all(g.first_data_block <= b < g.blocks_count and volume.bitmap.test(b) for b in held)
        used = g.blocks_count - volume.count_free_blocks()
        assert used == g.first_data_block + len(held) + (1 if g.backup_sb_block else 0)

    info = json.loads(run("dump.vexfs", "--json", image, check=True).stdout)
    assert info["free_blocks"]["recorded"] == info["free_blocks"]["counted"]
    assert info["free_inodes"]["recorded"] == info["free_inodes"]["counted"]
    distinct = {(st.st_dev, st.st_ino) for st in expected.values()}
    assert info["used_inodes"] == len(distinct) + 1 + extended  # + root (+ lost+found)
    assert info["problems"] == []


def test_inode_numbers_and_blocks_in_the_kernel_layout(tmp_path):
    """Kernel layout: inodes from 2, data blocks from 67 (the kernel's own starting points)."""
    source = tmp_path / "tree"
    write(source / "f", b"x" * 5000)
    image = tmp_path / "img"
    mkfs("--compat", "kernel", "-d", source, "-s", "1M", image)
    with Volume.open(str(image)) as volume:
        inode = volume.resolve("/f")
        assert inode.ino == 2
        assert list(inode.i_block[:2]) == [67, 68] and not any(inode.i_block[2:])
        assert inode.raw[88:112] == bytes(24)  # i_flags, i_generation, i_reserved, padding
    with open(image, "rb") as f:
        f.seek(66 * BLOCK)
        root_block = f.read(BLOCK)
    # ".", "..", "f": the last entry's rec_len reaches the end of the block (no tail)
    assert struct.unpack_from("<IHBB", root_block, 24) == (2, BLOCK - 24, 1, 1)
    assert root_block[32:33] == b"f"


# --- reproducible images ---------------------------------------------------------------


def sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_reproducible_image(tmp_path):
    """A freshly made tree (every time later than SOURCE_DATE_EPOCH), twice: same bytes."""
    source = tmp_path / "tree"
    build_tree(source, extended=True, many=50)
    for path in [source] + [p for p in source.rglob("*")]:
        os.utime(path, (2_000_000_000, 2_000_000_000), follow_symlinks=False)
    env = {"SOURCE_DATE_EPOCH": "1600000000"}
    hashes = []
    for name in ("one.img", "two.img"):
        mkfs("-U", UUID, "-d", source, "-s", "16M", tmp_path / name, env=env)
        hashes.append(sha256(tmp_path / name))
    assert hashes[0] == hashes[1]
    mkfs("-U", UUID, "-d", source, "-s", "16M", tmp_path / "other.img", env={"SOURCE_DATE_EPOCH": "1600000001"})
    assert sha256(tmp_path / "other.img") != hashes[0]


def test_reproducible_image_of_an_old_tree(tmp_path):
    """The same untouched tree, twice, its files older than SOURCE_DATE_EPOCH: same bytes.
    (Reading the tree must not leak into the second image, e.g. through access times.)"""
    source = tmp_path / "tree"
    build_tree(source, extended=False)
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    hashes = []
    for name in ("one.img", "two.img"):
        mkfs("-U", UUID, "-d", source, "-s", "4M", tmp_path / name, env=env)
        hashes.append(sha256(tmp_path / name))
    assert hashes[0] == hashes[1]


def test_times_clamped_to_source_date_epoch(tmp_path, layout):
    epoch = 1_700_000_000
    source = tmp_path / "tree"
    write(source / "old", b"old")
    write(source / "future", b"future")
    os.makedirs(source / "d")
    os.utime(source / "old", (1_500_000_000, 1_500_000_000))
    os.utime(source / "future", (2_100_000_000, 2_100_000_000))
    image = tmp_path / "img"
    mkfs(*layout_args(layout), "-d", source, "-s", "2M", image, env={"SOURCE_DATE_EPOCH": str(epoch)})
    with Volume.open(str(image)) as volume:
        assert volume.sb.s_mkfs_time == volume.sb.s_wtime == volume.sb.s_lastcheck == epoch
        inodes = [volume.read_inode(1)] + [i for _, i in walk_tree(volume)]
        for inode in inodes:
            assert max(inode.i_atime, inode.i_ctime, inode.i_mtime) <= epoch, inode.ino
        assert volume.resolve("/old").i_mtime == 1_500_000_000
        assert volume.resolve("/future").i_mtime == epoch
        assert volume.resolve("/future").i_atime == epoch
        assert volume.resolve("/d").i_ctime == epoch  # the host's ctime is now


# --- refusals --------------------------------------------------------------------------


@pytest.mark.parametrize("layout_name, files", [
    ("extended", {"big": 2_000_000}),
    ("kernel", {f"f{i}": 49152 for i in range(30)}),
])
def test_tree_too_big_for_the_image(tmp_path, layout_name, files):
    source = tmp_path / "tree"
    for name, size in files.items():
        write(source / name, content(name, size))
    image = tmp_path / "img"
    result = run("mkfs.vexfs", *layout_args(layout_name), "-d", source, "-s", "1M", image)
    assert result.returncode != 0
    assert "blocks" in result.stderr and "free" in result.stderr


def test_tree_too_big_refused_before_anything_is_written(tmp_path):
    """mkfs refuses before the first write: no image file is created, and an existing
    image given with -f keeps its bytes."""
    source = tmp_path / "tree"
    write(source / "big", content("big", 2_000_000))
    image = tmp_path / "new.img"
    result = run("mkfs.vexfs", "-d", source, "-s", "1M", image)
    assert result.returncode != 0
    assert not image.exists()

    existing = tmp_path / "existing.img"
    old = content("existing", 1 * MiB)
    existing.write_bytes(old)
    result = run("mkfs.vexfs", "-f", "-d", source, existing)
    assert result.returncode != 0
    assert existing.read_bytes() == old


def test_kernel_layout_limits_refused_before_writing(tmp_path):
    too_large = tmp_path / "t1"
    write(too_large / "f", b"y" * 49153)
    crowded = tmp_path / "t2"
    os.makedirs(crowded)
    for i in range(200):  # 200 entries of 24 bytes: more than one 4096-byte block
        open(crowded / f"name-{i:010d}", "wb").close()
    for source, words in ((too_large, "49152"), (crowded, "block")):
        image = tmp_path / "img"
        result = run("mkfs.vexfs", "--compat", "kernel", "-d", source, "-s", "4M", image)
        assert result.returncode != 0
        assert words in result.stderr
        assert not image.exists()


def test_a_vector_file_larger_than_the_write_buffer_streams_whole(tmp_path):
    """mkfs -d writes a vector file past WRITE_BUFFER straight to the device: its rows and
    the files placed before and after it read back exactly, and fsck passes."""
    import numpy as np

    tree = tmp_path / "tree"
    tree.mkdir()
    rows = np.random.default_rng(5).standard_normal((20500, 128)).astype("<f4")  # 10.5 MB
    np.save(tree / "m.vec.npy", rows)
    (tree / "a.txt").write_bytes(b"before\n" * 700)
    (tree / "z.txt").write_bytes(b"after\n" * 900)
    image = tmp_path / "v.img"
    run("mkfs.vexfs", "-q", "-s", "32M", "-d", tree, image, check=True)
    assert run("fsck.vexfs", "-fn", image).returncode == 0
    run("vexfs", "vectors", "export", image, "/m.vec", "-o", tmp_path / "out.npy", check=True)
    assert np.array_equal(np.load(tmp_path / "out.npy"), rows)
    assert run("vexfs", "cat", image, "/a.txt").stdout_bytes == b"before\n" * 700
    assert run("vexfs", "cat", image, "/z.txt").stdout_bytes == b"after\n" * 900
