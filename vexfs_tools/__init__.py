"""vexfs-tools: offline image tools for VexFS (mkfs, fsck, dump, exact vector search)."""

__version__ = "0.1.0"
