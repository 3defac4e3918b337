"""The language server: registers features and delegates to plain functions. No logic of its own beyond wiring,
caching by document version, and keeping bad input from ever taking it down."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import unquote

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from lift_lsp import __version__
from lift_lsp.check.checks import CheckCache, FileCheck, Finding, check_document
from lift_lsp.check.project import find_interpreter
from lift_lsp.check.workspace import check_paths
from lift_lsp.generate import forward
from lift_lsp.generate.backends.base import Backend, BackendError
from lift_lsp.lsp.actions import FIX_COMMAND, GENERATE_COMMAND, SHOW_IR_COMMAND, ActionRequest, code_actions
from lift_lsp.lsp.analysis import AnalysisCache, DocumentAnalysis
from lift_lsp.lsp.documents import LspWorkspace, server_position
from lift_lsp.options import DiagnosticsOptions, Options, missing_backend_message, parse_options
from lift_lsp.spec.render import to_markdown

log = logging.getLogger("lift_lsp")
DOCUMENT_TEXT_COMMAND = "lift.documentText"
"""A hidden test hook: returns the server's copy of an open document (see `document_text`)."""
CHECK_WORKSPACE_COMMAND = "lift.checkWorkspace"
UNTRUSTED_MESSAGE = (
    "lift-lsp: this workspace is not trusted, so the checks that run its code (docstring examples and the module's "
    "own code) are off; hover and the static checks work. To turn them on: trust the workspace (VS Code: Workspace "
    "Trust), or add its folder to the setting `sandbox.trustedFolders`, or set `sandbox.trustAll`."
)
R = TypeVar("R")
P = ParamSpec("P")


class LiftServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            name="lift-lsp", version=__version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental
        )
        self.options = Options()
        self.analyses = AnalysisCache()
        self.pending_messages: list[str] = []
        self.check_cache = CheckCache()
        self.checked_versions: dict[str, int | None] = {}
        """The version of each document whose checks were published last (quick fixes read their data)."""
        self.reports: dict[str, FileCheck] = {}
        """Each open document's last check, by URI: its functions' example and contract statuses (shown on hover)."""
        self._backend: Backend | None = None
        self._backend_options: str | None = None
        self.generations: dict[str, asyncio.Task[Any]] = {}
        """Generations in flight, by progress token (for `window/workDoneProgress/cancel`)."""
        self.cancelled_by_user: set[str] = set()
        self.told_untrusted = False
        """Whether the user was told that checks running code are off in an untrusted workspace (told once)."""
        self.warmers: dict[str, tuple[asyncio.Task[None], threading.Event]] = {}
        """Background analysis of each open document's latest version, by URI (see `schedule_warm`)."""

    def backend(self) -> Backend | None:
        """The configured backend, built once per settings; raises BackendError for unusable settings."""
        from lift_lsp.generate.backends.factory import make_backend

        key = self.options.backend.model_dump_json() + self.options.generation.model_dump_json()
        if self._backend is None or key != self._backend_options:
            self._backend = make_backend(self.options.backend, self.options.generation)
            self._backend_options = key
        return self._backend

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
        self._backend = None
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


_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
}


def _diagnostic(finding: Finding, doc: TextDocument) -> types.Diagnostic:
    lines = doc.lines
    row = min(max(finding.line - 1, 0), max(len(lines) - 1, 0))
    text = lines[row].rstrip("\r\n") if lines else ""
    start = len(text) - len(text.lstrip())
    to_client = _client_converter(doc)
    return types.Diagnostic(
        range=types.Range(start=to_client(row, start), end=to_client(row, len(text))),
        message=finding.message,
        severity=_SEVERITY[finding.severity],
        code=finding.code,
        source="lift",
        data=finding.data,
    )


