"""Numeric constants of the VexFS on-disk format (docs/FORMAT.md, "Constants")."""

MAGIC = 0x56455846  # "FXEV" on disk, little-endian "VEXF"
BLOCK_SIZE = 4096
LOG_BLOCK_SIZE = 2  # 1024 << 2 == 4096
SUPERBLOCK_SIZE = 1024
INODE_SIZE = 112
INODES_PER_BLOCK = 36  # 36 * 112 = 4032; bytes 4032..4095 of a table block are unused
ROOT_INO = 1
DIRECT_BLOCKS = 12
MIN_BLOCKS = 100  # smallest device either mkfs accepts
MAX_NAME_LEN = 255
DIRENT_HEADER_SIZE = 8

# The kernel layout: fixed geometry, never read from disk by the kernel.
KERNEL_BITMAP_BLOCK = 1
KERNEL_INODE_TABLE_START = 2
KERNEL_INODE_TABLE_BLOCKS = 64
KERNEL_ROOT_DIR_BLOCK = 66
KERNEL_MAX_BLOCKS = BLOCK_SIZE * 8  # one bitmap block: 32768 blocks = 128 MiB
KERNEL_INODES_COUNT = 1024
KERNEL_DEFAULT_LABEL = b"VexFS"
KERNEL_FIRST_INO = 11  # written by the C mkfs, ignored by the kernel
KERNEL_MAX_FILE_SIZE = DIRECT_BLOCKS * BLOCK_SIZE  # 49,152 bytes

# The extended layout.
TAIL_SIZE = 4  # crc32c tail of bitmap and indirect blocks
DIR_TAIL_SIZE = 12  # checksum pseudo-entry at the end of each directory block
DIR_TAIL_FILE_TYPE = 0xDE
BITMAP_BITS_PER_BLOCK = (BLOCK_SIZE - TAIL_SIZE) * 8  # 32736
POINTERS_PER_INDIRECT = (BLOCK_SIZE - TAIL_SIZE) // 4  # 1023
EXTENDED_FIRST_INO = 11  # inodes 2..10 are reserved
LOST_FOUND_INO = 11
MAX_BLOCKS_COUNT = 2**32 - 1  # 32-bit block numbers: 16 TiB less one block
MAX_INODES_COUNT = 2**32 - 1
CHECKSUM_TYPE_CRC32C = 1

# Superblock state and error policy (ext2 values).
STATE_CLEAN = 1
STATE_ERRORS = 2
ERRORS_CONTINUE = 1
BACKUP_GROUP_NR = 1  # s_block_group_nr of the backup copy

# Inode flags (extended layout only; in the kernel layout i_flags is a size snapshot).
INODE_FLAG_VECTOR = 0x00000001

# File types in directory entries (ext2 numbering).
FT_UNKNOWN = 0
FT_REG_FILE = 1
FT_DIR = 2
FT_CHRDEV = 3
FT_BLKDEV = 4
FT_FIFO = 5
FT_SOCK = 6
FT_SYMLINK = 7
FILE_TYPE_NAMES = {
    FT_UNKNOWN: "unknown", FT_REG_FILE: "file", FT_DIR: "dir", FT_CHRDEV: "chardev",
    FT_BLKDEV: "blockdev", FT_FIFO: "fifo", FT_SOCK: "socket", FT_SYMLINK: "symlink",
}

# i_mode file-format bits (POSIX S_IFMT values).
S_IFMT = 0o170000
S_IFSOCK = 0o140000
S_IFLNK = 0o120000
S_IFREG = 0o100000
S_IFBLK = 0o060000
S_IFDIR = 0o040000
S_IFCHR = 0o020000
S_IFIFO = 0o010000

MODE_TO_FILE_TYPE = {
    S_IFREG: FT_REG_FILE, S_IFDIR: FT_DIR, S_IFCHR: FT_CHRDEV, S_IFBLK: FT_BLKDEV,
    S_IFIFO: FT_FIFO, S_IFSOCK: FT_SOCK, S_IFLNK: FT_SYMLINK,
}
