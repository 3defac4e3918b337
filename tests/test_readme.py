"""The README documents every setting and every diagnostic code the server has."""

from __future__ import annotations

import re
from pathlib import Path

from lift_lsp.check.checks import CHECK_CACHE_AGE_S, CHECK_CACHE_ENTRIES
from lift_lsp.check.findings import Code
from lift_lsp.lsp.analysis import ANALYSIS_CACHE_AGE_S, ANALYSIS_CACHE_DOCUMENTS
from lift_lsp.options import settings_markdown
from lift_lsp.spec.typecontext import CONTEXT_CACHE_AGE_S, CONTEXT_CACHE_ENTRIES

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_settings_table_is_current() -> None:
    assert settings_markdown() in README, "regenerate the settings table: lift_lsp.options.settings_markdown()"


def test_every_diagnostic_code_is_documented() -> None:
    codes = [value for name, value in vars(Code).items() if name.isupper()]
    assert len(codes) == 16
    assert all(f"`{code}`" in README for code in codes)


def test_cache_bounds_are_documented() -> None:
    stated = (
        f"the check cache keeps the findings of the {CHECK_CACHE_ENTRIES} most recently checked functions, each for "
        f"at most {CHECK_CACHE_AGE_S:.0f} s; the analysis cache keeps the {ANALYSIS_CACHE_DOCUMENTS} most recently "
        f"used documents, each unused for at most {ANALYSIS_CACHE_AGE_S:.0f} s; jedi's type contexts are kept for the "
        f"{CONTEXT_CACHE_ENTRIES} most recently analysed functions, each for at most {CONTEXT_CACHE_AGE_S:.0f} s."
    )
    assert stated in " ".join(README.split())
    from lift_lsp.generate.backends.local import GRAMMAR_CACHE_BYTES

    grammars = f"compiled grammars are kept by XGrammar's own compiler, up to {GRAMMAR_CACHE_BYTES // 2**20} MiB"
    assert grammars in " ".join(README.split())


def test_the_grammar_cache_figure_names_its_command_and_stays_within_the_limit() -> None:
    from lift_lsp.generate.backends.local import GRAMMAR_CACHE_BYTES

    found = re.search(
        r"`\.venv/bin/python -m bench\.grammar_cache` compiles ([\d,]+) distinct pinned-IR grammars .*? stood at "
        r"([\d.]+) MiB after ([\d,]+) \(the limit: (\d+) MiB\)",
        " ".join(README.split()),
    )
    assert found is not None, "README's sentence on the grammar cache's measured size"
    grammars, cache_mib, after, limit_mib = found.groups()
    assert grammars == after == "1,000" and int(limit_mib) == GRAMMAR_CACHE_BYTES // 2**20
    assert float(cache_mib) <= int(limit_mib)


def test_the_workspace_check_latency_figure_names_its_command_and_meets_its_goal() -> None:
    """README's hover latency during `lift.checkWorkspace` is what `bench.lsp_latency --only workspace_check` printed:
    the row names that command, and the p99 it shows is within the goal it states."""
    rows = [
        line
        for line in README.splitlines()
        if line.startswith("| `python -m bench.lsp_latency --only workspace_check`")
    ]
    assert len(rows) == 1, "README's row of the workspace check's hover latency"
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    found = re.fullmatch(r"([\d.]+) / ([\d.]+) ms", cells[2])
    assert found is not None and cells[3] == "p99 < 200 ms" and "while the workspace check runs" in cells[1]
    p50, p99 = map(float, found.groups())
    assert p50 <= p99 < 200
