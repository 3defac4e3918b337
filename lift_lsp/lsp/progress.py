"""The `$/progress` of a long command (a generation, a fix, a workspace check), cancellable from the editor's
progress UI (`window/workDoneProgress/cancel`) when it says how to stop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from lsprotocol import types
from pygls.lsp.server import LanguageServer

Cancel = Callable[[], None]
"""What stops a command in flight, called on the event loop."""


class Progress:
    """One command's progress in the editor; where the client does not do progress, nothing is shown and the
    command carries on without it."""

    def __init__(self, ls: LanguageServer, token: str, cancels: dict[str, Cancel], shown: bool) -> None:
        self.token = token
        self.shown = shown
        self._ls = ls
        self._cancels = cancels

    @classmethod
    async def begin(
        cls,
        ls: LanguageServer,
        kind: str,
        title: str,
        cancels: dict[str, Cancel],
        cancel: Cancel | None = None,
        percentage: int | None = None,
    ) -> Progress:
        """Show the progress `title` under a fresh token `lift-KIND-...`; with `cancel`, the editor may stop it
        (`cancels`: the server's cancel of each progress token, the entry removed at `end`)."""
        token = f"lift-{kind}-{uuid.uuid4()}"
        begin = types.WorkDoneProgressBegin(title=title, cancellable=cancel is not None, percentage=percentage)
        try:
            await asyncio.wait_for(ls.work_done_progress.create_async(token), timeout=5)
            ls.work_done_progress.begin(token, begin)
            shown = True
        except Exception:  # the client does not do progress: carry on without it
            shown = False
        if cancel is not None:
            cancels[token] = cancel
        return cls(ls, token, cancels, shown)

    def report(self, message: str, percentage: int) -> None:
        if self.shown:
            self._ls.work_done_progress.report(
                self.token, types.WorkDoneProgressReport(message=message, percentage=percentage)
            )

    def end(self, message: str | None = None) -> None:
        self._cancels.pop(self.token, None)
        if self.shown:
            self._ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
