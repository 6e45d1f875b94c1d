"""fsck.vexfs on the images the real kernel module wrote (shared/kernel-images): it must find
what the kernel breaks, repair it so that every file reads back with the md5 the kernel
itself returned, leave a clean file system, and be undoable byte for byte."""

from __future__ import annotations

import hashlib

import pytest

from tests.conftest import kernel_image, kernel_md5, run
from vexfs_tools.volume import Volume

from .harness import digest

FSCK = "fsck.vexfs"


def md5s(image, paths) -> dict[str, str | None]:
    out = {}
    with Volume.open(str(image)) as volume:
        for path in paths:
            try:
                inode = volume.resolve(path)
            except Exception:  # noqa: BLE001 - not reachable is a wrong answer, not an error
                out[path] = None
                continue
            digest_ = hashlib.md5()
            for chunk in volume.read_file(inode):
                digest_.update(chunk)
            out[path] = digest_.hexdigest()
    return out


@pytest.mark.parametrize("name", ["tree", "overwrite"])
def test_kernel_image_is_repaired_to_what_the_kernel_returned(tmp_path, name):
    image = kernel_image(name, tmp_path)
    expected = kernel_md5(name)
    original = digest(image)

    checked = run(FSCK, "-n", image)
    assert checked.returncode == 4, checked.stdout
    assert "MODIFIED" not in checked.stdout
    assert digest(image) == original

    undo_file = tmp_path / "fix.undo"
    repaired = run(FSCK, "-y", "-z", undo_file, image)
    assert repaired.returncode == 1, repaired.stdout
    assert "FILE SYSTEM WAS MODIFIED" in repaired.stdout
    assert md5s(image, list(expected)) == expected

    again = run(FSCK, "-n", image)
    assert again.returncode == 0, again.stdout
    assert "? no" not in again.stdout

    run("vexfs", "undo", undo_file, image, check=True)
    assert digest(image) == original


def test_tree_image_before_repair_hides_most_files(tmp_path):
    """The premise of the test above: without the repair, the kernel's orphaned directory
    blocks leave most of the tree unreachable."""
    image = kernel_image("tree", tmp_path)
    found = md5s(image, list(kernel_md5("tree")))
    assert sum(v is None for v in found.values()) == 9


def test_preen_repairs_the_tree_image(tmp_path):
    """Every fix the tree image needs (orphaned directory blocks, a parent's link count,
    stale counters) is safe without asking."""
    image = kernel_image("tree", tmp_path)
    expected = kernel_md5("tree")
    result = run(FSCK, "-p", image)
    assert result.returncode == 1, result.stdout
    assert "RUN fsck MANUALLY" not in result.stdout
    assert "REATTACHED." in result.stdout
    assert md5s(image, list(expected)) == expected
    assert run(FSCK, "-n", image).returncode == 0


def test_preen_repairs_the_overwrite_image(tmp_path):
    """The overwrite image needs only truncate repairs and counters: preen-safe too."""
    image = kernel_image("overwrite", tmp_path)
    expected = kernel_md5("overwrite")
    result = run(FSCK, "-p", image)
    assert result.returncode == 1, result.stdout
    assert md5s(image, list(expected)) == expected
    assert run(FSCK, "-n", image).returncode == 0
