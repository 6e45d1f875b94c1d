"""vexfs search/verify --dask: a real scheduler and two worker processes on 127.0.0.1;
the answers are the local ones, exactly."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.conftest import run

distributed = pytest.importorskip("distributed", reason="dask[distributed] is the 'dask' extra (in the test extra)")

DIMS = 24


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as c:
        yield c.scheduler_address


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    where = tmp_path_factory.mktemp("dask")
    rng = np.random.default_rng(3)
    (where / "tree").mkdir()
    a = rng.standard_normal((30000, DIMS)).astype("<f4")  # 2.9 MB: 3 chunks
    a[1000] = a[17]  # a tie at distance 0 for query 0: smaller id first
    b = rng.standard_normal((7000, DIMS)).astype("<f4")
    np.save(where / "tree" / "a.vec.npy", a)
    np.save(where / "tree" / "b.vec.npy", b)
    np.save(where / "q.npy", np.vstack([a[17], b[3], rng.standard_normal((6, DIMS))]).astype("<f4"))
    img = where / "v.img"
    run("mkfs.vexfs", "-q", "-s", "32M", "-d", where / "tree", img, check=True)
    return img


def test_row_ranges_are_chunk_aligned_and_cover_every_row(image):
    from vexfs_tools.vectors.distributed import row_ranges
    from vexfs_tools.vectors.manage import open_vector_file
    from vexfs_tools.volume.volume import Volume

    with Volume.open(str(image)) as volume:
        f = open_vector_file(volume, "/a.vec")
        ranges = row_ranges(f, chunks_per_task=1)
        info = f.info
    assert ranges[0][0] == 0 and ranges[-1][1] == info.count and len(ranges) == 3
    assert all(b == c for (_, b), (c, _) in zip(ranges, ranges[1:]))
    for low, _ in ranges[1:]:
        assert (low * info.row_bytes) // info.chunk_size != ((low - 1) * info.row_bytes) // info.chunk_size or \
            (low * info.row_bytes) % info.chunk_size == 0


@pytest.mark.parametrize("k", ["1", "10", "50000"])
def test_search_on_dask_is_the_local_search(image, cluster, monkeypatch, k):
    from vexfs_tools.vectors import distributed as dist

    q = image.parent / "q.npy"
    local = run("vexfs", "search", image, "--query", q, "-k", k, "--json", check=True).stdout
    remote = run("vexfs", "search", image, "--query", q, "-k", k, "--json", "--dask", cluster, check=True)
    assert remote.stdout == local and remote.stderr == ""
    # And with one chunk a task (many tasks per file), in-process.
    from vexfs_tools.vectors.manage import open_vector_files
    from vexfs_tools.vectors.search import search_files
    from vexfs_tools.volume.volume import Volume

    with Volume.open(str(image)) as volume:
        files = open_vector_files(volume, [])
        queries = np.load(q)
        want = search_files(queries, files, min(int(k), 37000))
        got = dist.search_dask(cluster, str(image), files, queries, min(int(k), 37000), chunks_per_task=1)
    for name in ("ids", "sources"):
        assert np.array_equal(getattr(got, name), getattr(want, name))
    assert np.array_equal(got.distances, want.distances, equal_nan=True)


def test_verify_on_dask_is_the_local_verify(image, cluster, tmp_path):
    q = image.parent / "q.npy"
    answers = tmp_path / "a.json"
    answers.write_text(run("vexfs", "search", image, "/a.vec", "--query", q, "-k", "5", "--json", check=True).stdout)
    local = run("vexfs", "verify", image, "/a.vec", "--queries", q, "--results", answers, "--json", check=True)
    remote = run("vexfs", "verify", image, "/a.vec", "--queries", q, "--results", answers, "--json",
                 "--dask", cluster, check=True)
    assert remote.stdout == local.stdout


def test_without_dask_the_message_says_what_to_install(monkeypatch):
    from vexfs_tools.errors import UsageError
    from vexfs_tools.vectors.distributed import client_for

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(UsageError, match=r"--dask needs dask.distributed: pip install 'vexfs-tools\[dask\]'"):
        client_for("tcp://127.0.0.1:1")


def test_an_unreachable_scheduler_is_one_line(image):
    result = run("vexfs", "search", image, "--vector", ",".join(["0"] * DIMS), "--dask", "tcp://127.0.0.1:9")
    assert result.returncode == 1 and result.stderr.startswith("vexfs: --dask tcp://127.0.0.1:9: ")
    assert result.stderr.count("\n") == 1
