"""The language server: registers features and delegates to plain functions. No logic of its own beyond wiring,
caching by document version, scheduling, and keeping bad input from ever taking it down. The work is in modules of
its own: a document's checks (document_checks.py), the function at a position and its hover (lookup.py), background
analysis (warming.py), generation and fix (generation.py), the workspace check (workspace_check.py).

Requests never wait for background work: a hover or code action on an analysed function is a lookup answered on the
event loop; otherwise that one function is computed in a request thread without waiting for jedi (analysis.py).
One exception: a code action on a document whose current text is being checked waits for that check (at most
`CHECK_WAIT_S`), so that its answer has the quick fixes of what the check finds whenever it was asked.
Analysis and checks run in background lanes at a lower priority, the most recently used document first
(scheduler.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar
from urllib.parse import unquote

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from lift_lsp import __version__
from lift_lsp.check.checks import CheckCache, FileCheck, check_document
from lift_lsp.check.project import find_interpreter
from lift_lsp.generate.backends.base import Backend
from lift_lsp.lsp.actions import (
    FIX_COMMAND,
    GENERATE_COMMAND,
    SHOW_IR_COMMAND,
    ActionRequest,
    code_actions,
    wants_quick_fixes,
)
from lift_lsp.lsp.analysis import Analysed, AnalysisCache, DocumentAnalysis
from lift_lsp.lsp.document_checks import CheckInFlight, current_problems, start_check, wait_for_check
from lift_lsp.lsp.documents import LspWorkspace, client_converter
from lift_lsp.lsp.findings import DocumentCheck
from lift_lsp.lsp.generation import forward_command
from lift_lsp.lsp.lookup import function_at, hover_markdown
from lift_lsp.lsp.memory import keep_large_blocks_apart
from lift_lsp.lsp.progress import Cancel
from lift_lsp.lsp.scheduler import Lane, RequestPool
from lift_lsp.lsp.warming import schedule_warm
from lift_lsp.lsp.workspace_check import check_workspace_command
from lift_lsp.options import DiagnosticsOptions, Options, parse_options

log = logging.getLogger("lift_lsp")
DOCUMENT_TEXT_COMMAND = "lift.documentText"
"""A hidden test hook: returns the server's copy of an open document (see `document_text`)."""
CHECK_WORKSPACE_COMMAND = "lift.checkWorkspace"
UNTRUSTED_MESSAGE = (
    "lift-lsp: this workspace is not trusted, so the checks that run its code (docstring examples and the module's "
    "own code) are off; hover and the static checks work. To turn them on: trust the workspace (VS Code: Workspace "
    "Trust), or add its folder to the setting `sandbox.trustedFolders`, or set `sandbox.trustAll`."
)
CHECK_WAIT_S = 20.0
"""How long a code action waits for the check of the document's current text, so that it answers with the quick
fixes of that check's findings rather than without them."""
SWITCH_INTERVAL_S = 0.001
"""How long a thread waiting for the interpreter lets another one run before it asks for its turn (Python's default
is 5 ms): the event loop answers a request sooner while background threads compute."""
R = TypeVar("R")
P = ParamSpec("P")


