"""Whole-block records of the extended layout: bitmap and indirect blocks with a crc32c tail.

The kernel layout's bitmap is a plain 4096-byte bit array (bit n = block n) and it has no
indirect blocks.
"""

from construct import Array, Bytes, Int32ul, Struct

from .constants import BLOCK_SIZE, POINTERS_PER_INDIRECT, TAIL_SIZE

BitmapBlock = Struct(
    "bits" / Bytes(BLOCK_SIZE - TAIL_SIZE) * "bit i = block (index * 32736 + i), LSB first",
    "checksum" / Int32ul,
)

IndirectBlock = Struct(
    "pointers" / Array(POINTERS_PER_INDIRECT, Int32ul) * "block numbers; 0 = hole",
    "checksum" / Int32ul,
)
