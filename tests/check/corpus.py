"""The corruption corpus, in e2fsprogs' manner (tests/f_*): each class is a small generator
applied to a freshly made, populated image. A generator damages exactly one thing, either
by writing bytes at computed offsets or through the volume library, resealing checksums
wherever the class is about something other than checksums, so the class is what its name
says. It returns what the repair is expected to do to the tree (files moved to
/lost+found, changed or gone); every other file must read back byte-identical.

Golden transcripts of the repair (-y) and of the check after it (-n) are kept in
tests/fixtures/fsck/<class>-<layout>/expect.1 and expect.2.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vexfs_tools.format import constants as C
from vexfs_tools.format.dtypes import DIRENT_HEADER
from vexfs_tools.format.offsets import SUPERBLOCK_CHECKSUM_OFFSET
from vexfs_tools.volume import checksums, directory
from vexfs_tools.volume import superblock as sbio
from vexfs_tools.volume.inodes import build_inode, parse_inode
from vexfs_tools.volume.volume import Volume

KERNEL, EXTENDED = "kernel", "extended"
LAYOUTS = (KERNEL, EXTENDED)
EPOCH = "1700000000"
UUID = "12345678-1234-5678-1234-567812345678"
IMAGE_SIZE = "8M"
GONE = object()  # an expected value: the path no longer exists

# --- the source tree ---------------------------------------------------------------------


def content(name: str, size: int) -> bytes:
    """Deterministic, incompressible bytes for a file."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{name}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


MANY = 40  # files in /many: two directory blocks in the extended layout
BIG = 64 * 1024 + 5000  # /big.bin: 18 blocks, 6 of them through its single indirect block


def tree_spec(layout: str) -> tuple[dict[str, int], list[str], dict[str, str], list[str]]:
    """(files and sizes, directories, symlinks, fifos) of the source tree."""
    files = {"empty.txt": 0, "one.bin": 1, "hundred.txt": 100, "page.bin": 4096, "five_k.bin": 5000,
             "docs/twenty_k.bin": 20000, "docs/deep/note.txt": 100, "docs/deep/page2.bin": 4096}
    dirs = ["docs", "docs/deep", "docs/deep/empty_dir", "vectors"]
    links = {"link": "docs/deep/note.txt"}
    fifos = ["pipe"]
    if layout == EXTENDED:
        files["big.bin"] = BIG
        dirs.append("many")
        for i in range(MANY):
            files[f"many/{'n' * 90}{i:03d}.txt"] = 10 + i
    return files, dirs, links, fifos


def make_tree(root: Path, layout: str) -> dict[str, bytes]:
    """Write the source tree under root; returns {'/path': contents} of files and symlinks
    (a symlink's contents are its target)."""
    files, dirs, links, fifos = tree_spec(layout)
    root.mkdir(parents=True)
    for d in dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, size in files.items():
        data = content(name, size)
        (root / name).write_bytes(data)
        (root / name).chmod(0o644)
        expected["/" + name] = data
    for name, target in links.items():
        os.symlink(target, root / name)
        expected["/" + name] = target.encode()
    for name in fifos:
        os.mkfifo(root / name, 0o644)
        (root / name).chmod(0o644)
    for d in dirs:
        (root / d).chmod(0o755)
    root.chmod(0o755)
    return expected


def mkfs_args(layout: str, tree: Path, image: Path) -> list[str]:
    compat = ["--compat", "kernel"] if layout == KERNEL else []
    return ["-q", "-s", IMAGE_SIZE, "-U", UUID, *compat, "-d", str(tree), str(image)]


MKFS_ENV = {"SOURCE_DATE_EPOCH": EPOCH}

# --- reading back ------------------------------------------------------------------------


def read_back(image: Path, paths: list[str]) -> dict[str, bytes | None]:
    """Contents of each path through the library (None when it does not resolve)."""
    out: dict[str, bytes | None] = {}
    with Volume.open(str(image)) as volume:
        for path in paths:
            try:
                inode = volume.resolve(path)
            except Exception:  # noqa: BLE001 - any failure to resolve is "not there"
                out[path] = None
                continue
            out[path] = b"".join(volume.read_file(inode))
    return out


# --- the image a generator works on --------------------------------------------------------


@dataclass
class Expect:
    """What the repair is expected to do to the tree: `moved` maps an old path (file or
    directory) to its new one; `changed` maps a path to its expected contents after the
    repair, or GONE."""

    moved: dict[str, str] = field(default_factory=dict)
    changed: dict[str, object] = field(default_factory=dict)

    def where(self, path: str) -> str:
        for old, new in self.moved.items():
            if path == old or path.startswith(old + "/"):
                return new + path[len(old):]
        return path


