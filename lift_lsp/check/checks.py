"""On-save diagnostics: where a function's code disagrees with its own spec.

Examples and contracts run in the sandbox (never in this process), in the project's Python, with the module
imported under its own dotted name: doctests as doctest sessions (`doctests.py`), prose examples (`f(x) ➞ y`) by
value, postconditions by the contract engines (`contracts/`; z3 proves what it can without running anything).
Results are cached by the text of the function (and of the module functions it uses) and of the module around the
functions, so a re-save runs only what changed.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import re
import textwrap
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cachetools import TTLCache

from lift_lsp.check.contracts.runner import ConditionStatus, Counterexample, FunctionContracts, check_contracts
from lift_lsp.check.doctests import run_findings
from lift_lsp.check.findings import Code, ExampleStatus, Finding, Severity, moved
from lift_lsp.check.isolation import sandbox_problem
from lift_lsp.check.project import DoctestConfig, Interpreter, doctest_config, find_interpreter, module_target
from lift_lsp.check.sandbox import (
    BY_VALUE,
    UNAVAILABLE,
    Call,
    CallOutcome,
    SandboxLimits,
    check_source_compiles,
    run_calls,
)
from lift_lsp.options import ContractOptions, DiagnosticsOptions, SandboxOptions
from lift_lsp.spec import pyast
from lift_lsp.spec.docstrings import DocSpec
from lift_lsp.spec.examples import DocExample, example_at, read_examples, refusal
from lift_lsp.spec.ir import Example
from lift_lsp.spec.reverse import FunctionIR, function_ir, placeholder_lines, read_spec
from lift_lsp.spec.sites import SpecSite, find_sites, functions_used, module_functions, outside_functions

CHECK_CACHE_ENTRIES = 4096
CHECK_CACHE_AGE_S = 3600.0
"""Bounds of a `CheckCache`: the most recently stored functions' findings are kept, none longer than an hour."""


def _bounded_entries() -> TTLCache[str, Checked]:
    return TTLCache(maxsize=CHECK_CACHE_ENTRIES, ttl=CHECK_CACHE_AGE_S)


@dataclass
class FileCheck:
    """One document's findings, and per function (by qualified name; `<module>` and classes too) what happened to its
    examples and to its contracts."""

    findings: list[Finding]
    statuses: dict[str, ExampleStatus] = field(default_factory=dict)
    contracts: dict[str, FunctionContracts] = field(default_factory=dict)
    interpreter: Interpreter | None = None

    def status_line(self, function: str) -> str | None:
        """The function's check status in one line (its examples, its postconditions); None when nothing of it was
        checked."""
        parts = [self.statuses[function].summary()] if function in self.statuses else []
        parts += [self.contracts[function].summary()] if function in self.contracts else []
        return " · ".join(parts) or None


@dataclass(frozen=True)
class Checked:
    """What one check of a function (or of the module's other docstrings) found, as the cache keeps it."""

    findings: list[Finding]
    statuses: dict[str, ExampleStatus]
    contracts: FunctionContracts | None = None


@dataclass
class CheckCache:
    """Findings by function key; shared across saves (and files) in one server or CLI run; bounded by size and age."""

    entries: TTLCache[str, Checked] = field(default_factory=_bounded_entries)
    lock: threading.Lock = field(default_factory=threading.Lock)
    runs: int = 0
    """How many functions were actually run in the sandbox (for tests and benchmarks)."""


def check_text(
    text: str,
    file: str,
    diagnostics: DiagnosticsOptions | None = None,
    sandbox: SandboxOptions | None = None,
    cache: CheckCache | None = None,
    interpreter: Interpreter | None = None,
    contracts: ContractOptions | None = None,
) -> list[Finding]:
    """Every finding for one document, in line order."""
    return check_document(text, file, diagnostics, sandbox, cache, interpreter, contracts).findings


