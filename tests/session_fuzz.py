"""Session fuzzing of the language server: random documents and random sequences of didOpen / didChange / didSave /
hover / codeAction / didClose against one real server over stdio, with the test's own model of the client's copy of
every document.

The model follows the LSP: lines end at `\\n`, `\\r\\n` or `\\r` (nothing else); positions count UTF-16 code units; a
character past the end of its line means the end of that line (the spec's rule); a line past the end of the document
means the end of the document (what editors do). Each change of a `didChange` applies to the result of the previous
one. After every didOpen and didChange the server's copy (the `lift.documentText` test hook) must equal the model's.

Sessions are plain data (hypothesis strategies build them; positions are abstract selectors resolved against the
document as it is when the operation runs), so the test (`tests/test_fuzz_sessions.py`) and the benchmark
(`bench/fuzz_sessions.py`) share them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from hypothesis import strategies as st
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.lsp_util import SERVER_COMMAND, make_client, start, stderr_to

T = TypeVar("T")
MAX_UINT = 2**31 - 1
"""The LSP's `uinteger` maximum."""

# --- The client's model of a document ----------------------------------------------------------------------------

_EOL = re.compile(r"\r\n|\r|\n")


def lsp_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) code-point offsets of each line's content (its end of line excluded), per the LSP."""
    spans, pos = [], 0
    for match in _EOL.finditer(text):
        spans.append((pos, match.start()))
        pos = match.end()
    spans.append((pos, len(text)))
    return spans


def utf16_len(text: str) -> int:
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def offset_at(text: str, position: types.Position, spans: list[tuple[int, int]] | None = None) -> int:
    """The code-point offset of an LSP position, clamped as the LSP says (see the module docstring)."""
    spans = spans if spans is not None else lsp_lines(text)
    if position.line >= len(spans):
        return len(text)
    start, end = spans[position.line]
    units = 0
    for index in range(start, end):
        if units >= position.character:
            return index
        units += 2 if ord(text[index]) > 0xFFFF else 1
    return end


def position_is_valid(text: str, position: types.Position, spans: list[tuple[int, int]] | None = None) -> bool:
    """A position a server may send: an existing line, a character within it, not inside a surrogate pair."""
    spans = spans if spans is not None else lsp_lines(text)
    if position.line >= len(spans):
        return False
    start, end = spans[position.line]
    units = 0
    for index in range(start, end):
        if units == position.character:
            return True
        units += 2 if ord(text[index]) > 0xFFFF else 1
    return units == position.character


def range_is_valid(text: str, rng: types.Range) -> bool:
    spans = lsp_lines(text)
    ok = position_is_valid(text, rng.start, spans) and position_is_valid(text, rng.end, spans)
    return ok and offset_at(text, rng.start, spans) <= offset_at(text, rng.end, spans)


def apply_change(text: str, change: types.TextDocumentContentChangeEvent) -> str:
    if isinstance(change, types.TextDocumentContentChangePartial):
        spans = lsp_lines(text)
        start = offset_at(text, change.range.start, spans)
        end = offset_at(text, change.range.end, spans)
        return text[:start] + change.text + text[max(start, end) :]
    return change.text


# --- Sessions as data --------------------------------------------------------------------------------------------

PositionKind = Literal["valid", "past_line_end", "past_doc_end", "huge"]


@dataclass(frozen=True)
class Pos:
    """An abstract position: resolved against the document's text when the operation runs."""

    kind: PositionKind
    a: int
    b: int

    def resolve(self, text: str) -> types.Position:
        spans = lsp_lines(text)
        if self.kind == "past_doc_end":
            return types.Position(line=len(spans) + self.a % 5, character=self.b % 40)
        if self.kind == "huge":
            return types.Position(line=MAX_UINT if self.a % 2 else self.a % len(spans), character=MAX_UINT)
        line = self.a % len(spans)
        start, end = spans[line]
        content = text[start:end]
        if self.kind == "past_line_end":
            return types.Position(line=line, character=utf16_len(content) + 1 + self.b % 8)
        boundaries = [0]
        for char in content:
            boundaries.append(boundaries[-1] + (2 if ord(char) > 0xFFFF else 1))
        return types.Position(line=line, character=boundaries[self.b % len(boundaries)])


