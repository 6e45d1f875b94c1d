"""The FUSE operations of `vexfs mount`, on mfusepy's path API over volume/namespace.

Open files are keyed by inode number, so every name of a hard-linked file reads and writes
the same inode at once. libfuse's path API gives each name its own kernel inode, so the
kernel caches (attributes for ATTR_TIMEOUT, and the page cache) only what one kernel inode
can see change: a directory or a file with one link. A file with more links is served with
no attribute caching and direct I/O; when a file gains its second name, the caches of the
names it had are dropped (fuse_invalidate_path), so no name sees a stale size. Read-only
mounts read directories through inspect/recovery, as `vexfs ls` does, so the tree of an
image the 2.0 kernel wrote shows the directories its mkdir orphaned. Every library error
becomes the errno namespace.errno_of() gives it, in this one place.
"""

from __future__ import annotations

import ctypes
import errno as E
import functools
import os
import stat
import threading
from ctypes import memmove
from dataclasses import dataclass

import mfusepy

from ..errors import CorruptionError, VexfsError
from ..format import constants as C
from ..format import vector as V
from ..format.offsets import field_span
from ..inspect.recovery import Recovery
from ..volume.inodes import value_index
from ..volume.namespace import Namespace, errno_of
from ..volume.volume import Volume, now

GET_VECTOR_META = 0x80285602
INFO_SPAN = field_span(V.VectorHeader, "info")
ERRORS = ("continue", "remount-ro", "panic")
TYPE_MODES = {t: m for m, t in C.MODE_TO_FILE_TYPE.items()}
# utimensat's special tv_nsec values, as libfuse passes them on (tv_sec 0): mfusepy's
# nanoseconds are then exactly these.
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
CAP_READDIRPLUS, CAP_READDIRPLUS_AUTO = 1 << 13, 1 << 14  # libfuse's FUSE_CAP_ bits
DIRECT_SIZE = 128 << 10  # a file this big is read in direct I/O: 1 MiB requests, not 128 KiB readahead
ATTR_TIMEOUT = 30.0  # seconds the kernel keeps attributes of what only one name reaches
HIDDEN_PREFIX = ".fuse_hidden"  # libfuse's name for an open file that lost its last name
INVALIDATE_WAIT = 0.1  # seconds a handler waits for a cache drop (a helper thread sends it)