def check_document(
    text: str,
    file: str,
    diagnostics: DiagnosticsOptions | None = None,
    sandbox: SandboxOptions | None = None,
    cache: CheckCache | None = None,
    interpreter: Interpreter | None = None,
    contracts: ContractOptions | None = None,
) -> FileCheck:
    """Every finding for one document (`text`, the editor's copy of `file`), in line order, and what happened to
    each function's examples and contracts. They run in `interpreter` (default: the project's, found from `file`)."""
    diagnostics = diagnostics or DiagnosticsOptions()
    sandbox = sandbox or SandboxOptions()
    unavailable = sandbox_problem(sandbox.mode) if diagnostics.examples else None
    if unavailable is not None:  # no example runs; the first function that has some says why, once
        diagnostics = diagnostics.model_copy(update={"examples": False})
    sites = find_sites(text)
    by_name = module_functions(sites)
    contracts = contracts or ContractOptions()
    report = FileCheck([])
    dynamic = diagnostics.examples or contracts.enabled
    if diagnostics.examples:  # only where examples run: finding the project's Python runs it (in the sandbox)
        report.interpreter = interpreter or find_interpreter(file, mode=sandbox.mode)
    outside = outside_functions(text, sites)
    context = _module_context(outside, file, report.interpreter) if dynamic else ""
    to_run: list[tuple[str, SpecSite, DocSpec]] = []
    for site in sites:
        doc = read_spec(site)
        report.findings += static_findings(file, function_ir(site, None, doc))
        if unavailable is not None and not site.is_stub and (has_doctest(site) or calls_for(site, doc)):
            report.findings.append(_not_sandboxed(file, site, f"cannot sandbox: {unavailable}"))
            unavailable = None
        if site.is_stub or not dynamic:
            continue
        key = _function_key(site, by_name, diagnostics, sandbox, contracts, context)
        cached = _cached(cache, key)
        if cached is not None:
            report.findings += [_relocate(f, file, site) for f in cached.findings]
            report.statuses.update(cached.statuses)
            if cached.contracts is not None:
                report.contracts[site.qualname] = cached.contracts
        else:
            to_run.append((key, site, doc))
    rest_key = hashlib.sha256(f"{context}\x00{text}".encode("utf-8", "surrogatepass")).hexdigest()
    rest = diagnostics.examples and ">>>" in outside
    cached_rest = _cached(cache, rest_key) if rest else None
    if cached_rest is not None:
        report.findings += cached_rest.findings
        report.statuses.update(cached_rest.statuses)
    if to_run or (rest and cached_rest is None):
        claimed = sorted({site.qualname for site in sites if has_doctest(site)})
        run_rest = rest and cached_rest is None
        work = _Work(to_run, claimed, run_rest)
        ran = _dynamic_findings(text, file, sites, work, diagnostics, sandbox, contracts, report)
        for key, site, _ in to_run:
            found, status = ran.functions.pop(site.qualname, ([], None))
            report.findings += found
            statuses = {site.qualname: status} if status is not None else {}
            report.statuses.update(statuses)
            checked = ran.contracts.get(site.qualname)
            if checked is not None:
                report.contracts[site.qualname] = checked
            stored = [_to_relative(f, site) for f in found]
            _store(cache if ran.loaded else None, key, stored, statuses, checked)
        others = ran.functions  # the module's docstring, the classes', ...: cached with the whole text
        for function, (found, status) in others.items():
            report.findings += found
            if status is not None:
                report.statuses[function] = status
        if run_rest:
            statuses = {name: status for name, (_, status) in others.items() if status is not None}
            found = [f for fs, _ in others.values() for f in fs]
            _store(cache if ran.loaded else None, rest_key, found, statuses)
    report.findings.sort(key=lambda f: (f.line, f.code))
    return report


def _store(
    cache: CheckCache | None,
    key: str,
    findings: list[Finding],
    statuses: dict[str, ExampleStatus],
    contracts: FunctionContracts | None = None,
) -> None:
    if cache is not None:
        with cache.lock:
            cache.entries[key] = Checked(findings, statuses, contracts)
            cache.runs += 1


