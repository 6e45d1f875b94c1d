"""`vexfs image` (e2image): the metadata of an image, for bug reports.

The raw form is a sparse file of the device's size holding only the metadata blocks, each at
its own offset: every tool reads it as it reads the original. The compact form (FORMAT.md,
"Metadata images") is a small header and a zlib stream of (first block, count, bytes) records.
Memory stays bounded: the inode table is walked a chunk at a time, blocks are copied in
runs, and scrambled directory blocks wait in a temporary file, not in memory.
"""

from __future__ import annotations

import os
import stat
import struct
import sys
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from ..errors import FormatError, UsageError
from ..format import constants as C
from ..format import vector as V
from ..volume import checksums, directory
from ..volume.blockmap import block_runs
from ..volume.geometry import KERNEL
from ..volume.orphans import find_orphan_directory_blocks
from ..volume.volume import Volume
from ..check.pass_vectors import find_copy
from .walk import data_blocks, directory_blocks, indirect_blocks, used_inodes

COMPACT_MAGIC = b"VEXFSQI1"
COMPACT_HEADER = struct.Struct("<8sQI4x")  # magic, device bytes, block size, pad: 24 bytes
RECORD = struct.Struct("<QI")  # first block, block count; then count * 4096 bytes
END_BLOCK = (1 << 64) - 1  # the end record: END_BLOCK, 0
RUN_BLOCKS = 256  # blocks read and written at a time: 1 MiB
SCRAMBLE_ALPHABET = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
ZEROS = bytes(RUN_BLOCKS * C.BLOCK_SIZE)


@dataclass(frozen=True)
class ImageOptions:
    scramble: bool = False
    all_data: bool = False
    compact: bool = False


# --- which blocks ---------------------------------------------------------------------------

