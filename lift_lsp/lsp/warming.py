"""Each open document analysed in the background once the user pauses typing, so that hovers answer from what is
ready: the IR without jedi in the analysis lane, then jedi's types in the types lane."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from lift_lsp.lsp.scheduler import Superseded

if TYPE_CHECKING:
    from lift_lsp.lsp.server import LiftServer

log = logging.getLogger("lift_lsp")
WARM_DELAY_S = 0.3
"""Quiet time after a change before the document is analysed in the background."""


def stop_warm(ls: LiftServer, uri: str) -> None:
    state = ls.documents.get(uri)
    if state is not None and state.warm_timer is not None:
        state.warm_timer.cancel()
        state.warm_timer = None
    ls.analysis_lane.cancel(uri)
    ls.types_lane.cancel(uri)


def schedule_warm(ls: LiftServer, uri: str, delay_s: float = WARM_DELAY_S) -> None:
    """Analyse every function of the document's latest version in the analysis lane, once the user pauses typing
    (at once when the document is opened or saved), so that hovers answer from what is ready. A newer version
    stops the run between two functions."""
    stop_warm(ls, uri)
    if ls.options.hover.enabled:
        ls.state(uri).warm_timer = asyncio.get_running_loop().call_later(delay_s, _warm, ls, uri)


def _warm(ls: LiftServer, uri: str) -> None:
    state = ls.documents.get(uri)
    if state is not None:
        state.warm_timer = None
    found = ls.analysis(uri)
    if found is None:
        return
    analysis = found[0]

    def wanted() -> bool:
        return ls.analyses.is_current(analysis)

    def prepared(future: asyncio.Future[bool]) -> None:
        if _succeeded(future) and future.result():
            ls.types_lane.submit(uri, lambda: analysis.complete_types(wanted)).add_done_callback(_succeeded)

    ls.analysis_lane.submit(uri, lambda: analysis.prepare(wanted)).add_done_callback(prepared)


def _succeeded(future: asyncio.Future[Any]) -> bool:
    """Whether a background analysis went well; logs it when it failed (a superseded one did not)."""
    error = None if future.cancelled() else future.exception()
    if error is not None and not isinstance(error, Superseded):
        log.error("lift-lsp: analysing a document failed", exc_info=error)
    return not future.cancelled() and error is None
