"""The write API (volume/namespace.py) in both layouts: each operation reads back after a
reopen, refusals carry POSIX errnos and change nothing, and every test ends with
`fsck.vexfs -fn` finding nothing. A seeded model test applies random operations to the
image and to a host directory and compares."""

from __future__ import annotations

import errno as E
import os
import random
from pathlib import Path

import pytest

from tests.conftest import digest, run
from tests.writes import fsck_clean, image, layout  # noqa: F401 (fixtures)
from vexfs_tools.format import constants as C
from vexfs_tools.volume import Volume
from vexfs_tools.volume.namespace import Namespace, NamespaceError

BLOCK = 4096
ROOT = C.ROOT_INO


def errno_of(call, *args) -> int:
    with pytest.raises(NamespaceError) as info:
        call(*args)
    return info.value.errno


def test_create_write_read_sparse(image, layout):
    with Volume.open(str(image), writable=True) as volume:
        ns = Namespace(volume)
        ino = ns.create(ROOT, b"f", 0o640, uid=5, gid=6)
        ns.write(ino, 10, b"hello")
        ns.write(ino, 3 * BLOCK + 100, b"x" * 5000)  # a hole at blocks 1..2
        sparse = ns.create(ROOT, b"sparse")
        ns.write(sparse, 11 * BLOCK, b"end")
    with Volume.open(str(image)) as volume:
        ns = Namespace(volume)
        inode = volume.read_inode(ino)
        assert inode.i_size == 3 * BLOCK + 5100 and inode.i_mode == 0o100640
        assert inode.i_blocks == 3 and inode.i_block[1] == inode.i_block[2] == 0
        assert ns.read(ino, 0, 20) == bytes(10) + b"hello" + bytes(5)
        assert ns.read(ino, 3 * BLOCK + 100, 6000) == b"x" * 5000
        assert volume.read_inode(sparse).i_blocks == 1
    fsck_clean(image)


def test_efbig_and_enospc_change_nothing(image, layout, tmp_path):
    with Volume.open(str(image), writable=True) as volume:
        ns = Namespace(volume)
        ino = ns.create(ROOT, b"f")
    before = digest(image)
    with Volume.open(str(image), writable=True) as volume:
        ns = Namespace(volume)
        limit = volume.max_file_size()
        assert errno_of(ns.write, ino, limit - 1, b"ab") == E.EFBIG
        assert errno_of(ns.truncate, ino, limit + 1) == E.EFBIG
        if layout == "kernel":
            assert limit == C.KERNEL_MAX_FILE_SIZE
    assert digest(image) == before
    small = tmp_path / "small.img"
    run("mkfs.vexfs", "-q", "-s", "1M", *(("--compat", "kernel") if layout == "kernel" else ()), small,
        check=True)
    with Volume.open(str(small), writable=True) as volume:
        ns = Namespace(volume)
        names = []
        with pytest.raises(NamespaceError) as info:
            for n in range(10_000):
                f = ns.create(ROOT if layout == "extended" else ROOT, b"f%d" % n)
                names.append(f)
                ns.write(f, 0, bytes(min(volume.max_file_size(), 40 * BLOCK)))
        assert info.value.errno == E.ENOSPC
    fsck_clean(small)


def test_truncate_shrink_frees_and_zeroes(image, layout):
    size = 12 * BLOCK if layout == "kernel" else 2000 * BLOCK
    with Volume.open(str(image), writable=True) as volume:
        ns = Namespace(volume)
        free0 = volume.sb.s_free_blocks
        ino = ns.create(ROOT, b"f")
        ns.write(ino, 0, b"\xaa" * size)
        ns.truncate(ino, 5000)
        assert volume.read_inode(ino).i_blocks == 2
        assert volume.sb.s_free_blocks == free0 - 2
        ns.truncate(ino, 9000)  # grows as a hole; the old tail bytes read as zeros
        assert ns.read(ino, 0, 9000) == b"\xaa" * 5000 + bytes(4000)
        ns.truncate(ino, 0)
        assert volume.read_inode(ino).i_blocks == 0 and volume.sb.s_free_blocks == free0
    fsck_clean(image)


def test_unlink_mkdir_rmdir_links(image):
    with Volume.open(str(image), writable=True) as volume:
        ns = Namespace(volume)
        free_b, free_i = volume.sb.s_free_blocks, volume.sb.s_free_inodes
        root_links = volume.read_inode(ROOT).i_links_count
        d = ns.mkdir(ROOT, b"d", 0o750)
        f = ns.create(d, b"f")
        ns.write(f, 0, b"data" * 1000)
        assert errno_of(ns.rmdir, ROOT, b"d") == E.ENOTEMPTY
        assert errno_of(ns.unlink, ROOT, b"d") == E.EISDIR
        assert errno_of(ns.rmdir, d, b"f") == E.ENOTDIR
        assert errno_of(ns.mkdir, ROOT, b"d") == E.EEXIST
        assert errno_of(ns.create, ROOT, b"n" * 256) == E.ENAMETOOLONG
        assert errno_of(ns.create, f, b"x") == E.ENOTDIR
        assert errno_of(ns.unlink, ROOT, b"missing") == E.ENOENT
        assert errno_of(ns.link, d, ROOT, b"dlink") == E.EPERM
        ns.create(ROOT, b"n" * 255)
        ns.link(f, ROOT, b"hard")
        assert volume.read_inode(f).i_links_count == 2
        ns.unlink(d, b"f")
        assert ns.read(ns.lookup(ROOT, b"hard"), 0, 4) == b"data"
        ns.rmdir(ROOT, b"d")
        ns.unlink(ROOT, b"hard")
        ns.unlink(ROOT, b"n" * 255)
        assert (volume.sb.s_free_blocks, volume.sb.s_free_inodes) == (free_b, free_i)
        assert volume.read_inode(ROOT).i_links_count == root_links
    fsck_clean(image)


