"""The package reads as the pipeline: each stage imports only the stages below it (spec < check < generate < lsp)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "lift_lsp"
ORDER = ["spec", "check", "generate", "lsp"]
SHARED = {"lift_lsp", "lift_lsp.options", "lift_lsp.pyast"}
"""What every stage may import: the package itself (its version), the settings and the one `ast` parser (`pyast`)."""


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name for name in names if name == "lift_lsp" or name.startswith("lift_lsp.")}


def test_every_stage_imports_only_the_stages_below_it() -> None:
    upward: list[str] = []
    for rank, stage in enumerate(ORDER):
        allowed = {f"lift_lsp.{below}" for below in ORDER[: rank + 1]}
        for path in sorted((PACKAGE / stage).rglob("*.py")):
            for name in _imports(path) - SHARED:
                if not any(name == a or name.startswith(a + ".") for a in allowed):
                    upward.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert upward == []


def test_the_stages_are_the_package() -> None:
    """Every module lives in a stage, except the entry points, the settings and the `ast` parser every stage uses."""
    top = {p.name for p in PACKAGE.glob("*.py")}
    assert top == {"__init__.py", "cli.py", "benchmark.py", "options.py", "pyast.py"}
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")} == set(ORDER)
