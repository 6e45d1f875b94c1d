"""`vexfs vectors add|export|ls`, `vexfs search`, `vexfs verify` and the vector part of
`vexfs demo`, through the installed CLI: exit codes, JSON layouts, refusals in one line, and
read-only commands that leave the image as it was."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from tests.cli.helpers import error_line
from tests.conftest import Unchanged, run
from vexfs_tools.format import constants as C
from vexfs_tools.format import vector as V
from vexfs_tools.vectors import sources
from vexfs_tools.vectors.codec import layout
from vexfs_tools.vectors.files import VectorFile, find_vector_files
from vexfs_tools.vectors.store import VectorSource
from vexfs_tools.volume import Volume
from vexfs_tools.volume.fileio import physical_runs

from .fragmented import add_fragmented_vector_file

RNG = np.random.default_rng(2024)
BASE = RNG.standard_normal((300, 16)).astype(np.float32)
BASE_IDS = (np.arange(300, dtype=np.uint64) * 3 + 50)
QUERIES = (BASE[[5, 77, 250]] + 0.05 * RNG.standard_normal((3, 16))).astype(np.float32)


def brute(queries, vectors, ids, k, metric="l2"):
    """Exact search by hand, FORMAT.md's conventions (ties by smaller id)."""
    q, x = np.asarray(queries, np.float64), np.asarray(vectors, np.float64)
    if metric == "l2":
        d = ((q[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
    elif metric == "dot":
        d = q @ x.T
    else:
        norms = np.linalg.norm(q, axis=1)[:, None] * np.linalg.norm(x, axis=1)[None, :]
        d = 1 - np.divide(q @ x.T, norms, out=np.zeros((len(q), len(x))), where=norms > 0)
    key = -d if metric == "dot" else d
    out_ids, out_d = [], []
    for row in range(len(q)):
        order = np.lexsort((ids, key[row]))[:k]
        out_ids.append(ids[order].astype(np.int64))
        out_d.append(d[row][order])
    return np.array(out_ids), np.array(out_d)


def vexfs(*args, **kw):
    return run("vexfs", *args, **kw)


@pytest.fixture
def host(tmp_path):
    np.save(tmp_path / "base.npy", BASE)
    np.save(tmp_path / "ids.npy", BASE_IDS)
    np.save(tmp_path / "q.npy", QUERIES)
    return tmp_path


@pytest.fixture
def image(fresh_image, host):
    """An image holding /emb/base.vec (BASE, ids BASE_IDS)."""
    img = fresh_image("16M")
    with Volume.open(str(img), writable=True) as volume:
        volume.mkdir(C.ROOT_INO, b"emb")
    vexfs("vectors", "add", img, "/emb/base.vec", "--from", host / "base.npy", "--ids", host / "ids.npy",
          check=True)
    return img


# --- vexfs vectors add / ls / export ----------------------------------------------------------

def test_add_and_ls(image, host):
    with Unchanged(image):
        listing = json.loads(vexfs("vectors", "ls", "--json", image, check=True).stdout)
    assert len(listing) == 1
    entry = listing[0]
    assert {k: entry[k] for k in ("path", "dimensions", "element_type", "count", "metric", "checksums")} == \
        {"path": "/emb/base.vec", "dimensions": 16, "element_type": "float32", "count": 300, "metric": "l2",
         "checksums": "ok"}
    assert entry["bad_chunks"] == [] and entry["ids_checksum_ok"] and entry["size"] > 300 * 16 * 4
    text = vexfs("vectors", "ls", image, check=True).stdout
    assert "/emb/base.vec" in text and "float32" in text and " ok" in text
    assert run("fsck.vexfs", "-n", image).returncode == 0
    dump = json.loads(run("dump.vexfs", "--json", image, check=True).stdout)
    assert "vector_files" in dump["features"]


def test_add_message_and_export_round_trip(image, host):
    with Unchanged(image):
        out = vexfs("vectors", "export", image, "/emb/base.vec", "-o", host / "out.npy", "--ids",
                    host / "out_ids.npy", check=True)
    assert "300 vectors" in out.stdout
    assert np.array_equal(np.load(host / "out.npy"), BASE)
    assert np.array_equal(np.load(host / "out_ids.npy"), BASE_IDS)
    vexfs("vectors", "export", image, "/emb/base.vec", "-o", host / "out.fvecs", "--ids", host / "ids.ivecs",
          check=True)
    assert np.array_equal(sources.read_texmex(str(host / "out.fvecs")), BASE)
    assert sources.read_texmex(str(host / "ids.ivecs")).reshape(-1).tolist() == BASE_IDS.tolist()


def test_add_default_ids_metric_and_append(fresh_image, host):
    img = fresh_image("16M")
    first = vexfs("vectors", "add", img, "/v.vec", "--from", host / "base.npy", "--metric", "cosine", check=True)
    assert "/v.vec" in first.stdout and "300" in first.stdout and "cosine" in first.stdout
    more = RNG.standard_normal((20, 16)).astype(np.float32)
    np.save(host / "more.npy", more)
    refused = vexfs("vectors", "add", img, "/v.vec", "--from", host / "more.npy")
    error_line(refused, "vexfs", "exists", "--append", code=2)
    wrong_metric = vexfs("vectors", "add", img, "/v.vec", "--from", host / "more.npy", "--append", "--metric", "l2")
    error_line(wrong_metric, "vexfs", "cosine", code=2)
    appended = vexfs("vectors", "add", img, "/v.vec", "--from", host / "more.npy", "--append", check=True)
    assert "added 20" in appended.stdout and "320" in appended.stdout
    vexfs("vectors", "export", img, "/v.vec", "-o", host / "all.npy", "--ids", host / "all_ids.npy", check=True)
    assert np.array_equal(np.load(host / "all.npy"), np.concatenate([BASE, more]))
    assert np.load(host / "all_ids.npy").tolist() == list(range(320))
    listing = json.loads(vexfs("vectors", "ls", "--json", img, check=True).stdout)
    assert listing[0]["metric"] == "cosine" and listing[0]["count"] == 320 and listing[0]["checksums"] == "ok"
    mismatch = RNG.standard_normal((2, 8)).astype(np.float32)
    np.save(host / "narrow.npy", mismatch)
    error_line(vexfs("vectors", "add", img, "/v.vec", "--from", host / "narrow.npy", "--append"),
               "vexfs", "differ", code=2)
    assert run("fsck.vexfs", "-n", img).returncode == 0


def test_add_refuses_nan_naming_the_row(fresh_image, host):
    img = fresh_image("16M")
    bad = BASE[:10].copy()
    bad[7, 3] = np.nan
    np.save(host / "nan.npy", bad)
    with Unchanged(img):
        line = error_line(vexfs("vectors", "add", img, "/n.vec", "--from", host / "nan.npy"), "vexfs",
                          "row 7", "NaN", code=2)
    assert "nan.npy" in line
    inf = BASE[:5].copy()
    inf[0, 0] = np.inf
    np.save(host / "inf.npy", inf)
    error_line(vexfs("vectors", "add", img, "/n.vec", "--from", host / "inf.npy"), "vexfs", "row 0", code=2)


def test_add_refusals(fresh_image, host):
    kernel = fresh_image("16M", "--compat", "kernel")
    with Unchanged(kernel):
        error_line(vexfs("vectors", "add", kernel, "/v.vec", "--from", host / "base.npy"), "vexfs",
                   "kernel layout", code=2)
    img = fresh_image("16M")
    with Unchanged(img):
        error_line(vexfs("vectors", "add", img, "/v.vec", "--from", host / "missing.npy"), "vexfs",
                   "missing.npy", code=2)
        (host / "v.txt").write_text("1 2 3\n")
        error_line(vexfs("vectors", "add", img, "/v.vec", "--from", host / "v.txt"), "vexfs",
                   "unknown vector format", code=2)
        error_line(vexfs("vectors", "add", img, "/no/such/v.vec", "--from", host / "base.npy"), "vexfs",
                   "no such file", code=1)
        np.save(host / "dup_ids.npy", np.zeros(300, np.uint64))
        error_line(vexfs("vectors", "add", img, "/v.vec", "--from", host / "base.npy", "--ids",
                         host / "dup_ids.npy"), "vexfs", "unique", code=2)
        error_line(vexfs("vectors", "add", img, "/v.vec", "--from", host / "base.npy", "--metric", "hamming"),
                   "vexfs", "hamming", code=2)
    small = fresh_image("1M")
    np.save(host / "big.npy", np.zeros((20000, 64), np.float32))
    error_line(vexfs("vectors", "add", small, "/big.vec", "--from", host / "big.npy"), "vexfs", "free", code=1)
    assert run("fsck.vexfs", "-n", small).returncode == 0


def test_binary_vectors(fresh_image, host):
    img = fresh_image("16M")
    bits = RNG.random((50, 20)) < 0.5
    np.save(host / "bits.npy", bits)
    out = vexfs("vectors", "add", img, "/b.vec", "--from", host / "bits.npy", check=True)
    assert "binary" in out.stdout and "hamming" in out.stdout
    vexfs("vectors", "export", img, "/b.vec", "-o", host / "bits_out.npy", check=True)
    assert np.array_equal(np.load(host / "bits_out.npy"), bits)
    error_line(vexfs("vectors", "export", img, "/b.vec", "-o", host / "b.fvecs"), "vexfs", ".npy", code=2)
    np.save(host / "bq.npy", bits[[3, 9]])
    found = json.loads(vexfs("search", img, "--query", host / "bq.npy", "-k", "1", "--json", check=True).stdout)
    assert found["metric"] == "hamming"
    assert [r["ids"] for r in found["results"]] == [[3], [9]] and found["results"][0]["distances"] == [0.0]
    one = json.loads(vexfs("search", img, "--vector", ",".join("1" if b else "0" for b in bits[9]), "-k", "1",
                           "--json", check=True).stdout)
    assert one["results"][0]["ids"] == [9]


def test_export_bvecs_and_refusals(image, host):
    small_ints = RNG.integers(0, 256, (10, 4)).astype(np.float32)
    np.save(host / "ints.npy", small_ints)
    vexfs("vectors", "add", image, "/ints.vec", "--from", host / "ints.npy", check=True)
    vexfs("vectors", "export", image, "/ints.vec", "-o", host / "ints.bvecs", check=True)
    assert np.array_equal(sources.read_texmex(str(host / "ints.bvecs")), small_ints.astype(np.uint8))
    with Unchanged(image):
        error_line(vexfs("vectors", "export", image, "/emb/base.vec", "-o", host / "x.bvecs"), "vexfs",
                   "row 0", "0..255", code=2)
        assert not (host / "x.bvecs").exists()
        error_line(vexfs("vectors", "export", image, "/emb/base.vec", "-o", host / "x.csv"), "vexfs",
                   "unknown output format", code=2)
        error_line(vexfs("vectors", "export", image, "/emb", "-o", host / "x.npy"), "vexfs",
                   "not a vector file", code=2)
        error_line(vexfs("vectors", "export", image, "/nope.vec", "-o", host / "x.npy"), "vexfs",
                   "no such file", code=1)
    big_ids = np.arange(300, dtype=np.uint64) + (1 << 40)
    np.save(host / "big_ids.npy", big_ids)
    vexfs("vectors", "add", image, "/big.vec", "--from", host / "base.npy", "--ids", host / "big_ids.npy", check=True)
    error_line(vexfs("vectors", "export", image, "/big.vec", "-o", host / "b.npy", "--ids", host / "b.ivecs"),
               "vexfs", "2^31", code=2)


def test_ls_without_vector_files_and_with_bad_checksums(fresh_image, image):
    empty = fresh_image("16M")
    assert "no vector files" in vexfs("vectors", "ls", empty, check=True).stdout
    assert json.loads(vexfs("vectors", "ls", "--json", empty, check=True).stdout) == []
    with Volume.open(str(image)) as volume:
        (path, inode), = list(find_vector_files(volume))
        offset = VectorFile.open(volume, inode, path).contiguous_offset()
    with open(image, "r+b") as f:
        f.seek(offset + 100)
        byte = f.read(1)
        f.seek(offset + 100)
        f.write(bytes([byte[0] ^ 0xFF]))
    entry = json.loads(vexfs("vectors", "ls", "--json", image, check=True).stdout)[0]
    assert entry["checksums"] == "bad" and entry["bad_chunks"] == [0] and entry["ids_checksum_ok"]
    assert "BAD (chunk 0)" in vexfs("vectors", "ls", image, check=True).stdout


def test_fragmented_vector_file(fresh_image, host):
    """A vector file in many runs of blocks with a hole (as another writer may leave one;
    tests/vectors/fragmented.py): ls, search and export read it through its block map, not
    a memory map, and get it right; ls finds a flipped byte in it."""
    vectors = BASE.copy()
    vectors[100:200] = 0  # rows 100..199 cover logical block 3 whole: left as a hole
    img = fresh_image("16M")
    with Volume.open(str(img), writable=True) as volume:
        volume.mkdir(C.ROOT_INO, b"emb")
        source = VectorSource(vectors, BASE_IDS, V.ELEMENT_FLOAT32, 16, V.METRIC_L2,
                              layout(16, V.ELEMENT_FLOAT32, len(vectors))[3])
        add_fragmented_vector_file(volume, "/emb/frag.vec", source)
    with Volume.open(str(img)) as volume:
        inode = volume.resolve("/emb/frag.vec")
        runs = physical_runs(volume, inode)
        assert len(runs) > 1 and all(count == 1 for _, _, count in runs)
        assert 3 not in [logical for logical, _, _ in runs]  # the hole
        file = VectorFile.open(volume, inode, "/emb/frag.vec")
        info = file.info
        assert file.contiguous_offset() is None
        assert file.contents.map_readonly(info.data_offset, info.data_bytes) is None
        physical = dict((logical, block) for logical, block, _ in runs)[2]
    assert run("fsck.vexfs", "-n", img).returncode == 0
    with Unchanged(img):
        entry, = json.loads(vexfs("vectors", "ls", "--json", img, check=True).stdout)
        assert (entry["count"], entry["checksums"], entry["contiguous"]) == (300, "ok", False)
        data = json.loads(vexfs("search", img, "/emb/frag.vec", "--query", host / "q.npy", "-k", "5", "--json",
                                check=True).stdout)
        ids, distances = brute(QUERIES, vectors, BASE_IDS, 5)
        assert [r["ids"] for r in data["results"]] == ids.tolist()
        assert np.allclose([r["distances"] for r in data["results"]], distances, rtol=1e-6, atol=1e-6)
        vexfs("vectors", "export", img, "/emb/frag.vec", "-o", host / "frag.npy", "--ids", host / "frag_ids.npy",
              check=True)
    assert np.array_equal(np.load(host / "frag.npy"), vectors)
    assert np.array_equal(np.load(host / "frag_ids.npy"), BASE_IDS)
    with open(img, "r+b") as f:
        f.seek(physical * C.BLOCK_SIZE + 7)
        byte = f.read(1)
        f.seek(physical * C.BLOCK_SIZE + 7)
        f.write(bytes([byte[0] ^ 0xFF]))
    entry, = json.loads(vexfs("vectors", "ls", "--json", img, check=True).stdout)
    assert entry["bad_chunks"] == [0] and entry["ids_checksum_ok"]


# --- vexfs search -----------------------------------------------------------------------------

def test_search_json_matches_brute_force(image, host):
    with Unchanged(image):
        out = vexfs("search", image, "/emb/base.vec", "--query", host / "q.npy", "-k", "5", "--json", check=True)
    data = json.loads(out.stdout)
    assert set(data) == {"metric", "k", "results"} and data["metric"] == "l2" and data["k"] == 5
    ids, distances = brute(QUERIES, BASE, BASE_IDS, 5)
    assert [r["query"] for r in data["results"]] == [0, 1, 2]
    assert [r["ids"] for r in data["results"]] == ids.tolist()
    assert np.allclose([r["distances"] for r in data["results"]], distances, rtol=1e-6, atol=1e-6)
    assert set(data["results"][0]) == {"query", "ids", "distances"}
    text = vexfs("search", image, "/emb/base.vec", "--query", host / "q.npy", "-k", "5", check=True).stdout
    assert "query 2:" in text and str(ids[1][0]) in text


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_search_metrics(image, host, metric):
    data = json.loads(vexfs("search", image, "--query", host / "q.npy", "-k", "4", "--metric", metric, "--json",
                            check=True).stdout)
    ids, distances = brute(QUERIES, BASE, BASE_IDS, 4, metric)
    assert data["metric"] == metric
    assert [r["ids"] for r in data["results"]] == ids.tolist()
    assert np.allclose([r["distances"] for r in data["results"]], distances, rtol=1e-6, atol=1e-6)


def test_search_vector_option_and_all_files(image, host):
    other = RNG.standard_normal((40, 16)).astype(np.float32)
    np.save(host / "other.npy", other)
    vexfs("vectors", "add", image, "/other.vec", "--from", host / "other.npy", check=True)
    vector = ",".join(f"{v:.9g}" for v in QUERIES[0])
    with Unchanged(image):
        data = json.loads(vexfs("search", image, "--vector", vector, "-k", "3", "--json", check=True).stdout)
    assert sorted(data["files"]) == ["/emb/base.vec", "/other.vec"]
    result = data["results"][0]
    assert set(result) == {"query", "ids", "distances", "files"} and len(result["files"]) == 3
    everything = np.concatenate([BASE, other])
    every_id = np.concatenate([BASE_IDS, np.arange(40, dtype=np.uint64)])
    where = ["/emb/base.vec"] * 300 + ["/other.vec"] * 40
    d = ((everything.astype(np.float64) - QUERIES[0].astype(np.float64)) ** 2).sum(axis=1)
    order = np.lexsort((every_id, d))[:3]
    assert result["ids"] == every_id[order].astype(int).tolist()
    assert result["files"] == [where[i] for i in order]
    assert "/other.vec" in vexfs("search", image, "--vector", vector, "-k", "400", check=True).stdout


def test_search_save_groundtruth(image, host):
    prefix = host / "gt"
    with Unchanged(image):
        out = vexfs("search", image, "/emb/base.vec", "--query", host / "q.npy", "-k", "10",
                    "--save-groundtruth", prefix, check=True)
    assert "gt.ivecs" in out.stdout
    ids, distances = brute(QUERIES, BASE, BASE_IDS, 10)
    assert np.array_equal(sources.read_texmex(str(host / "gt.ivecs")), ids.astype(np.int32))
    assert np.allclose(sources.read_texmex(str(host / "gt.fvecs")), distances.astype(np.float32), rtol=1e-6)
    # and the ground truth verifies perfectly
    ok = vexfs("verify", image, "/emb/base.vec", "--queries", host / "q.npy", "--results", host / "gt.ivecs",
               "--distances", host / "gt.fvecs", check=True)
    assert "PASS" in ok.stdout


def test_search_refusals(image, host):
    np.save(host / "other.npy", BASE[:5])
    vexfs("vectors", "add", image, "/other.vec", "--from", host / "other.npy", check=True)
    with Unchanged(image):
        error_line(vexfs("search", image, "--query", host / "q.npy", "-k", "3", "--save-groundtruth",
                         host / "gt"), "vexfs", "exactly one vector file", code=2)
        error_line(vexfs("search", image, "-k", "3"), "vexfs", "--query", "--vector", code=2)
        error_line(vexfs("search", image, "--query", host / "q.npy", "--vector", "1,2", "-k", "3"),
                   "vexfs", "exactly one", code=2)
        error_line(vexfs("search", image, "--vector", "1,2,3", "-k", "3"), "vexfs", "dimensions", code=2)
        error_line(vexfs("search", image, "--vector", "1,x", "-k", "3"), "vexfs", "--vector", code=2)
        error_line(vexfs("search", image, "/emb", "--vector", "1", "-k", "3"), "vexfs", "not a vector file",
                   code=2)
        error_line(vexfs("search", image, "/gone.vec", "--vector", "1", "-k", "3"), "vexfs", "no such file",
                   code=1)
    empty = run("mkfs.vexfs", "-q", "-s", "16M", host / "empty.img", check=True)
    assert empty.returncode == 0
    error_line(vexfs("search", host / "empty.img", "--vector", "1", "-k", "3"), "vexfs", "no vector files",
               code=2)
    assert vexfs("search", image, "--vector", "1", "-k", "0").returncode == 2


# --- vexfs verify -----------------------------------------------------------------------------

def exact_json(image, host, k=5) -> dict:
    return json.loads(vexfs("search", image, "/emb/base.vec", "--query", host / "q.npy", "-k", k, "--json",
                            check=True).stdout)


def verify(image, host, results, *args):
    return vexfs("verify", image, "/emb/base.vec", "--queries", host / "q.npy", "--results", results, *args)


def test_verify_search_output_passes(image, host):
    (host / "exact.json").write_text(json.dumps(exact_json(image, host)))
    with Unchanged(image):
        result = verify(image, host, host / "exact.json")
    assert result.returncode == 0, result.stderr
    assert "PASS" in result.stdout and "recall@5" in result.stdout
    data = json.loads(verify(image, host, host / "exact.json", "--json").stdout)
    assert data["passed"] and data["overall"]["recall"] == 1.0 and data["overall"]["distance_mismatches"] == 0
    assert data["k"] == 5 and data["metric"] == "l2" and len(data["per_query"]) == 3


def test_verify_catches_wrong_ids_and_placeholder_distances(image, host):
    answers = exact_json(image, host)
    far = int(BASE_IDS[np.argmax(((BASE - QUERIES[1]) ** 2).sum(axis=1))])
    answers["results"][1]["ids"][4] = far
    answers["results"][1]["distances"][4] = float(((BASE[(far - 50) // 3].astype(np.float64)
                                                     - QUERIES[1].astype(np.float64)) ** 2).sum())
    answers["results"][2]["distances"] = [1.0] * 5  # a kernel returning placeholder distances
    answers["results"][0]["ids"][3] = 7  # not an id of the file (ids are 50, 53, ...)
    (host / "bad.json").write_text(json.dumps(answers))
    with Unchanged(image):
        failed = verify(image, host, host / "bad.json")
    assert failed.returncode == 1 and "FAIL" in failed.stdout
    assert "query 2" in failed.stdout and "not in the file: 7" in failed.stdout
    data = json.loads(verify(image, host, host / "bad.json", "--json").stdout)
    overall = data["overall"]
    assert overall["recall"] == pytest.approx((4 / 5 + 4 / 5 + 1) / 3)
    assert overall["distance_mismatches"] == 5 and overall["missing_ids"] == 1
    assert data["per_query"][0]["missing_ids"] == [7]
    assert data["per_query"][2]["distance_mismatches"] == 5
    assert any("placeholder" in h for h in data["hints"]) is False  # not every distance is wrong
    assert verify(image, host, host / "bad.json", "--min-recall", "0.85").returncode == 0
    assert verify(image, host, host / "bad.json", "--min-recall", "0.9").returncode == 1


def test_verify_ivecs_and_csv(image, host):
    answers = exact_json(image, host)
    ids = np.array([r["ids"] for r in answers["results"]], np.int32)
    ids[0, 1] = ids[0, 0]  # a duplicate
    ids[2, 4] = -1  # a short answer list
    sources.write_texmex(str(host / "r.ivecs"), ids)
    data = json.loads(verify(image, host, host / "r.ivecs", "--json").stdout)
    assert data["overall"]["duplicate_ids"] == 1 and data["overall"]["short_queries"] == 1
    assert not data["distances_reported"]
    assert data["overall"]["recall"] == pytest.approx((4 / 5 + 1 + 4 / 5) / 3)
    lines = ["query,id,distance"] + [f"{r['query']},{i},{d}" for r in answers["results"]
                                     for i, d in zip(r["ids"], r["distances"])]
    lines[1] = lines[1].rsplit(",", 1)[0] + ",0"  # query 0's nearest with a placeholder 0
    (host / "r.csv").write_text("\n".join(lines) + "\n")
    data = json.loads(verify(image, host, host / "r.csv", "--json", "-k", "3").stdout)
    assert data["k"] == 3 and data["overall"]["recall"] == 1.0
    assert data["overall"]["distance_mismatches"] == 1
    assert data["per_query"][0]["wrong_distances"][0]["rank"] == 1


def test_verify_usage_errors(image, host):
    (host / "exact.json").write_text(json.dumps(exact_json(image, host)))
    with Unchanged(image):
        error_line(verify(image, host, host / "exact.json", "-k", "301"), "vexfs", "k=301", "300", code=2)
        np.save(host / "two.npy", QUERIES[:2])
        error_line(vexfs("verify", image, "/emb/base.vec", "--queries", host / "two.npy", "--results",
                         host / "exact.json"), "vexfs", "query 2", "2 queries", code=2)
        sources.write_texmex(str(host / "three.ivecs"), np.zeros((3, 5), np.int32))
        error_line(vexfs("verify", image, "/emb/base.vec", "--queries", host / "two.npy", "--results",
                         host / "three.ivecs"), "vexfs", "3 queries", code=2)
        (host / "r.txt").write_text("1\n")
        error_line(verify(image, host, host / "r.txt"), "vexfs", "unknown answer format", code=2)
        (host / "broken.json").write_text("{")
        error_line(verify(image, host, host / "broken.json"), "vexfs", "not valid JSON", code=2)
        error_line(verify(image, host, host / "exact.json", "--metric", "dot"), "vexfs", "metric", code=2)
        error_line(verify(image, host, host / "exact.json", "--metric", "hamming"), "vexfs", "metric", code=2)
        np.save(host / "narrow.npy", QUERIES[:, :4])
        error_line(vexfs("verify", image, "/emb/base.vec", "--queries", host / "narrow.npy", "--results",
                         host / "exact.json"), "vexfs", "dimensions", code=2)
        error_line(vexfs("verify", image, "/emb", "--queries", host / "q.npy", "--results", host / "exact.json"),
                   "vexfs", "not a vector file", code=2)
        error_line(verify(image, host, host / "nope.json"), "vexfs", "nope.json", code=2)
        assert verify(image, host, host / "exact.json", "--min-recall", "2").returncode == 2


# --- vexfs demo ---------------------------------------------------------------------------------

def test_demo_tells_the_vector_story(tmp_path):
    start = time.monotonic()
    out = vexfs("demo", "--keep", tmp_path / "demo", check=True)
    elapsed = time.monotonic() - start
    text = out.stdout
    assert "vexfs vectors ls" in text and "/data/embeddings.vec" in text
    assert "vexfs search" in text and "vexfs verify" in text
    assert "FAIL: recall" in text and "both planted errors caught" in text
    assert (tmp_path / "demo" / "kernel-answers.json").exists()
    assert elapsed < 30  # the demo itself aims at < 5 s; leave room for slow test machines
