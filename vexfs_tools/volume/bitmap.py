"""The block bitmap: one bit per block, LSB first; kept as packed bytes, in numpy.

The kernel layout has one 4096-byte bitmap block (32768 bits). In the extended layout each
bitmap block holds 32736 bits and a crc32c tail. The whole bitmap is at most 512 MiB packed
(16 TiB of blocks); it is read in bounded chunks, never unpacked whole.
"""

from __future__ import annotations

import numpy as np

from ..format import constants as C
from .checksums import block_checksum_ok, set_tail
from .geometry import KERNEL, Geometry

POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def popcount(packed: np.ndarray) -> int:
    """Set bits in a uint8 array, without a temporary the size of the array's bits."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return int(np.bitwise_count(packed).sum(dtype=np.int64))
    return int(POPCOUNT[packed].sum(dtype=np.int64))
CHUNK_BLOCKS = 2048  # bitmap blocks per bulk read: 8 MiB
COUNT_BLOCKS = 256  # per read when only counting: 1 MiB, so a terabyte's count costs little memory


class BlockBitmap:
    def __init__(self, device, geometry: Geometry, *, seed: int | None):
        self.device = device
        self.geometry = geometry
        self.seed = seed  # None: no checksums (kernel layout or metadata_csum off)
        self.bits_per_block = geometry.bits_per_bitmap_block
        self.bytes_per_block = self.bits_per_block // 8
        self._blocks: dict[int, bytearray] = {}
        self._dirty: set[int] = set()
        self._search_from = 0

    # --- single bits ----------------------------------------------------------------------

    def _load(self, index: int) -> bytearray:
        data = self._blocks.get(index)
        if data is None:
            data = bytearray(self.device.read((self.geometry.bitmap_start + index) * C.BLOCK_SIZE,
                                              C.BLOCK_SIZE))
            self._blocks[index] = data
        return data

    def _locate(self, block: int) -> tuple[int, int, int]:
        if not 0 <= block < self.geometry.addressable_blocks:
            raise ValueError(f"block {block} outside the bitmap")
        index, bit = divmod(block, self.bits_per_block)
        return index, bit >> 3, 1 << (bit & 7)

    def test(self, block: int) -> bool:
        index, byte, mask = self._locate(block)
        return bool(self._load(index)[byte] & mask)

    def set(self, block: int, value: bool = True) -> None:
        index, byte, mask = self._locate(block)
        data = self._load(index)
        if value:
            data[byte] |= mask
        else:
            data[byte] &= ~mask & 0xFF
        self._dirty.add(index)

    def clear(self, block: int) -> bool:
        """Clear one bit; whether it was set (test and set(False) in one: a free per block
        an rm frees)."""
        index, byte, mask = self._locate(block)
        data = self._load(index)
        if not data[byte] & mask:
            return False
        data[byte] &= ~mask & 0xFF
        self._dirty.add(index)
        return True

    def set_range(self, first: int, count: int, value: bool = True) -> None:
        """Set `count` bits from `first`, a bitmap block at a time (mkfs marks large runs)."""
        end = first + count
        while first < end:
            index, start_bit = divmod(first, self.bits_per_block)
            n = min(end - first, self.bits_per_block - start_bit)
            data = self._load(index)
            bits = np.unpackbits(np.frombuffer(bytes(data[:self.bytes_per_block]), np.uint8),
                                 bitorder="little")
            bits[start_bit:start_bit + n] = 1 if value else 0
            data[:self.bytes_per_block] = np.packbits(bits, bitorder="little").tobytes()
            self._dirty.add(index)
            first += n

    def set_padding(self) -> None:
        """Set the bits past the last block in the last bitmap block (extended layout), as
        ext2 pads its bitmaps; the kernel layout leaves them clear."""
        index = self.geometry.bitmap_blocks - 1
        first = self.geometry.blocks_count - index * self.bits_per_block
        data = self._load(index)
        for bit in range(first, self.bits_per_block):
            data[bit >> 3] |= 1 << (bit & 7)
        self._dirty.add(index)

    def padding_ok(self) -> bool:
        """Extended layout: are the bits past the last block all set?"""
        index = self.geometry.bitmap_blocks - 1
        first = self.geometry.blocks_count - index * self.bits_per_block
        bits = np.unpackbits(np.frombuffer(bytes(self._load(index)[:self.bytes_per_block]), np.uint8),
                             bitorder="little")
        return bool(bits[first:].all())

    def write_bits(self, index: int, bits: np.ndarray) -> None:
        """Replace the first len(bits) bits of bitmap block `index` (one byte per bit in)."""
        data = self._load(index)
        packed = np.packbits(bits.astype(np.uint8), bitorder="little").tobytes()
        keep = len(bits) % 8
        if keep:  # the last byte is shared with bits past the end: keep those
            last = len(packed) - 1
            mask = (1 << keep) - 1
            packed = packed[:last] + bytes([(packed[last] & mask) | (data[last] & ~mask & 0xFF)])
        data[:len(packed)] = packed
        self._dirty.add(index)

    def mark_dirty(self, index: int) -> None:
        """Have block `index` written (and its checksum recomputed) at the next flush."""
        self._load(index)
        self._dirty.add(index)

    # --- bulk -----------------------------------------------------------------------------

    def iter_chunks(self, chunk_blocks: int = CHUNK_BLOCKS):
        """(first block described, packed bits as uint8 array) over the whole bitmap,
        `chunk_blocks` bitmap blocks at a time, cached (possibly modified) blocks taking
        precedence over the device."""
        for first, _, packed in self.iter_stored(chunk_blocks):
            yield first, packed

    def iter_stored(self, chunk_blocks: int = CHUNK_BLOCKS):
        """iter_chunks, with the blocks as the device holds them: (first block described,
        rows (n, 4096) uint8 read from the device, packed bits with the cache applied), so
        that fsck compares and checks checksums in one read."""
        g = self.geometry
        for first in range(0, g.bitmap_blocks, chunk_blocks):
            n = min(chunk_blocks, g.bitmap_blocks - first)
            stored = np.frombuffer(self.device.read_or_zeros((g.bitmap_start + first) * C.BLOCK_SIZE,
                                                             n * C.BLOCK_SIZE), np.uint8).reshape(n, C.BLOCK_SIZE)
            cached = [index for index in range(first, first + n) if index in self._blocks]
            raw = stored.copy() if cached else stored
            for index in cached:
                raw[index - first] = np.frombuffer(self._blocks[index], np.uint8)
            yield first * self.bits_per_block, stored, raw[:, :self.bytes_per_block].reshape(-1)

    def count_used(self) -> int:
        """Set bits among the blocks of the file system (padding bits past the end excluded)."""
        total = 0
        limit = self.geometry.addressable_blocks
        for first, packed in self.iter_chunks(COUNT_BLOCKS):
            if first >= limit:
                break
            nbits = min(limit - first, packed.size * 8)
            full, rest = divmod(nbits, 8)
            total += popcount(packed[:full])
            if rest:
                total += bin(int(packed[full]) & ((1 << rest) - 1)).count("1")
        return total

    def find_free(self, goal: int = 0, *, floor: int = 0, skip: int | None = None) -> int | None:
        """The lowest clear bit at or after `goal`, wrapping once to `floor` (never below),
        never `skip`; or None."""
        limit = self.geometry.addressable_blocks
        for start, stop in ((goal, limit), (floor, goal)):
            block = start
            while block < stop:
                index, bit = divmod(block, self.bits_per_block)
                end_bit = min(self.bits_per_block, stop - index * self.bits_per_block)
                found = self._first_clear(index, bit, end_bit, skip)
                if found is not None:
                    return found
                block = (index + 1) * self.bits_per_block
        return None

    def _first_clear(self, index: int, bit: int, end_bit: int, skip: int | None) -> int | None:
        """The lowest clear bit of bitmap block `index` in [bit, end_bit), never `skip`: the
        bytes at the start are looked at one by one (an allocator's goal is usually free),
        then the first byte that is not 0xFF is searched for (no unpacking of the block)."""
        data = self._load(index)
        base = index * self.bits_per_block
        byte, stop = bit // 8, min(-(-end_bit // 8), self.bytes_per_block)
        raw = None
        while byte < stop:
            if data[byte] != 0xFF:
                value = data[byte]
                for b in range(8):
                    position = byte * 8 + b
                    if bit <= position < end_bit and not value >> b & 1 and base + position != skip:
                        return base + position
            byte += 1
            if byte % 8 == 0 and byte < stop:  # past the first few bytes: let numpy look
                if raw is None:
                    raw = np.frombuffer(memoryview(data)[:self.bytes_per_block], np.uint8)
                rest = raw[byte:stop] != 0xFF
                at = int(rest.argmax())
                if not rest[at]:
                    return None
                byte += at
        return None

    def checksum_ok(self, index: int) -> bool:
        if self.seed is None:
            return True
        return block_checksum_ok(self.seed, self.geometry.bitmap_start + index, self._load(index),
                                 zero_ok=True)

    def flush_allocations(self) -> int:
        """Write the changed bitmap blocks with new allocations set but frees held back (each
        bit set here or on the device): the first phase of Volume's write order, so nothing
        written later points at a block the bitmap calls free. Returns the blocks written."""
        written = 0
        for index in sorted(self._dirty):
            block = self.geometry.bitmap_start + index
            on_disk = self.device.read(block * C.BLOCK_SIZE, C.BLOCK_SIZE)
            merged = bytearray(np.bitwise_or(np.frombuffer(self._blocks[index], np.uint8)[:self.bytes_per_block],
                                             np.frombuffer(on_disk, np.uint8)[:self.bytes_per_block]).tobytes())
            merged += self._blocks[index][self.bytes_per_block:]
            if self.seed is not None and self.geometry.layout != KERNEL:
                set_tail(self.seed, block, merged)
            final = merged == self._sealed(index)
            if merged != on_disk or final:
                self.device.write(block * C.BLOCK_SIZE, merged)
                written += 1
            if final:
                self._dirty.discard(index)  # nothing held back: flush() has nothing left here
        return written

    def _sealed(self, index: int) -> bytearray:
        """Bitmap block `index` as cached, its checksum tail filled in."""
        data = self._blocks[index]
        if self.seed is not None and self.geometry.layout != KERNEL:
            set_tail(self.seed, self.geometry.bitmap_start + index, data)
        return data

    def flush(self) -> int:
        """Write the changed bitmap blocks as they are (frees applied). Returns the count."""
        written = 0
        for index in sorted(self._dirty):
            self.device.write((self.geometry.bitmap_start + index) * C.BLOCK_SIZE, self._sealed(index))
            written += 1
        self._dirty.clear()
        return written

    def bits(self, start: int, count: int) -> np.ndarray:
        """One bool per block for blocks start .. start+count-1 (False past the bitmap's
        reach): the views read a window of the bitmap at a time, holes of an image file
        without touching the disk, cached (possibly modified) blocks taking precedence."""
        out = np.zeros(max(count, 0), bool)
        end = min(start + count, self.geometry.addressable_blocks)
        if end <= start:
            return out
        per = self.bits_per_block
        first, last = start // per, (end - 1) // per
        n = last - first + 1
        cached = [index for index in range(first, last + 1) if index in self._blocks]
        if len(cached) == n:  # all in memory (a writer's allocations): no read
            raw = np.frombuffer(b"".join(self._blocks[index] for index in cached), np.uint8).reshape(n, C.BLOCK_SIZE)
        else:
            raw = np.frombuffer(self.device.read_or_zeros((self.geometry.bitmap_start + first) * C.BLOCK_SIZE,
                                                          n * C.BLOCK_SIZE), np.uint8).reshape(n, C.BLOCK_SIZE)
        if cached and len(cached) < n:
            raw = raw.copy()
            for index in cached:
                raw[index - first] = np.frombuffer(self._blocks[index], np.uint8)
        bits = np.unpackbits(raw[:, :self.bytes_per_block].reshape(-1), bitorder="little")
        offset = start - first * per
        out[:end - start] = bits[offset:offset + end - start].astype(bool)
        return out
