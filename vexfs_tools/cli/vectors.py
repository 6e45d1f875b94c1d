"""`vexfs vectors add|export|ls`, `vexfs search` and `vexfs verify`: vector files offline."""

from __future__ import annotations

import json
import math
import os
import sys

import click
import numpy as np

from ..errors import UsageError
from ..vectors import manage, sources
from ..vectors.distributed import search_dask
from ..vectors.search import search_files
from ..vectors.verify import DEFAULT_EPSILON, VerifyReport, load_answers, verify_file
from ..volume.volume import Volume
from .common import handle_errors
from .dump import open_readonly
from .output import print_json

SETTINGS = {"help_option_names": ["-h", "--help"]}
METRICS = click.Choice(["l2", "cosine", "dot", "hamming"])
USAGE = 2  # bad input: the same code as click's own usage errors


# --- vexfs vectors ---------------------------------------------------------------------------

@click.group("vectors", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs vectors add disk.img /emb/base.vec --from base.fvecs
  vexfs vectors add disk.img /emb/base.vec --from more.npy --append
  vexfs vectors ls disk.img
  vexfs vectors export disk.img /emb/base.vec -o base.npy --ids ids.npy
""")
def vectors_group():
    """Add, list and export the vector files of an image (docs/FORMAT.md section 9)."""


@vectors_group.command("add", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs vectors add disk.img /emb/base.vec --from base.fvecs
  vexfs vectors add disk.img /emb/docs.vec --from docs.npy --ids docs.ids.npy --metric cosine
  vexfs vectors add disk.img /emb/base.vec --from more.npy --append
  vexfs vectors add disk.img /emb/glove.vec --from glove-100-angular.hdf5
\b
A bool .npy becomes binary vectors (metric hamming); float16 and int8 stay as they are; other
numbers become float32. NaN and infinite components are refused, naming the first such row.
Without --ids the ids are 0 ... n-1 (appended rows: after the largest id). Exit codes: 0 done,
1 error (e.g. a mounted device, no space), 2 bad input. An ann-benchmarks .hdf5 gives its
train dataset (or --dataset NAME) and its metric (euclidean: l2, angular: cosine); h5py is
the optional extra 'vexfs-tools[hdf5]'.
""")
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("path")
@click.option("--from", "source", required=True, type=click.Path(dir_okay=False),
              help="Host vectors: .npy, .fvecs, .bvecs, .ivecs or .hdf5.")
@click.option("--dataset", default="train", show_default=True, help="The dataset of an HDF5 --from.")
@click.option("--ids", "ids_path", type=click.Path(dir_okay=False),
              help="Their ids (.npy or .ivecs, unique, one per vector).")
@click.option("--metric", type=METRICS, help="The file's default metric (l2; hamming for binary).")
@click.option("--append", is_flag=True, help="Add the vectors to the existing vector file PATH.")
@handle_errors(error_code=1, usage_code=USAGE)
def add_command(image, path, source, ids_path, metric, append, dataset):
    """Store the vectors of a host file as the vector file PATH of IMAGE (offline)."""
    with Volume.open(image, writable=True) as volume:
        before = 0
        if append:
            try:
                before = manage.open_vector_file(volume, path).info.count
            except (UsageError, FileNotFoundError):
                before = 0
        file = manage.add_from_file(volume, path, source, ids_path=ids_path, metric=metric, append=append,
                                    dataset=dataset)
        info = file.info
    shape = (f"{info.dimensions}-dimensional {info.element_name} vectors, metric {info.metric_name}, "
             f"inode {file.inode.ino}")
    if append and before:
        click.echo(f"{path}: added {info.count - before} vectors, {info.count} now ({shape})")
    else:
        click.echo(f"{path}: {info.count} {shape}")


