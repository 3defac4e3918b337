"""`lift-lsp bench` (lift_lsp/benchmark.py): forward mode on HumanEval against a real endpoint.

The end-to-end test runs the harness on the first two HumanEval prompts against `lift-lsp serve-model` with the tests'
tiny random-weight model: the figures mean nothing about quality, but every step is real (HTTP, constrained
generation, sandbox validation, HumanEval's own tests), and the report must add up and say so.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from lift_lsp import benchmark
from lift_lsp.lsp.actions import resolve_type_holes
from lift_lsp.lsp.analysis import DocumentAnalysis
from lift_lsp.spec.reverse import function_ir
from tests.humaneval import problems

ROW_FIELDS = {
    "task_id", "holes_resolved", "message", "failure", "backend_calls", "backend_error", "ir_valid", "candidates",
    "compiled_candidates", "compilable", "delivered", "attempts", "repairs", "pass_at_1", "humaneval_status",
    "humaneval_message", "humaneval_log", "latency_s", "tokens", "gpu_s", "cost_usd", "generated",
}  # fmt: skip


def _problem(task_id: str) -> dict[str, Any]:
    return next(p for p in problems() if p["task_id"] == task_id)


def test_humaneval_own_tests_run_in_the_sandbox() -> None:
    problem = _problem("HumanEval/0")
    assert benchmark.run_humaneval_test(problem["prompt"] + problem["canonical_solution"], problem, 10)[0]
    passed, status, _, log = benchmark.run_humaneval_test(problem["prompt"] + "    return False\n", problem, 10)
    assert not passed and status == "raised" and log == ""  # check() asserts a True case
    hangs = problem["prompt"] + "    import os\n    os.write(2, b'still looping')\n    while True:\n        pass\n"
    passed, status, _, log = benchmark.run_humaneval_test(hangs, problem, 1)
    assert not passed and status == "timeout" and "still looping" in log  # the worker's log is kept
    crashes = problem["prompt"] + "    import os\n    os.abort()\n"
    passed, status, _, log = benchmark.run_humaneval_test(crashes, problem, 10)
    assert not passed and status == "crashed" and "Fatal Python error: Aborted" in log, log


@pytest.mark.parametrize("task_id", ["HumanEval/41", "HumanEval/45", "HumanEval/53"])
def test_type_holes_are_resolved_as_the_preferred_quick_fix(task_id: str) -> None:
    problem = _problem(task_id)
    analysis = DocumentAnalysis(uri="t", version=None, text=problem["prompt"])
    site = analysis.find(problem["entry_point"])
    assert site is not None
    holes = analysis.function_ir(site).ir.holes
    assert holes  # unannotated: forward mode would refuse
    text, titles = resolve_type_holes(analysis, site)
    assert len(titles) == len(holes)
    new_site = DocumentAnalysis(uri="t", version=None, text=text).find(problem["entry_point"])
    assert new_site is not None and not function_ir(new_site, None).ir.holes
    assert new_site.docstring == site.docstring
    ast.parse(text)
    # Annotations change nothing: HumanEval's canonical solution still passes HumanEval's tests.
    assert benchmark.run_humaneval_test(text + problem["canonical_solution"], problem, 10)[0]


def test_harness_model_detection() -> None:
    temp_model = str(Path(tempfile.gettempdir()) / "pytest-x" / "tiny-model0")
    assert benchmark.is_harness_model({"id": temp_model, "owned_by": "lift-lsp"}, temp_model)
    assert not benchmark.is_harness_model({"id": temp_model, "owned_by": "vllm"}, temp_model)
    hub_id = "Qwen/Qwen2.5-Coder-7B-Instruct"
    assert not benchmark.is_harness_model({"id": hub_id, "owned_by": "lift-lsp"}, hub_id)
    assert not benchmark.is_harness_model(None, temp_model)


def test_percentile_interpolates() -> None:
    assert benchmark.percentile([], 0.5) is None
    assert benchmark.percentile([3.0], 0.95) == 3.0
    assert benchmark.percentile([4.0, 1.0, 2.0, 3.0], 0.5) == 2.5
    assert benchmark.percentile([1.0, 2.0, 3.0], 0.95) == pytest.approx(2.9)


def test_bench_on_serve_model_reports_every_prompt(model_url: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "humaneval_forward.json"
    args = [
        "--url",
        model_url,
        "--model",
        str(tiny_model_dir),
        "--constraint-format",
        "ebnf",
        "--body-syntax",
        "subset",
        "--limit",
        "2",
        "--repairs",
        "0",
        "--timeout",
        "120",
        "--ir-source",
        "model",
        "--out",
        str(out),
    ]  # fmt: skip  (the IR step measured too)
    done = subprocess.run(
        [sys.executable, "-m", "lift_lsp.cli", "bench", *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    printed = done.stdout
    assert benchmark.RANDOM_MODEL_NOTE in printed
    assert f"model {str(tiny_model_dir)!r} at {model_url}" in printed
    assert f"wrote {out}" in printed
    report = json.loads(out.read_text())
    assert report["model"] == str(tiny_model_dir) and report["disclaimer"] == benchmark.RANDOM_MODEL_NOTE
    assert report["settings"]["generation"]["cache"] is False  # every generation reaches the endpoint
    rows = report["rows"]
    assert [r["task_id"] for r in rows] == ["HumanEval/0", "HumanEval/1"]
    for row in rows:
        assert set(row) == ROW_FIELDS, row["task_id"]
        assert row["backend_error"] is None and row["holes_resolved"] == []  # both prompts are annotated
        assert row["backend_calls"] >= 1 and row["tokens"]["prompt"] > 0 and row["tokens"]["completion"] > 0
        assert 0 <= row["compiled_candidates"] <= row["candidates"]
        assert row["compilable"] == (row["compiled_candidates"] > 0)
        assert row["ir_valid"] or row["candidates"] == 0  # no code step without valid IR
        assert not row["delivered"] or (row["compilable"] and row["generated"])
        assert not row["pass_at_1"] or row["delivered"]
        assert (row["humaneval_status"] == "not run") == (not row["delivered"])
        assert (row["failure"] is None) == row["delivered"] and (row["repairs"] is None) != row["delivered"]
        latency = row["latency_s"]
        assert latency["context"] >= 0 and latency["ir"] > 0 and latency["end_to_end"] > 0
        if row["candidates"]:
            assert latency["code"] > 0 and latency["validation"] >= 0
            steps = latency["context"] + latency["ir"] + latency["code"] + latency["validation"]
            assert steps == pytest.approx(latency["end_to_end"])
        else:
            assert latency["code"] is None and latency["validation"] is None
        assert row["gpu_s"] == pytest.approx(latency["ir"] + (latency["code"] or 0.0))
        assert row["cost_usd"] == pytest.approx(row["gpu_s"] / 3600 * 1.95)

    summary = report["summary"]
    counts = summary["counts"]
    assert counts["prompts"] == len(rows) and counts["refused"] == 0
    assert counts["ir_steps"] == len(rows)
    for key in ("ir_valid", "compilable", "delivered", "pass_at_1"):
        assert counts[key] == sum(r[key] for r in rows)
        assert summary["percent"][key] == pytest.approx(100 * counts[key] / len(rows))
    assert f"schema-valid IR         {counts['ir_valid']}/2" in printed
    assert f"compilable              {counts['compilable']}/2" in printed
    assert f"pass@1 (HumanEval)      {counts['pass_at_1']}/2" in printed
    for key in ("candidates", "compiled_candidates", "backend_calls"):
        assert counts[key] == sum(r[key] for r in rows)
    for step in benchmark.STEPS:
        values = [r["latency_s"][step] for r in rows if r["latency_s"][step] is not None]
        stats = summary["latency_s"][step]
        assert stats["n"] == len(values)
        if values:
            assert min(values) <= stats["p50"] <= stats["p95"] <= max(values)
    assert summary["tokens_mean"]["completion"] == pytest.approx(sum(r["tokens"]["completion"] for r in rows) / 2)
    assert summary["gpu_s_total"] == pytest.approx(sum(r["gpu_s"] for r in rows))
    assert summary["cost_usd_total"] == pytest.approx(sum(r["cost_usd"] for r in rows))
    assert summary["cost_usd_per_prompt"] == pytest.approx(summary["cost_usd_total"] / 2)
    compilable, e2e = report["goals"]
    assert compilable["goal"] == "compilable >= 90%" and compilable["measured"] == summary["percent"]["compilable"]
    assert compilable["met"] == (compilable["measured"] >= 90)
    assert e2e["goal"].startswith("end to end p50 < 5 s")
    assert e2e["measured"] == summary["latency_s"]["end_to_end"]["p50"]
    assert e2e["met"] == (e2e["measured"] < 5)
