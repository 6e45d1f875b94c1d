"""DFXML with digests: `vexfs dfxml -q IMG > /dev/null` against `md5sum` and `sha1sum` run
over the same files' bytes (the anchor is both, one after the other: our command reads the
data once for both digests, and writes byte runs and metadata besides).

Workloads: `tree` (--files small files, 0..2 KiB, directories of 1000, as
extract_debugfs.py makes them), `large` (20,000 files of 49..128 KiB, made the same way) and
`big` (--big-mib MiB in files of 64 MiB). The source
tree is kept (warm in the page cache) for the anchor; the image is made from it with
`mkfs.vexfs -d`; ours runs in _common.child_env (Python's bytecode cache kept on).
Printed: every run, the best of each, the ratio ours / (md5sum + sha1sum).

    python benchmarks/dfxml_hash.py [--only big|tree|large] [--files 100000] [--repeat 3] [--dir /dev/shm]
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import alternate, big_and_tree_arguments, child_env, human, report, run_timed, tool  # noqa: E402
from extract_debugfs import LARGE_FILES, LARGE_SIZES, SEED, build_tree  # noqa: E402

CHUNK = 64 << 20


def build_big(root: str, mib: int) -> int:
    os.makedirs(root)
    rng = random.Random(SEED)
    pattern = rng.randbytes(8 << 20)
    for n in range(-(-mib // 64)):
        with open(os.path.join(root, f"big{n:03d}.bin"), "wb") as f:
            for i in range(min(64, mib - n * 64) // 8):
                f.write(pattern[i % 7:] + pattern[:i % 7])
    return mib << 20


def digest_anchor(source: str) -> float:
    """md5sum then sha1sum over every file of the tree (find | xargs, as an examiner would)."""
    start = time.perf_counter()
    for program in ("md5sum", "sha1sum"):
        subprocess.run(f"find . -type f -print0 | xargs -0 {program} > /dev/null", shell=True, cwd=source,
                       check=True)
    return time.perf_counter() - start


def run_case(name: str, source: str, nbytes: int, files: int, repeat: int, work: str) -> float:
    image = os.path.join(work, name.replace(" ", "-") + ".img")
    size = max(256 << 20, nbytes + files * 8192 + (64 << 20)) // 4096 * 4096
    print(f"\n== {name}: {human(nbytes)} in {files} files; image of {human(size)}")
    run_timed([tool("mkfs.vexfs"), "-q", "-N", str(int(files * 1.1) + 1024), "-d", source, "-s", str(size), image],
              env=child_env())
    ours, theirs = alternate(repeat, lambda: run_timed(["sh", "-c", f"{tool('vexfs')} dfxml -q {image} > /dev/null"],
                                                       env=child_env()),
                             lambda: digest_anchor(source))
    ratio = report("vexfs dfxml", ours, "md5sum + sha1sum", theirs)
    os.unlink(image)
    return ratio


def main() -> None:
    args = big_and_tree_arguments(__doc__)
    work = tempfile.mkdtemp(prefix="vexfs-dfxml-bench-", dir=args.dir)
    ratios = {}
    try:
        if args.only in (None, "tree"):
            source = os.path.join(work, "tree-src")
            nbytes = build_tree(source, args.files)
            ratios["tree"] = run_case(f"{args.files} files", source, nbytes, args.files, args.repeat, work)
            shutil.rmtree(source)
        if args.only in (None, "large"):
            source = os.path.join(work, "large-src")
            nbytes = build_tree(source, LARGE_FILES, LARGE_SIZES)
            ratios["large"] = run_case(f"{LARGE_FILES} files of 49-128 KiB", source, nbytes, LARGE_FILES,
                                       args.repeat, work)
            shutil.rmtree(source)
        if args.only in (None, "big"):
            source = os.path.join(work, "big-src")
            nbytes = build_big(source, args.big_mib)
            ratios["big"] = run_case(f"{args.big_mib} MiB", source, nbytes, -(-args.big_mib // 64), args.repeat,
                                     work)
            shutil.rmtree(source)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\nratios (vexfs dfxml / md5sum + sha1sum): " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
