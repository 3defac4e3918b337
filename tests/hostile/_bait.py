"""What the hostile modules aim at, and how they report what happened to each attempt.

`bait.json` (written by tests/test_hostile.py beside these modules) names the canaries outside the sandbox, a TCP
listener on loopback, an AF_UNIX listener on disk and a marker for the command lines of the processes they start;
`victims.json` (written once the server or `lift-lsp check` runs) names the processes outside the sandbox.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BAIT: dict[str, Any] = json.loads((HERE / "bait.json").read_text())
CANARY_DIR: str = BAIT["canary_dir"]
"""A folder outside the project (not mounted in the sandbox), writable by anyone."""
CANARY: str = os.path.join(CANARY_DIR, "canary.txt")
PROJECT_CANARY = str(HERE / "project_canary.txt")
"""A file of the project (mounted read-only in the sandbox), writable by anyone outside it."""
PROJECT_DB = str(HERE / "project.db")
MARKER: str = BAIT["marker"]
"""Put on the command line of every process an attack starts, so that the test finds any left behind."""
SLEEPER = [
    sys.executable,
    "-c",
    f"import time; open({CANARY_DIR!r} + '/from_child.txt', 'w').write('escaped'); time.sleep(1000)",
    MARKER,
]
"""A process that writes beside the canary and stays."""
libc = ctypes.CDLL(None, use_errno=True)


def victims() -> list[int]:
    """The pids outside the sandbox (the server or `lift-lsp check`, the test), once the test wrote them."""
    path = HERE / "victims.json"
    deadline = time.monotonic() + 20
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pids: list[int] = json.loads(path.read_text())
    return pids


def fork_exec(argv: list[str], setsid: bool = False) -> int:
    """Start a process with _posixsubprocess.fork_exec, as multiprocessing does: no audit event is raised."""
    import _posixsubprocess

    read_end, write_end = os.pipe()
    try:
        return int(
            _posixsubprocess.fork_exec(
                argv, [os.fsencode(argv[0])], True, (), None, None, -1, -1, -1, -1, -1, -1,
                read_end, write_end, True, setsid, -1, None, None, None, -1, None, False,
            )
        )  # fmt: skip
    finally:
        os.close(read_end)
        os.close(write_end)


def libc_call(name: str, *args: Any) -> str:
    """A libc function called through ctypes (no audit event): its result, or the errno it failed with."""
    result = getattr(libc, name)(*args)
    return f"{name} -> {result}" + (f" ({os.strerror(ctypes.get_errno())})" if result == -1 else "")


def report(*attempts: tuple[str, Callable[[], object]]) -> str:
    """What happened to each attempt, in one line: `name: done RESULT` or `name: Error: message`."""
    parts = []
    for name, attempt in attempts:
        try:
            parts.append(f"{name}: done {attempt()!r}"[:400])
        except BaseException as exc:  # every refusal is part of the report
            parts.append(f"{name}: {type(exc).__name__}: {exc}"[:400])
    return "; ".join(parts)
