"""fsck's pass 6 on vector files (tests/check/corpus.py's vector classes). Repairable
classes run in tests/check/test_corruptions.py with the rest of the corpus; here: after a
header repair the vectors export byte-identical, and damage with nothing good to repair it
from (a chunk, the ids, both header copies) stays reported, -y changing no byte."""

from __future__ import annotations

import numpy as np
import pytest

from tests.check.corpus import (CORRUPTIONS, EPOCH, EXTENDED, MKFS_ENV, VECTOR_DAMAGE, VECTOR_PATH, Img,
                                make_tree, mkfs_args, vector_rows)
from tests.check.harness import copy, digest, fsck, golden
from tests.conftest import run

REPAIRED = [name for name in CORRUPTIONS if name.startswith("vector_header") or name == "vector_copy_differs"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    where = tmp_path_factory.mktemp("base-vectors")
    make_tree(where / "tree", EXTENDED)
    image = where / "base.img"
    run("mkfs.vexfs", *mkfs_args(EXTENDED, where / "tree", image), env=MKFS_ENV, check=True)
    return image


@pytest.fixture(autouse=True)
def fixed_time(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)


def test_a_fresh_vector_file_is_clean(base, tmp_path):
    image = copy(base, tmp_path / "v.img")
    CORRUPTIONS["vector_copy_differs"]  # the classes below all start from this file
    from tests.check.corpus import add_vectors

    add_vectors(Img(image, EXTENDED))
    code, text, findings = fsck(image, "-n")
    assert (code, findings) == (0, []), text
    assert "Pass 6: Checking vector files" in text


@pytest.mark.parametrize("name", REPAIRED)
def test_a_repaired_header_gives_back_the_same_vectors(base, tmp_path, name):
    image = copy(base, tmp_path / "v.img")
    CORRUPTIONS[name].generate(Img(image, EXTENDED))
    assert fsck(image, "-y")[0] == 1
    assert fsck(image, "-n")[0] == 0
    out = tmp_path / "out.npy"
    run("vexfs", "vectors", "export", str(image), VECTOR_PATH, "-o", str(out), check=True)
    assert np.load(out).tobytes() == vector_rows().tobytes()


@pytest.mark.parametrize("name", sorted(VECTOR_DAMAGE))
def test_damage_stays_reported_and_untouched(base, tmp_path, name):
    image = copy(base, tmp_path / "v.img")
    VECTOR_DAMAGE[name].generate(Img(image, EXTENDED))
    damaged = digest(image)
    code, first, findings = fsck(image, "-n")
    assert code == 4 and findings and not any(f.fixed for f in findings), first
    assert all(f.pass_number == 6 for f in findings), first
    assert digest(image) == damaged
    code, text, findings = fsck(image, "-y")
    golden(f"{name}-extended", "expect.1", text)
    assert code == 4 and not any(f.fixed for f in findings), text
    assert digest(image) == damaged, "fsck -y touched damage it can not repair"
    code, text, _ = fsck(image, "-n")
    golden(f"{name}-extended", "expect.2", text)
    assert code == 4 and text == first, text


def test_the_chunk_message_names_path_chunk_and_rows(base, tmp_path):
    image = copy(base, tmp_path / "v.img")
    VECTOR_DAMAGE["vector_chunk_checksum"].generate(Img(image, EXTENDED))
    _, text, findings = fsck(image, "-n")
    assert [f.name for f in findings] == ["VECTOR_CHUNK_CHECKSUM"]
    assert f"({VECTOR_PATH}): chunk 1 (rows 4096-4199) checksum does not match." in text


@pytest.fixture(scope="module")
def chunk_damaged(base, tmp_path_factory):
    image = copy(base, tmp_path_factory.mktemp("damaged") / "v.img")
    VECTOR_DAMAGE["vector_chunk_checksum"].generate(Img(image, EXTENDED))
    np.save(image.parent / "q.npy", vector_rows()[[5, 4100]])
    return image


MESSAGE = f"{VECTOR_PATH}: chunk 1 (rows 4096-4199): checksum does not match; run fsck.vexfs"


def test_search_verify_export_refuse_a_damaged_chunk(chunk_damaged):
    q = chunk_damaged.parent / "q.npy"
    result = run("vexfs", "search", chunk_damaged, VECTOR_PATH, "--query", q, "-k", "3")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"vexfs: {MESSAGE} (or --skip-damaged to search the other chunks)\n"
    answers = chunk_damaged.parent / "a.json"
    answers.write_text('{"results": [{"ids": [5]}, {"ids": [4100]}]}')
    result = run("vexfs", "verify", chunk_damaged, VECTOR_PATH, "--queries", q, "--results", answers)
    assert result.returncode == 2 and result.stderr == f"vexfs: {MESSAGE}\n"
    out = chunk_damaged.parent / "out.npy"
    result = run("vexfs", "vectors", "export", chunk_damaged, VECTOR_PATH, "-o", out)
    assert result.returncode == 1 and result.stderr == f"vexfs: {MESSAGE}\n" and not out.exists()
    assert list(chunk_damaged.parent.glob("out.npy*")) == []


def test_search_skip_damaged_searches_the_good_chunks(chunk_damaged):
    import json

    q = chunk_damaged.parent / "q.npy"
    result = run("vexfs", "search", chunk_damaged, VECTOR_PATH, "--query", q, "-k", "2", "--json",
                 "--skip-damaged", check=True)
    assert result.stderr == (f"vexfs: warning: {VECTOR_PATH}: rows 4096-4199 left out (damaged chunks: "
                             "checksum does not match)\n")
    found = [r["ids"] for r in json.loads(result.stdout)["results"]]
    assert found[0][0] == 5 and all(i < 4096 for ids in found for i in ids)


def test_ls_names_the_damaged_rows(chunk_damaged):
    import json

    entry, = json.loads(run("vexfs", "vectors", "ls", "--json", chunk_damaged, check=True).stdout)
    assert entry["checksums"] == "bad" and entry["bad_chunks"] == [1] and entry["bad_rows"] == [[4096, 4199]]
    assert "BAD (chunk 1)" in run("vexfs", "vectors", "ls", chunk_damaged, check=True).stdout
