"""Directory blocks: walking their rec_len chains and building them.

Both layouts use ext2's linked entries. The extended layout ends each block with a 12-byte
checksum tail (an entry with inode 0), so a chain there ends at 4084 instead of 4096.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..format import constants as C
from ..format.dtypes import DIR_TAIL, DIRENT_HEADER


def min_rec_len(name_len: int) -> int:
    return (C.DIRENT_HEADER_SIZE + name_len + 3) & ~3


@dataclass(frozen=True)
class DirRecord:
    """One directory record as it lies in its block."""
    offset: int
    inode: int
    rec_len: int
    name_len: int
    file_type: int
    name: bytes


@dataclass
class BlockWalk:
    """What walking one directory block's chain of records found."""
    records: list[DirRecord]  # every record on the chain, inode 0 included
    problem: str | None  # why the walk stopped early, if it did
    end: int  # where the chain stopped


def walk_block(data: bytes, *, chain_end: int = C.BLOCK_SIZE) -> BlockWalk:
    """Follow the rec_len chain of one directory block as the kernel does: stop at rec_len 0
    or at chain_end; an entry that is too short or crosses chain_end stops the walk too."""
    records = []
    offset = 0
    while offset < chain_end:
        if offset + C.DIRENT_HEADER_SIZE > chain_end:
            return BlockWalk(records, f"entry header at {offset} crosses the end of the chain", offset)
        inode, rec_len, name_len, file_type = DIRENT_HEADER.unpack_from(data, offset)
        if rec_len == 0:
            return BlockWalk(records, f"rec_len 0 at offset {offset}", offset)
        if rec_len % 4 or rec_len < C.DIRENT_HEADER_SIZE or offset + rec_len > chain_end:
            return BlockWalk(records, f"bad rec_len {rec_len} at offset {offset}", offset)
        if rec_len < min_rec_len(name_len):
            return BlockWalk(records, f"name_len {name_len} does not fit rec_len {rec_len} at offset {offset}",
                             offset)
        name_at = offset + C.DIRENT_HEADER_SIZE
        name = bytes(data[name_at:name_at + name_len])
        records.append(DirRecord(offset, inode, rec_len, name_len, file_type, name))
        offset += rec_len
    return BlockWalk(records, None, offset)


def pack_entries(entries: list[tuple[bytes, int, int]], *, chain_end: int) -> list[bytearray]:
    """Lay (name, inode, file_type) entries out into as many blocks as they need, each chain
    ending at chain_end: the last entry of a block takes the slack."""
    blocks: list[bytearray] = []
    block = None
    offset = last = 0
    for name, inode, file_type in entries:
        size = min_rec_len(len(name))
        if block is None or offset + size > chain_end:
            if block is not None:
                _stretch(block, last, chain_end)
            block = bytearray(C.BLOCK_SIZE)
            blocks.append(block)
            offset = 0
        DIRENT_HEADER.pack_into(block, offset, inode, size, len(name), file_type)
        block[offset + 8: offset + 8 + len(name)] = name
        last = offset
        offset += size
    if block is not None:
        _stretch(block, last, chain_end)
    return blocks


def empty_block(*, chain_end: int) -> bytearray:
    block = bytearray(C.BLOCK_SIZE)
    DIRENT_HEADER.pack_into(block, 0, 0, chain_end, 0, 0)
    return block


def _stretch(block: bytearray, offset: int, chain_end: int) -> None:
    inode, _, name_len, file_type = DIRENT_HEADER.unpack_from(block, offset)
    DIRENT_HEADER.pack_into(block, offset, inode, chain_end - offset, name_len, file_type)


def insert_entry(block: bytearray, name: bytes, inode: int, file_type: int, *, chain_end: int) -> bool:
    """First fit, as the kernel inserts: reuse an unused entry or split one with enough slack.
    Returns False when the block has no room."""
    need = min_rec_len(len(name))
    for record in walk_block(block, chain_end=chain_end).records:
        if record.inode == 0 and record.rec_len >= need:
            DIRENT_HEADER.pack_into(block, record.offset, inode, record.rec_len, len(name), file_type)
            block[record.offset + 8: record.offset + 8 + len(name)] = name
            return True
        used = min_rec_len(record.name_len)
        if record.inode and record.rec_len - used >= need:
            DIRENT_HEADER.pack_into(block, record.offset, record.inode, used, record.name_len,
                                    record.file_type)
            new = record.offset + used
            DIRENT_HEADER.pack_into(block, new, inode, record.rec_len - used, len(name), file_type)
            block[new + 8: new + 8 + len(name)] = name
            return True
    return False


def remove_entry(block: bytearray, name: bytes, *, chain_end: int) -> int | None:
    """Remove `name` as the kernel does: the previous entry's rec_len swallows it (its bytes
    stay behind), or a first entry gets inode 0. Returns the inode it named."""
    previous = None
    for record in walk_block(block, chain_end=chain_end).records:
        if record.inode and record.name == name:
            if previous is None:
                DIRENT_HEADER.pack_into(block, record.offset, 0, record.rec_len, record.name_len,
                                        record.file_type)
            else:
                DIRENT_HEADER.pack_into(block, previous.offset, previous.inode,
                                        previous.rec_len + record.rec_len, previous.name_len,
                                        previous.file_type)
            return record.inode
        previous = record
    return None


def write_tail(block: bytearray, checksum: int) -> None:
    DIR_TAIL.pack_into(block, C.BLOCK_SIZE - C.DIR_TAIL_SIZE, 0, C.DIR_TAIL_SIZE, 0,
                    C.DIR_TAIL_FILE_TYPE, checksum)


def tail_ok(block: bytes) -> bool:
    inode, rec_len, name_len, file_type, _ = DIR_TAIL.unpack_from(block, C.BLOCK_SIZE - C.DIR_TAIL_SIZE)
    return (inode, rec_len, name_len, file_type) == (0, C.DIR_TAIL_SIZE, 0, C.DIR_TAIL_FILE_TYPE)


def deleted_in_slack(data: bytes, record: DirRecord) -> list[DirRecord]:
    """Entries still readable in the slack of `record` (between the end of its own name
    and the end of its rec_len): what the kernel's delete leaves behind. Each candidate must
    look like an entry: a non-zero inode, a sane rec_len and name_len, a name without NUL
    or '/'."""
    found = []
    end = record.offset + record.rec_len
    offset = record.offset + min_rec_len(record.name_len) if record.inode else record.offset
    while offset + C.DIRENT_HEADER_SIZE <= end:
        inode, rec_len, name_len, file_type = DIRENT_HEADER.unpack_from(data, offset)
        name_at = offset + C.DIRENT_HEADER_SIZE
        name = bytes(data[name_at:name_at + name_len])
        plausible = (inode and name_len and rec_len >= min_rec_len(name_len) and rec_len % 4 == 0
                     and offset + min_rec_len(name_len) <= end and file_type <= 7
                     and b"\0" not in name and b"/" not in name)
        if plausible and offset != record.offset:
            found.append(DirRecord(offset, inode, rec_len, name_len, file_type, name))
            offset += min_rec_len(name_len)
        else:
            offset += 4
    return found


def retarget_entry(block: bytearray, name: bytes, inode: int, file_type: int, *, chain_end: int) -> bool:
    """Point the live entry `name` at another inode in place (rename over a target, a moved
    directory's '..'). Returns False when the block holds no such entry."""
    for record in walk_block(block, chain_end=chain_end).records:
        if record.inode and record.name == name:
            DIRENT_HEADER.pack_into(block, record.offset, inode, record.rec_len, record.name_len, file_type)
            return True
    return False
