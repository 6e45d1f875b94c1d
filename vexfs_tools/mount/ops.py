"""The FUSE operations of `vexfs mount`, on mfusepy's path API over volume/namespace.

Open files are keyed by inode number (fh = ino), so every name of a hard-linked file reads
and writes the same inode at once; the mount asks the kernel for no attribute caching
(run.py), so a size changed through one name is seen through another at once. Read-only
mounts read directories through inspect/recovery, as `vexfs ls` does, so the tree of an
image the 2.0 kernel wrote shows the directories its mkdir orphaned. Every library error
becomes the errno namespace.errno_of() gives it, in this one place.
"""

from __future__ import annotations

import errno as E
import functools
import os
import stat
from ctypes import memmove

import mfusepy

from ..errors import CorruptionError, VexfsError
from ..format import constants as C
from ..format import vector as V
from ..format.offsets import field_span
from ..inspect.recovery import Recovery
from ..volume.namespace import Namespace, errno_of
from ..volume.volume import Volume, now

GET_VECTOR_META = 0x80285602
INFO_SPAN = field_span(V.VectorHeader, "info")
ERRORS = ("continue", "remount-ro", "panic")
TYPE_MODES = {t: m for m, t in C.MODE_TO_FILE_TYPE.items()}
# utimensat's special tv_nsec values, as libfuse passes them on (tv_sec 0): mfusepy's
# nanoseconds are then exactly these.
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2


def as_errno(func):
    """Library errors out of an operation become FuseOSError(errno), never a traceback."""

    @functools.wraps(func)
    def inner(self, *args):
        try:
            return func(self, *args)
        except mfusepy.FuseOSError:
            raise
        except VexfsError as exc:
            code = errno_of(exc)
            if isinstance(exc, CorruptionError):
                self.corruption()
            raise mfusepy.FuseOSError(code) from None
        except OSError as exc:
            raise mfusepy.FuseOSError(exc.errno or E.EIO) from None
    return inner