@dataclass
class Handle:
    """An open file: its inode, O_APPEND, and (served through the page cache) its path."""

    ino: int
    append: bool
    cached_path: str | None = None
    listing: list[tuple[str, int, int]] | None = None  # an open directory's, read at offset 0


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
    # An open file whose last name is gone is served by its fh where the kernel sends one
    # (libfuse's nullpath_ok, which mfusepy sets only when both flags are here), and by the
    # hidden name libfuse gives it where it does not (fstat: see HIDDEN_PREFIX).
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
        # The kernel computes an append's offset from its own idea of the size, stale when
        # another name of the inode wrote: appends are placed here, at the inode's true end.
        self.handles: dict[int, Handle] = {}
        self.fh_of_call: int | None = None  # the open file a path-less setattr is for
        self.hidden: dict[str, int] = {}  # libfuse's name for an open file that lost its last: ino
        self._next_fh = 1
        # Files open through the page cache, by inode: {fh: path}. One of them that gains a
        # second name is `shared`: each change drops the caches of those paths.
        self.cached: dict[int, dict[int, str]] = {}
        self.shared: set[int] = set()
        self.config = None  # libfuse's fuse_config (init_with_config): its attr_timeout
        self.fuse = None  # libfuse's struct fuse *, for fuse_invalidate_path

    def init_with_config(self, conn_info, config_3) -> None:
        """Keep libfuse's own config: its attr_timeout is read after each getattr, so
        setting it there chooses the timeout of that one answer (single-threaded)."""
        self.config = config_3
        if config_3 is not None:
            config_3.attr_timeout = ATTR_TIMEOUT
        if conn_info is not None and conn_info.capable & CAP_READDIRPLUS:
            # Every page of a listing in readdirplus (auto: only the first, unless lookups
            # came in between): `ls -l`, `rm -r` and globs read a directory whole first.
            conn_info.want = (conn_info.want | CAP_READDIRPLUS) & ~CAP_READDIRPLUS_AUTO

    def _handle(self, ino: int, flags: int, path: str | None = None, *, direct: bool = True) -> int:
        fh = self._next_fh
        self._next_fh += 1
        cached_path = None if direct or path is None else path
        self.handles[fh] = Handle(ino, bool(flags & os.O_APPEND), cached_path)
        if cached_path is not None:
            self.cached.setdefault(ino, {})[fh] = cached_path
        self.ns.opened(ino)
        return fh

    def _fh_ino(self, fh) -> int:
        return self.handles[fh].ino

    def direct_io(self, fh: int) -> bool:
        """Whether an open file bypasses the page cache (a file with more than one name)."""
        return self.handles[fh].cached_path is None

    # --- caching -----------------------------------------------------------------------------

    @staticmethod
    def cacheable(values: tuple) -> bool:
        """May the kernel cache the attributes and pages of this inode (INODE_STRUCT's
        values)? Only when every change of it passes through one kernel inode: a
        directory, or anything with one link."""
        return values[AT_MODE] & C.S_IFMT == C.S_IFDIR or values[AT_LINKS] <= 1

    def _invalidate(self, paths) -> None:
        """Drop the kernel's attributes and pages of `paths`. Sent from a helper thread, as
        the kernel may need this (single-threaded) daemon to answer a request first (a
        read holding a page); waited for at most INVALIDATE_WAIT."""
        paths = [os.fsencode(p) for p in paths if p]
        if not paths:
            return
        if self.fuse is None:
            self.fuse = ctypes.c_void_p(mfusepy._libfuse.fuse_get_context().contents.fuse)
        call = mfusepy._libfuse.fuse_invalidate_path
        call.argtypes, call.restype = [ctypes.c_void_p, ctypes.c_char_p], ctypes.c_int
        fuse = self.fuse
        helper = threading.Thread(target=lambda: [call(fuse, p) for p in paths], daemon=True)
        helper.start()
        helper.join(INVALIDATE_WAIT)

    def _changed(self, ino: int) -> None:
        """A change of a shared inode: the pages and attributes its cached opens hold go."""
        if ino in self.shared:
            self._invalidate(self.cached.get(ino, {}).values())

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
        hidden = self.hidden.get(path)
        if hidden is not None:
            return hidden
        if self.recovery is not None:
            return self._ino_read_only(path)
        return self._walk(os.fsencode(path))

    def _walk(self, path: bytes) -> int:
        """The inode of a path (bytes) through the kept listings: no inode read per step
        (ENOTDIR from a file's)."""
        ino, listing = C.ROOT_INO, self.ns.listing
        for part in path.split(b"/"):
            if part:
                found = listing(ino).get(part)
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
        if len(name) > C.MAX_NAME_LEN:
            raise mfusepy.FuseOSError(E.ENAMETOOLONG)
        if self.recovery is None and not self.hidden:  # a plain directory path: walked as bytes
            return self._walk(head), name
        return self._ino(os.fsdecode(head) or "/"), name

    def _owner(self) -> tuple[int, int]:
        if self.fakeroot:
            return 0, 0
        uid, gid, _ = mfusepy.fuse_get_context()
        return uid, gid

    # --- attributes ------------------------------------------------------------------------

    @as_errno
    def stat_values(self, path, fh=None) -> tuple[int, tuple]:
        """The inode getattr answers about, as (inode number, INODE_STRUCT's values: getattr,
        the most frequent request, fills its struct stat without a Container), its
        answer's timeout chosen."""
        ino = self._fh_ino(fh) if fh else self._ino(path)
        values = self.volume.read_inode_values(ino)
        if not values[AT_MODE]:
            raise mfusepy.FuseOSError(E.ENOENT)
        self.entry_timeout(values)
        return ino, values

    @as_errno
    def getattr(self, path, fh=None):
        ino, v = self.stat_values(path, fh)
        return {"st_ino": ino, "st_mode": v[AT_MODE], "st_nlink": v[AT_LINKS],
                "st_uid": v[AT_UID] if self.uid is None else self.uid,
                "st_gid": v[AT_GID] if self.gid is None else self.gid,
                "st_size": v[AT_SIZE], "st_blocks": v[AT_BLOCKS] * (C.BLOCK_SIZE // 512),
                "st_blksize": C.BLOCK_SIZE, "st_atime": v[AT_ATIME] * 10**9,
                "st_mtime": v[AT_MTIME] * 10**9, "st_ctime": v[AT_CTIME] * 10**9}

    @as_errno
    def chmod(self, path, mode):
        self._writing()
        ino = self._ino(path)
        self.ns.chmod(ino, mode)
        self._changed(ino)
        return 0

    @as_errno
    def chown(self, path, uid, gid):
        self._writing()
        ino = self._ino(path)
        self.ns.chown(ino, -1 if uid in (-1, 0xFFFFFFFF) else uid,
                      -1 if gid in (-1, 0xFFFFFFFF) else gid)
        self._changed(ino)
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
        self._changed(ino)
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
        return [(name, {"st_ino": ino, "st_mode": mode}, 0) for name, ino, mode in self.readdir_entries(fh)]

    def listing_of(self, fh: int, fresh: bool) -> list[tuple[str, int, int]]:
        """readdir_entries kept with the open directory: the kernel reads a listing a page
        at a time, by offset into it (read again from offset 0, as rewinddir asks)."""
        handle = self.handles[fh]
        if fresh or handle.listing is None:
            handle.listing = self.readdir_entries(fh)
        return handle.listing

    def entry_values(self, ino: int) -> tuple | None:
        """An entry's inode for readdirplus, unpacked (INODE_STRUCT's values: no Container
        per entry), or None when it can not be read or is not in use (the kernel then
        looks the name up, and the lookup answers the error)."""
        try:
            values = self.volume.read_inode_values(ino)
        except VexfsError:
            return None
        return values if values[AT_MODE] else None

    def entry_timeout(self, values: tuple) -> None:
        """The attribute timeout of the answer being made about an inode (INODE_STRUCT's
        values): cached only what one kernel inode reaches (cacheable)."""
        if self.config is not None:
            mode, links = values[AT_MODE], values[AT_LINKS]
            timeout = ATTR_TIMEOUT if mode & C.S_IFMT == C.S_IFDIR or links <= 1 else 0.0
            if self.config.attr_timeout != timeout:
                self.config.attr_timeout = timeout

    @as_errno
    def readdir_entries(self, fh) -> list[tuple[str, int, int]]:
        """(name, inode number, type bits) of each entry, `.` and `..` first."""
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
        out = [(".", ino, stat.S_IFDIR), ("..", parent, stat.S_IFDIR)]
        out += [(os.fsdecode(n), i, TYPE_MODES.get(t, 0)) for n, i, t in entries if n not in (b".", b"..")]
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
        if self.hidden.pop(path, None) is not None:
            return 0  # libfuse's hidden name, after the last close: nothing on disk
        self.ns.unlink(*self._split(path))
        return 0

    @as_errno
    def rename(self, old, new, flags=0):
        self._writing()
        if flags:
            raise mfusepy.FuseOSError(E.EINVAL)
        if os.path.basename(new).startswith(HIDDEN_PREFIX) and old not in self.hidden:
            return self._hide(old, new)
        self.ns.rename(*self._split(old), *self._split(new))
        self._renamed(old, new)
        return 0

    def _hide(self, old: str, new: str) -> int:
        """libfuse keeps an open file whose last name goes under a hidden name (instead of
        hard_remove), so that requests without a file handle (fstat) still find it. The
        name is only libfuse's and ours: on disk the file is unlinked now, as with
        hard_remove, and freed at its last close; listings never show it."""
        ino = self._ino(old)
        self.ns.unlink(*self._split(old))
        self.hidden[new] = ino
        self._renamed(old, new)
        return 0

    def _renamed(self, old: str, new: str) -> None:
        """Cached opens and hidden names under a renamed path are known by the new one."""
        for paths in self.cached.values():
            for fh, path in paths.items():
                if path == old or path.startswith(old + "/"):
                    paths[fh] = self.handles[fh].cached_path = new + path[len(old):]
        for path in [p for p in self.hidden if p.startswith(old + "/")]:
            self.hidden[new + path[len(old):]] = self.hidden.pop(path)

    @as_errno
    def link(self, target, source):
        self._writing()  # mfusepy: link(new name, existing path)
        ino = self._ino(source)
        self.ns.link(ino, *self._split(target))
        # The names it had keep the attributes (one link) and pages the kernel cached
        # for them: dropped now; its opens through the page cache are dropped at each change.
        if self.cached.get(ino):
            self.shared.add(ino)
        self._invalidate([source, *self.cached.get(ino, {}).values()])
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
        # _open_direct of a new file (one name, empty, open nowhere else): by its flags alone.
        return self._handle(ino, flags, path, direct=flags & os.O_ACCMODE == os.O_WRONLY)

    @as_errno
    def open(self, path, flags):
        ino = self._ino(path)
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC):
            self._writing()
        if flags & os.O_TRUNC:
            self.ns.truncate(ino, 0)
            self._changed(ino)
        return self._handle(ino, flags, path, direct=self._open_direct(ino, self.volume.read_inode_values(ino), flags))

    def _open_direct(self, ino: int, values: tuple, flags: int) -> bool:
        """Direct I/O for a file with more than one name (each has its own page cache); else
        as the opens already held (one kernel inode never mixes the two); else for a file
        opened write-only (no copy into pages nobody reads) or a big one (the kernel's
        readahead asks 128 KiB at a time, direct reads 1 MiB)."""
        if not self.cacheable(values):
            return True
        if ino in self.cached:
            return False
        if self.ns.open_counts.get(ino):
            return True
        return flags & os.O_ACCMODE == os.O_WRONLY or values[AT_SIZE] >= DIRECT_SIZE

    @as_errno
    def release(self, path, fh):  # noqa: ARG002
        handle = self.handles.pop(fh, None)
        if handle is not None:
            paths = self.cached.get(handle.ino)
            if paths is not None:
                paths.pop(fh, None)
                if not paths:
                    del self.cached[handle.ino]
                    self.shared.discard(handle.ino)
            self.ns.released(handle.ino)
        return 0

    @as_errno
    def read(self, path, size, offset, fh):
        return self.ns.read_inode_data(self.volume.read_inode(self._fh_ino(fh)), offset, size)

    @as_errno
    def read_into(self, fh: int, offset: int, buffer) -> int:
        """read() straight into libfuse's buffer (no bytes object in between)."""
        ino = self._fh_ino(fh)
        return self.ns.read_values_into(ino, self.volume.read_inode_values(ino), offset, buffer)

    @as_errno
    def write(self, path, data, offset, fh):
        self._writing()
        handle = self.handles[fh]
        if handle.append:
            offset = self.volume.read_inode(handle.ino).i_size
        written = self.ns.write(handle.ino, offset, data)
        self._changed(handle.ino)
        return written

    @as_errno
    def truncate(self, path, length, fh=None):
        self._writing()
        ino = self._fh_ino(fh) if fh else self._ino(path)
        self.ns.truncate(ino, length)
        self._changed(ino)
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


