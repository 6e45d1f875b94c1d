"""Seeing what the kernel wrote without repairing it: orphaned directory blocks, a
recovery-aware directory reader and a tree walk that neither loops nor trusts the image.

The real kernel's mkdir writes the new directory's inode once, before its block is
allocated, and never again: on disk the directory has i_block[0] = 0 while its block is
allocated in the bitmap, owned by no inode, and starts with "." naming the directory
(reference page, "What the real kernel leaves on disk"). fsck re-attaches such blocks; the
read-only views show the directory's contents from that block, marked as recovered.

Nothing here prints or writes; every oddity is returned as a message.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..errors import CorruptionError, NotADirectoryError_, VexfsError
from ..format import constants as C
from ..format.dtypes import DIRENT_HEADER
from ..volume import directory
from ..volume.inodes import InodeRecord, parse_inode_rows
from ..volume.orphans import find_orphan_directory_blocks
from ..volume.volume import Volume
from .blockmap import Ownership, collect_ownership, with_recovered
from .deleted import deleted_entries
from .names import display

LAST_BLOCKS = 64  # directory blocks kept from one read_directory for its deleted entries
MAX_DEPTH = 256  # deeper directories are reported, not entered (and extract keeps one fd a level)


def blockless_directories(volume: Volume) -> set[int]:
    """Directory inodes (i_mode says directory) that map no directory block: mkdir'd by the
    kernel, or damaged. Deleted ones included (the kernel's rmdir leaves the inode)."""
    found: set[int] = set()
    for first_ino, records in volume.inode_table(skip_holes=True):
        dirs = np.flatnonzero((records["i_mode"] & C.S_IFMT) == C.S_IFDIR)
        if not dirs.size:
            continue
        valid = volume.data_block_mask(records["i_block"][dirs])
        if volume.large_dir:
            tops = (records["i_indirect"][dirs] | records["i_double_indirect"][dirs]
                    | records["i_triple_indirect"][dirs]) != 0
            maybe = ~valid.any(axis=1) | tops
        else:
            maybe = ~valid[:, 0]
        for index in dirs[maybe]:
            ino = int(index) + first_ino
            try:
                if not volume.dir_blocks(volume.read_inode(ino)):
                    found.add(ino)
            except VexfsError:
                found.add(ino)
    return found


class Entry(NamedTuple):
    """A live directory entry ("." and ".." included; callers skip them). A tuple: a walk
    makes one for every name of the image."""

    name: bytes
    ino: int
    file_type: int
    block: int
    offset: int


def _clean_block_entries(data: bytes, block: int, chain_end: int, out: list[Entry]) -> bool | None:
    """Append the live entries of a directory block whose rec_len chain is sound; None
    (nothing appended) at the first oddity, for directory.walk_block to read and explain.
    Else whether the block is quiet: every record live and its slack all zero bytes, so
    that deleted.deleted_in_block would find nothing in it (a deleted entry needs a
    non-zero inode number in some slack, or a cleared record). A fast path: a walk reads
    every entry of the image through it."""
    unpack, new, data = DIRENT_HEADER.unpack_from, tuple.__new__, bytes(data)
    header = C.DIRENT_HEADER_SIZE
    found = []
    quiet = True
    offset = 0
    while offset < chain_end:
        if offset + header > chain_end:
            return None
        ino, rec_len, name_len, file_type = unpack(data, offset)
        need = (header + name_len + 3) & ~3
        if rec_len & 3 or rec_len < need or offset + rec_len > chain_end:
            return None
        if ino:
            found.append(new(Entry, (data[offset + header:offset + header + name_len], ino, file_type, block,
                                     offset)))
            if rec_len > need and quiet and data.count(0, offset + need, offset + rec_len) != rec_len - need:
                quiet = False
        else:
            quiet = False
        offset += rec_len
    out += found
    return quiet


@dataclass
class DirectoryRead:
    """What one directory holds: its live entries, the blocks they came from and whether
    those were recovered (an orphaned block, the directory mapping none)."""

    inode: InodeRecord
    entries: list[Entry]
    blocks: list[int]
    recovered_block: int | None
    problems: list[str] = field(default_factory=list)

    @property
    def recovered(self) -> bool:
        return self.recovered_block is not None


class Recovery:
    """Reads directories as the kernel left them. Orphaned blocks are looked for only when
    a directory without a block is met, and then for every such directory at once."""

    def __init__(self, volume: Volume, *, enabled: bool = True, ownership: Ownership | None = None,
                 progress: Callable[[int, int], None] | None = None):
        """`ownership`: a sweep the caller made already (blockmap.collect_ownership), so
        the orphan search does not sweep the inode table again."""
        self.volume = volume
        self.enabled = enabled
        self.progress = progress
        self._orphans: dict[int, int] | None = None
        self._ownership = ownership
        # The blocks of the directory read last, as read and walked: a walk asks for its
        # deleted entries right after its live ones (read-only volumes only).
        self._last_blocks: dict[int, tuple[bytes, directory.BlockWalk]] = {}
        self._quiet: set[int] = set()  # blocks of that directory with nothing deleted in them
        self._image: memoryview | None | bool = False  # False: not mapped yet

    def image_map(self) -> memoryview | None:
        """The file system's bytes mapped read-only, made once (bulk readers index it
        without a copy); None on a writable volume (its cache may differ from the device)
        or where the device can not be mapped."""
        if self._image is False:
            volume = self.volume
            self._image = None if getattr(volume.device, "writable", True) else volume.device.map_readonly(
                0, min(volume.device.size, volume.geometry.blocks_count * C.BLOCK_SIZE))
        return self._image

    # --- orphaned blocks ---------------------------------------------------------------

    def ownership(self) -> Ownership:
        """Every block an in-use inode maps, built once."""
        if self._ownership is None:
            self._ownership = collect_ownership(self.volume)
        return self._ownership

    def orphans(self) -> dict[int, int]:
        """{directory inode: orphaned block} over the whole image (computed once)."""
        if self._orphans is None:
            self._orphans = {}
            if self.enabled:
                wanted = blockless_directories(self.volume)
                if wanted:
                    owned = self.ownership()
                    self._orphans = find_orphan_directory_blocks(self.volume, wanted, owned.is_owned,
                                                                 progress=self.progress)
        return self._orphans

    def dir_blocks(self, inode: InodeRecord) -> tuple[list[int], int | None]:
        """(blocks, recovered block or None) of a directory."""
        blocks = [block for _, block in self.volume.dir_blocks(inode)]
        if blocks or not self.enabled:
            return blocks, None
        block = self.orphans().get(inode.ino)
        return ([block], block) if block is not None else ([], None)

    # --- reading ----------------------------------------------------------------------

    def dir_block_data(self, inode: InodeRecord, *, skip_quiet: bool = False) -> Iterator[
            tuple[int, bytes, directory.BlockWalk]]:
        """(block, bytes, walk) of each block of a directory (recovered or its own).
        `skip_quiet`: without the blocks the last read_directory(keep_walks=True) found
        quiet (no deleted entry can be in them)."""
        blocks, _ = self.dir_blocks(inode)
        for block in blocks:
            if skip_quiet and block in self._quiet:
                continue
            known = self._last_blocks.get(block)
            if known is not None:
                yield block, *known
                continue
            data = self.volume.read_block(block)
            yield block, data, directory.walk_block(data, chain_end=self.volume.chain_end)

    def read_directory(self, inode: InodeRecord, *, keep_walks: bool = False) -> DirectoryRead:
        """The live entries of a directory, a sound block read the fast way
        (_clean_block_entries). `keep_walks`: the other blocks' chains are walked in full
        and kept, for dir_block_data to give the deleted entries without a second walk,
        and the quiet ones noted, for it to pass over (read-only volumes)."""
        if not inode.is_dir:
            raise NotADirectoryError_(f"inode {inode.ino} is not a directory")
        volume = self.volume
        blocks, recovered = self.dir_blocks(inode)
        result = DirectoryRead(inode, [], blocks, recovered)
        if not blocks:
            result.problems.append(f"directory inode {inode.ino} has no block (none mapped, no orphaned "
                                   "block names it)")
        seen: set[int] = set()
        repeated: dict[int, int] = {}
        keep = keep_walks and not getattr(volume.device, "writable", True)
        self._last_blocks = {}
        self._quiet = set()
        for block in blocks:
            if block in seen:
                repeated[block] = repeated.get(block, 1) + 1
                continue
            seen.add(block)
            data = volume.read_block(block)
            if not volume.dir_block_checksum_ok(block, data):
                result.problems.append(f"directory inode {inode.ino}, block {block}: checksum mismatch")
            quiet = _clean_block_entries(data, block, volume.chain_end, result.entries)
            if quiet and keep:
                self._quiet.add(block)
            elif quiet is None or keep_walks:
                walk = directory.walk_block(data, chain_end=volume.chain_end)
                if keep and len(self._last_blocks) < LAST_BLOCKS:
                    self._last_blocks[block] = (data, walk)
                if quiet is None:  # its entries are the walk's (a sound chain's are in already)
                    if walk.problem:
                        result.problems.append(f"directory inode {inode.ino}, block {block}: {walk.problem}")
                    for record in walk.records:
                        if record.inode:
                            result.entries.append(Entry(record.name, record.inode, record.file_type, block,
                                                        record.offset))
        for block, count in repeated.items():
            result.problems.append(f"directory inode {inode.ino}: block {block} appears {count} times in its map; "
                                   "read once")
        return result

    def lookup(self, inode: InodeRecord, name: bytes) -> int | None:
        for entry in self.read_directory(inode).entries:
            if entry.name == name:
                return entry.ino
        return None

    def resolve(self, path: str | bytes) -> InodeRecord:
        """The inode a path names, through recovered directories too (no symlink followed)."""
        if isinstance(path, str):
            path = os.fsencode(path)
        return self.volume.resolve(path, lookup=self.lookup)

    def find(self, spec: str) -> InodeRecord:
        """A path, or an inode number ('12' or '<12>', as debugfs writes it)."""
        text = spec.strip()
        if text.startswith("<") and text.endswith(">"):
            text = text[1:-1]
        if text.isdigit():
            return self.volume.read_inode(int(text))
        return self.resolve(spec)


@dataclass
class Listing:
    """One directory met by walk(): where, what it holds, how it was read."""

    path: bytes  # b"/" for the root, else b"/a/b"
    inode: InodeRecord
    entries: list[tuple[Entry, InodeRecord | None]]  # "." and ".." left out; None: bad inode
    recovered_block: int | None
    deleted: list = field(default_factory=list)  # deleted.DeletedEntry, when asked for
    depth: int = 0
    problems: list[str] = field(default_factory=list)
    inside_deleted: bool = False  # reached through a deleted entry
    parent_ino: int = 0  # the directory it was reached from (0 for the top)
    name: bytes = b""  # the name it was reached by (b"" for the top)
    entered: set = field(default_factory=set)  # (block, offset) of entries whose directory is walked
    vouched: int = 0  # entries whose inode the walk's `plain` hook gave

    def is_entered(self, entry) -> bool:
        return (entry.block, entry.offset) in self.entered

    @property
    def recovered(self) -> bool:
        return self.recovered_block is not None


def join(parent: bytes, name: bytes) -> bytes:
    return (parent.rstrip(b"/") + b"/" + name) if parent != b"/" else b"/" + name


def walk(recovery: Recovery, top: InodeRecord | None = None, top_path: bytes = b"/", *,
         deleted: bool = False, into_deleted: bool = False, max_depth: int = MAX_DEPTH,
         live: np.ndarray | None = None,
         plain: Callable[[list[Entry]], list[tuple | None]] | None = None) -> Iterator[Listing]:
    """Every directory below `top` (default the root), depth first, each once: a cycle or a
    hard-linked directory is reported, not entered again. With `deleted`, each Listing also
    carries the deleted entries of its blocks (deleted.deleted_entries); with
    `into_deleted`, deleted directories whose inode still holds data are walked too, and
    their listings marked inside_deleted. `live` (a bool array by inode number) lets the
    deleted view tell a renamed file from a lost one. `plain` (a caller's fast path) is
    given a directory's entries and answers, entry by entry, None or what stands for an
    inode it vouches is not a directory (a tuple of what it needs, or an InodeRecord it
    read in bulk): that takes the place of the InodeRecord walk would read."""
    volume = recovery.volume
    top = top or volume.read_inode(C.ROOT_INO)
    seen = {top.ino}
    stack: list[tuple[bytes, InodeRecord, int, bool, int, bytes]] = [(top_path, top, 0, False, 0, b"")]
    while stack:
        path, inode, depth, in_deleted, parent_ino, name = stack.pop()
        try:
            read = recovery.read_directory(inode, keep_walks=deleted)
        except VexfsError as e:
            yield Listing(path, inode, [], None, depth=depth, problems=[f"{display(path)}: {e}"],
                          inside_deleted=in_deleted, parent_ino=parent_ino, name=name)
            continue
        listing = Listing(path, inode, [], read.recovered_block, depth=depth,
                          problems=[f"{display(path)}: {p}" for p in read.problems], inside_deleted=in_deleted,
                          parent_ino=parent_ino, name=name)
        subdirs: list[tuple[bytes, InodeRecord, bool, tuple[int, int], bytes]] = []
        dots = 0
        known = plain(read.entries) if plain is not None else [None] * len(read.entries)
        add = listing.entries.append
        for entry, vouched in zip(read.entries, known):
            name = entry[0]
            if name == b"." or name == b"..":
                dots += 1
                if name == b"." and entry.ino != inode.ino:
                    listing.problems.append(f"{display(path)}: its \".\" names inode {entry.ino}, not the "
                                            f"directory ({inode.ino}); ignored")
                elif name == b".." and entry.file_type not in (C.FT_DIR, C.FT_UNKNOWN):
                    listing.problems.append(f"{display(path)}: an entry \"..\" of file type {entry.file_type} "
                                            f"names inode {entry.ino}; ignored")
                continue
            if vouched is not None:
                add((entry, vouched))
                listing.vouched += 1
                continue
            try:
                child = volume.read_inode(entry.ino)
            except CorruptionError as e:
                listing.problems.append(f"{display(join(path, entry.name))}: {e}")
                listing.entries.append((entry, None))
                continue
            listing.entries.append((entry, child))
            if child.fields.i_mode & C.S_IFMT == C.S_IFDIR:
                subdirs.append((join(path, entry.name), child, in_deleted, (entry.block, entry.offset), entry.name))
        if dots > 2:
            listing.problems.append(f"{display(path)}: {dots} entries named \".\" or \"..\"; only names are "
                                    "followed, never these")
        if deleted:
            listing.deleted = deleted_entries(recovery, inode, live=live)
            if into_deleted:
                for item in listing.deleted:
                    if item.holds_data and item.inode is not None and item.inode.is_dir:
                        subdirs.append((join(path, item.name), item.inode, True, (item.block, item.offset),
                                        item.name))
        enter = []
        for child_path, child, child_deleted, key, child_name in subdirs:
            if child.ino in seen:
                if not child_deleted:
                    listing.problems.append(f"{display(child_path)}: directory inode {child.ino} is listed "
                                            "elsewhere already (a cycle or a hard-linked directory); "
                                            "not entered again")
                continue
            if depth + 1 > max_depth:
                listing.problems.append(f"{display(child_path)}: deeper than {max_depth} levels; not entered")
                continue
            seen.add(child.ino)
            listing.entered.add(key)
            enter.append((child_path, child, depth + 1, child_deleted, inode.ino, child_name))
        yield listing
        stack.extend(reversed(enter))


def table_in_map(volume: Volume, image: memoryview | None) -> np.ndarray | None:
    """The inode table inside an image map (Recovery.image_map), as (blocks, 36, 112)
    bytes without a copy; None without a map, or when the map holds none of it."""
    if image is None:
        return None
    g = volume.geometry
    blocks = min(g.inode_table_blocks, len(image) // C.BLOCK_SIZE - g.inode_table_start)
    if blocks <= 0:
        return None
    grid = np.frombuffer(image, np.uint8, count=blocks * C.BLOCK_SIZE, offset=g.inode_table_start * C.BLOCK_SIZE)
    return grid.reshape(blocks, C.BLOCK_SIZE)[:, :C.INODES_PER_BLOCK * C.INODE_SIZE].reshape(
        blocks, C.INODES_PER_BLOCK, C.INODE_SIZE)


def table_rows(volume: Volume, table: np.ndarray, entries: list[Entry]) -> tuple[np.ndarray, np.ndarray]:
    """(positions in `entries`, their records as (n, 112) bytes) of the entries whose inode
    number is in range and inside `table` (table_in_map): the others read one at a time."""
    index = np.fromiter([entry.ino for entry in entries], np.int64, len(entries)) - 1
    limit = min(volume.geometry.inode_slots, table.shape[0] * C.INODES_PER_BLOCK)
    picked = np.flatnonzero((index >= 0) & (index < limit))
    rows = index[picked]
    return picked, table[rows // C.INODES_PER_BLOCK, rows % C.INODES_PER_BLOCK]


def bulk_inodes(recovery: Recovery) -> Callable[[list[Entry]], list[InodeRecord | None]] | None:
    """A walk(plain=...) hook for views that need every entry's inode: those that are not
    directories parsed in bulk (inodes.parse_inode_rows) from the table in the image
    map, a directory's entries at a time. None where the image is not mapped."""
    volume = recovery.volume
    table = table_in_map(volume, recovery.image_map())
    if table is None:
        return None

    def inodes(entries: list[Entry]) -> list[InodeRecord | None]:
        found: list[InodeRecord | None] = [None] * len(entries)
        if not entries:
            return found
        picked, raw = table_rows(volume, table, entries)
        modes = raw[:, :2].copy().view("<u2").reshape(-1)
        keep = (modes & C.S_IFMT) != C.S_IFDIR
        picked = picked[keep].tolist()
        records = parse_inode_rows([entries[at].ino for at in picked], raw[keep].tobytes())
        for at, record in zip(picked, records):
            found[at] = record
        return found

    return inodes


def live_inodes(recovery: Recovery, top: InodeRecord | None = None) -> np.ndarray:
    """A bool array, by inode number: named by a live entry in the tree below `top`.

    The directories walk() enters, in its order, but without an InodeRecord per entry: the
    inode table's modes, read in bulk, say which entries are directories. The table is read
    up to its mark (Volume.itable_end): an entry naming a slot past it is marked live, but
    its inode is taken as never used, so not entered."""
    volume = recovery.volume
    slots = volume.geometry.inode_slots
    end = min(volume.itable_end, slots)
    modes = np.zeros(end + 1, np.uint16)
    for first_ino, records in volume.inode_table(skip_holes=True):
        records = records[:max(0, end + 1 - first_ino)]
        modes[first_ino:first_ino + len(records)] = records["i_mode"]
    live = np.zeros(slots + 1, dtype=bool)
    top = top or volume.read_inode(C.ROOT_INO)
    live[top.ino] = True
    seen = {top.ino}
    stack: list[tuple[InodeRecord, int]] = [(top, 0)]
    while stack:
        inode, depth = stack.pop()
        try:
            read = recovery.read_directory(inode)
        except VexfsError:
            continue
        inos = np.fromiter((e.ino for e in read.entries if e.name not in (b".", b"..")), np.int64)
        inos = inos[(inos >= 1) & (inos <= slots)]  # out of range: walk() has no inode for it
        live[inos] = True
        enter = []
        below = inos[inos <= end]  # in entry order: walk() enters directories in that order
        for ino in below[(modes[below] & C.S_IFMT) == C.S_IFDIR].tolist():
            if ino in seen or depth + 1 > MAX_DEPTH:
                continue
            seen.add(ino)
            enter.append((volume.read_inode(ino), depth + 1))
        stack.extend(reversed(enter))
    return live


def ownership_with_recovery(volume: Volume, *, progress: Callable[[int, int], None] | None = None,
                            phase: Callable[[str], None] | None = None) -> Ownership:
    """Every block an inode owns, orphaned directory blocks included (icheck, dump.vexfs
    --blocks): one sweep of the inode table serves the orphan search too. `phase` is told
    what is being done, for a progress display."""
    if phase is not None:
        phase("reading inodes")
    ownership = collect_ownership(volume, progress=progress)
    if phase is not None:
        phase("looking for orphaned directory blocks")
    orphans = Recovery(volume, ownership=ownership, progress=progress).orphans()
    return with_recovered(ownership, orphans)
