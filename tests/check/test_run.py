"""check/run.py: what a check of a clean image imports, and pass 1's sweep standing for the
inode table in later passes (the used-inode count, the vector files of pass 6) only while
nothing has written an inode since."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from vexfs_tools.check.context import NO, YES
from vexfs_tools.check.run import run_check
from vexfs_tools.volume.volume import Volume

from .corpus import VECTOR_PATH, Img, add_vectors, flip

# Imported only by the checks that need them: duplicate blocks, vector files, a path named in
# a message, the offset options, JSON output.
NOT_IMPORTED = ("vexfs_tools.check.pass1b", "vexfs_tools.check.pass_vectors", "vexfs_tools.inspect.walk",
                "vexfs_tools.inspect.partitions", "json")


def _image(tmp_path: Path) -> Img:
    tree = tmp_path / "tree"
    (tree / "vectors").mkdir(parents=True)
    (tree / "plain.bin").write_bytes(b"p" * 9000)
    image = tmp_path / "v.img"
    subprocess.run(["mkfs.vexfs", "-q", "-s", "32M", "-d", str(tree), str(image)], check=True)
    return Img(image, "extended")


def _used_inodes_by_a_fresh_sweep(image: Path) -> int:
    with Volume.open(str(image)) as volume:
        return volume.count_used_inodes()


def test_a_clean_check_imports_none_of_what_it_does_not_use(tmp_path):
    img = _image(tmp_path)
    code = ("import sys\n"
            "from vexfs_tools.cli.fsck import main\n"
            f"sys.argv = ['fsck.vexfs', '-fn', {str(img.path)!r}]\n"
            "try:\n    main()\nexcept SystemExit as stop:\n    status = stop.code\n"
            f"print('exit', status, *[name for name in {NOT_IMPORTED!r} if name in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "exit 0"


def test_a_clean_check_of_vector_files_walks_no_tree(tmp_path, monkeypatch):
    """Pass 6 names a vector file only in a finding: a clean check needs no path, and so no
    walk of every directory in Python."""
    from vexfs_tools.check.context import Checker

    img = _image(tmp_path)
    add_vectors(img)
    walks: list[int] = []
    walk_names = Checker._walk_names
    monkeypatch.setattr(Checker, "_walk_names", lambda self: walks.append(1) or walk_names(self))
    lines: list[str] = []
    assert run_check(str(img.path), NO, emit=lines.append).exit_code == 0
    assert "Pass 6: Checking vector files" in lines
    assert walks == []


def test_the_sweep_counts_the_used_inodes_a_fresh_sweep_counts(tmp_path):
    img = _image(tmp_path)
    result = run_check(str(img.path), NO)
    assert result.exit_code == 0
    assert result.used_inodes == _used_inodes_by_a_fresh_sweep(img.path)


def test_pass_6_still_runs_after_pass_1_repaired_an_inode(tmp_path):
    """A repair in pass 1 writes an inode: the sweep's list of vector files no longer stands,
    and pass 6 looks at the table again (it finds the damaged chunk)."""
    img = _image(tmp_path)
    start, info = add_vectors(img)
    at = start + info.data_offset + info.chunk_size + 1000
    img.write(at, flip(img.read(at, 1)[0]))
    plain = img.ino("/plain.bin")
    img.set_inode(plain, i_blocks=img.inode(plain).fields.i_blocks + 1)
    lines: list[str] = []
    result = run_check(str(img.path), YES, emit=lines.append)
    found = [(finding.pass_number, finding.name) for finding in result.findings]
    assert "Pass 6: Checking vector files" in lines
    assert found[0][0] == 1 and (6, "VECTOR_CHUNK_CHECKSUM") in found, found
    assert any(VECTOR_PATH in line for line in lines)
    assert result.exit_code == 5
    assert result.used_inodes == _used_inodes_by_a_fresh_sweep(img.path)
