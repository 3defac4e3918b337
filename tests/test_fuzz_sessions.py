"""Fuzzed editing sessions against one real server over stdio (see tests/session_fuzz.py): every request is answered,
the server stays up, and after every didOpen/didChange its copy of the document equals the client's.

The deterministic cases first: each is one edit an editor can send, found by the fuzzer, checked against the LSP's
rules (lines end at \\n, \\r\\n or \\r; a character past the end of a line means the end of that line).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from lsprotocol import types

from tests.session_fuzz import FuzzClient, Session, apply_change, lsp_lines, offset_at, sessions

T = TypeVar("T")


class LoopThread:
    """An event loop in a thread, so that hypothesis' (synchronous) examples can drive one async client."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 600) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LoopThread, FuzzClient]]:
    loop = LoopThread()
    workdir = tmp_path_factory.mktemp("fuzz")
    client = FuzzClient(workdir, request_timeout_s=60, stderr_log=workdir / "server-stderr.log")
    loop.run(client.start())
    try:
        yield loop, client
    finally:
        loop.run(client.stop())
        loop.close()


# --- The model itself (it is the oracle: check it against the spec's own examples) ---------------------------------


def test_model_follows_the_lsp_line_and_position_rules() -> None:
    assert lsp_lines("a\r\nb\rc\nd\x0ce\u2028f") == [(0, 1), (3, 4), (5, 6), (7, 12)]
    text = 'x="😋"\nabc'
    assert offset_at(text, types.Position(line=0, character=5)) == 4  # UTF-16: the astral char is two units
    assert offset_at(text, types.Position(line=0, character=99)) == 5  # past the end of the line: its end
    assert offset_at(text, types.Position(line=9, character=0)) == len(text)  # past the last line: the end
    change = types.TextDocumentContentChangePartial(
        range=types.Range(start=types.Position(line=1, character=1), end=types.Position(line=1, character=2)), text="Z"
    )
    assert apply_change(text, change) == 'x="😋"\naZc'


# --- Edits an editor sends, one by one ------------------------------------------------------------------------------

SYNC_CASES = {
    # name: (document, (start line, start char, end line, end char, new text))
    "astral character": ("a😀b\n", (0, 3, 0, 4, "X")),
    "CR line endings": ("a\rb\rc", (2, 0, 2, 1, "X")),
    "line past the end": ("abc\n", (5, 0, 6, 0, "X")),
    "form feed in an earlier line": ("def f():\n\x0c\n    pass\nx = 1\n", (3, 0, 3, 1, "y")),
    "vertical tab in a string": ("s = 'a\x0bb'\nt = 2\n", (1, 0, 1, 1, "u")),
    "NEL (\\x85) in a comment": ("# a\x85b\nz = 3\n", (1, 0, 1, 1, "w")),
    "U+2028 in a string": ("s = 'a\u2028b'\nt = 2\n", (1, 0, 1, 1, "u")),
    "character past the end of a line": ("abc\ndef\n", (0, 4, 0, 4, "X")),
    "character past the end of the last line": ("abc", (0, 10, 0, 10, "X")),
    "character past the end of a CRLF line": ("abc\r\ndef", (0, 4, 0, 4, "X")),
}


@pytest.mark.parametrize("name", list(SYNC_CASES))
def test_incremental_change_keeps_the_server_copy_equal(fuzz: tuple[LoopThread, FuzzClient], name: str) -> None:
    loop, client = fuzz
    text, (sl, sc, el, ec, new) = SYNC_CASES[name]
    change = types.TextDocumentContentChangePartial(
        range=types.Range(start=types.Position(line=sl, character=sc), end=types.Position(line=el, character=ec)),
        text=new,
    )
    want = apply_change(text, change)

    async def run() -> Any:
        assert client.client is not None
        lsp = client.client
        uri = (client.workdir / f"case-{abs(hash(name))}.py").as_uri()
        item = types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        lsp.text_document_did_open(types.DidOpenTextDocumentParams(text_document=item))
        lsp.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2), content_changes=[change]
            )
        )
        got = await lsp.workspace_execute_command_async(
            types.ExecuteCommandParams(command="lift.documentText", arguments=[uri])
        )
        lsp.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri)))
        return got

    got = loop.run(run())
    assert got == {"version": 2, "text": want}


# --- The fuzzer -------------------------------------------------------------------------------------------------------


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(session=sessions(max_ops=15))
def test_fuzzed_sessions(fuzz: tuple[LoopThread, FuzzClient], session: Session) -> None:
    loop, client = fuzz
    before = client.stats.as_json()
    failures_before = len(client.stats.failures)
    loop.run(client.run(session))
    after = client.stats.as_json()
    new_failures = client.stats.failures[failures_before:]
    assert client.alive(), f"the server exited: {session.describe()}"
    assert client.server_tracebacks() == 0, f"a handler failed: {client.stderr_log}\n{session.describe()}"
    for counter in ("timeouts", "crashes", "mismatches", "bad_ranges"):
        assert after[counter] == before[counter], (counter, new_failures, session)
