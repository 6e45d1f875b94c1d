"""fsck.vexfs and dump.vexfs leave without the interpreter's teardown (cli/standalone._leave):
their exit codes, their whole output and their one-line errors are as before."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import run


def test_fsck_exit_codes_and_output_survive_the_quick_exit(fresh_image):
    image = fresh_image("16M")
    clean = run("fsck.vexfs", "-fn", image)
    assert clean.returncode == 0
    assert clean.stdout.rstrip().endswith("blocks"), clean.stdout
    missing = run("fsck.vexfs", "-fn", str(image) + ".missing")
    assert missing.returncode == 8
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    assert run("fsck.vexfs", "-fn", "-y", image).returncode == 16


def test_dump_json_is_whole_through_a_pipe(fresh_image):
    image = fresh_image("16M")
    result = run("dump.vexfs", "--json", image)
    assert result.returncode == 0
    assert json.loads(result.stdout)["superblock"]


def test_a_reader_that_stops_early_gets_no_traceback(fresh_image):
    image = fresh_image("16M")
    piped = subprocess.run(["sh", "-c", f"dump.vexfs --blocks '{image}' | head -c 10"],
                           capture_output=True, text=True)
    assert len(piped.stdout) == 10
    assert piped.stderr == ""


def test_tools_import_with_the_collector_paused_then_run_with_it():
    """The imports run without cyclic collections; the tool runs with the collector on
    again, the imported objects frozen out of its sweeps."""
    probe = ("import gc, sys; from vexfs_tools.cli import standalone; counts = []; "
             "gc.callbacks.append(lambda phase, info: counts.append(1) if phase == 'start' else None); "
             "main = standalone._tool_main('fsck'); "
             "print(len(counts), gc.isenabled(), gc.get_freeze_count() > 0, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "True", "True", "True"]
