"""ann-benchmarks' HDF5 files (train, test, neighbors, distances, attribute distance)
everywhere a vector file is read, and ground truth written in that layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import run

h5py = pytest.importorskip("h5py", reason="h5py is the 'hdf5' extra (in the test extra too)")

ROWS, DIMS = 300, 8


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    where = tmp_path_factory.mktemp("hdf5")
    rng = np.random.default_rng(4)
    train = rng.standard_normal((ROWS, DIMS)).astype("<f4")
    test = rng.standard_normal((5, DIMS)).astype("<f4")
    d2 = ((test[:, None, :].astype(np.float64) - train[None, :, :]) ** 2).sum(-1)
    neighbors = np.argsort(d2, axis=1, kind="stable")[:, :10]
    path = where / "data.hdf5"
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "euclidean"
        f.create_dataset("train", data=train)
        f.create_dataset("test", data=test)
        f.create_dataset("neighbors", data=neighbors.astype(np.int32))
        f.create_dataset("distances", data=np.sqrt(np.take_along_axis(d2, neighbors, 1)).astype(np.float32))
        f.create_dataset("other", data=train[:50] * 2)
    image = where / "v.img"
    run("mkfs.vexfs", "-q", "-s", "16M", image, check=True)
    run("vexfs", "vectors", "add", image, "/glove.vec", "--from", path, check=True)
    return path, image, train, test, neighbors


def test_add_from_hdf5_takes_train_and_its_metric(data):
    path, image, train, _, _ = data
    entry, = json.loads(run("vexfs", "vectors", "ls", "--json", image, check=True).stdout)
    assert (entry["count"], entry["dimensions"], entry["metric"]) == (ROWS, DIMS, "l2")
    out = image.parent / "out.npy"
    run("vexfs", "vectors", "export", image, "/glove.vec", "-o", out, check=True)
    assert np.array_equal(np.load(out), train)


def test_add_another_dataset(data, tmp_path):
    path, _, train, _, _ = data
    image = tmp_path / "w.img"
    run("mkfs.vexfs", "-q", "-s", "16M", image, check=True)
    run("vexfs", "vectors", "add", image, "/o.vec", "--from", path, "--dataset", "other", check=True)
    entry, = json.loads(run("vexfs", "vectors", "ls", "--json", image, check=True).stdout)
    assert entry["count"] == 50
    result = run("vexfs", "vectors", "add", image, "/p.vec", "--from", path, "--dataset", "nope")
    assert result.returncode == 2
    assert result.stderr == (f"vexfs: {path}: no dataset 'nope' (datasets: distances, neighbors, other, "
                             "test, train)\n")


def test_mkfs_d_reads_name_vec_hdf5(data, tmp_path):
    path, _, train, _, _ = data
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "glove.vec.hdf5").write_bytes(path.read_bytes())
    image = tmp_path / "m.img"
    run("mkfs.vexfs", "-q", "-s", "16M", "-d", tree, image, check=True)
    out = tmp_path / "out.npy"
    run("vexfs", "vectors", "export", image, "/glove.vec", "-o", out, check=True)
    assert np.array_equal(np.load(out), train)


def test_query_groundtruth_and_verify_in_ann_benchmarks_layout(data, tmp_path):
    path, image, train, test, neighbors = data
    out = tmp_path / "gt.hdf5"
    found = json.loads(run("vexfs", "search", image, "/glove.vec", "--query", path, "-k", "10", "--json",
                           "--groundtruth", out, check=True).stdout)
    ids = np.array([r["ids"] for r in found["results"]])
    assert np.array_equal(ids, neighbors)
    with h5py.File(out, "r") as f:
        assert f.attrs["distance"] == "euclidean"
        assert np.array_equal(f["neighbors"][()], neighbors)
        assert np.array_equal(f["test"][()], test) and np.array_equal(f["train"][()], train)
        ours = np.array([r["distances"] for r in found["results"]])
        assert np.allclose(f["distances"][()], np.sqrt(ours), rtol=1e-6)
    for results in (out, path):
        report = run("vexfs", "verify", image, "/glove.vec", "--queries", path, "--results", results, "--json",
                     check=True)
        overall = json.loads(report.stdout)["overall"]
        assert overall["recall"] == 1.0 and overall["distance_mismatches"] == 0


def test_groundtruth_k_beyond_the_file_is_refused(data, tmp_path):
    path, image, *_ = data
    result = run("vexfs", "search", image, "/glove.vec", "--query", path, "-k", ROWS + 1, "--groundtruth",
                 tmp_path / "gt.hdf5")
    assert result.returncode == 2 and not (tmp_path / "gt.hdf5").exists()
    assert result.stderr == f"vexfs: --groundtruth: -k {ROWS + 1} is more than the {ROWS} vectors of /glove.vec\n"


def test_without_h5py_the_message_says_what_to_install(monkeypatch):
    import sys

    from vexfs_tools.errors import UsageError
    from vexfs_tools.vectors import sources

    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(UsageError, match=r"HDF5 files need h5py: pip install 'vexfs-tools\[hdf5\]'"):
        sources.load_array("x.hdf5")
