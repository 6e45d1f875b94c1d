"""fsck.vexfs: check and repair a VexFS file system, in e2fsck's manner.

Exit codes are fsck(8)'s bit mask: 0 clean, 1 errors corrected, 4 errors left uncorrected,
8 operational error, 16 usage error, 32 cancelled.
"""

from __future__ import annotations

import sys

import click

from .. import __version__
from ..check.context import ASK, NO, PREEN, YES
from ..check.run import CheckResult, run_check
from .common import (PLACEMENT, fail, handle_errors, offset_options, placement_window, run_standalone,
                     undo_option)
from .output import Progress, print_json

EXIT_OPERATIONAL, EXIT_USAGE = 8, 16

EPILOG = """\b
Examples:
  fsck.vexfs -n disk.img           check only; the image is not opened for writing
  fsck.vexfs -p /dev/loop0         fix what is safe without asking
  fsck.vexfs -y -z fix.undo d.img  fix everything, saving the old bytes in fix.undo
  vexfs undo fix.undo d.img        ... and put them back
  fsck -t vexfs /abs/disk.img      through util-linux fsck
  fsck.vexfs -n --partition 2 disk.img   check the file system in partition 2 of a whole disk
  fsck.vexfs -n -o 2048 disk.img   ... or the one 2048 sectors in (-n only: repair a copy)
"""


def summary_lines(device: str, result: CheckResult) -> list[str]:
    lines = []
    if result.modified:
        lines += ["", f"{device}: ***** FILE SYSTEM WAS MODIFIED *****"]
    lines.append(f"{device}: {result.used_inodes}/{result.inodes_count} files, "
                 f"{result.used_blocks}/{result.blocks_count} blocks")
    return lines


@click.command("fsck", epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("device", type=click.Path(dir_okay=True))
@click.option("-n", "no", is_flag=True, help="Open read-only and answer no to every question.")
@click.option("-p", "-a", "preen", is_flag=True, help="Fix what is safe without asking.")
@click.option("-y", "yes", is_flag=True, help="Answer yes to every question.")
@click.option("-f", "force", is_flag=True, help="Check even if the file system seems clean (always done).")
@click.option("-v", "verbose", is_flag=True, help="Accepted, as e2fsck takes it; the output is the same.")
@click.option("--json", "as_json", is_flag=True, help="Print every finding as JSON.")
@click.option("-b", "--backup", is_flag=True, help="Use the backup superblock.")
@undo_option
@offset_options
@handle_errors(error_code=EXIT_OPERATIONAL, usage_code=EXIT_USAGE)
def fsck_command(device, no, preen, yes, force, verbose, as_json, backup, undo_file):
    """Check (and repair) the VexFS file system on DEVICE."""
    if sum((no, preen, yes)) > 1:
        fail("only one of -n, -p/-a and -y may be given", EXIT_USAGE)
    if yes:
        mode = YES
    elif preen:
        mode = PREEN
    elif no or not sys.stdin.isatty():
        mode = NO
    else:
        mode = ASK
    if undo_file and mode == NO:
        fail("-z needs a mode that writes (-p, -y or interactive)", EXIT_USAGE)
    placement = PLACEMENT.get()
    if placement is not None and mode != NO:
        fail("a file system inside a disk image (-o, --offset, --partition) is checked with -n only; "
             "to repair it, copy the partition out, fsck the copy, and write it back", EXIT_USAGE)
    window = None if placement is None else placement_window(device, placement)
    emit = (lambda line: None) if as_json else click.echo
    if not as_json:
        click.echo(f"fsck.vexfs {__version__}")
    bar = Progress("fsck.vexfs")  # shown on a terminal only (stderr), never when piped

    def progress(what: str, done: int, total: int) -> None:
        bar.label = what
        bar(done, total)

    def say(line: str) -> None:
        bar.done()
        emit(line)

    try:
        result = run_check(device, mode, backup=backup, undo_path=undo_file, emit=say,
                           ask=lambda question: click.confirm(question, default=False),
                           progress=progress, window=window)
    finally:
        bar.done()
    if as_json:
        print_json({"device": device, "exit_code": result.exit_code, "modified": result.modified,
                    "findings": [f.as_json() for f in result.findings]})
    else:
        click.echo("\n".join(summary_lines(device, result)))
    sys.exit(result.exit_code)


def main() -> None:
    run_standalone(fsck_command, usage_code=EXIT_USAGE)
