"""Sandbox worker: loads one module's source, then evaluates calls on it, one JSON line per outcome.

Started by `lift_lsp.check.sandbox` as `python -s -P -u worker.py CMD_FD RESULT_FD LOG_PATH` in its own process
group, with a minimal environment, stdin on /dev/null and fds 1/2 on LOG_PATH. Standard library only: the language
server never imports this module. Protocol, one JSON object per line:

- parent -> worker (CMD_FD): `init` {source, filename, module_name, sys_path, limits}, then one call object per line
  (a call with `"command": "contracts"` goes to `contracts/replay.py`, see `Worker._contracts`);
- worker -> parent (RESULT_FD): {"event": "ready"} or {"event": "load_error", ...}, then {"event": "outcome", ...}.
"""

from __future__ import annotations

import contextlib
import faulthandler
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
from collections.abc import Iterable
from typing import Any

_MIB = 1024 * 1024
_THIS_FILE = os.path.abspath(__file__)


# ---------------------------------------------------------------------------------------------------------- limits


def _set_limit(which: int, soft: int, hard: int | None = None) -> None:
    _cur_soft, cur_hard = resource.getrlimit(which)
    hard = soft if hard is None else hard
    if cur_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, cur_hard), min(hard, cur_hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(which, (soft, hard))


def _user_tasks() -> int:
    """Processes and threads of this user (what RLIMIT_NPROC counts)."""
    uid, count = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                continue
    return count


def apply_limits(limits: dict[str, Any]) -> None:
    """Resource limits of this process and its children (hard limits too, so user code cannot raise them)."""
    _set_limit(resource.RLIMIT_AS, int(limits["memory_mb"]) * _MIB)
    cpu = int(limits["cpu_s"])
    _set_limit(resource.RLIMIT_CPU, cpu, cpu + 5)
    _set_limit(resource.RLIMIT_FSIZE, int(limits["file_size_mb"]) * _MIB)
    _set_limit(resource.RLIMIT_CORE, 0)
    if os.geteuid() != 0:  # root ignores RLIMIT_NPROC; for others it counts all the user's tasks, not ours alone
        with contextlib.suppress(OSError):
            _set_limit(resource.RLIMIT_NPROC, _user_tasks() + int(limits["extra_processes"]))
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
    "socket.sethostname": "changing the host name",
    "sqlite3.enable_load_extension": "loading native code",
    "sqlite3.load_extension": "loading native code",
}
_NATIVE = {  # ctypes audit event -> what it does; refused unless an import is under way
    **dict.fromkeys(["ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle"], "loading native code"),
    **dict.fromkeys(["ctypes.cdata", "ctypes.PyObj_FromPtr"], "accessing raw memory"),
    "ctypes.call_function": "calling native code",  # raised by _ctypes.call_function only, not by foreign calls
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
_CLONE_NEWNET = 0x40000000


class SandboxViolation(PermissionError):
    """What the sandboxed code tried and was refused."""


def _importing() -> bool:
    """Whether an import is under way (a library binding its native code with ctypes, as numpy, torch and z3 do)."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


def _raises_limit(which: int, limits: object) -> bool:
    """Whether setting rlimit `which` to `limits` (soft, hard) goes above its hard limit (which root may do)."""
    try:
        hard = resource.getrlimit(which)[1]
        new = [int(v) for v in limits]  # type: ignore[attr-defined]
    except (TypeError, ValueError, OSError):
        return False  # the call itself fails
    return hard != resource.RLIM_INFINITY and any(v == resource.RLIM_INFINITY or v > hard for v in new)


def install_guard(allowed_dir: str) -> None:
    """Refuse, from here on, what sandboxed code has no business doing: writing outside `allowed_dir` (files, sqlite
    databases, removing, renaming, permissions), starting processes, network access (sockets other than unnamed local
    ones such as asyncio's socket pair, DNS look-ups), loading native code or reading raw memory with ctypes (allowed
    while a module is being imported: numpy, torch and z3 bind their libraries then, as C extensions are loaded by
    importing them), raising resource limits, signalling other processes, reading another process's environment or
    memory. The code gets a SandboxViolation (a PermissionError: code that handles OSError degrades gracefully). An
    audit hook (PEP 578) cannot be removed once added. It stops accidents and runaway generated code, not a determined
    attacker: native code is not audited, nor are ctypes pointers and casts."""
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

    def sqlite_inside(database: object) -> bool:
        try:
            name = os.fsdecode(database)  # type: ignore[arg-type]
        except TypeError:
            return False
        if name in ("", ":memory:"):  # in memory, or a temporary file sqlite deletes
            return True
        if name.startswith("file:"):  # a URI (with uri=True): read-only and in-memory ones write nothing
            path, _, query = name[5:].partition("?")
            if re.search(r"(?:^|&)mode=(?:ro|memory)(?:&|$)", query):
                return True
            path = re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), path)
            name = re.sub(r"^//(?:localhost)?(?=/)", "", path)
        return inside(name)

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
        elif event in _NATIVE and not _importing():
            refuse(f"{_NATIVE[event]} ({event})")
        elif event == "sqlite3.connect" and not sqlite_inside(args[0]):
            refuse(f"writing outside the sandbox directory ({args[0]})")
        elif event in ("resource.setrlimit", "resource.prlimit") and args[-1] is not None:  # None: only reading
            pid, which, limits = (0, *args) if event == "resource.setrlimit" else args
            if pid not in (0, me):
                refuse(f"changing another process's resource limits ({event})")
            if _raises_limit(which, limits):
                refuse(f"raising a resource limit ({event})")
        elif event in ("os.kill", "os.killpg") and args and args[0] not in (0, me):
            refuse(f"signalling another process ({event})")

    sys.addaudithook(hook)


def isolate_network() -> bool:
    """Move this process into a new network namespace of its own (no interface but a loopback that is down), so that
    not even native code reaches a network. Only root (CAP_SYS_ADMIN) can, on Linux; elsewhere, or where it is not
    permitted (most containers), this does nothing and returns False: the audit hook still refuses sockets."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return False
    try:
        unshare = getattr(os, "unshare", None)  # Python 3.12+
        if unshare is not None:
            unshare(_CLONE_NEWNET)
            return True
        import ctypes

        return int(ctypes.CDLL(None, use_errno=True).unshare(_CLONE_NEWNET)) == 0
    except Exception:  # EPERM, ENOSPC (user.max_net_namespaces), no ctypes: go on without
        return False


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
    if isinstance(a, complex) and isinstance(b, complex | int | float):
        return math.isclose(a.real, complex(b).real, rel_tol=1e-9) and math.isclose(
            a.imag, complex(b).imag, rel_tol=1e-9
        )
    if type(a) in (list, tuple) and type(a) is type(b):
        assert isinstance(a, list | tuple) and isinstance(b, list | tuple)
        return len(a) == len(b) and all(_close(x, y, depth + 1) for x, y in zip(a, b, strict=True))
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


class Worker:
    def __init__(self, init: dict[str, Any], log: _LogTail) -> None:
        self.filename: str = init["filename"]
        self.module_name: str = init["module_name"]
        self.limits: dict[str, Any] = init["limits"]
        self.max_output = int(self.limits["max_output_bytes"])
        self.memory_message = f"exceeded {self.limits['memory_mb']} MiB"
        self.log = log
        self.module = types.ModuleType(self.module_name)

    def load(self, source: str) -> dict[str, Any]:
        mod = self.module
        if not self.filename.startswith("<"):
            mod.__file__ = self.filename
        sys.modules[self.module_name] = mod
        with _Captured(self.max_output, self.log) as cap:
            failure: BaseException | None = None
            try:
                exec(_compile(source, self.filename, "exec"), mod.__dict__)
            except BaseException as exc:
                failure = exc
        if failure is None:
            return {"event": "ready"}
        line = _error_line(failure, self.filename)
        where = f" (line {line})" if line else ""
        status = "memory" if isinstance(failure, MemoryError) else "error"
        detail = self.memory_message if status == "memory" else _safe_str(failure)
        return {
            "event": "load_error",
            "status": status,
            "exception": type(failure).__name__,
            "message": _clean(f"module failed to load: {type(failure).__name__}: {detail}{where}", 4000),
            "line": line,
            "traceback": _format_traceback(failure),
            "output": _clean(cap.sink.text()),
        }

    def run(self, call: dict[str, Any]) -> dict[str, Any]:
        start = time.perf_counter()
        out: dict[str, Any] = {"event": "outcome", "id": call["id"]}
        with _Captured(int(call.get("max_output_bytes", self.max_output)), self.log) as cap:
            try:
                out.update(self._contracts(call) if call.get("command") == "contracts" else self._evaluate(call))
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


def main(argv: list[str]) -> int:
    cmd_fd, res_fd, log_path = int(argv[1]), int(argv[2]), argv[3]
    for fd in (cmd_fd, res_fd):
        os.set_inheritable(fd, False)  # children of user code must not hold our pipes open
    commands = iter(_lines(cmd_fd))
    try:
        init = json.loads(next(commands))
    except (StopIteration, ValueError):
        return 2
    apply_limits(init["limits"])
    faulthandler.enable(file=sys.__stderr__ or sys.stderr)
    sys.setrecursionlimit(int(init["limits"]["recursion_limit"]))
    sys.argv = [init["filename"]]
    sys.path[:0] = [p for p in init.get("sys_path", []) if isinstance(p, str)]
    worker = Worker(init, _LogTail(log_path))
    isolate_network()
    install_guard(os.getcwd())
    loaded = worker.load(init["source"])
    del init
    _send(res_fd, loaded)
    if loaded["event"] != "ready":
        return 0
    for line in commands:
        if not line.strip():
            continue
        outcome = worker.run(json.loads(line))
        _send(res_fd, outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
