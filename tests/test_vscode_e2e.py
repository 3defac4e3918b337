"""VS Code end to end: the extension's `.vsix` installed in a real VS Code (code-server, from npm), driven by headless
Chromium through puppeteer-core (`editor-clients/vscode/e2e/drive.js`), on a workspace whose `.venv` holds lift-lsp.

The extension must find and start the server on its own; then hover shows the IR, "Generate from spec" picked from
the lightbulb, with the real model behind `lift-lsp serve-model`, writes a body that passes the stub's examples, a
saved wrong example appears in the Problems panel, and the quick fix picked from the first menu its line's lightbulb
opens removes it. `make test` installs code-server and puppeteer-core (`make vscode-e2e`, which needs Chromium and
the Debian packages that `.ci/run` installs as root).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import examples_of
from tests.vscode_util import VSCODE, package_vsix

E2E = VSCODE / "e2e"
CODE_SERVER = E2E / "node_modules" / ".bin" / "code-server"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NODE = shutil.which("node")
TIMEOUT_S = 3000  # a bound for a hang only: the real model's generation on a busy CPU takes minutes

pytestmark = pytest.mark.skipif(
    NODE is None or CHROMIUM is None or not CODE_SERVER.exists() or not (VSCODE / "node_modules").exists(),
    reason="needs node, chromium, code-server and the extension's node_modules: run `make vscode-e2e` "
    "(as root, `.ci/run` installs the Debian packages it needs)",
)

STUBS = '''"""Stubs with specs."""


def running_max(values: list[int]) -> list[int]:
    """Return the running maximum of a list of integers.

    >>> running_max([1, 3, 2, 5, 4])
    [1, 3, 3, 5, 5]
    """
    ...


def larger(a: int, b: int) -> int:
    """Return the larger of two numbers.

    >>> larger(1, 2)
    2
    >>> larger(5, 3)
    5
    """
    ...
'''

SQUARE = '''def sq(x: int) -> int:
    """Square a number.

    >>> sq(3)
    9
    """
    return x * x
'''

USER_SETTINGS = {
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "workbench.enableExperiments": False,
    "security.workspace.trust.enabled": False,
    "extensions.ignoreRecommendations": True,
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "files.autoSave": "off",
    "editor.hover.delay": 200,
    "editor.lightbulb.enabled": "on",
    "lift.diagnostics.onOpen": False,  # the problem appears because of the save
    "lift.contracts.enabled": False,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _backend_settings(url: str, model: Path) -> dict[str, Any]:
    """The real model behind `lift-lsp serve-model`, with the generation settings as shipped (no cache, a seed)."""
    return {
        "lift.backend.kind": "openai",
        "lift.backend.url": url,
        "lift.backend.model": str(model),
        "lift.backend.constraintFormat": "ebnf",
        "lift.backend.timeoutS": 900,
        "lift.backend.maxRetries": 0,
        "lift.generation.cache": False,
        "lift.generation.seed": 0,
    }


@pytest.fixture()
def code_server(tmp_path: Path, real_model_url: str, real_model: Path) -> Iterator[tuple[str, Path, Path]]:
    """code-server with the LIFT extension installed, serving a workspace whose .venv holds lift-lsp, the real
    model behind it: (URL of the workspace, the workspace, code-server's log)."""
    workspace = tmp_path / "project"
    workspace.mkdir()
    (workspace / "stubs.py").write_text(STUBS)
    (workspace / "square.py").write_text(SQUARE)
    # The workspace's .venv is the environment running these tests, where lift-lsp is installed (`pip install -e`).
    venv = Path(sys.prefix)
    assert (venv / "bin" / "lift-lsp").exists(), f"lift-lsp is not installed in {venv}"
    (workspace / ".venv").symlink_to(venv, target_is_directory=True)
    data, extensions = tmp_path / "user-data", tmp_path / "extensions"
    (data / "User").mkdir(parents=True)
    (data / "User" / "settings.json").write_text(
        json.dumps(USER_SETTINGS | _backend_settings(real_model_url, real_model))
    )
    common = [str(CODE_SERVER), "--user-data-dir", str(data), "--extensions-dir", str(extensions)]
    installed = subprocess.run(
        [*common, "--install-extension", str(package_vsix(tmp_path)[0])], capture_output=True, text=True, timeout=300
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    port = _free_port()
    log = tmp_path / "code-server.log"
    with log.open("w") as out:
        serve = ["--auth", "none", "--bind-addr", f"127.0.0.1:{port}", "--disable-telemetry", "--disable-update-check"]
        quiet = ["--disable-workspace-trust", "--disable-getting-started-override", "--ignore-last-opened"]
        proc = subprocess.Popen(
            [*common, *serve, *quiet, str(workspace)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the extension host and lift-lsp go with it
            env={**os.environ, "PATH": "/usr/bin:/bin"},  # lift-lsp is found in the workspace's .venv, not on PATH
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "healthz", timeout=5):
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)
        yield f"{url}?folder={workspace}", workspace, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_vscode_hover_generate_problems_and_the_lightbulb_quick_fix(
    code_server: tuple[str, Path, Path], tmp_path: Path
) -> None:
    url, workspace, log = code_server
    assert NODE is not None and CHROMIUM is not None
    result_path = tmp_path / "result.json"
    env = {
        **os.environ,
        "LIFT_E2E_URL": url,
        "LIFT_E2E_CHROMIUM": CHROMIUM,
        "LIFT_E2E_RESULT": str(result_path),
        "LIFT_E2E_SHOTS": str(tmp_path),
    }
    started = time.monotonic()
    done = subprocess.run(
        [NODE, str(E2E / "drive.js")], cwd=E2E, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    results: dict[str, Any] = json.loads(result_path.read_text()) if result_path.exists() else {}
    lift_logs = sorted(tmp_path.glob("user-data/logs/**/*LIFT*.log"))
    report = (
        f"exit {done.returncode} after {time.monotonic() - started:.0f} s\n{done.stdout}\n{done.stderr}\n"
        f"--- results ---\n{json.dumps(results, indent=1)}\n--- code-server ---\n{log.read_text()[-4000:]}\n"
        + "".join(f"--- {p.name} ---\n{p.read_text()[-4000:]}\n" for p in lift_logs)
    )
    assert results.get("ok"), report

    # The extension started the workspace's lift-lsp and says where it found it.
    started_line = f"starting {workspace}/.venv/bin/lift-lsp (the workspace's .venv)"
    assert any(started_line in p.read_text() for p in lift_logs), report
    # Hover: the IR of the function under the mouse.
    assert "def running_max(values: list[int]) -> list[int]" in results["hover"], report
    assert "Return the running maximum of a list of integers." in results["hover"], report
    # "Generate from spec", from the lightbulb's first menu on `larger`: only its body changed, and the saved body
    # passes the stub's examples (run again here, in the sandbox).
    assert "Generate from spec" in results["offered_generate"], report
    generated = (workspace / "stubs.py").read_text()
    before, after = STUBS.rsplit("    ...\n", 1)
    assert generated.startswith(before.rstrip("\n")) and generated.endswith(after), generated
    assert generated.count("    ...\n") == 1, generated  # running_max is still a stub
    counts = examples_of(workspace / "stubs.py", "larger")
    assert counts["ran"] == 2 and counts["passed"] == 2 and counts["findings"] == [], (generated, counts)
    # Saving the broken example put lift's error in the Problems panel.
    assert "`sq(3)`: expected 6, got 9" in results["problem"] and "LIFT001" in results["problem"], report
    # The lightbulb offered the quick fix; it restored the right result; after saving, the problem is gone.
    assert "Update the example to the actual result" in results["offered"], report
    assert "    >>> sq(3)\n    9\n" in results["fixed"] + "\n", report
    assert not any("LIFT001" in row for row in results["problemsAfterFix"]), report
    assert (workspace / "square.py").read_text() == SQUARE