def _cached(cache: CheckCache | None, key: str) -> Checked | None:
    if cache is None:
        return None
    with cache.lock:
        return cache.entries.get(key)


def _module_context(outside: str, file: str, interpreter: Interpreter | None) -> str:
    """What every function's examples depend on besides the functions: the module around them (`outside`, as
    `outside_functions` gives it), its name and package, the interpreter, the doctest flags."""
    target = module_target(file)
    flags = doctest_config(str(Path(file).absolute().parent)) if target.root else None
    python = interpreter.python.path if interpreter else ""
    return "\x00".join([outside, repr(target), python, repr(flags)])


_NOT_SANDBOXED: dict[str, object] = {"sandbox": "unavailable"}


def _not_sandboxed(file: str, site: SpecSite, why: str) -> Finding:
    """The one finding of a file whose examples did not run because no sandbox could be made (never cached)."""
    message = f"the examples did not run: {why}"
    return Finding(file, site.qualname, site.def_line + 1, Code.MODULE_FAILED, "warning", message, _NOT_SANDBOXED)


def _function_key(
    site: SpecSite,
    by_name: dict[str, SpecSite],
    diagnostics: DiagnosticsOptions,
    sandbox: SandboxOptions,
    contracts: ContractOptions,
    context: str = "",
) -> str:
    """The function's text, plus the text of the module functions it uses (transitively): a change to a helper
    re-runs its callers' examples."""
    texts = [used.text for used in functions_used(site, by_name)]
    options = [diagnostics.model_dump_json(), sandbox.model_dump_json(), contracts.model_dump_json()]
    payload = "\x00".join([*sorted(texts), *options, context])
    return hashlib.sha256(payload.encode("utf-8", errors="surrogatepass")).hexdigest()


def _to_relative(finding: Finding, site: SpecSite) -> Finding:
    return moved(dataclasses.replace(finding, file=""), -site.def_line)


def _relocate(finding: Finding, file: str, site: SpecSite) -> Finding:
    return moved(dataclasses.replace(finding, file=file, function=site.qualname), site.def_line)


# ---------------------------------------------------------------- static checks: the spec against the signature


def static_findings(file: str, fir: FunctionIR) -> list[Finding]:
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


# ---------------------------------------------------------------- dynamic checks: examples and contracts


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
    """The calls that check the function's prose examples (`f(x) ➞ y`, ...) by value, and its contracts on the
    inputs of every example; its doctests themselves run as doctest sessions (`has_doctest`)."""
    pre = tuple(c.expr for c in doc.preconditions if c.expr)
    post = tuple(c.expr for c in doc.postconditions if c.expr)
    calls: list[tuple[Call, Example]] = []
    for index, example in enumerate(doc.examples):
        if not _runnable(site, example):
            continue
        direct = _is_direct_call(example, site.name) and "<locals>" not in site.qualname
        contracts = direct and bool(example.args)
        doctest = _from_doctest(site, example)
        if doctest and not (contracts and (pre or post)):
            continue
        call = Call(
            id=f"{site.qualname}#{index}",
            expr=example.call,
            args=dict(example.args) if direct else {},
            expected=None if doctest else example.result,
            expected_exception=None if doctest else example.raises,
            preconditions=pre if contracts else (),
            postconditions=post if contracts else (),
        )
        calls.append((call, example))
    return calls


@dataclass
class _Ran:
    functions: dict[str, tuple[list[Finding], ExampleStatus | None]]
    """By function (qualified name; `<module>`, classes and other docstrings doctest found too)."""
    loaded: bool = True
    """The module imported (when it did not, nothing is cached: the cause may lie outside the file)."""
    contracts: dict[str, FunctionContracts] = field(default_factory=dict)
    """Each function's postconditions and their status."""

    def add(self, function: str, findings: Sequence[Finding], status: ExampleStatus | None = None) -> None:
        found, current = self.functions.get(function, ([], None))
        if status is not None:
            if current is None:
                current = ExampleStatus(python=status.python)
            current.add(status)
        self.functions[function] = ([*found, *findings], current)


