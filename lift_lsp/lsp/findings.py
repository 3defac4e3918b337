"""The server's own findings for an open document, as they stand for its current text.

A check's findings are for the text it ran on. Quick fixes read them from here rather than from the copy of the
diagnostics a client sends with its request, which may be older, or missing while the check runs. When the document
has changed since its last check, a function's findings still hold for the text where a check would answer them from
its cache: the function reads the same, and so do the module functions it uses and the code outside the functions
(comment and blank lines aside). They move with the function (lines added above it); the others are dropped until the
next check.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from lsprotocol import types
from pygls.workspace import TextDocument

from lift_lsp.check.checks import FileCheck
from lift_lsp.check.findings import Finding, moved, underline
from lift_lsp.lsp.documents import client_converter
from lift_lsp.spec.sites import SpecSite, find_sites, functions_used, module_functions, outside_functions

_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
}


@dataclass(frozen=True)
class DocumentCheck:
    """A document's last published check: the text it ran on and what it found."""

    text: str
    report: FileCheck


def diagnostic(finding: Finding, doc: TextDocument) -> types.Diagnostic:
    """The finding as the editor shows it: on its line of `doc`, from the line's first character to its end."""
    lines = doc.lines
    row = min(max(finding.line - 1, 0), max(len(lines) - 1, 0))
    text = lines[row].rstrip("\r\n") if lines else ""
    start, end = underline(text)
    to_client = client_converter(doc)
    return types.Diagnostic(
        range=types.Range(start=to_client(row, start), end=to_client(row, end)),
        message=finding.message,
        severity=_SEVERITY[finding.severity],
        code=finding.code,
        source="lift",
        data=finding.data,
    )


def findings_for_text(check: DocumentCheck, text: str) -> list[Finding]:
    """The check's findings that hold for `text`, at their place in it."""
    if text == check.text:
        return list(check.report.findings)
    checked, current = _Module(check.text), _Module(text)
    carried: list[Finding] = []
    for finding in check.report.findings:
        before, now = checked.unique(finding.function), current.unique(finding.function)
        if before is not None and now is not None and checked.inputs(before) == current.inputs(now):
            carried.append(moved(finding, now.def_line - before.def_line))
    return carried


class _Module:
    """One text's functions, and what a check of each depends on."""

    def __init__(self, text: str) -> None:
        self.sites = find_sites(text)
        self.outside = outside_functions(text, self.sites)
        self._by_name = module_functions(self.sites)
        self._counts = Counter(site.qualname for site in self.sites)

    def unique(self, qualname: str) -> SpecSite | None:
        """The one function of that name (None for none, or for two: which one a finding is about is unknown)."""
        if self._counts[qualname] != 1:
            return None
        return next(site for site in self.sites if site.qualname == qualname)

    def inputs(self, site: SpecSite) -> tuple[str, ...]:
        """What the function's check results depend on: the code outside the functions, and its own text and the
        texts of the module functions it uses (as `check_document`'s cache key)."""
        return (self.outside, *sorted(used.text for used in functions_used(site, self._by_name)))
