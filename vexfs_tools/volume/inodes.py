"""Inode records: one at a time through construct, or a table's worth at a time in numpy."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from construct import Container, ListContainer

from ..format import constants as C
from ..format.dtypes import INODE_DTYPE, INODE_STRUCT, field_packers
from ..format.inode import Inode

# One inode at a time (walks read one per directory entry): unpacked with a struct derived
# from the construct declaration, ~15x faster than construct's own parse;
# tests/volume/test_inodes.py proves both parse alike.
_NAMES = [sub.name for sub in Inode.subcons]
_BLOCK_AT = _NAMES.index("i_block")
TABLE_CHUNK_BLOCKS = 256  # inode table blocks per bulk read: 1 MiB, 9,216 inodes


@dataclass
class InodeRecord:
    """An inode as parsed: `fields` is the construct Container, `raw` the 112 bytes read."""

    ino: int
    fields: Container
    raw: bytes = field(repr=False)

    def __getattr__(self, name):
        # Field access reads through to the record: inode.i_size, inode.i_block, ...
        try:
            return self.__dict__["fields"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def mode(self) -> int:
        return self.fields["i_mode"]  # item access: a Container's attributes cost ~10x

    @property
    def file_format(self) -> int:
        return self.fields["i_mode"] & C.S_IFMT

    @property
    def is_dir(self) -> bool:
        return self.file_format == C.S_IFDIR

    @property
    def is_reg(self) -> bool:
        return self.file_format == C.S_IFREG

    @property
    def is_symlink(self) -> bool:
        return self.file_format == C.S_IFLNK

    @property
    def in_use(self) -> bool:
        return self.fields["i_mode"] != 0


_BLOCK_END = _BLOCK_AT + C.DIRECT_BLOCKS
# The fields before and after i_block, fetched in one C call (build_inode runs once per
# inode written: a mount writes two or three per file it creates or removes).
_HEAD_OF, _TAIL_OF = operator.itemgetter(*_NAMES[:_BLOCK_AT]), operator.itemgetter(*_NAMES[_BLOCK_AT + 1:])


# (offset, struct) of each integer field of the record, from the declaration: what
# Volume.patch_inode packs one field at a time.
INODE_FIELD_PACKERS = field_packers(Inode)


def value_index(name: str) -> int:
    """Where integer field `name` is among INODE_STRUCT.unpack's values (the DIRECT_BLOCKS
    pointers of i_block come flat at BLOCK_VALUES)."""
    if name not in _NAMES or name == "i_block":
        raise KeyError(f"{name}: not an integer field of the inode")
    at = _NAMES.index(name)
    return at if at < _BLOCK_AT else at + C.DIRECT_BLOCKS - 1


# Where i_block's pointers are among INODE_STRUCT.unpack's values: what a caller holding
# those values (the mount's unlink and small reads) maps a file by, with no Container.
BLOCK_VALUES = slice(_BLOCK_AT, _BLOCK_AT + C.DIRECT_BLOCKS)


def parse_inode(ino: int, raw: bytes) -> InodeRecord:
    if len(raw) != C.INODE_SIZE:
        raise ValueError(f"an inode record is {C.INODE_SIZE} bytes, not {len(raw)}")
    # One Container built from pairs (C code), not Container.update's Python loop.
    return InodeRecord(ino, Container(zip(_NAMES, _field_values(INODE_STRUCT.unpack(raw)))), bytes(raw))


def _field_values(values: tuple) -> tuple:
    """INODE_STRUCT's values in _NAMES' order: the DIRECT_BLOCKS pointers as one list."""
    return (*values[:_BLOCK_AT], ListContainer(values[_BLOCK_AT:_BLOCK_END]), *values[_BLOCK_END:])


def new_inode(**fields) -> Container:
    """A zeroed record with `fields` set (through parse_inode's struct: construct's parse
    costs ten times as much, once per file a mount creates)."""
    record = Container(_ZERO_FIELDS)
    record["i_block"] = ListContainer(_ZERO_FIELDS["i_block"])  # its own list of pointers
    dict.update(record, fields)  # Container.update is a Python loop (Container is a dict)
    return record


_ZERO_FIELDS = parse_inode(0, bytes(C.INODE_SIZE)).fields  # new_inode's template, never handed out


def build_inode(fields: Container) -> bytearray:
    """parse_inode's inverse, through the same struct (every write of an inode builds one)."""
    return bytearray(INODE_STRUCT.pack(*_HEAD_OF(fields), *fields["i_block"], *_TAIL_OF(fields)))


def table_as_array(data: bytes, blocks: int) -> np.ndarray:
    """A structured view of `blocks` inode table blocks: shape (blocks * 36,) of INODE_DTYPE."""
    per_block = C.INODES_PER_BLOCK * C.INODE_SIZE
    grid = np.frombuffer(data, np.uint8).reshape(blocks, C.BLOCK_SIZE)[:, :per_block]
    return np.ascontiguousarray(grid).view(INODE_DTYPE).reshape(-1)


