"""`vexfs`: every tool under one command."""

from __future__ import annotations

import click

from .. import __version__
from .common import run_standalone
from .demo import demo_command
from .dump import dump_command
from .files import cat_command, ls_command, stat_command
from .forensic import blkcat_command, extract_command, icheck_command, ncheck_command, timeline_command
from .forensic import dfxml_command
from .forensic import diff_command
from .forensic import blkls_command, ils_command, partitions_command
from .fsck import fsck_command
from .maintenance import image_command, tune_command
from .maintenance import resize_command
from .mkfs import mkfs_command
from .mount import mount_command
from .undo import undo_command
from .vectors import search_command, vectors_group, verify_command
from .write import WRITE_COMMANDS

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
  vexfs write disk.img notes.txt /docs/     copy a file in (offline; also mkdir, rm, mv, ln, chmod)
"""


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vexfs")
def cli():
    """Offline tools for VexFS images and devices."""


for command in (mkfs_command, fsck_command, dump_command, ls_command, stat_command, cat_command,
                icheck_command, ncheck_command, blkcat_command, timeline_command, extract_command,
                undo_command, demo_command, vectors_group, search_command, verify_command,
                tune_command, image_command):
    cli.add_command(command)
for command in (mount_command, *WRITE_COMMANDS):  # the FUSE mount; offline writes
    cli.add_command(command)
cli.add_command(dfxml_command)
cli.add_command(diff_command)
cli.add_command(blkls_command)
cli.add_command(ils_command)
cli.add_command(partitions_command)
cli.add_command(resize_command)


def main() -> None:
    run_standalone(cli, usage_code=2)
