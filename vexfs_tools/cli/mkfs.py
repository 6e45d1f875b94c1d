"""mkfs.vexfs: make a VexFS file system on a device or image file."""

from __future__ import annotations

import uuid as uuidlib

import click

from ..mkfs.plan import MkfsOptions, describe
from ..mkfs.run import parse_size, run_mkfs
from ..volume.geometry import EXTENDED, KERNEL
from .common import handle_errors, run_standalone

EPILOG = """\b
Examples:
  mkfs.vexfs -s 64M disk.img                  new 64 MiB image, extended layout
  mkfs.vexfs --compat kernel -L data disk.img what the kernel's C mkfs writes
  mkfs.vexfs -d ./tree -s 1G disk.img         populate from a directory
  mkfs.vexfs -n /dev/loop0                    show the layout, write nothing
"""


@click.command("mkfs", epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("device", type=click.Path(dir_okay=True))
@click.option("-f", "-F", "--force", is_flag=True, help="Overwrite a device that holds data.")
@click.option("-L", "--label", help="Volume label, at most 15 bytes (default VexFS).")
@click.option("-v", "--verbose", is_flag=True, help="Print the layout as it is written.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("-n", "--dry-run", is_flag=True, help="Print the layout; write nothing.")
@click.option("-U", "--uuid", help="UUID: a value, 'random', 'time' or 'null'.")
@click.option("-N", "--inodes", type=int, help="Number of inodes (extended layout).")
@click.option("-i", "--bytes-per-inode", type=int, help="One inode per this many bytes (default 16384).")
@click.option("-O", "--features", help="Comma list of features; ^name turns one off.")
@click.option("-d", "--root-directory", type=click.Path(), help="Copy this directory tree in.")
@click.option("-s", "--size", "size_text", help="Create or extend an image file to SIZE (64M, 1T).")
@click.option("--compat", type=click.Choice([KERNEL]), help="The kernel module's layout, nothing else.")
@handle_errors(error_code=1)
def mkfs_command(device, force, label, verbose, quiet, dry_run, uuid, inodes, bytes_per_inode,
                 features, root_directory, size_text, compat):
    """Make a VexFS file system on DEVICE (a block device or an image file)."""
    options = MkfsOptions(layout=compat or EXTENDED, label=label, uuid=uuid, inodes=inodes,
                          bytes_per_inode=bytes_per_inode, features=features,
                          root_directory=root_directory)
    size = parse_size(size_text) if size_text else None
    result = run_mkfs(device, options, size=size, force=force, dry_run=dry_run)
    for warning in result.plan.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if quiet:
        return
    if dry_run or verbose:
        click.echo("\n".join(describe(result.plan)))
    if dry_run:
        click.echo("(dry run: nothing was written)")
        return
    g = result.plan.geometry
    click.echo(f"Created a VexFS file system ({result.plan.layout} layout) on {device}: "
               f"{g.blocks_count} blocks of 4096 bytes, {g.inodes_count} inodes, "
               f"UUID {uuidlib.UUID(bytes=result.plan.uuid)}")
    if root_directory is not None:
        click.echo(f"Copied {result.inodes_written} inodes from {root_directory}")


def main() -> None:
    run_standalone(mkfs_command, usage_code=1)
