"""Vector files whose bytes are genuinely many runs of blocks on the device.

`vexfs vectors add` and mkfs -d always write a vector file as one run; a file written by
another tool (or grown by the kernel) need not be. This writer allocates the file's blocks
one at a time with a spacer block allocated after each (or every few) of them (the spacers are freed
at the end, leaving free gaps), and leaves blocks of zeros unmapped (holes), so the read
paths that do not memory-map have to follow the block map.
"""

from __future__ import annotations

import os

from vexfs_tools.format import constants as C
from vexfs_tools.vectors import store
from vexfs_tools.vectors.store import VectorSource
from vexfs_tools.volume.fileio import FileData
from vexfs_tools.volume.inodes import InodeRecord
from vexfs_tools.volume.volume import Volume


def add_fragmented_vector_file(volume: Volume, path: str, source: VectorSource, *, every: int = 1) -> int:
    """Create the vector file `path` as add_vector_file would, but fragmented; its inode."""
    content = b"".join(source.chunks())
    assert len(content) == source.size
    fields = volume.new_inode_fields(0o100644)
    fields.i_flags = C.INODE_FLAG_VECTOR
    ino = volume.allocate_inode()
    spacers, mapped = [], []
    for logical in range(-(-len(content) // C.BLOCK_SIZE)):
        piece = content[logical * C.BLOCK_SIZE:(logical + 1) * C.BLOCK_SIZE]
        if not any(piece):
            continue  # a hole: reads as zeros
        volume.set_block(fields, logical, volume.allocate_block())
        fields.i_blocks += 1
        mapped.append(logical)
        if len(mapped) % every == 0:
            spacers.append(volume.allocate_block())
    fields.i_size = len(content)
    data = FileData(volume, InodeRecord(ino, fields, b""))
    for logical in mapped:
        data.write(logical * C.BLOCK_SIZE, content[logical * C.BLOCK_SIZE:(logical + 1) * C.BLOCK_SIZE])
    for block in spacers:
        volume.free_block(block)
    parent_path, _, name = path.rstrip("/").rpartition("/")
    volume.add_entry(volume.resolve(parent_path or "/").ino, os.fsencode(name), ino, C.FT_REG_FILE)
    volume.write_inode(ino, fields)
    store._enable_feature(volume)
    return ino

