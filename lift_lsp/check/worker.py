"""Sandbox worker: imports one module's source, then runs calls on it, one JSON line per event.

Started by `lift_lsp.check.sandbox` as `python -s [-P] -u worker.py CMD_FD RESULT_FD LOG_PATH` inside the OS sandbox
(`lift_lsp.check.isolation`), by the project's Python, with a minimal environment, stdin on /dev/null and fds 1/2 on
the log, which it reads back through LOG_PATH (`/proc/self/fd/1` in the sandbox). It is a standard-library-only script
that any Python 3.9+ runs (no newer syntax or APIs). The language server never imports this module. Protocol, one JSON
object per line:

- parent -> worker (CMD_FD): `init` {source, filename, module_name, is_package, sys_path, doctest_flags, limits},
  then one call per line: {id, expr, args, ...} (a value call), {id, doctest: {"only": NAME} | {"except": [...]}}
  or {id, "command": "contracts", payload} (to `contracts/replay.py`, see `Worker._contracts`);
- worker -> parent (RESULT_FD): {"event": "ready"} or {"event": "load_error", ...}; then for each call, for a
  doctest call its sessions' events ({"event": "test" | "start" | "done", "id", ...}, one "start" before and one
  "done" after each example), and last {"event": "outcome", "id", ...}.
- parent -> worker, between calls: {"event": "load", source, filename, module_name, is_package, sys_path,
  doctest_flags}: import the next file's module into this same process (a project's files one after another, as
  `python -m doctest` and pytest run them), answered like `init`; or {"event": "retired"} when this process has used
  half its CPU time or memory limit (the parent starts a fresh worker).
"""

from __future__ import annotations

import ast
import contextlib
import faulthandler
import importlib
import importlib.machinery
import importlib.util
import io
import json
import linecache
import math
import os
import re
import resource
import signal
import sys
import time
import traceback
import types
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import doctest

_MIB = 1024 * 1024
_THIS_FILE = os.path.abspath(__file__)
_STARTED = time.time()
"""When this worker started: a module it imported from a file older than that holds the file's current text."""


# ---------------------------------------------------------------------------------------------------------- limits


