"""Forensic commands: `vexfs icheck`, `ncheck`, `blkcat`, `timeline`, `extract` (debugfs and
The Sleuth Kit in spirit). Every one opens the image read-only and never writes to it.

Each command imports its inspect module itself, when it runs: `vexfs extract` does not load
the diff, the partition tables or DFXML (tens of milliseconds at every start).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time

import click

from .. import __version__
from ..window import image_offset
from ..device import Device
from ..errors import UsageError, VexfsError
from ..format import constants as C
from ..inspect.names import display
from .common import PLACEMENT, SETTINGS, Placement, handle_errors, json_option, note, offset_options, open_device_readonly, open_readonly, \
    quiet_option, run_standalone, superblock_options
from .output import JsonArray, Progress

QUIET_HELP = "No progress display, no summary."


# --- icheck -------------------------------------------------------------------------------

@click.command("icheck", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs icheck disk.img 66 70 4095     what each block is, and which inode owns it
  vexfs icheck --json /dev/loop0 113
""")
@click.argument("image", type=click.Path(dir_okay=True))
@click.argument("blocks", nargs=-1, required=True, type=int)
@json_option
@quiet_option(QUIET_HELP)
@superblock_options
@offset_options
@handle_errors(error_code=1)
def icheck_command(image, blocks, as_json, quiet, backup, superblock_block):
    """Which inode owns each BLOCK of IMAGE (debugfs's icheck), and what the block is."""
    from ..inspect.blockmap import icheck  # noqa: PLC0415
    from ..inspect.recovery import ownership_with_recovery  # noqa: PLC0415
    with open_readonly(image, backup, superblock_block) as volume:
        progress = Progress("icheck", quiet=quiet)
        ownership = ownership_with_recovery(volume, progress=progress, phase=progress.relabel)
        progress.done()
        results = icheck(volume, ownership, list(blocks))
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    click.echo(f"{'Block':<12}{'Inode':<12}What")
    for item in results:
        owners = ",".join(map(str, item["inodes"])) or "-"
        what = item["kind"] + (f" (claimed by {len(item['inodes'])} inodes)" if len(item["inodes"]) > 1 else "")
        click.echo(f"{item['block']:<12}{owners:<12}{what}")


# --- ncheck -------------------------------------------------------------------------------