class Img:
    """A freshly made image and the means to damage it."""

    def __init__(self, path: Path, layout: str):
        self.path = path
        self.layout = layout
        with Volume.open(str(path)) as volume:
            self.geometry = volume.geometry
            self.seed = volume.seed
            self.chain_end = volume.chain_end

    # raw bytes
    def read(self, offset: int, length: int) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(length)

    def write(self, offset: int, data: bytes) -> None:
        with open(self.path, "r+b") as f:
            f.seek(offset)
            f.write(data)

    def read_block(self, block: int) -> bytearray:
        return bytearray(self.read(block * C.BLOCK_SIZE, C.BLOCK_SIZE))

    def write_block(self, block: int, data: bytes) -> None:
        assert len(data) == C.BLOCK_SIZE
        self.write(block * C.BLOCK_SIZE, bytes(data))

    def set_indirect_pointer(self, path: str, index: int, value: int) -> bytearray:
        """Pointer `index` of the file's single indirect block becomes `value`, the block
        resealed; returns the block as written."""
        block = self.inode(self.ino(path)).fields.i_indirect
        data = self.read_block(block)
        struct.pack_into("<I", data, 4 * index, value)
        checksums.set_tail(self.seed, block, data)
        self.write_block(block, data)
        return data

    # the library
    def volume(self, writable: bool = False) -> Volume:
        return Volume.open(str(self.path), writable=writable, ignore_checksums=True)

    def ino(self, path: str) -> int:
        with self.volume() as volume:
            return volume.resolve(path).ino

    # inodes
    def inode_offset(self, ino: int) -> int:
        block, offset = self.geometry.inode_location(ino)
        return block * C.BLOCK_SIZE + offset

    def inode(self, ino: int):
        return parse_inode(ino, self.read(self.inode_offset(ino), C.INODE_SIZE))

    def set_inode(self, ino: int, *, reseal: bool = True, **changes) -> None:
        """Change fields of an inode record (i_block by index: i_block={1: 99999})."""
        fields = self.inode(ino).fields
        for name, value in changes.items():
            if name == "i_block" and isinstance(value, dict):
                for index, pointer in value.items():
                    fields.i_block[index] = pointer
            else:
                setattr(fields, name, value)
        raw = build_inode(fields)
        if reseal and self.seed is not None:
            checksums.set_inode_checksum(self.seed, ino, raw)
        self.write(self.inode_offset(ino), bytes(raw))

    def poke_inode(self, ino: int, offset: int, data: bytes) -> None:
        """Raw bytes into an inode record, no checksum touched."""
        self.write(self.inode_offset(ino) + offset, data)

    # directories
    def dir_block(self, path_or_ino, logical: int = 0) -> tuple[int, bytearray]:
        ino = path_or_ino if isinstance(path_or_ino, int) else self.ino(path_or_ino)
        with self.volume() as volume:
            blocks = dict(volume.dir_blocks(volume.read_inode(ino)))
        block = blocks[logical]
        return block, self.read_block(block)

    def records(self, data: bytes) -> list[directory.DirRecord]:
        return directory.walk_block(data, chain_end=self.chain_end).records

    def entry(self, dir_path: str, name: str) -> tuple[int, bytearray, directory.DirRecord]:
        """(block, its bytes, the record) of the entry `name` in a directory's blocks."""
        with self.volume() as volume:
            blocks = volume.dir_blocks(volume.resolve(dir_path))
        for _, block in blocks:
            data = self.read_block(block)
            for record in self.records(data):
                if record.inode and record.name == name.encode():
                    return block, data, record
        raise KeyError(f"{dir_path}/{name}")

    def seal_dir(self, block: int, data: bytearray) -> None:
        """The extended layout's tail checksum over the block as it now is."""
        if self.seed is not None:
            checksums.set_tail(self.seed, block, data)

    def write_dir_block(self, block: int, data: bytearray, *, reseal: bool = True) -> None:
        if reseal:
            self.seal_dir(block, data)
        self.write_block(block, data)

    def patch_entry(self, dir_path: str, name: str, *, reseal: bool = True, new_name: bytes | None = None,
                    **fields) -> directory.DirRecord:
        """Change header fields (inode, rec_len, name_len, file_type) or the name bytes of
        the entry `name` in place."""
        block, data, record = self.entry(dir_path, name)
        header = {"inode": record.inode, "rec_len": record.rec_len, "name_len": record.name_len,
                  "file_type": record.file_type}
        header.update(fields)
        DIRENT_HEADER.pack_into(data, record.offset, header["inode"], header["rec_len"],
                                header["name_len"], header["file_type"])
        if new_name is not None:
            data[record.offset + 8:record.offset + 8 + len(new_name)] = new_name
        self.write_dir_block(block, data, reseal=reseal)
        return record

    # the bitmap
    def bitmap_location(self, block: int) -> tuple[int, int, int]:
        """(bitmap block, byte offset in it, bit mask) of a block's bit."""
        index, bit = divmod(block, self.geometry.bits_per_bitmap_block)
        return self.geometry.bitmap_start + index, bit >> 3, 1 << (bit & 7)

    def set_bit(self, block: int, value: bool, *, reseal: bool = True) -> None:
        bitmap_block, byte, mask = self.bitmap_location(block)
        data = self.read_block(bitmap_block)
        data[byte] = data[byte] | mask if value else data[byte] & ~mask & 0xFF
        if reseal and self.seed is not None:
            checksums.set_tail(self.seed, bitmap_block, data)
        self.write_block(bitmap_block, data)

    def bit(self, block: int) -> bool:
        bitmap_block, byte, mask = self.bitmap_location(block)
        return bool(self.read(bitmap_block * C.BLOCK_SIZE + byte, 1)[0] & mask)

    # the superblock
    def superblock(self, block: int = 0):
        return sbio.parse(self.read(block * C.BLOCK_SIZE, C.SUPERBLOCK_SIZE))

    def set_superblock(self, *, block: int = 0, reseal: bool = True, **changes) -> None:
        sb = self.superblock(block)
        for name, value in changes.items():
            setattr(sb, name, value)
        stored = sb.s_checksum
        raw = sbio.build(sb, with_checksum=reseal and bool(sb.s_feature_ro_compat & 1))
        if not reseal:  # keep the checksum that was there
            raw = raw[:SUPERBLOCK_CHECKSUM_OFFSET] + struct.pack("<I", stored)
        self.write(block * C.BLOCK_SIZE, raw)

    def adjust_free(self, *, blocks: int = 0, inodes: int = 0) -> None:
        """Keep the free counters (primary and backup) true after freeing or taking something
        by hand, so that a class is only what it says."""
        for block in (0, self.backup_block) if self.backup_block else (0,):
            sb = self.superblock(block)
            self.set_superblock(block=block, s_free_blocks=sb.s_free_blocks + blocks,
                                s_free_inodes=sb.s_free_inodes + inodes)

    @property
    def backup_block(self) -> int:
        return self.geometry.backup_sb_block

    def lost_found(self, ino: int) -> str:
        return f"/lost+found/#{ino}"


