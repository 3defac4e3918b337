"""One version of one document, analysed function by function: its spec sites and each function's IR with its
Markdown already rendered, so that a hover is a lookup.

A function's IR is *complete* once jedi's types are in it, or when jedi cannot add to it (every parameter and the
return are annotated or documented: most functions). `quick` never waits for jedi: it answers the complete IR when
it is ready (or when jedi's context is cached from an earlier version), else the IR without jedi's types, marked
so, and puts that function first in line for `complete_types`, which completes the rest in the background
(`prepare` computes every function's IR without jedi ahead of the first hover). Everything here
is plain and synchronous, so the CLI, the tests and the server share it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache

from lift_lsp.spec.docstrings import DocSpec
from lift_lsp.spec.render import to_markdown
from lift_lsp.spec.reverse import FunctionIR, function_ir, needs_types, read_spec
from lift_lsp.spec.sites import SpecSite, find_sites, site_at
from lift_lsp.spec.typecontext import ContextCache, TypeContext, TypeOracle, context_keys

MAX_JEDI_CHARS = 500_000
MAX_JEDI_LINE = 20_000
"""jedi is skipped on documents larger than this, or with a line longer than this: it would take seconds."""
WARM_PAUSE_S = 0.001
PENDING_TYPES_NOTE = "_jedi's inferred types: pending (the background analysis adds them)_"
ANALYSIS_CACHE_DOCUMENTS = 64
ANALYSIS_CACHE_AGE_S = 1800.0
"""Bounds of an `AnalysisCache`: the analyses of the most recently used documents, none unused for longer."""


def jedi_applies(text: str) -> bool:
    if len(text) > MAX_JEDI_CHARS:
        return False
    return all(len(line) <= MAX_JEDI_LINE for line in text.split("\n"))


@dataclass(frozen=True)
class Analysed:
    """One function's IR and its hover Markdown."""

    fir: FunctionIR
    markdown: str
    complete: bool
    """False while jedi's types are still to come (the Markdown says so)."""


def _analysed(site: SpecSite, doc: DocSpec, ctx: TypeContext | None, complete: bool) -> Analysed:
    fir = function_ir(site, ctx, doc)
    markdown = to_markdown(fir.ir)
    return Analysed(fir, markdown if complete else f"{markdown}\n\n{PENDING_TYPES_NOTE}", complete)


