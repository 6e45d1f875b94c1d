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
from ..format.directory import DirEntryHeader
from ..format.offsets import WordField, word_field

_HASH_MULTIPLIER = np.uint64(0x100000001B3)  # FNV-1's 64-bit prime: any odd constant works
_ROUND_DOWN_4 = np.uint32(0xFFFFFFFC)
_SLACK_ROUND = 1 << 18  # places in the slack read per round of slack_suspects
# An entry header is read as two le32 words: the inode number, then rec_len, name_len and
# file_type packed in the second (where the declaration puts them).
_INODE, _REC_LEN, _NAME_LEN, _FILE_TYPE = (word_field(DirEntryHeader, name) for name in
                                           ("inode", "rec_len", "name_len", "file_type"))
_PACKED_WORD = _REC_LEN.word  # tests/format/test_offsets.py: the inode is word 0, the rest share this one
_REC_LEN_SHIFT, _REC_LEN_MASK = np.uint32(_REC_LEN.shift), np.uint32(_REC_LEN.mask)
_NAME_LEN_SHIFT, _NAME_LEN_MASK = np.uint32(_NAME_LEN.shift), np.uint32(_NAME_LEN.mask)
_HEADER_ROUND = np.uint32(C.DIRENT_HEADER_SIZE + 3)  # min_rec_len: header and name, rounded up to 4
_NEGATIVE_OR_UNALIGNED = np.uint32(0x80000003)
assert _INODE.word == 0  # walk_blocks reads the inode number at the entry's first word


def _unpack(packed: np.ndarray, field: WordField) -> np.ndarray:
    """One field out of the packed second words of entry headers."""
    return (packed >> field.shift) & field.mask


def min_rec_len(name_len: np.ndarray) -> np.ndarray:
    """directory.min_rec_len over an array of name lengths, as uint32 (no wrap-around for a
    uint8 name_len near 255, no int64 temporaries)."""
    return (name_len.astype(np.uint32, copy=False) + (C.DIRENT_HEADER_SIZE + 3)) & _ROUND_DOWN_4


@dataclass
class EntryTable:
    """Every entry on the chains of a batch of blocks, as arrays (one element an entry);
    `broken` has one element a block: its chain stops early (walk_block's `problem`)."""

    row: np.ndarray  # int32: which block of the batch
    step: np.ndarray  # uint16: its place on that block's chain, 0 for the first entry
    offset: np.ndarray  # uint16
    inode: np.ndarray  # uint32
    rec_len: np.ndarray  # uint16
    name_len: np.ndarray  # uint8
    file_type: np.ndarray  # uint8
    broken: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.row)


