"""`bench/real_doctests.py`: lift-lsp against doctest itself on real libraries installed from PyPI (into a virtual
environment of their own, the project's Python) and standard-library modules. The figures README publishes are
asserted here; the timings are printed by the bench, never asserted."""

from __future__ import annotations

import re
from pathlib import Path

from tests.figures import README, run_bench


def test_real_doctests_agree_with_doctest(tmp_path: Path) -> None:
    out = tmp_path / "real_doctests.json"
    report, printed = run_bench("real_doctests", out, timeout_s=1500)
    figures = report["figures"]
    published = {
        "docstrings": figures["docstrings"],
        "examples": f"{figures['examples_ran']:,} / {figures['examples']:,}",
        "verdicts": f"{figures['verdicts_agree']} / {figures['docstrings']}",
        "failing": f"{figures['failing_flagged']} / {figures['doctest_failing']}",
        "false errors": figures["false_errors"],
    }
    assert f"| docstrings with doctests (functions, methods, classes, modules) | {published['docstrings']} |" in README
    assert f"| doctest's checkable examples that lift-lsp ran | {published['examples']} (100%) |" in README
    assert f"| docstrings whose verdict agrees with doctest's | {published['verdicts']} |" in README
    assert f"| docstrings doctest fails, flagged by lift-lsp | {published['failing']} |" in README
    assert f"| false errors (an error where doctest passes) | {published['false errors']} |" in README
    assert figures["docstrings"] >= 400 and figures["false_errors"] == 0
    assert figures["examples_ran"] == figures["examples"] and figures["verdicts_agree"] == figures["docstrings"]
    assert re.search(r"wall time: lift-lsp check [\d.]+ s, doctest [\d.]+ s", printed)
