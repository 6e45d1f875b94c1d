"""POSIX rules, pjdfstest's way, one case at a time: each case runs in a fresh directory of
the mount and in one of the host's tmpfs (a kernel file system), and what it observes (the
errno of a failure, or sizes, modes, link counts, names, contents, time relations) must be
the same. One mount per layout serves every case; fsck.vexfs -fn finds nothing after."""

from __future__ import annotations

import errno as E
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import run
from tests.writes import fsck_clean

from .fuse import is_mounted, mounted, needs_fuse

pytestmark = needs_fuse
CASES: dict[str, object] = {}
LONG = "n" * 255


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def touch(path: Path, data: bytes = b"") -> Path:
    path.write_bytes(data)
    return path


def mode_of(path: Path) -> int:
    return os.lstat(path).st_mode


# --- open and create ---------------------------------------------------------------------

@case
def open_missing(d):
    os.open(d / "missing", os.O_RDONLY)


@case
def open_excl_existing(d):
    os.open(touch(d / "f"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)


@case
def open_dir_for_writing(d):
    os.open(d, os.O_RDWR)


@case
def open_creat_on_dir(d):
    os.open(d, os.O_CREAT | os.O_WRONLY)


@case
def open_through_a_file(d):
    os.open(touch(d / "f") / "x", os.O_RDONLY)


@case
def open_directory_flag_on_file(d):
    os.open(touch(d / "f"), os.O_RDONLY | os.O_DIRECTORY)


@case
def create_longest_name(d):
    touch(d / LONG, b"x")
    return sorted(os.listdir(d)), (d / LONG).read_bytes()


@case
def create_name_too_long(d):
    os.open(d / (LONG + "n"), os.O_CREAT | os.O_WRONLY)


@case
def stat_name_too_long(d):
    os.stat(d / (LONG + "n"))


@case
def create_mode_bits(d):
    old = os.umask(0)
    try:
        os.close(os.open(d / "f", os.O_CREAT | os.O_WRONLY, 0o640))
    finally:
        os.umask(old)
    return oct(mode_of(d / "f"))


@case
def create_mode_with_umask(d):
    old = os.umask(0o027)
    try:
        os.close(os.open(d / "f", os.O_CREAT | os.O_WRONLY, 0o777))
        os.mkdir(d / "sub", 0o777)
    finally:
        os.umask(old)
    return oct(mode_of(d / "f")), oct(mode_of(d / "sub"))


@case
def open_trunc(d):
    f = touch(d / "f", b"0123456789")
    os.close(os.open(f, os.O_WRONLY | os.O_TRUNC))
    return os.stat(f).st_size


@case
def open_append(d):
    f = touch(d / "f", b"abc")
    fd = os.open(f, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"def")
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b"g")
    finally:
        os.close(fd)
    return f.read_bytes()


@case
def write_past_end_leaves_a_hole(d):
    f = d / "f"
    fd = os.open(f, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.pwrite(fd, b"end", 40_000)  # within the kernel layout's 48 KiB
    finally:
        os.close(fd)
    data = f.read_bytes()
    return len(data), data[:40_000] == bytes(40_000), data[40_000:]


@case
def overwrite_in_the_middle(d):
    f = touch(d / "f", b"a" * 10_000)
    fd = os.open(f, os.O_WRONLY)
    try:
        os.pwrite(fd, b"B" * 5000, 4000)
    finally:
        os.close(fd)
    return f.read_bytes() == b"a" * 4000 + b"B" * 5000 + b"a" * 1000


@case
def read_only_fd_refuses_write(d):
    fd = os.open(touch(d / "f", b"x"), os.O_RDONLY)
    try:
        os.write(fd, b"y")
    finally:
        os.close(fd)


@case
def mkfifo_node(d):
    os.mkfifo(d / "p", 0o600)
    return stat.S_ISFIFO(mode_of(d / "p")), sorted(os.listdir(d))


# --- unlink -------------------------------------------------------------------------------

@case
def unlink_missing(d):
    os.unlink(d / "missing")


@case
def unlink_directory(d):
    os.mkdir(d / "sub")
    os.unlink(d / "sub")


@case
def unlink_through_a_file(d):
    os.unlink(touch(d / "f") / "x")


@case
def unlink_drops_a_link(d):
    os.link(touch(d / "a", b"x"), d / "b")
    os.unlink(d / "a")
    return os.stat(d / "b").st_nlink, sorted(os.listdir(d)), (d / "b").read_bytes()


@case
def unlink_open_file_stays_readable(d):
    f = touch(d / "f", b"held")
    fd = os.open(f, os.O_RDWR)
    try:
        os.unlink(f)
        os.write(fd, b"HELD")
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 100), os.listdir(d)
    finally:
        os.close(fd)


