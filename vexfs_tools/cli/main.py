"""`vexfs`: every tool under one command. A command's module is imported only when that
command runs (click's lazy group), so `vexfs ls` does not pay for the mount, the vector
search or the forensic views at start-up."""

from __future__ import annotations

import importlib
import os
import sys

import click

from .. import __version__

from .common import run_standalone

# name -> (module under vexfs_tools.cli, attribute)
COMMANDS = {
    "mkfs": ("mkfs", "mkfs_command"), "fsck": ("fsck", "fsck_command"), "dump": ("dump", "dump_command"),
    "ls": ("files", "ls_command"), "stat": ("files", "stat_command"), "cat": ("files", "cat_command"),
    "icheck": ("forensic", "icheck_command"), "ncheck": ("forensic", "ncheck_command"),
    "blkcat": ("forensic", "blkcat_command"), "timeline": ("forensic", "timeline_command"),
    "extract": ("forensic", "extract_command"), "dfxml": ("forensic", "dfxml_command"),
    "diff": ("forensic", "diff_command"), "blkls": ("forensic", "blkls_command"),
    "ils": ("forensic", "ils_command"), "partitions": ("forensic", "partitions_command"),
    "undo": ("undo", "undo_command"), "demo": ("demo", "demo_command"),
    "vectors": ("vectors", "vectors_group"), "search": ("vectors", "search_command"),
    "verify": ("vectors", "verify_command"),
    "tune": ("maintenance", "tune_command"), "image": ("maintenance", "image_command"),
    "resize": ("maintenance", "resize_command"),
    "mount": ("mount", "mount_command"),
    "write": ("write", "write_command"), "mkdir": ("write", "mkdir_command"), "rm": ("write", "rm_command"),
    "mv": ("write", "mv_command"), "ln": ("write", "ln_command"), "chmod": ("write", "chmod_command"),
}

EPILOG = """\b
Examples:
  vexfs demo                          build, check and inspect a sample image
  vexfs mkfs -s 64M disk.img          same as mkfs.vexfs
  vexfs ls -l disk.img /docs          list a directory
  vexfs cat disk.img /docs/a.txt      print a file
  vexfs ls -lRd disk.img /            the whole tree, deleted entries, recovered directories
  vexfs extract --deleted disk.img / out/
  vexfs timeline disk.img | mactime -b - -d
  vexfs vectors ls disk.img           list the vector files
  vexfs search disk.img --query q.npy -k 10
  vexfs verify disk.img /e.vec --queries q.npy --results kernel.json
  vexfs mount disk.img /mnt           read-write FUSE mount (umount /mnt)
  vexfs disk.img /mnt -o ro           the same, as fuse3's mount.fuse runs it for fstab lines
  vexfs write disk.img notes.txt /docs/     copy a file in (offline; also mkdir, rm, mv, ln, chmod)
"""


class LazyGroup(click.Group):
    """A group whose commands are imported by name, on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name]
        return getattr(importlib.import_module(f"{__package__}.{module}"), attribute)


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vexfs")
def cli():
    """Offline tools for VexFS images and devices."""


def is_mount_call(argv: list[str]) -> bool:
    """`vexfs SOURCE MOUNTPOINT [-o OPTIONS]`: what fuse3's mount.fuse runs for an fstab line
    or `mount -t fuse.vexfs` when there is no /sbin/mount.fuse.vexfs (it runs the subtype as
    a command). A first word that is no command but an existing file or device, and a second
    that is a directory, say so."""
    return len(argv) >= 2 and argv[0] not in COMMANDS and not argv[0].startswith("-") \
        and os.path.exists(argv[0]) and os.path.isdir(argv[1])


def main() -> None:
    if is_mount_call(sys.argv[1:]):
        from .mount import helper_main  # noqa: PLC0415 - the mount's own imports, only here

        helper_main()
        return
    run_standalone(cli, usage_code=2)