_memory_view = ctypes.pythonapi.PyMemoryView_FromMemory
_memory_view.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int]
_memory_view.restype = ctypes.py_object
PYBUF_READ, PYBUF_WRITE = 0x100, 0x200


def buffer_view(buf, size: int, *, writable: bool) -> memoryview:
    """A memoryview of `size` bytes of libfuse's request buffer (a c_byte pointer), for the
    call only. `(c_char * size).from_address` makes a new ctypes type for each size it has
    not seen (~30 us each: small files come in thousands of sizes)."""
    if not size or not buf:  # nothing to see (libfuse may pass no buffer for 0 bytes)
        return memoryview(bytearray())
    return _memory_view(ctypes.addressof(buf.contents), size, PYBUF_WRITE if writable else PYBUF_READ)


STAT_SIZE = ctypes.sizeof(mfusepy.c_stat)
FILL_DIR_PLUS = 1 << 1  # libfuse's FUSE_FILL_DIR_PLUS: the entry carries its attributes
READDIR_PLUS = 1 << 0  # libfuse's FUSE_READDIR_PLUS: the kernel asks for them


AT_MODE, AT_LINKS, AT_UID, AT_GID, AT_SIZE, AT_ATIME, AT_CTIME, AT_MTIME, AT_BLOCKS = (value_index(name) for name in (
    "i_mode", "i_links_count", "i_uid", "i_gid", "i_size", "i_atime", "i_ctime", "i_mtime", "i_blocks"))


