"""`bench/ir_accuracy.py` on real libraries of each docstring style, against each style's own parser: the IR reads at
least 97% of every measure (99.5% of NumPy parameters, `x: str` lines among them) and mis-parses nothing, and README
shows exactly the table it prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.figures import README, run_bench


@pytest.mark.slow
def test_the_ir_reads_each_style_as_its_own_parser_does(tmp_path: Path) -> None:
    out = tmp_path / "ir_accuracy.json"
    report, _ = run_bench("ir_accuracy", out, timeout_s=3600)
    assert set(report["styles"]) == {"numpy", "google", "rest", "epydoc"}
    for style, result in report["styles"].items():
        assert result["documented"] >= 3000, style
        for measure, figure in result["measures"].items():
            assert figure["total"] > 0 and figure["percent"] >= 97.0, (style, measure, result["samples"])
        assert result["misparsed"] == 0 and result["crashed"] == 0, (style, result["samples"])
    numpy = report["styles"]["numpy"]["measures"]
    assert numpy["param_description"]["percent"] >= 99.5 and numpy["param_type"]["percent"] >= 99.5, numpy
    assert report["markdown"] in README, f"README's table differs from what the bench prints:\n{report['markdown']}"
