"""Code actions on a function: "Generate from spec", "Resolve hole: ...", "Show IR", and the quick fix "Fix the code
from its spec" on its failing-example and refuted-contract diagnostics. Cheap: parsing only.

The model is never called while actions are listed; "Generate from spec" runs the `lift.generate` command, "Fix the
code from its spec" the `lift.fix` command.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from lsprotocol import types

from lift_lsp.generate.forward import Edit, apply_edits, import_edit
from lift_lsp.lsp.analysis import DocumentAnalysis
from lift_lsp.spec.ir import HoleKind, ParamKind
from lift_lsp.spec.reverse import FunctionIR
from lift_lsp.spec.sites import SpecSite

GENERATE_COMMAND = "lift.generate"
FIX_COMMAND = "lift.fix"
SHOW_IR_COMMAND = "lift.showIr"
GENERATE_TITLE = "Generate from spec"
FIX_TITLE = "Fix the code from its spec"
FIXABLE_CODES = frozenset({"LIFT001", "LIFT002", "LIFT003", "LIFT004", "LIFT006", "LIFT012"})
"""Diagnostics that say the code fails its spec: a failing example, a postcondition false on an example or refuted."""

ToClient = Callable[[int, int], types.Position]
"""Converts a (line, code-point column) to the client's position encoding."""


def code_actions(analysis: DocumentAnalysis, line: int, col: int, to_client: ToClient) -> list[types.CodeAction]:
    site = analysis.site_at(line, col)
    if site is None:
        return []
    fir = analysis.function_ir(site)
    actions: list[types.CodeAction] = []
    if site.is_stub:
        actions += _resolve_hole_actions(analysis.uri, fir, to_client)
        actions.append(_generate_action(analysis, fir))
    actions.append(
        types.CodeAction(
            title=f"Show IR of {site.qualname}",
            kind=types.CodeActionKind.Empty,
            command=types.Command(title="Show IR", command=SHOW_IR_COMMAND, arguments=[analysis.uri, site.qualname]),
        )
    )
    return actions


def _generate_action(analysis: DocumentAnalysis, fir: FunctionIR) -> types.CodeAction:
    site = fir.site
    action = types.CodeAction(
        title=GENERATE_TITLE,
        kind=types.CodeActionKind.RefactorRewrite,
        command=types.Command(
            title=GENERATE_TITLE,
            command=GENERATE_COMMAND,
            arguments=[analysis.uri, site.qualname, analysis.version],
        ),
    )
    if site.spec_text is None or not site.spec_text.strip():
        action.disabled = types.CodeActionDisabled(reason="the function has no docstring or `# spec:` comment")
    elif fir.ir.holes:
        names = ", ".join(h.id for h in fir.ir.holes)
        action.disabled = types.CodeActionDisabled(reason=f"resolve the spec's holes first: {names}")
    return action


def _resolve_hole_actions(uri: str, fir: FunctionIR, to_client: ToClient) -> list[types.CodeAction]:
    """A type hole is resolved by writing the chosen annotation into the `def` line: the spec itself changes, so
    the resolution is visible, undoable and survives a restart."""
    actions: list[types.CodeAction] = []
    for hole in fir.ir.holes:
        if hole.kind != HoleKind.TYPE:
            continue
        for option in hole.options:
            edit = _annotation_edit(fir.site, hole.id, option, to_client)
            if edit is None:
                continue
            actions.append(
                types.CodeAction(
                    title=f"Resolve hole: {hole.description} = {option}",
                    kind=types.CodeActionKind.QuickFix,
                    edit=types.WorkspaceEdit(changes={uri: [edit]}),
                    is_preferred=option == hole.default,
                )
            )
    return actions


def _annotation_edit(site: SpecSite, hole_id: str, option: str, to_client: ToClient) -> types.TextEdit | None:
    if hole_id == "type-return":
        at = to_client(site.header_end_line, site.header_colon_col)
        return types.TextEdit(range=types.Range(start=at, end=at), new_text=f" -> {option}")
    name = hole_id.removeprefix("type-")
    param = next((p for p in site.params if p.name == name and p.kind != ParamKind.VAR_KEYWORD), None)
    if param is None or param.name_span is None:
        return None
    at = to_client(param.name_span.end_line, param.name_span.end_col)
    return types.TextEdit(range=types.Range(start=at, end=at), new_text=f": {option}")


def fix_actions(analysis: DocumentAnalysis, diagnostics: Sequence[types.Diagnostic]) -> list[types.CodeAction]:
    """ "Fix the code from its spec" for each implemented function that the given diagnostics say fails its spec,
    with those diagnostics attached. It runs `lift.fix`, which offers an edit only when a candidate passes."""
    by_site: dict[str, list[types.Diagnostic]] = {}
    for diagnostic in diagnostics:
        if diagnostic.source != "lift" or diagnostic.code not in FIXABLE_CODES:
            continue
        line = diagnostic.range.start.line
        holding = [s for s in analysis.sites if s.span.start_line <= line <= s.span.end_line and not s.is_stub]
        if holding:
            by_site.setdefault(max(holding, key=lambda s: s.span.start_line).qualname, []).append(diagnostic)
    return [
        types.CodeAction(
            title=FIX_TITLE,
            kind=types.CodeActionKind.QuickFix,
            diagnostics=found,
            command=types.Command(
                title=FIX_TITLE, command=FIX_COMMAND, arguments=[analysis.uri, qualname, analysis.version]
            ),
        )
        for qualname, found in by_site.items()
    ]


def resolve_type_holes(analysis: DocumentAnalysis, site: SpecSite) -> tuple[str, list[str]]:
    """The document with each type hole of `site` resolved by its preferred "Resolve hole" quick fix (with
    `from typing import Any` when the annotations use `Any`), and the fixes' titles. A hole without such a fix stays:
    forward mode then refuses. For the command line and the benchmark: the user's edit, made without an editor."""
    edits: list[Edit] = []
    titles: list[str] = []
    for action in code_actions(analysis, site.name_span.start_line, site.name_span.start_col, types.Position):
        if action.is_preferred and action.edit is not None and action.edit.changes:
            titles.append(action.title.removeprefix("Resolve hole: "))
            for e in action.edit.changes[analysis.uri]:
                start, end = e.range.start, e.range.end
                edits.append(Edit(start.line, start.character, end.line, end.character, e.new_text))
    text = apply_edits(analysis.text, edits)
    if any(re.search(r"\bAny\b", e.text) for e in edits):
        imports = import_edit(text, ["from typing import Any"])
        text = apply_edits(text, [imports]) if imports is not None else text
    return text, titles
