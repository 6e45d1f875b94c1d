"""`vexfs mount` through a real FUSE mount: a round trip as Debian's fuse2fs test does, a
read-only mount that writes no byte and shows a kernel image's whole tree, refusals, the
clean flag, hard links seen at once, POSIX errnos and times, a seeded model against a host
directory, the vector ioctl, and a SIGKILL in the middle of writes."""

from __future__ import annotations

import errno as E
import fcntl
import filecmp
import hashlib
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import digest, kernel_image, kernel_md5, run, tool
from tests.writes import fsck_clean, layout, layout_args  # noqa: F401 (fixtures)
from vexfs_tools.format import constants as C
from vexfs_tools.format.offsets import field_span
from vexfs_tools.format.superblock import Superblock
from vexfs_tools.format import vector as V
from vexfs_tools.vectors.codec import encode
from vexfs_tools.volume import Volume

from .fuse import is_mounted, mounted, needs_fuse, wait_for

pytestmark = needs_fuse


def state_of(image: Path) -> int:
    """s_state as the superblock's bytes say, read past the mount's writer lock (a Volume
    open is refused while the image is mounted)."""
    span = field_span(Superblock, "s_state")
    with open(image, "rb") as f:
        return int.from_bytes(span.of(f.read(C.SUPERBLOCK_SIZE)), "little")


def make_tree(root: Path, rng: random.Random, max_size: int) -> None:
    (root / "docs" / "deep").mkdir(parents=True)
    for path, size in (("a.txt", 100), ("docs/b.bin", 5000), ("docs/deep/c.bin", max_size),
                       ("empty", 0), ("docs/page", 4096)):
        (root / path).write_bytes(rng.randbytes(size))
    os.symlink("docs/b.bin", root / "link")


