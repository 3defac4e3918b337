"""Run user (and generated) Python code in separate worker processes, never in this one.

`run_calls(source, calls)` loads the module source in each of `limits.workers` fresh processes and evaluates the
calls there (examples, pre/postconditions), one outcome per call. Each worker runs `worker.py` in its own
process group and temporary directory (deleted afterwards), with a minimal environment (no secrets of ours), stdin on
/dev/null and resource limits (address space, CPU, file size, core dumps; processes too, except for root, which
ignores that limit). This process enforces the time limits: a call past its deadline has its worker's whole process
group killed, and a fresh worker takes the remaining calls.

Before any user code runs, the worker installs an audit hook (PEP 578; `worker.install_guard`, which cannot
be removed) that refuses writing outside its directory (opening files for writing, sqlite databases, removing,
renaming, changing permissions), starting processes (fork, exec, subprocess, os.system), network access (sockets
other than unnamed local ones such as asyncio's socket pair; DNS look-ups), loading native libraries with ctypes
(except while a module is being imported, so that numpy, torch or z3 load theirs), raising resource limits,
signalling other processes and reading their environment or memory: the code gets a `SandboxViolation` (a
PermissionError) and the call reports it. Run as root on Linux where the kernel permits it, the worker also moves into
a network namespace of its own with no usable interface, so that not even native code reaches a network; elsewhere
that step is skipped silently. This guards against accidents and runaway generated code, not against a determined
attacker: native code (C extensions, libraries bound with ctypes at import) is not audited, nor are ctypes pointers
and casts, and either can bypass the hook; so can some indirect routes (e.g. paths relative to a `dir_fd`, or
changing a file through a file descriptor). It is no filesystem jail (reading any file this user can read stays
allowed), and without the network namespace no network jail either.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lift_lsp.spec import pyast

if TYPE_CHECKING:
    from lift_lsp.options import SandboxOptions

Status = Literal["ok", "raised", "timeout", "memory", "crashed", "error"]

_WORKER_SCRIPT = str(Path(__file__).with_name("worker.py"))
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

    @classmethod
    def from_options(cls, options: SandboxOptions) -> SandboxLimits:
        return cls(
            call_timeout_s=options.example_timeout_s,
            total_timeout_s=options.file_timeout_s,
            memory_mb=options.memory_mb,
            max_output_bytes=options.max_output_bytes,
            workers=options.workers,
        )


@dataclass(frozen=True)
class Call:
    id: str
    expr: str
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


def check_source_compiles(source: str, filename: str = "<lift>") -> str | None:
    """None if `source` parses and compiles (nothing is executed), else an error message with its line."""
    try:
        compile(pyast.parse(source, filename), filename, "exec", dont_inherit=True)
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

    def __init__(self, root: str, serial: int, limits: SandboxLimits) -> None:
        self.dir = os.path.join(root, f"w{serial}")
        os.mkdir(self.dir)
        self.log_path = os.path.join(root, f"w{serial}.log")
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        try:
            with open(self.log_path, "wb") as log:
                self.popen = subprocess.Popen(
                    [sys.executable, "-s", "-P", "-u", _WORKER_SCRIPT, str(cmd_r), str(res_w), self.log_path],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.dir,
                    env=_worker_env(self.dir),
                    start_new_session=True,
                    pass_fds=(cmd_r, res_w),
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
        try:
            return self.popen.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.popen.returncode

    def kill(self) -> None:
        """Kill the worker's whole process group (its children too), reap it, close the pipes."""
        if not self.killed:
            self.killed = True
            if self.popen.returncode is None:  # not reaped yet: its pid (the group id) cannot have been reused
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=5.0)
        for name in ("cmd_fd", "res_fd"):
            fd = getattr(self, name)
            if fd is not None:
                setattr(self, name, None)
                with contextlib.suppress(OSError):
                    os.close(fd)


@dataclass
class _Run:
    """State shared by the driver threads of one run_calls."""

    source: str
    filename: str
    module_name: str
    sys_path: list[str]
    calls: list[Call]
    limits: SandboxLimits
    root: str
    deadline: float
    results: list[CallOutcome | None]
    queue: deque[int]
    lock: threading.Lock = field(default_factory=threading.Lock)
    load_failure: dict[str, Any] | None = None
    serial: int = 0

    def next_index(self) -> int | None:
        with self.lock:
            return self.queue.popleft() if self.queue else None

    def next_serial(self) -> int:
        with self.lock:
            self.serial += 1
            return self.serial

    def not_run(self, index: int) -> CallOutcome:
        limit = _fmt_s(self.limits.total_timeout_s)
        return CallOutcome(self.calls[index].id, "timeout", message=f"not run: file time limit of {limit} s reached")

    def worker_limits(self) -> dict[str, Any]:
        lim = self.limits
        return {
            "memory_mb": lim.memory_mb,
            "cpu_s": math.ceil(2 * (lim.total_timeout_s + lim.load_timeout_s)) + 10,
            "file_size_mb": lim.file_size_mb,
            "extra_processes": 256,
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
    )


