"""Pass 2: directory structure — every entry of every directory block.

Checks the rec_len chain, the checksum tail, "." and "..", the inode each entry names, its
name and file type, duplicate names and second links to a directory. Counts the entries
naming each inode (for pass 4), the parent of each directory (pass 3), and notes deleted
entries still readable in the slack (pass 4 tells deleted inodes from lost ones by them).
"""

from __future__ import annotations

import numpy as np

from ..format import constants as C
from ..format.dtypes import DIRENT_HEADER
from ..volume import checksums, directory
from ..volume.directory import DirRecord, deleted_in_slack, walk_block
from ..volume.geometry import KERNEL
from .context import Checker
from .pass2_bulk import batches, directory_blocks, settle_clean
from .state import CheckState


def run_pass2(checker: Checker, state: CheckState) -> None:
    checker.emit("Pass 2: Checking directory structure")
    volume = checker.volume
    dirs = np.array(state.directories, np.int64)
    dirs = dirs[state.inodes.modes_of(dirs) != 0]
    dir_of, logical, blocks = directory_blocks(volume, state, dirs)
    done = 0
    for batch, span in batches(dirs, dir_of):
        checker.progress("Pass 2", done, len(dirs))
        # Clean directories are settled in bulk; the others are gone through entry by entry.
        for dir_ino in sorted(settle_clean(volume, state, batch, dir_of[span], logical[span], blocks[span])):
            _check_directory(checker, state, dir_ino)
        done += len(batch)


def _check_directory(checker: Checker, state: CheckState, dir_ino: int) -> None:
    volume = checker.volume
    inode = volume.read_inode(dir_ino)
    names: set[bytes] = set()
    for logical, block in volume.dir_blocks(inode):
        data = bytearray(volume.read_block(block))
        dirty = False
        checksum_bad = False
        if volume.layout != KERNEL:
            if not directory.tail_ok(data):
                dirty |= checker.fix("DIR_TAIL", ino=dir_ino, block=block)
            elif volume.seed is not None and not checksums.block_checksum_ok(volume.seed, block, data):
                checksum_bad = True
        walk = walk_block(data, chain_end=volume.chain_end)
        records = walk.records
        # Entries the kernel deleted stay readable in the slack of the entry before them
        # ("." and ".." included). Read them from the chain as found, before any salvage
        # stretches an entry over live entries that merely follow a break in the chain.
        for record in records:
            for gone in deleted_in_slack(data, record):
                state.deleted_names.setdefault(gone.inode, (dir_ino, gone.name))
        if walk.problem and checker.fix("DIR_CHAIN", ino=dir_ino, block=block, problem=walk.problem):
            _salvage(data, volume.chain_end)
            records = walk_block(data, chain_end=volume.chain_end).records
            dirty = True
        if logical == 0:
            fixed, records = _check_dots(checker, state, dir_ino, data, records)
            dirty |= fixed
        for index, record in enumerate(records):
            if logical == 0 and index < 2 and record.name in (b".", b".."):
                continue
            if record.inode:
                dirty |= _check_entry(checker, state, dir_ino, data, record, names)
        if dirty and checker.writing:
            volume.write_dir_block(block, data)
        elif checksum_bad and checker.fix("DIR_CHECKSUM", ino=dir_ino, block=block):
            volume.write_dir_block(block, data)


def _salvage(data: bytearray, chain_end: int) -> None:
    """Mend the rec_len chain as e2fsck's salvage_directory does, entry by entry: an entry
    that overruns the end of the chain but whose name fits takes the rest of the chain; one
    whose rec_len is sane (its name_len is not) is absorbed by the entry before it; at any
    other break, the entry before it takes the rest of the block."""
    offset, previous = 0, None
    while offset < chain_end:
        left = chain_end - offset
        inode, rec_len, name_len, file_type = DIRENT_HEADER.unpack_from(data, offset) \
            if left >= C.DIRENT_HEADER_SIZE else (0, 0, 0, 0)
        if left >= C.DIRENT_HEADER_SIZE and rec_len and rec_len % 4 == 0 and rec_len <= left \
                and directory.min_rec_len(name_len) <= rec_len:
            previous, offset = offset, offset + rec_len
            continue
        if rec_len > left > C.DIRENT_HEADER_SIZE and name_len and directory.min_rec_len(name_len) <= left:
            DIRENT_HEADER.pack_into(data, offset, inode, left, name_len, file_type)
            return
        if previous is not None and rec_len and rec_len % 4 == 0 and rec_len <= left:
            _stretch(data, previous, offset + rec_len)
            offset += rec_len
            continue
        if previous is None:
            DIRENT_HEADER.pack_into(data, 0, 0, chain_end, 0, 0)
        else:
            _stretch(data, previous, chain_end)
        return


