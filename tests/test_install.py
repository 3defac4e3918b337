"""README's install line, run: `uv tool install` from the checkout gives a `lift-lsp` that works outside this
repository's .venv (the checks in its sandbox, and the language server over stdio as editors start it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_lsp import ClientServerConfig

from tests.lsp_util import hover, hover_text, open_doc, start

REPO = Path(__file__).resolve().parent.parent
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


@pytest.mark.skipif(UV is None, reason="uv is not installed (it is in the `test` extra)")
async def test_uv_tool_install_from_the_checkout(tmp_path: Path) -> None:
    assert "uv tool install /path/to/lift-lsp" in (REPO / "README.md").read_text()
    assert UV is not None
    tools, bin_dir = tmp_path / "tools", tmp_path / "bin"
    env = {**os.environ, "UV_TOOL_DIR": str(tools), "UV_TOOL_BIN_DIR": str(bin_dir)}
    done = subprocess.run(
        [UV, "tool", "install", str(REPO)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lift = bin_dir / "lift-lsp"
    assert lift.exists() and REPO / ".venv" not in lift.resolve().parents  # its own environment

    checked = subprocess.run(
        [str(lift), "check", "--json", str(REPO / "examples" / "checked.py")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    assert checked.returncode == 1, checked.stderr  # errors found: the sandbox ran the examples
    assert {"LIFT001", "LIFT012"} <= {f["code"] for f in json.loads(checked.stdout)}

    client = await ClientServerConfig(server_command=[str(lift), "--stdio"]).start()
    try:
        await start(client)
        uri = open_doc(client, REPO / "examples" / "stubs.py")
        assert "def running_max(values: list[int]) -> list[int]" in hover_text(await hover(client, uri, 3, 5))
        await client.shutdown_session()
    finally:
        await client.stop()
