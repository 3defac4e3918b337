"""Errors in Python source that are certain before it runs: undefined names and the like, found by pyflakes.

Only pyflakes' messages that mean the code fails when that line runs count (an undefined name, a local used before
assignment, `return` outside a function, a `%`/`.format` call that cannot work...). Style findings (unused imports
or variables, redefinitions) do not. Source that does not parse gives no findings here: compiling reports that.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyflakes import checker, messages

from lift_lsp import pyast

CERTAIN_ERRORS: tuple[type[messages.Message], ...] = (
    messages.UndefinedName,
    messages.UndefinedLocal,
    messages.UndefinedExport,
    messages.DuplicateArgument,
    messages.ReturnOutsideFunction,
    messages.YieldOutsideFunction,
    messages.ContinueOutsideLoop,
    messages.BreakOutsideLoop,
    messages.DefaultExceptNotLast,
    messages.TwoStarredExpressions,
    messages.TooManyExpressionsInStarredAssignment,
    messages.PercentFormatInvalidFormat,
    messages.PercentFormatMixedPositionalAndNamed,
    messages.PercentFormatUnsupportedFormatCharacter,
    messages.PercentFormatPositionalCountMismatch,
    messages.PercentFormatMissingArgument,
    messages.PercentFormatExpectedMapping,
    messages.PercentFormatExpectedSequence,
    messages.PercentFormatStarRequiresSequence,
    messages.StringDotFormatInvalidFormat,
    messages.StringDotFormatMissingArgument,
    messages.StringDotFormatMixingAutomatic,
)


@dataclass(frozen=True)
class StaticError:
    line: int
    """1-based."""
    col: int
    """0-based."""
    message: str
    """pyflakes' message, e.g. `undefined name 'helper'`."""


def static_errors(source: str, filename: str = "<lift>", lines: range | None = None) -> list[StaticError]:
    """The certain errors pyflakes finds in `source` (a module), in line order; only those on `lines` (1-based)
    when given."""
    try:
        tree = pyast.parse(source, filename)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return []
    found = checker.Checker(tree, filename=filename).messages
    errors = [
        StaticError(m.lineno, m.col, m.message % m.message_args)
        for m in found
        if isinstance(m, CERTAIN_ERRORS) and (lines is None or m.lineno in lines)
    ]
    return sorted(errors, key=lambda e: (e.line, e.col))
