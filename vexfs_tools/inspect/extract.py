"""Copying files out of an image (debugfs's rdump), safely on a hostile image.

`extract(volume, PATH, DEST)` copies one file or a whole tree into DEST, restoring mode
(without set-user/group-ID bits) and access/modification times; with `deleted=True` the
deleted entries whose inode still holds data are recovered too, into a separate folder of
DEST (".deleted", or ".deleted~N" when that name is taken).

An image is untrusted input, so:
- every file is created inside a directory this run created, through that directory's
  file descriptor (openat/mkdirat/symlinkat), with O_EXCL and O_NOFOLLOW: a name can not
  hold "/", a symlink in DEST is never followed, nothing is overwritten;
- names are sanitized: "/", NUL and control characters become %XX, "." and ".." %2E, an
  empty name "_", an over-long one is shortened with a hash; names that collide get "~N";
- symlinks are recreated as symlinks (their target as it is, never followed), so one
  pointing outside DEST stays a dangling link here;
- every directory is entered once (cycles and hard-linked directories are reported), at
  most recovery.MAX_DEPTH deep, and its descriptor's real path is checked to be in DEST;
- a file's data is what its block map holds (a map can not loop; see volume.blockmap):
  i_size beyond what a map can address is cut to the mapped data, holes stay holes, and a
  file named many times is written once and hard-linked;
- device files, fifos and sockets are not created.
Each oddity is reported (ExtractReport.problems, and `on_problem` as it happens), never
fatal; memory stays bounded by a few directories' entries (the one read, and the batches of
plain files queued for the writer threads: at most extract_writers.IN_FLIGHT + WRITERS)
and one 8 MiB chunk of data.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat as statmod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import UsageError, VexfsError
from ..format import constants as C
from ..format.dtypes import INODE_DTYPE
from ..volume.blockmap import P
from ..volume.inodes import InodeRecord
from ..volume.volume import Volume
from .deleted import LINKED
from .extract_writers import O_NEW, WRITERS, Batch, Writers, write_plain
from .lost import lost_inodes
from .names import display
from .recovery import Entry, Listing, Recovery, join, table_in_map, table_rows, walk

CHUNK = 8 << 20
MAX_STORED_PROBLEMS = 10000
SYMLINK_MAX = 4095
DELETED_FOLDER = b".deleted"
UNALLOCATED_FOLDER = b".unallocated"
_UNSAFE = re.compile(rb"[\x00-\x1f/\x7f]")
O_DIR = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass
class ExtractReport:
    files: int = 0
    directories: int = 0
    symlinks: int = 0
    hard_links: int = 0
    bytes: int = 0
    skipped: int = 0
    recovered: int = 0  # deleted entries recovered
    deleted_folder: str | None = None
    unallocated_folder: str | None = None
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("files", "directories", "symlinks", "hard_links", "bytes", "skipped",
                                              "recovered", "deleted_folder", "problem_count", "problems")} | \
            ({"unallocated_folder": self.unallocated_folder} if self.unallocated_folder else {})


def sanitize(name: bytes) -> bytes:
    """A name safe to create in one directory: never "/", NUL, a control character, ".",
    ".." or empty, at most 255 bytes."""
    if 0 < len(name) <= 255 and not _UNSAFE.search(name) and name not in (b".", b".."):
        return name
    out = bytearray()
    for byte in name:
        if byte == 0x2F or byte < 0x20 or byte == 0x7F:
            out += b"%%%02X" % byte
        else:
            out.append(byte)
    if not out:
        out = bytearray(b"_")
    elif out in (b".", b".."):
        out = bytearray(b"%2E" * len(out))
    if len(out) > 255:
        out = out[:200] + b"~" + hashlib.sha256(name).hexdigest()[:32].encode()
    return bytes(out)


class _Directory:
    """A directory this run made (or DEST): its descriptor, host path and names used."""

    def __init__(self, fd: int, host: bytes):
        self.fd = fd
        self.host = host  # relative to DEST, for messages and hard links
        self.used: dict[bytes, int] = {}
        self.finish: tuple[int, int, int] | None = None  # mode, atime, mtime, set on close
        self.batches: list[Batch] = []  # handed to the writers, not settled yet

    def close(self) -> None:
        if self.finish is not None:
            mode, atime, mtime = self.finish
            try:
                os.fchmod(self.fd, mode)
                os.utime(self.fd, (atime, mtime))
            except OSError:
                pass
        os.close(self.fd)


class Extractor:
    def __init__(self, volume: Volume, dest: str, *, recovery: Recovery | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 on_problem: Callable[[str], None] | None = None):
        self.volume = volume
        self.recovery = recovery or Recovery(volume)
        self.progress = progress
        self.on_problem = on_problem
        self.report = ExtractReport()
        self.fs_bytes = volume.geometry.blocks_count * C.BLOCK_SIZE
        self.max_file_size = volume.max_file_size()
        self.dest = os.fsencode(dest)
        if not os.path.lexists(self.dest):
            try:
                os.mkdir(self.dest, 0o755)
            except OSError as e:
                raise UsageError(f"{dest}: can not create the destination: {e.strerror}") from None
        try:
            self.dest_fd = os.open(self.dest, O_DIR & ~getattr(os, "O_NOFOLLOW", 0))
        except OSError as e:
            raise UsageError(f"{dest}: not a usable destination directory: {e.strerror}") from None
        self.dest_real = os.path.realpath(f"/proc/self/fd/{self.dest_fd}".encode()) \
            if os.path.exists(f"/proc/self/fd/{self.dest_fd}") else os.path.realpath(self.dest)
        self.first_copy: dict[int, tuple[bytes, bytes]] = {}  # inode -> (directory, name) of its first copy
        self.renamed: set[int] = set()  # inodes already reported as named twice
        # Inodes written once (later names are hard-linked): a byte a slot up to the inode
        # table mark, a set for the slots past it that a hostile entry may name.
        self.written = bytearray(volume.itable_end + 1)
        self.written_past: set[int] = set()
        self.dup_names: dict[tuple[bytes, bytes], int] = {}
        g = volume.geometry
        self._data_blocks = (g.first_data_block, g.addressable_blocks, g.backup_sb_block)
        self._umask = _umask()
        # Small files' data is written straight from a map of the image (no read copies it);
        # None where the device can not be mapped: then everything reads through the device.
        self._image = volume.device.map_readonly(0, min(volume.device.size, self.fs_bytes))
        self._table = table_in_map(volume, self._image) if not getattr(volume.device, "writable", True) else None
        # plain_files takes files up to here: the direct blocks, and the single indirect
        # block's where the layout has indirect blocks.
        self._plain_limit = (C.DIRECT_BLOCKS + (P if volume.indirect else 0)) * C.BLOCK_SIZE
        # Writer threads for batches of plain files (from the map only), made on first use.
        self._writers: Writers | None = None
        self._threads = WRITERS if self._table is not None and (os.cpu_count() or 1) > 1 else 0
        self._pending: list[Batch] = []  # handed over, in order, not settled yet
        self._retired: list[_Directory] = []  # done with, closed once their batches are settled

    def plain_files(self, entries: list[Entry]) -> list[tuple | None]:
        """walk()'s fast path: for each entry, (size, data, permissions, atime, mtime) when
        it names a regular file the general path would write with nothing to report (no
        set-ID bit, permissions the umask leaves, every block mapped, valid and inside the
        map: direct blocks in one run, or direct and single indirect ones), else None.
        `data` is the image offset of a one-run file, else a tuple of (image offset,
        length) runs in file order. Read in bulk from the table in the map: no InodeRecord."""
        found: list[tuple | None] = [None] * len(entries)
        table = self._table
        if table is None or not entries:
            return found
        picked, raw = table_rows(self.volume, table, entries)
        if not picked.size:
            return found
        records = raw.view(INODE_DTYPE).reshape(-1)
        mode = records["i_mode"].astype(np.int64)
        size = np.minimum(records["i_size"], self._plain_limit + 1).astype(np.int64)
        count = -(-size // C.BLOCK_SIZE)
        pointers = records["i_block"].astype(np.int64)
        first, end, backup = self._data_blocks
        steps = np.arange(C.DIRECT_BLOCKS)
        needed = steps[None, :] < count[:, None]
        sound = ((pointers >= first) & (pointers < end) & (pointers != backup)
                 & (pointers == pointers[:, :1] + steps[None, :]))
        direct = count <= C.DIRECT_BLOCKS
        ok = (((mode & C.S_IFMT) == C.S_IFREG) & ((mode & (statmod.S_ISUID | statmod.S_ISGID | self._umask)) == 0)
              & (size <= min(self._plain_limit, self.fs_bytes)))
        small = (ok & direct & (sound | ~needed).all(axis=1)
                 & ((count == 0) | ((pointers[:, 0] + count) * C.BLOCK_SIZE <= len(self._image))))
        values = zip(size[small].tolist(), (pointers[small, 0] * C.BLOCK_SIZE).tolist(),
                     (mode[small] & 0o777).tolist(), records["i_atime"][small].tolist(),
                     records["i_mtime"][small].tolist())
        for at, value in zip(picked[small].tolist(), values):
            found[at] = value
        larger = np.flatnonzero(ok & ~direct)
        if larger.size:
            runs = self._indirect_runs(records[larger], size[larger])
            for at, row, run in zip(picked[larger].tolist(), larger.tolist(), runs):
                if run is not None:
                    found[at] = (int(size[row]), run, int(mode[row]) & 0o777, int(records["i_atime"][row]),
                                 int(records["i_mtime"][row]))
        return found

    def _indirect_runs(self, records: np.ndarray, size: np.ndarray) -> list[tuple | None]:
        """For files past the direct blocks but within the single indirect block: their
        data as (image offset, length) runs in file order, when every block up to i_size
        is mapped by a valid pointer inside the map (what BlockMap.runs gives, read in
        bulk); None for any other (the general path reads and reports it)."""
        out: list[tuple | None] = [None] * len(records)
        image, geometry = self._image, self.volume.geometry
        blocks_in_map = len(image) // C.BLOCK_SIZE
        top = records["i_indirect"].astype(np.int64)
        usable = np.flatnonzero(geometry.data_block_mask(records["i_indirect"]) & (top < blocks_in_map))
        if not usable.size:
            return out
        words = np.frombuffer(image, "<u4", count=blocks_in_map * (C.BLOCK_SIZE // 4)).reshape(blocks_in_map, -1)
        count = -(-size[usable] // C.BLOCK_SIZE)
        width = int(count.max())  # the pointers past every file's last block are not looked at
        pointers = np.concatenate([records["i_block"][usable].astype(np.uint32),
                                   words[top[usable], :width - C.DIRECT_BLOCKS]], axis=1)
        needed = np.arange(width)[None, :] < count[:, None]
        good = ((geometry.data_block_mask(pointers) | ~needed).all(axis=1)
                & (np.where(needed, pointers, 0).max(axis=1) < blocks_in_map))
        # (A pointer of 2^32 - 1 plus one wraps to 0: both are pointers the mask refuses.)
        breaks = (pointers[:, 1:] != pointers[:, :-1] + np.uint32(1)) & needed[:, 1:]
        rows, columns = np.nonzero(breaks)
        bounds = np.searchsorted(rows, np.arange(len(usable) + 1)).tolist()
        columns = (columns + 1).tolist()
        wide, lengths, counts, where = pointers.tolist(), size[usable].tolist(), count.tolist(), usable.tolist()
        for n in np.flatnonzero(good).tolist():
            length, row = lengths[n], wide[n]
            starts = [0, *columns[bounds[n]:bounds[n + 1]]]
            out[where[n]] = tuple((row[s] * C.BLOCK_SIZE, min((e - s) * C.BLOCK_SIZE, length - s * C.BLOCK_SIZE))
                                  for s, e in zip(starts, starts[1:] + [counts[n]]))
        return out

    # --- reporting ------------------------------------------------------------------------

    def problem(self, message: str) -> None:
        self.report.problem_count += 1
        if len(self.report.problems) < MAX_STORED_PROBLEMS:
            self.report.problems.append(message)
        if self.on_problem is not None:
            self.on_problem(message)

    def _tick(self) -> None:
        if self.progress is not None and self.report.files % 64 == 0:
            self.progress(self.report.bytes, self.report.files + self.report.directories + self.report.symlinks)

    # --- host side ------------------------------------------------------------------------

    def _check_inside(self, fd: int, host: bytes) -> bool:
        proc = f"/proc/self/fd/{fd}"
        if not os.path.exists(proc):
            return True
        real = os.path.realpath(proc.encode())
        if real == self.dest_real or real.startswith(self.dest_real.rstrip(b"/") + b"/"):
            return True
        self.problem(f"{display(host)}: resolves outside the destination; not written")
        return False

    def _name(self, raw: bytes, image_path: bytes) -> bytes:
        name = sanitize(raw)
        if name != raw:
            self.problem(f"{display(image_path)}: the name \"{display(raw)}\" is sanitized to \"{display(name)}\"")
        return name

    def _create(self, parent: _Directory, name: bytes, image_path: bytes, make: Callable[[bytes], object]):
        """Call make(candidate) with name, then name~1, name~2 ... until it does not fail
        with EEXIST; the name used and make's result. Collisions are reported once a name."""
        count = parent.used.get(name, 0)
        candidate = name if count == 0 else self._suffixed(name, count)
        while True:
            try:
                result = make(candidate)
            except FileExistsError:
                count += 1
                candidate = self._suffixed(name, count)
                continue
            except OSError as e:
                if e.errno in (errno.EILSEQ, errno.EINVAL) and candidate != _ascii(candidate):
                    self.problem(f"{display(image_path)}: the destination refused the name; escaped to ASCII")
                    name = candidate = _ascii(candidate)
                    continue
                raise
            parent.used[name] = count + 1
            if count:
                key = (parent.host, name)
                seen = self.dup_names.get(key, 0)
                self.dup_names[key] = seen + 1
                if seen == 0:
                    self.problem(f"{display(image_path)}: the name is taken in {display(parent.host or b'.')}; "
                                 f"written as {display(candidate)} (further duplicates get ~N as well)")
            return candidate, result

    @staticmethod
    def _suffixed(name: bytes, n: int) -> bytes:
        suffix = b"~%d" % n
        return name[:255 - len(suffix)] + suffix

    def make_directory(self, parent: _Directory, raw: bytes, image_path: bytes, *,
                       quiet: bool = False) -> _Directory | None:
        name = sanitize(raw) if quiet else self._name(raw, image_path)

        def make(candidate):
            os.mkdir(candidate, 0o700, dir_fd=parent.fd)
            return candidate

        try:
            name, _ = self._create(parent, name, image_path, make)
            fd = os.open(name, O_DIR, dir_fd=parent.fd)
        except OSError as e:
            self.problem(f"{display(image_path)}: can not create the directory: {e.strerror}")
            return None
        host = parent.host + b"/" + name if parent.host else name
        if not self._check_inside(fd, host):
            os.close(fd)
            return None
        self.report.directories += 1
        return _Directory(fd, host)

    # --- one inode ------------------------------------------------------------------------

    def extract_inode(self, parent: _Directory, raw_name: bytes, image_path: bytes, inode: InodeRecord) -> _Directory | None:
        """Create one entry in `parent`; a directory is returned open (to be filled)."""
        fmt = inode.file_format
        if fmt == C.S_IFDIR:
            made = self.make_directory(parent, raw_name, image_path)
            if made is not None:
                made.finish = (self._mode(inode, image_path), inode.i_atime, inode.i_mtime)
            return made
        if fmt == C.S_IFREG:
            self.write_regular(parent, raw_name, image_path, inode)
        elif fmt == C.S_IFLNK:
            self.write_symlink(parent, raw_name, image_path, inode)
        else:
            kind = {C.S_IFCHR: "character device", C.S_IFBLK: "block device", C.S_IFIFO: "fifo",
                    C.S_IFSOCK: "socket"}.get(fmt, f"unknown file type (mode 0o{inode.i_mode:o})")
            self.problem(f"{display(image_path)}: {kind}, not extracted")
            self.report.skipped += 1
        return None

    def _mode(self, inode: InodeRecord, image_path: bytes) -> int:
        mode = inode.i_mode & 0o7777
        if mode & (statmod.S_ISUID | statmod.S_ISGID):
            self.problem(f"{display(image_path)}: set-user/group-ID bits not restored "
                         f"(mode {statmod.filemode(inode.i_mode)})")
        keep = 0o1777 if inode.is_dir else 0o777
        return mode & keep

    def write_regular(self, parent: _Directory, raw_name: bytes, image_path: bytes, inode: InodeRecord) -> None:
        name = self._name(raw_name, image_path)
        if self.was_written(inode.ino):
            # Named again (a hard link, or a hostile image naming one inode thousands of
            # times): the data is written once, then linked.
            if inode.i_links_count <= 1 and inode.ino not in self.renamed:
                self.renamed.add(inode.ino)
                self.problem(f"{display(image_path)}: inode {inode.ino} is named more than once though its link "
                             f"count is {inode.i_links_count}; written once, the other names hard-linked")
            first = self.first_copy.get(inode.ino)
            if first is not None:
                source = first[0] + b"/" + first[1] if first[0] else first[1]

                def link(candidate):
                    os.link(source, candidate, src_dir_fd=self.dest_fd, dst_dir_fd=parent.fd, follow_symlinks=False)

                try:
                    self._create(parent, name, image_path, link)
                    self.report.hard_links += 1
                    return
                except OSError:
                    pass  # copy it again
        # Created with its final permissions when the umask leaves them (the descriptor is
        # writable whatever they are): no fchmod after the data.
        mode = inode.i_mode & 0o777
        create_mode = mode if not mode & self._umask else 0o600
        fd = -1
        if name not in parent.used:  # the common case, without the retry loop
            try:
                fd = os.open(name, O_NEW, create_mode, dir_fd=parent.fd)
                parent.used[name] = 1
            except OSError:
                fd = -1
        if fd < 0:
            try:
                name, fd = self._create(parent, name, image_path,
                                        lambda candidate: os.open(candidate, O_NEW, create_mode, dir_fd=parent.fd))
            except OSError as e:
                self.problem(f"{display(image_path)}: can not create: {e.strerror}")
                return
        try:
            if not self._copy_direct(fd, inode):
                self._copy_data(fd, inode, image_path)
            if inode.i_mode & (statmod.S_ISUID | statmod.S_ISGID):
                self._mode(inode, image_path)  # says the bits are not restored
            if create_mode != mode:
                os.fchmod(fd, mode)
            os.utime(fd, (inode.i_atime, inode.i_mtime))
        except OSError as e:
            self.problem(f"{display(image_path)}: writing failed: {e.strerror}")
        finally:
            os.close(fd)
        self.report.files += 1
        if not self.was_written(inode.ino):
            self.first_copy[inode.ino] = (parent.host, name)
            self.mark_written(inode.ino)
        if self.progress is not None:
            self._tick()

    def was_written(self, ino: int) -> bool:
        return self.written[ino] != 0 if ino < len(self.written) else ino in self.written_past

    def mark_written(self, ino: int) -> None:
        if ino < len(self.written):
            self.written[ino] = 1
        else:
            self.written_past.add(ino)

    def write_plains(self, parent: _Directory, plains: list[tuple[Entry, tuple]], directory_path: bytes) -> None:
        """write_regular for entries plain_files vouched for: handed to the writer threads
        when every name and inode is new (claimed here, in walk order, so that what is
        written is what the one-at-a-time path writes), else written here, after the
        batches in flight (a later name may be linked to a file of theirs)."""
        if self._threads and self._claim(parent, plains):
            if self._writers is None:
                self._writers = Writers(self._threads)
            batch = Batch(parent, directory_path, plains, self._image)
            parent.batches.append(batch)
            self._pending.append(batch)
            self._writers.jobs.put(batch)
            self._settle_finished()
            return
        self._drain()
        self._write_plains_here(parent, plains, directory_path)

    def _claim(self, parent: _Directory, plains: list[tuple[Entry, tuple]]) -> bool:
        """Whether write_plains' common case holds for every entry (an inode not written
        yet and named once in the batch, a name that needs no sanitizing, not taken); if
        so they are claimed: marked written, their names and first copies recorded."""
        written, used, limit, unsafe = self.written, parent.used, len(self.written), _UNSAFE.search
        names: set[bytes] = set()
        inos: set[int] = set()
        for (name, ino, _, _, _), _ in plains:
            if not (ino < limit and not written[ino] and 0 < len(name) <= 255 and name not in used
                    and not unsafe(name)) or name in names or ino in inos:
                return False
            names.add(name)
            inos.add(ino)
        host, first_copy = parent.host, self.first_copy
        for (name, ino, _, _, _), _ in plains:
            used[name] = 1
            written[ino] = 1
            first_copy[ino] = (host, name)
        return True

    def _settle(self, batch: Batch) -> None:
        """A batch, once written, into the report: its counts, its failures to write
        (reported), the names it could not create (given back and written the general
        way, which says why)."""
        batch.done.wait()
        parent = batch.parent
        parent.batches.remove(batch)
        if batch.error is not None:
            raise batch.error
        files, nbytes, failed, problems = batch.result
        self.report.files += files
        self.report.bytes += nbytes
        for at, strerror in sorted([(at, "") for at in failed] + problems):
            (name, ino, _, _, _), _ = batch.plains[at]
            path = join(batch.path, name)
            if strerror:
                self.problem(f"{display(path)}: writing failed: {strerror}")
                continue
            del parent.used[name]
            self.written[ino] = 0
            del self.first_copy[ino]
            self.write_regular(parent, name, path, self.volume.read_inode(ino))
        if self.progress is not None:
            report = self.report
            self.progress(report.bytes, report.files + report.directories + report.symlinks)

    def _settle_finished(self, wait: bool = False) -> None:
        """Settle the batches written (with `wait`, all of them), in order; close the
        retired directories none of whose batches is left."""
        pending = self._pending
        while pending and (wait or pending[0].done.is_set()):
            self._settle(pending.pop(0))
        if self._retired:
            left = []
            for directory in self._retired:
                if directory.batches:
                    left.append(directory)
                else:
                    directory.close()
            self._retired = left

    def _drain(self) -> None:
        if self._pending or self._retired:
            self._settle_finished(wait=True)

    def _retire(self, directory: _Directory) -> None:
        """Close a directory the walk is done with, once its batches are settled (its
        mode and times are set last, after its files)."""
        if directory.batches:
            self._retired.append(directory)
        else:
            directory.close()

    def stop_writers(self) -> None:
        """At the end of a walk (or at an error in it): the writer threads stopped once
        they have run what was queued, so that none uses a directory any more, then the
        directories still waiting closed (a later walk starts new writers)."""
        if self._writers is not None:
            self._writers.stop()
            self._writers = None
        self._pending = []
        for directory in self._retired:
            directory.close()
        self._retired = []

    def _write_plains_here(self, parent: _Directory, plains: list[tuple[Entry, tuple]],
                           directory_path: bytes) -> None:
        """write_regular for entries plain_files vouched for, from their tuples: the same
        calls, bytes and report, without an InodeRecord; anything less common (a name to
        sanitize or taken, an inode written already) goes the general way. The counts are
        kept in locals and added to the report at the end (progress every 256 files)."""
        written, used, first_copy, image, progress = self.written, parent.used, self.first_copy, self._image, \
            self.progress
        host, dir_fd, unsafe, limit = parent.host, parent.fd, _UNSAFE.search, len(self.written)
        open_, close = os.open, os.close
        files = nbytes = 0
        try:
            for (name, ino, _, _, _), (size, start, mode, atime, mtime) in plains:
                if ino < limit and not written[ino] and name not in used and name and not unsafe(name):
                    try:
                        fd = open_(name, O_NEW, mode, dir_fd=dir_fd)
                    except OSError:
                        fd = -1
                else:
                    fd = -1
                if fd < 0:
                    self.write_regular(parent, name, join(directory_path, name), self.volume.read_inode(ino))
                    continue
                used[name] = 1
                try:
                    nbytes += write_plain(fd, image, size, start, atime, mtime)
                except OSError as e:
                    self.problem(f"{display(join(directory_path, name))}: writing failed: {e.strerror}")
                finally:
                    close(fd)
                files += 1
                first_copy[ino] = (host, name)
                written[ino] = 1
                if progress is not None and not files & 255:
                    progress(self.report.bytes + nbytes, self.report.files + files)
        finally:
            self.report.files += files
            self.report.bytes += nbytes
        if progress is not None:
            report = self.report
            progress(report.bytes, report.files + report.directories + report.symlinks)

    def _copy_direct(self, fd: int, inode: InodeRecord) -> bool:
        """A small file (direct blocks only, every one mapped and valid, inside the image
        map) written from the map, a pwrite a run of blocks; False: not such a file, the
        general path (_copy_data) does it and says what is wrong."""
        size = inode.i_size
        image = self._image
        if image is None or size > C.DIRECT_BLOCKS * C.BLOCK_SIZE or size > self.fs_bytes:
            return False
        pointers = inode.fields["i_block"]
        first, end, backup = self._data_blocks
        count = -(-size // C.BLOCK_SIZE)
        runs = []
        top = 0
        for logical in range(count):
            block = pointers[logical]
            if not (first <= block < end) or block == backup:
                return False  # a hole or a bad pointer
            top = max(top, block)
            if runs and block == runs[-1][0] + runs[-1][1]:
                runs[-1][1] += 1
            else:
                runs.append([block, 1])
        if (top + 1) * C.BLOCK_SIZE > len(image):
            return False  # past the end of a truncated image
        position = 0
        for block, blocks in runs:
            n = min(blocks * C.BLOCK_SIZE, size - position)
            view = image[block * C.BLOCK_SIZE:block * C.BLOCK_SIZE + n]
            offset = position
            while view:
                written = os.pwrite(fd, view, offset)
                view, offset = view[written:], offset + written
            position += n
        if size:
            self.report.bytes += size
            if self.progress is not None:
                self.progress(self.report.bytes, self.report.files)
        return True

    def _copy_data(self, fd: int, inode: InodeRecord, image_path: bytes) -> None:
        volume = self.volume
        size = inode.i_size
        readable = min(size, self.max_file_size)
        block_map = volume.block_map(inode)
        runs = block_map.runs(-(-readable // C.BLOCK_SIZE))  # fills block_map.problems as it goes
        mapped_end = 0
        read = volume.device.read
        budget = self.fs_bytes  # a file can not hold more data than the file system: blocks repeat
        try:
            for logical, physical, count in runs:
                start = logical * C.BLOCK_SIZE
                end = min(readable, start + count * C.BLOCK_SIZE)
                if end - start > budget:
                    self.problem(f"{display(image_path)}: its block map holds more data than the file system "
                                 f"({self.fs_bytes} bytes): blocks repeat; the rest is left out")
                    end = start + budget
                    budget = -1
                else:
                    budget -= end - start
                position = start
                while position < end:
                    n = min(CHUNK, end - position)
                    data = read(physical * C.BLOCK_SIZE + (position - start), n)
                    written = os.pwrite(fd, data, position)
                    if written < n:  # short write: the rest, a piece at a time
                        view, offset = memoryview(data)[written:], position + written
                        while view:
                            written = os.pwrite(fd, view, offset)
                            view, offset = view[written:], offset + written
                    position += n
                    self.report.bytes += n
                    if self.progress is not None:
                        self.progress(self.report.bytes, self.report.files)
                mapped_end = max(mapped_end, end)
                if budget < 0:
                    break
        except VexfsError as e:
            self.problem(f"{display(image_path)}: {e}; the file is cut short")
        if block_map.problems:
            self._map_problems(block_map.problems, image_path)
        final = size
        if size > self.max_file_size or size > max(mapped_end, self.fs_bytes):
            final = mapped_end
            self.problem(f"{display(image_path)}: i_size {size} is more than the block map holds; "
                         f"written {final} bytes (the mapped data)")
        if final != mapped_end:
            os.ftruncate(fd, final)  # a hole at the end (nothing beyond mapped_end was written)

    def _map_problems(self, map_problems: list[str], image_path: bytes) -> None:
        counts: dict[str, int] = {}
        for problem in map_problems:
            if problem in counts or len(counts) < 10:
                counts[problem] = counts.get(problem, 0) + 1
        for problem, count in counts.items():
            self.problem(f"{display(image_path)}: {problem}" + (f" ({count} times)" if count > 1 else ""))
        if len(map_problems) > sum(counts.values()):
            self.problem(f"{display(image_path)}: {len(map_problems) - sum(counts.values())} more block "
                         "map problems")

    def write_symlink(self, parent: _Directory, raw_name: bytes, image_path: bytes, inode: InodeRecord) -> None:
        name = self._name(raw_name, image_path)
        if inode.i_size > SYMLINK_MAX:
            self.problem(f"{display(image_path)}: symlink target of {inode.i_size} bytes is too long; not created")
            self.report.skipped += 1
            return
        try:
            target = self.volume.read_bytes(inode, inode.i_size)
        except VexfsError as e:
            self.problem(f"{display(image_path)}: symlink target unreadable: {e}")
            self.report.skipped += 1
            return
        if not target or b"\0" in target:
            self.problem(f"{display(image_path)}: symlink target {display(target)!r} can not be created")
            self.report.skipped += 1
            return
        if target.startswith(b"/") or _climbs_out(image_path, target):
            self.problem(f"{display(image_path)}: symlink points outside the extracted tree "
                         f"({display(target)}); recreated as a link, not followed")
        try:
            name, _ = self._create(parent, name, image_path,
                                   lambda candidate: os.symlink(target, candidate, dir_fd=parent.fd))
            os.utime(name, (inode.i_atime, inode.i_mtime), dir_fd=parent.fd, follow_symlinks=False)
        except OSError as e:
            self.problem(f"{display(image_path)}: can not create the symlink: {e.strerror}")
            return
        self.report.symlinks += 1

    # --- trees ----------------------------------------------------------------------------

    def extract_tree(self, top: InodeRecord, top_path: bytes, root: _Directory) -> np.ndarray:
        """Pass 1: the live tree below directory `top` into `root`. Returns the live inodes."""
        live = np.zeros(self.volume.geometry.inode_slots + 1, dtype=bool)
        live[top.ino] = True
        stack: list[_Directory | None] = [root]  # by depth: the open directory at each level
        # directories made, not yet filled: inode -> (name in its parent, mode and times). They
        # are closed as soon as made and reopened when the walk reaches them, so that open
        # descriptors stay one a level however many subdirectories a directory has.
        pending: dict[int, tuple[bytes, tuple[int, int, int] | None]] = {}
        try:
            for listing in walk(self.recovery, top, top_path, plain=self.plain_files):
                self._report_listing(listing)
                if listing.depth:
                    while len(stack) > listing.depth:
                        closing = stack.pop()
                        if closing is not None and closing is not root:
                            self._retire(closing)
                    stack.append(self._reopen(stack[-1], pending.pop(listing.inode.ino, None)))
                here = stack[listing.depth]
                if listing.vouched == len(listing.entries):  # all plain files: the common case
                    if listing.entries:
                        self._plains_done(here, listing.entries, listing.path, live)
                    continue
                plains: list[tuple[Entry, tuple]] = []
                for entry, inode in listing.entries:
                    if inode.__class__ is tuple:
                        plains.append((entry, inode))
                        continue
                    if plains:
                        self._plains_done(here, plains, listing.path, live)
                        plains = []
                    path = join(listing.path, entry.name)
                    if inode is None:
                        self.report.skipped += 1
                        continue
                    live[entry.ino] = True
                    if here is None:
                        continue  # its directory could not be made
                    if inode.is_dir and not listing.is_entered(entry):
                        continue  # a cycle or a second name: reported by the walk
                    if self._pending and self.was_written(entry.ino):
                        self._drain()  # it is linked to its first copy: that must be written
                    made = self.extract_inode(here, entry.name, path, inode)
                    if made is not None:
                        pending[inode.ino] = (made.host.rsplit(b"/", 1)[-1], made.finish)
                        made.finish = None
                        made.close()
                if plains:
                    self._plains_done(here, plains, listing.path, live)
            self._drain()
        finally:
            self.stop_writers()
            for directory in reversed(stack):
                if directory is not None and directory is not root:
                    directory.close()
        return live

    def _plains_done(self, here: _Directory | None, plains: list[tuple[Entry, tuple]], path: bytes,
                     live: np.ndarray) -> None:
        """The plain files met in a row: marked live, written (unless their directory could
        not be made)."""
        live[[entry[1] for entry, _ in plains]] = True
        if here is not None:
            self.write_plains(here, plains, path)

    def _reopen(self, parent: _Directory | None, made: tuple[bytes, tuple[int, int, int] | None] | None):
        """The directory made as `made` in `parent`, open again (None if it was not made)."""
        if parent is None or made is None:
            return None
        name, finish = made
        host = parent.host + b"/" + name if parent.host else name
        try:
            fd = os.open(name, O_DIR, dir_fd=parent.fd)
        except OSError as e:
            self.problem(f"{display(host)}: can not reopen: {e.strerror}")
            return None
        if not self._check_inside(fd, host):
            os.close(fd)
            return None
        directory = _Directory(fd, host)
        directory.finish = finish
        return directory

    def _report_listing(self, listing: Listing) -> None:
        for problem in listing.problems:
            self.problem(problem)

    def open_host(self, host: bytes) -> _Directory | None:
        """Open a directory this run made, a component at a time, never following a link."""
        fd = os.dup(self.dest_fd)
        try:
            for part in host.split(b"/"):
                if part:
                    next_fd = os.open(part, O_DIR, dir_fd=fd)
                    os.close(fd)
                    fd = next_fd
        except OSError as e:
            os.close(fd)
            self.problem(f"{display(host)}: can not reopen: {e.strerror}")
            return None
        return _Directory(fd, host)

    def extract_deleted(self, top: InodeRecord, top_path: bytes, live: np.ndarray) -> None:
        """Pass 2: deleted entries that still hold data, into the deleted folder, under a
        copy of the directories that named them."""
        mirrors: dict[int, bytes] = {}  # directory inode -> host path of its copy in the folder
        names: dict[int, tuple[int, bytes, bytes]] = {}  # live directory -> (parent, raw name, image path)
        finish: list[tuple[bytes, int, int, int]] = []  # recovered directories: host, mode, atime, mtime
        for listing in walk(self.recovery, top, top_path, deleted=True, into_deleted=True, live=live):
            ino = listing.inode.ino
            if listing.inside_deleted:
                self._report_listing(listing)
            elif listing.depth:
                names[ino] = (listing.parent_ino, listing.name, listing.path)
            wanted = []
            if listing.inside_deleted:
                for entry, inode in listing.entries:
                    if inode is None or (inode.is_dir and not listing.is_entered(entry)):
                        continue
                    if live[entry.ino] and not inode.is_dir:
                        continue  # a live name has it
                    wanted.append((entry.name, inode, join(listing.path, entry.name)))
            for item in listing.deleted:
                path = join(listing.path, item.name)
                if item.status == LINKED:
                    continue  # extracted under its live name
                if not item.holds_data:
                    self.problem(f"{display(path)} (deleted, inode {item.ino or '?'}): {item.status}; not recovered")
                    continue
                if item.inode.is_dir and not listing.is_entered(item):
                    continue
                wanted.append((item.name, item.inode, path))
            if not wanted:
                continue
            here = self._mirror(ino, top, mirrors, names)
            if here is None:
                continue
            try:
                for name, inode, path in wanted:
                    made = self.extract_inode(here, name, path, inode)
                    self.report.recovered += 1
                    if made is not None:
                        mirrors[inode.ino] = made.host
                        if made.finish is not None:
                            finish.append((made.host, *made.finish))
                        made.finish = None
                        made.close()
            finally:
                here.close()
        for host, mode, atime, mtime in reversed(finish):
            directory = self.open_host(host)
            if directory is not None:
                directory.finish = (mode, atime, mtime)
                directory.close()

    def extract_unallocated(self) -> None:
        """Pass 3 (tsk_recover -e): every inode `vexfs ils` lists that still holds a file,
        a symlink or a directory, into DEST/.unallocated/inode-N (a directory with what it
        still names below it)."""
        folder = None
        for lost in lost_inodes(self.recovery):
            if not lost.recoverable:
                continue
            if folder is None:
                folder = self.make_directory(_Directory(self.dest_fd, b""), UNALLOCATED_FOLDER,
                                             b"/" + UNALLOCATED_FOLDER)
                if folder is None:
                    return
                self.report.directories -= 1
                self.report.unallocated_folder = os.fsdecode(folder.host)
            path = b"<%d>" % lost.ino
            made = self.extract_inode(folder, b"inode-%d" % lost.ino, path, lost.inode)
            self.report.recovered += 1
            if made is not None:
                try:
                    self.extract_tree(lost.inode, path, made)
                finally:
                    made.close()
        if folder is not None:
            folder.close()

    def _mirror(self, ino: int, top: InodeRecord, mirrors: dict[int, bytes],
                names: dict[int, tuple[int, bytes, bytes]]) -> _Directory | None:
        """The copy, in the deleted folder, of directory `ino`: made on first use (the
        folder itself for the top), with the names of the way down to it."""
        if top.ino not in mirrors:
            root = _Directory(self.dest_fd, b"")
            folder = self.make_directory(root, DELETED_FOLDER, b"/" + DELETED_FOLDER)
            if folder is None:
                return None
            self.report.directories -= 1
            self.report.deleted_folder = os.fsdecode(folder.host)
            mirrors[top.ino] = folder.host
            folder.close()
        chain = []
        current = ino
        while current not in mirrors:
            if current not in names:
                return None
            chain.append(current)
            current = names[current][0]
        here = self.open_host(mirrors[current])
        for step in reversed(chain):
            if here is None:
                return None
            _, raw, path = names[step]
            made = self.make_directory(here, raw, path, quiet=True)
            here.close()
            if made is None:
                return None
            self.report.directories -= 1
            mirrors[step] = made.host
            here = made
        return here


def _umask() -> int:
    """The process's umask (read by setting it, then setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _climbs_out(image_path: bytes, target: bytes) -> bool:
    depth = image_path.count(b"/") - 1
    for part in target.split(b"/"):
        if part == b"..":
            depth -= 1
            if depth < 0:
                return True
        elif part and part != b".":
            depth += 1
    return False


def _ascii(name: bytes) -> bytes:
    return b"".join(bytes([b]) if 0x20 <= b < 0x7F else b"%%%02X" % b for b in name)


def extract(volume: Volume, path: str, dest: str, *, deleted: bool = False, unallocated: bool = False,
            recovery: Recovery | None = None,
            progress: Callable[[int, int], None] | None = None,
            on_problem: Callable[[str], None] | None = None) -> ExtractReport:
    """Copy PATH (a path or an inode number) of the image into DEST (made if missing):
    the root's contents go straight into DEST, anything else as DEST/its name."""
    extractor = Extractor(volume, dest, recovery=recovery, progress=progress, on_problem=on_problem)
    try:
        recovery = extractor.recovery
        inode = recovery.find(path)
        spec = path.strip()
        by_number = spec.strip("<>").isdigit()
        image_path = b"/" if inode.ino == C.ROOT_INO else \
            (b"<%d>" % inode.ino if by_number else b"/" + os.fsencode(spec).strip(b"/"))
        root = _Directory(extractor.dest_fd, b"")
        if inode.ino == C.ROOT_INO:
            top_dir = root
        elif inode.is_dir:
            raw = b"inode-%d" % inode.ino if by_number else image_path.rsplit(b"/", 1)[-1]
            top_dir = extractor.make_directory(root, raw, image_path)
            if top_dir is not None:
                top_dir.finish = (extractor._mode(inode, image_path), inode.i_atime, inode.i_mtime)
        else:
            raw = b"inode-%d" % inode.ino if by_number else image_path.rsplit(b"/", 1)[-1]
            extractor.extract_inode(root, raw, image_path, inode)
            return extractor.report
        if top_dir is None:
            return extractor.report
        try:
            live = extractor.extract_tree(inode, image_path if inode.ino != C.ROOT_INO else b"/", top_dir)
        finally:
            if top_dir is not root:
                top_dir.close()
        if deleted:
            extractor.extract_deleted(inode, image_path if inode.ino != C.ROOT_INO else b"/", live)
        if unallocated:
            extractor.extract_unallocated()
        return extractor.report
    finally:
        extractor.stop_writers()
        os.close(extractor.dest_fd)
