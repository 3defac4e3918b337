"""Parsing with `ast` from several threads at once never meets CPython gh-106905's SystemError, because every
in-process parse goes through `lift_lsp.pyast` (one lock)."""

from __future__ import annotations

import ast
import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lift_lsp import pyast
from lift_lsp.check.checks import check_text
from lift_lsp.check.sandbox import check_source_compiles
from lift_lsp.options import ContractOptions, DiagnosticsOptions
from lift_lsp.spec.reverse import extract_file

PACKAGE = Path(__file__).resolve().parent.parent / "lift_lsp"
HELPER = PACKAGE / "pyast.py"
ENGINES = PACKAGE / "check" / "contracts"
WORKER_SIDE = {
    PACKAGE / "check" / "worker.py",
    *(ENGINES / f"{m}.py" for m in ("replay", "search", "hypothesis_engine", "crosshair_engine")),
}
"""Modules that run only in a sandbox worker's own process (the standard-library worker and the contract engines it
loads), never in the server: they cannot take the server's lock, nor need it."""
_UNLOCKED = {"parse", "literal_eval"}
"""`ast` functions that build an AST from source text (`literal_eval` parses a string argument)."""


def direct_ast_builders(path: Path) -> list[str]:
    """Where a module calls `ast.parse`/`ast.literal_eval`, imports them from `ast`, or names `PyCF_ONLY_AST`."""
    found: list[str] = []
    where = path.relative_to(PACKAGE.parent) if path.is_relative_to(PACKAGE.parent) else path
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ast":
            if node.attr in _UNLOCKED or node.attr == "PyCF_ONLY_AST":
                found.append(f"{where}:{node.lineno}: ast.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "ast":
            names = {alias.name for alias in node.names} & (_UNLOCKED | {"PyCF_ONLY_AST", "*"})
            if names:
                found.append(f"{where}:{node.lineno}: from ast import {sorted(names)}")
        elif isinstance(node, ast.Name) and node.id == "PyCF_ONLY_AST":
            found.append(f"{where}:{node.lineno}: PyCF_ONLY_AST")
    return found


def test_only_the_helper_parses_with_ast() -> None:
    server_side = [path for path in sorted(PACKAGE.rglob("*.py")) if path != HELPER and path not in WORKER_SIDE]
    direct = [hit for path in server_side for hit in direct_ast_builders(path)]
    assert direct == [], "parse through lift_lsp.pyast (one lock; CPython gh-106905):\n" + "\n".join(direct)


def test_the_scan_finds_a_direct_parse(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import ast\nfrom ast import literal_eval\ntree = ast.parse('x')\nflags = ast.PyCF_ONLY_AST\n")
    assert len(direct_ast_builders(sample)) == 3


class _Churn:
    """Cyclic garbage whose finalizer gives up the GIL: a garbage collection that runs while a thread builds an
    AST then switches threads in the middle of it, which is how the SystemError arises in a busy server."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        time.sleep(0)


@contextmanager
def frequent_collections() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(50, 5, 5)
    try:
        yield
    finally:
        gc.set_threshold(*saved)


SOURCE = (PACKAGE / "spec" / "render.py").read_text(encoding="utf-8")
MODULE = '''
def scale(x: int, k: int) -> int:
    """Scale x by k.

    Args:
        x (int): the value.
        k (str): the factor.

    Raises:
        KeyError: never.

    >>> scale(2, 3)
    6
    """
    return x * k


def pick(values: list[int], i: int) -> int:
    """pre: i >= 0
    post: __return__ in values

    pick([1, 2], 0) => 1
    """
    return values[i]
'''


def test_parsing_and_checking_from_several_threads_never_fails() -> None:
    errors: list[BaseException] = []
    offline = DiagnosticsOptions(examples=False)
    no_contracts = ContractOptions(enabled=False)

    def work() -> None:
        try:
            for _ in range(40):
                for _ in range(20):
                    _Churn()
                pyast.parse(SOURCE)
                assert check_source_compiles(SOURCE) is None
                found = check_text(MODULE, "m.py", offline, contracts=no_contracts)
                assert [f.code for f in found] == ["LIFT009", "LIFT010"]
                assert len(extract_file(MODULE, types=False)) == 2
                assert pyast.literal_eval("[1, (2, 'x')]") == [1, (2, "x")]
        except BaseException as exc:
            errors.append(exc)

    with frequent_collections():
        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
