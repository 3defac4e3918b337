"""The VS Code extension packaged as users get it: `npx @vscode/vsce package`, offline from what `npm ci` installed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

VSCODE = Path(__file__).resolve().parent.parent / "editor-clients" / "vscode"


def package_vsix(out: Path) -> tuple[Path, str]:
    """The `.vsix` (written under `out`) and what vsce printed; fails when vsce fails."""
    target = out / "lift.vsix"
    done = subprocess.run(
        ["npx", "--offline", "@vscode/vsce", "package", "--out", str(target)],
        cwd=VSCODE,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "npm_config_offline": "true"},
        stdin=subprocess.DEVNULL,  # a warning would wait for an answer: fail instead
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0 and target.exists(), output
    return target, output
