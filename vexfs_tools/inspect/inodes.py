"""Every inode slot that holds something (dump.vexfs --inodes): the inodes in use, named or
not, and the freed slots whose old contents are still there.

Status:
  in use     i_mode set, named by a live entry
  unlinked   i_mode set, named by no live entry: deleted by the kernel (its rmdir/unlink
             leaves the inode as it was), or leaked by a failed create
  freed      i_mode 0 but the record is not all zero: freed by our tools (they keep the
             rest of the record for forensic tools)
"""

from __future__ import annotations

import stat as statmod
from collections.abc import Callable, Iterator

import numpy as np

from ..errors import VexfsError
from ..format import constants as C
from ..volume import checksums
from ..volume.inodes import parse_inode
from .recovery import Recovery, live_inodes

MAX_RUNS = 64  # block runs listed per inode; more are counted, not listed


def inode_runs(volume, inode) -> tuple[list[list[int]], int, bool, list[str]]:
    """([first, count] runs, indirect block count, truncated?, problems) of an inode's map,
    every pointer it holds (past i_size too: the kernel's truncate keeps them)."""
    if inode.file_format in (C.S_IFCHR, C.S_IFBLK):
        return [], 0, False, []
    block_map = volume.block_map(inode)
    runs: list[list[int]] = []
    truncated = False
    try:
        for _, physical, count in block_map.runs():
            if len(runs) >= MAX_RUNS:
                truncated = True
                break
            runs.append([physical, count])
        indirect = len(block_map.indirect_blocks())
    except VexfsError as e:
        return runs, 0, truncated, [str(e)]
    return runs, indirect, truncated, [str(problem) for problem in block_map.problems[:10]]


def inode_slots(recovery: Recovery, *, progress: Callable[[int, int], None] | None = None) -> Iterator[dict]:
    """One dict per slot that is in use or not all zero, in inode order."""
    volume = recovery.volume
    live = live_inodes(recovery)
    slots = volume.geometry.inode_slots
    orphans = recovery.orphans()
    for first_ino, records in volume.inode_table(skip_holes=True):
        raw = records.view(np.uint8).reshape(-1, C.INODE_SIZE)
        for index in np.flatnonzero(raw.any(axis=1)).tolist():
            ino = first_ino + index
            inode = parse_inode(ino, raw[index].tobytes())
            if inode.in_use:
                status = "in use" if live[ino] else "unlinked"
            else:
                status = "freed"
            runs, indirect, truncated, problems = inode_runs(volume, inode)
            item = {
                "inode": ino, "status": status,
                "mode": statmod.filemode(inode.i_mode) if inode.i_mode else "----------",
                "mode_octal": f"{inode.i_mode:06o}", "links": inode.i_links_count,
                "uid": inode.i_uid, "gid": inode.i_gid, "size": inode.i_size,
                "atime": inode.i_atime, "ctime": inode.i_ctime, "mtime": inode.i_mtime,
                "i_blocks": inode.i_blocks, "flags": inode.i_flags,
                "blocks": runs, "indirect_blocks": indirect, "blocks_truncated": truncated,
                "recovered_block": orphans.get(ino) if inode.is_dir else None,
                "checksum_ok": (checksums.inode_checksum_ok(volume.seed, ino, inode.raw)
                                if volume.seed is not None else None),
                "problems": problems,
            }
            if inode.file_format in (C.S_IFCHR, C.S_IFBLK):
                item["device"] = inode.i_block[0]
            yield item
        if progress is not None:
            progress(min(slots, first_ino + len(records) - 1), slots)
