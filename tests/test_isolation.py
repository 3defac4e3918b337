"""The OS sandbox itself: the seccomp filter (against the same calls in a plain process), what is mounted, the probe
and its messages, the path where no sandbox can be made (examples do not run, one finding says why, nothing cached),
and the teardown of every worker."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from lift_lsp.check import isolation
from lift_lsp.check.checks import CheckCache, check_text
from lift_lsp.check.findings import Code
from lift_lsp.check.sandbox import UNAVAILABLE, Call, SandboxLimits, run_calls
from lift_lsp.options import SandboxOptions

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

PROBES = """
import ctypes, errno, os, socket, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = {
    "x86_64": {"memfd_create": 319, "unshare": 272, "pidfd_open": 434, "kcmp": 312, "clone3": 435},
    "aarch64": {"memfd_create": 279, "unshare": 97, "pidfd_open": 434, "kcmp": 272, "clone3": 435},
}[os.uname().machine]

def syscall(name, *args):
    result = libc.syscall(NR[name], *args)
    return "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()]

def fork():
    pid = libc.fork()
    if pid == 0:
        os._exit(0)
    if pid > 0:
        os.waitpid(pid, 0)
        return "ok"
    return errno.errorcode[ctypes.get_errno()]

def unix_socket():
    fd = libc.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
    return "ok" if fd >= 0 else errno.errorcode[ctypes.get_errno()]

def thread():
    done = []
    worker = threading.Thread(target=done.append, args=("ok",))
    worker.start()
    worker.join()
    return done[0]
