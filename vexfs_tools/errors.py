"""The library's exceptions. The CLIs turn every one of them into a one-line message."""


class VexfsError(Exception):
    """Root of every error the library raises on purpose."""


class DeviceError(VexfsError):
    """The device or image can not be opened, read or written as asked."""


class DeviceBusyError(DeviceError):
    """The device is mounted or held open exclusively by someone else."""


class LockedForWritingError(DeviceError):
    """A read-only open found another program writing the image (it holds the write lock)."""


class TruncatedImageError(DeviceError):
    """A read went past the end of the device."""


class FormatError(VexfsError):
    """The bytes on the device are not a usable VexFS file system."""


class BadMagicError(FormatError):
    """No VexFS magic number where a superblock should be."""


class UnsupportedFeatureError(FormatError):
    """The image carries a feature bit this version does not know."""


class ChecksumError(FormatError):
    """A metadata checksum does not match."""


class CorruptionError(FormatError):
    """A structure is inconsistent (a block number out of range, a looping chain, ...)."""


class NoSpaceError(VexfsError):
    """No free block or inode is left."""


class PathNotFoundError(VexfsError, FileNotFoundError):
    """A path does not name an entry in the file system."""


class NotADirectoryError_(VexfsError, NotADirectoryError):
    """A path component that must be a directory is not one."""


class LimitError(VexfsError):
    """What was asked does not fit the layout's limits (file size, inodes, directory size)."""


class UsageError(VexfsError):
    """Options that contradict each other or are out of range."""
