"""The writer threads of `vexfs extract` (inspect/extract.py): batches of plain files, whose
names and inodes the walk has claimed, written in their directories while the walk reads
the next ones. The system calls of 100,000 small files (open, write, utime, close) are most
of an extraction, and each releases the GIL."""

from __future__ import annotations

import os
import queue
import threading
from typing import Protocol

from .recovery import Entry

WRITERS = 2  # threads writing batches of plain files
IN_FLIGHT = 4  # batches queued for the writers at most: memory and open directories stay bounded
O_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class _Folder(Protocol):
    fd: int


class Batch:
    """Plain files of one directory that the walk vouched for and whose names and inodes
    it claimed (Extractor._claim): written by a writer thread, settled by the walk's."""

    def __init__(self, parent: _Folder, path: bytes, plains: list[tuple[Entry, tuple]], image: memoryview):
        self.parent, self.path, self.plains, self.image = parent, path, plains, image
        self.done = threading.Event()
        self.result: tuple[int, int, list[int], list[tuple[int, str]]] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = write_batch(self.parent.fd, self.image, self.plains)
        except BaseException as e:  # handed to the walk's thread, which raises it
            self.error = e
        finally:
            self.done.set()


class Writers:
    """Threads that write batches while the walk reads the next directories: the system
    calls of 100,000 small files (open, write, utime, close) are most of an extraction,
    and they run in parallel in different directories. The queue is bounded."""

    def __init__(self, count: int):
        self.jobs: queue.Queue[Batch | None] = queue.Queue(IN_FLIGHT)
        self.threads = [threading.Thread(target=self._run, name=f"extract-writer-{n}", daemon=True)
                        for n in range(count)]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        while (batch := self.jobs.get()) is not None:
            batch.run()

    def stop(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join()


def write_plain(fd: int, image: memoryview, size: int, start, atime: int, mtime: int) -> int:
    """A plain file's data from the image map into `fd` (`start`: its offset in the map, or
    its (offset, length) runs), then its times; the bytes written. OSError on failure."""
    if size:
        if start.__class__ is int:
            if os.pwrite(fd, image[start:start + size], 0) != size:
                _write_all(fd, image[start:start + size], 0)
        else:
            _write_runs(fd, image, start)
    os.utime(fd, (atime, mtime))
    return size


def write_batch(dir_fd: int, image: memoryview, plains: list[tuple[Entry, tuple]]) \
        -> tuple[int, int, list[int], list[tuple[int, str]]]:
    """A writer thread's work: the claimed plain files of one directory created in it
    (O_EXCL, O_NOFOLLOW, with their permissions), their data written from the image map
    and their times set. (files, bytes, positions not created, (position, error) of
    files whose writing failed): the walk's thread reports them (Extractor._settle)."""
    open_, close = os.open, os.close
    files = nbytes = 0
    failed: list[int] = []
    problems: list[tuple[int, str]] = []
    for at, ((name, _, _, _, _), (size, start, mode, atime, mtime)) in enumerate(plains):
        try:
            fd = open_(name, O_NEW, mode, dir_fd=dir_fd)
        except OSError:
            failed.append(at)
            continue
        try:
            nbytes += write_plain(fd, image, size, start, atime, mtime)
        except OSError as e:
            problems.append((at, e.strerror or str(e)))
        finally:
            close(fd)
        files += 1
    return files, nbytes, failed, problems


def _write_all(fd: int, view: memoryview, offset: int) -> None:
    """pwrite all of `view` at `offset`, however short each write is."""
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _write_runs(fd: int, image: memoryview, runs: tuple[tuple[int, int], ...]) -> None:
    """A file's data from the image map, (image offset, length) runs one after another."""
    position = 0
    for start, length in runs:
        if os.pwrite(fd, image[start:start + length], position) != length:
            _write_all(fd, image[start:start + length], position)
        position += length
