"""Pass 1: inodes, blocks and sizes.

One sweep of the inode table, a chunk at a time in numpy: modes, checksums and direct block
pointers of every inode are checked in bulk (needs_attention); only inodes with something to
look at (a problem, or indirect blocks to walk) are handled one by one (_check_inode), which
is the reference: with needs_attention sending every inode there, fsck prints and writes the
same (tests/check/harness.py). Every block an inode maps is claimed, so blocks claimed twice
are found, and pass 5 has the true bitmap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..format import constants as C
from ..volume import checksums, directory
from ..volume.blockmap import TOP_FIELDS, bulk_mapping_arrays
from ..volume.findings import Code
from ..volume.geometry import KERNEL
from ..volume.inodes import parse_inode, select_records
from ..volume.orphans import find_orphan_directory_blocks
from ..volume.volume import Volume
from .context import Checker
from .state import CheckState

VALID_FORMATS = np.array([C.S_IFREG, C.S_IFDIR, C.S_IFLNK, C.S_IFCHR, C.S_IFBLK, C.S_IFIFO, C.S_IFSOCK])
_VALID_FORMAT = np.zeros(16, bool)  # indexed by i_mode >> 12
_VALID_FORMAT[VALID_FORMATS >> 12] = True
NO_BLOCK_FORMATS = (C.S_IFIFO, C.S_IFSOCK)
DEVICE_FORMATS = (C.S_IFCHR, C.S_IFBLK)
SINGLE_BATCH = 2048  # single indirect blocks read together: 8 MiB


def run_pass1(checker: Checker, state: CheckState) -> None:
    checker.emit("Pass 1: Checking inodes, blocks, and sizes")
    volume = checker.volume
    orphan_dirs: list[int] = []
    _check_past_mark(checker)
    writes_before = volume.inode_writes
    sweep = Sweep()
    for first_ino, records in volume.inode_table(skip_holes=True):
        checker.progress("Pass 1", first_ino - 1, volume.geometry.inode_slots)
        in_use = np.flatnonzero(records["i_mode"])
        if not in_use.size:
            continue
        records = select_records(records, in_use)
        inos = in_use + first_ino
        sweep.add(volume, inos, records)
        attention, single = needs_attention(volume, records, inos)
        if single.any():
            which = np.flatnonzero(single)
            attention[which[single_indirect_in_bulk(volume, state, records[which])]] = True
        plain = ~attention
        # The common case, in bulk: sane inodes with direct blocks (and a single indirect
        # block, whose blocks single_indirect_in_bulk claimed).
        state.inodes.add(inos[plain], records["i_mode"][plain], records["i_links_count"][plain],
                         records["i_size"][plain])
        direct = records["i_block"][plain]
        formats = records["i_mode"][plain] & C.S_IFMT
        direct[np.isin(formats, DEVICE_FORMATS)] = 0
        state.claims.claim(direct[direct != 0])
        plain_dirs = plain & ((records["i_mode"] & C.S_IFMT) == C.S_IFDIR)
        state.directories.extend(inos[plain_dirs].tolist())
        state.plain_dir_maps.append((inos[plain_dirs], records["i_block"][plain_dirs]))
        for index in np.flatnonzero(attention):
            ino = int(inos[index])
            raw = records[index].tobytes()
            _check_inode(checker, state, parse_inode(ino, raw), orphan_dirs)
    if volume.inode_writes == writes_before:  # nothing changed under the sweep
        volume.note_used_inodes(sweep.reserved, sweep.used - sweep.reserved)
        state.vector_inodes = sweep.vector_inodes
        state.vector_inodes_as_of = volume.inode_writes
    if orphan_dirs:
        _reattach_orphan_directories(checker, state, orphan_dirs)
    state.directories.sort()
    state.inodes.freeze()


@dataclass
class Sweep:
    """What pass 1 counts in passing, for later passes that would sweep the table again:
    slots in use (and how many below s_first_ino), and the VECTOR-flagged inodes."""
    used: int = 0
    reserved: int = 0
    vector_inodes: list[int] = field(default_factory=list)

    def add(self, volume: Volume, inos: np.ndarray, records: np.ndarray) -> None:
        self.used += len(inos)
        self.reserved += int(np.searchsorted(inos, volume.geometry.first_allocatable_ino))
        if volume.layout != KERNEL:  # the kernel layout's i_flags is a size snapshot
            flagged = (records["i_flags"] & C.INODE_FLAG_VECTOR) != 0
            self.vector_inodes += inos[flagged].tolist()


def _check_past_mark(checker: Checker) -> None:
    """Records past the lazy_itable mark, in the table blocks an image file stores there: no
    writer leaves one. The mark is raised over them (in memory at once, so that this check
    sees them; on disk when the answer is yes)."""
    volume = checker.volume
    end = volume.itable_end
    count = last = 0
    for first_ino, records in volume.inode_table_past_mark():
        used = np.flatnonzero(records.view(np.uint8).reshape(-1, C.INODE_SIZE).any(axis=1)) + first_ino
        used = used[used > end]
        if used.size:
            count += int(used.size)
            last = int(used[-1])
    if not count:
        return
    mark = volume.sb.s_itable_mark
    fixed = checker.fix("INODE_PAST_MARK", count=count, mark=mark, last=last, fix=last + 1)
    volume.sb.s_itable_mark = last + 1
    if fixed:
        volume.sb_dirty = True


def needs_attention(volume: Volume, records: np.ndarray, inos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inodes that can not be taken in bulk: anything odd, and maps with double or triple
    indirect blocks; files whose map also has a single indirect block, which
    single_indirect_in_bulk finishes checking). Pointers are judged by Volume.data_block_mask,
    the volume's one rule; the harness stands in for this function to send every inode
    through _check_inode."""
    g = volume.geometry
    formats = records["i_mode"] & C.S_IFMT
    device = (formats == C.S_IFCHR) | (formats == C.S_IFBLK)
    pointers = np.ascontiguousarray(records["i_block"])
    mapped_at = pointers != 0
    bad_pointer = mapped_at & ~volume.data_block_mask(pointers)
    sizes = records["i_size"]
    is_dir = formats == C.S_IFDIR
    needed = np.minimum(_blocks_for(sizes), C.DIRECT_BLOCKS)
    if volume.layout == KERNEL:
        needed[is_dir] = 1
    # Each inode's direct pointers as the bits of one integer (bit k: slot k maps a block):
    # counting them and finding one past EOF is then a few operations an inode.
    mapped_bits = _row_bits(mapped_at)
    past_eof = (mapped_bits >> needed.astype(np.uint16)) != 0
    mapped = np.bitwise_count(mapped_bits)
    deeper = (records["i_double_indirect"] | records["i_triple_indirect"]) != 0
    single = (records["i_indirect"] != 0) & ~deeper & ((formats == C.S_IFREG) | (formats == C.S_IFLNK)) \
        & volume.indirect
    tops = ((records["i_indirect"] != 0) | deeper) & ~single
    attention = ~_VALID_FORMAT[formats >> 12] | tops
    attention |= ((_row_bits(bad_pointer) != 0) | ((past_eof | (mapped != records["i_blocks"])) & ~single)) & ~device
    attention |= is_dir & (mapped == 0)
    attention |= ((formats == C.S_IFIFO) | (formats == C.S_IFSOCK)) & (mapped > 0)
    if volume.layout == KERNEL:
        attention |= is_dir & (sizes != C.BLOCK_SIZE)
    else:
        attention |= is_dir & (sizes != np.maximum(mapped, 1).astype(np.uint64) * C.BLOCK_SIZE)
        attention |= (inos > C.ROOT_INO) & (inos < g.first_allocatable_ino)
    attention |= impossible_fields(volume, records)
    if volume.seed is not None:
        raw = records.view(np.uint8).reshape(-1, C.INODE_SIZE)
        attention[checksums.failing_records(volume.seed, inos, raw)] = True
    return attention, single & ~attention


