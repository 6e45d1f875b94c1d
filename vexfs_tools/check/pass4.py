"""Pass 4: reference counts. Inodes no entry names are either deleted by the kernel (a
deleted entry in some directory's slack still names them: reclaimed), empty (cleared), or
lost (connected to /lost+found); then every link count is set to the entries counted."""

from __future__ import annotations

import numpy as np

from ..format import constants as C
from ..volume.inodes import InodeRecord
from .context import Checker
from .pass3 import ensure_lost_found, link_into_lost_found
from .state import CheckState


def run_pass4(checker: Checker, state: CheckState) -> None:
    checker.emit("Pass 4: Checking reference counts")
    volume = checker.volume
    table = state.inodes.table()
    for ino, mode, links, size, refs in _to_look_at(state, table):
        is_dir = mode & C.S_IFMT == C.S_IFDIR
        if ino == C.ROOT_INO:
            expected = 2 + state.subdirs.get(ino, 0)
        elif is_dir:
            if refs == 0:
                continue  # unconnected, and left so in pass 3
            expected = refs + 1 + state.subdirs.get(ino, 0)
        else:
            if refs == 0:
                if not _unattached(checker, state, ino, size):
                    continue
                refs = state.inodes.ref_count(ino)
                if refs == 0:
                    continue
            expected = refs
        if links != expected and checker.fix("LINK_COUNT", ino=ino, found=links, expected=expected):
            inode = volume.read_inode(ino)
            inode.fields.i_links_count = expected
            volume.write_inode(ino, inode.fields)


def _to_look_at(state: CheckState, table: dict[str, np.ndarray]):
    """(ino, mode, links, size, refs) of the inodes whose link count is wrong or that no entry
    names, in table order: the same rule as the loop above, in bulk, so that the loop only
    meets the few that need it. What the loop changes (entries in /lost+found, a new
    /lost+found in the root) only concerns the inode it is on, the root and inodes put since
    pass 1, and those are always looked at."""
    inos, refs = table["ino"], table["refs"]
    is_dir = table["mode"] & C.S_IFMT == C.S_IFDIR
    expected = refs.astype(np.int64)  # a file: its entries; a directory: + '.' + each '..'
    expected[is_dir] += 1
    if state.subdirs:
        parents = np.fromiter(state.subdirs.keys(), np.int64, len(state.subdirs))
        counts = np.fromiter(state.subdirs.values(), np.int64, len(state.subdirs))
        # The table is in inode order but for the few rows put since pass 1, at its end.
        put = np.flatnonzero(table["put"])
        ordered = len(inos) - len(put)
        at = np.minimum(np.searchsorted(inos[:ordered], parents), max(ordered - 1, 0))
        found = (inos[at] == parents) if ordered else np.zeros(len(parents), bool)
        expected[at[found]] += counts[found]
        where_put = {int(inos[row]): row for row in put.tolist()}
        for parent, count in zip(parents[~found].tolist(), counts[~found].tolist()):
            if parent in where_put:
                expected[where_put[parent]] += count
    root = inos == C.ROOT_INO
    expected[root] = 2 + state.subdirs.get(C.ROOT_INO, 0)
    unnamed = (refs == 0) & ~root
    look = (table["links"] != expected) & ~(is_dir & unnamed)
    look |= ~is_dir & unnamed
    look |= root | table["put"]  # what passes 3 and 4 change: always looked at afresh
    for index in np.flatnonzero(look).tolist():
        yield (int(inos[index]), int(table["mode"][index]), int(table["links"][index]),
               int(table["size"][index]), int(refs[index]))


def _unattached(checker: Checker, state: CheckState, ino: int, size: int) -> bool:
    """Handle an inode that no entry names; True when it is still in use afterwards."""
    volume = checker.volume
    inode = volume.read_inode(ino)
    if ino in state.deleted_names:
        parent, name = state.deleted_names[ino]
        if checker.fix("DELETED_INODE", ino=ino, name=name.decode("utf-8", "replace"), parent=parent,
                       blocks=inode.i_blocks):
            _release(checker, state, inode)
        return False
    if inode.is_reg and size == 0 and not inode.i_blocks:  # e2fsck: regular files only
        if checker.fix("UNATTACHED_EMPTY", ino=ino):
            _release(checker, state, inode)
        return False
    if not checker.fix("UNATTACHED", ino=ino):
        return False
    lost_found = ensure_lost_found(checker, state)
    if not lost_found or not link_into_lost_found(
            checker, lost_found, ino, C.MODE_TO_FILE_TYPE.get(inode.i_mode & C.S_IFMT, C.FT_UNKNOWN)):
        return False
    state.inodes.add_ref(ino)
    return True


def _release(checker: Checker, state: CheckState, inode: InodeRecord) -> None:
    volume = checker.volume
    if inode.file_format not in (C.S_IFCHR, C.S_IFBLK):
        volume.free_blocks_of(inode.fields)
    volume.free_inode(inode.ino)
    state.inodes.remove(inode.ino)
