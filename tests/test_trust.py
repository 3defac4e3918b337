"""Workspace trust, through the real server: examples and module code run on open and save only in a trusted
folder (`sandbox.trustedFolders`, `sandbox.trustAll`, which the VS Code extension sets while the workspace is
trusted); hover and the static checks work everywhere; an untrusted workspace says so once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from lift_lsp.check.findings import Code
from lift_lsp.lsp.server import UNTRUSTED_MESSAGE
from tests.lsp_util import SERVER, hover, hover_text, open_doc, start

MODULE = '''\
def sq(x: int) -> int:
    """Square.

    Args:
        y: not a parameter.

    >>> sq(3)
    6
    """
    return x * x
'''


STATIC = {Code.PARAM_DOCUMENTED_ABSENT, Code.PARAM_UNDOCUMENTED}
"""What the static checks find in MODULE: `y` documented, `x` not."""


async def opened(client: LanguageClient, path: Path) -> list[types.Diagnostic]:
    uri = open_doc(client, path)
    while uri not in client.diagnostics:
        await asyncio.sleep(0.05)
    return list(client.diagnostics[uri])


async def session(options: dict[str, Any], *paths: Path) -> tuple[list[list[types.Diagnostic]], list[str], str]:
    """Open each file in a fresh server: the diagnostics of each, the messages shown, a hover's text."""
    client = await SERVER.start()
    assert isinstance(client, LanguageClient)
    try:
        await start(client, options={"contracts": {"enabled": False}, **options})
        diagnostics = [await asyncio.wait_for(opened(client, path), timeout=120) for path in paths]
        text = hover_text(await hover(client, paths[0].as_uri(), 0, 5))
        return diagnostics, [m.message for m in client.messages], text
    finally:
        await client.shutdown_session()


def project(folder: Path) -> list[Path]:
    folder.mkdir()
    files = [folder / "a.py", folder / "b.py"]
    for file in files:
        file.write_text(MODULE)
    return files


async def test_an_untrusted_workspace_runs_no_code_and_says_so_once(tmp_path: Path) -> None:
    files = project(tmp_path / "cloned")
    diagnostics, messages, text = await session({}, *files)
    for found in diagnostics:
        assert {d.code for d in found} == STATIC  # the static checks, and no example ran
    assert messages.count(UNTRUSTED_MESSAGE) == 1  # once, for two files
    assert "sandbox.trustedFolders" in UNTRUSTED_MESSAGE and "sandbox.trustAll" in UNTRUSTED_MESSAGE
    assert "sq" in text  # hover works


async def test_trusted_folders_run_the_examples_there_only(tmp_path: Path) -> None:
    trusted, elsewhere = project(tmp_path / "mine")[0], project(tmp_path / "other")[0]
    diagnostics, messages, _ = await session(
        {"sandbox": {"trustedFolders": [str(tmp_path / "mine")]}}, trusted, elsewhere
    )
    assert {d.code for d in diagnostics[0]} == {Code.EXAMPLE_WRONG_RESULT, *STATIC}
    assert {d.code for d in diagnostics[1]} == STATIC
    assert messages.count(UNTRUSTED_MESSAGE) == 1


async def test_trust_all_runs_every_file(tmp_path: Path) -> None:
    files = project(tmp_path / "any")
    diagnostics, messages, _ = await session({"sandbox": {"trustAll": True}}, *files)
    for found in diagnostics:
        assert {d.code for d in found} == {Code.EXAMPLE_WRONG_RESULT, *STATIC}
    assert UNTRUSTED_MESSAGE not in messages
