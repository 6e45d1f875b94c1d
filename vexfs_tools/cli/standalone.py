"""Entry points of the standalone tools (mkfs.vexfs, fsck.vexfs, dump.vexfs), which make no
BLAS call: OpenBLAS starts a thread per CPU when numpy is imported, which costs every run
start-up CPU time for nothing, so it is told to start one before the tool (and numpy) is
imported. A value the user set is kept. `vexfs` (whose search does use BLAS, a worker per
CPU) is not started through here.

fsck and dump, run over and over by scripts and at boot, also leave without the interpreter's
teardown (see _leave)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn


def _one_blas_thread() -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def mkfs() -> int | None:
    _one_blas_thread()
    from .mkfs import main

    return main()


def fsck() -> NoReturn:
    _one_blas_thread()
    from .fsck import main

    _leave(main)


def dump() -> NoReturn:
    _one_blas_thread()
    from .dump import main

    _leave(main)


def _leave(main: Callable[[], object]) -> NoReturn:
    """Run `main`, then exit at once with its status, as a C tool's exit() does: the
    interpreter's teardown frees every object numpy, construct, click and the check made,
    tens of milliseconds that a check of a small image would otherwise spend on nothing.
    Nothing is lost by it: the tools close their devices and files before they return or
    exit (writes are pwrite and fsync; an undo file fsyncs each batch of records), and both
    streams are flushed here."""
    try:
        main()
        code: object = 0
    except SystemExit as stop:
        code = stop.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)  # what SystemExit("message") prints
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe, or a stream already closed
            pass
    os._exit(code or 0)
