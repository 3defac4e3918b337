"""Worker side: Hypothesis as the fast first pass over a function's postconditions.

Inputs are drawn with `hypothesis.strategies.from_type` from the parameters' annotations and kept only when the
preconditions hold; a bounded number of examples, within a CPU-time budget, derandomized (the same inputs on
every run), no example database. A violation is shrunk by Hypothesis to a small one, whose inputs come back as
Python source for the replay.
"""

from __future__ import annotations

import inspect
import time
import typing
from typing import Any

from lift_lsp.check.contracts.replay import Attempt, Contract, attempt, copy_args, literal, safe_repr


class Unsupported(Exception):
    """Hypothesis cannot draw this function's inputs."""


def strategies(contract: Contract) -> dict[str, Any]:
    """A strategy per parameter, from its annotation (or its default when it has no annotation)."""
    from hypothesis import strategies as st

    try:
        signature = inspect.signature(contract.fn)
        hints = typing.get_type_hints(contract.fn)
    except Exception as exc:
        raise Unsupported(f"its annotations cannot be read: {type(exc).__name__}: {exc}") from None
    drawn: dict[str, Any] = {}
    for name, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if name in hints:
            drawn[name] = st.from_type(hints[name])
        elif param.default is not param.empty:
            drawn[name] = st.just(param.default)
        else:
            raise Unsupported(f"parameter `{name}` has no type annotation")
    return drawn


class _Violated(Exception):
    pass


def check(contract: Contract, drawn: dict[str, Any], index: int, max_examples: int, cpu_s: float) -> dict[str, Any]:
    """Postcondition `index` tried on up to `max_examples` inputs: {"status": "refuted", "inputs", "detail"} with
    the shrunk counterexample, or {"status": "passed"}, or {"status": "not_checked", "detail"}; "examples": how
    many inputs met the preconditions and ran."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings
    from hypothesis.errors import HypothesisException, Unsatisfiable

    stop = time.process_time() + cpu_s
    ran = 0
    found: tuple[dict[str, Any], Attempt] | None = None

    def body(**args: Any) -> None:
        nonlocal ran, found
        if time.process_time() > stop:
            reject()
        before = copy_args(args)
        judged = attempt(contract, args, [index])
        if judged.status == "rejected":
            reject()
        ran += 1
        if judged.status == "violated":
            found = (before, judged)
            raise _Violated

    test = settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        print_blob=False,
    )(given(**drawn)(body))
    try:
        test()
    except _Violated:
        pass
    except Unsatisfiable:
        return {"status": "not_checked", "examples": ran, "detail": "no drawn input met the preconditions"}
    except HypothesisException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return {"status": "not_checked", "examples": ran, "detail": f"Hypothesis: {type(exc).__name__}: {first}"}
    if found is None:
        return {"status": "passed", "examples": ran}
    before, judged = found
    inputs = {name: literal(value) for name, value in before.items()}
    unreadable = [name for name, text in inputs.items() if text is None]
    if unreadable:
        shown = ", ".join(f"{name}={safe_repr(before[name])}" for name in unreadable)
        detail = f"a violation whose inputs have no Python literal ({shown}): {judged.detail}"
        return {"status": "not_checked", "examples": ran, "detail": detail}
    return {"status": "refuted", "examples": ran, "inputs": inputs, "detail": judged.detail}
