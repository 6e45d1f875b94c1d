"""A read-only window on a device: the bytes [offset, offset + length) of a whole disk image
(a partition, or what The Sleuth Kit's -o SECTORS points at), addressed from 0, with the
interface the volume library reads a Device through. Nothing outside the window is read,
and nothing is ever written through it."""

from __future__ import annotations

from collections.abc import Iterator

from .device import Device
from .errors import DeviceError, TruncatedImageError, UsageError
from .volume.volume import Volume


class OffsetDevice:
    """`device` seen from byte `offset`, `length` bytes long (None: to the device's end)."""

    writable = False
    undo = None

    def __init__(self, device: Device, offset: int, length: int | None = None):
        if offset < 0 or offset > device.size:
            device.close()
            raise UsageError(f"{device.path}: offset {offset} is outside the device ({device.size} bytes)")
        self.device = device
        self.offset = offset
        self.size = device.size - offset if length is None else min(length, device.size - offset)
        self.path = device.path
        self.is_block_device = device.is_block_device

    def _check(self, offset: int, length: int) -> None:
        if offset < 0 or offset + length > self.size:
            raise TruncatedImageError(
                f"{self.path}: read of {length} bytes at offset {offset} goes past the end of the file system's "
                f"area ({self.size} bytes from byte {self.offset}); the image is truncated")

    def read(self, offset: int, length: int) -> bytes:
        self._check(offset, length)
        return self.device.read(self.offset + offset, length)

    def read_into(self, offset: int, buffer) -> None:
        self._check(offset, len(memoryview(buffer).cast("B")))
        self.device.read_into(self.offset + offset, buffer)

    def read_runs(self, out, firsts: list[int], ends: list[int], offsets: list[int], unit: int) -> None:
        for first, end, offset in zip(firsts, ends, offsets):
            self._check(offset, (end - first) * unit)
        self.device.read_runs(out, firsts, ends, [self.offset + offset for offset in offsets], unit)

    def read_or_zeros(self, offset: int, length: int) -> bytes | bytearray:
        self._check(offset, length)
        return self.device.read_or_zeros(self.offset + offset, length)

    def is_hole(self, offset: int, length: int) -> bool:
        return self.device.is_hole(self.offset + offset, length)

    def data_ranges(self, offset: int, length: int) -> Iterator[tuple[int, int]]:
        length = max(0, min(length, self.size - offset))
        for start, end in self.device.data_ranges(self.offset + offset, length):
            yield start - self.offset, end - self.offset

    def map_readonly(self, offset: int, length: int) -> memoryview | None:
        if length <= 0 or offset < 0 or offset + length > self.size:
            return None
        return self.device.map_readonly(self.offset + offset, length)

    def write(self, offset: int, data) -> None:
        raise DeviceError(f"{self.path}: a file system inside a disk image is opened read-only")

    zero_range = write

    def flush(self) -> None:
        """Nothing is ever written through a window."""

    def close(self) -> None:
        self.device.close()

    def __enter__(self) -> "OffsetDevice":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def image_offset(device) -> int:
    """Where the file system a device object reads starts in the image file (0 unless a window)."""
    return device.offset if isinstance(device, OffsetDevice) else 0


def open_volume_in(path: str, offset: int, length: int | None, *, backup: bool = False,
                   superblock_block: int | None = None, ignore_checksums: bool = True):
    """A read-only Volume on [offset, offset + length) of the image `path`."""
    window = OffsetDevice(Device(path), offset, length)
    try:
        return Volume.open_on(window, writable=False, backup=backup, superblock_block=superblock_block,
                               ignore_checksums=ignore_checksums)
    except BaseException:
        window.close()
        raise
