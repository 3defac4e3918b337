"""On-save diagnostics: where a function's code disagrees with its own spec.

Examples and contracts run in the sandbox (never in this process); z3 decides what it can. Results are cached by
the text of the function (and of the module functions it uses), so a re-save runs only what changed.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import re
import textwrap
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cachetools import TTLCache

from lift_lsp.check.sandbox import Call, CallOutcome, SandboxLimits, run_calls
from lift_lsp.options import DiagnosticsOptions, SandboxOptions
from lift_lsp.spec import pyast
from lift_lsp.spec.docstrings import DocSpec
from lift_lsp.spec.ir import Example
from lift_lsp.spec.reverse import FunctionIR, function_ir, placeholder_lines, read_spec
from lift_lsp.spec.sites import SpecSite, find_sites

Severity = Literal["error", "warning", "info"]


class Code:
    """Stable diagnostic codes (source `lift`)."""

    EXAMPLE_WRONG_RESULT = "LIFT001"
    EXAMPLE_UNEXPECTED_RAISE = "LIFT002"
    EXAMPLE_MISSING_RAISE = "LIFT003"
    EXAMPLE_LIMIT = "LIFT004"
    PRECONDITION_FALSE = "LIFT005"
    POSTCONDITION_FALSE = "LIFT006"
    PARAM_DOCUMENTED_ABSENT = "LIFT007"
    PARAM_UNDOCUMENTED = "LIFT008"
    TYPE_CONTRADICTION = "LIFT009"
    RAISE_IMPOSSIBLE = "LIFT010"
    HOLE_UNRESOLVED = "LIFT011"
    SMT_COUNTEREXAMPLE = "LIFT012"
    SMT_PROVED = "LIFT013"
    MODULE_FAILED = "LIFT014"


@dataclass(frozen=True)
class Finding:
    file: str
    function: str
    line: int
    """1-based."""
    code: str
    severity: Severity
    message: str
    data: dict[str, object] | None = field(default=None, compare=False)
    """Machine-readable details for quick fixes (sent as the LSP diagnostic's `data`; JSON values only): e.g. an
    example's expected and actual text, a counterexample's inputs. Not part of the CLI's JSON contract."""

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "function": self.function,
            "line": self.line,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
        }


CHECK_CACHE_ENTRIES = 4096
CHECK_CACHE_AGE_S = 3600.0
"""Bounds of a `CheckCache`: the most recently stored functions' findings are kept, none longer than an hour."""


def _bounded_entries() -> TTLCache[str, list[Finding]]:
    return TTLCache(maxsize=CHECK_CACHE_ENTRIES, ttl=CHECK_CACHE_AGE_S)


@dataclass
class CheckCache:
    """Findings by function key; shared across saves (and files) in one server or CLI run; bounded by size and age."""

    entries: TTLCache[str, list[Finding]] = field(default_factory=_bounded_entries)
    lock: threading.Lock = field(default_factory=threading.Lock)
    runs: int = 0
    """How many functions were actually run in the sandbox (for tests and benchmarks)."""


def check_text(
    text: str,
    file: str,
    diagnostics: DiagnosticsOptions | None = None,
    sandbox: SandboxOptions | None = None,
    cache: CheckCache | None = None,
) -> list[Finding]:
    """Every finding for one document, in line order."""
    diagnostics = diagnostics or DiagnosticsOptions()
    sandbox = sandbox or SandboxOptions()
    sites = find_sites(text)
    by_name = {s.name: s for s in sites if s.class_name is None and "<locals>" not in s.qualname}
    findings: list[Finding] = []
    to_run: list[tuple[str, SpecSite, DocSpec]] = []
    for site in sites:
        doc = read_spec(site)
        findings += static_findings(file, function_ir(site, None, doc))
        if site.is_stub or not (diagnostics.examples or diagnostics.smt):
            continue
        key = _function_key(site, by_name, diagnostics, sandbox)
        cached = None
        if cache is not None:
            with cache.lock:
                cached = cache.entries.get(key)
        if cached is not None:
            findings += [_relocate(f, file, site) for f in cached]
        else:
            to_run.append((key, site, doc))
    if to_run:
        dynamic = _dynamic_findings(text, file, to_run, diagnostics, sandbox)
        for key, site, _ in to_run:
            found = dynamic.get(site.qualname, [])
            findings += found
            if cache is not None:
                with cache.lock:
                    cache.entries[key] = [_to_relative(f, site) for f in found]
                    cache.runs += 1
    return sorted(findings, key=lambda f: (f.line, f.code))


def _function_key(
    site: SpecSite, by_name: dict[str, SpecSite], diagnostics: DiagnosticsOptions, sandbox: SandboxOptions
) -> str:
    """The function's text, plus the text of the module functions it uses (transitively): a change to a helper
    re-runs its callers' examples."""
    texts: list[str] = []
    seen: set[str] = set()
    pending = [site]
    while pending:
        current = pending.pop()
        if current.qualname in seen:
            continue
        seen.add(current.qualname)
        texts.append(current.text)
        words = set(re.findall(r"[A-Za-z_]\w*", current.text))
        pending += [by_name[w] for w in words if w in by_name and by_name[w].qualname not in seen]
    payload = "\x00".join([*sorted(texts), diagnostics.model_dump_json(), sandbox.model_dump_json()])
    return hashlib.sha256(payload.encode("utf-8", errors="surrogatepass")).hexdigest()