def has_doctest(site: SpecSite) -> bool:
    """The function's docstring has `>>>` examples that doctest can find (it does not look into functions), or ones
    its parser refuses (the session says why)."""
    if site.docstring is None or "<locals>" in site.qualname:
        return False
    return bool(read_examples(site.docstring)) or refusal(site.docstring) is not None


def unreadable_doctest(site: SpecSite) -> str | None:
    """Why doctest's parser refuses the function's docstring (as the sandbox worker words it), or None. Parsing only:
    no code runs."""
    if not has_doctest(site):
        return None
    try:
        node = pyast.parse(textwrap.dedent(site.text)).body[0]
    except (SyntaxError, ValueError, RecursionError, MemoryError, IndexError):
        return None
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    docstring = ast.get_docstring(node, clean=False)
    if docstring is None:
        return None
    why = refusal(docstring, site.qualname)
    return None if why is None else f"doctest cannot read the docstring: {why}"


def _from_doctest(site: SpecSite, example: Example) -> bool:
    """The example is a `>>>` example of the docstring (run by doctest, not by value)."""
    return example.line is not None and _doctest_at(site, example.line - 1) is not None


def _doctest_at(site: SpecSite, row: int) -> DocExample | None:
    """The docstring's `>>>` example at the 0-based file line `row`, as the reader reads it."""
    if site.docstring is None or site.docstring_line is None:
        return None
    return example_at(read_examples(site.docstring), row - site.docstring_line)


@dataclass(frozen=True)
class _Work:
    functions: Sequence[tuple[str, SpecSite, DocSpec]]
    """(cache key, site, spec) of each function to run."""
    claimed: Sequence[str]
    """The functions whose docstrings have their own doctest calls."""
    rest: bool
    """Also run every other doctest of the module (its docstring's, its classes')."""


def _dynamic_findings(
    text: str,
    file: str,
    sites: Sequence[SpecSite],
    work: _Work,
    diagnostics: DiagnosticsOptions,
    sandbox: SandboxOptions,
    contracts: ContractOptions,
    report: FileCheck,
) -> _Ran:
    """Run the examples of the functions in `work` (doctest sessions and prose examples), and with `work.rest` every
    other doctest of the module except those of `work.claimed`; then their contracts."""
    ran = _Ran({site.qualname: ([], None) for _, site, _ in work.functions})
    planned = _plan([(site, doc) for _, site, doc in work.functions]) if diagnostics.examples else []
    if work.rest and diagnostics.examples:
        planned.append((None, Call(id="#rest", doctest_except=tuple(work.claimed)), None))
    interpreter = report.interpreter
    compiles = check_source_compiles(text, file) is None
    if diagnostics.examples and compiles:
        interpreter = interpreter or find_interpreter(file, mode=sandbox.mode)
        if planned:
            _run_examples(text, file, sites, planned, diagnostics, sandbox, interpreter, ran)
    if contracts.enabled and compiles:
        functions = [(site, doc) for _, site, doc in work.functions]
        checked = _contract_statuses(text, file, functions, sandbox, contracts, interpreter)
        for site, _ in functions:
            if site.qualname in checked:
                ran.contracts[site.qualname] = checked[site.qualname]
                ran.add(site.qualname, contract_findings(file, site, checked[site.qualname]))
    return ran


def _contract_statuses(
    text: str,
    file: str,
    functions: Sequence[tuple[SpecSite, DocSpec]],
    sandbox: SandboxOptions,
    contracts: ContractOptions,
    interpreter: Interpreter | None,
) -> dict[str, FunctionContracts]:
    """The contracts of `functions`, checked with the module imported as its examples are (no interpreter: no code
    runs, z3 alone)."""
    target = module_target(file)
    return check_contracts(
        text,
        file,
        functions,
        contracts,
        sandbox,
        runs_code=interpreter is not None,
        sys_path=[target.root] if target.root else [],
        module_name=target.name,
        is_package=target.is_package,
        python=interpreter.python if interpreter is not None else None,
    )


