"""Pass 5: summary information. The block bitmap must say exactly what passes 1-4 counted
as claimed; padding bits, bitmap checksums and the superblock's free counters follow."""

from __future__ import annotations

import numpy as np

from ..format import constants as C
from ..volume import checksums
from ..volume.bitmap import popcount
from ..volume.geometry import KERNEL
from .context import Checker
from .state import CheckState

MAX_LISTED = 20
SCAN_BLOCKS = 256  # bitmap blocks compared at a time: 1 MiB, a few MiB of temporaries


def run_pass5(checker: Checker, state: CheckState) -> None:
    checker.emit("Pass 5: Checking group summary information")
    volume = checker.volume
    g = volume.geometry
    bitmap = volume.bitmap
    per_block = bitmap.bits_per_block
    claimed = state.claims

    def claims(first: int, n: int) -> np.ndarray:  # first is a multiple of 8
        return np.unpackbits(claimed.packed(first // 8, (n + 7) // 8), bitorder="little")[:n]

    added: list[int] = []
    removed: list[int] = []
    totals = [0, 0]  # blocks that differ, to be used / to be freed (the lists are cut short)
    wrong_blocks: set[int] = set()
    on_disk_used = 0
    failing: list[int] = []  # bitmap blocks whose checksum, as stored, is wrong
    for first, stored, packed in bitmap.iter_stored(SCAN_BLOCKS):
        if volume.seed is not None and g.layout != KERNEL:
            failing += _failing_bitmap_blocks(volume, first // per_block, stored)
        n = min(packed.size * 8, g.addressable_blocks - first)
        if n <= 0:
            break
        # Compared a byte (8 blocks) at a time; only bytes that differ are unpacked, so
        # memory stays that of the packed chunk on a terabyte device.
        nbytes = -(-n // 8)
        tail = np.uint8((1 << (n % 8)) - 1) if n % 8 else np.uint8(0xFF)
        want_bytes = claimed.packed(first // 8, nbytes)
        xor = packed[:nbytes] ^ want_bytes
        xor[-1] &= tail  # padding bits past the end of the file system are not blocks
        on_disk_used += popcount(packed[:nbytes - 1]) + int(packed[nbytes - 1] & tail).bit_count()
        changed = np.flatnonzero(xor)
        if changed.size:
            offsets = (changed[:, None] * 8 + np.arange(8)).reshape(-1)
            bits = np.unpackbits(xor[changed], bitorder="little").astype(bool)
            differ = offsets[bits]
            blocks = differ + first
            want = (want_bytes[differ >> 3] >> (differ & 7).astype(np.uint8)) & 1
            used = int(np.count_nonzero(want))
            totals[0] += used
            totals[1] += int(differ.size) - used
            added += blocks[want == 1][:MAX_LISTED * 4].tolist()
            removed += blocks[want == 0][:MAX_LISTED * 4].tolist()
            wrong_blocks.update((blocks // per_block).tolist())
    if not checker.writing:
        checker.bitmap_used = on_disk_used
    if wrong_blocks and checker.fix("BITMAP_DIFFERENCES", diff=_describe(added, removed, totals)):
        for index in sorted(wrong_blocks):
            first = index * per_block
            n = min(per_block, g.addressable_blocks - first)
            bitmap.write_bits(index, claims(first, n))
    if g.layout != KERNEL:
        if not bitmap.padding_ok() and checker.fix("BITMAP_PADDING", want="set"):
            bitmap.set_padding()
        if volume.seed is not None:
            for index in failing:
                if index not in wrong_blocks and checker.fix("BITMAP_CHECKSUM", index=index):
                    bitmap.mark_dirty(index)
    sb = volume.sb
    # Read-only, the bitmap was not corrected: count what the passes found instead.
    free_blocks = volume.count_free_blocks() if checker.writing else \
        g.addressable_blocks - claimed.count()
    if sb.s_free_blocks != free_blocks and checker.fix("FREE_BLOCKS", found=sb.s_free_blocks,
                                                       expected=free_blocks):
        sb.s_free_blocks = free_blocks
        volume.sb_dirty = True
    free_inodes = volume.count_free_inodes()
    if sb.s_free_inodes != free_inodes and checker.fix("FREE_INODES", found=sb.s_free_inodes,
                                                       expected=free_inodes):
        sb.s_free_inodes = free_inodes
        volume.sb_dirty = True


def _failing_bitmap_blocks(volume, first: int, rows: np.ndarray) -> list[int]:
    """Indices of the bitmap blocks first.. whose checksum, as the device holds them (`rows`),
    is wrong; an all-zero block is valid. Blocks this run changed (blocks freed in pass 4,
    padding set below) are resealed when written: their cached copy carries a stale tail
    until then, which is no finding."""
    stored = np.flatnonzero(rows.any(axis=1))
    if not stored.size:
        return []
    start = volume.geometry.bitmap_start + first
    return (stored[checksums.failing_records(volume.seed, stored + start, rows[stored])] + first).tolist()


def _describe(added: list[int], removed: list[int], totals: list[int]) -> str:
    """e2fsck's style: +used -free, runs written a--b; when the list is cut short, how many
    more blocks differ (`+(0--79) ... and 7,658 more`)."""
    parts = []
    for sign, blocks, total in (("+", added, totals[0]), ("-", removed, totals[1])):
        runs = []
        for block in sorted(blocks):
            if runs and block == runs[-1][1] + 1:
                runs[-1][1] = block
            else:
                runs.append([block, block])
        for a, b in runs[:MAX_LISTED]:
            parts.append(f"{sign}{a}" if a == b else f"{sign}({a}--{b})")
        more = total - sum(b - a + 1 for a, b in runs[:MAX_LISTED])
        if more > 0:
            parts.append(f"... and {more:,} more")
    return " ".join(parts)
