"""Partition tables a whole disk image may carry in front of a VexFS file system: the MBR
(with its chain of extended boot records for logical partitions) and GPT (UEFI 2.x,
chapter 5). Declared here as construct records like our own, rather than through a
library: the parsers that exist either need libparted and a device (pyparted) or are small
and unmaintained, and reading two fixed tables is a few declarations.

Sizes are in 512-byte logical sectors (what sfdisk writes on an image file).
"""

from construct import Array, Bytes, Const, Int8ul, Int16ul, Int32ul, Int64ul, Struct

SECTOR_SIZE = 512
MBR_SIGNATURE = b"\x55\xaa"
MBR_ENTRIES_OFFSET = 446
MBR_ENTRIES = 4
GPT_PROTECTIVE = 0xEE
EXTENDED_TYPES = (0x05, 0x0F, 0x85)
GPT_SIGNATURE = b"EFI PART"
GPT_HEADER_LBA = 1
GPT_MIN_ENTRY_SIZE = 128
GPT_MAX_ENTRIES = 1 << 16

MbrEntry = Struct(
    "status" / Int8ul * "0x80: bootable",
    "chs_first" / Bytes(3),
    "type" / Int8ul * "0: unused; 0x05/0x0F/0x85: extended; 0xEE: GPT protective",
    "chs_last" / Bytes(3),
    "lba_first" / Int32ul * "first sector (for a logical partition: from its EBR)",
    "sectors" / Int32ul,
)

Mbr = Struct(
    "bootstrap" / Bytes(MBR_ENTRIES_OFFSET),
    "entries" / Array(MBR_ENTRIES, MbrEntry),
    "signature" / Bytes(2) * "55 aa",
)

GptHeader = Struct(
    "signature" / Const(GPT_SIGNATURE),
    "revision" / Int32ul,
    "header_size" / Int32ul,
    "header_crc32" / Int32ul,
    "reserved" / Int32ul,
    "current_lba" / Int64ul,
    "backup_lba" / Int64ul,
    "first_usable_lba" / Int64ul,
    "last_usable_lba" / Int64ul,
    "disk_guid" / Bytes(16),
    "entries_lba" / Int64ul,
    "entry_count" / Int32ul,
    "entry_size" / Int32ul * "128 in practice; a multiple of 128",
    "entries_crc32" / Int32ul,
)

GptEntry = Struct(
    "type_guid" / Bytes(16) * "all zero: unused",
    "unique_guid" / Bytes(16),
    "lba_first" / Int64ul,
    "lba_last" / Int64ul * "inclusive",
    "attributes" / Int64ul,
    "name" / Bytes(72) * "UTF-16LE, NUL padded",
)

GPT_HEADER_SIZE = GptHeader.sizeof()
GPT_ENTRY_SIZE = GptEntry.sizeof()
MBR_SIZE = Mbr.sizeof()
