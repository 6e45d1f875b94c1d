"""Formatting shared by the commands that print: times, JSON (whole, or streamed an item at a
time), aligned fields, and a progress display that shows only on a terminal."""

from __future__ import annotations

import sys
import time

import click


def format_time(seconds: int) -> str:
    """dumpe2fs's style, in UTC so that output does not depend on the reader's zone."""
    if not seconds:
        return "n/a"
    return time.strftime("%a %b %d %H:%M:%S %Y UTC", time.gmtime(seconds))


def print_json(data) -> None:
    import json  # imported by the commands that print JSON only: a check need not pay for it
    click.echo(json.dumps(data, indent=2, sort_keys=False))


class JsonArray:
    """A JSON array written an item at a time: valid JSON when closed, nothing held."""

    def __init__(self):
        self.count = 0
        click.echo("[", nl=False)

    def add(self, item) -> None:
        import json
        click.echo(("\n" if not self.count else ",\n") + json.dumps(item), nl=False)
        self.count += 1

    def close(self) -> None:
        click.echo("\n]" if self.count else "]")


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

    def relabel(self, label: str) -> None:
        """Name the next phase of the work (a `phase` callback of the inspect views)."""
        self.label = label

    def done(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 79 + "\r")
            self.stream.flush()
            self.shown = False
