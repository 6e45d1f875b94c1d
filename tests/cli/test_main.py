"""`vexfs` imports a command's module only when that command runs: start-up stays small."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import run
from vexfs_tools.cli.main import COMMANDS, cli

HEAVY = ("vexfs_tools.cli.mount", "vexfs_tools.vectors.search", "vexfs_tools.cli.forensic",
         "vexfs_tools.cli.demo", "vexfs_tools.maintenance.resize", "mfusepy", "distributed")


def test_every_command_is_listed_and_loads():
    assert cli.list_commands(None) == sorted(COMMANDS)
    for name in COMMANDS:
        assert cli.get_command(None, name).name == name


def test_ls_imports_only_what_it_needs(fresh_image):
    image = fresh_image("16M")
    code = ("import sys; from vexfs_tools.cli.main import cli\n"
            f"cli.main(['ls', {str(image)!r}, '/'], standalone_mode=False)\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "lost+found" in result.stdout
    assert result.stdout.splitlines()[-1] == "[]", result.stdout


def test_an_unknown_command_is_a_usage_error():
    result = run("vexfs", "frobnicate")
    assert result.returncode == 2
    assert "No such command 'frobnicate'" in result.stderr
