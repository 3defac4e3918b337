"""Code actions: quick fixes attached to lift's diagnostics, and on a function "Generate from spec", "Resolve hole:
...", "Show IR". Cheap: parsing only; the model is never called while actions are listed ("Generate from spec" runs
the `lift.generate` command, the quick fix "Fix the code from its spec" the `lift.fix` command).

Each quick fix is an edit checked against the document's version: the editor applies it only to the version it was
computed for. The fixes are for the server's own findings on the current text (see findings.py), those on the
request's lines and those the client sent, whatever the version its copy is from (`problems_at`): so the answer is
the same whether or not the client had the latest diagnostics when it asked. A fix that reads a diagnostic's `data`
(the range of an example's expected text, a counterexample) reads the server's current one; the others recompute
their edit from the document. `QUICK_FIXES` lists the builders by diagnostic code.
"""

from __future__ import annotations

import ast
import builtins
import re
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from lsprotocol import types

from lift_lsp import pyast
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
UPDATE_EXAMPLE_TITLE = "Update the example to the actual result"
ADD_COUNTEREXAMPLE_TITLE = "Add the counterexample as a doctest"
UNKNOWN_RESULT = "TODO: the correct result"
"""The want line of a counterexample's doctest when the spec does not say the correct result."""
DESCRIPTION_PLACEHOLDER = "_description_"

ToClient = Callable[[int, int], types.Position]
"""Converts a (line, code-point column) to the client's position encoding."""


@dataclass(frozen=True)
class Problem:
    """A diagnostic that a request's quick fixes are for."""

    shown: types.Diagnostic
    """The diagnostic as the client has it (its copy when it sent one, else the server's own): the fixes list it."""
    current: types.Diagnostic | None
    """The server's own diagnostic for it on the document's current text, whose range and `data` hold for that text;
    None when none of the server's current findings is the one the client's copy shows."""

    @property
    def diagnostic(self) -> types.Diagnostic:
        """Where the problem is and what it is: the current diagnostic, else the client's copy."""
        return self.shown if self.current is None else self.current


def problems_at(own: Sequence[types.Diagnostic], sent: Sequence[types.Diagnostic], at: types.Range) -> list[Problem]:
    """The problems of a request at `at`: each lift diagnostic the client sent, with the server's own current one of
    the same finding (same code and message; the nearest when several are), and each of the server's own diagnostics
    on the request's lines that the client did not send (it had none yet, or its copy is of an earlier version)."""
    unpaired = list(own)
    problems: list[Problem] = []
    for diagnostic in sent:
        if diagnostic.source != "lift":
            continue
        current = _same_finding(unpaired, diagnostic)
        if current is not None:
            unpaired.remove(current)
        problems.append(Problem(diagnostic, current))
    return problems + [Problem(d, d) for d in unpaired if _on_lines(d.range, at)]


def _same_finding(own: Sequence[types.Diagnostic], sent: types.Diagnostic) -> types.Diagnostic | None:
    same = [d for d in own if d.code == sent.code and d.message == sent.message]
    return min(same, key=lambda d: abs(d.range.start.line - sent.range.start.line), default=None)


def _on_lines(span: types.Range, at: types.Range) -> bool:
    return span.start.line <= at.end.line and at.start.line <= span.end.line


@dataclass(frozen=True)
class ActionRequest:
    """A code-action request: the document, the position, and the problems there."""

    analysis: DocumentAnalysis
    fir: FunctionIR | None
    """The function at the request's position, as far as it is analysed (None: no function there)."""
    to_client: ToClient
    problems: Sequence[Problem] = ()
    only: Sequence[str] | None = None
    """`context.only`: the kinds the client asks for (a kind covers its sub-kinds); None: every kind."""
    versioned_edits: bool = True
    """The client takes `documentChanges` (edits bound to a document version)."""

    @cached_property
    def lines(self) -> list[str]:
        return [line.rstrip("\r") for line in self.analysis.text.split("\n")]

    @cached_property
    def newline(self) -> str:
        return "\r\n" if "\r\n" in self.analysis.text else "\n"


