"""Walking a whole tree from a directory, safely on a hostile image (no directory is
entered twice, so a cycle ends the walk instead of looping): the plain walk of live
entries, and ncheck's search for names over the recovery-aware walk (recovery.walk)."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import CorruptionError
from ..format import constants as C
from ..volume.findings import Code, Finding
from ..volume.inodes import InodeRecord
from ..volume.volume import Volume
from .recovery import Recovery, join, walk


def walk_tree(volume: Volume, top: InodeRecord | None = None,
              prefix: bytes = b"") -> Iterator[tuple[bytes, InodeRecord]]:
    """(path, inode) of every entry below `top` (default: the root), depth first,
    "." and ".." excluded. Entries naming out-of-range inodes are skipped and recorded
    in volume.problems."""
    top = top or volume.read_inode(C.ROOT_INO)
    seen = {top.ino}
    stack = [(prefix, top)]
    while stack:
        path, directory = stack.pop()
        children = []
        for record in volume.iter_dir(directory):
            if record.name in (b".", b".."):
                continue
            try:
                inode = volume.read_inode(record.inode)
            except CorruptionError:
                volume.problems.append(Finding(Code.ENTRY_INODE_OUT_OF_RANGE, inode=directory.ino,
                                               found=record.inode,
                                               detail=(path + b"/" + record.name).decode("utf-8", "replace")))
                continue
            child = path + b"/" + record.name
            children.append((child, inode))
        for child, inode in children:
            yield child, inode
        for child, inode in reversed(children):
            if inode.is_dir and inode.ino not in seen:
                seen.add(inode.ino)
                stack.append((child, inode))


def ncheck(recovery: Recovery, inos: list[int], *, deleted: bool = False) -> Iterator[dict]:
    """{inode, path, deleted, recovered} for every name of each inode in `inos`, streaming
    as the tree is walked (recovered directories included). With `deleted`, names still
    readable in directory slack count too."""
    wanted = set(inos)
    for listing in walk(recovery, deleted=deleted):
        for entry, _ in listing.entries:
            if entry.ino in wanted:
                yield {"inode": entry.ino, "path": join(listing.path, entry.name), "deleted": listing.inside_deleted,
                       "recovered": listing.recovered}
        for item in listing.deleted:
            if item.ino in wanted:
                yield {"inode": item.ino, "path": join(listing.path, item.name), "deleted": True,
                       "recovered": listing.recovered}
