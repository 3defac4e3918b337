"""Forward mode loses no right answer: `lift-lsp bench` against a perfect model (tests/oracle_endpoint.py).

The endpoint answers every HumanEval prompt with its canonical solution (or a wrong one first, or one calling an
undefined name), so what goes wrong is the pipeline's. The README publishes these figures; the test measures them
again and fails when they differ. They say what the pipeline loses or lets through, never what a model is worth.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lift_lsp.benchmark import ORACLE_NOTE
from tests.oracle_endpoint import serve

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
ROWS = {
    "canonical": "the canonical solution",
    "wrong-then-right": "a wrong body (`return None`), then the canonical solution in the repair round",
    "undefined-name": "a body calling a function defined nowhere",
}
CONTRADICTED = {"HumanEval/47", "HumanEval/116"}
"""Prompts whose docstring examples contradict HumanEval's own tests: the canonical solution fails them."""


@pytest.fixture(scope="module")
def oracle_url() -> Iterator[str]:
    with serve() as url:
        yield url


def _bench(url: str, mode: str, out: Path) -> tuple[str, dict[str, Any]]:
    args = ["--url", url, "--model", mode, "--jobs", "4", "--example-timeout", "20", "--test-timeout", "60",
            "--out", str(out)]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "lift_lsp.cli", "bench", *args], capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    print(done.stdout)
    return done.stdout, json.loads(out.read_text())


def _readme_row(mode: str, summary: dict[str, Any]) -> str:
    counts = summary["counts"]
    n = counts["prompts"]
    repaired = sum(v for k, v in summary["delivered_after_repairs"].items() if k != "0")
    passed = f"{counts['pass_at_1']} / {n} ({summary['percent']['pass_at_1']:.1f}%)"
    return f"| {ROWS[mode]} (`{mode}`) | {counts['delivered']} / {n} | {passed} | {repaired} |"


@pytest.mark.parametrize("mode", list(ROWS))
def test_perfect_model_figures_are_the_readmes(oracle_url: str, mode: str, tmp_path: Path) -> None:
    printed, report = _bench(oracle_url, mode, tmp_path / f"{mode}.json")
    assert ORACLE_NOTE in printed and report["disclaimer"] == ORACLE_NOTE
    rows, summary = report["rows"], report["summary"]
    assert len(rows) == 164 and all(r["ir_valid"] is None for r in rows)  # as shipped: the IR read from the spec
    assert "schema-valid IR         n/a (the IR is read from the spec)" in printed
    assert _readme_row(mode, summary) in README, _readme_row(mode, summary)
    failed = {r["task_id"] for r in rows if not r["pass_at_1"]}
    delivered_wrong = sorted((r["task_id"] for r in rows if r["delivered"] and not r["pass_at_1"]), key=_number)
    if mode == "canonical":
        assert failed == CONTRADICTED  # every other right answer is delivered
        assert all(r["failure"] == "checks" for r in rows if r["task_id"] in CONTRADICTED)
        assert all(f"`{task}`" in README for task in CONTRADICTED)
    elif mode == "wrong-then-right":
        assert summary["counts"]["pass_at_1"] >= 0.93 * len(rows)
        assert f"wrong answers delivered: {', '.join(f'`{t}`' for t in delivered_wrong)}" in README
    else:
        assert summary["counts"]["delivered"] == 0 and summary["counts"]["failed_checks"] == len(rows)
        assert all("undefined name 'missing_helper'" in r["message"] for r in rows)


def _number(task_id: str) -> int:
    return int(task_id.split("/")[1])
