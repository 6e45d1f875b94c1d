"""The volume library (in the spirit of libext2fs): the only code that reads and writes VexFS
structures on a device, laid out as format/ declares them.

An open file system is a Volume (volume.py): its geometry, the block bitmap, the inode table,
block maps, directories, allocation and the write path. What it notices while reading it
hands up as findings (findings.py), records of codes and fields, never as sentences. mkfs,
fsck, the views and the vector tools are its users.
"""

from .volume import Volume

__all__ = ["Volume"]
