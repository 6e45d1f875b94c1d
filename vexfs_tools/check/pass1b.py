"""Pass 1B-1D: blocks claimed twice (by two inodes, or twice by one).

As e2fsck does, every claim after the first gets its own copy of the block, so each file
keeps its data. Runs only when pass 1 found duplicates.
"""

from __future__ import annotations

import numpy as np

from ..format import constants as C
from .context import Checker
from .pass1 import rebuild_map
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
            block_map = volume.block_map(inode)
            for block in block_map.indirect_blocks():
                if block in state.claims.duplicates:
                    owners.setdefault(block, []).append((ino, None))
            for logical, block in block_map.mapping():
                if block in state.claims.duplicates:
                    owners.setdefault(block, []).append((ino, logical))
    checker.emit("Pass 1C: Scanning directories for inodes with multiply-claimed blocks")
    checker.emit("Pass 1D: Reconciling multiply-claimed blocks")
    to_clone: dict[int, list[tuple[int, int]]] = {}  # ino -> [(logical, block)]
    own_map: set[int] = set()  # inodes whose map runs through another inode's indirect block
    shared: dict[int, int] = {}  # ino -> blocks it must give up
    sharers: dict[int, set[int]] = {}
    for block, claims in owners.items():
        # A claim as an indirect block (logical None) keeps the block: a file's data
        # pointing into an indirect block (its own, or another's) gets the copy.
        claims.sort(key=lambda claim: claim[1] is not None)
        for ino, logical in claims[1:]:
            to_clone.setdefault(ino, [])
            shared[ino] = shared.get(ino, 0) + 1
            if logical is None:
                own_map.add(ino)
            else:
                to_clone[ino].append((logical, block))
        inos = {ino for ino, _ in claims}
        for ino in inos:
            sharers.setdefault(ino, set()).update(inos - {ino})
    for ino in sorted(to_clone):
        others = ", ".join(str(o) for o in sorted(sharers[ino])) or "itself"
        if not checker.fix("DUP_BLOCKS", ino=ino, count=shared[ino], others=others):
            continue
        inode = volume.read_inode(ino)
        fields = inode.fields
        if ino in own_map:
            # Indirect blocks of its own first (same mapping), so that the copies below are
            # not written into the other inode's map.
            block_map = volume.block_map(inode)
            mapping = list(block_map.mapping())
            rebuild_map(volume, fields, mapping,
                         [b for b in block_map.indirect_blocks() if b not in state.claims.duplicates])
        for logical, block in to_clone[ino]:
            copy = volume.allocate_block()
            volume.write_data(copy, volume.read_block(block))
            volume.set_block(fields, logical, copy)
        volume.write_inode(ino, fields)
    state.claims.duplicates.clear()
    state.plain_dir_maps.clear()  # pass 2 reads directory maps afresh
