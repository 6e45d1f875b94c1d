"""Maintenance tools (tune2fs, e2image): change superblock fields and features of an
unmounted image, and copy its metadata for bug reports."""