def metadata_blocks(volume: Volume, *, all_data: bool = False) -> np.ndarray:
    """Sorted, unique block numbers to copy: superblocks, bitmap, the stored part of the
    inode table, every directory and indirect block, symlink targets and vector file
    headers; the kernel layout's orphaned directory blocks; with all_data every block the
    bitmap marks in use."""
    g = volume.geometry
    parts = [np.array([0], np.int64), np.arange(g.bitmap_start, g.bitmap_start + g.bitmap_blocks)]
    table_start = g.inode_table_start * C.BLOCK_SIZE
    # A block device stores the whole table: past the lazy_itable mark it is zero, not read.
    table_blocks = -(-volume.itable_end // C.INODES_PER_BLOCK) if volume.device.is_block_device \
        else g.inode_table_blocks
    for start, end in volume.device.data_ranges(table_start, table_blocks * C.BLOCK_SIZE):
        parts.append(np.arange(start // C.BLOCK_SIZE, -(-end // C.BLOCK_SIZE)))
    if g.backup_sb_block:
        parts.append(np.array([g.backup_sb_block], np.int64))
    if g.layout == KERNEL:
        parts.append(np.arange(0, g.first_data_block + 1))
    owned: list[int] = []
    blockless_dirs: set[int] = set()
    for inode in used_inodes(volume):
        owned += directory_blocks(volume, inode) + indirect_blocks(volume, inode)
        if inode.is_dir and not inode.i_block[0]:
            blockless_dirs.add(inode.ino)
        if inode.is_symlink:
            owned += data_blocks(volume, inode)
        elif volume.layout != KERNEL and inode.fields.i_flags & C.INODE_FLAG_VECTOR:
            owned += vector_header_blocks(volume, inode)
    if g.layout == KERNEL and blockless_dirs:
        known = set(owned)
        owned += find_orphan_directory_blocks(volume, blockless_dirs, lambda b: b in known).values()
    parts.append(np.array(owned, np.int64))
    if all_data:
        parts.append(used_bitmap_blocks(volume))
    blocks = np.unique(np.concatenate(parts).astype(np.int64))
    return blocks[(blocks >= 0) & (blocks < volume.device.size // C.BLOCK_SIZE)]


def vector_header_blocks(volume: Volume, inode) -> list[int]:
    """The blocks of a vector file's header (header_blocks of them, as its first block says)
    and of the header's copy at the end of the file, when a good one is there: fsck restores
    a damaged header from it, and must find the same on the metadata image."""
    first = data_blocks(volume, inode, 1)
    if not first:
        return []
    head = volume.read_block(first[0])
    blocks = first
    if head[:len(V.VECTOR_MAGIC)] == V.VECTOR_MAGIC:
        count = int.from_bytes(V.HEADER_BLOCKS_SPAN.of(head), "little")
        blocks = data_blocks(volume, inode, max(1, count))
    copy = find_copy(volume, inode)
    if copy is not None:
        offset, info = copy
        start, end = offset // C.BLOCK_SIZE, (offset + info.header_bytes) // C.BLOCK_SIZE
        blocks += [block for logical, block in volume.block_map(inode).mapping(end) if logical >= start]
    return blocks


def used_bitmap_blocks(volume: Volume) -> np.ndarray:
    parts = []
    limit = volume.geometry.addressable_blocks
    for first, packed in volume.bitmap.iter_chunks():
        if first >= limit:
            break
        bits = np.unpackbits(packed, bitorder="little")[:limit - first]
        parts.append(np.flatnonzero(bits).astype(np.int64) + first)
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


# --- scrambling names -----------------------------------------------------------------------

def scrambled_name(index: int, length: int) -> bytes | None:
    """The index-th name of `length` bytes over SCRAMBLE_ALPHABET, or None past the last."""
    base = len(SCRAMBLE_ALPHABET)
    if length < 8 and index >= base ** length:
        return None
    out = bytearray()
    for _ in range(length):
        index, digit = divmod(index, base)
        out.append(SCRAMBLE_ALPHABET[digit])
    return bytes(out)


def scramble_directory(volume: Volume, inode, blocks: list[int]) -> dict[int, bytearray]:
    """The directory's blocks with every live name replaced by another of the same length,
    unique within the directory ("." and "..", and /lost+found, kept), names of deleted
    entries in the slack replaced too, and the checksum tail recomputed."""
    original = {block: volume.read_block(block) for block in blocks}
    datas = {block: bytearray(data) for block, data in original.items()}
    walks = {block: directory.walk_block(data, chain_end=volume.chain_end) for block, data in datas.items()}
    by_length: dict[int, int] = {}
    for walk in walks.values():
        for record in walk.records:
            if record.inode and record.name_len:
                by_length[record.name_len] = by_length.get(record.name_len, 0) + 1
    counters: dict[int, int] = {}
    for block, data in datas.items():
        for record in walks[block].records:
            if record.inode and _keep(inode, record.name, by_length):
                continue
            if record.inode:
                _rename(data, record, counters)
            for deleted in directory.deleted_in_slack(data, record):
                _rename(data, deleted, counters)
        if volume.seed is not None and _checksum_ok(volume, block, original[block]):
            checksums.set_tail(volume.seed, block, data)
    return datas


def _checksum_ok(volume: Volume, block: int, data: bytes) -> bool:
    """A tail that was right stays right; a wrong one stays wrong (fsck finds the same)."""
    return checksums.block_checksum_ok(volume.seed, block, data)


def _keep(inode, name: bytes, by_length: dict[int, int]) -> bool:
    if name in (b".", b"..") or (inode.ino == C.ROOT_INO and name == b"lost+found"):
        return True
    return scrambled_name(by_length[len(name)] - 1, len(name)) is None  # too many names that long


def _rename(data: bytearray, record, counters: dict[int, int]) -> None:
    index = counters.get(record.name_len, 0)
    counters[record.name_len] = index + 1
    name = scrambled_name(index, record.name_len) or bytes(record.name_len)
    at = record.offset + C.DIRENT_HEADER_SIZE
    data[at:at + record.name_len] = name


class ScrambledBlocks:
    """Replacement directory blocks, kept in a temporary file (memory stays bounded)."""

    def __init__(self):
        self.file = tempfile.TemporaryFile()
        self.where: dict[int, int] = {}

    def add(self, blocks: dict[int, bytearray]) -> None:
        for block, data in blocks.items():
            self.where[block] = self.file.seek(0, os.SEEK_END)
            self.file.write(data)

    def get(self, block: int) -> bytes | None:
        offset = self.where.get(block)
        if offset is None:
            return None
        self.file.seek(offset)
        return self.file.read(C.BLOCK_SIZE)

    def close(self) -> None:
        self.file.close()


def scramble_all(volume: Volume) -> ScrambledBlocks:
    out = ScrambledBlocks()
    for inode in used_inodes(volume):
        if inode.is_dir:
            blocks = directory_blocks(volume, inode)
            if blocks:
                out.add(scramble_directory(volume, inode, blocks))
    return out


# --- copying --------------------------------------------------------------------------------

def stored_runs(volume: Volume, blocks: np.ndarray,
                replaced: ScrambledBlocks | None) -> Iterator[tuple[int, bytes]]:
    """(first block, bytes) of runs of consecutive blocks to write, at most RUN_BLOCKS long,
    all-zero blocks left out (the output stays sparse)."""
    if not blocks.size:
        return
    for start, count in block_runs(blocks):
        for offset in range(0, count, RUN_BLOCKS):
            first = start + offset
            n = min(RUN_BLOCKS, count - offset)
            data = bytearray(volume.device.read_or_zeros(first * C.BLOCK_SIZE, n * C.BLOCK_SIZE))
            if replaced is not None:
                for i in range(n):
                    new = replaced.get(first + i)
                    if new is not None:
                        data[i * C.BLOCK_SIZE:(i + 1) * C.BLOCK_SIZE] = new
            yield from _nonzero_runs(first, data)


def _nonzero_runs(first: int, data: bytearray) -> Iterator[tuple[int, bytes]]:
    rows = np.frombuffer(data, np.uint8).reshape(-1, C.BLOCK_SIZE)
    stored = np.flatnonzero(rows.any(axis=1))
    if not stored.size:
        return
    for start, count in block_runs(stored):
        yield first + start, bytes(data[start * C.BLOCK_SIZE:(start + count) * C.BLOCK_SIZE])


def write_image(source: str, out: str, options: ImageOptions) -> None:
    """Write the image of `source` to `out` ('-': standard output)."""
    _refuse_same_file(source, out)
    with Volume.open(source, ignore_checksums=True) as volume:
        blocks = metadata_blocks(volume, all_data=options.all_data)
        replaced = scramble_all(volume) if options.scramble else None
        try:
            runs = stored_runs(volume, blocks, replaced)
            size = volume.device.size
            with _open_out(out) as stream:
                if options.compact:
                    write_compact(stream, size, runs)
                else:
                    write_raw(stream, size, runs)
        finally:
            if replaced is not None:
                replaced.close()


def _refuse_same_file(source: str, out: str) -> None:
    if out != "-" and os.path.exists(out) and os.path.samefile(source, out):
        raise UsageError(f"{out} is the image itself; name another output")


class _open_out:
    """OUT for writing: a file (created or truncated), or standard output for '-'."""

    def __init__(self, out: str):
        self.out = out

    def __enter__(self) -> BinaryIO:
        if self.out == "-":
            self.stream = sys.stdout.buffer
        else:
            try:
                self.stream = open(self.out, "wb")
            except OSError as e:
                raise UsageError(f"{self.out}: {e.strerror}") from None
        return self.stream

    def __exit__(self, *exc) -> None:
        if self.out == "-":
            self.stream.flush()
        else:
            self.stream.close()


def _seekable_file(stream: BinaryIO) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


def write_raw(stream: BinaryIO, size: int, runs: Iterator[tuple[int, bytes]]) -> None:
    """A regular file gets each run at its offset, holes between (sparse); a pipe gets the
    zeros written out."""
    if _seekable_file(stream):
        stream.truncate(size)
        for block, data in runs:
            stream.seek(block * C.BLOCK_SIZE)
            stream.write(data)
        return
    position = 0
    for block, data in runs:
        _write_zeros(stream, block * C.BLOCK_SIZE - position)
        stream.write(data)
        position = block * C.BLOCK_SIZE + len(data)
    _write_zeros(stream, size - position)


def _write_zeros(stream: BinaryIO, count: int) -> None:
    while count > 0:
        n = min(count, len(ZEROS))
        stream.write(ZEROS[:n])
        count -= n


def write_compact(stream: BinaryIO, size: int, runs: Iterator[tuple[int, bytes]]) -> None:
    stream.write(COMPACT_HEADER.pack(COMPACT_MAGIC, size, C.BLOCK_SIZE))
    packer = zlib.compressobj(6)
    for block, data in runs:
        stream.write(packer.compress(RECORD.pack(block, len(data) // C.BLOCK_SIZE)))
        stream.write(packer.compress(data))
    stream.write(packer.compress(RECORD.pack(END_BLOCK, 0)))
    stream.write(packer.flush())


# --- restoring the compact form -----------------------------------------------------------------

def read_compact(path: str) -> tuple[int, Iterator[tuple[int, bytes]]]:
    """(device bytes, runs) of a compact image; every record is checked against the size."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror}") from None
    header = f.read(COMPACT_HEADER.size)
    if len(header) < COMPACT_HEADER.size or header[:len(COMPACT_MAGIC)] != COMPACT_MAGIC:
        f.close()
        raise FormatError(f"{path} is not a compact vexfs image (no {COMPACT_MAGIC.decode()} header)")
    _, size, block_size = COMPACT_HEADER.unpack(header)
    if block_size != C.BLOCK_SIZE:
        f.close()
        raise FormatError(f"{path}: block size {block_size} is not {C.BLOCK_SIZE}")
    return size, _records(f, path, size)


def _records(f: BinaryIO, path: str, size: int) -> Iterator[tuple[int, bytes]]:
    reader = _Inflater(f, path)
    with f:
        while True:
            block, count = RECORD.unpack(reader.take(RECORD.size))
            if block == END_BLOCK:
                return
            if (block + count) * C.BLOCK_SIZE > size:
                raise FormatError(f"{path}: a record reaches past the end of the device ({size} bytes)")
            remaining = count
            while remaining:
                n = min(remaining, RUN_BLOCKS)
                yield block, reader.take(n * C.BLOCK_SIZE)
                block += n
                remaining -= n


class _Inflater:
    """Exactly n inflated bytes at a time from a zlib stream, reading 1 MiB at a time."""

    def __init__(self, f: BinaryIO, path: str):
        self.f, self.path = f, path
        self.inflater = zlib.decompressobj()
        self.buffer = bytearray()

    def take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if self.inflater.unconsumed_tail:
                chunk = self.inflater.unconsumed_tail
            else:
                chunk = self.f.read(1 << 20)
                if not chunk:
                    raise FormatError(f"{self.path}: the compact image is truncated")
            try:
                self.buffer += self.inflater.decompress(chunk, 4 << 20)
            except zlib.error as e:
                raise FormatError(f"{self.path}: the compact image is damaged ({e})") from None
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out


def restore_compact(path: str, out: str) -> None:
    """Write the raw image a compact image holds to `out` ('-': standard output)."""
    size, runs = read_compact(path)
    if out != "-" and os.path.exists(out) and os.path.samefile(path, out):
        raise UsageError(f"{out} is the compact image itself; name another output")
    with _open_out(out) as stream:
        write_raw(stream, size, runs)