@case
def unlink_moves_dir_times(d):
    f = touch(d / "f")
    os.utime(d, (1_000_000_000, 1_000_000_000))
    os.unlink(f)
    return os.stat(d).st_mtime > 1_000_000_000


# --- mkdir and rmdir ----------------------------------------------------------------------

@case
def mkdir_existing(d):
    os.mkdir(touch(d / "f"))


@case
def mkdir_missing_parent(d):
    os.mkdir(d / "no" / "sub")


@case
def mkdir_name_too_long(d):
    os.mkdir(d / (LONG + "n"))


@case
def mkdir_links(d):
    before = os.stat(d).st_nlink
    os.mkdir(d / "a")
    os.mkdir(d / "a" / "b")
    return os.stat(d).st_nlink - before, os.stat(d / "a").st_nlink, os.stat(d / "a" / "b").st_nlink


@case
def rmdir_not_empty(d):
    os.mkdir(d / "a")
    touch(d / "a" / "f")
    os.rmdir(d / "a")


@case
def rmdir_file(d):
    os.rmdir(touch(d / "f"))


@case
def rmdir_missing(d):
    os.rmdir(d / "missing")


@case
def rmdir_dot(d):
    os.mkdir(d / "a")
    os.rmdir(d / "a" / ".")


@case
def rmdir_dotdot(d):
    os.mkdir(d / "a")
    os.rmdir(d / "a" / "..")


@case
def rmdir_drops_parent_link(d):
    os.mkdir(d / "a")
    before = os.stat(d).st_nlink
    os.rmdir(d / "a")
    return before - os.stat(d).st_nlink, os.listdir(d)


# --- rename -------------------------------------------------------------------------------

@case
def rename_missing(d):
    os.rename(d / "missing", d / "x")


@case
def rename_over_a_file(d):
    touch(d / "a", b"new")
    touch(d / "b", b"old")
    os.rename(d / "a", d / "b")
    return sorted(os.listdir(d)), (d / "b").read_bytes()


@case
def rename_file_over_dir(d):
    touch(d / "a")
    os.mkdir(d / "b")
    os.rename(d / "a", d / "b")


@case
def rename_dir_over_file(d):
    os.mkdir(d / "a")
    touch(d / "b")
    os.rename(d / "a", d / "b")


@case
def rename_dir_over_non_empty_dir(d):
    os.mkdir(d / "a")
    os.mkdir(d / "b")
    touch(d / "b" / "f")
    os.rename(d / "a", d / "b")


@case
def rename_dir_over_empty_dir(d):
    os.mkdir(d / "a")
    touch(d / "a" / "inside")
    os.mkdir(d / "b")
    before = os.stat(d).st_nlink
    os.rename(d / "a", d / "b")
    return sorted(os.listdir(d)), os.listdir(d / "b"), before - os.stat(d).st_nlink


@case
def rename_dir_into_itself(d):
    os.makedirs(d / "a" / "b")
    os.rename(d / "a", d / "a" / "b" / "c")


@case
def rename_dir_across_dirs(d):
    os.makedirs(d / "a" / "moved")
    os.mkdir(d / "b")
    os.rename(d / "a" / "moved", d / "b" / "moved")
    return (os.stat(d / "a").st_nlink, os.stat(d / "b").st_nlink,
            os.stat(d / "b" / "moved" / "..").st_ino == os.stat(d / "b").st_ino)


@case
def rename_to_itself(d):
    touch(d / "a", b"same")
    os.rename(d / "a", d / "a")
    return os.listdir(d), (d / "a").read_bytes()


