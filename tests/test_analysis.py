"""The per-version document analysis: lazily computed, cached, prepared and completed in the background."""

from __future__ import annotations

from lift_lsp.lsp.analysis import PENDING_TYPES_NOTE, AnalysisCache, DocumentAnalysis
from lift_lsp.spec.render import to_markdown
from lift_lsp.spec.typecontext import ContextCache

TEXT = '''
def double(x: int) -> int:
    """Twice x.

    >>> double(2)
    4
    """
    return x * 2


def half(x: float) -> float:
    """Half of x."""
    return x / 2


def negate(x: int) -> int:
    """Minus x."""
    return -x
'''


UNTYPED = '''
def scale(values, k: int) -> list[int]:
    """Each value times k."""
    return [v * k for v in values]


def total(xs: list[int]) -> int:
    """The sum."""
    return sum(xs)


print(scale([1, 2], 3))
'''


def test_prepared_functions_are_lookups() -> None:
    analysis = DocumentAnalysis(uri="file:///m.py", version=1, text=TEXT)
    assert analysis.prepare(lambda: True)
    assert analysis.complete_types(lambda: True) == 0  # every function is annotated: jedi adds nothing
    for site in analysis.sites:
        first = analysis.ready(site)
        assert first is not None and first.complete and PENDING_TYPES_NOTE not in first.markdown
        assert analysis.quick(site) is first and analysis.analysed(site) is first
        assert first.markdown == to_markdown(first.fir.ir)
    assert [fir.ir.signature.name for fir in analysis.all_irs()] == ["double", "half", "negate"]
    assert analysis.function_ir(analysis.sites[0]).ir.examples[0].result == "4"


def test_quick_never_runs_jedi_and_says_what_is_pending() -> None:
    analysis = DocumentAnalysis(uri="file:///m.py", version=1, text=UNTYPED)
    scale, total = analysis.sites
    quick = analysis.quick(scale)
    assert not quick.complete and PENDING_TYPES_NOTE in quick.markdown
    assert quick.fir.ir.signature.parameters[0].type is None
    assert analysis.quick(total).complete  # jedi cannot add to a fully annotated function
    assert analysis.complete_types(lambda: True) == 1
    done = analysis.ready(scale)
    assert done is not None and done.complete and PENDING_TYPES_NOTE not in done.markdown
    assert done.fir.ir.signature.parameters[0].type == "list"  # jedi, from the call at the bottom


def test_an_edit_elsewhere_reuses_the_type_contexts() -> None:
    contexts = ContextCache()
    first = DocumentAnalysis(uri="file:///m.py", version=1, text=UNTYPED, contexts=contexts)
    assert first.prepare(lambda: True) and first.complete_types(lambda: True) == 1
    edited = UNTYPED.replace('"""The sum."""', '"""The sum of the numbers."""')
    second = DocumentAnalysis(uri="file:///m.py", version=2, text=edited, contexts=contexts)
    assert second.quick(second.sites[0]).complete  # from the cached context: no jedi
    changed = edited.replace("v * k", "v * k + 1")
    third = DocumentAnalysis(uri="file:///m.py", version=3, text=changed, contexts=contexts)
    assert not third.quick(third.sites[0]).complete  # its own text changed


def test_background_work_stops_when_no_longer_wanted() -> None:
    analysis = DocumentAnalysis(uri="file:///m.py", version=1, text=TEXT)
    asked: list[int] = []

    def wanted() -> bool:
        asked.append(1)
        return len(asked) <= 1

    assert not analysis.prepare(wanted)
    assert [analysis.ready(site) is not None for site in analysis.sites] == [True, False, False]
    assert DocumentAnalysis(uri="file:///m.py", version=1, text=UNTYPED).complete_types(lambda: False) == 0


def test_cache_replaces_an_older_version() -> None:
    cache = AnalysisCache()
    first = cache.get("file:///m.py", 1, TEXT)
    assert cache.get("file:///m.py", 1, TEXT) is first and cache.is_current(first)
    second = cache.get("file:///m.py", 2, TEXT + "\n")
    assert second is not first and cache.is_current(second) and not cache.is_current(first)
    cache.drop("file:///m.py")
    assert not cache.is_current(second)


def test_cache_keeps_the_most_recent_documents_and_drops_old_ones() -> None:
    cache = AnalysisCache(documents=2, age_s=60)
    a = cache.get("file:///a.py", 1, TEXT)
    b = cache.get("file:///b.py", 1, TEXT)
    assert cache.get("file:///a.py", 1, TEXT) is a  # used again: now the most recent
    c = cache.get("file:///c.py", 1, TEXT)
    assert len(cache) == 2 and cache.is_current(a) and cache.is_current(c) and not cache.is_current(b)
    now = [0.0]
    aged = AnalysisCache(documents=10, age_s=5, clock=lambda: now[0])
    old = aged.get("file:///a.py", 1, TEXT)
    now[0] = 6.0
    aged.get("file:///b.py", 1, TEXT)
    assert not aged.is_current(old) and len(aged) == 1


def test_cache_counts_a_documents_age_from_its_last_use() -> None:
    now = [0.0]
    cache = AnalysisCache(documents=10, age_s=10, clock=lambda: now[0])
    a = cache.get("file:///a.py", 1, TEXT)
    now[0] = 8.0
    assert cache.get("file:///a.py", 1, TEXT) is a  # used again at 8: kept until 18
    now[0] = 15.0
    cache.get("file:///b.py", 1, TEXT)
    assert cache.is_current(a) and len(cache) == 2
    now[0] = 19.0
    assert not cache.is_current(a) and len(cache) == 1
    assert cache.get("file:///a.py", 1, TEXT) is not a  # analysed again
