"""What changed between two images of one file system (before and after a kernel session,
before and after fsck -y): superblock fields, inode slots, blocks (bitmap, owner, content),
names, and files' content by digest. Directories whose inode maps no block (the kernel's
mkdir) are flagged, with the orphaned block they were read from.

Both images are read, never written. The inode tables, bitmaps and block contents are
compared a window at a time (numpy), so memory grows with what changed and with the number
of names, not with the device.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ..errors import VexfsError
from ..format import constants as C
from ..volume.blockmap import block_runs
from ..volume.inodes import InodeRecord
from ..volume.volume import Volume
from ..window import image_offset
from .blockmap import KIND_NAMES, Ownership, collect_ownership, with_recovered
from .dfxml import FileObject, fileobject_xml, fill, header_xml, volume_open_xml
from .recovery import Recovery, blockless_directories, join, walk
from .xmltext import escape, quoteattr

WINDOW = 1024  # blocks compared at a time (4 MiB of each image)
IGNORED_INODE_FIELDS = ("i_pad12",)


@dataclass
class Name:
    path: bytes
    ino: int
    file_type: int
    inode: InodeRecord | None


@dataclass
class Diff:
    """Everything found; as_dict() is --json."""

    superblock: dict[str, tuple] = field(default_factory=dict)
    inodes_allocated: list[int] = field(default_factory=list)
    inodes_freed: list[int] = field(default_factory=list)
    inodes_changed: dict[int, dict[str, tuple]] = field(default_factory=dict)
    blocks_allocated: list[tuple[int, int]] = field(default_factory=list)  # (first, count)
    blocks_freed: list[tuple[int, int]] = field(default_factory=list)
    blocks_content: list[tuple[int, int]] = field(default_factory=list)
    blocks_owner: list[dict] = field(default_factory=list)
    added: list[Name] = field(default_factory=list)
    removed: list[Name] = field(default_factory=list)
    renamed: list[tuple[Name, Name]] = field(default_factory=list)
    content: list[dict] = field(default_factory=list)  # path, inode, size/md5 before and after
    blockless: list[dict] = field(default_factory=list)  # path, inode, recovered_block, image
    digests: dict[bytes, str] = field(default_factory=dict)  # md5 of added files, by path

    @property
    def differs(self) -> bool:
        return any((self.superblock, self.inodes_allocated, self.inodes_freed, self.inodes_changed,
                    self.blocks_allocated, self.blocks_freed, self.blocks_content, self.blocks_owner, self.added,
                    self.removed, self.renamed, self.content))

    def as_dict(self) -> dict:
        pair = lambda v: {"a": jsonable(v[0]), "b": jsonable(v[1])}  # noqa: E731
        name = lambda n: {"path": os.fsdecode(n.path), "inode": n.ino,  # noqa: E731
                          "type": C.FILE_TYPE_NAMES.get(n.file_type, str(n.file_type)),
                          "size": n.inode.i_size if n.inode is not None else None,
                          **({"md5": self.digests[n.path]} if n.path in self.digests else {})}
        return {
            "superblock": {k: pair(v) for k, v in self.superblock.items()},
            "inodes": {"allocated": self.inodes_allocated, "freed": self.inodes_freed,
                       "changed": [{"inode": ino, "fields": {k: pair(v) for k, v in fields.items()}}
                                   for ino, fields in sorted(self.inodes_changed.items())]},
            "blocks": {"allocated": runs_json(self.blocks_allocated), "freed": runs_json(self.blocks_freed),
                       "content_changed": runs_json(self.blocks_content), "owner_changed": self.blocks_owner},
            "names": {"added": [name(n) for n in self.added], "removed": [name(n) for n in self.removed],
                      "renamed": [{"from": os.fsdecode(a.path), "to": os.fsdecode(b.path), "inode": b.ino}
                                  for a, b in self.renamed]},
            "content_changed": self.content,
            "blockless_directories": self.blockless,
        }


def jsonable(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def runs_json(runs: list[tuple[int, int]]) -> list[dict]:
    return [{"first": first, "count": count} for first, count in runs]


# --- superblock and inode table ---------------------------------------------------------

def superblock_changes(a: Volume, b: Volume) -> dict[str, tuple]:
    out = {}
    for key, value in a.sb.items():
        if key.startswith("_"):
            continue
        other = b.sb.get(key)
        if jsonable(value) != jsonable(other):
            out[key] = (value, other)
    return out


def inode_changes(a: Volume, b: Volume, diff: Diff) -> None:
    """Slots allocated (mode 0 -> not), freed, and every field changed of the others."""
    for (first, ra), (first_b, rb) in zip(a.inode_table(), b.inode_table()):
        if first != first_b:  # another geometry: the slots no longer line up
            break
        n = min(len(ra), len(rb))
        ra, rb = ra[:n], rb[:n]
        used_a, used_b = ra["i_mode"] != 0, rb["i_mode"] != 0
        diff.inodes_allocated += (np.flatnonzero(~used_a & used_b) + first).tolist()
        diff.inodes_freed += (np.flatnonzero(used_a & ~used_b) + first).tolist()
        differs = ra.tobytes() != rb.tobytes()
        if not differs:
            continue
        changed = np.zeros(n, bool)
        per_field = {}
        for name in ra.dtype.names:
            if name.startswith("_") or name in IGNORED_INODE_FIELDS:
                continue
            fa, fb = ra[name], rb[name]
            hit = fa != fb
            if hit.ndim > 1:
                hit = hit.any(axis=tuple(range(1, hit.ndim)))
            per_field[name] = hit
            changed |= hit
        for index in np.flatnonzero(changed & used_a & used_b).tolist():
            diff.inodes_changed[first + index] = {
                name: (jsonable(ra[name][index].tolist()), jsonable(rb[name][index].tolist()))
                for name, hit in per_field.items() if hit[index]}


# --- blocks ----------------------------------------------------------------------------

def owners_in(ownership: Ownership, first: int, count: int) -> np.ndarray:
    """The owning inode of each block of the window (0: none; the last extent wins)."""
    out = np.zeros(count, np.int64)
    hit = np.flatnonzero((ownership.starts < first + count) & (ownership.ends > first))
    for i in hit.tolist():
        lo = max(int(ownership.starts[i]), first) - first
        hi = min(int(ownership.ends[i]), first + count) - first
        out[lo:hi] = int(ownership.inos[i])
    return out


def kind_of(ownership: Ownership, block: int) -> str:
    owners = ownership.owners(block)
    return KIND_NAMES[owners[-1][1]] if owners else "-"


def block_changes(a: Volume, b: Volume, own_a: Ownership, own_b: Ownership, diff: Diff,
                  progress: Callable[[int, int], None] | None = None) -> None:
    total = min(a.geometry.blocks_count, b.geometry.blocks_count)
    allocated, freed, content = [], [], []
    for first in range(0, total, WINDOW):
        n = min(WINDOW, total - first)
        if progress is not None:
            progress(first, total)
        bits_a = bitmap_bits(a, first, n)
        bits_b = bitmap_bits(b, first, n)
        allocated.append(np.flatnonzero(~bits_a & bits_b) + first)
        freed.append(np.flatnonzero(bits_a & ~bits_b) + first)
        content.append(changed_blocks(a, b, first, n) + first)
        oa, ob = owners_in(own_a, first, n), owners_in(own_b, first, n)
        for index in np.flatnonzero(oa != ob).tolist():
            block = first + index
            item = {"first": block, "count": 1, "a": int(oa[index]) or None, "b": int(ob[index]) or None,
                    "kind_a": kind_of(own_a, block), "kind_b": kind_of(own_b, block)}
            last = diff.blocks_owner[-1] if diff.blocks_owner else None
            if last is not None and last["first"] + last["count"] == block and \
                    all(last[k] == item[k] for k in ("a", "b", "kind_a", "kind_b")):
                last["count"] += 1
            else:
                diff.blocks_owner.append(item)
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.int64)  # noqa: E731
    diff.blocks_allocated = block_runs(cat(allocated))
    diff.blocks_freed = block_runs(cat(freed))
    diff.blocks_content = block_runs(cat(content))


def bitmap_bits(volume: Volume, first: int, count: int) -> np.ndarray:
    try:
        return np.asarray(volume.bitmap.bits(first, count), bool)
    except VexfsError:
        return np.zeros(count, bool)


def changed_blocks(a: Volume, b: Volume, first: int, count: int) -> np.ndarray:
    """Indexes in the window of blocks whose bytes differ (holes on both sides skipped)."""
    offset, length = first * C.BLOCK_SIZE, count * C.BLOCK_SIZE
    if a.device.is_hole(offset, length) and b.device.is_hole(offset, length):
        return np.zeros(0, np.int64)
    da = np.frombuffer(a.device.read(offset, length), np.uint8).reshape(count, C.BLOCK_SIZE)
    db = np.frombuffer(b.device.read(offset, length), np.uint8).reshape(count, C.BLOCK_SIZE)
    return np.flatnonzero((da != db).any(axis=1))


# --- names and content -------------------------------------------------------------------

def names(recovery: Recovery) -> dict[bytes, Name]:
    """Every live name (recovered directories included), by path."""
    out = {}
    for listing in walk(recovery):
        for entry, inode in listing.entries:
            path = join(listing.path, entry.name)
            out[path] = Name(path, entry.ino, entry.file_type, inode)
    return out


def md5_of(volume: Volume, inode: InodeRecord | None) -> str | None:
    if inode is None or not inode.is_reg:
        return None
    digest = hashlib.md5()
    try:
        for piece in volume.read_file(inode):
            digest.update(piece)
    except VexfsError:
        return None
    return digest.hexdigest()


def name_changes(ra: Recovery, rb: Recovery, diff: Diff) -> None:
    na, nb = names(ra), names(rb)
    gone = [na[p] for p in na if p not in nb]
    new = [nb[p] for p in nb if p not in na]
    new_by_ino: dict[int, list[Name]] = {}
    for n in new:
        new_by_ino.setdefault(n.ino, []).append(n)
    renamed_new: set[bytes] = set()
    allocated = set(diff.inodes_allocated)
    for old in gone:
        candidates = new_by_ino.get(old.ino, [])
        if candidates and old.ino not in allocated:
            target = candidates.pop(0)
            renamed_new.add(target.path)
            diff.renamed.append((old, target))
        else:
            diff.removed.append(old)
    diff.added = [n for n in new if n.path not in renamed_new]
    for n in diff.added:
        digest = md5_of(rb.volume, n.inode)
        if digest is not None:
            diff.digests[n.path] = digest
    for path in sorted(set(na) & set(nb)):
        a, b = na[path], nb[path]
        if not (a.inode is not None and b.inode is not None and a.inode.is_reg and b.inode.is_reg):
            continue
        ma, mb = md5_of(ra.volume, a.inode), md5_of(rb.volume, b.inode)
        if ma != mb:
            diff.content.append({"path": os.fsdecode(path), "inode_a": a.ino, "inode_b": b.ino,
                                 "size_a": a.inode.i_size, "size_b": b.inode.i_size, "md5_a": ma, "md5_b": mb})
    for which, recovery, table in (("a", ra, na), ("b", rb, nb)):
        paths = {n.ino: p for p, n in table.items()}
        orphans = recovery.orphans()
        for ino in sorted(blockless_directories(recovery.volume)):
            if ino in paths or ino == C.ROOT_INO:
                diff.blockless.append({"image": which, "path": os.fsdecode(paths.get(ino, b"/")), "inode": ino,
                                       "recovered_block": orphans.get(ino)})


def compare(a: Volume, b: Volume, *, progress: Callable[[int, int], None] | None = None) -> Diff:
    """Everything that differs from image `a` to image `b`."""
    diff = Diff()
    diff.superblock = superblock_changes(a, b)
    inode_changes(a, b, diff)
    ra, rb = Recovery(a), Recovery(b)
    own_a = with_recovered(collect_ownership(a), ra.orphans())
    own_b = with_recovered(collect_ownership(b), rb.orphans())
    block_changes(a, b, own_a, own_b, diff, progress=progress)
    name_changes(ra, rb, diff)
    return diff


# --- the report, grouped by path -------------------------------------------------------------

def ranges_text(items: list[int]) -> str:
    runs = block_runs(np.asarray(sorted(items), np.int64))
    return ", ".join(str(f) if c == 1 else f"{f}-{f + c - 1}" for f, c in runs)


def runs_text(runs: list[tuple[int, int]]) -> str:
    return ", ".join(str(f) if c == 1 else f"{f}-{f + c - 1}" for f, c in runs)


def human_lines(diff: Diff) -> Iterator[str]:
    """The report: the superblock, then one group per path, then what no path names."""
    if diff.superblock:
        yield "Superblock:"
        for key, (va, vb) in diff.superblock.items():
            yield f"  {key}: {jsonable(va)} -> {jsonable(vb)}"
    blockless = {(d["image"], d["inode"]): d for d in diff.blockless}
    by_path: dict[str, list[str]] = {}
    described: set[int] = set()

    def note(path: bytes | str, line: str) -> None:
        by_path.setdefault(path if isinstance(path, str) else os.fsdecode(path), []).append(line)

    for n in diff.added:
        size = f", {n.inode.i_size} bytes" if n.inode is not None else ""
        digest = f", md5 {diff.digests[n.path]}" if n.path in diff.digests else ""
        note(n.path, f"added: {C.FILE_TYPE_NAMES.get(n.file_type, '?')}, inode {n.ino}{size}{digest}")
        flag = blockless.get(("b", n.ino))
        if flag is not None:
            where = f"read from orphaned block {flag['recovered_block']}" if flag["recovered_block"] is not None \
                else "no orphaned block names it either"
            note(n.path, f"directory inode {n.ino} has no block pointer ({where})")
        described.add(n.ino)
    for n in diff.removed:
        note(n.path, f"removed: {C.FILE_TYPE_NAMES.get(n.file_type, '?')}, inode {n.ino}")
    for old, new in diff.renamed:
        note(new.path, f"renamed from {os.fsdecode(old.path)} (inode {new.ino})")
    for item in diff.content:
        note(item["path"], f"content changed: {item['size_a']} -> {item['size_b']} bytes, md5 {item['md5_a']} -> "
                           f"{item['md5_b']}")
    paths_of = {C.ROOT_INO: b"/"}
    paths_of.update({n.ino: n.path for n in diff.added})
    paths_of.update({new.ino: new.path for _, new in diff.renamed})
    for item in diff.content:
        paths_of.setdefault(item["inode_b"], os.fsencode(item["path"]))
    for ino, fields in sorted(diff.inodes_changed.items()):
        if ino in paths_of:
            note(paths_of[ino], f"inode {ino} changed: {', '.join(fields)}")
    for path in sorted(by_path):
        yield f"{path}:"
        for line in by_path[path]:
            yield f"  {line}"
    for (which, ino), flag in sorted(blockless.items()):
        if which == "b" and ino not in described:
            yield f"{flag['path']}: directory inode {ino} has no block pointer"
    unnamed = {ino: f for ino, f in diff.inodes_changed.items() if ino not in paths_of}
    if diff.inodes_allocated or diff.inodes_freed or unnamed:
        yield "Inodes:"
        if diff.inodes_allocated:
            yield f"  allocated: {ranges_text(diff.inodes_allocated)}"
        if diff.inodes_freed:
            yield f"  freed: {ranges_text(diff.inodes_freed)}"
        for ino, fields in sorted(unnamed.items()):
            yield f"  {ino} changed: " + ", ".join(f"{k} {jsonable(va)} -> {jsonable(vb)}"
                                                   for k, (va, vb) in fields.items() if k != "i_block")
    if diff.blocks_allocated or diff.blocks_freed or diff.blocks_content or diff.blocks_owner:
        yield "Blocks:"
        if diff.blocks_allocated:
            yield f"  allocated: {runs_text(diff.blocks_allocated)}"
        if diff.blocks_freed:
            yield f"  freed: {runs_text(diff.blocks_freed)}"
        if diff.blocks_content:
            yield f"  content changed: {runs_text(diff.blocks_content)}"
        for item in diff.blocks_owner:
            yield (f"  {runs_text([(item['first'], item['count'])])}: owner {item['a'] or '-'} ({item['kind_a']}) -> {item['b'] or '-'} "
                   f"({item['kind_b']})")



# --- differential DFXML (the DFXML tools' idifference) ------------------------------------

DELTA_NS = "http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML#delta"


def _object(recovery: Recovery, n: Name) -> FileObject:
    obj = FileObject(n.path, n.ino, n.file_type, n.inode, 0, alloc=True)
    fill(recovery.volume, recovery, obj, hashes=True)
    return obj


def differential_objects(diff: Diff, ra: Recovery, rb: Recovery) -> Iterator[tuple[str, FileObject, FileObject | None]]:
    """(delta marker, fileobject in b (a for deleted files), its original in a or None)."""
    na, nb = names(ra), names(rb)
    for n in diff.added:
        yield "new_file", _object(rb, n), None
    for n in diff.removed:
        yield "deleted_file", _object(ra, n), None
    for old, new in diff.renamed:
        yield "renamed_file", _object(rb, new), _object(ra, old)
    changed_paths = set()
    for item in diff.content:
        path = os.fsencode(item["path"])
        changed_paths.add(path)
        yield "modified_file", _object(rb, nb[path]), _object(ra, na[path])
    if diff.inodes_changed:
        for path, n in nb.items():
            if n.ino in diff.inodes_changed and path in na and path not in changed_paths and na[path].ino == n.ino:
                yield "changed_file", _object(rb, n), _object(ra, na[path])


def write_differential(write: Callable[[str], None], diff: Diff, a: Volume, b: Volume, *, images: tuple[str, str],
                       command_line: str = "", version: str = "") -> int:
    """A DFXML document of what changed: one fileobject per changed name, marked with
    delta:new_file, deleted_file, renamed_file, modified_file (content) or changed_file
    (metadata), the original inside delta:original_fileobject."""
    write(header_xml(images[1], command_line, version, namespaces=f" xmlns:delta={quoteattr(DELTA_NS)}"))
    write(f"  <delta:original_image>{escape(images[0])}</delta:original_image>\n")
    write(volume_open_xml(b, image_offset(b.device)))
    base_a, base_b = image_offset(a.device), image_offset(b.device)
    count = 0
    for count, (marker, obj, original) in enumerate(differential_objects(diff, Recovery(a), Recovery(b)), 1):
        extra = ""
        if original is not None:
            extra = ("      <delta:original_fileobject>\n" + fileobject_xml(original, count, base_a, indent="        ")
                     + "      </delta:original_fileobject>\n")
        write(fileobject_xml(obj, count, base_b, attrs=f" delta:{marker}='1'", extra=extra))
    write("  </volume>\n</dfxml>\n")
    return count
