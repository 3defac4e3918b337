"""`lift.generate` (a stub's body from its spec) and `lift.fix` (an implemented function that fails its spec): run
with progress the editor can cancel, applied only to the version of the document the run started from."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from lift_lsp.generate import forward
from lift_lsp.generate.backends.base import BackendError
from lift_lsp.lsp.documents import client_converter
from lift_lsp.lsp.progress import Progress
from lift_lsp.options import missing_backend_message

if TYPE_CHECKING:
    from lift_lsp.lsp.server import LiftServer

log = logging.getLogger("lift_lsp")


async def forward_command(ls: LiftServer, uri: str, function: str, fixing: bool) -> dict[str, Any]:
    """`run_generation`, whose unexpected failure is told to the user and answered, never raised."""
    try:
        return await run_generation(ls, uri, function, fixing)
    except asyncio.CancelledError:
        raise
    except Exception as err:
        log.exception("lift-lsp: %s failed", "fix" if fixing else "generation")
        ls.show(f"lift-lsp: {'fix' if fixing else 'generation'} failed: {err}", types.MessageType.Error)
        return {"ok": False, "message": str(err)}


async def run_generation(ls: LiftServer, uri: str, function: str, fixing: bool = False) -> dict[str, Any]:
    """`lift.generate` or, `fixing`, `lift.fix`, with progress; apply the edit only if the document is still the
    version the run started from. Every failure is told to the user; the document is never half-edited."""
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
    task = asyncio.current_task()
    cancelled_by_user = False

    def cancel() -> None:
        nonlocal cancelled_by_user
        if task is not None:
            cancelled_by_user = True
            task.cancel()

    title = f"{'Fixing' if fixing else 'Generating'} {site.qualname}"
    progress = await Progress.begin(ls, "fix" if fixing else "generate", title, ls.progress_cancels, cancel)
    if task is not None:
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
            progress=progress.report,
            timeout_s=ls.options.backend.timeout_s,
        )
    except asyncio.CancelledError:
        ls.show(f"lift-lsp: {what} of `{site.qualname}` cancelled; the document is unchanged")
        if not cancelled_by_user or task is None:
            raise  # `$/cancelRequest`: pygls answers the request
        task.uncancel()  # cancelled from the progress UI: the command still answers
        return {"ok": False, "message": "cancelled"}
    finally:
        if task is not None:
            ls.backend_users.pop(task, None)
        progress.end()
    if not outcome.ok:
        return fail(outcome.message)
    current = ls.open_document(uri)
    if current is None or current.version != start_version or current.source != text:
        return fail(
            f"the document changed during {'the fix' if fixing else 'generation'}; nothing was applied (run it again)",
            types.MessageType.Warning,
        )
    label = f"{'Fix' if fixing else 'Generate'} {site.qualname} from spec"
    result = await ls.workspace_apply_edit_async(_edit(uri, current, start_version, outcome, label))
    if not result.applied:
        return fail(f"the editor did not apply the edit: {result.failure_reason or 'no reason given'}")
    return {"ok": True, "message": outcome.message, "attempts": outcome.attempts}


def _edit(
    uri: str, doc: TextDocument, version: int | None, outcome: forward.Outcome, label: str
) -> types.ApplyWorkspaceEditParams:
    """The outcome's edits of `doc` (at `uri`, its `version`), in the client's position units."""
    to_client = client_converter(doc)
    edits: list[types.TextEdit | types.AnnotatedTextEdit | types.SnippetTextEdit] = [
        types.TextEdit(
            range=types.Range(start=to_client(e.start_line, e.start_col), end=to_client(e.end_line, e.end_col)),
            new_text=e.text,
        )
        for e in outcome.edits
    ]
    return types.ApplyWorkspaceEditParams(
        label=label,
        edit=types.WorkspaceEdit(
            document_changes=[
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
                    edits=edits,
                )
            ]
        ),
    )