QuickFixBuilder = Callable[[ActionRequest, Problem], list[types.CodeAction]]


def code_actions(request: ActionRequest) -> list[types.CodeAction]:
    """The quick fixes of the request's problems, and the actions on the function at its position."""
    actions: list[types.CodeAction] = []
    for problem in request.problems:
        code = problem.diagnostic.code
        if isinstance(code, str):
            for build in QUICK_FIXES.get(code, []):
                actions += build(request, problem)
    analysis = request.analysis
    actions += fix_actions(analysis, request.problems)
    fir = request.fir
    if fir is not None:
        site = fir.site
        if site.is_stub:
            actions += _resolve_hole_actions(request, fir)
            actions.append(_generate_action(analysis, fir))
        actions.append(
            types.CodeAction(
                title=f"Show IR of {site.qualname}",
                kind=types.CodeActionKind.Empty,
                command=types.Command(
                    title="Show IR", command=SHOW_IR_COMMAND, arguments=[analysis.uri, site.qualname]
                ),
            )
        )
    return _merged([a for a in actions if _wanted(a.kind, request.only)])


def _merged(actions: list[types.CodeAction]) -> list[types.CodeAction]:
    """One action for one edit: a fix offered on two diagnostics (a rename fixes LIFT007 and LIFT008) lists both."""
    out: list[types.CodeAction] = []
    for action in actions:
        same = next((a for a in out if a.title == action.title and a.edit is not None and a.edit == action.edit), None)
        if same is None:
            out.append(action)
        else:
            same.diagnostics = [*(same.diagnostics or []), *(action.diagnostics or [])]
    return out


def wants_quick_fixes(only: Sequence[str] | None) -> bool:
    """Whether a request's `context.only` takes quick fixes."""
    return _wanted(types.CodeActionKind.QuickFix, only)


def _wanted(kind: str | None, only: Sequence[str] | None) -> bool:
    if only is None:
        return True
    return kind is not None and any(kind == o or (o and kind.startswith(o + ".")) for o in only)


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


def _quick_fix(
    request: ActionRequest,
    title: str,
    edits: list[Edit],
    diagnostics: list[types.Diagnostic],
    preferred: bool = False,
) -> types.CodeAction:
    to_client = request.to_client
    text_edits: list[types.TextEdit | types.AnnotatedTextEdit | types.SnippetTextEdit] = [
        types.TextEdit(
            range=types.Range(start=to_client(e.start_line, e.start_col), end=to_client(e.end_line, e.end_col)),
            new_text=e.text,
        )
        for e in edits
    ]
    uri = request.analysis.uri
    if request.versioned_edits:
        document = types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=request.analysis.version)
        edit = types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(text_document=document, edits=text_edits)])
    else:
        edit = types.WorkspaceEdit(changes={uri: [e for e in text_edits if isinstance(e, types.TextEdit)]})
    return types.CodeAction(
        title=title,
        kind=types.CodeActionKind.QuickFix,
        diagnostics=diagnostics or None,
        edit=edit,
        is_preferred=preferred or None,
    )


def _site_of(request: ActionRequest, diagnostic: types.Diagnostic) -> SpecSite | None:
    line = diagnostic.range.start.line
    text = request.lines[line] if 0 <= line < len(request.lines) else ""
    return request.analysis.site_at(line, len(text) - len(text.lstrip()))


def _data(diagnostic: types.Diagnostic) -> dict[str, Any]:
    return diagnostic.data if isinstance(diagnostic.data, dict) else {}


# ---------------------------------------------------------------- a failing example: update it to the actual result