def _stretch(data: bytearray, offset: int, end: int) -> None:
    """The entry at `offset` reaches to `end`."""
    inode, _, name_len, file_type = DIRENT_HEADER.unpack_from(data, offset)
    DIRENT_HEADER.pack_into(data, offset, inode, end - offset, name_len, file_type)


def _check_dots(checker: Checker, state: CheckState, dir_ino: int, data: bytearray,
                records: list[DirRecord]) -> tuple[bool, list[DirRecord]]:
    """'.' must be the first entry and name the directory, '..' the second."""
    volume = checker.volume
    dot_ok = bool(records) and records[0].name == b"." and records[0].inode == dir_ino
    dotdot_ok = len(records) > 1 and records[1].name == b".." and records[1].inode != 0
    if dot_ok and dotdot_ok:
        state.dotdot[dir_ino] = records[1].inode
        return False, records
    problem = "DOT_BAD" if not dot_ok else "DOTDOT_MISSING"
    if not checker.fix(problem, ino=dir_ino):
        if dotdot_ok:
            state.dotdot[dir_ino] = records[1].inode
        return False, records
    # Rebuild the block: '.', '..', then every other entry that still fits.
    parent = records[1].inode if dotdot_ok else C.ROOT_INO
    keep = [(r.name, r.inode, r.file_type) for r in records
            if r.inode and r.name not in (b".", b"..")]
    blocks = directory.pack_entries([(b".", dir_ino, C.FT_DIR), (b"..", parent, C.FT_DIR)] + keep,
                                    chain_end=volume.chain_end)
    data[:] = blocks[0]
    state.dotdot[dir_ino] = parent
    return True, walk_block(data, chain_end=volume.chain_end).records


def _check_entry(checker: Checker, state: CheckState, dir_ino: int, data: bytearray,
                 record: DirRecord, names: set[bytes]) -> bool:
    """One live entry; returns whether the block was changed."""
    volume = checker.volume
    child, name = record.inode, record.name
    shown = name.decode("utf-8", "replace")
    if not 1 <= child <= volume.geometry.inode_slots:
        if checker.fix("ENTRY_BAD_INODE", ino=dir_ino, name=shown, child=child):
            _clear_entry(data, record)
            return True
        return False
    if child not in state.inodes:
        if checker.fix("ENTRY_FREE_INODE", ino=dir_ino, name=shown, child=child):
            _clear_entry(data, record)
            return True
        return False
    changed = False
    if b"/" in name or b"\0" in name or name in (b".", b".."):
        if checker.fix("BAD_NAME", ino=dir_ino, name=shown):
            name = name.replace(b"/", b".").replace(b"\0", b".")
            if name in (b".", b".."):
                name = b"_" * len(name)
            data[record.offset + 8:record.offset + 8 + len(name)] = name
            changed = True
    if name in names:
        new = _unique_name(name, names)
        if new is not None and checker.fix("DUP_NAME", ino=dir_ino, name=shown, new=new.decode("utf-8", "replace")):
            data[record.offset + 8:record.offset + 8 + len(new)] = new
            name = new
            changed = True
    names.add(name)
    mode = state.inodes.mode(child)
    expected = C.MODE_TO_FILE_TYPE.get(mode & C.S_IFMT, C.FT_UNKNOWN)
    if record.file_type != expected and checker.fix("ENTRY_FILE_TYPE", ino=dir_ino, name=shown,
                                                    found=record.file_type, expected=expected):
        data[record.offset + 7] = expected
        changed = True
    if mode & C.S_IFMT == C.S_IFDIR:
        if child in state.parents or child == C.ROOT_INO:
            if checker.fix("DIR_HARDLINK", ino=dir_ino, name=shown, child=child):
                _clear_entry(data, record)
                return True
            return changed
        state.parents[child] = dir_ino
        state.subdirs[dir_ino] = state.subdirs.get(dir_ino, 0) + 1
    state.inodes.add_ref(child)
    return changed


def _clear_entry(data: bytearray, record: DirRecord) -> None:
    DIRENT_HEADER.pack_into(data, record.offset, 0, record.rec_len, record.name_len, record.file_type)


def _unique_name(name: bytes, taken: set[bytes]) -> bytes | None:
    """A same-length name ending in ~N (so the entry keeps its size), or None."""
    if len(name) < 2:
        return None
    for n in range(10):
        candidate = name[:-2] + b"~" + str(n).encode()
        if candidate not in taken:
            return candidate
    return None
