"""Pass 2 in bulk: every check of pass 2, over a batch of directories at once in numpy.

A directory in which nothing at all is wrong is settled here: its entries are counted (links
for pass 4, parents and '..' for pass 3) without a line of Python per entry. Any directory in
which something looks wrong, or might (a possible deleted entry in the slack, two hashes
that collide), is left to pass2._check_directory, which finds, reports and repairs it entry
by entry, in directory order, exactly as if no bulk pass had run.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..format import constants as C
from ..format.directory import DirTail
from ..format.offsets import DIR_TAIL_CHECKSUM
from ..volume.geometry import KERNEL
from ..volume import checksums
from ..volume.dirscan import name_hashes, slack_suspects, walk_blocks
from ..volume.volume import Volume
from .state import CheckState

BATCH_BLOCKS = 1024  # directory blocks read and scanned together: 4 MiB (fewer chain steps)
MAX_BULK_BLOCKS = 16384  # a directory larger than 64 MiB goes entry by entry
_DIR_MIX = np.uint64(0x9E3779B97F4A7C15)  # spreads directory numbers over the hash's bits
_FILE_TYPE_OF_FORMAT = np.zeros(16, np.uint8)
for _format, _file_type in C.MODE_TO_FILE_TYPE.items():
    _FILE_TYPE_OF_FORMAT[_format >> 12] = _file_type
# The checksum tail of an extended-layout directory block, all but the checksum itself.
_TAIL_HEAD = np.frombuffer(DirTail.build({"checksum": 0})[:DIR_TAIL_CHECKSUM.offset], np.uint8)
_TAIL_START = C.BLOCK_SIZE - C.DIR_TAIL_SIZE


def directory_blocks(volume: Volume, state: CheckState, dirs: np.ndarray) -> tuple[np.ndarray, ...]:
    """(directory, logical, block) of every block of `dirs`, in directory then logical
    order. Directories pass 1 took in bulk come from their i_block rows; others are read."""
    parts = []
    known = np.zeros(len(dirs), bool)
    if state.plain_dir_maps:
        inos = np.concatenate([inos for inos, _ in state.plain_dir_maps])
        maps = np.concatenate([maps for _, maps in state.plain_dir_maps])
        order = np.argsort(inos)
        at = order[np.minimum(np.searchsorted(inos, dirs, sorter=order), len(inos) - 1)] if len(inos) else \
            np.zeros(len(dirs), np.int64)
        known = inos[at] == dirs if len(inos) else known
        rows = maps[at[known]].astype(np.int64)
        which, logical = np.nonzero(rows)
        parts.append((dirs[known][which], logical, rows[which, logical]))
    for ino in dirs[~known].tolist():
        pairs = volume.dir_blocks(volume.read_inode(ino))
        parts.append((np.full(len(pairs), ino), np.array([l for l, _ in pairs], np.int64),
                      np.array([b for _, b in pairs], np.int64)))
    dir_of, logical, block = (np.concatenate(column).astype(np.int64) for column in zip(*parts)) if parts \
        else (np.zeros(0, np.int64),) * 3
    order = np.argsort(dir_of, kind="stable")
    return dir_of[order], logical[order], block[order]


def batches(dirs: np.ndarray, dir_of_block: np.ndarray) -> Iterator[tuple[np.ndarray, slice]]:
    """Whole directories at a time, up to BATCH_BLOCKS blocks (a larger directory alone):
    (directories, the slice of their blocks)."""
    first_block = np.searchsorted(dir_of_block, dirs, side="left")
    blocks_so_far = np.searchsorted(dir_of_block, dirs, side="right")  # through each directory
    start = 0
    while start < len(dirs):
        before = int(first_block[start])
        end = max(int(np.searchsorted(blocks_so_far, before + BATCH_BLOCKS, side="right")), start + 1)
        yield dirs[start:end], slice(before, int(blocks_so_far[end - 1]))
        start = end


def settle_clean(volume: Volume, state: CheckState, dirs: np.ndarray, dir_of: np.ndarray,
                 logical: np.ndarray, blocks: np.ndarray) -> set[int]:
    """Check `dirs` (whose blocks are the rest) in bulk; count the entries of every one found
    clean into `state`, and return the others, for pass 2 to look at entry by entry."""
    if not len(blocks) or len(blocks) > MAX_BULK_BLOCKS:
        return set(dirs.tolist())
    data = volume.read_blocks(blocks)
    entries = walk_blocks(data, chain_end=volume.chain_end)
    flagged = [dir_of[_suspect_blocks(volume, data, entries, blocks)]]

    row, step = entries.row, entries.step
    entry_dir = dir_of[row]
    flat = data.reshape(-1)
    name_at = row.astype(np.int64) * C.BLOCK_SIZE + entries.offset + C.DIRENT_HEADER_SIZE
    first, second = flat[name_at], flat[np.minimum(name_at + 1, flat.size - 1)]
    dot_name = (entries.name_len == 1) & (first == ord("."))
    dotdot_name = (entries.name_len == 2) & (first == ord(".")) & (second == ord("."))
    head = logical[row] == 0
    dot_ok = head & (step == 0) & dot_name & (entries.inode == entry_dir)
    dotdot_ok = head & (step == 1) & dotdot_name & (entries.inode != 0)
    # isin, not intersect1d/setdiff1d: np.unique without counts imports numpy.ma (a tenth
    # of a second of start-up on every check).
    flagged.append(dirs[~(np.isin(dirs, entry_dir[dot_ok]) & np.isin(dirs, entry_dir[dotdot_ok]))])

    # Every live entry but the first block's '.' and '..'.
    live = np.flatnonzero((entries.inode != 0) & ~(head & (step < 2) & (dot_name | dotdot_name)))
    child = entries.inode[live].astype(np.int64)
    live_dir = entry_dir[live]
    in_range = (child >= 1) & (child <= volume.geometry.inode_slots)
    modes = np.zeros(len(live), np.uint16)
    rows = np.full(len(live), -1, np.int64)
    modes[in_range], rows[in_range] = state.inodes.lookup(child[in_range])
    hashes, bad_chars = name_hashes(data, entries, live)
    wrong = (modes == 0) | bad_chars | dot_name[live] | dotdot_name[live] \
        | (entries.file_type[live] != _FILE_TYPE_OF_FORMAT[modes >> 12])
    flagged.append(live_dir[wrong])
    flagged.append(_with_duplicate_names(live_dir, hashes, entries.name_len[live]))
    is_subdir = (modes & C.S_IFMT) == C.S_IFDIR
    subdir, subdir_parent = child[is_subdir], live_dir[is_subdir]
    flagged.append(_named_twice(subdir, subdir_parent, state.parents))

    flagged_dirs = np.concatenate(flagged)
    clean = ~np.isin(live_dir, flagged_dirs)
    state.inodes.add_refs(rows[clean])
    clean_subdir = ~np.isin(subdir_parent, flagged_dirs)
    state.parents.update(zip(subdir[clean_subdir].tolist(), subdir_parent[clean_subdir].tolist()))
    parents, counts = np.unique(subdir_parent[clean_subdir], return_counts=True)
    for parent, count in zip(parents.tolist(), counts.tolist()):
        state.subdirs[parent] = state.subdirs.get(parent, 0) + count
    named = dotdot_ok & ~np.isin(entry_dir, flagged_dirs)
    state.dotdot.update(zip(entry_dir[named].tolist(), entries.inode[named].tolist()))
    return set(flagged_dirs.tolist())


def _suspect_blocks(volume: Volume, data: np.ndarray, entries, blocks: np.ndarray) -> np.ndarray:
    """Blocks (a bool each) whose chain breaks, whose slack may hold a deleted entry, or
    whose checksum tail is missing or wrong."""
    suspect = entries.broken | slack_suspects(data, entries)
    if volume.layout != KERNEL:
        tail = data[:, _TAIL_START:_TAIL_START + DIR_TAIL_CHECKSUM.offset]
        suspect |= (tail != _TAIL_HEAD).any(axis=1)
        if volume.seed is not None:
            suspect[checksums.failing_records(volume.seed, blocks, data)] = True
    return suspect


def _with_duplicate_names(dirs: np.ndarray, hashes: np.ndarray, name_lens: np.ndarray) -> np.ndarray:
    """Directories where two entries' names hash alike, directory and length mixed in
    (most likely the same name; else pass 2 compares the names themselves)."""
    keys = hashes ^ (dirs.astype(np.uint64) * _DIR_MIX) ^ (name_lens.astype(np.uint64) << np.uint64(56))
    ordered = np.sort(keys)
    alike = ordered[1:] == ordered[:-1]
    return dirs[np.isin(keys, ordered[1:][alike])] if alike.any() else np.zeros(0, np.int64)


def _named_twice(subdirs: np.ndarray, parents: np.ndarray, known_parents: dict[int, int]) -> np.ndarray:
    """Directories naming a subdirectory that something else names too (in this batch, or
    before it), or naming the root: pass 2 decides which name is the second link."""
    values, counts = np.unique(subdirs, return_counts=True)
    repeated = np.isin(subdirs, values[counts > 1])
    repeated |= subdirs == C.ROOT_INO
    if known_parents:
        repeated |= np.fromiter((ino in known_parents for ino in subdirs.tolist()), bool, len(subdirs))
    return parents[repeated]
