"""The write API by inode number (what a FUSE mount and the offline commands call).

Every operation checks what it needs before it changes anything, so a refusal (EEXIST,
ENOTEMPTY, EFBIG, ENOSPC, ...) leaves the image as it was. Errors are NamespaceError with
the errno a user expects; errno_of() maps the library's other errors in one place.
The kernel layout is kept to what the 2.0 kernel reads back: one-block directories, 12
direct blocks per file, the lowest free block first.
"""

from __future__ import annotations

import errno as E
import heapq
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..errors import (CorruptionError, DeviceError, LimitError, NoSpaceError, NotADirectoryError_,
                      PathNotFoundError, UsageError, VexfsError)
from ..format import constants as C
from ..format.dtypes import DIRENT_HEADER
from . import directory
from .blockmap import LEVEL_SPAN, LEVEL_START, TOP_FIELDS, P, indirect_pointers
from .inodes import BLOCK_VALUES, INODE_FIELD_PACKERS, InodeRecord, value_index
from .volume import Volume, now

MAX_LINKS = 65535  # i_links_count is 16 bits
# Fields read off a raw record (Volume.read_inode_raw) without parsing it whole: a slot is
# free when its mode is 0; a directory's link count changes with its subdirectories.
MODE_OFFSET, MODE_AT = INODE_FIELD_PACKERS["i_mode"]
LINKS_OFFSET, LINKS_AT = INODE_FIELD_PACKERS["i_links_count"]
MTIME_OFFSET, MTIME_AT = INODE_FIELD_PACKERS["i_mtime"]
CTIME_OFFSET, CTIME_AT = INODE_FIELD_PACKERS["i_ctime"]
# Where fields are among a record's values (Volume.read_inode_values: unlink reads no Container).
V_MODE, V_LINKS, V_SIZE = value_index("i_mode"), value_index("i_links_count"), value_index("i_size")
DIRECT_BYTES = C.DIRECT_BLOCKS * C.BLOCK_SIZE  # what i_block maps: a read below it needs no indirect block
V_TOP = [value_index(name) for name in TOP_FIELDS]
PATH_MAX = 4096  # longest symlink target