# --- the classes -------------------------------------------------------------------------

Generator = Callable[[Img], Expect | None]


@dataclass(frozen=True)
class Corruption:
    name: str
    layouts: tuple[str, ...]
    generate: Generator
    doc: str
    no_ok: bool = False  # -n exits 0: answering no leaves a valid file system (stale counters)
    cli: bool = False  # run through the installed commands rather than in-process
    preen: bool = False  # -p repairs it on its own (every fix is PREEN_OK)


CORRUPTIONS: dict[str, Corruption] = {}


def corruption(name: str, *layouts: str, no_ok: bool = False, cli: bool = False, preen: bool = False):
    def register(generate: Generator) -> Generator:
        assert name not in CORRUPTIONS, name
        CORRUPTIONS[name] = Corruption(name, layouts or LAYOUTS, generate,
                                       " ".join((generate.__doc__ or "").split()), no_ok, cli, preen)
        return generate
    return register


def cases() -> list[tuple[str, str]]:
    return [(c.name, layout) for c in CORRUPTIONS.values() for layout in c.layouts]


def flip(byte: int) -> bytes:
    return bytes([byte ^ 0x01])


def _block_of(img: Img, path: str, logical: int = 0) -> int:
    return img.inode(img.ino(path)).fields.i_block[logical]


# Pass 0: the superblock.

@corruption("sb_checksum")
def _sb_checksum(img: Img) -> None:
    """Superblock checksum wrong (kernel layout: non-zero where the kernel keeps 0)."""
    raw = img.read(SUPERBLOCK_CHECKSUM_OFFSET, 4)
    img.write(SUPERBLOCK_CHECKSUM_OFFSET, bytes([raw[0] ^ 0x5A]) + raw[1:])


@corruption("sb_backup_differs", EXTENDED, preen=True)
def _sb_backup_differs(img: Img) -> None:
    """Backup superblock differs from the primary (another label, valid checksum)."""
    img.set_superblock(block=img.backup_block, s_volume_name=b"stale".ljust(16, b"\0"))


@corruption("sb_primary_destroyed", EXTENDED, cli=True)
def _sb_primary_destroyed(img: Img) -> None:
    """Block 0 zeroed: the primary superblock is recovered from the backup."""
    img.write_block(0, bytes(C.BLOCK_SIZE))


@corruption("sb_inodes_past_table", KERNEL)
def _sb_inodes_past_table(img: Img) -> None:
    """s_inodes_count larger than the kernel's 2304 inode table slots."""
    img.set_superblock(s_inodes_count=5000)


@corruption("sb_blocks_past_bitmap", KERNEL)
def _sb_blocks_past_bitmap(img: Img) -> None:
    """s_blocks_count past the 32768 blocks the kernel's one bitmap block describes (what
    the C mkfs writes on a bigger device; the image is grown, sparse, to match)."""
    blocks = C.KERNEL_MAX_BLOCKS + 100
    os.truncate(img.path, blocks * C.BLOCK_SIZE)
    img.set_superblock(s_blocks_count=blocks, s_free_blocks=blocks - 67)


@corruption("stale_counters", no_ok=True, preen=True)
def _stale_counters(img: Img) -> None:
    """Free block and inode counters stale (what the kernel's fsync leaves); NO_OK."""
    sb = img.superblock()
    changes = {"s_free_blocks": sb.s_free_blocks + 40, "s_free_inodes": sb.s_free_inodes - 3}
    img.set_superblock(**changes)
    if img.backup_block:
        img.set_superblock(block=img.backup_block, **changes)


# Pass 1: inodes, blocks and sizes.

@corruption("bad_mode")
def _bad_mode(img: Img) -> Expect:
    """A file's inode has an invalid mode (format 0o170000): cleared, its entry too."""
    img.set_inode(img.ino("/hundred.txt"), i_mode=0o170644)
    return Expect(changed={"/hundred.txt": GONE})


@corruption("inode_checksum", EXTENDED, cli=True)
def _inode_checksum(img: Img) -> None:
    """An inode's checksum flipped."""
    ino = img.ino("/five_k.bin")
    raw = img.read(img.inode_offset(ino) + 108, 1)
    img.poke_inode(ino, 108, flip(raw[0]))


