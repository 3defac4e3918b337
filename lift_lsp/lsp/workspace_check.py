"""`lift.checkWorkspace`: every Python file of the workspace folders checked, each file's diagnostics published, with
progress the editor can cancel."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from lift_lsp.check.file_cache import CheckSetup, FileCache, default_check_cache_dir
from lift_lsp.check.workspace import Checked, check_paths
from lift_lsp.lsp.findings import DocumentCheck, diagnostic
from lift_lsp.lsp.progress import Progress

if TYPE_CHECKING:
    from lift_lsp.lsp.server import LiftServer

log = logging.getLogger("lift_lsp")
CANCELLED_MESSAGE = "cancelled"


async def check_workspace_command(ls: LiftServer) -> dict[str, Any]:
    """`check_workspace`, whose unexpected failure is told to the user and answered, never raised."""
    try:
        return await check_workspace(ls)
    except Exception as err:
        log.exception("lift-lsp: checking the workspace failed")
        ls.show(f"lift-lsp: checking the workspace failed: {err}", types.MessageType.Error)
        return {"files": 0, "findings": 0, "errors": 0, "message": str(err)}


async def check_workspace(ls: LiftServer) -> dict[str, Any]:
    """Check every Python file of the workspace folders (open documents as the editor has them), publish each file's
    diagnostics, report `$/progress`, and answer the totals. Cancelled from the progress (or by `$/cancelRequest`),
    no further file starts; the files checked by then are published and counted, and the answer says `cancelled`."""
    roots = ls.workspace_roots()
    if not roots:
        ls.show("lift-lsp: no workspace folder to check", types.MessageType.Warning)
        return {"files": 0, "findings": 0, "errors": 0}
    open_texts = {to_fs_path(uri) or uri: doc.source for uri, doc in ls.workspace.text_documents.items()}
    stop = threading.Event()
    progress = await Progress.begin(ls, "check", "Checking the workspace", ls.progress_cancels, stop.set, 0)
    loop = asyncio.get_running_loop()

    def report(done: int, total: int, file: str) -> None:
        loop.call_soon_threadsafe(progress.report, f"{done}/{total} {file}", done * 100 // total)

    options = ls.options
    work = functools.partial(
        check_paths,
        roots,
        python=options.python.interpreter,
        workspace_roots=roots,
        setup=CheckSetup(
            diagnostics=min((ls.trusted_diagnostics(root) for root in roots), key=lambda d: d.examples),
            sandbox=options.sandbox,
            contracts=options.contracts,
        ),
        cache=ls.check_cache,
        store=FileCache(default_check_cache_dir()),
        open_texts=open_texts,
        jobs=options.sandbox.workers,
        progress=report,
        stop=stop,
    )
    try:
        checked = await asyncio.to_thread(work)
    except asyncio.CancelledError:
        stop.set()  # `$/cancelRequest`: the thread starts no further file
        raise
    finally:
        progress.end(CANCELLED_MESSAGE if stop.is_set() else None)
    totals = await publish(ls, checked, open_texts)
    if stop.is_set():
        ls.show(f"lift-lsp: workspace check cancelled; {totals['files']} file(s) checked")
        return totals | {"cancelled": True, "message": CANCELLED_MESSAGE}
    return totals


async def publish(ls: LiftServer, checked: list[Checked], open_texts: dict[str, str]) -> dict[str, Any]:
    """Publish each checked file's diagnostics (and keep them for its hovers and quick fixes); the totals. Requests
    are answered between two files: a large tree's files are not published in one go on the event loop."""
    findings = errors = 0
    for item in checked:
        if item.report is None:
            continue
        uri = Path(item.file).absolute().as_uri()
        checked_text = open_texts[item.file] if item.file in open_texts else _read(item.file)
        doc = ls.open_document(uri) or TextDocument(uri, source=checked_text)
        ls.state(uri).check = DocumentCheck(checked_text, item.report)
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[diagnostic(f, doc) for f in item.report.findings])
        )
        findings += len(item.report.findings)
        errors += sum(f.severity == "error" for f in item.report.findings)
        await asyncio.sleep(0)
    return {"files": len(checked), "findings": findings, "errors": errors}


def _read(path: str) -> str:
    try:
        return Path(path).read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return ""
