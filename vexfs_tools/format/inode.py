"""The 112-byte inode record, 36 to an inode table block (docs/FORMAT.md, "Inode")."""

from construct import Array, Int16ul, Int32ul, Int64ul, Struct

from .constants import DIRECT_BLOCKS

Inode = Struct(
    "i_mode" / Int16ul * "0: the slot is free",
    "i_links_count" / Int16ul,
    "i_uid" / Int32ul,
    "i_gid" / Int32ul,
    "i_pad12" / Int32ul * "alignment hole; zero",
    "i_size" / Int64ul,
    "i_atime" / Int32ul,
    "i_ctime" / Int32ul,
    "i_mtime" / Int32ul,
    "i_blocks" / Int32ul * "4 KiB blocks held: data, and indirect blocks in the extended layout",
    "i_block" / Array(DIRECT_BLOCKS, Int32ul) * "direct block numbers; 0 = hole",
    "i_flags" / Int32ul * "kernel: a size snapshot, no meaning; extended: flags",
    "i_generation" / Int32ul,
    "i_indirect" / Int32ul * "extended: single indirect block (kernel: i_reserved[0])",
    "i_double_indirect" / Int32ul * "extended: double indirect block (kernel: i_reserved[1])",
    "i_triple_indirect" / Int32ul * "extended: triple indirect block (kernel: i_reserved[2])",
    "i_checksum" / Int32ul * "extended + metadata_csum: crc32c (kernel: alignment hole)",
)