def test_rename_rules(image):
    with Volume.open(str(image), writable=True) as volume:
        ns = Namespace(volume)
        root_links = volume.read_inode(ROOT).i_links_count
        a, b = ns.mkdir(ROOT, b"a"), ns.mkdir(ROOT, b"b")
        sub = ns.mkdir(a, b"sub")
        f, g = ns.create(a, b"f"), ns.create(b, b"g")
        ns.write(g, 0, b"old target")
        assert errno_of(ns.rename, ROOT, b"a", sub, b"x") == E.EINVAL  # under itself
        assert errno_of(ns.rename, ROOT, b"a", a, b"x") == E.EINVAL
        assert errno_of(ns.rename, a, b"f", ROOT, b"b") == E.EISDIR
        assert errno_of(ns.rename, ROOT, b"a", b, b"g") == E.ENOTDIR
        assert errno_of(ns.rename, ROOT, b"b", ROOT, b"a") == E.ENOTEMPTY
        ns.rename(a, b"f", b, b"g")  # over a file, across directories
        assert ns.lookup(b, b"g") == f and ns.find(a, b"f") is None
        assert not volume.read_inode(g).in_use
        ns.rename(a, b"sub", b, b"sub")  # a directory across: '..' and link counts follow
        assert ns.parent_of(sub) == b
        assert volume.read_inode(a).i_links_count == 2 and volume.read_inode(b).i_links_count == 3
        empty = ns.mkdir(ROOT, b"empty")
        ns.rename(b, b"sub", ROOT, b"empty")  # over an empty directory
        assert ns.lookup(ROOT, b"empty") == sub and not volume.read_inode(empty).in_use
        assert volume.read_inode(ROOT).i_links_count == root_links + 3
        ns.link(f, ROOT, b"alias")
        ns.rename(ROOT, b"alias", b, b"g")  # two names of one inode: nothing happens
        assert ns.find(ROOT, b"alias") == f and volume.read_inode(f).i_links_count == 2
    fsck_clean(image)


def test_symlink_attributes_statfs(image):
    with Volume.open(str(image), writable=True) as volume:
        ns = Namespace(volume)
        s = ns.symlink(ROOT, b"s", b"target/of/link")
        assert ns.readlink(s) == b"target/of/link"
        assert volume.read_inode(s).i_mode == 0o120777
        f = ns.create(ROOT, b"f")
        ns.chmod(f, 0o4711)
        ns.chown(f, 1000, -1)
        ns.utimens(f, 1_600_000_000, 1_600_000_001)
        inode = volume.read_inode(f)
        assert (inode.i_mode, inode.i_uid, inode.i_gid) == (0o104711, 1000, 0)
        assert (inode.i_atime, inode.i_mtime) == (1_600_000_000, 1_600_000_001)
        stat = ns.statfs()
        assert stat["f_bfree"] == volume.sb.s_free_blocks and stat["f_namemax"] == 255
        ns.fsync()
    fsck_clean(image)


def test_kernel_directory_full_is_enospc(fresh_image):
    image = fresh_image("16M", "--compat", "kernel")
    with Volume.open(str(image), writable=True) as volume:
        ns = Namespace(volume)
        n = 0
        with pytest.raises(NamespaceError) as info:
            while True:
                ns.create(ROOT, b"%0200d" % n)
                n += 1
        assert info.value.errno == E.ENOSPC and n > 10
    fsck_clean(image)


