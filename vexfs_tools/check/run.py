"""fsck as one library call: open (falling back to the backup superblock), run the passes,
write the fixes, and say what happened. The CLI only chooses the mode and prints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import FormatError, UsageError, VexfsError
from ..undo import UndoRecorder, UndoSpaceError
from ..volume.geometry import KERNEL
from ..volume.volume import Volume
from ..window import open_volume_in
from .context import NO, Checker, Finding, PreenStop
from .pass0 import run_pass0
from .pass1 import run_pass1
from .pass2 import run_pass2
from .pass3 import run_pass3
from .pass4 import run_pass4
from .pass5 import run_pass5
from .state import CheckState

EXIT_OK, EXIT_CORRECTED, EXIT_UNCORRECTED = 0, 1, 4


@dataclass
class CheckResult:
    """A check's outcome: the findings, whether the image was changed, fsck's exit code."""
    findings: list[Finding]
    modified: bool
    exit_code: int
    used_inodes: int
    inodes_count: int
    used_blocks: int
    blocks_count: int
    stopped: str | None = None  # why -p stopped early


def _open(path: str, writable: bool, backup: bool, window: tuple[int, int | None] | None, *,
          ignore_checksums: bool) -> Volume:
    """The volume on `path`, or in the window (byte offset, length or None) of a disk image:
    a window is read-only (OffsetDevice writes nothing), so only -n checks one."""
    if window is None:
        return Volume.open(path, writable=writable, backup=backup, ignore_checksums=ignore_checksums,
                           check_trust=False)
    if writable:
        raise UsageError("a file system inside a disk image (-o, --offset, --partition) is checked with -n only; "
                         "to repair it, copy the partition out, fsck the copy, and write it back")
    return open_volume_in(path, *window, backup=backup, ignore_checksums=ignore_checksums)


def open_for_check(path: str, writable: bool, backup: bool,
                   window: tuple[int, int | None] | None = None) -> tuple[Volume, str | None]:
    """The volume, and why the primary superblock could not be used (None if it could)."""
    if backup:
        return _open(path, writable, True, window, ignore_checksums=True), None
    try:
        return _open(path, writable, False, window, ignore_checksums=True), None
    except FormatError as primary_error:
        try:
            volume = _open(path, writable, True, window, ignore_checksums=False)
        except VexfsError:
            raise primary_error from None
        if volume.layout == KERNEL:
            volume.close()
            raise primary_error from None
        return volume, str(primary_error)


def run_check(path: str, mode: str = NO, *, backup: bool = False, undo_path: str | None = None,
              emit: Callable[[str], None] = lambda line: None,
              ask: Callable[[str], bool] | None = None,
              progress: Callable[[str, int, int], None] | None = None,
              window: tuple[int, int | None] | None = None) -> CheckResult:
    """`window`: (byte offset, length or None) of the file system inside a disk image."""
    writable = mode != NO
    volume, primary_problem = open_for_check(path, writable, backup, window)
    try:
        if undo_path and writable:
            volume.device.undo = UndoRecorder(volume.device, undo_path)
        checker = Checker(volume, mode, emit=emit, ask=ask, progress=progress)
        stopped = None
        try:
            if primary_problem:
                if checker.fix("SB_PRIMARY_DAMAGED", reason=primary_problem.split(": ", 1)[-1],
                               block=volume.superblock_block):
                    volume.sb_dirty = True
            _run_passes(checker, volume)
        except PreenStop as stop:
            stopped = str(stop)
            emit(f"\n{path}: {stopped}")
        if writable:
            volume.flush()
        g = volume.geometry
        used_inodes = volume.count_used_inodes()
        used_blocks = checker.bitmap_used if checker.bitmap_used is not None else \
            g.addressable_blocks - volume.count_free_blocks()
    except UndoSpaceError:
        volume.device.close()  # no further write: none of them could be saved
        raise
    finally:
        volume.close()
    code = EXIT_OK
    if checker.uncorrected or stopped:
        code |= EXIT_UNCORRECTED
    if checker.modified:
        code |= EXIT_CORRECTED
    return CheckResult(checker.findings, checker.modified, code, used_inodes, g.inodes_count,
                       used_blocks, volume.sb.s_blocks_count, stopped)


def _run_passes(checker: Checker, volume: Volume) -> None:
    run_pass0(checker)
    state = CheckState.for_volume(volume)
    volume.block_in_use = state.claims.is_claimed
    volume.on_block_change = state.claims.change
    run_pass1(checker, state)
    if state.claims.duplicates:
        from .pass1b import run_pass1b  # rare, and not imported by every check
        run_pass1b(checker, state)
    run_pass2(checker, state)
    run_pass3(checker, state)
    run_pass4(checker, state)
    run_pass5(checker, state)
    no_vector_files = state.vector_inodes == [] and volume.inode_writes == state.vector_inodes_as_of
    if not no_vector_files:
        from .pass_vectors import run_pass_vectors  # only where vector files may be
        run_pass_vectors(checker)
