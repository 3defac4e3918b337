"""Shared fixtures."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


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
