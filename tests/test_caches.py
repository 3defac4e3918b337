"""The caches a long session fills are bounded by size (and age: see their TTL)."""

from __future__ import annotations

from lift_lsp.check.checks import CHECK_CACHE_AGE_S, CHECK_CACHE_ENTRIES, CheckCache, check_text
from lift_lsp.options import ContractOptions
from lift_lsp.spec.typecontext import ContextCache, TypeContext

NO_CONTRACTS = ContractOptions(enabled=False)


def test_the_check_cache_keeps_the_most_recent_entries() -> None:
    cache = CheckCache()
    assert cache.entries.ttl == CHECK_CACHE_AGE_S
    for index in range(CHECK_CACHE_ENTRIES + 10):
        cache.entries[str(index)] = []
    assert len(cache.entries) == CHECK_CACHE_ENTRIES and "0" not in cache.entries and str(index) in cache.entries
    text = 'def f(x: int) -> int:\n    """Twice x.\n\n    >>> f(2)\n    5\n    """\n    return 2 * x\n'
    assert [f.code for f in check_text(text, "m.py", cache=cache, contracts=NO_CONTRACTS)] == ["LIFT001"]
    assert cache.runs == 1 and len(cache.entries) == CHECK_CACHE_ENTRIES  # stored; the oldest went
    assert [f.code for f in check_text(text, "m.py", cache=cache, contracts=NO_CONTRACTS)] == ["LIFT001"]
    assert cache.runs == 1  # answered from the cache


def test_the_context_cache_is_bounded_by_size_and_age() -> None:
    small = ContextCache(entries=2, age_s=60)
    for key in "abc":
        small.put(key, TypeContext(inferred_return=key))
    assert len(small) == 2 and small.get("a") is None and small.get("c") == TypeContext(inferred_return="c")
    aged = ContextCache(entries=10, age_s=0)
    aged.put("a", TypeContext())
    assert aged.get("a") is None and len(aged) == 0
