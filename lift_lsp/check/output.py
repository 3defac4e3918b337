"""What `lift-lsp check` prints, in each of its `--format`s: `text` (a line a finding, then the totals), `json` (the
findings' list), `github` (GitHub Actions workflow commands, which annotate the lines in a pull request) and `sarif`
(a SARIF 2.1.0 log, for code scanning and the editors that read it)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

from lift_lsp import __version__
from lift_lsp.check.findings import Code, ExampleStatus, Finding, underline

if TYPE_CHECKING:  # the parser imports FORMATS: no sandbox, no checks loaded for it
    from lift_lsp.check.checks import FileCheck
    from lift_lsp.check.workspace import Checked

Format = Literal["text", "json", "github", "sarif"]
FORMATS: tuple[Format, ...] = ("text", "json", "github", "sarif")

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

RULES: dict[str, str] = {
    Code.EXAMPLE_WRONG_RESULT: "A docstring example's result differs from the documented one",
    Code.EXAMPLE_UNEXPECTED_RAISE: "An example raises where no exception is documented",
    Code.EXAMPLE_MISSING_RAISE: "An example does not raise the documented exception",
    Code.EXAMPLE_LIMIT: "An example ran out of its time or memory limit, or crashed",
    Code.PRECONDITION_FALSE: "A precondition is false on an example's inputs",
    Code.POSTCONDITION_FALSE: "A postcondition is false on an example",
    Code.PARAM_DOCUMENTED_ABSENT: "A documented parameter is not a parameter of the function",
    Code.PARAM_UNDOCUMENTED: "A parameter is missing from a docstring that documents the others",
    Code.TYPE_CONTRADICTION: "A documented type contradicts the annotation",
    Code.RAISE_IMPOSSIBLE: "A documented exception that the code can never raise",
    Code.HOLE_UNRESOLVED: "An unresolved hole: a placeholder in code, or a typed hole in a stub's spec",
    Code.CONTRACT_REFUTED: "A contract is broken by some input (replayed counterexample)",
    Code.CONTRACT_PROVED: "z3 proved a postcondition for all inputs",
    Code.MODULE_FAILED: "The examples could not run (the module failed to import, or no sandbox)",
    Code.CONTRACT_UNCHECKED: "A postcondition not checked, and why",
    Code.CONTRACT_CONFIRMED: "CrossHair confirmed a postcondition over all paths",
}
"""One line per diagnostic code (README's "Diagnostics" table has the long form): SARIF's rules."""

_GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}
_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


@dataclass(frozen=True)
class Span:
    """Where a finding is shown: its line from the first non-blank character to the end, as the editor underlines
    it; 1-based, `end_column` just past the last character (SARIF's convention); columns count code points."""

    line: int
    column: int
    end_column: int


def render(output: Format, checked: Sequence[Checked]) -> str:
    """Everything `lift-lsp check --format OUTPUT` prints on stdout (the files that could not be checked are also
    said on stderr, by the caller)."""
    findings = [f for item in checked if item.report is not None for f in item.report.findings]
    if output == "json":
        return json.dumps([f.as_json() for f in findings], indent=2, ensure_ascii=False) + "\n"
    if output == "sarif":
        return json.dumps(sarif_log(checked), indent=2, ensure_ascii=False) + "\n"
    if output == "github":
        spans = SourceSpans()
        lines = [github_command(f, spans(f)) for f in findings]
        lines += [github_command_for_file(item.file, f"cannot check: {item.error}") for item in _unchecked(checked)]
    else:
        lines = [text_line(f) for f in findings]
    return "".join(line + "\n" for line in lines + totals(checked))


def text_line(finding: Finding) -> str:
    return f"{finding.file}:{finding.line}: {finding.severity} {finding.code} [{finding.function}] {finding.message}"


def totals(checked: Sequence[Checked]) -> list[str]:
    """The closing lines: findings and errors, the examples that ran, and the Pythons that ran them."""
    reports = [item.report for item in checked if item.report is not None]
    findings = [f for report in reports for f in report.findings]
    total = ExampleStatus()
    for report in reports:
        for status in report.statuses.values():
            total.add(status)
    stopped = sum(1 for r in reports for st in r.statuses.values() if st.reasons and not st.ran)
    errors = sum(f.severity == "error" for f in findings)
    return [
        f"{len(findings)} finding(s), {errors} error(s) in {len(checked)} file(s)",
        f"examples: {total.ran} ran, {total.passed} passed, {total.failed} failed, {total.not_run} not run; "
        f"{stopped} docstring(s) whose examples could not run",
        *(f"Python: {python}" for python in sorted({_python_line(r) for r in reports if r.interpreter is not None})),
    ]


def _python_line(report: FileCheck) -> str:
    interpreter = report.interpreter
    assert interpreter is not None
    return f"{interpreter.python.path} ({interpreter.found}{'; ' + interpreter.note if interpreter.note else ''})"


def _unchecked(checked: Sequence[Checked]) -> list[Checked]:
    return [item for item in checked if item.report is None]


# ------------------------------------------------------------------------------------------------------ GitHub Actions


def github_data(text: str) -> str:
    """A workflow command's message, escaped as GitHub's toolkit escapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_property(text: str) -> str:
    """A workflow command's property value (`file=`, `title=`): also `:` and `,`, which end it."""
    return github_data(text).replace(":", "%3A").replace(",", "%2C")


def github_command(finding: Finding, span: Span | None) -> str:
    """`::error file=F,line=L,col=C,endLine=L,title=T::message` (`warning`, `notice` for the others); no `col`
    when the line is not in the file as it is now."""
    where = [("file", display_path(finding.file)), ("line", str(finding.line))]
    if span is not None:
        where += [("col", str(span.column)), ("endLine", str(span.line))]
    where.append(("title", f"{finding.code} [{finding.function}]"))
    properties = ",".join(f"{key}={github_property(value)}" for key, value in where)
    return f"::{_GITHUB_LEVEL[finding.severity]} {properties}::{github_data(finding.message)}"


def github_command_for_file(file: str, message: str) -> str:
    """An error annotation on a whole file (one that could not be checked)."""
    properties = f"file={github_property(display_path(file))},title=lift-lsp"
    return f"::error {properties}::{github_data(message)}"


# --------------------------------------------------------------------------------------------------------------- SARIF


def sarif_log(checked: Sequence[Checked]) -> dict[str, object]:
    """One run: the rules (every diagnostic code), one result per finding, and the files that could not be checked
    as the invocation's notifications (then `executionSuccessful` is false)."""
    codes = list(RULES)
    spans = SourceSpans()
    results = [
        _sarif_result(f, codes.index(f.code) if f.code in codes else None, spans(f))
        for item in checked
        if item.report is not None
        for f in item.report.findings
    ]
    notifications = [
        {
            "level": "error",
            "message": {"text": f"cannot check {item.file}: {item.error}"},
            "locations": [{"physicalLocation": {"artifactLocation": artifact_location(item.file)}}],
        }
        for item in _unchecked(checked)
    ]
    rules = [
        {"id": code, "name": _rule_name(code), "shortDescription": {"text": summary}} for code, summary in RULES.items()
    ]
    run = {
        "tool": {
            "driver": {"name": "lift-lsp", "version": __version__, "semanticVersion": __version__, "rules": rules}
        },
        "invocations": [{"executionSuccessful": not notifications, "toolExecutionNotifications": notifications}],
        "originalUriBaseIds": {"SRCROOT": {"uri": Path.cwd().as_uri() + "/"}},
        "columnKind": "unicodeCodePoints",
        "results": results,
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def _sarif_result(finding: Finding, rule_index: int | None, span: Span | None) -> dict[str, object]:
    region: dict[str, int] = {"startLine": finding.line}
    if span is not None:
        region = {"startLine": span.line, "startColumn": span.column, "endLine": span.line}
        region["endColumn"] = span.end_column
    result: dict[str, object] = {
        "ruleId": finding.code,
        "level": _SARIF_LEVEL[finding.severity],
        "message": {"text": finding.message},
        "locations": [
            {
                "physicalLocation": {"artifactLocation": artifact_location(finding.file), "region": region},
                "logicalLocations": [{"fullyQualifiedName": finding.function}],
            }
        ],
    }
    if rule_index is not None:
        result["ruleIndex"] = rule_index
    return result


def artifact_location(file: str) -> dict[str, str]:
    """The file as a URI relative to the current folder (`uriBaseId` SRCROOT) where it is under it, else as an
    absolute `file:` URI."""
    relative = relative_path(file)
    if relative is not None:
        return {"uri": quote(relative), "uriBaseId": "SRCROOT"}
    return {"uri": Path(file).absolute().as_uri()}


def _rule_name(code: str) -> str:
    """The code's constant in `Code` as SARIF's PascalCase rule name: EXAMPLE_WRONG_RESULT is ExampleWrongResult."""
    constant = next(name for name, value in vars(Code).items() if value == code)
    return "".join(word.capitalize() for word in constant.split("_"))


# --------------------------------------------------------------------------------------------------- paths and columns


def relative_path(file: str) -> str | None:
    """`file` relative to the current folder, with `/`; None when it is not under it."""
    try:
        relative = os.path.relpath(os.path.abspath(file))
    except ValueError:  # another drive (Windows)
        return None
    if relative == os.pardir or relative.startswith(os.pardir + os.sep) or os.path.isabs(relative):
        return None
    return Path(relative).as_posix()


def display_path(file: str) -> str:
    """The path GitHub resolves against the repository: relative to the current folder where it can be."""
    return relative_path(file) or os.path.abspath(file)


def line_span(line: int, text: str) -> Span:
    """The span of 1-based `line` whose text is `text` (its line ending removed)."""
    start, end = underline(text)
    return Span(line, start + 1, end + 1)


class SourceSpans:
    """Each finding's `Span`, from its file as it is on disk now (each file read once); None when the file cannot be
    read or no longer has that line."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str] | None] = {}

    def __call__(self, finding: Finding) -> Span | None:
        if finding.file not in self._lines:
            try:
                self._lines[finding.file] = source_lines(Path(finding.file).read_bytes())
            except OSError:
                self._lines[finding.file] = None
        lines = self._lines[finding.file]
        if lines is None or not 1 <= finding.line <= len(lines):
            return None
        return line_span(finding.line, lines[finding.line - 1])


def source_lines(data: bytes) -> list[str]:
    """The lines as Python numbers them (`\\n`, `\\r\\n` and `\\r` end a line; not `str.splitlines`'s others)."""
    return re.split(r"\r\n|\r|\n", data.decode("utf-8", errors="replace"))
