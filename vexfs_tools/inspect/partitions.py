"""The partition table of a whole disk image (MBR with logical partitions, or GPT), as
mmls lists it, each partition marked when a VexFS superblock starts it; and the byte
window (offset, length) a `--partition N` or `-o SECTORS` option points at.

Numbers are sfdisk's: MBR primaries 1-4, logical partitions from 5 in chain order; GPT
entries by their slot (1-based). A hostile table can not loop (the EBR chain is walked at
most MAX_LOGICAL steps, each forward) nor make us allocate (GPT sizes are bounded).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from construct import ConstructError

from ..device import Device
from ..errors import CorruptionError, UsageError
from ..format import constants as C
from ..format import partitions as P
from ..volume import superblock as sbio

MAX_LOGICAL = 128
GPT_TYPES = {
    "0fc63daf-8483-4772-8e79-3d69d8477de4": "Linux filesystem",
    "c12a7328-f81f-11d2-ba4b-00a0c93ec93b": "EFI System",
    "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f": "Linux swap",
    "e6d6d379-f507-44c2-a23c-238f2a3df928": "Linux LVM",
    "21686148-6449-6e6f-744e-656564454649": "BIOS boot",
    "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7": "Microsoft basic data",
}
MBR_TYPES = {0x83: "Linux", 0x82: "Linux swap", 0x05: "Extended", 0x0F: "W95 Ext'd (LBA)", 0x85: "Linux extended",
             0x07: "HPFS/NTFS/exFAT", 0x0C: "W95 FAT32 (LBA)", 0xEF: "EFI (FAT-12/16/32)", 0x8E: "Linux LVM"}


@dataclass(frozen=True)
class Partition:
    number: int
    start: int  # first sector
    sectors: int
    type: str
    name: str = ""
    vexfs: bool = False

    @property
    def offset(self) -> int:
        return self.start * P.SECTOR_SIZE

    @property
    def length(self) -> int:
        return self.sectors * P.SECTOR_SIZE

    def as_dict(self) -> dict:
        return {"number": self.number, "start": self.start, "end": self.start + self.sectors - 1,
                "sectors": self.sectors, "offset": self.offset, "length": self.length, "type": self.type,
                "name": self.name, "vexfs": self.vexfs}


@dataclass(frozen=True)
class PartitionTable:
    kind: str  # "gpt", "dos" (sfdisk's names) or "none"
    partitions: list[Partition]

    def as_dict(self) -> dict:
        return {"label": self.kind, "sector_size": P.SECTOR_SIZE,
                "partitions": [p.as_dict() for p in self.partitions]}


def holds_vexfs(device: Device, offset: int) -> bool:
    """Does a VexFS superblock start at byte `offset`?"""
    if offset + C.SUPERBLOCK_SIZE > device.size:
        return False
    try:
        sbio.check_magic(sbio.parse(device.read(offset, C.SUPERBLOCK_SIZE)), device.path)
    except Exception:  # noqa: BLE001 - anything unparsable is simply not VexFS
        return False
    return True


def _mbr(device: Device) -> P.Mbr | None:
    if device.size < P.MBR_SIZE:
        return None
    mbr = P.Mbr.parse(device.read(0, P.MBR_SIZE))
    return mbr if mbr.signature == P.MBR_SIGNATURE else None


def _gpt(device: Device) -> list[Partition] | None:
    at = P.GPT_HEADER_LBA * P.SECTOR_SIZE
    if device.size < at + P.GPT_HEADER_SIZE:
        return None
    try:
        header = P.GptHeader.parse(device.read(at, P.GPT_HEADER_SIZE))
    except ConstructError:
        return None
    if header.entry_size < P.GPT_MIN_ENTRY_SIZE or header.entry_size % P.GPT_MIN_ENTRY_SIZE \
            or header.entry_count > P.GPT_MAX_ENTRIES:
        raise CorruptionError(f"{device.path}: GPT header with {header.entry_count} entries of "
                              f"{header.entry_size} bytes; not a usable table")
    start = header.entries_lba * P.SECTOR_SIZE
    total = header.entry_count * header.entry_size
    if start + total > device.size:
        raise CorruptionError(f"{device.path}: the GPT entries go past the end of the image")
    raw = device.read(start, total)
    found = []
    for index in range(header.entry_count):
        entry = P.GptEntry.parse(raw[index * header.entry_size:index * header.entry_size + P.GPT_ENTRY_SIZE])
        if entry.type_guid == bytes(16) or entry.lba_last < entry.lba_first:
            continue
        type_guid = str(uuid.UUID(bytes_le=entry.type_guid))
        name = entry.name.decode("utf-16-le", "replace").split("\0", 1)[0]
        found.append(Partition(index + 1, entry.lba_first, entry.lba_last - entry.lba_first + 1,
                               GPT_TYPES.get(type_guid, type_guid), name))
    return found


def _logical(device: Device, extended_start: int) -> list[Partition]:
    """The EBR chain: each EBR's first entry is a partition (from the EBR), its second the
    next EBR (from the extended partition's start)."""
    found = []
    ebr = extended_start
    for number in range(5, 5 + MAX_LOGICAL):
        if (ebr + 1) * P.SECTOR_SIZE > device.size:
            break
        record = P.Mbr.parse(device.read(ebr * P.SECTOR_SIZE, P.MBR_SIZE))
        if record.signature != P.MBR_SIGNATURE:
            break
        first, link = record.entries[0], record.entries[1]
        if first.type and first.sectors:
            found.append(Partition(number, ebr + first.lba_first, first.sectors,
                                   MBR_TYPES.get(first.type, f"0x{first.type:02x}")))
        if not link.type or not link.lba_first:
            break
        following = extended_start + link.lba_first
        if following <= ebr:
            raise CorruptionError(f"{device.path}: the extended boot record chain goes backwards at sector {ebr}")
        ebr = following
    return found


def read_table(device: Device) -> PartitionTable:
    """The disk's partitions, each checked for a VexFS superblock."""
    mbr = _mbr(device)
    gpt = _gpt(device) if mbr is None or any(e.type == P.GPT_PROTECTIVE for e in mbr.entries) else None
    if gpt is not None:
        kind, found = "gpt", gpt
    elif mbr is not None and any(e.type for e in mbr.entries):
        kind, found = "dos", []
        for index, entry in enumerate(mbr.entries):
            if not entry.type or not entry.sectors:
                continue
            found.append(Partition(index + 1, entry.lba_first, entry.sectors,
                                   MBR_TYPES.get(entry.type, f"0x{entry.type:02x}")))
            if entry.type in P.EXTENDED_TYPES:
                found += _logical(device, entry.lba_first)
    else:
        return PartitionTable("none", [])
    marked = [Partition(p.number, p.start, p.sectors, p.type, p.name,
                        p.type not in ("Extended", "W95 Ext'd (LBA)", "Linux extended")
                        and holds_vexfs(device, p.offset)) for p in found]
    return PartitionTable(kind, marked)


def window(device: Device, *, sectors: int | None = None, offset: int | None = None,
           partition: int | None = None) -> tuple[int, int | None]:
    """(byte offset, length or None for "to the end") of what the options point at."""
    given = [v is not None for v in (sectors, offset, partition)]
    if sum(given) > 1:
        raise UsageError("-o, --offset and --partition exclude each other")
    if sectors is not None or offset is not None:
        where = offset if offset is not None else sectors * P.SECTOR_SIZE
        if where < 0:
            raise UsageError(f"offset {where} is negative")
        return where, None
    if partition is None:
        return 0, None
    table = read_table(device)
    if table.kind == "none":
        raise UsageError(f"{device.path}: no partition table (MBR or GPT) found")
    for p in table.partitions:
        if p.number == partition:
            return p.offset, p.length
    numbers = ", ".join(str(p.number) for p in table.partitions) or "none"
    raise UsageError(f"{device.path}: no partition {partition} (partitions: {numbers})")
