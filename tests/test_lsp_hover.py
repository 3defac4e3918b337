"""Hover, code actions and settings, end to end: the real server over stdio."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.lsp_util import SERVER, code_actions, hover, hover_text, open_doc, replace_range, start

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    await start(lsp_client)
    yield
    await lsp_client.shutdown_session()


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if needle in line)


async def test_hover_on_function_name_shows_ir(client: LanguageClient) -> None:
    path = EXAMPLES / "stubs.py"
    text = path.read_text()
    uri = open_doc(client, path)
    line = _line_of(text, "def running_max")
    value = hover_text(await hover(client, uri, line, text.splitlines()[line].index("running_max") + 2))
    assert "def running_max(values: list[int]) -> list[int]" in value
    assert "Return the running maximum of a list of integers." in value
    assert "`values: list[int]` — the integers, in order." in value
    assert ">>> running_max([1, 3, 2, 5, 4])\n[1, 3, 3, 5, 5]" in value
    assert "_(annotation)_" in value and "_(docstring)_" in value


async def test_hover_inside_body_and_outside_functions(client: LanguageClient) -> None:
    path = EXAMPLES / "stubs.py"
    text = path.read_text()
    uri = open_doc(client, path)
    inside = _line_of(text, "pre: lo <= hi")
    value = hover_text(await hover(client, uri, inside, 6))
    assert "def clamp(x: int, lo: int, hi: int) -> int" in value
    assert "- `lo <= hi`" in value and "- `lo <= __return__ <= hi`" in value  # contracts as the docstring wrote them
    assert await hover(client, uri, 0, 3) is None  # the module docstring is not a function


async def test_spec_comment_and_holes(client: LanguageClient) -> None:
    path = EXAMPLES / "stubs.py"
    text = path.read_text()
    uri = open_doc(client, path)
    value = hover_text(await hover(client, uri, _line_of(text, "def count_vowels"), 5))
    assert "Count the vowels" in value and 'count_vowels("Hello")' in value
    assert "`# spec:` comment" in value
    port = hover_text(await hover(client, uri, _line_of(text, "def parse_port"), 5))
    assert "raises ValueError" in port
    assert "type-value" in port and "`str`" in port  # the type hole, with the examples' type as an option


async def test_code_actions_on_stub(client: LanguageClient) -> None:
    path = EXAMPLES / "stubs.py"
    text = path.read_text()
    uri = open_doc(client, path)
    titles = [a.title for a in await code_actions(client, uri, _line_of(text, "def running_max"), 5)]
    assert "Generate from spec" in titles
    port_actions = await code_actions(client, uri, _line_of(text, "def parse_port"), 5)
    generate = next(a for a in port_actions if a.title == "Generate from spec")
    assert generate.disabled is not None and "type-value" in generate.disabled.reason
    resolve = next(a for a in port_actions if a.title.startswith("Resolve hole: the type of parameter `value` = str"))
    (change,) = resolve.edit.document_changes
    assert change.text_document.uri == uri and change.text_document.version == 1  # bound to the version
    (edit,) = change.edits
    assert edit.new_text == ": str"
    assert (edit.range.start.line, edit.range.start.character) == (_line_of(text, "def parse_port"), 20)


async def test_incremental_change_updates_hover(client: LanguageClient) -> None:
    path = EXAMPLES / "stubs.py"
    text = path.read_text()
    uri = open_doc(client, path)
    line = _line_of(text, "Return the running maximum")
    start = text.splitlines()[line].index("running maximum")
    replace_range(client, uri, 2, (line, start), (line, start + len("running maximum")), "prefix maximum")
    value = hover_text(await hover(client, uri, _line_of(text, "def running_max"), 5))
    assert "Return the prefix maximum of a list" in value


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"backend": {"kind": "telepathy"}}, "backend.kind"),
        ({"generation": {"candidates": 0}}, "generation.candidates"),
    ],
)
async def test_bad_settings_are_reported(options: dict[str, object], expected: str) -> None:
    client_config = SERVER
    lsp_client = await client_config.start()
    try:
        await start(lsp_client, options=options)
        await lsp_client.wait_for_notification(types.WINDOW_SHOW_MESSAGE)
        assert any(expected in m.message for m in lsp_client.messages), lsp_client.messages
        # the server still answers, with the defaults in force
        path = EXAMPLES / "stubs.py"
        uri = open_doc(lsp_client, path)
        assert "running_max" in hover_text(await hover(lsp_client, uri, 3, 5))
    finally:
        await lsp_client.shutdown_session()


@pytest.mark.parametrize("argv", [["--stdio"], ["serve", "--stdio"]], ids=["lift-lsp --stdio", "serve --stdio"])
async def test_server_starts_with_the_stdio_flag_editors_append(argv: list[str]) -> None:
    """vscode-languageclient's stdio transport appends `--stdio` to the command (pylsp and jedi-language-server take
    it too): the server must start and answer, not exit on an unknown argument."""
    config = pytest_lsp.ClientServerConfig(server_command=[*SERVER.server_command, *argv])
    client = await config.start()
    try:
        await start(client)
        path = EXAMPLES / "stubs.py"
        text = path.read_text()
        uri = open_doc(client, path)
        line = _line_of(text, "def running_max")
        value = hover_text(await hover(client, uri, line, text.splitlines()[line].index("running_max") + 2))
        assert "def running_max(values: list[int]) -> list[int]" in value
        await client.shutdown_session()
    finally:
        await client.stop()
