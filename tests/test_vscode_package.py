"""`npx @vscode/vsce package` in editor-clients/vscode: a `.vsix` with no warnings, holding the bundled extension
(esbuild, one file), its manifest, README and LICENSE, and nothing else (no sources, no node_modules)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.vscode_util import VSCODE, package_vsix

pytestmark = pytest.mark.skipif(
    shutil.which("npx") is None or not (VSCODE / "node_modules" / "@vscode" / "vsce").exists(),
    reason="needs node and the extension's devDependencies: `cd editor-clients/vscode && npm ci` (make test does)",
)


def test_vsce_packages_the_bundled_extension_without_warnings(tmp_path: Path) -> None:
    vsix, output = package_vsix(tmp_path)
    assert "WARNING" not in output.upper(), output
    with zipfile.ZipFile(vsix) as archive:
        names = sorted(archive.namelist())
        manifest = json.loads(archive.read("extension/package.json"))
    assert names == [
        "[Content_Types].xml",
        "extension.vsixmanifest",
        "extension/LICENSE.txt",
        "extension/dist/extension.js",
        "extension/package.json",
        "extension/readme.md",
    ]
    assert manifest["main"] == "./dist/extension.js" and manifest["license"] == "MIT"
    assert manifest["repository"]["url"]
    assert (VSCODE.parent.parent / "LICENSE").read_text() == (VSCODE / "LICENSE").read_text()
