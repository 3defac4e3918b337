"""The figures README publishes, for the tests that measure them: a test asserts the very figure README shows (not
a looser bound) and prints it, so that the command README names for it prints it too."""

from __future__ import annotations

import sys
from pathlib import Path

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def published(label: str) -> str:
    """The value in the last cell of README's table row whose first cell is `label`."""
    for line in README.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0] == label:
            return cells[-1]
    raise AssertionError(f"README has no figure labelled {label!r}")


def assert_figure(label: str, measured: str) -> None:
    print(f"\nfigure: {label} | {measured}", file=sys.stderr)
    shown = published(label)
    assert measured == shown, f"README shows {shown!r} for {label!r}, measured {measured!r}: update one of them"
