"""Python's `ast`, one thread at a time: every in-process parse to an AST goes through here.

CPython 3.11 keeps the AST constructor's recursion depth in one per-interpreter counter (CPython gh-106905): when
two threads build ASTs at once (a thread switch can happen inside, e.g. while a finalizer runs during a garbage
collection), a parse raises `SystemError: AST constructor recursion depth mismatch`. The server parses from several
threads (checks, background analysis, requests), so `parse` and `literal_eval` hold one process-wide lock.
`tests/test_pyast.py` keeps every other module of the package off `ast.parse`.
It sits at the package root because every stage parses with it (`tests/test_layout.py` lets each import it).
"""

from __future__ import annotations

import ast
import threading
from typing import Any

_AST_LOCK = threading.RLock()
"""Reentrant: a finalizer that runs during a parse may itself parse, on the same thread."""


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """`ast.parse` of a module, holding the lock. Raises what `ast.parse` raises (SyntaxError, ValueError, ...)."""
    with _AST_LOCK:
        return ast.parse(source, filename)


def parse_expression(source: str, filename: str = "<unknown>") -> ast.expr:
    """The expression `source` (`ast.parse(source, mode="eval").body`), holding the lock."""
    with _AST_LOCK:
        return ast.parse(source, filename, mode="eval").body


def literal_eval(source: str) -> Any:
    """`ast.literal_eval` of source text: the parse holds the lock (evaluating the tree needs none)."""
    with _AST_LOCK:
        tree = ast.parse(source.lstrip(" \t"), mode="eval")
    return ast.literal_eval(tree)


def literal_value(node: ast.expr) -> Any:
    """`ast.literal_eval` of a tree already built (no parse, so no lock)."""
    return ast.literal_eval(node)
