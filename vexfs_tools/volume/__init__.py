"""The volume library (in the spirit of libext2fs): the only code that reads and writes
VexFS structures on a device. mkfs, fsck, dump and search are thin users of it."""

from .volume import Volume

__all__ = ["Volume"]