@case
def rename_between_links_of_one_inode(d):
    os.link(touch(d / "a", b"x"), d / "b")
    os.rename(d / "a", d / "b")
    return sorted(os.listdir(d)), os.stat(d / "b").st_nlink


@case
def rename_through_a_file(d):
    touch(d / "f")
    os.rename(d / "f" / "x", d / "y")


@case
def rename_onto_a_missing_dir(d):
    os.rename(touch(d / "f"), d / "no" / "f")


@case
def rename_name_too_long(d):
    os.rename(touch(d / "f"), d / (LONG + "n"))


@case
def rename_keeps_the_inode(d):
    f = touch(d / "a", b"x")
    ino = os.stat(f).st_ino
    os.mkdir(d / "sub")
    os.rename(f, d / "sub" / "b")
    return os.stat(d / "sub" / "b").st_ino == ino, os.listdir(d / "sub")


# --- link and symlink ---------------------------------------------------------------------

@case
def link_existing_name(d):
    os.link(touch(d / "a"), touch(d / "b"))


@case
def link_directory(d):
    os.mkdir(d / "a")
    os.link(d / "a", d / "b")


@case
def link_missing(d):
    os.link(d / "missing", d / "b")


@case
def link_into_missing_dir(d):
    os.link(touch(d / "a"), d / "no" / "b")


@case
def link_counts_and_inode(d):
    os.link(touch(d / "a", b"x"), d / "b")
    a, b = os.stat(d / "a"), os.stat(d / "b")
    return a.st_nlink, b.st_nlink, a.st_ino == b.st_ino


@case
def link_sees_writes_through_the_other_name(d):
    os.link(touch(d / "a", b"1"), d / "b")
    with open(d / "a", "ab") as f:
        f.write(b"22")
    with open(d / "b", "ab") as f:
        f.write(b"333")
    return (d / "a").read_bytes(), os.stat(d / "b").st_size


@case
def symlink_existing_name(d):
    os.symlink("target", touch(d / "a"))


@case
def symlink_reads_back(d):
    os.symlink("some/where", d / "l")
    st = os.lstat(d / "l")
    return os.readlink(d / "l"), stat.S_ISLNK(st.st_mode), st.st_size


@case
def symlink_longest_target(d):
    os.symlink("t" * 4095, d / "l")
    return len(os.readlink(d / "l"))


@case
def symlink_target_too_long(d):
    os.symlink("t" * 4096, d / "l")


@case
def symlink_followed(d):
    touch(d / "f", b"through")
    os.symlink("f", d / "l")
    return (d / "l").read_bytes(), os.stat(d / "l").st_size


@case
def symlink_dangling(d):
    os.symlink("missing", d / "l")
    os.stat(d / "l")


@case
def readlink_of_a_file(d):
    os.readlink(touch(d / "f"))


@case
def unlink_a_symlink_keeps_target(d):
    touch(d / "f", b"x")
    os.symlink("f", d / "l")
    os.unlink(d / "l")
    return os.listdir(d)


# --- chmod, chown -------------------------------------------------------------------------

@case
def chmod_all_bits(d):
    f = touch(d / "f")
    os.chmod(f, 0o7777)
    a = oct(mode_of(f))
    os.chmod(f, 0o0)
    return a, oct(mode_of(f))


@case
def chmod_directory(d):
    os.mkdir(d / "a")
    os.chmod(d / "a", 0o1700)
    return oct(mode_of(d / "a"))


@case
def chmod_missing(d):
    os.chmod(d / "missing", 0o600)


@case
def chmod_moves_ctime_only(d):
    f = touch(d / "f")
    os.utime(f, (1_000_000_000, 1_000_000_000))
    os.chmod(f, 0o600)
    st = os.stat(f)
    return st.st_mtime == 1_000_000_000, st.st_ctime > 1_000_000_000


@case
def chown_sets_ids(d):
    f = touch(d / "f")
    os.chown(f, 1234, 5678)
    st = os.stat(f)
    return st.st_uid, st.st_gid


