"""The one reader of a docstring's `>>>` examples: the standard library's doctest parser, as `python -m doctest` reads
them (prompts, `...` continuation lines, the expected output up to a blank line, `# doctest:` directives).

The IR (`docstrings.py`), and through it the hover and forward mode, the checks (`check/example_runs.py`) and the
sandbox worker that runs the doctest sessions (`check/worker.py`, which loads this file by its path) all read examples
here, so that what lift-lsp shows and what doctest runs are the same examples. Standard library only and Python 3.9
syntax: the worker runs in the project's Python.
"""

from __future__ import annotations

import doctest
import re
from dataclasses import dataclass
from typing import Any

_NEWLINES = re.compile(r"\r\n|\r|\n")
_PROMPT = re.compile(r"^[ \t]*>>>")
_BLANKLINE = re.compile(rf"(?m)^{re.escape(doctest.BLANKLINE_MARKER)}\s*?$")
"""A `<BLANKLINE>` line, as doctest's output checker finds it."""


@dataclass(frozen=True)
class DocExample:
    """One `>>>` example, as doctest's parser reads it."""

    source: str
    """The code: prompts and indentation removed, continuation lines joined; ends with a newline."""
    want: str
    """The expected output as written (`<BLANKLINE>` kept); empty or ending with a newline."""
    line: int
    """0-based line of its `>>>` in the text read."""
    indent: int
    """Columns before its `>>>` (after doctest expanded tabs)."""
    options: tuple[tuple[int, bool], ...] = ()
    """Its `# doctest:` directives: (flag, on), in order."""
    exc_msg: str | None = None
    """The exception message the expected output shows after `Traceback (most recent call last):`, if any."""

    @classmethod
    def of(cls, example: doctest.Example, offset: int = 0) -> DocExample:
        """The reading of doctest's `example`, its line moved by `offset`."""
        options = tuple(sorted(example.options.items()))
        return cls(example.source, example.want, example.lineno + offset, example.indent, options, example.exc_msg)

    @property
    def end(self) -> int:
        """The line after its last line (source and expected output)."""
        return self.line + self.source.count("\n") + self.want.count("\n")

    @property
    def expected(self) -> str:
        """The expected output with `<BLANKLINE>` lines blank: the text doctest compares the output with."""
        return _BLANKLINE.sub("", self.want)

    def flag(self, flag: int, flags: int = 0) -> bool:
        """Whether the option `flag` holds for this example in a run with option `flags` and its directives."""
        for option, on in self.options:
            flags = flags | option if on else flags & ~option
        return bool(flags & flag)

    def skipped(self, flags: int = 0) -> bool:
        """Whether doctest leaves it out (a SKIP flag or directive)."""
        return self.flag(doctest.SKIP, flags)


def normalized(text: str) -> str:
    """`text` with every line break a `\\n` (the line numbers of `\\r\\n` and `\\r` kept)."""
    return "\n".join(_NEWLINES.split(text))


def refusal(text: str, name: str = "") -> str | None:
    """Why doctest's parser refuses `text` (inconsistent indentation, no blank after a prompt), in its own words; None
    when it reads it."""
    try:
        doctest.DocTestParser().parse(normalized(text), name)
    except ValueError as err:
        return str(err)
    return None


def read_examples(text: str, name: str = "") -> list[DocExample]:
    """The examples of `text` as doctest reads them. Where doctest refuses the text as a whole (see `refusal`), each
    example is read alone, as doctest would read its block up to a line less indented than its prompt (prose that
    follows it), and those it refuses still are left out."""
    text = normalized(text)
    if ">>>" not in text:
        return []
    try:
        return _parse(text, name, 0)
    except ValueError:
        pass
    lines = text.split("\n")
    starts = [k for k, line in enumerate(lines) if _PROMPT.match(line)]
    examples: list[DocExample] = []
    for k, start in enumerate(starts):  # (no `zip(strict=)`: Python 3.9)
        stop = starts[k + 1] if k + 1 < len(starts) else len(lines)
        block = _block(lines[start:stop])
        try:
            examples += _parse("\n".join(block), name, start)
        except ValueError:
            continue
    return examples


def _block(lines: list[str]) -> list[str]:
    """An example's lines (its prompt first) up to the first line less indented than the prompt."""
    indent = _indent(lines[0])
    end = next((k for k in range(1, len(lines)) if lines[k].strip() and _indent(lines[k]) < indent), len(lines))
    return lines[:end]


def _indent(line: str) -> int:
    expanded = line.expandtabs()
    return len(expanded) - len(expanded.lstrip())


def _parse(text: str, name: str, offset: int) -> list[DocExample]:
    return [DocExample.of(e, offset) for e in doctest.DocTestParser().get_examples(text, name)]


def example_at(examples: list[DocExample], line: int) -> DocExample | None:
    """The example whose `>>>` is at `line`."""
    return next((e for e in examples if e.line == line), None)


class FindingParser(doctest.DocTestParser):
    """doctest's parser for `DocTestFinder`: a docstring it refuses is recorded in `refused` (by the test's name: why,
    in doctest's words, and its line) and found without examples, which leaves the module's other docstrings to run."""

    def __init__(self) -> None:
        self.refused: dict[str, tuple[str, Any]] = {}

    def get_doctest(self, string: str, globs: Any, name: str, filename: Any, lineno: Any) -> doctest.DocTest:
        """The docstring's test; an empty one where the parser refuses it."""
        try:
            return super().get_doctest(string, globs, name, filename, lineno)
        except ValueError as exc:
            self.refused[name] = (str(exc), lineno)
            return super().get_doctest("", globs, name, filename, lineno)
