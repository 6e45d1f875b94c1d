"""`vexfs tune` (tune2fs), `vexfs image` (e2image) and `vexfs resize` (resize2fs)."""

from __future__ import annotations

from collections.abc import Callable

import click

from .. import __version__
from ..check.run import run_check
from ..errors import UsageError
from ..inspect.summary import summary
from ..inspect.superblocks import compare_superblocks
from ..maintenance.image import ImageOptions, restore_compact, write_image
from ..maintenance.resize import ResizeRequest, print_minimum, resize
from ..maintenance.tune import TuneRequest, tune
from .common import SETTINGS, handle_errors, open_readonly, undo_option
from .dump import print_summary, print_superblocks

TUNE_EPILOG = """\b
Examples:
  vexfs tune -l disk.img                 what dump.vexfs prints
  vexfs tune -L data -U random disk.img  a new label and UUID (checksums stay valid)
  vexfs tune -e remount-ro -c 30 -i 2w disk.img
  vexfs tune -O ^metadata_csum disk.img  clear every checksum
  vexfs tune -O backup_super -z tune.undo disk.img; vexfs undo tune.undo disk.img
"""


def fsck_before(doing: str, hint: str = "") -> Callable[[str], None]:
    """A preflight for writers that rewrite metadata (feature changes, resize, as e2fsprogs'
    tools ask for a checked file system): refuse an image fsck.vexfs -fn does not pass."""
    def preflight(path: str) -> None:
        if run_check(path).exit_code:
            raise UsageError(f"{path}: fsck.vexfs -fn finds problems; run fsck.vexfs before {doing}{hint}")
    return preflight


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
@undo_option
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
        for message in tune(image, request, undo_path=undo_file, preflight=fsck_before("changing features")):
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


RESIZE_EPILOG = """\b
Examples:
  truncate -s 1G disk.img; vexfs resize disk.img   grow to the file's (or device's) size
  vexfs resize disk.img 256M             grow or shrink to 256 MiB
  vexfs resize disk.img 50000            to 50000 blocks of 4096 bytes
  vexfs resize -P disk.img               print the minimum size, change nothing
  vexfs resize -M -p disk.img            shrink to the minimum, with progress
  vexfs resize -z resize.undo disk.img 64M; vexfs undo resize.undo disk.img
"""


class _Progress:
    """resize2fs -p: one line per phase on stderr, redrawn as the count grows."""

    def __init__(self) -> None:
        self.phase: str | None = None
        self.shown = -1

    def __call__(self, phase: str, done: int, total: int) -> None:
        percent = 100 * done // max(total, 1)
        if phase != self.phase:
            if self.phase is not None:
                click.echo(err=True)
            self.phase, self.shown = phase, -1
        if percent != self.shown:
            self.shown = percent
            click.echo(f"\r{phase}: {done}/{total} ({percent}%)", err=True, nl=False)

    def close(self) -> None:
        if self.phase is not None:
            click.echo(err=True)




@click.command("resize", epilog=RESIZE_EPILOG, context_settings=SETTINGS)
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("size", required=False)
@click.option("-M", "minimum", is_flag=True, help="Shrink to the minimum size.")
@click.option("-P", "print_min", is_flag=True, help="Print the minimum size (in blocks) and change nothing.")
@click.option("-p", "progress", is_flag=True, help="Show the progress of block and inode moves on stderr.")
@click.option("-f", "force", is_flag=True, help="Resize even if fsck.vexfs -fn finds problems.")
@undo_option
@handle_errors(error_code=1)
def resize_command(image, size, minimum, print_min, progress, force, undo_file):
    """Grow or shrink the unmounted VexFS file system on IMAGE (resize2fs), extended layout
    only. SIZE is a number of 4096-byte blocks, or a number with a unit: s (512-byte
    sectors), K, M, G or T; without SIZE, the size of the file or device. Files, vector
    files and checksums are kept byte for byte; blocks and inodes in the way are moved."""
    if print_min:
        if size or minimum or undo_file:
            raise UsageError("-P takes no SIZE, -M or -z")
        click.echo(f"Estimated minimum size of the file system: {print_minimum(image)}")
        return
    if minimum and size:
        raise UsageError("give either -M or SIZE, not both")
    display = _Progress() if progress else None
    request = ResizeRequest(size=size, minimum=minimum, undo_path=undo_file, progress=display)
    try:
        messages = resize(image, request, preflight=None if force else fsck_before("resizing", " (or -f to force)"))
    finally:
        if display is not None:
            display.close()
    for message in messages:
        click.echo(message)
