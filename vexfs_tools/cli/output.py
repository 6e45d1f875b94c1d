"""Formatting shared by the commands that print: times, JSON, aligned fields."""

from __future__ import annotations

import json
import sys
import time

import click


def format_time(seconds: int) -> str:
    """dumpe2fs's style, in UTC so that output does not depend on the reader's zone."""
    if not seconds:
        return "n/a"
    return time.strftime("%a %b %d %H:%M:%S %Y UTC", time.gmtime(seconds))


def print_json(data) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def print_fields(rows: list[tuple[str, object]], width: int = 26) -> None:
    for name, value in rows:
        click.echo(f"{name + ':':<{width}}{value}")


class Progress:
    """A one-line progress display on stderr, on a terminal only, at most 5 updates a
    second; `done()` clears it. Disabled it costs one attribute test a call."""

    def __init__(self, label: str, *, quiet: bool = False, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = not quiet and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.label = label
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        text = f"{self.label}: {done}" + (f"/{total} ({100 * done // max(total, 1)}%)" if total else "")
        self.stream.write("\r" + text[:79].ljust(79))
        self.stream.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 79 + "\r")
            self.stream.flush()
            self.shown = False