def _plan(functions: Sequence[tuple[SpecSite, DocSpec]]) -> list[tuple[SpecSite | None, Call, Example | None]]:
    """One doctest session per docstring with `>>>` examples, and one call per prose example."""
    planned: list[tuple[SpecSite | None, Call, Example | None]] = []
    for site, doc in functions:
        if has_doctest(site) and not any(call.doctest == site.qualname for _, call, _ in planned):
            planned.append((site, Call(id=f"{site.qualname}#doctest", doctest=site.qualname), None))
        planned += [(site, call, example) for call, example in calls_for(site, doc)]
    return planned


def function_example_findings(
    text: str, file: str, site: SpecSite, doc: DocSpec, sandbox: SandboxOptions, interpreter: Interpreter | None = None
) -> list[Finding]:
    """The findings of one function's examples (its doctest session and its prose examples), run in the sandbox on
    the document `text`: what forward mode validates a candidate with. A doctest's output is also compared by value
    (`BY_VALUE`): a docstring states values, and a right answer must not be lost to `"21"` written for `'21'`; where
    doctest cannot read the docstring (`"a\nb"` in a docstring that is not raw), each example runs alone, by value."""
    ran = _Ran({})
    if unreadable_doctest(site) is not None:  # its examples one by one, by value, as lift-lsp reads them
        site = dataclasses.replace(site, docstring=None)
    planned = _plan([(site, doc)])
    if planned and check_source_compiles(text, file) is None:
        diagnostics = DiagnosticsOptions(time_budget_s=sandbox.file_timeout_s)
        python = interpreter or find_interpreter(file, mode=sandbox.mode)
        _run_examples(text, file, [site], planned, diagnostics, sandbox, python, ran, extra_flags=(BY_VALUE,))
    return [f for found, _ in ran.functions.values() for f in found]


def _run_examples(
    text: str,
    file: str,
    sites: Sequence[SpecSite],
    planned: Sequence[tuple[SpecSite | None, Call, Example | None]],
    diagnostics: DiagnosticsOptions,
    sandbox: SandboxOptions,
    interpreter: Interpreter,
    ran: _Ran,
    extra_flags: Sequence[str] = (),
) -> None:
    """Run the planned calls in the sandbox, the module imported as what it is (doctests with the project's option
    flags and `extra_flags`); their findings and counts into `ran`."""
    python = interpreter.python.path + ("" if interpreter.is_project else f" (not the project's: {interpreter.note})")
    suffix = "" if interpreter.is_project else f" [run by {interpreter.python.path}, not the project's Python]"
    target = module_target(file)
    config = doctest_config(str(Path(file).absolute().parent)) if target.root else DoctestConfig()
    ignored = [f"ran without pytest's own doctest flags {', '.join(config.ignored)}"] if config.ignored else []
    limits = dataclasses.replace(
        SandboxLimits.from_options(sandbox), total_timeout_s=min(sandbox.file_timeout_s, diagnostics.time_budget_s)
    )
    outcomes = run_calls(
        text,
        [call for _, call, _ in planned],
        limits,
        filename=file,
        sys_path=[target.root] if target.root else [],
        module_name=target.name,
        is_package=target.is_package,
        python=interpreter.python,
        doctest_flags=[*config.flags, *extra_flags],
    )
    failure = next((o for o in outcomes if not o.loaded), None)
    if failure is not None:
        ran.loaded = False
        why = f"{failure.message} (Python: {python})"
        first = next((site for site, _, _ in planned if site is not None), None)
        if failure.exception == UNAVAILABLE and first is not None:  # as when it was known before: said once
            ran.add(first.qualname, [_not_sandboxed(file, first, failure.message)])
        else:
            message = f"the examples could not run: {why}"
            ran.add("<module>", [Finding(file, "<module>", failure.line or 1, Code.MODULE_FAILED, "warning", message)])
        for site, _, _ in planned:
            ran.add(site.qualname if site else "<module>", [], ExampleStatus(reasons=[why], python=python))
        return
    lines = text.split("\n")
    by_qualname = {site.qualname: site for site in sites}
    for (site, call, example), outcome in zip(planned, outcomes, strict=True):
        if example is not None and site is not None:
            counted = not _from_doctest(site, example)
            found = [
                dataclasses.replace(f, message=f.message + suffix)
                for f in example_findings(file, site, call, example, outcome, lines)
            ]
            ran.add(site.qualname, found, _prose_status(call, outcome, found, python) if counted else None)
            continue
        if outcome.status != "ok" and not outcome.doctests:
            ran.add(site.qualname if site else "<module>", [], ExampleStatus(reasons=[outcome.message], python=python))
        for run in outcome.doctests:
            function = site.qualname if site else (run.name or "<module>")
            found, status = run_findings(file, lines, run, function, site or by_qualname.get(run.name), suffix)
            status.python = python
            status.reasons += ignored
            ran.add(function, found, status)