def _row_bits(flags: np.ndarray) -> np.ndarray:
    """Rows of DIRECT_BLOCKS (12) bools as uint16 bit sets, bit k for column k. Four bools
    are the bytes of one le32 word (0 or 1 at bits 0, 8, 16, 24); multiplying by 0x01020408
    brings them to bits 24-27 without carries, ten times faster than np.packbits by rows."""
    words = np.ascontiguousarray(flags).view("<u4").reshape(len(flags), C.DIRECT_BLOCKS // 4)
    nibbles = ((words * np.uint32(0x01020408)) >> np.uint32(24)).astype(np.uint16)
    bits = nibbles[:, 0].copy()
    for word in range(1, nibbles.shape[1]):
        bits |= nibbles[:, word] << np.uint16(4 * word)
    return bits


def impossible_fields(volume: Volume, records: np.ndarray) -> np.ndarray:
    """Inodes with a field no writer leaves so (FORMAT.md's field-by-field table): an
    i_size past what the layout addresses, a symlink of no or too long a target, a field
    that must be zero and is not. _check_inode reports them."""
    formats = records["i_mode"] & C.S_IFMT
    sizes = records["i_size"]
    sized = (formats == C.S_IFREG) | (formats == C.S_IFLNK)
    bad = sized & (sizes > np.uint64(volume.max_file_size()))
    bad |= (formats == C.S_IFLNK) & ((sizes == 0) | (sizes >= C.BLOCK_SIZE))
    bad |= records["i_pad12"] != 0
    if not volume.indirect:
        bad |= (records["i_indirect"] | records["i_double_indirect"] | records["i_triple_indirect"]) != 0
    if volume.layout != KERNEL:
        bad |= (records["i_flags"] & ~np.uint32(C.INODE_FLAG_VECTOR)) != 0
    return bad


def _zero_fields(volume: Volume, fields) -> list[tuple[str, int, str]]:
    """(field, value, why) of the fields of an inode that must be zero and are not."""
    found = []
    if fields.i_pad12:
        found.append(("i_pad12", fields.i_pad12, "an alignment hole"))
    if not volume.indirect:
        why = "i_reserved, never written" if volume.layout == KERNEL else "no indirect_blocks feature"
        found += [(name, getattr(fields, name), why) for name in TOP_FIELDS if getattr(fields, name)]
    if volume.layout != KERNEL and fields.i_flags & ~C.INODE_FLAG_VECTOR:
        found.append(("i_flags", fields.i_flags, "reserved flag bits"))
    return found


def _check_zero_fields(checker: Checker, ino: int, fields) -> bool:
    changed = False
    for name, value, why in _zero_fields(checker.volume, fields):
        shown = f"0x{value:x}"
        if checker.fix("FIELD_NOT_ZERO", ino=ino, field=name, value=shown, why=why):
            setattr(fields, name, value & C.INODE_FLAG_VECTOR if name == "i_flags" else 0)
            changed = True
    return changed


def single_indirect_in_bulk(volume: Volume, state: CheckState, records: np.ndarray) -> np.ndarray:
    """Finish checking files whose map is direct blocks and one single indirect block (all
    else about them is sane): the indirect block in range and sealed, its pointers in range,
    nothing past EOF, i_blocks right. Claims the blocks of those that pass; returns which
    did not (they go through _check_inode, which reports what is wrong)."""
    top = records["i_indirect"]
    wrong = ~volume.data_block_mask(top)
    logical = np.arange(C.DIRECT_BLOCKS, C.DIRECT_BLOCKS + C.POINTERS_PER_INDIRECT, dtype=np.uint64)
    for first in range(0, len(records), SINGLE_BATCH):
        part = first + np.flatnonzero(~wrong[first:first + SINGLE_BATCH])
        blocks = top[part].astype(np.int64)
        order = np.argsort(blocks, kind="stable")  # read in block order: runs coalesce
        data = np.empty((len(part), C.BLOCK_SIZE), np.uint8)
        data[order] = volume.read_blocks(blocks[order])
        failed = np.zeros(len(part), bool)
        if volume.seed is not None:
            failed[checksums.failing_records(volume.seed, blocks, data)] = True
        pointers = data[:, :C.BLOCK_SIZE - C.TAIL_SIZE].view("<u4")
        # Only the slots below the largest file's EOF can map a block; past it, every
        # slot must be zero (one pass over the rest of the block, not four).
        eof = _blocks_for(records["i_size"][part])
        used = int(min(C.POINTERS_PER_INDIRECT, max(0, int(eof.max(initial=0)) - C.DIRECT_BLOCKS)))
        failed |= pointers[:, used:].any(axis=1)
        pointers = pointers[:, :used]
        mapped_at = pointers != 0
        failed |= (mapped_at & ~volume.data_block_mask(pointers)).any(axis=1)
        failed |= (mapped_at & (logical[:used] >= eof[:, None])).any(axis=1)
        mapped = np.count_nonzero(mapped_at, axis=1) + np.count_nonzero(records["i_block"][part], axis=1)
        failed |= mapped + 1 != records["i_blocks"][part]
        wrong[part[failed]] = True
        state.claims.claim(np.concatenate([pointers[~failed][mapped_at[~failed]], blocks[~failed]]))
    return wrong


def _blocks_for(sizes: np.ndarray) -> np.ndarray:
    """Blocks that i_size bytes take (no overflow near 2**64)."""
    return sizes // C.BLOCK_SIZE + (sizes % C.BLOCK_SIZE != 0)


def _check_inode(checker: Checker, state: CheckState, inode, orphan_dirs: list[int]) -> None:
    """One inode that needs a closer look; fixes go through the volume's write path."""
    volume = checker.volume
    g = volume.geometry
    ino, fields = inode.ino, inode.fields
    fmt = fields.i_mode & C.S_IFMT
    changed = False
    if ino != C.ROOT_INO and ino < g.first_allocatable_ino:
        if checker.fix("RESERVED_INODE_IN_USE", ino=ino, mode=fields.i_mode):
            _clear_inode(volume, ino, fields)
        return
    if fmt not in VALID_FORMATS:
        if checker.fix("BAD_MODE", ino=ino, mode=fields.i_mode):
            _clear_inode(volume, ino, fields)
        return
    if fmt == C.S_IFLNK and not 0 < fields.i_size < C.BLOCK_SIZE:
        if checker.fix("SYMLINK_SIZE", ino=ino, size=fields.i_size):
            _clear_inode(volume, ino, fields)
        return
    if not volume.inode_checksum_ok(inode):
        changed |= checker.fix("INODE_CHECKSUM", ino=ino)
    changed |= _check_zero_fields(checker, ino, fields)
    if fmt in DEVICE_FORMATS:
        _record(state, fields, ino)
        if changed and checker.writing:
            volume.write_inode(ino, fields)
        return
    if fmt in NO_BLOCK_FORMATS and (any(fields.i_block) or fields.i_indirect or fields.i_double_indirect
                                    or fields.i_triple_indirect):
        if checker.fix("SPECIAL_HAS_BLOCKS", ino=ino, kind="fifo" if fmt == C.S_IFIFO else "socket"):
            fields.i_block = [0] * C.DIRECT_BLOCKS
            fields.i_indirect = fields.i_double_indirect = fields.i_triple_indirect = 0
            changed = True
    block_map = volume.block_map(inode)
    logical, physical = bulk_mapping_arrays(block_map, volume.data_block_mask)
    indirect = block_map.indirect_blocks()
    rebuild = False
    for finding in block_map.problems:
        if finding.code is Code.INDIRECT_TWICE:
            rebuild |= checker.fix("INDIRECT_TWICE", ino=ino, block=finding.block)
        else:  # a pointer that is not a data block: below the end of the bitmap, metadata
            at = finding.index if finding.code is Code.BLOCK_OUT_OF_RANGE else -1
            rebuild |= checker.fix("BAD_BLOCK", ino=ino, block=finding.block, logical=at,
                                   why="metadata" if finding.block < g.addressable_blocks else "out of range")
    if volume.seed is not None:
        for block in indirect:
            if not checksums.block_checksum_ok(volume.seed, block, volume.read_block(block)):
                rebuild |= checker.fix("INDIRECT_CHECKSUM", ino=ino, block=block)
    if fmt in (C.S_IFREG, C.S_IFLNK) and fields.i_size > volume.max_file_size():
        fixed = (int(logical[-1]) + 1) * C.BLOCK_SIZE if len(logical) else 0
        if checker.fix("SIZE_BEYOND_LAYOUT", ino=ino, size=fields.i_size, layout=volume.layout,
                       limit=volume.max_file_size(), fixed=fixed):
            fields.i_size = fixed
            changed = True
    is_dir = fmt == C.S_IFDIR
    if is_dir and volume.layout == KERNEL:
        needed = 1
    elif is_dir:
        needed = (int(logical[-1]) + 1) if len(logical) else 1
    else:
        needed = -(-fields.i_size // C.BLOCK_SIZE)
    past = logical >= needed
    if past.any() and checker.fix("BLOCKS_PAST_EOF", ino=ino, size=fields.i_size, count=int(past.sum())):
        logical, physical = logical[~past], physical[~past]
        rebuild = True
    if rebuild:
        # New indirect blocks are claimed as they are allocated (the volume's callback).
        # An old indirect block an inode before this one claimed is that inode's.
        rebuild_map(volume, fields, list(zip(logical.tolist(), physical.tolist())),
                    [b for b in indirect if not state.claims.is_claimed(b)])
        changed = True
        state.claims.claim(physical)
        expected_blocks = fields.i_blocks
    else:
        state.claims.claim(np.concatenate([physical, np.asarray(indirect, np.int64)]))
        expected_blocks = len(physical) + len(indirect)
    if is_dir and not len(logical):
        orphan_dirs.append(ino)
    elif is_dir:
        want = C.BLOCK_SIZE if volume.layout == KERNEL else needed * C.BLOCK_SIZE
        if fields.i_size != want and checker.fix("DIR_SIZE", ino=ino, size=fields.i_size, expected=want):
            fields.i_size = want
            changed = True
    if (len(logical) or not is_dir) and fields.i_blocks != expected_blocks and \
            checker.fix("I_BLOCKS", ino=ino, found=fields.i_blocks, expected=expected_blocks):
        fields.i_blocks = expected_blocks
        changed = True
    _record(state, fields, ino)
    if is_dir:
        state.directories.append(ino)
    if changed and checker.writing:
        volume.write_inode(ino, fields)


def _record(state: CheckState, fields, ino: int) -> None:
    state.inodes.add([ino], [fields.i_mode], [fields.i_links_count], [fields.i_size])


def rebuild_map(volume: Volume, fields, mapping: list[tuple[int, int]], old_indirect: list[int]) -> None:
    """Lay the inode's map out again from the (logical, physical) pairs kept: fresh indirect
    blocks, bad pointers and past-EOF blocks dropped; the old indirect blocks given are
    freed (the caller leaves out those another inode holds)."""
    fields.i_block = [0] * C.DIRECT_BLOCKS
    fields.i_indirect = fields.i_double_indirect = fields.i_triple_indirect = 0
    fields.i_blocks = 0
    for logical, block in mapping:
        volume.set_block(fields, logical, block)
    fields.i_blocks += len(mapping)
    # Freed only now, so that the new indirect blocks can not be laid over an old one that
    # another inode may still hold.
    kept = {block for _, block in mapping}
    for block in old_indirect:
        if block not in kept:
            volume.free_block(block)


def _clear_inode(volume: Volume, ino: int, fields) -> None:
    fields.i_mode = 0
    fields.i_links_count = 0
    volume.write_inode(ino, fields)


def _reattach_orphan_directories(checker: Checker, state: CheckState, orphans: list[int]) -> None:
    """The kernel's mkdir bug: the directory's block is allocated, holds "." naming the
    directory, and no inode points at it. Find such blocks and give them back."""
    volume = checker.volume
    found = find_orphan_directory_blocks(volume, set(orphans), state.claims.is_claimed)
    for ino in orphans:
        inode = volume.read_inode(ino)
        fields = inode.fields
        if ino in found:
            if checker.fix("DIR_BLOCK_ORPHANED", ino=ino, block=found[ino]):
                _attach(volume, state, ino, fields, found[ino])
        elif checker.fix("DIR_NO_BLOCK", ino=ino):
            block = volume.allocate_block()
            volume.write_dir_block(block, directory.pack_entries(
                [(b".", ino, C.FT_DIR), (b"..", C.ROOT_INO, C.FT_DIR)], chain_end=volume.chain_end)[0])
            _attach(volume, state, ino, fields, block)
    checker.forget_paths()


def _attach(volume: Volume, state: CheckState, ino: int, fields, block: int) -> None:
    fields.i_block[0] = block
    fields.i_blocks = 1
    fields.i_size = C.BLOCK_SIZE
    volume.write_inode(ino, fields)
    if not state.claims.is_claimed(block):  # a block fsck just allocated is claimed already
        state.claims.claim([block])
    if volume.seed is not None:
        data = bytearray(volume.read_block(block))
        volume.write_dir_block(block, data)
