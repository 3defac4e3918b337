"""Shared fixtures."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from lift_lsp.generate.models import DEFAULT_MODEL, ModelError, fetch


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight Llama with a real BPE tokenizer (see tests/tiny_model.py), built once per run."""
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@contextmanager
def serve_model(model: Path, log: Path, start_timeout_s: float = 600) -> Iterator[str]:
    """`lift-lsp serve-model` on `model`, as a real subprocess on a loopback port (stderr in `log`): its base URL."""
    command = [sys.executable, "-m", "lift_lsp.cli", "serve-model", "--model", str(model), "--port", "0"]
    with log.open("w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        assert proc.stdout is not None
        line = ""
        deadline = time.monotonic() + start_timeout_s
        while time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
            if line.startswith("serving on "):
                break
        match = re.fullmatch(r"serving on (http://127\.0\.0\.1:\d+/v1)\n", line)
        assert match, f"serve-model did not start: {line!r}\n{log.read_text()}"
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def model_url(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`lift-lsp serve-model` with the tiny model: its base URL."""
    with serve_model(tiny_model_dir, tmp_path_factory.mktemp("serve-model") / "stderr.log", 120) as url:
        yield url


@pytest.fixture(scope="session")
def real_model() -> Path:
    """The pinned real model (Qwen2.5-Coder-0.5B-Instruct), fetched and verified; the test fails when it cannot be."""
    try:
        return fetch(DEFAULT_MODEL, progress=lambda line: print(line, file=sys.stderr))
    except ModelError as err:
        pytest.fail(f"the pinned model {DEFAULT_MODEL} cannot be fetched: {err}")


@pytest.fixture(scope="session")
def real_model_url(real_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`lift-lsp serve-model` with the real model: its base URL."""
    with serve_model(real_model, tmp_path_factory.mktemp("serve-real-model") / "stderr.log") as url:
        yield url


def examples_of(path: Path, function: str) -> dict[str, Any]:
    """`lift-lsp check`'s example counts for `function` in `path` (run in the sandbox), and its findings."""
    report = path.with_suffix(".report.json")
    command = [sys.executable, "-m", "lift_lsp.cli", "check", str(path), "--report", str(report)]
    subprocess.run(command, capture_output=True, check=False)
    (entry,) = json.loads(report.read_text())
    counts = next(f for f in entry["functions"] if f["function"] == function)
    counts["findings"] = [f for f in entry["findings"] if f["function"] == function and f["severity"] == "error"]
    return dict(counts)
