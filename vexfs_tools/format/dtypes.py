"""numpy dtypes derived from the construct declarations, for bulk scans.

A dtype is never written by hand: it is read off the Struct, field by field, so the two can
not drift apart (tests/format/test_dtypes.py proves they agree on real bytes).
"""

from __future__ import annotations

import struct

import numpy as np
from construct import Array, Bytes, Const, FormatField, Renamed, Struct

from .blocks import IndirectBlock
from .directory import DirEntryHeader, DirTail
from .inode import Inode
from .offsets import spans_of
from .superblock import Superblock


def _field_format(con) -> object:
    while isinstance(con, (Renamed, Const)):
        con = con.subcon
    if isinstance(con, FormatField):
        return np.dtype(np.dtype(con.fmtstr[1:]).kind + str(con.length)).newbyteorder(
            "<" if con.fmtstr[0] == "<" else ">")
    if isinstance(con, Array):
        return (_field_format(con.subcon), (con.count,))
    if isinstance(con, Bytes) and isinstance(con.length, int):
        return np.dtype(("V", con.length))
    raise TypeError(f"no numpy equivalent for {con!r}")


def dtype_of(struct: Struct) -> np.dtype:
    """A packed little-endian numpy dtype with the Struct's field names and offsets."""
    spans = spans_of(struct)
    names = [sub.name for sub in struct.subcons]
    return np.dtype({"names": names, "formats": [_field_format(sub) for sub in struct.subcons],
                     "offsets": [spans[name].offset for name in names], "itemsize": spans[names[-1]].end})


INODE_DTYPE = dtype_of(Inode)
SUPERBLOCK_DTYPE = dtype_of(Superblock)
DIRENT_HEADER_DTYPE = dtype_of(DirEntryHeader)
INDIRECT_DTYPE = dtype_of(IndirectBlock)


def struct_of(declaration: Struct) -> struct.Struct:
    """A `struct.Struct` packer for a Struct made only of fixed integer fields and arrays of
    them (records read one at a time on hot paths, where construct's parse is too slow)."""
    return struct.Struct("<" + "".join(_struct_code(sub) for sub in declaration.subcons))


def field_packers(declaration: Struct) -> dict[str, tuple[int, struct.Struct]]:
    """(offset, packer) of each plain integer field (not the arrays): a record changed in
    place a field at a time (Volume.patch_inode)."""
    spans = spans_of(declaration)
    return {sub.name: (spans[sub.name].offset, struct.Struct("<" + _struct_code(sub)))
            for sub in declaration.subcons if not _struct_code(sub)[0].isdigit()}


def _struct_code(sub) -> str:
    """The struct module's code of a field: 'I', or '12I' for an array of 12."""
    con = sub.subcon
    while isinstance(con, (Renamed, Const)):
        con = con.subcon
    count = ""
    if isinstance(con, Array) and isinstance(con.count, int) and isinstance(con.subcon, FormatField):
        count, con = str(con.count), con.subcon
    if not isinstance(con, FormatField):
        raise TypeError(f"{sub.name}: not a plain integer field")
    return count + con.fmtstr[1:]


DIRENT_HEADER = struct_of(DirEntryHeader)
INODE_STRUCT = struct_of(Inode)
DIR_TAIL = struct_of(DirTail)
