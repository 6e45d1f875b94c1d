"""`vexfs tune` (tune2fs) and `vexfs image` (e2image)."""

from __future__ import annotations

import click

from .. import __version__
from ..check.run import run_check
from ..errors import UsageError
from ..inspect.summary import summary
from ..inspect.superblocks import compare_superblocks
from ..maintenance.image import ImageOptions, restore_compact, write_image
from ..maintenance.tune import TuneRequest, tune
from .common import SETTINGS, handle_errors, open_readonly
from .dump import print_summary, print_superblocks

TUNE_EPILOG = """\b
Examples:
  vexfs tune -l disk.img                 what dump.vexfs prints
  vexfs tune -L data -U random disk.img  a new label and UUID (checksums stay valid)
  vexfs tune -e remount-ro -c 30 -i 2w disk.img
  vexfs tune -O ^metadata_csum disk.img  clear every checksum
  vexfs tune -O backup_super -z tune.undo disk.img; vexfs undo tune.undo disk.img
"""


def _fsck_first(path: str) -> None:
    """Feature changes rewrite metadata: only on an image fsck.vexfs -fn passes."""
    result = run_check(path)
    if result.exit_code:
        raise UsageError(f"{path}: fsck.vexfs -fn finds problems; run fsck.vexfs before changing features")


@click.command("tune", epilog=TUNE_EPILOG, context_settings=SETTINGS)
@click.argument("image", type=click.Path(dir_okay=True))
@click.option("-l", "list_", is_flag=True, help="Print the superblock as dump.vexfs does (after the changes).")
@click.option("-L", "label", metavar="LABEL", help="Set the volume name (at most 15 bytes).")
@click.option("-U", "uuid", metavar="UUID", help="Set the UUID: clear, random, time or a UUID.")
@click.option("-e", "errors", type=click.Choice(["continue", "remount-ro", "panic"]),
              help="Set the error behavior (extended layout).")
@click.option("-c", "max_mount_count", type=int, metavar="N",
              help="Set the maximal mount count (0 or -1: no limit; extended layout).")
@click.option("-i", "interval", metavar="N[d|w|m|s]",
              help="Set the interval between checks (days by default; 0: none; extended layout).")
@click.option("-O", "features", metavar="[^]FEATURE,...",
              help="Set or (^) clear features that need no data moved: backup_super, metadata_csum, "
                   "vector_files, indirect_blocks, large_dir, lazy_itable.")
@click.option("-z", "undo_file", type=click.Path(dir_okay=False),
              help="Save the old contents of every block changed in this undo file.")
@handle_errors(error_code=1)
def tune_command(image, list_, label, uuid, errors, max_mount_count, interval, features, undo_file):
    """Change superblock fields and features of the unmounted VexFS file system on IMAGE
    (tune2fs). Refused: mounted devices, changes that need data moved, and in the kernel
    layout anything but -L and -U. The image passes fsck.vexfs -fn afterwards."""
    request = TuneRequest(label=label, uuid=uuid, errors=errors, max_mount_count=max_mount_count,
                          check_interval=interval, features=features)
    if request.empty() and not list_:
        raise UsageError("nothing to do (give -l, -L, -U, -e, -c, -i or -O)")
    if not request.empty():
        for message in tune(image, request, undo_path=undo_file, preflight=_fsck_first):
            click.echo(message)
    elif undo_file:
        raise UsageError("-z needs a change to record")
    if list_:
        with open_readonly(image) as volume:
            click.echo(f"vexfs tune {__version__}")
            print_summary(summary(volume))
            print_superblocks(compare_superblocks(volume))


IMAGE_EPILOG = """\b
Examples:
  vexfs image disk.img meta.img            metadata only, sparse; fsck.vexfs reads it
  vexfs image -s disk.img meta.img         names scrambled, lengths and structure kept
  vexfs image -Q disk.img - | xz > bug.qimg.xz   compact form, to stdout
  vexfs image --restore bug.qimg meta.img  back to the raw image
  vexfs image -a disk.img copy.img         metadata and file data
"""


@click.command("image", epilog=IMAGE_EPILOG, context_settings=SETTINGS)
@click.argument("image", type=click.Path(dir_okay=True, allow_dash=False))
@click.argument("out", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-s", "scramble", is_flag=True, help="Scramble file names (same lengths, same tree).")
@click.option("-a", "all_data", is_flag=True, help="Copy file data too (every block in use).")
@click.option("-Q", "--compact", is_flag=True, help="Write the compact form (a list of blocks, compressed).")
@click.option("--restore", is_flag=True, help="IMAGE is a compact image: write the raw image it holds to OUT.")
@handle_errors(error_code=1)
def image_command(image, out, scramble, all_data, compact, restore):
    """Write the metadata of the VexFS file system on IMAGE (superblocks, bitmap, inode
    table, directories, indirect blocks, symlink targets, vector file headers) to OUT, a
    sparse raw image that fsck.vexfs, dump.vexfs and vexfs ls read as they read IMAGE; no
    file data unless -a. OUT '-' is standard output."""
    if restore:
        if scramble or all_data or compact:
            raise UsageError("--restore takes no -s, -a or -Q")
        restore_compact(image, out)
        return
    write_image(image, out, ImageOptions(scramble=scramble, all_data=all_data, compact=compact))
