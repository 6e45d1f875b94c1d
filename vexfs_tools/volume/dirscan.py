"""Directory blocks in bulk: every block's rec_len chain walked at once, in numpy.

`directory.walk_block` follows one block's chain in Python, which costs seconds over a
million entries. Here all the blocks of a batch step together: step k reads the k-th entry
of every block whose chain is still going. The rules are walk_block's (tests/volume/
test_dirscan.py proves both read the same entries and stop at the same blocks), so a caller
can trust a block this scan passes, and hand a block it flags to walk_block for the details.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..format import constants as C

_HASH_MULTIPLIER = np.uint64(0x100000001B3)  # FNV-1's 64-bit prime: any odd constant works


def min_rec_len(name_len: np.ndarray) -> np.ndarray:
    return (C.DIRENT_HEADER_SIZE + name_len.astype(np.int64) + 3) & ~3


@dataclass
class EntryTable:
    """Every entry on the chains of a batch of blocks, as arrays (one element an entry);
    `broken` has one element a block: its chain stops early (walk_block's `problem`)."""

    row: np.ndarray  # which block of the batch
    step: np.ndarray  # its place on that block's chain: 0 for the first entry
    offset: np.ndarray
    inode: np.ndarray
    rec_len: np.ndarray
    name_len: np.ndarray
    file_type: np.ndarray
    broken: np.ndarray

    def __len__(self) -> int:
        return len(self.row)


def walk_blocks(data: np.ndarray, *, chain_end: int = C.BLOCK_SIZE) -> EntryTable:
    """Walk the chains of `data`, shape (blocks, BLOCK_SIZE) uint8, as walk_block walks one."""
    words = data.view("<u4")  # offsets on a chain are multiples of 4 (rec_len % 4 == 0)
    blocks = len(data)
    position = np.zeros(blocks, np.int64)
    active = np.arange(blocks)
    broken = np.zeros(blocks, bool)
    parts = []
    step = 0
    while active.size:
        at = position[active]
        header_fits = at + C.DIRENT_HEADER_SIZE <= chain_end
        word = np.where(header_fits, at >> 2, 0)
        inode = words[active, word]
        packed = words[active, word + 1]
        rec_len = (packed & 0xFFFF).astype(np.int64)
        name_len = (packed >> 16) & 0xFF
        ok = header_fits & (rec_len % 4 == 0) & (rec_len >= C.DIRENT_HEADER_SIZE) \
            & (at + rec_len <= chain_end) & (rec_len >= min_rec_len(name_len))
        broken[active[~ok]] = True
        rows = active[ok]
        parts.append((rows, np.full(rows.size, step, np.int32), at[ok], inode[ok], rec_len[ok],
                      name_len[ok], packed[ok] >> 24))
        position[rows] += rec_len[ok]
        active = rows[position[rows] < chain_end]
        step += 1
    columns = [np.concatenate(column) for column in zip(*parts)] if parts else [np.zeros(0, np.int64)] * 7
    row, steps, offset, inode, rec_len, name_len, file_type = columns
    return EntryTable(row, steps, offset, inode.astype(np.uint32), rec_len, name_len.astype(np.int64),
                      file_type.astype(np.uint8), broken)


def name_hashes(data: np.ndarray, entries: EntryTable, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the entries selected by `which` (indices): a 64-bit hash of each name (equal names,
    equal hashes; the caller compares the bytes of any hashes that collide), and whether the
    name holds a NUL or a '/'. Work is proportional to the bytes of the names."""
    flat = data.reshape(-1)
    lengths = entries.name_len[which]
    order = np.argsort(-lengths, kind="stable")  # longest first: step k reads a prefix
    start = (entries.row[which][order].astype(np.int64) * C.BLOCK_SIZE
             + entries.offset[which][order] + C.DIRENT_HEADER_SIZE)
    longest_first = lengths[order]
    hashes = longest_first.astype(np.uint64)
    bad = np.zeros(len(order), bool)
    # How many names are longer than k, for every k: a prefix of the sorted order.
    longer_than = np.searchsorted(-longest_first, -np.arange(int(longest_first[0]) if len(order) else 0),
                                  side="left")
    for k, count in enumerate(longer_than.tolist()):
        byte = flat[start[:count] + k]
        hashes[:count] = hashes[:count] * _HASH_MULTIPLIER + byte
        bad[:count] |= (byte == 0) | (byte == ord("/"))
    out_hashes = np.empty_like(hashes)
    out_bad = np.empty_like(bad)
    out_hashes[order] = hashes
    out_bad[order] = bad
    return out_hashes, out_bad


def slack_suspects(data: np.ndarray, entries: EntryTable) -> np.ndarray:
    """Blocks (a bool a row) where the slack of some entry, between the end of its name and
    the end of its rec_len, holds something shaped like an entry header: what the kernel's
    delete leaves behind. A superset of what directory.deleted_in_slack reports (it also
    needs the whole entry and a clean name to fit), so a block not flagged has none."""
    blocks = len(data)
    words = data.view("<u4")
    inode, packed = words[:, :-1], words[:, 1:]
    rec_len = packed & 0xFFFF
    name_len = (packed >> 16) & 0xFF
    shaped = (inode != 0) & (name_len != 0) & (rec_len % 4 == 0) \
        & (rec_len >= ((C.DIRENT_HEADER_SIZE + 3 + name_len) & ~np.uint32(3))) & ((packed >> 24) <= 7)
    del rec_len, name_len
    # The slack of each entry, as a run of 4-byte positions where a header could start.
    start = entries.offset + np.where(entries.inode != 0, min_rec_len(entries.name_len), 4)
    last = entries.offset + entries.rec_len - C.DIRENT_HEADER_SIZE
    has_room = start <= last
    row = entries.row[has_room]
    marks = np.zeros((blocks, words.shape[1] + 1), np.int16)
    np.add.at(marks, (row, start[has_room] >> 2), 1)
    np.add.at(marks, (row, (last[has_room] >> 2) + 1), -1)
    in_slack = np.cumsum(marks, axis=1, dtype=np.int16)[:, :shaped.shape[1]] > 0
    return (shaped & in_slack).any(axis=1)
