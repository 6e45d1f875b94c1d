"""Directory entries and the checksum tail of extended-layout directory blocks."""

from construct import Bytes, Const, Int8ul, Int16ul, Int32ul, Struct, this

from .constants import DIR_TAIL_FILE_TYPE, DIR_TAIL_SIZE

DirEntryHeader = Struct(
    "inode" / Int32ul * "0: unused entry",
    "rec_len" / Int16ul * "bytes to the next entry; multiple of 4",
    "name_len" / Int8ul,
    "file_type" / Int8ul,
)

DirEntry = Struct(
    "inode" / Int32ul,
    "rec_len" / Int16ul,
    "name_len" / Int8ul,
    "file_type" / Int8ul,
    "name" / Bytes(this.name_len),
)

# The last 12 bytes of every extended-layout directory block: to a walker it is an unused
# entry (inode 0), so the kernel's own walk skips it, as ext4's dirent tail.
DirTail = Struct(
    "inode" / Const(0, Int32ul),
    "rec_len" / Const(DIR_TAIL_SIZE, Int16ul),
    "name_len" / Const(0, Int8ul),
    "file_type" / Const(DIR_TAIL_FILE_TYPE, Int8ul),
    "checksum" / Int32ul,
)
