"""What a hover or a code action answers from: the function at a position, as far as it is analysed, and its hover
text with what the document's last check found."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.workspace import TextDocument

from lift_lsp.check.checks import FileCheck
from lift_lsp.lsp.analysis import Analysed, DocumentAnalysis
from lift_lsp.lsp.documents import server_position
from lift_lsp.spec.render import to_markdown

if TYPE_CHECKING:
    from lift_lsp.lsp.server import LiftServer


def _escape(text: str) -> str:
    """Plain text inside Markdown emphasis."""
    return "".join(f"\\{c}" if c in "\\`*_[]<>#|" else c for c in text)


def hover_markdown(report: FileCheck | None, known: Analysed) -> str:
    """The function's IR as rendered, with what the document's last check found: each postcondition's status, and
    the function's status in one line."""
    if report is None:
        return known.markdown
    qualname = known.fir.site.qualname
    checked = report.contracts.get(qualname)
    notes = {c.expr: c.detail for c in checked.conditions} if checked is not None else None
    markdown = known.markdown if notes is None else to_markdown(known.fir.ir, notes)
    status = report.status_line(qualname)
    return markdown if status is None else f"{markdown}\n\n---\n*{_escape(status)}*"


def _to_server(doc: TextDocument, position: types.Position) -> tuple[int, int] | None:
    lines = doc.lines
    if position.line < 0 or position.line >= max(len(lines), 1):
        return None
    return server_position(lines, position, doc.position_codec.encoding)


async def function_at(
    ls: LiftServer, uri: str, position: types.Position
) -> tuple[Analysed | None, DocumentAnalysis, TextDocument] | None:
    """The function at a position (None where there is none), as far as it is analysed: from what is ready when it
    is (no waiting), else computed for that one function in a request thread, without waiting for jedi; None for a
    document that is not open."""
    found = ls.analysis(uri)
    if found is None:
        return None
    analysis, doc = found
    ls.touch(uri)
    if not analysis.sites_ready:
        await ls.requests.run(lambda: analysis.sites)
    at = _to_server(doc, position)
    site = analysis.site_at(*at) if at is not None else None
    if site is None:
        return None, analysis, doc
    known = analysis.ready(site)
    if known is None:
        known = await ls.requests.run(functools.partial(analysis.quick, site))
    return known, analysis, doc
