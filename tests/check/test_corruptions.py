"""The corruption corpus (tests/check/corpus.py), each class in e2fsprogs' manner:

1. `fsck.vexfs -n` finds it (exit 4; 0 for NO_OK classes) and leaves every byte as it was;
2. `fsck.vexfs -y -z UNDO` repairs it (exit 1); its transcript is expect.1;
3. a second `fsck.vexfs -n` is clean (exit 0); its transcript is expect.2;
4. every file the corruption did not touch reads back byte-identical, through the library;
5. `vexfs undo UNDO IMG` puts the corrupted image back exactly.

Most classes run fsck in-process (vexfs_tools.check.run.run_check, the CLI's own call);
those marked cli=True run the installed commands, against the same golden files.
VEXFS_UPDATE_GOLDEN=1 rewrites the golden files.
"""

from __future__ import annotations

import pytest

from tests.conftest import run

from .corpus import (
    CORRUPTIONS,
    EPOCH,
    GONE,
    LAYOUTS,
    MKFS_ENV,
    Expect,
    Img,
    cases,
    make_tree,
    mkfs_args,
    read_back,
)
from .harness import bulk_and_entry_by_entry, copy, digest, fsck, golden, undo

CASES = cases()


@pytest.fixture(scope="session")
def base_images(tmp_path_factory):
    """{layout: (image, {path: contents})}: the populated images every class starts from."""
    images = {}
    for layout in LAYOUTS:
        where = tmp_path_factory.mktemp(f"base-{layout}")
        files = make_tree(where / "tree", layout)
        image = where / "base.img"
        run("mkfs.vexfs", *mkfs_args(layout, where / "tree", image), env=MKFS_ENV, check=True)
        images[layout] = (image, files)
    return images


@pytest.fixture(autouse=True)
def fixed_time(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)


def corrupt(base_images, tmp_path, name: str, layout: str):
    base, files = base_images[layout]
    image = copy(base, tmp_path / f"{name}.img")
    expect = CORRUPTIONS[name].generate(Img(image, layout)) or Expect()
    assert digest(image) != digest(base), "the generator changed nothing"
    return image, files, expect


def test_the_corpus_is_large_enough():
    assert len(CORRUPTIONS) >= 30
    for layout in LAYOUTS:
        assert sum(layout in c.layouts for c in CORRUPTIONS.values()) >= 20
    assert sum(c.cli for c in CORRUPTIONS.values()) >= 3


@pytest.mark.parametrize("layout", LAYOUTS)
def test_base_images_are_clean_and_reproducible(base_images, tmp_path, layout):
    base, files = base_images[layout]
    again = tmp_path / "again.img"
    make_tree(tmp_path / "tree", layout)
    run("mkfs.vexfs", *mkfs_args(layout, tmp_path / "tree", again), env=MKFS_ENV, check=True)
    assert digest(again) == digest(base)
    code, text, findings = fsck(base, "-n")
    assert (code, findings) == (0, []), text
    assert read_back(base, list(files)) == files


@pytest.mark.parametrize("name,layout", CASES, ids=[f"{n}-{lay}" for n, lay in CASES])
def test_corruption(base_images, tmp_path, name, layout):
    c = CORRUPTIONS[name]
    image, files, expect = corrupt(base_images, tmp_path, name, layout)
    corrupted = digest(image)

    code, text, findings = fsck(image, "-n", cli=c.cli)
    assert code == (0 if c.no_ok else 4), text
    assert "? no" in text and "MODIFIED" not in text, text
    assert digest(image) == corrupted, "fsck -n wrote to the image"

    undo_file = tmp_path / "fix.undo"
    code, text, _ = fsck(image, "-y", undo=undo_file, cli=c.cli)
    golden(f"{name}-{layout}", "expect.1", text)
    assert code == 1, text

    code, text, findings = fsck(image, "-n", cli=c.cli)
    golden(f"{name}-{layout}", "expect.2", text)
    assert code == 0 and not findings, text

    wanted = {}
    for path, data in files.items():
        new = expect.changed.get(path, data)
        wanted[expect.where(path)] = new
    found = read_back(image, list(wanted))
    for path, data in wanted.items():
        if data is GONE:
            assert found[path] is None, f"{path} should be gone"
        else:
            assert found[path] == data, f"{path} does not read back as expected"

    undo(undo_file, image, cli=c.cli)
    assert digest(image) == corrupted, "undo did not restore the corrupted image"


@pytest.mark.parametrize("name,layout", CASES, ids=[f"{n}-{lay}" for n, lay in CASES])
def test_bulk_paths_change_nothing_but_speed(base_images, tmp_path, monkeypatch, name, layout):
    """Each class, checked with the bulk paths of passes 1 and 2 and with every file and
    directory gone through one by one: the same transcripts, exit codes and bytes after -y."""
    image, _, _ = corrupt(base_images, tmp_path, name, layout)
    results = bulk_and_entry_by_entry(image.read_bytes(), tmp_path, monkeypatch)
    assert results["bulk"] == results["entry by entry"]


PREEN = [(n, lay) for n, lay in CASES if CORRUPTIONS[n].preen]
NOT_PREEN = [(n, lay) for n, lay in CASES if not CORRUPTIONS[n].preen and not CORRUPTIONS[n].no_ok]


@pytest.mark.parametrize("name,layout", PREEN, ids=[f"{n}-{lay}" for n, lay in PREEN])
def test_preen_repairs_what_is_safe(base_images, tmp_path, name, layout):
    image, _, _ = corrupt(base_images, tmp_path, name, layout)
    code, text, findings = fsck(image, "-p")
    assert code == 1 and all(f.fixed for f in findings), text
    code, text, _ = fsck(image, "-n")
    assert code == 0, text


@pytest.mark.parametrize("name,layout", NOT_PREEN, ids=[f"{n}-{lay}" for n, lay in NOT_PREEN])
def test_preen_stops_at_what_needs_a_person(base_images, tmp_path, name, layout):
    image, _, _ = corrupt(base_images, tmp_path, name, layout)
    code, text, findings = fsck(image, "-p")
    assert code & 4 and "RUN fsck MANUALLY" in text, text
    assert not findings[-1].fixed


AGREE = [("dir_lost_block", "kernel"), ("rec_len_zero", "extended")]


@pytest.mark.parametrize("name,layout", AGREE, ids=[f"{n}-{lay}" for n, lay in AGREE])
def test_the_cli_and_the_library_call_agree(base_images, tmp_path, name, layout):
    """The in-process runs above stand for the command: same transcript, same bytes."""
    image, _, _ = corrupt(base_images, tmp_path, name, layout)
    twin = copy(image, tmp_path / "twin.img")
    by_cli = fsck(image, "-y", cli=True)
    by_library = fsck(twin, "-y")
    assert by_cli[:2] == by_library[:2]
    assert digest(image) == digest(twin)
