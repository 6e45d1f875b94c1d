"""Formatting shared by the commands that print: times, JSON, aligned fields."""

from __future__ import annotations

import json
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
