"""`vexfs demo`: the whole story on a built-in sample, in a temporary folder."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile

import click
import numpy as np

from ..check.run import run_check
from ..demo import (VECTOR_FILE, VECTOR_SOURCE, imperfect_answers, lose_directory_block, md5_of_host_file,
                    sample_queries, write_sample_tree)
from ..errors import LimitError
from ..inspect.summary import summary
from ..inspect.walk import walk_tree
from ..mkfs.plan import MkfsOptions
from ..mkfs.run import run_mkfs
from ..vectors.manage import describe as describe_vector_files
from ..vectors.manage import open_vector_file
from ..vectors.search import search_files
from ..vectors.verify import answers_from_json, verify_file
from ..volume.geometry import KERNEL
from ..volume.volume import Volume
from .common import handle_errors
from .dump import print_summary
from .fsck import summary_lines
from .vectors import print_search, print_vector_table, search_json, verify_lines


def _step(title: str) -> None:
    click.echo(f"\n=== {title}")


def verify_copy(image: str, source: str, files: list[str]) -> int:
    """Compare every sample file, read back through the library, with its source."""
    with Volume.open(image) as volume:
        found = {}
        for path, inode in walk_tree(volume):
            if inode.is_reg:
                digest = hashlib.md5()
                for chunk in volume.read_file(inode):
                    digest.update(chunk)
                found[os.fsdecode(path).lstrip("/")] = digest.hexdigest()
    bad = [rel for rel in files if found.get(rel) != md5_of_host_file(os.path.join(source, rel))]
    if bad:
        raise click.ClickException(f"read back differs for: {', '.join(bad)}")
    return len(files)


def show_vectors(folder: str, image: str) -> bool:
    """The vector story: mkfs -d made a vector file; search it; score a kernel's (made-up,
    imperfect) answers. True when verify caught exactly what was planted."""
    _step(f"vexfs vectors ls {image}")
    click.echo(f"mkfs -d turned {VECTOR_SOURCE} into the vector file {VECTOR_FILE} "
               "(ids from data/embeddings.ids.npy):")
    with Volume.open(image) as volume:
        print_vector_table(describe_vector_files(volume), indent="  ")
    queries = sample_queries(3)
    queries_path = os.path.join(folder, "queries.npy")
    np.save(queries_path, queries)
    k = 5
    _step(f"vexfs search {image} {VECTOR_FILE} --query {queries_path} -k {k}")
    with Volume.open(image) as volume:
        result = search_files(queries, [open_vector_file(volume, VECTOR_FILE)], k)
    print_search(result, [VECTOR_FILE], indent="  ")
    answers = imperfect_answers(search_json(result, [VECTOR_FILE]), queries)
    answers_path = os.path.join(folder, "kernel-answers.json")
    with open(answers_path, "w") as f:
        json.dump(answers, f, indent=1)
    _step(f"vexfs verify {image} {VECTOR_FILE} --queries {queries_path} --results {answers_path}")
    click.echo(f"{answers_path} plays a kernel's answers: the exact ones, except query 1's last id "
               "(a far vector) and query 2's second distance (a placeholder 0)")
    with Volume.open(image) as volume:
        report = verify_file(open_vector_file(volume, VECTOR_FILE), queries,
                             answers_from_json(answers, len(queries), answers_path))
    click.echo("\n".join("  " + line for line in verify_lines(report)))
    caught = (not report.passed and report.distance_mismatches == 1
              and [q.recall < 1 for q in report.queries] == [False, True, False])
    click.echo(f"  exit code {0 if report.passed else 1}: " + ("both planted errors caught" if caught
                                                                else "NOT what was planted"))
    return caught


@click.command("demo", context_settings={"help_option_names": ["-h", "--help"]}, epilog="""\b
Examples:
  vexfs demo                     in a temporary folder, removed afterwards
  vexfs demo --keep demo-out     keep the images and trees in demo-out/
""")
@click.option("--keep", type=click.Path(file_okay=False), help="Work in this folder and keep it.")
@handle_errors(error_code=1)
def demo_command(keep):
    """Build a sample image from a built-in tree, check it, and show what the tools see."""
    folder = keep or tempfile.mkdtemp(prefix="vexfs-demo-")
    os.makedirs(folder, exist_ok=True)
    source = os.path.join(folder, "tree")
    image = os.path.join(folder, "demo.img")
    if os.path.exists(source):
        raise click.ClickException(f"{source} exists already; give an empty --keep folder")
    files = write_sample_tree(source)
    click.echo(f"Sample tree written to {source} ({len(files)} files, a symlink, nested folders, "
               "a vector source)")

    _step(f"mkfs.vexfs -d {source} -s 16M {image}")
    result = run_mkfs(image, MkfsOptions(root_directory=source), size=16 << 20)
    click.echo(f"{result.plan.geometry.blocks_count} blocks, {result.plan.geometry.inodes_count} inodes, "
               f"features: {' '.join(result.plan.features.names())}; {result.inodes_written} inodes copied")

    _step(f"fsck.vexfs -n {image}")
    check = run_check(image, "no", emit=click.echo)
    click.echo("\n".join(summary_lines(image, check)))

    _step(f"dump.vexfs {image}")
    with Volume.open(image, ignore_checksums=True) as volume:
        print_summary(summary(volume))

    _step(f"vexfs ls -l {image} /  (and every path below)")
    with Volume.open(image) as volume:
        for path, inode in walk_tree(volume):
            kind = "d" if inode.is_dir else "l" if inode.is_symlink else "-"
            click.echo(f"  {kind} {inode.i_size:>8}  {os.fsdecode(path)}")

    _step("read every file back and compare with the source")
    click.echo(f"{verify_copy(image, source, files)} files byte-identical")

    vectors_ok = show_vectors(folder, image)

    kernel_image = os.path.join(folder, "kernel.img")
    _step(f"mkfs.vexfs --compat kernel -d {source} -s 16M {kernel_image}")
    try:
        run_mkfs(kernel_image, MkfsOptions(layout=KERNEL, root_directory=source), size=16 << 20)
    except LimitError as e:
        click.echo(f"refused, as it should be: {e}")
    small = os.path.join(folder, "kernel-tree")
    small_files = write_sample_tree(small, kernel_compatible=True)
    run_mkfs(kernel_image, MkfsOptions(layout=KERNEL, root_directory=small), size=16 << 20)
    click.echo(f"without the large file: {verify_copy(kernel_image, small, small_files)} files "
               "byte-identical in the kernel's own layout")
    _step("the kernel's mkdir bug, and fsck.vexfs -y repairing it")
    ino = lose_directory_block(kernel_image, "/docs")
    click.echo(f"/docs (inode {ino}) lost its block pointer, as the 2.0 kernel leaves every mkdir'd "
               "directory; its files are unreachable:")
    damaged = run_check(kernel_image, "no", emit=lambda line: click.echo("  " + line))
    click.echo(f"  fsck.vexfs -n exit code {damaged.exit_code}")
    repaired = run_check(kernel_image, "yes", emit=lambda line: click.echo("  " + line))
    click.echo(f"  fsck.vexfs -y exit code {repaired.exit_code}")
    click.echo(f"after the repair: {verify_copy(kernel_image, small, small_files)} files byte-identical "
               "at their original paths")
    kernel_check = run_check(kernel_image, "no")

    click.echo(f"\nDemo finished in {folder}" + ("" if keep else " (a temporary folder)"))
    if check.exit_code or kernel_check.exit_code or not vectors_ok:
        sys.exit(1)
