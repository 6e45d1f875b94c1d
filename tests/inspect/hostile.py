"""A hostile image for extraction, written entry by entry through the volume library
(the library itself refuses such names, so directory blocks are packed by hand):
names with "/", "..", NUL, control characters, 255 bytes or none at all, bytes that are not
UTF-8; a directory cycle and a hard-linked directory; a symlink to a file outside DEST and
a directory of the same name beside it; i_size of 2^63; a block map whose double and triple
indirect blocks point at themselves, and one naming a data block more times than the file
system has blocks; a directory naming its block six times; 3000 entries of one name; an entry naming an inode
out of range; a device and a fifo; a set-user-ID file; a directory with mode 000; and a
deleted entry named "del\\x07eted" left in directory slack."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tests.conftest import run
from vexfs_tools.format import constants as C
from vexfs_tools.volume import Volume, directory
from vexfs_tools.volume.blockmap import build_indirect

SAME_COUNT = 3000
NAMES = {  # raw name -> what the test expects it to become in DEST
    b"../../escape": b"..%2F..%2Fescape",
    b"a\x00b": b"a%00b",
    b"ctl\x01\x1b[31m": b"ctl%01%1B[31m",
    b"": b"_",
    b"\xff\xfe": b"\xff\xfe",
}


def _attach_entries(volume: Volume, dir_ino: int, entries: list[tuple[bytes, int, int]]) -> None:
    """Make `entries` (after "." and "..") the whole contents of a directory, in as many
    blocks as they need (its first block reused, the others allocated)."""
    inode = volume.read_inode(dir_ino)
    parent = 1 if dir_ino == 1 else volume.lookup(inode, b"..")
    blocks = directory.pack_entries([(b".", dir_ino, C.FT_DIR), (b"..", parent, C.FT_DIR), *entries],
                                    chain_end=volume.chain_end)
    fields = inode.fields
    for logical, data in enumerate(blocks):
        block = fields.i_block[0] if logical == 0 else volume.allocate_block()
        if logical:
            volume.set_block(fields, logical, block)
            fields.i_blocks += 1
        volume.write_dir_block(block, data)
    fields.i_size = len(blocks) * C.BLOCK_SIZE
    volume.write_inode(dir_ino, fields)


def build_hostile(tmp: Path, victim: Path) -> Path:
    image = tmp / "hostile.img"
    run("mkfs.vexfs", "-q", "-s", "16M", image, env={"SOURCE_DATE_EPOCH": "1700000000"}, check=True)
    with Volume.open(str(image), writable=True) as v:
        scratch = v.mkdir(1, b"scratch")
        counter = iter(range(10**6))

        def new_file(data: bytes, mode: int = 0o100644, parent: int = scratch) -> int:
            return v.create_file(parent, b"f%d" % next(counter), data, mode=mode)

        plain = {raw: new_file(b"content of %r\n" % raw) for raw in NAMES}
        long_name = new_file(b"long\n")
        dotdot = new_file(b"dotdot\n")
        # a cycle: cyc/back -> root, cyc/self -> cyc, cyc/d2/up -> cyc
        cyc = v.mkdir(1, b"cyc")
        v.add_entry(cyc, b"back", 1, C.FT_DIR)
        v.add_entry(cyc, b"self", cyc, C.FT_DIR)
        d2 = v.mkdir(cyc, b"d2")
        v.add_entry(d2, b"up", cyc, C.FT_DIR)
        # a symlink to a file outside DEST, and a directory of the same name holding "pwned"
        evil_link = new_file(os.fsencode(victim), mode=0o120777)
        up_link = new_file(b"../../../../../../../../tmp", mode=0o120777)
        evil_dir = v.mkdir(scratch, b"evil_dir")
        v.create_file(evil_dir, b"pwned", b"PWNED\n")
        v.create_file(evil_dir, b"victim", b"PWNED\n")
        # i_size 2^63 on a one-block file
        huge = new_file(b"H" * 5000)
        inode = v.read_inode(huge)
        inode.fields.i_size = 2**63
        v.write_inode(huge, inode.fields)
        # a block map that loops: double and triple indirect blocks pointing at themselves
        looped = new_file(b"L" * (13 * C.BLOCK_SIZE))
        trap = v.allocate_block()
        v.write_meta_block(trap, build_indirect(np.full(C.POINTERS_PER_INDIRECT, trap, np.uint32)))
        inode = v.read_inode(looped)
        inode.fields.i_double_indirect = trap
        inode.fields.i_triple_indirect = trap
        inode.fields.i_size = 2**40
        v.write_inode(looped, inode.fields)
        # a map that repeats one data block 5115 times: more data than the file system holds
        repeats = new_file(b"R" * 4096)
        inode = v.read_inode(repeats)
        level0 = []
        for _ in range(5):
            block = v.allocate_block()
            v.write_meta_block(block, build_indirect(np.full(C.POINTERS_PER_INDIRECT, inode.i_block[0], np.uint32)))
            level0.append(block)
        top = v.allocate_block()
        v.write_meta_block(top, build_indirect(np.array(level0, np.uint32)))
        inode.fields.i_double_indirect = top
        inode.fields.i_size = 2**40
        v.write_inode(repeats, inode.fields)
        # a directory whose map names its one block six times
        dupdir = v.mkdir(1, b"dupdir")
        v.create_file(dupdir, b"once", b"once\n")
        inode = v.read_inode(dupdir)
        for logical in range(1, 6):
            v.set_block(inode.fields, logical, inode.i_block[0])
        inode.fields.i_size = 6 * C.BLOCK_SIZE
        v.write_inode(dupdir, inode.fields)
        # thousands of entries named "same" (one inode) and a few to other inodes
        same = new_file(b"same\n")
        others = [new_file(b"other %d\n" % i) for i in range(5)]
        many = v.mkdir(1, b"many")
        _attach_entries(v, many, [(b"same", same, C.FT_REG_FILE)] * SAME_COUNT
                        + [(b"same", ino, C.FT_REG_FILE) for ino in others])
        # special files
        chrdev = new_file(b"", mode=0o020644)
        inode = v.read_inode(chrdev)
        inode.fields.i_block[0] = (1 << 8) | 3  # 1:3, /dev/null
        v.write_inode(chrdev, inode.fields)
        fifo = new_file(b"", mode=0o010644)
        suid = new_file(b"#!/bin/sh\n", mode=0o104755)
        locked = v.mkdir(1, b"locked", mode=0o040000)
        v.create_file(locked, b"inside", b"inside a mode-000 directory\n")
        deleted = new_file(b"recovered despite its name\n")
        entries = [(raw, ino, C.FT_REG_FILE) for raw, ino in plain.items()] + [
            (b"x" * 255, long_name, C.FT_REG_FILE),
            (b"..", dotdot, C.FT_REG_FILE),  # a second "..", naming a file: never a name on the host
            (b"cyc", cyc, C.FT_DIR),
            (b"again", cyc, C.FT_DIR),  # a hard-linked directory
            (b"evil", evil_link, C.FT_SYMLINK),
            (b"evil", evil_dir, C.FT_DIR),
            (b"up", up_link, C.FT_SYMLINK),
            (b"huge", huge, C.FT_REG_FILE),
            (b"looped", looped, C.FT_REG_FILE),
            (b"repeats", repeats, C.FT_REG_FILE),
            (b"dupdir", dupdir, C.FT_DIR),
            (b"many", many, C.FT_DIR),
            (b"ghost", 999999, C.FT_REG_FILE),
            (b"chr", chrdev, C.FT_CHRDEV),
            (b"fifo", fifo, C.FT_FIFO),
            (b"suid", suid, C.FT_REG_FILE),
            (b"locked", locked, C.FT_DIR),
            (b"del\x07eted", deleted, C.FT_REG_FILE),
            (b"last", new_file(b"last\n"), C.FT_REG_FILE),
        ]
        _attach_entries(v, 1, entries)
        root = v.read_inode(1)
        block = root.i_block[0]
        data = bytearray(v.read_block(block))
        assert directory.remove_entry(data, b"del\x07eted", chain_end=v.chain_end) == deleted
        v.write_dir_block(block, data)
    return image
