"""Walking a whole tree from a directory, safely on a hostile image (no directory is
entered twice, so a cycle ends the walk instead of looping)."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import CorruptionError
from ..format import constants as C
from ..volume.inodes import InodeRecord
from ..volume.volume import Volume


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
            except CorruptionError as e:
                volume.problems.append(f"{(path + b'/' + record.name).decode('utf-8', 'replace')}: {e}")
                continue
            child = path + b"/" + record.name
            children.append((child, inode))
        for child, inode in children:
            yield child, inode
        for child, inode in reversed(children):
            if inode.is_dir and inode.ino not in seen:
                seen.add(inode.ino)
                stack.append((child, inode))
