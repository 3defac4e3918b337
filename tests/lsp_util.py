"""Helpers for end-to-end tests that talk to the real server over stdio (pytest-lsp)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Union

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "lift_lsp.cli"])


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


async def code_actions(client: LanguageClient, uri: str, line: int, character: int = 0) -> list[Any]:
    position = types.Position(line=line, character=character)
    result = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=position, end=position),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    return list(result or [])


def hover_text(result: types.Hover | None) -> str:
    assert result is not None, "expected a hover"
    contents = result.contents
    assert isinstance(contents, types.MarkupContent)
    return contents.value
