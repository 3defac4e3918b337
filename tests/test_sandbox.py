"""The sandbox: outcomes, comparisons, conditions, limits, isolation, clean-up."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import resource
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lift_lsp.check import sandbox
from lift_lsp.check.sandbox import (
    Call,
    CallOutcome,
    SandboxLimits,
    WorkerPool,
    check_source_compiles,
    classify_death,
    run_calls,
)

MODULE = """
import os, sys, time, subprocess
from dataclasses import dataclass

@dataclass
class Point:
    x: int
    y: int

class Opaque:
    def __repr__(self):
        return "Opaque<7>"

class Weird:
    def __eq__(self, other):
        return [1, 2]          # like a numpy array: not a bool
    def __repr__(self):
        return "Weird()"

class Angry:
    def __eq__(self, other):
        raise RuntimeError("no comparing")

def add(a, b):
    return a + b

def div(a, b):
    return a / b

def square(x):
    return x * x

def loop():
    while True:
        pass

def rec(n):
    return rec(n + 1)

def grow():
    items = []
    while True:
        items.append([0] * 10_000)

def spawn_and_hang(pid_file):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)"])
    with open(pid_file, "w") as f:
        f.write(str(child.pid))
    time.sleep(1000)

def spawn():
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)"]).pid

if __name__ == "__main__":
    raise SystemExit("a module's main block must not run")