def update_example(request: ActionRequest, problem: Problem) -> list[types.CodeAction]:
    """LIFT001 with `{"expected_range", "actual"}`: write the actual result where the expected one is written."""
    if problem.current is None:
        return []
    data = _data(problem.current)
    span, actual = data.get("expected_range"), data.get("actual")
    if not isinstance(actual, str) or not _is_range(span, request.lines):
        return []
    start_line, start_col, end_line, end_col = span
    site = _site_of(request, problem.current)
    in_docstring = site is not None and site.docstring_span is not None and site.docstring_span.contains(*span[:2])
    if site is not None and in_docstring:
        actual = _docstring_escaped(request.lines, site, actual)
        if actual is None:
            return []
    first = request.lines[start_line]
    indent = first[: len(first) - len(first.lstrip())]
    new_text = (request.newline + indent).join(actual.split("\n"))
    edit = Edit(start_line, start_col, end_line, end_col, new_text)
    return [_quick_fix(request, UPDATE_EXAMPLE_TITLE, [edit], [problem.shown])]


def _is_range(span: object, lines: Sequence[str]) -> typing.TypeGuard[list[int]]:
    if not (isinstance(span, list) and len(span) == 4 and all(isinstance(n, int) for n in span)):
        return False
    start_line, start_col, end_line, end_col = span
    return (
        0 <= start_line <= end_line < len(lines)
        and 0 <= start_col <= len(lines[start_line])
        and 0 <= end_col <= len(lines[end_line])
        and (start_line, start_col) <= (end_line, end_col)
    )


def _docstring_escaped(lines: Sequence[str], site: SpecSite, text: str) -> str | None:
    """`text` as it must be written in the docstring's literal so that the docstring holds `text`: backslashes
    doubled unless the string is raw; None when it holds the docstring's own quotes."""
    span = site.docstring_span
    assert span is not None
    opening = re.match(r"[A-Za-z]*('''|\"\"\"|'|\")", lines[span.start_line][span.start_col :])
    if opening is None or opening.group(1) in text:
        return None
    raw = "r" in opening.group(0)[: -len(opening.group(1))].lower()
    return text if raw else text.replace("\\", "\\\\")


# ---------------------------------------------------------------- a refuted contract: the counterexample as a doctest


def add_counterexample(request: ActionRequest, problem: Problem) -> list[types.CodeAction]:
    """LIFT012 with `{"inputs", "call", "result", "raised", "condition"}`: a doctest of the failing call, its want
    line the result the spec gives (`post: __return__ == x`), else left for the user to write."""
    if problem.current is None:
        return []
    data = _data(problem.current)
    call, condition, inputs = data.get("call"), data.get("condition"), data.get("inputs")
    if not (isinstance(call, str) and isinstance(condition, str)):
        return []
    site = _site_of(request, problem.current)
    if site is None or site.docstring_span is None or not isinstance(inputs, dict):
        return []
    expected = _result_from_spec(condition, {str(k): str(v) for k, v in inputs.items()})
    if expected is None:
        code_did = f"raises {data['raised']}" if data.get("raised") else f"returns {data.get('result')}"
        source, want = f"{call}  # the code {code_did}, which breaks `{condition}`", UNKNOWN_RESULT
    else:
        source, want = call, expected
    escaped = [_docstring_escaped(request.lines, site, text) for text in (source, want)]
    if None in escaped:
        return []
    edit = _doctest_insertion(request, site, [f">>> {escaped[0]}", str(escaped[1])])
    if edit is None:
        return []
    return [_quick_fix(request, ADD_COUNTEREXAMPLE_TITLE, [edit], [problem.shown])]


_RETURN_NAMES = ("__return__", "result", "_")