def _to_relative(finding: Finding, site: SpecSite) -> Finding:
    return dataclasses.replace(finding, file="", line=finding.line - site.def_line)


def _relocate(finding: Finding, file: str, site: SpecSite) -> Finding:
    return dataclasses.replace(finding, file=file, function=site.qualname, line=finding.line + site.def_line)


# ---------------------------------------------------------------- static checks: the spec against the signature


def static_findings(file: str, fir: FunctionIR) -> list[Finding]:
    site, doc, ir = fir.site, fir.doc, fir.ir
    out: list[Finding] = []

    def add(code: str, severity: Severity, message: str, line: int | None = None) -> None:
        out.append(Finding(file, site.qualname, line or site.def_line + 1, code, severity, message))

    params = {p.name: p for p in site.params}
    for documented in doc.params:
        name = documented.name.lstrip("*")
        if name not in params:
            add(
                Code.PARAM_DOCUMENTED_ABSENT,
                "warning",
                f"`{name}` is documented but is not a parameter of `{site.name}`",
            )
        else:
            annotation = params[name].annotation
            if documented.type and annotation and contradicts(documented.type, annotation):
                add(
                    Code.TYPE_CONTRADICTION,
                    "warning",
                    f"`{name}` is documented as `{documented.type}` but annotated `{annotation}`",
                )
    if doc.params:
        documented_names = {p.name.lstrip("*") for p in doc.params}
        for param in ir.signature.parameters:
            if param.name not in documented_names:
                add(Code.PARAM_UNDOCUMENTED, "warning", f"parameter `{param.name}` is not documented")
    if doc.returns_type and site.return_annotation and contradicts(doc.returns_type, site.return_annotation):
        add(
            Code.TYPE_CONTRADICTION,
            "warning",
            f"the return is documented as `{doc.returns_type}` but annotated `{site.return_annotation}`",
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
            add(Code.HOLE_UNRESOLVED, "info", f"unresolved hole `{hole.id}`: {hole.description}{options}")
    return out


_TYPE_WORDS = {"integer": "int", "string": "str", "boolean": "bool", "dictionary": "dict", "none": "None"}
_NUMERIC = {"int", "float", "complex"}
_SIMPLE = {"int", "float", "complex", "str", "bool", "list", "dict", "tuple", "set", "frozenset", "bytes", "None"}


def _bases(type_text: str) -> set[str] | None:
    """The outer type names of an annotation (`list[int] | None` -> {list, None}); None when not simple."""
    text = type_text.strip().strip("`")
    text = _TYPE_WORDS.get(text.lower(), text)
    text = re.sub(r"\b(List|Dict|Tuple|Set|FrozenSet)\b", lambda m: m.group(1).lower(), text)
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


# ---------------------------------------------------------------- dynamic checks: examples, contracts, z3


def _is_direct_call(example: Example, name: str) -> bool:
    try:
        node = pyast.parse_expression(example.call)
    except SyntaxError:
        return False
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name


def _runnable(site: SpecSite, example: Example) -> bool:
    """Examples of methods need an object built in earlier doctest lines: only those naming the class run."""
    if not example.call:
        return False
    return site.class_name is None or example.call.startswith(f"{site.class_name}")


def calls_for(site: SpecSite, doc: DocSpec) -> list[tuple[Call, Example]]:
    pre = tuple(c.expr for c in doc.preconditions if c.expr)
    post = tuple(c.expr for c in doc.postconditions if c.expr)
    calls: list[tuple[Call, Example]] = []
    for index, example in enumerate(doc.examples):
        if not _runnable(site, example):
            continue
        direct = _is_direct_call(example, site.name) and "<locals>" not in site.qualname
        calls.append(
            (
                Call(
                    id=f"{site.qualname}#{index}",
                    expr=example.call,
                    args=dict(example.args) if direct else {},
                    expected=example.result,
                    expected_exception=example.raises,
                    preconditions=pre if direct and example.args else (),
                    postconditions=post if direct and example.args else (),
                ),
                example,
            )
        )
    return calls


def _dynamic_findings(
    text: str,
    file: str,
    work: Sequence[tuple[str, SpecSite, DocSpec]],
    diagnostics: DiagnosticsOptions,
    sandbox: SandboxOptions,
) -> dict[str, list[Finding]]:
    found: dict[str, list[Finding]] = {site.qualname: [] for _, site, _ in work}
    planned: list[tuple[SpecSite, Call, Example]] = []
    if diagnostics.examples:
        for _, site, doc in work:
            planned += [(site, call, example) for call, example in calls_for(site, doc)]
    if planned and _compiles(text):
        limits = dataclasses.replace(
            SandboxLimits.from_options(sandbox),
            total_timeout_s=min(sandbox.file_timeout_s, diagnostics.time_budget_s),
        )
        outcomes = run_calls(text, [call for _, call, _ in planned], limits, filename=file, sys_path=module_dirs(file))
        if outcomes and all(o.status == "error" for o in outcomes) and len({o.message for o in outcomes}) == 1:
            site = planned[0][0]
            message = f"the examples could not run: the module failed to load: {outcomes[0].message}"
            found[site.qualname].append(
                Finding(file, site.qualname, site.def_line + 1, Code.MODULE_FAILED, "warning", message)
            )
        else:
            for (site, call, example), outcome in zip(planned, outcomes, strict=True):
                found[site.qualname] += example_findings(file, site, call, example, outcome)
    if diagnostics.smt:
        for _, site, doc in work:
            found[site.qualname] += smt_findings(file, site, doc)
    return found


def module_dirs(file: str) -> tuple[str, ...]:
    """The folder of a file on disk, so that its examples can import the modules beside it."""
    folder = Path(file).resolve().parent if file and not file.startswith("<") else None
    return (str(folder),) if folder is not None and folder.is_dir() else ()


def _compiles(text: str) -> bool:
    try:
        compile(text, "<lift>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _call_text(call: Call) -> str:
    return call.expr if len(call.expr) <= 120 else call.expr[:117] + "..."


def example_findings(file: str, site: SpecSite, call: Call, example: Example, outcome: CallOutcome) -> list[Finding]:
    line = example.line or site.def_line + 1
    out: list[Finding] = []

    def add(code: str, message: str, severity: Severity = "error") -> None:
        out.append(Finding(file, site.qualname, line, code, severity, message))

    shown = _call_text(call)
    status = outcome.status
    if status in ("timeout", "memory", "crashed"):
        add(Code.EXAMPLE_LIMIT, f"`{shown}` {outcome.message or status}")
        return out
    if status == "error":
        add(Code.MODULE_FAILED, f"`{shown}` could not run: {outcome.message}", "warning")
        return out
    for expr, ok in zip(call.preconditions, outcome.pre_results, strict=False):
        if ok is False:
            add(Code.PRECONDITION_FALSE, f"precondition `{expr}` is false for the example `{shown}`")
    if status == "raised":
        if outcome.exception == "NameError" and _needs_setup(outcome.message, site):
            return out
        if example.raises:
            if outcome.exception != example.raises and not _is_subclass_name(outcome.exception, example.raises):
                add(
                    Code.EXAMPLE_MISSING_RAISE,
                    f"`{shown}` raised {outcome.exception}: {outcome.message}; documented: raises {example.raises}",
                )
        else:
            add(Code.EXAMPLE_UNEXPECTED_RAISE, f"`{shown}` raised {outcome.exception}: {outcome.message}")
        return out
    if example.raises:
        add(Code.EXAMPLE_MISSING_RAISE, f"`{shown}` returned {outcome.value_repr} but should raise {example.raises}")
        return out
    if example.result is not None and outcome.matches is False:
        add(Code.EXAMPLE_WRONG_RESULT, f"`{shown}` returned {outcome.value_repr}, expected {example.result}")
    for expr, ok in zip(call.postconditions, outcome.post_results, strict=False):
        if ok is False:
            add(
                Code.POSTCONDITION_FALSE, f"postcondition `{expr}` is false for `{shown}` (result {outcome.value_repr})"
            )
    return out


def _needs_setup(message: str, site: SpecSite) -> bool:
    """A doctest line that uses a name bound by an earlier doctest statement cannot run alone."""
    return site.name not in message


def _is_subclass_name(raised: str | None, documented: str) -> bool:
    import builtins

    raised_type = getattr(builtins, raised or "", None)
    documented_type = getattr(builtins, documented.split(".")[-1], None)
    return (
        isinstance(raised_type, type) and isinstance(documented_type, type) and issubclass(raised_type, documented_type)
    )


def smt_findings(file: str, site: SpecSite, doc: DocSpec) -> list[Finding]:
    post = [c.expr for c in doc.postconditions if c.expr]
    if not post:
        return []
    from lift_lsp.check.smt import check_postconditions

    pre = [c.expr for c in doc.preconditions if c.expr]
    out: list[Finding] = []
    for verdict in check_postconditions(site.text, pre, post):
        if verdict.status == "counterexample":
            inputs = ", ".join(f"{k}={v}" for k, v in verdict.counterexample.items())
            result = f" returns {verdict.result}" if verdict.result is not None else ""
            out.append(
                Finding(
                    file,
                    site.qualname,
                    site.def_line + 1,
                    Code.SMT_COUNTEREXAMPLE,
                    "error",
                    f"postcondition `{verdict.condition}` can fail: {site.name}({inputs}){result} (found by z3)",
                )
            )
        elif verdict.status == "proved":
            out.append(
                Finding(
                    file,
                    site.qualname,
                    site.def_line + 1,
                    Code.SMT_PROVED,
                    "info",
                    f"postcondition `{verdict.condition}` holds for all inputs (proved by z3)",
                )
            )
    return out


def check_files(paths: Iterable[str], cache: CheckCache | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for path in paths:
        text = Path(path).read_bytes().decode("utf-8", errors="replace")
        findings += check_text(text, path, cache=cache)
    return findings
