"""Long editing sessions stay steady: nothing piles up per message, a failed check neither loses the diagnostics nor
stays failed, requests never wait for jedi or for background work, backends are closed when replaced."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from lift_lsp.check.checks import check_document
from lift_lsp.lsp import server as server_module
from lift_lsp.lsp.analysis import PENDING_TYPES_NOTE
from lift_lsp.spec import typecontext
from tests.fault_server import FaultServer, status
from tests.inprocess import InProcessServer
from tests.lsp_util import SERVER, open_doc, start

MODULE = '''
def double(x: int) -> int:
    """Twice x.

    >>> double(2)
    5
    """
    return x * 2


def scale(values, k: int) -> list[int]:
    """Each value times k."""
    return [v * k for v in values]


print(scale([1, 2], 3))
'''
QUIET = {"diagnostics": {"onOpen": False, "onSave": False}}
TRUSTED = {"sandbox": {"trustAll": True}}  # examples run in the test's folder


def _change(uri: str, version: int, text: str) -> dict[str, Any]:
    return {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}


def _hover(uri: str, line: int, character: int) -> dict[str, Any]:
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}


async def test_handled_messages_leave_nothing_behind(tmp_path: Path) -> None:
    """pygls 2.1 keeps a future per notification handled by a coroutine or a generator feature (didChange, ...);
    the server's protocol removes them once done, so the bookkeeping does not grow with the session."""
    lsp = InProcessServer()
    await lsp.start(QUIET)
    uri = lsp.open(tmp_path / "m.py", MODULE)
    for version in range(2, 202):
        lsp.notify("textDocument/didChange", _change(uri, version, MODULE + f"# {version}\n"))
        lsp.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
        if version % 20 == 0:
            assert await lsp.request("textDocument/hover", _hover(uri, 1, 5)) is not None
    await lsp.request("workspace/executeCommand", {"command": "lift.documentText", "arguments": [uri]})
    await asyncio.sleep(0.1)
    assert len(lsp.server.protocol._request_futures) == 0
    await lsp.stop()


def _stores_holding(obj: object, uri: str, where: str = "", seen: set[int] | None = None) -> set[str]:
    """The stores (mappings and sets, by attribute path) reachable through the server's own objects that hold `uri`:
    a store added later is found too."""
    seen = set() if seen is None else seen
    seen.add(id(obj))
    found: set[str] = set()
    for name, value in vars(obj).items():
        if isinstance(value, Mapping | set | frozenset) and uri in value:
            found.add(where + name)
        if type(value).__module__.startswith("lift_lsp.") and hasattr(value, "__dict__") and id(value) not in seen:
            found |= _stores_holding(value, uri, f"{where}{name}.", seen)
    return found


async def test_did_close_leaves_nothing_of_the_document(tmp_path: Path) -> None:
    """Its check published, its analysis, a check in flight and waiting in the check lane, a background analysis
    pending: after didClose none of it is held, the pending work is cancelled, the other document keeps its own."""
    lsp = InProcessServer()
    await lsp.start(TRUSTED)
    ls = lsp.server
    uri = lsp.open(tmp_path / "m.py", MODULE)
    other = lsp.open(tmp_path / "other.py", MODULE)
    await lsp.wait_for(lambda m: m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri)
    assert await lsp.request("textDocument/hover", _hover(uri, 1, 5)) is not None
    release = threading.Event()
    blocked = ls.check_lane.submit("file:///busy.py", release.wait)
    try:
        await asyncio.sleep(0.1)  # the busy job runs: the next check of m.py waits in the lane
        lsp.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
        await asyncio.sleep(0.05)  # the check's task submits it to the lane
        lsp.notify("textDocument/didChange", _change(uri, 2, MODULE + "# 2\n"))
        state = ls.documents[uri]
        timer = state.warm_timer
        assert state.check is not None and state.in_flight is not None and timer is not None
        assert {"documents", "analyses._docs", "check_lane._pending"} <= _stores_holding(ls, uri)
        lsp.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        assert _stores_holding(ls, uri) == set() and timer.cancelled()
    finally:
        release.set()
    await blocked
    await asyncio.sleep(0.2)  # the cancelled check finishes: it brings nothing back
    assert _stores_holding(ls, uri) == set()
    assert {"documents", "analyses._docs"} <= _stores_holding(ls, other)
    await lsp.stop()


@pytest.fixture
def failing_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """`check_document` in the server fails with gh-106905's error while the list holds a positive count."""
    failures = [0]

    def check(*args: Any, **kwargs: Any) -> Any:
        if failures[0] > 0:
            failures[0] -= 1
            raise SystemError("AST constructor recursion depth mismatch (before=33, after=31)")
        return check_document(*args, **kwargs)

    monkeypatch.setattr(server_module, "check_document", check)
    yield failures


def _errors_shown(lsp: InProcessServer) -> list[str]:
    return [
        m["params"]["message"]
        for m in lsp.sent
        if m.get("method") == "window/showMessage" and m["params"]["type"] == types.MessageType.Error
    ]


