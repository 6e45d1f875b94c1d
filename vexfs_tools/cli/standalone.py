"""Entry points of the standalone tools (mkfs.vexfs, fsck.vexfs, dump.vexfs), which make no
BLAS call: OpenBLAS starts a thread per CPU when numpy is imported, which costs every run
start-up CPU time for nothing, so it is told to start one before the tool (and numpy) is
imported. A value the user set is kept. `vexfs` (whose search does use BLAS, a worker per
CPU) does so only for the commands that read an image in bulk (BULK_READERS).

fsck and dump, run over and over by scripts and at boot, also leave without the interpreter's
teardown (see _leave). Every tool here imports its modules with the cyclic garbage collector
paused (see _tool_main)."""

from __future__ import annotations

import gc
import importlib
import os
import sys
from collections.abc import Callable
from typing import NoReturn


def _one_blas_thread() -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _tool_main(module: str) -> Callable[[], object]:
    """The `main` of cli/`module`, imported (numpy, construct, click and ours) with the
    cyclic collector paused. Importing allocates thousands of objects that all live on
    (modules, functions, classes), so the fifty-odd collections it would trigger free
    nothing and cost a tenth of a check of a small image. Afterwards the collector runs
    again, over what the tool allocates, with what the imports made frozen out of its
    sweeps."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return importlib.import_module(f"{__package__}.{module}").main
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def mkfs() -> int | None:
    _one_blas_thread()
    return _tool_main("mkfs")()  # type: ignore[return-value]


def fsck() -> NoReturn:
    _one_blas_thread()
    _leave(_tool_main("fsck"))


def dump() -> NoReturn:
    _one_blas_thread()
    _leave(_tool_main("dump"))


# `vexfs extract` and `vexfs dfxml` read an image in bulk and make no BLAS call; they close
# their image and files before returning and start no pool or atexit hook (after an extract
# of 100,000 files the teardown alone is 0.1 s). Every other command (the mount, Dask search)
# starts as before.
BULK_READERS = frozenset({"extract", "dfxml"})


def vexfs() -> None:
    """`vexfs`: its imports with the collector paused; the bulk readers also with one BLAS
    thread and the quick exit of fsck and dump."""
    bulk = sys.argv[1:2] and sys.argv[1] in BULK_READERS
    if bulk:
        _one_blas_thread()
    main = _tool_main("main")
    if bulk:
        _leave(main)
    main()


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
