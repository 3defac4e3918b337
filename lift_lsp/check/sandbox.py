"""Run user (and generated) Python code in separate worker processes, never in this one.

`run_calls(source, calls)` imports the module source (under its dotted name, from its package root, by the project's
Python) in each of `limits.workers` fresh processes and runs the calls there (doctest sessions with the standard
library's doctest, prose examples by value, pre/postconditions), one outcome per call. Where a `WorkerPool` is
active (a project's files checked one after another), one worker takes the files in turn instead. Each worker runs
`worker.py` inside the operating system's sandbox (`isolation`: bubblewrap's namespaces, read-only mounts and a private
size-capped tmpfs, a seccomp filter), with a minimal environment (no secrets of ours), stdin on /dev/null and resource
limits (address space, CPU, file size, core dumps). This process enforces the time limits: a call past its deadline
has its worker killed, with every process it started, and a fresh worker takes the remaining calls.

Before any user code runs, the worker also installs an audit hook (PEP 578; `worker.install_guard`), a second layer
that turns what the sandbox refuses into clear messages (`SandboxViolation`: writing outside its directory, starting
processes, network access, signalling other processes). Where no OS sandbox can be made, no worker starts: every
outcome is an error whose message says why and how to enable it (`UNAVAILABLE`). Only the setting `sandbox.mode` =
`unsafe-process` runs workers as plain processes, with the audit hook as their only guard, which native code, ctypes
and indirect routes (paths relative to a `dir_fd`, changes through a file descriptor) get around.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import json
import math
import os
import select
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lift_lsp.check import isolation

if TYPE_CHECKING:
    from lift_lsp.options import SandboxOptions

Status = Literal["ok", "raised", "timeout", "memory", "crashed", "error"]

UNAVAILABLE = "SandboxUnavailable"
"""The `exception` of every outcome when no sandbox could be made (the message says why and how to enable it)."""
_WORKER_SCRIPT = str(Path(__file__).with_name("worker.py"))
BY_VALUE = "LIFT_BY_VALUE"
"""The worker's own doctest option (`worker.BY_VALUE`): an example's output may also equal the expected one as a
value."""
_REPLAY_SCRIPT = str(Path(__file__).with_name("contracts") / "replay.py")
"""Loaded by the worker for `contracts` calls (standard library only, like the worker)."""
_EXAMPLES_SCRIPT = str(Path(__file__).parent.parent / "spec" / "examples.py")
"""The reader of `>>>` examples, which the worker loads by its path to read doctests as the server does."""
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_OOM_MARKERS = ("MemoryError", "Cannot allocate memory", "bad_alloc", "out of memory", "Memory allocation failed")


@dataclass(frozen=True)
class SandboxLimits:
    call_timeout_s: float = 2.0
    """Per call, measured from when the call is sent to a loaded worker."""
    total_timeout_s: float = 30.0
    """The whole `run_calls` (worker start-up and module loading included)."""
    memory_mb: int = 512
    """RLIMIT_AS of each worker (virtual memory: heavy imports such as torch need more)."""
    max_output_bytes: int = 10_000
    """Captured stdout/stderr per call; the rest is dropped and counted."""
    workers: int = 2
    """Parallel worker processes."""
    load_timeout_s: float = 10.0
    """Loading the module (its imports and top-level code) in a worker."""
    file_size_mb: int = 16
    """RLIMIT_FSIZE: the largest file a worker may write."""
    recursion_limit: int = 1000
    """sys.setrecursionlimit in the worker (deep recursion raises RecursionError, it does not crash)."""
    mode: isolation.Mode = "bubblewrap"
    """bubblewrap: the OS sandbox (see `isolation`); unsafe-process: a plain process guarded by the audit hook only."""
    tmpfs_mb: int = 64
    """Size of each worker's private writable tmpfs (all files it writes together), in the OS sandbox."""

    @classmethod
    def from_options(cls, options: SandboxOptions) -> SandboxLimits:
        return cls(
            call_timeout_s=options.example_timeout_s,
            total_timeout_s=options.file_timeout_s,
            memory_mb=options.memory_mb,
            max_output_bytes=options.max_output_bytes,
            workers=options.workers,
            mode=options.mode,
            tmpfs_mb=options.tmpfs_mb,
        )


