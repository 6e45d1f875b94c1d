"""Per-inode views: a directory entry as ls shows it, and every field of one inode (stat)."""

from __future__ import annotations

import os
import stat as statmod
from dataclasses import dataclass

from ..format import constants as C
from ..volume import checksums
from ..volume.findings import Code, Finding
from ..volume.geometry import KERNEL
from ..volume.inodes import InodeRecord
from ..volume.volume import Volume

SIZED_FORMATS = (C.S_IFREG, C.S_IFDIR, C.S_IFLNK)  # formats whose i_size counts bytes of data


@dataclass(frozen=True)
class Listing:
    """One entry of `vexfs ls`: its name, its inode and what ls -l shows of it."""

    name: str
    inode: int
    file_type: int
    mode: int | None  # None: the entry names an inode out of range
    links: int = 0
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime: int = 0


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
    if volume.layout == KERNEL:
        details["notes"] = ["i_flags is the kernel's size snapshot, not flags"]
    elif inode.i_flags & C.INODE_FLAG_VECTOR:
        details["notes"] = ["vector file"]
    if inode.is_symlink:
        details["target"] = os.fsdecode(volume.read_bytes(inode, 4096))
    return details


def inode_findings(volume: Volume, inode: InodeRecord) -> list[Finding]:
    """What a view that reads `inode` should warn of: a checksum that does not match its
    record, an i_size past what the layout's block map can address (only that much is
    read, so the output is shorter than i_size says)."""
    found = []
    if volume.seed is not None and not volume.inode_checksum_ok(inode):
        found.append(Finding(Code.INODE_CHECKSUM, inode=inode.ino, found=inode.i_checksum,
                             expected=checksums.inode_checksum(volume.seed, inode.ino, inode.raw)))
    if inode.file_format in SIZED_FORMATS and inode.i_size > volume.max_file_size():
        found.append(Finding(Code.SIZE_BEYOND_LAYOUT, inode=inode.ino, found=inode.i_size,
                             expected=volume.max_file_size()))
    return found
