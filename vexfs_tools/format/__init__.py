"""On-disk declarations of VexFS: the specification of docs/FORMAT.md, in code.

Nothing here reads or writes a device; the volume library does that.
"""