@dataclass(frozen=True)
class Python:
    """The interpreter that runs the worker: the project's (any Python 3.9+: the worker is standard library only)."""

    path: str = sys.executable
    version: tuple[int, int] = (sys.version_info.major, sys.version_info.minor)

    def argv(self) -> list[str]:
        """The interpreter and its options: no user site-packages, unbuffered, no script folder on sys.path."""
        return [self.path, "-s", *(["-P"] if self.version >= (3, 11) else []), "-u"]


ExampleStatus = Literal["passed", "failed", "raised", "memory", "timeout", "crashed", "not run"]


@dataclass(frozen=True)
class DoctestExample:
    """One `>>>` example of a doctest session, as doctest parsed it, and what happened when it ran."""

    line: int
    """0-based line within the docstring (doctest's `Example.lineno`)."""
    indent: int
    source: str
    want: str
    status: ExampleStatus = "not run"
    got: str = ""
    """The output doctest got (failed), ending with the traceback when one was raised."""
    exception: str | None = None
    message: str = ""
    error_line: int | None = None
    """Line of the module source where the exception was raised (raised), when it was raised there."""
    traceback: str = ""


@dataclass(frozen=True)
class DoctestRun:
    """One docstring's doctest session."""

    name: str
    """The documented object's name relative to the module (`Class.method`); "" for the module's own docstring."""
    line: int | None
    """0-based line of the docstring in the file, as doctest found it."""
    examples: tuple[DoctestExample, ...]
    skipped: frozenset[int] = frozenset()
    """Indexes of the examples that a SKIP flag or directive leaves out (doctest does not run them)."""
    unreadable: str | None = None
    """Why doctest's parser refuses the docstring (none of its examples ran), in doctest's words."""


@dataclass(frozen=True)
class Call:
    id: str
    expr: str = ""
    """Python expression evaluated in the module's namespace (with `args` bound)."""
    args: dict[str, str] = field(default_factory=dict)
    """Names bound first, in order; values are Python expression source (may use module names and earlier args)."""
    expected: str | None = None
    """Literal source of the documented result."""
    expected_exception: str | None = None
    """Documented exception name (a base class of the raised one matches too)."""
    preconditions: tuple[str, ...] = ()
    """Boolean expressions over the args, evaluated before the call."""
    postconditions: tuple[str, ...] = ()
    """Boolean expressions over the args and `result` (also `__return__`, and `_` unless an arg), after the call."""
    doctest: str | None = None
    """Instead of `expr`: run the doctest session of this docstring (a name as in `DoctestRun.name`)..."""
    doctest_except: tuple[str, ...] | None = None
    """... or of every docstring with examples that doctest finds in the module, except these."""
    command: Literal["call", "contracts"] = "call"
    """`contracts`: `payload` goes to lift_lsp/check/contracts/replay.py in the worker instead of `expr`."""
    payload: dict[str, Any] = field(default_factory=dict)
    timeout_s: float | None = None
    """This call's time limit, when not `SandboxLimits.call_timeout_s`."""


@dataclass(frozen=True)
class CallOutcome:
    id: str
    status: Status
    """ok: returned a value; raised: the expr raised; timeout; memory; crashed (signal, abnormal exit);
    error: the module failed to load, or an arg / the expr / `expected` could not be evaluated."""
    value_repr: str | None = None
    exception: str | None = None
    """Exception type name (raised; also the cause for error)."""
    message: str = ""
    matches: bool | None = None
    """With `expected`: repr equal, or `==`, or floats close (rel 1e-9); with `expected_exception`: raised it."""
    pre_results: tuple[bool | None, ...] = ()
    """One per precondition; None when the condition itself raised."""
    post_results: tuple[bool | None, ...] = ()
    """One per postcondition (only when the call returned); None when the condition raised."""
    output: str = ""
    """Captured stdout+stderr of the call (C-level and subprocess output too), truncated to max_output_bytes."""
    elapsed_s: float = 0.0
    line: int | None = None
    """Line of the module source where the exception was raised (raised, error), when it was raised there."""
    traceback: str = ""
    """Formatted traceback (raised, error), the sandbox's own frames left out; bounded."""
    loaded: bool = True
    """False when the module failed to load (or its worker to start): nothing ran."""
    doctests: tuple[DoctestRun, ...] = ()
    """The doctest sessions a doctest call ran (or started: after a timeout or crash, the example that was running
    has that status and the rest are "not run")."""
    data: Any = None
    """What a `contracts` command answered (JSON values, from a process running user code: check before use)."""


