"""dump.vexfs: print the superblock and a summary of an image, read-only (dumpe2fs -h)."""

from __future__ import annotations

import click

from .. import __version__
from ..inspect.summary import summary
from ..volume.volume import Volume
from .common import handle_errors, run_standalone
from .output import format_time, print_fields, print_json

EPILOG = """\b
Examples:
  dump.vexfs disk.img            superblock, geometry, counts
  dump.vexfs --json /dev/loop0   the same as JSON
  dump.vexfs -b disk.img         read the backup superblock instead
"""


def superblock_options(func):
    func = click.option("-b", "--backup", is_flag=True,
                        help="Use the backup superblock (last block of the device).")(func)
    func = click.option("--superblock", "superblock_block", type=int, metavar="BLOCK",
                        help="Use the superblock copy in this block.")(func)
    return func


def open_readonly(image: str, backup: bool = False, superblock_block: int | None = None) -> Volume:
    return Volume.open(image, backup=backup, superblock_block=superblock_block, ignore_checksums=True)


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


def _range(start: int, count: int) -> str:
    return f"block {start}" if count == 1 else f"blocks {start}-{start + count - 1}"


@click.command("dump", epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("image", type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@superblock_options
@handle_errors(error_code=1)
def dump_command(image, as_json, backup, superblock_block):
    """Print the superblock of IMAGE and what its bitmap and inode table hold."""
    with open_readonly(image, backup, superblock_block) as volume:
        info = summary(volume)
    if as_json:
        print_json(info)
    else:
        click.echo(f"dump.vexfs {__version__}")
        print_summary(info)


def main() -> None:
    run_standalone(dump_command, usage_code=1)