"""
REFUSED_BY_THE_FILTER = {
    "memfd": "syscall('memfd_create', b'x', 0)",
    "unshare": "syscall('unshare', 0)",
    "pidfd_open": "syscall('pidfd_open', os.getpid(), 0)",
    "kcmp": "syscall('kcmp', os.getpid(), os.getpid(), 0, 0, 0)",
    "fork": "fork()",
    "unix_socket": "unix_socket()",
}
QUICK = SandboxLimits(call_timeout_s=5.0, total_timeout_s=30.0, workers=1)


def _probe(mode: isolation.Mode) -> dict[str, str | None]:
    calls = [Call(name, expr) for name, expr in REFUSED_BY_THE_FILTER.items()]
    calls += [
        Call("clone3", "syscall('clone3', 0, 0)"),
        Call("thread", "thread()"),
        Call("pair", "len(socket.socketpair())"),
    ]
    limits = SandboxLimits(call_timeout_s=5.0, total_timeout_s=30.0, workers=1, mode=mode)
    return {o.id: o.value_repr for o in run_calls(PROBES, calls, limits)}


@needs_bwrap
def test_the_seccomp_filter_refuses_what_a_plain_process_may_do() -> None:
    plain, sandboxed = _probe("unsafe-process"), _probe("bubblewrap")
    for name in REFUSED_BY_THE_FILTER:
        assert plain[name] == "'ok'", (name, plain[name])  # the same call succeeds without the filter
        assert sandboxed[name] == "'EPERM'", (name, sandboxed[name])
    assert sandboxed["clone3"] == "'ENOSYS'"  # so that glibc starts threads with clone(CLONE_THREAD) instead
    assert sandboxed["thread"] == "'ok'" and sandboxed["pair"] == "2"  # threads and asyncio's socket pairs work


def test_the_filter_checks_the_architecture_first() -> None:
    program = isolation.seccomp_program("x86_64")
    assert len(program) % 8 == 0
    first, second = program[:8], program[8:16]
    assert first == bytes.fromhex("2000000004000000")  # ld [4]: seccomp_data.arch
    assert second[:2] == bytes.fromhex("1500") and int.from_bytes(second[4:], "little") == 0xC000003E
    assert program[-8:] == bytes.fromhex("0600000000000080")  # the other ABI's calls: kill the process
    assert isolation.seccomp_program("aarch64") != program


def test_interpreter_folders_are_found_from_the_path(tmp_path: Path) -> None:
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").symlink_to("/opt/python3.12/bin/python3.12")
    (env / "pyvenv.cfg").write_text("home = /opt/python3.12/bin\ninclude-system-site-packages = false\n")
    folders = isolation.interpreter_dirs(str(env / "bin" / "python"))
    assert {str(env), str(env / "bin"), "/opt/python3.12"} <= set(folders)
    ours = isolation.interpreter_dirs(sys.executable)
    assert {sys.prefix, sys.base_prefix} <= set(ours)


def test_readable_paths_are_deduplicated_and_never_hide_the_sandbox(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    paths = [str(tmp_path / "a" / "b"), str(tmp_path / "a"), "/", "/usr/lib", str(tmp_path / "missing"), ""]
    assert isolation.readable_paths(paths) == [str(tmp_path / "a")]


@needs_bwrap
def test_the_project_is_read_only_and_the_tmpfs_is_capped(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("mine")
    calls = [
        Call("read", "open(p).read()", args={"p": repr(str(tmp_path / "data.txt"))}, expected="'mine'"),
        Call(  # through a dir_fd: past the audit hook, to the read-only mount itself
            "write",
            "os.open('data.txt', os.O_WRONLY, dir_fd=os.open(p, os.O_RDONLY))",
            args={"p": repr(str(tmp_path))},
        ),
        Call("fill", "open('big', 'wb').write(bytes(3 << 20))"),
        Call("mounts", "sorted(line.split()[1] for line in open('/proc/self/mounts'))"),
    ]
    limits = SandboxLimits(call_timeout_s=5.0, workers=1, tmpfs_mb=2)
    out = {o.id: o for o in run_calls("import os\n", calls, limits, sys_path=[str(tmp_path)])}
    assert out["read"].matches is True
    assert out["write"].exception == "OSError" and "Read-only file system" in out["write"].message
    assert out["fill"].exception == "OSError" and "No space left on device" in out["fill"].message
    mounts = eval(out["mounts"].value_repr or "[]")
    assert {"/usr", "/proc", "/dev", "/sandbox", str(tmp_path)} <= set(mounts)
    assert not any(m.startswith(("/home", "/root/.ssh", "/var", "/run")) for m in mounts)


@needs_bwrap
def test_no_worker_outlives_its_run() -> None:
    worker = str(Path(isolation.__file__).with_name("worker.py"))
    out = run_calls("import time\n", [Call("sleep", "time.sleep(60)"), Call("after", "1 + 1")], QUICK)
    assert out[0].status == "timeout" and out[1].value_repr == "2"
    alive = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if worker in Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace"):
                alive.append(entry)
        except OSError:
            continue
    assert alive == []  # killed and reaped, its namespace gone, before run_calls returned


# ---------------------------------------------------------------------------------------------------------- no sandbox


WRONG = '''def sq(x):
    """Square.

    >>> sq(3)
    6
    """
    return x * x


def one():
    """>>> one()
    1
    """
    return 1
'''


def _path_without_bwrap(tmp_path: Path) -> str:
    """A PATH where no bwrap is found (lift-lsp needs no other tool on it)."""
    empty = tmp_path / "no-tools"
    empty.mkdir()
    return str(empty)


def test_without_bubblewrap_examples_do_not_run_and_one_finding_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", _path_without_bwrap(tmp_path))
    assert shutil.which("bwrap") is None
    problem = isolation.sandbox_problem("bubblewrap")
    assert problem is not None and "apt-get install bubblewrap" in problem and "unsafe-process" in problem
    cache = CheckCache()
    findings = check_text(WRONG, "m.py", cache=cache)
    assert [(f.code, f.function) for f in findings] == [(Code.MODULE_FAILED, "sq")]  # once, on the first function
    assert findings[0].message == f"the examples did not run: cannot sandbox: {problem}"
    outcomes = run_calls("x = 1\n", [Call("a", "x"), Call("b", "x")])
    assert {(o.status, o.exception, o.message) for o in outcomes} == {
        ("error", UNAVAILABLE, f"cannot sandbox: {problem}")
    }
    assert isolation.sandbox_problem("unsafe-process") is None
    monkeypatch.undo()
    if shutil.which("bwrap") is not None:  # installed again: the examples run, nothing was cached without them
        assert Code.EXAMPLE_WRONG_RESULT in [f.code for f in check_text(WRONG, "m.py", cache=cache)]


async def test_generation_without_bubblewrap_asks_no_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lift_lsp.generate.backends.scripted import ScriptedBackend
    from lift_lsp.generate.forward import generate
    from lift_lsp.options import GenerationOptions
    from lift_lsp.spec.sites import find_sites

    monkeypatch.setenv("PATH", _path_without_bwrap(tmp_path))
    stub = 'def sq(x: int) -> int:\n    """Square.\n\n    >>> sq(3)\n    9\n    """\n'
    backend = ScriptedBackend([])  # any request would fail the test: the script is empty
    outcome = await generate(stub, find_sites(stub)[0], backend, GenerationOptions(cache=False), SandboxOptions())
    assert not outcome.ok and backend.requests == []
    assert outcome.message.startswith("cannot check generated code against the examples: cannot sandbox: bubblewrap")


def test_a_bubblewrap_that_cannot_make_namespaces_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "bwrap"  # fails as bwrap does where user namespaces are disabled
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    outcomes = run_calls("x = 1\n", [Call("a", "x"), Call("b", "x")], QUICK)
    (message,) = {o.message for o in outcomes}
    assert {o.exception for o in outcomes} == {UNAVAILABLE}
    assert message.startswith(
        "cannot sandbox: bubblewrap could not make the sandbox (bwrap: No permissions to creating new namespace); "
        "where user namespaces are disabled, enable them, or install bubblewrap"
    )
    cache = CheckCache()
    findings = check_text(WRONG, "m.py", cache=cache)
    assert [(f.code, f.function, f.message) for f in findings] == [
        (Code.MODULE_FAILED, "sq", f"the examples did not run: {message}")
    ]
    assert cache.entries == {}  # nothing remembered from a run that could not happen


def test_lift_lsp_check_without_bubblewrap(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(WRONG)
    env = {"PATH": _path_without_bwrap(tmp_path), "LANG": "C.UTF-8", "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "lift_lsp.cli", "check", str(module)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr  # nothing ran: no error found, one warning says why
    assert "LIFT014 [sq] the examples did not run: cannot sandbox: bubblewrap (`bwrap`) is not installed" in done.stdout
    assert "LIFT001" not in done.stdout and "1 finding(s)" in done.stdout
    unsafe = subprocess.run(
        [*command, "--sandbox", "unsafe-process"], env=env, capture_output=True, text=True, timeout=120
    )
    assert unsafe.returncode == 1 and "LIFT001 [sq]" in unsafe.stdout  # knowingly: in a plain process


def test_the_unsafe_mode_is_a_choice_not_a_fallback() -> None:
    assert SandboxOptions().mode == "bubblewrap" and SandboxLimits().mode == "bubblewrap"
