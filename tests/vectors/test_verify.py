"""vexfs_tools.vectors.verify: the numbers of `vexfs verify` against hand-computed cases, the
three input layouts, and the refusals (docs/FORMAT.md 9.1)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vexfs_tools.errors import UsageError
from vexfs_tools.format import vector as V
from vexfs_tools.vectors import sources
from vexfs_tools.vectors.queries import pair_distances
from vexfs_tools.vectors.verify import Answers, answers_from_arrays, load_answers, verify_arrays

# Ten 2-D vectors x_i = (i, 0) with ids 100 + i; the query is the origin, so the squared l2
# distance of id 100 + i is i*i. The exact 3 nearest: 100, 101, 102 at 0, 1, 4 (D = 4).
LINE = np.array([[i, 0] for i in range(10)], np.float32)
LINE_IDS = np.arange(10, dtype=np.uint64) + 100
ORIGIN = np.zeros((1, 2), np.float32)


def answers(ids, distances=None) -> Answers:
    return answers_from_arrays(np.array(ids, np.int64),
                               None if distances is None else np.array(distances, np.float64))


def score_line(ids, distances=None, k=3, **kw):
    return verify_arrays(ORIGIN, LINE, LINE_IDS, answers(ids, distances), k=k, metric="l2", **kw)


# --- recall, epsilon-recall, relative distance error -----------------------------------------

def test_perfect_answers():
    r = score_line([[100, 101, 102]], [[0, 1, 4]])
    assert (r.recall, r.epsilon_recall, r.relative_distance_error) == (1.0, 1.0, 0.0)
    assert r.passed and r.distance_mismatches == 0 and r.distances_checked == 3
    assert r.missing_ids == r.duplicate_ids == r.short_queries == 0
    q = r.queries[0]
    assert q.kth_exact_distance == 4.0 and q.answers == 3 and not q.short
    assert q.max_distance_error == 0.0


@pytest.mark.parametrize("metric", ["l2", "cosine", "dot"])
def test_exact_answers_score_bit_for_bit(metric):
    """The search's own answers, distances included, are perfect even with ε = 0: true
    distances are computed the way the exact search computes them."""
    from vexfs_tools.vectors.search import search_arrays

    rng = np.random.default_rng(5)
    x = rng.standard_normal((500, 24)).astype(np.float32)
    ids = rng.permutation(10_000)[:500].astype(np.uint64)
    q = rng.standard_normal((20, 24)).astype(np.float32)
    exact = search_arrays(q, x, ids, 10, metric)
    r = verify_arrays(q, x, ids, answers(exact.ids, exact.distances), k=10, metric=metric, epsilon=0.0)
    assert r.recall == r.epsilon_recall == 1.0 and r.relative_distance_error == 0.0
    assert r.distance_mismatches == 0 and r.max_distance_error == 0.0


def test_answer_order_does_not_matter():
    r = score_line([[102, 100, 101]])
    assert r.recall == 1.0 and r.relative_distance_error == 0.0


def test_one_wrong_id():
    r = score_line([[100, 101, 105]], [[0, 1, 25]])
    assert r.recall == pytest.approx(2 / 3)
    assert r.epsilon_recall == pytest.approx(2 / 3)
    # sorted true distances 0, 1, 25 against the exact 0, 1, 4: (26 - 5) / 5
    assert r.relative_distance_error == pytest.approx(21 / 5)
    assert r.distance_mismatches == 0  # the distance given for 105 is its true one
    assert r.queries[0].far_answers == [{"rank": 3, "id": 105, "true": 25.0}]
    assert not r.passed
    assert score_line([[100, 101, 105]], min_recall=0.6).passed
    assert not score_line([[100, 101, 105]], min_recall=0.7).passed


def test_recall_is_over_k_and_averaged_over_queries():
    queries = np.array([[0, 0], [9, 0]], np.float32)  # the second query's nearest: 109, 108, 107
    r = verify_arrays(queries, LINE, LINE_IDS, answers([[100, 101, 102], [109, 100, 101]]), k=3, metric="l2")
    assert [q.recall for q in r.queries] == pytest.approx([1.0, 1 / 3])
    assert r.recall == pytest.approx((1 + 1 / 3) / 2)


def test_k_defaults_to_the_answer_width_and_extra_answers_are_not_scored():
    r = score_line([[100, 101]], k=None)
    assert r.k == 2 and r.recall == 1.0
    r = score_line([[100, 101, 102, 109]], k=3)
    assert r.recall == 1.0 and r.queries[0].answers == 4


def test_epsilon_thresholds():
    # 1-D vectors; the exact 3 nearest of 0 are at 0, 1, 4 (D = 4); ε = 0.001 puts recall's
    # threshold at 4.001 and epsilon-recall's at 4.004.
    x = np.array([[0], [1], [2], [2.0001], [2.0007], [2.01], [5]], np.float32)
    ids = np.arange(10, 17, dtype=np.uint64)
    q = np.zeros((1, 1), np.float32)

    def run(third):
        return verify_arrays(q, x, ids, answers([[10, 11, third]]), k=3, metric="l2")

    within = run(13)  # t = 4.0004
    assert (within.recall, within.epsilon_recall) == (1.0, 1.0)
    ratio_only = run(14)  # t = 4.0028: above D + ε, within (1 + ε)·D
    assert ratio_only.recall == pytest.approx(2 / 3) and ratio_only.epsilon_recall == 1.0
    neither = run(15)  # t = 4.0401
    assert neither.recall == pytest.approx(2 / 3) and neither.epsilon_recall == pytest.approx(2 / 3)
    wide = verify_arrays(q, x, ids, answers([[10, 11, 15]]), k=3, metric="l2", epsilon=0.05)
    assert (wide.recall, wide.epsilon_recall) == (1.0, 1.0)


def test_ties_at_the_kth_distance_all_count():
    # ids 1 and 2 are both at distance 1 from the query; either completes the answer.
    x = np.array([[0, 0], [1, 0], [0, 1], [3, 3]], np.float32)
    ids = np.arange(4, dtype=np.uint64)
    for second in (1, 2):
        r = verify_arrays(np.zeros((1, 2)), x, ids, answers([[0, second]]), k=2, metric="l2")
        assert r.recall == 1.0 and r.relative_distance_error == 0.0


def test_dot_larger_is_nearer():
    x = np.array([[1], [2], [3.9995], [4], [5]], np.float32)
    ids = np.arange(5, dtype=np.uint64)
    q = np.ones((1, 1), np.float32)
    # exact 2 nearest by inner product: ids 4 (5) and 3 (4); D = 4
    exact = verify_arrays(q, x, ids, answers([[4, 3]], [[5, 4]]), k=2, metric="dot")
    assert (exact.recall, exact.relative_distance_error, exact.distance_mismatches) == (1.0, 0.0, 0)
    r = verify_arrays(q, x, ids, answers([[4, 1]]), k=2, metric="dot")
    assert r.recall == 0.5 and r.epsilon_recall == 0.5
    assert r.relative_distance_error == pytest.approx((9 - 7) / 9)  # (Σd - Σt) / Σ|d|
    near = verify_arrays(q, x, ids, answers([[4, 2]]), k=2, metric="dot")  # 3.9995 >= 4 - ε
    assert near.recall == 1.0
    assert near.relative_distance_error == pytest.approx((9 - (5 + float(np.float32(3.9995)))) / 9)


def test_cosine_and_the_zero_vector():
    x = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [-1, 0]], np.float32)
    ids = np.arange(5, dtype=np.uint64)
    q = np.array([[2, 0]], np.float32)
    # 1 - cos: 0, 1, 1 - 1/√2, 1 (the zero vector), 2; exact 2 nearest: ids 0, 2
    r = verify_arrays(q, x, ids, answers([[0, 3]], [[0, 1]]), k=2, metric="cosine")
    assert r.recall == 0.5 and r.distance_mismatches == 0
    assert r.queries[0].kth_exact_distance == pytest.approx(1 - 1 / math.sqrt(2))
    assert pair_distances(np.zeros((1, 2)), np.zeros((1, 2)), "cosine", 2)[0] == 1.0


def test_hamming_on_packed_bits():
    bits = np.array([[0] * 8, [1] + [0] * 7, [1, 1] + [0] * 6, [1] * 8], bool)
    packed = np.packbits(bits, axis=1, bitorder="little")
    ids = np.arange(4, dtype=np.uint64)
    q = np.zeros((1, 8), bool)
    r = verify_arrays(q, packed, ids, answers([[0, 2]], [[0, 2]]), k=2, metric="hamming",
                      element_type=V.ELEMENT_BINARY)
    assert r.recall == 0.5 and r.distance_mismatches == 0
    assert r.relative_distance_error == pytest.approx((2 - 1) / 1)
    # bits past the last dimension count neither in the query nor in the stored vectors
    ragged = np.packbits(np.zeros((2, 5), bool), axis=1, bitorder="little")
    ragged[1, 0] = 0b11100000
    r5 = verify_arrays(np.zeros((1, 5), bool), ragged, ids[:2], answers([[1]], [[0]]), k=1, metric="hamming",
                       element_type=V.ELEMENT_BINARY, dimensions=5)
    assert r5.recall == 1.0 and r5.distance_mismatches == 0
    # packed queries are taken too, and so are rows of 0s and 1s
    for query in (np.zeros((1, 1), np.uint8), np.zeros((1, 8), np.float32)):
        assert verify_arrays(query, packed, ids, answers([[0, 1]]), k=2, metric="hamming",
                             element_type=V.ELEMENT_BINARY).recall == 1.0


# --- reported distances ---------------------------------------------------------------------

def test_placeholder_distances_are_caught():
    r = score_line([[100, 101, 102]], [[0, 0, 0]])
    assert r.recall == 1.0 and r.passed  # the ids are right ...
    assert r.distance_mismatches == 2  # ... the distances of ranks 2 and 3 are not
    wrong = r.queries[0].distance_mismatches
    assert [(m["rank"], m["id"], m["reported"], m["true"], m["error"]) for m in wrong] == \
        [(2, 101, 0.0, 1.0, 1.0), (3, 102, 0.0, 4.0, 4.0)]
    assert r.max_distance_error == 4.0
    constant = score_line([[100, 101, 102]], [[7, 7, 7]])
    assert constant.distance_mismatches == 3
    assert any("placeholder" in hint for hint in constant.hints)


def test_distance_tolerance_is_relative_above_one():
    # |r - t| <= ε·max(1, |t|): 4.003 is within 0.004 of 4; 0.0015 is not within 0.001 of 0
    assert score_line([[100, 101, 102]], [[0, 1, 4.003]]).distance_mismatches == 0
    assert score_line([[100, 101, 102]], [[0.0015, 1, 4]]).distance_mismatches == 1
    assert score_line([[100, 101, 102]], [[0, 1, 4.005]]).distance_mismatches == 1


def test_missing_or_nan_reported_distance_is_wrong():
    r = score_line([[100, 101, 102]], [[0, np.nan, 4]])
    assert r.distance_mismatches == 1 and r.queries[0].distance_mismatches[0]["rank"] == 2
    assert r.as_json()["overall"]["max_distance_error"] == 0.0  # over the distances that are numbers
    none = score_line([[100, 101]], [[np.nan, np.nan]], k=2)
    assert none.distance_mismatches == 2 and none.as_json()["overall"]["max_distance_error"] is None
    assert any("no answer carries" in hint for hint in none.hints)
    json.dumps(r.as_json(), allow_nan=False)


def test_no_distances_means_not_checked():
    r = score_line([[100, 101, 102]])
    assert not r.distances_reported and r.distances_checked == 0 and r.distance_mismatches == 0


def test_euclidean_instead_of_squared_gets_a_hint():
    x = np.array([[2, 0], [3, 0], [4, 0]], np.float32)
    ids = np.arange(3, dtype=np.uint64)
    r = verify_arrays(np.zeros((1, 2)), x, ids, answers([[0, 1, 2]], [[2, 3, 4]]), k=3, metric="l2")
    assert r.distance_mismatches == 3 and r.recall == 1.0
    assert any("SQUARED" in hint for hint in r.hints)


def test_true_distance_is_float64_of_the_stored_vector():
    x = np.array([[0.1], [0.2]], np.float32)
    r = verify_arrays(np.zeros((1, 1)), x, np.array([5, 6], np.uint64), answers([[5]], [[9.0]]), k=1,
                      metric="l2")
    assert r.queries[0].distance_mismatches[0]["true"] == float(np.float64(np.float32(0.1)) ** 2)


# --- missing, duplicate, short ----------------------------------------------------------------

def test_missing_ids():
    r = score_line([[100, 999, 102]], [[0, 5, 4]])
    assert r.recall == pytest.approx(2 / 3)
    assert r.queries[0].missing_ids == [999] and r.missing_ids == 1
    assert r.distance_mismatches == 0 and r.distances_checked == 2  # 999's distance can not be checked
    # ids are mapped to rows, not taken as row numbers
    assert score_line([[0, 1, 2]]).missing_ids == 3


def test_duplicate_ids_count_once():
    r = score_line([[100, 100, 101]])
    assert r.queries[0].duplicate_ids == [100] and r.duplicate_ids == 1
    assert r.recall == pytest.approx(2 / 3)
    assert r.relative_distance_error == 0.0  # the two scored answers are the two nearest


def test_short_answers_and_padding():
    r = score_line([[100, 101]], k=3)
    assert r.queries[0].short and r.short_queries == 1 and r.queries[0].answers == 2
    assert r.recall == pytest.approx(2 / 3)
    padded = score_line([[100, -1, 101]], k=3)
    assert padded.queries[0].short and padded.queries[0].answers == 2
    assert padded.recall == pytest.approx(2 / 3) and padded.missing_ids == 0
    empty = score_line([[-1, -1, -1]], k=3)
    assert empty.recall == 0.0 and empty.queries[0].relative_distance_error is None


def test_ids_are_mapped_through_the_file_ids():
    ids = LINE_IDS[::-1].copy()  # row i has id 109 - i
    r = verify_arrays(ORIGIN, LINE, ids, answers([[109, 108, 107]], [[0, 1, 4]]), k=3, metric="l2")
    assert r.recall == 1.0 and r.distance_mismatches == 0


# --- the three layouts -------------------------------------------------------------------------

def expected_numbers(r):
    return (round(r.recall, 9), round(r.epsilon_recall, 9), r.distance_mismatches, r.missing_ids,
            r.duplicate_ids, r.short_queries)


TWO_QUERIES = np.array([[0, 0], [9, 0]], np.float32)
# query 0: right ids, a placeholder distance at rank 2; query 1: 109, a missing id, 109 again
ROWS = [([100, 101, 102], [0.0, 0.0, 4.0]), ([109, 555, 109], [0.0, 1.0, 0.0])]
EXPECTED = (round((1 + 1 / 3) / 2, 9), round((1 + 1 / 3) / 2, 9), 1, 1, 1, 0)


def check(loaded: Answers):
    r = verify_arrays(TWO_QUERIES, LINE, LINE_IDS, loaded, k=3, metric="l2")
    assert expected_numbers(r) == EXPECTED
    assert r.queries[1].missing_ids == [555] and r.queries[1].duplicate_ids == [109]
    return r


def test_json_layout(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"metric": "l2", "k": 3, "results": [
        {"query": q, "ids": ids, "distances": d} for q, (ids, d) in enumerate(ROWS)]}))
    check(load_answers(str(path), 2))
    # without "query", in order; a bare list; null for a distance not reported
    path.write_text(json.dumps([{"ids": ids, "distances": d} for ids, d in ROWS]))
    check(load_answers(str(path), 2))
    # named queries in any order; a query not named has no answers
    path.write_text(json.dumps({"results": [{"query": 1, "ids": ROWS[1][0]}]}))
    a = load_answers(str(path), 2)
    assert a.distances is None and a.ids.tolist() == [[-1, -1, -1], ROWS[1][0]]
    path.write_text(json.dumps({"results": [{"query": 0, "ids": [100, 101], "distances": [0, None]}]}))
    r = verify_arrays(ORIGIN, LINE, LINE_IDS, load_answers(str(path), 1), k=2, metric="l2")
    assert r.recall == 1.0 and r.distance_mismatches == 1


def test_json_metric_is_used_and_must_agree(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"metric": "dot", "results": [{"ids": [109]}]}))
    a = load_answers(str(path), 1)
    assert a.metric == "dot"
    assert verify_arrays(np.ones((1, 2)), LINE, LINE_IDS, a, metric=None).metric == "dot"
    with pytest.raises(UsageError, match="metric"):
        verify_arrays(np.ones((1, 2)), LINE, LINE_IDS, a, metric="l2")


def test_csv_layout(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("".join(f"{q},{i},{d}\n" for q, (ids, ds) in enumerate(ROWS) for i, d in zip(ids, ds)))
    check(load_answers(str(path), 2))
    # a header in another order, a rank column, extra columns, comments; lines out of order
    lines = ["# kernel answers", "rank,distance,id,query,note"]
    for q, (ids, ds) in reversed(list(enumerate(ROWS))):
        for rank, (i, d) in reversed(list(enumerate(zip(ids, ds), 1))):
            lines.append(f"{rank},{d},{i},{q},x")
    path.write_text("\n".join(lines) + "\n")
    check(load_answers(str(path), 2))
    # no distance column: not checked
    path.write_text("query,id\n0,100\n0,101\n")
    a = load_answers(str(path), 2)
    assert a.distances is None and a.ids.tolist() == [[100, 101], [-1, -1]]


def test_ivecs_fvecs_and_npy_layouts(tmp_path):
    ids = np.array([row[0] for row in ROWS], np.int32)
    distances = np.array([row[1] for row in ROWS], np.float32)
    sources.write_texmex(str(tmp_path / "r.ivecs"), ids)
    sources.write_texmex(str(tmp_path / "r.fvecs"), distances)
    check(load_answers(str(tmp_path / "r.ivecs"), 2, distances_path=str(tmp_path / "r.fvecs")))
    np.save(tmp_path / "ids.npy", ids.astype(np.int64))
    np.save(tmp_path / "d.npy", distances.astype(np.float64))
    check(load_answers(str(tmp_path / "ids.npy"), 2, distances_path=str(tmp_path / "d.npy")))
    ids_only = load_answers(str(tmp_path / "r.ivecs"), 2)
    assert ids_only.distances is None


# --- refusals ------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, words", [
    ("{", "not valid JSON"),
    ('{"answers": []}', "results"),
    ('{"results": [{"ids": [1]}]}', "1 queries"),
    ('{"results": [{"query": 0, "ids": [1]}, {"ids": [2]}]}', "every result"),
    ('{"results": [{"query": 5, "ids": [1]}]}', "query 5"),
    ('{"results": [{"query": 0, "ids": [1]}, {"query": 0, "ids": [2]}]}', "twice"),
    ('{"results": [{"query": 0, "ids": [1.5]}]}', "not an integer"),
    ('{"results": [{"query": 0, "ids": [1], "distances": [1, 2]}]}', "as long as"),
    ('{"results": [{"query": 0, "ids": [1], "distances": ["x"]}]}', "not a number"),
    ('{"metric": "manhattan", "results": []}', "unknown metric"),
    ('{"results": [{"query": 0, "ids": [18446744073709551615]}]}', "out of range"),
])
def test_bad_json(tmp_path, content, words):
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(UsageError, match=words):
        load_answers(str(path), 2)


@pytest.mark.parametrize("content, words", [
    ("0,abc\n", "line 1"),
    ("query,id\n0,1\n7,2\n", "line 3: query 7"),
    ("q,ident\n0,1\n", "must name"),
    ("0,1,2,3\n", "query,id"),
    ("0,1,far\n", "not a number"),
])
def test_bad_csv(tmp_path, content, words):
    path = tmp_path / "r.csv"
    path.write_text(content)
    with pytest.raises(UsageError, match=words):
        load_answers(str(path), 2)


def test_shape_mismatches(tmp_path):
    sources.write_texmex(str(tmp_path / "three.ivecs"), np.zeros((3, 2), np.int32))
    with pytest.raises(UsageError, match="3 queries; the query file has 2"):
        load_answers(str(tmp_path / "three.ivecs"), 2)
    sources.write_texmex(str(tmp_path / "two.ivecs"), np.zeros((2, 2), np.int32))
    sources.write_texmex(str(tmp_path / "wide.fvecs"), np.zeros((2, 3), np.float32))
    with pytest.raises(UsageError, match="do not match"):
        load_answers(str(tmp_path / "two.ivecs"), 2, distances_path=str(tmp_path / "wide.fvecs"))
    np.save(tmp_path / "float_ids.npy", np.zeros((2, 2)))
    with pytest.raises(UsageError, match="integers"):
        load_answers(str(tmp_path / "float_ids.npy"), 2)
    with pytest.raises(UsageError, match="dimensions"):
        verify_arrays(np.zeros((1, 3)), LINE, LINE_IDS, answers([[100]]), metric="l2")


def test_unknown_formats(tmp_path):
    (tmp_path / "r.txt").write_text("1 2 3\n")
    with pytest.raises(UsageError, match="unknown answer format"):
        load_answers(str(tmp_path / "r.txt"), 1)
    (tmp_path / "r.json").write_text('{"results": [{"ids": [1]}]}')
    with pytest.raises(UsageError, match="--distances"):
        load_answers(str(tmp_path / "r.json"), 1, distances_path=str(tmp_path / "d.fvecs"))
    sources.write_texmex(str(tmp_path / "r.ivecs"), np.zeros((1, 1), np.int32))
    (tmp_path / "d.txt").write_text("0\n")
    with pytest.raises(UsageError, match=".fvecs or .npy"):
        load_answers(str(tmp_path / "r.ivecs"), 1, distances_path=str(tmp_path / "d.txt"))


def test_k_refusals():
    with pytest.raises(UsageError, match="k=11 is larger"):
        score_line([[100]], k=11)
    with pytest.raises(UsageError, match="at least 1"):
        score_line([[100]], k=0)
    with pytest.raises(UsageError, match="give -k"):
        verify_arrays(ORIGIN, LINE, LINE_IDS, Answers(np.zeros((1, 0), np.int64)), metric="l2")


def test_metric_refusals():
    with pytest.raises(UsageError, match="does not go with numeric"):
        verify_arrays(ORIGIN, LINE, LINE_IDS, answers([[100]]), k=1, metric="hamming")
    with pytest.raises(UsageError, match="unknown metric"):
        verify_arrays(ORIGIN, LINE, LINE_IDS, answers([[100]]), k=1, metric="manhattan")
    with pytest.raises(UsageError, match="epsilon"):
        score_line([[100]], k=1, epsilon=-1)


def test_nan_query_refused():
    with pytest.raises(UsageError, match="query 1"):
        verify_arrays(np.array([[0, 0], [np.nan, 0]]), LINE, LINE_IDS, answers([[100], [100]]), metric="l2")


def test_json_report_layout():
    r = score_line([[100, 999, 100]], [[0, 3, 0]])
    out = r.as_json()
    json.dumps(out, allow_nan=False)
    assert set(out) == {"path", "metric", "k", "epsilon", "min_recall", "passed", "queries", "vectors",
                        "distances_reported", "overall", "hints", "per_query"}
    assert set(out["overall"]) == {"recall", "epsilon_recall", "relative_distance_error",
                                   "queries_with_full_recall", "distances_checked", "distance_mismatches",
                                   "max_distance_error", "missing_ids", "duplicate_ids", "short_queries"}
    q = out["per_query"][0]
    assert set(q) == {"query", "answers", "short", "recall", "epsilon_recall", "relative_distance_error",
                      "kth_exact_distance", "missing_ids", "duplicate_ids", "far_answers", "distance_mismatches",
                      "max_distance_error", "wrong_distances"}
    assert q["missing_ids"] == [999] and q["duplicate_ids"] == [100] and q["recall"] == pytest.approx(1 / 3)
    assert out["overall"]["distances_checked"] == 2 and out["overall"]["distance_mismatches"] == 0
