"""Scoring a kernel's answers against an exact search (`vexfs verify`).

Inputs: a vector file, the queries (rows, as `vexfs search` takes them) and, for each query,
the ids the kernel returned in rank order and, optionally, the distance it reported for each.
An exact search (search.search_files) gives, for each query q, the exact distances
d_1 ... d_k of its k nearest vectors, nearest first (docs/FORMAT.md section 9: l2 is the
squared Euclidean distance, cosine is 1 - cos, dot is the inner product and larger is nearer,
hamming counts differing bits). Every true distance below is recomputed in float64 from the
stored vector, found through the file's ids -> row mapping; nothing the kernel reported is
trusted.

The answers of one query (only the first k are scored):

- an id < 0 is padding (no answer);
- an id that the file does not hold is *missing*: it scores nothing;
- an id given again later in the same answer list is a *duplicate*: only its first
  occurrence scores;
- the other answers are *scored*; t is the true distance of a scored answer; a scored
  answer that recall@k does not count is *far* (listed per query with its true distance);
- a query is *short* when it has fewer than k answers that are not padding.

Definitions, for a metric where smaller is nearer (l2, cosine, hamming), with D = d_k the k-th
exact distance and ε = --epsilon:

- recall@k (ann-benchmarks' "k-nn"): #{scored answers with t <= D + ε} / k;
- epsilon-recall (ann-benchmarks' "epsilon", with the same ε): #{scored answers with
  t <= D + ε·|D|} / k, that is t <= (1 + ε)·D, as distances are >= 0;
- relative distance error: with m scored answers, their true distances sorted nearest first
  t_(1) ... t_(m), (Σ t_(j) - Σ d_j) / Σ |d_j| over j = 1 ... m. It is >= 0 (the j-th
  nearest of any m vectors is never nearer than the exact j-th), 0 when the answers are as
  near as the exact ones; undefined (null) when m = 0, infinite when Σ |d_j| = 0 < the
  numerator. Overall: the sum of the numerators over the sum of the denominators;
- a reported distance r of an answer whose id the file holds (duplicates included) is
  *wrong* when |r - t| > ε·max(1, |t|), or r is not a number (null/NaN when the input
  carries distances). The error of a reported distance is |r - t|; the largest error is
  over the reported distances that are numbers.

For dot, where larger is nearer, the analogues: recall counts t >= D - ε, epsilon-recall
counts t >= D - ε·|D|, the relative distance error is (Σ d_j - Σ t_(j)) / Σ |d_j| with t
sorted largest first, and wrong distances are judged as above.

Overall recall and epsilon-recall are the means over queries. The verdict: passed when the
overall recall >= min_recall. Unlike ann-benchmarks, a duplicate counts once, and ε is on
these distances (squared for l2).

The layouts of the answers (JSON, CSV, .ivecs/.npy ids with .fvecs/.npy distances) and of
the JSON report are specified in docs/FORMAT.md 9.1, "Scoring answers: vexfs verify".
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import UsageError
from ..format import vector as V
from . import sources
from .codec import METRIC_CODES, METRIC_NAMES
from .files import VectorFile
from .queries import check_k, check_metric, pair_distances, prepare_queries
from .search import search_arrays, search_files

DEFAULT_EPSILON = 1e-3
PAIRS_PER_BATCH = 1 << 15  # (query, vector) pairs whose true distance is computed at once
MAX_LISTED = 1000  # ids and mismatches listed per query (counts are always exact)


# --- the kernel's answers -------------------------------------------------------------------

@dataclass
class Answers:
    """What the kernel returned: ids (nq, w) int64 with -1 for no answer, and the distances
    it reported (nq, w) float64, NaN where none, or None when the input carries none."""

    ids: np.ndarray
    distances: np.ndarray | None = None
    metric: str | None = None  # named by the input (JSON "metric"), if at all

    @property
    def width(self) -> int:
        return int(self.ids.shape[1])


def _id_value(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{where}: {value!r} is not an integer id")
    if value >= 1 << 63:
        raise UsageError(f"{where}: id {value} is out of range (ids below 2^63)")
    return value


def _distance_value(value, where: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{where}: {value!r} is not a number")
    return float(value)


def _pack(rows: list[tuple[list[int], list[float] | None]], nq: int, has_distances: bool,
          metric: str | None, max_width: int | None = None, where: str = "results") -> Answers:
    width = max((len(ids) for ids, _ in rows), default=0)
    if max_width is not None and width > max_width:
        raise UsageError(f"{where}: a query has {width} answers; the vector file holds {max_width} vectors")
    ids = np.full((nq, width), -1, np.int64)
    distances = np.full((nq, width), np.nan) if has_distances else None
    for q, (row_ids, row_distances) in enumerate(rows):
        ids[q, :len(row_ids)] = row_ids
        if distances is not None and row_distances is not None:
            distances[q, :len(row_distances)] = row_distances
    return Answers(ids, distances, metric)


def answers_from_json(data, nq: int, where: str = "results", max_width: int | None = None) -> Answers:
    """The JSON layout (docs/FORMAT.md, "Scoring answers"): {"metric": ..., "results":
    [{"query": i, "ids": [...], "distances": [...]}, ...]} or the bare list of results."""
    metric = None
    if isinstance(data, dict):
        metric = data.get("metric")
        if metric is not None and metric not in METRIC_CODES:
            raise UsageError(f"{where}: unknown metric {metric!r} (l2, cosine, dot, hamming)")
        if "results" not in data:
            raise UsageError(f"{where}: no \"results\" list")
        data = data["results"]
    if not isinstance(data, list):
        raise UsageError(f"{where}: \"results\" must be a list")
    with_query = [isinstance(item, dict) and "query" in item for item in data]
    if any(with_query) and not all(with_query):
        raise UsageError(f"{where}: either every result names its \"query\" or none does")
    if not all(with_query) and len(data) != nq:
        raise UsageError(f"{where}: answers for {len(data)} queries; the query file has {nq}")
    rows: list[tuple[list[int], list[float] | None]] = [([], None) for _ in range(nq)]
    seen = set()
    has_distances = False
    for position, item in enumerate(data):
        here = f"{where}: results[{position}]"
        if not isinstance(item, dict) or not isinstance(item.get("ids"), list):
            raise UsageError(f"{here}: each result needs an \"ids\" list")
        q = item.get("query", position)
        if isinstance(q, bool) or not isinstance(q, int) or not 0 <= q < nq:
            raise UsageError(f"{here}: query {q!r} is not an index of the {nq} queries")
        if q in seen:
            raise UsageError(f"{here}: query {q} is answered twice")
        seen.add(q)
        ids = [_id_value(v, f"{here}.ids[{j}]") for j, v in enumerate(item["ids"])]
        distances = item.get("distances")
        if distances is not None:
            if not isinstance(distances, list) or len(distances) != len(ids):
                raise UsageError(f"{here}: \"distances\" must be a list as long as \"ids\"")
            distances = [_distance_value(v, f"{here}.distances[{j}]") for j, v in enumerate(distances)]
            has_distances = True
        rows[q] = (ids, distances)
    return _pack(rows, nq, has_distances, metric, max_width, where)


CSV_COLUMNS = ("query", "id", "distance", "rank")


def answers_from_csv(path: str, nq: int, max_width: int | None = None) -> Answers:
    """The CSV layout: one line per answer, columns query,id[,distance] — or any order and
    extra columns when a header line names them (query, id, distance, rank)."""
    try:
        with open(path, newline="") as f:
            lines = [row for row in csv.reader(f) if row and any(c.strip() for c in row)
                     and not row[0].lstrip().startswith("#")]
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a text CSV file") from None
    columns = {"query": 0, "id": 1, "distance": 2}
    first = 1
    if lines and not _is_int(lines[0][0]):
        header = [c.strip().lower() for c in lines[0]]
        columns = {name: header.index(name) for name in CSV_COLUMNS if name in header}
        if "query" not in columns or "id" not in columns:
            raise UsageError(f"{path}: the header must name the columns \"query\" and \"id\"")
        first = 2
        lines = lines[1:]
    elif lines and len(lines[0]) not in (2, 3):
        raise UsageError(f"{path}: line 1: expected query,id[,distance]")
    has_distances = "distance" in columns and any(len(r) > columns["distance"] for r in lines)
    per_query: list[list[tuple[float, int, int, float]]] = [[] for _ in range(nq)]
    for number, row in enumerate(lines, first):
        here = f"{path}: line {number}"
        try:
            q, id_ = int(row[columns["query"]]), int(row[columns["id"]])
        except (IndexError, ValueError):
            raise UsageError(f"{here}: query and id must be integers") from None
        if not 0 <= q < nq:
            raise UsageError(f"{here}: query {q} is not an index of the {nq} queries")
        _id_value(id_, here)
        distance = math.nan
        if has_distances and len(row) > columns["distance"] and row[columns["distance"]].strip():
            try:
                distance = float(row[columns["distance"]])
            except ValueError:
                raise UsageError(f"{here}: distance {row[columns['distance']]!r} is not a number") from None
        rank = float(number)
        if "rank" in columns:
            try:
                rank = float(row[columns["rank"]])
            except (IndexError, ValueError):
                raise UsageError(f"{here}: rank must be a number") from None
        per_query[q].append((rank, number, id_, distance))
    rows = []
    for answers in per_query:
        answers.sort()
        rows.append(([a[2] for a in answers], [a[3] for a in answers]))
    return _pack(rows, nq, has_distances, None, max_width, path)


def _is_int(text: str) -> bool:
    try:
        int(text)
        return True
    except ValueError:
        return False


def answers_from_arrays(ids, distances=None, nq: int | None = None, where: str = "results",
                        distances_where: str = "distances") -> Answers:
    ids = np.asarray(ids)
    if ids.ndim == 1:
        ids = ids.reshape(-1, 1)
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise UsageError(f"{where}: ids must be a 2-D array of integers (one row per query), "
                         f"not {ids.ndim}-D {ids.dtype}")
    if nq is not None and len(ids) != nq:
        raise UsageError(f"{where}: answers for {len(ids)} queries; the query file has {nq}")
    if ids.dtype.kind == "u" and ids.size and int(ids.max()) >= 1 << 63:
        raise UsageError(f"{where}: ids are out of range (ids below 2^63)")
    out = Answers(ids.astype(np.int64))
    if distances is not None:
        distances = np.asarray(distances)
        if distances.ndim == 1:
            distances = distances.reshape(-1, 1)
        if distances.dtype.kind not in "fiu":
            raise UsageError(f"{distances_where}: distances must be numbers, not {distances.dtype}")
        if distances.shape != ids.shape:
            raise UsageError(f"{distances_where}: distances of shape {distances.shape} do not match "
                             f"the ids' {ids.shape}")
        out.distances = distances.astype(np.float64)
    return out


MAX_JSON_DEPTH = 32  # our layout needs 3 levels; deeper is refused before parsing
ANSWER_TEXT_BYTES = 96  # generous bytes of JSON or CSV text per answer
TEXT_SLACK_BYTES = 1 << 16
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _check_size(path: str, limit: int | None, what: str) -> None:
    """Refuse a results file larger than `limit` answers can take, before reading it."""
    if limit is None:
        return
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror}") from None
    if size > limit * ANSWER_TEXT_BYTES + TEXT_SLACK_BYTES:
        raise UsageError(f"{path}: {size} bytes of {what} is more than {limit} answers "
                         "(queries x the file's vector count) can take")


def _json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects (strings left out), without recursion."""
    text = np.frombuffer(_JSON_STRING.sub(b'""', raw), np.uint8)
    steps = np.zeros(len(text), np.int64)
    steps[(text == ord("[")) | (text == ord("{"))] = 1
    steps[(text == ord("]")) | (text == ord("}"))] = -1
    return int(np.cumsum(steps).max()) if len(steps) else 0