class Model:
    """The same operations on the image (through Namespace) and on a host directory."""

    def __init__(self, ns: Namespace, host: Path, rng: random.Random, max_size: int):
        self.ns, self.host, self.rng, self.max_size = ns, host, rng, max_size

    def paths(self, kind: str) -> list[str]:
        out = []
        for dirpath, dirs, files in os.walk(self.host):
            rel = os.path.relpath(dirpath, self.host)
            rel = "" if rel == "." else rel + "/"
            out += [rel + d for d in dirs] if kind == "dir" else [rel + f for f in files]
        return sorted(out)

    def step(self) -> None:
        rng, ns = self.rng, self.ns
        files, dirs = self.paths("file"), self.paths("dir")
        op = rng.choice(["create", "write", "write", "truncate", "mkdir", "unlink", "rename",
                         "link", "rmdir", "chmod"])
        where = rng.choice([""] + [d + "/" for d in dirs])
        name = where + rng.choice("abcdefgh") + str(rng.randrange(5))
        if op == "create" and not (self.host / name).exists():
            ns.create(*ns.split(name))
            (self.host / name).touch(0o644)
        elif op == "write" and files:
            path = rng.choice(files)
            offset = rng.randrange(self.max_size // 2)
            data = rng.randbytes(rng.randrange(1, 9000))
            data = data[:self.max_size - offset]
            ns.write(ns.resolve(path), offset, data)
            with open(self.host / path, "r+b") as f:
                f.seek(offset)
                f.write(data)
        elif op == "truncate" and files:
            path, size = rng.choice(files), rng.randrange(self.max_size)
            ns.truncate(ns.resolve(path), size)
            os.truncate(self.host / path, size)
        elif op == "mkdir" and not (self.host / name).exists() and len(dirs) < 8:
            ns.mkdir(*ns.split(name))
            (self.host / name).mkdir()
        elif op == "unlink" and files:
            path = rng.choice(files)
            ns.unlink(*ns.split(path))
            (self.host / path).unlink()
        elif op == "rmdir" and dirs:
            path = rng.choice(dirs)
            if not any((self.host / path).iterdir()):
                ns.rmdir(*ns.split(path))
                (self.host / path).rmdir()
        elif op == "rename" and files:
            path = rng.choice(files)
            if not (self.host / name).is_dir():
                ns.rename(*ns.split(path), *ns.split(name))
                os.rename(self.host / path, self.host / name)
        elif op == "link" and files and not (self.host / name).exists():
            path = rng.choice(files)
            ns.link(ns.resolve(path), *ns.split(name))
            os.link(self.host / path, self.host / name)
        elif op == "chmod" and files:
            path, mode = rng.choice(files), rng.randrange(0o1000)
            ns.chmod(ns.resolve(path), mode)
            os.chmod(self.host / path, mode)

    def compare(self) -> None:
        ns = self.ns
        assert self.paths("dir") == sorted(self.dir_paths(ROOT, ""))
        for path in self.paths("file"):
            inode = ns.inode(ns.resolve(path))
            st = os.stat(self.host / path)
            assert (inode.i_size, inode.i_links_count, inode.i_mode & 0o777) == \
                   (st.st_size, st.st_nlink, st.st_mode & 0o777), path
            assert ns.read(inode.ino, 0, inode.i_size) == (self.host / path).read_bytes(), path

    def dir_paths(self, ino: int, prefix: str) -> list[str]:
        out = []
        for e in self.ns.entries(ino):
            if e.file_type == C.FT_DIR and e.name not in (b".", b".."):
                out.append(prefix + os.fsdecode(e.name))
                out += self.dir_paths(e.ino, prefix + os.fsdecode(e.name) + "/")
        return out


@pytest.mark.parametrize("seed", [1, 2])
def test_model_against_host(image, layout, tmp_path, seed):
    host = tmp_path / "host"
    host.mkdir()
    if layout == "extended":
        (host / "lost+found").mkdir()
    max_size = C.KERNEL_MAX_FILE_SIZE if layout == "kernel" else 300_000
    with Volume.open(str(image), writable=True) as volume:
        model = Model(Namespace(volume), host, random.Random(seed), max_size)
        for n in range(300):
            model.step()
            if n % 50 == 49:
                model.compare()
        model.compare()
    with Volume.open(str(image)) as volume:
        Model(Namespace(volume), host, random.Random(0), max_size).compare()
    fsck_clean(image)


def test_creates_after_many_unlinks_do_not_rescan_the_directory(fresh_image):
    """A directory left full of small holes (every other name removed): each new name is
    tried where the last one fit and the search goes round from there, so N creates read
    about N + blocks directory blocks, not N times the directory."""
    image = fresh_image("64M")
    with Volume.open(str(image), writable=True) as volume:
        ns = Namespace(volume)
        crowd = ns.mkdir(ROOT, b"crowd")
        for i in range(3000):
            ns.create(crowd, b"name-%05d" % i)
        for i in range(0, 3000, 2):
            ns.unlink(crowd, b"name-%05d" % i)
        blocks = len(volume.dir_blocks(volume.read_inode(crowd)))
        reads = 0
        read_block = volume.read_block

        def counting(block):
            nonlocal reads
            reads += 1
            return read_block(block)

        volume.read_block = counting
        for i in range(1500):
            ns.create(crowd, b"anew-%05d" % i)  # as long as the old names: each fills one hole
        volume.read_block = read_block
        assert blocks > 10
        assert reads < 3 * 1500 + 4 * blocks, (reads, blocks)
        assert len(volume.dir_blocks(volume.read_inode(crowd))) == blocks  # the holes took them all
        ns.fsync()
    fsck_clean(image)
    with Volume.open(str(image)) as volume:
        names = Namespace(volume).listing(crowd)
    assert len([n for n in names if n.startswith(b"anew-")]) == 1500 and len(names) == 3000 + 2  # . and ..
