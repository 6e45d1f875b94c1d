"""An interrupted `vexfs resize` loses nothing: the resize runs in a forked child that
SIGKILLs itself before device write N+1 (tests/safety/crash.py) at a sample of points; after
fsck.vexfs -y a forced -n finds the image clean, every file has its contents, and a file
seen twice (an inode copied when the crash came) is a whole copy in /lost+found."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.safety.crash import count_writes, file_bytes, in_child, repair_then_clean, vector_files
from vexfs_tools.cli.maintenance import resize_command

from .test_resize import VECTORS, source  # noqa: F401 - the module-scoped image fixture

POINTS = 20


def sample(total: int) -> list[int]:
    """Both ends (the first moves; the switch of geometry and what follows it) and POINTS
    evenly between them; every point when there are few."""
    if total < POINTS + 8:
        return list(range(total + 1))
    ends = set(range(3)) | set(range(total - 5, total + 1))
    return sorted(ends | set(np.linspace(0, total, POINTS).astype(int).tolist()))


def resize_work(args: list[str]):
    def make(target: Path):
        def work():
            resize_command.main(["-f", str(target), *args], standalone_mode=False)
        return work
    return make


def judge(before: dict[str, bytes], image: Path, after: int) -> None:
    repair_then_clean(image)
    files = file_bytes(image)
    for path, data in before.items():
        assert files.get(path) == data, f"{path} lost or changed by a crash after {after} writes"
    originals = set(before.values())
    for path, data in files.items():
        if path not in before:
            assert path.startswith("/lost+found/") and data in originals, f"{path}: a mix after {after}"
    np.testing.assert_array_equal(vector_files(image)["/emb.vec"], VECTORS)


@pytest.mark.parametrize("first, args", [(None, ["-M"]), (None, ["300M"]), (["300M"], ["1G"])],
                         ids=["shrink-to-minimum", "grow-moving-the-bitmap", "grow-the-table-over-the-bitmap"])
def test_interrupted_resize_loses_nothing(source, tmp_path, first, args):  # noqa: F811
    """The third case starts from a grown image, whose bitmap lies just after the table: the
    table grows over it, so the bitmap moves past the table's new end first."""
    before = file_bytes(source)
    image = tmp_path / "c.img"
    start = tmp_path / "start.img"
    shutil.copyfile(source, start)
    if first:
        resize_work(first)(start)()

    def fresh(target: Path) -> None:
        subprocess.run(["cp", "--sparse=always", str(start), str(target)], check=True)  # holes stay holes

    work = resize_work(args)
    total = count_writes(image, fresh, work)
    points = sample(total)
    for after in points:
        fresh(image)
        killed, _ = in_child(work(image), after)
        assert killed == (after < total), (after, total)
        judge(before, image, after)
