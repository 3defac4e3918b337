"""The on-disk cache of whole-file check results (`FileCache`), which `workspace.check_paths` answers from: a file
whose inputs have not changed since it was last checked is not checked again, in this run or a later one.

An entry is found by its slot: the sha256 of the file's absolute path, the path and version of the interpreter that
runs its examples, and the check options that change results. It holds the digest of the file's inputs: its text (the
editor's unsaved text where it has one), the bytes of every project file its module's import may run
(`imports.ProjectSources`), the interpreter's binary (size and time) and its site-packages folders' times (installing
a package changes them), lift-lsp itself (its version, the digest of its own source, its contract engines' versions)
and the project's doctest option flags. An entry whose inputs differ is out of date and is checked again, then
overwritten: one entry per file, interpreter and options, not one per edit or upgrade (nothing else removes one).

Plain JSON files, one per entry, written atomically (a temporary file in the same folder, then `os.replace`), read
back through a schema (pydantic), never unpickled: an entry that does not parse, is truncated, is of another schema
version or belongs to another slot or file is ignored with a note and checked again, never trusted. Only a settled
report is kept (`FileCheck.settled`: nothing hit a time or memory limit or crashed, the sandbox was there).
What one file's code leaves behind in a sandbox worker shared with the next files (`CheckSetup.share_workers`)
is not part of any key. A cache that cannot be written never fails a check: a note says so once.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

import lift_lsp
from lift_lsp.check.checks import FileCheck
from lift_lsp.check.imports import ProjectSources
from lift_lsp.check.project import Interpreter, doctest_config
from lift_lsp.options import ContractOptions, DiagnosticsOptions, SandboxOptions

log = logging.getLogger(__name__)

SCHEMA = 1
"""The entries' format; another one is ignored (and its folder never read)."""
ENGINES = ("hypothesis", "crosshair-tool", "z3-solver")
"""The packages whose versions decide contract verdicts."""
_UNRESULTED = {"diagnostics": {"on_save", "on_open"}, "sandbox": {"workers", "trusted_folders", "trust_all"}}
"""Options that change when a check runs, not what it finds: not part of the key."""


def user_cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """`$XDG_CACHE_HOME/lift-lsp`, or `~/.cache/lift-lsp` (a relative XDG_CACHE_HOME is ignored, per the XDG spec)."""
    xdg = env.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "lift-lsp"
    return Path.home() / ".cache" / "lift-lsp"


def default_check_cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """`checks/` in the user cache directory."""
    return user_cache_dir(env) / "checks"


@dataclass(frozen=True)
class CheckSetup:
    """What every file's result depends on besides its own inputs and interpreter: the options of one run."""

    diagnostics: DiagnosticsOptions = field(default_factory=DiagnosticsOptions)
    sandbox: SandboxOptions = field(default_factory=SandboxOptions)
    contracts: ContractOptions = field(default_factory=ContractOptions)
    share_workers: bool = True
    """Each thread's sandbox worker takes its files in turn (see `check_paths`); else a fresh process per file."""

    def digest(self) -> str:
        parts = [
            self.diagnostics.model_dump_json(exclude=_UNRESULTED["diagnostics"]),
            self.sandbox.model_dump_json(exclude=_UNRESULTED["sandbox"]),
            self.contracts.model_dump_json(),
            str(self.share_workers),
        ]
        return _sha256("\x00".join(parts))


@dataclass(frozen=True)
class EntryKey:
    slot: str
    """Which entry: the file, the interpreter's path and version, the options (one entry each)."""
    inputs: str
    """What the entry's result was found from: the file's text, its project imports' bytes, the interpreter's binary
    and installed packages, lift-lsp, the project's doctest flags (a change overwrites the entry)."""


def entry_key(
    file: str, text: str, interpreter: Interpreter | None, identity: str, setup: CheckSetup, sources: ProjectSources
) -> EntryKey:
    """The key of `file`'s result when its text is `text` and `interpreter` runs its examples (`identity`: its
    `interpreter_identity`, found once per run)."""
    path = str(Path(file).absolute())
    python = [interpreter.python.path, repr(interpreter.python.version)] if interpreter else []
    slot = [str(SCHEMA), path, *python, setup.digest()]
    flags = doctest_config(str(Path(path).parent))
    inputs = [_sha256(text), identity, lift_identity(), repr(flags)]
    inputs += [f"{dep}\x00{digest}" for dep, digest in sources.dependencies(path, text)]
    return EntryKey(_sha256("\x00".join(slot)), _sha256("\x00".join(inputs)))