"""

QUICK = SandboxLimits(call_timeout_s=1.0, total_timeout_s=20.0, memory_mb=256, workers=1)


def by_id(outcomes: list[CallOutcome]) -> dict[str, CallOutcome]:
    return {o.id: o for o in outcomes}


def test_ok_raised_and_matches() -> None:
    calls = [
        Call("int_ok", "add(1, 2)", expected="3"),
        Call("int_wrong", "add(1, 2)", expected="4"),
        Call("float_close", "add(0.1, 0.2)", expected="0.3"),
        Call("float_far", "add(0.1, 0.2)", expected="0.31"),
        Call("nested_floats", "[add(0.1, 0.2), (1.0, 0.7 + 0.1)]", expected="[0.3, (1.0, 0.8)]"),
        Call("module_name_in_expected", "Point(1, 2)", expected="Point(x=1, y=2)"),
        Call("repr_only", "Opaque()", expected="Opaque<7>"),  # not evaluable: compared as text, like doctest
        Call("string", "'a' + 'b'", expected="'ab'"),
        Call("non_bool_eq", "Weird()", expected="0"),
        Call("raising_eq", "Angry()", expected="1"),
        Call("raised", "div(1, 0)", expected_exception="ZeroDivisionError"),
        Call("raised_base", "div(1, 0)", expected_exception="ArithmeticError"),
        Call("raised_other", "div(1, 0)", expected_exception="ValueError"),
        Call("raised_vs_value", "div(1, 0)", expected="1"),
        Call("value_vs_raises", "div(1, 1)", expected_exception="ZeroDivisionError"),
        Call("no_expectation", "div(3, 2)"),
    ]
    out = by_id(run_calls(MODULE, calls, QUICK))
    assert [o.id for o in run_calls(MODULE, calls[:3], QUICK)] == ["int_ok", "int_wrong", "float_close"]
    assert out["int_ok"].status == "ok" and out["int_ok"].value_repr == "3" and out["int_ok"].matches is True
    assert out["int_wrong"].matches is False
    assert out["float_close"].value_repr == "0.30000000000000004" and out["float_close"].matches is True
    assert out["float_far"].matches is False
    assert out["nested_floats"].matches is True
    assert out["module_name_in_expected"].matches is True
    assert out["repr_only"].status == "ok" and out["repr_only"].matches is True
    assert out["string"].value_repr == "'ab'" and out["string"].matches is True
    assert out["non_bool_eq"].status == "ok" and out["non_bool_eq"].matches is False
    assert out["raising_eq"].status == "ok" and out["raising_eq"].matches is False
    raised = out["raised"]
    assert raised.status == "raised" and raised.exception == "ZeroDivisionError"
    assert raised.message == "division by zero" and raised.matches is True
    assert raised.line is not None and MODULE.splitlines()[raised.line - 1].strip() == "return a / b"
    assert "ZeroDivisionError" in raised.traceback and "check/worker.py" not in raised.traceback
    assert out["raised_base"].matches is True
    assert out["raised_other"].matches is False
    assert out["raised_vs_value"].status == "raised" and out["raised_vs_value"].matches is False
    assert out["value_vs_raises"].status == "ok" and out["value_vs_raises"].matches is False
    assert out["no_expectation"].value_repr == "1.5" and out["no_expectation"].matches is None


def test_args_and_conditions() -> None:
    calls = [
        Call(
            "sq",
            "square(x)",
            args={"x": "4"},
            expected="16",
            preconditions=("x > 0", "x < 0", "undefined_name > 0"),
            postconditions=("result == x * x", "result < 0", "__return__ == 16", "1 / 0"),
        ),
        Call("args_chain", "[v * k for v in xs]", args={"xs": "[1, 2]", "k": "len(xs) + 1"}, expected="[3, 6]"),
        Call("post_after_raise", "div(x, 0)", args={"x": "1"}, postconditions=("True",)),
        Call("bad_arg", "square(x)", args={"x": "no_such_name"}),
        Call("bad_expr", "square(", args={"x": "1"}),
        Call("bad_expected", "square(2)", expected="no_such_name"),
    ]
    out = by_id(run_calls(MODULE, calls, QUICK))
    sq = out["sq"]
    assert sq.status == "ok" and sq.matches is True
    assert sq.pre_results == (True, False, None)
    assert sq.post_results == (True, False, True, None)
    assert out["args_chain"].status == "ok" and out["args_chain"].matches is True
    assert out["post_after_raise"].status == "raised" and out["post_after_raise"].post_results == ()
    assert out["bad_arg"].status == "error" and "no_such_name" in out["bad_arg"].message
    assert out["bad_arg"].exception == "NameError"
    assert out["bad_expr"].status == "error" and out["bad_expr"].exception == "SyntaxError"
    bad_expected = out["bad_expected"]
    assert bad_expected.status == "error" and bad_expected.value_repr == "4" and "no_such_name" in bad_expected.message


def test_timeout_kills_and_later_calls_run() -> None:
    calls = [Call("before", "add(1, 1)"), Call("loop", "loop()"), Call("after", "add(2, 3)", expected="5")]
    start = time.monotonic()
    out = by_id(run_calls(MODULE, calls, QUICK))
    wall = time.monotonic() - start
    loop = out["loop"]
    assert loop.status == "timeout" and loop.message == "timed out after 1 s"
    assert 0.9 <= loop.elapsed_s < QUICK.call_timeout_s + 1.0
    assert out["before"].value_repr == "2"
    assert out["after"].status == "ok" and out["after"].matches is True
    assert wall < QUICK.call_timeout_s + 3.0


def test_total_time_limit() -> None:
    limits = SandboxLimits(call_timeout_s=1.0, total_timeout_s=1.5, workers=1)
    out = run_calls(MODULE, [Call("a", "loop()"), Call("b", "loop()"), Call("c", "add(1, 2)")], limits)
    assert [o.status for o in out] == ["timeout", "timeout", "timeout"]
    assert out[0].message == "timed out after 1 s"
    assert out[1].message == "stopped: file time limit of 1.5 s reached"
    assert out[2].message == "not run: file time limit of 1.5 s reached"


def test_memory_bombs_give_memory_and_later_calls_run() -> None:
    calls = [
        Call("bytes", "bytearray(10**10)"),
        Call("mid", "add(1, 2)", expected="3"),
        Call("list", "grow()"),
        Call("after", "len(bytearray(10**6))", expected="1000000"),
    ]
    limits = SandboxLimits(call_timeout_s=5.0, memory_mb=128, workers=1)
    out = by_id(run_calls(MODULE, calls, limits))
    for name in ("bytes", "list"):
        assert out[name].status == "memory", out[name]
        assert out[name].message == "exceeded 128 MiB"
    assert out["mid"].matches is True
    assert out["after"].status == "ok" and out["after"].matches is True


def test_recursion_and_stdin_and_crashes() -> None:
    calls = [
        Call("rec", "rec(0)"),
        Call("input", "input()"),
        Call("stdin", "sys.stdin.read()", expected="''"),
        Call("segv", "os.kill(os.getpid(), 11)"),
        Call("exit", "os._exit(3)"),
        Call("sys_exit", "sys.exit(4)"),
        Call("after", "add(1, 2)"),
    ]
    out = by_id(run_calls(MODULE, calls, QUICK))
    assert out["rec"].status == "raised" and out["rec"].exception == "RecursionError"
    assert out["input"].status == "raised" and out["input"].exception == "EOFError"
    assert out["input"].elapsed_s < 0.5
    assert out["stdin"].status == "ok" and out["stdin"].matches is True
    assert out["segv"].status == "crashed" and out["segv"].message == "killed by SIGSEGV"
    assert "Fatal Python error" in out["segv"].output  # faulthandler's report, from the worker's stderr
    assert out["exit"].status == "crashed" and out["exit"].message == "worker exited with status 3"
    assert out["sys_exit"].status == "raised" and out["sys_exit"].exception == "SystemExit"
    assert out["after"].status == "ok" and out["after"].value_repr == "3"


def test_module_that_does_not_load() -> None:
    calls = [Call("a", "f()"), Call("b", "f()")]
    syntax = run_calls("def f():\n    return (1,\n", calls, QUICK)
    assert [o.status for o in syntax] == ["error", "error"]
    assert syntax[0].exception == "SyntaxError" and "line 2" in syntax[0].message
    raising = run_calls("x = 1\nprint('starting')\nraise RuntimeError('boom at import')\ndef f(): pass\n", calls)
    assert [o.status for o in raising] == ["error", "error"]
    for o in raising:
        assert o.exception == "RuntimeError" and "boom at import" in o.message and "line 3" in o.message
        assert o.line == 3 and o.output == "starting\n"
    missing = run_calls("import no_such_module_xyz\ndef f(): pass\n", calls, QUICK)
    assert missing[0].status == "error" and missing[0].exception == "ModuleNotFoundError"


def test_environment_cwd_and_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFT_API_KEY", "secret")
    limits = SandboxLimits(max_output_bytes=1000, workers=1)
    calls = [
        Call("secret", "os.environ.get('LIFT_API_KEY')", expected="None"),
        Call("env", "sorted(os.environ)"),
        Call("cwd", "(open('out.txt', 'w').write('hi'), os.getcwd(), os.environ['HOME'], sorted(os.listdir('.')))"),
        Call("pid", "os.getpid()"),
        Call("print", "print('x' * 1_000_000) or 'done'"),
        Call("fd_print", "(print('to python'), os.write(1, b'to fd 1\\n'), sys.__stderr__.write('raw\\n'))"),
        Call("hash", "hash('abc')"),
    ]
    out = by_id(run_calls(MODULE, calls, limits))
    assert out["secret"].status == "ok" and out["secret"].matches is True
    env_names = eval(out["env"].value_repr or "")
    assert "LIFT_API_KEY" not in env_names and set(env_names) >= {"PATH", "HOME", "PYTHONHASHSEED"}
    cwd_value = eval(out["cwd"].value_repr or "")
    written, cwd, home, listing = cwd_value
    assert written == 2 and home == cwd == "/sandbox" and listing == ["out.txt"]  # a tmpfs of its own
    assert int(out["pid"].value_repr or "0") != os.getpid()
    printed = out["print"]
    assert printed.status == "ok" and printed.value_repr == "'done'"
    assert printed.output.startswith("x" * 1000) and len(printed.output) < 1100
    assert "output truncated" in printed.output
    assert out["fd_print"].output == "to python\nto fd 1\nraw\n"
    # PYTHONHASHSEED=0: string hashes are the same from run to run
    assert run_calls(MODULE, [calls[-1]], limits)[0].value_repr == out["hash"].value_repr


def _refused(outcome: CallOutcome, what: str) -> bool:
    return outcome.status == "raised" and outcome.exception == "SandboxViolation" and what in outcome.message


def test_starting_processes_is_refused_and_later_calls_run(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    calls = [
        Call("popen", "spawn_and_hang(p)", args={"p": repr(str(pid_file))}),
        Call("run", "subprocess.run(['true']).returncode"),
        Call("system", "os.system('true')"),
        Call("fork_bomb", "[os.fork() for _ in range(1000)]"),
        Call("exec", "os.execv(sys.executable, [sys.executable, '-c', 'pass'])"),
        Call("after", "add(2, 3)", expected="5"),
    ]
    out = by_id(run_calls(MODULE, calls, QUICK))
    for name in ("popen", "run", "system", "fork_bomb", "exec"):
        assert _refused(out[name], "starting a process"), out[name]
    assert not pid_file.exists()  # no child ever ran
    assert out["after"].status == "ok" and out["after"].matches is True


def test_writing_outside_the_sandbox_directory_is_refused(tmp_path: Path) -> None:
    outside, kept, folder = tmp_path / "written.txt", tmp_path / "kept.txt", tmp_path / "folder"
    kept.write_text("mine")
    folder.mkdir()
    calls = [
        Call("write", "open(p, 'w').write('x')", args={"p": repr(str(outside))}),
        Call("append", "open(p, 'a').write('x')", args={"p": repr(str(kept))}),
        Call("os_open", "os.open(p, os.O_WRONLY | os.O_CREAT)", args={"p": repr(str(outside))}),
        Call("remove", "os.remove(p)", args={"p": repr(str(kept))}),
        Call("rename", "os.rename(p, 'here.txt')", args={"p": repr(str(kept))}),
        Call("rmtree", "__import__('shutil').rmtree(p)", args={"p": repr(str(folder))}),
        Call("escape", "open('../escaped.txt', 'w')"),
        Call("inside", "(open('notes.txt', 'w').write('ok'), open('notes.txt').read(), os.remove('notes.txt'))"),
        Call("read", "open(p).read()", args={"p": repr(str(kept))}),
    ]
    out = by_id(run_calls(MODULE, calls, QUICK, sys_path=[str(tmp_path)]))  # the project: mounted read-only
    for name in ("write", "append", "os_open", "escape"):
        assert _refused(out[name], "writing outside the sandbox directory"), out[name]
    for name in ("remove", "rename", "rmtree"):
        assert _refused(out[name], "outside the sandbox directory"), out[name]
    assert not outside.exists() and kept.read_text() == "mine" and folder.is_dir()
    assert out["inside"].status == "ok" and out["inside"].value_repr == "(2, 'ok', None)"
    assert out["read"].status == "ok" and out["read"].value_repr == "'mine'"  # reading the project stays allowed


def test_sockets_are_refused_and_nothing_connects() -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        calls = [
            Call("connect", "__import__('socket').create_connection(('127.0.0.1', port), timeout=1)"),
            Call("listen", "__import__('socket').socket().bind(('127.0.0.1', 0))"),
            Call("http", "__import__('urllib.request').request.urlopen(f'http://127.0.0.1:{port}/', timeout=1)"),
        ]
        out = by_id(run_calls(MODULE, [Call(c.id, c.expr, args={"port": str(port)}) for c in calls], QUICK))
        for name in ("connect", "listen", "http"):
            assert out[name].status == "raised" and "network access" in out[name].message, out[name]
        with pytest.raises(TimeoutError):
            listener.accept()


def test_other_processes_and_their_secrets_are_out_of_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-of-the-server")
    calls = [
        Call("parent_environ", f"open('/proc/{os.getpid()}/environ', 'rb').read()"),
        Call("own_environ", "b'OPENAI_API_KEY' in open('/proc/self/environ', 'rb').read()", expected="False"),
        Call("kill", f"os.kill({os.getpid()}, 0)"),
        Call("env", "os.environ.get('OPENAI_API_KEY')", expected="None"),
        Call("processes", "sorted(int(p) for p in os.listdir('/proc') if p.isdigit())"),
    ]
    out = by_id(run_calls(MODULE, calls, QUICK))
    assert _refused(out["parent_environ"], "another process's environment"), out["parent_environ"]
    assert _refused(out["kill"], "signalling another process"), out["kill"]
    assert out["own_environ"].matches is True and out["env"].matches is True
    assert out["processes"].value_repr == "[1, 2]"  # its PID namespace: the sandbox's init and the worker


ORDINARY = """
import asyncio, collections, json, math, re, sqlite3, tempfile, threading