@functools.lru_cache(maxsize=16)
def check_source_compiles(source: str, filename: str = "<lift>") -> str | None:
    """None if `source` parses and compiles (nothing is executed), else an error message with its line (the last
    few answers are kept: a check asks again before its examples and its contracts run). Compiled from the text,
    without making `ast` objects (cheaper; none are shared between threads)."""
    try:
        compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:  # IndentationError, TabError included
        where = f"{filename}, line {exc.lineno}" if exc.lineno else filename
        if exc.lineno and exc.offset:
            where += f", column {exc.offset}"
        text = f"{where}: {type(exc).__name__}: {exc.msg}"
        if exc.text and exc.text.strip():
            text += f"\n    {exc.text.strip()}"
        return text
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:  # e.g. null bytes, absurd nesting
        return f"{filename}: {type(exc).__name__}: {exc}"
    return None


def _fmt_s(seconds: float) -> str:
    return f"{seconds:g}"


def _worker_env(home: str) -> dict[str, str]:
    """The whole environment of a worker: nothing from ours but PATH and LANG (no API keys or other secrets)."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "HOME": home,
        "TMPDIR": home,
        "PYTHONHASHSEED": "0",
        "PYTHONUTF8": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONBREAKPOINT": "0",
        "MALLOC_ARENA_MAX": "2",  # glibc reserves 64 MiB of address space per thread arena otherwise
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def classify_death(returncode: int | None, log_tail: str, memory_mb: int) -> tuple[Status, str]:
    """Status and message for a worker that died on its own while running a call."""
    memory = f"exceeded {memory_mb} MiB"
    oom = any(marker in log_tail for marker in _OOM_MARKERS)
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if -returncode == signal.SIGKILL:  # not ours (we only kill at deadlines): the kernel's OOM killer
            return "memory", f"{memory} (killed by SIGKILL)"
        if -returncode == signal.SIGXCPU:
            return "timeout", "CPU time limit reached"
        if oom:
            return "memory", f"{memory} (killed by {name})"
        return "crashed", f"killed by {name}"
    if oom:
        return "memory", f"{memory} (exit status {returncode})"
    return "crashed", f"worker exited with status {returncode}"


class _Timeout(Exception):
    pass


class _Died(Exception):
    pass


class _Proc:
    """One worker process and its pipes."""

    def __init__(
        self, root: str, serial: int, limits: SandboxLimits, python: Python, readable: Sequence[str] = ()
    ) -> None:
        """Start a worker run by `python` in the sandbox `limits.mode` names (see `isolation`); it may read
        `readable` (the project's folders) besides its interpreter's. Its stdout/stderr go to a log in `root`, which
        it reads back through its own fd 1; in `unsafe-process` mode it works in a folder of `root`."""
        self.log_path = os.path.join(root, f"w{serial}.log")
        host_dir = None
        if limits.mode == "unsafe-process":
            host_dir = os.path.join(root, f"w{serial}")
            os.mkdir(host_dir)
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        try:
            with open(self.log_path, "wb") as log:
                log_arg = self.log_path if host_dir else "/proc/self/fd/1"  # the log is not mounted in the sandbox
                argv = [*python.argv(), _WORKER_SCRIPT, str(cmd_r), str(res_w), log_arg]
                self.process = isolation.start(
                    argv,
                    mode=limits.mode,
                    env=_worker_env(host_dir or isolation.WORK_DIR),
                    output=log,
                    pass_fds=(cmd_r, res_w),
                    host_dir=host_dir,
                    readable=[_WORKER_SCRIPT, _REPLAY_SCRIPT, _EXAMPLES_SCRIPT, *readable],
                    tmpfs_mb=limits.tmpfs_mb,
                )
        except BaseException:
            for fd in (cmd_r, cmd_w, res_r, res_w):
                os.close(fd)
            raise
        os.close(cmd_r)
        os.close(res_w)
        os.set_blocking(cmd_w, False)
        self.cmd_fd: int | None = cmd_w
        self.res_fd: int | None = res_r
        self.buf = bytearray()
        self.killed = False

    def send(self, message: dict[str, Any], deadline: float) -> None:
        assert self.cmd_fd is not None
        view = memoryview((json.dumps(message) + "\n").encode())
        poller = select.poll()
        poller.register(self.cmd_fd, select.POLLOUT)
        while view:
            try:
                view = view[os.write(self.cmd_fd, view) :]
                continue
            except BlockingIOError:
                pass
            except (BrokenPipeError, OSError) as exc:
                raise _Died from exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout
            poller.poll(math.ceil(remaining * 1000))

    def receive(self, deadline: float) -> dict[str, Any]:
        assert self.res_fd is not None
        poller = select.poll()
        poller.register(self.res_fd, select.POLLIN)
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line = bytes(self.buf[:nl])
                del self.buf[: nl + 1]
                try:
                    message = json.loads(line)
                except ValueError:
                    continue  # not ours (user code writing to our pipe): skip
                if isinstance(message, dict):
                    return message
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout
            if not poller.poll(math.ceil(remaining * 1000)):
                continue
            chunk = os.read(self.res_fd, 1 << 16)
            if not chunk:
                raise _Died
            self.buf += chunk
            if len(self.buf) > _MAX_MESSAGE_BYTES:
                raise _Died

    def log_size(self) -> int:
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_text(self, start: int, limit: int) -> str:
        """The last `limit` bytes the worker wrote to fds 1/2 after offset `start`."""
        try:
            with open(self.log_path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(start, size - limit))
                return f.read(limit).decode("utf-8", "backslashreplace")
        except OSError:
            return ""

    def wait_dead(self) -> int | None:
        """Exit status of a worker whose result pipe was closed (it is dead or about to be)."""
        code = self.process.wait(timeout=2.0)
        if code is None:
            self.kill()
            code = self.process.returncode()
        return code

    def kill(self) -> None:
        """Kill the worker and every process it started, reap it, close the pipes."""
        if not self.killed:
            self.killed = True
            self.process.kill()
        for name in ("cmd_fd", "res_fd"):
            fd = getattr(self, name)
            if fd is not None:
                setattr(self, name, None)
                with contextlib.suppress(OSError):
                    os.close(fd)


class WorkerPool:
    """Sandbox workers kept loaded between the `run_calls` of one thread, so that the files of a project, checked one
    after another, do not each start a Python and import doctest and their packages anew: the next file's module is
    imported into the same process, as `python -m doctest` and pytest run a project's modules (what one file's examples
    change stays changed for the next). A worker retires when it has used half its CPU time or memory limit; one that
    broke, timed out or met a module that failed to load is not kept. Workers die with the thread that started them,
    so a pool serves the thread that made it, where `active()` is entered."""

    _current = threading.local()
    KEPT = 2
    """Idle workers kept at most (started differently: another interpreter, other folders to read, other limits)."""

    def __init__(self) -> None:
        self.root = tempfile.mkdtemp(prefix="lift-sandbox-")
        self.serials = itertools.count(1)
        self.thread = threading.get_ident()
        self.idle: list[tuple[tuple[object, ...], list[str], _Proc]] = []
        """The idle workers, oldest first: what each was started with (interpreter, limits), the folders it may
        read, the worker."""

    @classmethod
    def current(cls) -> WorkerPool | None:
        pool: WorkerPool | None = getattr(cls._current, "pool", None)
        return pool

    @contextlib.contextmanager
    def active(self) -> Iterator[WorkerPool]:
        """Within it, `run_calls` in this thread takes its worker from this pool and gives it back."""
        if threading.get_ident() != self.thread:
            raise RuntimeError("a WorkerPool serves the thread that made it")
        WorkerPool._current.pool = self
        try:
            yield self
        finally:
            WorkerPool._current.pool = None

    def take(self, run: _Run) -> _Proc | None:
        """An idle worker started like the one `run` needs, that may read all that `run` reads."""
        started = _started_with(run)
        for i, (with_, readable, proc) in enumerate(self.idle):
            if with_ == started and all(_under_any(path, readable) for path in run.readable()):
                del self.idle[i]
                return proc
        return None

    def give(self, run: _Run, proc: _Proc) -> None:
        """Keep `proc` (which served `run`) for a next run; past `KEPT`, the oldest idle worker goes."""
        self.idle.append((_started_with(run), run.readable(), proc))
        while len(self.idle) > self.KEPT:
            self.idle.pop(0)[2].kill()

    def close(self) -> None:
        """Kill the idle workers; remove the workers' logs and folders."""
        while self.idle:
            self.idle.pop()[2].kill()
        shutil.rmtree(self.root, ignore_errors=True)


