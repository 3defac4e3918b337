"""Forward mode end to end over stdio: code action -> `lift.generate` -> `workspace/applyEdit`.

The generation is real: the tests' tiny random-weight model behind `lift-lsp serve-model`, every token masked by
XGrammar. With `bodySyntax: subset` its body is held to a Python subset, so even a random model writes code that parses.
Backend faults come from a real loopback server (tests/fault_server.py).
"""

from __future__ import annotations

import ast
import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.fault_server import FaultServer, Gated, Hang, Raw, closed_port, ok, status
from tests.lsp_util import SERVER, code_actions, open_doc, replace_range, start

STUB_FILE = '''"""A module with one stub among ordinary code."""

import math

RATE = 3


def combine(a: int, b: int) -> int:
    """Combine two numbers into one number."""
    ...


def untouched(x: float) -> float:
    return math.sqrt(x) * RATE
'''


def _settings(url: str, model: str = "tiny", timeout_s: float = 300, **generation: Any) -> dict[str, Any]:
    return {
        "backend": {"kind": "openai", "url": url, "model": model, "constraintFormat": "ebnf", "timeoutS": timeout_s,
                    "maxRetries": 0, "connectTimeoutS": 2},
        "generation": {"bodySyntax": "subset", "candidates": 2, "repairs": 0, "maxTokensIr": 8000,
                       "maxTokensCode": 2000, "temperature": 1.0, "seed": 7, "cache": False, **generation},
        "diagnostics": {"onOpen": False, "onSave": False},
    }  # fmt: skip


def _offset(text: str, position: types.Position) -> int:
    lines = text.split("\n")
    return sum(len(line) + 1 for line in lines[: position.line]) + position.character


def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[: _offset(text, edit.range.start)] + edit.new_text + text[_offset(text, edit.range.end) :]
    return text


class Editor:
    """The client's side of `workspace/applyEdit`: applies edits to its copy of the document, as an editor does."""

    def __init__(self, client: LanguageClient, text: str) -> None:
        self.text = text
        self.applied: list[types.ApplyWorkspaceEditParams] = []

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            self.applied.append(params)
            for change in params.edit.document_changes or []:
                assert isinstance(change, types.TextDocumentEdit)
                self.text = apply_text_edits(self.text, list(change.edits))  # type: ignore[arg-type]
            return types.ApplyWorkspaceEditResult(applied=True)


async def _client(settings: dict[str, Any]) -> LanguageClient:
    client = await SERVER.start()
    await start(client, options=settings)
    return client


async def _generate(client: LanguageClient, uri: str, function: str) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="lift.generate", arguments=[uri, function, 1])
    )


async def test_generate_replaces_only_the_stub_body(model_url: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    client = await _client(_settings(model_url, str(tiny_model_dir)))
    try:
        path = tmp_path / "stubs.py"
        path.write_text(STUB_FILE)
        editor = Editor(client, STUB_FILE)
        uri = open_doc(client, path)
        line = STUB_FILE.split("\n").index("def combine(a: int, b: int) -> int:")
        actions = await code_actions(client, uri, line, 5)
        generate = next(a for a in actions if a.title == "Generate from spec")
        assert generate.disabled is None
        assert generate.command.command == "lift.generate"
        result = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=generate.command.command, arguments=generate.command.arguments)
        )
        assert result["ok"], (result, [m.message for m in client.messages])
        assert len(editor.applied) == 1
        new = editor.text
        ast.parse(new)  # the whole file parses, with the generated body in it
        before, after = STUB_FILE.split("    ...\n", 1)
        assert new.startswith(before.rstrip("\n")) and new.endswith(after)  # nothing outside the body changed
        body = new[len(before.rstrip("\n")) : len(new) - len(after)]
        assert body.strip() and body.strip() != "..."
        assert all(line.startswith("    ") for line in body.strip("\n").split("\n"))
        assert path.read_text() == STUB_FILE  # the server never writes the user's file itself
    finally:
        await client.shutdown_session()


