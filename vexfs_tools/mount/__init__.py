"""`vexfs mount`: a read-write FUSE file system on a VexFS image or device (fuse2fs's role),
built on the write API of volume/namespace.py."""