def _started_with(run: _Run) -> tuple[object, ...]:
    """What a worker is started with, besides the folders it may read: a worker serves runs that agree on it."""
    lim = run.limits
    return (tuple(run.python.argv()), lim.mode, lim.tmpfs_mb, json.dumps(run.worker_limits(), sort_keys=True))


def _under_any(path: str, folders: Sequence[str]) -> bool:
    return any(path == folder or path.startswith(folder.rstrip(os.sep) + os.sep) for folder in folders)


@dataclass
class _Run:
    """State shared by the driver threads of one run_calls."""

    source: str
    filename: str
    module_name: str
    is_package: bool
    sys_path: list[str]
    python: Python
    doctest_flags: list[str]
    readable_extra: list[str]
    calls: list[Call]
    limits: SandboxLimits
    root: str
    deadline: float
    results: list[CallOutcome | None]
    queue: deque[int]
    pool: WorkerPool | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    load_failure: dict[str, Any] | None = None
    serials: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def next_index(self) -> int | None:
        with self.lock:
            return self.queue.popleft() if self.queue else None

    def next_serial(self) -> int:
        with self.lock:
            return next(self.serials)

    def readable(self) -> list[str]:
        """What a worker for this run may read besides its interpreter's folders."""
        folder = [] if self.filename.startswith("<") else [os.path.dirname(self.filename)]
        return [*self.sys_path, *self.readable_extra, *folder]

    def module(self) -> dict[str, Any]:
        """The module a worker imports (its `init` or `load` message, less the limits)."""
        return {
            "source": self.source,
            "filename": self.filename,
            "module_name": self.module_name,
            "is_package": self.is_package,
            "sys_path": self.sys_path,
            "doctest_flags": self.doctest_flags,
        }

    def not_run(self, index: int) -> CallOutcome:
        limit = _fmt_s(self.limits.total_timeout_s)
        return CallOutcome(self.calls[index].id, "timeout", message=f"not run: file time limit of {limit} s reached")

    def worker_limits(self) -> dict[str, Any]:
        lim = self.limits
        return {
            "memory_mb": lim.memory_mb,
            "cpu_s": math.ceil(2 * (lim.total_timeout_s + lim.load_timeout_s)) + 10,
            "file_size_mb": lim.file_size_mb,
            "max_output_bytes": lim.max_output_bytes,
            "recursion_limit": lim.recursion_limit,
        }


