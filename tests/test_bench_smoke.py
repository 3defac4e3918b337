"""The benchmarks still run end to end (small sizes): each prints its table and writes its JSON report.

Only that they run and report what they measured is asserted here; the figures themselves are machine-dependent and
belong in bench/ runs, not in tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _run(script: str, out: Path, *args: str) -> tuple[str, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{script.removesuffix('.py')}", "--out", str(out), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, json.loads(out.read_text())


def test_check_speed_reports_cold_and_resave(tmp_path: Path) -> None:
    stdout, report = _run("check_speed.py", tmp_path / "check_speed.json", "--quick")
    assert "lift-lsp check --json (cold)" in stdout and "re-save" in stdout
    assert set(report["goals"]) == {"cold_p50", "resave_p50"}
    for goal in report["goals"].values():
        assert goal["seconds"] > 0 and isinstance(goal["met"], bool)
    assert report["file"]["functions"] > 0
    assert set(report["sandbox_cost"]) == {"cold", "first", "resave"}  # the OS sandbox against plain processes
    for cost in report["sandbox_cost"].values():
        assert cost["ratio"] == round(cost["os_sandbox_p50_ms"] / cost["unsafe_process_p50_ms"], 3)
    assert "OS sandbox cost, cold:" in stdout and "unsafe-process" in stdout


def test_lsp_latency_measures_both_servers(tmp_path: Path) -> None:
    stdout, report = _run("lsp_latency.py", tmp_path / "lsp_latency.json", "--quick")
    assert "hover_one lift-lsp" in stdout and "after_open jedi-language-server" in stdout
    for server in ("lift-lsp", "jedi-language-server"):
        for scenario in ("hover_one", "hover_spread", "code_action", "after_open"):
            measured = report["servers"][server][scenario]
            assert measured["n"] == report["config"]["requests"] and measured["p50_ms"] > 0
        for scenario in ("first_generated", "first_library"):
            assert report["servers"][server][scenario]["first_hover_ms"] > 0
    for scenario in ("hover_one", "hover_spread", "after_open"):
        assert report["servers"]["lift-lsp"][scenario]["answered"] == report["config"]["requests"]
    assert report["servers"]["lift-lsp"]["first_library"]["hover_answered"]
    assert report["servers"]["lift-lsp"]["first_library"]["first_diagnostics_ms"] > 0
    assert set(report["goals"]) == {
        "hover_one_p50",
        "hover_spread_p50",
        "code_action_p50",
        "after_open_p50",
        "after_open_p99",
        "workspace_check_p99",
    }
    checked = report["workspace_check"]  # lift-lsp's hovers with no check running, then during the workspace check
    assert checked["idle"]["n"] == report["config"]["requests"] and checked["during_check"]["n"] >= 1
    assert checked["during_check"]["answered"] == checked["during_check"]["n"]
    assert checked["check"]["files"] == checked["stdlib_files"] + 1  # the copied standard library and the hovered file
    assert "workspace_check lift-lsp during the check" in stdout


def test_load_latency_runs_generations_and_cancels_half(model_url: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    args = ("--url", model_url, "--model", str(tiny_model_dir), "--generations", "4", "--requests", "5")
    stdout, report = _run("load_latency.py", tmp_path / "load_latency.json", "--lines", "200", *args)
    generations = report["generations"]
    assert generations["started"] == 4 and generations["cancel_requested"] == 2
    assert generations["ok"] + generations["cancelled"] + generations["failed"] == 4 and generations["unanswered"] == 0
    assert generations["cancelled"] == 2
    for kind in ("hover", "codeAction"):
        assert report["latency"][kind]["idle"]["n"] == 5 and report["latency"][kind]["under_load"]["n"] >= 1
    assert "under_load" in stdout


def test_constrained_times_the_local_backends_loop_on_real_outputs(tmp_path: Path) -> None:
    stdout, report = _run("constrained.py", tmp_path / "constrained.json", "--quick", "--vocab", "4096")
    assert "lift-lsp's LocalBackend decode loop" in stdout and "ir realistic" in stdout and "code random" in stdout
    assert set(report["grammars"]) == {"ir", "code"}
    for entry in report["grammars"].values():
        assert entry["outputs"] > 0 and entry["realistic"]["steps"] > entry["outputs"]
        assert entry["random"]["steps"] > 0
        assert entry["compile_seen_ms"] > 0 and 0 < entry["realistic"]["cpu_p50_us"] <= entry["realistic"]["cpu_p99_us"]
        assert set(entry["met"]) == {"mask_p50", "mask_p99", "compile_seen"}


def test_soak_runs_a_session_and_reports_its_steadiness(tmp_path: Path) -> None:
    stdout, report = _run("soak.py", tmp_path / "soak.json", "--quick")
    verdicts = report["verdicts"]
    assert set(verdicts) >= {"rss_growth_second_half", "fds", "threads", "children", "diagnostics", "hover_p50_ms"}
    assert len(report["samples"]) == report["config"]["cycles"] and report["samples"][-1]["rss_kb"] > 0
    saves = verdicts["diagnostics"]
    assert saves["saves"] > report["config"]["cycles"]  # every cycle's save, the first open's and the reopens'
    assert saves["matched"] + saves["mismatched"] + saves["lost"] == saves["saves"]
    assert saves["mismatched"] == 0, report.get("mismatches")  # what arrives is `lift-lsp check`'s findings
    assert len(report["hover_s"]) == report["config"]["cycles"]
    assert "goal every save's diagnostics published and right" in stdout