@corruption("reserved_inode", EXTENDED)
def _reserved_inode(img: Img) -> None:
    """A reserved inode (5) in use as a regular file."""
    img.set_inode(5, i_mode=0o100644, i_links_count=1, i_size=0)


@corruption("inode_past_mark", EXTENDED)
def _inode_past_mark(img: Img) -> None:
    """A file's inode moved past the lazy_itable mark (what a tool that ignores the feature
    would leave), its entry following it: the mark is raised over it."""
    old = img.ino("/hundred.txt")
    new = img.superblock().s_itable_mark + 100
    raw = build_inode(img.inode(old).fields)
    checksums.set_inode_checksum(img.seed, new, raw)
    img.write(img.inode_offset(new), bytes(raw))
    img.write(img.inode_offset(old), bytes(C.INODE_SIZE))
    img.patch_entry("/", "hundred.txt", inode=new)


@corruption("block_out_of_range")
def _block_out_of_range(img: Img) -> Expect:
    """A block pointer past the end of the file system: cleared, a hole is left."""
    img.set_inode(img.ino("/five_k.bin"), i_block={1: 99999})
    data = content("five_k.bin", 5000)
    return Expect(changed={"/five_k.bin": data[:4096] + bytes(904)})


@corruption("pointer_into_inode_table")
def _pointer_into_inode_table(img: Img) -> Expect:
    """A block pointer into the inode table: cleared, the data block is freed."""
    img.set_inode(img.ino("/page.bin"), i_block={0: img.geometry.inode_table_start + 1})
    return Expect(changed={"/page.bin": bytes(4096)})


@corruption("special_has_blocks")
def _special_has_blocks(img: Img) -> None:
    """A fifo with a block pointer (at a free block)."""
    img.set_inode(img.ino("/pipe"), i_block={0: 1500}, i_blocks=1)


@corruption("blocks_past_eof", preen=True)
def _blocks_past_eof(img: Img) -> Expect:
    """A truncate that freed nothing (the kernel's): 5 blocks mapped, i_size 5000."""
    img.set_inode(img.ino("/docs/twenty_k.bin"), i_size=5000)
    return Expect(changed={"/docs/twenty_k.bin": content("docs/twenty_k.bin", 20000)[:5000]})


@corruption("i_blocks", preen=True)
def _i_blocks(img: Img) -> None:
    """i_blocks wrong."""
    img.set_inode(img.ino("/five_k.bin"), i_blocks=7)


@corruption("dup_blocks")
def _dup_blocks(img: Img) -> Expect:
    """Two files share a block: the later inode gets a copy (its own data is kept)."""
    img.set_inode(img.ino("/hundred.txt"), i_block={0: _block_of(img, "/page.bin")})
    return Expect(changed={"/hundred.txt": content("page.bin", 4096)[:100]})


@corruption("dup_block_same_file")
def _dup_block_same_file(img: Img) -> Expect:
    """A file claims the same block twice (logical 0 and 1)."""
    img.set_inode(img.ino("/five_k.bin"), i_block={1: _block_of(img, "/five_k.bin")})
    data = content("five_k.bin", 5000)
    return Expect(changed={"/five_k.bin": data[:4096] + data[:904]})


@corruption("indirect_self", EXTENDED)
def _indirect_self(img: Img) -> Expect:
    """An indirect block's first pointer names the indirect block itself: the block is
    claimed as metadata and as data, so the data claim gets a copy of it."""
    data = img.set_indirect_pointer("/big.bin", 0, img.inode(img.ino("/big.bin")).fields.i_indirect)
    old = content("big.bin", BIG)
    start = C.DIRECT_BLOCKS * C.BLOCK_SIZE
    return Expect(changed={"/big.bin": old[:start] + bytes(data) + old[start + C.BLOCK_SIZE:]})


@corruption("shared_map", EXTENDED)
def _shared_map(img: Img) -> Expect:
    """A file's inode maps exactly another file's blocks, indirect block included: the later
    inode gets indirect blocks of its own and a copy of every block."""
    big = img.inode(img.ino("/big.bin")).fields
    img.set_inode(img.ino("/hundred.txt"), i_size=big.i_size, i_blocks=big.i_blocks,
                  i_indirect=big.i_indirect, i_block=dict(enumerate(big.i_block)))
    return Expect(changed={"/hundred.txt": content("big.bin", big.i_size)})


@corruption("indirect_past_eof_shared", EXTENDED, preen=True)
def _indirect_past_eof_shared(img: Img) -> None:
    """A small file's i_indirect names another file's indirect block: mapped past its EOF,
    dropped, and the block stays the other file's."""
    big = img.inode(img.ino("/big.bin")).fields
    img.set_inode(img.ino("/hundred.txt"), i_indirect=big.i_indirect)


@corruption("indirect_loop", EXTENDED)
def _indirect_loop(img: Img) -> None:
    """i_double_indirect names the single indirect block: a loop in the map."""
    ino = img.ino("/big.bin")
    img.set_inode(ino, i_double_indirect=img.inode(ino).fields.i_indirect)


@corruption("indirect_checksum", EXTENDED)
def _indirect_checksum(img: Img) -> None:
    """An indirect block's checksum flipped."""
    block = img.inode(img.ino("/big.bin")).fields.i_indirect
    raw = img.read(block * C.BLOCK_SIZE + 4092, 1)
    img.write(block * C.BLOCK_SIZE + 4092, flip(raw[0]))


