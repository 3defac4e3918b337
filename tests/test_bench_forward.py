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
from lift_lsp.analysis import DocumentAnalysis
from lift_lsp.reverse import function_ir

ROW_FIELDS = {
    "task_id", "entry_point", "holes_resolved", "refused", "message", "backend_error", "ir_valid", "candidates",
    "compiled_candidates", "compilable", "spec_examples", "validated", "examples_passed", "humaneval_status",
    "humaneval_message", "pass_at_1", "attempts", "latency_s", "tokens", "backend_calls", "cached_calls", "gpu_s",
    "cost_usd", "generated",
}  # fmt: skip
STEPS = ("context", "ir", "code", "validation", "end_to_end")


def _problem(task_id: str) -> dict[str, Any]:
    return next(p for p in benchmark.load_problems() if p["task_id"] == task_id)


def test_humaneval_own_tests_run_in_the_sandbox() -> None:
    problem = _problem("HumanEval/0")
    assert benchmark.run_humaneval_test(problem["prompt"] + problem["canonical_solution"], problem, 10)[0]
    passed, status, _ = benchmark.run_humaneval_test(problem["prompt"] + "    return False\n", problem, 10)
    assert not passed and status == "raised"  # check() asserts a True case
    hangs = problem["prompt"] + "    while True:\n        pass\n"
    passed, status, _ = benchmark.run_humaneval_test(hangs, problem, 1)
    assert not passed and status == "timeout"


def test_spec_examples_are_rechecked_strictly() -> None:
    problem = _problem("HumanEval/0")
    right = problem["prompt"] + problem["canonical_solution"]
    assert benchmark.run_spec_examples(right, "has_close_elements", "<t>") is True
    assert benchmark.run_spec_examples(problem["prompt"] + "    return False\n", "has_close_elements", "<t>") is False
    # A body that raises NameError does not pass its examples.
    undefined = problem["prompt"] + "    return count\n"
    assert benchmark.run_spec_examples(undefined, "has_close_elements", "<t>") is False


@pytest.mark.parametrize("task_id", ["HumanEval/41", "HumanEval/45", "HumanEval/53"])
def test_type_holes_are_resolved_as_the_preferred_quick_fix(task_id: str) -> None:
    problem = _problem(task_id)
    site = DocumentAnalysis(uri="t", version=None, text=problem["prompt"]).find(problem["entry_point"])
    assert site is not None and function_ir(site, None).ir.holes  # unannotated: forward mode would refuse
    resolved = benchmark.resolve_type_holes(problem["prompt"], site)
    assert resolved is not None
    text, written = resolved
    new_site = DocumentAnalysis(uri="t", version=None, text=text).find(problem["entry_point"])
    assert new_site is not None and not function_ir(new_site, None).ir.holes
    assert written and all(": " in w or w.startswith("from typing") for w in written)
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
    args = ["--url", model_url, "--model", str(tiny_model_dir), "--constraint-format", "ebnf", "--body-syntax",
            "subset", "--limit", "2", "--repairs", "0", "--no-cache", "--timeout", "120",
            "--out", str(out)]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "lift_lsp.cli", "bench", *args], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    printed = done.stdout
    assert benchmark.RANDOM_MODEL_NOTE in printed
    assert f"model {str(tiny_model_dir)!r} at {model_url}" in printed
    for label in ("schema-valid IR", "compilable", "examples pass", "pass@1", "end to end", "tokens mean", "cost"):
        assert label in printed
    report = json.loads(out.read_text())
    assert report["model"] == str(tiny_model_dir) and report["owned_by"] == "lift-lsp"
    assert report["disclaimer"] == benchmark.RANDOM_MODEL_NOTE
    rows = report["rows"]
    assert [r["task_id"] for r in rows] == ["HumanEval/0", "HumanEval/1"]
    for row in rows:
        assert set(row) == ROW_FIELDS, row["task_id"]
        assert row["refused"] is None and row["backend_error"] is None and row["cached_calls"] == 0
        assert row["backend_calls"] >= 1 and row["tokens"]["prompt"] > 0 and row["tokens"]["completion"] > 0
        assert 0 <= row["compiled_candidates"] <= row["candidates"]
        assert row["compilable"] == (row["compiled_candidates"] > 0)
        assert row["ir_valid"] or row["candidates"] == 0  # no code step without valid IR
        assert not row["validated"] or (row["compilable"] and row["generated"])
        assert not row["pass_at_1"] or row["validated"]
        assert row["humaneval_status"] != "not run" or not row["validated"]
        latency = row["latency_s"]
        assert latency["ir"] > 0 and latency["end_to_end"] > 0
        parts = [latency[s] or 0.0 for s in ("context", "ir", "code", "validation")]
        assert sum(parts) <= latency["end_to_end"] + 1e-6
        assert row["gpu_s"] == pytest.approx(latency["ir"] + (latency["code"] or 0.0))
        assert row["cost_usd"] == pytest.approx(row["gpu_s"] / 3600 * 1.95)

    summary = report["summary"]
    counts = summary["counts"]
    assert counts["prompts"] == len(rows)
    for key in ("ir_valid", "compilable", "validated", "pass_at_1"):
        assert counts[key] == sum(r[key] for r in rows)
        assert summary["percent"][key] == pytest.approx(100 * counts[key] / len(rows))
    assert counts["examples_passed"] == sum(r["examples_passed"] is True for r in rows)
    assert counts["with_examples"] == sum(r["spec_examples"] > 0 for r in rows)
    assert counts["candidates"] == sum(r["candidates"] for r in rows)
    assert counts["backend_calls"] == sum(r["backend_calls"] for r in rows)
    for step in STEPS:
        values = [r["latency_s"][step] for r in rows if r["latency_s"][step] is not None]
        stats = summary["latency_s"][step]
        assert stats["n"] == len(values)
        if values:
            assert min(values) <= stats["p50"] <= stats["p95"] <= max(values)
    assert summary["tokens_mean"]["completion"] == pytest.approx(sum(r["tokens"]["completion"] for r in rows) / 2)
    assert summary["cost_usd_total"] == pytest.approx(sum(r["cost_usd"] for r in rows))
    assert summary["cost_usd_per_prompt"] == pytest.approx(summary["cost_usd_total"] / 2)
    goals = {g["goal"]: g for g in report["goals"]}
    compilable = goals["compilable >= 90%"]
    assert compilable["measured"] == summary["percent"]["compilable"]
    assert compilable["met"] == (compilable["measured"] >= 90)
    e2e = next(g for name, g in goals.items() if name.startswith("end to end"))
    assert e2e["measured"] == summary["latency_s"]["end_to_end"]["p50"]
    assert e2e["met"] == (e2e["measured"] < 5)
