"""Code actions on a function: "Generate from spec", "Resolve hole: ...", "Show IR". Cheap: from its IR alone.

The model is never called while actions are listed; "Generate from spec" runs the `lift.generate` command.
"""

from __future__ import annotations

from collections.abc import Callable

from lsprotocol import types

from lift_lsp.lsp.analysis import DocumentAnalysis
from lift_lsp.spec.ir import HoleKind, ParamKind
from lift_lsp.spec.reverse import FunctionIR
from lift_lsp.spec.sites import SpecSite

GENERATE_COMMAND = "lift.generate"
SHOW_IR_COMMAND = "lift.showIr"
GENERATE_TITLE = "Generate from spec"

ToClient = Callable[[int, int], types.Position]
"""Converts a (line, code-point column) to the client's position encoding."""


def code_actions(analysis: DocumentAnalysis, fir: FunctionIR, to_client: ToClient) -> list[types.CodeAction]:
    """The actions on the function `fir` of the document `analysis`."""
    site = fir.site
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