@click.command("ncheck", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs ncheck disk.img 12 14          every path naming inodes 12 and 14
  vexfs ncheck -d disk.img 20          deleted names (directory slack) too
""")
@click.argument("image", type=click.Path(dir_okay=True))
@click.argument("inodes", nargs=-1, required=True, type=int)
@click.option("-d", "--deleted", is_flag=True, help="Also names still readable in directory slack.")
@json_option
@quiet_option(QUIET_HELP)
@superblock_options
@offset_options
@handle_errors(error_code=1)
def ncheck_command(image, inodes, deleted, as_json, quiet, backup, superblock_block):
    """The paths that name each INODE of IMAGE (debugfs's ncheck), through directories
    recovered from orphaned blocks too."""
    from ..inspect.recovery import Recovery  # noqa: PLC0415
    from ..inspect.walk import ncheck  # noqa: PLC0415
    with open_readonly(image, backup, superblock_block) as volume:
        slots = volume.geometry.inode_slots
        for ino in inodes:
            if not 1 <= ino <= slots:
                raise UsageError(f"inode {ino} is out of range (1..{slots})")
        recovery = Recovery(volume)
        found = set()
        out = JsonArray() if as_json else None
        if out is None:
            click.echo("Inode\tPathname")
        if C.ROOT_INO in inodes:
            found.add(C.ROOT_INO)
            item = {"inode": C.ROOT_INO, "path": "/", "deleted": False, "recovered": False}
            out.add(item) if out else click.echo(f"{C.ROOT_INO}\t/")
        for item in ncheck(recovery, list(inodes), deleted=deleted):
            found.add(item["inode"])
            item = dict(item, path=display(item["path"]))
            if out is not None:
                out.add(item)
            else:
                click.echo(f"{item['inode']}\t{item['path']}" + ("  (deleted)" if item["deleted"] else ""))
        if out is not None:
            out.close()
    for ino in inodes:
        if ino not in found:
            note(f"inode {ino}: no name found")


# --- blkcat -------------------------------------------------------------------------------

def hexdump_lines(data: bytes, base: int):
    for offset in range(0, len(data), 16):
        row = data[offset:offset + 16]
        hexes = " ".join(f"{b:02x}" for b in row)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in row)
        yield f"{base + offset:08x}  {hexes:<47}  |{text}|"


@click.command("blkcat", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs blkcat disk.img 66 | xxd | head    raw bytes of block 66
  vexfs blkcat --hex disk.img 67           as a hex dump
  vexfs blkcat disk.img 100 4 > four.bin   blocks 100-103
""")
@click.argument("image", type=click.Path(dir_okay=True))
@click.argument("block", type=int)
@click.argument("count", type=int, default=1)
@click.option("--hex", "as_hex", is_flag=True, help="A hex dump instead of raw bytes.")
@json_option
@offset_options
@handle_errors(error_code=1)
def blkcat_command(image, block, count, as_hex, as_json):
    """Write COUNT blocks (default 1) of IMAGE from BLOCK to standard output (TSK's blkcat).
    Any block of the device may be read, inside the file system or not."""
    with open_device_readonly(image) as device:
        total = device.size // C.BLOCK_SIZE
        if not 0 <= block < total:
            raise UsageError(f"block {block} is outside the device (0..{total - 1})")
        if count < 1 or block + count > total:
            raise UsageError(f"{count} blocks from {block} go past the end of the device ({total} blocks)")
        if as_json:
            out = JsonArray()
            for n in range(block, block + count):
                out.add({"block": n, "hex": device.read(n * C.BLOCK_SIZE, C.BLOCK_SIZE).hex()})
            out.close()
            return
        stdout = sys.stdout.buffer
        for n in range(block, block + count):
            data = device.read(n * C.BLOCK_SIZE, C.BLOCK_SIZE)
            if as_hex:
                stdout.write(("\n".join(hexdump_lines(data, n * C.BLOCK_SIZE)) + "\n").encode())
            else:
                stdout.write(data)
        stdout.flush()


# --- timeline -----------------------------------------------------------------------------

@click.command("timeline", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs timeline disk.img > body.txt && mactime -b body.txt -d
  vexfs timeline -m /mnt/evidence /dev/loop0 | mactime -b - 2024-01-01
""")
@click.argument("image", type=click.Path(dir_okay=True))
@click.option("-m", "--mount-point", default="", metavar="PREFIX",
              help="Put PREFIX before every name (fls -m PREFIX).")
@click.option("--no-orphans", is_flag=True, help="Leave out inodes in use that no name reaches.")
@json_option
@quiet_option(QUIET_HELP)
@superblock_options
@offset_options
@handle_errors(error_code=1)
def timeline_command(image, mount_point, no_orphans, as_json, quiet, backup, superblock_block):
    """The Sleuth Kit's body file for every live and deleted name of IMAGE (what
    `fls -r -m /` writes, the input of `mactime -b`): MD5|name|inode|mode|UID|GID|size|
    atime|mtime|ctime|crtime. Deleted names end in " (deleted)"; directories recovered from
    orphaned blocks are included."""
    from ..inspect.recovery import Recovery  # noqa: PLC0415
    from ..inspect.timeline import body_records  # noqa: PLC0415
    progress = Progress("timeline", quiet=quiet)
    with open_readonly(image, backup, superblock_block) as volume:
        recovery = Recovery(volume)
        out = JsonArray() if as_json else None
        prefix = os.fsencode(mount_point.rstrip("/"))
        for record in body_records(recovery, prefix=prefix, orphans=not no_orphans, progress=progress):
            if out is not None:
                out.add(record.as_dict())
            else:
                click.echo(record.line())
        progress.done()
        if out is not None:
            out.close()


# --- extract ------------------------------------------------------------------------------

EXTRACT_EPILOG = """\b
Examples:
  vexfs extract disk.img / out/                 the whole tree into out/
  vexfs extract disk.img /docs/a.txt out/       one file: out/a.txt
  vexfs extract --deleted evidence.img / out/   and deleted files into out/.deleted/
  vexfs extract --unallocated evidence.img / out/   and what ils lists, into out/.unallocated/

\b
Exit status (as GNU tar's):
  0  everything was extracted as it is in the image
  1  extracted, with oddities reported on stderr (a name sanitized or taken, a
     symlink pointing outside, a size cut to the data, a device file skipped, ...)
  2  nothing extracted: unusable image, PATH or DEST
"""


@click.command("extract", context_settings=SETTINGS, epilog=EXTRACT_EPILOG)
@click.argument("image", type=click.Path(dir_okay=True))
@click.argument("path")
@click.argument("dest", type=click.Path())
@click.option("--deleted", is_flag=True,
              help="Also recover deleted entries whose inode still holds data, into DEST/.deleted.")
@click.option("--unallocated", is_flag=True,
              help="Also recover the inodes `vexfs ils` lists (no live name reaches them), into "
                   "DEST/.unallocated/inode-N (tsk_recover -e).")
@json_option
@quiet_option(QUIET_HELP)
@superblock_options
@offset_options
@handle_errors(error_code=2)
def extract_command(image, path, dest, deleted, unallocated, as_json, quiet, backup, superblock_block):
    """Copy PATH (a file, a directory, or an inode number) of IMAGE into DEST, restoring
    mode and times (as debugfs's rdump): the root's contents go straight into DEST,
    anything else as DEST/NAME. Safe on hostile images: nothing is written outside DEST,
    no symlink is followed, names are sanitized, every oddity is reported."""
    from ..inspect.extract import extract  # noqa: PLC0415
    progress = Progress("extracting (MiB)", quiet=quiet)

    def on_problem(message: str) -> None:
        progress.done()
        if not as_json:
            note(message)

    with open_readonly(image, backup, superblock_block) as volume:
        report = extract(volume, path, dest, deleted=deleted, unallocated=unallocated, on_problem=on_problem,
                         progress=(lambda nbytes, files: progress(nbytes >> 20, None)) if progress.enabled else None)
    progress.done()
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    elif not quiet:
        recovered = f", {report.recovered} deleted entries recovered into {report.deleted_folder}" \
            if report.deleted_folder else ""
        click.echo(f"Extracted {report.files} files, {report.directories} directories, {report.symlinks} "
                   f"symlinks, {report.hard_links} hard links ({report.bytes} bytes) into {dest}{recovered}; "
                   f"{report.problem_count} oddities reported"
                   + (f"; unallocated inodes in {report.unallocated_folder}" if report.unallocated_folder else ""))
    sys.exit(1 if report.problem_count else 0)


# --- dfxml -------------------------------------------------------------------------------

@click.command("dfxml", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs dfxml disk.img > disk.xml              the inventory, md5 and sha1 of every file
  vexfs dfxml --no-hash /dev/loop0 | less      names, inodes and byte runs only (fast)
""")
@click.argument("image", type=click.Path(dir_okay=True))
@click.option("--no-hash", is_flag=True, help="Do not read the files' data for md5 and sha1.")
@quiet_option("No progress display.")
@superblock_options
@offset_options
@handle_errors(error_code=1)
def dfxml_command(image, no_hash, quiet, backup, superblock_block):
    """Write IMAGE's inventory as DFXML (what fiwalk writes): the volume's facts and one
    fileobject per live, deleted (alloc 0) and recovered name, and per inode in use that no
    name reaches, with times, byte runs and md5/sha1 digests. Streamed: memory stays
    bounded on any image."""
    from ..inspect.dfxml import write_dfxml  # noqa: PLC0415
    progress = Progress("dfxml (names)", quiet=quiet)
    stdout = click.get_binary_stream("stdout")
    pending: list[str] = []

    def write(piece: str) -> None:
        pending.append(piece)
        if len(pending) >= 256:
            stdout.write("".join(pending).encode("utf-8"))
            pending.clear()

    with open_readonly(image, backup, superblock_block) as volume:
        write_dfxml(write, volume, image=image, command_line=" ".join(sys.argv), version=__version__,
                    hashes=not no_hash, fs_offset=image_offset(volume.device), progress=progress)
    progress.done()
    stdout.write("".join(pending).encode("utf-8"))
    stdout.flush()


# --- diff --------------------------------------------------------------------------------

DIFF_EPILOG = """\b
Examples:
  vexfs diff before.img after.img              what a kernel session changed, by path
  vexfs diff --json before.img after.img | jq .names.added
  vexfs diff --dfxml before.img after.img > delta.xml
  vexfs diff --partition-a 1 --partition-b 1 disk-before.img disk-after.img

\b
Exit status (as diff's): 0 the images hold the same file system, 1 they differ, 2 trouble.
"""


def side_offset_options(side: str):
    """-o/--offset/--partition for one image of two (diff): --sector-offset-a, --offset-a,
    --partition-a; the command gets placement_a, a Placement or None."""
    upper = side.upper()

    def decorate(func):
        @functools.wraps(func)
        def inner(*args, **kwargs):
            given = tuple(kwargs.pop(f"{key}_{side}") for key in ("sector_offset", "byte_offset", "partition"))
            kwargs[f"placement_{side}"] = None if given == (None, None, None) else Placement(*given)
            return func(*args, **kwargs)

        inner = click.option(f"--partition-{side}", f"partition_{side}", type=click.IntRange(min=1), metavar="N",
                             help=f"IMAGE_{upper}'s file system is in its partition N (MBR or GPT).")(inner)
        inner = click.option(f"--offset-{side}", f"byte_offset_{side}", type=click.IntRange(min=0),
                             metavar="BYTES", help=f"IMAGE_{upper}'s file system starts BYTES into it.")(inner)
        return click.option(f"--sector-offset-{side}", f"sector_offset_{side}", type=click.IntRange(min=0),
                            metavar="SECTORS",
                            help=f"IMAGE_{upper}'s file system starts SECTORS 512-byte sectors into it.")(inner)

    return decorate


def open_placed(image: str, placement: Placement | None):
    """open_readonly(image) with the file system where `placement` says (None: at byte 0)."""
    token = PLACEMENT.set(placement)
    try:
        return open_readonly(image)
    finally:
        PLACEMENT.reset(token)


@click.command("diff", context_settings=SETTINGS, epilog=DIFF_EPILOG)
@click.argument("image_a", type=click.Path(dir_okay=True))
@click.argument("image_b", type=click.Path(dir_okay=True))
@json_option
@click.option("--dfxml", "as_dfxml", is_flag=True,
              help="A differential DFXML document (fileobjects with delta markers, as idifference writes).")
@quiet_option("No progress display.")
@side_offset_options("a")
@side_offset_options("b")
@handle_errors(error_code=2)
def diff_command(image_a, image_b, as_json, as_dfxml, quiet, placement_a, placement_b):
    """What changed from IMAGE_A to IMAGE_B (two images of one file system, e.g. before and
    after a kernel session or fsck -y): superblock fields; inodes allocated, freed, changed
    (which fields); blocks allocated, freed, changed in content or owner; names added,
    removed, renamed; files whose content changed (md5). Directories whose inode maps no
    block are flagged, with the orphaned block they were read from."""
    from ..inspect.diff import compare, human_lines, write_differential  # noqa: PLC0415
    if as_json and as_dfxml:
        raise UsageError("--json and --dfxml exclude each other")
    progress = Progress("diff (blocks)", quiet=quiet)
    with open_placed(image_a, placement_a) as a, open_placed(image_b, placement_b) as b:
        result = compare(a, b, progress=progress)
        progress.done()
        if as_dfxml:
            stdout = click.get_binary_stream("stdout")
            write_differential(lambda piece: stdout.write(piece.encode("utf-8")), result, a, b,
                               images=(image_a, image_b), command_line=" ".join(sys.argv), version=__version__)
            stdout.flush()
        elif as_json:
            click.echo(json.dumps(result.as_dict(), indent=2))
        else:
            for line in human_lines(result):
                click.echo(line)
    sys.exit(1 if result.differs else 0)


# --- blkls / ils ---------------------------------------------------------------------------

@click.command("blkls", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs blkls disk.img > free.bin               the bytes of every unallocated block
  vexfs blkls -s disk.img | strings             slack: past EOF, directory slack
  vexfs blkls --map disk.img                    where each piece of the output lies in the image
""")
@click.argument("image", type=click.Path(dir_okay=True))
@click.option("-s", "--slack", is_flag=True,
              help="The slack instead: past EOF in files' last blocks, blocks mapped past the size, directory slack.")
@click.option("--map", "as_map", is_flag=True,
              help="Print where each piece of the output comes from (blkcalc), not the bytes.")
@superblock_options
@offset_options
@handle_errors(error_code=1)
def blkls_command(image, slack, as_map, backup, superblock_block):
    """Write IMAGE's unallocated blocks (TSK's blkls), or with -s its slack, to standard
    output, in order. --map prints one line per piece: its offset in the output, its offset
    in the image, its length, the inode holding it (0: none) and what it is."""
    from ..inspect.lost import slack_pieces, unallocated_runs  # noqa: PLC0415
    from ..inspect.recovery import Recovery  # noqa: PLC0415
    with open_readonly(image, backup, superblock_block) as volume:
        pieces = slack_pieces(Recovery(volume)) if slack else unallocated_runs(volume)
        if as_map:
            click.echo("Output\tImage\tLength\tInode\tWhat")
            position = 0
            base = image_offset(volume.device)
            for piece in pieces:
                click.echo(f"{position}\t{base + piece.offset}\t{piece.length}\t{piece.inode}\t{piece.what}")
                position += piece.length
            return
        stdout = click.get_binary_stream("stdout")
        for piece in pieces:
            for start in range(piece.offset, piece.offset + piece.length, BLKLS_CHUNK):
                n = min(BLKLS_CHUNK, piece.offset + piece.length - start)
                stdout.write(volume.device.read_or_zeros(start, n))
        stdout.flush()


BLKLS_CHUNK = 8 << 20


@click.command("ils", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs ils disk.img                            removed and orphaned inodes (TSK's ils)
  vexfs ils -m disk.img | mactime -b - -d       as a body file, for a timeline
  vexfs ils --json disk.img
""")
@click.argument("image", type=click.Path(dir_okay=True))
@click.option("-m", "--body", "as_body", is_flag=True, help="A body file (ils -m), for mactime -b.")
@json_option
@superblock_options
@offset_options
@handle_errors(error_code=1)
def ils_command(image, as_body, as_json, backup, superblock_block):
    """The inodes of IMAGE no live name reaches (TSK's ils): kernel-deleted ones (still in
    use, a deleted entry names them), unlinked ones (no link left), orphans (nothing names
    them), and freed slots that still hold block pointers. Columns as ils writes them;
    st_alloc is a (in use) or f (freed)."""
    import socket  # noqa: PLC0415
    from ..inspect.lost import lost_inodes  # noqa: PLC0415
    from ..inspect.recovery import Recovery  # noqa: PLC0415
    from ..inspect.timeline import escape, mode_string  # noqa: PLC0415
    if as_body and as_json:
        raise UsageError("-m and --json exclude each other")
    with open_readonly(image, backup, superblock_block) as volume:
        out = JsonArray() if as_json else None
        if not as_json and not as_body:
            click.echo("class|host|device|start_time")
            click.echo(f"ils|{socket.gethostname()}||{int(time.time())}")
            click.echo("st_ino|st_alloc|st_uid|st_gid|st_mtime|st_atime|st_ctime|st_crtime|st_mode|st_nlink|st_size")
        tag = os.path.basename(image)
        for lost in lost_inodes(Recovery(volume)):
            i = lost.inode
            if out is not None:
                out.add({"inode": lost.ino, "status": lost.status, "mode": i.i_mode, "nlink": i.i_links_count,
                         "uid": i.i_uid, "gid": i.i_gid, "size": i.i_size, "atime": i.i_atime,
                         "mtime": i.i_mtime, "ctime": i.i_ctime})
            elif as_body:
                file_type = C.MODE_TO_FILE_TYPE.get(i.file_format, C.FT_UNKNOWN)
                alive = "alive" if lost.allocated else "dead"
                click.echo(f"0|<{escape(os.fsencode(tag))}-{alive}-{lost.ino}>|{lost.ino}|"
                           f"{mode_string(file_type, i)}|{i.i_uid}|{i.i_gid}|{i.i_size}|{i.i_atime}|"
                           f"{i.i_mtime}|{i.i_ctime}|0")
            else:
                click.echo(f"{lost.ino}|{'a' if lost.allocated else 'f'}|{i.i_uid}|{i.i_gid}|{i.i_mtime}|"
                           f"{i.i_atime}|{i.i_ctime}|0|{i.i_mode:o}|{i.i_links_count}|{i.i_size}")
        if out is not None:
            out.close()


# --- partitions ---------------------------------------------------------------------------

TABLE_NAMES = {"dos": "DOS Partition Table", "gpt": "GUID Partition Table (EFI)"}


@click.command("partitions", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs partitions disk.img                    the table, VexFS partitions marked
  vexfs ls --partition 2 disk.img /            then look inside partition 2
  vexfs ls -o 2048 disk.img /                  or give its start in sectors (TSK's -o)
""")
@click.argument("disk", type=click.Path(dir_okay=True))
@json_option
@handle_errors(error_code=1)
def partitions_command(disk, as_json):
    """List the partitions of a whole disk image (MBR with logical partitions, or GPT), as
    mmls does, in 512-byte sectors; those a VexFS superblock starts are marked [VexFS].
    Their numbers are what --partition takes."""
    from ..inspect.partitions import holds_vexfs, read_table  # noqa: PLC0415
    with Device(disk) as device:
        table = read_table(device)
        if table.kind == "none":
            kind = " (it holds a VexFS file system itself)" if holds_vexfs(device, 0) else ""
            raise VexfsError(f"{disk}: no partition table (MBR or GPT){kind}")
    if as_json:
        click.echo(json.dumps(table.as_dict(), indent=2))
        return
    click.echo(TABLE_NAMES[table.kind])
    click.echo("Units are in 512-byte sectors")
    click.echo("")
    click.echo(f"      {'Slot':<7}{'Start':<13}{'End':<13}{'Length':<13}Description")
    for row, p in enumerate(table.partitions):
        mark = "  [VexFS]" if p.vexfs else ""
        name = f" \"{p.name}\"" if p.name else ""
        click.echo(f"{row:03d}:  {p.number:<7}{p.start:010d}   {p.start + p.sectors - 1:010d}   "
                   f"{p.sectors:010d}   {p.type}{name}{mark}")


COMMANDS = (icheck_command, ncheck_command, blkcat_command, timeline_command, extract_command, dfxml_command, diff_command, blkls_command, ils_command, partitions_command)


@click.group(context_settings=SETTINGS)
def forensic_group():
    """The forensic commands alone (until `vexfs` registers them)."""


for _command in COMMANDS:
    forensic_group.add_command(_command)


def main() -> None:
    run_standalone(forensic_group, usage_code=2)


if __name__ == "__main__":
    main()
