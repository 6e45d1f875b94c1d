"""Pass 6: vector files (docs/FORMAT.md §9). For every inode flagged VECTOR: the flag <->
feature rule, the header (every field against the layout, restored from its copy when
damaged), each data chunk's crc32c, the ids' checksum and their uniqueness.

Repairs lose nothing and bless nothing: a header is only ever replaced by a copy whose own
checksum proves it good, and no checksum is recomputed over data; a damaged chunk or id
array stays reported (the check exits 4, under -n as after -y).
"""

from __future__ import annotations

import numpy as np

from ..errors import CorruptionError, VexfsError
from ..format import constants as C
from ..format import features as F
from ..format import vector as V
from ..vectors.codec import VectorInfo, decode_header
from ..vectors.files import MAX_HEADER_BYTES, VectorFile
from ..volume.fileio import FileData
from ..volume.geometry import KERNEL
from ..volume.inodes import InodeRecord
from .context import Checker

SHOWN_DUPLICATES = 10  # duplicate ids named in a message


def run_pass_vectors(checker: Checker) -> None:
    volume = checker.volume
    if volume.layout == KERNEL:
        return  # the kernel layout's i_flags is a size snapshot: no vector files
    flagged = _flagged_inodes(checker)
    feature = F.BY_NAME["vector_files"].bit
    if not flagged:
        return
    checker.emit("Pass 6: Checking vector files")
    for ino in flagged:
        inode = volume.read_inode(ino)
        contents = _contents(volume, inode) if inode.is_reg else None
        info = _check_header(checker, inode, contents)
        if info is None or contents is None:
            continue
        if not volume.sb.s_feature_ro_compat & feature and checker.fix("VECTOR_NO_FEATURE", ino=ino):
            volume.sb.s_feature_ro_compat |= feature
            volume.features = type(volume.features).of(volume.sb)
            volume.sb_dirty = True
        # No path: the checks name the file through the findings' `ino`, and asking for a
        # path here would walk the whole tree in Python on every check of a clean image.
        vf = VectorFile(volume, volume.read_inode(ino), info)
        _check_contents(checker, vf.use_contents(contents))


def _flagged_inodes(checker: Checker) -> list[int]:
    out: list[int] = []
    for first_ino, records in checker.volume.inode_table(skip_holes=True):
        hit = (records["i_mode"] != 0) & ((records["i_flags"] & C.INODE_FLAG_VECTOR) != 0)
        out.extend((np.flatnonzero(hit) + first_ino).tolist())
    return out


