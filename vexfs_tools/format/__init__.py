"""On-disk declarations of VexFS: the specification of docs/FORMAT.md, in code.

The construct Structs (superblock, inode, directory, blocks, vector) are the single source of
every offset and size; dtypes.py derives the numpy dtypes and struct packers from them, and
offsets.py the byte offsets for code that slices raw bytes. constants.py holds the numbers,
features.py the feature bits. Nothing here reads or writes a device; the volume library does.
"""