class LiftProtocol(LanguageServerProtocol):
    """pygls 2.1's protocol, without its leak: `JsonRPCProtocol._execute_handler` keeps the future of every
    notification handled by a coroutine or by one of its own generator features (didOpen, didChange, didClose, ...)
    in `_request_futures` under a fresh id, and nothing ever removes it. Here each such future is removed once done;
    a request's future is removed by pygls itself when it sends the answer."""

    def _execute_handler(
        self,
        msg_id: Any,
        handler: Any,
        callback: Any,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        answered = isinstance(callback, functools.partial) and callback.func == self._send_handler_result
        future = self._request_futures.get(msg_id)
        if future is not None and not answered:
            future.add_done_callback(functools.partial(self._forget, msg_id))

    def _forget(self, msg_id: Any, future: Any) -> None:
        if self._request_futures.get(msg_id) is future:
            del self._request_futures[msg_id]


@dataclass
class DocumentState:
    """What the server holds for one document, by URI (`LiftServer.documents`); dropped in one piece when the editor
    closes the document (`LiftServer.forget`)."""

    check: DocumentCheck | None = None
    """The last published check: the text it ran on, its findings (the quick fixes are theirs) and its functions'
    example and contract statuses (shown on hover)."""
    in_flight: CheckInFlight | None = None
    """The latest check started, until it has published or given up."""
    used: int = 0
    """When the document was last used (a counter): background work takes the latest first."""
    warm_timer: asyncio.TimerHandle | None = None
    """The pending background analysis (see `schedule_warm`)."""


class LiftServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            name="lift-lsp",
            version=__version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=LiftProtocol,
            max_workers=1,  # pygls's pool only reads stdin (one line at a time); its threads would come and grow
        )
        self.options = Options()
        self.analyses = AnalysisCache()
        self.pending_messages: list[str] = []
        self.check_cache = CheckCache()
        self.documents: dict[str, DocumentState] = {}
        """Each document's state, by URI; its analysis is in `analyses` (bounded) and its pending jobs in the lanes."""
        self.check_wait_s = CHECK_WAIT_S
        self._backend: Backend | None = None
        self._backend_options: str | None = None
        self.backend_users: dict[asyncio.Task[Any], Backend] = {}
        """The backend each generation in flight uses: a replaced backend is closed once they are done."""
        self.progress_cancels: dict[str, Cancel] = {}
        """What stops each cancellable command in flight, by its progress token (`window/workDoneProgress/cancel`)."""
        self.told_untrusted = False
        """Whether the user was told that checks running code are off in an untrusted workspace (told once)."""
        self._uses = 0
        self.analysis_lane = Lane("lift-analysis", self.rank)
        """Each function's IR without jedi, ahead of the first hover: short jobs."""
        self.types_lane = Lane("lift-types", self.rank)
        """jedi's types where the IR needs them: long jobs, which never hold up the analysis lane."""
        self.check_lane = Lane("lift-check", self.rank)
        self.requests = RequestPool()
        self.tasks: set[asyncio.Task[Any]] = set()
        """The server's own background tasks (checks being published), kept until they finish."""

    def state(self, uri: str) -> DocumentState:
        """The document's state, made empty the first time."""
        return self.documents.setdefault(uri, DocumentState())

    def published(self, uri: str) -> DocumentCheck | None:
        """The document's last published check, if any."""
        state = self.documents.get(uri)
        return state.check if state is not None else None

    def forget(self, uri: str) -> None:
        """Drop everything held for the document: its state, its pending background jobs and its analysis."""
        state = self.documents.pop(uri, None)
        if state is not None and state.warm_timer is not None:
            state.warm_timer.cancel()
        for lane in (self.analysis_lane, self.types_lane, self.check_lane):
            lane.cancel(uri)
        self.analyses.drop(uri)

    def touch(self, uri: str) -> None:
        self._uses += 1
        self.state(uri).used = self._uses

    def rank(self, uri: str) -> int:
        state = self.documents.get(uri)
        return state.used if state is not None else 0

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def backend(self) -> Backend | None:
        """The configured backend, built once per settings; raises BackendError for unusable settings."""
        from lift_lsp.generate.backends.factory import make_backend

        key = self.options.backend.model_dump_json() + self.options.generation.model_dump_json()
        if self._backend is None or key != self._backend_options:
            self.retire_backend()
            self._backend = make_backend(self.options.backend, self.options.generation)
            self._backend_options = key
        return self._backend

    def retire_backend(self) -> None:
        """Close the current backend (its connections, its model) once the generations using it are done."""
        old, self._backend = self._backend, None
        if old is None:
            return
        users = [task for task, backend in self.backend_users.items() if backend is old]

        async def close() -> None:
            if users:
                await asyncio.wait(users)
            await old.aclose()

        self.spawn(close())

    def open_document(self, uri: str) -> TextDocument | None:
        """The editor's copy of an open document; None once it is closed (never read from disk instead)."""
        doc: TextDocument | None = self.workspace.text_documents.get(unquote(uri))
        return doc

    def analysis(self, uri: str) -> tuple[DocumentAnalysis, TextDocument] | None:
        doc = self.open_document(uri)
        if doc is None:
            return None
        path = to_fs_path(uri) if uri.startswith("file:") else None
        return self.analyses.get(uri, doc.version, doc.source, path), doc

    def apply_settings(self, raw: Any) -> None:
        self.options, problems = parse_options(raw)
        self.retire_backend()
        for problem in problems:
            self.show(f"lift-lsp: {problem}", types.MessageType.Warning)

    def workspace_roots(self) -> list[str]:
        folders = [to_fs_path(f.uri) for f in self.workspace.folders.values()]
        roots = [f for f in folders if f] or ([self.workspace.root_path] if self.workspace.root_path else [])
        return [r for r in roots if r]

    def trusted_diagnostics(self, path: str | None) -> DiagnosticsOptions:
        """The diagnostics settings for a file: no code of it runs (examples, module code, contract engines) unless
        its folder is trusted; that is said once."""
        options = self.options
        if not options.diagnostics.examples or options.sandbox.trusts(path):
            return options.diagnostics
        if not self.told_untrusted:
            self.told_untrusted = True
            self.show(UNTRUSTED_MESSAGE, types.MessageType.Warning)
        return options.diagnostics.model_copy(update={"examples": False})

    def check(self, text: str, path: str, diagnostics: DiagnosticsOptions) -> FileCheck:
        """One document's checks, its examples in the project's Python (runs in a worker thread)."""
        options = self.options
        interpreter = None
        if diagnostics.examples:
            interpreter = find_interpreter(
                path, options.python.interpreter, self.workspace_roots(), options.sandbox.mode
            )
        return check_document(
            text, path, diagnostics, options.sandbox, self.check_cache, interpreter, options.contracts
        )

    def show(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    async def close(self) -> None:
        """Stop the background work and close the backend (at `shutdown`)."""
        for state in self.documents.values():
            if state.warm_timer is not None:
                state.warm_timer.cancel()
                state.warm_timer = None
        self.analysis_lane.close()
        self.types_lane.close()
        self.check_lane.close()
        self.requests.close()
        backend, self._backend = self._backend, None
        if backend is not None:
            await backend.aclose()


def _guarded(handler: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R | None]]:
    """A handler that fails answers None and logs, instead of failing the request: bad input never takes the
    server down and every request gets an answer."""

    @functools.wraps(handler)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return await handler(*args, **kwargs)
        except Exception:
            log.exception("lift-lsp: %s failed", handler.__name__)
            return None

    return run