def fill_stat_values(st, ino: int, values: tuple, uid: int | None, gid: int | None) -> None:
    """A struct stat from INODE_STRUCT's values, field by field (mfusepy's dict path costs a
    dict and a loop of setattr per getattr); uid, gid: the mount's -o uid=, gid=, or None.
    Sets the same fields for every inode, so a struct reused entry after entry holds no stale one."""
    st.st_ino, st.st_mode, st.st_nlink = ino, values[AT_MODE], values[AT_LINKS]
    st.st_uid = values[AT_UID] if uid is None else uid
    st.st_gid = values[AT_GID] if gid is None else gid
    st.st_size, st.st_blocks, st.st_blksize = values[AT_SIZE], values[AT_BLOCKS] * (C.BLOCK_SIZE // 512), C.BLOCK_SIZE
    st.st_atimespec.tv_sec, st.st_mtimespec.tv_sec, st.st_ctimespec.tv_sec = \
        values[AT_ATIME], values[AT_MTIME], values[AT_CTIME]


class VexfsFUSE(mfusepy.FUSE):
    """mfusepy's FUSE, with the requests that come most often answered without its generic
    layers: getattr fills the struct stat itself, read fills libfuse's buffer and write
    writes from it, open and create say per file whether it bypasses the page cache
    (direct_io), readdir answers with each entry's attributes (readdirplus: `ls -l` and
    `rm -r` need no lookup per name). It also tells the operations which open file a
    setattr with no path is for (ftruncate, fchmod, fchown, futimens: with nullpath_ok
    libfuse gives only the fh, which mfusepy drops)."""

    def _path(self, path: bytes | None) -> str | None:
        return None if path is None else path.decode(self.encoding, self.errors)

    def getattr_fuse_3(self, path, buf, fip):
        ops = self.operations
        try:
            ino, values = ops.stat_values(self._path(path), fip.contents.fh if fip else None)
        except mfusepy.FuseOSError as exc:  # a lookup of a name not there: the most common error
            return -exc.errno
        ctypes.memset(buf, 0, STAT_SIZE)
        fill_stat_values(buf.contents, ino, values, ops.uid, ops.gid)
        return 0

    def open(self, path, fip):
        fi = fip.contents
        fi.fh = self.operations.open(self._path(path), fi.flags)
        fi.direct_io = self.operations.direct_io(fi.fh)
        return 0

    def create(self, path, mode, fip):
        fi = fip.contents
        fi.fh = self.operations.create(self._path(path), mode, fi.flags)
        fi.direct_io = self.operations.direct_io(fi.fh)
        return 0

    def read(self, path, buf, size, offset, fip):
        target = buffer_view(buf, size, writable=True)
        return self.operations.read_into(fip.contents.fh, offset, target)

    def write(self, path, buf, size, offset, fip):
        # The request's own buffer, not a copy: the write API writes it before returning.
        data = buffer_view(buf, size, writable=False)
        return self.operations.write(self._path(path), data, offset, fip.contents.fh)

    def readdir_fuse_3(self, path, buf, filler, offset, fip, flags):
        """Entries from `offset` (an index into the listing, each entry's own offset the
        next index) until libfuse's buffer is full: with offsets, libfuse 3 sends the
        attributes of readdirplus entries on (without, it drops them)."""
        ops, st = self.operations, mfusepy.c_stat()  # zeroed once: each entry sets what it uses
        plus = bool(flags & READDIR_PLUS)
        listing = ops.listing_of(fip.contents.fh, fresh=offset == 0)
        encoding, errors = self.encoding, self.errors
        for index in range(offset, len(listing)):
            name, ino, mode = listing[index]
            fill = 0
            values = ops.entry_values(ino) if plus and name not in (".", "..") else None
            if values is not None:
                fill_stat_values(st, ino, values, ops.uid, ops.gid)
                ops.entry_timeout(values)
                fill = FILL_DIR_PLUS
            else:  # libfuse takes only st_ino and the type bits of an entry without FILL_DIR_PLUS
                st.st_ino, st.st_mode = ino, mode
            if filler(buf, name.encode(encoding, errors), st, index + 1, fill) != 0:
                break
        return 0

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