def _prose_status(call: Call, outcome: CallOutcome, found: Sequence[Finding], python: str) -> ExampleStatus:
    """The counts of one prose example (checked by value)."""
    name = _undefined_name(call, outcome)
    if name is not None:
        reason = f"`{_call_text(call)}` uses `{name}`, which the example does not define"
        return ExampleStatus(not_run=1, reasons=[reason], python=python)
    if outcome.status == "error":
        return ExampleStatus(not_run=1, reasons=[outcome.message], python=python)
    failed = any(f.severity == "error" for f in found)
    return ExampleStatus(ran=1, passed=int(not failed), failed=int(failed), python=python)


def _call_text(call: Call) -> str:
    return call.expr if len(call.expr) <= 120 else call.expr[:117] + "..."


def example_findings(
    file: str,
    site: SpecSite,
    call: Call,
    example: Example,
    outcome: CallOutcome,
    lines: Sequence[str] = (),
) -> list[Finding]:
    """The findings of one example's outcome; with the document's `lines`, a wrong result carries the range of the
    expected text and the actual one (the data of "Update the example to the actual result")."""
    line = example.line or site.def_line + 1
    out: list[Finding] = []

    def add(code: str, message: str, severity: Severity = "error", data: dict[str, object] | None = None) -> None:
        out.append(Finding(file, site.qualname, line, code, severity, message, data))

    shown = _call_text(call)
    status = outcome.status
    if _from_doctest(site, example):  # the doctest session checks the example itself: here only its contracts
        return _contract_findings(file, site, call, outcome, line)
    if status in ("timeout", "memory", "crashed"):
        add(Code.EXAMPLE_LIMIT, f"`{shown}` {outcome.message or status}")
        return out
    if status == "error":
        if _undefined_name(call, outcome) is None:
            add(Code.MODULE_FAILED, f"`{shown}` could not run: {outcome.message}", "warning")
        return out
    out += _contract_findings(file, site, call, outcome, line, post=False)
    if status == "raised":
        if _undefined_name(call, outcome) is not None:
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
        add(
            Code.EXAMPLE_WRONG_RESULT,
            f"`{shown}` returned {outcome.value_repr}, expected {example.result}",
            data=wrong_result_data(lines, site, example, outcome.value_repr),
        )
    return out + _contract_findings(file, site, call, outcome, line, pre=False)