# The handlers. Notifications return at once: the work they start runs in the lanes and in tasks the server keeps.


def initialize(ls: LiftServer, params: types.InitializeParams) -> None:
    # pygls has just created the workspace; keep documents by the LSP's line rules instead (see documents.py)
    ls.protocol._workspace = LspWorkspace.like(ls.workspace)
    ls.options, ls.pending_messages = parse_options(params.initialization_options)


def initialized(ls: LiftServer, params: types.InitializedParams) -> None:
    for problem in ls.pending_messages:
        ls.show(f"lift-lsp: {problem}", types.MessageType.Warning)
    ls.pending_messages = []


def did_change_configuration(ls: LiftServer, params: types.DidChangeConfigurationParams) -> None:
    settings = params.settings
    if isinstance(settings, dict) and "lift" in settings:
        settings = settings["lift"]
    if settings is not None:
        ls.apply_settings(settings)


async def shutdown(ls: LiftServer, params: None) -> None:
    await ls.close()


def did_open(ls: LiftServer, params: types.DidOpenTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.touch(uri)
    schedule_warm(ls, uri, delay_s=0)
    if ls.options.diagnostics.on_open:
        start_check(ls, uri)


def did_save(ls: LiftServer, params: types.DidSaveTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.touch(uri)
    if ls.state(uri).warm_timer is not None:  # the user paused: analyse the latest version now
        schedule_warm(ls, uri, delay_s=0)
    if ls.options.diagnostics.on_save:
        start_check(ls, uri)


def did_close(ls: LiftServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.forget(uri)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


def did_change(ls: LiftServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.touch(params.text_document.uri)
    schedule_warm(ls, params.text_document.uri)


@_guarded
async def hover(ls: LiftServer, params: types.HoverParams) -> types.Hover | None:
    if not ls.options.hover.enabled:
        return None
    found = await function_at(ls, params.text_document.uri, params.position)
    known = found[0] if found is not None else None
    if found is None or known is None:
        return None
    to_client = client_converter(found[2])
    span = known.fir.site.name_span
    check = ls.published(params.text_document.uri)
    return types.Hover(
        contents=types.MarkupContent(
            kind=types.MarkupKind.Markdown, value=hover_markdown(check.report if check else None, known)
        ),
        range=types.Range(start=to_client(span.start_line, span.start_col), end=to_client(span.end_line, span.end_col)),
    )


CODE_ACTION_OPTIONS = types.CodeActionOptions(
    code_action_kinds=[types.CodeActionKind.RefactorRewrite, types.CodeActionKind.QuickFix], resolve_provider=False
)


@_guarded
async def code_action(ls: LiftServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
    if wants_quick_fixes(params.context.only):
        await wait_for_check(ls, params.text_document.uri)
    found = await function_at(ls, params.text_document.uri, params.range.start)
    if found is None:
        return None
    known, analysis, doc = found
    edit_capabilities = ls.client_capabilities.workspace and ls.client_capabilities.workspace.workspace_edit
    request = ActionRequest(
        analysis,
        known.fir if known is not None else None,
        client_converter(doc),
        problems=current_problems(ls, doc, params),
        only=params.context.only,
        versioned_edits=bool(edit_capabilities and edit_capabilities.document_changes),
    )
    return code_actions(request) or None


async def generate(ls: LiftServer, uri: str, function: str, version: int | None = None) -> dict[str, Any]:
    return await forward_command(ls, uri, function, fixing=False)


async def fix(ls: LiftServer, uri: str, function: str, version: int | None = None) -> dict[str, Any]:
    return await forward_command(ls, uri, function, fixing=True)


async def check_workspace(ls: LiftServer, *args: Any) -> dict[str, Any]:
    return await check_workspace_command(ls)


def cancel_progress(ls: LiftServer, params: types.WorkDoneProgressCancelParams) -> None:
    """The editor's progress UI cancels a command in flight (a generation, a fix, a workspace check)."""
    cancel = ls.progress_cancels.get(str(params.token))
    if cancel is not None:
        cancel()


@_guarded
async def show_ir(ls: LiftServer, uri: str, function: str | None = None) -> list[dict[str, Any]] | None:
    """The IR of one function (or of every function) of a document: `{function, line, ir, markdown}`."""
    found = ls.analysis(uri)
    if found is None:
        return None
    analysis = found[0]

    def analyse() -> list[Analysed]:
        sites = [s for s in analysis.sites if function is None or function in (s.qualname, s.name)]
        return [analysis.analysed(site) for site in sites]

    return [
        {
            "function": known.fir.function,
            "line": known.fir.line,
            "ir": known.fir.ir.model_dump(mode="json"),
            "markdown": known.markdown,
        }
        for known in await asyncio.to_thread(analyse)  # jedi: never in the requests' threads
    ]


def document_text(ls: LiftServer, uri: str) -> dict[str, Any] | None:
    """Test hook (not a user feature): the server's own copy of an open document, `{version, text}`, so that
    tests can check that incremental sync kept it equal to the client's. None for a document that is not open
    (never read from disk)."""
    doc = ls.open_document(uri)
    return None if doc is None else {"version": doc.version, "text": doc.source}


def create_server() -> LiftServer:
    """A server with every feature and command registered (a fresh one each call: the tests build variants)."""
    server = LiftServer()
    features: list[tuple[str, Any, Callable[..., Any]]] = [
        (types.INITIALIZE, None, initialize),
        (types.INITIALIZED, None, initialized),
        (types.WORKSPACE_DID_CHANGE_CONFIGURATION, None, did_change_configuration),
        (types.SHUTDOWN, None, shutdown),
        (types.TEXT_DOCUMENT_DID_OPEN, None, did_open),
        (types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False), did_save),
        (types.TEXT_DOCUMENT_DID_CLOSE, None, did_close),
        (types.TEXT_DOCUMENT_DID_CHANGE, None, did_change),
        (types.TEXT_DOCUMENT_HOVER, None, hover),
        (types.TEXT_DOCUMENT_CODE_ACTION, CODE_ACTION_OPTIONS, code_action),
        (types.WINDOW_WORK_DONE_PROGRESS_CANCEL, None, cancel_progress),
    ]
    for name, options, handler in features:
        server.feature(name, options)(handler)
    commands: list[tuple[str, Callable[..., Any]]] = [
        (GENERATE_COMMAND, generate),
        (FIX_COMMAND, fix),
        (SHOW_IR_COMMAND, show_ir),
        (CHECK_WORKSPACE_COMMAND, check_workspace),
        (DOCUMENT_TEXT_COMMAND, document_text),
    ]
    for name, command in commands:
        server.command(name)(command)
    return server


def serve(make_server: Callable[[], LiftServer] = create_server) -> int:
    """Serve over stdio (`make_server`: the server, for the tests' variants)."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    keep_large_blocks_apart()
    make_server().start_io()
    return 0