def resolve_range(text: str, start: Pos, end: Pos) -> types.Range:
    first, second = start.resolve(text), end.resolve(text)
    if (second.line, second.character) < (first.line, first.character):
        first, second = second, first
    return types.Range(start=first, end=second)


@dataclass(frozen=True)
class Open:
    doc: int
    text: str


@dataclass(frozen=True)
class Partial:
    start: Pos
    end: Pos
    text: str


@dataclass(frozen=True)
class Full:
    text: str


@dataclass(frozen=True)
class Change:
    doc: int
    changes: tuple[Partial | Full, ...]
    version_step: int
    """+1 normally; 0 or negative: a stale version."""


@dataclass(frozen=True)
class Save:
    doc: int


@dataclass(frozen=True)
class Hover:
    doc: int
    at: Pos


@dataclass(frozen=True)
class Action:
    doc: int
    start: Pos
    end: Pos


@dataclass(frozen=True)
class Close:
    doc: int


Op = Open | Change | Save | Hover | Action | Close


@dataclass(frozen=True)
class Session:
    docs: int
    diagnostics: bool
    """Run with on-open/on-save diagnostics (the sandbox) on; most sessions keep them off, to stay fast."""
    ops: tuple[Op, ...]

    def describe(self) -> str:
        kinds = Counter(type(op).__name__ for op in self.ops)
        return f"{self.docs} doc(s), diagnostics {'on' if self.diagnostics else 'off'}, ops {dict(kinds)}"


# --- Strategies ----------------------------------------------------------------------------------------------------

IDENTS = ["f", "total", "größe", "λ", "名前", "x1", "_private", "𝔘ni", "clamp", "mean"]
ASTRAL = ["😀", "𝔘", "🚀", "𠜎", "🏳️\u200d🌈"]
ODD_EOLS = ["\x0c", "\x0b", "\x1c", "\x85", "\u2028", "\u2029"]
"""Characters Python's `str.splitlines` treats as line breaks and the LSP does not."""

FUNCTION_TEMPLATES = [
    'def {name}(a: int, b: int) -> int:\n    """Add a and b.\n\n    >>> {name}(1, 2)\n    3\n'
    '    """\n    return a + b\n',
    'def {name}(xs: list[float]) -> float:\n    """The mean of xs {astral}.\n\n    Args:\n        xs: numbers.\n\n'
    '    Raises:\n        ValueError: if xs is empty.\n    """\n    ...\n',
    "def {name}(value, low, high):\n    # spec: clamp value into [low, high]\n    # pre: low <= high\n    ...\n",
    'class K{name}:\n    def {name}(self, s: str) -> str:\n        """Reverse s.\n\n'
    '        >>> K{name}().{name}("ab")\n'
    '        \'ba\'\n        """\n        return s[::-1]\n',
    'async def {name}(n):\n    """Count to n: {astral}"""\n    pass\n',
    'def {name}(n: int) -> int:\n    """Twice n.\n\n    pre: n >= 0\n    post: __return__ >= n\n'
    '    """\n    return 2 * n\n',
]

SNIPPETS = [
    "def ",
    "(",
    ")",
    ":",
    '"""',
    "'''",
    "    ",
    "\t",
    "...",
    "return ",
    ">>> ",
    "pass",
    "x",
    "# spec: ",
    "\\",
    "\x00",
]


@st.composite
def python_source(draw: st.DrawFn) -> str:
    count = draw(st.integers(1, 4))
    parts = ['"""A module."""\n\nimport math\n\n']
    for index in range(count):
        template = draw(st.sampled_from(FUNCTION_TEMPLATES))
        name = draw(st.sampled_from(IDENTS)) + str(index)
        parts.append(template.format(name=name, astral=draw(st.sampled_from(ASTRAL))) + "\n\n")
    return "".join(parts)


def huge_source(kilobytes: int) -> str:
    """About `kilobytes` KB of valid Python: many documented functions."""
    block = FUNCTION_TEMPLATES[0]
    parts, size, index = [], 0, 0
    while size < kilobytes * 1000:
        part = block.format(name=f"f{index}") + "\n\n"
        parts.append(part)
        size += len(part)
        index += 1
    return "".join(parts)