def interpreter_identity(interpreter: Interpreter | None) -> str:
    """The interpreter as far as it decides results without running it: its path and version, the real binary's
    size and modification time, and the modification times of the site-packages folders beside it."""
    if interpreter is None:
        return ""
    python = interpreter.python
    real = os.path.realpath(python.path)
    parts = [python.path, repr(python.version), interpreter.found, interpreter.note, real, _stat(real)]
    version = f"python{python.version[0]}.{python.version[1]}"
    for prefix in dict.fromkeys([Path(python.path).parent.parent, Path(real).parent.parent]):
        for folder in (
            prefix / "lib" / version / "site-packages",
            prefix / "local" / "lib" / version / "dist-packages",
            prefix / "lib" / "python3" / "dist-packages",
        ):
            parts.append(f"{folder}:{_stat(str(folder))}")
    return "\x00".join(parts)


@cache
def lift_identity() -> str:
    """lift-lsp's version, the digest of its own source files and its contract engines' versions."""
    package = Path(lift_lsp.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\x00" + path.read_bytes() + b"\x00")
    return "\x00".join([lift_lsp.__version__, digest.hexdigest(), *(_version(name) for name in ENGINES)])


def _version(package: str) -> str:
    try:
        return f"{package} {importlib.metadata.version(package)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{package} absent"


def _stat(path: str) -> str:
    try:
        info = os.stat(path)
    except OSError:
        return "absent"
    return f"{info.st_size}:{info.st_mtime_ns}"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


@dataclass(frozen=True)
class _Entry:
    schema: int
    slot: str
    inputs: str
    file: str
    report: FileCheck


@cache
def _entry_schema() -> TypeAdapter[_Entry]:
    return TypeAdapter(_Entry)


Note = Callable[[str], None]
"""Where a note on the cache goes (stderr for the command line, the log for the server)."""


class FileCache:
    """Whole-file results in `folder` (created when first written). Counts what it answered (`hits`) and what it
    could not (`misses`); safe to share between threads."""

    def __init__(self, folder: Path, note: Note = log.warning) -> None:
        self.folder = Path(folder)
        self.note = note
        self.hits = 0
        self.misses = 0
        self._unwritable = False
        self._lock = threading.Lock()
        self._notes_lock = threading.Lock()

    def _tell(self, message: str) -> None:
        """One note at a time: the files' threads never interleave two notes on one line."""
        with self._notes_lock:
            self.note(message)

    def path_for(self, key: EntryKey) -> Path:
        return self.folder / f"v{SCHEMA}" / key.slot[:2] / f"{key.slot}.json"

    def get(self, file: str, key: EntryKey) -> FileCheck | None:
        """The result kept for `file` under `key`, or None (missing, out of date, or not to be trusted: noted)."""
        report = self._read(str(Path(file).absolute()), key)
        with self._lock:
            if report is None:
                self.misses += 1
            else:
                self.hits += 1
        return report

    def _read(self, file: str, key: EntryKey) -> FileCheck | None:
        path = self.path_for(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            self._tell(f"ignoring the check-cache entry {path}: cannot read it ({err.strerror or err})")
            return None
        try:
            entry = _entry_schema().validate_json(raw, strict=True)
        except ValidationError as err:
            why = err.errors(include_url=False)[0]
            invalid = f"not a valid entry ({why['msg']})"
            self._tell(f"ignoring the check-cache entry {path}: {invalid}; checking {file} again")
            return None
        if entry.schema != SCHEMA or entry.slot != key.slot or entry.file != file:
            what = f"schema {entry.schema}" if entry.schema != SCHEMA else f"{entry.file}'s, slot {entry.slot}"
            self._tell(f"ignoring the check-cache entry {path}: it is {what}; checking {file} again")
            return None
        if entry.inputs != key.inputs:  # the file or one of its imports changed since: out of date, not suspect
            return None
        return entry.report

    def put(self, file: str, key: EntryKey, report: FileCheck) -> None:
        """Keep a settled report (an unsettled one is not kept)."""
        if not report.settled or self._unwritable:
            return
        entry = _Entry(SCHEMA, key.slot, key.inputs, str(Path(file).absolute()), report)
        path = self.path_for(key)
        temp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("wb", dir=path.parent, prefix=f".{key.slot}.", delete=False) as handle:
                temp = handle.name
                handle.write(_entry_schema().dump_json(entry))
            os.replace(temp, path)
            temp = None
        except OSError as err:
            with self._lock:
                first, self._unwritable = not self._unwritable, True
            if first:
                self._tell(f"cannot write the check cache in {self.folder} ({err.strerror or err}): results not kept")
        finally:
            if temp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
