"""The per-version document analysis: lazily computed, cached, and warmed in the background."""

from __future__ import annotations

from lift_lsp.lsp.analysis import AnalysisCache, DocumentAnalysis

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


def test_warm_analyses_every_function_and_hover_reuses_it() -> None:
    analysis = DocumentAnalysis(uri="file:///m.py", version=1, text=TEXT)
    assert analysis.warm(lambda: True) == 3
    for site in analysis.sites:
        first = analysis.function_ir(site)
        assert analysis.function_ir(site) is first
    assert [fir.ir.signature.name for fir in analysis.all_irs()] == ["double", "half", "negate"]
    assert analysis.function_ir(analysis.sites[0]).ir.examples[0].result == "4"


def test_warm_stops_when_no_longer_wanted() -> None:
    analysis = DocumentAnalysis(uri="file:///m.py", version=1, text=TEXT)
    asked: list[int] = []

    def wanted() -> bool:
        asked.append(1)
        return len(asked) <= 1

    assert analysis.warm(wanted) == 1
    assert len(analysis._irs) == 1


def test_cache_replaces_an_older_version() -> None:
    cache = AnalysisCache()
    first = cache.get("file:///m.py", 1, TEXT)
    assert cache.get("file:///m.py", 1, TEXT) is first and cache.is_current(first)
    second = cache.get("file:///m.py", 2, TEXT + "\n")
    assert second is not first and cache.is_current(second) and not cache.is_current(first)
    cache.drop("file:///m.py")
    assert not cache.is_current(second)
