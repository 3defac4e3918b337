"""The quick fix "Fix the code from its spec" through the real server over stdio: offered on a failing example,
run by `lift.fix` with progress and cancel, and applied only when a candidate passes every example and contract.

A scripted loopback server (tests/fault_server.py) stands for a model that writes the right body; the tests' tiny
random-weight model behind `lift-lsp serve-model` for one that cannot: then nothing is offered, and the user is told.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from lift_lsp.lsp.actions import FIX_TITLE
from tests.fault_server import FaultServer, Hang, ok
from tests.lsp_util import SERVER, open_doc, start
from tests.test_forward_lsp import Editor, _settings

BROKEN = '''def double(n: int) -> int:
    """Twice n.

    >>> double(2)
    4
    >>> double(-3)
    -6
    """
    return n + 2
'''


async def _opened(
    url: str, model: str, tmp_path: Path, **generation: Any
) -> tuple[LanguageClient, Editor, str, types.Diagnostic]:
    """A server with `BROKEN` open, and the diagnostic of its failing example."""
    settings: dict[str, Any] = _settings(url, model, **generation)
    settings["diagnostics"] = {"onOpen": True, "onSave": True}
    settings["sandbox"] = {"trustedFolders": [str(tmp_path)]}
    client = await SERVER.start()
    await start(client, options=settings)
    path = tmp_path / "m.py"
    path.write_text(BROKEN)
    editor = Editor(client, BROKEN)
    uri = open_doc(client, path)
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    (diagnostic,) = client.diagnostics[uri]
    assert diagnostic.code == "LIFT001" and "`double(-3)`: expected -6, got -1" in diagnostic.message
    return client, editor, uri, diagnostic


async def _fix_action(client: LanguageClient, uri: str, diagnostics: list[types.Diagnostic]) -> list[Any]:
    where = diagnostics[0].range if diagnostics else types.Range(start=types.Position(8, 4), end=types.Position(8, 4))
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=where,
            context=types.CodeActionContext(diagnostics=diagnostics),
        )
    )
    return [a for a in actions or [] if isinstance(a, types.CodeAction) and a.title == FIX_TITLE]


async def _run(client: LanguageClient, action: types.CodeAction) -> Any:
    assert action.command is not None
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=action.command.command, arguments=action.command.arguments)
    )


async def test_fix_is_offered_on_the_failing_example_and_applied_when_a_candidate_passes(tmp_path: Path) -> None:
    with FaultServer() as model:
        model.script(ok(json.dumps({"body": "return n * 2"})))
        client, editor, uri, diagnostic = await _opened(model.url, "scripted", tmp_path)
        try:
            assert await _fix_action(client, uri, []) == []  # no failing diagnostic, no quick fix
            (action,) = await _fix_action(client, uri, [diagnostic])
            assert action.kind == types.CodeActionKind.QuickFix and list(action.diagnostics) == [diagnostic]
            result = await _run(client, action)
            assert result["ok"], result
            assert editor.text == BROKEN.replace("return n + 2", "return n * 2")
            prompt = model.requests[0].json["messages"][-1]["content"]
            assert "return n + 2" in prompt and "`double(-3)`: expected -6, got -1" in prompt
            client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                    content_changes=[types.TextDocumentContentChangeWholeDocument(text=editor.text)],
                )
            )
            saved = types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
            client.text_document_did_save(saved)
            await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
            assert list(client.diagnostics[uri]) == []
        finally:
            await client.shutdown_session()


async def test_fix_offers_nothing_unless_a_candidate_passes_and_says_so(
    model_url: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    client, editor, uri, diagnostic = await _opened(model_url, str(tiny_model_dir), tmp_path, candidates=1)
    try:
        (action,) = await _fix_action(client, uri, [diagnostic])
        result = await _run(client, action)
        assert not result["ok"] and "no candidate passed" in result["message"], result
        assert any("nothing was changed" in m.message for m in client.messages)  # told to the user
        assert editor.applied == [] and client.progress_reports  # progress shown, no edit
    finally:
        await client.shutdown_session()


async def test_fix_can_be_cancelled_from_its_progress(tmp_path: Path) -> None:
    with FaultServer(max_hang_s=10) as model:
        model.script(Hang())
        client, editor, uri, diagnostic = await _opened(model.url, "scripted", tmp_path)
        try:
            (action,) = await _fix_action(client, uri, [diagnostic])
            task = asyncio.ensure_future(_run(client, action))
            assert await asyncio.to_thread(model.wait_for_requests, 1, 60)
            (token,) = client.progress_reports
            client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
            assert await asyncio.wait_for(task, timeout=60) == {"ok": False, "message": "cancelled"}
            assert any("fix of `double` cancelled" in m.message for m in client.messages)
            assert editor.applied == []
        finally:
            await client.shutdown_session()
