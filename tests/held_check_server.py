"""lift-lsp over stdio whose document checks wait at a gate the test opens, one check at a time: a request can then be
sent while a check is running, however fast or slow the machine is. With `--workspace`, the checks held are instead
those of the files of the workspace check (`lift.checkWorkspace`), and the document checks run freely.

Test commands: `lift.test.checksStarted` (COUNT) answers true once COUNT checks have started (waiting at the gate or
past it); `lift.test.letOneCheckRun` lets the check waiting, or the next one, through; `lift.test.letChecksRun` lets
every check through from then on. A code action waits for the
check of the document's current text as long as the gate holds it (the bound is the gate's), so that nothing depends
on how long the test takes.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import lift_lsp.check.workspace
from lift_lsp.check.checks import FileCheck, check_document
from lift_lsp.lsp.server import LiftServer, create_server, serve

CHECKS_STARTED_COMMAND = "lift.test.checksStarted"
LET_ONE_CHECK_RUN_COMMAND = "lift.test.letOneCheckRun"
LET_CHECKS_RUN_COMMAND = "lift.test.letChecksRun"
GATE_WAIT_S = 600.0
"""How long a check or a test command waits at most: only a broken test gets that far."""


class CheckGate:
    """Checks wait here until the test lets them through, one for each permit; all of them once the server shuts
    down (its threads must end)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._started = 0
        self._permits = 0
        self._open = False

    def held(self, check: Callable[..., FileCheck], *args: Any) -> FileCheck:
        """`check(*args)`, once the test lets it through."""
        with self._changed:
            self._started += 1
            self._changed.notify_all()
            if not self._changed.wait_for(lambda: self._open or self._permits > 0, timeout=GATE_WAIT_S):
                raise TimeoutError("the test never let the check through")
            if not self._open:
                self._permits -= 1
        return check(*args)

    def let_one_through(self) -> None:
        with self._changed:
            self._permits += 1
            self._changed.notify_all()

    def open(self) -> None:
        with self._changed:
            self._open = True
            self._changed.notify_all()

    def wait_started(self, count: int) -> bool:
        """Whether `count` checks have started (waiting here or past), once they have."""
        with self._changed:
            return self._changed.wait_for(lambda: self._started >= count, timeout=GATE_WAIT_S)


def held_server(workspace: bool = False) -> LiftServer:
    """The server whose document checks (`workspace`: whose workspace check's files) wait at the gate."""
    server = create_server()
    gate = CheckGate()
    if workspace:
        lift_lsp.check.workspace.check_document = partial(gate.held, check_document)  # type: ignore[assignment]
    else:
        server.check = partial(gate.held, server.check)  # type: ignore[method-assign]
        server.check_wait_s = GATE_WAIT_S
    close = server.close

    async def open_and_close() -> None:
        gate.open()
        await close()

    server.close = open_and_close  # type: ignore[method-assign]

    @server.command(CHECKS_STARTED_COMMAND)
    async def checks_started(ls: LiftServer, count: int) -> bool:
        return await asyncio.to_thread(gate.wait_started, count)

    @server.command(LET_ONE_CHECK_RUN_COMMAND)
    def let_one_check_run(ls: LiftServer) -> None:
        gate.let_one_through()

    @server.command(LET_CHECKS_RUN_COMMAND)
    def let_checks_run(ls: LiftServer) -> None:
        gate.open()

    return server


if __name__ == "__main__":
    sys.exit(serve(partial(held_server, workspace="--workspace" in sys.argv[1:])))
