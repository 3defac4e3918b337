"""Many generations at once, some cancelled, and a server killed mid-generation, over stdio.

The generations are real: the tests' tiny random-weight model behind `lift-lsp serve-model`, every token masked by
XGrammar (the body held to the Python subset grammar, so it parses). What is checked is bookkeeping, not quality:
each finished generation edits only its own document, each cancelled one edits nothing, and a killed server loses
nothing of the user's text.
"""

from __future__ import annotations

import ast
import asyncio
import os
import signal
import time
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.fault_server import FaultServer, Hang
from tests.lsp_util import hover, open_doc
from tests.test_forward_lsp import STUB_FILE, _client, _generate, _settings, apply_text_edits

DOCS = 10


def stub(i: int) -> str:
    """STUB_FILE with its stub renamed, so that each document's progress title names it."""
    return STUB_FILE.replace("def combine(", f"def combine{i}(")


class Editor:
    """The client's side of `workspace/applyEdit` for many documents: applies each edit to its own document."""

    def __init__(self, client: LanguageClient, texts: dict[str, str]) -> None:
        self.texts = dict(texts)
        self.edited: list[str] = []

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            for change in params.edit.document_changes or []:
                assert isinstance(change, types.TextDocumentEdit)
                uri = change.text_document.uri
                self.edited.append(uri)
                self.texts[uri] = apply_text_edits(self.texts[uri], list(change.edits))  # type: ignore[arg-type]
            return types.ApplyWorkspaceEditResult(applied=True)


def _progress_token(client: LanguageClient, title: str) -> str | None:
    for token, reports in client.progress_reports.items():
        if any(isinstance(r, types.WorkDoneProgressBegin) and r.title == title for r in reports):
            return str(token)
    return None


async def test_ten_generations_half_cancelled_each_edits_only_its_own_document(
    model_url: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    client = await _client(_settings(model_url, str(tiny_model_dir), candidates=1))
    try:
        paths = [tmp_path / f"stubs{i}.py" for i in range(DOCS)]
        for i, path in enumerate(paths):
            path.write_text(stub(i))
        uris = [open_doc(client, path) for path in paths]
        editor = Editor(client, {uri: stub(i) for i, uri in enumerate(uris)})
        tasks = [asyncio.ensure_future(_generate(client, uri, f"combine{i}")) for i, uri in enumerate(uris)]

        cancelled = set(range(0, DOCS, 2))
        pending = set(cancelled)
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            for i in sorted(pending):
                token = _progress_token(client, f"Generating combine{i}")
                if token is not None:
                    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
                    pending.discard(i)
            await asyncio.sleep(0.02)
        assert not pending, f"no progress was ever shown for {sorted(pending)}"
        # The server keeps answering while the generations run.
        assert await hover(client, uris[1], STUB_FILE.split("\n").index("def combine(a: int, b: int) -> int:"), 6)

        results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=600)
        for i, (uri, result) in enumerate(zip(uris, results, strict=True)):
            if i in cancelled:
                assert result == {"ok": False, "message": "cancelled"}, (i, result)
                assert uri not in editor.edited and editor.texts[uri] == stub(i)
            else:
                assert result["ok"], (i, result, [m.message for m in client.messages])
                assert editor.edited.count(uri) == 1
                new = editor.texts[uri]
                ast.parse(new)
                before, after = stub(i).split("    ...\n", 1)
                assert new.startswith(before.rstrip("\n")) and new.endswith(after)  # only its own stub's body
        assert sorted(editor.edited) == sorted(uris[i] for i in range(DOCS) if i not in cancelled)
        assert all(path.read_text() == stub(i) for i, path in enumerate(paths))  # nothing written to disk
    finally:
        await client.shutdown_session()


async def test_server_killed_mid_generation_loses_nothing_and_the_cache_stays_readable(
    model_url: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    path = tmp_path / "stubs.py"
    path.write_text(STUB_FILE)
    unsaved = STUB_FILE.replace("RATE = 3", "RATE = 5  # an unsaved edit")

    # 1. A generation in flight (the endpoint never answers) when the server is killed.
    with FaultServer(max_hang_s=20) as endpoint:
        endpoint.script(Hang())
        client = await _client(_settings(endpoint.url, timeout_s=60, cache=True, cacheDir=str(cache)))
        uri = open_doc(client, path, unsaved)
        task = asyncio.ensure_future(_generate(client, uri, "combine"))
        assert await asyncio.to_thread(endpoint.wait_for_requests, 1, 20)
        process = client._server
        assert process is not None
        os.kill(process.pid, signal.SIGKILL)
        await asyncio.wait_for(process.wait(), timeout=10)
        task.cancel()
        await client.stop()
    assert path.read_text() == STUB_FILE  # the file on disk is as the user saved it
    assert not any(p.is_file() and p.suffix == ".json" for p in cache.rglob("*"))  # no entry from the dead request

    async def generate_in_a_new_server() -> str:
        settings = _settings(model_url, str(tiny_model_dir), candidates=1, cache=True, cacheDir=str(cache))
        client = await _client(settings)
        try:
            editor = Editor(client, {path.as_uri(): unsaved})
            uri = open_doc(client, path, unsaved)
            result = await _generate(client, uri, "combine")
            assert result["ok"], (result, [m.message for m in client.messages])
            return editor.texts[uri]
        finally:
            await client.shutdown_session()

    # 2. A new server: the same unsaved text generates, and the answers are cached.
    first = await generate_in_a_new_server()
    entries = [p for p in cache.rglob("*.json") if p.is_file()]
    assert entries

    # 3. As a write cut short would leave them: a torn entry and a leftover temporary file. Neither is read back as
    #    an answer; the generation still succeeds, and the intact entries are used.
    torn = entries[0]
    torn.write_bytes(torn.read_bytes()[: len(torn.read_bytes()) // 2])
    (torn.parent / f".{torn.stem}.interrupted.tmp").write_text('{"texts": ["x"]}')
    second = await generate_in_a_new_server()
    assert second == first  # the same seed: the same code, from the cache and the endpoint
    ast.parse(second)
    assert path.read_text() == STUB_FILE
