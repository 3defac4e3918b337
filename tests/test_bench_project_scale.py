"""`bench/project_scale.py` on the networkx wheel: lift-lsp check against pytest --doctest-modules on the same 580
files. The counts README publishes are asserted here; the times and memory are printed by the bench, never
asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.figures import assert_figure, run_bench


@pytest.mark.slow
def test_networkx_lift_lsp_agrees_with_pytest(tmp_path: Path) -> None:
    out = tmp_path / "project_scale.json"
    (networkx,) = run_bench("project_scale", out, "--trees", "networkx", timeout_s=1800)[0]["trees"]
    lift, pytest_run, verdicts = networkx["lift"], networkx["pytest"], networkx["verdicts"]
    assert_figure("networkx: files checked", str(networkx["files"]))
    assert_figure("networkx: examples run, lift-lsp / pytest", f"{lift['examples']:,} / {pytest_run['examples']:,}")
    assert_figure(
        "networkx: modules not imported, lift-lsp / pytest's collection errors",
        f"{lift['modules_not_imported']} / {pytest_run['collection_errors']}",
    )
    assert_figure(
        "networkx: docstrings whose verdict agrees with pytest's", f"{verdicts['agree']} / {verdicts['docstrings']}"
    )
    assert lift["cached_stats"] == f"lift-lsp: 0 file(s) checked, {networkx['files']} from the cache"
