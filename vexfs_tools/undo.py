"""Undo files (e2undo's idea): before fsck changes a block, its old contents are saved, so
`vexfs undo FILE DEVICE` can put every byte back.

File layout (little-endian): a 68-byte header — magic b"VEXFSUNDO1\\0\\0" (12 bytes), u64
device size, u32 block size, 44 reserved bytes — then records of u64 block number + 4096 old bytes,
then, once the run that wrote it finished, a trailer: magic b"VEXFSUNDOEND", u64 record
count, and the sha256 of the *new* contents of the recorded blocks, in record order. The
trailer is how undo knows the device is still exactly as the run left it.

The undo file's space is reserved ahead of the records (fallocate, KEEP_SIZE): when the file
system holding it is full, the run stops before the device block whose old bytes could not
be saved, with an error naming the undo file (UndoSpaceError); what was changed up to then
is saved, and the file has no trailer (`vexfs undo --force` puts those blocks back).
"""

from __future__ import annotations

import hashlib
import os
import struct

from .device import Device, reserve_space
from .errors import DeviceError, UsageError

MAGIC = b"VEXFSUNDO1\0\0"
END_MAGIC = b"VEXFSUNDOEND"
HEADER = struct.Struct("<12sQI44s")
RECORD = struct.Struct("<Q")
TRAILER = struct.Struct("<12sQ32s")
UNIT = 4096
RESERVE_RECORDS = 256  # records (1 MiB) reserved at a time


class UndoSpaceError(DeviceError):
    """The undo file can not grow: the run stops before the write it could not cover."""


class UndoRecorder:
    """Wraps a writable Device: the first write to each 4 KiB block saves its old bytes."""

    def __init__(self, device, path: str):
        self.device = device
        self.path = path
        self.saved: list[int] = []
        self._seen: set[int] = set()
        self.failed: str | None = None  # the UndoSpaceError message, once the file is full
        self._reserved = 0  # bytes of the file reserved so far
        try:
            self.file = open(path, "xb")
        except FileExistsError:
            raise UsageError(f"undo file {path} exists already; remove it or name another") from None
        except OSError as e:
            raise DeviceError(f"{path}: {e.strerror}") from None
        self.file.write(HEADER.pack(MAGIC, device.size, UNIT, bytes(44)))
        self._reserve(None)

    def _end(self) -> int:
        return HEADER.size + len(self.saved) * (RECORD.size + UNIT)

    def _reserve(self, block: int | None) -> None:
        """Room for one more record and the trailer, reserved RESERVE_RECORDS at a time."""
        need = self._end() + RECORD.size + UNIT + TRAILER.size
        if need <= self._reserved:
            return
        try:
            self.file.flush()
            try:
                grow = RESERVE_RECORDS * (RECORD.size + UNIT) + TRAILER.size
                reserved = reserve_space(self.file.fileno(), self._end(), grow)
            except OSError:  # not room for many: room for this one record will do
                grow = RECORD.size + UNIT + TRAILER.size
                reserved = reserve_space(self.file.fileno(), self._end(), grow)
        except OSError as e:
            if block is None:
                self.file.close()
                os.unlink(self.path)
                raise UndoSpaceError(f"undo file {self.path}: {e.strerror or e}; nothing was written "
                                     f"to {self.device.path}") from None
            self.failed = (f"undo file {self.path}: {e.strerror or e} to save the old contents of "
                           f"block {block}; stopped before changing it ({len(self.saved)} block(s) "
                           f"changed so far are saved there; `vexfs undo --force {self.path} "
                           f"{self.device.path}` puts them back)")
            raise UndoSpaceError(self.failed) from None
        self._reserved = self._end() + grow if reserved else float("inf")

    def before_write(self, offset: int, length: int) -> None:
        if self.failed:
            raise UndoSpaceError(self.failed)
        first, last = offset // UNIT, (offset + length - 1) // UNIT
        for block in range(first, last + 1):
            if block in self._seen:
                continue
            self._reserve(block)
            self._seen.add(block)
            self.file.write(RECORD.pack(block))
            self.file.write(self.device.read(block * UNIT, min(UNIT, self.device.size - block * UNIT))
                            .ljust(UNIT, b"\0"))
            self.saved.append(block)
        self.file.flush()
        os.fsync(self.file.fileno())  # the old bytes are safe before the new ones land

    def finish(self) -> None:
        if self.failed:  # no trailer: the run did not finish
            self.file.close()
            return
        digest = hashlib.sha256()
        for block in self.saved:
            digest.update(self.device.read(block * UNIT, min(UNIT, self.device.size - block * UNIT)))
        self.file.write(TRAILER.pack(END_MAGIC, len(self.saved), digest.digest()))
        self.file.close()


def read_undo(path: str):
    """(device size, [(block, old bytes)], trailer or None) from an undo file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DeviceError(f"{path}: {e.strerror}") from None
    if len(data) < HEADER.size or data[:len(MAGIC)] != MAGIC:
        raise UsageError(f"{path} is not a vexfs undo file")
    _, size, unit, _ = HEADER.unpack_from(data)
    if unit != UNIT:
        raise UsageError(f"{path}: unsupported block size {unit}")
    records, offset = [], HEADER.size
    trailer = None
    while offset < len(data):
        if data[offset:offset + len(END_MAGIC)] == END_MAGIC and len(data) - offset == TRAILER.size:
            trailer = TRAILER.unpack_from(data, offset)
            break
        if offset + RECORD.size + UNIT > len(data):
            break  # a torn last record: the write it preceded never happened
        block = RECORD.unpack_from(data, offset)[0]
        records.append((block, data[offset + RECORD.size: offset + RECORD.size + UNIT]))
        offset += RECORD.size + UNIT
    return size, records, trailer


def apply_undo(path: str, device_path: str, *, force: bool = False) -> int:
    """Put back every saved block. Refuses a device of another size, or whose recorded blocks
    no longer hold what the run left there (another device, or changed since), unless
    forced; an undo file without a trailer (the run was cut short) needs force too."""
    size, records, trailer = read_undo(path)
    with Device(device_path, writable=True) as device:
        if device.size != size:
            raise UsageError(f"{path} was made for a device of {size} bytes; {device_path} has {device.size}")
        if trailer is None and not force:
            raise UsageError(f"{path} has no end record (the run that wrote it did not finish); "
                             "use --force to restore what it saved")
        if trailer is not None and not force:
            digest = hashlib.sha256()
            for block, _ in records:
                digest.update(device.read(block * UNIT, min(UNIT, size - block * UNIT)))
            if trailer[1] != len(records) or digest.digest() != trailer[2]:
                raise UsageError(f"{path} does not belong to {device_path} as it is now (its blocks "
                                 "differ from what the run left); refusing to write")
        for block, old in records:
            device.write(block * UNIT, old[:min(UNIT, size - block * UNIT)])
    return len(records)
