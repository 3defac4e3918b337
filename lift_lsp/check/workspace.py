"""Checking a whole project: every Python file under the folders given, several files at once, with progress."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from lift_lsp.check.checks import CheckCache, FileCheck, check_document
from lift_lsp.check.file_cache import CheckSetup, FileCache, entry_key, interpreter_identity
from lift_lsp.check.imports import ProjectSources
from lift_lsp.check.project import Interpreter, find_interpreter, python_files
from lift_lsp.check.sandbox import WorkerPool

Progress = Callable[[int, int, str], None]
"""(files done, files in all, the file just done)."""


@dataclass(frozen=True)
class Checked:
    file: str
    report: FileCheck | None
    error: str = ""
    """Why the file could not be read (then `report` is None)."""
    cached: bool = False
    """The report came from the on-disk cache (nothing ran)."""


def check_paths(
    paths: Sequence[str],
    *,
    python: str = "",
    workspace_roots: Sequence[str] = (),
    setup: CheckSetup | None = None,
    cache: CheckCache | None = None,
    open_texts: Mapping[str, str] | None = None,
    jobs: int = 2,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    store: FileCache | None = None,
) -> list[Checked]:
    """Check every Python file named or under the folders named (`project.python_files`), `jobs` files at a time,
    each in the project's Python (`python`: the setting or `--python`), the editor's unsaved text where
    `open_texts` has it, the largest files first, under the options of `setup`. With `setup.share_workers`, each
    thread's sandbox worker takes its files in turn (a `WorkerPool`), as doctest and pytest run a project's modules
    in one process: what one file's code leaves behind in that process is seen by the next file's; without, each
    file gets a fresh process (slower). With a `store`, a file whose text, project imports, interpreter and options
    are those of a result kept there is answered from it (`Checked.cached`), and each new settled result is kept
    there. Results in the order of the files; `progress` is told after each file. Once `stop` is set no further
    file is started: the results are those of the files done by then."""
    files = python_files(paths)
    cache = cache if cache is not None else CheckCache()
    setup = setup or CheckSetup()
    diagnostics, sandbox, contracts = setup.diagnostics, setup.sandbox, setup.contracts
    examples = diagnostics.examples
    sources = ProjectSources()
    reuse = setup.share_workers and len(files) > 1
    if len(files) > 1 and jobs > 1:  # the files are the parallel work: one sandbox process each imports less
        sandbox = sandbox.model_copy(update={"workers": 1})
    pools: dict[int, WorkerPool] = {}
    interpreters: dict[str, tuple[Interpreter, str]] = {}
    """By folder: the Python that runs its files' examples (`find_interpreter` looks only at a file's folders) and
    its `interpreter_identity`, found once per run."""

    def interpreter_for(file: str) -> tuple[Interpreter, str]:
        folder = os.path.dirname(os.path.abspath(file))
        if folder not in interpreters:
            interpreter = find_interpreter(file, python, workspace_roots, sandbox.mode)
            interpreters[folder] = interpreter, interpreter_identity(interpreter)
        return interpreters[folder]

    def this_threads_pool() -> WorkerPool:
        thread = threading.get_ident()
        if thread not in pools:
            pools[thread] = WorkerPool()
        return pools[thread]

    def one(file: str) -> Checked | None:
        if stop is not None and stop.is_set():
            return None
        text = (open_texts or {}).get(file)
        if text is None:
            try:
                text = Path(file).read_bytes().decode("utf-8", errors="replace")
            except OSError as err:
                return Checked(file, None, err.strerror or str(err))
        try:
            interpreter, identity = interpreter_for(file) if examples else (None, "")
            key = entry_key(file, text, interpreter, identity, setup, sources) if store is not None else None
            kept = store.get(file, key) if store is not None and key is not None else None
            if kept is not None:
                return Checked(file, kept, cached=True)
            with this_threads_pool().active() if reuse else contextlib.nullcontext():
                report = check_document(text, file, diagnostics, sandbox, cache, interpreter, contracts)
            if store is not None and key is not None:
                store.put(file, key, report)
            return Checked(file, report)
        except Exception as err:  # a bug of ours: say so for this file, check the others
            return Checked(file, None, f"checking failed: {type(err).__name__}: {err}")

    results: dict[str, Checked] = {}
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as executor:
            futures = {executor.submit(one, file): file for file in _largest_first(files)}
            for future in as_completed(futures):
                checked = future.result()
                if checked is None:
                    continue  # stopped before it started
                results[futures[future]] = checked
                if progress is not None:
                    progress(len(results), len(files), futures[future])
    finally:
        for pool in pools.values():
            pool.close()
    return [results[file] for file in files if file in results]


def _largest_first(files: Sequence[str]) -> list[str]:
    """The files, largest first: the longest checks start first and the last ones to finish are short (the results
    keep the files' order)."""

    def size(file: str) -> int:
        try:
            return Path(file).stat().st_size
        except OSError:
            return 0

    return sorted(files, key=size, reverse=True)
