"""Every command and subcommand of every entry point has help text and at least one example
(as sqlite-utils checks its own): the click tree is walked, so a command added without them
fails here."""

from __future__ import annotations

import re
import tomllib

import click
import pytest

from tests.conftest import ROOT
from vexfs_tools.cli.dump import dump_command
from vexfs_tools.cli.fsck import fsck_command
from vexfs_tools.cli.main import cli
from vexfs_tools.cli.mkfs import mkfs_command
from vexfs_tools.cli.mount import mount_command

ENTRY_POINTS = {"vexfs": cli, "mkfs.vexfs": mkfs_command, "fsck.vexfs": fsck_command, "dump.vexfs": dump_command,
               "mount.fuse.vexfs": mount_command}
EXAMPLES = re.compile(r"^\s*Examples?:$", re.M)


def walk(command: click.Command, path: tuple[str, ...]):
    """(path of names, command) of `command` and every command below it."""
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            yield from walk(command.get_command(ctx, name), path + (name,))


COMMANDS = [(path, command) for prog, top in ENTRY_POINTS.items() for path, command in walk(top, (prog,))]


def test_every_entry_point_is_walked():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == set(ENTRY_POINTS)


def rendered_help(path: tuple[str, ...], command: click.Command) -> str:
    context = click.Context(command, info_name=" ".join(path))
    return command.get_help(context)


def help_problems(path: tuple[str, ...], command: click.Command) -> list[str]:
    """What is missing from a command's help: its text, or an example that runs it (its
    name, mkfs.vexfs for mkfs, `vexfs vectors add` for add, followed by something)."""
    where = " ".join(path)
    if not (command.help or "").strip():
        return [f"{where} has no help text"]
    text = rendered_help(path, command)
    found = EXAMPLES.search(text)
    if not found:
        return [f"{where}: no 'Example:' or 'Examples:' section in its help"]
    name = re.escape(path[-1])
    examples = [line.strip() for line in text[found.end():].splitlines() if line.startswith("    ")]
    if not any(re.search(rf"(^|[\s|;(]){name}(\.vexfs)?\s+\S", line) for line in examples):
        return [f"{where}: no example line runs {path[-1]!r}:\n{text}"]
    return []


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(path) for path, _ in COMMANDS])
def test_help_text_and_an_example(path, command):
    assert help_problems(path, command) == []


def test_the_check_fails_on_a_command_without_them():
    @click.command("bare")
    def bare():
        pass

    @click.command("told", epilog="\b\nExamples:\n  something else entirely\n")
    def told():
        """Help, but the example runs another command."""

    @click.command("good", epilog="\b\nExample:\n  vexfs good disk.img\n")
    def good():
        """Help and an example."""

    assert help_problems(("vexfs", "bare"), bare) == ["vexfs bare has no help text"]
    assert "no example line runs" in help_problems(("vexfs", "told"), told)[0]
    assert help_problems(("vexfs", "good"), good) == []