@case
def chown_minus_one_keeps(d):
    f = touch(d / "f")
    os.chown(f, 1234, 5678)
    os.chown(f, -1, 42)
    os.chown(f, 77, -1)
    st = os.stat(f)
    return st.st_uid, st.st_gid


@case
def chown_missing(d):
    os.chown(d / "missing", 1, 1)


@case
def chown_symlink_itself(d):
    touch(d / "f")
    os.symlink("f", d / "l")
    os.lchown(d / "l", 99, 98)
    return os.lstat(d / "l").st_uid, os.stat(d / "f").st_uid


# --- truncate -----------------------------------------------------------------------------

@case
def truncate_grow_reads_zeros(d):
    f = touch(d / "f", b"abc")
    os.truncate(f, 10_000)
    return f.read_bytes() == b"abc" + bytes(9997)


@case
def truncate_shrink_then_grow(d):
    f = touch(d / "f", b"x" * 9000)
    os.truncate(f, 5)
    os.truncate(f, 9000)
    return f.read_bytes() == b"x" * 5 + bytes(8995)


@case
def truncate_directory(d):
    os.mkdir(d / "a")
    os.truncate(d / "a", 0)


@case
def truncate_negative(d):
    os.truncate(touch(d / "f"), -1)


@case
def truncate_missing(d):
    os.truncate(d / "missing", 0)


@case
def ftruncate_read_only_fd(d):
    fd = os.open(touch(d / "f", b"x"), os.O_RDONLY)
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


@case
def fchmod_fchown_futimens_open_file(d):
    fd = os.open(touch(d / "f", b"x"), os.O_RDWR)
    try:
        os.fchmod(fd, 0o604)
        os.fchown(fd, 12, 34)
        os.utime(fd, (1_100_000_000, 1_200_000_000))
        st = os.fstat(fd)
        return oct(st.st_mode), st.st_uid, st.st_gid, st.st_atime, st.st_mtime
    finally:
        os.close(fd)


@case
def utime_set_twice(d):
    f = touch(d / "f")
    os.utime(f, (1_100_000_000, 1_200_000_000))
    os.utime(f, ns=(1_300_000_000 * 10**9, 1_200_000_000 * 10**9))
    return os.stat(f).st_atime, os.stat(f).st_mtime


@case
def ftruncate_open_file(d):
    fd = os.open(touch(d / "f", b"0123456789"), os.O_RDWR)
    try:
        os.ftruncate(fd, 4)
        return os.fstat(fd).st_size, os.pread(fd, 100, 0)
    finally:
        os.close(fd)


@case
def truncate_moves_mtime(d):
    f = touch(d / "f", b"abc")
    os.utime(f, (1_000_000_000, 1_000_000_000))
    os.truncate(f, 1)
    return os.stat(f).st_mtime > 1_000_000_000


# --- utimens ------------------------------------------------------------------------------

@case
def utime_exact(d):
    f = touch(d / "f")
    os.utime(f, (1_100_000_000, 1_200_000_000))
    st = os.stat(f)
    return st.st_atime, st.st_mtime


@case
def utime_now(d):
    f = touch(d / "f")
    os.utime(f, (1_000_000_000, 1_000_000_000))
    start = int(time.time())
    os.utime(f)
    st = os.stat(f)
    return int(st.st_mtime) >= start, int(st.st_atime) >= start


@case
def utime_missing(d):
    os.utime(d / "missing", (1, 1))


@case
def utime_directory(d):
    os.mkdir(d / "a")
    os.utime(d / "a", (1_300_000_000, 1_300_000_001))
    return os.stat(d / "a").st_mtime


@case
def write_moves_mtime(d):
    f = touch(d / "f", b"x")
    os.utime(f, (1_000_000_000, 1_000_000_000))
    with open(f, "ab") as out:
        out.write(b"y")
    return os.stat(f).st_mtime > 1_000_000_000


@case
def create_moves_dir_mtime(d):
    os.utime(d, (1_000_000_000, 1_000_000_000))
    touch(d / "f")
    return os.stat(d).st_mtime > 1_000_000_000


# --- names and listings -------------------------------------------------------------------

