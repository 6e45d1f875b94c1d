"""crc32c (Castagnoli) checksums of VexFS metadata (docs/FORMAT.md, "Checksums").

The superblock's is plain CRC-32C of bytes 0..1019. Every other structure's is CRC-32C of
le32(location) followed by the covered bytes, continued from s_checksum_seed, where location
is the inode number for an inode and the block number for a block.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import os
import struct
import sys
from collections.abc import Callable

import numpy as np

from ..format.offsets import BLOCK_TAIL_OFFSET, INODE_CHECKSUM_OFFSET, SUPERBLOCK_CHECKSUM_OFFSET

_LE32 = struct.Struct("<I")  # every checksum field is a le32


def _load_crc32c() -> Callable[..., int]:
    """The crc32c package's C function, loaded without the package's __init__: that one reads
    its own version through importlib.metadata and imports its command line (argparse, email),
    about 35 ms of every tool's start-up. Falls back to the plain import if the layout differs."""
    spec = importlib.util.find_spec("crc32c")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(folder, "_crc32c" + suffix)
            if os.path.isfile(path):
                loader = importlib.machinery.ExtensionFileLoader("crc32c._crc32c", path)
                module_spec = importlib.util.spec_from_file_location("crc32c._crc32c", path, loader=loader)
                module = importlib.util.module_from_spec(module_spec)
                loader.exec_module(module)
                sys.modules.setdefault("crc32c._crc32c", module)
                return module.crc32c
    from crc32c import crc32c as imported  # noqa: PLC0415 - only if the fast path is missing

    return imported


crc32c = _load_crc32c()


def seed_for_uuid(uuid: bytes) -> int:
    return crc32c(uuid)


def superblock_checksum(raw: bytes) -> int:
    return crc32c(bytes(raw[:SUPERBLOCK_CHECKSUM_OFFSET]))


def metadata_checksum(seed: int, location: int, covered: bytes | memoryview) -> int:
    return crc32c(covered, crc32c(_LE32.pack(location), seed))


def inode_checksum(seed: int, ino: int, record: bytes | memoryview) -> int:
    return metadata_checksum(seed, ino, memoryview(record)[:INODE_CHECKSUM_OFFSET])


def block_checksum(seed: int, block: int, data: bytes | memoryview) -> int:
    """Checksum of a bitmap, indirect or directory block: covers all bytes but the last 4."""
    return metadata_checksum(seed, block, memoryview(data)[:BLOCK_TAIL_OFFSET])


def stored_tail(data: bytes | memoryview) -> int:
    return _LE32.unpack_from(data, BLOCK_TAIL_OFFSET)[0]


def set_tail(seed: int, block: int, data: bytearray) -> None:
    _LE32.pack_into(data, BLOCK_TAIL_OFFSET, block_checksum(seed, block, data))


def set_inode_checksum(seed: int, ino: int, record: bytearray) -> None:
    _LE32.pack_into(record, INODE_CHECKSUM_OFFSET, inode_checksum(seed, ino, record))


def inode_checksum_ok(seed: int, ino: int, record: bytes | memoryview) -> bool:
    """An all-zero record (a never-used slot) is valid without a checksum."""
    if not any(record):
        return True
    return _LE32.unpack_from(record, INODE_CHECKSUM_OFFSET)[0] == inode_checksum(seed, ino, record)


def block_checksum_ok(seed: int, block: int, data: bytes | memoryview, *, zero_ok: bool = False) -> bool:
    if zero_ok and not any(data):
        return True
    return stored_tail(data) == block_checksum(seed, block, data)


# --- many records at once ---------------------------------------------------------------------
# A record followed by its own crc32c leaves the register at a constant (CRC's residue), so
# a run of correct records checksums, as one stream, exactly as a run of any other correct
# records of that length does. One crc32c call then clears thousands of records; a run that
# fails is halved until the bad records are found. (Two bad records that cancel exactly are
# as likely as one bad record that happens to match: 2**-32.)
_SMALL_RUN = 32  # records checked one at a time below this
_RUN = 4096  # records checked with one call, at first


def failing_records(seed: int, locations: np.ndarray, records: np.ndarray) -> np.ndarray:
    """Indices of the records (rows of `records`, uint8, each ending with its crc32c tail)
    whose checksum is wrong; all-zero records are never wrong (never-used slots), but each
    costs a call of its own: pass the records in use."""
    if not len(records):
        return np.zeros(0, np.int64)
    width = records.shape[1]
    messages = np.empty((len(records), width + 4), np.uint8)
    messages[:, :4] = np.asarray(locations, "<u4").view(np.uint8).reshape(-1, 4)
    messages[:, 4:] = records
    bad: list[int] = []
    for first in range(0, len(messages), _RUN):
        _bisect(seed, messages, first, min(first + _RUN, len(messages)), bad)
    return np.array(bad, np.int64)


@functools.lru_cache(maxsize=64)
def _correct_run(seed: int, width: int, count: int) -> tuple[int, int]:
    """(checksum of one correct message, checksum of `count` correct messages in a row),
    a message being le32(location) + a record of `width` bytes ending with its checksum."""
    covered = bytes(width - 4)
    message = _LE32.pack(0) + covered + _LE32.pack(metadata_checksum(seed, 0, covered))
    return crc32c(message, seed), crc32c(message * count, seed)


def _bisect(seed: int, messages: np.ndarray, first: int, end: int, bad: list[int]) -> None:
    width = messages.shape[1] - 4
    if end - first <= _SMALL_RUN:
        residue = _correct_run(seed, width, 1)[0]
        bad.extend(i for i in range(first, end)
                   if crc32c(messages[i], seed) != residue and messages[i, 4:].any())
        return
    if crc32c(messages[first:end], seed) == _correct_run(seed, width, end - first)[1]:
        return
    middle = (first + end) // 2
    _bisect(seed, messages, first, middle, bad)
    _bisect(seed, messages, middle, end, bad)
