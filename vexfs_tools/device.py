"""The device layer: an image file or a block device, opened read-only unless asked.

Every read and write of the tools goes through a Device. Writes are refused on a mounted
device; block devices opened for writing are opened O_EXCL so that the kernel refuses when
the device is mounted or held by someone else.
"""

from __future__ import annotations

import errno
import functools
import mmap
import fcntl
import os
import signal
import stat
import struct
from collections.abc import Iterator

from .errors import DeviceBusyError, DeviceError, LockedForWritingError, TruncatedImageError

BLKGETSIZE64 = 0x80081272
BLKZEROOUT = 0x127F
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02


CRASH_ENV = "VEXFS_TEST_CRASH_AFTER_WRITES"


class CrashPoint:
    """Fault injection for the crash tests (e2fsprogs' test_io idea): with `after` set, the
    process kills itself with SIGKILL just before its write number after+1 (writes and
    zero_range calls of every Device count; fsyncs do not). Set from the environment
    (VEXFS_TEST_CRASH_AFTER_WRITES=N) or by a test in a forked child: crash_after(N)."""

    def __init__(self) -> None:
        value = os.environ.get(CRASH_ENV, "")
        self.after: int | None = int(value) if value.isdigit() else None
        self.writes = 0

    def before_write(self) -> None:
        if self.after is not None and self.writes >= self.after:
            os.kill(os.getpid(), signal.SIGKILL)
        self.writes += 1


CRASH = CrashPoint()


def crash_after(writes: int | None) -> None:
    """Die (SIGKILL) before write number writes+1 of this process; None: never."""
    CRASH.after, CRASH.writes = writes, 0


def writes_done() -> int:
    """Device writes this process made since crash_after() (counting for the crash tests)."""
    return CRASH.writes


@functools.cache
def _fallocate():
    """libc's fallocate(2), loaded on first use (ctypes costs start-up time every command
    would pay). The running process has libc loaded already: CDLL(None) finds it there."""
    import ctypes

    function = ctypes.CDLL(None, use_errno=True).fallocate
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    return function


def reserve_space(fd: int, offset: int, length: int) -> bool:
    """Allocate [offset, offset+length) of an open file without changing its size
    (fallocate KEEP_SIZE), so later writes there can not fail for want of space. False when
    the file system can not reserve (no fallocate); OSError (ENOSPC) when there is no room."""
    if _fallocate()(fd, FALLOC_FL_KEEP_SIZE, offset, length) == 0:
        return True
    import ctypes  # noqa: PLC0415 - already loaded by _fallocate; only for get_errno

    err = ctypes.get_errno()
    if err in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(err, os.strerror(err))


def _device_number(path: str) -> int | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_rdev if stat.S_ISBLK(st.st_mode) else None


def _loop_devices_backed_by(path: str) -> list[str]:
    """Loop devices whose backing file is `path`, under any name (a symlink, a hard link):
    matched by device and inode number, not by path."""
    found = []
    try:
        target = os.stat(path)
        entries = os.listdir("/sys/block")
    except OSError:
        return found
    for name in entries:
        try:
            with open(f"/sys/block/{name}/loop/backing_file") as f:
                backing = os.stat(f.read().strip())
        except OSError:
            continue
        if (backing.st_dev, backing.st_ino) == (target.st_dev, target.st_ino):
            found.append(f"/dev/{name}")
    return found


def mount_point_of(path: str) -> str | None:
    """Where `path` (a block device, or an image behind a loop device) is mounted, if at all."""
    targets = {_device_number(path)} if _device_number(path) is not None else set()
    real = os.path.realpath(path)
    for loop in _loop_devices_backed_by(path):
        number = _device_number(loop)
        if number is not None:
            targets.add(number)
    try:
        with open("/proc/self/mounts") as f:
            lines = f.readlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) < 2:
            continue
        source = fields[0].replace("\\040", " ")
        where = fields[1].replace("\\040", " ")
        if source.startswith("/") and (os.path.realpath(source) == real
                                       or _device_number(source) in targets - {None}):
            return where
    return None