async def publish_checks(ls: LiftServer, uri: str) -> None:
    """Run the checks of a document off the event loop and publish them (the server keeps answering meanwhile)."""
    doc = ls.open_document(uri)
    if doc is None:
        return
    text, version = doc.source, doc.version
    path = to_fs_path(uri) if uri.startswith("file:") else None
    report = await asyncio.to_thread(ls.check, text, path or uri, ls.trusted_diagnostics(path))
    current = ls.open_document(uri)
    if current is None or (current.version != version and current.source != text):
        return  # closed, or the document moved on: the next save publishes fresh results
    ls.reports[uri] = report
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(
            uri=uri, version=version, diagnostics=[_diagnostic(f, current) for f in report.findings]
        )
    )
    ls.checked_versions[uri] = current.version


async def check_workspace(ls: LiftServer) -> dict[str, Any]:
    """`lift.checkWorkspace`: check every Python file of the workspace folders (open documents as the editor has
    them), publish each file's diagnostics, report `$/progress`, and answer the totals."""
    roots = ls.workspace_roots()
    if not roots:
        ls.show("lift-lsp: no workspace folder to check", types.MessageType.Warning)
        return {"files": 0, "findings": 0, "errors": 0}
    open_texts = {to_fs_path(uri) or uri: doc.source for uri, doc in ls.workspace.text_documents.items()}
    token = f"lift-check-{uuid.uuid4()}"
    progress = ls.work_done_progress
    try:
        await asyncio.wait_for(progress.create_async(token), timeout=5)
        progress.begin(token, types.WorkDoneProgressBegin(title="Checking the workspace", percentage=0))
        has_progress = True
    except Exception:  # the client does not do progress: carry on without it
        has_progress = False
    loop = asyncio.get_running_loop()

    def report(done: int, total: int, file: str) -> None:
        if has_progress:
            message = types.WorkDoneProgressReport(message=f"{done}/{total} {file}", percentage=done * 100 // total)
            loop.call_soon_threadsafe(progress.report, token, message)

    options = ls.options
    try:
        checked = await asyncio.to_thread(
            check_paths,
            roots,
            python=options.python.interpreter,
            workspace_roots=roots,
            diagnostics=min((ls.trusted_diagnostics(root) for root in roots), key=lambda d: d.examples),
            sandbox=options.sandbox,
            contracts=options.contracts,
            cache=ls.check_cache,
            open_texts=open_texts,
            jobs=options.sandbox.workers,
            progress=report,
        )
    finally:
        if has_progress:
            progress.end(token, types.WorkDoneProgressEnd())
    findings = errors = 0
    for item in checked:
        if item.report is None:
            continue
        uri = Path(item.file).absolute().as_uri()
        doc = ls.open_document(uri) or TextDocument(uri, source=open_texts.get(item.file) or _read(item.file))
        ls.reports[uri] = item.report
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[_diagnostic(f, doc) for f in item.report.findings])
        )
        findings += len(item.report.findings)
        errors += sum(f.severity == "error" for f in item.report.findings)
    return {"files": len(checked), "findings": findings, "errors": errors}


def _read(path: str) -> str:
    try:
        return Path(path).read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _escape(text: str) -> str:
    """Plain text inside Markdown emphasis."""
    return "".join(f"\\{c}" if c in "\\`*_[]<>#|" else c for c in text)


