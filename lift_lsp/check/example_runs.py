"""The examples' checks: a function's doctest sessions and prose examples (`f(x) ➞ y`, compared by value) planned,
run in the sandbox, and their outcomes as findings (a wrong result with the range of its expected text, for the quick
fix)."""

from __future__ import annotations

import ast
import dataclasses
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lift_lsp import pyast
from lift_lsp.check.doctests import doctest_session_findings
from lift_lsp.check.findings import Code, ExampleStatus, Finding, Severity
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
from lift_lsp.options import DiagnosticsOptions, SandboxOptions
from lift_lsp.spec.docstrings import DocSpec
from lift_lsp.spec.examples import DocExample, example_at, read_examples, refusal
from lift_lsp.spec.ir import Example
from lift_lsp.spec.sites import SpecSite

_NOT_SANDBOXED: dict[str, object] = {"sandbox": "unavailable"}


def not_sandboxed(file: str, site: SpecSite, why: str) -> Finding:
    """The one finding of a file whose examples did not run because no sandbox could be made (never cached)."""
    message = f"the examples did not run: {why}"
    return Finding(file, site.qualname, site.def_line + 1, Code.MODULE_FAILED, "warning", message, _NOT_SANDBOXED)


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
class ExampleRuns:
    """What the examples of some functions found, as they ran."""

    functions: dict[str, tuple[list[Finding], ExampleStatus | None]]
    """By function (qualified name; `<module>`, classes and other docstrings doctest found too)."""
    loaded: bool = True
    """The module imported (when it did not, nothing is cached: the cause may lie outside the file)."""
    limited: bool = False
    """Some example hit a time or memory limit or crashed its worker (the verdict may depend on the machine's load)."""

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


def plan_examples(functions: Sequence[tuple[SpecSite, DocSpec]]) -> list[tuple[SpecSite | None, Call, Example | None]]:
    """One doctest session per docstring with `>>>` examples, and one call per prose example."""
    planned: list[tuple[SpecSite | None, Call, Example | None]] = []
    for site, doc in functions:
        if has_doctest(site) and not any(call.doctest == site.qualname for _, call, _ in planned):
            planned.append((site, Call(id=f"{site.qualname}#doctest", doctest=site.qualname), None))
        planned += [(site, call, example) for call, example in calls_for(site, doc)]
    return planned


def check_function_examples(
    text: str, file: str, site: SpecSite, doc: DocSpec, sandbox: SandboxOptions, interpreter: Interpreter | None = None
) -> list[Finding]:
    """The findings of one function's examples (its doctest session and its prose examples), run in the sandbox on
    the document `text`: what forward mode validates a candidate with. A doctest's output is also compared by value
    (`BY_VALUE`): a docstring states values, and a right answer must not be lost to `"21"` written for `'21'`; where
    doctest cannot read the docstring (`"a\nb"` in a docstring that is not raw), each example runs alone, by value."""
    ran = ExampleRuns({})
    if unreadable_doctest(site) is not None:  # its examples one by one, by value, as lift-lsp reads them
        site = dataclasses.replace(site, docstring=None)
    planned = plan_examples([(site, doc)])
    if planned and check_source_compiles(text, file) is None:
        diagnostics = DiagnosticsOptions(time_budget_s=sandbox.file_timeout_s)
        python = interpreter or find_interpreter(file, mode=sandbox.mode)
        run_examples(text, file, [site], planned, diagnostics, sandbox, python, ran, extra_flags=(BY_VALUE,))
    return [f for found, _ in ran.functions.values() for f in found]


def run_examples(
    text: str,
    file: str,
    sites: Sequence[SpecSite],
    planned: Sequence[tuple[SpecSite | None, Call, Example | None]],
    diagnostics: DiagnosticsOptions,
    sandbox: SandboxOptions,
    interpreter: Interpreter,
    ran: ExampleRuns,
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
    ran.limited = ran.limited or any(_limited(outcome) for outcome in outcomes)
    failure = next((o for o in outcomes if not o.loaded), None)
    if failure is not None:
        ran.loaded = False
        ran.limited = ran.limited or failure.exception == UNAVAILABLE  # a sandbox that could not start: not kept
        why = f"{failure.message} (Python: {python})"
        first = next((site for site, _, _ in planned if site is not None), None)
        if failure.exception == UNAVAILABLE and first is not None:  # as when it was known before: said once
            ran.add(first.qualname, [not_sandboxed(file, first, failure.message)])
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
                for f in outcome_findings(file, site, call, example, outcome, lines)
            ]
            ran.add(site.qualname, found, _prose_status(call, outcome, found, python) if counted else None)
            continue
        if outcome.status != "ok" and not outcome.doctests:
            ran.add(site.qualname if site else "<module>", [], ExampleStatus(reasons=[outcome.message], python=python))
        for run in outcome.doctests:
            function = site.qualname if site else (run.name or "<module>")
            found, status = doctest_session_findings(
                file, lines, run, function, site or by_qualname.get(run.name), suffix
            )
            status.python = python
            status.reasons += ignored
            ran.add(function, found, status)


_LIMITS = ("timeout", "memory", "crashed")


def _limited(outcome: CallOutcome) -> bool:
    """The call, or an example of its doctest sessions, hit a time or memory limit or crashed its worker."""
    examples = (example for run in outcome.doctests for example in run.examples)
    return outcome.status in _LIMITS or any(example.status in _LIMITS for example in examples)


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


def outcome_findings(
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
        return _condition_failures(file, site, call, outcome, line)
    if status in ("timeout", "memory", "crashed"):
        add(Code.EXAMPLE_LIMIT, f"`{shown}` {outcome.message or status}")
        return out
    if status == "error":
        if _undefined_name(call, outcome) is None:
            add(Code.MODULE_FAILED, f"`{shown}` could not run: {outcome.message}", "warning")
        return out
    out += _condition_failures(file, site, call, outcome, line, post=False)
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
    return out + _condition_failures(file, site, call, outcome, line, pre=False)


def _condition_failures(
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
