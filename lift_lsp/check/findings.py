"""What a check finds: `Finding` (one diagnostic, at a line of a function), its stable `Code`s and `Severity`, and
`ExampleStatus`, the counts of a function's examples that ran."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

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
    CONTRACT_REFUTED = "LIFT012"
    CONTRACT_PROVED = "LIFT013"
    MODULE_FAILED = "LIFT014"
    CONTRACT_UNCHECKED = "LIFT015"
    CONTRACT_CONFIRMED = "LIFT016"


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


@dataclass
class ExampleStatus:
    """What happened to one function's (or docstring's) examples when they last ran."""

    ran: int = 0
    passed: int = 0
    failed: int = 0
    not_run: int = 0
    reasons: list[str] = field(default_factory=list)
    """Why examples did not run or were stopped (the module failed to import, a time limit, ...)."""
    python: str = ""
    """The interpreter that ran them, with a note when it is not the project's."""

    def add(self, other: ExampleStatus) -> None:
        self.ran += other.ran
        self.passed += other.passed
        self.failed += other.failed
        self.not_run += other.not_run
        self.reasons += [r for r in other.reasons if r not in self.reasons]

    def summary(self) -> str:
        """One line for the hover: `3 examples ran: 2 passed, 1 failed`, or why they could not run."""
        why = "; ".join(self.reasons)
        if not self.ran:
            text = f"examples could not run: {why}" if why else "no example ran"
        else:
            text = f"{self.ran} example{'s' if self.ran != 1 else ''} ran: {self.passed} passed, {self.failed} failed"
            if self.not_run:
                text += f", {self.not_run} not run"
            if why:
                text += f" ({why})"
        return f"{text}; Python: {self.python}" if self.python else text


def moved(finding: Finding, lines: int) -> Finding:
    """The finding `lines` lines further down (its quick-fix range too)."""
    data = finding.data
    where = data.get("expected_range") if data is not None else None
    if data is not None and isinstance(where, list) and len(where) == 4:
        data = {**data, "expected_range": [where[0] + lines, where[1], where[2] + lines, where[3]]}
    return dataclasses.replace(finding, line=finding.line + lines, data=data)


def underline(text: str) -> tuple[int, int]:
    """The 0-based columns a finding on a line with `text` (its line ending removed) is shown at: from its first
    non-blank character to its end, as the editor underlines it and `lift-lsp check --format github|sarif` say."""
    return len(text) - len(text.lstrip()), len(text)