class VexfsOperations(mfusepy.Operations):
    """One open Volume served to the kernel (single-threaded: libfuse's -s)."""

    use_ns = True
    # An open file whose last name is gone (hard_remove) is served by its fh with no path:
    # libfuse's nullpath_ok, which mfusepy sets only when both flags are here.
    flag_nullpath_ok = True
    flag_nopath = True

    def __init__(self, volume: Volume, *, writable: bool, uid: int | None = None,
                 gid: int | None = None, fakeroot: bool = False, errors: str = "continue"):
        self.volume = volume
        self.ns = Namespace(volume)
        self.writable = writable
        self.uid, self.gid, self.fakeroot = uid, gid, fakeroot
        self.errors = errors
        self.recovery = None if writable else Recovery(volume)
        # fh -> (inode, opened O_APPEND). The kernel computes an append's offset from its own
        # idea of the size, stale when another name of the inode wrote: appends are placed
        # here, at the inode's true end.
        self.handles: dict[int, tuple[int, bool]] = {}
        self.fh_of_call: int | None = None  # the open file a path-less setattr is for
        self._next_fh = 1

    def _handle(self, ino: int, flags: int) -> int:
        fh = self._next_fh
        self._next_fh += 1
        self.handles[fh] = (ino, bool(flags & os.O_APPEND))
        self.ns.opened(ino)
        return fh

    def _fh_ino(self, fh) -> int:
        return self.handles[fh][0]

    # --- mounting ------------------------------------------------------------------------

    def mark_mounted(self) -> None:
        """Not clean while mounted (written before the mount appears): after a crash
        fsck -p knows to check."""
        if self.writable:
            sb = self.volume.sb
            sb.s_state &= ~C.STATE_CLEAN
            sb.s_mnt_count = (sb.s_mnt_count + 1) & 0xFFFF
            sb.s_mtime = now()
            self.volume.write_superblock()
            self.volume.device.flush()

    def destroy(self, path):
        if self.writable:
            self.ns.release_all()
            self.volume.flush()
            sb = self.volume.sb
            if not sb.s_state & C.STATE_ERRORS:
                sb.s_state |= C.STATE_CLEAN
            sb.s_wtime = now()
            self.volume.write_superblock()
        self.volume.close()

    def corruption(self) -> None:
        """What errors= says to do when the image proves inconsistent."""
        if self.writable:
            self.volume.sb.s_state |= C.STATE_ERRORS
            self.volume.sb_dirty = True
        if self.errors == "remount-ro":
            self.writable = False
        elif self.errors == "panic":
            mfusepy.fuse_exit()

    def _writing(self) -> None:
        if not self.writable:
            raise mfusepy.FuseOSError(E.EROFS)

    # --- names -----------------------------------------------------------------------------

    def _ino(self, path: str | None) -> int:
        if path is None:  # a setattr on an open file (VexfsFUSE), else no name reaches it
            if self.fh_of_call is None:
                raise mfusepy.FuseOSError(E.ESTALE)
            return self._fh_ino(self.fh_of_call)
        if self.recovery is not None:
            return self._ino_read_only(path)
        ino = C.ROOT_INO
        for part in os.fsencode(path).split(b"/"):
            if part:  # the kept listings: no inode read per step (ENOTDIR from a file's)
                found = self.ns.listing(ino).get(part)
                if found is None:
                    raise mfusepy.FuseOSError(E.ENAMETOOLONG if len(part) > C.MAX_NAME_LEN else E.ENOENT)
                ino = found
        return ino

    def _ino_read_only(self, path: str) -> int:
        """Through inspect/recovery: directories the 2.0 kernel's mkdir orphaned too."""
        inode = self.volume.read_inode(C.ROOT_INO)
        for part in os.fsencode(path).split(b"/"):
            if not part:
                continue
            if not inode.is_dir:
                raise mfusepy.FuseOSError(E.ENOTDIR)
            found = self.recovery.lookup(inode, part)
            if found is None:
                raise mfusepy.FuseOSError(E.ENOENT)
            inode = self.volume.read_inode(found)
        return inode.ino

    def _split(self, path: str) -> tuple[int, bytes]:
        head, _, name = os.fsencode(path).rpartition(b"/")
        name_ok = len(name) <= C.MAX_NAME_LEN
        if not name_ok:
            raise mfusepy.FuseOSError(E.ENAMETOOLONG)
        return self._ino(os.fsdecode(head) or "/"), name

    def _owner(self) -> tuple[int, int]:
        if self.fakeroot:
            return 0, 0
        uid, gid, _ = mfusepy.fuse_get_context()
        return uid, gid

    # --- attributes ------------------------------------------------------------------------

    @as_errno
    def getattr(self, path, fh=None):
        inode = self.volume.read_inode(self._fh_ino(fh) if fh else self._ino(path))
        if not inode.in_use:
            raise mfusepy.FuseOSError(E.ENOENT)
        f = inode.fields
        return {"st_ino": inode.ino, "st_mode": f.i_mode, "st_nlink": f.i_links_count,
                "st_uid": f.i_uid if self.uid is None else self.uid,
                "st_gid": f.i_gid if self.gid is None else self.gid,
                "st_size": f.i_size, "st_blocks": f.i_blocks * (C.BLOCK_SIZE // 512),
                "st_blksize": C.BLOCK_SIZE, "st_atime": f.i_atime * 10**9,
                "st_mtime": f.i_mtime * 10**9, "st_ctime": f.i_ctime * 10**9}

    @as_errno
    def chmod(self, path, mode):
        self._writing()
        self.ns.chmod(self._ino(path), mode)
        return 0

    @as_errno
    def chown(self, path, uid, gid):
        self._writing()
        self.ns.chown(self._ino(path), -1 if uid in (-1, 0xFFFFFFFF) else uid,
                      -1 if gid in (-1, 0xFFFFFFFF) else gid)
        return 0

    @as_errno
    def utimens(self, path, times=None):
        self._writing()
        ino = self._ino(path)
        if times is None:
            self.ns.utimens(ino)
        else:
            inode = self.volume.read_inode(ino)
            self.ns.utimens(ino, *(None if t == UTIME_NOW else old if t == UTIME_OMIT else t // 10**9
                                   for t, old in zip(times, (inode.fields.i_atime, inode.fields.i_mtime))))
        return 0

    @as_errno
    def statfs(self, path):
        return self.ns.statfs()

    # --- directories -----------------------------------------------------------------------

    @as_errno
    def opendir(self, path):
        return self._handle(self._ino(path), 0)

    @as_errno
    def releasedir(self, path, fh):
        return self.release(path, fh)

    @as_errno
    def readdir(self, path, fh):
        ino = self._fh_ino(fh)
        inode = self.volume.read_inode(ino)
        if not inode.is_dir:
            raise mfusepy.FuseOSError(E.ENOTDIR)
        if self.recovery is not None:
            entries = [(e.name, e.ino, e.file_type) for e in self.recovery.read_directory(inode).entries]
        else:
            entries = [(e.name, e.ino, e.file_type) for e in self.ns.entries(ino)]
        parent = next((i for n, i, _ in entries if n == b".."), ino)
        # Each name with its inode number (a d_ino of 0 is skipped by readdir(3)) and type.
        out = [(".", {"st_ino": ino, "st_mode": stat.S_IFDIR}, 0),
               ("..", {"st_ino": parent, "st_mode": stat.S_IFDIR}, 0)]
        out += [(os.fsdecode(n), {"st_ino": i, "st_mode": TYPE_MODES.get(t, 0)}, 0)
                for n, i, t in entries if n not in (b".", b"..")]
        return out

    @as_errno
    def mkdir(self, path, mode):
        self._writing()
        uid, gid = self._owner()
        self.ns.mkdir(*self._split(path), mode & 0o7777, uid=uid, gid=gid)
        return 0

    @as_errno
    def rmdir(self, path):
        self._writing()
        self.ns.rmdir(*self._split(path))
        return 0

    @as_errno
    def unlink(self, path):
        self._writing()
        self.ns.unlink(*self._split(path))
        return 0

    @as_errno
    def rename(self, old, new, flags=0):
        self._writing()
        if flags:
            raise mfusepy.FuseOSError(E.EINVAL)
        self.ns.rename(*self._split(old), *self._split(new))
        return 0

    @as_errno
    def link(self, target, source):
        self._writing()  # mfusepy: link(new name, existing path)
        self.ns.link(self._ino(source), *self._split(target))
        return 0

    @as_errno
    def symlink(self, target, source):
        self._writing()  # mfusepy: symlink(link path, what it holds)
        uid, gid = self._owner()
        self.ns.symlink(*self._split(target), os.fsencode(source), uid=uid, gid=gid)
        return 0

    @as_errno
    def readlink(self, path):
        return os.fsdecode(self.ns.readlink(self._ino(path)))

    @as_errno
    def mknod(self, path, mode, dev):
        self._writing()
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISREG(mode)):
            raise mfusepy.FuseOSError(E.EPERM)  # device numbers have no field in the inode
        uid, gid = self._owner()
        self.ns.create(*self._split(path), mode, uid=uid, gid=gid)
        return 0

    # --- files -----------------------------------------------------------------------------

    @as_errno
    def create(self, path, mode, flags=0):
        self._writing()
        uid, gid = self._owner()
        ino = self.ns.create(*self._split(path), stat.S_IFREG | (mode & 0o7777), uid=uid, gid=gid)
        return self._handle(ino, flags)

    @as_errno
    def open(self, path, flags):
        ino = self._ino(path)
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC):
            self._writing()
        if flags & os.O_TRUNC:
            self.ns.truncate(ino, 0)
        return self._handle(ino, flags)

    @as_errno
    def release(self, path, fh):  # noqa: ARG002
        ino, _ = self.handles.pop(fh, (None, False))
        if ino is not None:
            self.ns.released(ino)
        return 0

    @as_errno
    def read(self, path, size, offset, fh):
        return self.ns.read_inode_data(self.volume.read_inode(self._fh_ino(fh)), offset, size)

    @as_errno
    def write(self, path, data, offset, fh):
        self._writing()
        ino, append = self.handles[fh]
        if append:
            offset = self.volume.read_inode(ino).i_size
        return self.ns.write(ino, offset, data)

    @as_errno
    def truncate(self, path, length, fh=None):
        self._writing()
        self.ns.truncate(self._fh_ino(fh) if fh else self._ino(path), length)
        return 0

    @as_errno
    def flush(self, path, fh):
        return 0

    @as_errno
    def fsync(self, path, datasync, fh):
        if self.writable:
            self.volume.flush()
        return 0

    @as_errno
    def ioctl(self, path, cmd, arg, fh, flags, data):
        """GET_VECTOR_META answers a vector file's 40-byte vexfs_vector_file_info; the
        kernel's other ioctls carry user pointers FUSE can not follow: ENOTTY."""
        if cmd & 0xFFFFFFFF != GET_VECTOR_META:
            raise mfusepy.FuseOSError(E.ENOTTY)
        ino = self._fh_ino(fh)
        inode = self.volume.read_inode(ino)
        head = self.ns.read(ino, 0, INFO_SPAN.offset + INFO_SPAN.size)
        if inode.i_size < len(head) or head[:len(V.VECTOR_MAGIC)] != V.VECTOR_MAGIC:
            raise mfusepy.FuseOSError(E.ENOTTY)
        info = head[INFO_SPAN.offset:INFO_SPAN.offset + INFO_SPAN.size]
        memmove(data, info, len(info))
        return 0


class VexfsFUSE(mfusepy.FUSE):
    """mfusepy's FUSE, telling the operations which open file a setattr with no path is for
    (ftruncate, fchmod, fchown, futimens: with nullpath_ok libfuse gives only the fh, which
    mfusepy drops)."""

    def _by_fh(self, fip, call, *args):
        self.operations.fh_of_call = fip.contents.fh if fip else None
        try:
            return call(*args)
        finally:
            self.operations.fh_of_call = None

    def truncate_fuse_3(self, path, length, fip):
        return self._by_fh(fip, super().truncate_fuse_3, path, length, fip)

    def chmod_fuse_3(self, path, mode, fip):
        return self._by_fh(fip, super().chmod_fuse_3, path, mode, fip)

    def chown_fuse_3(self, path, uid, gid, fip):
        return self._by_fh(fip, super().chown_fuse_3, path, uid, gid, fip)

    def utimens_fuse_3(self, path, buf, fip):
        return self._by_fh(fip, super().utimens_fuse_3, path, buf, fip)