def select_records(records: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """records[rows], of INODE_DTYPE, taken as rows of bytes: numpy's fancy indexing of a
    112-byte structured dtype is several times slower than of the same bytes as uint8 rows."""
    if len(rows) == len(records):
        return records
    raw = np.ascontiguousarray(records).view(np.uint8).reshape(-1, C.INODE_SIZE)
    return raw[rows].view(INODE_DTYPE).reshape(-1)


def array_as_table(records: np.ndarray) -> bytes:
    """Inverse of table_as_array: whole blocks, the 64 unused bytes of each block zero."""
    per_block = C.INODES_PER_BLOCK * C.INODE_SIZE
    blocks = -(-len(records) // C.INODES_PER_BLOCK)
    padded = np.zeros(blocks * C.INODES_PER_BLOCK, INODE_DTYPE)
    padded[:len(records)] = records
    grid = np.zeros((blocks, C.BLOCK_SIZE), np.uint8)
    grid[:, :per_block] = padded.view(np.uint8).reshape(blocks, per_block)
    return grid.tobytes()


def iter_table_chunks(device, geometry, *, skip_holes: bool = False, end: int | None = None,
                      upto_end: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """(first inode number, records) over the whole table, in bounded chunks. A chunk that
    is a hole in an image file is not read: its records are all zero (free), and with
    skip_holes it is not yielded at all (counting needs nothing from it). Slots past `end`
    (the lazy_itable mark less one: never used) are zero and never read either; skip_holes
    or upto_end stops the walk at `end`."""
    slots = geometry.inode_slots
    end = slots if end is None else max(0, min(end, slots))
    last = end if skip_holes or upto_end else slots
    total_blocks = -(-last // C.INODES_PER_BLOCK)
    stored_blocks = -(-end // C.INODES_PER_BLOCK)  # table blocks that may hold a record
    for first_block in range(0, total_blocks, TABLE_CHUNK_BLOCKS):
        n = min(TABLE_CHUNK_BLOCKS, total_blocks - first_block)
        stored = max(0, min(n, stored_blocks - first_block))
        offset = (geometry.inode_table_start + first_block) * C.BLOCK_SIZE
        if not stored or device.is_hole(offset, stored * C.BLOCK_SIZE):
            if skip_holes:
                continue
            records = np.zeros(n * C.INODES_PER_BLOCK, INODE_DTYPE)
        else:
            records = table_as_array(device.read(offset, stored * C.BLOCK_SIZE), stored)
            if stored < n:
                records = np.concatenate([records, np.zeros((n - stored) * C.INODES_PER_BLOCK, INODE_DTYPE)])
        first_ino = first_block * C.INODES_PER_BLOCK + 1
        yield first_ino, records[:max(0, min(len(records), last - first_ino + 1))]


def iter_stored_past(device, geometry, end: int) -> Iterator[tuple[int, np.ndarray]]:
    """(first inode number, records) of the table blocks past slot `end` that an image file
    stores (not holes): where fsck looks for records a writer left past the lazy_itable
    mark. A block device stores everything, so nothing is read there (the superblock
    checksum vouches for the mark, as ext4's group descriptor checksum for itable_unused)."""
    if device.is_block_device:
        return
    first_block = end // C.INODES_PER_BLOCK + (end % C.INODES_PER_BLOCK != 0)
    total_blocks = -(-geometry.inode_slots // C.INODES_PER_BLOCK)
    start = (geometry.inode_table_start + first_block) * C.BLOCK_SIZE
    length = (total_blocks - first_block) * C.BLOCK_SIZE
    for data, stop in device.data_ranges(start, length):
        first = data - (data - start) % C.BLOCK_SIZE
        for piece in range(first, stop, TABLE_CHUNK_BLOCKS * C.BLOCK_SIZE):
            n = -(-(min(stop, piece + TABLE_CHUNK_BLOCKS * C.BLOCK_SIZE) - piece) // C.BLOCK_SIZE)
            first_ino = (first_block + (piece - start) // C.BLOCK_SIZE) * C.INODES_PER_BLOCK + 1
            records = table_as_array(device.read(piece, n * C.BLOCK_SIZE), n)
            yield first_ino, records[:max(0, min(len(records), geometry.inode_slots - first_ino + 1))]


class InodeFields(dict):
    """An inode's fields as parse_inode gives them (key and attribute access: fields.i_mode),
    but a plain dict underneath: a Container costs ~4 µs an inode, too much for a view that
    reads every inode of a tree in bulk (parse_inode_rows)."""

    __slots__ = ()

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def parse_inode_rows(inos: list[int], raw: bytes) -> list[InodeRecord]:
    """parse_inode over len(inos) records of 112 bytes laid end to end in `raw` (rows of an
    INODE_DTYPE array): the same field names, order and values, in InodeFields."""
    if len(raw) != len(inos) * C.INODE_SIZE:
        raise ValueError(f"{len(inos)} inode records are {len(inos) * C.INODE_SIZE} bytes, not {len(raw)}")
    return [InodeRecord(ino, InodeFields(zip(_NAMES, _field_values(values))),
                        raw[at * C.INODE_SIZE:(at + 1) * C.INODE_SIZE])
            for at, (ino, values) in enumerate(zip(inos, INODE_STRUCT.iter_unpack(raw)))]