def load_answers(path: str, nq: int, *, distances_path: str | None = None,
                 max_width: int | None = None) -> Answers:
    """Read the kernel's answers: .json, .csv, or ids in .ivecs/.npy with, optionally,
    distances in .fvecs/.npy (distances_path). max_width (the file's vector count): a
    query with more answers is refused, and a file with more than queries x max_width
    answers before it is parsed, so that what is read stays proportional to what can be
    scored."""
    max_answers = None if max_width is None else nq * max(max_width, 1)
    ext = os.path.splitext(path)[1].lower()
    if distances_path and ext in (".json", ".csv"):
        raise UsageError(f"{path}: distances come with the ids in a {ext} file; "
                         "--distances goes with .ivecs or .npy ids")
    if ext == ".json":
        _check_size(path, max_answers, "JSON")
        try:
            with open(path, "rb") as f:
                raw = f.read()
            if _json_depth(raw) > MAX_JSON_DEPTH:
                raise UsageError(f"{path}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
            data = json.loads(raw.decode("utf-8"))
        except OSError as e:
            raise UsageError(f"{path}: {e.strerror}") from None
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise UsageError(f"{path}: not valid JSON ({e})") from None
        return _within(answers_from_json(data, nq, path, max_width), max_answers, path)
    if ext == ".csv":
        _check_size(path, max_answers, "CSV")
        return _within(answers_from_csv(path, nq, max_width), max_answers, path)
    if ext in sources.HDF5_EXTENSIONS:
        return _answers_from_hdf5(path, nq, max_answers)
    if ext in (".ivecs", ".npy"):
        ids = sources.load_array(path)
        if max_answers is not None and ids.size > max_answers:
            raise UsageError(f"{path}: {ids.size} answers is more than {max_answers} "
                             "(queries x the file's vector count)")
        distances = None
        if distances_path:
            if os.path.splitext(distances_path)[1].lower() not in (".fvecs", ".npy"):
                raise UsageError(f"{distances_path}: distances must be .fvecs or .npy")
            distances = sources.load_array(distances_path)
        return answers_from_arrays(ids, distances, nq, path, distances_path or "distances")
    raise UsageError(f"{path}: unknown answer format {ext or '(no extension)'!r} "
                     "(use .json, .csv, or .ivecs/.npy ids with --distances .fvecs/.npy)")


def _answers_from_hdf5(path: str, nq: int, limit: int | None) -> Answers:
    """ann-benchmarks' neighbors, and distances when there are (Euclidean ones squared,
    as this section's l2 is); the metric from its "distance" attribute."""
    h5py = sources.h5py_module()
    with h5py.File(path, "r") as f:
        has_distances = "distances" in f
    ids = sources.load_hdf5(path, "neighbors")
    if limit is not None and ids.size > limit:
        raise UsageError(f"{path}: {ids.size} answers is more than {limit} (queries x the file's vector count)")
    metric = sources.hdf5_metric(path)
    distances = None
    if has_distances:
        distances = np.asarray(sources.load_hdf5(path, "distances"), np.float64)
        if metric == "l2":
            distances = distances * distances
    answers = answers_from_arrays(np.asarray(ids), distances, nq, path, f"{path} distances")
    answers.metric = metric
    return answers


def _within(answers: Answers, limit: int | None, path: str) -> Answers:
    if limit is not None and answers.ids.size > limit:
        raise UsageError(f"{path}: answer lists {answers.ids.shape[1]} long for {answers.ids.shape[0]} "
                         f"queries are more than {limit} answers (queries x the file's vector count)")
    return answers


# --- the file's ids ------------------------------------------------------------------------

class IdIndex:
    """The ids -> row mapping of a vector file."""

    def __init__(self, ids: np.ndarray):
        ids = np.asarray(ids).astype(np.uint64)
        self.order = np.argsort(ids, kind="stable")
        self.sorted = ids[self.order]

    def rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found, row) for each id (ids >= 0)."""
        wanted = np.asarray(ids).astype(np.uint64)
        if not len(self.sorted):
            return np.zeros(wanted.shape, bool), np.zeros(wanted.shape, np.int64)
        pos = np.minimum(np.searchsorted(self.sorted, wanted), len(self.sorted) - 1)
        found = self.sorted[pos] == wanted
        return found, self.order[pos]


# --- the report ------------------------------------------------------------------------------

@dataclass
class QueryScore:
    query: int
    answers: int  # not padding, in the whole answer list
    short: bool  # fewer than k answers
    recall: float
    epsilon_recall: float
    relative_distance_error: float | None
    kth_exact_distance: float
    missing_ids: list[int] = field(default_factory=list)
    duplicate_ids: list[int] = field(default_factory=list)
    far_answers: list[dict] = field(default_factory=list)  # scored, not counted: rank, id, true
    distance_mismatches: list[dict] = field(default_factory=list)  # rank (from 1), id, reported, true, error
    distance_mismatch_count: int = 0
    max_distance_error: float | None = None

    def as_json(self) -> dict:
        return {"query": self.query, "answers": self.answers, "short": self.short,
                "recall": self.recall, "epsilon_recall": self.epsilon_recall,
                "relative_distance_error": _finite(self.relative_distance_error),
                "kth_exact_distance": self.kth_exact_distance,
                "missing_ids": self.missing_ids, "duplicate_ids": self.duplicate_ids,
                "far_answers": [{k: _finite(v) for k, v in a.items()} for a in self.far_answers],
                "distance_mismatches": self.distance_mismatch_count,
                "max_distance_error": _finite(self.max_distance_error),
                "wrong_distances": [{k: _finite(v) for k, v in m.items()} for m in self.distance_mismatches]}


def _finite(value):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


@dataclass
class VerifyReport:
    metric: str
    k: int
    epsilon: float
    min_recall: float
    vector_count: int
    distances_reported: bool
    recall: float
    epsilon_recall: float
    relative_distance_error: float | None
    queries: list[QueryScore]
    distances_checked: int = 0  # reported distances compared with true ones
    hints: list[str] = field(default_factory=list)
    path: str = ""

    @property
    def passed(self) -> bool:
        return self.recall >= self.min_recall

    @property
    def missing_ids(self) -> int:
        return sum(len(q.missing_ids) for q in self.queries)

    @property
    def duplicate_ids(self) -> int:
        return sum(len(q.duplicate_ids) for q in self.queries)

    @property
    def short_queries(self) -> int:
        return sum(q.short for q in self.queries)

    @property
    def distance_mismatches(self) -> int:
        return sum(q.distance_mismatch_count for q in self.queries)

    @property
    def max_distance_error(self) -> float | None:
        errors = [q.max_distance_error for q in self.queries if q.max_distance_error is not None]
        return max(errors) if errors else None

    def as_json(self) -> dict:
        return {
            "path": self.path, "metric": self.metric, "k": self.k, "epsilon": self.epsilon,
            "min_recall": self.min_recall, "passed": self.passed, "queries": len(self.queries),
            "vectors": self.vector_count, "distances_reported": self.distances_reported,
            "overall": {
                "recall": self.recall, "epsilon_recall": self.epsilon_recall,
                "relative_distance_error": _finite(self.relative_distance_error),
                "queries_with_full_recall": sum(q.recall >= 1.0 for q in self.queries),
                "distances_checked": self.distances_checked,
                "distance_mismatches": self.distance_mismatches,
                "max_distance_error": _finite(self.max_distance_error),
                "missing_ids": self.missing_ids, "duplicate_ids": self.duplicate_ids,
                "short_queries": self.short_queries,
            },
            "hints": self.hints,
            "per_query": [q.as_json() for q in self.queries],
        }


# --- scoring ---------------------------------------------------------------------------------

def resolve_metric(metric: str | None, element_type: int, default: int, answers: Answers) -> str:
    """The metric scored: --metric, else the answers' own, else the file's default; the
    first two must agree when both are given."""
    if metric is not None:
        check_metric(metric, element_type)
    if metric is not None and answers.metric is not None and metric != answers.metric:
        raise UsageError(f"the answers say metric {answers.metric}; --metric says {metric}")
    return check_metric(metric or answers.metric or METRIC_NAMES[default], element_type)


def resolve_k(k: int | None, answers: Answers, count: int, name: str = "the file") -> int:
    """k: as given, else the width of the answers; never more than the vectors there are
    (recall@k needs the k-th exact distance)."""
    if k is None:
        k = answers.width
        if k == 0:
            raise UsageError("the answers hold no ids; give -k")
    k = check_k(k)
    if k > count:
        raise UsageError(f"k={k} is larger than {name}, which holds {count} vectors")
    return k


@dataclass
class _Judged:
    """Each of the first k answers of every query, judged: (nq, k) arrays, as the module
    docstring names them."""

    ids: np.ndarray  # int64, -1 for padding
    reported: np.ndarray | None  # the reported distances, NaN where none
    missing: np.ndarray  # the file does not hold the id
    duplicate: np.ndarray  # the id was given earlier in the same list
    found: np.ndarray  # the file holds the id (duplicates included)
    true: np.ndarray  # the true distance where found, NaN elsewhere

    @property
    def scored(self) -> np.ndarray:
        return self.found & ~self.duplicate


def _first_k(answers: Answers, nq: int, k: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The first k answers' ids and reported distances, padded to k columns."""
    width = min(k, answers.width)
    ids = np.full((nq, k), -1, np.int64)
    ids[:, :width] = answers.ids[:, :k]
    if answers.distances is None:
        return ids, None
    reported = np.full((nq, k), np.nan)
    reported[:, :width] = answers.distances[:, :k]
    return ids, reported


