"""`vexfs ls`, `vexfs stat`, `vexfs cat`: read files and directories through the library."""

from __future__ import annotations

import os
import stat as statmod
import sys

import click

from ..errors import CorruptionError, NotADirectoryError_, UsageError
from ..format import constants as C
from ..inspect.deleted import deleted_entries
from ..inspect.files import Listing, inode_details, inode_findings
from ..inspect.names import display
from ..inspect.recovery import Recovery, walk
from .common import SETTINGS, handle_errors, json_option, note, open_readonly, prog_name, quiet_option, \
    offset_options, superblock_options, warn_findings
from .output import JsonArray, Progress, format_time, print_json


@click.command("ls", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs ls disk.img /            names in the root directory
  vexfs ls -l disk.img /docs     with inode, mode, links, owner, size, time
  vexfs ls -ld disk.img /docs    deleted entries too, still readable in directory slack
  vexfs ls -lR kernel.img /      the whole tree, directories the kernel's mkdir left
                                 orphaned included (read from their block, marked)
""")
@click.argument("image", type=click.Path(dir_okay=True))
@click.argument("path", default="/")
@click.option("-l", "long", is_flag=True, help="Long listing.")
@click.option("-d", "--deleted", is_flag=True,
              help="Also deleted entries still readable in directory slack, marked, with their inode's state.")
@click.option("-R", "--recursive", is_flag=True, help="Every directory below PATH (\".\" and \"..\" left out).")
@json_option
@quiet_option()
@superblock_options
@offset_options
@handle_errors(error_code=1)
def ls_command(image, path, long, deleted, recursive, as_json, quiet, backup, superblock_block):
    """List the directory PATH (or inode number) of IMAGE. A directory whose block the
    kernel's mkdir left orphaned is read from that block and marked as recovered."""
    with open_readonly(image, backup, superblock_block) as volume:
        recovery = Recovery(volume)
        target = recovery.find(path)
        if not target.is_dir:
            raise NotADirectoryError_(f"{path}: not a directory")
        if recursive:
            spec = path.strip()
            if target.ino == C.ROOT_INO:
                top_path = b"/"
            elif spec.strip("<>").isdigit():
                top_path = b"<%d>" % target.ino
            else:
                top_path = b"/" + os.fsencode(spec).strip(b"/")
            _ls_recursive(volume, walk(recovery, target, top_path, deleted=deleted), long, deleted, as_json,
                          Progress("ls", quiet=quiet))
            return
        read = recovery.read_directory(target)
        entries = [_entry_dict(volume, e.name, e.ino, e.file_type) for e in read.entries]
        if deleted:
            entries += [_deleted_dict(volume, item) for item in deleted_entries(recovery, target)]
        if read.recovered:
            for entry in entries:
                entry["recovered_block"] = read.recovered_block
        if as_json:
            print_json(entries)
            return
        if read.recovered:
            note(f"{path}: read from orphaned block {read.recovered_block} "
                 "(recovered: the directory's inode maps no block)")
        for entry in entries:
            click.echo(_entry_line(entry, long))
        for problem in read.problems:
            note(problem)


def _entry_dict(volume, name: bytes, ino: int, file_type: int, inode=None) -> dict:
    try:
        inode = inode or volume.read_inode(ino)
    except CorruptionError:
        return Listing(display(name), ino, file_type, None).__dict__
    return Listing(display(name), ino, file_type, inode.i_mode, inode.i_links_count, inode.i_uid, inode.i_gid,
                   inode.i_size, inode.i_mtime).__dict__


def _deleted_dict(volume, item) -> dict:
    entry = _entry_dict(volume, item.name, item.ino, item.file_type, item.inode) if item.inode is not None else \
        Listing(display(item.name), item.ino, item.file_type, None).__dict__
    entry.update(deleted=True, status=item.status, holds_data=item.holds_data)
    return entry


def _entry_line(entry: dict, long: bool) -> str:
    mark = ""
    if entry.get("deleted"):
        inode = entry["inode"] or "?"
        mark = f"  (deleted: inode {inode}, {entry['status']})" if not long else f"  (deleted, {entry['status']})"
    if not long:
        return entry["name"] + mark
    if entry["mode"] is None:
        what = "(inode unknown)" if entry["inode"] == 0 else "(inode out of range)"
        return f"{entry['inode']:>8}  {what:<62}{entry['name']}{mark}"
    return (f"{entry['inode']:>8}  {statmod.filemode(entry['mode'])} {entry['links']:>4} "
            f"{entry['uid']:>5} {entry['gid']:>5} {entry['size']:>12}  "
            f"{format_time(entry['mtime'])}  {entry['name']}{mark}")


def _ls_recursive(volume, listings, long, deleted, as_json, progress) -> None:
    out = JsonArray() if as_json else None
    count = 0
    for listing in listings:
        entries = [_entry_dict(volume, e.name, e.ino, e.file_type, inode) for e, inode in listing.entries]
        if deleted:
            entries += [_deleted_dict(volume, item) for item in listing.deleted]
        count += 1
        progress(count)
        if out is not None:
            out.add({"path": display(listing.path), "inode": listing.inode.ino,
                     "recovered_block": listing.recovered_block, "entries": entries,
                     "problems": listing.problems})
            continue
        progress.done()
        header = display(listing.path) + ":"
        if listing.recovered:
            header += f"  [recovered from orphaned block {listing.recovered_block}]"
        click.echo(("\n" if count > 1 else "") + header)
        for entry in entries:
            click.echo(_entry_line(entry, long))
        for problem in listing.problems:
            note(problem)
    progress.done()
    if out is not None:
        out.close()


@click.command("stat", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs stat disk.img /docs/a.txt    by path
  vexfs stat disk.img 12             by inode number (or <12>)
""")
@click.argument("image", type=click.Path(dir_okay=True))
@click.argument("target")
@json_option
@superblock_options
@offset_options
@handle_errors(error_code=1)
def stat_command(image, target, as_json, backup, superblock_block):
    """Every field of the inode named by TARGET (a path or an inode number)."""
    with open_readonly(image, backup, superblock_block) as volume:
        recovery = Recovery(volume)
        inode = recovery.find(target)
        warn_findings(prog_name(), inode_findings(volume, inode))
        details = inode_details(volume, inode)
        if inode.is_dir and not details["blocks"] and recovery.dir_blocks(inode)[1] is not None:
            details.setdefault("notes", []).append(
                f"directory block recovered: orphaned block {recovery.dir_blocks(inode)[1]} names this inode")
    if as_json:
        print_json(details)
        return
    f = details["fields"]
    click.echo(f"Inode: {details['inode']}   Type: {details['type']}   Mode: {f['i_mode'] & 0o7777:04o}"
               f"   Flags: 0x{f['i_flags']:x}   Generation: {f['i_generation']}")
    click.echo(f"User: {f['i_uid']:>5}   Group: {f['i_gid']:>5}   Size: {f['i_size']}")
    click.echo(f"Links: {f['i_links_count']}   Blockcount: {f['i_blocks']}")
    for label, key in (("ctime", "i_ctime"), ("atime", "i_atime"), ("mtime", "i_mtime")):
        click.echo(f" {label}: 0x{f[key]:08x} -- {format_time(f[key])}")
    click.echo(f"Direct blocks: {' '.join(str(b) for b in f['i_block'])}")
    click.echo(f"Indirect: {f['i_indirect']}   Double: {f['i_double_indirect']}   "
               f"Triple: {f['i_triple_indirect']}")
    if details["checksum_ok"] is not None:
        click.echo(f"Inode checksum: 0x{f['i_checksum']:08x} ({'ok' if details['checksum_ok'] else 'MISMATCH'})")
    if "target" in details:
        click.echo(f"Fast link dest: {details['target']}")
    runs = ", ".join(f"({r['logical']}" + (f"-{r['logical'] + r['count'] - 1}" if r["count"] > 1 else "")
                     + f"):{r['physical']}" + (f"-{r['physical'] + r['count'] - 1}" if r["count"] > 1 else "")
                     for r in details["blocks"])
    click.echo(f"BLOCKS:\n{runs or '(none)'}")
    if details["indirect_blocks"]:
        click.echo(f"INDIRECT BLOCKS: {' '.join(map(str, details['indirect_blocks']))}")
    click.echo(f"TOTAL: {details['mapped_blocks']}")
    for note in details.get("notes", []):
        click.echo(f"Note: {note}")
    for problem in details["problems"]:
        click.echo(f"Problem: {problem}")


@click.command("cat", context_settings=SETTINGS, epilog="""\b
Example:
  vexfs cat disk.img /docs/a.txt > a.txt
""")
@click.argument("image", type=click.Path(dir_okay=True))
@click.argument("path")
@superblock_options
@offset_options
@handle_errors(error_code=1)
def cat_command(image, path, backup, superblock_block):
    """Write the contents of the file PATH (or inode number) of IMAGE to standard output."""
    with open_readonly(image, backup, superblock_block) as volume:
        inode = Recovery(volume).find(path)
        if inode.is_dir:
            raise NotADirectoryError_(f"{path}: is a directory")
        if inode.file_format not in (C.S_IFREG, C.S_IFLNK):
            raise UsageError(f"{path}: not a regular file")
        warn_findings(prog_name(), inode_findings(volume, inode))
        out = sys.stdout.buffer
        for chunk in volume.read_file(inode):
            out.write(chunk)
        out.flush()