@vectors_group.command("export", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs vectors export disk.img /emb/base.vec -o base.npy
  vexfs vectors export disk.img /emb/base.vec -o base.fvecs --ids base.ids.ivecs
\b
.npy keeps the element type (binary vectors become bool rows); .fvecs is float32; .bvecs
takes only components that are integers 0..255. The image is opened read-only.
""")
@click.argument("image", type=click.Path(dir_okay=True))
@click.argument("path")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="OUT.npy, OUT.fvecs or OUT.bvecs.")
@click.option("--ids", "ids_out", type=click.Path(dir_okay=False), help="Also write the ids (.npy or .ivecs).")
@handle_errors(error_code=1, usage_code=USAGE)
def export_command(image, path, output, ids_out):
    """Write the vectors of the vector file PATH of IMAGE to a host file."""
    with open_readonly(image) as volume:
        count = manage.export(manage.open_vector_file(volume, path), output, ids_out=ids_out)
    click.echo(f"wrote {count} vectors to {output}" + (f", their ids to {ids_out}" if ids_out else ""))


@vectors_group.command("ls", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs vectors ls disk.img
  vexfs vectors ls --json disk.img
\b
CHECKSUMS is "ok" when every data chunk and the id array match their crc32c. Exit code 0
even when some do not (use fsck.vexfs to act on it).
""")
@click.argument("image", type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors(error_code=1, usage_code=USAGE)
def ls_vectors_command(image, as_json):
    """List every vector file of IMAGE: shape, element type, metric, checksums."""
    with open_readonly(image) as volume:
        entries = manage.describe(volume)
    if as_json:
        print_json(entries)
        return
    print_vector_table(entries)


def print_vector_table(entries: list[dict], indent: str = "") -> None:
    """The table of `vexfs vectors ls`."""
    if not entries:
        click.echo(f"{indent}no vector files")
        return
    width = max(4, *(len(e["path"]) for e in entries))
    click.echo(f"{indent}{'PATH':<{width}}  {'DIMS':>6}  {'TYPE':<7}  {'COUNT':>10}  {'SIZE':>12}  "
               f"{'METRIC':<7}  CHECKSUMS")
    for e in entries:
        if "error" in e:
            click.echo(f"{indent}{e['path']:<{width}}  {'?':>6}  {'?':<7}  {'?':>10}  {e['size']:>12}  "
                       f"{'?':<7}  BAD ({e['error']})")
            continue
        status = e["checksums"]
        if status != "ok":
            parts = [f"chunk {', '.join(map(str, e['bad_chunks']))}"] if e["bad_chunks"] else []
            parts += [] if e["ids_checksum_ok"] else ["ids"]
            status = "BAD (" + "; ".join(parts) + ")"
        click.echo(f"{indent}{e['path']:<{width}}  {e['dimensions']:>6}  {e['element_type']:<7}  "
                   f"{e['count']:>10}  {e['size']:>12}  {e['metric']:<7}  {status}")


# --- vexfs search ----------------------------------------------------------------------------

def search_json(result, paths: list[str]) -> dict:
    """The --json layout of `vexfs search` (docs/FORMAT.md, "Scoring answers")."""
    out = {"metric": result.metric, "k": result.k}
    if len(paths) > 1:
        out["files"] = paths
    results = []
    for q in range(len(result.ids)):
        keep = result.sources[q] >= 0  # ids above 2^63 - 1 come back negative: view them as u64
        item = {"query": q, "ids": [int(i) for i in result.ids[q][keep].view(np.uint64)],
                "distances": [float(d) for d in result.distances[q][keep]]}
        if len(paths) > 1:
            item["files"] = [paths[s] for s in result.sources[q][keep]]
        results.append(item)
    out["results"] = results
    return out


def print_search(result, paths: list[str], *, indent: str = "") -> None:
    """Human output of `vexfs search`: one block per query, nearest first."""
    many = len(paths) > 1
    for q in range(len(result.ids)):
        answered = int((result.sources[q] >= 0).sum())
        ids = result.ids[q].view(np.uint64)  # ids above 2^63 - 1 come back negative
        click.echo(f"{indent}query {q}:" + ("" if answered else " no answers"))
        if answered:
            label = f"{result.metric} distance"
            click.echo(f"{indent}  {'rank':>4}  {'id':>12}  " + (f"{label:<16}  file" if many else label))
        for rank in range(answered):
            source = paths[result.sources[q, rank]] if many else ""
            click.echo(f"{indent}  {rank + 1:>4}  {int(ids[rank]):>12}  "
                       f"{float(result.distances[q, rank]):<16.9g}  {source}".rstrip())


def print_compact_json(data: dict, list_key: str) -> None:
    """JSON with the items of data[list_key] one to a line (thousands of answers stay
    readable); other keys as print_json puts them."""
    items = data[list_key]
    head = json.dumps({key: value for key, value in data.items() if key != list_key}, indent=2)
    body = ",\n".join("    " + json.dumps(item) for item in items)
    lines = head[:-2] + ("," if len(data) > 1 else "") + f'\n  "{list_key}": [' + \
        (f"\n{body}\n  ]" if items else "]") + "\n}"
    click.echo(lines if len(data) > 1 else "{" + lines[lines.index("\n"):])


@click.command("search", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs search disk.img /emb/base.vec --query queries.fvecs -k 10
  vexfs search disk.img --vector "0.1,0.2,0.3,0.4" -k 3          every vector file
  vexfs search disk.img /emb/base.vec --query q.npy -k 100 --save-groundtruth gt
  vexfs search disk.img /emb/base.vec --query q.npy -k 10 --json > answers.json
  vexfs search disk.img /emb/base.vec --query q.npy -k 10 --skip-damaged
  vexfs search /shared/disk.img /emb/base.vec --query q.npy -k 10 --dask tcp://10.0.0.5:8786
  vexfs search disk.img /emb/glove.vec --query glove.hdf5 -k 100 --groundtruth gt.hdf5
\b
Exact search (FORMAT.md section 9): l2 is the SQUARED Euclidean distance, cosine 1 - cos,
dot the inner product (larger is nearer), hamming the differing bits; ties go to the smaller
id. --save-groundtruth writes PREFIX.ivecs (ids) and PREFIX.fvecs (distances), the TEXMEX /
ann-benchmarks ground truth, -1 / NaN where fewer than k. The image is opened read-only.
--groundtruth OUT.hdf5 writes ann-benchmarks' layout (train, test, neighbors, distances,
attribute distance; l2 distances there are Euclidean, not squared, as ann-benchmarks keeps
them). An .hdf5 --query gives its test dataset.
--dask ADDRESS splits the files into chunk-aligned row ranges searched by the workers of a
dask.distributed scheduler (which open IMAGE read-only: its path must be visible to them);
the answers are the local ones exactly. Dask is the optional extra 'vexfs-tools[dask]'.
A file whose chunks do not match their checksums is refused, naming the chunk and its
rows; --skip-damaged searches its other rows instead (the ids must be intact).
Exit codes: 0 done, 1 error, 2 bad input.
""")
@click.argument("image", type=click.Path(dir_okay=True))
@click.argument("paths", nargs=-1)
@click.option("--query", "query_path", type=click.Path(dir_okay=False),
              help="Queries: .npy, .fvecs or .bvecs, one per row.")
@click.option("--vector", help="One query, as comma-separated components (binary: 0s and 1s).")
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True, help="Neighbours per query.")
@click.option("--metric", type=METRICS, help="Default: the files' own metric.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--save-groundtruth", "groundtruth", metavar="PREFIX",
              help="Write PREFIX.ivecs and PREFIX.fvecs (one vector file only).")
@click.option("--groundtruth", "hdf5_out", type=click.Path(dir_okay=False),
              help="Write OUT.hdf5 in ann-benchmarks' layout (one vector file only).")
@click.option("--dask", "dask_address", metavar="ADDRESS",
              help="Run on the Dask scheduler ADDRESS (tcp://HOST:8786); workers must see IMAGE.")
@click.option("--skip-damaged", is_flag=True,
              help="Search a file with damaged chunks over its other rows (default: refuse it).")
@handle_errors(error_code=1, usage_code=USAGE)
def search_command(image, paths, query_path, vector, k, metric, as_json, groundtruth, hdf5_out, dask_address,
                   skip_damaged):
    """Exact k-nearest-neighbour search of vector files of IMAGE.

    Searches the vector files PATH..., or all of them when no PATH is given."""
    queries = manage.load_queries(query_path, vector)
    with open_readonly(image) as volume:
        files = manage.open_vector_files(volume, paths)
        if groundtruth and len(files) > 1:
            raise UsageError("--save-groundtruth needs exactly one vector file (ids are per file)")
        if hdf5_out and len(files) > 1:
            raise UsageError("--groundtruth needs exactly one vector file (ids are per file)")
        if hdf5_out:
            sources.h5py_module()  # say what to install before searching
            if k > files[0].info.count:
                raise UsageError(f"--groundtruth: -k {k} is more than the {files[0].info.count} vectors "
                                 f"of {files[0].path}")
        if groundtruth and k >= 1 << 31:
            raise UsageError(f"-k {k}: .ivecs ground truth rows hold fewer than 2^31 ids")
        # k past the vectors there are adds only padding: search for as many as there are,
        # so that memory follows the data, not -k.
        width = min(k, max(1, sum(f.info.count for f in files)))
        if dask_address:
            result = search_dask(dask_address, os.path.abspath(image), files, queries, width, metric,
                                 skip_damaged=skip_damaged)
        else:
            result = search_files(queries, files, width, metric, skip_damaged=skip_damaged)
        result.k = k
        if hdf5_out:
            write_hdf5(hdf5_out, files[0], queries, result, k)
        for f in files:
            if f.skipped:
                rows = ", ".join(f"{first}-{last}" for first, last in f.skipped)
                click.echo(f"vexfs: warning: {f.path}: rows {rows} left out (damaged chunks: checksum does "
                           "not match)", err=True)
    names = [f.path for f in files]
    if groundtruth:
        written = manage.save_groundtruth(groundtruth, result.ids, result.distances, width=k)
    if as_json:
        print_compact_json(search_json(result, names), "results")
    else:
        print_search(result, names)
    if groundtruth:
        click.echo(f"ground truth written to {written[0]} and {written[1]}", err=as_json)


def write_hdf5(path: str, file, queries, result, k: int) -> None:
    """--groundtruth: ann-benchmarks' file (train, test, neighbors, distances)."""
    ids, distances = result.ids, result.distances
    info = file.info
    train = (file.iter_rows(max(1, (32 << 20) // max(info.row_bytes, 1))), info.count,
             file.shape()[1], info.numpy_type)
    sources.write_hdf5_groundtruth(path, queries, ids, distances, result.metric, train)
    click.echo(f"ground truth written to {path}", err=True)


# --- vexfs verify ----------------------------------------------------------------------------

def _num(value, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def verify_lines(report: VerifyReport, *, verbose: bool = False, limit: int = 20) -> list[str]:
    """The human summary of `vexfs verify`."""
    k, n = report.k, len(report.queries)
    full = sum(q.recall >= 1.0 for q in report.queries)
    lines = [f"{report.path or 'vectors'}: {n} queries, k={k}, metric {report.metric}, "
             f"epsilon {report.epsilon:g}, {report.vector_count} vectors",
             f"  {'recall@' + str(k):<24} {_num(report.recall)}   ({full} of {n} queries with every answer right)",
             f"  {'epsilon-recall':<24} {_num(report.epsilon_recall)}",
             f"  relative distance error  {_num(report.relative_distance_error, 6)}"]
    if report.distances_reported:
        lines.append(f"  reported distances       {report.distance_mismatches} of {report.distances_checked} wrong"
                     + (f" (largest error {report.max_distance_error:.6g})"
                        if report.distance_mismatches and report.max_distance_error is not None else ""))
    else:
        lines.append("  reported distances       none given (not checked)")
    lines += [f"  ids not in the file      {report.missing_ids}",
              f"  duplicate ids            {report.duplicate_ids}",
              f"  short answer lists       {report.short_queries} (queries with fewer than {k} answers)"]
    problems = [q for q in report.queries if verbose or q.recall < 1.0 or q.missing_ids or q.duplicate_ids
                or q.short or q.distance_mismatch_count]
    if problems:
        lines.append("Per query:" if verbose else "Queries with problems:")
    for q in problems[:None if verbose else limit]:
        parts = [f"recall {q.recall:.4f}", f"epsilon-recall {q.epsilon_recall:.4f}",
                 f"relative error {_num(q.relative_distance_error, 6)}"]
        if q.short:
            parts.append(f"only {q.answers} answers")
        if q.far_answers:
            parts.append("too far: " + ", ".join(f"rank {a['rank']} id {a['id']} at {a['true']:.7g}"
                                                 for a in q.far_answers[:3])
                         + (" ..." if len(q.far_answers) > 3 else "")
                         + f" (k-th exact {q.kth_exact_distance:.7g})")
        if q.missing_ids:
            parts.append("not in the file: " + " ".join(map(str, q.missing_ids[:10]))
                         + (" ..." if len(q.missing_ids) > 10 else ""))
        if q.duplicate_ids:
            parts.append("duplicates: " + " ".join(map(str, q.duplicate_ids[:10]))
                         + (" ..." if len(q.duplicate_ids) > 10 else ""))
        for m in q.distance_mismatches[:3]:
            parts.append(f"rank {m['rank']} id {m['id']} reported {m['reported']:.7g}, true {m['true']:.7g}")
        if q.distance_mismatch_count > 3:
            parts.append(f"{q.distance_mismatch_count - 3} more wrong distances")
        lines.append(f"  query {q.query}: " + "; ".join(parts))
    if not verbose and len(problems) > limit:
        lines.append(f"  ... {len(problems) - limit} more (-v lists every query)")
    lines += [f"hint: {hint}" for hint in report.hints]
    relation = ">=" if report.passed else "<"
    lines.append(f"{'PASS' if report.passed else 'FAIL'}: recall {report.recall:.4f} {relation} "
                 f"--min-recall {report.min_recall:g}")
    return lines


@click.command("verify", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs verify disk.img /emb/base.vec --queries q.fvecs --results kernel.json
  vexfs verify disk.img /emb/base.vec --queries q.npy --results ids.ivecs --distances d.fvecs -k 10
  vexfs verify disk.img /emb/base.vec --queries q.npy --results answers.csv --min-recall 0.95 --json
  vexfs verify disk.img /emb/glove.vec --queries glove.hdf5 --results glove.hdf5
  vexfs verify /shared/disk.img /emb/base.vec --queries q.npy --results r.json --dask tcp://10.0.0.5:8786
\b
RESULTS: .json ({"results": [{"query": 0, "ids": [...], "distances": [...]}, ...]}, what
vexfs search --json prints), .csv (query,id[,distance] a line), or .ivecs/.npy ids (a row per
query, -1 for no answer) with --distances .fvecs/.npy, or an ann-benchmarks .hdf5 (neighbors,
distances; --queries .hdf5 gives its test). --dask ADDRESS runs the exact search on a Dask
scheduler, as vexfs search --dask. Every definition (recall@k as
ann-benchmarks, epsilon-recall, relative distance error, wrong distances) is in
docs/FORMAT.md, "Scoring answers: vexfs verify". The image is opened read-only.
Exit codes: 0 recall >= --min-recall, 1 below it, 2 bad input or an unreadable image.
""")
@click.argument("image", type=click.Path(dir_okay=True))
@click.argument("path")
@click.option("--queries", "queries_path", required=True, type=click.Path(dir_okay=False),
              help="The queries the kernel answered: .npy, .fvecs or .bvecs.")
@click.option("--results", "results_path", required=True, type=click.Path(dir_okay=False),
              help="What the kernel returned: .json, .csv, or .ivecs/.npy ids.")
@click.option("--distances", "distances_path", type=click.Path(dir_okay=False),
              help="The distances the kernel reported, with .ivecs/.npy ids: .fvecs or .npy.")
@click.option("-k", "k", type=int, help="Answers scored per query (default: as many as RESULTS holds).")
@click.option("--metric", type=METRICS, help="Default: RESULTS' \"metric\", else the file's own.")
@click.option("--epsilon", type=float, default=DEFAULT_EPSILON, show_default=True,
              help="Distance tolerance (recall@k, epsilon-recall, reported distances).")
@click.option("--min-recall", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Exit 1 when the overall recall is below this.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-v", "verbose", is_flag=True, help="List every query, not only those with problems.")
@click.option("--dask", "dask_address", metavar="ADDRESS", help="Run the exact search on a Dask scheduler.")
@handle_errors(error_code=USAGE, usage_code=USAGE)
def verify_command(image, path, queries_path, results_path, distances_path, k, metric, epsilon,
                   min_recall, as_json, verbose, dask_address):
    """Score a kernel's search answers against an exact search.

    The answers are those given for QUERIES on the vector file PATH of IMAGE; the report has
    recall@k, epsilon-recall, distance errors, missing and duplicate ids, short answers."""
    queries = manage.load_queries(queries_path)
    with open_readonly(image) as volume:
        file = manage.open_vector_file(volume, path)
        answers = load_answers(results_path, len(queries), distances_path=distances_path,
                               max_width=file.info.count)
        search = None
        if dask_address:
            def search(q, files, k, metric):
                return search_dask(dask_address, os.path.abspath(image), files, q, k, metric)
        report = verify_file(file, queries, answers, k=k, metric=metric, epsilon=epsilon,
                             min_recall=min_recall, search=search)
    if as_json:
        print_compact_json(report.as_json(), "per_query")
    else:
        click.echo("\n".join(verify_lines(report, verbose=verbose)))
    sys.exit(0 if report.passed else 1)
