"""A pytest plugin for `bench.project_scale`: with `--doctest-modules`, only the doctest items run (the trees' own
unit tests are deselected), and per docstring the examples doctest attempted and failed, and every collection error,
go to the JSON file named by `$BENCH_DOCTEST_OUT`.

    python -m pytest --doctest-modules -p bench.pytest_doctest_counts FILES...
"""

from __future__ import annotations

import doctest
import json
import os
from collections.abc import Generator
from typing import Any

import pytest
from _pytest.doctest import DoctestItem, MultipleDoctestFailures

_results: dict[str, dict[str, Any]] = {}
_collection_errors: dict[str, str] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept = [item for item in items if isinstance(item, DoctestItem)]
    config.hook.pytest_deselected(items=[item for item in items if not isinstance(item, DoctestItem)])
    items[:] = kept


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _collection_errors[str(report.fspath)] = str(report.longrepr).strip().splitlines()[-1][:300]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """The examples attempted: the runner's count when the docstring passes; at a failure (pytest stops a docstring
    at its first one) the examples up to the failing one."""
    runner = getattr(item, "runner", None)
    test = getattr(item, "dtest", None)
    if runner is None or test is None:
        return (yield)
    before = runner.tries
    try:
        outcome = yield
    except (doctest.DocTestFailure, doctest.UnexpectedException) as failure:
        _record(test, test.examples.index(failure.example) + 1, 1)
        raise
    except MultipleDoctestFailures as failures:
        last = failures.failures[-1].example
        _record(test, test.examples.index(last) + 1, len(failures.failures))
        raise
    _record(test, runner.tries - before, 0)
    return outcome


def _record(test: doctest.DocTest, attempted: int, failed: int) -> None:
    module = str(test.globs.get("__name__", ""))
    key = test.name[len(module) + 1 :] if test.name != module else "<module>"
    entry = _results.setdefault(str(test.filename), {"tests": {}})
    entry["tests"][key] = {"attempted": attempted, "failed": failed}


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = os.environ.get("BENCH_DOCTEST_OUT")
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            json.dump({"files": _results, "collection_errors": _collection_errors}, handle)