def _set_limit(which: int, soft: int, hard: int | None = None) -> None:
    _cur_soft, cur_hard = resource.getrlimit(which)
    hard = soft if hard is None else hard
    if cur_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, cur_hard), min(hard, cur_hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(which, (soft, hard))


def apply_limits(limits: dict[str, Any]) -> None:
    """Resource limits of this process and its threads (hard limits too: without capabilities they cannot be raised).
    The number of processes needs none: the sandbox starts no process at all (its seccomp filter)."""
    _set_limit(resource.RLIMIT_AS, int(limits["memory_mb"]) * _MIB)
    cpu = int(limits["cpu_s"])
    _set_limit(resource.RLIMIT_CPU, cpu, cpu + 5)
    _set_limit(resource.RLIMIT_FSIZE, int(limits["file_size_mb"]) * _MIB)
    _set_limit(resource.RLIMIT_CORE, 0)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write fails with EFBIG instead of killing us


# ---------------------------------------------------------------------------------------------------------- guard

_PROCESS_EVENTS = [
    "os.fork",
    "os.forkpty",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "subprocess.Popen",
    "pty.spawn",
]
_NETWORK_EVENTS = ["socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"]
_DNS_EVENTS = ["socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo"]
_REFUSED = {  # audit event -> what it does; refused whatever its arguments
    **dict.fromkeys(_PROCESS_EVENTS, "starting a process"),
    **dict.fromkeys(_NETWORK_EVENTS + _DNS_EVENTS, "network access"),
}
_PATH_EVENTS = {  # event -> positions of the paths it changes
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.rename": (0, 1),
    "os.link": (0, 1),
    "os.symlink": (1,),
    "os.truncate": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.utime": (0,),
    "os.mkfifo": (0,),
    "os.mknod": (0,),
    "os.setxattr": (0,),
    "os.removexattr": (0,),
    "shutil.rmtree": (0,),
    "shutil.copyfile": (1,),
    "shutil.copytree": (1,),
    "shutil.move": (0, 1),
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PROCESS_SECRETS = re.compile(r"^/proc/(\d+)/(?:task/\d+/)?(?:environ|mem)$")
_AF_UNIX = 1  # on every POSIX system


class SandboxViolation(PermissionError):
    """What the sandboxed code tried and was refused."""


def install_guard(allowed_dir: str) -> None:
    """Refuse, from here on, with a message that says what and why, what sandboxed code has no business doing:
    writing outside `allowed_dir`, starting processes, network access (sockets other than unnamed local ones such as
    asyncio's socket pair; DNS look-ups), signalling other processes, reading another process's environment or memory.
    The code gets a SandboxViolation (a PermissionError: code that handles OSError degrades gracefully).

    An audit hook (PEP 578) cannot be removed, but it is no boundary: native code, ctypes and indirect routes get
    around it. The boundary is the OS sandbox (`isolation`), which refuses all of these by itself; this hook only
    makes the refusals it sees readable. In the `unsafe-process` mode it is all there is."""
    home = os.path.realpath(allowed_dir)
    me = os.getpid()

    def inside(path: object) -> bool:
        if isinstance(path, int):
            return True  # an fd that is already open
        try:
            real = os.path.realpath(os.fsdecode(path))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
        return real == os.devnull or real == home or real.startswith(home + os.sep)

    def refuse(what: str) -> None:
        raise SandboxViolation(f"lift-lsp sandbox: {what} is not allowed here")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = args
            writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & _WRITE_FLAGS)
            if writes and not inside(path):
                refuse(f"writing outside the sandbox directory ({os.fsdecode(path)})")
            secret = _PROCESS_SECRETS.match(os.path.realpath(os.fsdecode(path))) if not isinstance(path, int) else None
            if secret and int(secret.group(1)) != me:
                refuse("reading another process's environment or memory")
        elif event in _PATH_EVENTS:
            for index in _PATH_EVENTS[event]:
                if index < len(args) and not inside(args[index]):
                    refuse(f"changing {os.fsdecode(args[index])} outside the sandbox directory ({event})")
        elif event in _REFUSED:
            refuse(f"{_REFUSED[event]} ({event})")
        elif event == "socket.__new__" and args[1] != _AF_UNIX:
            refuse(f"network access ({event})")
        elif event in ("os.kill", "os.killpg") and args and args[0] not in (0, me):
            refuse(f"signalling another process ({event})")

    sys.addaudithook(hook)


# ---------------------------------------------------------------------------------------------------------- output


class _Sink:
    """Bounded store of a call's output (stdout and stderr interleaved)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def add(self, text: str) -> None:
        data = text.encode("utf-8", "backslashreplace")
        room = self.max_bytes - self.size
        if len(data) <= room:
            self.parts.append(text)
            self.size += len(data)
            return
        if room > 0:
            self.parts.append(data[:room].decode("utf-8", "ignore"))
            self.size = self.max_bytes
        self.dropped += len(data) - max(room, 0)

    def add_bytes(self, data: bytes, total: int) -> None:
        """Add `data`, the start of `total` bytes written at the fd level."""
        room = max(self.max_bytes - self.size, 0)
        kept = data[:room]
        if kept:
            self.parts.append(kept.decode("utf-8", "backslashreplace"))
            self.size += len(kept)
        self.dropped += total - len(kept)

    def text(self) -> str:
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n[... output truncated: {self.dropped} more bytes]"
        return out


class _BinaryCapture(io.RawIOBase):
    def __init__(self, sink: _Sink) -> None:
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        raw = bytes(data)
        self._sink.add(raw.decode("utf-8", "backslashreplace"))
        return len(raw)


class _Capture(io.TextIOBase):
    """Stand-in for sys.stdout / sys.stderr during a call."""

    def __init__(self, sink: _Sink, fd: int) -> None:
        self._sink = sink
        self._fd = fd
        self.buffer = _BinaryCapture(sink)
        self._encoding = "utf-8"

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:  # the real fd: output written there is read back from the log (see _LogTail)
        return self._fd

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._sink.add(text)
        return len(text)

    def flush(self) -> None:
        pass


class _LogTail:
    """What was written to fds 1/2 (C code, subprocesses, sys.__stdout__) since `mark()`, read back from the log."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._start = 0

    def mark(self) -> None:
        self._start = os.fstat(self._fd).st_size

    def into(self, sink: _Sink) -> None:
        total = os.fstat(self._fd).st_size - self._start
        if total > 0:
            sink.add_bytes(os.pread(self._fd, min(total, max(sink.max_bytes - sink.size, 0)), self._start), total)


class _Captured:
    """Context: sys.stdout/sys.stderr go to a bounded sink; fd-level output is collected at exit."""

    def __init__(self, max_bytes: int, log: _LogTail) -> None:
        self.sink = _Sink(max_bytes)
        self._log = log
        self._saved: tuple[Any, Any] = (None, None)

    def __enter__(self) -> _Captured:
        self._saved = (sys.stdout, sys.stderr)
        self._log.mark()
        sys.stdout = _Capture(self.sink, 1)
        sys.stderr = _Capture(self.sink, 2)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout, sys.stderr = self._saved
        with contextlib.suppress(OSError):
            self._log.into(self.sink)


# ---------------------------------------------------------------------------------------------------------- helpers


def _clean(text: str, limit: int | None = None) -> str:
    """Valid UTF-8 (no lone surrogates), optionally truncated to `limit` characters."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + f"... [{len(text) - limit} more characters]"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _safe_str(obj: object) -> str:
    try:
        return str(obj)
    except BaseException as exc:
        return f"<str() failed: {type(exc).__name__}>"


def _safe_repr(obj: object) -> tuple[str | None, str]:
    """(full repr or None if it failed, text to report)."""
    try:
        text = repr(obj)
    except BaseException as exc:
        return None, f"<repr() failed: {type(exc).__name__}: {_safe_str(exc)}>"
    if not isinstance(text, str):
        return None, "<repr() returned a non-string>"
    return text, text


def _error_line(exc: BaseException, filename: str) -> int | None:
    """The line of the module where `exc` was raised (deepest frame in `filename`)."""
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        return exc.lineno
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _format_traceback(exc: BaseException, limit: int = 4000) -> str:
    tb = exc.__traceback__
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) == _THIS_FILE:
        tb = tb.tb_next
    try:
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    except BaseException:
        text = f"{type(exc).__name__}: {_safe_str(exc)}\n"
    if len(text) > limit:
        text = "...\n" + text[-limit:]
    return _clean(text)


def _compile(source: str, filename: str, mode: str) -> types.CodeType:
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return compile(source, filename, mode, dont_inherit=True)


def _exception_matches(exc: BaseException, expected: str) -> bool:
    for cls in type(exc).__mro__:
        names = {cls.__name__, cls.__qualname__, f"{cls.__module__}.{cls.__qualname__}"}
        if expected.strip() in names:
            return True
    return False


def _as_bool(result: object) -> bool | None:
    """`result` of `==` as a bool, or None when it is not one (e.g. a numpy array)."""
    if result is True or result is False:
        return bool(result)
    if type(result).__name__ in ("bool_", "bool"):
        try:
            return bool(result)
        except BaseException:
            return None
    return None


def _close(a: object, b: object, depth: int = 0) -> bool:
    """Equal, with floats compared by math.isclose(rel_tol=1e-9), through lists, tuples and dicts."""
    if depth > 50:
        return False
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        if isinstance(a, float) or isinstance(b, float):
            return a == b or math.isclose(a, b, rel_tol=1e-9)
        return a == b
    if isinstance(a, complex) and isinstance(b, (complex, int, float)):
        return math.isclose(a.real, complex(b).real, rel_tol=1e-9) and math.isclose(
            a.imag, complex(b).imag, rel_tol=1e-9
        )
    if type(a) in (list, tuple) and type(a) is type(b):
        assert isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))
        return len(a) == len(b) and all(_close(x, y, depth + 1) for x, y in zip(a, b))
    if type(a) is dict and type(b) is dict:
        return a.keys() == b.keys() and all(_close(a[k], b[k], depth + 1) for k in a)
    return False


def values_match(value: object, value_repr: str | None, expected: object) -> bool:
    """repr equal (doctest), or `==` returning True, or close as floats."""
    expected_repr, _ = _safe_repr(expected)
    if value_repr is not None and expected_repr is not None and value_repr == expected_repr:
        return True
    try:
        if _as_bool(value == expected):
            return True
    except BaseException:
        pass
    try:
        return _close(value, expected)
    except BaseException:
        return False


# ---------------------------------------------------------------------------------------------------------- running


# ---------------------------------------------------------------------------------------------------------- loading


class _BufferLoader(importlib.machinery.SourceFileLoader):
    """Loads a module from the editor's text instead of the file on disk (no bytecode cache is read or written)."""

    def __init__(self, fullname: str, path: str, source: str) -> None:
        super().__init__(fullname, path)
        self.source = source

    def get_source(self, fullname: str) -> str:
        return self.source

    def get_code(self, fullname: str) -> types.CodeType:
        return _compile(self.source, self.path, "exec")


def import_buffer(
    name: str, filename: str, source: str, is_package: bool, replaced: list[types.ModuleType]
) -> types.ModuleType:
    """Import `source` as the module `name` (its parent packages imported normally first), so that relative imports
    and package-level code work as they do for the file on disk; the module of that name imported before, if any, is
    added to `replaced`. Raises what the import raises."""
    parent, _, child = name.rpartition(".")
    if parent:
        importlib.import_module(parent)
    if name in sys.modules:
        if _imported_from(sys.modules[name], filename, source):
            return sys.modules[name]  # as `import` returns it: its code run twice could register things twice
        replaced.append(sys.modules[name])
    loader = _BufferLoader(name, filename, source)
    spec = importlib.util.spec_from_loader(name, loader, origin=filename, is_package=is_package)
    assert spec is not None
    spec.has_location = not filename.startswith("<")
    if is_package:
        spec.submodule_search_locations = [os.path.dirname(filename)]
    module = importlib.util.module_from_spec(spec)
    for key, loaded in list(sys.modules.items()):  # submodules its parent imported already: bound as import binds them
        if is_package and key.startswith(name + ".") and "." not in key[len(name) + 1 :]:
            setattr(module, key[len(name) + 1 :], loaded)
    sys.modules[name] = module
    if parent:
        setattr(sys.modules[parent], child, module)
    loader.exec_module(module)
    return module


def _imported_from(module: types.ModuleType, filename: str, source: str) -> bool:
    """`module` (imported before, say by its package's `__init__`) ran exactly `source`: it was imported from this
    text, or from `filename` unchanged since this worker started and holding `source` (doctest and pytest check the
    module the import system holds; an editor's unsaved text is a module of its own)."""
    loader = getattr(module, "__loader__", None)
    if isinstance(loader, _BufferLoader):
        return loader.path == filename and loader.source == source
    path = getattr(module, "__file__", None)
    try:
        if not isinstance(path, str) or not os.path.samefile(path, filename):
            return False
        if os.stat(filename).st_mtime >= _STARTED:
            return False
        with open(filename, "rb") as handle:
            return handle.read().decode("utf-8", "replace") == source
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------------------- doctests


BY_VALUE = "LIFT_BY_VALUE"
"""lift-lsp's own doctest option: an example also passes when its output is the value the expected output writes
(`"21"` written for `'21'`, `2.0` for `2.0000000001`), or shows `True` where nothing is written (an example such as
`f(x) == y`, meant as an assertion). Forward mode checks generated code with it: docstrings state values."""


def doctest_flags(names: Iterable[str]) -> int:
    """The option flags named (`ELLIPSIS`, ..., `LIFT_BY_VALUE`); names this doctest does not know are left out."""
    import doctest

    doctest.register_optionflag(BY_VALUE)  # registered once: it returns the flag it has
    flags = 0
    for name in names:
        flags |= doctest.OPTIONFLAGS_BY_NAME.get(name, 0)
    return flags


def _reader() -> Any:
    """lift-lsp's reader of examples (`spec/examples.py`, loaded from its path: standard library only), which reads
    them with doctest's parser as the language server does."""
    reader = sys.modules.get("_lift_examples")
    if reader is None:
        path = os.path.join(os.path.dirname(os.path.dirname(_THIS_FILE)), "spec", "examples.py")
        spec = importlib.util.spec_from_file_location("_lift_examples", path)
        assert spec is not None and spec.loader is not None
        reader = sys.modules["_lift_examples"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(reader)
    return reader


def _skipped(example: doctest.Example, flags: int) -> bool:
    """Whether doctest leaves the example out, as the reader says (its SKIP directive or flag)."""
    return bool(_reader().DocExample.of(example).skipped(flags))


def _checker() -> doctest.OutputChecker:
    """doctest's output checker, which with `LIFT_BY_VALUE` also compares the values the texts write."""
    import doctest

    by_value = doctest.register_optionflag(BY_VALUE)

    class ValueChecker(doctest.OutputChecker):
        def check_output(self, want: str, got: str, optionflags: int) -> bool:
            if super().check_output(want, got, optionflags):
                return True
            if not optionflags & by_value:
                return False
            if not want.strip():
                return got.strip() == "True"
            try:
                expected, value = ast.literal_eval(want.strip()), ast.literal_eval(got.strip())
            except Exception:
                return False
            return values_match(value, got.strip(), expected)

    return ValueChecker()


class _Recorder:
    """doctest's own runner (imported only when doctests run: it is slow to import); each example's start and result
    are sent to the parent as they happen."""

    def __init__(self, emit: Callable[[dict[str, Any]], None], flag_names: list[str], worker: Worker) -> None:
        import doctest

        self.optionflags = doctest_flags(flag_names)
        self.runner = doctest.DocTestRunner(_checker(), verbose=False, optionflags=self.optionflags)
        for name in ("report_start", "report_success", "report_failure", "report_unexpected_exception"):
            setattr(self.runner, name, getattr(self, name))  # the runner calls its own report_* after each example
        self.emit = emit
        self.filename = worker.filename
        self.limit = worker.max_output
        self.memory_message = worker.memory_message
        self.index: dict[int, int] = {}

    def run(self, name: str, test: doctest.DocTest) -> None:
        self.index = {id(example): i for i, example in enumerate(test.examples)}
        self.emit(
            {
                "event": "test",
                "name": name,
                "lineno": test.lineno,
                "examples": [[e.lineno, e.indent, e.source, e.want] for e in test.examples],
                "skipped": [i for i, e in enumerate(test.examples) if _skipped(e, self.optionflags)],
            }
        )
        self.runner.run(test, out=lambda text: None, clear_globs=True)

    def report_start(self, out: Any, test: doctest.DocTest, example: doctest.Example) -> None:
        self.emit({"event": "start", "index": self.index[id(example)]})

    def report_success(self, out: Any, test: doctest.DocTest, example: doctest.Example, got: str) -> None:
        self.emit({"event": "done", "index": self.index[id(example)], "status": "passed"})

    def report_failure(self, out: Any, test: doctest.DocTest, example: doctest.Example, got: str) -> None:
        index = self.index[id(example)]
        self.emit({"event": "done", "index": index, "status": "failed", "got": _clean(got, self.limit)})

    def report_unexpected_exception(
        self, out: Any, test: doctest.DocTest, example: doctest.Example, exc_info: Any
    ) -> None:
        exc = exc_info[1]
        memory = isinstance(exc, MemoryError)
        self.emit(
            {
                "event": "done",
                "index": self.index[id(example)],
                "status": "memory" if memory else "raised",
                "exception": type(exc).__name__,
                "message": self.memory_message if memory else _clean(_safe_str(exc), self.limit),
                "line": _error_line(exc, self.filename),
                "traceback": _format_traceback(exc),
            }
        )


# ---------------------------------------------------------------------------------------------------------- running


class Worker:
    def __init__(self, init: dict[str, Any], log: _LogTail, emit: Callable[[dict[str, Any]], None]) -> None:
        self.filename: str = init["filename"]
        self.module_name: str = init["module_name"]
        self.is_package = bool(init.get("is_package"))
        self.limits: dict[str, Any] = init["limits"]
        self.max_output = int(self.limits["max_output_bytes"])
        self.memory_message = f"exceeded {self.limits['memory_mb']} MiB"
        self.doctest_flags: list[str] = init.get("doctest_flags") or []
        self.log = log
        self.emit = emit
        self.module = types.ModuleType(self.module_name)
        self.shadowed: list[types.ModuleType] = []
        """The module of that name that was imported before this one replaced it, if any."""
        self.tests: dict[str, doctest.DocTest] | None = None
        self.unreadable: dict[str, tuple[str, int | None]] = {}
        """Docstrings doctest's parser refuses, by name as in `tests`: why (`python -m doctest` stops there), and the
        docstring's 0-based line."""

    def load(self, source: str) -> dict[str, Any]:
        with _Captured(self.max_output, self.log) as cap:
            failure: BaseException | None = None
            try:
                self.module = import_buffer(self.module_name, self.filename, source, self.is_package, self.shadowed)
            except BaseException as exc:
                failure = exc
        if failure is None:
            return {"event": "ready"}
        line = _error_line(failure, self.filename)
        where = f" (line {line})" if line else ""
        status = "memory" if isinstance(failure, MemoryError) else "error"
        detail = self.memory_message if status == "memory" else _safe_str(failure)
        message = f"importing `{self.module_name}` failed: {type(failure).__name__}: {detail}{where}"
        return {
            "event": "load_error",
            "status": status,
            "exception": type(failure).__name__,
            "message": _clean(message, 4000),
            "line": line,
            "traceback": _format_traceback(failure),
            "output": _clean(cap.sink.text()),
        }

    def unload(self) -> None:
        """Put back the module this one replaced (one imported before, such as `enum` checked from its file, or a
        package's module its `__init__` imported from disk): the next file's code meets the one the rest of the
        process holds."""
        for before in self.shadowed:
            sys.modules[self.module_name] = before
            parent, _, child = self.module_name.rpartition(".")
            if parent in sys.modules:
                setattr(sys.modules[parent], child, before)

    def run(self, call: dict[str, Any]) -> dict[str, Any]:
        start = time.perf_counter()
        out: dict[str, Any] = {"event": "outcome", "id": call["id"]}
        with _Captured(int(call.get("max_output_bytes", self.max_output)), self.log) as cap:
            try:
                if "doctest" in call:
                    out.update(self._doctests(call))
                elif call.get("command") == "contracts":
                    out.update(self._contracts(call))
                else:
                    out.update(self._evaluate(call))
            except MemoryError:
                out.update(status="memory", exception="MemoryError", message=self.memory_message)
            except BaseException as exc:  # a bug of ours, or user code breaking the worker's own steps
                out.update(status="error", exception=type(exc).__name__, message=f"sandbox: {_safe_str(exc)}")
        out["output"] = _clean(cap.sink.text())
        out["elapsed_s"] = time.perf_counter() - start
        for key in ("message", "value_repr"):
            if isinstance(out.get(key), str):
                out[key] = _clean(out[key], max(self.max_output, 200))
        return out

    def _found_tests(self) -> dict[str, doctest.DocTest]:
        """Every docstring with examples that doctest finds in the module, by name relative to the module ("" for
        the module's own docstring); one its parser refuses goes to `unreadable` and leaves the others to run."""
        if self.tests is None:
            import doctest

            prefix = self.module.__name__ + "."

            def relative(name: str) -> str:
                return "" if name == self.module.__name__ else name[len(prefix) :]

            parser = _reader().FindingParser()  # records what it refuses: inconsistent indentation, no space after >>>
            found = doctest.DocTestFinder(parser=parser).find(self.module, self.module.__name__)
            self.unreadable.update({relative(name): why for name, why in parser.refused.items()})
            self.tests = {relative(t.name): t for t in found if relative(t.name) not in self.unreadable}
        return self.tests

    def _doctests(self, call: dict[str, Any]) -> dict[str, Any]:
        """Run doctest sessions: {"only": NAME} runs that docstring's, {"except": [NAMES]} every other one."""
        selector = call["doctest"]
        tests = self._found_tests()
        known = {*tests, *self.unreadable}  # an unreadable docstring is reported as a session of its own
        if "only" in selector:
            names = [selector["only"]] if selector["only"] in known else []
        else:
            skipped = set(selector["except"])
            names = sorted(n for n in known if n not in skipped)
        if not names and "only" in selector:
            return {"status": "error", "message": "doctest does not find this docstring in the imported module"}
        tag = call["id"]
        recorder = _Recorder(lambda m: self.emit({**m, "id": tag}), self.doctest_flags, self)
        for name in names:
            if name in self.unreadable:
                why, line = self.unreadable[name]
                self.emit({"event": "test", "id": tag, "name": name, "lineno": line, "examples": [], "unreadable": why})
            else:
                recorder.run(name, tests[name])
        return {"status": "ok"}

    def _evaluate(self, call: dict[str, Any]) -> dict[str, Any]:
        ns: dict[str, Any] = dict(self.module.__dict__)
        tag = str(call["id"])
        for name, src in call.get("args", []):
            try:
                ns[name] = eval(_compile(src, f"<arg {name} of {tag}>", "eval"), ns)
            except MemoryError:
                raise
            except BaseException as exc:
                return self._failed(f"cannot evaluate argument {name} = {src!r}", exc)
        pre = tuple(self._condition(c, ns, tag) for c in call.get("preconditions", []))
        try:
            code = _compile(call["expr"], f"<call {tag}>", "eval")
        except BaseException as exc:
            return self._failed(f"invalid expression {call['expr']!r}", exc) | {"pre_results": pre}
        try:
            value = eval(code, ns)
        except MemoryError:
            raise
        except BaseException as exc:
            expected_exc = call.get("expected_exception")
            matches = None
            if expected_exc is not None:
                matches = _exception_matches(exc, expected_exc)
            elif call.get("expected") is not None:
                matches = False
            return {
                "status": "raised",
                "exception": type(exc).__name__,
                "message": _safe_str(exc),
                "matches": matches,
                "pre_results": pre,
                "line": _error_line(exc, self.filename),
                "traceback": _format_traceback(exc),
            }
        full_repr, shown = _safe_repr(value)
        result: dict[str, Any] = {"status": "ok", "value_repr": shown, "pre_results": pre}
        expected = call.get("expected")
        if expected is not None:
            try:
                expected_value = eval(_compile(expected, f"<expected of {tag}>", "eval"), ns)
            except MemoryError:
                raise
            except BaseException as exc:
                if full_repr is not None and full_repr == expected.strip():  # doctest: compare the text
                    result["matches"] = True
                else:
                    result.update(self._failed(f"cannot evaluate expected result {expected!r}", exc))
                    result["status"], result["value_repr"] = "error", shown
            else:
                result["matches"] = values_match(value, full_repr, expected_value)
        elif call.get("expected_exception") is not None:
            result["matches"] = False
        post_ns = dict(ns)
        post_ns["result"] = value
        post_ns["__return__"] = value
        post_ns.setdefault("_", value)
        result["post_results"] = tuple(self._condition(c, post_ns, tag) for c in call.get("postconditions", []))
        return result

    def _contracts(self, call: dict[str, Any]) -> dict[str, Any]:
        """lift-lsp's contract checks: `contracts/replay.py` beside this file, loaded from its path (standard library
        only); it replays a counterexample in plain Python, or runs the engines where they can load."""
        contracts = sys.modules.get("_lift_contracts")
        if contracts is None:
            path = os.path.join(os.path.dirname(_THIS_FILE), "contracts", "replay.py")
            spec = importlib.util.spec_from_file_location("_lift_contracts", path)
            assert spec is not None and spec.loader is not None
            contracts = sys.modules["_lift_contracts"] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(contracts)
        return {"status": "ok", "data": contracts.entry(call["payload"], self.module)}

    def _condition(self, source: str, ns: dict[str, Any], tag: str) -> bool | None:
        try:
            value = eval(_compile(source, f"<condition of {tag}>", "eval"), ns)
            return bool(value)
        except MemoryError:
            raise
        except BaseException:
            return None

    def _failed(self, what: str, exc: BaseException) -> dict[str, Any]:
        return {
            "status": "error",
            "exception": type(exc).__name__,
            "message": f"{what}: {type(exc).__name__}: {_safe_str(exc)}",
            "traceback": _format_traceback(exc),
        }


def _send(fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message, ensure_ascii=True, default=str) + "\n").encode("ascii")
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _lines(fd: int) -> Iterable[bytes]:
    with os.fdopen(fd, "rb", closefd=True) as stream:
        yield from stream


def set_path(roots: list[str]) -> None:
    """The project's roots first on sys.path; this script's own folder off it (Pythons before 3.11 have no `-P`)."""
    here = os.path.dirname(_THIS_FILE)
    sys.path[:] = [p for p in roots if isinstance(p, str)] + [p for p in sys.path if os.path.abspath(p or ".") != here]


def spent(limits: dict[str, Any]) -> bool:
    """Whether this process has used half its CPU time or address-space limit (a next file might not fit)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    if usage.ru_utime + usage.ru_stime > int(limits["cpu_s"]) / 2:
        return True
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[0])
    except (OSError, ValueError, IndexError):
        return True  # unknown: do not risk it
    return pages * resource.getpagesize() > int(limits["memory_mb"]) * _MIB / 2


def _load(message: dict[str, Any], limits: dict[str, Any], log: _LogTail, res_fd: int) -> Worker | None:
    """Import the module `message` names (init or load); the Worker that runs its calls, or None if it failed."""
    sys.argv = [message["filename"]]
    set_path(message.get("sys_path", []))
    worker = Worker({**message, "limits": limits}, log, lambda out: _send(res_fd, out))
    loaded = worker.load(message["source"])
    _send(res_fd, loaded)
    return worker if loaded["event"] == "ready" else None


def main(argv: list[str]) -> int:
    cmd_fd, res_fd, log_path = int(argv[1]), int(argv[2]), argv[3]
    for fd in (cmd_fd, res_fd):
        os.set_inheritable(fd, False)  # children of user code must not hold our pipes open
    commands = iter(_lines(cmd_fd))
    try:
        init = json.loads(next(commands))
    except (StopIteration, ValueError):
        return 2
    limits: dict[str, Any] = init.pop("limits")
    apply_limits(limits)
    faulthandler.enable(file=sys.__stderr__ or sys.stderr)
    sys.setrecursionlimit(int(limits["recursion_limit"]))
    log = _LogTail(log_path)
    install_guard(os.getcwd())
    worker = _load(init, limits, log, res_fd)
    del init
    while worker is not None:
        line = next(commands, b"")
        if not line:  # the parent closed the pipe
            return 0
        if not line.strip():
            continue
        message = json.loads(line)
        if message.get("event") != "load":
            _send(res_fd, worker.run(message))
        elif spent(limits):
            _send(res_fd, {"event": "retired"})
            return 0
        else:
            worker.unload()
            worker = _load(message, limits, log, res_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
