"""Byte offsets and sizes of fields, read off the construct declarations.

Code that slices raw bytes for speed (checksums, bulk scans, a quick look at a device's
first block) takes its offsets from here, never as numbers of its own, so that a change to a
declaration moves them too (tests/format/test_offsets.py holds each user to it).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from construct import SizeofError, Struct

from .blocks import IndirectBlock
from .directory import DirEntryHeader, DirTail
from .inode import Inode
from .superblock import Superblock


class Span(NamedTuple):
    """Where a field lies in its record."""

    offset: int
    size: int

    @property
    def end(self) -> int:
        return self.offset + self.size

    def of(self, raw) -> bytes:
        """The field's bytes in `raw`, a record that starts at 0."""
        return bytes(raw[self.offset:self.end])


class WordField(NamedTuple):
    """A field read out of little-endian words of `width` bytes: word `word` of the record,
    shifted right by `shift`, masked with `mask` (directory headers walked in numpy)."""

    word: int
    shift: int
    mask: int


def field_span(declaration: Struct, name: str) -> Span:
    """(offset, size) of field `name` of a Struct whose fields before it have fixed sizes."""
    span = spans_of(declaration).get(name)
    if span is None:
        raise KeyError(f"{name}: no such field, or one after a field of no fixed size")
    return span


@functools.cache
def spans_of(declaration: Struct) -> dict[str, Span]:
    """Every named field's Span, up to the first field of no fixed size: one walk of the
    declaration (construct's sizeof builds a context at each call; every tool's start-up
    asks for dozens of offsets)."""
    spans: dict[str, Span] = {}
    offset = 0
    for sub in declaration.subcons:
        try:
            size = sub.sizeof()
        except SizeofError:
            break
        if sub.name:
            spans[sub.name] = Span(offset, size)
        offset += size
    return spans


def word_field(declaration: Struct, name: str, width: int = 4) -> WordField:
    """Where field `name` sits among the record's `width`-byte words; it must not straddle
    two of them."""
    span = field_span(declaration, name)
    word, start = divmod(span.offset, width)
    if start + span.size > width:
        raise ValueError(f"{name} straddles two {width}-byte words")
    return WordField(word, start * 8, (1 << (span.size * 8)) - 1)


SUPERBLOCK_CHECKSUM_OFFSET = field_span(Superblock, "s_checksum").offset  # crc32c of the bytes before
SUPERBLOCK_MAGIC = field_span(Superblock, "s_magic")
SUPERBLOCK_LABEL = field_span(Superblock, "s_volume_name")
INODE_CHECKSUM_OFFSET = field_span(Inode, "i_checksum").offset
# The crc32c tail of bitmap and indirect blocks; directory blocks end in DirTail's checksum.
BLOCK_TAIL_OFFSET = field_span(IndirectBlock, "checksum").offset
DIR_TAIL_CHECKSUM = field_span(DirTail, "checksum")
DIRENT_INODE = field_span(DirEntryHeader, "inode")