def test_round_trip_like_fuse2fs(tmp_path, layout):
    max_size = C.KERNEL_MAX_FILE_SIZE if layout == "kernel" else 300_000
    src = tmp_path / "src"
    make_tree(src, random.Random(3), max_size)
    image = tmp_path / "fs.img"
    run("mkfs.vexfs", "-q", "-s", "16M", *layout_args(layout), "-d", src, image, check=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    # As users do: in the background, returning once mounted.
    result = run("vexfs", "mount", image, mnt)
    assert result.returncode == 0, result.stderr
    try:
        assert is_mounted(mnt)
        assert state_of(image) & C.STATE_CLEAN == 0  # not clean while mounted
        compare = filecmp.dircmp(src, mnt, ignore=["lost+found"])
        assert not (compare.left_only or compare.right_only or compare.diff_files), compare.report()
        for sub in ("docs", "docs/deep"):
            assert filecmp.dircmp(src / sub, mnt / sub).diff_files == []
        assert os.readlink(mnt / "link") == "docs/b.bin"
        (mnt / "new.txt").write_bytes(b"written through the mount\n")
        (mnt / "docs" / "newdir").mkdir()
        refused = run("vexfs", "mkdir", image, "/x")
        assert refused.returncode == 1 and "is mounted on" in refused.stderr
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
    assert wait_for(lambda: state_of(image) & C.STATE_CLEAN, 20)  # the daemon's last write
    time.sleep(0.3)
    fsck_clean(image)
    assert run("vexfs", "cat", image, "/new.txt").stdout == "written through the mount\n"
    assert run("vexfs", "cat", image, "/docs/deep/c.bin").stdout_bytes == (src / "docs/deep/c.bin").read_bytes()


def test_read_only_mount_of_the_kernel_tree_writes_nothing(tmp_path):
    image = kernel_image("tree", tmp_path)
    expected = kernel_md5("tree")
    before = digest(image)
    with mounted(image, tmp_path / "mnt", "ro") as _:
        mnt = tmp_path / "mnt"
        got = {"/" + p.relative_to(mnt).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
               for p in mnt.rglob("*") if p.is_file()}
        assert got == expected  # the directories the kernel orphaned included
        with pytest.raises(OSError) as info:
            (mnt / "x").write_bytes(b"no")
        assert info.value.errno == E.EROFS
    assert digest(image) == before


def test_refuses_an_image_not_cleanly_unmounted(tmp_path, fresh_image):
    image = fresh_image("16M")
    with Volume.open(str(image), writable=True) as volume:
        volume.sb.s_state = 0
        volume.sb_dirty = True
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    result = run("vexfs", "mount", image, mnt)
    assert result.returncode == 1
    assert result.stderr == f"vexfs: {image} was not cleanly unmounted; run fsck.vexfs on it (or mount it -o ro)\n"
    assert not is_mounted(mnt)
    with mounted(image, mnt, "ro"):
        assert (mnt / "lost+found").is_dir()


def test_hard_links_see_writes_at_once(tmp_path, fresh_image, layout):
    image = fresh_image("16M", *layout_args(layout))
    mnt = tmp_path / "mnt"
    with mounted(image, mnt):
        (mnt / "a").write_bytes(b"first\n")
        os.link(mnt / "a", mnt / "b")
        with open(mnt / "a", "ab") as fa, open(mnt / "b", "ab") as fb:
            fa.write(b"through a\n")
            fa.flush()
            fb.write(b"through b\n")  # O_APPEND: at the end the first write made
            fb.flush()
        assert (mnt / "a").read_bytes() == b"first\nthrough a\nthrough b\n"
        assert os.stat(mnt / "b").st_size == os.stat(mnt / "a").st_size
        assert os.stat(mnt / "a").st_nlink == 2 and os.stat(mnt / "a").st_ino == os.stat(mnt / "b").st_ino
    fsck_clean(image)


def expect_errno(code: int, call, *args) -> None:
    with pytest.raises(OSError) as info:
        call(*args)
    assert info.value.errno == code, (call, args, info.value)


def test_posix_rules(tmp_path, fresh_image, layout):
    image = fresh_image("16M", *layout_args(layout))
    mnt = tmp_path / "mnt"
    with mounted(image, mnt):
        d, f = mnt / "d", mnt / "f"
        d.mkdir()
        f.write_bytes(b"x")
        (d / "inner").write_bytes(b"y")
        expect_errno(E.EEXIST, os.mkdir, d)
        expect_errno(E.EEXIST, os.link, f, d / "inner")
        expect_errno(E.ENOTEMPTY, os.rmdir, d)
        expect_errno(E.ENOTDIR, os.rmdir, f)
        expect_errno(E.EISDIR, os.unlink, d)
        expect_errno(E.ENOENT, os.unlink, mnt / "missing")
        expect_errno(E.ENOTDIR, os.mkdir, f / "sub")
        expect_errno(E.EINVAL, os.rename, d, d / "under")
        expect_errno(E.EISDIR, os.rename, f, d)
        expect_errno(E.ENOTDIR, os.rename, d, f)
        expect_errno(E.EPERM, os.link, d, mnt / "dlink")
        expect_errno(E.ENAMETOOLONG, os.mkdir, mnt / ("n" * 256))
        (mnt / ("n" * 255)).write_bytes(b"")  # 255 bytes is the longest name
        expect_errno(E.EFBIG, os.truncate, f, 1 << 50)
        if layout == "kernel":
            fd = os.open(f, os.O_WRONLY)
            try:
                expect_errno(E.EFBIG, os.pwrite, fd, b"z", C.KERNEL_MAX_FILE_SIZE)
            finally:
                os.close(fd)
        # rename over a file keeps the moved inode and frees the target's name
        (mnt / "g").write_bytes(b"gg")
        ino = os.stat(mnt / "g").st_ino
        os.rename(mnt / "g", f)
        assert os.stat(f).st_ino == ino and f.read_bytes() == b"gg"
        # times: a write moves mtime and ctime, a chmod ctime
        os.utime(f, (1_000_000_000, 1_000_000_000))
        assert os.stat(f).st_mtime == 1_000_000_000
        with open(f, "ab") as out:
            out.write(b"more")
        assert os.stat(f).st_mtime > 1_000_000_000
        os.chmod(f, 0o600)
        assert os.stat(f).st_mode & 0o7777 == 0o600
        st = os.stat(d)
        (d / "new").write_bytes(b"")
        assert os.stat(d).st_mtime >= st.st_mtime
        # an unlinked open file stays readable until closed
        with open(d / "inner", "rb") as held:
            os.unlink(d / "inner")
            assert held.read() == b"y"
        vfs = os.statvfs(mnt)
        assert vfs.f_bsize == 4096 and vfs.f_namemax == 255
    fsck_clean(image)


def test_model_against_a_host_directory(tmp_path, fresh_image, layout):
    image = fresh_image("32M", *layout_args(layout))
    host, mnt = tmp_path / "host", tmp_path / "mnt"
    host.mkdir()
    max_size = C.KERNEL_MAX_FILE_SIZE if layout == "kernel" else 2 << 20
    rng = random.Random(11)
    with mounted(image, mnt):
        if layout == "extended":
            (host / "lost+found").mkdir()
            os.chmod(host / "lost+found", 0o700)
        for step in range(250):
            files = sorted(p.relative_to(host).as_posix() for p in host.rglob("*") if p.is_file())
            dirs = sorted(p.relative_to(host).as_posix() for p in host.rglob("*") if p.is_dir())
            name = rng.choice([""] + [d + "/" for d in dirs]) + rng.choice("abcdef") + str(rng.randrange(4))
            op = rng.choice(["write", "write", "write", "truncate", "mkdir", "unlink", "rename", "link", "chmod"])
            fresh = not (host / name).exists()
            is_dir = (host / name).is_dir()
            for root in (host, mnt):
                if op == "write" and files:
                    path = rng.choice(files) if root is host else path  # noqa: F821
                    if root is host:
                        offset = rng.randrange(max_size)
                        data = rng.randbytes(rng.randrange(1, 20_000))[:max_size - offset]
                    with open(root / path, "r+b") as out:
                        out.seek(offset)
                        out.write(data)
                elif op == "truncate" and files:
                    if root is host:
                        path, size = rng.choice(files), rng.randrange(max_size)
                    os.truncate(root / path, size)
                elif op == "mkdir" and fresh and len(dirs) < 8:
                    (root / name).mkdir()
                elif op == "unlink" and files:
                    if root is host:
                        path = rng.choice(files)
                    (root / path).unlink()
                elif op == "rename" and files and not is_dir:
                    if root is host:
                        path = rng.choice(files)
                    os.rename(root / path, root / name)
                elif op == "link" and files and fresh:
                    if root is host:
                        path = rng.choice(files)
                    os.link(root / path, root / name)
                elif op == "chmod" and files:
                    if root is host:
                        path, mode = rng.choice(files), rng.randrange(0o1000) | 0o600
                    os.chmod(root / path, mode)
                elif op == "write" and not files and fresh:
                    (root / name).write_bytes(b"start")
            if step % 50 == 49 or step == 249:
                for p in host.rglob("*"):
                    q = mnt / p.relative_to(host)
                    a, b = os.stat(p), os.stat(q)
                    assert (a.st_mode, a.st_nlink) == (b.st_mode, b.st_nlink), p
                    if p.is_file():
                        assert a.st_size == b.st_size and p.read_bytes() == q.read_bytes(), p
                assert sorted(x.name for x in mnt.rglob("*")) == sorted(x.name for x in host.rglob("*"))
    fsck_clean(image)


def test_get_vector_meta_ioctl(tmp_path, fresh_image):
    image = fresh_image("16M")
    vectors = np.arange(24, dtype=np.float32).reshape(6, 4)
    size, chunks = encode(vectors, None, element_type=V.ELEMENT_FLOAT32, metric=V.METRIC_L2)
    data = b"".join(chunks)
    mnt = tmp_path / "mnt"
    with mounted(image, mnt):
        (mnt / "e.vec").write_bytes(data)
        (mnt / "plain").write_bytes(b"not a vector file")
        with open(mnt / "e.vec", "rb") as f:
            info = fcntl.ioctl(f.fileno(), 0x80285602, bytes(40))
            expect_errno(E.ENOTTY, fcntl.ioctl, f.fileno(), 0xC0305603, bytes(48))
        with open(mnt / "plain", "rb") as f:
            expect_errno(E.ENOTTY, fcntl.ioctl, f.fileno(), 0x80285602, bytes(40))
    parsed = V.VectorFileInfo.parse(info)
    assert (parsed.dimensions, parsed.element_type, parsed.vector_count) == (4, V.ELEMENT_FLOAT32, 6)
    assert info == data[16:56]


def test_sigkill_mid_write_then_fsck(tmp_path, fresh_image, layout):
    image = fresh_image("32M", *layout_args(layout))
    mnt = tmp_path / "mnt"
    size = C.KERNEL_MAX_FILE_SIZE if layout == "kernel" else 1 << 20
    synced = {}
    with mounted(image, mnt) as proc:
        for n in range(5):
            data = random.Random(n).randbytes(size)
            with open(mnt / f"synced{n}", "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            synced[f"/synced{n}"] = data
        writer = subprocess.Popen(["sh", "-c", f"i=0; while true; do head -c 40000 /dev/urandom > {mnt}/load$i "
                                   "2>/dev/null; i=$((i+1)); done"])
        time.sleep(1.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        writer.kill()
        writer.wait()
        subprocess.run(["fusermount3", "-uz", str(mnt)], check=False, capture_output=True)
    fixed = run("fsck.vexfs", "-fy", image)
    assert fixed.returncode in (0, 1), fixed.stdout + fixed.stderr
    fsck_clean(image)
    with Volume.open(str(image)) as volume:
        for path, data in synced.items():
            assert b"".join(volume.read_file(volume.resolve(path))) == data, path


def test_fio_verify_crc32c(tmp_path, fresh_image):
    fio = subprocess.run(["sh", "-c", "command -v fio"], capture_output=True, text=True).stdout.strip()
    if not fio:
        pytest.skip("fio is not installed (Debian: fio)")
    image = fresh_image("64M")
    mnt = tmp_path / "mnt"
    with mounted(image, mnt):
        result = subprocess.run([fio, "--name=verify", f"--directory={mnt}", "--rw=randwrite", "--bs=4k",
                                 "--size=8m", "--verify=crc32c", "--do_verify=1", "--ioengine=psync",
                                 "--randrepeat=1", "--numjobs=1"],
                                capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "verify" in result.stdout and "err= 0" in result.stdout
    fsck_clean(image)


def test_enospc_mid_mount_keeps_the_image_consistent(tmp_path, fresh_image, layout):
    """Fill the file system through the mount: the write that finds no room fails with
    ENOSPC, what was written before reads back whole (also after unmount), space freed is
    usable again, and fsck finds nothing."""
    image = fresh_image("8M", *layout_args(layout))
    mnt = tmp_path / "mnt"
    early = random.Random(5).randbytes(20_000)
    chunk = random.Random(6).randbytes(40_000)  # under the kernel layout's 48 KiB per file
    written = []
    with mounted(image, mnt):
        (mnt / "early").write_bytes(early)
        with pytest.raises(OSError) as info:
            for i in range(10_000):
                directory = mnt / f"d{i // 50}"
                directory.mkdir(exist_ok=True)
                fd = os.open(directory / f"f{i}", os.O_CREAT | os.O_WRONLY, 0o644)
                try:
                    written.append(directory / f"f{i}")
                    assert os.write(fd, chunk) == len(chunk)
                finally:
                    os.close(fd)
        assert info.value.errno == E.ENOSPC
        assert len(written) > 50
        assert (mnt / "early").read_bytes() == early
        assert all(path.read_bytes() == chunk for path in written[:-1])
        for path in written[:10]:
            path.unlink()
        (mnt / "after").write_bytes(chunk)
        assert (mnt / "after").read_bytes() == chunk
    fsck_clean(image)
    assert run("vexfs", "cat", image, "/early").stdout_bytes == early
    assert run("vexfs", "cat", image, "/after").stdout_bytes == chunk


def test_mount_dash_t_fuse_vexfs_dispatch(tmp_path, fresh_image):
    """`mount -t fuse.vexfs IMG MNT`: util-linux runs /sbin/mount.fuse.vexfs if installed,
    else fuse3's mount.fuse, which runs the subtype as a command through sh: `vexfs IMG MNT
    -o OPTS`, which `vexfs` takes as a mount. That dispatch is driven here exactly, with our
    `vexfs` first on PATH (mount(8) itself hands its helpers no PATH of ours)."""
    helper = shutil.which("mount.fuse3", path="/sbin:/usr/sbin") or shutil.which("mount.fuse", path="/sbin:/usr/sbin")
    if helper is None:
        pytest.skip("fuse3's mount.fuse3 is not installed (Debian: fuse3)")
    image = fresh_image("16M")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vexfs").symlink_to(tool("vexfs"))
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ.get('PATH', '')}")
    result = subprocess.run([helper, str(image), str(mnt), "-t", "fuse.vexfs", "-o", "rw,nosuid,nodev"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    try:
        assert is_mounted(mnt)
        (mnt / "through-mount").write_bytes(b"helper\n")
    finally:
        subprocess.run(["umount", str(mnt)], check=False, capture_output=True)
        wait_for(lambda: not is_mounted(mnt), 30)
    assert not is_mounted(mnt)
    assert wait_for(lambda: run("fsck.vexfs", "-fn", image).returncode == 0, 30)
    assert run("vexfs", "cat", image, "/through-mount").stdout_bytes == b"helper\n"


@pytest.mark.skipif(not os.path.exists("/sbin/mount.fuse.vexfs"),
                    reason="/sbin/mount.fuse.vexfs is not installed (util-linux looks for helpers "
                           "only in /sbin, /sbin/fs.d, /sbin/fs)")
def test_mount_dash_t_fuse_vexfs(tmp_path, fresh_image):
    image = fresh_image("16M")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    result = subprocess.run(["mount", "-t", "fuse.vexfs", str(image), str(mnt)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    try:
        (mnt / "x").write_bytes(b"x")
    finally:
        subprocess.run(["umount", str(mnt)], check=False, capture_output=True)
        wait_for(lambda: not is_mounted(mnt), 30)
    assert wait_for(lambda: run("fsck.vexfs", "-fn", image).returncode == 0, 30)
