"""The Sleuth Kit's body file (the input of `mactime -b`, what `fls -r -m /` writes), for
every live and deleted name of an image, recovered directories included.

One line per name, 11 fields separated by "|":

    MD5|name|inode|mode_as_string|UID|GID|size|atime|mtime|ctime|crtime

as TSK 3+ writes it: MD5 is 0 (not computed); name is the mount point prefix and the
path, a symlink's " -> target" appended, and " (deleted)" (or " (deleted-realloc)" when the
inode now belongs to a live file) for deleted names; mode_as_string is the directory
entry's type, "/", then the inode's type and permissions (e.g. "r/rrw-r--r--"); VexFS has no
creation time, so crtime is 0. Inodes in use that no name reaches are listed as TSK lists
them, "/$OrphanFiles/OrphanFile-N (deleted)".

Names may hold any byte: as TSK, control characters are written as "^"; "|" and "%", and
bytes that are not UTF-8, are written as %XX (mactime decodes %XX in every field), so each
record is one line of exactly 11 fields.
"""

from __future__ import annotations

import stat as statmod
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..errors import VexfsError
from ..format import constants as C
from ..volume.inodes import InodeRecord
from .allnames import every_name
from .recovery import Recovery

# TSK's letters: tsk_fs_name_type_str by directory entry type, tsk_fs_meta_type_str by inode format.
NAME_TYPE = {C.FT_UNKNOWN: "-", C.FT_REG_FILE: "r", C.FT_DIR: "d", C.FT_CHRDEV: "c", C.FT_BLKDEV: "b",
             C.FT_FIFO: "p", C.FT_SOCK: "s", C.FT_SYMLINK: "l"}
META_TYPE = {C.S_IFREG: "r", C.S_IFDIR: "d", C.S_IFIFO: "p", C.S_IFCHR: "c", C.S_IFBLK: "b",
             C.S_IFLNK: "l", C.S_IFSOCK: "s"}
LINK_TARGET_LIMIT = 4096


@dataclass(frozen=True)
class BodyRecord:
    md5: str
    name: str  # already escaped for the body file
    inode: int
    mode: str
    uid: int
    gid: int
    size: int
    atime: int
    mtime: int
    ctime: int
    crtime: int
    deleted: bool = False
    path: bytes = b""  # the raw path, for callers

    def line(self) -> str:
        return "|".join(str(v) for v in (self.md5, self.name, self.inode, self.mode, self.uid, self.gid,
                                          self.size, self.atime, self.mtime, self.ctime, self.crtime))

    def as_dict(self) -> dict:
        return {"md5": self.md5, "name": self.name, "inode": self.inode, "mode": self.mode, "uid": self.uid,
                "gid": self.gid, "size": self.size, "atime": self.atime, "mtime": self.mtime,
                "ctime": self.ctime, "crtime": self.crtime, "deleted": self.deleted}


def escape(name: bytes) -> str:
    """A name for the body file: control characters as "^" (TSK's tsk_print_sanitized),
    "|", "%" and bytes that are not UTF-8 as %XX."""
    text = name.decode("utf-8", "surrogateescape")
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"%{code - 0xDC00:02X}")
        elif ch in "|%":
            out.append(f"%{code:02X}")
        elif code < 0x20 or code == 0x7F:
            out.append("^")
        else:
            out.append(ch)
    return "".join(out)


def mode_string(file_type: int, inode: InodeRecord | None) -> str:
    """TSK's mode_as_string: name type, "/", then tsk_fs_meta_make_ls of the inode."""
    name_type = NAME_TYPE.get(file_type, "-")
    if inode is None:
        return f"{name_type}/----------"
    mode = inode.i_mode
    chars = [META_TYPE.get(mode & C.S_IFMT, "-")]
    for shift in (6, 3, 0):
        chars += ["r" if mode >> shift & 4 else "-", "w" if mode >> shift & 2 else "-",
                  "x" if mode >> shift & 1 else "-"]
    if mode & statmod.S_ISUID:
        chars[3] = "s" if chars[3] == "x" else "S"
    if mode & statmod.S_ISGID:
        chars[6] = "s" if chars[6] == "x" else "S"
    if mode & statmod.S_ISVTX:
        chars[9] = "t" if chars[9] == "x" else "T"
    return f"{name_type}/{''.join(chars)}"


def record_for(volume, path: bytes, ino: int, file_type: int, inode: InodeRecord | None, *, prefix: bytes = b"",
               deleted: bool = False, realloc: bool = False) -> BodyRecord:
    name = escape(prefix + path)
    if inode is not None and inode.is_symlink:
        try:
            target = volume.read_bytes(inode, min(inode.i_size, LINK_TARGET_LIMIT))
            name += " -> " + escape(target)
        except VexfsError:
            name += " -> (unreadable)"
    if deleted:
        name += " (deleted-realloc)" if realloc else " (deleted)"
    if inode is None:
        return BodyRecord("0", name, ino, mode_string(file_type, None), 0, 0, 0, 0, 0, 0, 0, deleted, path)
    return BodyRecord("0", name, ino, mode_string(file_type, inode), inode.i_uid, inode.i_gid, inode.i_size,
                      inode.i_atime, inode.i_mtime, inode.i_ctime, 0, deleted, path)


def body_records(recovery: Recovery, *, prefix: bytes = b"", orphans: bool = True,
                 progress: Callable[[int], None] | None = None) -> Iterator[BodyRecord]:
    """Every live name, every deleted name (through deleted directories that still hold
    data too) and, with `orphans`, every inode in use that nothing names."""
    volume = recovery.volume
    for name in every_name(recovery, orphans=orphans, progress=progress):
        item = name.deleted
        if item is not None:
            yield record_for(volume, name.path, name.ino, name.file_type, name.inode, prefix=prefix, deleted=True,
                             realloc=item.reallocated)
        else:
            yield record_for(volume, name.path, name.ino, name.file_type, name.inode, prefix=prefix,
                             deleted=name.inside_deleted or name.orphan)


def parse_line(line: str) -> dict:
    """A body-file line back into its fields (%XX decoded, as mactime does)."""
    import re

    fields = line.rstrip("\n").split("|")
    if len(fields) != 11:
        raise ValueError(f"a body-file line has 11 fields, not {len(fields)}: {line!r}")
    fields = [re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), f) for f in fields]
    keys = ("md5", "name", "inode", "mode", "uid", "gid", "size", "atime", "mtime", "ctime", "crtime")
    out = dict(zip(keys, fields))
    for key in keys[2:]:
        if key != "mode":
            out[key] = int(out[key])
    return out

