"""The project's own files whose code a file's examples may run when its module is imported: its parent packages'
`__init__.py`, and, transitively, every project module it imports (anywhere in the file, its doctests included).

Read conservatively, from the text alone (nothing is imported): an `import` or `from ... import` line anywhere in the
file counts, even in a string or a comment that never runs; only a name that resolves to a file of the project counts
(the standard library and installed packages are the interpreter's, keyed apart). Not seen: modules imported by a
computed name (`importlib.import_module(name)`, `__import__`) and files the code reads as data.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lift_lsp.check.project import module_target, project_root

_IMPORT_LINE = re.compile(
    r"^[ \t]*(?:(?:>>>|\.\.\.)[ \t]+)?(?:from[ \t]+(?P<module>\.*[\w.]*)[ \t]+import[ \t]+(?P<names>[^\n#]*)"
    r"|import[ \t]+(?P<modules>[^\n#]*))",
    re.MULTILINE,
)
_CONTINUED = re.compile(r"[^)]*", re.DOTALL)


@dataclass(frozen=True)
class ImportLine:
    level: int
    """Leading dots of a relative import (0: absolute)."""
    module: str
    names: tuple[str, ...] = ()
    """What `from module import ...` names (each may be a submodule); empty for `import module`."""


def import_lines(text: str) -> list[ImportLine]:
    """Every import statement the text may run, read line by line (doctest lines `>>> import x` too); a
    parenthesised name list may run over several lines."""
    found: list[ImportLine] = []
    for match in _IMPORT_LINE.finditer(text):
        if match.group("modules") is not None:
            for part in match.group("modules").split(","):
                name = part.split(" as ")[0].strip().rstrip("\\").strip()
                if _dotted(name):
                    found.append(ImportLine(0, name))
            continue
        module = match.group("module")
        names = match.group("names")
        if names.lstrip().startswith("(") and ")" not in names:
            rest = _CONTINUED.match(text, match.end())
            names += rest.group(0) if rest else ""
        listed = [part.split(" as ")[0].strip(" \t\r\n()\\") for part in re.split(r"[,\n]", names)]
        level = len(module) - len(module.lstrip("."))
        found.append(ImportLine(level, module[level:], tuple(n for n in listed if n.isidentifier())))
    return found


def _dotted(name: str) -> bool:
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def _candidates(folder: str, parts: Sequence[str]) -> list[str]:
    """The files importing `parts` (a dotted name) from `folder` may run: each package's `__init__.py` on the way,
    and the module itself (`name.py`, or a package's `__init__.py`)."""
    out: list[str] = []
    for depth in range(1, len(parts) + 1):
        base = os.path.join(folder, *parts[:depth])
        out.append(os.path.join(base, "__init__.py"))
        if depth == len(parts):
            out.append(base + ".py")
    return out


@dataclass(frozen=True)
class _Source:
    digest: str
    imports: tuple[str, ...]
    """The project files it imports directly (its parent packages' `__init__.py` included)."""


class ProjectSources:
    """Each project file's digest and the project files it imports, read once per run (a run's files share most of
    their imports); safe to share between threads."""

    def __init__(self) -> None:
        self._sources: dict[str, _Source | None] = {}
        self._closures: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        """By a file's direct imports: what they import, transitively (most files of a package share them)."""
        self._reached: dict[str, frozenset[tuple[str, str]]] = {}
        """By a project file: (path, digest) of it and of every project file it imports, transitively."""
        self._files: dict[str, bool] = {}
        self._project_roots: dict[str, Path | None] = {}
        """By a folder: the project root of the files in it (`project.project_root`)."""
        self._lock = threading.Lock()

    def _is_file(self, path: str) -> bool:
        """Whether `path` is a file (asked once per run: the candidates of one import repeat across files)."""
        known = self._files.get(path)
        if known is None:
            known = self._files[path] = os.path.isfile(path)
        return known

    def _project_root(self, file: str) -> Path | None:
        """`project.project_root` of `file`, found once per folder."""
        folder = os.path.dirname(file)
        if folder not in self._project_roots:
            self._project_roots[folder] = project_root(file)
        return self._project_roots[folder]

    def dependencies(self, file: str, text: str) -> list[tuple[str, str]]:
        """(path, sha256 of its bytes) of every project file that importing `file` (whose text is `text`) under its
        module name may run, transitively, in path order; `file` itself left out."""
        own = str(Path(file).absolute())
        direct = tuple(_direct_imports(own, text, self._is_file, self._project_root))
        with self._lock:
            closure = self._closures.get(direct)
        if closure is None:
            closure = self._closure(direct)
            with self._lock:
                self._closures[direct] = closure
        return [(path, digest) for path, digest in closure if path != own]

    def _closure(self, direct: tuple[str, ...]) -> list[tuple[str, str]]:
        return sorted(frozenset[tuple[str, str]]().union(*(self._reach(path) for path in direct)))

    def _reach(self, start: str) -> frozenset[tuple[str, str]]:
        """(path, digest) of `start` and of the project files it imports, transitively (those that can be read): a
        file whose own closure is known adds it whole instead of being walked again."""
        seen: dict[str, str] = {}
        pending = [start]
        while pending:
            path = pending.pop()
            if path in seen:
                continue
            known = self._reached.get(path)
            if known is not None:
                seen.update(known)
                continue
            source = self._read(path)
            if source is not None:
                seen[path] = source.digest
                pending += source.imports
        reached = self._reached[start] = frozenset(seen.items())
        return reached

    def _read(self, path: str) -> _Source | None:
        with self._lock:
            if path in self._sources:
                return self._sources[path]
        try:
            data = Path(path).read_bytes()
        except OSError:
            source = None
        else:
            text = data.decode("utf-8", errors="replace")
            imports = _direct_imports(path, text, self._is_file, self._project_root)
            source = _Source(hashlib.sha256(data).hexdigest(), tuple(imports))
        with self._lock:
            self._sources[path] = source
        return source


def _direct_imports(
    file: str, text: str, is_file: Callable[[str], bool], root_of: Callable[[str], Path | None]
) -> list[str]:
    """The project files (that exist) `file` imports directly, and its own parent packages' `__init__.py`: looked
    up from the folder its module is imported from, the project's root and the root's `src/`."""
    target = module_target(file)
    if target.root is None:
        return []
    roots = [target.root]
    project = root_of(file)
    if project is not None:
        roots += [str(project), str(project / "src")]
    parts = target.name.split(".") if target.name != "__lift__" else []
    package = parts if target.is_package else parts[:-1]
    wanted: list[tuple[str, list[str]]] = [(roots[0], package)] if package else []
    for line in import_lines(text):
        if line.level:
            if line.level - 1 > len(package):
                continue
            base = package[: len(package) - (line.level - 1)]
            names = [*base, *line.module.split(".")] if line.module else base
            bases = [roots[0]]
        else:
            names, bases = line.module.split("."), roots
        for folder in dict.fromkeys(bases):
            wanted.append((folder, names))
            wanted += [(folder, [*names, name]) for name in line.names]
    found = {path for folder, names in wanted if names for path in _candidates(folder, names)}
    return sorted(path for path in found if path != file and is_file(path))