def _outcome_from(call: Call, message: dict[str, Any], elapsed: float) -> CallOutcome:
    """A CallOutcome from the worker's JSON (checked field by field: it comes from a process running user code)."""

    def text(key: str) -> str | None:
        value = message.get(key)
        return value if isinstance(value, str) else None

    def flags(key: str) -> tuple[bool | None, ...]:
        value = message.get(key)
        if not isinstance(value, list):
            return ()
        return tuple(v if isinstance(v, bool) else None for v in value)

    status = message.get("status")
    if status not in ("ok", "raised", "timeout", "memory", "crashed", "error"):
        return CallOutcome(call.id, "crashed", message="sandbox protocol error", elapsed_s=elapsed)
    matches = message.get("matches")
    line = message.get("line")
    worker_elapsed = message.get("elapsed_s")
    return CallOutcome(
        id=call.id,
        status=status,
        value_repr=text("value_repr"),
        exception=text("exception"),
        message=text("message") or "",
        matches=matches if isinstance(matches, bool) else None,
        pre_results=flags("pre_results"),
        post_results=flags("post_results"),
        output=text("output") or "",
        elapsed_s=float(worker_elapsed) if isinstance(worker_elapsed, int | float) else elapsed,
        line=line if isinstance(line, int) and not isinstance(line, bool) else None,
        traceback=text("traceback") or "",
        data=message.get("data"),
    )