def _guarded(handler: Callable[P, R]) -> Callable[P, R | None]:
    """A handler that fails answers None and logs, instead of failing the request: bad input never takes the
    server down and every request gets an answer."""

    @functools.wraps(handler)
    def run(*args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return handler(*args, **kwargs)
        except Exception:
            log.exception("lift-lsp: %s failed", handler.__name__)
            return None

    return run


def _to_server(doc: TextDocument, position: types.Position) -> tuple[int, int] | None:
    lines = doc.lines
    if position.line < 0 or position.line >= max(len(lines), 1):
        return None
    return server_position(lines, position, doc.position_codec.encoding)


def _client_converter(doc: TextDocument) -> Callable[[int, int], types.Position]:
    lines = doc.lines
    codec = doc.position_codec

    def convert(line: int, col: int) -> types.Position:
        if 0 <= line < len(lines):
            return codec.position_to_client_units(lines, types.Position(line=line, character=col))
        return types.Position(line=line, character=col)

    return convert


WARM_DELAY_S = 0.3
"""Quiet time after a change before the document is analysed in the background."""


def stop_warm(ls: LiftServer, uri: str) -> None:
    running = ls.warmers.pop(uri, None)
    if running is not None:
        task, stop = running
        stop.set()
        task.cancel()


def schedule_warm(ls: LiftServer, uri: str) -> None:
    """Analyse every function of the document's latest version in a worker thread, once the user pauses typing,
    so that hovers answer from the cache. A newer change stops the run between two functions."""
    stop_warm(ls, uri)
    if not ls.options.hover.enabled:
        return
    stop = threading.Event()

    async def warm() -> None:
        await asyncio.sleep(WARM_DELAY_S)
        found = ls.analysis(uri)
        if found is None:
            return
        try:
            await asyncio.to_thread(found[0].warm, lambda: not stop.is_set())
        except Exception:
            log.exception("lift-lsp: analysing %s failed", uri)

    ls.warmers[uri] = (asyncio.ensure_future(warm()), stop)


async def _checked(ls: LiftServer, uri: str) -> None:
    try:
        await publish_checks(ls, uri)
    except Exception as err:
        log.exception("lift-lsp: checking %s failed", uri)
        ls.show(f"lift-lsp: checking the file failed: {err}", types.MessageType.Error)


async def run_generation(ls: LiftServer, uri: str, function: str, fixing: bool = False) -> dict[str, Any]:
    """`lift.generate` (a stub's body from its spec) or, `fixing`, `lift.fix` (an implemented function that fails its
    spec), with progress; apply the edit only if the document is still the version the run started from. Every
    failure is told to the user; the document is never half-edited."""
    what = "fix" if fixing else "generation"

    def fail(message: str, kind: types.MessageType = types.MessageType.Error) -> dict[str, Any]:
        ls.show(f"lift-lsp: {message}", kind)
        return {"ok": False, "message": message}

    found = ls.analysis(uri)
    if found is None:
        return fail("the document is not open in the editor")
    analysis, doc = found
    site = analysis.find(function)
    if site is None:
        return fail(f"no function `{function}` in this document")
    try:
        backend = ls.backend()
    except BackendError as err:
        return fail(f"cannot generate: {err.message}")
    if backend is None:
        return fail(f"cannot generate: {missing_backend_message(ls.options.backend)}")
    start_version, text = doc.version, doc.source
    token = f"lift-{'fix' if fixing else 'generate'}-{uuid.uuid4()}"
    progress = ls.work_done_progress
    title = f"{'Fixing' if fixing else 'Generating'} {site.qualname}"
    try:
        await asyncio.wait_for(progress.create_async(token), timeout=5)
        progress.begin(token, types.WorkDoneProgressBegin(title=title, cancellable=True))
        has_progress = True
    except Exception:  # the client does not do progress: carry on without it
        has_progress = False

    def report(message: str, percentage: int) -> None:
        if has_progress:
            progress.report(token, types.WorkDoneProgressReport(message=message, percentage=percentage))

    task = asyncio.current_task()
    if task is not None:
        ls.generations[token] = task
    try:
        outcome = await (forward.fix if fixing else forward.generate)(
            text,
            site,
            backend,
            ls.options.generation,
            ls.options.sandbox,
            context=analysis.type_context(site),
            file=to_fs_path(uri) or uri,
            progress=report,
            timeout_s=ls.options.backend.timeout_s,
        )
    except asyncio.CancelledError:
        ls.show(f"lift-lsp: {what} of `{site.qualname}` cancelled; the document is unchanged")
        if token not in ls.cancelled_by_user or task is None:
            raise  # `$/cancelRequest`: pygls answers the request
        task.uncancel()  # cancelled from the progress UI: the command still answers
        return {"ok": False, "message": "cancelled"}
    finally:
        ls.generations.pop(token, None)
        ls.cancelled_by_user.discard(token)
        if has_progress:
            progress.end(token, types.WorkDoneProgressEnd())
    if not outcome.ok:
        return fail(outcome.message)
    current = ls.open_document(uri)
    if current is None or current.version != start_version or current.source != text:
        return fail(
            f"the document changed during {'the fix' if fixing else 'generation'}; nothing was applied (run it again)",
            types.MessageType.Warning,
        )
    to_client = _client_converter(current)
    edits: list[types.TextEdit | types.AnnotatedTextEdit | types.SnippetTextEdit] = [
        types.TextEdit(
            range=types.Range(start=to_client(e.start_line, e.start_col), end=to_client(e.end_line, e.end_col)),
            new_text=e.text,
        )
        for e in outcome.edits
    ]
    result = await ls.workspace_apply_edit_async(
        types.ApplyWorkspaceEditParams(
            label=f"{'Fix' if fixing else 'Generate'} {site.qualname} from spec",
            edit=types.WorkspaceEdit(
                document_changes=[
                    types.TextDocumentEdit(
                        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=start_version),
                        edits=edits,
                    )
                ]
            ),
        )
    )
    if not result.applied:
        return fail(f"the editor did not apply the edit: {result.failure_reason or 'no reason given'}")
    return {"ok": True, "message": outcome.message, "attempts": outcome.attempts}


