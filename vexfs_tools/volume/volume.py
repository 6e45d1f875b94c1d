"""Volume: an open VexFS file system on a Device (libext2fs's ext2_filsys).

Opening checks magic, features, the superblock checksum and the geometry; nothing else is
read until asked. Metadata blocks (inode table, directories, indirect blocks) go through a
small write-back cache; file data is read and written directly.

The cache is written in dependency order (FORMAT.md, "Write order"), with an fsync between
phases, so that a crash between any two writes leaves what fsck.vexfs -y repairs to either
the old or the new state of every file: the bitmap's new allocations; (file data went
straight to the device); indirect blocks and new directory blocks; inode table blocks;
existing directory blocks; the bitmap with its frees; the superblock. flush_metadata() is
the barrier between steps that need another order (a block freed is not handed out again
before the inode that gave it up is on disk).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import numpy as np

from ..device import Device
from ..errors import (ChecksumError, CorruptionError, FormatError, LimitError, NoSpaceError,
                      NotADirectoryError_, PathNotFoundError, UsageError, VexfsError)
from ..format import constants as C
from ..format.dtypes import INODE_STRUCT
from . import checksums, directory
from . import superblock as sbio
from .bitmap import BlockBitmap
from .blockmap import (TOP_FIELDS, LEVEL_SPAN, LEVEL_START, P, BlockMap, block_runs, build_indirect,
                       indirect_pointers, plan_map)
from .findings import Code, Finding, describe
from .geometry import EXTENDED, KERNEL, Geometry
from .inodes import (INODE_FIELD_PACKERS, InodeRecord, array_as_table, build_inode, iter_stored_past,
                     iter_table_chunks, new_inode, parse_inode)

READ_CHUNK = 8 << 20
RUN_SLICE = 128 << 10  # bitmap bytes (a million blocks) allocate_run looks at at once
FREED_RUN_MIN = 4096  # blocks freed at once from which the run, not each block, is noted
CACHE_LIMIT = 16384  # metadata blocks kept (64 MiB) before dirty ones are written out


def _among(block: int, blocks: set[int], runs: list[tuple[int, int]]) -> bool:
    """Is `block` in the set, or in one of the (first, count) runs kept beside it?"""
    return block in blocks or any(first <= block < first + n for first, n in runs)


def now() -> int:
    """Seconds for new timestamps: SOURCE_DATE_EPOCH when set (reproducible images)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None:
        try:
            return int(epoch)
        except ValueError:
            raise UsageError(f"SOURCE_DATE_EPOCH={epoch!r} is not a whole number of seconds") from None
    return int(time.time())


