"""Bad input never takes the server down, every request is answered, and the user's files are never written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import pytest_lsp
from pytest_lsp import LanguageClient

from tests.lsp_util import SERVER, code_actions, hover, hover_text, open_doc, start

BAD_INPUTS: dict[str, str] = {
    "empty.py": "",
    "binary.py": bytes(range(256)).decode("latin-1") * 40 + "\x00\x00def f(:\n\x00",
    "long_line.py": "x = '"
    + "a" * 2_000_000
    + "'\ndef after(y):\n    '''Doubles y.\n\n    >>> after(2)\n    4\n    '''\n",
    "nested.py": "def deep(x):\n    '''Deep.'''\n    return " + "(" * 5000 + "x" + ")" * 5000 + "\n",
    "unterminated.py": 'def f(x):\n    """Never closed.\n\n    >>> f(1)\n    2\n\ndef g():\n    pass\n',
    "crlf.py": "\r\n".join(
        ["def double(n: int) -> int:", '    """Twice n.', "", "    >>> double(2)", "    4", '    """', "    ...", ""]
    ),
    "unicode.py": "\n".join(
        [
            "def größe(λ: float, 名前: str = 'π') -> str:",
            '    """Größe 🚀 of λ.',
            "",
            "    >>> größe(1.0)",
            "    '1.0π'",
            '    """',
            "    return f'{λ}{名前}'",
            "",
        ]
    ),
}


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    await start(lsp_client)
    yield
    await lsp_client.shutdown_session()


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
async def test_bad_input_is_answered_and_nothing_written(client: LanguageClient, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(BAD_INPUTS[name].encode("utf-8", errors="surrogatepass"))
    before = _digest(tmp_path)
    uri = open_doc(client, path, text=BAD_INPUTS[name])
    lines = BAD_INPUTS[name].split("\n")
    positions = [(0, 0), (0, 5), (1, 4), (len(lines) - 1, 0), (len(lines) + 50, 3), (2, 10_000_000)]
    for line, character in positions:
        # each request is answered (None where nothing fits) rather than failing or hanging
        await hover(client, uri, line, character)
        await code_actions(client, uri, line, character)
    # the server is still up and useful afterwards
    good = tmp_path.parent / f"{tmp_path.name}-good.py"
    good.write_text("def inc(n: int) -> int:\n    '''One more than n.'''\n    return n + 1\n")
    good_uri = open_doc(client, good)
    assert "One more than n." in hover_text(await hover(client, good_uri, 0, 5))
    assert _digest(tmp_path) == before


async def test_functions_still_found_in_broken_files(client: LanguageClient, tmp_path: Path) -> None:
    path = tmp_path / "x.py"
    for name, line, expected in [
        ("long_line.py", 1, "Doubles y."),
        ("crlf.py", 0, "def double(n: int) -> int"),
        ("unicode.py", 0, "def größe(λ: float, 名前: str = 'π') -> str"),
        ("nested.py", 0, "Deep."),
    ]:
        uri = open_doc(client, path.with_name(name), text=BAD_INPUTS[name])
        value = hover_text(await hover(client, uri, line, 6))
        assert expected in value, (name, value)
