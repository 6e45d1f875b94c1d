"""Entry points of the standalone tools (mkfs.vexfs, fsck.vexfs, dump.vexfs), which make no
BLAS call: OpenBLAS starts a thread per CPU when numpy is imported, which costs every run
start-up CPU time for nothing, so it is told to start one before the tool (and numpy) is
imported. A value the user set is kept. `vexfs` (whose search does use BLAS, a worker per
CPU) is not started through here."""

from __future__ import annotations

import os


def _one_blas_thread() -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def mkfs() -> int | None:
    _one_blas_thread()
    from .mkfs import main

    return main()


def fsck() -> int | None:
    _one_blas_thread()
    from .fsck import main

    return main()


def dump() -> int | None:
    _one_blas_thread()
    from .dump import main

    return main()
