"""Per-inode views: directory listings and every field of one inode (ls, stat)."""

from __future__ import annotations

import os
import stat as statmod
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import CorruptionError
from ..format import constants as C
from ..volume.inodes import InodeRecord
from ..volume.volume import Volume


def find(volume: Volume, spec: str) -> InodeRecord:
    """A path ('/a/b') or an inode number ('12' or '<12>', as debugfs writes it)."""
    text = spec.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    if text.isdigit():
        return volume.read_inode(int(text))
    return volume.resolve(spec)


@dataclass(frozen=True)
class Listing:
    name: str
    inode: int
    file_type: int
    mode: int | None  # None: the entry names an inode out of range
    links: int = 0
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime: int = 0


def list_directory(volume: Volume, directory: InodeRecord) -> Iterator[Listing]:
    for record in volume.iter_dir(directory):
        name = os.fsdecode(record.name)
        try:
            inode = volume.read_inode(record.inode)
        except CorruptionError:
            yield Listing(name, record.inode, record.file_type, None)
            continue
        yield Listing(name, record.inode, record.file_type, inode.i_mode, inode.i_links_count,
                      inode.i_uid, inode.i_gid, inode.i_size, inode.i_mtime)


def inode_details(volume: Volume, inode: InodeRecord) -> dict:
    """Every field, the decoded block map and the checksum status."""
    fields = {name: value for name, value in inode.fields.items() if not name.startswith("_")}
    fields["i_block"] = list(fields["i_block"])
    block_map = volume.block_map(inode)
    special = statmod.S_ISCHR(inode.i_mode) or statmod.S_ISBLK(inode.i_mode)
    runs = [] if special else [
        {"logical": logical, "physical": physical, "count": count}
        for logical, physical, count in block_map.runs()]
    indirect = [] if special else block_map.indirect_blocks()
    details = {
        "inode": inode.ino,
        "type": statmod.filemode(inode.i_mode) if inode.i_mode else "(free)",
        "fields": fields,
        "blocks": runs,
        "indirect_blocks": indirect,
        "mapped_blocks": sum(r["count"] for r in runs),
        "checksum_ok": volume.inode_checksum_ok(inode) if volume.seed is not None else None,
        "problems": [str(problem) for problem in block_map.problems],
    }
    if volume.layout == "kernel":
        details["notes"] = ["i_flags is the kernel's size snapshot, not flags"]
    elif inode.i_flags & C.INODE_FLAG_VECTOR:
        details["notes"] = ["vector file"]
    if inode.is_symlink:
        details["target"] = os.fsdecode(volume.read_bytes(inode, 4096))
    return details
