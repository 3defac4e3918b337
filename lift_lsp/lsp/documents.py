"""Open documents kept exactly as the editor has them, by the LSP's own rules for lines and positions.

pygls splits lines with `str.splitlines`, which also breaks at form feeds, vertical tabs, `\\x85` and U+2028, and it
mishandles a character offset past the end of a line; an incremental change then lands in the wrong place and the
server's copy of the file silently differs from the editor's. The LSP says: lines end at `\\n`, `\\r\\n` or `\\r`,
and a character past the end of a line means the end of that line (before its line ending).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from lsprotocol import types
from pygls.workspace import TextDocument, Workspace

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def lsp_lines(text: str) -> list[str]:
    """The lines of `text` with their endings, split only at `\\n`, `\\r\\n` and `\\r`."""
    return _LINE.findall(text)


def _units(char: str, encoding: str | None) -> int:
    if encoding == types.PositionEncodingKind.Utf8:
        return len(char.encode("utf-8"))
    if encoding == types.PositionEncodingKind.Utf32:
        return 1
    return 2 if ord(char) > 0xFFFF else 1


def server_position(lines: Sequence[str], position: types.Position, encoding: str | None) -> tuple[int, int]:
    """(line, index in the line's str) for a client position; past the last line means the end of the text, past
    the end of a line means the end of that line."""
    if position.line >= len(lines):
        return (len(lines) - 1, len(lines[-1].rstrip("\r\n"))) if lines else (0, 0)
    body = lines[position.line].rstrip("\r\n")
    units = index = 0
    while index < len(body) and units < position.character:
        units += _units(body[index], encoding)
        index += 1
    return position.line, index


def offset_at(lines: Sequence[str], position: types.Position, encoding: str | None) -> int:
    """The index into the whole text of a client position."""
    if position.line >= len(lines):
        return sum(map(len, lines))
    line, col = server_position(lines, position, encoding)
    return sum(map(len, lines[:line])) + col


class LspTextDocument(TextDocument):
    """A pygls document whose lines and incremental changes follow the LSP's rules."""

    _lines_of: str | None = None
    _lines: tuple[str, ...] = ()

    @property
    def lines(self) -> Sequence[str]:
        """The lines of the current text (split once per version: every request converts positions with them)."""
        source = self.source
        if self._lines_of is not source:
            self._lines_of, self._lines = source, tuple(lsp_lines(source))
        return self._lines

    def _apply_incremental_change(self, change: types.TextDocumentContentChangePartial) -> None:
        lines, encoding = self.lines, self.position_codec.encoding
        start = offset_at(lines, change.range.start, encoding)
        end = max(start, offset_at(lines, change.range.end, encoding))
        source = self.source
        self._source = source[:start] + change.text + source[end:]


class LspWorkspace(Workspace):
    """A pygls workspace that keeps its documents as `LspTextDocument`s."""

    @classmethod
    def like(cls, workspace: Workspace) -> LspWorkspace:
        """An empty workspace with the settings of `workspace` (pygls creates its own at `initialize`)."""
        return cls(
            workspace.root_uri,
            types.TextDocumentSyncKind.Incremental,
            list(workspace.folders.values()),
            workspace.position_encoding,
        )

    def _create_text_document(
        self,
        doc_uri: str,
        source: str | None = None,
        version: int | None = None,
        language_id: str | None = None,
    ) -> TextDocument:
        return LspTextDocument(
            doc_uri,
            source=source,
            version=version,
            language_id=language_id,
            sync_kind=types.TextDocumentSyncKind.Incremental,
            position_codec=self.position_codec,
        )


def client_converter(doc: TextDocument) -> Callable[[int, int], types.Position]:
    """Converts the server's (line, column) in `doc` to the client's position units; a line outside the document is
    passed as it is."""
    lines = doc.lines
    codec = doc.position_codec

    def convert(line: int, col: int) -> types.Position:
        if 0 <= line < len(lines):
            return codec.position_to_client_units(lines, types.Position(line=line, character=col))
        return types.Position(line=line, character=col)

    return convert
