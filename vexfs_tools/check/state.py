"""What the passes learn and hand on: which blocks are claimed, which inodes are in use.

Sized by metadata, not data: one bit per block of the part in use, and a few numbers per inode in use, kept in
numpy arrays sorted by inode number (a million inodes cost about 20 MB).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..volume.bitmap import popcount
from ..volume.volume import Volume


CLAIM_CHUNK = 1 << 20  # bytes of claim bits a chunk holds: 8,388,608 blocks (32 GiB)
# Inodes in use looked up through a table of rows by inode number (4 bytes a number up to the
# highest in use) where that costs at most this many rows an inode in use; else by binary search.
DENSE_ROWS_PER_INODE = 4


class BlockClaims:
    """One bit per block: claimed by metadata or by an inode. Claims of a block already
    claimed are collected as duplicates (pass 1B resolves them). The bits are kept in
    chunks of CLAIM_CHUNK bytes, made when a block in them is first claimed: memory follows
    the part of the device in use, not its size (a near-empty terabyte holds two)."""

    def __init__(self, blocks: int):
        self.blocks = blocks
        self.nbytes = (blocks + 7) // 8
        self._chunks: dict[int, np.ndarray] = {}
        self.duplicates: set[int] = set()

    def _chunk(self, index: int) -> np.ndarray:
        chunk = self._chunks.get(index)
        if chunk is None:
            chunk = self._chunks[index] = np.zeros(CLAIM_CHUNK, np.uint8)
        return chunk

    def claim(self, blocks) -> None:
        blocks = np.sort(np.asarray(blocks, dtype=np.int64))
        if not blocks.size:
            return
        again = blocks[1:] == blocks[:-1]
        self.duplicates.update(blocks[1:][again].tolist())
        blocks = np.concatenate([blocks[:1], blocks[1:][~again]])
        byte, bit = blocks >> 3, (1 << (blocks & 7)).astype(np.uint8)
        index = byte // CLAIM_CHUNK
        cuts = np.flatnonzero(index[1:] != index[:-1]) + 1
        for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(byte)]):
            chunk = self._chunk(int(index[lo]))
            local, bits = byte[lo:hi] - int(index[lo]) * CLAIM_CHUNK, bit[lo:hi]
            self.duplicates.update(blocks[lo:hi][(chunk[local] & bits) != 0].tolist())
            # The bits of each byte ORed together (blocks are sorted, so a byte's are adjacent).
            starts = np.flatnonzero(np.concatenate([[True], local[1:] != local[:-1]]))
            chunk[local[starts]] |= np.bitwise_or.reduceat(bits, starts)

    def claim_range(self, first: int, count: int) -> None:
        """claim() of a run: whole bytes set at once where nothing in them was claimed (an
        inode table of millions of blocks is claimed without an array of its numbers)."""
        end = first + count
        low, high = -(-first // 8), end // 8
        if high - low < 2 or self.packed(low, high - low).any():
            self.claim(np.arange(first, end))
            return
        self.claim(np.arange(first, low * 8))
        self.claim(np.arange(high * 8, end))
        for index in range(low // CLAIM_CHUNK, (high - 1) // CLAIM_CHUNK + 1):
            base = index * CLAIM_CHUNK
            self._chunk(index)[max(low, base) - base:min(high, base + CLAIM_CHUNK) - base] = 0xFF

    def packed(self, start: int, length: int) -> np.ndarray:
        """Claim bytes start .. start+length-1 (8 blocks a byte, little-endian bit order), a
        copy; chunks never claimed in read as zeros."""
        out = np.zeros(max(0, min(length, self.nbytes - start)), np.uint8)
        for index in range(start // CLAIM_CHUNK, (start + len(out) - 1) // CLAIM_CHUNK + 1 if len(out) else 0):
            chunk = self._chunks.get(index)
            if chunk is not None:
                base = index * CLAIM_CHUNK
                lo, hi = max(start, base), min(start + len(out), base + CLAIM_CHUNK)
                out[lo - start:hi - start] = chunk[lo - base:hi - base]
        return out

    def count(self) -> int:
        """Blocks claimed."""
        return sum(popcount(chunk) for chunk in self._chunks.values())

    def is_claimed(self, block: int) -> bool:
        if not 0 <= block < self.blocks:
            return False
        chunk = self._chunks.get((block >> 3) // CLAIM_CHUNK)
        return chunk is not None and bool(chunk[(block >> 3) % CLAIM_CHUNK] >> (block & 7) & 1)

    def change(self, block: int, in_use: bool) -> None:
        """The volume's callback when fsck allocates or frees a block."""
        if not 0 <= block < self.blocks:
            return
        byte = block >> 3
        if in_use:
            self._chunk(byte // CLAIM_CHUNK)[byte % CLAIM_CHUNK] |= np.uint8(1 << (block & 7))
        elif (chunk := self._chunks.get(byte // CLAIM_CHUNK)) is not None:
            chunk[byte % CLAIM_CHUNK] &= np.uint8(~(1 << (block & 7)) & 0xFF)


class InodesInUse:
    """Mode, link count and size of every inode in use, and the entries naming it."""

    _DTYPES = (np.uint32, np.uint16, np.uint16, np.uint64)  # ino, mode, links, size

    def __init__(self):
        self._parts: tuple[list[np.ndarray], ...] = ([], [], [], [])  # pass 1's, column by column
        self.inos = np.zeros(0, np.uint32)
        self.modes = np.zeros(0, np.uint16)
        self.links = np.zeros(0, np.uint16)
        self.sizes = np.zeros(0, np.uint64)
        self.refs = np.zeros(0, np.uint32)
        self._row_of: np.ndarray | None = None  # row of each inode number (-1: not in use)
        self._extra: dict[int, list[int]] = {}  # added after freeze: ino -> [mode, links, size, refs]
        self._gone: set[int] = set()

    def add(self, inos, modes, links, sizes) -> None:
        for column, values, dtype in zip(self._parts, (inos, modes, links, sizes), self._DTYPES):
            column.append(np.asarray(values, dtype))

    def freeze(self) -> None:
        """Pass 1 is done: the columns become arrays in inode order. One column at a time,
        each freed as it goes, so that the peak is the table and one more column."""
        columns = []
        for parts, dtype in zip(self._parts, self._DTYPES):
            columns.append(np.concatenate(parts) if parts else np.zeros(0, dtype))
            parts.clear()
        inos = columns[0]
        if len(inos) > 1 and not (inos[1:] > inos[:-1]).all():
            order = np.argsort(inos, kind="stable")
            columns = [column[order] for column in columns]
        self.inos, self.modes, self.links, self.sizes = columns
        self.refs = np.zeros(len(self.inos), np.uint32)
        self._row_of = None
        top = int(self.inos[-1]) + 1 if len(self.inos) else 0
        if top <= DENSE_ROWS_PER_INODE * len(self.inos):
            self._row_of = np.full(top, -1, np.int32)
            self._row_of[self.inos] = np.arange(len(self.inos), dtype=np.int32)

    def _index(self, ino: int) -> int:
        # A numpy scalar of the array's own type: with a Python int numpy converts the whole
        # array on every call (O(n) a lookup).
        i = int(self.inos.searchsorted(np.uint32(ino)))
        return i if i < len(self.inos) and self.inos[i] == ino and ino not in self._gone else -1

    def lookup(self, inos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mode, row) of each inode in `inos`, in bulk: mode 0 where not in use; row, its
        place in the arrays pass 1 filled (for add_refs), -1 where it has none or changed."""
        inos = np.asarray(inos, np.uint32)
        if not len(self.inos):
            return np.zeros(len(inos), np.uint16), np.full(len(inos), -1, np.int64)
        if self._row_of is not None:
            rows = self._row_of[np.minimum(inos, len(self._row_of) - 1)]
            found = (rows >= 0) & (inos < len(self._row_of))
        else:
            rows = np.minimum(self.inos.searchsorted(inos), len(self.inos) - 1)
            found = self.inos[rows] == inos
        modes = np.where(found, self.modes[rows], 0).astype(np.uint16)
        rows = np.where(found, rows, -1)
        for ino in self._gone | self._extra.keys():  # the few changed after pass 1
            changed = inos == ino
            modes[changed] = self.mode(ino)
            rows[changed] = -1
        return modes, rows

    def modes_of(self, inos: np.ndarray) -> np.ndarray:
        return self.lookup(inos)[0]

    def add_refs(self, rows: np.ndarray) -> None:
        """One more entry naming each inode at `rows` (from lookup; every one >= 0)."""
        if len(rows):
            # Counted over the span the rows cover (a batch's entries name inodes close
            # together), not over the whole table.
            low, high = int(rows.min()), int(rows.max())
            self.refs[low:high + 1] += np.bincount(rows - low, minlength=high - low + 1).astype(np.uint32)

    def mode(self, ino: int) -> int:
        if ino in self._extra:
            return self._extra[ino][0]
        i = self._index(ino)
        return int(self.modes[i]) if i >= 0 else 0

    def __contains__(self, ino: int) -> bool:
        return self.mode(ino) != 0

    def add_ref(self, ino: int, count: int = 1) -> None:
        if ino in self._extra:
            self._extra[ino][3] += count
        else:
            i = self._index(ino)
            if i >= 0:
                self.refs[i] += count

    def ref_count(self, ino: int) -> int:
        if ino in self._extra:
            return self._extra[ino][3]
        i = self._index(ino)
        return int(self.refs[i]) if i >= 0 else 0

    def put(self, ino: int, mode: int, links: int, size: int, refs: int = 0) -> None:
        """An inode fsck itself creates after pass 1 (lost+found, a new root)."""
        self._gone.discard(ino)
        self._extra[ino] = [mode, links, size, refs]

    def remove(self, ino: int) -> None:
        self._extra.pop(ino, None)
        self._gone.add(ino)

    def table(self) -> dict[str, np.ndarray]:
        """Columns ino, mode, links, size, refs of every inode in use: those pass 1 found, in
        inode order, then those put since (sorted), which column put marks. The arrays
        themselves when nothing changed since pass 1 (the common case: no copies)."""
        columns = {"ino": self.inos, "mode": self.modes, "links": self.links, "size": self.sizes,
                   "refs": self.refs}
        if not (self._gone or self._extra):
            return {**columns, "put": np.zeros(len(self.inos), bool)}
        keep = ~np.isin(self.inos, np.array(sorted(self._gone | self._extra.keys()), np.uint32))
        extra = sorted(self._extra.items())  # ino -> [mode, links, size, refs]
        added = {"ino": [ino for ino, _ in extra]}
        for place, name in enumerate(("mode", "links", "size", "refs")):
            added[name] = [values[place] for _, values in extra]
        table = {name: np.concatenate([column[keep], np.array(added[name], column.dtype)])
                 for name, column in columns.items()}
        table["put"] = np.arange(len(table["ino"])) >= int(keep.sum())
        return table


@dataclass
class CheckState:
    """What the passes learn and hand on: claimed blocks, inodes in use, directories and
    who names them, deleted names, lost+found."""
    claims: BlockClaims
    inodes: InodesInUse = field(default_factory=InodesInUse)
    directories: list[int] = field(default_factory=list)
    deleted_names: dict[int, tuple[int, bytes]] = field(default_factory=dict)  # ino -> (dir, name)
    parents: dict[int, int] = field(default_factory=dict)  # directory -> the directory naming it
    dotdot: dict[int, int] = field(default_factory=dict)  # directory -> what its '..' says
    subdirs: dict[int, int] = field(default_factory=dict)  # directory -> subdirectories named in it
    lost_found: int = 0
    # Directories pass 1 took in bulk, unchanged: (inodes, their i_block rows), so that pass 2
    # need not read them again. Emptied when pass 1B changes block maps.
    plain_dir_maps: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    # The VECTOR-flagged inodes pass 1 saw, true while Volume.inode_writes is still
    # vector_inodes_as_of (else, or None: not known, sweep again).
    vector_inodes: list[int] | None = None
    vector_inodes_as_of: int = -1

    @classmethod
    def for_volume(cls, volume: Volume) -> "CheckState":
        g = volume.geometry
        claims = BlockClaims(g.addressable_blocks)
        for first, count, _ in g.metadata_ranges():
            if first < g.addressable_blocks:
                claims.claim_range(first, min(count, g.addressable_blocks - first))
        return cls(claims)