@case
def odd_names(d):
    names = ["with space", "ünïcödé", "tab\there", "new\nline", "-dash", ".hidden", "x" * 100]
    for name in names:
        touch(d / name, name.encode())
    return sorted(os.listdir(d)), [(d / n).read_bytes() for n in sorted(names)]


@case
def many_entries_then_some_removed(d):
    for i in range(150):  # what one kernel-layout directory block holds
        touch(d / f"entry-{i:04d}", str(i).encode())
    for i in range(0, 150, 3):
        os.unlink(d / f"entry-{i:04d}")
    for i in range(0, 150, 7):
        touch(d / f"again-{i}", b"")
    return sorted(os.listdir(d)), (d / "entry-0149").read_bytes()


@case
def empty_dir_stat(d):
    os.mkdir(d / "a")
    st = os.stat(d / "a")
    return st.st_nlink, stat.S_ISDIR(st.st_mode), os.listdir(d / "a")


@case
def dotdot_of_subdir(d):
    os.makedirs(d / "a" / "b")
    return os.stat(d / "a" / "b" / "..").st_ino == os.stat(d / "a").st_ino


@case
def open_file_outlives_its_last_name(d):
    """fstat, ftruncate and fchmod of an open file whose last name is gone (tmpfile(3),
    Python's TemporaryFile); no trace of it in the listing."""
    fd = os.open(d / "f", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"hello")
    os.unlink(d / "f")
    try:
        first = os.fstat(fd)
        os.ftruncate(fd, 2)
        os.fchmod(fd, 0o600)
        second = os.fstat(fd)
        os.lseek(fd, 0, os.SEEK_SET)
        return (first.st_size, first.st_nlink, second.st_size, stat.S_IMODE(second.st_mode),
                os.read(fd, 10), os.listdir(d))
    finally:
        os.close(fd)


@case
def open_file_outlives_rename_over_it_and_its_directory(d):
    os.mkdir(d / "sub")
    touch(d / "sub" / "old", b"old")
    touch(d / "new", b"new")
    fd = os.open(d / "sub" / "old", os.O_RDONLY)
    try:
        os.rename(d / "new", d / "sub" / "old")  # the open file loses its name
        os.rename(d / "sub", d / "moved")
        return os.read(fd, 10), os.fstat(fd).st_nlink, sorted(os.listdir(d / "moved")), \
            (d / "moved" / "old").read_bytes()
    finally:
        os.close(fd)


@case
def temporary_file(d):
    with tempfile.TemporaryFile(dir=d) as f:
        f.write(b"x" * 10000)
        f.flush()
        f.seek(0)
        return len(f.read()), os.fstat(f.fileno()).st_size, os.listdir(d)


def observe(fn, where: Path):
    """What a case shows: its result, or the name of the errno it failed with."""
    try:
        return ("ok", fn(where))
    except OSError as exc:
        return ("error", E.errorcode.get(exc.errno, exc.errno))


@pytest.fixture(scope="module", params=["extended", "kernel"])
def mount_dir(request, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"posix-{request.param}")
    image = base / "fs.img"
    layout = ("--compat", "kernel") if request.param == "kernel" else ()
    run("mkfs.vexfs", "-q", "-s", "32M", *layout, image, check=True)
    with mounted(image, base / "mnt"):
        yield base / "mnt"
    assert not is_mounted(base / "mnt")
    fsck_clean(image)


@pytest.fixture(scope="module")
def host_dir():
    where = "/dev/shm" if os.path.isdir("/dev/shm") else None  # tmpfs: a kernel file system
    path = Path(tempfile.mkdtemp(prefix="vexfs-posix-", dir=where))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("name", sorted(CASES))
def test_posix_case_like_tmpfs(name, mount_dir, host_dir):
    ours, theirs = mount_dir / name, host_dir / f"{mount_dir.parent.name}-{name}"
    ours.mkdir()
    theirs.mkdir()
    try:
        assert observe(CASES[name], ours) == observe(CASES[name], theirs)
    finally:
        shutil.rmtree(ours, ignore_errors=True)
        shutil.rmtree(theirs, ignore_errors=True)
    assert not ours.exists()


def test_enough_cases():
    assert len(CASES) >= 80
