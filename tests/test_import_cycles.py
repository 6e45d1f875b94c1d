"""No module of vexfs_tools imports, directly or through others, a module that imports it back.

Every import counts, those inside functions too (a deferred import hides a cycle, it does not
remove it). The graph is read from the source with ast: relative imports are resolved, and
`from package import name` is an edge to the submodule when `name` is one, else to the
package."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = "vexfs_tools"


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> its file, for every .py file of the package."""
    files = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def _known(name: str, files: dict[str, Path]) -> str | None:
    """The module `name` is, or lives in (a name imported from it): the longest known prefix."""
    while name and name not in files:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, files: dict[str, Path]) -> set[str]:
    """The modules of the package that `module` imports, anywhere in its file."""
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in files else source
                       for alias in node.names]
        else:
            continue
        for target in targets:
            known = _known(target, files)
            if known and known != module:
                found.add(known)
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    files = module_files(root, package)
    return {module: imports_of(module, path, files) for module, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that reach each other (strongly connected, more than one), each
    sorted, sorted by first member."""
    reach: dict[str, set[str]] = {}
    for start in graph:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        reach[start] = seen
    groups = {tuple(sorted(m for m in graph if m in reach[start] and start in reach[m]) or [start])
              for start in graph if start in reach[start]}
    return sorted(list(group) for group in groups if len(group) > 1)


def test_the_detector_sees_every_kind_of_import(tmp_path):
    """A package with one cycle of each kind: through a relative import inside a function, a
    `from pkg import submodule`, and an absolute `import`; and one chain that is no cycle."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    sources = {
        "__init__.py": "",
        "a.py": "def f():\n    from .b import g\n",
        "b.py": "from . import a\n",
        "sub/__init__.py": "from .c import C\n",
        "sub/c.py": "import pkg.sub.d\nC = 1\n",
        "sub/d.py": "from ..sub import c\n",
        "e.py": "from pkg.sub import C\nfrom . import a\n",
    }
    for name, text in sources.items():
        (pkg / name).write_text(text)
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.e"] == {"pkg.sub", "pkg.a"}
    assert cycles(graph) == [["pkg.a", "pkg.b"], ["pkg.sub.c", "pkg.sub.d"]]


def test_no_import_cycles():
    found = cycles(import_graph(ROOT, PACKAGE))
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(group) for group in found)
