"""mkfs -d: copy a directory tree into a freshly made file system, in bulk.

The tree is scanned and checked against the layout's limits first, so content that does not
fit is refused before anything is written. Then, because the file system is empty, blocks
are handed out by one cursor in inode order: each file's data is one contiguous run (its
indirect blocks right after it), and all of it goes to the device as one sequential stream.
The inode table is built as numpy columns and written whole blocks at a time.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

import numpy as np

from ..errors import LimitError, NoSpaceError, UsageError, VexfsError
from ..format import constants as C
from ..format.dtypes import INODE_DTYPE
from ..volume import checksums, directory
from ..volume.blockmap import build_indirect, indirect_count, plan_map
from ..volume.geometry import KERNEL
from ..format import features as F
from ..vectors import sources, store
from ..volume.volume import Volume, check_name

WRITE_BUFFER = 8 << 20


@dataclass
class Node:
    ino: int
    rel: str  # path inside the new file system, for messages
    host: str | None  # path on the host; None for a lost+found that mkfs makes
    mode: int
    uid: int = 0
    gid: int = 0
    times: tuple[int, int, int] = (0, 0, 0)  # atime, ctime, mtime
    rdev: int = 0
    size: int = 0
    parent: int = C.ROOT_INO
    links: int = 1
    children: list[tuple[bytes, "Node"]] = field(default_factory=list)
    target: bytes = b""  # symlink target
    dir_blocks: list[bytearray] = field(default_factory=list)
    vector: object = None  # a vectors.store.VectorSource when the file becomes a vector file

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def data_blocks(self) -> int:
        return len(self.dir_blocks) if self.is_dir else -(-self.size // C.BLOCK_SIZE)


def _node_from_stat(ino: int, rel: str, host: str, st: os.stat_result, parent: int) -> Node:
    return Node(ino, rel, host, st.st_mode, st.st_uid, st.st_gid,
                (int(st.st_atime), int(st.st_ctime), int(st.st_mtime)), st.st_rdev,
                st.st_size if stat.S_ISREG(st.st_mode) else 0, parent)


def encode_device_number(rdev: int) -> int:
    """Linux's "new" encoding of a device number, kept in i_block[0] as ext2 does."""
    major, minor = os.major(rdev), os.minor(rdev)
    return (minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)


