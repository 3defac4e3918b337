"""The figures README publishes, for the tests that measure them: a test asserts the very figure README shows (not
a looser bound) and prints it, so that the command README names for it prints it too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


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


def run_bench(module: str, out: Path, *args: str, timeout_s: int) -> tuple[dict[str, Any], str]:
    """`python -m bench.<module> --out OUT ARGS...` from the repository root: (the JSON it wrote, what it printed,
    also shown on stderr). A failed run fails the test with its output."""
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", "--out", str(out), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(done.stdout, file=sys.stderr)
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return report, done.stdout