@corruption("indirect_i_blocks", EXTENDED, preen=True)
def _indirect_i_blocks(img: Img) -> None:
    """i_blocks wrong on a file with a single indirect block (18 data blocks + 1)."""
    img.set_inode(img.ino("/big.bin"), i_blocks=25)


@corruption("indirect_truncated", EXTENDED, preen=True)
def _indirect_truncated(img: Img) -> Expect:
    """The kernel's truncate, on a file whose blocks past the new EOF are in its indirect
    block: they are freed and the map rebuilt, i_size kept."""
    size = 13 * C.BLOCK_SIZE + 10
    img.set_inode(img.ino("/big.bin"), i_size=size)
    return Expect(changed={"/big.bin": content("big.bin", BIG)[:size]})


@corruption("indirect_pointer_out_of_range", EXTENDED)
def _indirect_pointer_out_of_range(img: Img) -> Expect:
    """A pointer in a single indirect block (logical 14) past the end of the file system:
    dropped, a hole is left."""
    img.set_indirect_pointer("/big.bin", 14 - C.DIRECT_BLOCKS, 99_999_999)
    old = content("big.bin", BIG)
    hole = 14 * C.BLOCK_SIZE
    return Expect(changed={"/big.bin": old[:hole] + bytes(C.BLOCK_SIZE) + old[hole + C.BLOCK_SIZE:]})


@corruption("dir_lost_block", preen=True)
def _dir_lost_block(img: Img) -> None:
    """The kernel's mkdir bug: i_block[0] 0 and i_blocks 0, the block survives."""
    img.set_inode(img.ino("/docs/deep"), i_block={0: 0}, i_blocks=0)


@corruption("dir_no_block")
def _dir_no_block(img: Img) -> None:
    """An empty directory with no block at all (pointer, block and bitmap bit gone)."""
    ino = img.ino("/vectors")
    block = img.inode(ino).fields.i_block[0]
    img.set_inode(ino, i_block={0: 0}, i_blocks=0)
    img.write_block(block, bytes(C.BLOCK_SIZE))
    img.set_bit(block, False)
    img.adjust_free(blocks=1)


@corruption("dir_size", preen=True)
def _dir_size(img: Img) -> None:
    """A directory's i_size wrong (kernel: 8192 for its one block; extended: 4096 for two)."""
    if img.layout == KERNEL:
        img.set_inode(img.ino("/docs"), i_size=8192)
    else:
        img.set_inode(img.ino("/many"), i_size=4096)


# Pass 2: directory structure.

@corruption("rec_len_zero")
def _rec_len_zero(img: Img) -> Expect:
    """rec_len 0 in the middle of a block: the chain is cut there, what followed is
    reconnected through /lost+found."""
    deep, twenty = img.ino("/docs/deep"), img.ino("/docs/twenty_k.bin")
    img.patch_entry("/docs", "deep", rec_len=0)
    return Expect(moved={"/docs/deep": img.lost_found(deep),
                         "/docs/twenty_k.bin": img.lost_found(twenty)})


@corruption("rec_len_past_end")
def _rec_len_past_end(img: Img) -> None:
    """The last entry's rec_len crosses the end of the block (its name fits: it is kept)."""
    block, data = img.dir_block("/")
    last = img.records(data)[-1]
    DIRENT_HEADER.pack_into(data, last.offset, last.inode, last.rec_len + 4, last.name_len, last.file_type)
    img.write_dir_block(block, data)


@corruption("rec_len_misaligned")
def _rec_len_misaligned(img: Img) -> Expect:
    """A rec_len that is not a multiple of 4."""
    note, page2 = img.ino("/docs/deep/note.txt"), img.ino("/docs/deep/page2.bin")
    img.patch_entry("/docs/deep", "note.txt", rec_len=18)
    return Expect(moved={"/docs/deep/note.txt": img.lost_found(note),
                         "/docs/deep/page2.bin": img.lost_found(page2)})


@corruption("name_len_past_rec_len")
def _name_len_past_rec_len(img: Img) -> Expect:
    """name_len larger than the entry's rec_len allows: that entry alone is dropped."""
    ino = img.ino("/page.bin")
    _, _, record = img.entry("/", "page.bin")
    img.patch_entry("/", "page.bin", name_len=record.rec_len)
    return Expect(moved={"/page.bin": img.lost_found(ino)})


@corruption("entry_inode_out_of_range")
def _entry_inode_out_of_range(img: Img) -> Expect:
    """An entry names an inode past the inode table."""
    ino = img.ino("/hundred.txt")
    img.patch_entry("/", "hundred.txt", inode=60000)
    return Expect(moved={"/hundred.txt": img.lost_found(ino)})


@corruption("entry_free_inode")
def _entry_free_inode(img: Img) -> Expect:
    """An entry names a free inode."""
    ino = img.ino("/one.bin")
    img.patch_entry("/", "one.bin", inode=500)
    return Expect(moved={"/one.bin": img.lost_found(ino)})


@corruption("entry_file_type", preen=True)
def _entry_file_type(img: Img) -> None:
    """An entry's file type says directory for a regular file."""
    img.patch_entry("/", "hundred.txt", file_type=C.FT_DIR)