class Device:
    """An open image file or block device, addressed in bytes."""

    def __init__(self, path: str, *, writable: bool = False, create_size: int | None = None):
        self.path = path
        self.writable = writable
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if create_size is None:
                raise DeviceError(f"{path}: no such file or device") from None
            st = None
        except OSError as e:
            raise DeviceError(f"{path}: {e.strerror}") from None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise DeviceError(f"{path}: is a directory, not an image file or a block device")
        if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise DeviceError(f"{path}: not a regular file or a block device")
        self.is_block_device = st is not None and stat.S_ISBLK(st.st_mode)
        if writable:
            where = mount_point_of(path) if st is not None else None
            if where is not None:
                raise DeviceBusyError(f"{path} is mounted on {where}; refusing to write to it")
        flags = os.O_RDWR if writable else os.O_RDONLY
        if writable and self.is_block_device:
            flags |= os.O_EXCL
        if st is None:
            flags |= os.O_CREAT
        try:
            self.fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as e:
            if e.errno == errno.EBUSY:
                raise DeviceBusyError(f"{path} is in use (mounted or held open); refusing to write to it") from None
            raise DeviceError(f"{path}: {e.strerror}") from None
        try:
            self._lock()
        except BaseException:
            os.close(self.fd)
            raise
        if create_size is not None and not self.is_block_device:
            if os.fstat(self.fd).st_size < create_size:
                os.ftruncate(self.fd, create_size)
        self.size = self._measure()
        self.undo = None  # an UndoRecorder, when the caller asked for an undo file

    def _lock(self) -> None:
        """The one-writer rule (see the module docstring), without waiting for a holder."""
        try:
            fcntl.flock(self.fd, (fcntl.LOCK_EX if self.writable else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                return  # a file system without flock: no lock to take, as before
            if self.writable:
                raise DeviceBusyError(f"{self.path} is in use by another program (locked for "
                                      "writing); refusing to write to it") from None
            raise LockedForWritingError(f"{self.path} is being written by another program "
                                        "(locked for writing); try again when it is done") from None

    def _measure(self) -> int:
        if self.is_block_device:
            buf = fcntl.ioctl(self.fd, BLKGETSIZE64, b"\0" * 8)
            return struct.unpack("<Q", buf)[0]
        return os.fstat(self.fd).st_size

    def read(self, offset: int, length: int) -> bytes:
        """Exactly `length` bytes at `offset`, or TruncatedImageError."""
        if offset < 0 or offset + length > self.size:
            raise TruncatedImageError(
                f"{self.path}: read of {length} bytes at offset {offset} goes past the end "
                f"of the device ({self.size} bytes); the image is truncated")
        data = os.pread(self.fd, length, offset)
        while len(data) < length:
            more = os.pread(self.fd, length - len(data), offset + len(data))
            if not more:
                raise TruncatedImageError(f"{self.path}: short read at offset {offset + len(data)}")
            data += more
        return data

    def read_into(self, offset: int, buffer) -> None:
        """Fill `buffer` (a writable buffer, such as a numpy array) from `offset`: read()
        without a bytes object in between, for bulk reads of many blocks."""
        view = memoryview(buffer).cast("B")
        if offset < 0 or offset + len(view) > self.size:
            raise TruncatedImageError(
                f"{self.path}: read of {len(view)} bytes at offset {offset} goes past the end "
                f"of the device ({self.size} bytes); the image is truncated")
        done = 0
        while done < len(view):
            got = os.preadv(self.fd, [view[done:]], offset + done)
            if not got:
                raise TruncatedImageError(f"{self.path}: short read at offset {offset + done}")
            done += got

    def read_runs(self, out, firsts: list[int], ends: list[int], offsets: list[int], unit: int) -> None:
        """Fill rows firsts[i]..ends[i] of `out` (rows of `unit` bytes) from byte offsets[i],
        for every i: read_into for many scattered runs, one system call each (fsck reads
        tens of thousands of indirect blocks this way)."""
        view = memoryview(out).cast("B")
        end_of_device = self.size
        preadv, fd = os.preadv, self.fd
        for first, end, offset in zip(firsts, ends, offsets):
            part = view[first * unit:end * unit]
            if offset + len(part) > end_of_device or preadv(fd, [part], offset) != len(part):
                self.read_into(offset, part)  # the end of the device, or a short read: say which

    def is_hole(self, offset: int, length: int) -> bool:
        """True when [offset, offset+length) of an image file is a hole (reads as zeros
        without being stored): bulk scans skip it instead of reading zeros. Always False
        for block devices."""
        if self.is_block_device:
            return False
        try:
            data = os.lseek(self.fd, offset, os.SEEK_DATA)
        except OSError as e:
            return e.errno == errno.ENXIO  # no data from offset to the end of the file
        return data >= offset + length

    def data_ranges(self, offset: int, length: int) -> Iterator[tuple[int, int]]:
        """(start, end) byte ranges of [offset, offset+length) that may hold data, in order:
        an image file's holes are left out (SEEK_DATA/SEEK_HOLE), so scans for data read
        only what is stored. A block device, or a file system without SEEK_DATA, is all data."""
        end = offset + length
        if length <= 0:
            return
        if self.is_block_device:
            yield offset, end
            return
        position = offset
        while position < end:
            try:
                data = os.lseek(self.fd, position, os.SEEK_DATA)
            except OSError as e:
                if e.errno != errno.ENXIO:  # SEEK_DATA unsupported: assume data
                    yield position, end
                return  # ENXIO: no data from position to the end of the file
            if data >= end:
                return
            hole = min(os.lseek(self.fd, data, os.SEEK_HOLE), end)
            yield data, hole
            position = hole

    def read_or_zeros(self, offset: int, length: int) -> bytes | bytearray:
        """read(), but a hole comes back as zeros without touching the disk."""
        if self.is_hole(offset, length):
            if offset + length > self.size:
                raise TruncatedImageError(f"{self.path}: read past the end of the device")
            return bytearray(length)
        return self.read(offset, length)

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        if not self.writable:
            raise DeviceError(f"{self.path}: opened read-only")
        if offset < 0 or offset + len(data) > self.size:
            raise DeviceError(f"{self.path}: write at {offset}+{len(data)} past the end ({self.size})")
        if self.undo is not None and len(data):
            self.undo.before_write(offset, len(data))
        CRASH.before_write()
        view = memoryview(data)
        while view:
            written = os.pwrite(self.fd, view, offset)
            view = view[written:]
            offset += written

    def zero_range(self, offset: int, length: int) -> None:
        """Make [offset, offset+length) read as zeros, without writing zeros where possible.

        Image files get a hole punched (they stay sparse); block devices get BLKZEROOUT,
        which a loop device turns into a hole in its backing file.
        """
        if length <= 0:
            return
        if not self.writable:
            raise DeviceError(f"{self.path}: opened read-only")
        if self.undo is not None:
            self.undo.before_write(offset, length)
        CRASH.before_write()
        if self.is_block_device:
            try:
                fcntl.ioctl(self.fd, BLKZEROOUT, struct.pack("<QQ", offset, length))
                return
            except OSError:
                pass
        elif _fallocate()(self.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) == 0:
            return
        chunk = bytes(1 << 20)
        end = offset + length
        while offset < end:
            n = min(len(chunk), end - offset)
            self.write(offset, chunk[:n])
            offset += n

    def set_size(self, size: int) -> None:
        """Grow (sparse) or cut an image file, after what was written is on disk; `size`
        follows. A block device's size is its own."""
        if not self.writable:
            raise DeviceError(f"{self.path}: opened read-only")
        if self.is_block_device:
            raise DeviceError(f"{self.path}: a block device's size can not be changed")
        self.flush()
        os.ftruncate(self.fd, size)
        self.size = size

    def flush(self) -> None:
        if self.writable:
            os.fsync(self.fd)

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def close(self) -> None:
        if self.fd >= 0:
            if self.undo is not None:
                self.undo.finish()
                self.undo = None
            if self.writable:
                try:
                    os.fsync(self.fd)
                except OSError:
                    pass
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def map_readonly(self, offset: int, length: int) -> memoryview | None:
        """A read-only memory map of [offset, offset+length) (bulk readers index it without
        copying), or None where it can not be mapped: an empty or out-of-range span, or a
        device that refuses mmap. The map outlives close()."""
        if length <= 0 or offset < 0 or offset + length > self.size:
            return None
        start = offset - offset % mmap.ALLOCATIONGRANULARITY
        try:
            mapped = mmap.mmap(self.fd, offset + length - start, access=mmap.ACCESS_READ, offset=start)
        except (OSError, ValueError):
            return None
        return memoryview(mapped)[offset - start:]