def create_server() -> LiftServer:
    server = LiftServer()

    @server.feature(types.INITIALIZE)
    def initialize(ls: LiftServer, params: types.InitializeParams) -> None:
        # pygls has just created the workspace; keep documents by the LSP's line rules instead (see documents.py)
        ls.protocol._workspace = LspWorkspace.like(ls.workspace)
        ls.options, ls.pending_messages = parse_options(params.initialization_options)

    @server.feature(types.INITIALIZED)
    def initialized(ls: LiftServer, params: types.InitializedParams) -> None:
        for problem in ls.pending_messages:
            ls.show(f"lift-lsp: {problem}", types.MessageType.Warning)
        ls.pending_messages = []

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    @_guarded
    def did_change_configuration(ls: LiftServer, params: types.DidChangeConfigurationParams) -> None:
        settings = params.settings
        if isinstance(settings, dict) and "lift" in settings:
            settings = settings["lift"]
        if settings is not None:
            ls.apply_settings(settings)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: LiftServer, params: types.DidOpenTextDocumentParams) -> None:
        schedule_warm(ls, params.text_document.uri)
        if ls.options.diagnostics.on_open:
            await _checked(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    async def did_save(ls: LiftServer, params: types.DidSaveTextDocumentParams) -> None:
        if ls.options.diagnostics.on_save:
            await _checked(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LiftServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        stop_warm(ls, uri)
        ls.analyses.drop(uri)
        ls.checked_versions.pop(uri, None)
        ls.reports.pop(uri, None)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LiftServer, params: types.DidChangeTextDocumentParams) -> None:
        schedule_warm(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    @_guarded
    def hover(ls: LiftServer, params: types.HoverParams) -> types.Hover | None:
        if not ls.options.hover.enabled:
            return None
        found = ls.analysis(params.text_document.uri)
        if found is None:
            return None
        analysis, doc = found
        position = _to_server(doc, params.position)
        if position is None:
            return None
        site = analysis.site_at(*position)
        if site is None:
            return None
        fir = analysis.function_ir(site)
        report = ls.reports.get(params.text_document.uri)
        checked = report.contracts.get(site.qualname) if report is not None else None
        notes = {c.expr: c.detail for c in checked.conditions} if checked is not None else None
        to_client = _client_converter(doc)
        span = site.name_span
        markdown = to_markdown(fir.ir, notes)
        status = report.status_line(site.qualname) if report is not None else None
        if status is not None:
            markdown += f"\n\n---\n*{_escape(status)}*"
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=markdown),
            range=types.Range(
                start=to_client(span.start_line, span.start_col), end=to_client(span.end_line, span.end_col)
            ),
        )

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[types.CodeActionKind.RefactorRewrite, types.CodeActionKind.QuickFix],
            resolve_provider=False,
        ),
    )
    @_guarded
    def code_action(ls: LiftServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        found = ls.analysis(params.text_document.uri)
        if found is None:
            return None
        analysis, doc = found
        position = _to_server(doc, params.range.start)
        if position is None:
            return None
        edit_capabilities = ls.client_capabilities.workspace and ls.client_capabilities.workspace.workspace_edit
        request = ActionRequest(
            analysis,
            *position,
            _client_converter(doc),
            diagnostics=params.context.diagnostics,
            only=params.context.only,
            diagnostics_current=ls.checked_versions.get(params.text_document.uri) == doc.version,
            versioned_edits=bool(edit_capabilities and edit_capabilities.document_changes),
        )
        return code_actions(request) or None

    async def forward_command(ls: LiftServer, uri: str, function: str, fixing: bool) -> dict[str, Any]:
        try:
            return await run_generation(ls, uri, function, fixing)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.exception("lift-lsp: %s failed", "fix" if fixing else "generation")
            ls.show(f"lift-lsp: {'fix' if fixing else 'generation'} failed: {err}", types.MessageType.Error)
            return {"ok": False, "message": str(err)}

    @server.command(GENERATE_COMMAND)
    async def generate(ls: LiftServer, uri: str, function: str, version: int | None = None) -> dict[str, Any]:
        return await forward_command(ls, uri, function, fixing=False)

    @server.command(FIX_COMMAND)
    async def fix(ls: LiftServer, uri: str, function: str, version: int | None = None) -> dict[str, Any]:
        return await forward_command(ls, uri, function, fixing=True)

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def cancel_generation(ls: LiftServer, params: types.WorkDoneProgressCancelParams) -> None:
        token = str(params.token)
        task = ls.generations.get(token)
        if task is not None:
            ls.cancelled_by_user.add(token)
            task.cancel()

    @server.command(SHOW_IR_COMMAND)
    @_guarded
    def show_ir(ls: LiftServer, uri: str, function: str | None = None) -> list[dict[str, Any]] | None:
        """The IR of one function (or of every function) of a document: `{function, line, ir, markdown}`."""
        found = ls.analysis(uri)
        if found is None:
            return None
        analysis = found[0]
        sites = analysis.sites if function is None else [s for s in analysis.sites if function in (s.qualname, s.name)]
        return [
            {
                "function": fir.function,
                "line": fir.line,
                "ir": fir.ir.model_dump(mode="json"),
                "markdown": to_markdown(fir.ir),
            }
            for fir in (analysis.function_ir(site) for site in sites)
        ]

    @server.command(CHECK_WORKSPACE_COMMAND)
    async def check_workspace_command(ls: LiftServer, *args: Any) -> dict[str, Any]:
        try:
            return await check_workspace(ls)
        except Exception as err:
            log.exception("lift-lsp: checking the workspace failed")
            ls.show(f"lift-lsp: checking the workspace failed: {err}", types.MessageType.Error)
            return {"files": 0, "findings": 0, "errors": 0, "message": str(err)}

    @server.command(DOCUMENT_TEXT_COMMAND)
    def document_text(ls: LiftServer, uri: str) -> dict[str, Any] | None:
        """Test hook (not a user feature): the server's own copy of an open document, `{version, text}`, so that
        tests can check that incremental sync kept it equal to the client's. None for a document that is not open
        (never read from disk)."""
        doc = ls.open_document(uri)
        return None if doc is None else {"version": doc.version, "text": doc.source}

    return server


def serve() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    create_server().start_io()
    return 0
