"""Block maps: logical block of a file -> physical block.

Kernel layout: 12 direct pointers only. Extended layout with indirect_blocks: then a single,
a double and a triple indirect block (i_indirect, i_double_indirect, i_triple_indirect),
each indirect block holding 1023 pointers and a crc32c tail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from ..errors import LimitError
from ..format import constants as C
from ..format.dtypes import INDIRECT_DTYPE
from .findings import Code, Finding

P = C.POINTERS_PER_INDIRECT
TOP_FIELDS = ("i_indirect", "i_double_indirect", "i_triple_indirect")
# First logical block reached through each top-level pointer, and how many it spans.
LEVEL_START = (C.DIRECT_BLOCKS, C.DIRECT_BLOCKS + P, C.DIRECT_BLOCKS + P + P * P)
LEVEL_SPAN = (P, P * P, P * P * P)
MAX_LOGICAL_EXTENDED = C.DIRECT_BLOCKS + P + P * P + P * P * P


def indirect_pointers(data: bytes) -> np.ndarray:
    return np.frombuffer(data, INDIRECT_DTYPE, count=1)["pointers"][0]


def build_indirect(pointers) -> bytearray:
    record = np.zeros(1, INDIRECT_DTYPE)
    record["pointers"][0][:len(pointers)] = pointers
    return bytearray(record.tobytes())


class BlockMap:
    """Walks one inode's map. `read_block(n)` reads a metadata block; `valid(n)` says whether a
    block number may be followed (Volume.is_data_block). `ino`, when known, is set in the
    findings."""

    def __init__(self, inode, *, indirect: bool, read_block: Callable[[int], bytes],
                 valid: Callable[[int], bool], ino: int | None = None):
        self.inode = inode
        self.ino = ino
        self.indirect = indirect
        self.read_block = read_block
        self.valid = valid
        self.problems: list[Finding] = []

    def _note(self, code: Code, block: int, logical: int | None = None) -> None:
        self.problems.append(Finding(code, inode=self.ino, block=block, index=logical))

    @property
    def max_logical(self) -> int:
        return MAX_LOGICAL_EXTENDED if self.indirect else C.DIRECT_BLOCKS

    def mapping(self, limit: int | None = None) -> Iterator[tuple[int, int]]:
        """(logical, physical) of every mapped block below `limit`, in logical order.
        Bad pointers are noted in self.problems (findings) and skipped; an indirect block
        seen twice is not followed again, so a hostile map can not loop."""
        limit = self.max_logical if limit is None else min(limit, self.max_logical)
        for logical, physical in enumerate(self.inode.i_block):
            if logical >= limit:
                return
            if physical:
                if self.valid(physical):
                    yield logical, physical
                else:
                    self._note(Code.BLOCK_OUT_OF_RANGE, physical, logical)
        if not self.indirect:
            return
        seen: set[int] = set()
        for level, field in enumerate(TOP_FIELDS):
            top = getattr(self.inode, field)
            if top and LEVEL_START[level] < limit:
                yield from self._walk(top, level, LEVEL_START[level], limit, seen)

    def _walk(self, block: int, level: int, first: int, limit: int, seen: set[int]):
        if not self.valid(block):
            self._note(Code.INDIRECT_OUT_OF_RANGE, block)
            return
        if block in seen:
            self._note(Code.INDIRECT_TWICE, block)
            return
        seen.add(block)
        pointers = indirect_pointers(self.read_block(block))
        span = LEVEL_SPAN[level] // P
        for index in np.flatnonzero(pointers):
            start = first + int(index) * span
            if start >= limit:
                break
            child = int(pointers[index])
            if level == 0:
                if self.valid(child):
                    yield start, child
                else:
                    self._note(Code.BLOCK_OUT_OF_RANGE, child, start)
            else:
                yield from self._walk(child, level - 1, start, limit, seen)

    def indirect_blocks(self) -> list[int]:
        """Every indirect block of the map (metadata, counted in i_blocks)."""
        found: list[int] = []
        if not self.indirect:
            return found
        seen: set[int] = set()
        for level, field in enumerate(TOP_FIELDS):
            top = getattr(self.inode, field)
            if top:
                self._collect(top, level, seen, found)
        return found

    def _collect(self, block: int, level: int, seen: set[int], found: list[int]) -> None:
        if not self.valid(block) or block in seen:
            return
        seen.add(block)
        found.append(block)
        if level:
            for child in indirect_pointers(self.read_block(block)):
                if child:
                    self._collect(int(child), level - 1, seen, found)

    def pointer_array(self) -> np.ndarray:
        """Every non-zero data pointer of the map, in logical order, not checked (the
        caller masks them, Volume.data_block_mask): a table of pointers at a time, for
        freeing a big file without a Python step per block. Indirect blocks are followed
        as mapping() follows them (valid ones, each once)."""
        parts = [np.asarray([b for b in self.inode.i_block[:C.DIRECT_BLOCKS] if b], np.uint32)]
        if self.indirect:
            seen: set[int] = set()
            for level, field in enumerate(TOP_FIELDS):
                top = getattr(self.inode, field)
                if top:
                    self._leaf_pointers(top, level, seen, parts)
        return np.concatenate(parts)

    def _leaf_pointers(self, block: int, level: int, seen: set[int], parts: list[np.ndarray]) -> None:
        if not self.valid(block) or block in seen:
            return
        seen.add(block)
        pointers = indirect_pointers(self.read_block(block))
        if level == 0:
            parts.append(pointers[pointers != 0].astype(np.uint32))
            return
        for child in pointers[pointers != 0].tolist():
            self._leaf_pointers(child, level - 1, seen, parts)

    def runs(self, limit: int | None = None) -> Iterator[tuple[int, int, int]]:
        """(logical, physical, count) runs of consecutive blocks."""
        run = None
        for logical, physical in self.mapping(limit):
            if run and logical == run[0] + run[2] and physical == run[1] + run[2]:
                run[2] += 1
                continue
            if run:
                yield tuple(run)
            run = [logical, physical, 1]
        if run:
            yield tuple(run)


def block_runs(blocks: np.ndarray) -> list[tuple[int, int]]:
    """Sorted block numbers as (first, count) runs of consecutive ones: what a caller reads,
    writes or frees with one call each."""
    if not len(blocks):
        return []
    starts = np.flatnonzero(np.diff(blocks) != 1) + 1
    firsts = np.concatenate([[0], starts])
    counts = np.diff(np.concatenate([firsts, [len(blocks)]]))
    return list(zip(np.asarray(blocks)[firsts].tolist(), counts.tolist()))


def indirect_count(count: int) -> int:
    """How many indirect blocks a file of `count` data blocks needs."""
    single = min(max(count - LEVEL_START[0], 0), LEVEL_SPAN[0])
    double = min(max(count - LEVEL_START[1], 0), LEVEL_SPAN[1])
    triple = min(max(count - LEVEL_START[2], 0), LEVEL_SPAN[2])
    total = 1 if single else 0
    if double:
        total += 1 + -(-double // P)
    if triple:
        total += 1 + -(-triple // (P * P)) + -(-triple // P)
    return total


def physical_range(runs: list[tuple[int, int]], logical: int, count: int) -> np.ndarray:
    """Physical blocks for logical blocks logical..logical+count-1 of a file laid out as
    `runs` of (first physical block, length), in logical order."""
    out = np.empty(count, np.uint32)
    filled = 0
    base = 0
    for first, length in runs:
        if filled < count and logical + filled < base + length:
            start = logical + filled - base
            n = min(length - start, count - filled)
            out[filled:filled + n] = np.arange(first + start, first + start + n, dtype=np.uint32)
            filled += n
        base += length
    if filled != count:
        raise ValueError("runs are shorter than the blocks asked for")
    return out


def plan_map(runs: list[tuple[int, int]], next_meta: Callable[[], int],
             emit: Callable[[int, np.ndarray], None]):
    """Build the block map of a file whose data lies in `runs` of (first block, length).

    Returns (12 direct pointers, (ind, dind, tind)); each indirect block is handed to
    `emit(block number, pointers)` as soon as it is complete, so memory stays bounded by the
    tree's depth. `next_meta()` hands out a block for each indirect block. mkfs -d uses this.
    """
    count = sum(length for _, length in runs)
    if count > MAX_LOGICAL_EXTENDED:
        raise LimitError(f"{count} blocks is more than a block map can hold")
    direct = [0] * C.DIRECT_BLOCKS
    head = min(count, C.DIRECT_BLOCKS)
    direct[:head] = [int(b) for b in physical_range(runs, 0, head)]

    def build(level: int, logical: int, remaining: int) -> int:
        block = next_meta()
        span = LEVEL_SPAN[level] // P
        n = -(-remaining // span)
        if level == 0:
            pointers = physical_range(runs, logical, n)
        else:
            pointers = np.array([build(level - 1, logical + i * span, min(span, remaining - i * span))
                                 for i in range(n)], dtype=np.uint32)
        emit(block, pointers)
        return block

    tops = [0, 0, 0]
    for level in range(3):
        start = LEVEL_START[level]
        if count > start:
            tops[level] = build(level, start, min(count - start, LEVEL_SPAN[level]))
    return direct, tuple(tops)



def bulk_mapping(block_map: BlockMap, limit: int | None,
                 mask: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """(logical, physical) int64 arrays of block_map.mapping(limit), each indirect block's
    pointers checked at once by `mask` (Volume.data_block_mask) instead of one by one:
    large files' maps walk in numpy. None when a pointer is bad or an indirect block
    repeats: the one-by-one walk then gives the findings."""
    limit = block_map.max_logical if limit is None else min(limit, block_map.max_logical)
    logical_parts: list[np.ndarray] = []
    physical_parts: list[np.ndarray] = []
    seen: set[int] = set()

    def walk(block: int, level: int, first: int) -> bool:
        if block in seen or not mask(np.array([block], np.uint32))[0]:
            return False
        seen.add(block)
        pointers = indirect_pointers(block_map.read_block(block))
        span = LEVEL_SPAN[level] // P
        index = np.flatnonzero(pointers)
        index = index[first + index * span < limit]
        children = pointers[index]
        if level == 0:
            if not mask(children).all():
                return False
            logical_parts.append(first + index.astype(np.int64))
            physical_parts.append(children.astype(np.int64))
            return True
        return all(walk(int(child), level - 1, first + int(i) * span) for i, child in zip(index, children))

    direct = np.asarray(block_map.inode.i_block[:min(limit, C.DIRECT_BLOCKS)], dtype=np.uint32)
    index = np.flatnonzero(direct)
    if not mask(direct[index]).all():
        return None
    logical_parts.append(index.astype(np.int64))
    physical_parts.append(direct[index].astype(np.int64))
    if block_map.indirect:
        for level, field in enumerate(TOP_FIELDS):
            top = getattr(block_map.inode, field)
            if top and LEVEL_START[level] < limit and not walk(top, level, LEVEL_START[level]):
                return None
    return np.concatenate(logical_parts), np.concatenate(physical_parts)


def bulk_runs(block_map: BlockMap, limit: int | None,
              mask: Callable[[np.ndarray], np.ndarray]) -> list[tuple[int, int, int]]:
    """block_map.runs(limit) as a list, found by bulk_mapping (the one-by-one walk where it
    gives None, so its findings are exactly those of `runs`)."""
    found = bulk_mapping(block_map, limit, mask)
    if found is None:
        return list(block_map.runs(limit))
    logical, physical = found
    if not len(logical):
        return []
    breaks = np.flatnonzero((np.diff(logical) != 1) | (np.diff(physical) != 1)) + 1
    starts = np.concatenate([[0], breaks])
    counts = np.diff(np.concatenate([starts, [len(logical)]]))
    return [(int(a), int(b), int(c)) for a, b, c in zip(logical[starts], physical[starts], counts)]


def bulk_mapping_arrays(block_map: BlockMap, mask: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """block_map.mapping() as (logical, physical) int64 arrays, found by bulk_mapping where
    it can be (fsck's pass 1 on large files: a 5 GB vector file maps 1.2M blocks, no Python
    object each), else by the one-by-one walk (which notes the findings)."""
    found = bulk_mapping(block_map, None, mask)
    if found is not None:
        return found
    pairs = np.array(list(block_map.mapping()), np.int64).reshape(-1, 2)
    return pairs[:, 0].copy(), pairs[:, 1].copy()