def _contents(volume, inode: InodeRecord) -> FileData:
    """The file's bytes through its runs (found once), up to i_size."""
    return FileData(volume, inode, -(-min(inode.i_size, volume.max_file_size()) // C.BLOCK_SIZE))


def _decode_at(contents: FileData, offset: int, size: int) -> VectorInfo:
    """The header whose blocks start at file offset `offset`, checked (CorruptionError)."""
    first = contents.read(offset, min(C.BLOCK_SIZE, max(size - offset, 0)))
    if len(first) < V.VECTOR_HEADER_FIXED or first[:8] != V.VECTOR_MAGIC:
        raise CorruptionError("no VXVECTOR magic")
    header_bytes = V.parse_field(V.VectorHeader, "header_blocks", first) * C.BLOCK_SIZE
    head = contents.read(offset, min(max(header_bytes, C.BLOCK_SIZE), MAX_HEADER_BYTES, max(size - offset, 0)))
    return decode_header(head, size)


def find_copy(volume, inode: InodeRecord, contents: FileData | None = None) -> tuple[int, VectorInfo] | None:
    """(offset, header) of a good copy of the header at the end of the file: the copy of
    h blocks starts h blocks before i_size, and is good only if its own checksum holds and
    it puts itself exactly there."""
    size = inode.i_size
    contents = contents or _contents(volume, inode)
    for blocks in range(1, min(size // C.BLOCK_SIZE, MAX_HEADER_BYTES // C.BLOCK_SIZE) + 1):
        offset = size - blocks * C.BLOCK_SIZE
        if contents.read(offset, 8) != V.VECTOR_MAGIC:
            continue
        try:
            info = _decode_at(contents, offset, size)
        except CorruptionError:
            continue
        if info.header_bytes == blocks * C.BLOCK_SIZE and info.copy_offset == offset:
            return offset, info
    return None


def _check_header(checker: Checker, inode: InodeRecord, contents: FileData | None) -> VectorInfo | None:
    """The file's good header, read through `contents` (its runs; None for a file that is
    not regular), after restoring it from its copy if need be; None when the file can not
    be read as a vector file (reported)."""
    volume = checker.volume
    ino = inode.ino
    if not inode.is_reg:
        if checker.fix("VECTOR_FLAG_NOT_REGULAR", ino=ino):
            _clear_flag(volume, ino)
        return None
    assert contents is not None  # a regular file's runs
    try:
        info = _decode_at(contents, 0, inode.i_size)
    except (CorruptionError, VexfsError) as damage:
        copy = find_copy(volume, inode, contents)
        if copy is None:
            if contents.read(0, 8) != V.VECTOR_MAGIC:
                if checker.fix("VECTOR_FLAG_NOT_VECTOR", ino=ino):
                    _clear_flag(volume, ino)
            else:
                checker.report("VECTOR_HEADER_LOST", ino=ino, reason=str(damage))
            return None
        offset, info = copy
        if not checker.fix("VECTOR_HEADER_DAMAGED", ino=ino, reason=str(damage), offset=offset):
            return info  # the rest is checked against the copy
        contents.write(0, contents.read(offset, info.header_bytes))
        return info
    offset = info.copy_offset
    if offset is not None:
        primary = contents.read(0, info.header_bytes)
        if contents.read(offset, info.header_bytes) != primary and \
                checker.fix("VECTOR_COPY_DIFFERS", ino=ino, offset=offset):
            contents.write(offset, primary)
    return info


def _clear_flag(volume, ino: int) -> None:
    inode = volume.read_inode(ino)
    inode.fields.i_flags &= ~C.INODE_FLAG_VECTOR
    volume.write_inode(ino, inode.fields)


def _check_contents(checker: Checker, vf: VectorFile) -> None:
    """Every chunk's and the ids' checksums, then unique ids. (A hole in the block map
    reads as zeros, as in any file: the checksums say whether that is right.)"""
    info = vf.info
    ino = vf.inode.ino
    if _data_not_stored(checker.volume, vf):
        return
    bad = vf.bad_chunks()
    for index in bad:
        if index < 0:
            checker.report("VECTOR_IDS_CHECKSUM", ino=ino, last=max(info.count - 1, 0))
        else:
            first, last = info.rows_of_chunk(index)
            checker.report("VECTOR_CHUNK_CHECKSUM", ino=ino, chunk=index, first=first, last=last)
    if -1 not in bad:
        _check_unique(checker, vf)


def _data_not_stored(volume, vf: VectorFile) -> bool:
    """True when none of the file's vector data and ids is stored: every byte of them lies in
    holes of an image file (a metadata image, `vexfs image`, leaves file data out). Such a
    file has no contents to check; on a block device, or with any byte stored, it does."""
    info = vf.info
    length = info.ids_offset + info.ids_bytes - info.data_offset
    if length <= 0 or volume.device.is_block_device:
        return False
    return all(device_offset is None or volume.device.is_hole(device_offset, size)
               for _, device_offset, size in vf.contents.pieces(info.data_offset, length))


def _check_unique(checker: Checker, vf: VectorFile) -> None:
    ids = np.asarray(vf.ids())
    if len(ids) < 2 or bool((ids[1:] > ids[:-1]).all()):
        return  # increasing, as add and mkfs -d write them: unique without a sort
    ids = np.sort(ids)
    repeated = np.unique(ids[1:][ids[1:] == ids[:-1]])
    if len(repeated):
        shown = ", ".join(str(int(x)) for x in repeated[:SHOWN_DUPLICATES])
        more = f" and {len(repeated) - SHOWN_DUPLICATES} more" if len(repeated) > SHOWN_DUPLICATES else ""
        checker.report("VECTOR_IDS_DUPLICATE", ino=vf.inode.ino, count=len(repeated), ids=shown + more)