@corruption("dot_bad")
def _dot_bad(img: Img) -> None:
    """'.' names another inode."""
    block, data = img.dir_block("/docs")
    record = img.records(data)[0]
    DIRENT_HEADER.pack_into(data, 0, 5, record.rec_len, record.name_len, record.file_type)
    img.write_dir_block(block, data)


@corruption("dotdot_missing")
def _dotdot_missing(img: Img) -> None:
    """'..' has inode 0."""
    block, data = img.dir_block("/docs/deep")
    record = img.records(data)[1]
    DIRENT_HEADER.pack_into(data, record.offset, 0, record.rec_len, record.name_len, record.file_type)
    img.write_dir_block(block, data)


@corruption("dotdot_stale", preen=True)
def _dotdot_stale(img: Img) -> None:
    """'..' names the old parent of a moved directory (the kernel's rename)."""
    block, data = img.dir_block("/docs/deep")
    record = img.records(data)[1]
    DIRENT_HEADER.pack_into(data, record.offset, C.ROOT_INO, record.rec_len, record.name_len,
                            record.file_type)
    img.write_dir_block(block, data)


@corruption("dup_name")
def _dup_name(img: Img) -> Expect:
    """Two entries with the same name: the second is renamed NAME~0 (same length)."""
    img.patch_entry("/", "hundred.txt", name_len=len(b"one.bin"), new_name=b"one.bin")
    return Expect(moved={"/hundred.txt": "/one.bin", "/one.bin": "/one.b~0"})


@corruption("bad_name")
def _bad_name(img: Img) -> None:
    """A name with '/' in it (repaired to '.', which restores it here)."""
    img.patch_entry("/", "one.bin", new_name=b"one/bin")


@corruption("dir_hardlink")
def _dir_hardlink(img: Img) -> None:
    """A second entry naming a directory (added by the library, so it is a clean entry)."""
    deep = img.ino("/docs/deep")
    with img.volume(writable=True) as volume:
        volume.add_entry(volume.resolve("/vectors").ino, b"deep2", deep, C.FT_DIR)


@corruption("dir_checksum", EXTENDED)
def _dir_checksum(img: Img) -> None:
    """A directory block's checksum flipped."""
    block, data = img.dir_block("/docs")
    data[4092] ^= 0x01
    img.write_block(block, data)


@corruption("dir_tail", EXTENDED)
def _dir_tail(img: Img) -> None:
    """A directory block's checksum tail damaged (its file type byte)."""
    block, data = img.dir_block("/many", 1)
    data[C.BLOCK_SIZE - C.DIR_TAIL_SIZE + 7] = 0
    img.write_dir_block(block, data)


# Pass 3: connectivity.

@corruption("unconnected_dir")
def _unconnected_dir(img: Img) -> Expect:
    """A directory no entry names (its entry deleted): reconnected to /lost+found."""
    deep = img.ino("/docs/deep")
    block, data, _ = img.entry("/docs", "deep")
    directory.remove_entry(data, b"deep", chain_end=img.chain_end)
    img.write_dir_block(block, data)
    return Expect(moved={"/docs/deep": img.lost_found(deep)})


@corruption("root_cleared")
def _root_cleared(img: Img) -> Expect:
    """The root inode zeroed: a new root, everything reconnected to /lost+found (but an
    empty regular file, cleared)."""
    moved = {}
    with img.volume() as volume:
        for record in volume.iter_dir(volume.read_inode(C.ROOT_INO)):
            if record.name not in (b".", b"..", b"lost+found"):
                moved["/" + record.name.decode()] = img.lost_found(record.inode)
    img.write(img.inode_offset(C.ROOT_INO), bytes(C.INODE_SIZE))
    del moved["/empty.txt"]  # unattached and zero-length: cleared, as e2fsck does
    return Expect(moved=moved, changed={"/empty.txt": GONE})


@corruption("lost_found_missing", EXTENDED, preen=True)
def _lost_found_missing(img: Img) -> None:
    """/lost+found removed (entry, inode and block)."""
    ino = img.ino("/lost+found")
    block = img.inode(ino).fields.i_block[0]
    root_block, data, _ = img.entry("/", "lost+found")
    directory.remove_entry(data, b"lost+found", chain_end=img.chain_end)
    img.write_dir_block(root_block, data)
    img.set_inode(ino, i_mode=0, i_links_count=0)
    img.set_bit(block, False)
    root = img.inode(C.ROOT_INO).fields
    img.set_inode(C.ROOT_INO, i_links_count=root.i_links_count - 1)
    img.adjust_free(blocks=1, inodes=1)


# Pass 4: reference counts.

@corruption("unattached_file")
def _unattached_file(img: Img) -> Expect:
    """A file no entry names (its entry's inode zeroed): connected to /lost+found."""
    ino = img.ino("/hundred.txt")
    img.patch_entry("/", "hundred.txt", inode=0)
    return Expect(moved={"/hundred.txt": img.lost_found(ino)})


@corruption("unattached_empty", preen=True)
def _unattached_empty(img: Img) -> None:
    """A leaked inode (the kernel's failed create): regular, 1 link, size 0, no entry."""
    with img.volume(writable=True) as volume:
        ino = volume.allocate_inode()
        volume.write_inode(ino, volume.new_inode_fields(0o100644))