def _contract_findings(
    file: str, site: SpecSite, call: Call, outcome: CallOutcome, line: int, pre: bool = True, post: bool = True
) -> list[Finding]:
    shown = _call_text(call)
    out: list[Finding] = []
    for expr, ok in zip(call.preconditions, outcome.pre_results, strict=False):
        if pre and ok is False:
            message = f"precondition `{expr}` is false for the example `{shown}`"
            out.append(Finding(file, site.qualname, line, Code.PRECONDITION_FALSE, "error", message))
    for expr, ok in zip(call.postconditions, outcome.post_results, strict=False):
        if post and ok is False and outcome.status == "ok":
            message = f"postcondition `{expr}` is false for `{shown}` (result {outcome.value_repr})"
            out.append(Finding(file, site.qualname, line, Code.POSTCONDITION_FALSE, "error", message))
    return out


def _undefined_name(call: Call, outcome: CallOutcome) -> str | None:
    """The name an example uses without defining it (`f(lst) => 3`): a NameError raised in the example's own
    expression, for a name that expression uses. A NameError inside the function's code is a failure instead."""
    found = re.search(r"name '(\w+)' is not defined", outcome.message)
    if outcome.status not in ("raised", "error") or outcome.exception != "NameError" or found is None:
        return None
    if outcome.line is not None:  # raised in the module's code
        return None
    frames = re.findall(r'^  File "(.*?)", line', outcome.traceback, re.MULTILINE)
    if not frames or not frames[-1].startswith(("<call ", "<arg ")):
        return None
    name = found.group(1)
    sources = [call.expr, *call.args.values()]
    return name if any(re.search(rf"(?<![\w.]){name}\b", source) for source in sources) else None


def _is_subclass_name(raised: str | None, documented: str) -> bool:
    import builtins

    raised_type = getattr(builtins, raised or "", None)
    documented_type = getattr(builtins, documented.split(".")[-1], None)
    return (
        isinstance(raised_type, type) and isinstance(documented_type, type) and issubclass(raised_type, documented_type)
    )


_TRUNCATED = re.compile(r"\.\.\. \[\d+ more characters\]$")


def wrong_result_data(
    lines: Sequence[str], site: SpecSite, example: Example, actual_repr: str | None
) -> dict[str, object] | None:
    """Where the example's expected result is written (0-based lines, code-point columns, exactly the expected
    text) and the text to write there instead; None when that cannot be said for sure."""
    if not lines or example.line is None or example.result is None or actual_repr is None:
        return None
    if _TRUNCATED.search(actual_repr) or actual_repr.startswith("<repr() "):
        return None
    row = example.line - 1
    if not 0 <= row < len(lines) or row == site.docstring_line:
        return None
    want = _want_range(lines, site, row, example.result)
    if want is None:
        span = _inline_range(lines[row], row, example)
        return None if span is None else {"expected_range": span, "actual": actual_repr}
    span, printed = want
    actual = actual_repr
    if printed:  # `print(x)`: the example compares `str(x)`, and the doctest shows the text itself
        try:
            actual = pyast.literal_eval(actual_repr)
        except (ValueError, SyntaxError):
            return None
    lines_out = [line.rstrip() or "<BLANKLINE>" for line in actual.split("\n")]  # doctest's blank-line marker
    return {"expected_range": span, "actual": "\n".join(lines_out)}


def _want_range(lines: Sequence[str], site: SpecSite, row: int, expected: str) -> tuple[list[int], bool] | None:
    """The range of a doctest's want lines when they hold `expected`, and whether they are printed text."""
    example = _doctest_at(site, row)
    if example is None or not example.want or site.docstring_span is None:
        return None
    first = row + example.source.count("\n")
    rows = range(first, first + example.want.count("\n"))
    if rows.stop - 1 > site.docstring_span.end_line or rows.stop > len(lines):
        return None
    bodies = [_docstring_line(lines, site, r) for r in rows]
    span = [rows.start, _indent_of(bodies[0]), rows.stop - 1, len(bodies[-1].rstrip())]
    written = example.expected.removesuffix("\n")
    if written.strip() == expected:
        return span, False
    if expected == repr(written):
        return span, True
    return None


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip())


