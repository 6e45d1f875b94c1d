"""The file system's inventory as DFXML, the format fiwalk writes: one <volume> with the file
system's facts and one <fileobject> per name — live, deleted (directory slack, alloc 0),
read from directories recovered from the kernel's orphaned blocks, and inodes in use that no
name reaches ($OrphanFiles, as The Sleuth Kit names them).

The document is streamed: one fileobject is built, written and forgotten at a time, and a
file's data is read once, in chunks, for both digests. Element names and their order are
fiwalk's; what VexFS adds (vector files' shape, recovered names) is in our own namespace,
at the end of a fileobject, where DFXML readers skip it.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from hashlib import md5, sha1
from typing import NamedTuple

import numpy as np

from ..errors import VexfsError
from ..format import constants as C
from ..format import vector as V
from ..format.dtypes import INODE_DTYPE
from ..vectors.codec import decode_header
from ..volume.geometry import EXTENDED
from ..volume.inodes import InodeRecord
from ..volume.volume import Volume
from .names import display
from .allnames import ORPHANS, Name, every_name
from .recovery import Entry, Recovery, bulk_inodes, table_in_map, table_rows
from .timeline import NAME_TYPE
from .xmltext import escape, quoteattr

DFXML_NS = "http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML"
DC_NS = "http://purl.org/dc/elements/1.1/"
VEXFS_NS = "https://github.com/vexfs/vexfs-tools/dfxml"
SECTOR_SIZE = 512
# TSK_FS_META_TYPE_ENUM, what fiwalk writes in <meta_type>.
META_TYPE = {C.S_IFREG: 1, C.S_IFDIR: 2, C.S_IFIFO: 3, C.S_IFCHR: 4, C.S_IFBLK: 5, C.S_IFLNK: 6, C.S_IFSOCK: 8}
HASHED_FORMATS = (C.S_IFREG,)
MAPPED_FORMATS = (C.S_IFREG, C.S_IFDIR, C.S_IFLNK)
READ_CHUNK = 8 << 20
# A file whose holes hold more zeros than this is not hashed (a <vexfs:unhashed> says why):
# an inode may claim terabytes of sparse size, and zeros are hashed at ~0.5 GiB/s.
HASH_HOLE_LIMIT = 1 << 30
HEAD_BYTES = 1 << 20
EMPTY_MD5, EMPTY_SHA1 = hashlib.md5().hexdigest(), hashlib.sha1().hexdigest()


@dataclass
class FileObject:
    """One name and what its inode holds, as a fileobject says it."""

    path: bytes  # b"/a/b"; fiwalk writes it without the leading "/"
    ino: int
    file_type: int  # the directory entry's type
    inode: InodeRecord | None
    parent_ino: int
    alloc: bool
    recovered: bool = False  # read from a directory recovered from an orphaned block
    runs: list[tuple[int, int, int]] = field(default_factory=list)  # (file offset, fs offset, length)
    md5: str | None = None
    sha1: str | None = None
    vector: dict | None = None  # dimensions, element_type, count
    recovered_block: int | None = None  # a directory whose only block is an orphaned one
    unhashed: str | None = None  # why a regular file has no digests


@functools.lru_cache(maxsize=8192)
def iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def text(value: str) -> str:
    """A name for XML: shown as the other views show it (\\xNN for what is not printable
    UTF-8, so no control character reaches the document), then XML-escaped."""
    return escape(value)


def byte_runs(volume: Volume, recovery: Recovery, inode: InodeRecord) -> list[tuple[int, int, int]]:
    """(file offset, fs offset, length) of the file's data, cut at i_size; a directory's
    blocks (its recovered block too)."""
    if inode.is_dir:
        blocks, _ = recovery.dir_blocks(inode)
        return [(n * C.BLOCK_SIZE, block * C.BLOCK_SIZE, C.BLOCK_SIZE) for n, block in enumerate(blocks)]
    size = min(inode.i_size, volume.max_file_size())
    count = -(-size // C.BLOCK_SIZE)
    if count <= C.DIRECT_BLOCKS:
        return _direct_runs(volume, inode, size, count)
    runs = []
    for logical, physical, count in volume.block_map(inode).runs(count):
        start = logical * C.BLOCK_SIZE
        length = min(count * C.BLOCK_SIZE, size - start)
        if length > 0:
            runs.append((start, physical * C.BLOCK_SIZE, length))
    return runs


def _direct_runs(volume: Volume, inode: InodeRecord, size: int, count: int) -> list[tuple[int, int, int]]:
    """byte_runs of a file its direct pointers hold, without a BlockMap: what its mapping
    gives below `count` blocks (holes and pointers is_data_block refuses left out)."""
    g = volume.geometry
    first, end, backup = g.first_data_block, g.addressable_blocks, g.backup_sb_block
    runs: list[list[int]] = []  # [logical, physical, blocks]
    for logical, physical in enumerate(inode.fields["i_block"][:count]):
        if not physical or not (first <= physical < end) or physical == backup:
            continue
        if runs and logical == runs[-1][0] + runs[-1][2] and physical == runs[-1][1] + runs[-1][2]:
            runs[-1][2] += 1
        else:
            runs.append([logical, physical, 1])
    return [(logical * C.BLOCK_SIZE, physical * C.BLOCK_SIZE, min(blocks * C.BLOCK_SIZE, size - logical * C.BLOCK_SIZE))
            for logical, physical, blocks in runs]


def vector_shape(volume: Volume, inode: InodeRecord, head: bytes | None = None) -> dict | None:
    """dims, element type and count of a vector file (None: not one, or a bad header)."""
    if volume.layout != EXTENDED or not inode.i_flags & C.INODE_FLAG_VECTOR or not inode.is_reg:
        return None
    try:
        if head is None or len(head) < V.VECTOR_HEADER_FIXED:
            head = volume.read_bytes(inode, 1 << 20)
        info = decode_header(head, inode.i_size)
    except VexfsError:
        return {"error": "unreadable vector header"}
    return {"dimensions": info.dimensions, "element_type": info.element_name, "count": info.count}


def digests(volume: Volume, runs: list[tuple[int, int, int]], size: int,
            image: memoryview | None = None) -> tuple[str, str, bytes]:
    """md5 and sha1 of a file's bytes read once through its runs (holes as zeros), and its
    first bytes (a vector file's header). `image`: the image mapped (Recovery.image_map),
    where a small file's bytes are hashed without a read."""
    if not runs and not size:
        return EMPTY_MD5, EMPTY_SHA1, b""
    if len(runs) == 1 and runs[0][0] == 0 and runs[0][2] == size <= READ_CHUNK:
        where = runs[0][1]  # a small file in one run: the common case
        if image is not None and where + size <= len(image):
            data = image[where:where + size]
            return hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest(), bytes(data[:HEAD_BYTES])
        data = volume.device.read(where, size)
        return hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest(), data[:HEAD_BYTES]
    md5, sha1 = hashlib.md5(), hashlib.sha1()
    read = volume.device.read
    head = b""
    position = 0

    def zeros(n: int) -> None:
        block = memoryview(_zeros())
        while n > 0:
            piece = block[:min(n, READ_CHUNK)]
            md5.update(piece)
            sha1.update(piece)
            n -= len(piece)

    for file_offset, where, length in runs:
        zeros(file_offset - position)
        for start in range(0, length, READ_CHUNK):
            piece = read(where + start, min(READ_CHUNK, length - start))
            if not head:
                head = piece[:HEAD_BYTES]
            md5.update(piece)
            sha1.update(piece)
        position = file_offset + length
    zeros(size - position)
    return md5.hexdigest(), sha1.hexdigest(), head


@functools.lru_cache(maxsize=1)
def _zeros() -> bytes:
    """READ_CHUNK zero bytes, made once: holes are hashed from slices of it."""
    return bytes(READ_CHUNK)


def hole_bytes(runs: list[tuple[int, int, int]], size: int) -> int:
    """How many of a file's `size` bytes its runs do not hold (read as zeros)."""
    return size - sum(length for _, _, length in runs)


def fill(volume: Volume, recovery: Recovery, obj: FileObject, *, hashes: bool) -> None:
    """Byte runs, digests and vector shape of the object's inode, the data read once."""
    inode = obj.inode
    if inode is None:
        return
    fields = inode.fields
    fmt = fields["i_mode"] & C.S_IFMT
    if fmt not in MAPPED_FORMATS:
        return
    try:
        if fmt == C.S_IFDIR:
            blocks, obj.recovered_block = recovery.dir_blocks(inode)
            obj.runs = [(n * C.BLOCK_SIZE, block * C.BLOCK_SIZE, C.BLOCK_SIZE) for n, block in enumerate(blocks)]
            return
        obj.runs = byte_runs(volume, recovery, inode)
    except VexfsError:
        obj.runs = []
        return
    head = None
    if hashes and fmt in HASHED_FORMATS:
        size = min(fields["i_size"], volume.max_file_size())
        holes = hole_bytes(obj.runs, size)
        if holes > HASH_HOLE_LIMIT:
            obj.unhashed = f"{holes} bytes of holes, more than {HASH_HOLE_LIMIT}: not hashed"
        else:
            try:
                obj.md5, obj.sha1, head = digests(volume, obj.runs, size, recovery.image_map())
            except VexfsError:
                pass
    if fmt == C.S_IFREG and fields["i_flags"] & C.INODE_FLAG_VECTOR and volume.layout == EXTENDED:
        obj.vector = vector_shape(volume, inode, head)


def file_objects(recovery: Recovery, *, hashes: bool = True, orphans: bool = True,
                 progress: Callable[[int], None] | None = None) -> Iterator[FileObject]:
    """Every live name, every deleted one (deleted directories that still hold data are
    walked too) and, with `orphans`, every inode in use that no name reaches."""
    volume = recovery.volume
    for name in every_name(recovery, orphans=orphans, progress=progress, plain=bulk_inodes(recovery)):
        yield file_object(volume, recovery, name, hashes=hashes)


def file_object(volume: Volume, recovery: Recovery, name: Name, *, hashes: bool) -> FileObject:
    """The FileObject of one name of every_name, filled."""
    item = name.deleted
    if item is None:
        obj = FileObject(name.path, name.ino, name.file_type, name.inode, name.parent_ino,
                         alloc=not (name.inside_deleted or name.orphan), recovered=name.recovered)
        fill(volume, recovery, obj, hashes=hashes)
    else:
        inode = name.inode if name.inode is not None and name.inode.in_use else None
        obj = FileObject(name.path, name.ino, name.file_type, inode, name.parent_ino, alloc=False,
                         recovered=name.recovered)
        if item.holds_data:
            fill(volume, recovery, obj, hashes=hashes)
    return obj


class Prefab(NamedTuple):
    """A plain regular file's fileobject text, made in bulk (prefab_files): what comes
    before <alloc> (from <name_type>) and after it (to the digests); the name, id, alloc
    and recovered marks are the walk's, added as it is written."""

    head: str
    tail: str


def prefab_files(recovery: Recovery, *, hashes: bool, fs_offset: int,
                 indent: str = "    ") -> Callable[[list[Entry]], list]:
    """walk()'s hook for write_dfxml: what bulk_inodes gives, except that a regular file
    held in one run of valid direct blocks inside the image map (not a vector file) comes
    as a Prefab, its fileobject text as fileobject_xml writes it, its digests hashed from
    the map: no InodeRecord, FileObject or run list a file. None where bulk_inodes is."""
    inodes = bulk_inodes(recovery)
    if inodes is None:
        return None
    volume, image = recovery.volume, recovery.image_map()
    table = table_in_map(volume, image)
    g = volume.geometry
    vectors = volume.layout == EXTENDED
    i2 = indent + "  "
    times: dict[tuple[int, int, int], str] = {}  # (mtime, ctime, atime) -> their lines

    def hook(entries: list[Entry]) -> list:
        if not entries:
            return []
        found: list = [None] * len(entries)
        picked, raw = table_rows(volume, table, entries)
        records = raw.view(INODE_DTYPE).reshape(-1)
        mode = records["i_mode"].astype(np.int64)
        size = records["i_size"].astype(np.uint64)
        small = size <= C.DIRECT_BLOCKS * C.BLOCK_SIZE
        size = np.where(small, size, 0).astype(np.int64)
        count = -(-size // C.BLOCK_SIZE)
        pointers = records["i_block"]
        steps = np.arange(C.DIRECT_BLOCKS)
        needed = steps[None, :] < count[:, None]
        wide = pointers.astype(np.int64)
        sound = g.data_block_mask(pointers) & (wide == wide[:, :1] + steps[None, :])
        ok = (((mode & C.S_IFMT) == C.S_IFREG) & small & (sound | ~needed).all(axis=1)
              & ((count == 0) | ((wide[:, 0] + count) * C.BLOCK_SIZE <= len(image))))
        if vectors:
            ok &= (records["i_flags"] & C.INODE_FLAG_VECTOR) == 0
        rows = np.flatnonzero(ok)
        rest = np.ones(len(entries), bool)
        rest[picked[rows]] = False
        rest = np.flatnonzero(rest).tolist()
        for at, inode in zip(rest, inodes([entries[at] for at in rest])):
            found[at] = inode
        columns = [records[name][rows].tolist() for name in ("i_links_count", "i_uid", "i_gid", "i_mtime",
                                                               "i_ctime", "i_atime")]
        for at, length, where, bits, nlink, uid, gid, mtime, ctime, atime in zip(
                picked[rows].tolist(), size[rows].tolist(), (wide[rows, 0] * C.BLOCK_SIZE).tolist(),
                (mode[rows] & 0o7777).tolist(), *columns):
            _, ino, file_type, _, _ = entries[at]
            stamp = times.get((mtime, ctime, atime))
            if stamp is None:
                if len(times) > 4096:
                    times.clear()
                stamp = times[mtime, ctime, atime] = time_lines(mtime, ctime, atime, i2)
            head = f"{i2}<name_type>{NAME_TYPE.get(file_type, '-')}</name_type>\n{i2}<filesize>{length}</filesize>\n"
            runs = (f"{i2}<byte_runs>\n{i2}  <byte_run file_offset='0' fs_offset='{where}' "
                    f"img_offset='{where + fs_offset}' len='{length}'/>\n{i2}</byte_runs>\n") if length else ""
            if hashes:
                data = image[where:where + length]
                runs += (f"{i2}<hashdigest type='md5'>{md5(data).hexdigest() if length else EMPTY_MD5}</hashdigest>\n"
                         f"{i2}<hashdigest type='sha1'>{sha1(data).hexdigest() if length else EMPTY_SHA1}"
                         "</hashdigest>\n")
            tail = (f"{i2}<used>1</used>\n{i2}<meta_type>1</meta_type>\n{i2}<mode>{bits}</mode>\n"
                    f"{i2}<nlink>{nlink}</nlink>\n{i2}<uid>{uid}</uid>\n{i2}<gid>{gid}</gid>\n{stamp}"
                    f"{i2}<inode>{ino}</inode>\n{runs}")
            found[at] = Prefab(head, tail)
        return found

    return hook


def time_lines(mtime: int, ctime: int, atime: int, indent: str) -> str:
    """A fileobject's <mtime>, <ctime> and <atime> lines (a time of 0 has none)."""
    return ((f"{indent}<mtime>{iso(mtime)}</mtime>\n" if mtime else "")
            + (f"{indent}<ctime>{iso(ctime)}</ctime>\n" if ctime else "")
            + (f"{indent}<atime>{iso(atime)}</atime>\n" if atime else ""))


def fileobject_xml(obj: FileObject, ident: int, fs_offset: int, indent: str = "    ", *, attrs: str = "",
                   extra: str = "") -> str:
    """One <fileobject>, fiwalk's element order; `fs_offset` is where the file system
    starts in the image (img_offset = fs_offset + that). `attrs` and `extra` (whole
    lines) are for differential DFXML's delta markers. Written as text (a line a piece),
    no element tree: one is written for every name of the image."""
    i2 = indent + "  "
    parent = f"{i2}<parent_object><inode>{obj.parent_ino}</inode></parent_object>\n" if obj.parent_ino else ""
    inode = obj.inode
    if inode is None:
        meta = f"{i2}<alloc>{int(obj.alloc)}</alloc>\n"
    else:
        f = inode.fields
        mode, mtime, ctime, atime = f["i_mode"], f["i_mtime"], f["i_ctime"], f["i_atime"]
        meta = (f"{i2}<filesize>{f['i_size']}</filesize>\n{i2}<alloc>{int(obj.alloc)}</alloc>\n"
                f"{i2}<used>1</used>\n{i2}<meta_type>{META_TYPE.get(mode & C.S_IFMT, 0)}</meta_type>\n"
                f"{i2}<mode>{mode & 0o7777}</mode>\n{i2}<nlink>{f['i_links_count']}</nlink>\n"
                f"{i2}<uid>{f['i_uid']}</uid>\n{i2}<gid>{f['i_gid']}</gid>\n" + time_lines(mtime, ctime, atime, i2))
    parts = [f"{indent}<fileobject{attrs}>\n{parent}"
             f"{i2}<filename>{text(display(obj.path.lstrip(b'/')))}</filename>\n{i2}<id>{ident}</id>\n"
             f"{i2}<name_type>{NAME_TYPE.get(obj.file_type, '-')}</name_type>\n{meta}{i2}<inode>{obj.ino}</inode>\n"]
    if obj.runs:
        parts.append(f"{i2}<byte_runs>\n")
        for file_offset, where, length in obj.runs:
            parts.append(f"{i2}  <byte_run file_offset='{file_offset}' fs_offset='{where}' "
                         f"img_offset='{where + fs_offset}' len='{length}'/>\n")
        parts.append(f"{i2}</byte_runs>\n")
    if obj.md5 is not None:
        parts.append(f"{i2}<hashdigest type='md5'>{obj.md5}</hashdigest>\n"
                     f"{i2}<hashdigest type='sha1'>{obj.sha1}</hashdigest>\n")
    if obj.recovered:
        parts.append(f"{i2}<vexfs:recovered>1</vexfs:recovered>\n")
    if obj.recovered_block is not None:
        parts.append(f"{i2}<vexfs:recovered_block>{obj.recovered_block}</vexfs:recovered_block>\n")
    if obj.vector is not None:
        if "error" in obj.vector:
            parts.append(f"{i2}<vexfs:vector><vexfs:error>{text(obj.vector['error'])}</vexfs:error>"
                         "</vexfs:vector>\n")
        else:
            parts.append(f"{i2}<vexfs:vector><vexfs:dimensions>{obj.vector['dimensions']}</vexfs:dimensions>"
                         f"<vexfs:element_type>{obj.vector['element_type']}</vexfs:element_type>"
                         f"<vexfs:count>{obj.vector['count']}</vexfs:count></vexfs:vector>\n")
    if obj.unhashed is not None:
        parts.append(f"{i2}<vexfs:unhashed>{text(obj.unhashed)}</vexfs:unhashed>\n")
    if extra:
        parts.append(extra.rstrip("\n") + "\n")
    parts.append(f"{indent}</fileobject>\n")
    return "".join(parts)


def header_xml(image: str, command_line: str, version: str, *, namespaces: str = "") -> str:
    return (f"<?xml version='1.0' encoding='UTF-8'?>\n"
            f"<dfxml xmloutputversion='1.0' xmlns={quoteattr(DFXML_NS)} xmlns:dc={quoteattr(DC_NS)} "
            f"xmlns:vexfs={quoteattr(VEXFS_NS)}{namespaces}>\n"
            f"  <metadata>\n    <dc:type>Disk Image</dc:type>\n  </metadata>\n"
            f"  <creator version='1.0'>\n    <program>vexfs dfxml</program>\n    <version>{escape(version)}</version>\n"
            f"    <execution_environment>\n      <command_line>{escape(command_line)}</command_line>\n"
            f"      <start_time>{iso(int(time.time()))}</start_time>\n    </execution_environment>\n"
            f"  </creator>\n"
            f"  <source>\n    <image_filename>{escape(image)}</image_filename>\n  </source>\n")


def volume_open_xml(volume: Volume, fs_offset: int) -> str:
    """<volume> and the file system's facts, fiwalk's elements first, ours after."""
    g = volume.geometry
    sb = volume.sb
    uuid = bytes(sb.s_uuid).hex()
    label = bytes(sb.s_volume_name).rstrip(b"\0")
    return (f"  <volume offset='{fs_offset}'>\n"
            f"    <partition_offset>{fs_offset}</partition_offset>\n"
            f"    <sector_size>{SECTOR_SIZE}</sector_size>\n"
            f"    <block_size>{C.BLOCK_SIZE}</block_size>\n"
            f"    <ftype_str>vexfs</ftype_str>\n"
            f"    <block_count>{g.blocks_count}</block_count>\n"
            f"    <first_block>0</first_block>\n"
            f"    <last_block>{g.blocks_count - 1}</last_block>\n"
            f"    <allocated_only>0</allocated_only>\n"
            f"    <vexfs:layout>{volume.layout}</vexfs:layout>\n"
            f"    <vexfs:inode_count>{g.inode_slots}</vexfs:inode_count>\n"
            f"    <vexfs:label>{text(display(label))}</vexfs:label>\n"
            f"    <vexfs:uuid>{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:]}</vexfs:uuid>\n")


def write_dfxml(write: Callable[[str], None], volume: Volume, *, image: str, command_line: str = "",
                version: str = "", hashes: bool = True, fs_offset: int = 0,
                progress: Callable[[int], None] | None = None) -> int:
    """Stream the whole document through `write`; returns the number of fileobjects.
    Plain files come from prefab_files (text made in bulk), the rest through
    file_object and fileobject_xml; both write the same text."""
    write(header_xml(image, command_line, version))
    write(volume_open_xml(volume, fs_offset))
    recovery = Recovery(volume)
    indent, i2 = "    ", "      "
    plain = prefab_files(recovery, hashes=hashes, fs_offset=fs_offset, indent=indent)
    count = 0
    batch: list[str] = []
    for count, name in enumerate(every_name(recovery, progress=progress, plain=plain), 1):
        inode = name.inode
        if inode.__class__ is Prefab and name.deleted is None:
            parent = f"{i2}<parent_object><inode>{name.parent_ino}</inode></parent_object>\n" \
                if name.parent_ino else ""
            batch.append(f"{indent}<fileobject>\n{parent}{i2}<filename>{text(display(name.path.lstrip(b'/')))}"
                         f"</filename>\n{i2}<id>{count}</id>\n{inode.head}{i2}<alloc>{int(not name.inside_deleted)}"
                         f"</alloc>\n{inode.tail}"
                         + (f"{i2}<vexfs:recovered>1</vexfs:recovered>\n" if name.recovered else "")
                         + f"{indent}</fileobject>\n")
        else:
            batch.append(fileobject_xml(file_object(volume, recovery, name, hashes=hashes), count, fs_offset, indent))
        if len(batch) >= 256:
            write("".join(batch))
            batch.clear()
    write("".join(batch))
    write("  </volume>\n</dfxml>\n")
    return count


__all__ = ["FileObject", "file_objects", "file_object", "prefab_files", "Prefab", "fileobject_xml", "write_dfxml", "ORPHANS", "VEXFS_NS", "DFXML_NS"]
