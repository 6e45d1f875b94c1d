"""Every name of an image, once: the one walk the inventories (DFXML, the body file) share.

Live names, deleted names in directory slack (through deleted directories that still hold
data too), and inodes in use that no live or deleted name reaches, named as The Sleuth Kit
names them ("/$OrphanFiles/OrphanFile-N"). Each view turns a Name into its own record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..format import constants as C
from ..volume.inodes import InodeRecord, parse_inode
from ..volume.volume import Volume
from .deleted import DeletedEntry
from .recovery import Recovery, join, live_inodes, walk

ORPHANS = b"/$OrphanFiles"


@dataclass(slots=True)
class Name:
    """One name: a live entry (`deleted` None, `orphan` False), a deleted entry (`deleted`
    its DeletedEntry) or an orphan inode (`orphan` True, parent 0)."""

    path: bytes
    ino: int
    file_type: int
    inode: InodeRecord | None  # as read: None for a bad inode; a deleted entry's may be free
    parent_ino: int
    inside_deleted: bool = False  # a live entry of a directory reached through a deleted one
    recovered: bool = False  # read from a directory recovered from an orphaned block
    deleted: DeletedEntry | None = None
    orphan: bool = False


def orphan_inodes(volume: Volume, named: np.ndarray) -> Iterator[InodeRecord]:
    """Inodes in use (root aside) whose number `named` (bool by inode number) does not mark."""
    for first_ino, records in volume.inode_table(skip_holes=True):
        used = np.flatnonzero(records["i_mode"])
        for index in used.tolist():
            ino = first_ino + index
            if ino == C.ROOT_INO or (ino < named.size and named[ino]):
                continue
            yield parse_inode(ino, records[index].tobytes())


def orphan_path(ino: int) -> bytes:
    return ORPHANS + b"/OrphanFile-" + str(ino).encode()


def every_name(recovery: Recovery, *, orphans: bool = True,
               progress: Callable[[int], None] | None = None,
               plain: Callable[[list], list] | None = None) -> Iterator[Name]:
    """Every live name, every deleted one and, with `orphans`, every inode in use that no
    name reaches; `progress` is told the count so far after each directory. `plain`:
    walk()'s hook (recovery.bulk_inodes), handed on."""
    volume = recovery.volume
    live = live_inodes(recovery)
    named = live.copy()
    count = 0
    for listing in walk(recovery, deleted=True, into_deleted=True, live=live, plain=plain):
        parent = listing.inode.ino
        inside, recovered = listing.inside_deleted, listing.recovered
        base = b"/" if listing.path == b"/" else listing.path.rstrip(b"/") + b"/"  # recovery.join's rule
        for (name, ino, file_type, _, _), inode in listing.entries:
            yield Name(base + name, ino, file_type, inode, parent, inside, recovered)
        count += len(listing.entries)
        for item in listing.deleted:
            if item.ino and item.ino < named.size:
                named[item.ino] = True
            yield Name(join(listing.path, item.name), item.ino, item.file_type, item.inode, parent,
                       recovered=listing.recovered, deleted=item)
            count += 1
        if progress is not None:
            progress(count)
    if orphans:
        for inode in orphan_inodes(volume, named):
            yield Name(orphan_path(inode.ino), inode.ino, C.MODE_TO_FILE_TYPE.get(inode.file_format, C.FT_UNKNOWN),
                       inode, 0, orphan=True)
