"""Type context from jedi: what the types around a function are, for hover and for every prompt.

jedi takes tens of milliseconds per function, so contexts are cached (`ContextCache`) by what they depend on
(`context_keys`): an edit elsewhere in a file, or a new version of it, reuses the contexts of the functions it did
not touch.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jedi
from cachetools import TTLCache

from lift_lsp.spec.sites import SpecSite, functions_used, module_functions, outside_functions

MAX_NAMES = 24
MAX_CALLEES = 12
_IMPORT = re.compile(r"^\s*(import\s+\S|from\s+\S+\s+import\s)")
_JEDI = threading.Lock()
"""jedi is not thread-safe, across Scripts too (shared parser and inference caches): one thread uses it at a time."""


@dataclass
class TypeContext:
    inferred_return: str | None = None
    """jedi's inferred return type, where the function has no annotation (and a body to infer from)."""
    names: dict[str, str] = field(default_factory=dict)
    """Names the function uses -> their inferred types (`xs` -> `list`)."""
    callees: dict[str, str] = field(default_factory=dict)
    """Functions it calls -> their signatures (`sqrt` -> `sqrt(x: _SupportsFloatOrIndex, /) -> float`)."""
    imports: list[str] = field(default_factory=list)
    """The module's import lines."""

    def describe(self) -> str:
        """Plain text for prompts."""
        lines: list[str] = []
        if self.imports:
            lines.append("Module imports:\n" + "\n".join(f"  {line}" for line in self.imports))
        if self.names:
            lines.append("Inferred types of names used:\n" + "\n".join(f"  {k}: {v}" for k, v in self.names.items()))
        if self.callees:
            lines.append("Signatures of functions called:\n" + "\n".join(f"  {v}" for v in self.callees.values()))
        if self.inferred_return:
            lines.append(f"Inferred return type: {self.inferred_return}")
        return "\n".join(lines)


CONTEXT_CACHE_ENTRIES = 4096
CONTEXT_CACHE_AGE_S = 3600.0
"""Bounds of a `ContextCache`: the most recently stored contexts are kept, none longer than an hour."""


class ContextCache:
    """Type contexts by `context_keys`, shared across documents and versions; thread-safe, bounded by size and age."""

    def __init__(self, entries: int = CONTEXT_CACHE_ENTRIES, age_s: float = CONTEXT_CACHE_AGE_S) -> None:
        self._entries: TTLCache[str, TypeContext] = TTLCache(maxsize=entries, ttl=age_s)
        self._lock = threading.Lock()

    def get(self, key: str) -> TypeContext | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: str, context: TypeContext) -> None:
        with self._lock:
            self._entries[key] = context

    def __len__(self) -> int:
        with self._lock:
            self._entries.expire()
            return len(self._entries)


_WORD = re.compile(r"[A-Za-z_]\w*")


def context_keys(text: str, sites: Sequence[SpecSite], path: str | None = None) -> dict[tuple[str, int], str]:
    """A key per function (by qualname and `def` line) of what jedi's view of it depends on: its own text, the
    texts of the module's functions it uses (transitively) and of those that call it (jedi infers a parameter from
    its call sites), the module outside its functions (imports, globals, class bodies) and the file's path."""
    outside = outside_functions(text, sites)
    words = {site.qualname: set(_WORD.findall(site.text)) for site in sites}
    by_name = module_functions(sites)
    keys: dict[tuple[str, int], str] = {}
    for site in sites:
        used = {s.qualname for s in functions_used(site, by_name)}
        callers = {other.qualname for other in sites if site.name in words[other.qualname]}
        texts = sorted(s.text for s in sites if s.qualname in used | callers)
        payload = "\x00".join([path or "", outside, site.qualname, site.text, *texts])
        keys[site.qualname, site.def_line] = hashlib.sha256(payload.encode("utf-8", errors="surrogatepass")).hexdigest()
    return keys


class TypeOracle:
    """jedi over one version of a document; every use of jedi holds the process-wide `_JEDI` lock."""

    def __init__(self, text: str, path: str | None = None) -> None:
        self.text = text
        self.lines = text.splitlines()
        with _JEDI:
            self._script = jedi.Script(code=text, path=path)
        self._names: list[Any] | None = None

    def imports(self) -> list[str]:
        return [line.strip() for line in self.lines if _IMPORT.match(line)][:MAX_NAMES]

    def context_for(self, site: SpecSite) -> TypeContext:
        """jedi's view of `site`; empty where jedi fails (it is best effort on broken code)."""
        with _JEDI:
            try:
                return self._context(site)
            except Exception:  # jedi raises a variety of internal errors on unusual code
                return TypeContext(imports=self.imports())

    def _all_names(self) -> list[Any]:
        if self._names is None:
            self._names = list(self._script.get_names(all_scopes=True, definitions=True, references=True))
        return self._names

    def _context(self, site: SpecSite) -> TypeContext:
        ctx = TypeContext(imports=self.imports())
        first, last = site.def_line + 1, site.span.end_line + 1  # jedi lines are 1-based
        params = {p.name for p in site.params}
        for name in self._all_names():
            if not first <= name.line <= last:
                continue
            if name.line == first and name.name == site.name and name.is_definition():
                if site.return_annotation is None and not site.is_stub:
                    ctx.inferred_return = _type_names(name.execute()) or None
                continue
            if name.name in ctx.names or name.name in ctx.callees:
                continue
            if _is_call(self.lines, name.line - 1, name.column + len(name.name)):
                if len(ctx.callees) < MAX_CALLEES:
                    signature = self._signature(name.line, name.column)
                    if signature:
                        ctx.callees[name.name] = signature
                continue
            used = name.type in ("param", "statement") and (name.name in params or not name.is_definition())
            if used and len(ctx.names) < MAX_NAMES:
                inferred = _type_names(name.infer())
                if inferred:
                    ctx.names[name.name] = inferred
        return ctx

    def _signature(self, line: int, column: int) -> str:
        for definition in self._script.infer(line, column):
            signatures = definition.get_signatures()
            if signatures:
                text: str = signatures[0].to_string()
                return text[:200]
        return ""


def _type_names(values: Any) -> str:
    names: list[str] = []
    for value in values:
        label = value.name if value.type == "instance" else value.type if value.type == "module" else value.name
        if label and label not in names:
            names.append(label)
    return " | ".join(names[:4])


def _is_call(lines: list[str], row: int, col: int) -> bool:
    if not 0 <= row < len(lines):
        return False
    rest = lines[row][col:].lstrip()
    return rest.startswith("(")
