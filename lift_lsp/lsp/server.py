"""The language server: registers features and delegates to plain functions. No logic of its own beyond wiring,
caching by document version, scheduling, and keeping bad input from ever taking it down.

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
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import unquote

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from lift_lsp import __version__
from lift_lsp.check.checks import CheckCache, FileCheck, check_document
from lift_lsp.check.file_cache import FileCache, default_check_cache_dir
from lift_lsp.check.findings import Finding
from lift_lsp.check.project import find_interpreter
from lift_lsp.check.workspace import check_paths
from lift_lsp.generate import forward
from lift_lsp.generate.backends.base import Backend, BackendError
from lift_lsp.lsp.actions import (
    FIX_COMMAND,
    GENERATE_COMMAND,
    SHOW_IR_COMMAND,
    ActionRequest,
    Problem,
    code_actions,
    problems_at,
    wants_quick_fixes,
)
from lift_lsp.lsp.analysis import Analysed, AnalysisCache, DocumentAnalysis
from lift_lsp.lsp.documents import LspWorkspace, server_position
from lift_lsp.lsp.findings import DocumentCheck, findings_for_text
from lift_lsp.lsp.memory import keep_large_blocks_apart
from lift_lsp.lsp.scheduler import Lane, RequestPool, Superseded
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
class CheckInFlight:
    """A check started for one version of a document: `done` is set once it has published, or given up."""

    text: str
    version: int | None
    done: asyncio.Event = field(default_factory=asyncio.Event)


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
        self.generations: dict[str, asyncio.Task[Any]] = {}
        """Generations in flight, by progress token (for `window/workDoneProgress/cancel`)."""
        self.cancelled_by_user: set[str] = set()
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


def start_check(ls: LiftServer, uri: str) -> None:
    """Check the document's current text in the background and publish the findings (`publish_checks`); code actions
    on that text wait for it meanwhile (`wait_for_check`)."""
    doc = ls.open_document(uri)
    if doc is None:
        return
    check = CheckInFlight(doc.source, doc.version)
    ls.state(uri).in_flight = check
    ls.spawn(_publish_then_done(ls, uri, check))


async def _publish_then_done(ls: LiftServer, uri: str, check: CheckInFlight) -> None:
    try:
        await publish_checks(ls, uri, check.text, check.version)
    finally:
        check.done.set()
        state = ls.documents.get(uri)  # None once the document is closed; a reopened one has its own check
        if state is not None and state.in_flight is check:
            state.in_flight = None


async def wait_for_check(ls: LiftServer, uri: str) -> None:
    """Return once the server has findings for the document's current text, or no check of that text is under way,
    or after `ls.check_wait_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ls.check_wait_s
    while (check := _check_to_wait_for(ls, uri)) is not None:
        try:
            await asyncio.wait_for(check.done.wait(), deadline - loop.time())
        except TimeoutError:
            log.warning(
                "lift-lsp: the check of %s took over %.0f s: code actions answered without it", uri, ls.check_wait_s
            )
            return


def _check_to_wait_for(ls: LiftServer, uri: str) -> CheckInFlight | None:
    """The check under way of the document's current text, while the server has no findings for that text."""
    doc = ls.open_document(uri)
    state = ls.documents.get(uri)
    check = state.in_flight if state is not None else None
    if doc is None or state is None or check is None or check.text != doc.source:
        return None
    published = state.check
    return None if published is not None and published.text == doc.source else check


def current_problems(ls: LiftServer, doc: TextDocument, params: types.CodeActionParams) -> list[Problem]:
    """The problems a code action request on `doc` is for: the server's own findings that hold for the document's
    current text, and the diagnostics the client sent (see `problems_at`)."""
    check = ls.published(params.text_document.uri)
    findings = findings_for_text(check, doc.source) if check is not None else []
    own = [_diagnostic(finding, doc) for finding in findings]
    return problems_at(own, params.context.diagnostics, params.range)


async def publish_checks(ls: LiftServer, uri: str, text: str, version: int | None) -> None:
    """Check one version of a document in the check lane and publish the findings. A check that fails is run once
    more (unless a newer check of the document waits already: that one publishes); when that fails too the error is
    shown and the diagnostics published last stay."""
    path = to_fs_path(uri) if uri.startswith("file:") else None
    work = functools.partial(ls.check, text, path or uri, ls.trusted_diagnostics(path))
    for attempt in (1, 2):
        try:
            report = await ls.check_lane.submit(uri, work)
            break
        except Superseded:
            return  # a newer check of the document replaced this one before it ran
        except Exception as err:
            if ls.check_lane.has_pending(uri):
                return  # a newer check of the document waits already: it publishes
            if attempt == 1:
                log.warning("lift-lsp: checking %s failed; trying once more", uri, exc_info=True)
                continue
            log.exception("lift-lsp: checking %s failed", uri)
            ls.show(
                f"lift-lsp: checking the file failed (the diagnostics shown are from the last check): {err}",
                types.MessageType.Error,
            )
            return
    current = ls.open_document(uri)
    if current is None or (current.version != version and current.source != text):
        return  # closed, or the document moved on: the next save publishes fresh results
    ls.state(uri).check = DocumentCheck(text, report)
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(
            uri=uri, version=version, diagnostics=[_diagnostic(f, current) for f in report.findings]
        )
    )


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
            store=FileCache(default_check_cache_dir()),
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
        checked_text = open_texts[item.file] if item.file in open_texts else _read(item.file)
        doc = ls.open_document(uri) or TextDocument(uri, source=checked_text)
        ls.state(uri).check = DocumentCheck(checked_text, item.report)
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


def _hover_markdown(report: FileCheck | None, known: Analysed) -> str:
    """The function's IR as rendered, with what the document's last check found: each postcondition's status, and
    the function's status in one line."""
    if report is None:
        return known.markdown
    qualname = known.fir.site.qualname
    checked = report.contracts.get(qualname)
    notes = {c.expr: c.detail for c in checked.conditions} if checked is not None else None
    markdown = known.markdown if notes is None else to_markdown(known.fir.ir, notes)
    status = report.status_line(qualname)
    return markdown if status is None else f"{markdown}\n\n---\n*{_escape(status)}*"


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


async def function_at(
    ls: LiftServer, uri: str, position: types.Position
) -> tuple[Analysed | None, DocumentAnalysis, TextDocument] | None:
    """The function at a position (None where there is none), as far as it is analysed: from what is ready when it
    is (no waiting), else computed for that one function in a request thread, without waiting for jedi; None for a
    document that is not open."""
    found = ls.analysis(uri)
    if found is None:
        return None
    analysis, doc = found
    ls.touch(uri)
    if not analysis.sites_ready:
        await ls.requests.run(lambda: analysis.sites)
    at = _to_server(doc, position)
    site = analysis.site_at(*at) if at is not None else None
    if site is None:
        return None, analysis, doc
    known = analysis.ready(site)
    if known is None:
        known = await ls.requests.run(functools.partial(analysis.quick, site))
    return known, analysis, doc


WARM_DELAY_S = 0.3
"""Quiet time after a change before the document is analysed in the background."""


def stop_warm(ls: LiftServer, uri: str) -> None:
    state = ls.documents.get(uri)
    if state is not None and state.warm_timer is not None:
        state.warm_timer.cancel()
        state.warm_timer = None
    ls.analysis_lane.cancel(uri)
    ls.types_lane.cancel(uri)


def schedule_warm(ls: LiftServer, uri: str, delay_s: float = WARM_DELAY_S) -> None:
    """Analyse every function of the document's latest version in the analysis lane, once the user pauses typing
    (at once when the document is opened or saved), so that hovers answer from what is ready. A newer version
    stops the run between two functions."""
    stop_warm(ls, uri)
    if ls.options.hover.enabled:
        ls.state(uri).warm_timer = asyncio.get_running_loop().call_later(delay_s, _warm, ls, uri)


def _warm(ls: LiftServer, uri: str) -> None:
    state = ls.documents.get(uri)
    if state is not None:
        state.warm_timer = None
    found = ls.analysis(uri)
    if found is None:
        return
    analysis = found[0]

    def wanted() -> bool:
        return ls.analyses.is_current(analysis)

    def prepared(future: asyncio.Future[bool]) -> None:
        if _succeeded(future) and future.result():
            ls.types_lane.submit(uri, lambda: analysis.complete_types(wanted)).add_done_callback(_succeeded)

    ls.analysis_lane.submit(uri, lambda: analysis.prepare(wanted)).add_done_callback(prepared)


def _succeeded(future: asyncio.Future[Any]) -> bool:
    """Whether a background analysis went well; logs it when it failed (a superseded one did not)."""
    error = None if future.cancelled() else future.exception()
    if error is not None and not isinstance(error, Superseded):
        log.error("lift-lsp: analysing a document failed", exc_info=error)
    return not future.cancelled() and error is None


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
    site = await ls.requests.run(lambda: analysis.find(function))
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
        ls.backend_users[task] = backend
    try:
        context = await asyncio.to_thread(analysis.type_context, site)  # jedi: never in the requests' threads
        outcome = await (forward.fix if fixing else forward.generate)(
            text,
            site,
            backend,
            ls.options.generation,
            ls.options.sandbox,
            context=context,
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
        if task is not None:
            ls.backend_users.pop(task, None)
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


def create_server() -> LiftServer:  # noqa: C901 (the handlers are closures in here, counted as one function)
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
    def did_change_configuration(ls: LiftServer, params: types.DidChangeConfigurationParams) -> None:
        settings = params.settings
        if isinstance(settings, dict) and "lift" in settings:
            settings = settings["lift"]
        if settings is not None:
            ls.apply_settings(settings)

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: LiftServer, params: None) -> None:
        await ls.close()

    # Notifications return at once: the work they start runs in the lanes and in tasks the server keeps.
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: LiftServer, params: types.DidOpenTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.touch(uri)
        schedule_warm(ls, uri, delay_s=0)
        if ls.options.diagnostics.on_open:
            start_check(ls, uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    def did_save(ls: LiftServer, params: types.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.touch(uri)
        if ls.state(uri).warm_timer is not None:  # the user paused: analyse the latest version now
            schedule_warm(ls, uri, delay_s=0)
        if ls.options.diagnostics.on_save:
            start_check(ls, uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LiftServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.forget(uri)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LiftServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.touch(params.text_document.uri)
        schedule_warm(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    @_guarded
    async def hover(ls: LiftServer, params: types.HoverParams) -> types.Hover | None:
        if not ls.options.hover.enabled:
            return None
        found = await function_at(ls, params.text_document.uri, params.position)
        known = found[0] if found is not None else None
        if found is None or known is None:
            return None
        doc = found[2]
        to_client = _client_converter(doc)
        span = known.fir.site.name_span
        check = ls.published(params.text_document.uri)
        return types.Hover(
            contents=types.MarkupContent(
                kind=types.MarkupKind.Markdown, value=_hover_markdown(check.report if check else None, known)
            ),
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
            _client_converter(doc),
            problems=current_problems(ls, doc, params),
            only=params.context.only,
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


def serve(make_server: Callable[[], LiftServer] = create_server) -> int:
    """Serve over stdio (`make_server`: the server, for the tests' variants)."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    keep_large_blocks_apart()
    make_server().start_io()
    return 0