def scan_tree(volume: Volume, source: str) -> list[Node]:
    """Every node of the tree, numbered in depth-first order of sorted names, and checked
    against the layout's limits (names, inode count, file sizes, directory blocks)."""
    try:
        st = os.stat(source)
    except OSError as e:
        raise UsageError(f"-d {source}: {e.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"-d {source}: not a directory")
    g = volume.geometry
    last_ino = g.last_allocatable_ino
    skip_ino = C.LOST_FOUND_INO if volume.layout != KERNEL else 0
    root = _node_from_stat(C.ROOT_INO, "/", source, st, C.ROOT_INO)
    nodes = [root]
    next_ino = g.first_allocatable_ino
    hardlinks: dict[tuple[int, int], Node] = {}
    want_lost_found = volume.layout != KERNEL
    vectors_on = volume.layout != KERNEL  # the kernel layout copies vector sources as they are
    stack = [root]
    while stack:
        parent = stack.pop()
        try:
            with os.scandir(parent.host) as it:
                entries = sorted(it, key=lambda e: os.fsencode(e.name))
        except OSError as e:
            raise UsageError(f"-d: can not read directory {parent.host}: {e.strerror}") from None
        subdirs = []
        siblings = {os.fsencode(e.name) for e in entries}
        for entry in entries:
            name = os.fsencode(entry.name)
            vector = None
            if vectors_on and entry.is_file(follow_symlinks=False):
                if store.is_ids_companion(name, siblings):
                    continue  # read with its vector source, not copied
                vector_name = store.mkfs_vector_name(name)
                if vector_name is not None:
                    if vector_name in siblings:
                        raise UsageError(f"-d: {entry.path} would become {os.fsdecode(vector_name)}, "
                                         "which exists beside it")
                    vector = store.source_from_file(entry.path, sources.companion_ids(entry.path))
                    name = vector_name
            rel = parent.rel.rstrip("/") + "/" + os.fsdecode(name)
            try:
                check_name(name)
                st = entry.stat(follow_symlinks=False)
            except VexfsError as e:
                raise LimitError(f"{rel}: {e}") from None
            except OSError as e:
                raise UsageError(f"-d: can not stat {entry.path}: {e.strerror}") from None
            key = (st.st_dev, st.st_ino)
            if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1 and key in hardlinks:
                hardlinks[key].links += 1
                parent.children.append((name, hardlinks[key]))
                continue
            if parent is root and want_lost_found and name == b"lost+found" and stat.S_ISDIR(st.st_mode):
                ino = C.LOST_FOUND_INO
                want_lost_found = False
            else:
                if next_ino == skip_ino:
                    next_ino += 1  # kept for lost+found, from the source or made by mkfs
                if next_ino > last_ino:
                    usable = last_ino - g.first_allocatable_ino + 1
                    raise LimitError(f"{rel}: the tree needs more inodes than this {volume.layout}-layout "
                                     f"file system has ({usable} besides the root)")
                ino = next_ino
                next_ino += 1
            node = _node_from_stat(ino, rel, entry.path, st, parent.ino)
            if vector is not None:
                node.vector = vector
                node.size = vector.size
            if stat.S_ISLNK(st.st_mode):
                node.target = os.fsencode(os.readlink(entry.path))
                node.size = len(node.target)
            if not node.is_dir and st.st_nlink > 1:
                hardlinks[key] = node
            nodes.append(node)
            parent.children.append((name, node))
            if node.is_dir:
                subdirs.append(node)
        stack.extend(reversed(subdirs))
    if want_lost_found:
        t = volume.sb.s_mkfs_time
        lost_found = Node(C.LOST_FOUND_INO, "/lost+found", None, C.S_IFDIR | 0o700, times=(t, t, t))
        root.children.append((b"lost+found", lost_found))
        nodes.append(lost_found)
    nodes.sort(key=lambda n: n.ino)
    _check_sizes(volume, nodes)
    _check_space(volume, nodes)
    return nodes


def _made_by_mkfs(volume: Volume) -> dict[int, int]:
    """Directory blocks format_device already holds: {inode: block}."""
    made = {C.ROOT_INO: volume.geometry.first_data_block}
    if volume.layout != KERNEL:
        made[C.LOST_FOUND_INO] = volume.geometry.first_data_block + 1
    return made


def _check_space(volume: Volume, nodes: list[Node]) -> None:
    g = volume.geometry
    made = _made_by_mkfs(volume)
    start = g.first_data_block + len(made)
    end = g.addressable_blocks - (1 if g.backup_sb_block == g.blocks_count - 1 else 0)
    needed = sum(n.data_blocks - (1 if n.ino in made else 0) +
                 (indirect_count(n.data_blocks) if volume.indirect else 0) for n in nodes)
    if start + needed > end:
        raise NoSpaceError(f"the tree needs {needed} blocks but only {end - start} are free "
                           f"in a file system of {g.blocks_count} blocks")


def _check_sizes(volume: Volume, nodes: list[Node]) -> None:
    max_size = volume.max_file_size()
    for node in nodes:
        if node.is_dir:
            entries = [(b".", node.ino, C.FT_DIR), (b"..", node.parent, C.FT_DIR)]
            entries += [(name, child.ino, C.MODE_TO_FILE_TYPE.get(stat.S_IFMT(child.mode), C.FT_UNKNOWN))
                        for name, child in node.children]
            node.dir_blocks = directory.pack_entries(entries, chain_end=volume.chain_end)
            if len(node.dir_blocks) > 1 and not volume.large_dir:
                raise LimitError(f"{node.rel}: {len(node.children)} entries need {len(node.dir_blocks)} "
                                 f"directory blocks; the {volume.layout} layout gives a directory one block")
            node.size = len(node.dir_blocks) * C.BLOCK_SIZE
            node.links = 2 + sum(1 for _, child in node.children if child.is_dir)
        elif node.size > max_size:
            raise LimitError(f"{node.rel}: {node.size} bytes is over the {volume.layout} layout's "
                             f"file size limit of {max_size} bytes")


def populate(volume: Volume, nodes: list[Node], *, clamp_time: int | None = None) -> int:
    """Write the scanned tree `nodes` into the empty file system on `volume`.
    Returns the number of inodes written."""
    g = volume.geometry
    made = _made_by_mkfs(volume)
    start = g.first_data_block + len(made)
    columns = _Columns(len(nodes))
    writer = _StreamWriter(volume, start)
    has_vectors = False
    seed = volume.seed

    def emit(block: int, pointers: np.ndarray) -> None:
        data = build_indirect(pointers)
        if seed is not None:
            checksums.set_tail(seed, block, data)
        writer.place(block, data)

    for node in nodes:
        runs: list[tuple[int, int]] = []
        if node.is_dir:
            blocks = node.dir_blocks
            if node.ino in made:
                volume.write_dir_block(made[node.ino], blocks[0])
                runs.append((made[node.ino], 1))
                blocks = blocks[1:]
            if blocks:
                runs.append((writer.position, len(blocks)))
                for block in blocks:
                    volume.seal_dir_block(writer.position, block)
                    writer.add(block)
        elif stat.S_ISLNK(node.mode) and node.size:
            runs.append((writer.position, node.data_blocks))
            writer.add(node.target)
        elif node.vector is not None:
            runs.append((writer.position, node.data_blocks))
            writer.add_stream(node.vector.chunks(), node.size)
            has_vectors = True
        elif stat.S_ISREG(node.mode) and node.size:
            runs.append((writer.position, node.data_blocks))
            writer.add_file(node.host, node.size)
        if len(runs) == 1 and runs[0][1] <= C.DIRECT_BLOCKS:  # most files: direct blocks only
            first, count = runs[0]
            direct = list(range(first, first + count)) + [0] * (C.DIRECT_BLOCKS - count)
            tops, indirect = (0, 0, 0), 0
        elif runs:
            direct, tops = plan_map(runs, writer.reserve, emit)
            indirect = indirect_count(node.data_blocks) if volume.indirect else 0
        else:
            direct, tops, indirect = [0] * C.DIRECT_BLOCKS, (0, 0, 0), 0
            if stat.S_ISCHR(node.mode) or stat.S_ISBLK(node.mode):
                direct[0] = encode_device_number(node.rdev)
        columns.add(node, direct, tops, node.data_blocks + indirect, clamp_time)
    writer.close()
    volume.bitmap.set_range(start, writer.position - start)
    volume.write_inode_records(columns.records())
    if has_vectors:
        volume.sb.s_feature_ro_compat |= F.BY_NAME["vector_files"].bit
    volume.sb.s_free_blocks = volume.count_free_blocks()
    volume.sb.s_free_inodes = volume.count_free_inodes()
    volume.sb_dirty = True
    volume.flush()
    return len(nodes)


class _Columns:
    """Inode fields gathered per column, turned into INODE_DTYPE records at the end."""

    NAMES = ("i_mode", "i_links_count", "i_uid", "i_gid", "i_size", "i_atime", "i_ctime",
             "i_mtime", "i_blocks", "i_generation", "i_indirect", "i_double_indirect",
             "i_triple_indirect", "i_flags")

    def __init__(self, count: int):
        self.ino: list[int] = []
        self.values: dict[str, list[int]] = {name: [] for name in self.NAMES}
        self.i_block: list[list[int]] = []

    def add(self, node: Node, direct, tops, blocks: int, clamp_time: int | None) -> None:
        times = list(node.times)
        if clamp_time is not None:
            # Reproducible images: no time after SOURCE_DATE_EPOCH, and atime (which reading
            # the tree may change) taken from mtime.
            times = [min(times[2], clamp_time), min(times[1], clamp_time), min(times[2], clamp_time)]
        times = [max(0, min(t, 2**32 - 1)) for t in times]
        row = (node.mode, node.links, node.uid, node.gid, node.size, *times, blocks,
               1 if node.ino == C.ROOT_INO else 0, *tops,
               C.INODE_FLAG_VECTOR if node.vector is not None else 0)
        self.ino.append(node.ino)
        for name, value in zip(self.NAMES, row):
            self.values[name].append(value)
        self.i_block.append(direct)

    def records(self) -> np.ndarray:
        records = np.zeros(max(self.ino), INODE_DTYPE)
        index = np.asarray(self.ino) - 1
        for name, values in self.values.items():
            records[name][index] = values
        records["i_block"][index] = np.asarray(self.i_block, dtype=np.uint32)
        return records


def _open_noatime(path: str):
    """Open a source file without touching its access time, where the kernel allows it."""
    flags = os.O_RDONLY | getattr(os, "O_NOATIME", 0)
    try:
        fd = os.open(path, flags)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY)  # O_NOATIME needs ownership or CAP_FOWNER
    return os.fdopen(fd, "rb", buffering=0)


