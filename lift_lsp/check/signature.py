"""Static checks: a function's spec against its signature and code, with nothing run (documented parameters that
are not parameters or parameters not documented, contradicting types, raises the code can never raise, unresolved
holes)."""

from __future__ import annotations

import ast
import re
import textwrap

from lift_lsp import pyast
from lift_lsp.check.findings import Code, Finding, Severity
from lift_lsp.spec.reverse import FunctionIR, placeholder_lines
from lift_lsp.spec.sites import SpecSite


def signature_findings(file: str, fir: FunctionIR) -> list[Finding]:
    site, doc, ir = fir.site, fir.doc, fir.ir
    out: list[Finding] = []

    def add(
        code: str, severity: Severity, message: str, line: int | None = None, data: dict[str, object] | None = None
    ) -> None:
        out.append(Finding(file, site.qualname, line or site.def_line + 1, code, severity, message, data))

    params = {p.name: p for p in site.params}
    for documented in doc.params:
        name = documented.name.lstrip("*")
        if name not in params:
            add(
                Code.PARAM_DOCUMENTED_ABSENT,
                "warning",
                f"`{name}` is documented but is not a parameter of `{site.name}`",
                data={"name": name},
            )
        else:
            annotation = params[name].annotation
            if documented.annotation and annotation and contradicts(documented.annotation, annotation):
                add(
                    Code.TYPE_CONTRADICTION,
                    "warning",
                    f"`{name}` is documented as `{documented.type}` but annotated `{annotation}`",
                    data={"name": name, "documented": documented.type, "annotation": annotation},
                )
    if doc.params:
        documented_names = {p.name.lstrip("*") for p in doc.params}
        for param in ir.signature.parameters:
            if param.name not in documented_names:
                add(
                    Code.PARAM_UNDOCUMENTED,
                    "warning",
                    f"parameter `{param.name}` is not documented",
                    data={"name": param.name},
                )
    returns = doc.returns_annotation
    if returns and site.return_annotation and contradicts(returns, site.return_annotation):
        add(
            Code.TYPE_CONTRADICTION,
            "warning",
            f"the return is documented as `{doc.returns_type}` but annotated `{site.return_annotation}`",
            data={"name": None, "documented": doc.returns_type, "annotation": site.return_annotation},
        )
    if not site.is_stub:
        for raised in doc.raises:
            if never_raises(site, raised.exception):
                add(
                    Code.RAISE_IMPOSSIBLE,
                    "warning",
                    f"documents `raises {raised.exception}`, but the code can never raise it",
                )
        for line in placeholder_lines(site):
            add(Code.HOLE_UNRESOLVED, "warning", "unresolved hole: `...` placeholder left in the code", line + 1)
    else:
        for hole in ir.holes:
            options = f" (options: {', '.join(hole.options)})" if hole.options else ""
            add(
                Code.HOLE_UNRESOLVED,
                "info",
                f"unresolved hole `{hole.id}`: {hole.description}{options}",
                data={"hole": hole.id},
            )
    return out


_NUMERIC = {"int", "float", "complex"}
_SIMPLE = {"int", "float", "complex", "str", "bool", "list", "dict", "tuple", "set", "frozenset", "bytes", "None"}


def _bases(type_text: str) -> set[str] | None:
    """The outer type names of an annotation (`list[int] | None` -> {list, None}); None when not simple."""
    text = re.sub(r"\b(List|Dict|Tuple|Set|FrozenSet)\b", lambda m: m.group(1).lower(), type_text.strip())
    optional = re.fullmatch(r"Optional\[(.*)\]", text)
    if optional:
        text = f"{optional.group(1)} | None"
    try:
        node = pyast.parse_expression(text)
    except SyntaxError:
        return None
    bases: set[str] = set()
    parts: list[ast.expr] = [node]
    while parts:
        part = parts.pop()
        if isinstance(part, ast.BinOp) and isinstance(part.op, ast.BitOr):
            parts += [part.left, part.right]
        elif isinstance(part, ast.Subscript) and isinstance(part.value, ast.Name):
            bases.add(part.value.id)
        elif isinstance(part, ast.Name):
            bases.add(part.id)
        elif isinstance(part, ast.Constant) and part.value is None:
            bases.add("None")
        else:
            return None
    return bases if bases <= _SIMPLE else None


def contradicts(documented: str, annotation: str) -> bool:
    """True only when both are simple builtin types that cannot agree (int and float agree: numeric tower)."""
    doc_bases, ann_bases = _bases(documented), _bases(annotation)
    if doc_bases is None or ann_bases is None:
        return False
    widen = {b: ("number" if b in _NUMERIC else b) for b in doc_bases | ann_bases}
    return not {widen[b] for b in doc_bases} & {widen[b] for b in ann_bases}


_SAFE_CALLS = {
    "len", "sorted", "sum", "abs", "range", "enumerate", "zip", "list", "set", "tuple", "str",
    "print", "isinstance", "any", "all", "map", "filter", "reversed", "round", "bool", "repr", "frozenset",
}  # fmt: skip
_OPERATOR_RAISES = {
    "ZeroDivisionError": (ast.Div, ast.FloorDiv, ast.Mod),
    "ArithmeticError": (ast.Div, ast.FloorDiv, ast.Mod),
}


def never_raises(site: SpecSite, exception: str) -> bool:
    """True when the function certainly cannot raise `exception`: no `raise` of it (or a bare re-raise), and it
    calls nothing but a few builtins, and no operator or subscript in it can produce that exception."""
    try:
        tree = pyast.parse(textwrap.dedent(site.text))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    name = exception.split(".")[-1]
    if name in ("Exception", "BaseException", "TypeError", "MemoryError", "RecursionError", "KeyboardInterrupt"):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise):
            if node.exc is None or name in ast.unparse(node.exc):
                return False
        elif isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in _SAFE_CALLS):
                return False
        elif (
            (isinstance(node, ast.Subscript) and name in ("IndexError", "KeyError", "LookupError"))
            or (isinstance(node, ast.Attribute) and name == "AttributeError")
            or (isinstance(node, ast.BinOp) and isinstance(node.op, _OPERATOR_RAISES.get(name, ())))
            or (isinstance(node, ast.Assert) and name == "AssertionError")
        ):
            return False
    return True