@corruption("deleted_by_kernel", preen=True, cli=True)
def _deleted_by_kernel(img: Img) -> Expect:
    """rm by the kernel: the entry swallowed by the previous rec_len, the inode untouched."""
    block, data, _ = img.entry("/", "five_k.bin")
    directory.remove_entry(data, b"five_k.bin", chain_end=img.chain_end)
    img.write_dir_block(block, data)
    return Expect(changed={"/five_k.bin": GONE})


@corruption("deleted_after_dotdot", preen=True)
def _deleted_after_dotdot(img: Img) -> None:
    """rm by the kernel of the entry right after '..': '..' swallows it."""
    with img.volume(writable=True) as volume:
        volume.create_file(volume.resolve("/vectors").ino, b"v0001.vec", content("v0001.vec", 6000))
    block, data, _ = img.entry("/vectors", "v0001.vec")
    directory.remove_entry(data, b"v0001.vec", chain_end=img.chain_end)
    img.write_dir_block(block, data)


@corruption("link_count", preen=True)
def _link_count(img: Img) -> None:
    """A file's link count wrong."""
    img.set_inode(img.ino("/page.bin"), i_links_count=5)


@corruption("dir_link_count", preen=True)
def _dir_link_count(img: Img) -> None:
    """A directory's link count ignores its subdirectory (the kernel keeps 2)."""
    img.set_inode(img.ino("/docs"), i_links_count=2)


# Pass 5: summary information.

@corruption("bitmap_used_clear", preen=True)
def _bitmap_used_clear(img: Img) -> None:
    """The bitmap bit of a block in use is clear."""
    img.set_bit(_block_of(img, "/docs/twenty_k.bin", 2), False)


@corruption("bitmap_free_set", preen=True)
def _bitmap_free_set(img: Img) -> None:
    """The bitmap bit of a free block is set."""
    assert not img.bit(1500)
    img.set_bit(1500, True)


@corruption("bitmap_padding", EXTENDED, preen=True)
def _bitmap_padding(img: Img) -> None:
    """A padding bit (past the last block) of the last bitmap block is clear."""
    img.set_bit(img.geometry.blocks_count + 5, False)


@corruption("bitmap_checksum", EXTENDED)
def _bitmap_checksum(img: Img) -> None:
    """A bitmap block's checksum flipped."""
    offset = img.geometry.bitmap_start * C.BLOCK_SIZE + 4092
    img.write(offset, flip(img.read(offset, 1)[0]))


# Impossible field values (docs/FORMAT.md, "What fsck checks, field by field").

@corruption("size_beyond_layout")
def _size_beyond_layout(img: Img) -> Expect:
    """A file's i_size is more than its layout can address (vexfs cat would print less than
    the inode claims): set to what its blocks hold."""
    img.set_inode(img.ino("/five_k.bin"), i_size=1 << 50)
    data = content("five_k.bin", 5000)
    return Expect(changed={"/five_k.bin": data + bytes(2 * C.BLOCK_SIZE - len(data))})


@corruption("field_not_zero")
def _field_not_zero(img: Img) -> None:
    """Fields that must be zero are not: i_pad12, and the kernel layout's i_reserved[2]
    (i_triple_indirect) or the extended layout's reserved i_flags bits: cleared."""
    extra = {"i_flags": 0x100} if img.layout == EXTENDED else {"i_triple_indirect": 99}
    img.set_inode(img.ino("/hundred.txt"), i_pad12=7, **extra)


@corruption("symlink_size")
def _symlink_size(img: Img) -> Expect:
    """A symlink's i_size is 0 (no target): the inode is cleared, its entry too."""
    img.set_inode(img.ino("/link"), i_size=0)
    return Expect(changed={"/link": GONE})


@corruption("sb_field", EXTENDED)
def _sb_field(img: Img) -> None:
    """Superblock fields with one right value hold another (s_inode_size, s_errors), in
    both copies: set right."""
    for block in (0, img.backup_block):
        img.set_superblock(block=block, s_inode_size=128, s_errors=9)
# Pass 6: vector files. These classes first put a vector file, /vectors/emb.vec (VECTOR_ROWS
# rows of 64 float32 in two 1 MiB chunks), into the image through the library, then damage it.

VECTOR_PATH = "/vectors/emb.vec"
VECTOR_ROWS = 4200  # chunk 0: rows 0-4095, chunk 1: rows 4096-4199


def vector_rows():
    import numpy as np

    return np.random.default_rng(10).standard_normal((VECTOR_ROWS, 64)).astype("<f4")


def add_vectors(img: Img) -> tuple[int, object]:
    """Put /vectors/emb.vec into the image; (its first data block's device offset, its header)."""
    from vexfs_tools.vectors import store
    from vexfs_tools.vectors.codec import METRIC_CODES, layout
    from vexfs_tools.vectors.files import VectorFile
    from vexfs_tools.format import vector as V

    rows = vector_rows()
    source = store.VectorSource(rows, None, V.ELEMENT_FLOAT32, 64, METRIC_CODES["l2"],
                                layout(64, V.ELEMENT_FLOAT32, len(rows))[3])
    with Volume.open(str(img.path), writable=True) as volume:
        ino = store.add_vector_file(volume, VECTOR_PATH, source)
        volume.flush()
    with Volume.open(str(img.path)) as volume:
        vf = VectorFile.open(volume, volume.read_inode(ino), VECTOR_PATH)
        from vexfs_tools.volume.fileio import FileData

        start = FileData(volume, vf.inode).device_offset(0, vf.info.file_size)
        assert start is not None
        return start, vf.info