async def test_document_edited_during_generation_is_not_overwritten(tmp_path: Path) -> None:
    """The model's answer is held back until the user's edit has reached the server."""
    gate = threading.Event()
    with FaultServer(max_hang_s=60) as server:
        server.script(Gated(gate, ok("```python\ndef combine(a: int, b: int) -> int:\n    return a * b\n```")))
        client = await _client(_settings(server.url, "fault", bodySyntax="free", codeFormat="python"))
        try:
            await _edit_during_generation(client, server, gate, tmp_path)
        finally:
            gate.set()
            await client.shutdown_session()


async def _edit_during_generation(
    client: LanguageClient, server: FaultServer, gate: threading.Event, tmp_path: Path
) -> None:
    path = tmp_path / "stubs.py"
    path.write_text(STUB_FILE)
    editor = Editor(client, STUB_FILE)
    uri = open_doc(client, path)
    task = asyncio.ensure_future(_generate(client, uri, "combine"))
    assert await asyncio.to_thread(server.wait_for_requests, 1, 60)  # the generation is in flight
    replace_range(client, uri, 2, (4, 0), (4, 8), "RATE = 4")
    await code_actions(client, uri, 7, 5)  # answered after the change: the server has it
    gate.set()
    result = await asyncio.wait_for(task, timeout=120)
    assert not result["ok"]
    assert "changed during generation" in result["message"]
    assert editor.applied == []


FAULTS = {
    "malformed JSON": (lambda: [ok('{"intent": {"summ')], "does not match the IR schema"),
    "schema-invalid JSON": (lambda: [ok('{"intent": 3, "signature": {}}')], "does not match the IR schema"),
    "whitespace only": (lambda: [ok(" \n\t \n")], "the model answered nothing but whitespace"),
    "HTTP 500": (lambda: [status(500, "model crashed")], "HTTP 500"),
    "non-JSON body": (lambda: [Raw("<html>oops</html>", "text/html")], "malformed response"),
    "timeout": (lambda: [Hang()], "no answer"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_backend_faults_give_a_clear_message_and_no_edit(fault: str, tmp_path: Path) -> None:
    actions, expected = FAULTS[fault]
    with FaultServer(max_hang_s=10) as server:
        server.script(*actions())
        client = await _client(_settings(server.url, timeout_s=1, irSource="model"))  # the IR step's faults too
        try:
            path = tmp_path / "stubs.py"
            path.write_text(STUB_FILE)
            editor = Editor(client, STUB_FILE)
            uri = open_doc(client, path)
            result = await _generate(client, uri, "combine")
            assert not result["ok"] and expected in result["message"], result
            assert any(expected in m.message for m in client.messages)
            assert editor.applied == [] and path.read_text() == STUB_FILE
        finally:
            await client.shutdown_session()


async def test_refused_connection_and_the_server_keeps_answering(tmp_path: Path) -> None:
    client = await _client(_settings(f"http://127.0.0.1:{closed_port()}/v1"))
    try:
        path = tmp_path / "stubs.py"
        path.write_text(STUB_FILE)
        uri = open_doc(client, path)
        result = await _generate(client, uri, "combine")
        assert not result["ok"] and "cannot reach" in result["message"] and "connection refused" in result["message"]
        assert await code_actions(client, uri, 7, 5)  # still answering
    finally:
        await client.shutdown_session()


async def test_cancelled_generation_leaves_the_document_alone(tmp_path: Path) -> None:
    with FaultServer(max_hang_s=10) as server:
        server.script(Hang())
        client = await _client(_settings(server.url, timeout_s=30))
        try:
            path = tmp_path / "stubs.py"
            path.write_text(STUB_FILE)
            editor = Editor(client, STUB_FILE)
            uri = open_doc(client, path)
            task = asyncio.ensure_future(_generate(client, uri, "combine"))
            assert await asyncio.to_thread(server.wait_for_requests, 1, 10)
            (token,) = client.progress_reports  # the progress the editor shows, with its cancel button
            client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
            result = await asyncio.wait_for(task, timeout=10)
            assert result == {"ok": False, "message": "cancelled"}
            assert any("cancelled" in m.message for m in client.messages), client.messages
            assert await asyncio.to_thread(lambda: server.requests[0].disconnected.wait(5))  # the HTTP request closed
            assert editor.applied == []
        finally:
            await client.shutdown_session()
