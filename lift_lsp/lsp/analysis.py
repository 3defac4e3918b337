"""One version of one document, analysed lazily and cached: its spec sites, jedi's view, each function's IR.

The server keeps the latest analysis per document; a new version replaces it. Everything here is plain and
synchronous, so the CLI, the tests and the server share it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lift_lsp.spec.reverse import FunctionIR, function_ir
from lift_lsp.spec.sites import SpecSite, find_sites, site_at
from lift_lsp.spec.typecontext import TypeContext, TypeOracle

MAX_JEDI_CHARS = 500_000
MAX_JEDI_LINE = 20_000
"""jedi is skipped on documents larger than this, or with a line longer than this: it would take seconds."""
WARM_PAUSE_S = 0.001


def jedi_applies(text: str) -> bool:
    if len(text) > MAX_JEDI_CHARS:
        return False
    return all(len(line) <= MAX_JEDI_LINE for line in text.split("\n"))


@dataclass
class DocumentAnalysis:
    uri: str
    version: int | None
    text: str
    path: str | None = None
    _sites: list[SpecSite] | None = None
    _oracle: TypeOracle | None = None
    _irs: dict[tuple[str, int], FunctionIR] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def sites(self) -> list[SpecSite]:
        with self._lock:
            if self._sites is None:
                self._sites = find_sites(self.text)
            return self._sites

    def site_at(self, line: int, col: int) -> SpecSite | None:
        return site_at(self.sites, line, col)

    def find(self, function: str) -> SpecSite | None:
        return next((s for s in self.sites if function in (s.qualname, s.name)), None)

    def type_context(self, site: SpecSite) -> TypeContext | None:
        with self._lock:
            if self._oracle is None:
                if not jedi_applies(self.text):
                    return None
                self._oracle = TypeOracle(self.text, self.path)
            return self._oracle.context_for(site)

    def function_ir(self, site: SpecSite) -> FunctionIR:
        key = (site.qualname, site.def_line)
        with self._lock:
            cached = self._irs.get(key)
            if cached is None:
                cached = function_ir(site, self.type_context(site))
                self._irs[key] = cached
            return cached

    def all_irs(self) -> list[FunctionIR]:
        return [self.function_ir(site) for site in self.sites]

    def warm(self, wanted: Callable[[], bool]) -> int:
        """Compute each function's IR ahead of the first hover, one function at a time, stopping as soon as
        `wanted()` turns false (a newer version arrived). Returns how many functions were analysed. It pauses
        between functions so that a request waiting for the lock gets it (a lock is not fair between threads)."""
        done = 0
        for site in self.sites:
            if not wanted():
                break
            self.function_ir(site)
            done += 1
            time.sleep(WARM_PAUSE_S)
        return done


class AnalysisCache:
    """The latest analysis of each open document, by URI."""

    def __init__(self) -> None:
        self._docs: dict[str, DocumentAnalysis] = {}
        self._lock = threading.Lock()

    def get(self, uri: str, version: int | None, text: str, path: str | None = None) -> DocumentAnalysis:
        with self._lock:
            current = self._docs.get(uri)
            if current is None or current.version != version or current.text != text:
                current = DocumentAnalysis(uri=uri, version=version, text=text, path=path)
                self._docs[uri] = current
            return current

    def is_current(self, analysis: DocumentAnalysis) -> bool:
        with self._lock:
            return self._docs.get(analysis.uri) is analysis

    def drop(self, uri: str) -> None:
        with self._lock:
            self._docs.pop(uri, None)
