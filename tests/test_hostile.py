"""Hostile modules (tests/hostile/attack_*.py), one attack each, run through `lift-lsp check` and through the language
server, as root and as an unprivileged user: every one is contained.

Contained means, after the run: the canary files outside the project and the project's own files are unchanged and
no file was added beside them; neither the TCP listener on loopback nor the AF_UNIX listener in the project folder
received a connection; the API key in the server's environment appears in no output; the server (or `lift-lsp
check`) was not killed; no process an attack started is left (none with the attacks' marker or the worker script on
its command line, checked in /proc); nothing was written to /dev/shm. Each module's own report (what happened to each
attempt, seen from inside) must show the refusals expected, which also proves that the attack ran.

Each runs as the test's own user (root in CI) and, where that is root, as `nobody`: the unprivileged run drops
privileges with setpriv for the whole `lift-lsp check` (or server) run; where this
machine keeps the interpreter in a folder only root may enter (pyenv under /root), that folder alone is made
reachable for the run with a tmpfs above it (bubblewrap as root, `--dev-bind / /`), as a system Python would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from lift_lsp.check import sandbox
from lift_lsp.lsp.server import DOCUMENT_TEXT_COMMAND
from tests.lsp_util import open_doc, start

HOSTILE = Path(__file__).resolve().parent / "hostile"
MODULES = sorted(p.name for p in HOSTILE.glob("attack_*.py"))
WORKER = str(Path(sandbox.__file__).with_name("worker.py"))
NOBODY = 65534
SETTINGS = {
    "sandbox": {"trustAll": True, "exampleTimeoutS": 2, "fileTimeoutS": 20, "workers": 1},
    "diagnostics": {"timeBudgetS": 60},
    "contracts": {"enabled": False},
    "hover": {"enabled": False},  # no background analysis of 26 documents: the checks alone
}

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (.ci/run installs it)")
USERS = [
    "self",  # root in CI
    pytest.param(
        "nobody",
        marks=pytest.mark.skipif(
            os.geteuid() != 0 or shutil.which("setpriv") is None, reason="dropping to nobody needs root and setpriv"
        ),
    ),
]

REFUSED = r"(PermissionError|SandboxViolation|OSError|OperationalError|FileNotFoundError)"
"""How a refused attempt reads in a report (PermissionError: the seccomp filter; SandboxViolation: the audit hook's
message; OSError: a read-only mount, a full tmpfs; FileNotFoundError: a path the sandbox does not show)."""


def refused(*attempts: str) -> list[str]:
    return [rf"{re.escape(attempt)}: {REFUSED}" for attempt in attempts]


EXPECTED: dict[str, list[str]] = {
    "attack_chdir_race.py": [r"race: done .writes that succeeded: \d+"],
    "attack_ctypes_import_name.py": [r"open -> -1 \(Read-only file system\)", r"unlink -> -1", r"system -> 32512"],
    "attack_dev_shm.py": refused("open", "os.open", "shared_memory"),
    "attack_dir_fd_writes.py": refused("write", "create", "unlink", "rename", "mkdir", "canaries"),
    "attack_environ.py": [r"own: \['HOME', 'LANG', 'MALLOC_ARENA_MAX'"],
    "attack_fd_chmod.py": refused("chmod", "fchmod", "chown", "utime", "truncate", "setxattr"),
    "attack_fork_bomb.py": [
        r"os.fork: SandboxViolation",
        r"fork_exec: PermissionError",
        r"libc fork: done 'fork -> -1 \(Operation not permitted\)'",
        r"threads: (MemoryError|RuntimeError)",
    ],
    "attack_fork_exec.py": [r"fork_exec: PermissionError", r"spawnv_passfds: PermissionError"],
    "attack_gigabyte.py": [r"fill: OSError: \[Errno 28\] No space left on device"],
    "attack_guard_tamper.py": [r"tamper: done", *refused("write project", "write canary", "process", "connect")],
    "attack_kill_all.py": [r"kill -> -1 \(No such process\)"],  # only the sandbox's init is left, which is exempt
    "attack_long_sleep.py": [r"timed out after 2 s"],
    "attack_memory_bomb.py": [r"exceeded 512 MiB"],
    "attack_module_level.py": [r"fork_exec: PermissionError", *refused("write canary", "write project", "connect")],
    "attack_multiprocessing.py": refused("spawn", "forkserver", "fork"),
    "attack_os_system.py": [r"os.system: SandboxViolation", r"libc system: done 'system -> 32512'"],  # 127 << 8
    "attack_pidfd.py": [
        rf"pidfd \d+: {REFUSED}",
        r"kill \d+: SandboxViolation",
        r"libc kill \d+: done 'kill -> -1 \(No such process\)'",
    ],
    "attack_proc_dir_fd.py": [r"\d+: FileNotFoundError"],
    "attack_setsid.py": [
        r"setsid child 0: PermissionError",
        r"setsid child 39: PermissionError",
        r"libc fork \+ setsid: done 'fork -> -1",
    ],
    "attack_sockets.py": [
        *refused("create_connection", "_socket", "udp", "dns"),
        r"libc connect: done 'socket -> \d+; connect -> -1",
    ],
    "attack_sqlite_attach.py": refused("attach new", "attach project", "drop in project", "vacuum into"),
    "attack_subprocess.py": refused("run", "Popen", "Popen new session"),
    "attack_symlinks.py": refused("symlink to project", "symlink to canary", "symlink to /", "hard link"),
    "attack_unix_socket.py": [*refused("connect", "from a child"), r"libc connect: done 'socket -> -1"],
    "attack_write_outside.py": refused(
        "open canary",
        "open project",
        "os.open project",
        "remove project",
        "rename project",
        "new file in project",
        "rmtree canaries",
    ),
    "attack_written_module.py": [r"unlink -> -1", r"creat -> -1", r"fork -> -1 \(Operation not permitted\)"],
}


def test_every_hostile_module_has_expectations() -> None:
    assert set(EXPECTED) == set(MODULES)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"{len(MODULES)} hostile modules, all contained" in readme


# ---------------------------------------------------------------------------------------------------------- the bait


@dataclass
class Bait:
    """Canaries, listeners and a secret, set up for one run; `problems()` says what an attack reached."""

    root: Path
    secret: str = field(default_factory=lambda: f"sk-hostile-{uuid.uuid4().hex}")
    marker: str = field(default_factory=lambda: f"lift-hostile-{uuid.uuid4().hex[:12]}")
    listener: socket.socket = field(default_factory=socket.socket)
    unix_listener: socket.socket = field(default_factory=lambda: socket.socket(socket.AF_UNIX))
    snapshot: dict[str, tuple[bytes, int, int]] = field(default_factory=dict)

    @property
    def project(self) -> Path:
        return self.root / "project"

    @property
    def canaries(self) -> Path:
        return self.root / "canaries"

    def set_up(self) -> None:
        """Everything writable by anyone (0o777 / 0o666): only the sandbox stands between an attack and them."""
        self.root.chmod(0o755)
        for folder in (self.project, self.canaries):
            folder.mkdir()
            folder.chmod(0o777)
        for module in [*MODULES, "_bait.py"]:
            shutil.copy(HOSTILE / module, self.project / module)
        (self.canaries / "canary.txt").write_text("canary")
        (self.project / "project_canary.txt").write_text("project canary")
        with sqlite3.connect(self.project / "project.db") as db:
            db.execute("CREATE TABLE t(x)")
            db.execute("INSERT INTO t VALUES ('canary')")
        db.close()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.unix_listener.bind(str(self.project / "s.sock"))
        self.unix_listener.listen()
        bait = {
            "canary_dir": str(self.canaries),
            "port": self.listener.getsockname()[1],
            "unix_socket": str(self.project / "s.sock"),
            "marker": self.marker,
        }
        (self.project / "bait.json").write_text(json.dumps(bait))
        for path in [*self.project.iterdir(), *self.canaries.iterdir()]:
            if path.is_file():
                path.chmod(0o666)
        os.chmod(self.project / "s.sock", 0o777)
        self.snapshot = self.files()

    def files(self) -> dict[str, tuple[bytes, int, int]]:
        """Every file of the project and canary folders: (content, mode, mtime in ns); sockets and the victims list
        aside."""
        found: dict[str, tuple[bytes, int, int]] = {}
        for folder in (self.project, self.canaries):
            for path in sorted(folder.rglob("*")):
                info = path.lstat()
                if path.name == "victims.json" or stat.S_ISSOCK(info.st_mode):
                    continue
                content = path.read_bytes() if stat.S_ISREG(info.st_mode) else b""
                found[str(path.relative_to(self.root))] = (content, info.st_mode, info.st_mtime_ns)
        return found

    def write_victims(self, pids: list[int]) -> None:
        (self.project / "victims.json").write_text(json.dumps(pids))
        (self.project / "victims.json").chmod(0o666)

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", os.defpath),
            "LANG": "C.UTF-8",
            "HOME": str(self.root),
            "LIFT_API_KEY": self.secret,
            "OPENAI_API_KEY": self.secret,
        }

    def problems(self, outputs: str) -> list[str]:
        found: list[str] = []
        now = self.files()
        for name in sorted(set(now) | set(self.snapshot)):
            if now.get(name) != self.snapshot.get(name):
                found.append(f"{name} changed, added or removed")
        for name, listener in (("TCP", self.listener), ("AF_UNIX", self.unix_listener)):
            if select.select([listener], [], [], 0)[0]:
                found.append(f"the {name} listener received a connection")
        if self.secret in outputs:
            found.append("the secret appears in the output")
        found += [f"left running: {line}" for line in leftover_processes(self.marker)]
        found += [f"/dev/shm/{name} written" for name in os.listdir("/dev/shm") if self.marker in name]
        return found

    def close(self) -> None:
        self.listener.close()
        self.unix_listener.close()
        for pid, _ in _processes(self.marker):  # whatever a failing run left, so that it does not outlive the test
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


def _processes(marker: str) -> Iterator[tuple[int, str]]:
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline or WORKER in cmdline:
                yield int(entry), cmdline


def leftover_processes(marker: str) -> list[str]:
    """Processes an attack started (its marker) or sandbox workers (this checkout's worker script), still running."""
    return [f"{pid}: {cmdline[:200]}" for pid, cmdline in _processes(marker)]


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def find_descendant(root: int, needle: str, timeout_s: float = 30.0) -> int:
    """The process below `root` (or `root` itself) whose command line contains `needle`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pending = [root]
        while pending:
            pid = pending.pop()
            try:
                if needle in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                    return pid
            except OSError:
                pass
            pending += _children(pid)
        time.sleep(0.02)
    raise AssertionError(f"no process running {needle!r} below {root}")


def as_user(user: str) -> list[str]:
    """The command prefix that runs a command as `user` ("self": none)."""
    if user == "self":
        return []
    prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    blocked = _blocked_folders([sys.prefix, sys.base_prefix, str(Path(__file__).resolve().parents[1])])
    if not blocked:
        return prefix
    reach = ["bwrap", "--dev-bind", "/", "/"]
    for folder, inside in blocked.items():
        reach += ["--tmpfs", folder, "--chmod", "0755", folder]
        for path in inside:
            reach += ["--dev-bind", path, path]
    return [*reach, "--", *prefix]


def _blocked_folders(paths: list[str]) -> dict[str, list[str]]:
    """Folders an unprivileged user may not enter, above `paths`: {folder: [its child on the way to each path]}."""
    blocked: dict[str, list[str]] = {}
    for path in paths:
        parts = Path(path).resolve().parts
        for depth in range(1, len(parts) - 1):
            folder = Path(*parts[: depth + 1])
            if not folder.stat().st_mode & stat.S_IXOTH:
                child = str(Path(*parts[: depth + 2]))
                blocked.setdefault(str(folder), [])
                if child not in blocked[str(folder)]:
                    blocked[str(folder)].append(child)
                break
    return blocked


@pytest.fixture
def bait() -> Iterator[Bait]:
    found = Bait(Path(tempfile.mkdtemp(prefix="lift-hostile-")))
    try:
        found.set_up()
        yield found
    finally:
        found.close()


# ---------------------------------------------------------------------------------------------------------- the runs


def reports_from_cli(rows: list[dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for row in rows:
        out[Path(row["file"]).name] = out.get(Path(row["file"]).name, "") + f"{row['code']} {row['message']}\n"
    return out


def check_reports(reports: dict[str, str]) -> list[str]:
    """The modules whose reports lack an expected refusal (or that did not run)."""
    missing = []
    for module, patterns in EXPECTED.items():
        text = reports.get(module, "")
        missing += [f"{module}: no {p!r} in {text[:3000]!r}" for p in patterns if not re.search(p, text)]
    return missing


@pytest.mark.parametrize("isolate", [True, False], ids=["isolated-files", "shared-workers"])
@pytest.mark.parametrize("user", USERS)
def test_hostile_modules_through_lift_lsp_check(bait: Bait, user: str, isolate: bool) -> None:
    """With `--isolate-files`, every attack is refused with its own message. By default a job's files share a
    sandbox process, so a module that switched the audit hook's checks off (attack_guard_tamper) changes what the
    modules after it are told; the OS sandbox still refuses every attack: nothing outside is touched."""
    runs = [  # two `lift-lsp check` processes, half of the modules each
        subprocess.Popen(
            [
                *as_user(user),
                sys.executable,
                "-m",
                "lift_lsp.cli",
                "check",
                "--json",
                "--no-cache",  # every attack runs: none is answered from an earlier run
                *(["--isolate-files"] if isolate else []),
                *(str(bait.project / m) for m in half),
            ],
            cwd=bait.root,
            env=bait.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for half in (MODULES[0::2], MODULES[1::2])
    ]
    try:
        checks = [find_descendant(run.pid, "lift_lsp.cli") for run in runs]
        bait.write_victims([*checks, *(run.pid for run in runs), os.getpid()])
        outputs = [run.communicate(timeout=600) for run in runs]
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
    text = "".join(out.decode(errors="replace") + err.decode(errors="replace") for out, err in outputs)
    assert [run.returncode for run in runs] == [1, 1], text[-3000:]  # each report differs from 'report': errors
    reports = reports_from_cli([row for out, _ in outputs for row in json.loads(out)])
    assert set(reports) == set(MODULES), sorted(set(MODULES) - set(reports))
    if isolate:
        assert check_reports(reports) == []
    assert bait.problems(text) == []


@pytest.mark.parametrize("user", USERS)
async def test_hostile_modules_through_the_language_server(bait: Bait, user: str) -> None:
    log = bait.root / "server.log"  # the server's stderr
    log.touch()
    log.chmod(0o666)
    server = [*as_user(user), "sh", "-c", f'exec "$@" 2>>{log}', "sh", sys.executable, "-m", "lift_lsp.cli"]
    client = await ClientServerConfig(server_command=server, server_env=bait.env()).start()
    assert isinstance(client, LanguageClient)
    try:
        await start(client, options=SETTINGS, root=bait.project)
        assert client._server is not None
        lift = find_descendant(client._server.pid, "lift_lsp.cli")
        bait.write_victims([lift, client._server.pid, os.getpid()])
        uris = {open_doc(client, bait.project / module): module for module in MODULES}
        deadline = time.monotonic() + 600
        while set(uris) - set(client.diagnostics) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        answer = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=DOCUMENT_TEXT_COMMAND, arguments=[next(iter(uris))])
        )
        assert Path(f"/proc/{lift}").exists(), "the server was killed"
        reports = {
            module: "".join(f"{d.code} {d.message}\n" for d in client.diagnostics.get(uri, []))
            for uri, module in uris.items()
        }
        texts = [*reports.values(), *(m.message for m in client.messages), *(m.message for m in client.log_messages)]
        problems = bait.problems("\n".join(texts) + log.read_text(errors="replace"))
        assert check_reports(reports) == []
        assert problems == []
        assert answer is not None and answer["version"] == 1  # the server still answers
    finally:
        await client.shutdown_session()