class Volume:
    """An open file system. With device None it only describes a planned one (mkfs checks
    a -d tree against it before anything is written)."""

    def __init__(self, device: Device | None, sb, geometry: Geometry, *, superblock_block: int = 0,
                 problems: list[Finding] | None = None):
        self.device = device
        self.sb = sb
        self.geometry = geometry
        self.features = sbio.FeatureSet.of(sb)
        self.superblock_block = superblock_block  # where the superblock in use was read; 0: the primary
        # What reading noticed and let pass (a bad superblock checksum, a broken directory
        # chain): findings, for fsck's passes and the views' warnings.
        self.problems: list[Finding] = list(problems or [])
        self.layout = geometry.layout
        self.seed = sb.s_checksum_seed if (self.layout == EXTENDED and
                                           self.features.has("metadata_csum")) else None
        self.indirect = self.layout == EXTENDED and self.features.has("indirect_blocks")
        self.large_dir = self.layout == EXTENDED and self.features.has("large_dir")
        self.lazy_itable = self.layout == EXTENDED and self.features.has("lazy_itable")
        self._mark_raised = False  # the superblock goes out before the inodes past the old mark
        self._unused_next = 0  # past the mark: the next slot take_unused_inode hands out
        self.chain_end = C.BLOCK_SIZE - C.DIR_TAIL_SIZE if self.layout == EXTENDED else C.BLOCK_SIZE
        self.bitmap = BlockBitmap(device, geometry, seed=self.seed)
        self._cache: dict[int, bytearray] = {}
        self._dirty: set[int] = set()
        self._fresh: set[int] = set()  # blocks allocated since the last flush_metadata
        self._fresh_runs: list[tuple[int, int]] = []  # (first, count) from allocate_run
        self._dir_blocks: set[int] = set()  # directory blocks written through the cache
        self._freed: set[int] = set()  # blocks freed since the last flush_metadata
        self._freed_runs: list[tuple[int, int]] = []  # and runs of them, (first, count)
        self._reserved_inodes: set[int] = set()  # handed out, mode not yet written
        self._used_count: tuple[int, int] | None = None  # see _used_inodes
        # Bumped by every change to the inode table: a sweep's findings (fsck's pass 1) stand
        # for the table for as long as this has not moved.
        self.inode_writes = 0
        self._last_table_block: tuple[int, bytes | None] = (-1, None)
        # fsck's view of the blocks: a predicate for "claimed by an inode even if the bitmap
        # says free", and a callback told of every block allocated or freed.
        self.block_in_use: Callable[[int], bool] | None = None
        self.on_block_change: Callable[[int, bool], None] | None = None
        self.sb_dirty = False
        # No blind trust (FORMAT.md, "Write order"): why the image as opened for writing is
        # not to be allocated on, if it is not; the first allocation refuses with it. mkfs
        # (which makes the image) and fsck (which has its own view) do not check.
        self.distrust: str | None = None

    # --- opening and closing ---------------------------------------------------------------

    @classmethod
    def open(cls, path: str, *, writable: bool = False, backup: bool = False,
             superblock_block: int | None = None, ignore_checksums: bool = False,
             check_trust: bool = True) -> "Volume":
        """Open `path`. `backup` reads the backup superblock from the last block of the
        device; `superblock_block` reads it from that block. With a bad superblock checksum
        the open fails unless `ignore_checksums` (fsck, dump), which records the problem.
        A writable open checks the image can be trusted (trust_problem) unless told not to
        (fsck); allocating on one that can not is refused."""
        device = Device(path, writable=writable)
        try:
            volume = cls.open_on(device, writable=writable, backup=backup,
                                  superblock_block=superblock_block, ignore_checksums=ignore_checksums)
            if writable and check_trust:
                try:
                    volume.distrust = volume.trust_problem()
                except VexfsError as e:  # an unreadable bitmap is no more to be trusted
                    volume.distrust = f"{e}; run fsck.vexfs on it before writing"
            return volume
        except BaseException:
            device.close()
            raise

    @classmethod
    def open_on(cls, device, *, writable: bool, backup: bool, superblock_block: int | None,
                ignore_checksums: bool) -> "Volume":
        """The file system on a device already open: open() uses it, and so do the views of a
        file system inside a partition (window.OffsetDevice)."""
        device_blocks = device.size // C.BLOCK_SIZE
        if device.size < C.SUPERBLOCK_SIZE:
            raise FormatError(f"{device.path}: {device.size} bytes is too small to hold a VexFS superblock")
        if backup and superblock_block is None:
            superblock_block = device_blocks - 1
        block = superblock_block or 0
        raw = device.read(block * C.BLOCK_SIZE, C.SUPERBLOCK_SIZE)
        sb = sbio.parse(raw)
        where = device.path if not block else f"{device.path} (superblock at block {block})"
        sbio.check_magic(sb, where)
        features = sbio.FeatureSet.of(sb)
        problems: list[Finding] = []
        # The checksum comes first, as in e2fsprogs, and is checked whenever it is set: a bit
        # flipped in the feature words must not switch checking off or pose as a feature.
        computed = checksums.superblock_checksum(raw)
        if (features.has("metadata_csum") or sb.s_checksum) and sb.s_checksum != computed:
            finding = Finding(Code.SUPERBLOCK_CHECKSUM, block=block, expected=computed,
                              found=sb.s_checksum, detail=device.path)
            if not ignore_checksums:
                raise ChecksumError(describe(finding) + "; try the backup superblock")
            problems.append(finding)
        features.check(writing=writable, where=where)
        geometry = Geometry.from_superblock(sb, extended=features.has("flex_geometry"),
                                            device_blocks=device_blocks)
        if block:
            sb.s_block_group_nr = 0  # a backup opened as primary is written back as primary
        return cls(device, sb, geometry, superblock_block=block, problems=problems)

    def flush(self) -> None:
        self.flush_metadata()
        if self.sb_dirty:
            self.write_superblock()
        self.device.flush()

    def close(self) -> None:
        if self.device.writable and not self.device.closed:
            self.flush()
        self.device.close()

    def __enter__(self) -> "Volume":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.device.close()

    def write_superblock(self) -> None:
        """The primary (only its 1024 bytes) and, with backup_super, the backup copy."""
        checked = self.features.has("metadata_csum")
        self.sb.s_block_group_nr = 0
        self.device.write(0, sbio.build(self.sb, with_checksum=checked))
        if self.layout == EXTENDED and self.features.has("backup_super") and self.geometry.backup_sb_block:
            backup = self.sb.copy()
            backup.s_block_group_nr = C.BACKUP_GROUP_NR
            block = bytearray(C.BLOCK_SIZE)
            block[:C.SUPERBLOCK_SIZE] = sbio.build(backup, with_checksum=checked)
            self.device.write(self.geometry.backup_sb_block * C.BLOCK_SIZE, block)
        self.sb_dirty = False

    # --- blocks --------------------------------------------------------------------------

    def read_block(self, block: int) -> bytes:
        if not 0 <= block < self.geometry.blocks_count:
            raise CorruptionError(f"block {block} is outside the file system (0..{self.geometry.blocks_count - 1})")
        cached = self._cache.get(block)
        if cached is not None:
            return bytes(cached)
        return self.device.read(block * C.BLOCK_SIZE, C.BLOCK_SIZE)

    def read_blocks(self, blocks: np.ndarray) -> np.ndarray:
        """Many blocks at once, shape (len(blocks), BLOCK_SIZE) uint8: runs of consecutive
        blocks are read with one call, and blocks changed in the cache come from there."""
        blocks = np.asarray(blocks, np.int64)
        if len(blocks) and (blocks.min() < 0 or blocks.max() >= self.geometry.blocks_count):
            bad = int(blocks[(blocks < 0) | (blocks >= self.geometry.blocks_count)][0])
            raise CorruptionError(f"block {bad} is outside the file system (0..{self.geometry.blocks_count - 1})")
        out = np.empty((len(blocks), C.BLOCK_SIZE), np.uint8)
        breaks = np.flatnonzero(np.diff(blocks) != 1) + 1
        offsets = (blocks[np.concatenate([[0], breaks])] * C.BLOCK_SIZE).tolist() if len(blocks) else []
        self.device.read_runs(out, [0, *breaks.tolist()], [*breaks.tolist(), len(blocks)], offsets, C.BLOCK_SIZE)
        if self._cache:
            for row in np.flatnonzero(np.isin(blocks, np.fromiter(self._cache, np.int64))).tolist():
                out[row] = np.frombuffer(self._cache[int(blocks[row])], np.uint8)
        return out

    def _meta(self, block: int) -> bytearray:
        """The cached, mutable copy of a metadata block."""
        data = self._cache.get(block)
        if data is None:
            if len(self._cache) >= CACHE_LIMIT:
                self._evict()
            data = bytearray(self.read_block(block))
            self._cache[block] = data
        return data

    def _evict(self) -> None:
        self._write_dirty()
        self._cache.clear()

    def write_meta_block(self, block: int, data: bytes | bytearray) -> None:
        """Replace a metadata block (directory, indirect) through the cache."""
        if not 0 <= block < self.geometry.blocks_count:
            raise CorruptionError(f"block {block} is outside the file system")
        if self._cache.get(block) is not data:  # else changed in place (dir_block_to_edit)
            if len(self._cache) >= CACHE_LIMIT and block not in self._cache:
                self._evict()
            self._cache[block] = bytearray(data)
        self._dirty.add(block)

    def write_data(self, block: int, data: bytes) -> None:
        """Write file data (whole blocks, or a last partial one) straight to the device."""
        if not 0 <= block or block + -(-len(data) // C.BLOCK_SIZE) > self.geometry.blocks_count:
            raise CorruptionError(f"data write at block {block} is outside the file system")
        self._cache.pop(block, None)
        self.device.write(block * C.BLOCK_SIZE, data)

    def is_data_block(self, block: int) -> bool:
        """May an inode point at `block`? Inside the fs and not fixed metadata (the one rule:
        Geometry.is_data_block)."""
        return self.geometry.is_data_block(block)

    def data_block_mask(self, blocks: np.ndarray) -> np.ndarray:
        """is_data_block over an array of block numbers, for bulk work."""
        return self.geometry.data_block_mask(blocks)

    # --- inodes --------------------------------------------------------------------------

    def _check_ino(self, ino: int) -> None:
        if not 1 <= ino <= self.geometry.inode_slots:
            raise CorruptionError(f"inode {ino} is out of range (1..{self.geometry.inode_slots})")

    def read_inode(self, ino: int) -> InodeRecord:
        return parse_inode(ino, self.read_inode_raw(ino))

    def read_inode_values(self, ino: int) -> tuple:
        """Inode `ino` as INODE_STRUCT's values (inodes.value_index says where each field
        is): for the mount's requests and unlinks, which need a few fields, not a Container."""
        return INODE_STRUCT.unpack(self.read_inode_raw(ino))

    def read_inode_raw(self, ino: int) -> bytes:
        """The 112 bytes of inode `ino` as read_inode parses them (the mount's listings
        unpack only what a struct stat needs)."""
        self._check_ino(ino)
        block, offset = self.geometry.inode_location(ino)
        data = self._cache.get(block)
        if data is None and self.device is not None and not self.device.writable:
            # Read-only walks meet inodes in runs (mkfs -d numbers a directory's entries in
            # a row): keep the last inode table block read.
            if self._last_table_block[0] != block:
                self._last_table_block = (block, self.device.read(block * C.BLOCK_SIZE, C.BLOCK_SIZE))
            data = self._last_table_block[1]
        return bytes(data[offset:offset + C.INODE_SIZE]) if data is not None else \
            self.device.read(block * C.BLOCK_SIZE + offset, C.INODE_SIZE)

    def inode_checksum_ok(self, inode: InodeRecord) -> bool:
        return self.seed is None or checksums.inode_checksum_ok(self.seed, inode.ino, inode.raw)

    def write_inode(self, ino: int, fields) -> InodeRecord:
        self._check_ino(ino)
        raw = build_inode(fields)
        if self.seed is not None:
            checksums.set_inode_checksum(self.seed, ino, raw)
            fields["i_checksum"] = int.from_bytes(raw[-4:], "little")
        block, offset = self.geometry.inode_location(ino)
        data = self._meta(block)
        was_used = data[offset] | data[offset + 1]
        data[offset:offset + C.INODE_SIZE] = raw
        self._record_written(ino, block, was_used, fields["i_mode"], raw)
        return InodeRecord(ino, fields, bytes(raw))

    def patch_inode(self, ino: int, values: dict[str, int]) -> None:
        """write_inode for a change of a few integer fields of the stored record: only
        they are packed into the cached record, then its checksum (no parse and build of
        the whole record: the mount touches a directory and frees an inode per unlink).
        A Container the caller holds is not updated."""
        self._check_ino(ino)
        block, offset = self.geometry.inode_location(ino)
        data = self._meta(block)
        was_used = data[offset] | data[offset + 1]
        for name, value in values.items():
            at, packer = INODE_FIELD_PACKERS[name]
            packer.pack_into(data, offset + at, value)
        raw = memoryview(data)[offset:offset + C.INODE_SIZE]
        if self.seed is not None:
            checksums.set_inode_checksum(self.seed, ino, raw)
        self._record_written(ino, block, was_used, data[offset] | data[offset + 1], raw)

    def _record_written(self, ino: int, block: int, was_used: int, mode: int, raw) -> None:
        """What follows an inode record's change in the cache: its block dirty, the slot's
        reservation over, the lazy_itable mark, and the used and free counts."""
        self.inode_writes += 1
        self._dirty.add(block)
        if self._reserved_inodes:
            self._reserved_inodes.discard(ino)
        if self.lazy_itable and ino > self.itable_end and any(raw):
            self.raise_itable_mark(ino + 1)
        if bool(was_used) != bool(mode):
            change = -1 if was_used else 1
            reserved = ino < self.geometry.first_allocatable_ino
            if self._used_count is not None:
                below, above = self._used_count
                self._used_count = (below + change, above) if reserved else (below, above + change)
            if not reserved:
                # s_free_inodes follows every slot that changes between free and used.
                sb = self.sb  # item access: a Container's attribute access is ~10x slower
                sb["s_free_inodes"] = max(0, sb["s_free_inodes"] - change)
                self.sb_dirty = True

    def inode_table(self, *, skip_holes: bool = False, upto_mark: bool = False) -> Iterator[tuple[int, np.ndarray]]:
        """(first inode number, INODE_DTYPE records) over the whole table, in chunks; with
        skip_holes, chunks that are holes of an image file (all free) are left out. Slots
        past the lazy_itable mark read as zero without a read; skip_holes or upto_mark
        stops at the mark."""
        self.flush_metadata()
        return iter_table_chunks(self.device, self.geometry, skip_holes=skip_holes, end=self.itable_end,
                                 upto_end=upto_mark)

    def inode_table_past_mark(self) -> Iterator[tuple[int, np.ndarray]]:
        """The table past the mark that an image file stores (fsck looks there for records
        no writer should have left)."""
        if not self.lazy_itable:
            return iter(())
        self.flush_metadata()
        return iter_stored_past(self.device, self.geometry, self.itable_end)

    # --- the lazy_itable mark (FORMAT.md, "The inode table mark") ---------------------------

    @property
    def itable_end(self) -> int:
        """Slots 1..itable_end may hold a record; past it (lazy_itable) all were never used.
        A mark out of range (fsck reports it) is taken as the whole table."""
        slots = self.geometry.inode_slots
        if not self.lazy_itable:
            return slots
        mark = self.sb["s_itable_mark"]  # item access: asked at every inode written
        return mark - 1 if 1 <= mark <= slots + 1 else slots

    def raise_itable_mark(self, mark: int) -> None:
        """Move the mark up to `mark` (never down): written before the inode table blocks
        that need it (the write order's inode phase)."""
        if self.lazy_itable and mark - 1 > self.itable_end:
            self.sb.s_itable_mark = min(mark, self.geometry.inode_slots + 1)
            self.sb_dirty = True
            self._mark_raised = True

    def take_unused_inode(self) -> int | None:
        """A slot past the mark not yet handed out (callers that keep their own list of the
        free slots below it), or None when the table is full."""
        ino = max(self._unused_next, self.itable_end + 1, self.geometry.first_allocatable_ino)
        if ino > self.geometry.last_allocatable_ino:
            return None
        self._unused_next = ino + 1
        return ino

    def write_inode_records(self, records: np.ndarray) -> None:
        """Bulk write of inodes 1..len(records) (INODE_DTYPE), whole table blocks at a time,
        checksummed; slots past the last record in its block are written as zeros. The
        table goes in the inode phase of the write order (after the blocks it points to,
        before the directory blocks in the cache that name its inodes)."""
        records = records.copy()
        used = np.flatnonzero(records.view(np.uint8).reshape(-1, C.INODE_SIZE).any(axis=1))
        if len(used):
            self.raise_itable_mark(int(used[-1]) + 2)
        if self.seed is not None:
            raw = records.view(np.uint8).reshape(-1, C.INODE_SIZE)
            for index in np.flatnonzero(records["i_mode"]):
                records["i_checksum"][index] = checksums.inode_checksum(self.seed, int(index) + 1, raw[index])
        table = array_as_table(records)
        self._write_dirty(inode_table=lambda: self.device.write(self.geometry.inode_table_start * C.BLOCK_SIZE,
                                                                table))
        self._cache.clear()
        self._used_count = None
        self.inode_writes += 1

    def flush_metadata(self) -> None:
        """Write every cached change but the superblock, in the write order; a barrier."""
        self._write_dirty()

    def _write_dirty(self, inode_table: Callable[[], None] | None = None) -> None:
        """The write order (module docstring): each phase in block order, an fsync after
        each phase that wrote something, so the device never holds a later phase's blocks
        without the earlier ones'."""
        g = self.geometry
        table = range(g.inode_table_start, g.inode_table_start + g.inode_table_blocks)
        phases: list[list[int]] = [[], [], []]  # pointers and new directories, inodes, old directories
        for block in sorted(self._dirty):
            if block in table:
                phases[1].append(block)
            elif block in self._dir_blocks and not self._is_fresh(block):
                phases[2].append(block)
            else:
                phases[0].append(block)
        self._barrier(self.bitmap.flush_allocations())
        for phase, blocks in enumerate(phases):
            if phase == 1 and self._mark_raised:  # the mark covers the inodes before they land
                self.write_superblock()
                self._barrier(1)
                self._mark_raised = False
            for block in blocks:
                self.device.write(block * C.BLOCK_SIZE, self._cache[block])
            if phase == 1 and inode_table is not None:  # a bulk table write (mkfs -d)
                inode_table()
                blocks = [*blocks, -1]
            self._barrier(len(blocks))
        self._barrier(self.bitmap.flush())
        self._dirty.clear()
        self._fresh.clear()
        self._fresh_runs.clear()
        self._dir_blocks.clear()
        self._freed.clear()
        self._freed_runs.clear()

    def _barrier(self, written: int) -> None:
        """fsync after a phase that wrote something (the next phase relies on it)."""
        if written and self.device is not None and self.device.writable:
            self.device.flush()

    def _is_fresh(self, block: int) -> bool:
        return _among(block, self._fresh, self._fresh_runs)

    def _used_inodes(self) -> tuple[int, int]:
        """(slots in use below s_first_ino, from it on): one scan of the table, then kept up
        to date by write_inode (fsck asks more than once, and a scan reads the whole table)."""
        if self._used_count is None:
            first = self.geometry.first_allocatable_ino
            below = above = 0
            for first_ino, records in self.inode_table(skip_holes=True):
                used = records["i_mode"] != 0
                split = max(0, min(len(used), first - first_ino))
                below += int(np.count_nonzero(used[:split]))
                above += int(np.count_nonzero(used[split:]))
            self._used_count = (below, above)
        return self._used_count

    def note_used_inodes(self, below: int, above: int) -> None:
        """What a sweep of the whole table counted, (slots in use below s_first_ino, from
        it on), for _used_inodes to keep instead of sweeping again; the caller vouches that
        the table has not changed since (inode_writes)."""
        if self._used_count is None:
            self._used_count = (below, above)

    def count_used_inodes(self) -> int:
        return sum(self._used_inodes())

    def count_free_inodes(self) -> int:
        """What s_free_inodes should say. Kernel layout: every slot but the used ones, the
        last (never allocated) included, as the C mkfs counts; extended: free slots from
        s_first_ino on (2..10 are reserved)."""
        if self.layout == KERNEL:
            return self.geometry.inodes_count - self.count_used_inodes()
        first = self.geometry.first_allocatable_ino
        return max(0, self.geometry.inode_slots - first + 1 - self._used_inodes()[1])

    def count_free_blocks(self) -> int:
        return self.geometry.addressable_blocks - self.bitmap.count_used()

    # --- allocation ----------------------------------------------------------------------

    def trust_problem(self) -> str | None:
        """Why this image is not known to be consistent enough to allocate on, or None: an
        error bit in s_state, fixed metadata blocks the bitmap calls free, and (extended
        layout, whose writers keep the counter exact; the kernel's goes stale) s_free_blocks
        other than the bitmap's count. The bitmap is read in chunks, never held whole."""
        where = self.device.path if self.device is not None else "the image"
        fix = "; run fsck.vexfs on it before writing"
        if self.sb.s_state & C.STATE_ERRORS:
            return f"{where}: the file system is marked as having errors{fix}"
        g = self.geometry
        if not self.bitmap.bits(0, g.first_data_block).all() or \
                (g.backup_sb_block and not self.bitmap.test(g.backup_sb_block)):
            return f"{where}: the block bitmap marks fixed metadata blocks free{fix}"
        if self.layout == EXTENDED:
            free = self.count_free_blocks()
            if free != self.sb.s_free_blocks:
                return (f"{where}: the block bitmap shows {free} free blocks, the superblock "
                        f"{self.sb.s_free_blocks}{fix}")
        return None

    def check_before_writing(self) -> None:
        """Refuse to allocate on an image found untrustworthy when it was opened."""
        if self.distrust is not None:
            raise CorruptionError(self.distrust)

    def allocate_block(self, goal: int | None = None, *, zero: bool = True) -> int:
        """The lowest free data block from `goal` (the kernel's rule: from the first data
        block, never below it), marked used and zeroed (unless the caller writes it whole:
        `zero` False)."""
        self.check_before_writing()
        first = self.geometry.first_data_block
        while True:
            block = self.bitmap.find_free(max(first, goal or first), floor=first,
                                          skip=self.geometry.backup_sb_block or None)
            if block is None:
                raise NoSpaceError("no free block left")
            if self.block_in_use is None or not self.block_in_use(block):
                break
            self.bitmap.set(block)  # in use though the bitmap said free: mark it, look on
        if not self.is_data_block(block):
            raise CorruptionError(f"block {block} is fixed metadata, yet the bitmap offered it")
        if _among(block, self._freed, self._freed_runs):
            self.flush_metadata()  # its last owner lets go of it on disk before it is reused
        self.bitmap.set(block)
        self._fresh.add(block)
        if self.on_block_change is not None:
            self.on_block_change(block, True)
        self.sb["s_free_blocks"] = max(0, self.sb["s_free_blocks"] - 1)
        self.sb_dirty = True
        if zero:
            self.write_data(block, bytes(C.BLOCK_SIZE))
        return block

    def allocate_run(self, count: int, goal: int | None = None) -> int:
        """`count` contiguous free data blocks (from `goal` when the run there is free, else
        first fit), marked used; their first block.
        File data written as one run can be memory-mapped in one piece. The bitmap is
        scanned a slice at a time (RUN_SLICE bytes, a few MiB of work), stopping at the
        first fit: memory stays small on a terabyte image."""
        self.check_before_writing()
        g = self.geometry
        if self._freed or self._freed_runs:
            self.flush_metadata()  # freed blocks are let go of on disk before reuse
        if goal is not None and self._run_free(goal, count):
            return self._take_run(goal, count)
        carry_start, carry = 0, 0  # a free run reaching the end of the previous chunk
        for first, packed in self._bitmap_slices():
            n = max(0, min(packed.size * 8, g.addressable_blocks - first))
            free = np.unpackbits(packed, bitorder="little")[:n] == 0
            self._mask_fixed(free, first)
            edges = np.diff(np.concatenate(([0], free.astype(np.int8), [0])))
            starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
            for start, end in zip(starts.tolist(), ends.tolist()):
                if start == 0 and carry:
                    run_first, length = carry_start, carry + end
                else:
                    run_first, length = first + start, end - start
                if length >= count:
                    return self._take_run(run_first, count)
            if n and free[-1]:
                last_start = first + int(starts[-1])
                carry_start, carry = (carry_start, carry + n) if starts[-1] == 0 and carry else (last_start, first + n - last_start)
            else:
                carry = 0
        raise NoSpaceError(f"no run of {count} free blocks left")

    def _run_free(self, first: int, count: int) -> bool:
        """Are blocks first .. first+count-1 all free data blocks?"""
        g = self.geometry
        return (g.first_data_block <= first and first + count <= g.addressable_blocks and
                not (g.backup_sb_block and first <= g.backup_sb_block < first + count) and
                not self.bitmap.bits(first, count).any())

    def _take_run(self, first: int, count: int) -> int:
        self.bitmap.set_range(first, count)
        self._fresh_runs.append((first, count))
        self.sb["s_free_blocks"] = max(0, self.sb["s_free_blocks"] - count)
        self.sb_dirty = True
        return first

    def _bitmap_slices(self) -> Iterator[tuple[int, np.ndarray]]:
        """(first block described, packed bits) in slices of at most RUN_SLICE bytes."""
        for first, packed in self.bitmap.iter_chunks():
            for start in range(0, packed.size, RUN_SLICE):
                yield first + start * 8, packed[start:start + RUN_SLICE]

    def _mask_fixed(self, free: np.ndarray, first: int) -> None:
        """Clear, in the bools of blocks first.., the blocks no inode may own (fixed
        metadata, the backup superblock): is_data_block without an array of numbers."""
        g = self.geometry
        free[:max(0, min(len(free), g.first_data_block - first))] = False
        if g.backup_sb_block and first <= g.backup_sb_block < first + len(free):
            free[g.backup_sb_block - first] = False

    def free_block(self, block: int) -> None:
        if self.on_block_change is not None:
            self.on_block_change(block, False)
        if self.bitmap.clear(block):
            self.sb["s_free_blocks"] += 1  # item access: once per block an rm frees
            self.sb_dirty = True
            self._freed.add(block)
        self._cache.pop(block, None)
        self._dirty.discard(block)

    def allocate_inode(self) -> int:
        """The lowest free slot (i_mode 0), as the kernel allocates. The slot is reserved
        until its inode is written (which also updates s_free_inodes) or released."""
        self.check_before_writing()
        first, last = self.geometry.first_allocatable_ino, self.geometry.last_allocatable_ino
        for first_ino, records in self.inode_table():
            free = np.flatnonzero(records["i_mode"] == 0) + first_ino
            free = free[(free >= first) & (free <= last)]
            for ino in free:
                if int(ino) not in self._reserved_inodes:
                    self._reserved_inodes.add(int(ino))
                    return int(ino)
        raise NoSpaceError("no free inode left")

    def release_inode(self, ino: int) -> None:
        """Give back a slot from allocate_inode() that was never written."""
        self._reserved_inodes.discard(ino)

    def free_inode(self, ino: int) -> None:
        """Mark the slot free (mode and links 0); the rest stays for forensic tools."""
        inode = self.read_inode(ino)
        inode.fields.i_mode = 0
        inode.fields.i_links_count = 0
        self.write_inode(ino, inode.fields)

    def free_blocks_of(self, fields) -> None:
        """Free every block an inode's map holds (data and indirect); the inode keeps its
        pointers, as ext2 leaves them, for whoever reads it later."""
        if not self.indirect or not any(fields[top] for top in TOP_FIELDS):
            self.free_direct_blocks(fields["i_block"])
            return
        block_map = self.block_map(InodeRecord(0, fields, b""))
        blocks = block_map.pointer_array()
        blocks = blocks[self.data_block_mask(blocks)].astype(np.int64)
        for first, count in block_runs(blocks):
            self.free_run(first, count)
        for block in block_map.indirect_blocks():
            self.free_block(block)

    def free_direct_blocks(self, pointers) -> None:
        """free_blocks_of for a map of direct blocks only (most files): a few pointers, no
        array work (an rm -r of small files frees one or two blocks a file)."""
        is_data_block = self.geometry.is_data_block
        for block in pointers[:C.DIRECT_BLOCKS]:
            if block and is_data_block(block):
                self.free_block(block)

    def free_run(self, first: int, count: int) -> None:
        """free_block over consecutive blocks, the bitmap changed a bitmap block at a time."""
        if self.on_block_change is not None or count < 16:
            for block in range(first, first + count):
                self.free_block(block)
            return
        used = int(np.count_nonzero(self.bitmap.bits(first, count)))
        self.bitmap.set_range(first, count, False)
        self.sb.s_free_blocks += used
        self.sb_dirty = True
        if count >= FREED_RUN_MIN:  # kept as a run: a set of a million block numbers costs seconds
            self._freed_runs.append((first, count))
        else:
            self._freed.update(range(first, first + count))
        end = first + count
        # the cache and the dirty set are small (CACHE_LIMIT); a run may be a million blocks
        for block in [b for b in (*self._cache, *self._dirty) if first <= b < end]:
            self._cache.pop(block, None)
            self._dirty.discard(block)

    # --- block maps and file contents ------------------------------------------------------

    def block_map(self, inode: InodeRecord) -> BlockMap:
        return BlockMap(inode.fields, indirect=self.indirect, read_block=self.read_block,
                        valid=self.is_data_block, ino=inode.ino or None)

    def max_file_size(self) -> int:
        return (C.DIRECT_BLOCKS if not self.indirect else
                LEVEL_START[2] + LEVEL_SPAN[2]) * C.BLOCK_SIZE

    def read_file(self, inode: InodeRecord, *, chunk: int = READ_CHUNK) -> Iterator[bytes]:
        """The file's bytes, i_size of them (at most what a block map can address), holes as
        zeros, in chunks of at most `chunk` bytes. Memory stays bounded on any i_size."""
        size = min(inode.i_size, self.max_file_size())
        position = 0
        for logical, physical, count in self.block_map(inode).runs(-(-size // C.BLOCK_SIZE)):
            start = logical * C.BLOCK_SIZE
            while position < start:  # a hole
                n = min(chunk, start - position)
                yield bytes(n)
                position += n
            end = min(size, start + count * C.BLOCK_SIZE)
            while position < end:
                n = min(chunk, end - position)
                yield self.device.read(physical * C.BLOCK_SIZE + (position - start), n)
                position += n
        while position < size:
            n = min(chunk, size - position)
            yield bytes(n)
            position += n

    def read_bytes(self, inode: InodeRecord, limit: int = 1 << 20) -> bytes:
        """Small reads (symlink targets, test helpers): at most `limit` bytes."""
        out = bytearray()
        for piece in self.read_file(inode, chunk=min(limit, READ_CHUNK)):
            out += piece[:limit - len(out)]
            if len(out) >= limit:
                break
        return bytes(out)

    def set_block(self, fields, logical: int, physical: int) -> None:
        """Point logical block `logical` of an inode at `physical`, allocating indirect blocks
        as needed (each counted in i_blocks). The caller writes the inode."""
        self.set_blocks(fields, [(logical, physical)])

    def set_blocks(self, fields, pairs) -> None:
        """set_block for many (logical, physical) pairs: each indirect block changed is
        sealed and written once, not once per pointer."""
        tables: dict[int, np.ndarray] = {}
        pairs = list(pairs)
        i = 0
        while i < len(pairs):
            logical, physical = pairs[i]
            if logical < C.DIRECT_BLOCKS:
                fields["i_block"][logical] = physical
                i += 1
                continue
            if not self.indirect:
                raise LimitError(f"the {self.layout} layout holds at most {C.DIRECT_BLOCKS} blocks "
                                 f"({C.KERNEL_MAX_FILE_SIZE} bytes) per file")
            level = next(lv for lv in range(3) if logical < LEVEL_START[lv] + LEVEL_SPAN[lv])
            offset = logical - LEVEL_START[level]
            field = TOP_FIELDS[level]
            if not getattr(fields, field):
                setattr(fields, field, self._new_indirect(fields))
            table = getattr(fields, field)
            for depth in range(level, -1, -1):
                index, offset = divmod(offset, P ** depth)
                pointers = tables.get(table)
                if pointers is None:
                    pointers = tables[table] = indirect_pointers(self._meta(table)).copy()
                if depth:
                    if not pointers[index]:
                        pointers[index] = self._new_indirect(fields)
                    table = int(pointers[index])
            # The pairs that follow in the same last-level block go in with one slice.
            j = i + 1
            while j < len(pairs) and pairs[j][0] == logical + j - i and index + j - i < P:
                j += 1
            pointers[index:index + j - i] = [pair[1] for pair in pairs[i:j]]
            i = j
        for table, pointers in tables.items():
            self._write_indirect(table, pointers)

    def map_run(self, fields, first: int, count: int) -> None:
        """Point logical blocks 0..count-1 of an inode with an empty map at the physical run
        first..first+count-1, each indirect block built whole and written once (set_block
        per block rewrites them block after block). The caller writes the inode."""
        if count > C.DIRECT_BLOCKS and not self.indirect:
            raise LimitError(f"the {self.layout} layout holds at most {C.DIRECT_BLOCKS} blocks "
                             f"({C.KERNEL_MAX_FILE_SIZE} bytes) per file")
        metas: list[int] = []

        def next_meta() -> int:
            metas.append(self.allocate_block())
            return metas[-1]

        direct, tops = plan_map([(first, count)] if count else [], next_meta, self._write_indirect)
        fields.i_block = direct
        fields.i_indirect, fields.i_double_indirect, fields.i_triple_indirect = tops
        fields.i_blocks += len(metas)

    def _new_indirect(self, fields) -> int:
        block = self.allocate_block(zero=False)  # written whole through the cache
        self._write_indirect(block, np.zeros(P, np.uint32))
        fields.i_blocks += 1
        return block

    def _write_indirect(self, block: int, pointers) -> None:
        data = build_indirect(pointers)
        if self.seed is not None:
            checksums.set_tail(self.seed, block, data)
        self.write_meta_block(block, data)

    # --- directories -----------------------------------------------------------------------

    def dir_blocks(self, inode: InodeRecord) -> list[tuple[int, int]]:
        """(logical, physical) of a directory's blocks. The kernel layout's directory owns
        exactly i_block[0]."""
        if not self.large_dir:
            first = inode.i_block[0]
            return [(0, first)] if first and self.is_data_block(first) else []
        return list(self.block_map(inode).mapping(-(-inode.i_size // C.BLOCK_SIZE)))

    def dir_block_checksum_ok(self, block: int, data: bytes) -> bool:
        return self.seed is None or checksums.block_checksum_ok(self.seed, block, data)

    def dir_walks(self, inode: InodeRecord) -> Iterator[tuple[int, directory.BlockWalk]]:
        """(block, its walk) of each block of a directory, in order; a chain that stops early
        is noted in self.problems (a finding), its records up to there still given."""
        for _, block in self.dir_blocks(inode):
            walk = directory.walk_block(self.read_block(block), chain_end=self.chain_end)
            if walk.problem:
                self.problems.append(Finding(Code.DIRECTORY_CHAIN, inode=inode.ino, block=block,
                                             detail=walk.problem))
            yield block, walk

    def iter_dir(self, inode: InodeRecord) -> Iterator[directory.DirRecord]:
        """Live entries (inode != 0) of a directory, block by block."""
        if not inode.is_dir:
            raise NotADirectoryError_(f"inode {inode.ino} is not a directory")
        for _, walk in self.dir_walks(inode):
            for record in walk.records:
                if record.inode:
                    yield record

    def lookup(self, dir_inode: InodeRecord, name: bytes) -> int | None:
        for record in self.iter_dir(dir_inode):
            if record.name == name:
                return record.inode
        return None

    def resolve(self, path: str | bytes, *,
                lookup: Callable[[InodeRecord, bytes], int | None] | None = None) -> InodeRecord:
        """The inode a path names, walking from the root (symlinks are not followed).
        `lookup` replaces the plain directory lookup (the forensic views read directories
        the kernel orphaned through theirs)."""
        if isinstance(path, str):
            path = os.fsencode(path)
        lookup = lookup or self.lookup
        inode = self.read_inode(C.ROOT_INO)
        walked = b""
        for part in path.split(b"/"):
            if not part or part == b".":
                continue
            if not inode.is_dir:
                raise NotADirectoryError_(f"{os.fsdecode(walked) or '/'} is not a directory")
            ino = lookup(inode, part)
            walked += b"/" + part
            if ino is None:
                raise PathNotFoundError(f"{os.fsdecode(walked)}: no such file or directory")
            inode = self.read_inode(ino)
        return inode

    def seal_dir_block(self, block: int, data: bytearray) -> None:
        """Fill in the checksum tail of an extended-layout directory block bound for `block`."""
        if self.layout == EXTENDED:
            directory.write_tail(data, 0)
            if self.seed is not None:
                directory.write_tail(data, checksums.block_checksum(self.seed, block, data))

    def dir_block_to_edit(self, block: int) -> bytearray:
        """The cached copy of directory block `block`, to change in place, then hand to
        write_dir_block (no copy of 4 KiB in and out per entry removed)."""
        if not 0 <= block < self.geometry.blocks_count:
            raise CorruptionError(f"block {block} is outside the file system")
        return self._meta(block)

    def write_dir_block(self, block: int, data: bytearray) -> None:
        self.seal_dir_block(block, data)
        self.write_meta_block(block, data)
        self._dir_blocks.add(block)

    def add_entry(self, dir_ino: int, name: bytes, ino: int, file_type: int, *, start: int = 0) -> tuple[int, int]:
        """Link `name` -> `ino` into a directory: first fit from its block number `start`
        (0: the first; a caller adding many names passes where the last one fit, so that
        a directory full of small holes is not searched from its start for each), round
        to the blocks before it, else a new block (large_dir). Returns (index of the
        block among the directory's blocks, block)."""
        self._check_new_entry(dir_ino, name)
        parent = self.read_inode(dir_ino)
        blocks = self.dir_blocks(parent)
        start = start if 0 <= start < len(blocks) else 0
        for index in [*range(start, len(blocks)), *range(start)]:
            block = blocks[index][1]
            data = bytearray(self.read_block(block))
            if directory.insert_entry(data, name, ino, file_type, chain_end=self.chain_end):
                self.write_dir_block(block, data)
                return index, block
        if not self.large_dir or not parent.fields.i_block[0]:
            raise LimitError(f"directory inode {dir_ino} is full (the {self.layout} layout gives a "
                             "directory one block)")
        logical = parent.i_size // C.BLOCK_SIZE
        block = self.allocate_block()
        data = directory.empty_block(chain_end=self.chain_end)
        directory.insert_entry(data, name, ino, file_type, chain_end=self.chain_end)
        self.write_dir_block(block, data)
        fields = parent.fields
        self.set_block(fields, logical, block)
        fields.i_blocks += 1
        fields.i_size += C.BLOCK_SIZE
        self.write_inode(dir_ino, fields)
        return len(blocks), block

    # --- creating files (generic path; mkfs -d has a bulk one) -------------------------------

    def new_inode_fields(self, mode: int, *, uid: int = 0, gid: int = 0, links: int = 1,
                         times: tuple[int, int, int] | None = None):
        t = times or (now(),) * 3
        return new_inode(i_mode=mode, i_links_count=links, i_uid=uid, i_gid=gid,
                         i_atime=t[0], i_ctime=t[1], i_mtime=t[2])

    def write_contents(self, fields, data: bytes) -> None:
        """Give a fresh inode `data` as its contents, in newly allocated blocks."""
        for logical in range(-(-len(data) // C.BLOCK_SIZE)):
            block = self.allocate_block()
            self.write_data(block, data[logical * C.BLOCK_SIZE:(logical + 1) * C.BLOCK_SIZE])
            self.set_block(fields, logical, block)
            fields.i_blocks += 1
        fields.i_size = len(data)

    def create_file(self, parent_ino: int, name: bytes, data: bytes = b"", *, mode: int = 0o100644,
                    **attrs) -> int:
        """A new file `name` in a directory. Checked before anything is taken; if linking it
        fails all the same (a full directory), its inode and blocks are given back."""
        self._check_new_entry(parent_ino, name)
        if len(data) > self.max_file_size():
            raise LimitError(f"{len(data)} bytes is more than a file can hold in the {self.layout} "
                             f"layout ({self.max_file_size()} bytes)")
        ino = self.allocate_inode()
        fields = self.new_inode_fields(mode, **attrs)
        try:
            self.write_contents(fields, data)
            self.add_entry(parent_ino, name, ino, C.MODE_TO_FILE_TYPE.get(mode & C.S_IFMT, C.FT_UNKNOWN))
        except BaseException:
            self.free_blocks_of(fields)
            self.release_inode(ino)
            raise
        self.write_inode(ino, fields)
        return ino

    def mkdir(self, parent_ino: int, name: bytes, *, mode: int = 0o40755, ino: int | None = None,
              **attrs) -> int:
        """A new directory `name`; like create_file, nothing leaks when linking fails. `ino`:
        a free slot the caller chose (the mount keeps its own free list), else the lowest."""
        self._check_new_entry(parent_ino, name)
        ino = self.allocate_inode() if ino is None else ino
        fields = self.new_inode_fields(mode, links=2, **attrs)
        try:
            block = self.allocate_block()
            fields.i_block[0] = block
            fields.i_blocks = 1
            fields.i_size = C.BLOCK_SIZE
            entries = [(b".", ino, C.FT_DIR), (b"..", parent_ino, C.FT_DIR)]
            self.write_dir_block(block, directory.pack_entries(entries, chain_end=self.chain_end)[0])
            self.add_entry(parent_ino, name, ino, C.FT_DIR)
        except BaseException:
            self.free_blocks_of(fields)
            self.release_inode(ino)
            raise
        self.write_inode(ino, fields)
        parent = self.read_inode(parent_ino)
        parent.fields.i_links_count += 1
        self.write_inode(parent_ino, parent.fields)
        return ino

    def _check_new_entry(self, parent_ino: int, name: bytes) -> None:
        check_name(name)
        parent = self.read_inode(parent_ino)
        if not parent.is_dir:
            raise NotADirectoryError_(f"inode {parent_ino} is not a directory")
        if self.lookup(parent, name) is not None:
            raise UsageError(f"{os.fsdecode(name)!r} already exists in directory inode {parent_ino}")

def check_name(name: bytes) -> None:
    if not name or len(name) > C.MAX_NAME_LEN:
        raise LimitError(f"a name must be 1 to {C.MAX_NAME_LEN} bytes, not {len(name)}")
    if b"/" in name or b"\0" in name or name in (b".", b".."):
        raise UsageError(f"{name!r} is not a valid file name")
