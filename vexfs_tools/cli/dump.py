"""dump.vexfs: print the superblock and a summary of an image, read-only (dumpe2fs -h)."""

from __future__ import annotations

import json
import time

import click

from .. import __version__
from ..inspect.blockmap import classify_blocks
from ..inspect.inodes import inode_slots
from ..inspect.recovery import Recovery, ownership_with_recovery
from ..inspect.summary import summary
from ..inspect.superblocks import compare_superblocks
from .common import SETTINGS, handle_errors, json_option, open_readonly, quiet_option, run_standalone, \
    offset_options, superblock_options
from .output import Progress, format_time, print_fields, print_json

EPILOG = """\b
Examples:
  dump.vexfs disk.img            superblock, geometry, counts, backup compared
  dump.vexfs --json /dev/loop0   the same as JSON
  dump.vexfs -b disk.img         read the backup superblock instead
  dump.vexfs --blocks disk.img   what every block of the device is, and its owner
  dump.vexfs --inodes disk.img   every inode in use, unlinked or freed, with its blocks
"""


def print_summary(info: dict) -> None:
    g = info["geometry"]
    rows = [
        ("Filesystem volume name", info["label"] or "<none>"),
        ("Filesystem UUID", info["uuid"]),
        ("Filesystem magic number", info["magic"]),
        ("Superblock", info["superblock"]),
        ("Layout", info["layout"]),
        ("Filesystem features", " ".join(info["features"]) or "(none)"),
        ("Filesystem state", info["state"]),
        ("Errors behavior", info["errors_behavior"]),
        ("Filesystem revision #", info["revision"]),
        ("Inode count", info["inodes_count"]),
        ("Block count", info["blocks_count"]),
        ("Free blocks", f"{info['free_blocks']['recorded']} recorded, "
                        f"{info['free_blocks']['counted']} counted from the bitmap"),
        ("Free inodes", f"{info['free_inodes']['recorded']} recorded, "
                        f"{info['free_inodes']['counted']} counted from the inode table"),
        ("Used inodes", info["used_inodes"]),
        ("Used blocks", info["used_blocks"]),
        ("First allocatable inode", info["first_inode"]),
        ("Block size", info["block_size"]),
        ("Inode size", info["inode_size"]),
        ("Block bitmap at", _range(*g["block_bitmap"])),
        ("Inode table at", _range(*g["inode_table"])),
        ("First data block", g["first_data_block"]),
        ("Backup superblock at", g["backup_superblock"] or "none"),
        ("Device blocks", info["device_blocks"]),
        ("Filesystem created", format_time(info["times"]["mkfs"])),
        ("Last mount time", format_time(info["times"]["mount"])),
        ("Last write time", format_time(info["times"]["write"])),
        ("Last checked", format_time(info["times"]["last_check"])),
        ("Mount count", info["mount_count"]),
        ("Maximum mount count", info["max_mount_count"]),
    ]
    if info["checksum"]:
        state = "ok" if info["checksum"]["ok"] else "MISMATCH"
        rows.append(("Checksum", f"{info['checksum']['type']} {info['checksum']['stored']} ({state})"))
    if g["addressable_blocks"] < info["blocks_count"]:
        rows.append(("Warning", f"the bitmap describes only {g['addressable_blocks']} blocks"))
    print_fields(rows)
    for problem in info["problems"]:
        click.echo(f"Problem: {problem}")


def print_superblocks(comparison: dict) -> None:
    if comparison["status"] == "none":
        return
    if comparison["status"] == "unreadable":
        print_fields([("Backup superblock", f"unreadable: {comparison['error']}")])
        return
    backup = comparison["backup"]
    state = {True: "ok", False: "MISMATCH", None: "not checked"}
    rows = [("Backup superblock", f"block {backup['block']}, "
             + ("identical to the primary" if comparison["status"] == "identical"
                else f"{len(comparison['differences'])} fields differ from the primary")),
            ("Backup checksum", state[backup["checksum_ok"]]),
            ("Primary checksum", state[comparison["primary"]["checksum_ok"]])]
    print_fields(rows)
    for note in comparison.get("notes", []):
        click.echo(f"Backup: {note}")
    for diff in comparison["differences"]:
        click.echo(f"  {diff['field']}: primary {diff['primary']}, backup {diff['backup']}")


def _short_time(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) if seconds else "-"