def _call_message(call: Call, limits: SandboxLimits) -> dict[str, Any]:
    return {
        "id": call.id,
        "expr": call.expr,
        "args": list(call.args.items()),
        "expected": call.expected,
        "expected_exception": call.expected_exception,
        "preconditions": list(call.preconditions),
        "postconditions": list(call.postconditions),
        "max_output_bytes": limits.max_output_bytes,
    }


def _start_worker(run: _Run) -> tuple[_Proc | None, dict[str, Any] | None]:
    """A loaded worker; or (None, failure), failure a load_error-like dict; or (None, None) past the deadline."""
    limits = run.limits
    load_deadline = min(time.monotonic() + limits.load_timeout_s, run.deadline)
    try:
        proc = _Proc(run.root, run.next_serial(), limits)
    except OSError as exc:
        return None, {"status": "error", "message": f"could not start a sandbox worker: {exc}"}
    init = {
        "source": run.source,
        "filename": run.filename,
        "module_name": run.module_name,
        "sys_path": run.sys_path,
        "limits": run.worker_limits(),
    }
    try:
        proc.send(init, load_deadline)
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
        status, why = classify_death(code, tail, limits.memory_mb)
        proc.kill()
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
    finally:
        if proc is not None:
            proc.kill()


def _run_one(run: _Run, proc: _Proc, call: Call) -> tuple[CallOutcome, bool]:
    """Run one call on a loaded worker; the bool says whether the worker can take more calls."""
    limits = run.limits
    start = time.monotonic()
    call_deadline = min(start + limits.call_timeout_s, run.deadline)
    log_start = proc.log_size()
    try:
        proc.send(_call_message(call, limits), call_deadline)
        while True:
            reply = proc.receive(call_deadline)
            if reply.get("event") == "outcome" and reply.get("id") == call.id:
                break
    except _Timeout:
        proc.kill()
        elapsed = time.monotonic() - start
        if start + limits.call_timeout_s > run.deadline:
            message = f"stopped: file time limit of {_fmt_s(limits.total_timeout_s)} s reached"
        else:
            message = f"timed out after {_fmt_s(limits.call_timeout_s)} s"
        output = proc.log_text(log_start, limits.max_output_bytes)
        return CallOutcome(call.id, "timeout", message=message, output=output, elapsed_s=elapsed), False
    except _Died:
        code = proc.wait_dead()
        output = proc.log_text(log_start, limits.max_output_bytes)
        status, message = classify_death(code, output, limits.memory_mb)
        return CallOutcome(call.id, status, message=message, output=output, elapsed_s=time.monotonic() - start), False
    outcome = _outcome_from(call, reply, time.monotonic() - start)
    return outcome, outcome.status not in ("memory", "crashed", "timeout")


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
    )


def run_calls(
    module_source: str,
    calls: Sequence[Call],
    limits: SandboxLimits = SandboxLimits(),
    filename: str = "<lift>",
    *,
    sys_path: Sequence[str] = (),
    module_name: str = "__lift__",
) -> list[CallOutcome]:
    """Load `module_source` in sandbox workers and evaluate `calls` there; one outcome per call, in order.

    Never raises for bad user code. `filename` names the code in tracebacks (and is its `__file__` unless it starts
    with "<"); `sys_path` entries are put first on the workers' sys.path (e.g. the project root, for its imports);
    the module is registered in the workers' sys.modules as `module_name`.
    """
    call_list = list(calls)
    if not call_list:
        return []
    compile_error = check_source_compiles(module_source, filename)
    if compile_error is not None:
        return [CallOutcome(c.id, "error", exception="SyntaxError", message=compile_error) for c in call_list]
    root = tempfile.mkdtemp(prefix="lift-sandbox-")
    run = _Run(
        source=module_source,
        filename=filename,
        module_name=module_name,
        sys_path=[os.fspath(p) for p in sys_path],
        calls=call_list,
        limits=limits,
        root=root,
        deadline=time.monotonic() + limits.total_timeout_s,
        results=[None] * len(call_list),
        queue=deque(range(len(call_list))),
    )
    errors: list[BaseException] = []

    def drive() -> None:
        try:
            _drive(run)
        except BaseException as exc:  # a bug of ours: report it on the calls it left, do not hang or raise
            errors.append(exc)

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
