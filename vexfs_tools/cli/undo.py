"""`vexfs undo FILE DEVICE`: put back the bytes an fsck -z run changed (e2undo)."""

from __future__ import annotations

import click

from ..undo import apply_undo
from .common import handle_errors


@click.command("undo", context_settings={"help_option_names": ["-h", "--help"]}, epilog="""\b
Example:
  fsck.vexfs -y -z fix.undo disk.img; vexfs undo fix.undo disk.img
""")
@click.argument("undo_file", type=click.Path(dir_okay=False))
@click.argument("device", type=click.Path(dir_okay=True))
@click.option("--force", is_flag=True, help="Restore even if the device changed since, or the run "
              "that wrote the undo file did not finish.")
@handle_errors(error_code=1)
def undo_command(undo_file, device, force):
    """Restore DEVICE from UNDO_FILE, written by fsck.vexfs -z."""
    count = apply_undo(undo_file, device, force=force)
    click.echo(f"Restored {count} block(s) of {device} from {undo_file}")