def block_run_line(run) -> str:
    span = str(run.first) if run.count == 1 else f"{run.first}-{run.last}"
    owner = f"inode {run.owner}" if run.owner is not None else ""
    flags = "".join([", claimed by several inodes" if run.shared else "",
                     ", marked free in the bitmap" if run.marked_free else ""])
    return f"{span:>23}  {run.kind:<24}{owner}{flags}".rstrip()


def inode_line(item: dict) -> str:
    runs = ",".join(str(a) if n == 1 else f"{a}-{a + n - 1}" for a, n in item["blocks"]) or "-"
    if item["blocks_truncated"]:
        runs += ",..."
    extra = f" +{item['indirect_blocks']} indirect" if item["indirect_blocks"] else ""
    if item.get("recovered_block") is not None:
        extra += f" (recovered: orphaned block {item['recovered_block']})"
    if item.get("checksum_ok") is False:
        extra += " CHECKSUM MISMATCH"
    return (f"{item['inode']:>8}  {item['status']:<8}  {item['mode']}  {item['links']:>4} {item['uid']:>5} "
            f"{item['gid']:>5} {item['size']:>12}  a:{_short_time(item['atime'])}  c:{_short_time(item['ctime'])}"
            f"  m:{_short_time(item['mtime'])}  blocks: {runs}{extra}")


def _range(start: int, count: int) -> str:
    return f"block {start}" if count == 1 else f"blocks {start}-{start + count - 1}"


@click.command("dump", epilog=EPILOG, context_settings=SETTINGS)
@click.argument("image", type=click.Path(dir_okay=True))
@json_option
@click.option("--blocks", is_flag=True, help="Also a map of every block of the device (streamed).")
@click.option("--inodes", is_flag=True, help="Also every inode slot in use, unlinked or freed (streamed).")
@click.option("--no-free-scan", is_flag=True,
              help="With --blocks: do not read free blocks to tell 'free' from 'free, not zero'.")
@quiet_option()
@superblock_options
@offset_options
@handle_errors(error_code=1)
def dump_command(image, as_json, blocks, inodes, no_free_scan, quiet, backup, superblock_block):
    """Print the superblock of IMAGE and what its bitmap and inode table hold; the backup
    superblock compared with the primary. Read-only."""
    with open_readonly(image, backup, superblock_block) as volume:
        info = summary(volume)
        comparison = compare_superblocks(volume)
        if as_json and not (blocks or inodes):
            info["superblocks"] = comparison
            print_json(info)
            return
        if as_json:
            info["superblocks"] = comparison
            click.echo('{"summary": ' + json.dumps(info), nl=False)
        else:
            click.echo(f"dump.vexfs {__version__}")
            print_summary(info)
            print_superblocks(comparison)
        if blocks:
            _dump_blocks(volume, as_json, quiet, scan_free=not no_free_scan)
        if inodes:
            _dump_inodes(volume, as_json, quiet)
        if as_json:
            click.echo("}")


def _dump_blocks(volume, as_json: bool, quiet: bool, *, scan_free: bool) -> None:
    progress = Progress("block map", quiet=quiet)
    ownership = ownership_with_recovery(volume, progress=progress, phase=progress.relabel)
    progress.done()
    progress.label = "block map"
    if as_json:
        click.echo(', "blocks": [', nl=False)
    else:
        click.echo(f"\nBlock map ({volume.device.size // 4096} blocks of the device):")
    first = True
    for run in classify_blocks(volume, ownership, scan_free=scan_free, progress=progress):
        if as_json:
            click.echo(("" if first else ",") + "\n" + json_dumps(run.as_dict()), nl=False)
        else:
            progress.done()
            click.echo(block_run_line(run))
        first = False
    progress.done()
    for problem in ownership.problems:
        if not as_json:
            click.echo(f"Problem: {problem}")
    if as_json:
        click.echo("\n]", nl=False)
        click.echo(', "block_problems": ' + json_dumps(ownership.problems), nl=False)


def _dump_inodes(volume, as_json: bool, quiet: bool) -> None:
    progress = Progress("inodes", quiet=quiet)
    if as_json:
        click.echo(', "inodes": [', nl=False)
    else:
        click.echo("\nInodes (every slot in use, unlinked or freed):")
    first = True
    for item in inode_slots(Recovery(volume), progress=progress):
        progress.done()
        if as_json:
            click.echo(("" if first else ",") + "\n" + json_dumps(item), nl=False)
        else:
            click.echo(inode_line(item))
        first = False
    progress.done()
    if as_json:
        click.echo("\n]", nl=False)


def json_dumps(value) -> str:
    return json.dumps(value)


def main() -> None:
    run_standalone(dump_command, usage_code=1)