def _later_occurrences(ids: np.ndarray) -> np.ndarray:
    """True where an id (not padding) was already given earlier in the same row."""
    order = np.argsort(ids, axis=1, kind="stable")
    sorted_ids = np.take_along_axis(ids, order, axis=1)
    again = np.zeros(ids.shape, bool)
    again[:, 1:] = (sorted_ids[:, 1:] == sorted_ids[:, :-1]) & (sorted_ids[:, 1:] >= 0)
    duplicate = np.zeros(ids.shape, bool)
    np.put_along_axis(duplicate, order, again, axis=1)
    return duplicate


def _true_distances(queries: np.ndarray, found: np.ndarray, rows: np.ndarray, metric: str,
                    dimensions: int, fetch: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The float64 distance of each found answer's stored vector to its query, a batch of
    pairs at a time (each stored row fetched once per batch)."""
    true = np.full(found.shape, np.nan)
    query_of, column = np.nonzero(found)
    for start in range(0, len(query_of), PAIRS_PER_BATCH):
        batch_q, batch_c = query_of[start:start + PAIRS_PER_BATCH], column[start:start + PAIRS_PER_BATCH]
        unique, inverse = np.unique(rows[batch_q, batch_c], return_inverse=True)
        stored = np.asarray(fetch(unique))[inverse]
        true[batch_q, batch_c] = pair_distances(queries[batch_q], stored, metric, dimensions)
    return true


def _judge(queries: np.ndarray, answers: Answers, k: int, metric: str, dimensions: int, index: "IdIndex",
           fetch: Callable[[np.ndarray], np.ndarray]) -> _Judged:
    ids, reported = _first_k(answers, len(queries), k)
    given = ids >= 0
    found = np.zeros(ids.shape, bool)
    rows = np.zeros(ids.shape, np.int64)
    found[given], rows[given] = index.rows(ids[given])
    true = _true_distances(queries, found, rows, metric, dimensions, fetch)
    return _Judged(ids, reported, given & ~found, _later_occurrences(ids), found, true)


def _recall_hits(judged: _Judged, kth: np.ndarray, epsilon: float, larger: bool) -> tuple[np.ndarray, np.ndarray]:
    """(counted by recall@k, counted by epsilon-recall): scored answers within ε of the
    k-th exact distance D, and within ε·|D| of it."""
    true, scored = judged.true, judged.scored
    with np.errstate(invalid="ignore"):
        if larger:
            return (scored & (true >= (kth - epsilon)[:, None]),
                    scored & (true >= (kth - epsilon * np.abs(kth))[:, None]))
        return (scored & (true <= (kth + epsilon)[:, None]),
                scored & (true <= (kth + epsilon * np.abs(kth))[:, None]))


def _distance_error_terms(judged: _Judged, exact: np.ndarray, larger: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(numerator, denominator, m) of each query's relative distance error: its m scored
    answers' true distances, nearest first, against the exact m nearest."""
    scored, k = judged.scored, exact.shape[1]
    m = scored.sum(axis=1)
    ranked = np.where(scored, judged.true, np.inf if not larger else -np.inf)
    ranked = -np.sort(-ranked, axis=1) if larger else np.sort(ranked, axis=1)
    take = np.arange(k)[None, :] < m[:, None]
    got_sum = np.where(take, ranked, 0.0).sum(axis=1)
    exact_sum = np.where(take, exact, 0.0).sum(axis=1)
    numerator = exact_sum - got_sum if larger else got_sum - exact_sum
    denominator = np.where(take, np.abs(exact), 0.0).sum(axis=1)
    return numerator, denominator, m


def _reported_errors(judged: _Judged, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """(wrong, error): a reported distance of a found answer is wrong when it is more than
    ε·max(1, |t|) from the true one, or not a number; error is |r - t|."""
    if judged.reported is None:
        return np.zeros(judged.ids.shape, bool), np.full(judged.ids.shape, np.nan)
    with np.errstate(invalid="ignore"):
        error = np.abs(judged.reported - judged.true)
        wrong = judged.found & ~(error <= epsilon * np.maximum(1.0, np.abs(judged.true)))
    return wrong, error


def _query_score(q: int, judged: _Judged, answered: int, k: int, recall: float, epsilon_recall: float,
                 relative_error: float | None, kth: float, hit: np.ndarray, wrong: np.ndarray,
                 error: np.ndarray) -> QueryScore:
    """The report of query q, its lists cut at MAX_LISTED."""
    ids, true = judged.ids[q], judged.true[q]
    result = QueryScore(q, answered, answered < k, recall, epsilon_recall, relative_error, kth)
    if judged.missing[q].any():
        result.missing_ids = ids[judged.missing[q]][:MAX_LISTED].tolist()
    if judged.duplicate[q].any():
        result.duplicate_ids = ids[judged.duplicate[q]][:MAX_LISTED].tolist()
    far = np.flatnonzero(judged.scored[q] & ~hit[q])
    result.far_answers = [{"rank": int(j) + 1, "id": int(ids[j]), "true": float(true[j])} for j in far[:MAX_LISTED]]
    if judged.reported is not None and judged.found[q].any():
        errors = error[q][judged.found[q]]
        finite = errors[np.isfinite(errors)]
        result.max_distance_error = float(finite.max()) if len(finite) else None
        bad = np.flatnonzero(wrong[q])
        result.distance_mismatch_count = len(bad)
        result.distance_mismatches = [
            {"rank": int(j) + 1, "id": int(ids[j]), "reported": float(judged.reported[q, j]),
             "true": float(true[j]), "error": float(error[q, j])} for j in bad[:MAX_LISTED]]
    return result


def score(queries: np.ndarray, answers: Answers, *, k: int, metric: str, epsilon: float,
          exact_distances: np.ndarray, index: IdIndex, fetch: Callable[[np.ndarray], np.ndarray],
          vector_count: int, dimensions: int, min_recall: float = 1.0) -> VerifyReport:
    """Score prepared queries' answers against exact distances (nq, >= k), sorted nearest
    first; `fetch(rows)` returns the stored vectors of those rows."""
    if not epsilon >= 0 or not math.isfinite(epsilon):
        raise UsageError(f"epsilon must be a finite number >= 0, not {epsilon}")
    nq = len(queries)
    if answers.ids.shape[0] != nq:
        raise UsageError(f"answers for {answers.ids.shape[0]} queries; there are {nq} queries")
    larger = metric == "dot"
    judged = _judge(queries, answers, k, metric, dimensions, index, fetch)
    exact = np.asarray(exact_distances, np.float64)[:, :k]
    kth = exact[:, k - 1]
    hit, epsilon_hit = _recall_hits(judged, kth, epsilon, larger)
    recall, epsilon_recall = hit.sum(axis=1) / k, epsilon_hit.sum(axis=1) / k
    numerator, denominator, m = _distance_error_terms(judged, exact, larger)
    wrong, error = _reported_errors(judged, epsilon)
    answered = (answers.ids >= 0).sum(axis=1) if answers.width else np.zeros(nq, np.int64)
    per_query = [_query_score(q, judged, int(answered[q]), k, float(recall[q]), float(epsilon_recall[q]),
                              _ratio(float(numerator[q]), float(denominator[q])) if m[q] else None,
                              float(kth[q]), hit, wrong, error) for q in range(nq)]
    overall_error = _ratio(float(numerator[m > 0].sum()), float(denominator[m > 0].sum())) if (m > 0).any() else None
    report = VerifyReport(metric, k, epsilon, min_recall, vector_count, judged.reported is not None,
                          float(recall.mean()) if nq else 1.0, float(epsilon_recall.mean()) if nq else 1.0,
                          overall_error, per_query)
    if judged.reported is not None:
        found = judged.found
        report.distances_checked = int(found.sum())
        report.hints = _hints(metric, judged.reported[found], judged.true[found], wrong[found], epsilon)
    return report


def _ratio(numerator: float, denominator: float) -> float:
    if denominator > 0:
        return max(numerator, 0.0) / denominator
    return 0.0 if numerator <= 1e-12 else math.inf


def _hints(metric: str, reported: np.ndarray, true: np.ndarray, wrong: np.ndarray,
           epsilon: float) -> list[str]:
    """Guesses at what wrong reported distances are, when all of them are wrong the same way."""
    if not len(reported) or not wrong.all():
        return []

    def close(a, b):
        with np.errstate(invalid="ignore"):
            return bool((np.abs(a - b) <= epsilon * np.maximum(1.0, np.abs(b))).all())

    hints = []
    if np.isnan(reported).all():
        return ["no answer carries a reported distance"]
    if len(reported) > 1 and np.isfinite(reported).all() and (reported == reported[0]).all():
        hints.append(f"every reported distance is {reported[0]:g}: a placeholder, not a distance")
    elif metric == "l2" and close(reported, np.sqrt(np.maximum(true, 0))):
        hints.append("the reported distances are Euclidean distances; l2 here is the SQUARED "
                     "Euclidean distance")
    elif metric == "cosine" and close(reported, 1.0 - true):
        hints.append("the reported distances are cosine similarities; cosine here is 1 - cos")
    elif metric == "dot" and close(reported, -true):
        hints.append("the reported distances are negated inner products; dot here is q·x "
                     "(larger is nearer)")
    return hints


def verify_arrays(queries, vectors, ids, answers: Answers, *, k: int | None = None, metric: str,
                  epsilon: float = DEFAULT_EPSILON, min_recall: float = 1.0,
                  element_type: int = V.ELEMENT_FLOAT32, dimensions: int | None = None) -> VerifyReport:
    """Score `answers` against in-memory vectors (rows; binary: packed bytes) and their ids."""
    vectors = np.asarray(vectors)
    if dimensions is None:
        dimensions = vectors.shape[1] * (8 if element_type == V.ELEMENT_BINARY else 1)
    metric = resolve_metric(metric, element_type, V.METRIC_L2, answers)
    k = resolve_k(k, answers, len(vectors), "the vectors")
    prepared = prepare_queries(queries, dimensions, element_type)
    if len(prepared) != answers.ids.shape[0]:
        raise UsageError(f"answers for {answers.ids.shape[0]} queries; there are {len(prepared)} queries")
    exact = search_arrays(prepared, vectors, np.asarray(ids), k, metric, element_type=element_type,
                          dimensions=dimensions)
    return score(prepared, answers, k=k, metric=metric, epsilon=epsilon,
                 exact_distances=exact.distances, index=IdIndex(ids), fetch=lambda rows: vectors[rows],
                 vector_count=len(vectors), min_recall=min_recall, dimensions=dimensions)


def verify_file(file: VectorFile, queries, answers: Answers, *, k: int | None = None,
                metric: str | None = None, epsilon: float = DEFAULT_EPSILON,
                min_recall: float = 1.0, search: Callable | None = None) -> VerifyReport:
    """Score `answers` against the exact search of one vector file of an image; `search`
    (queries, files, k, metric) -> SearchResult stands in for search_files (--dask)."""
    info = file.info
    name = file.path or "the vector file"
    file.require_intact()
    metric = resolve_metric(metric, info.element_type, info.metric, answers)
    k = resolve_k(k, answers, info.count, name)
    prepared = prepare_queries(queries, info.dimensions, info.element_type)
    if len(prepared) != answers.ids.shape[0]:
        raise UsageError(f"answers for {answers.ids.shape[0]} queries; there are {len(prepared)} queries")
    exact = (search or search_files)(prepared, [file], k, metric)
    vectors = file.vectors()
    report = score(prepared, answers, k=k, metric=metric, epsilon=epsilon,
                   exact_distances=exact.distances, index=IdIndex(file.ids()),
                   fetch=lambda rows: vectors[rows], vector_count=info.count, min_recall=min_recall,
                   dimensions=info.dimensions)
    report.path = file.path
    return report


__all__ = ("Answers", "VerifyReport", "QueryScore", "load_answers", "verify_file", "verify_arrays",
           "answers_from_json", "answers_from_csv", "answers_from_arrays", "IdIndex")
