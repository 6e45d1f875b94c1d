"""crc32c (Castagnoli) checksums of VexFS metadata (docs/FORMAT.md, "Checksums").

The superblock's is plain CRC-32C of bytes 0..1019. Every other structure's is CRC-32C of
le32(location) followed by the covered bytes, continued from s_checksum_seed, where location
is the inode number for an inode and the block number for a block.
"""

from __future__ import annotations

import struct

import numpy as np

from crc32c import crc32c

from ..format.constants import BLOCK_SIZE, INODE_SIZE, SUPERBLOCK_CHECKSUM_OFFSET, TAIL_SIZE

_LE32 = struct.Struct("<I")
INODE_CHECKSUM_OFFSET = INODE_SIZE - 4
BLOCK_TAIL_OFFSET = BLOCK_SIZE - TAIL_SIZE  # bitmap, indirect and directory blocks


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
_SMALL_RUN = 32


def failing_records(seed: int, locations: np.ndarray, records: np.ndarray) -> np.ndarray:
    """Indices of the records (rows of `records`, uint8, each ending with its crc32c tail)
    whose checksum is wrong; all-zero records are never wrong (never-used slots)."""
    if not len(records):
        return np.zeros(0, np.int64)
    width = records.shape[1]
    messages = np.empty((len(records), width + 4), np.uint8)
    messages[:, :4] = np.asarray(locations, "<u4").view(np.uint8).reshape(-1, 4)
    messages[:, 4:] = records
    nonzero = np.flatnonzero(records.any(axis=1))
    if len(nonzero) < len(records):
        messages = messages[nonzero]
    correct = _correct_message(seed, width)
    bad: list[int] = []
    _bisect(seed, messages, 0, len(messages), correct, bad)
    return nonzero[np.array(bad, np.int64)] if bad else np.zeros(0, np.int64)


def _correct_message(seed: int, width: int) -> bytes:
    covered = bytes(width - 4)
    return _LE32.pack(0) + covered + _LE32.pack(metadata_checksum(seed, 0, covered))


def _bisect(seed: int, messages: np.ndarray, first: int, end: int, correct: bytes, bad: list[int]) -> None:
    if end - first <= _SMALL_RUN:
        residue = crc32c(correct, seed)
        bad.extend(i for i in range(first, end) if crc32c(messages[i], seed) != residue)
        return
    if crc32c(messages[first:end], seed) == crc32c(correct * (end - first), seed):
        return
    middle = (first + end) // 2
    _bisect(seed, messages, first, middle, correct, bad)
    _bisect(seed, messages, middle, end, correct, bad)
