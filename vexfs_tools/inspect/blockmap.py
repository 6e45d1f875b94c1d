"""What every block of a device is (dump.vexfs --blocks) and which inodes own a block
(icheck).

Memory stays bounded on any device: ownership is kept as extents (one per run of a file's
blocks, one per direct pointer of small files), which grow with the metadata, not with the
device; the classification streams a window of blocks at a time, reading the bitmap and
(for free blocks) the data of that window only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import VexfsError
from ..format import constants as C
from ..volume.blockmap import block_runs
from ..volume.geometry import EXTENDED
from ..volume.inodes import parse_inode
from ..volume.volume import Volume

FREE, SUPERBLOCK, BACKUP, BITMAP, INODE_TABLE, DIRECTORY, DIR_RECOVERED, FILE, INDIRECT, VECTOR, \
    SYMLINK, FREE_NONZERO, UNOWNED, BEYOND_BITMAP, OUTSIDE = range(15)
KIND_NAMES = {
    FREE: "free", SUPERBLOCK: "superblock", BACKUP: "backup superblock", BITMAP: "block bitmap",
    INODE_TABLE: "inode table", DIRECTORY: "directory", DIR_RECOVERED: "directory (recovered)",
    FILE: "file data", INDIRECT: "indirect", VECTOR: "vector data", SYMLINK: "symlink",
    FREE_NONZERO: "free, not zero", UNOWNED: "allocated, unowned", BEYOND_BITMAP: "beyond the bitmap",
    OUTSIDE: "outside the file system",
}
OWNED_KINDS = (DIRECTORY, DIR_RECOVERED, FILE, INDIRECT, VECTOR, SYMLINK)
WINDOW = 1 << 18  # blocks classified at a time (1 GiB of device)
READ_BLOCKS = 256  # free blocks read 1 MiB at a time to see whether they hold anything
MAX_PROBLEMS = 1000


@dataclass
class Ownership:
    """Extents (first block, count, kind, inode) of every block an in-use inode maps,
    sorted by first block; extents may overlap (a block claimed twice)."""

    starts: np.ndarray
    counts: np.ndarray
    kinds: np.ndarray
    inos: np.ndarray
    problems: list[str]

    def __post_init__(self):
        order = np.argsort(self.starts, kind="stable")
        self.starts, self.counts = self.starts[order], self.counts[order]
        self.kinds, self.inos = self.kinds[order], self.inos[order]
        self.ends = self.starts + self.counts
        # merged intervals, for is_owned
        if self.starts.size:
            reach = np.maximum.accumulate(self.ends)
            new = np.concatenate(([True], self.starts[1:] > reach[:-1]))
            group = np.cumsum(new) - 1
            self._mstarts = self.starts[new]
            self._mends = np.zeros(self._mstarts.size, np.int64)
            np.maximum.at(self._mends, group, self.ends)
        else:
            self._mstarts = self._mends = np.zeros(0, np.int64)

    def is_owned(self, block: int) -> bool:
        i = int(np.searchsorted(self._mstarts, block, side="right")) - 1
        return i >= 0 and block < int(self._mends[i])

    def owners(self, block: int) -> list[tuple[int, int]]:
        """(inode, kind) of every extent holding `block`."""
        upto = int(np.searchsorted(self.starts, block, side="right"))
        hit = np.flatnonzero(self.ends[:upto] > block)
        return [(int(self.inos[i]), int(self.kinds[i])) for i in hit]

    def with_extents(self, starts, counts, kinds, inos) -> Ownership:
        return Ownership(np.concatenate((self.starts, np.asarray(starts, np.int64))),
                         np.concatenate((self.counts, np.asarray(counts, np.int64))),
                         np.concatenate((self.kinds, np.asarray(kinds, np.uint8))),
                         np.concatenate((self.inos, np.asarray(inos, np.uint32))), list(self.problems))


def collect_ownership(volume: Volume, *, progress: Callable[[int, int], None] | None = None) -> Ownership:
    """One sweep of the inode table: direct pointers in bulk (numpy), inodes with indirect
    blocks one by one through their BlockMap (which can not loop). Device files keep a
    device number, not a block, in i_block[0] and own nothing."""
    g = volume.geometry
    starts, counts, kinds, inos = [], [], [], []
    problems: list[str] = []
    slots = g.inode_slots
    for first_ino, records in volume.inode_table(skip_holes=True):
        used = np.flatnonzero(records["i_mode"])
        if progress is not None:
            progress(min(slots, first_ino + len(records) - 1), slots)
        if not used.size:
            continue
        records = records[used]
        numbers = (used + first_ino).astype(np.uint32)
        modes = records["i_mode"]
        formats = modes & C.S_IFMT
        device = (formats == C.S_IFCHR) | (formats == C.S_IFBLK)
        inode_kinds = np.full(used.size, FILE, np.uint8)
        inode_kinds[formats == C.S_IFDIR] = DIRECTORY
        inode_kinds[formats == C.S_IFLNK] = SYMLINK
        if volume.layout == EXTENDED:
            inode_kinds[(formats == C.S_IFREG) & ((records["i_flags"] & C.INODE_FLAG_VECTOR) != 0)] = VECTOR
        tops = np.zeros(used.size, bool)
        if volume.indirect:
            tops = (records["i_indirect"] | records["i_double_indirect"] | records["i_triple_indirect"]) != 0
        bulk = ~device & ~tops
        pointers = records["i_block"][bulk].astype(np.int64)
        valid = volume.data_block_mask(pointers)
        bad = (pointers != 0) & ~valid
        if bad.any() and len(problems) < MAX_PROBLEMS:
            for row, col in zip(*np.nonzero(bad)):
                problems.append(f"inode {int(numbers[bulk][row])}: block {int(pointers[row, col])} at "
                                f"logical {int(col)} is out of range")
                if len(problems) >= MAX_PROBLEMS:
                    break
        rows, _ = np.nonzero(valid)
        starts.append(pointers[valid])
        counts.append(np.ones(rows.size, np.int64))
        kinds.append(inode_kinds[bulk][rows])
        inos.append(numbers[bulk][rows])
        for index in np.flatnonzero(tops & ~device):
            inode = parse_inode(int(numbers[index]), records[index].tobytes())
            block_map = volume.block_map(inode)
            kind = int(inode_kinds[index])
            run_starts, run_counts = [], []
            try:
                for _, physical, count in block_map.runs():
                    run_starts.append(physical)
                    run_counts.append(count)
                indirect = block_map.indirect_blocks()
            except VexfsError as e:
                problems.append(f"inode {inode.ino}: {e}")
                indirect = []
            for problem in block_map.problems[:20]:
                if len(problems) < MAX_PROBLEMS:
                    problems.append(f"inode {inode.ino}: {problem}")
            starts.append(np.array(run_starts + indirect, np.int64))
            counts.append(np.array(run_counts + [1] * len(indirect), np.int64))
            kinds.append(np.array([kind] * len(run_starts) + [INDIRECT] * len(indirect), np.uint8))
            inos.append(np.full(len(run_starts) + len(indirect), inode.ino, np.uint32))
    cat = lambda parts, dtype: np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)
    return Ownership(cat(starts, np.int64), cat(counts, np.int64), cat(kinds, np.uint8), cat(inos, np.uint32),
                     problems)


def with_recovered(ownership: Ownership, orphans: dict[int, int]) -> Ownership:
    """The ownership with orphaned directory blocks (recovery.Recovery.orphans()) added."""
    if not orphans:
        return ownership
    items = sorted(orphans.items(), key=lambda item: item[1])
    return ownership.with_extents([b for _, b in items], [1] * len(items), [DIR_RECOVERED] * len(items),
                                  [ino for ino, _ in items])


# --- the data of a window ----------------------------------------------------------------

def nonzero_blocks(volume: Volume, blocks: np.ndarray) -> np.ndarray:
    """Which of the sorted `blocks` hold a byte that is not zero (read a run at a time)."""
    out = np.zeros(blocks.size, bool)
    if not blocks.size:
        return out
    position = 0
    for start, count in block_runs(blocks):
        for offset, end in volume.device.data_ranges(start * C.BLOCK_SIZE, count * C.BLOCK_SIZE):
            first = offset // C.BLOCK_SIZE
            last = -(-end // C.BLOCK_SIZE)
            for chunk in range(first, last, READ_BLOCKS):
                n = min(READ_BLOCKS, last - chunk)
                data = np.frombuffer(volume.device.read(chunk * C.BLOCK_SIZE, n * C.BLOCK_SIZE), np.uint8)
                out[position + chunk - start: position + chunk - start + n] = data.reshape(n, C.BLOCK_SIZE).any(axis=1)
        position += count
    return out


# --- the block map of the whole device ---------------------------------------------------

@dataclass(frozen=True)
class BlockRun:
    first: int
    count: int
    kind: str
    owner: int | None = None  # the inode, for owned kinds
    shared: bool = False  # also claimed by another inode
    marked_free: bool = False  # owned, but the bitmap says free

    @property
    def last(self) -> int:
        return self.first + self.count - 1

    def as_dict(self) -> dict:
        return {"first": self.first, "last": self.last, "count": self.count, "kind": self.kind,
                "inode": self.owner, "shared": self.shared, "marked_free": self.marked_free}


def classify_blocks(volume: Volume, ownership: Ownership, *, scan_free: bool = True,
                    progress: Callable[[int, int], None] | None = None) -> Iterator[BlockRun]:
    """Runs of blocks of one kind (and one owner) covering the whole device, in order.
    With scan_free, free blocks are read to tell "free" from "free, not zero" (holes of an
    image file are not read)."""
    g = volume.geometry
    total = volume.device.size // C.BLOCK_SIZE
    pending: list | None = None  # [first, count, kind, owner, shared, marked_free]
    one = ownership.counts == 1
    singles = (ownership.starts[one], ownership.kinds[one], ownership.inos[one])  # sorted by start
    multi = np.flatnonzero(~one)  # indices, sorted by start
    next_multi = 0
    active: list[int] = []  # multi-block extents that may reach into the current window
    for wstart in range(0, total, WINDOW):
        n = min(WINDOW, total - wstart)
        wend = wstart + n
        kind = np.full(n, FREE, np.uint8)
        owner = np.zeros(n, np.uint32)
        claims = np.zeros(n, np.uint16)
        index = np.arange(wstart, wend)
        kind[index >= g.addressable_blocks] = BEYOND_BITMAP
        kind[index >= g.blocks_count] = OUTSIDE
        for start, count, what in g.metadata_ranges():
            code = {"superblock": SUPERBLOCK, "block bitmap": BITMAP, "inode table": INODE_TABLE,
                    "backup superblock": BACKUP, "reserved": UNOWNED}[what]
            lo, hi = max(start, wstart), min(start + count, wend)
            if lo < hi:
                kind[lo - wstart:hi - wstart] = code
        lo_i, hi_i = np.searchsorted(singles[0], [wstart, wend])
        if hi_i > lo_i:
            at = singles[0][lo_i:hi_i] - wstart
            np.add.at(claims, at, 1)
            kind[at] = singles[1][lo_i:hi_i]
            owner[at] = singles[2][lo_i:hi_i]
        while next_multi < multi.size and ownership.starts[multi[next_multi]] < wend:
            active.append(int(multi[next_multi]))
            next_multi += 1
        active = [i for i in active if ownership.ends[i] > wstart]
        for i in active:
            lo = max(int(ownership.starts[i]), wstart) - wstart
            hi = min(int(ownership.ends[i]), wend) - wstart
            claims[lo:hi] += 1
            kind[lo:hi] = ownership.kinds[i]
            owner[lo:hi] = ownership.inos[i]
        used = volume.bitmap.bits(wstart, n)
        inside = index < g.addressable_blocks
        marked_free = (claims > 0) & ~used & inside
        unclaimed = (kind == FREE)
        kind[unclaimed & used] = UNOWNED
        if scan_free:
            free = np.flatnonzero(unclaimed & ~used & inside)
            if free.size:
                kind[free[nonzero_blocks(volume, free + wstart)]] = FREE_NONZERO
        shared = claims > 1
        change = np.flatnonzero((kind[1:] != kind[:-1]) | (owner[1:] != owner[:-1]) | (shared[1:] != shared[:-1])
                                | (marked_free[1:] != marked_free[:-1])) + 1
        bounds = np.concatenate(([0], change, [n]))
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            k = int(kind[lo])
            run = [wstart + lo, hi - lo, k, int(owner[lo]) if k in OWNED_KINDS else None,
                   bool(shared[lo]), bool(marked_free[lo])]
            if pending is not None and pending[0] + pending[1] == run[0] and pending[2:] == run[2:]:
                pending[1] += run[1]
                continue
            if pending is not None:
                yield _run(pending)
            pending = run
        if progress is not None:
            progress(wend, total)
    if pending is not None:
        yield _run(pending)


def _run(p: list) -> BlockRun:
    return BlockRun(p[0], p[1], KIND_NAMES[p[2]], p[3], p[4], p[5])


# --- icheck ------------------------------------------------------------------------------

def icheck(volume: Volume, ownership: Ownership, blocks: list[int]) -> list[dict]:
    """For each block: what it is and which inodes own it (several when claimed twice)."""
    total = volume.device.size // C.BLOCK_SIZE
    out = []
    for block in blocks:
        if not 0 <= block < total:
            out.append({"block": block, "kind": "past the end of the device", "inodes": []})
            continue
        owners = ownership.owners(block)
        if owners:
            out.append({"block": block, "kind": KIND_NAMES[owners[0][1]],
                        "inodes": [ino for ino, _ in owners],
                        "kinds": [KIND_NAMES[k] for _, k in owners]})
            continue
        run = next(classify_window(volume, block))
        out.append({"block": block, "kind": run.kind, "inodes": []})
    return out


def classify_window(volume: Volume, block: int) -> Iterator[BlockRun]:
    """The kind of one block no inode owns, through the same rules as classify_blocks."""
    g = volume.geometry
    for start, count, what in g.metadata_ranges():
        if start <= block < start + count:
            yield BlockRun(block, 1, what)
            return
    if block >= g.blocks_count:
        yield BlockRun(block, 1, KIND_NAMES[OUTSIDE])
        return
    if block >= g.addressable_blocks:
        yield BlockRun(block, 1, KIND_NAMES[BEYOND_BITMAP])
        return
    if volume.bitmap.bits(block, 1)[0]:
        yield BlockRun(block, 1, KIND_NAMES[UNOWNED])
    elif nonzero_blocks(volume, np.array([block]))[0]:
        yield BlockRun(block, 1, KIND_NAMES[FREE_NONZERO])
    else:
        yield BlockRun(block, 1, KIND_NAMES[FREE])

