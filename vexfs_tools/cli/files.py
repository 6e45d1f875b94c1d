"""`vexfs ls`, `vexfs stat`, `vexfs cat`: read files and directories through the library."""

from __future__ import annotations

import stat as statmod
import sys

import click

from ..errors import NotADirectoryError_, UsageError
from ..format import constants as C
from ..inspect.files import find, inode_details, list_directory
from .common import handle_errors
from .dump import open_readonly, superblock_options
from .output import format_time, print_json

SETTINGS = {"help_option_names": ["-h", "--help"]}


@click.command("ls", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs ls disk.img /            names in the root directory
  vexfs ls -l disk.img /docs     with inode, mode, links, owner, size, time
""")
@click.argument("image", type=click.Path(dir_okay=True))
@click.argument("path", default="/")
@click.option("-l", "long", is_flag=True, help="Long listing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@superblock_options
@handle_errors(error_code=1)
def ls_command(image, path, long, as_json, backup, superblock_block):
    """List the directory PATH (or inode number) of IMAGE."""
    with open_readonly(image, backup, superblock_block) as volume:
        target = find(volume, path)
        if not target.is_dir:
            raise NotADirectoryError_(f"{path}: not a directory")
        entries = list_directory(volume, target)
        if as_json:
            print_json([entry.__dict__ for entry in entries])
            return
        for entry in entries:
            if not long:
                click.echo(entry.name)
            elif entry.mode is None:
                click.echo(f"{entry.inode:>8}  (inode out of range){'':>42}{entry.name}")
            else:
                click.echo(f"{entry.inode:>8}  {statmod.filemode(entry.mode)} {entry.links:>4} "
                           f"{entry.uid:>5} {entry.gid:>5} {entry.size:>12}  "
                           f"{format_time(entry.mtime)}  {entry.name}")


@click.command("stat", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs stat disk.img /docs/a.txt    by path
  vexfs stat disk.img 12             by inode number (or <12>)
""")
@click.argument("image", type=click.Path(dir_okay=True))
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@superblock_options
@handle_errors(error_code=1)
def stat_command(image, target, as_json, backup, superblock_block):
    """Every field of the inode named by TARGET (a path or an inode number)."""
    with open_readonly(image, backup, superblock_block) as volume:
        details = inode_details(volume, find(volume, target))
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
@handle_errors(error_code=1)
def cat_command(image, path, backup, superblock_block):
    """Write the contents of the file PATH (or inode number) of IMAGE to standard output."""
    with open_readonly(image, backup, superblock_block) as volume:
        inode = find(volume, path)
        if inode.is_dir:
            raise NotADirectoryError_(f"{path}: is a directory")
        if inode.file_format not in (C.S_IFREG, C.S_IFLNK):
            raise UsageError(f"{path}: not a regular file")
        out = sys.stdout.buffer
        for chunk in volume.read_file(inode):
            out.write(chunk)
        out.flush()