@st.composite
def broken_source(draw: st.DrawFn) -> str:
    text = draw(python_source())
    cut = draw(st.integers(0, len(text)))
    junk = draw(st.lists(st.sampled_from(SNIPPETS), max_size=6).map("".join))
    return text[:cut] + junk + text[cut + draw(st.integers(0, 40)) :]


def _binary_junk() -> st.SearchStrategy[str]:
    return st.binary(max_size=3000).map(lambda data: data.decode("latin-1"))


def _unicode_text() -> st.SearchStrategy[str]:
    pieces = st.one_of(st.text(max_size=30), st.sampled_from(ASTRAL + ODD_EOLS + ["\r\n", "\r", "\n"]))
    return st.lists(pieces, max_size=40).map("".join)


DocumentKind = Literal["python", "broken", "crlf", "cr", "unicode", "junk", "odd_eols", "huge"]
_KIND_WEIGHTS: list[DocumentKind] = [
    *["python"] * 6,
    *["broken"] * 4,
    *["crlf"] * 3,
    "cr",
    *["unicode"] * 3,
    *["junk"] * 2,
    *["odd_eols"] * 2,
    "huge",
]


def documents(kinds: list[DocumentKind] = _KIND_WEIGHTS) -> st.SearchStrategy[str]:
    def build(kind: DocumentKind) -> st.SearchStrategy[str]:
        if kind == "python":
            return python_source()
        if kind == "broken":
            return broken_source()
        if kind == "crlf":
            return python_source().map(lambda s: s.replace("\n", "\r\n"))
        if kind == "cr":
            return python_source().map(lambda s: s.replace("\n", "\r"))
        if kind == "unicode":
            return st.tuples(python_source(), _unicode_text()).map(lambda p: p[0] + p[1])
        if kind == "junk":
            return _binary_junk()
        if kind == "odd_eols":
            pairs = st.tuples(python_source(), st.sampled_from(ODD_EOLS))
            return pairs.map(lambda p: p[0].replace("\n\n", p[1] + "\n", 2))
        return st.integers(150, 220).map(huge_source)

    return st.sampled_from(kinds).flatmap(build)


def positions() -> st.SearchStrategy[Pos]:
    kinds: list[PositionKind] = ["valid"] * 8 + ["past_line_end", "past_doc_end", "huge"]
    return st.builds(Pos, st.sampled_from(kinds), st.integers(0, 10_000), st.integers(0, 10_000))


def inserted_text() -> st.SearchStrategy[str]:
    pieces = st.one_of(
        st.sampled_from(SNIPPETS + ASTRAL + ODD_EOLS + ["\n", "\r\n", "\r", "\n\n"]),
        st.text(max_size=6),
        python_source(),
    )
    return st.lists(pieces, max_size=4).map("".join)


def operations(docs: int, kinds: list[DocumentKind]) -> st.SearchStrategy[Op]:
    doc = st.integers(0, docs - 1)
    change = st.one_of(
        *[st.builds(Partial, positions(), positions(), inserted_text())] * 6,
        st.builds(Full, documents(kinds)),
    )
    steps = st.sampled_from([1] * 12 + [0, -1, 3])
    ops: list[st.SearchStrategy[Op]] = [
        st.builds(Open, doc, documents(kinds)),
        *[st.builds(Change, doc, st.lists(change, min_size=1, max_size=3).map(tuple), steps)] * 5,
        st.builds(Save, doc),
        *[st.builds(Hover, doc, positions())] * 3,
        *[st.builds(Action, doc, positions(), positions())] * 2,
        st.builds(Close, doc),
    ]
    return st.one_of(*ops)


@st.composite
def sessions(draw: st.DrawFn, max_ops: int = 25, kinds: list[DocumentKind] = _KIND_WEIGHTS) -> Session:
    docs = draw(st.integers(1, 3))
    diagnostics = draw(st.integers(0, 19)) == 19
    if diagnostics:  # the sandbox runs every documented example: keep such sessions to small documents
        kinds = [k for k in kinds if k != "huge"]
    first = Open(0, draw(documents(kinds)))
    rest = draw(st.lists(operations(docs, kinds), max_size=max_ops - 1))
    return Session(docs, diagnostics, (first, *rest))


