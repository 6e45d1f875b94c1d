"""`vexfs mount IMAGE MOUNTPOINT [-o OPTIONS] [-f]` and the `mount.fuse.vexfs` helper that
`mount -t fuse.vexfs` and fstab lines run."""

from __future__ import annotations

import sys

import click

from ..mount.run import mount, parse_options
from .common import SETTINGS, handle_errors, run_standalone


@click.command("mount", context_settings=SETTINGS, epilog="""\b
Options (-o, comma separated):
  ro / rw              read-only (never writes a byte) / read-write (default)
  allow_other          let other users in (needs user_allow_other in /etc/fuse.conf)
  default_permissions  let the kernel check permissions by mode and owner
  uid=N, gid=N         show every file as owned by N
  fakeroot             new files are owned by root, whoever creates them
  errors=continue|remount-ro|panic   what an inconsistency found while mounted does
\b
Examples:
  vexfs mount disk.img /mnt                 read-write, in the background
  vexfs mount -o ro disk.img /mnt           read-only (a kernel-written image's whole tree)
  vexfs mount -f -o allow_other disk.img /mnt   stay in the foreground
  umount /mnt                               (or fusermount3 -u /mnt) flushes and unmounts
  mount.fuse.vexfs disk.img /mnt -o rw      what mount -t fuse.vexfs disk.img /mnt runs
""")
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("mountpoint", type=click.Path(file_okay=False))
@click.option("-o", "options", metavar="OPTIONS", help="Mount options, comma separated.")
@click.option("-f", "--foreground", is_flag=True, help="Stay in the foreground.")
@handle_errors(error_code=1)
def mount_command(image, mountpoint, options, foreground):
    """Mount the VexFS IMAGE (or device) on MOUNTPOINT through FUSE; returns once mounted."""
    mount(image, mountpoint, parse_options(options), foreground=foreground)


def helper_main() -> None:
    """mount.fuse.vexfs IMAGE MOUNTPOINT [-o OPTIONS]: what mount(8) runs for fuse.vexfs."""
    argv = [arg for arg in sys.argv[1:] if arg not in ("-n", "-s", "-v")]
    sys.argv[1:] = argv
    run_standalone(mount_command, usage_code=1)
