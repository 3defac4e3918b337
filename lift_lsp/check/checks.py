"""On-save diagnostics of one document: where a function's code disagrees with its own spec (`check_document`).

The spec against the signature is checked without running anything (`signature.py`). Examples and contracts run in
the sandbox (never in this process), in the project's Python, with the module imported under its own dotted name:
doctests as doctest sessions and prose examples (`f(x) ➞ y`) by value (`example_runs.py`, `doctests.py`),
postconditions by the contract engines (`contracts/`, `contracts/report.py`; z3 proves what it can without running
anything).
Results are cached by the text of the function (and of the module functions it uses) and of the module around the
functions, so a re-save runs only what changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cachetools import TTLCache

from lift_lsp.check.contracts.report import contract_findings, contract_statuses
from lift_lsp.check.contracts.runner import FunctionContracts
from lift_lsp.check.example_runs import ExampleRuns, calls_for, has_doctest, not_sandboxed, plan_examples, run_examples
from lift_lsp.check.findings import ExampleStatus, Finding, moved
from lift_lsp.check.isolation import sandbox_problem
from lift_lsp.check.project import Interpreter, doctest_config, find_interpreter, module_target
from lift_lsp.check.sandbox import Call, check_source_compiles
from lift_lsp.check.signature import signature_findings
from lift_lsp.options import ContractOptions, DiagnosticsOptions, SandboxOptions
from lift_lsp.spec.docstrings import DocSpec
from lift_lsp.spec.reverse import function_ir, read_spec
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
    settled: bool = True
    """Nothing in it depends on more than its inputs: the sandbox was there, no example (nor the module's import)
    hit a time or memory limit or crashed its worker, every postcondition was judged (only such a report is kept on
    disk)."""

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
    settled: bool = True
    """As `FileCheck.settled`, for this function's check."""


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
        report.findings += signature_findings(file, function_ir(site, None, doc))
        if unavailable is not None and not site.is_stub and (has_doctest(site) or calls_for(site, doc)):
            report.findings.append(not_sandboxed(file, site, f"cannot sandbox: {unavailable}"))
            report.settled = False  # examples that did not run: never kept on disk
            unavailable = None
        if site.is_stub or not dynamic:
            continue
        key = _function_key(site, by_name, diagnostics, sandbox, contracts, context)
        cached = _cached(cache, key)
        if cached is not None:
            report.findings += [_relocate(f, file, site) for f in cached.findings]
            report.statuses.update(cached.statuses)
            report.settled = report.settled and cached.settled
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
        report.settled = report.settled and cached_rest.settled
    if to_run or (rest and cached_rest is None):
        claimed = sorted({site.qualname for site in sites if has_doctest(site)})
        run_rest = rest and cached_rest is None
        work = _Work(to_run, claimed, run_rest)
        ran = _run_functions(text, file, sites, work, diagnostics, sandbox, contracts, report)
        settled = not ran.limited and all(c.judged for c in ran.contracts.values())  # a failed import is kept:
        # its cause lies in the file, its project imports or the interpreter (all in the on-disk key), not in the run
        report.settled = report.settled and settled
        for key, site, _ in to_run:
            found, status = ran.functions.pop(site.qualname, ([], None))
            report.findings += found
            statuses = {site.qualname: status} if status is not None else {}
            report.statuses.update(statuses)
            checked = ran.contracts.get(site.qualname)
            if checked is not None:
                report.contracts[site.qualname] = checked
            stored = [_to_relative(f, site) for f in found]
            _store(cache if ran.loaded else None, key, Checked(stored, statuses, checked, settled))
        others = ran.functions  # the module's docstring, the classes', ...: cached with the whole text
        for function, (found, status) in others.items():
            report.findings += found
            if status is not None:
                report.statuses[function] = status
        if run_rest:
            statuses = {name: status for name, (_, status) in others.items() if status is not None}
            found = [f for fs, _ in others.values() for f in fs]
            _store(cache if ran.loaded else None, rest_key, Checked(found, statuses, settled=settled))
    report.findings.sort(key=lambda f: (f.line, f.code))
    return report


def _store(cache: CheckCache | None, key: str, checked: Checked) -> None:
    if cache is not None:
        with cache.lock:
            cache.entries[key] = checked
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


@dataclass
class _Ran(ExampleRuns):
    contracts: dict[str, FunctionContracts] = field(default_factory=dict)
    """Each function's postconditions and their status."""


@dataclass(frozen=True)
class _Work:
    functions: Sequence[tuple[str, SpecSite, DocSpec]]
    """(cache key, site, spec) of each function to run."""
    claimed: Sequence[str]
    """The functions whose docstrings have their own doctest calls."""
    rest: bool
    """Also run every other doctest of the module (its docstring's, its classes')."""


def _run_functions(
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
    planned = plan_examples([(site, doc) for _, site, doc in work.functions]) if diagnostics.examples else []
    if work.rest and diagnostics.examples:
        planned.append((None, Call(id="#rest", doctest_except=tuple(work.claimed)), None))
    interpreter = report.interpreter
    compiles = check_source_compiles(text, file) is None
    if diagnostics.examples and compiles:
        interpreter = interpreter or find_interpreter(file, mode=sandbox.mode)
        if planned:
            run_examples(text, file, sites, planned, diagnostics, sandbox, interpreter, ran)
    if contracts.enabled and compiles:
        functions = [(site, doc) for _, site, doc in work.functions]
        checked = contract_statuses(text, file, functions, sandbox, contracts, interpreter)
        for site, _ in functions:
            if site.qualname in checked:
                ran.contracts[site.qualname] = checked[site.qualname]
                ran.add(site.qualname, contract_findings(file, site, checked[site.qualname]))
    return ran