def stats(text):
    words = re.findall(r"[a-z]+", text.lower())
    counts = collections.Counter(words)
    try:
        ratio = len(counts) / len(words)
    except ZeroDivisionError:
        ratio = math.nan
    print(f"{len(words)} words")
    return json.dumps({"top": counts.most_common(1), "ratio": round(ratio, 2), "root": math.isqrt(len(words))})

def parse(value):
    try:
        return int(value)
    except ValueError as exc:
        raise KeyError(value) from exc

async def twice(x):
    await asyncio.sleep(0)
    return 2 * x

def machinery():
    with tempfile.TemporaryDirectory() as tmp, open(tmp + "/f.txt", "w") as f:
        f.write("tmp")
    db = sqlite3.connect("local.db")
    db.execute("create table t(x)")
    db.execute("insert into t values (1)")
    results = []
    thread = threading.Thread(target=lambda: results.append(sqlite3.connect(":memory:").execute("select 2").fetchone()))
    thread.start()
    thread.join()
    return asyncio.run(twice(21)), db.execute("select x from t").fetchone(), results
"""


def test_ordinary_examples_still_work() -> None:
    calls = [
        Call("stats", "stats('The cat and the hat')", expected="""'{"top": [["the", 2]], "ratio": 0.8, "root": 2}'"""),
        Call("caught", "stats('')", expected="""'{"top": [], "ratio": NaN, "root": 0}'"""),
        Call("parse", "parse(' 12 ')", expected="12"),
        Call("raises", "parse('x')", expected_exception="KeyError"),
        Call("machinery", "machinery()", expected="(42, (1,), [(2,)])"),
        Call("imports", "[__import__(m).__name__ for m in ('ctypes', 'decimal', 'fractions', 'itertools')]"),
    ]
    out = by_id(run_calls(ORDINARY, calls, QUICK))
    for name in ("stats", "caught", "parse", "machinery"):
        assert out[name].status == "ok" and out[name].matches is True, out[name]
    assert out["stats"].output == "5 words\n" and out["caught"].output == "0 words\n"
    raised = out["raises"]
    assert raised.status == "raised" and raised.matches is True and raised.message == "'x'"
    assert "ValueError" in raised.traceback and "KeyError" in raised.traceback  # chained, formatted in the worker
    assert out["imports"].status == "ok", out["imports"]


def test_native_libraries_and_ctypes_work_inside_the_sandbox(tmp_path: Path) -> None:
    (tmp_path / "native_helper.py").write_text(
        "import ctypes\n"
        "libc = ctypes.CDLL(None)\n"
        "libc.labs.restype = ctypes.c_long\n"
        "def labs(n):\n"
        "    return libc.labs(n)\n"
    )
    source = "import native_helper, z3\n"
    calls = [
        Call("bound_at_import", "native_helper.labs(-7)", expected="7"),
        Call("bound_later", "native_helper.ctypes.CDLL('libc.so.6').labs(-3)", expected="3"),
        Call("z3", "str(z3.simplify(z3.Int('x') + 1 + 1))", expected="'2 + x'"),
    ]
    if importlib.util.find_spec("numpy") is not None:
        source += "import numpy\n"
        calls.append(Call("numpy", "int(numpy.arange(4).sum())", expected="6"))
    limits = SandboxLimits(call_timeout_s=5.0, load_timeout_s=20.0, memory_mb=1024, workers=1)
    out = by_id(run_calls(source, calls, limits, sys_path=[str(tmp_path)]))
    for name, outcome in out.items():
        assert outcome.status == "ok" and outcome.matches is True, (name, outcome)
    assert not list(tmp_path.glob("__pycache__"))  # no bytecode written next to the imported module


def test_local_sockets_dns_and_host_name() -> None:
    import socket

    with tempfile.TemporaryDirectory() as tmp, socket.socket(socket.AF_UNIX) as listener:
        path = os.path.join(tmp, "s.sock")  # short: AF_UNIX paths are limited to about 100 bytes
        listener.bind(path)
        listener.listen()
        listener.settimeout(0.5)
        families = "[s.family.name for s in __import__('socket').socketpair()]"
        calls = [
            Call("pair", families, expected="['AF_UNIX', 'AF_UNIX']"),  # what asyncio's event loop uses
            Call("unix", f"__import__('socket').socket(__import__('socket').AF_UNIX).connect({path!r})"),
            Call("udp", "__import__('socket').socket(type=__import__('socket').SOCK_DGRAM)"),
            Call("dns", "__import__('socket').getaddrinfo('localhost', 80)"),
            Call("hostname", "__import__('socket').sethostname(__import__('socket').gethostname())"),
        ]
        out = by_id(run_calls(MODULE, calls, QUICK))
        assert out["pair"].status == "ok" and out["pair"].matches is True, out["pair"]
        unix = out["unix"]  # refused by the seccomp filter: the socket is not even created
        assert unix.status == "raised" and unix.exception == "PermissionError" and "[Errno 1]" in unix.message, unix
        assert _refused(out["udp"], "network access (socket.__new__)"), out["udp"]
        assert _refused(out["dns"], "network access (socket.getaddrinfo)"), out["dns"]
        assert out["hostname"].exception == "PermissionError", out["hostname"]  # the seccomp filter
        with pytest.raises(TimeoutError):
            listener.accept()


def test_resource_limits_cannot_be_raised() -> None:
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    calls = [
        Call("raise_as", "resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))"),
        Call("raise_cpu", "resource.prlimit(0, resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))"),
        Call("bomb", "bytearray(10**10)"),
        Call("lower", "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))"),
        Call("stack", "resource.setrlimit(resource.RLIMIT_STACK, resource.getrlimit(resource.RLIMIT_STACK))"),
        Call("other", f"resource.prlimit({os.getpid()}, resource.RLIMIT_NOFILE, {nofile!r})"),
        Call("read_other", f"resource.prlimit({os.getpid()}, resource.RLIMIT_NOFILE)", expected=repr(nofile)),
    ]
    out = by_id(run_calls("import resource\n", calls, QUICK))
    # the kernel refuses: the sandbox has no capabilities
    assert out["raise_as"].exception == "ValueError" and "not allowed to raise maximum limit" in out["raise_as"].message
    assert out["raise_cpu"].exception == "PermissionError", out["raise_cpu"]
    assert out["bomb"].status == "memory", out["bomb"]
    assert out["lower"].status == "ok" and out["stack"].status == "ok", (out["lower"], out["stack"])
    assert out["other"].status == "raised" and out["other"].exception == "ProcessLookupError", out["other"]
    assert out["read_other"].status == "raised" and out["read_other"].exception == "ProcessLookupError"


def test_sqlite_databases_outside_the_sandbox_directory_are_read_only(tmp_path: Path) -> None:
    existing, created = tmp_path / "existing.db", tmp_path / "created.db"
    with contextlib.closing(sqlite3.connect(existing)) as db, db:
        db.execute("create table t(x)")
        db.execute("insert into t values (7)")
    calls = [
        Call("create", "__import__('sqlite3').connect(p).execute('create table u(y)')", args={"p": repr(str(created))}),
        Call(
            "insert",
            "__import__('sqlite3').connect(p).execute('insert into t values (8)')",
            args={"p": repr(str(existing))},
        ),
        Call(
            "attach",
            "(db := __import__('sqlite3').connect(':memory:')).execute(f\"attach '{p}' as o\")"
            " and db.execute('create table o.v(z)')",
            args={"p": repr(str(created))},
        ),
        Call(
            "read",
            "__import__('sqlite3').connect(p).execute('select x from t').fetchall()",
            args={"p": repr(str(existing))},
            expected="[(7,)]",
        ),
        Call("memory", "__import__('sqlite3').connect(':memory:').execute('select 1').fetchone()", expected="(1,)"),
    ]
    out = by_id(run_calls(MODULE, calls, QUICK, sys_path=[str(tmp_path)]))
    for name in ("create", "insert", "attach"):
        assert out[name].status == "raised" and out[name].exception == "OperationalError", out[name]
    assert not created.exists()
    with contextlib.closing(sqlite3.connect(existing)) as db:
        assert db.execute("select x from t").fetchall() == [(7,)]
    assert out["read"].matches is True and out["memory"].matches is True, (out["read"], out["memory"])


def test_parallel_workers_are_separate_processes() -> None:
    calls = [Call(str(i), "time.sleep(0.3) or os.readlink('/proc/self/ns/pid')") for i in range(4)]
    start = time.monotonic()
    out = run_calls(MODULE, calls, SandboxLimits(workers=2))
    wall = time.monotonic() - start
    namespaces = {o.value_repr for o in out}
    assert all(o.status == "ok" for o in out)
    assert len(namespaces) == 2 and repr(os.readlink("/proc/self/ns/pid")) not in namespaces
    assert wall < 4 * 0.3 + 0.5  # two at a time, not one after another plus start-up


def test_no_calls_starts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """No worker, no process (bwrap or other), no sandbox folder: every way of starting one is watched."""
    started: list[str] = []

    def watched(name: str) -> Any:
        def start(*args: Any, **kwargs: Any) -> Any:
            started.append(name)
            raise AssertionError(f"{name} called")

        return start

    monkeypatch.setattr(sandbox, "_start_worker", watched("_start_worker"))
    monkeypatch.setattr(subprocess, "Popen", watched("subprocess.Popen"))
    monkeypatch.setattr(os, "fork", watched("os.fork"))
    monkeypatch.setattr(os, "posix_spawn", watched("os.posix_spawn"))
    monkeypatch.setattr(tempfile, "mkdtemp", watched("tempfile.mkdtemp"))
    assert run_calls("raise SystemExit", []) == []
    assert started == []


def test_check_source_compiles() -> None:
    assert check_source_compiles("def f(x):\n    return x\n", "m.py") is None
    message = check_source_compiles("def f(x):\n    return x +\n", "m.py")
    assert message is not None and "m.py, line 2" in message and "SyntaxError" in message
    assert check_source_compiles("def f():\nreturn 1\n", "m.py") is not None  # IndentationError
    assert check_source_compiles("x = 1\x00", "m.py") is not None
    assert check_source_compiles("def f():\n    yield = 3\n", "m.py") is not None


def test_classify_death() -> None:
    assert classify_death(-signal.SIGSEGV, "", 512) == ("crashed", "killed by SIGSEGV")
    assert classify_death(-signal.SIGABRT, "Fatal Python error: Cannot allocate memory", 512)[0] == "memory"
    assert classify_death(-signal.SIGKILL, "", 512) == ("memory", "exceeded 512 MiB (killed by SIGKILL)")
    assert classify_death(1, "", 512) == ("crashed", "worker exited with status 1")


def _package(root: Path, modules: dict[str, str]) -> dict[str, Path]:
    """A package `pkg` under `root` with these modules (name -> source)."""
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    files = {name: root / "pkg" / f"{name}.py" for name in modules}
    for name, source in modules.items():
        files[name].write_text(source)
    return files


def _run_module(
    files: dict[str, Path], name: str, calls: list[Call], limits: SandboxLimits = QUICK, text: str | None = None
) -> dict[str, CallOutcome]:
    file = files[name]
    sys_path = [str(file.parent.parent)]
    source = file.read_text() if text is None else text
    return by_id(run_calls(source, calls, limits, str(file), sys_path=sys_path, module_name=f"pkg.{name}"))


SEEN_A = Call("seen", "'pkg.a' in __import__('sys').modules")
"""Whether the worker running a later module is the one that imported `pkg.a` before."""


def test_a_pool_imports_the_next_module_into_the_same_worker(tmp_path: Path) -> None:
    files = _package(tmp_path, {"a": "def f():\n    return 1\n", "b": "def g():\n    return 2\n"})
    assert _run_module(files, "a", [Call("f", "f()", expected="1")])["f"].matches is True
    assert _run_module(files, "b", [SEEN_A])["seen"].value_repr == "False"  # without a pool: a fresh worker each time
    pool = WorkerPool()
    try:
        with pool.active():
            assert _run_module(files, "a", [Call("f", "f()", expected="1")])["f"].matches is True
            out = _run_module(files, "b", [SEEN_A, Call("g", "g()", expected="2")])
            again = _run_module(files, "a", [Call("f", "f()", expected="1")])  # the same module again: re-imported
    finally:
        pool.close()
    assert out["seen"].value_repr == "True" and out["g"].matches is True, out
    assert again["f"].matches is True
    assert not Path(pool.root).exists() and not pool.idle


def test_a_pool_puts_back_the_module_a_checked_file_replaced(tmp_path: Path) -> None:
    files = _package(tmp_path, {"a": "VALUE = 1\n", "b": ""})
    (tmp_path / "pkg" / "__init__.py").write_text("from . import a as FROM_DISK\n")
    same = "__import__('sys').modules['pkg.a'] is __import__('pkg').a is __import__('pkg').FROM_DISK"
    pool = WorkerPool()
    try:
        with pool.active():
            during = _run_module(files, "a", [Call("same", same)])["same"]
            edited = _run_module(files, "a", [Call("same", same)], text="VALUE = 2\n")["same"]
            after = _run_module(files, "b", [Call("same", same)])["same"]
    finally:
        pool.close()
    assert during.value_repr == "True", during  # pkg.a's text is the file pkg imported: that module, as import gives it
    assert edited.value_repr == "False", edited  # an unsaved text: a module of its own
    assert after.value_repr == "True", after  # the next file meets the module pkg imported


def test_a_module_its_package_imported_is_not_run_twice(tmp_path: Path) -> None:
    files = _package(tmp_path, {"a": "import pkg\npkg.REGISTERED.append(1)\n"})
    (tmp_path / "pkg" / "__init__.py").write_text("REGISTERED = []\nfrom . import a\n")
    count = _run_module(files, "a", [Call("n", "len(__import__('pkg').REGISTERED)")])["n"]
    assert count.value_repr == "1", count  # registered once, as `import pkg.a` leaves it


def test_a_pool_does_not_keep_a_worker_that_timed_out_or_spent_its_memory(tmp_path: Path) -> None:
    files = _package(
        tmp_path,
        {
            "a": "def loop():\n    while True:\n        pass\n",
            "big": "HELD = bytearray(300 * 1024 * 1024)\n",  # more than half the address space allowed
            "b": "",
        },
    )
    limits = dataclasses.replace(QUICK, memory_mb=512)
    pool = WorkerPool()
    try:
        with pool.active():
            assert _run_module(files, "a", [Call("loop", "loop()")], limits)["loop"].status == "timeout"
            after_timeout = _run_module(files, "b", [SEEN_A], limits)["seen"]
            assert _run_module(files, "big", [Call("n", "len(HELD)")], limits)["n"].status == "ok"
            after_big = _run_module(files, "b", [Call("seen", "'pkg.big' in __import__('sys').modules")], limits)
    finally:
        pool.close()
    assert after_timeout.value_repr == "False", after_timeout  # the worker that timed out was killed
    assert after_big["seen"].value_repr == "False", after_big  # the one holding 300 MiB retired


def test_a_pool_serves_only_the_thread_that_made_it() -> None:
    pool = WorkerPool()
    errors: list[BaseException] = []

    def enter() -> None:
        try:
            with pool.active():
                pass
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    pool.close()
    assert len(errors) == 1 and "thread" in str(errors[0])
