"""Issue 14, findings 5 and 6 (the vector commands' share): memory follows the data, not
what is asked (-k, results files), and export to a full disk fails cleanly."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import uuid

import numpy as np
import pytest

from tests.conftest import run, tool

ROWS, DIMS = 5000, 16


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    where = tmp_path_factory.mktemp("bounds")
    (where / "tree").mkdir()
    vectors = np.random.default_rng(14).standard_normal((ROWS, DIMS)).astype("<f4")
    np.save(where / "tree" / "emb.vec.npy", vectors)
    np.save(where / "q.npy", vectors[:5])
    img = where / "v.img"
    run("mkfs.vexfs", "-q", "-s", "16M", "-d", where / "tree", img, check=True)
    return img


def limited(*args, address_space: int = 3 << 30) -> subprocess.CompletedProcess:
    """`vexfs ARGS` with its address space capped: what a search allocates must fit."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([tool("vexfs"), *map(str, args)], capture_output=True, text=True, preexec_fn=cap,
                          env=env)


def test_k_beyond_the_vector_count_costs_only_the_data(image):
    q = image.parent / "q.npy"
    exact = json.loads(run("vexfs", "search", image, "/emb.vec", "--query", q, "-k", ROWS, "--json",
                           check=True).stdout)
    for k in (100_000_000, 99999999999999999999):
        result = limited("search", image, "/emb.vec", "--query", q, "-k", k, "--json")
        assert result.returncode == 0 and result.stderr == "", result.stderr
        found = json.loads(result.stdout)
        assert found["k"] == k and found["results"] == exact["results"]


def test_huge_k_ground_truth_is_a_clean_error(image, tmp_path):
    result = run("vexfs", "search", image, "/emb.vec", "--query", image.parent / "q.npy", "-k",
                 "99999999999999999999", "--save-groundtruth", tmp_path / "gt")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "vexfs: -k 99999999999999999999: .ivecs ground truth rows hold fewer than 2^31 ids\n"
    assert list(tmp_path.iterdir()) == []


def test_ground_truth_past_the_count_is_padded_to_k(image, tmp_path):
    from vexfs_tools.vectors import sources

    run("vexfs", "search", image, "/emb.vec", "--query", image.parent / "q.npy", "-k", ROWS + 3,
        "--save-groundtruth", tmp_path / "gt", check=True)
    ids, distances = sources.load_array(str(tmp_path / "gt.ivecs")), sources.load_array(str(tmp_path / "gt.fvecs"))
    assert ids.shape == distances.shape == (5, ROWS + 3)
    assert (ids[:, ROWS:] == -1).all() and np.isnan(distances[:, ROWS:]).all()
    assert sorted(ids[0, :ROWS].tolist()) == list(range(ROWS))


def test_a_results_file_larger_than_queries_times_count_is_refused_unread(image, tmp_path):
    answers = tmp_path / "a.json"
    row = "[" + ",".join(["1"] * 600_000) + "]"  # 3,000,000 ids: 6 MB
    answers.write_text('{"results": [' + ",".join(f'{{"ids": {row}}}' for _ in range(5)) + "]}")
    result = limited("verify", image, "/emb.vec", "--queries", image.parent / "q.npy", "--results", answers,
                     address_space=1 << 30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"vexfs: {answers}: ") and "25000 answers" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("ext", [".json", ".csv", ".ivecs"])
def test_a_query_with_more_answers_than_vectors_is_refused(image, tmp_path, ext):
    from vexfs_tools.vectors import sources

    answers = tmp_path / f"a{ext}"
    ids = np.tile(np.arange(ROWS + 1, dtype=np.int32), (5, 1))
    if ext == ".json":
        answers.write_text(json.dumps({"results": [{"ids": [0]}] * 4 + [{"ids": ids[0].tolist()}]}))
    elif ext == ".csv":
        answers.write_text("".join(f"4,{i}\n" for i in range(ROWS + 1)))
    else:
        sources.write_texmex(str(answers), np.tile(ids[:1], (6, 1)))
    result = run("vexfs", "verify", image, "/emb.vec", "--queries", image.parent / "q.npy", "--results", answers)
    assert result.returncode == 2 and result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("vexfs: ")


def test_deeply_nested_json_is_a_clean_error(image, tmp_path):
    answers = tmp_path / "deep.json"
    answers.write_text("[" * 200000 + "]" * 200000)
    result = run("vexfs", "verify", image, "/emb.vec", "--queries", image.parent / "q.npy", "--results", answers)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == f"vexfs: {answers}: JSON nested deeper than 32 levels\n"


@pytest.fixture
def tiny_fs(tmp_path):
    """A 256 KiB tmpfs, or a skip when this machine can not mount one."""
    where = tmp_path / f"full-{uuid.uuid4().hex[:6]}"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"can not mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


@pytest.mark.parametrize("ext", [".npy", ".fvecs"])
def test_export_to_a_full_disk_is_one_line_and_leaves_nothing(image, tiny_fs, ext):
    out = tiny_fs / f"e{ext}"
    result = run("vexfs", "vectors", "export", image, "/emb.vec", "-o", out)
    assert result.returncode == 1 and result.stdout == "", result
    assert result.stderr == f"vexfs: {out}: No space left on device; nothing was written\n"
    assert list(tiny_fs.iterdir()) == []


def test_export_writes_no_memory_map():
    """The .npy output goes through ordinary writes (a memory-mapped output turns ENOSPC
    into SIGBUS)."""
    from vexfs_tools.vectors import manage

    assert "open_memmap" not in open(manage.__file__).read()
    assert sys.modules["vexfs_tools.vectors.manage"] is manage