def _result_from_spec(condition: str, inputs: dict[str, str]) -> str | None:
    """The result the condition fixes for these inputs (`__return__ == x` with x=3 -> `3`), when it is a literal."""
    try:
        tree = pyast.parse_expression(condition)
        values = {name: pyast.parse_expression(value) for name, value in inputs.items()}
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if not (isinstance(tree, ast.Compare) and len(tree.ops) == 1 and isinstance(tree.ops[0], ast.Eq)):
        return None
    sides = [tree.left, tree.comparators[0]]
    returned = [isinstance(s, ast.Name) and s.id in _RETURN_NAMES for s in sides]
    if returned.count(True) != 1:
        return None
    other = sides[returned.index(False)]
    if any(isinstance(n, ast.Name) and n.id in _RETURN_NAMES for n in ast.walk(other)):
        return None

    class Substitute(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            return values.get(node.id, node)

    try:
        value = pyast.literal_value(Substitute().visit(other))
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return None
    return repr(value)


def _doctest_insertion(request: ActionRequest, site: SpecSite, block: list[str]) -> Edit | None:
    """An edit adding `block` (doctest lines) at the end of a triple-quoted docstring, after a blank line unless
    it follows another doctest."""
    span = site.docstring_span
    assert span is not None
    lines, newline = request.lines, request.newline
    closing = lines[span.end_line][: span.end_col]
    quote = closing[-3:]
    if quote not in ('"""', "'''"):
        return None
    indent = site.body_indent
    body = [indent + line for line in block]
    before_quote = closing[:-3]
    if before_quote.strip() == "" and span.end_line > span.start_line:  # the quotes on a line of their own
        previous = span.end_line - 1
        while previous > span.start_line and not lines[previous].strip():
            previous -= 1
        separate = not _in_doctest(lines, previous, span.start_line)
        text = newline.join(([""] if separate else []) + body) + newline
        return Edit(previous + 1, 0, previous + 1, 0, text)
    end = span.end_col - 3
    text = newline + newline + newline.join(body) + newline + indent
    return Edit(span.end_line, end, span.end_line, end, text)


def _in_doctest(lines: Sequence[str], row: int, first: int) -> bool:
    """Whether `row` belongs to a doctest example (a `>>>` line or its output), going up to a blank line."""
    while row >= first and lines[row].strip():
        if lines[row].strip().startswith(">>>"):
            return True
        row -= 1
    return False


# ---------------------------------------------------------------- the docstring against the signature


def documented_param_absent(request: ActionRequest, problem: Problem) -> list[types.CodeAction]:
    """LIFT007: rename the entry to the one undocumented parameter, or remove it."""
    name = _data(problem.diagnostic).get("name")
    found = _docstring_state(request, problem.diagnostic)
    if found is None or not isinstance(name, str) or name not in found.absent:
        return []
    actions = _rename_fix(request, found, problem)
    entries = _entries(request.lines, found.site, name)
    if entries:
        edits = [Edit(start, 0, end + 1, 0, "") for start, end in entries]
        title = f"Remove `{name}` from the docstring"
        actions.append(_quick_fix(request, title, edits, [problem.shown], preferred=not actions))
    return actions


def undocumented_param(request: ActionRequest, problem: Problem) -> list[types.CodeAction]:
    """LIFT008: rename the one documented-but-absent entry to this parameter, or add an entry for it."""
    name = _data(problem.diagnostic).get("name")
    found = _docstring_state(request, problem.diagnostic)
    if found is None or not isinstance(name, str) or name not in found.undocumented:
        return []
    actions = _rename_fix(request, found, problem)
    edit = _entry_insertion(request, found, name)
    if edit is not None:
        title = f"Document `{name}` in the docstring"
        actions.append(_quick_fix(request, title, [edit], [problem.shown], preferred=not actions))
    return actions


def documented_type(request: ActionRequest, problem: Problem) -> list[types.CodeAction]:
    """LIFT009: write the annotation's type in the docstring."""
    data = _data(problem.diagnostic)
    name, documented, annotation = data.get("name"), data.get("documented"), data.get("annotation")
    found = _docstring_state(request, problem.diagnostic)
    if found is None or not isinstance(documented, str) or not isinstance(annotation, str):
        return []
    if name is None:
        rows = _returns_type_rows(request.lines, found.site)
        what = "the return"
    elif isinstance(name, str):
        rows = [start for start, _ in _entries(request.lines, found.site, name)]
        what = f"`{name}`"
    else:
        return []
    for row in rows:
        line = request.lines[row]
        at = _type_position(line, documented)
        if at is not None:
            edit = Edit(row, at, row, at + len(documented), annotation)
            title = f"Document {what} as `{annotation}`"
            return [_quick_fix(request, title, [edit], [problem.shown], preferred=True)]
    return []


@dataclass(frozen=True)
class _DocstringState:
    site: SpecSite
    absent: list[str]
    """Documented names that are not parameters."""
    undocumented: list[str]
    """Parameters the docstring does not document (it documents others)."""


def _docstring_state(request: ActionRequest, diagnostic: types.Diagnostic) -> _DocstringState | None:
    """The docstring's parameters against the signature, recomputed from the current document."""
    site = _site_of(request, diagnostic)
    if site is None or site.docstring_span is None:
        return None
    fir = request.analysis.quick(site).fir  # the docstring's own parameters: jedi cannot change them
    params = {p.name for p in site.params}
    documented = [p.name.lstrip("*") for p in fir.doc.params]
    absent = [name for name in documented if name not in params]
    undocumented = [p.name for p in fir.ir.signature.parameters if documented and p.name not in documented]
    return _DocstringState(site, absent, undocumented)


def _rename_fix(request: ActionRequest, found: _DocstringState, problem: Problem) -> list[types.CodeAction]:
    """With exactly one documented-absent name and one undocumented parameter, the entry was meant for it."""
    if len(found.absent) != 1 or len(found.undocumented) != 1:
        return []
    old, new = found.absent[0], found.undocumented[0]
    pattern = re.compile(rf"(?<![\w.]){re.escape(old)}(?!\w)")
    edits: list[Edit] = []
    for start, _ in _entries(request.lines, found.site, old):
        match = pattern.search(request.lines[start])
        if match is not None:
            edits.append(Edit(start, match.start(), start, match.end(), new))
    if not edits:
        return []
    title = f"Rename `{old}` to `{new}` in the docstring"
    return [_quick_fix(request, title, edits, [problem.shown], preferred=True)]


_REST_ENTRY = r":(?:param|parameter|arg|argument|key|keyword|type)\s+(?:[^:]*\s)?\*{{0,2}}{name}\s*:"
_PLAIN_ENTRY = r"\*{{0,2}}{name}\s*(?:\([^)]*\))?\s*(?::|$)"


def _docstring_rows(site: SpecSite) -> range:
    """The docstring's lines between the one with the opening quotes and the one with the closing quotes."""
    span = site.docstring_span
    assert span is not None
    return range(span.start_line + 1, span.end_line)


def _entries(lines: Sequence[str], site: SpecSite, name: str) -> list[tuple[int, int]]:
    """The (first, last) rows of each docstring entry for parameter `name` (`:param x:`, `:type x:`, `x (int): ...`,
    `x : int`), with its continuation lines."""
    entry = re.compile("|".join(p.format(name=re.escape(name)) for p in (_REST_ENTRY, _PLAIN_ENTRY)))
    rows = _docstring_rows(site)
    found: list[tuple[int, int]] = []
    for row in rows:
        text = lines[row]
        if not entry.match(text.strip()) or _in_doctest(lines, row, rows.start):
            continue
        indent = _indent(text)
        end = row
        while end + 1 < rows.stop and lines[end + 1].strip() and _indent(lines[end + 1]) > indent:
            end += 1
        found.append((row, end))
    return found


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _entry_insertion(request: ActionRequest, found: _DocstringState, name: str) -> Edit | None:
    """An entry for `name` in the style of the others: after the entry of the parameter before it in the
    signature, else before the first entry."""
    lines, site = request.lines, found.site
    order = [p.name for p in site.params]
    documented = {n: _entries(lines, site, n) for n in order if n != name}
    before = [n for n in order[: order.index(name)] if documented.get(n)]
    after = [n for n in order[order.index(name) + 1 :] if documented.get(n)]
    if before:
        row = documented[before[-1]][-1][1] + 1
        model = lines[documented[before[-1]][0][0]]
    elif after:
        row = documented[after[0]][0][0]
        model = lines[row]
    else:
        return None
    param = next(p for p in site.params if p.name == name)
    indent = model[: _indent(model)]
    stars = {ParamKind.VAR_POSITIONAL: "*", ParamKind.VAR_KEYWORD: "**"}.get(param.kind, "")
    annotation = param.annotation
    stripped = model.strip()
    if stripped.startswith(":"):
        entry = [f":param {name}: {DESCRIPTION_PLACEHOLDER}"]
    elif re.match(r"\S+\s+:", stripped) or stripped.endswith(" :"):  # NumPy: `x : int`, then the description
        entry = [f"{stars}{name} : {annotation or ''}".rstrip(), f"    {DESCRIPTION_PLACEHOLDER}"]
    elif re.match(r"\S+\s*\(", stripped) and annotation:  # Google with types: `x (int): ...`
        entry = [f"{stars}{name} ({annotation}): {DESCRIPTION_PLACEHOLDER}"]
    else:
        entry = [f"{stars}{name}: {DESCRIPTION_PLACEHOLDER}"]
    newline = request.newline
    return Edit(row, 0, row, 0, "".join(indent + line + newline for line in entry))


def _returns_type_rows(lines: Sequence[str], site: SpecSite) -> list[int]:
    """Rows that may hold the documented return type: `:rtype:`, and the first line of a Returns section."""
    rows = list(_docstring_rows(site))
    found = [row for row in rows if lines[row].strip().startswith(":rtype:")]
    for index, row in enumerate(rows[:-1]):
        if re.fullmatch(r"(Returns|Return|Yields)\s*:?", lines[row].strip()):
            following = [r for r in rows[index + 1 :] if lines[r].strip() and not re.fullmatch(r"-+", lines[r].strip())]
            found += following[:1]
    return found


def _type_position(line: str, documented: str) -> int | None:
    """Where the documented type is written on an entry's line: in parentheses, after a colon, or in
    `:param TYPE name:`."""
    for match in re.finditer(rf"(?<![\w.]){re.escape(documented)}(?!\w)", line):
        before, after = line[: match.start()].rstrip(), line[match.end() :].lstrip()
        if (
            before.endswith(("(", ":", "param", "rtype:"))
            or not before.strip()
            or after.startswith((")", ":"))
            or after[:1] in ("", ",")
        ):
            return match.start()
    return None


# ---------------------------------------------------------------- holes


def _resolve_hole_actions(request: ActionRequest, fir: FunctionIR) -> list[types.CodeAction]:
    """A type hole is resolved by writing the chosen annotation into the `def` line (and its import): the spec
    itself changes, so the resolution is visible, undoable and survives a restart. Attached to the hole's
    diagnostic when it is one of the request's problems."""
    actions: list[types.CodeAction] = []
    for hole in fir.ir.holes:
        if hole.kind != HoleKind.TYPE:
            continue
        attached = [
            p.shown
            for p in request.problems
            if p.diagnostic.code == "LIFT011" and _data(p.diagnostic).get("hole") == hole.id
        ]
        for option in hole.options:
            edit = _annotation_edit(fir.site, hole.id, option)
            if edit is None:
                continue
            edits = [edit, *_import_edits(request, option)]
            title = f"Resolve hole: {hole.description} = {option}"
            actions.append(_quick_fix(request, title, edits, attached, option == hole.default))
    return actions


def _annotation_edit(site: SpecSite, hole_id: str, option: str) -> Edit | None:
    if hole_id == "type-return":
        line, col = site.header_end_line, site.header_colon_col
        return Edit(line, col, line, col, f" -> {option}")
    name = hole_id.removeprefix("type-")
    param = next((p for p in site.params if p.name == name and p.kind != ParamKind.VAR_KEYWORD), None)
    if param is None or param.name_span is None:
        return None
    line, col = param.name_span.end_line, param.name_span.end_col
    return Edit(line, col, line, col, f": {option}")


_TYPING_NAMES = set(typing.__all__) - set(dir(builtins))


def _import_edits(request: ActionRequest, annotation: str) -> list[Edit]:
    """`from typing import X` for each typing name the annotation uses that the module does not bind."""
    try:
        used = {n.id for n in ast.walk(pyast.parse_expression(annotation)) if isinstance(n, ast.Name)}
    except SyntaxError:
        return []
    missing = sorted((used & _TYPING_NAMES) - _module_names(request.analysis.text))
    edit = import_edit(request.analysis.text, [f"from typing import {', '.join(missing)}"]) if missing else None
    return [] if edit is None else [edit]


_IMPORT_LINE = re.compile(r"(?:from\s+[\w.]+\s+)?import\s+(?P<names>[^()\\#]+?)\s*(?:#.*)?$")


def _module_names(text: str) -> set[str]:
    """Names the module binds at its top level (imports, definitions, assignments)."""
    try:
        tree = pyast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # broken code: its one-line imports
        names: set[str] = set()
        for line in text.split("\n"):
            match = _IMPORT_LINE.match(line)
            if match:
                names |= {part.split(" as ")[-1].strip().split(".")[0] for part in match["names"].split(",")}
        return names
    bound: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return bound


def fix_actions(analysis: DocumentAnalysis, problems: Sequence[Problem]) -> list[types.CodeAction]:
    """ "Fix the code from its spec" for each implemented function that the given problems say fails its spec,
    with their diagnostics attached. It runs `lift.fix`, which offers an edit only when a candidate passes."""
    by_site: dict[str, list[types.Diagnostic]] = {}
    for problem in problems:
        if problem.diagnostic.code not in FIXABLE_CODES:
            continue
        line = problem.diagnostic.range.start.line
        holding = [s for s in analysis.sites if s.span.start_line <= line <= s.span.end_line and not s.is_stub]
        if holding:
            by_site.setdefault(max(holding, key=lambda s: s.span.start_line).qualname, []).append(problem.shown)
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
    """The document with each type hole of `site` resolved by its preferred "Resolve hole" quick fix (with the
    imports it adds, e.g. `Any`'s), and the fixes' titles. A hole without such a fix stays: forward mode then refuses.
    For the command line and the benchmark: the user's edit, made without an editor."""
    edits: list[Edit] = []
    titles: list[str] = []
    request = ActionRequest(analysis, analysis.function_ir(site), types.Position, versioned_edits=False)
    for action in code_actions(request):
        if action.is_preferred and action.edit is not None and action.edit.changes:
            titles.append(action.title.removeprefix("Resolve hole: "))
            for e in action.edit.changes[analysis.uri]:
                start, end = e.range.start, e.range.end
                edits.append(Edit(start.line, start.character, end.line, end.character, e.new_text))
    return apply_edits(analysis.text, edits), titles


QUICK_FIXES: dict[str, list[QuickFixBuilder]] = {
    "LIFT001": [update_example],
    "LIFT007": [documented_param_absent],
    "LIFT008": [undocumented_param],
    "LIFT009": [documented_type],
    "LIFT012": [add_counterexample],
}
"""Quick-fix builders by diagnostic code (type holes, LIFT011, are resolved on their function: see
`_resolve_hole_actions`; "Fix the code from its spec" covers every code in FIXABLE_CODES: see `fix_actions`)."""
