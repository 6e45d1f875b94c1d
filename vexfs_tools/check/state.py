"""What the passes learn and hand on: which blocks are claimed, which inodes are in use.

Sized by metadata, not data: one bit per block, and a few numbers per inode in use, kept in
numpy arrays sorted by inode number (a million inodes cost about 20 MB).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..volume.volume import Volume


class BlockClaims:
    """One bit per block: claimed by metadata or by an inode. Claims of a block already
    claimed are collected as duplicates (pass 1B resolves them)."""

    def __init__(self, blocks: int):
        self.blocks = blocks
        self.bits = np.zeros((blocks + 7) // 8, np.uint8)
        self.duplicates: set[int] = set()

    def claim(self, blocks) -> None:
        blocks = np.asarray(blocks, dtype=np.int64)
        if not blocks.size:
            return
        ordered = np.sort(blocks)
        self.duplicates.update(int(b) for b in ordered[1:][ordered[1:] == ordered[:-1]])
        already = (self.bits[blocks >> 3] >> (blocks & 7)) & 1
        self.duplicates.update(int(b) for b in blocks[already.astype(bool)])
        np.bitwise_or.at(self.bits, blocks >> 3, (1 << (blocks & 7)).astype(np.uint8))

    def claim_range(self, first: int, count: int) -> None:
        self.claim(np.arange(first, first + count))

    def is_claimed(self, block: int) -> bool:
        return 0 <= block < self.blocks and bool(self.bits[block >> 3] >> (block & 7) & 1)

    def change(self, block: int, in_use: bool) -> None:
        """The volume's callback when fsck allocates or frees a block."""
        if not 0 <= block < self.blocks:
            return
        if in_use:
            self.bits[block >> 3] |= np.uint8(1 << (block & 7))
        else:
            self.bits[block >> 3] &= np.uint8(~(1 << (block & 7)) & 0xFF)


class InodesInUse:
    """Mode, link count and size of every inode in use, and the entries naming it."""

    def __init__(self):
        self._parts: list[tuple[np.ndarray, ...]] = []
        self.inos = np.zeros(0, np.uint32)
        self.modes = np.zeros(0, np.uint16)
        self.links = np.zeros(0, np.uint16)
        self.sizes = np.zeros(0, np.uint64)
        self.refs = np.zeros(0, np.uint32)
        self._extra: dict[int, list[int]] = {}  # added after freeze: ino -> [mode, links, size, refs]
        self._gone: set[int] = set()

    def add(self, inos, modes, links, sizes) -> None:
        self._parts.append((np.asarray(inos, np.uint32), np.asarray(modes, np.uint16),
                            np.asarray(links, np.uint16), np.asarray(sizes, np.uint64)))

    def freeze(self) -> None:
        if self._parts:
            inos, modes, links, sizes = (np.concatenate(column) for column in zip(*self._parts))
            order = np.argsort(inos, kind="stable")
            self.inos, self.modes, self.links, self.sizes = inos[order], modes[order], links[order], sizes[order]
        self.refs = np.zeros(len(self.inos), np.uint32)
        self._parts = []

    def _index(self, ino: int) -> int:
        # A numpy scalar of the array's own type: with a Python int numpy converts the whole
        # array on every call (O(n) a lookup).
        i = int(self.inos.searchsorted(np.uint32(ino)))
        return i if i < len(self.inos) and self.inos[i] == ino and ino not in self._gone else -1

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

    def rows(self):
        """(ino, mode, links, size, refs) of every inode in use, in inode order."""
        extra = dict(self._extra)
        for i, ino in enumerate(self.inos.tolist()):
            if ino in self._gone or ino in extra:
                continue
            yield ino, int(self.modes[i]), int(self.links[i]), int(self.sizes[i]), int(self.refs[i])
        for ino in sorted(extra):
            mode, links, size, refs = extra[ino]
            yield ino, mode, links, size, refs


@dataclass
class CheckState:
    claims: BlockClaims
    inodes: InodesInUse = field(default_factory=InodesInUse)
    directories: list[int] = field(default_factory=list)
    deleted_names: dict[int, tuple[int, bytes]] = field(default_factory=dict)  # ino -> (dir, name)
    parents: dict[int, int] = field(default_factory=dict)  # directory -> the directory naming it
    dotdot: dict[int, int] = field(default_factory=dict)  # directory -> what its '..' says
    subdirs: dict[int, int] = field(default_factory=dict)  # directory -> subdirectories named in it
    lost_found: int = 0

    @classmethod
    def for_volume(cls, volume: Volume) -> "CheckState":
        g = volume.geometry
        claims = BlockClaims(g.addressable_blocks)
        for first, count, _ in g.metadata_ranges():
            if first < g.addressable_blocks:
                claims.claim_range(first, min(count, g.addressable_blocks - first))
        return cls(claims)
