"""Helpers that drive a language server over stdio with pytest-lsp's `LanguageClient`: the end-to-end tests' and
the benchmarks' one client (`bench/` imports them, as `python -m bench.NAME` from the repository root)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

SERVER_COMMAND = [sys.executable, "-m", "lift_lsp.cli"]
SERVER = ClientServerConfig(server_command=SERVER_COMMAND)


def stderr_to(log: Path, command: Sequence[str]) -> list[str]:
    """`command` with its stderr appended to `log` (pytest-lsp's client would forward it to ours); `exec` keeps the
    server's process id the client's."""
    return ["/bin/sh", "-c", 'exec "$@" 2>>"$0"', str(log), *command]


def make_client(on_diagnostics: Callable[[types.PublishDiagnosticsParams], None] | None = None) -> LanguageClient:
    """pytest-lsp's client with its default handlers; `on_diagnostics`, if given, handles published diagnostics in
    place of its `client.diagnostics` (which keeps only the latest of each document, without its version)."""
    client = LanguageClient(converter_factory=default_converter)
    if on_diagnostics is None:
        register_lsp_features(client)
        return client
    publish = types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS
    register_lsp_features(client, {m: f for m, f in DEFAULT_CLIENT_FEATURES.items() if m != publish})

    @client.feature(publish)  # type: ignore[untyped-decorator]
    def diagnostics(params: types.PublishDiagnosticsParams) -> None:
        on_diagnostics(params)

    return client


async def launch(
    command: Sequence[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    on_diagnostics: Callable[[types.PublishDiagnosticsParams], None] | None = None,
) -> LanguageClient:
    """A server started with `command` (in `cwd`, with `env`) and a `make_client` client connected to its stdio;
    `start` initializes it."""
    client = make_client(on_diagnostics)
    await client.start_io(*command, cwd=cwd, env=env)
    return client


def server_pid(client: LanguageClient) -> int:
    server = client._server
    assert server is not None, "the client has no server process"
    return server.pid


async def stop(client: LanguageClient, timeout_s: float = 10.0) -> None:
    """`shutdown` and `exit`, then stop the client; a server that has not exited within `timeout_s` (or cannot take
    the requests: hung, gone) is killed."""
    server = client._server
    try:
        with contextlib.suppress(TimeoutError, RuntimeError, JsonRpcException, ConnectionError):
            async with asyncio.timeout(timeout_s):
                await client.shutdown_session()
    finally:
        if server is not None and server.returncode is None:
            server.kill()
        await client.stop()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Published:
    at: float
    """`time.perf_counter()` when the client handled the notification."""
    params: types.PublishDiagnosticsParams


@dataclass
class DiagnosticsLog:
    """Every `textDocument/publishDiagnostics` a server sent, in order, with when each arrived: pass `record` as
    `on_diagnostics`."""

    published: list[Published] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, params: types.PublishDiagnosticsParams) -> None:
        self.published.append(Published(time.perf_counter(), params))
        self._arrived.set()

    async def wait(self, match: Callable[[types.PublishDiagnosticsParams], bool], timeout_s: float) -> Published | None:
        """The first diagnostics, already received or arriving within `timeout_s`, that `match`; None if none do."""
        seen = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while True:
                    found = next((p for p in self.published[seen:] if match(p.params)), None)
                    if found is not None:
                        return found
                    seen = len(self.published)
                    self._arrived.clear()
                    await self._arrived.wait()
        return None


async def start(client: LanguageClient, options: dict[str, Any] | None = None, root: Path | None = None) -> None:
    converter = client.protocol._converter

    def code_action_or_command(obj: Any, _: type) -> types.Command | types.CodeAction:
        """lsprotocol's own hook reads any object with a `command` key as a Command, which drops a CodeAction's
        `disabled`, `kind` and `edit`; a Command's `command` is a string, a CodeAction's is an object."""
        if isinstance(obj.get("command"), str):
            return converter.structure(obj, types.Command)  # type: ignore[no-any-return]
        return converter.structure(obj, types.CodeAction)  # type: ignore[no-any-return]

    converter.register_structure_hook(Union[types.Command, types.CodeAction], code_action_or_command)  # noqa: UP007
    params = types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        initialization_options=options,
        root_uri=root.as_uri() if root else None,
    )
    await client.initialize_session(params)


def open_doc(client: LanguageClient, path: Path, text: str | None = None, version: int = 1) -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=version, text=path.read_text() if text is None else text
            )
        )
    )
    return uri


def close_doc(client: LanguageClient, uri: str) -> None:
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )


def save_doc(client: LanguageClient, uri: str) -> None:
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))


def configure(client: LanguageClient, settings: dict[str, Any]) -> None:
    """`workspace/didChangeConfiguration` with lift-lsp's settings."""
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"lift": settings}))


def replace_range(
    client: LanguageClient, uri: str, version: int, start: tuple[int, int], end: tuple[int, int], text: str
) -> None:
    """`textDocument/didChange` to `version`: `text` replaces the range from `start` to `end` ((line, character))."""
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(
                        start=types.Position(line=start[0], character=start[1]),
                        end=types.Position(line=end[0], character=end[1]),
                    ),
                    text=text,
                )
            ],
        )
    )


async def hover(client: LanguageClient, uri: str, line: int, character: int) -> types.Hover | None:
    return await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character)
        )
    )


async def code_actions(
    client: LanguageClient,
    uri: str,
    line: int,
    character: int = 0,
    trigger: types.CodeActionTriggerKind | None = None,
) -> list[Any]:
    position = types.Position(line=line, character=character)
    result = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=position, end=position),
            context=types.CodeActionContext(diagnostics=[], trigger_kind=trigger),
        )
    )
    return list(result or [])


def hover_text(result: types.Hover | None) -> str:
    assert result is not None, "expected a hover"
    contents = result.contents
    assert isinstance(contents, types.MarkupContent)
    return contents.value
