"""`make demo` where the Hugging Face hub cannot be reached (as on a machine without internet): the reverse-mode
demo runs, one line says why no code was generated, and the exit status is 0."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connecting is refused


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_without_the_hub_runs_the_reverse_demo_and_exits_0() -> None:
    assert Path(sys.prefix) == REPO / ".venv", "make demo uses the repository's .venv: run the tests from it"
    hub = f"http://127.0.0.1:{_closed_port()}"
    env = {k: v for k, v in os.environ.items() if k not in ("LIFT_URL", "LIFT_MODEL", "HF_HUB_OFFLINE")}
    done = subprocess.run(
        ["make", "--no-print-directory", "demo"],
        cwd=REPO,
        env={**env, "HF_ENDPOINT": hub},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "running_max (line 4)" in out and "def clamp(x: int, lo: int, hi: int) -> int" in out  # lift-lsp ir
    assert "LIFT001" in out and "LIFT012" in out  # lift-lsp check found the wrong examples and the contract
    reason = [line for line in out.splitlines() if "Hugging Face hub" in line and "No code generated" in line]
    assert len(reason) == 1, out
    assert f"{hub} cannot be reached: ConnectError" in reason[0], reason
    assert out.rstrip().endswith(reason[0])  # nothing after it: no download, no server