@corruption("vector_header_magic", EXTENDED)
def _vector_header_magic(img: Img) -> None:
    """A vector file's header magic overwritten (fsck restores the header from its copy)."""
    start, _ = add_vectors(img)
    img.write(start, b"XXXXXXXX")


@corruption("vector_header_field", EXTENDED)
def _vector_header_field(img: Img) -> None:
    """A vector file's dimensions changed, the header checksum resealed over the wrong value."""
    from crc32c import crc32c
    from vexfs_tools.format import vector as V

    start, info = add_vectors(img)
    head = bytearray(img.read(start, info.header_bytes))
    struct.pack_into("<I", head, 16, 65)  # info.dimensions
    offset, size = V.HEADER_CHECKSUM_SPAN
    head[offset:offset + size] = bytes(size)
    struct.pack_into("<I", head, offset, crc32c(bytes(head)))
    img.write(start, bytes(head))


@corruption("vector_header_checksum", EXTENDED)
def _vector_header_checksum(img: Img) -> None:
    """One byte of a vector file's chunk checksum table flipped (the header checksum fails)."""
    from vexfs_tools.format import vector as V

    start, _ = add_vectors(img)
    at = start + V.CHUNK_CHECKSUMS_OFFSET + 5
    img.write(at, flip(img.read(at, 1)[0]))


@corruption("vector_copy_differs", EXTENDED, preen=True)
def _vector_copy_differs(img: Img) -> None:
    """One byte of the copy of a vector file's header flipped (rewritten from the header)."""
    start, info = add_vectors(img)
    at = start + info.copy_offset + 100
    img.write(at, flip(img.read(at, 1)[0]))


@corruption("vector_no_feature", EXTENDED, preen=True)
def _vector_no_feature(img: Img) -> None:
    """A vector file on an image without the vector_files feature."""
    from vexfs_tools.format import features as F

    add_vectors(img)
    bit = F.BY_NAME["vector_files"].bit
    for block in (0, img.backup_block):
        img.set_superblock(block=block, s_feature_ro_compat=img.superblock(block).s_feature_ro_compat & ~bit)


@corruption("vector_flag_not_vector", EXTENDED)
def _vector_flag_not_vector(img: Img) -> None:
    """A regular file that is no vector file flagged VECTOR (the flag is cleared)."""
    img.set_inode(img.ino("/five_k.bin"), i_flags=C.INODE_FLAG_VECTOR)


# Damage fsck must report and never repair (there is nothing good to repair it from): -n
# and -y both exit 4, -y changes no byte, a second -n reports the same. Golden transcripts
# as above (expect.1 after -y, expect.2 of the -n after it).

VECTOR_DAMAGE: dict[str, Corruption] = {}


def damage(name: str):
    def register(generate: Generator) -> Generator:
        assert name not in VECTOR_DAMAGE and name not in CORRUPTIONS, name
        VECTOR_DAMAGE[name] = Corruption(name, (EXTENDED,), generate, " ".join((generate.__doc__ or "").split()))
        return generate
    return register


@damage("vector_chunk_checksum")
def _vector_chunk_checksum(img: Img) -> None:
    """One byte of a vector file's chunk 1 (rows 4096-4199) flipped."""
    start, info = add_vectors(img)
    at = start + info.data_offset + info.chunk_size + 1000
    img.write(at, flip(img.read(at, 1)[0]))


@damage("vector_ids_checksum")
def _vector_ids_checksum(img: Img) -> None:
    """One byte of a vector file's id array flipped."""
    start, info = add_vectors(img)
    at = start + info.ids_offset + 8 * 17
    img.write(at, flip(img.read(at, 1)[0]))


@damage("vector_ids_duplicate")
def _vector_ids_duplicate(img: Img) -> None:
    """Row 1's id made row 0's, the ids checksum and both headers resealed over it."""
    from crc32c import crc32c
    from vexfs_tools.format import vector as V

    start, info = add_vectors(img)
    ids = bytearray(img.read(start + info.ids_offset, info.ids_bytes))
    ids[8:16] = ids[0:8]
    img.write(start + info.ids_offset, bytes(ids))
    head = bytearray(img.read(start, info.header_bytes))
    struct.pack_into("<I", head, field_offset("ids_checksum"), crc32c(bytes(ids)))
    offset, size = V.HEADER_CHECKSUM_SPAN
    head[offset:offset + size] = bytes(size)
    struct.pack_into("<I", head, offset, crc32c(bytes(head)))
    img.write(start, bytes(head))
    img.write(start + info.copy_offset, bytes(head))


@damage("vector_header_lost")
def _vector_header_lost(img: Img) -> None:
    """A vector file's header and its copy both damaged (one byte of each)."""
    start, info = add_vectors(img)
    for at in (start + 30, start + info.copy_offset + 30):
        img.write(at, flip(img.read(at, 1)[0]))


def field_offset(name: str) -> int:
    from vexfs_tools.format import vector as V
    from vexfs_tools.format.offsets import field_span

    return field_span(V.VectorHeader, name)[0]


@corruption("vector_flag_not_regular", EXTENDED)
def _vector_flag_not_regular(img: Img) -> None:
    """A directory flagged VECTOR (the flag is cleared)."""
    img.set_inode(img.ino("/docs/deep/empty_dir"), i_flags=C.INODE_FLAG_VECTOR)