def _docstring_line(lines: Sequence[str], site: SpecSite, row: int) -> str:
    """A document line inside the docstring, without its closing quotes."""
    text = lines[row].rstrip("\r")
    span = site.docstring_span
    if span is not None and row == span.end_line:
        text = text[: span.end_col]
        for quote in ('"""', "'''", '"', "'"):
            if text.endswith(quote):
                return text[: -len(quote)]
    return text


def _inline_range(line: str, row: int, example: Example) -> list[int] | None:
    """The expected text on the example's own line (`f(x) == y`, `f(x) => y`), away from the call."""
    assert example.result is not None
    call_at = line.find(example.call)
    if call_at < 0:
        return None
    starts = [k for k in range(len(line)) if line.startswith(example.result, k)]
    outside = [k for k in starts if k >= call_at + len(example.call) or k + len(example.result) <= call_at]
    if len(outside) != 1:
        return None
    return [row, outside[0], row, outside[0] + len(example.result)]


def contract_findings(file: str, site: SpecSite, checked: FunctionContracts) -> list[Finding]:
    """A refuted postcondition is an error (with its replayed counterexample in `data`); a proof (z3) or CrossHair's
    confirmation is information; so is a condition that could not be checked, and why."""
    if checked.not_checked is not None:
        message = f"contracts not checked: {checked.not_checked}"
        return [Finding(file, site.qualname, site.def_line + 1, Code.CONTRACT_UNCHECKED, "info", message)]
    out: list[Finding] = []
    reported: set[tuple[str, str | None]] = set()
    for status in checked.conditions:
        found = status.counterexample
        if found is not None:
            if (found.call, found.raised) in reported:
                continue
            reported.add((found.call, found.raised))
            out.append(_refuted(file, site, status, found))
        elif status.status in ("proved", "confirmed", "unchecked"):
            code = {
                "proved": Code.CONTRACT_PROVED,
                "confirmed": Code.CONTRACT_CONFIRMED,
                "unchecked": Code.CONTRACT_UNCHECKED,
            }[status.status]
            message = f"postcondition `{status.written}`: {status.detail}"
            out.append(Finding(file, site.qualname, status.line, code, "info", message))
    return out


def _refuted(file: str, site: SpecSite, status: ConditionStatus, found: Counterexample) -> Finding:
    call, raised = found.call, found.raised
    if raised is not None:
        what = f"`{call}` {found.detail}, which the docstring does not declare (`raises:`)"
    elif found.detail.startswith("changed"):
        what = f"`{call}` {found.detail}"
    elif "raised" in found.detail:  # the postcondition itself raised
        what = f"`{call}` returns {found.result}, and {found.detail}"
    else:
        what = f"postcondition `{status.written}` is false for `{call}`, which returns {found.result}"
    data: dict[str, object] = {
        "inputs": dict(found.inputs),
        "call": call,
        "result": found.result,
        "raised": raised,
        "condition": status.written,
    }
    message = f"{what} (found by {found.engine}, replayed)"
    return Finding(file, site.qualname, status.line, Code.CONTRACT_REFUTED, "error", message, data)


def function_contract_findings(
    text: str,
    file: str,
    site: SpecSite,
    doc: DocSpec,
    sandbox: SandboxOptions,
    contracts: ContractOptions | None = None,
    interpreter: Interpreter | None = None,
) -> list[Finding]:
    """The findings of one function's postconditions in the document `text` (z3, then the engines in the sandbox;
    every counterexample replayed): what forward mode validates a candidate with, beside its examples."""
    options = contracts or ContractOptions()
    if not options.enabled or check_source_compiles(text, file) is not None:
        return []
    python = interpreter or find_interpreter(file, mode=sandbox.mode)
    checked = _contract_statuses(text, file, [(site, doc)], sandbox, options, python).get(site.qualname)
    return [] if checked is None else contract_findings(file, site, checked)