# --- Running sessions against one server ----------------------------------------------------------------------------


@dataclass
class Stats:
    sessions: int = 0
    operations: int = 0
    requests: int = 0
    notifications: int = 0
    rpc_errors: int = 0
    """Well-formed JSON-RPC error answers (allowed, counted)."""
    timeouts: int = 0
    """Requests without an answer within the per-request timeout (a hang)."""
    crashes: int = 0
    """Sessions after which the server process had exited."""
    mismatches: int = 0
    """Server copy != client copy after a didOpen/didChange."""
    bad_ranges: int = 0
    """Ranges the server sent (hover, code action edits, diagnostics) that are not valid in the document."""
    diagnostics_published: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    mismatch_kinds: Counter[str] = field(default_factory=Counter)
    slowest_request_s: float = 0.0

    def fail(self, message: str) -> None:
        if len(self.failures) < 50:
            self.failures.append(message)

    def as_json(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "operations": self.operations,
            "requests": self.requests,
            "notifications": self.notifications,
            "rpc_errors": self.rpc_errors,
            "timeouts": self.timeouts,
            "crashes": self.crashes,
            "mismatches": self.mismatches,
            "mismatch_kinds": dict(self.mismatch_kinds),
            "bad_ranges": self.bad_ranges,
            "diagnostics_published": self.diagnostics_published,
            "slowest_request_s": round(self.slowest_request_s, 3),
            "seconds": round(self.seconds, 1),
            "failures": self.failures[:20],
        }


QUIET_SETTINGS: dict[str, Any] = {"diagnostics": {"onOpen": False, "onSave": False}}
DIAGNOSTIC_SETTINGS: dict[str, Any] = {
    "diagnostics": {"onOpen": True, "onSave": True, "timeBudgetS": 5},
    "contracts": {"enabled": False},
    "sandbox": {"fileTimeoutS": 5, "exampleTimeoutS": 1, "workers": 1, "trustAll": True},
}


@dataclass
class _DocState:
    uri: str
    open: bool = False
    text: str = ""
    version: int = 0
    history: dict[int, str] = field(default_factory=dict)
    """Text by version, for checking diagnostics published for a version."""
    features: set[str] = field(default_factory=set)


def _eol_features(text: str) -> set[str]:
    found = set()
    if "\r\n" in text:
        found.add("crlf")
    if re.search(r"\r(?!\n)", text):
        found.add("cr")
    if any(c in text for c in ODD_EOLS):
        found.add("odd_eol")
    if any(ord(c) > 0xFFFF for c in text):
        found.add("astral")
    return found


