"""Doctest sessions' results as findings: each failing example at its own line, with what doctest expected and got.

The sessions themselves run in the sandbox worker, with the standard library's doctest (finder, parser, runner,
output checker, option flags and directives), in the module's globals, as `python -m doctest` runs them.
"""

from __future__ import annotations

from collections.abc import Sequence

from lift_lsp.check.findings import Code, ExampleStatus, Finding, Severity
from lift_lsp.check.sandbox import DoctestExample, DoctestRun
from lift_lsp.spec.sites import SpecSite

_TRACEBACK = ("Traceback (most recent call last):", "Traceback (innermost last):")


def example_line(lines: Sequence[str], bases: Sequence[int | None], example: DoctestExample) -> int:
    """The 0-based file line of the example's `>>>`: the docstring's first line (as the site or doctest found it)
    plus the example's line in it, the first base at which the file shows that example."""
    first = example.source.split("\n", 1)[0].strip()
    found = [b + example.line for b in bases if b is not None]
    for candidate in found:
        if 0 <= candidate < len(lines) and lines[candidate].strip().removeprefix(">>>").strip() == first:
            return candidate
    return found[0] if found else 0


def _shown(source: str) -> str:
    first = source.strip().split("\n", 1)[0]
    if len(first) > 120:
        return first[:117] + "..."
    return first + (" ..." if "\n" in source.strip() else "")


def _text(block: str) -> str:
    """Output as the message shows it: one line inline, several lines on lines of their own."""
    block = block.rstrip("\n")
    if "\n" not in block:
        return block or "nothing"
    return "\n" + "\n".join(f"    {line}" for line in block.split("\n"))


def _last_line(block: str) -> str:
    lines = [line for line in block.rstrip("\n").split("\n") if line.strip()]
    return lines[-1].strip() if lines else ""


def _actual(got: str) -> str:
    """The output as it would be written in the docstring (blank lines as `<BLANKLINE>`)."""
    return "\n".join(line if line.strip() else "<BLANKLINE>" for line in got.rstrip("\n").split("\n"))


def _want_range(lines: Sequence[str], line: int, example: DoctestExample) -> list[int] | None:
    """[start_line, start_col, end_line, end_col] of the expected output as written (0-based, code points)."""
    count = example.want.rstrip("\n").count("\n") + 1
    first = line + example.source.rstrip("\n").count("\n") + 1
    last = first + count - 1
    if not example.want or last >= len(lines):
        return None
    start_text, end_text = lines[first].rstrip("\r\n"), lines[last].rstrip("\r\n")
    return [first, len(start_text) - len(start_text.lstrip()), last, len(end_text)]


def failed_example_finding(
    file: str, function: str, lines: Sequence[str], line: int, example: DoctestExample, suffix: str = ""
) -> Finding | None:
    """The finding for one example that ran and did not pass (None when it passed or did not run)."""
    shown = f"`{_shown(example.source)}`"
    expects_raise = example.want.lstrip().startswith(_TRACEBACK)
    data: dict[str, object] | None = None
    severity: Severity = "error"
    if example.status in ("passed", "not run"):
        return None
    if example.status in ("timeout", "memory", "crashed"):
        code, message = Code.EXAMPLE_LIMIT, f"{shown} {example.message or example.status}"
    elif example.status == "raised":
        where = f" (line {example.error_line})" if example.error_line else ""
        code = Code.EXAMPLE_UNEXPECTED_RAISE
        message = f"{shown} raised {example.exception}: {example.message}{where}"
    elif expects_raise:
        code = Code.EXAMPLE_MISSING_RAISE
        expected = _last_line(example.want)
        if example.got.lstrip().startswith(_TRACEBACK) or _TRACEBACK[0] in example.got:
            message = f"{shown} raised {_last_line(example.got)}, expected {expected}"
        else:
            message = f"{shown} did not raise: expected {expected}, got {_text(example.got)}"
    else:
        code = Code.EXAMPLE_WRONG_RESULT
        message = f"{shown}: expected {_text(example.want)}, got {_text(example.got)}"
        expected_range = _want_range(lines, line, example)
        if expected_range is not None:
            data = {"expected_range": expected_range, "actual": _actual(example.got)}
    return Finding(file, function, line + 1, code, severity, message + suffix, data)


def doctest_session_findings(
    file: str, lines: Sequence[str], run: DoctestRun, function: str, site: SpecSite | None, suffix: str = ""
) -> tuple[list[Finding], ExampleStatus]:
    """Findings and counts of one docstring's doctest session."""
    bases = [site.docstring_line if site is not None else None, run.line]
    if run.unreadable is not None:
        why = f"doctest cannot read the docstring: {run.unreadable}"
        line = next((base for base in bases if base is not None), 0) + 1
        message = f"the examples could not run: {why}"
        return [Finding(file, function, line, Code.MODULE_FAILED, "warning", message)], ExampleStatus(reasons=[why])
    status = ExampleStatus()
    findings: list[Finding] = []
    for index, example in enumerate(run.examples):
        if index in run.skipped:
            continue
        if example.status == "not run":
            status.not_run += 1
            continue
        status.ran += 1
        found = failed_example_finding(file, function, lines, example_line(lines, bases, example), example, suffix)
        if found is None:
            status.passed += 1
        else:
            status.failed += 1
            findings.append(found)
            if found.code == Code.EXAMPLE_LIMIT:
                status.reasons.append(f"`{_shown(example.source)}` {example.message}")
    return findings, status
