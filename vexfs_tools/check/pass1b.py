"""Pass 1B-1D: blocks claimed twice (by two inodes, or twice by one).

As e2fsck does, every claim after the first gets its own copy of the block, so each file
keeps its data. Runs only when pass 1 found duplicates.
"""

from __future__ import annotations

import numpy as np

from ..format import constants as C
from .context import Checker
from .state import CheckState


def run_pass1b(checker: Checker, state: CheckState) -> None:
    if not state.claims.duplicates:
        return
    volume = checker.volume
    checker.emit("Running additional passes to resolve blocks claimed by more than one inode...")
    checker.emit("Pass 1B: Rescanning for multiply-claimed blocks")
    shared = np.array(sorted(state.claims.duplicates), dtype=np.int64)
    owners: dict[int, list[tuple[int, int]]] = {}  # block -> [(ino, logical)] in inode order
    for first_ino, records in volume.inode_table(skip_holes=True):
        formats = records["i_mode"] & C.S_IFMT
        maps_blocks = (records["i_mode"] != 0) & ~np.isin(formats, (C.S_IFCHR, C.S_IFBLK))
        hit = np.isin(records["i_block"].astype(np.int64), shared).any(axis=1)
        if volume.indirect:
            hit |= (records["i_indirect"] | records["i_double_indirect"] | records["i_triple_indirect"]) != 0
        candidates = (np.flatnonzero(maps_blocks & hit) + first_ino).tolist()
        for ino in candidates:
            inode = volume.read_inode(ino)
            for logical, block in volume.block_map(inode).mapping():
                if block in state.claims.duplicates:
                    owners.setdefault(block, []).append((ino, logical))
    checker.emit("Pass 1C: Scanning directories for inodes with multiply-claimed blocks")
    checker.emit("Pass 1D: Reconciling multiply-claimed blocks")
    to_clone: dict[int, list[tuple[int, int]]] = {}  # ino -> [(logical, block)]
    sharers: dict[int, set[int]] = {}
    for block, claims in owners.items():
        for ino, logical in claims[1:]:
            to_clone.setdefault(ino, []).append((logical, block))
        inos = {ino for ino, _ in claims}
        for ino in inos:
            sharers.setdefault(ino, set()).update(inos - {ino})
    for ino in sorted(to_clone):
        others = ", ".join(str(o) for o in sorted(sharers[ino])) or "itself"
        if not checker.fix("DUP_BLOCKS", ino=ino, count=len(to_clone[ino]), others=others):
            continue
        inode = volume.read_inode(ino)
        fields = inode.fields
        for logical, block in to_clone[ino]:
            copy = volume.allocate_block()
            volume.write_data(copy, volume.read_block(block))
            volume.set_block(fields, logical, copy)
        volume.write_inode(ino, fields)
    state.claims.duplicates.clear()