class _StreamWriter:
    """Hands out blocks from a cursor and writes them as one buffered, sequential stream."""

    def __init__(self, volume: Volume, start: int):
        self.volume = volume
        self.position = start
        self.buffer_start = start
        self.buffer = bytearray()

    def add(self, data: bytes) -> None:
        """Append data, padded to whole blocks."""
        blocks = -(-len(data) // C.BLOCK_SIZE)
        self.buffer += data
        self.buffer += bytes(blocks * C.BLOCK_SIZE - len(data))
        self.position += blocks
        if len(self.buffer) >= WRITE_BUFFER:
            self.drain()

    def add_file(self, path: str, size: int) -> None:
        """Append `size` bytes of a host file (zeros if it shrank meanwhile, cut if it grew)."""
        remaining = size
        try:
            with _open_noatime(path) as f:
                while remaining:
                    piece = f.read(min(remaining, WRITE_BUFFER))
                    if not piece:
                        break
                    if len(piece) % C.BLOCK_SIZE and len(piece) < remaining:
                        piece += f.read(-len(piece) % C.BLOCK_SIZE)[:remaining - len(piece)]
                    self.add(piece)
                    remaining -= len(piece)
        except OSError as e:
            raise UsageError(f"-d: can not read {path}: {e.strerror}") from None
        if remaining:
            self.add(bytes(remaining))

    def add_stream(self, chunks, size: int) -> None:
        """Append generated bytes (a vector file) as one run. Small chunks gather; once
        about WRITE_BUFFER bytes would be held, they and the chunk go straight to the
        device as whole blocks: a large chunk (rows of the source's memory map) is written
        from where it lies, and only the bytes that complete a block are copied. The tail
        is padded once at the end."""
        self.drain()
        written, pieces, held = 0, [], 0
        for chunk in chunks:
            view = memoryview(chunk).cast("B")
            written += len(view)
            if held + len(view) < WRITE_BUFFER:
                pieces.append(view)
                held += len(view)
                continue
            if held:
                cut = min(len(view), -held % C.BLOCK_SIZE)
                pieces, held = self._write_whole(memoryview(b"".join([*pieces, view[:cut]])))
                view = view[cut:]
                if held:  # the chunk ended before a block boundary
                    continue
            pieces, held = self._write_whole(view)
        if written != size:
            raise UsageError(f"a vector file came out {written} bytes, not {size}")
        if held:
            self.add(b"".join(pieces))

    def _write_whole(self, data: memoryview) -> tuple[list[memoryview], int]:
        """Write the whole blocks of `data` through; (the rest, its length) stay held."""
        whole = len(data) - len(data) % C.BLOCK_SIZE
        if whole:
            self._write_through(data[:whole])
        rest = data[whole:]
        return ([rest], len(rest)) if len(rest) else ([], 0)

    def _write_through(self, data: memoryview) -> None:
        """Whole blocks at the cursor, past the (drained) buffer."""
        self.volume.write_data(self.position, data)
        store.start_writeback(self.volume, self.position * C.BLOCK_SIZE, len(data))  # the disk starts now
        self.position += len(data) // C.BLOCK_SIZE
        self.buffer_start = self.position

    def reserve(self) -> int:
        """A block for an indirect block, filled in later by place()."""
        block = self.position
        self.add(bytes(C.BLOCK_SIZE))
        return block

    def place(self, block: int, data: bytes) -> None:
        offset = (block - self.buffer_start) * C.BLOCK_SIZE
        if offset >= 0:
            self.buffer[offset:offset + C.BLOCK_SIZE] = data
        else:
            self.volume.write_data(block, data)

    def drain(self) -> None:
        if self.buffer:
            self.volume.write_data(self.buffer_start, bytes(self.buffer))
        self.buffer_start = self.position
        self.buffer = bytearray()

    def close(self) -> None:
        self.drain()
