"""fsck.vexfs: check a VexFS file system (this version: the superblock and its counters).

Exit codes are fsck(8)'s bit mask: 0 clean, 1 errors corrected, 4 errors left uncorrected,
8 operational error, 16 usage error, 32 cancelled.
"""

from __future__ import annotations

import json
import sys

import click

from .. import __version__
from ..check.superblock import CheckResult, run_check
from .common import fail, handle_errors, run_standalone

EXIT_OPERATIONAL, EXIT_USAGE = 8, 16

EPILOG = """\b
Examples:
  fsck.vexfs -n disk.img      check only; the image is not opened for writing
  fsck.vexfs -p /dev/loop0    fix what is safe without asking
  fsck -t vexfs disk.img      through util-linux fsck
"""


def transcript(device: str, result: CheckResult, mode: str) -> list[str]:
    """e2fsck's style: pass headers, one line per finding and the answer, a summary line."""
    lines = [f"fsck.vexfs {__version__}", "Pass 1: Checking the superblock"]
    for finding in result.report.findings:
        lines.append(finding.message + ".")
        if finding.fixed:
            lines.append("FIXED." if mode == "preen" else "Fix? yes")
        elif finding.fixable:
            lines.append("Fix? no")
    if result.modified:
        lines += ["", f"{device}: ***** FILE SYSTEM WAS MODIFIED *****"]
    r = result.report
    lines.append(f"{device}: {r.used_inodes}/{r.inodes_count} files, {r.used_blocks}/{r.blocks_count} blocks")
    return lines


@click.command("fsck", epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("device", type=click.Path(dir_okay=True))
@click.option("-n", "no", is_flag=True, help="Open read-only and answer no to every question.")
@click.option("-p", "-a", "preen", is_flag=True, help="Fix what is safe without asking.")
@click.option("-y", "yes", is_flag=True, help="Answer yes to every question.")
@click.option("-f", "force", is_flag=True, help="Check even if the file system seems clean.")
@click.option("-v", "verbose", is_flag=True, help="Say more.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("-b", "--backup", is_flag=True, help="Use the backup superblock.")
@handle_errors(error_code=EXIT_OPERATIONAL, usage_code=EXIT_USAGE)
def fsck_command(device, no, preen, yes, force, verbose, as_json, backup):
    """Check the VexFS file system on DEVICE."""
    if sum((no, preen, yes)) > 1:
        fail("only one of -n, -p/-a and -y may be given", EXIT_USAGE)
    mode = "yes" if yes else "preen" if preen else "no"
    result = run_check(device, mode, backup=backup)
    if as_json:
        click.echo(json.dumps({"device": device, "exit_code": result.exit_code, "findings": [
            {"code": f.code, "pass": 1, "message": f.message, "fixed": f.fixed}
            for f in result.report.findings]}, indent=2))
    else:
        click.echo("\n".join(transcript(device, result, mode)))
    sys.exit(result.exit_code)


def main() -> None:
    run_standalone(fsck_command, usage_code=EXIT_USAGE)
