"""Running fsck on a corpus image, in-process (fast) or through the installed commands, and
comparing transcripts with the golden files in tests/fixtures/fsck/."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from tests.conftest import ROOT, run
from vexfs_tools.check.run import run_check
from vexfs_tools.cli.fsck import summary_lines
from vexfs_tools.undo import apply_undo

FIXTURES = ROOT / "tests" / "fixtures" / "fsck"
UPDATE = os.environ.get("VEXFS_UPDATE_GOLDEN") == "1"
MODES = {"-n": "no", "-y": "yes", "-p": "preen"}


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def transcript(image: Path, text: str, code: int) -> str:
    """e2fsprogs' filter: the image path becomes IMG, the version line goes, the exit
    status is the last line."""
    lines = text.replace(str(image), "IMG").split("\n")
    if lines and lines[0].startswith("fsck.vexfs "):
        lines = lines[1:]
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines + [f"Exit status is {code}"]) + "\n"


def fsck(image: Path, flag: str, *, undo: Path | None = None, cli: bool = False) -> tuple[int, str, list]:
    """(exit code, filtered transcript, findings) of one fsck run; findings only in-process."""
    if cli:
        args = [flag] + (["-z", str(undo)] if undo else []) + [str(image)]
        result = run("fsck.vexfs", *args)
        assert result.stderr == "", result.stderr
        return result.returncode, transcript(image, result.stdout, result.returncode), []
    lines: list[str] = []
    result = run_check(str(image), MODES[flag], undo_path=str(undo) if undo else None, emit=lines.append)
    lines += summary_lines(str(image), result)
    return result.exit_code, transcript(image, "\n".join(lines), result.exit_code), result.findings


def undo(undo_file: Path, image: Path, *, cli: bool = False) -> None:
    if cli:
        run("vexfs", "undo", undo_file, image, check=True)
    else:
        apply_undo(str(undo_file), str(image))


def golden(name: str, which: str, actual: str) -> None:
    """Compare with tests/fixtures/fsck/NAME/WHICH, or write it with VEXFS_UPDATE_GOLDEN=1."""
    path = FIXTURES / name / which
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    assert path.exists(), f"{path} is missing; run with VEXFS_UPDATE_GOLDEN=1 to write it"
    assert actual == path.read_text(), f"{path} differs:\n{actual}"


def copy(source: Path, dest: Path) -> Path:
    shutil.copyfile(source, dest)
    return dest


def _entry_by_entry(volume, state, dirs, *rest) -> set[int]:
    """pass2_bulk.settle_clean's stand-in: settle nothing, hand every directory to the
    entry-by-entry path."""
    return set(dirs.tolist())


def _every_inode(volume, records, inos):
    """pass1.needs_attention's stand-in: every inode in use goes through _check_inode (none
    is taken in bulk, none is left to single_indirect_in_bulk)."""
    import numpy as np

    return np.ones(len(records), bool), np.zeros(len(records), bool)


def _inode_by_inode(volume, state, records):
    """pass1.single_indirect_in_bulk's stand-in: every file with an indirect block goes
    through _check_inode (unused while _every_inode stands in; kept so that neither bulk
    path of pass 1 can run in the one-by-one variant)."""
    import numpy as np

    return np.ones(len(records), bool)


def bulk_and_entry_by_entry(data: bytes, where: Path, monkeypatch) -> dict[str, list]:
    """-n, -y, -n on a copy of `data`, with the bulk paths of passes 1 and 2 and without
    them (every inode through pass 1's _check_inode, every directory entry by entry): for
    each, [(exit code or error, transcript lines, image digest afterwards)] of the three
    runs."""
    from vexfs_tools.check import pass1, pass2
    from vexfs_tools.errors import VexfsError

    def check(image: Path, mode: str) -> tuple:
        lines: list[str] = []
        try:
            code = run_check(str(image), mode, emit=lines.append).exit_code
        except VexfsError as e:
            code = f"error: {e}"
        return code, lines, digest(image)

    results = {}
    for variant in ("bulk", "entry by entry"):
        with monkeypatch.context() as patch:
            patch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # what -y stamps: equal in both runs
            if variant != "bulk":
                patch.setattr(pass2, "settle_clean", _entry_by_entry)
                patch.setattr(pass1, "needs_attention", _every_inode)
                patch.setattr(pass1, "single_indirect_in_bulk", _inode_by_inode)
            image = where / f"{variant}.img"
            image.write_bytes(data)
            results[variant] = [check(image, "no"), check(image, "yes"), check(image, "no")]
    return results