def walk_blocks(data: np.ndarray, *, chain_end: int = C.BLOCK_SIZE) -> EntryTable:
    """Walk the chains of `data`, shape (blocks, BLOCK_SIZE) uint8, as walk_block walks one.
    Each step costs a few numpy calls whatever the number of blocks, so the arrays of the
    blocks still walking are kept compressed and in step with each other; the header's
    fields stay uint32 (numpy scalars: no conversion of Python ints at every step)."""
    words = data.view("<u4").reshape(-1)  # offsets on a chain are multiples of 4
    last_header = chain_end - C.DIRENT_HEADER_SIZE
    rows = np.arange(len(data), dtype=np.int64)  # the blocks still walking,
    at = np.zeros(len(data), np.int64)  # where each one is,
    first_word = rows * (C.BLOCK_SIZE // 4)  # and where its words start
    found, stopped, per_step = [], [], []
    while rows.size:
        word = first_word + (np.minimum(at, last_header) >> 2)
        inode, packed = words[word], words[word + _PACKED_WORD]
        rec_len = (packed >> _REC_LEN_SHIFT) & _REC_LEN_MASK
        least = (((packed >> _NAME_LEN_SHIFT) & _NAME_LEN_MASK) + _HEADER_ROUND) & _ROUND_DOWN_4  # min_rec_len
        end = at + rec_len
        # rec_len a multiple of 4 and >= least (itself one): rec_len - least, in uint32, has
        # neither its top bit (negative) nor its low two set. Past last_header no entry fits
        # (least >= 12 > the 8 bytes left), so end <= chain_end covers that too.
        ok = (((rec_len - least) & _NEGATIVE_OR_UNALIGNED) == 0) & (end <= chain_end)
        if not ok.all():
            stopped.append(rows[~ok])
            rows, at, end, inode, packed, first_word = (a[ok] for a in (rows, at, end, inode, packed, first_word))
        found.append((rows, at, inode, packed))
        per_step.append(rows.size)
        going = end < chain_end
        if going.all():
            at = end
        else:
            rows, at, first_word = rows[going], end[going], first_word[going]
    broken = np.zeros(len(data), bool)
    if stopped:
        broken[np.concatenate(stopped)] = True
    if not found:
        return EntryTable(*(np.zeros(0, t) for t in (np.int32, np.uint16, np.uint16, np.uint32, np.uint16,
                                                     np.uint8, np.uint8)), broken)
    row, offset, inode, packed = (np.concatenate(column) for column in zip(*found))
    return EntryTable(row.astype(np.int32), np.repeat(np.arange(len(per_step), dtype=np.uint16), per_step),
                      offset.astype(np.uint16), inode, _unpack(packed, _REC_LEN).astype(np.uint16),
                      _unpack(packed, _NAME_LEN).astype(np.uint8), _unpack(packed, _FILE_TYPE).astype(np.uint8),
                      broken)


def name_hashes(data: np.ndarray, entries: EntryTable, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the entries selected by `which` (indices): a 64-bit hash of each name (equal names,
    equal hashes; the caller compares the bytes of any hashes that collide), and whether the
    name holds a NUL or a '/'. Names of one length in 8-byte words are taken together, a
    word at a time (a name starts on a 4-byte boundary, as entries and their headers do), so
    the work is proportional to the bytes of the names."""
    lengths = entries.name_len[which].astype(np.int64)
    hashes = lengths.astype(np.uint64)
    bad = np.zeros(len(which), bool)
    if not len(which):
        return hashes, bad
    first_word = (entries.row[which].astype(np.int64) * C.BLOCK_SIZE + entries.offset[which]
                  + C.DIRENT_HEADER_SIZE) >> 2
    width = (lengths + 7) >> 3
    words = data.view("<u4").reshape(-1)
    order = np.argsort(width, kind="stable")
    bounds = np.searchsorted(width[order], np.arange(1, _NAME_WORDS_MAX + 2)).tolist()
    for count, start, end in zip(range(1, _NAME_WORDS_MAX + 1), bounds, bounds[1:]):
        for part in range(start, end, _NAME_ROWS):
            rows = order[part:min(end, part + _NAME_ROWS)]
            hashes[rows], bad[rows] = _hash_names(words, first_word[rows], lengths[rows], count)
    return hashes, bad


_NAME_WORDS_MAX = -(-255 // 8)  # name_len is one byte
_NAME_ROWS = 1 << 16  # names read together
assert C.DIRENT_HEADER_SIZE % 4 == 0  # so a name starts on a 4-byte boundary
_ONES = np.uint64(0x0101010101010101)
_HIGHS = np.uint64(0x8080808080808080)
_SLASHES = np.uint64(0x2F2F2F2F2F2F2F2F)
_HIGH_HALF = np.uint64(32)
# The bytes of a word that a name of n more bytes covers (n = 0..8), and what the others are
# set to: 0x01, neither NUL nor '/', the same for equal names.
_KEEP = np.array([(1 << (8 * n)) - 1 for n in range(9)], np.uint64)
_FILL = ~_KEEP & _ONES


def _hash_names(words: np.ndarray, first_word: np.ndarray, lengths: np.ndarray,
                count: int) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, holds NUL or '/') of names of `count` 8-byte words each, read as pairs of
    le32 words from `first_word` on, a column of words at a time (whole arrays: numpy is
    slow over short rows); bytes past a name's end are masked off."""
    hashed = lengths.astype(np.uint64)
    bad = np.zeros(len(lengths), bool)
    last = len(words) - 1
    for column in range(count):
        at = first_word + 2 * column
        word = words[at].astype(np.uint64) | (words[np.minimum(at + 1, last)].astype(np.uint64) << _HIGH_HALF)
        covered = np.clip(lengths - 8 * column, 0, 8)
        word &= _KEEP[covered]
        word |= _FILL[covered]
        slashes = word ^ _SLASHES
        # A byte is zero somewhere in v exactly when (v - 0x01..) & ~v & 0x80.. is not zero.
        bad |= ((((word - _ONES) & ~word) | ((slashes - _ONES) & ~slashes)) & _HIGHS) != 0
        hashed = hashed * _HASH_MULTIPLIER + word
    return hashed, bad


def slack_suspects(data: np.ndarray, entries: EntryTable) -> np.ndarray:
    """Blocks (a bool a row) where the slack of some entry, between the end of its name and
    the end of its rec_len, holds something shaped like an entry header: what the kernel's
    delete leaves behind. A superset of what directory.deleted_in_slack reports (it also
    needs the whole entry and a clean name to fit), so a block not flagged has none.
    Only slack holding something is read, 4 bytes at a time, a bounded number of places
    per round."""
    words = data.view("<u4")
    start = entries.offset.astype(np.int64) + np.where(entries.inode != 0, min_rec_len(entries.name_len), 4)
    last = entries.offset.astype(np.int64) + entries.rec_len - C.DIRENT_HEADER_SIZE
    room = np.flatnonzero(start <= last)
    # A header needs a non-zero inode number: slack that is all zero words (what mkfs and
    # the kernel's inserts leave) is passed over without a look at each place in it.
    nonzero_so_far = np.cumsum(words.reshape(len(data), -1) != 0, axis=1, dtype=np.int32)
    slack_row, first, final = entries.row[room], start[room] >> 2, last[room] >> 2
    before = np.where(first > 0, nonzero_so_far[slack_row, np.maximum(first - 1, 0)], 0)
    room = room[nonzero_so_far[slack_row, final] > before]
    places = ((last[room] - start[room]) >> 2) + 1  # where a header could start, per entry
    suspects = np.zeros(len(data), bool)
    ends = np.cumsum(places)
    done = 0
    while done < len(room):
        # Entries whose slack adds up to about _SLACK_ROUND places, at least one entry.
        upto = max(int(np.searchsorted(ends, (ends[done - 1] if done else 0) + _SLACK_ROUND, side="right")),
                   done + 1)
        which, counts = room[done:upto], places[done:upto]
        run_start = np.cumsum(counts) - counts
        word = np.repeat(start[which] >> 2, counts) + (np.arange(int(counts.sum())) - np.repeat(run_start, counts))
        rows = np.repeat(entries.row[which], counts)
        inode, packed = words[rows, word + _INODE.word], words[rows, word + _PACKED_WORD]
        rec_len, name_len = _unpack(packed, _REC_LEN), _unpack(packed, _NAME_LEN)
        shaped = (inode != 0) & (name_len != 0) & (rec_len % 4 == 0) \
            & (rec_len >= min_rec_len(name_len)) & (_unpack(packed, _FILE_TYPE) <= C.FT_SYMLINK)
        suspects[rows[shaped]] = True
        done = upto
    return suspects
