"""Run a writer in a forked child that SIGKILLs itself before device write N+1 (the fault
injection of vexfs_tools.device), then repair and judge what it left: the crash tests."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vexfs_tools import device as devmod
from vexfs_tools.check.context import NO, YES
from vexfs_tools.check.run import run_check
from vexfs_tools.errors import VexfsError
from vexfs_tools.inspect.walk import walk_tree
from vexfs_tools.vectors.files import VectorFile, find_vector_files
from vexfs_tools.volume import Volume

RNG = np.random.default_rng(14)
OLD = RNG.standard_normal((700, 8)).astype(np.float32)  # /emb.vec: 2 chunks' worth, 6 blocks
NEW = RNG.standard_normal((3000, 8)).astype(np.float32)  # 24 blocks: through an indirect block


def in_child(work: Callable[[], None], crash_after: int | None) -> tuple[bool, int]:
    """Run `work` in a forked child; (killed by the fault injection, writes it made)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.close(read_end)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            devmod.crash_after(crash_after)
            try:
                work()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            os.write(write_end, str(devmod.writes_done()).encode())
        except BaseException:
            code = 99
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        reported = f.read()
    _, status = os.waitpid(pid, 0)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    if not killed:
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"writer failed: {status}"
    return killed, int(reported or 0)


def count_writes(image: Path, fresh: Callable[[Path], None], work: Callable[[Path], Callable[[], None]]) -> int:
    """How many device writes the writer makes on an untouched copy."""
    fresh(image)
    killed, writes = in_child(work(image), None)
    assert not killed
    return writes


def sample(total: int, limit: int = 40) -> list[int]:
    """Every crash point 0..total when few, else a dense sample that keeps both ends."""
    if total + 1 <= limit:
        return list(range(total + 1))
    points = set(range(8)) | set(range(max(0, total - 8), total + 1))
    points |= set(np.linspace(0, total, limit - len(points)).astype(int).tolist())
    return sorted(points)


def repair_then_clean(image: Path) -> None:
    """fsck.vexfs -y, then a forced -n must find nothing (exit 0)."""
    first = run_check(str(image), YES)
    assert first.exit_code in (0, 1), f"fsck -y exited {first.exit_code}"
    second = run_check(str(image), NO)
    assert second.exit_code == 0, [f.code for f in second.findings]


def vector_files(image: Path) -> dict[str, np.ndarray | None]:
    """Every vector file after repair: path -> its vectors, None when it can not be opened
    (search refuses it). A file with bad chunks fails the test here: search would use it."""
    out: dict[str, np.ndarray | None] = {}
    with Volume.open(str(image)) as volume:
        for path, inode in find_vector_files(volume):
            try:
                file = VectorFile.open(volume, inode, path)
            except VexfsError:
                out[path] = None
                continue
            assert file.bad_chunks() == [], f"{path}: bad chunks left after fsck -y"
            out[path] = np.array(file.vectors(mmap=False))
    return out


def file_bytes(image: Path) -> dict[str, bytes]:
    """path -> contents of every regular file (small test images)."""
    out = {}
    with Volume.open(str(image)) as volume:
        for path, inode in walk_tree(volume):
            if inode.is_reg:
                out[os.fsdecode(path)] = volume.read_bytes(inode, 1 << 24)
    return out


def copy(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)


def fresh_copy(source: Path) -> Callable[[Path], None]:
    return lambda target: copy(source, target)


def click_run(command, args: list[str]):
    def work():
        command.main([str(a) for a in args], standalone_mode=False)
    return work


def sweep(image: Path, fresh, work, judge, limit: int = 40) -> int:
    """Crash the writer at every sampled point; judge each repaired image. Returns the
    number of crash points tried (the last one lets the writer finish)."""
    total = count_writes(image, fresh, work)
    assert total > 0
    points = sample(total, limit)
    for after in points:
        fresh(image)
        killed, _ = in_child(work(image), after)
        assert killed == (after < total), (after, total)
        judge(image, after)
    return len(points)


def old_files_kept(before: dict[str, bytes], image: Path, *, except_paths=()) -> dict[str, bytes]:
    """Every file there before is there after with the same bytes; returns the new view."""
    after = file_bytes(image)
    for path, data in before.items():
        if path not in except_paths:
            assert after.get(path) == data, f"{path} changed by a crash"
    return after


def found_in_lost_found(files: dict[str, bytes]) -> list[str]:
    return [p for p in files if p.startswith("/lost+found/")]


Files = dict[str, bytes]


def crash_each_point(start: Path, tmp_path: Path, command, args: Callable[[Path], list],
                     touched: set[str] = frozenset(), check: Callable[[Files, Files, int], None] | None = None,
                     limit: int = 40) -> None:
    """Crash `command args(image)` on copies of `start` at every sampled write; after each
    repair the untouched files are as they were and `check(before, after, point)` holds."""
    before = file_bytes(start)

    def judge(image: Path, after: int) -> None:
        repair_then_clean(image)
        files = old_files_kept(before, image, except_paths=touched)
        if check:
            check(before, files, after)

    sweep(tmp_path / "t.img", lambda t: copy(start, t), lambda t: click_run(command, args(t)), judge, limit)