class FuzzClient:
    """One language server over stdio and the model of its documents, for any number of sessions."""

    def __init__(
        self,
        workdir: Path,
        request_timeout_s: float = 60.0,
        server_command: list[str] | None = None,
        stderr_log: Path | None = None,
    ) -> None:
        self.workdir = workdir
        self.request_timeout_s = request_timeout_s
        self.server_command = server_command or SERVER_COMMAND
        self.stderr_log = stderr_log
        if stderr_log is not None:
            self.server_command = stderr_to(stderr_log, self.server_command)
        self.stats = Stats()
        self.client: LanguageClient | None = None
        self._serial = 0
        self._docs: dict[str, _DocState] = {}

    async def start(self) -> None:
        config = ClientServerConfig(server_command=self.server_command, client_factory=self._make_client)
        client = await config.start()
        assert isinstance(client, LanguageClient)
        self.client = client
        await start(client, options=QUIET_SETTINGS)

    def _make_client(self) -> LanguageClient:
        """pytest-lsp's test client, with our own handler for published diagnostics (it checks their ranges)."""
        return make_client(on_diagnostics=self._check_diagnostics)

    async def stop(self) -> None:
        if self.client is not None and self.alive():
            await asyncio.wait_for(self.client.shutdown_session(), timeout=30)
        elif self.client is not None:
            await self.client.stop()

    def server_tracebacks(self) -> int:
        """Tracebacks the server logged so far (each is a handler that failed); 0 without a stderr log."""
        if self.stderr_log is None or not self.stderr_log.exists():
            return 0
        return self.stderr_log.read_text(errors="replace").count("Traceback (most recent call last)")

    def alive(self) -> bool:
        server = self.client._server if self.client is not None else None
        return server is not None and server.returncode is None

    async def _request(self, what: str, call: Coroutine[Any, Any, T]) -> tuple[bool, T | None]:
        """(answered, result); a JSON-RPC error is an answer (counted); a timeout is a hang (counted, failed)."""
        self.stats.requests += 1
        started = time.monotonic()
        try:
            return True, await asyncio.wait_for(call, timeout=self.request_timeout_s)
        except JsonRpcException as err:
            self.stats.rpc_errors += 1
            self.stats.fail(f"{what}: JSON-RPC error {err!r}")
            return True, None
        except TimeoutError:
            self.stats.timeouts += 1
            self.stats.fail(f"{what}: no answer within {self.request_timeout_s} s")
            return False, None
        finally:
            self.stats.slowest_request_s = max(self.stats.slowest_request_s, time.monotonic() - started)

    async def run(self, session: Session) -> None:
        """Run one session; what went wrong is counted in `stats` (and `stats.failures`)."""
        assert self.client is not None
        client = self.client
        self._serial += 1
        started = time.monotonic()
        docs = [_DocState(uri=(self.workdir / f"s{self._serial}_d{i}.py").as_uri()) for i in range(session.docs)]
        for doc in docs:
            self._docs[doc.uri] = doc
        if session.diagnostics:
            self._configure(DIAGNOSTIC_SETTINGS)
        try:
            for op in session.ops:
                self.stats.operations += 1
                await self._run_op(client, docs[op.doc], op)
                if not self.alive():
                    break
        finally:
            if self.alive():
                for doc in docs:
                    if doc.open:
                        self._notify(lambda d=doc: client.text_document_did_close(_close(d.uri)))
                        doc.open = False
                if session.diagnostics:
                    self._configure(QUIET_SETTINGS)
                await self._request("documentText (end)", self._document_text(docs[0].uri))
            if not self.alive():
                self.stats.crashes += 1
                self.stats.fail(f"server exited during a session: {session.describe()}")
            for doc in docs:
                self._docs.pop(doc.uri, None)
            self.stats.sessions += 1
            self.stats.seconds += time.monotonic() - started

    def _notify(self, send: Any) -> None:
        self.stats.notifications += 1
        send()

    def _configure(self, settings: dict[str, Any]) -> None:
        assert self.client is not None
        client = self.client
        params = types.DidChangeConfigurationParams(settings={"lift": settings})
        self._notify(lambda: client.workspace_did_change_configuration(params))

    async def _document_text(self, uri: str) -> Any:
        assert self.client is not None
        params = types.ExecuteCommandParams(command="lift.documentText", arguments=[uri])
        return await self.client.workspace_execute_command_async(params)

    async def _run_op(self, client: LanguageClient, doc: _DocState, op: Op) -> None:
        if isinstance(op, Open):
            doc.open, doc.text, doc.version = True, op.text, doc.version + 1
            doc.features = _eol_features(op.text)
            doc.history[doc.version] = doc.text
            item = types.TextDocumentItem(uri=doc.uri, language_id="python", version=doc.version, text=op.text)
            self._notify(lambda: client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=item)))
            await self._compare(doc, "didOpen")
        elif isinstance(op, Change):
            changes: list[types.TextDocumentContentChangeEvent] = []
            text = doc.text
            kinds = set()
            for change in op.changes:
                event: types.TextDocumentContentChangeEvent
                if isinstance(change, Full):
                    event = types.TextDocumentContentChangeWholeDocument(text=change.text)
                    kinds.add("full")
                else:
                    event = types.TextDocumentContentChangePartial(
                        range=resolve_range(text, change.start, change.end), text=change.text
                    )
                    kinds |= {change.start.kind, change.end.kind}
                changes.append(event)
                doc.features |= _eol_features(change.text)
                text = apply_change(text, event)
            version = max(doc.version + op.version_step, 0)
            params = types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=doc.uri, version=version),
                content_changes=changes,
            )
            self._notify(lambda: client.text_document_did_change(params))
            if doc.open:
                doc.text, doc.version = text, version
                doc.history[version] = text
                doc.features |= _eol_features(text)
            await self._compare(doc, "didChange", kinds)
        elif isinstance(op, Save):
            params_save = types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=doc.uri))
            self._notify(lambda: client.text_document_did_save(params_save))
        elif isinstance(op, Close):
            self._notify(lambda: client.text_document_did_close(_close(doc.uri)))
            doc.open = False
            await self._compare(doc, "didClose")
        elif isinstance(op, Hover):
            position = op.at.resolve(doc.text)
            hover_params = types.HoverParams(text_document=types.TextDocumentIdentifier(uri=doc.uri), position=position)
            answered, result = await self._request("hover", client.text_document_hover_async(hover_params))
            if answered and result is not None and result.range is not None and doc.open:
                self._check_range(doc, result.range, "hover")
        elif isinstance(op, Action):
            rng = resolve_range(doc.text, op.start, op.end)
            action_params = types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=doc.uri),
                range=rng,
                context=types.CodeActionContext(diagnostics=[]),
            )
            answered, actions = await self._request("codeAction", client.text_document_code_action_async(action_params))
            for action in (actions or []) if doc.open else []:
                edit = getattr(action, "edit", None)
                for edits in (edit.changes or {}).values() if edit is not None else []:
                    for text_edit in edits:
                        self._check_range(doc, text_edit.range, "code action edit")

    async def _compare(self, doc: _DocState, after: str, kinds: set[str] | None = None) -> None:
        answered, got = await self._request(f"documentText after {after}", self._document_text(doc.uri))
        if not answered:
            return
        if not doc.open:
            if got is not None:
                self._mismatch(doc, f"{after}: the server still holds a closed document", "closed")
            return
        if got is None or got.get("text") != doc.text or got.get("version") != doc.version:
            label = "+".join(sorted((kinds or set()) | doc.features)) or "plain"
            server_text = None if got is None else got.get("text")
            detail = _first_difference(doc.text, server_text)
            self._mismatch(doc, f"{after} [{label}]: server copy differs from the client's: {detail}", label)

    def _mismatch(self, doc: _DocState, message: str, kind: str) -> None:
        self.stats.mismatches += 1
        self.stats.mismatch_kinds[kind] += 1
        self.stats.fail(f"{doc.uri.rsplit('/', 1)[-1]}: {message}")
        # Resynchronise, so that one desync is counted once and the session goes on testing the rest.
        if self.client is not None and doc.open:
            doc.version += 1
            full = types.TextDocumentContentChangeWholeDocument(text=doc.text)
            params = types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=doc.uri, version=doc.version),
                content_changes=[full],
            )
            doc.history[doc.version] = doc.text
            client = self.client
            self._notify(lambda: client.text_document_did_change(params))

    def _check_range(self, doc: _DocState, rng: types.Range, what: str) -> None:
        if not range_is_valid(doc.text, rng):
            self.stats.bad_ranges += 1
            self.stats.fail(f"{what}: range {_fmt_range(rng)} is not valid in the document ({sorted(doc.features)})")

    def _check_diagnostics(self, params: types.PublishDiagnosticsParams) -> None:
        self.stats.diagnostics_published += 1
        doc = self._docs.get(params.uri)
        if doc is None or params.version is None or params.version not in doc.history:
            return
        text = doc.history[params.version]
        for diagnostic in params.diagnostics:
            if not range_is_valid(text, diagnostic.range):
                self.stats.bad_ranges += 1
                self.stats.fail(f"diagnostic {diagnostic.code}: range {_fmt_range(diagnostic.range)} not valid")


def _close(uri: str) -> types.DidCloseTextDocumentParams:
    return types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))


def _fmt_range(rng: types.Range) -> str:
    return f"{rng.start.line}:{rng.start.character}-{rng.end.line}:{rng.end.character}"


def _first_difference(want: str, got: str | None) -> str:
    if got is None:
        return "the server has no such document"
    index = next((i for i, (a, b) in enumerate(zip(want, got, strict=False)) if a != b), min(len(want), len(got)))
    client, server = want[index : index + 20], got[index : index + 20]
    return f"first difference at offset {index}: client {client!r}, server {server!r}"
