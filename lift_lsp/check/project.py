"""Where a file's examples run: its module's dotted name and package root, the project's Python, and the doctest
option flags of the project's pytest configuration. Reads files, and starts the interpreter only to ask its version,
in the sandbox (`-I -S`: no site-packages, no `.pth` code); never imports the project's code."""

from __future__ import annotations

import configparser
import doctest
import os
import shutil
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lift_lsp.check import isolation
from lift_lsp.check.isolation import Mode
from lift_lsp.check.sandbox import Python

OLDEST = (3, 9)
"""The oldest Python the sandbox worker runs on."""
PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
VENV_NAMES = (".venv", "venv")
_PROBE_TIMEOUT_S = 20.0
SKIPPED_DIRS = {"__pycache__", "node_modules", "build", "dist", "site-packages"}
"""Folders `python_files` never enters (besides hidden ones, virtual environments and `*.egg-info`)."""


@dataclass(frozen=True)
class ModuleTarget:
    """How the file is imported: `name` from `root` (put first on sys.path)."""

    name: str
    root: str | None
    is_package: bool = False


def module_target(file: str) -> ModuleTarget:
    """The dotted module name of `file` and its package root: up through the folders holding an `__init__.py`; in a
    `src/` layout (or a namespace package below `src/`), from `src`. A file that is not on disk is `__lift__`."""
    if not file or file.startswith("<"):
        return ModuleTarget("__lift__", None)
    path = Path(file).absolute()
    is_package = path.name == "__init__.py"
    parts = [] if is_package else [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder.name.isidentifier():
        parts.insert(0, folder.name)
        folder = folder.parent
    for ancestor in [folder, *folder.parents]:
        if ancestor.name == "src":
            between = folder.relative_to(ancestor).parts
            if all(part.isidentifier() for part in between):
                parts, folder = [*between, *parts], ancestor
            break
    if not parts:  # an `__init__.py` whose folder is not a package name
        return ModuleTarget("__lift__", str(folder) if folder.is_dir() else None)
    return ModuleTarget(".".join(parts), str(folder) if folder.is_dir() else None, is_package)


def project_root(file: str, workspace_roots: Sequence[str] = ()) -> Path | None:
    """The workspace folder holding `file`; else the nearest folder above it with a pyproject.toml, setup.py,
    setup.cfg or .git."""
    if not file or file.startswith("<"):
        return None
    path = Path(file).absolute()
    for root in workspace_roots:
        if root and path.is_relative_to(Path(root).absolute()):
            return Path(root).absolute()
    return next((p for p in path.parents if any((p / m).exists() for m in PROJECT_MARKERS)), None)


# ---------------------------------------------------------------------------------------------- the project's Python


@dataclass(frozen=True)
class Interpreter:
    """The Python that runs a file's examples, where it was found, and what the user should know about it."""

    python: Python
    found: str
    """Where it came from: `python.interpreter`, `VIRTUAL_ENV`, the virtual environment holding the file, the
    workspace's `.venv`, or lift-lsp's own."""
    note: str = ""
    """Why it is not the project's own interpreter (empty when it is)."""

    @property
    def is_project(self) -> bool:
        return not self.note


_VERSION_SCRIPT = "import sys; print(sys.version_info[0], sys.version_info[1])"


@lru_cache(maxsize=64)
def _probe(path: str, mtime: float, mode: Mode) -> tuple[tuple[int, int] | None, str]:
    """The version of the interpreter at `path`, asked in the sandbox the examples run in: a project's interpreter
    (its `.venv/bin/python`) is the project's own file, and runs only there."""
    with tempfile.TemporaryDirectory(prefix="lift-probe-") as home, tempfile.TemporaryFile() as output:
        try:
            process = isolation.start(
                [path, "-I", "-S", "-c", _VERSION_SCRIPT],
                mode=mode,
                env={"PATH": os.defpath, "HOME": home},
                output=output,
                pass_fds=(),
                host_dir=home,
            )
        except OSError as err:  # SandboxUnavailable too
            return None, f"it could not be started ({err})"
        try:
            process.wait(_PROBE_TIMEOUT_S)
        finally:
            process.kill()
        output.seek(0)
        text = output.read(200).decode("utf-8", "replace")
    try:
        major, minor = (int(part) for part in text.split())
    except ValueError:
        return None, f"it does not run as Python ({text.strip()[:120] or 'no output'})"
    return (major, minor), ""


def probe_python(path: str, mode: Mode = "bubblewrap") -> tuple[Python | None, str]:
    """The interpreter at `path` if it runs (in the sandbox `mode` names) and is Python 3.9 or newer; else None and
    why not."""
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return None, "it does not exist"
    version, why = _probe(path, mtime, mode)
    if version is None:
        return None, why
    if version < OLDEST:
        return None, f"it is Python {version[0]}.{version[1]}; the examples need Python 3.9 or newer"
    return Python(path, version), ""


def _is_own_environment(venv: Path) -> bool:
    try:
        return venv.resolve() == Path(sys.prefix).resolve()
    except OSError:
        return False


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def find_interpreter(
    file: str, setting: str = "", workspace_roots: Sequence[str] = (), mode: Mode = "bubblewrap"
) -> Interpreter:
    """The project's Python for `file`: the `python.interpreter` setting (or `--python`); else the virtual
    environment the file is installed in; else `VIRTUAL_ENV`; else a `.venv` or `venv` in the workspace root; else
    lift-lsp's own interpreter (said in `note`). A `VIRTUAL_ENV` that is lift-lsp's own environment (as pre-commit
    sets it for its hook) comes after the workspace's `.venv` and `venv`."""
    own = Python()
    if setting:
        setting = _interpreter_path(setting, file, workspace_roots)
        python, why = probe_python(setting, mode)
        if python is not None:
            return Interpreter(python, "python.interpreter")
        return Interpreter(own, "lift-lsp's own", f"python.interpreter {setting} is not usable: {why}")
    candidates: list[tuple[Path, str]] = []
    if file and not file.startswith("<"):
        holder = next((p for p in Path(file).absolute().parents if (p / "pyvenv.cfg").is_file()), None)
        if holder is not None:
            candidates.append((_venv_python(holder), "the virtual environment holding the file"))
    virtual_env = os.environ.get("VIRTUAL_ENV", "")
    ours = bool(virtual_env) and _is_own_environment(Path(virtual_env))
    if virtual_env and not ours:
        candidates.append((_venv_python(Path(virtual_env)), "VIRTUAL_ENV"))
    root = project_root(file, workspace_roots)
    if root is not None:
        candidates += [(_venv_python(root / name), f"{root / name}") for name in VENV_NAMES]
    if ours:  # the environment lift-lsp runs in (pre-commit's, for its hook): the workspace's own comes first
        candidates.append((_venv_python(Path(virtual_env)), "VIRTUAL_ENV"))
    for path, found in candidates:
        if path.exists():
            python, _ = probe_python(str(path), mode)
            if python is not None:
                return Interpreter(python, found)
    return Interpreter(own, "lift-lsp's own", "no project interpreter found (set python.interpreter, or VIRTUAL_ENV)")


def _interpreter_path(setting: str, file: str, workspace_roots: Sequence[str]) -> str:
    """The setting as an absolute path: `~` expanded; a relative path taken from the workspace folder holding the
    file (the current directory for the command line); a bare command name looked up on PATH."""
    if os.sep not in setting and not setting.startswith("~"):
        return shutil.which(setting) or setting
    path = Path(setting).expanduser()
    if path.is_absolute():
        return str(path)
    folder = project_root(file, workspace_roots) if workspace_roots else None
    return str((folder or Path.cwd()) / path)


# ---------------------------------------------------------------------------------------------- pytest's doctest flags


@dataclass(frozen=True)
class DoctestConfig:
    flags: tuple[str, ...] = ()
    """doctest option flags named by the project's `doctest_optionflags`."""
    ignored: tuple[str, ...] = ()
    """Flags named there that only pytest knows (NUMBER, ALLOW_UNICODE, ALLOW_BYTES): examples run without them."""
    source: str = ""
    """The configuration file they came from."""


def _pytest_section(folder: Path) -> tuple[dict[str, object], str] | None:
    """pytest's own configuration in `folder`, found as pytest finds it (pytest.ini, pyproject.toml, tox.ini,
    setup.cfg, in that order); None when the folder has none."""
    for name, section in (("pytest.ini", "pytest"), (".pytest.ini", "pytest")):
        if (folder / name).is_file():
            return _ini(folder / name, section), str(folder / name)
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        try:
            tool = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
        except (OSError, ValueError, UnicodeDecodeError):
            tool = {}
        options = tool.get("pytest", {}).get("ini_options") if isinstance(tool.get("pytest"), dict) else None
        if isinstance(options, dict):
            return options, str(pyproject)
    for name, section in (("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
        path = folder / name
        if path.is_file():
            found = _ini(path, section)
            if found is not None:
                return found, str(path)
    return None


def _ini(path: Path, section: str) -> dict[str, object]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error, UnicodeDecodeError):
        return {}
    return dict(parser[section]) if parser.has_section(section) else {}


@lru_cache(maxsize=256)
def doctest_config(folder: str) -> DoctestConfig:
    """The `doctest_optionflags` of the pytest configuration that applies to files in `folder` (none: no flags, as
    `python -m doctest` runs)."""
    for directory in [Path(folder), *Path(folder).parents]:
        found = _pytest_section(directory)
        if found is None:
            continue
        options, source = found
        raw = options.get("doctest_optionflags", "")
        names = raw.split() if isinstance(raw, str) else [str(n) for n in raw] if isinstance(raw, list) else []
        known = tuple(n for n in names if n in doctest.OPTIONFLAGS_BY_NAME)
        return DoctestConfig(known, tuple(n for n in names if n not in known), source)
    return DoctestConfig()


# ---------------------------------------------------------------------------------------------- the files of a project


def python_files(paths: Sequence[str]) -> list[str]:
    """The Python files named, and those under the folders named, in order; skipping hidden folders, virtual
    environments, build outputs and caches (a folder named explicitly is always entered)."""
    files: list[str] = []
    for given in paths:
        if not os.path.isdir(given):
            files.append(given)
            continue
        for folder, dirs, names in os.walk(given):
            dirs[:] = sorted(
                d
                for d in dirs
                if not d.startswith(".")
                and d not in SKIPPED_DIRS
                and not d.endswith(".egg-info")
                and not os.path.isfile(os.path.join(folder, d, "pyvenv.cfg"))
            )
            files += [os.path.join(folder, n) for n in sorted(names) if n.endswith(".py") and n != "setup.py"]
    return files