def _call_message(call: Call, limits: SandboxLimits) -> dict[str, Any]:
    if call.doctest is not None or call.doctest_except is not None:
        selector = {"only": call.doctest} if call.doctest is not None else {"except": list(call.doctest_except or ())}
        return {"id": call.id, "doctest": selector, "max_output_bytes": limits.max_output_bytes}
    return {
        "id": call.id,
        "expr": call.expr,
        "args": list(call.args.items()),
        "expected": call.expected,
        "expected_exception": call.expected_exception,
        "preconditions": list(call.preconditions),
        "postconditions": list(call.postconditions),
        "max_output_bytes": limits.max_output_bytes,
        "command": call.command,
        "payload": call.payload,
    }


def _start_worker(run: _Run) -> tuple[_Proc | None, dict[str, Any] | None]:
    """A loaded worker (the pool's idle one when it fits, else a new one); or (None, failure), failure a
    load_error-like dict; or (None, None) past the deadline."""
    reused = run.pool.take(run) if run.pool is not None else None
    if reused is not None:
        proc, failure = _load(run, reused, {"event": "load", **run.module()})
        if proc is not None or failure is None or failure.get("status") == "timeout":
            return proc, failure
        # retired, or dead, or the module failed to load where other modules were loaded before: a fresh worker
    try:
        fresh = _Proc(run.root, run.next_serial(), run.limits, run.python, run.readable())
    except isolation.SandboxUnavailable as exc:
        return None, _unavailable(str(exc))
    except OSError as exc:
        return None, {"status": "error", "message": f"could not start a sandbox worker: {exc}"}
    return _load(run, fresh, {**run.module(), "limits": run.worker_limits()})


def _load(run: _Run, proc: _Proc, message: dict[str, Any]) -> tuple[_Proc | None, dict[str, Any] | None]:
    """Have `proc` import the run's module (`message`: its init, or a load for a worker that served another file)."""
    limits = run.limits
    load_deadline = min(time.monotonic() + limits.load_timeout_s, run.deadline)
    try:
        proc.send(message, load_deadline)
        reply = proc.receive(load_deadline)
    except _Timeout:
        proc.kill()
        if load_deadline >= run.deadline:
            return None, None
        return None, {
            "status": "timeout",
            "message": f"module took more than {_fmt_s(limits.load_timeout_s)} s to load",
        }
    except _Died:
        code = proc.wait_dead()
        tail = proc.log_text(0, 2000)
        proc.kill()
        unbuilt = isolation.setup_error(tail)
        if unbuilt is not None:
            return None, _unavailable(unbuilt)
        status, why = classify_death(code, tail, limits.memory_mb)
        return None, {"status": status, "message": f"module failed to load: {why}", "output": tail}
    if reply.get("event") == "ready":
        return proc, None
    proc.kill()
    return None, reply


def _drive(run: _Run) -> None:
    """One driver thread: takes calls from the shared queue and runs them on its own worker, restarting it as needed."""
    proc: _Proc | None = None
    try:
        while (index := run.next_index()) is not None:
            call = run.calls[index]
            if run.load_failure is not None:
                run.results[index] = _failed_load(call, run.load_failure)
                continue
            if time.monotonic() >= run.deadline:
                run.results[index] = run.not_run(index)
                continue
            if proc is None:
                proc, failure = _start_worker(run)
                if proc is None:
                    if failure is None:
                        run.results[index] = run.not_run(index)
                    else:
                        with run.lock:
                            if run.load_failure is None:
                                run.load_failure = failure
                        run.results[index] = _failed_load(call, failure)
                    continue
            run.results[index], keep = _run_one(run, proc, call)
            if not keep:
                proc.kill()
                proc = None
        if proc is not None and run.pool is not None:
            run.pool.give(run, proc)
            proc = None
    finally:
        if proc is not None:
            proc.kill()


