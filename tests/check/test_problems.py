"""The problem table (vexfs_tools/check/problems.py), as e2fsprogs tests its own: codes
unique and carrying their pass, the table in order, and every problem the passes raise
present in it, with the fields its message needs."""

from __future__ import annotations

import ast
import itertools
import string
from pathlib import Path

import pytest

import vexfs_tools.check as check_package
from vexfs_tools.check.context import NO, YES, Checker
from vexfs_tools.check.problems import _TABLE, BY_CODE, NO_OK, PREEN_OK, PROBLEMS

SOURCES = sorted(Path(check_package.__file__).parent.glob("*.py"))
PASSES = (0x00, 0x01, 0x11, 0x02, 0x03, 0x04, 0x05, 0x06)


def fix_calls() -> list[tuple[str, int, set[str], set[str]]]:
    """(file, line, problem names the call may raise, keyword fields it passes) of every
    checker.fix(...) and checker.report(...) call in the fsck engine. A problem name held in a variable is followed
    to the string constants assigned to that variable in the same function."""
    calls = []
    for source in SOURCES:
        tree = ast.parse(source.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            assigned: dict[str, set[str]] = {}
            for node in ast.walk(function):
                if isinstance(node, ast.Assign):
                    values = {c.value for c in ast.walk(node.value)
                              if isinstance(c, ast.Constant) and isinstance(c.value, str)}
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            assigned.setdefault(target.id, set()).update(values)
            for node in ast.walk(function):
                # checker.fix(NAME, ...), or checker.report(NAME, ...) (report only)
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in ("fix", "report") and node.args):
                    continue
                first = node.args[0]
                if isinstance(first, ast.Constant):
                    names = {first.value}
                elif isinstance(first, ast.Name):
                    names = assigned.get(first.id, set())
                else:
                    names = set()
                fields = {k.arg for k in node.keywords if k.arg}
                calls.append((source.name, node.lineno, names, fields))
    return calls


CALLS = fix_calls()


def test_codes_are_unique():
    codes = [p.code for p in _TABLE]
    assert len(codes) == len(set(codes)) == len(BY_CODE)
    assert len({p.name for p in _TABLE}) == len(_TABLE) == len(PROBLEMS)


def test_each_codes_high_byte_is_its_pass():
    for problem in _TABLE:
        assert problem.code >> 16 == problem.pass_number
        assert problem.pass_number in PASSES, problem
        assert 0 < problem.code & 0xFFFF, problem


def test_the_table_is_ordered_by_code_within_a_pass_and_passes_are_contiguous():
    seen_passes = []
    for previous, problem in itertools.pairwise(_TABLE):
        if problem.pass_number == previous.pass_number:
            assert problem.code > previous.code, (previous.name, problem.name)
    for problem in _TABLE:
        if not seen_passes or seen_passes[-1] != problem.pass_number:
            assert problem.pass_number not in seen_passes, f"pass {problem.pass_number:#x} is split"
            seen_passes.append(problem.pass_number)
    assert seen_passes == [p for p in PASSES if p in seen_passes]


def test_flags_are_known_and_no_ok_problems_are_counters():
    for problem in _TABLE:
        assert problem.flags & ~(PREEN_OK | NO_OK) == 0, problem
        assert problem.message and problem.prompt, problem
    assert {p.name for p in _TABLE if p.flags & NO_OK} == {"FREE_BLOCKS", "FREE_INODES"}


def test_every_problem_the_engine_raises_is_in_the_table():
    assert len(CALLS) >= 30
    for source, line, names, _ in CALLS:
        assert names, f"{source}:{line}: fix() with a problem name that can not be read"
        for name in names:
            assert name in PROBLEMS, f"{source}:{line}: {name} is not in the problem table"


def test_every_problem_in_the_table_is_raised_somewhere():
    raised = set().union(*(names for _, _, names, _ in CALLS))
    assert set(PROBLEMS) - raised == set()


def test_every_message_gets_the_fields_it_names():
    for source, line, names, fields in CALLS:
        given = set(fields)
        if "ino" in given:
            given |= {"inode", "path"}  # Checker.fix derives these from ino
        for name in names:
            problem = PROBLEMS[name]
            wanted = {field for text in (problem.message, problem.prompt)
                      for _, field, _, _ in string.Formatter().parse(text) if field}
            wanted = {field.split(".")[0].split("[")[0] for field in wanted}
            assert wanted <= given, f"{source}:{line}: {name} needs {sorted(wanted - given)}"


@pytest.mark.parametrize("mode,answer", [(NO, False), (YES, True)])
def test_a_finding_may_carry_a_field_called_name(mode, answer):
    """Entry problems pass the entry's name as `name`: fix() must take it as a field."""
    lines: list[str] = []
    checker = Checker(None, mode, emit=lines.append)
    assert checker.fix("DUP_NAME", inode="2", name="a.txt", new="a.t~0") is answer
    said = "yes" if answer else "no"
    assert lines == [f"Duplicate entry 'a.txt' in directory inode 2.  Rename it to 'a.t~0'? {said}"]
    assert checker.findings[0].name == "DUP_NAME" and checker.findings[0].fields["name"] == "a.txt"