class DocumentAnalysis:
    def __init__(
        self, uri: str, version: int | None, text: str, path: str | None = None, contexts: ContextCache | None = None
    ) -> None:
        self.uri = uri
        self.version = version
        self.text = text
        self.path = path
        self.contexts = contexts if contexts is not None else ContextCache()
        self._sites: list[SpecSite] | None = None
        self._keys: dict[tuple[str, int], str] | None = None
        self._jedi_applies: bool | None = None
        self._oracle: TypeOracle | None = None
        self._results: dict[tuple[str, int], Analysed] = {}
        self._first: deque[SpecSite] = deque()
        """Functions a request found incomplete: `complete_types` completes them first."""
        self._lock = threading.Lock()
        """Guards the fields above; never held while computing."""
        self._jedi_lock = threading.Lock()
        """One thread builds and queries this version's `TypeOracle` at a time."""

    @property
    def sites(self) -> list[SpecSite]:
        """The document's functions. Two threads that ask at once both parse (no lock): a request never waits for
        the background thread, which runs at a lower priority."""
        if self._sites is None:
            sites = find_sites(self.text)
            with self._lock:
                if self._sites is None:
                    self._sites = sites
        return self._sites

    @property
    def sites_ready(self) -> bool:
        return self._sites is not None

    @property
    def jedi_applies(self) -> bool:
        if self._jedi_applies is None:
            self._jedi_applies = jedi_applies(self.text)
        return self._jedi_applies

    def site_at(self, line: int, col: int) -> SpecSite | None:
        return site_at(self.sites, line, col)

    def find(self, function: str) -> SpecSite | None:
        return next((s for s in self.sites if function in (s.qualname, s.name)), None)

    def ready(self, site: SpecSite) -> Analysed | None:
        """What is known of the function now, complete or not; None before anything was computed. Never waits."""
        with self._lock:
            return self._results.get((site.qualname, site.def_line))

    def quick(self, site: SpecSite) -> Analysed:
        """The function's IR without waiting for jedi (a few milliseconds): complete when jedi cannot add to it or its
        context is cached, else without jedi's types (and the function goes first in line for `complete_types`)."""
        known = self.ready(site)
        if known is not None:
            return known
        doc = read_spec(site)
        complete = not needs_types(site, doc) or not self.jedi_applies
        ctx = None if complete else self.contexts.get(self._key(site))
        result = _analysed(site, doc, ctx, complete or ctx is not None)
        with self._lock:
            if not result.complete:
                self._first.append(site)
            return self._results.setdefault((site.qualname, site.def_line), result)

    def analysed(self, site: SpecSite) -> Analysed:
        """The complete IR, running jedi if its context is needed and not cached (blocking: off the event loop)."""
        known = self.quick(site)
        if known.complete:
            return known
        ctx = self.type_context(site)
        result = _analysed(site, read_spec(site), ctx, True)
        with self._lock:
            self._results[site.qualname, site.def_line] = result
        return result

    def function_ir(self, site: SpecSite) -> FunctionIR:
        return self.analysed(site).fir

    def all_irs(self) -> list[FunctionIR]:
        return [self.function_ir(site) for site in self.sites]

    def type_context(self, site: SpecSite) -> TypeContext | None:
        """jedi's view of the function (for prompts and the IR), from the cache or from jedi; None where jedi does
        not apply. Blocking."""
        if not self.jedi_applies:
            return None
        key = self._key(site)
        cached = self.contexts.get(key)
        if cached is not None:
            return cached
        with self._jedi_lock:
            if self._oracle is None:
                self._oracle = TypeOracle(self.text, self.path)
            ctx = self._oracle.context_for(site)
        self.contexts.put(key, ctx)
        return ctx

    def prepare(self, wanted: Callable[[], bool]) -> bool:
        """Each function's IR without waiting for jedi (cheap: every hover becomes a lookup). Stops as soon as
        `wanted()` turns false (a newer version arrived); whether it went through."""
        for site in self.sites:
            if not wanted():
                return False
            self.quick(site)
        return True

    def complete_types(self, wanted: Callable[[], bool]) -> int:
        """Add jedi's types where they are needed, the functions a request asked for first; stops as soon as
        `wanted()` turns false. Returns how many functions it completed. Pauses between functions so that
        requests get the interpreter."""
        done = 0
        while wanted():
            incomplete = self._next_incomplete()
            if incomplete is None:
                break
            self.analysed(incomplete)
            done += 1
            time.sleep(WARM_PAUSE_S)
        with self._jedi_lock:
            self._oracle = None  # its contexts are cached; the parse trees and inference state go
        return done

    def _next_incomplete(self) -> SpecSite | None:
        with self._lock:
            while self._first:
                site = self._first.popleft()
                if not self._results[site.qualname, site.def_line].complete:
                    return site
            return next((r.fir.site for r in self._results.values() if not r.complete), None)

    def _key(self, site: SpecSite) -> str:
        if self._keys is None:
            self._keys = context_keys(self.text, self.sites, self.path)
        return self._keys[site.qualname, site.def_line]


class AnalysisCache:
    """The latest analysis of each document, by URI; the type contexts all of them share. Bounded: the analyses of
    the `documents` most recently used documents are kept, none unused for longer than `age_s` (a dropped one is
    analysed again when asked for)."""

    def __init__(
        self,
        documents: int = ANALYSIS_CACHE_DOCUMENTS,
        age_s: float = ANALYSIS_CACHE_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.contexts = ContextCache()
        self._docs: TTLCache[str, DocumentAnalysis] = TTLCache(maxsize=documents, ttl=age_s, timer=clock)
        """Stored again on every `get`, so that an analysis's age counts from its last use."""
        self._lock = threading.Lock()

    def get(self, uri: str, version: int | None, text: str, path: str | None = None) -> DocumentAnalysis:
        with self._lock:
            current = self._docs.pop(uri, None)
            if current is None or current.version != version or current.text != text:
                current = DocumentAnalysis(uri, version, text, path, self.contexts)
            self._docs[uri] = current
            return current

    def is_current(self, analysis: DocumentAnalysis) -> bool:
        with self._lock:
            return self._docs.get(analysis.uri) is analysis

    def drop(self, uri: str) -> None:
        with self._lock:
            self._docs.pop(uri, None)

    def __len__(self) -> int:
        with self._lock:
            self._docs.expire()
            return len(self._docs)
