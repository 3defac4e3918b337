"""One document's checks in the check lane: started on open and save, published as diagnostics; a code action on the
text being checked waits for them (`wait_for_check`), so that it has the quick fixes of what the check finds."""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from lift_lsp.lsp.actions import Problem, problems_at
from lift_lsp.lsp.findings import DocumentCheck, diagnostic, findings_for_text
from lift_lsp.lsp.scheduler import Superseded

if TYPE_CHECKING:
    from lift_lsp.lsp.server import LiftServer

log = logging.getLogger("lift_lsp")


@dataclass
class CheckInFlight:
    """A check started for one version of a document: `done` is set once it has published, or given up."""

    text: str
    version: int | None
    done: asyncio.Event = field(default_factory=asyncio.Event)


def start_check(ls: LiftServer, uri: str) -> None:
    """Check the document's current text in the background and publish the findings (`publish_checks`); code actions
    on that text wait for it meanwhile (`wait_for_check`)."""
    doc = ls.open_document(uri)
    if doc is None:
        return
    check = CheckInFlight(doc.source, doc.version)
    ls.state(uri).in_flight = check
    ls.spawn(_publish_then_done(ls, uri, check))


async def _publish_then_done(ls: LiftServer, uri: str, check: CheckInFlight) -> None:
    try:
        await publish_checks(ls, uri, check.text, check.version)
    finally:
        check.done.set()
        state = ls.documents.get(uri)  # None once the document is closed; a reopened one has its own check
        if state is not None and state.in_flight is check:
            state.in_flight = None


async def wait_for_check(ls: LiftServer, uri: str) -> None:
    """Return once the server has findings for the document's current text, or no check of that text is under way,
    or after `ls.check_wait_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ls.check_wait_s
    while (check := _check_to_wait_for(ls, uri)) is not None:
        try:
            await asyncio.wait_for(check.done.wait(), deadline - loop.time())
        except TimeoutError:
            log.warning(
                "lift-lsp: the check of %s took over %.0f s: code actions answered without it", uri, ls.check_wait_s
            )
            return


def _check_to_wait_for(ls: LiftServer, uri: str) -> CheckInFlight | None:
    """The check under way of the document's current text, while the server has no findings for that text."""
    doc = ls.open_document(uri)
    state = ls.documents.get(uri)
    check = state.in_flight if state is not None else None
    if doc is None or state is None or check is None or check.text != doc.source:
        return None
    published = state.check
    return None if published is not None and published.text == doc.source else check


def current_problems(ls: LiftServer, doc: TextDocument, params: types.CodeActionParams) -> list[Problem]:
    """The problems a code action request on `doc` is for: the server's own findings that hold for the document's
    current text, and the diagnostics the client sent (see `problems_at`)."""
    check = ls.published(params.text_document.uri)
    findings = findings_for_text(check, doc.source) if check is not None else []
    own = [diagnostic(finding, doc) for finding in findings]
    return problems_at(own, params.context.diagnostics, params.range)


async def publish_checks(ls: LiftServer, uri: str, text: str, version: int | None) -> None:
    """Check one version of a document in the check lane and publish the findings. A check that fails is run once
    more (unless a newer check of the document waits already: that one publishes); when that fails too the error is
    shown and the diagnostics published last stay."""
    path = to_fs_path(uri) if uri.startswith("file:") else None
    work = functools.partial(ls.check, text, path or uri, ls.trusted_diagnostics(path))
    for attempt in (1, 2):
        try:
            report = await ls.check_lane.submit(uri, work)
            break
        except Superseded:
            return  # a newer check of the document replaced this one before it ran
        except Exception as err:
            if ls.check_lane.has_pending(uri):
                return  # a newer check of the document waits already: it publishes
            if attempt == 1:
                log.warning("lift-lsp: checking %s failed; trying once more", uri, exc_info=True)
                continue
            log.exception("lift-lsp: checking %s failed", uri)
            ls.show(
                f"lift-lsp: checking the file failed (the diagnostics shown are from the last check): {err}",
                types.MessageType.Error,
            )
            return
    current = ls.open_document(uri)
    if current is None or (current.version != version and current.source != text):
        return  # closed, or the document moved on: the next save publishes fresh results
    ls.state(uri).check = DocumentCheck(text, report)
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(
            uri=uri, version=version, diagnostics=[diagnostic(f, current) for f in report.findings]
        )
    )