async def test_a_failed_check_is_retried_once(tmp_path: Path, failing_checks: list[int]) -> None:
    failing_checks[0] = 1
    lsp = InProcessServer()
    await lsp.start(TRUSTED)
    uri = lsp.open(tmp_path / "m.py", MODULE)
    await lsp.wait_for(lambda m: m.get("method") == "textDocument/publishDiagnostics")
    assert [d["code"] for d in lsp.published(uri)[0]["diagnostics"]] == ["LIFT001"]
    assert failing_checks[0] == 0 and _errors_shown(lsp) == []
    await lsp.stop()


async def test_a_check_that_keeps_failing_keeps_the_last_diagnostics(tmp_path: Path, failing_checks: list[int]) -> None:
    lsp = InProcessServer()
    await lsp.start(TRUSTED)
    uri = lsp.open(tmp_path / "m.py", MODULE)
    await lsp.wait_for(lambda m: m.get("method") == "textDocument/publishDiagnostics")
    failing_checks[0] = 2
    lsp.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
    await lsp.wait_for(lambda m: m.get("method") == "window/showMessage")
    assert failing_checks[0] == 0
    assert "checking the file failed" in _errors_shown(lsp)[0] and "from the last check" in _errors_shown(lsp)[0]
    assert len(lsp.published(uri)) == 1  # nothing replaced the diagnostics of the last good check
    await lsp.stop()


async def test_requests_never_wait_for_jedi_or_background_work(tmp_path: Path) -> None:
    lsp = InProcessServer()
    await lsp.start()
    ls = lsp.server
    release = threading.Event()
    blocked = [
        ls.analysis_lane.submit("file:///busy.py", release.wait),
        ls.types_lane.submit("file:///busy.py", release.wait),
        ls.check_lane.submit("file:///busy.py", release.wait),
    ]
    typecontext._JEDI.acquire()  # jedi busy elsewhere (the lock every use of jedi takes)
    try:
        uri = lsp.open(tmp_path / "m.py", MODULE)
        scale_line = MODULE.split("\n").index("def scale(values, k: int) -> list[int]:")
        hover = await lsp.request("textDocument/hover", _hover(uri, scale_line, 5), timeout_s=30)
        assert "def scale(values, k: int) -> list[int]" in hover["contents"]["value"]
        assert PENDING_TYPES_NOTE in hover["contents"]["value"]  # said, not silently left out
        double = await lsp.request("textDocument/hover", _hover(uri, 1, 5), timeout_s=30)
        assert PENDING_TYPES_NOTE not in double["contents"]["value"]  # jedi cannot add to an annotated function
        actions = await lsp.request(
            "textDocument/codeAction",
            {
                "textDocument": {"uri": uri},
                "range": {"start": {"line": 1, "character": 5}, "end": {"line": 1, "character": 5}},
                "context": {"diagnostics": []},
            },
        )
        assert [a["title"] for a in actions] == ["Show IR of double"]
        assert lsp.published(uri) == []  # the check waits in its lane
    finally:
        typecontext._JEDI.release()
        release.set()
    await asyncio.gather(*blocked)
    await lsp.wait_for(lambda m: m.get("method") == "textDocument/publishDiagnostics", timeout_s=120)
    for _ in range(200):  # the background analysis adds jedi's types
        hover = await lsp.request("textDocument/hover", _hover(uri, scale_line, 5))
        if PENDING_TYPES_NOTE not in hover["contents"]["value"]:
            break
        await asyncio.sleep(0.1)
    assert "values: list" in hover["contents"]["value"] and PENDING_TYPES_NOTE not in hover["contents"]["value"]
    await lsp.stop()


def _sockets(pid: int) -> int:
    fds = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir() if os.readlink(fd).startswith("socket:"))


STUB = '''def combine(a: int, b: int) -> int:
    """Combine two numbers into one number."""
    ...
'''


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open sockets in /proc")
async def test_replaced_backends_are_closed(tmp_path: Path) -> None:
    """20 rounds of a generation (which connects to the endpoint) and a change of the backend settings: the
    server's open sockets do not grow; at shutdown the last backend's connection is closed too."""
    with FaultServer() as endpoint:
        endpoint.script(*[status(500, "overloaded")] * 21)
        settings: dict[str, Any] = {
            "backend": {"kind": "openai", "url": endpoint.url, "model": "m0", "maxRetries": 0},
            "generation": {"cache": False},
            **QUIET,
        }
        client = await SERVER.start()
        await start(client, options=settings)
        assert client._server is not None
        pid = client._server.pid
        path = tmp_path / "stub.py"
        path.write_text(STUB)
        uri = open_doc(client, path)
        before = _sockets(pid)
        counts = []
        for round_ in range(1, 21):
            result = await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="lift.generate", arguments=[uri, "combine", 1])
            )
            assert not result["ok"] and "500" in result["message"]
            settings["backend"]["model"] = f"m{round_}"
            client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"lift": settings}))
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="lift.documentText", arguments=[uri])
            )  # answered after the settings were applied
            counts.append(_sockets(pid))
        assert len(endpoint.requests) == 20
        assert max(counts[5:]) <= before + 1, counts  # at most the connection of a generation in flight
        await client.shutdown_async(None)
        for _ in range(100):
            if _sockets(pid) <= before:
                break
            await asyncio.sleep(0.05)
        assert _sockets(pid) <= before
        client.exit(None)
        await client._server.wait()