class _Sessions:
    """The doctest sessions of one call, built from the worker's events (checked field by field: they come from a
    process running user code)."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, int | None, list[DoctestExample], frozenset[int], str | None]] = []
        self.running: int | None = None

    def add(self, event: dict[str, Any]) -> bool:
        """Take one event; False when it is not a doctest event."""
        kind = event.get("event")
        if kind == "test":
            examples = [
                DoctestExample(line=e[0], indent=e[1], source=e[2], want=e[3])
                for e in event.get("examples", [])
                if isinstance(e, list) and len(e) == 4 and _ints(e[:2]) and all(isinstance(x, str) for x in e[2:])
            ]
            skipped = frozenset(i for i in event.get("skipped", []) if isinstance(i, int))
            line = event.get("lineno")
            unreadable = event.get("unreadable")
            name = str(event.get("name", ""))
            why = unreadable if isinstance(unreadable, str) else None
            self.runs.append((name, line if _ints([line]) else None, examples, skipped, why))
            self.running = None
        elif kind == "start":
            index = event.get("index")
            valid = isinstance(index, int) and self.runs and 0 <= index < len(self.runs[-1][2])
            self.running = index if valid else None
        elif kind == "done":
            self._set(event.get("index"), event)
            self.running = None
        else:
            return False
        return True

    def _set(self, index: object, event: dict[str, Any]) -> None:
        if not self.runs or not isinstance(index, int) or not 0 <= index < len(self.runs[-1][2]):
            return
        examples = self.runs[-1][2]
        status = event.get("status")
        line = event.get("line")

        def text(key: str) -> str:
            value = event.get(key)
            return value if isinstance(value, str) else ""

        examples[index] = dataclasses.replace(
            examples[index],
            status=status if status in ("passed", "failed", "raised", "memory") else "crashed",
            got=text("got"),
            exception=text("exception") or None,
            message=text("message"),
            error_line=line if _ints([line]) else None,
            traceback=text("traceback"),
        )

    def result(self, stopped: ExampleStatus | None = None, message: str = "") -> tuple[DoctestRun, ...]:
        """The sessions; with `stopped`, the example that was running gets that status and message."""
        if stopped is not None and self.running is not None:
            examples = self.runs[-1][2]
            examples[self.running] = dataclasses.replace(examples[self.running], status=stopped, message=message)
        return tuple(DoctestRun(name, line, tuple(ex), skipped, why) for name, line, ex, skipped, why in self.runs)


def _ints(values: Sequence[object]) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def _run_one(run: _Run, proc: _Proc, call: Call) -> tuple[CallOutcome, bool]:
    """Run one call on a loaded worker; the bool says whether the worker can take more calls. Each doctest example
    gets its own time limit: the deadline moves on at every example the worker starts."""
    limits = run.limits
    start = time.monotonic()
    call_timeout_s = call.timeout_s or limits.call_timeout_s
    call_deadline = min(start + call_timeout_s, run.deadline)
    log_start = proc.log_size()
    sessions = _Sessions()
    try:
        proc.send(_call_message(call, limits), call_deadline)
        while True:
            reply = proc.receive(call_deadline)
            if reply.get("id") != call.id:
                continue
            if reply.get("event") == "outcome":
                break
            if sessions.add(reply):
                call_deadline = min(time.monotonic() + limits.call_timeout_s, run.deadline)
    except _Timeout:
        proc.kill()
        elapsed = time.monotonic() - start
        if call_deadline >= run.deadline:
            message = f"stopped: file time limit of {_fmt_s(limits.total_timeout_s)} s reached"
        else:
            message = f"timed out after {_fmt_s(call_timeout_s)} s"
        output = proc.log_text(log_start, limits.max_output_bytes)
        doctests = sessions.result("timeout", message)
        outcome = CallOutcome(call.id, "timeout", message=message, output=output, elapsed_s=elapsed, doctests=doctests)
        return outcome, False
    except _Died:
        code = proc.wait_dead()
        output = proc.log_text(log_start, limits.max_output_bytes)
        status, message = classify_death(code, output, limits.memory_mb)
        return (
            CallOutcome(
                call.id,
                status,
                message=message,
                output=output,
                elapsed_s=time.monotonic() - start,
                doctests=sessions.result("memory" if status == "memory" else "crashed", message),
            ),
            False,
        )
    outcome = dataclasses.replace(_outcome_from(call, reply, time.monotonic() - start), doctests=sessions.result())
    return outcome, outcome.status not in ("memory", "crashed", "timeout")


def _unavailable(why: str) -> dict[str, Any]:
    """The load failure of every call when no sandbox can be made."""
    return {"status": "error", "exception": UNAVAILABLE, "message": f"cannot sandbox: {why}"}


def _failed_load(call: Call, failure: dict[str, Any]) -> CallOutcome:
    status = failure.get("status")
    line = failure.get("line")
    return CallOutcome(
        id=call.id,
        status=status if status in ("timeout", "memory", "crashed", "error") else "error",
        exception=failure.get("exception") if isinstance(failure.get("exception"), str) else None,
        message=str(failure.get("message", "module failed to load")),
        output=str(failure.get("output", "")),
        line=line if isinstance(line, int) and not isinstance(line, bool) else None,
        traceback=str(failure.get("traceback", "")),
        loaded=False,
    )


def run_calls(
    module_source: str,
    calls: Sequence[Call],
    limits: SandboxLimits = SandboxLimits(),
    filename: str = "<lift>",
    *,
    sys_path: Sequence[str] = (),
    module_name: str = "__lift__",
    is_package: bool = False,
    python: Python | None = None,
    doctest_flags: Sequence[str] = (),
    readable: Sequence[str] = (),
) -> list[CallOutcome]:
    """Load `module_source` in sandbox workers and evaluate `calls` there; one outcome per call, in order.

    Never raises for bad user code. `filename` names the code in tracebacks (and is its `__file__` unless it starts
    with "<"); `sys_path` entries are put first on the workers' sys.path (the package root, for its imports). The
    source is imported as the module `module_name` (a dotted name: its parent packages are imported from `sys_path`
    first, so relative imports work), a package's `__init__` when `is_package`; by `python` (default: this
    interpreter). Doctest calls run with the option flags named in `doctest_flags`. The workers may read `readable`
    besides the interpreter's folders and `sys_path` (e.g. lift-lsp's own packages, for the contract engines). With
    a `WorkerPool` active in this thread, the calls run one after another on a worker of the pool.
    """
    call_list = list(calls)
    if not call_list:
        return []
    compile_error = check_source_compiles(module_source, filename)
    if compile_error is not None:
        return [
            CallOutcome(c.id, "error", exception="SyntaxError", message=compile_error, loaded=False) for c in call_list
        ]
    problem = isolation.sandbox_problem(limits.mode)
    if problem is not None:
        return [_failed_load(c, _unavailable(problem)) for c in call_list]
    pool = WorkerPool.current()
    root = pool.root if pool is not None else tempfile.mkdtemp(prefix="lift-sandbox-")
    run = _Run(
        source=module_source,
        filename=filename,
        module_name=module_name,
        is_package=is_package,
        sys_path=[os.fspath(p) for p in sys_path],
        python=python or Python(),
        doctest_flags=list(doctest_flags),
        readable_extra=[os.fspath(p) for p in readable],
        calls=call_list,
        limits=limits,
        root=root,
        deadline=time.monotonic() + limits.total_timeout_s,
        results=[None] * len(call_list),
        queue=deque(range(len(call_list))),
        pool=pool,
        serials=pool.serials if pool is not None else itertools.count(1),
    )
    errors: list[BaseException] = []

    def drive() -> None:
        try:
            _drive(run)
        except BaseException as exc:  # a bug of ours: report it on the calls it left, do not hang or raise
            errors.append(exc)

    if pool is not None:  # one worker, driven by this thread, which owns the pool's workers
        drive()
    else:
        try:
            threads = [
                threading.Thread(target=drive, name=f"lift-sandbox-{i}", daemon=True)
                for i in range(max(1, min(limits.workers, len(call_list))))
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            shutil.rmtree(root, ignore_errors=True)
    internal = f"internal sandbox error: {errors[0]!r}" if errors else "not run"
    return [
        r if r is not None else CallOutcome(c.id, "error", message=internal)
        for r, c in zip(run.results, call_list, strict=True)
    ]