class NamespaceError(VexfsError):
    """A refused operation, with the errno a POSIX file system gives for it."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.errno = code


def errno_of(exc: BaseException) -> int:
    """The errno for any library error (the one place the mount maps them)."""
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code:
        return code
    for kind, value in ((NoSpaceError, E.ENOSPC), (PathNotFoundError, E.ENOENT),
                        (NotADirectoryError_, E.ENOTDIR), (LimitError, E.ENOSPC),
                        (UsageError, E.EINVAL), (CorruptionError, E.EIO), (DeviceError, E.EIO)):
        if isinstance(exc, kind):
            return value
    return E.EIO


def fail(code: int, message: str) -> NamespaceError:
    return NamespaceError(code, f"{message}: {os.strerror(code)}")


@dataclass
class Listing:
    """A directory as kept: each name's inode and the block holding it (None: not known),
    and the block a new name is tried in first (the last one that had room)."""

    names: dict[bytes, int]
    blocks: dict[bytes, int | None]
    room: int | None = None
    tail: int | None = None  # where the last entry of the room block starts, when known
    room_index: int = 0  # the room block's place among the directory's blocks
    offsets: dict[bytes, int] = field(default_factory=dict)  # where each entry starts (they never move)


@dataclass(frozen=True)
class Entry:
    name: bytes
    ino: int
    file_type: int


class Namespace:
    """Files and directories of one open Volume, addressed by inode number."""

    def __init__(self, volume: Volume):
        self.volume = volume
        self.open_counts: dict[int, int] = {}  # inodes held open (FUSE): freed on last release
        self.unlinked: set[int] = set()  # link count 0, still open
        # Directory listings kept between calls and changed in place by each call that
        # changes a directory (a re-read per create would make a big directory quadratic);
        # and the free inode slots, lowest first (the kernel's order), found by one sweep
        # of the table instead of one per create.
        self._listings: dict[int, Listing] = {}
        self._free_inodes: list[int] | None = None
        self._goal: int | None = None  # where the next new file's data is looked for

    # --- reading -----------------------------------------------------------------------------

    def inode(self, ino: int) -> InodeRecord:
        inode = self.volume.read_inode(ino)
        if not inode.in_use:
            raise fail(E.ENOENT, f"inode {ino}")
        return inode

    def directory(self, ino: int) -> InodeRecord:
        inode = self.inode(ino)
        if not inode.is_dir:
            raise fail(E.ENOTDIR, f"inode {ino}")
        return inode

    def lookup(self, parent: int, name: bytes) -> int:
        found = self.find(parent, name)
        if found is None:
            raise fail(E.ENOENT, os.fsdecode(name))
        return found

    def find(self, parent: int, name: bytes) -> int | None:
        check_name(name)
        return self.listing(parent).get(name)

    def listing(self, ino: int) -> dict[bytes, int]:
        """{name: inode} of a directory, read once and kept up to date."""
        return self._listing(ino).names

    def _listing(self, ino: int) -> "Listing":
        found = self._listings.get(ino)
        if found is None:
            found = self._read_listing(self.directory(ino))
            if len(self._listings) > 4096:
                self._listings.clear()
            self._listings[ino] = found
        return found

    def _read_listing(self, inode: InodeRecord) -> "Listing":
        """Each live name's inode and block, from the walks Volume.iter_dir reads, with
        each block's room: where a new name goes (the last block, after its last entry)."""
        found = Listing({}, {})
        for index, (block, walk) in enumerate(self.volume.dir_walks(inode)):
            for record in walk.records:
                if record.inode:
                    found.names[record.name] = record.inode
                    found.blocks[record.name] = block
                    found.offsets[record.name] = record.offset
            found.room, found.tail = block, walk.records[-1].offset if walk.records else None
            found.room_index = index
        return found

    def _forget(self, *dirs: int) -> None:
        for ino in dirs:
            self._listings.pop(ino, None)

    def _add_entry(self, parent: int, name: bytes, ino: int, file_type: int) -> None:
        """Link a name (checked new) into a directory: after the last entry of the block that
        last had room, else first fit there, else Volume.add_entry's first fit or new block."""
        v, kept = self.volume, self._listing(parent)
        if kept.room is not None:
            data = v.dir_block_to_edit(kept.room)  # changed in place only where the name fits
            at = kept.tail if kept.tail is not None else last_entry(data, v.chain_end)
            new = None if at is None else split_last(data, at, name, ino, file_type, v.chain_end)
            if new is not None or directory.insert_entry(data, name, ino, file_type, chain_end=v.chain_end):
                v.write_dir_block(kept.room, data)
                kept.names[name], kept.blocks[name], kept.tail = ino, kept.room, new
                if new is not None:
                    kept.offsets[name] = new
                return
        index, block = v.add_entry(parent, name, ino, file_type, start=kept.room_index)
        kept.names[name], kept.blocks[name] = ino, block
        kept.room, kept.tail, kept.room_index = block, None, index  # the next name tries it first

    def _added(self, parent: int, name: bytes, ino: int) -> None:
        """A name Volume linked in (its block not known); new names go to the last block."""
        kept = self._listings.get(parent)
        if kept is not None:
            kept.names[name], kept.blocks[name] = ino, None
            blocks = self.volume.dir_blocks(self.volume.read_inode(parent))
            kept.room, kept.tail = (blocks[-1][1] if blocks else None), None
            kept.room_index = max(0, len(blocks) - 1)

    def _edit_entry(self, parent: int, name: bytes, edit) -> None:
        """Apply `edit(block bytes) -> bool` to the block holding `name` (known, else each)."""
        v = self.volume
        known = self._listing(parent).blocks.get(name)
        blocks = [b for _, b in v.dir_blocks(v.read_inode(parent))]
        for block in ([known] if known in blocks else []) + [b for b in blocks if b != known]:
            data = bytearray(v.read_block(block))
            if edit(data):
                v.write_dir_block(block, data)
                kept = self._listing(parent)
                kept.blocks[name] = block
                if block == kept.room:
                    kept.tail = None  # a removal may have merged the last entry
                return
        raise fail(E.ENOENT, os.fsdecode(name))

    def entries(self, ino: int) -> list[Entry]:
        return [Entry(r.name, r.inode, r.file_type) for r in self.volume.iter_dir(self.directory(ino))]

    def resolve(self, path: str | bytes) -> int:
        """The inode a path names (no symlink followed), with POSIX errnos."""
        try:
            return self.volume.resolve(path).ino
        except VexfsError as exc:
            raise fail(errno_of(exc), os.fsdecode(path)) from None

    def read(self, ino: int, offset: int, size: int) -> bytes:
        inode = self.inode(ino)
        if inode.is_dir:
            raise fail(E.EISDIR, f"inode {ino}")
        return self.read_inode_data(inode, offset, size)

    def read_inode_data(self, inode: InodeRecord, offset: int, size: int) -> bytes:
        """Bytes of [offset, offset+size) cut at i_size, holes as zeros: only the blocks of
        the range are looked up (cost by the range, never by the file's size); a range in
        one run is one read."""
        end = min(inode.i_size, offset + size, self.volume.max_file_size())
        if offset >= end:
            return b""
        pieces = self._pieces(inode.fields, offset, end)
        if len(pieces) == 1 and pieces[0][1] is not None:
            return self.volume.device.read(pieces[0][1], end - offset)
        out = bytearray(end - offset)
        self._fill(memoryview(out), offset, pieces)
        return bytes(out)

    def read_inode_into(self, inode: InodeRecord, offset: int, buffer) -> int:
        """read_inode_data into a writable buffer (the mount's reply buffer: no bytes
        object in between); holes are zeroed there. Returns the bytes filled."""
        view = memoryview(buffer).cast("B")
        end = min(inode.i_size, offset + len(view), self.volume.max_file_size())
        if offset >= end:
            return 0
        self._fill(view, offset, self._pieces(inode.fields, offset, end))
        return end - offset

    def read_values_into(self, ino: int, values: tuple, offset: int, buffer) -> int:
        """read_inode_into from the record's values (INODE_STRUCT's, as the mount holds
        them: no Container per read); a range within the direct blocks is mapped from them
        alone, in one device read where its blocks are consecutive."""
        view = memoryview(buffer).cast("B")
        end = min(values[V_SIZE], offset + len(view), self.volume.max_file_size())
        if offset >= end:
            return 0
        if end > DIRECT_BYTES:
            return self.read_inode_into(self.volume.read_inode(ino), offset, buffer)
        pointers = values[BLOCK_VALUES]
        blocks = list(pointers[offset // C.BLOCK_SIZE:(end - 1) // C.BLOCK_SIZE + 1])
        self._fill(view, offset, self._pieces(None, offset, end, blocks))
        return end - offset

    def _fill(self, view: memoryview, offset: int, pieces: list[tuple[int, int | None, int]]) -> None:
        """Put _pieces' bytes into `view` (which starts at file offset `offset`): data from
        the device, zeros for holes."""
        device = self.volume.device
        for position, where, length in pieces:
            part = view[position - offset:position - offset + length]
            if where is None:
                part[:] = bytes(length)
            else:
                device.read_into(where, part)

    def _pieces(self, fields, offset: int, end: int,
                blocks: list[int] | None = None) -> list[tuple[int, int | None, int]]:
        """(file offset, device offset or None for a hole, length) over [offset, end),
        consecutive blocks joined; `blocks`: the range's map when the caller has it."""
        first = offset // C.BLOCK_SIZE
        if blocks is None:
            blocks = self.map_range(fields, first, (end - 1) // C.BLOCK_SIZE + 1)
        bounds = [0]
        for i in range(1, len(blocks)):
            a, b = blocks[i - 1], blocks[i]
            if (a or b) and not (a and b == a + 1):
                bounds.append(i)
        bounds.append(len(blocks))
        out = []
        for a, b in zip(bounds, bounds[1:]):
            start = (first + a) * C.BLOCK_SIZE
            lo, hi = max(offset, start), min(end, (first + b) * C.BLOCK_SIZE)
            block = blocks[a]
            out.append((lo, block * C.BLOCK_SIZE + lo - start if block else None, hi - lo))
        return out

    def readlink(self, ino: int) -> bytes:
        inode = self.inode(ino)
        if not inode.is_symlink:
            raise fail(E.EINVAL, f"inode {ino} is not a symlink")
        return self.read(ino, 0, inode.i_size)

    def statfs(self) -> dict[str, int]:
        v = self.volume
        return {"f_bsize": C.BLOCK_SIZE, "f_frsize": C.BLOCK_SIZE,
                "f_blocks": v.geometry.addressable_blocks - v.geometry.first_data_block,
                "f_bfree": v.sb.s_free_blocks, "f_bavail": v.sb.s_free_blocks,
                "f_files": v.geometry.inodes_count, "f_ffree": v.sb.s_free_inodes,
                "f_favail": v.sb.s_free_inodes, "f_namemax": C.MAX_NAME_LEN}

    # --- creating ------------------------------------------------------------------------------

    def _check_new(self, parent: int, name: bytes) -> InodeRecord:
        check_name(name)
        dir_inode = self.directory(parent)
        if self.find(parent, name) is not None:
            raise fail(E.EEXIST, os.fsdecode(name))
        if not self._has_room(dir_inode, name):
            raise fail(E.ENOSPC, f"directory inode {parent} is full (one block in the "
                                 f"{self.volume.layout} layout)")
        return dir_inode

    def _has_room(self, dir_inode: InodeRecord, name: bytes) -> bool:
        v = self.volume
        if v.large_dir and v.sb.s_free_blocks >= 4:  # a new block can always be added
            return True
        for _, block in v.dir_blocks(dir_inode):
            if directory.insert_entry(bytearray(v.read_block(block)), name, 1, 0, chain_end=v.chain_end):
                return True
        return False

    def _need_inode(self) -> None:
        if self.volume.sb.s_free_inodes <= 0:
            raise fail(E.ENOSPC, "no free inode left")

    def _touch_dir(self, ino: int, links: int = 0, t: int | None = None) -> None:
        """A directory whose entries changed: mtime and ctime now (`t`), links changed by
        `links`. A record that already says so is left alone (rm -r empties a directory
        within a few seconds: one record rewrite a second, not one per name)."""
        t = now() if t is None else t
        raw = self.volume.read_inode_raw(ino)
        if not links and MTIME_AT.unpack_from(raw, MTIME_OFFSET)[0] == t == CTIME_AT.unpack_from(raw, CTIME_OFFSET)[0]:
            return
        values = {"i_mtime": t, "i_ctime": t}
        if links:
            values["i_links_count"] = LINKS_AT.unpack_from(raw, LINKS_OFFSET)[0] + links
        self.volume.patch_inode(ino, values)

    def create(self, parent: int, name: bytes, mode: int = 0o644, *, uid: int = 0, gid: int = 0) -> int:
        """A new empty regular file (or fifo/socket/device node, by its mode's type bits)."""
        self._check_new(parent, name)
        self._need_inode()
        kind = mode & C.S_IFMT or C.S_IFREG
        return self._new_file(parent, name, b"", kind | (mode & 0o7777), uid, gid)

    def _new_file(self, parent: int, name: bytes, data: bytes, mode: int, uid: int, gid: int) -> int:
        """Volume.create_file's steps, with the inode from the kept free list."""
        v = self.volume
        ino = self._take_inode()
        fields = v.new_inode_fields(mode, uid=uid, gid=gid)
        try:
            v.write_contents(fields, data)
            self._add_entry(parent, name, ino, file_type_of(mode))
        except BaseException:
            v.free_blocks_of(fields)
            self._give_inode(ino)
            raise
        v.write_inode(ino, fields)
        self._touch_dir(parent)
        return ino

    def _take_inode(self) -> int:
        if self._free_inodes is None:
            g = self.volume.geometry
            free: list[int] = []
            for first_ino, records in self.volume.inode_table(upto_mark=True):  # past it: take_unused_inode
                slots = np.flatnonzero(records["i_mode"] == 0) + first_ino
                free += slots[(slots >= g.first_allocatable_ino) & (slots <= g.last_allocatable_ino)].tolist()
            self._free_inodes = free
            heapq.heapify(free)
        while self._free_inodes:
            ino = heapq.heappop(self._free_inodes)
            if not MODE_AT.unpack_from(self.volume.read_inode_raw(ino), MODE_OFFSET)[0]:
                return ino
        ino = self.volume.take_unused_inode()
        if ino is not None:
            return ino
        raise fail(E.ENOSPC, "no free inode left")

    def _give_inode(self, ino: int) -> None:
        if self._free_inodes is not None:
            heapq.heappush(self._free_inodes, ino)

    def mkdir(self, parent: int, name: bytes, mode: int = 0o755, *, uid: int = 0, gid: int = 0) -> int:
        dir_inode = self._check_new(parent, name)
        self._need_inode()
        if dir_inode.i_links_count >= MAX_LINKS:
            raise fail(E.EMLINK, f"directory inode {parent} has {MAX_LINKS} links")
        spare = self.volume.sb.s_free_blocks
        if spare < 2 and spare < 1 + (0 if self._fits_in_place(dir_inode, name) else 1):
            raise fail(E.ENOSPC, "no free block left")
        ino = self._take_inode()
        try:
            self.volume.mkdir(parent, name, mode=C.S_IFDIR | (mode & 0o7777), ino=ino, uid=uid, gid=gid)
        except BaseException:
            self._give_inode(ino)
            raise
        self._added(parent, name, ino)
        self._touch_dir(parent)
        return ino

    def _fits_in_place(self, dir_inode: InodeRecord, name: bytes) -> bool:
        v = self.volume
        return any(directory.insert_entry(bytearray(v.read_block(b)), name, 1, 0, chain_end=v.chain_end)
                   for _, b in v.dir_blocks(dir_inode))

    def symlink(self, parent: int, name: bytes, target: bytes, *, uid: int = 0, gid: int = 0) -> int:
        if not target or len(target) >= PATH_MAX:
            raise fail(E.ENAMETOOLONG if target else E.ENOENT, "symlink target")
        self._check_new(parent, name)
        self._need_inode()
        if self.volume.sb.s_free_blocks < blocks_for(len(target)) + 1:
            raise fail(E.ENOSPC, "no free block left")
        return self._new_file(parent, name, target, C.S_IFLNK | 0o777, uid, gid)

    def link(self, ino: int, parent: int, name: bytes) -> None:
        inode = self.inode(ino)
        if inode.is_dir:
            raise fail(E.EPERM, "a hard link to a directory")
        if inode.i_links_count >= MAX_LINKS:
            raise fail(E.EMLINK, f"inode {ino} has {MAX_LINKS} links")
        self._check_new(parent, name)
        self._add_entry(parent, name, ino, file_type_of(inode.mode))
        inode = self.volume.read_inode(ino)
        inode.fields.i_links_count += 1
        inode.fields.i_ctime = now()
        self.volume.write_inode(ino, inode.fields)
        self._touch_dir(parent)

    # --- writing file contents -----------------------------------------------------------------

    def write(self, ino: int, offset: int, data: bytes | bytearray | memoryview) -> int:
        """Write `data` at `offset`, allocating only the blocks it touches (the rest stay
        holes). EFBIG past what the layout can map; ENOSPC before anything is taken."""
        data = memoryview(data).cast("B")
        inode = self.inode(ino)
        if inode.is_dir:
            raise fail(E.EISDIR, f"inode {ino}")
        if offset < 0:
            raise fail(E.EINVAL, "negative offset")
        end = offset + len(data)
        if end > self.volume.max_file_size():
            raise fail(E.EFBIG, f"a file in the {self.volume.layout} layout holds at most "
                                f"{self.volume.max_file_size()} bytes")
        if not data:
            return 0
        fields = inode.fields  # item access below: a Container's attributes cost ~10x (a write per small file)
        first, last = offset // C.BLOCK_SIZE, (end - 1) // C.BLOCK_SIZE
        blocks = self.map_range(fields, first, last + 1)
        missing = [first + i for i, block in enumerate(blocks) if not block]
        fresh: set[int] = set()
        if missing:
            if self.volume.sb["s_free_blocks"] < len(missing) + indirect_bound(len(missing)):
                raise fail(E.ENOSPC, "no free block left")
            pairs = self._allocate(fields, missing, first)
            for logical, physical in pairs:
                blocks[logical - first] = physical
            fresh = {physical for _, physical in pairs}
        fields["i_size"] = max(fields["i_size"], end)
        fields["i_mtime"] = fields["i_ctime"] = now()
        self.volume.write_inode(ino, fields)
        for position, where, length in self._pieces(fields, offset, end, blocks):
            self._write_run(where, data[position - offset:position - offset + length], fresh)
        return len(data)

    def _write_run(self, where: int, piece: memoryview, fresh: set[int]) -> None:
        """Write a piece into consecutive mapped blocks from device offset `where`, in one
        write: a block it covers in part keeps its other bytes (read from it), or, newly
        taken, gets zeros there."""
        block, head = divmod(where, C.BLOCK_SIZE)
        last, tail = divmod(where + len(piece), C.BLOCK_SIZE)
        before = after = b""
        if head:
            before = bytes(head) if block in fresh else self.volume.read_block(block)[:head]
        if tail and last in fresh:
            after = bytes(C.BLOCK_SIZE - tail)
        if before or after:
            piece = memoryview(b"".join((before, piece, after)))
        self.volume.write_data(block, piece)

    def _allocate(self, fields, missing: list[int], first: int) -> list[tuple[int, int]]:
        """Map the missing logical blocks, their (logical, physical) pairs returned. Kernel
        layout: one at a time, the lowest free block first (the kernel's order). Extended:
        each run of consecutive logical blocks in one contiguous run, right after the
        file's previous block (or the indirect blocks that follow it) when that is free,
        else first fit, else block by block
        near it; a single block, the first free one after the file's previous block (a
        new file's: after the last block this Namespace took). The blocks are not zeroed: the write covers them (or zeroes their rest)."""
        v = self.volume
        pairs: list[tuple[int, int]] = []
        if not v.indirect:
            for logical in missing:
                pairs.append((logical, v.allocate_block(zero=False)))
        else:
            before = self.mapped(fields, first - 1) if first else 0
            goal = self._past_used(before + 1) if before else self._goal
            for start, count in logical_runs(missing):
                block = None
                if count > 1:
                    try:
                        block = v.allocate_run(count, goal)
                    except NoSpaceError:
                        pass
                for n in range(count):
                    physical = v.allocate_block(goal, zero=False) if block is None else block + n
                    pairs.append((start + n, physical))
                    goal = physical + 1
            self._goal = goal
        v.set_blocks(fields, pairs)
        fields["i_blocks"] += len(pairs)
        return pairs

    def _past_used(self, goal: int, reach: int = 4) -> int:
        """The first free block among the `reach` from `goal`, else `goal`: a file written
        in order has its indirect blocks right after its previous data run, and its next
        run belongs right after them (not wherever a first fit from the start finds room,
        a scan of the whole bitmap per write)."""
        v = self.volume
        for block in range(goal, min(goal + reach, v.geometry.addressable_blocks)):
            if not v.bitmap.test(block):
                return block
        return goal

    def map_range(self, fields, start: int, stop: int) -> list[int]:
        """The physical block of each logical block start..stop-1 (0: a hole), by one walk
        down the map per block of pointers, not per block."""
        out: list[int] = []
        logical = start
        while logical < stop:
            if logical < C.DIRECT_BLOCKS:
                n = min(stop, C.DIRECT_BLOCKS) - logical
                out += fields["i_block"][logical:logical + n]
            elif not self.volume.indirect:
                n = stop - logical
                out += [0] * n
            else:
                pointers, index = self._leaf(fields, logical)
                n = min(stop - logical, P - index)
                out += [0] * n if pointers is None else pointers[index:index + n].tolist()
            logical += n
        return out

    def _leaf(self, fields, logical: int) -> tuple[np.ndarray | None, int]:
        """The last-level pointers that map `logical` (None: not allocated) and its index there."""
        level = next(lv for lv in range(3) if logical < LEVEL_START[lv] + LEVEL_SPAN[lv])
        table = getattr(fields, TOP_FIELDS[level])
        offset = logical - LEVEL_START[level]
        for depth in range(level, 0, -1):
            if not table:
                return None, offset % P
            index, offset = divmod(offset, P ** depth)
            table = int(indirect_pointers(self.volume.read_block(table))[index])
        return (indirect_pointers(self.volume.read_block(table)) if table else None), offset

    def mapped(self, fields, logical: int) -> int:
        """The physical block at `logical` (0: a hole)."""
        return self.map_range(fields, logical, logical + 1)[0]

    def truncate(self, ino: int, size: int) -> None:
        """Grow (a hole) or shrink: blocks past the new end are freed, the tail of the last
        block is zeroed so that a later growth reads zeros."""
        inode = self.inode(ino)
        if inode.is_dir:
            raise fail(E.EISDIR, f"inode {ino}")
        if size < 0:
            raise fail(E.EINVAL, "negative size")
        if size > self.volume.max_file_size():
            raise fail(E.EFBIG, f"a file in the {self.volume.layout} layout holds at most "
                                f"{self.volume.max_file_size()} bytes")
        fields = inode.fields
        if size < fields.i_size:
            self._cut(inode, size)
        fields.i_size = size
        fields.i_mtime = fields.i_ctime = now()
        self.volume.write_inode(ino, fields)

    def _cut(self, inode: InodeRecord, size: int) -> None:
        v, fields = self.volume, inode.fields
        keep = -(-size // C.BLOCK_SIZE)
        tail = size % C.BLOCK_SIZE
        if tail:
            block = self.mapped(fields, size // C.BLOCK_SIZE)
            if block:
                v.write_data(block, v.read_block(block)[:tail] + bytes(C.BLOCK_SIZE - tail))
        block_map = v.block_map(inode)
        kept = [(lb, pb) for lb, pb in block_map.mapping() if lb < keep]
        dropped = [pb for lb, pb in block_map.mapping() if lb >= keep]
        for lb in range(keep, C.DIRECT_BLOCKS):
            fields.i_block[lb] = 0
        for pb in dropped:
            v.free_block(pb)
        if not v.indirect:
            fields.i_blocks = len(kept)
            return
        indirect = block_map.indirect_blocks()
        if not dropped and not indirect:
            fields.i_blocks = len(kept)
            return
        # Rebuild the indirect part from what is kept: freed tables never linger.
        for block in indirect:
            v.free_block(block)
        fields.i_indirect = fields.i_double_indirect = fields.i_triple_indirect = 0
        fields.i_blocks = len(kept)
        for lb, pb in kept:
            if lb >= C.DIRECT_BLOCKS:
                v.set_block(fields, lb, pb)

    # --- removing ------------------------------------------------------------------------------

    def _remove_entry(self, parent: int, name: bytes, kept: Listing | None = None) -> None:
        """Take `name` out of directory `parent` (`kept`: its listing, when the caller has it)."""
        v, kept = self.volume, kept or self._listing(parent)
        block, at = kept.blocks.get(name), kept.offsets.get(name)
        data = v.dir_block_to_edit(block) if block is not None and at is not None else None
        if data is not None and remove_at(data, at, name):
            v.write_dir_block(block, data)
        else:
            self._edit_entry(parent, name, lambda data: directory.remove_entry(
                data, name, chain_end=v.chain_end) is not None)
        if block == kept.room:
            kept.tail = None  # the last entry may have been merged
        kept.names.pop(name, None)
        kept.blocks.pop(name, None)
        kept.offsets.pop(name, None)

    def unlink(self, parent: int, name: bytes) -> None:
        check_name(name)
        kept = self._listing(parent)
        ino = kept.names.get(name)
        if ino is None:
            raise fail(E.ENOENT, os.fsdecode(name))
        values = self.volume.read_inode_values(ino)  # no Container: one unlink a file of an rm -r
        mode = values[V_MODE]
        if not mode:
            raise fail(E.ENOENT, f"inode {ino}")
        if mode & C.S_IFMT == C.S_IFDIR:
            raise fail(E.EISDIR, os.fsdecode(name))
        self._remove_entry(parent, name, kept)
        t = now()
        self._touch_dir(parent, t=t)
        self._drop_link(ino, values, t)  # as read: removing its name changed only the parent

    def _drop_link(self, ino: int, values: tuple | None = None, t: int | None = None) -> None:
        """One name fewer (`values`: the record as stored, when the caller has read it; `t`:
        the ctime, now by default)."""
        values = values or self.volume.read_inode_values(ino)
        links = max(0, values[V_LINKS] - 1)
        t = now() if t is None else t
        if links == 0 and not self.open_counts.get(ino):
            self._release_inode(ino, values, t)
            return
        if links == 0:
            self.unlinked.add(ino)
        self.volume.patch_inode(ino, {"i_links_count": links, "i_ctime": t})

    def _release_inode(self, ino: int, values: tuple | None = None, ctime: int | None = None) -> None:
        """Free an inode's blocks and its slot: mode 0, links 0, and `ctime` when given
        (`values`: the record as stored, when the caller has read it); the other fields
        stay."""
        v = self.volume
        values = values or self.volume.read_inode_values(ino)
        if v.indirect and any(values[at] for at in V_TOP):
            v.free_blocks_of(v.read_inode(ino).fields)
        else:
            v.free_direct_blocks(values[BLOCK_VALUES])
        patch = {"i_mode": 0, "i_links_count": 0}
        if ctime is not None:
            patch["i_ctime"] = ctime
        v.patch_inode(ino, patch)
        self.unlinked.discard(ino)
        self._forget(ino)
        self._give_inode(ino)

    def opened(self, ino: int) -> None:
        self.open_counts[ino] = self.open_counts.get(ino, 0) + 1

    def released(self, ino: int) -> None:
        """The last close of an unlinked file frees it, as POSIX keeps it until then."""
        count = self.open_counts.get(ino, 0) - 1
        if count > 0:
            self.open_counts[ino] = count
            return
        self.open_counts.pop(ino, None)
        if ino in self.unlinked:
            self._release_inode(ino)

    def release_all(self) -> None:
        for ino in list(self.unlinked):
            self._release_inode(ino)
        self.open_counts.clear()

    def _is_empty(self, ino: int) -> bool:
        return all(e.name in (b".", b"..") for e in self.entries(ino))

    def rmdir(self, parent: int, name: bytes) -> None:
        if name == b".":
            raise fail(E.EINVAL, "rmdir .")
        if name == b"..":
            raise fail(E.ENOTEMPTY, "rmdir ..")
        ino = self.lookup(parent, name)
        inode = self.inode(ino)
        if not inode.is_dir:
            raise fail(E.ENOTDIR, os.fsdecode(name))
        if not self._is_empty(ino):
            raise fail(E.ENOTEMPTY, os.fsdecode(name))
        self._remove_entry(parent, name)
        self._touch_dir(parent, -1)
        self._release_inode(ino)

    # --- rename ----------------------------------------------------------------------------------

    def parent_of(self, ino: int) -> int:
        found = self.listing(ino).get(b"..")
        return found if found else C.ROOT_INO

    def is_under(self, ino: int, ancestor: int) -> bool:
        """Is directory `ino` the directory `ancestor` or inside it (walking '..')?"""
        seen: set[int] = set()
        while ino not in seen:
            if ino == ancestor:
                return True
            if ino == C.ROOT_INO:
                return False
            seen.add(ino)
            ino = self.parent_of(ino)
        return False

    def rename(self, old_parent: int, old_name: bytes, new_parent: int, new_name: bytes) -> None:
        """POSIX rename: over an existing target of the same kind (a directory only when
        empty), across directories; a directory never into itself."""
        if old_name in (b".", b"..") or new_name in (b".", b".."):
            raise fail(E.EINVAL if old_name == b"." or new_name == b"." else E.EBUSY, "rename . or ..")
        ino = self.lookup(old_parent, old_name)
        check_name(new_name)
        self.directory(new_parent)
        inode = self.inode(ino)
        target = self.find(new_parent, new_name)
        if target == ino:
            return
        if inode.is_dir and self.is_under(new_parent, ino):
            raise fail(E.EINVAL, f"moving {os.fsdecode(old_name)} into itself")
        if target is not None:
            target_inode = self.inode(target)
            if target_inode.is_dir and not inode.is_dir:
                raise fail(E.EISDIR, os.fsdecode(new_name))
            if inode.is_dir and not target_inode.is_dir:
                raise fail(E.ENOTDIR, os.fsdecode(new_name))
            if target_inode.is_dir and not self._is_empty(target):
                raise fail(E.ENOTEMPTY, os.fsdecode(new_name))
            self._retarget(new_parent, new_name, ino, file_type_of(inode.mode))
        else:
            self._check_new(new_parent, new_name)
            if inode.is_dir and self.volume.read_inode(new_parent).i_links_count >= MAX_LINKS:
                raise fail(E.EMLINK, f"directory inode {new_parent}")
            self._add_entry(new_parent, new_name, ino, file_type_of(inode.mode))
        # The new name is on disk before the old one goes (ext4's order): a crash in between
        # leaves two names that fsck counts, never a file without a name that it reclaims.
        self.volume.flush_metadata()
        self._remove_entry(old_parent, old_name)
        moved = inode.is_dir and old_parent != new_parent
        if moved:
            self._set_dotdot(ino, new_parent)
        self._touch_dir(old_parent, -1 if moved else 0)
        replaced_dir = target is not None and self.volume.read_inode(target).is_dir
        self._touch_dir(new_parent, (1 if moved else 0) - (1 if replaced_dir else 0))
        inode = self.volume.read_inode(ino)
        inode.fields.i_ctime = now()
        self.volume.write_inode(ino, inode.fields)
        if target is not None:
            if replaced_dir:
                self._release_inode(target)
            else:
                self._drop_link(target)

    def _retarget(self, parent: int, name: bytes, ino: int, file_type: int) -> None:
        v = self.volume
        self._edit_entry(parent, name, lambda data: directory.retarget_entry(
            data, name, ino, file_type, chain_end=v.chain_end))
        self._listing(parent).names[name] = ino

    def _set_dotdot(self, ino: int, parent: int) -> None:
        self._retarget(ino, b"..", parent, C.FT_DIR)

    # --- attributes ------------------------------------------------------------------------------

    def chmod(self, ino: int, mode: int) -> None:
        inode = self.inode(ino)
        inode.fields.i_mode = (inode.mode & C.S_IFMT) | (mode & 0o7777)
        inode.fields.i_ctime = now()
        self.volume.write_inode(ino, inode.fields)

    def chown(self, ino: int, uid: int = -1, gid: int = -1) -> None:
        inode = self.inode(ino)
        if uid != -1:
            inode.fields.i_uid = uid & 0xFFFFFFFF
        if gid != -1:
            inode.fields.i_gid = gid & 0xFFFFFFFF
        inode.fields.i_ctime = now()
        self.volume.write_inode(ino, inode.fields)

    def utimens(self, ino: int, atime: int | None = None, mtime: int | None = None) -> None:
        """Set atime/mtime (seconds; None: now); ctime becomes now."""
        inode = self.inode(ino)
        t = now()
        inode.fields.i_atime = int(t if atime is None else atime) & 0xFFFFFFFF
        inode.fields.i_mtime = int(t if mtime is None else mtime) & 0xFFFFFFFF
        inode.fields.i_ctime = t
        self.volume.write_inode(ino, inode.fields)

    def fsync(self) -> None:
        self.volume.flush()

    # --- paths (the offline commands) ------------------------------------------------------------

    def split(self, path: str | bytes) -> tuple[int, bytes]:
        """(parent inode, last name) of a path."""
        raw = os.fsencode(path).rstrip(b"/")
        head, _, name = raw.rpartition(b"/")
        if not name:
            raise fail(E.EINVAL, f"{os.fsdecode(path)!r} names no entry")
        return self.resolve(head or b"/"), name

    def walk(self, ino: int) -> Iterator[tuple[int, Entry]]:
        """(directory, entry) of everything below `ino`, children before their directory."""
        for entry in self.entries(ino):
            if entry.name in (b".", b".."):
                continue
            if entry.file_type == C.FT_DIR:
                yield from self.walk(entry.ino)
            yield ino, entry

    def remove_tree(self, parent: int, name: bytes) -> None:
        """rm -r: the directory's contents, then the directory."""
        ino = self.lookup(parent, name)
        if not self.inode(ino).is_dir:
            self.unlink(parent, name)
            return
        for directory_ino, entry in list(self.walk(ino)):
            if entry.file_type == C.FT_DIR:
                self.rmdir(directory_ino, entry.name)
            else:
                self.unlink(directory_ino, entry.name)
        self.rmdir(parent, name)


def check_name(name: bytes) -> None:
    if not name:
        raise fail(E.ENOENT, "empty name")
    if len(name) > C.MAX_NAME_LEN:
        raise fail(E.ENAMETOOLONG, f"a name of {len(name)} bytes")
    if b"/" in name or b"\0" in name:
        raise fail(E.EINVAL, f"{name!r} is not a file name")


def last_entry(data: bytes, chain_end: int) -> int | None:
    records = directory.walk_block(data, chain_end=chain_end).records
    return records[-1].offset if records else None


def split_last(data: bytearray, at: int, name: bytes, ino: int, file_type: int, chain_end: int) -> int | None:
    """Put a new entry in the slack of a block's last entry (at `at`, ending the chain), as
    directory.insert_entry splits one, without walking the block: where it went, or None
    when there is no room (or `at` is no longer the last entry)."""
    inode, rec_len, name_len, kind = DIRENT_HEADER.unpack_from(data, at)
    if rec_len == 0 or at + rec_len != chain_end:
        return None
    used = directory.min_rec_len(name_len) if inode else 0
    if rec_len - used < directory.min_rec_len(len(name)):
        return None
    if used:
        DIRENT_HEADER.pack_into(data, at, inode, used, name_len, kind)
    new = at + used
    DIRENT_HEADER.pack_into(data, new, ino, rec_len - used, len(name), file_type)
    data[new + C.DIRENT_HEADER_SIZE:new + C.DIRENT_HEADER_SIZE + len(name)] = name
    return new


def remove_at(data: bytearray, at: int, name: bytes) -> bool:
    """directory.remove_entry for an entry known to start at `at`: the chain is followed
    only up to it. False (nothing changed) when no live entry `name` starts there."""
    previous, offset = None, 0
    while offset < at:
        rec_len = DIRENT_HEADER.unpack_from(data, offset)[1]
        if rec_len == 0:
            return False
        previous, offset = offset, offset + rec_len
    inode, rec_len, name_len, kind = DIRENT_HEADER.unpack_from(data, at)
    start = at + C.DIRENT_HEADER_SIZE
    if offset != at or not inode or bytes(data[start:start + name_len]) != name:
        return False
    if previous is None:
        DIRENT_HEADER.pack_into(data, at, 0, rec_len, name_len, kind)
    else:
        p_inode, p_len, p_name_len, p_kind = DIRENT_HEADER.unpack_from(data, previous)
        DIRENT_HEADER.pack_into(data, previous, p_inode, p_len + rec_len, p_name_len, p_kind)
    return True


def file_type_of(mode: int) -> int:
    return C.MODE_TO_FILE_TYPE.get(mode & C.S_IFMT, C.FT_UNKNOWN)


def logical_runs(blocks: list[int]) -> Iterator[tuple[int, int]]:
    """(first, count) of each run of consecutive numbers in a sorted list."""
    start = previous = None
    for block in blocks:
        if start is not None and block == previous + 1:
            previous = block
            continue
        if start is not None:
            yield start, previous - start + 1
        start = previous = block
    if start is not None:
        yield start, previous - start + 1


def blocks_for(size: int) -> int:
    return -(-size // C.BLOCK_SIZE)


def indirect_bound(count: int) -> int:
    """At most how many indirect blocks `count` new data blocks can need."""
    return 3 + 2 * (count // P + 1)

