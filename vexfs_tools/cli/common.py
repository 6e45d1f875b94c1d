"""What every command shares: turning library errors into one line and an exit code, the
options of the read-only views, opening an image for them, and the one place where the
findings a view meets become warning lines on standard error."""

from __future__ import annotations

import contextvars
import functools
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NoReturn

import click

from ..device import Device
from ..errors import UsageError, VexfsError
from ..volume.findings import Code, Finding, describe
from ..volume.volume import Volume
from ..window import OffsetDevice, open_volume_in

SETTINGS = {"help_option_names": ["-h", "--help"]}


def prog_name() -> str:
    """The name the program was started by (dump.vexfs, vexfs, ...), for messages."""
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "vexfs"


def note(message: str) -> None:
    """One line on stderr, `prog: message`: an oddity the command met and went on."""
    message = message.replace("\r", "\\r").replace("\n", "\\n")  # one line, whatever a path holds
    click.echo(f"{prog_name()}: {message}", err=True)


def fail(message: str, code: int) -> NoReturn:
    note(message)
    sys.exit(code)


def handle_errors(error_code: int = 1, usage_code: int | None = None):
    """Run a command body: library errors become `prog: message` and `error_code`
    (usage errors `usage_code`), never a traceback."""

    def wrap(func):
        @functools.wraps(func)
        def inner(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except click.ClickException:
                raise
            except UsageError as e:
                fail(str(e), usage_code if usage_code is not None else error_code)
            except VexfsError as e:
                fail(str(e), error_code)
            except KeyboardInterrupt:
                fail("interrupted", 130 if error_code == 1 else 32)
            except BrokenPipeError:
                sys.stderr.close()
                sys.exit(0)
            except OSError as e:
                fail(f"{str(e.filename) + ': ' if e.filename else ''}{e.strerror or e}", error_code)
            except Exception as e:  # a bug of ours: still one line, unless asked for more
                if os.environ.get("VEXFS_TRACEBACK"):
                    raise
                fail(f"internal error: {type(e).__name__}: {e} (set VEXFS_TRACEBACK=1 for details)",
                     error_code)
        return inner

    return wrap


def run_standalone(command: click.Command, usage_code: int) -> None:
    """Invoke a click command as a program, with click's own usage errors mapped to
    `usage_code` (click would exit 2, which means something else to fsck)."""
    # Names from an image need not be UTF-8: print their bytes escaped, never fail on them.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        command.main(standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:
        click.echo(e.ctx.get_help() if e.ctx else str(e), err=True)
        sys.exit(usage_code)
    except click.UsageError as e:
        e.show()
        sys.exit(usage_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(usage_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    sys.exit(0)


# --- the read-only views -------------------------------------------------------------------

def superblock_options(func):
    func = click.option("-b", "--backup", is_flag=True,
                        help="Use the backup superblock (last block of the device).")(func)
    func = click.option("--superblock", "superblock_block", type=int, metavar="BLOCK",
                        help="Use the superblock copy in this block.")(func)
    return func


def json_option(func):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)


def quiet_option(help_text: str = "No progress display."):
    """-q/--quiet; each command says what it leaves out."""
    return click.option("-q", "--quiet", is_flag=True, help=help_text)


def open_readonly(image: str, backup: bool = False, superblock_block: int | None = None) -> Volume:
    """Open an image for a read-only view: checksum failures do not stop it (a damaged
    image stays readable, as with debugfs), but each problem the open found is a warning
    on stderr. Standard output and the exit code are the view's alone. Under
    offset_options, the file system is looked for where -o/--offset/--partition say."""
    placement = PLACEMENT.get()
    if placement is None:
        volume = Volume.open(image, backup=backup, superblock_block=superblock_block, ignore_checksums=True)
    else:
        offset, length = placement_window(image, placement)
        volume = open_volume_in(image, offset, length, backup=backup, superblock_block=superblock_block)
    warn_findings(prog_name(), volume.problems)
    return volume


# --- whole disks: where the file system starts ----------------------------------------------

@dataclass(frozen=True)
class Placement:
    """Where in a whole-disk image the file system lies (-o sectors, --offset bytes, --partition N)."""
    sectors: int | None = None
    offset: int | None = None
    partition: int | None = None


PLACEMENT: contextvars.ContextVar[Placement | None] = contextvars.ContextVar("placement", default=None)


def placement_window(image: str, placement: Placement) -> tuple[int, int | None]:
    """(byte offset, length or None) of the file system in `image`."""
    from ..inspect.partitions import window  # partition tables: only with the offset options
    with Device(image) as device:
        return window(device, sectors=placement.sectors, offset=placement.offset, partition=placement.partition)


def open_device_readonly(image: str):
    """The device a raw read (blkcat) reads: the whole image, or the window the offset
    options point at."""
    placement = PLACEMENT.get()
    device = Device(image)
    if placement is None:
        return device
    from ..inspect.partitions import window
    offset, length = window(device, sectors=placement.sectors, offset=placement.offset,
                            partition=placement.partition)
    return OffsetDevice(device, offset, length)


def undo_option(func):
    """-z UNDO, as e2fsprogs' writers take it."""
    return click.option("-z", "undo_file", type=click.Path(dir_okay=False),
                        help="Save the old contents of every block changed in this undo file.")(func)


def offset_options(func):
    """-o SECTORS / --offset BYTES / --partition N (The Sleuth Kit's -o, mmls's numbers):
    the command's open_readonly looks for the file system there."""

    @functools.wraps(func)
    def inner(*args, sector_offset=None, byte_offset=None, partition=None, **kwargs):
        given = (sector_offset, byte_offset, partition)
        placement = None if given == (None, None, None) else Placement(*given)
        token = PLACEMENT.set(placement)
        try:
            return func(*args, **kwargs)
        finally:
            PLACEMENT.reset(token)

    inner = click.option("--partition", type=click.IntRange(min=1), metavar="N",
                         help="The file system in partition N of a disk image's MBR or GPT "
                              "(numbers as `vexfs partitions` lists them).")(inner)
    inner = click.option("--offset", "byte_offset", type=click.IntRange(min=0), metavar="BYTES",
                         help="The file system starts BYTES into the image.")(inner)
    inner = click.option("-o", "--sector-offset", "sector_offset", type=click.IntRange(min=0), metavar="SECTORS",
                         help="The file system starts SECTORS 512-byte sectors into the image (TSK's -o).")(inner)
    return inner


# --- findings as warnings -------------------------------------------------------------------

NEEDS_FSCK = "the image needs fsck.vexfs"


def warning_text(finding: Finding) -> str:
    """What a view says of a finding: the library's words (findings.describe) where they serve,
    shorter ones where the view knows more, and always what to do about it."""
    f = finding
    if f.code is Code.SUPERBLOCK_CHECKSUM:
        which = "superblock" if not f.block else f"superblock copy in block {f.block}"
        return f"{which} checksum does not match; {NEEDS_FSCK}"
    if f.code is Code.INODE_CHECKSUM:
        return f"inode {f.inode}: checksum does not match; {NEEDS_FSCK}"
    if f.code is Code.SIZE_BEYOND_LAYOUT:
        return (f"inode {f.inode}: i_size {f.found} is more than its layout can address; only the first "
                f"{f.expected} bytes are read; {NEEDS_FSCK}")
    if f.code in (Code.BLOCK_OUT_OF_RANGE, Code.INDIRECT_OUT_OF_RANGE, Code.INDIRECT_TWICE):
        return f"inode {f.inode}: {describe(f)}; {NEEDS_FSCK}"
    return f"{describe(f)}; {NEEDS_FSCK}"


def warn_findings(prog: str, findings: Iterable[Finding]) -> None:
    """One line on stderr per finding: `prog: warning: ...`."""
    for finding in findings:
        click.echo(f"{prog}: warning: {warning_text(finding)}", err=True)
