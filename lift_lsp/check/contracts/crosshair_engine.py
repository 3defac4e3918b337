"""Worker side: CrossHair, the symbolic executor, on the postconditions Hypothesis did not refute.

CrossHair reads the contracts itself (PEP 316 docstrings, icontract and deal decorators) and checks one
postcondition at a time within a CPU-time budget (`per_condition_timeout`). Its verdicts: a counterexample (the
call it prints, parsed back into inputs for the replay), "confirmed over all paths" (it exhausted the paths: weaker
than a proof, since it models some semantics, e.g. floats, loosely), or not confirmed within the budget.
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import inspect
import time
from typing import Any

from lift_lsp.check.contracts.replay import Contract

SPENT = "the function's contract budget was spent"
UNINTERESTING_ITERATIONS = 10
"""CrossHair stops a condition early after this many paths in a row that reached no new branch (Hypothesis has
already tried the typical inputs; CrossHair is here for the rare branches, which it reaches early)."""


def normal_form(expr: str) -> str:
    """The condition with `_` and `__return__` read as `result` (as lift-lsp's docstring reader writes it)."""
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError:
        return expr.strip()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in ("_", "__return__"):
            node.id = "result"
    return ast.unparse(tree)


def parse_call(message: str, name: str, parameters: list[str]) -> dict[str, str] | None:
    """The inputs of the call CrossHair prints in `message` (`... when calling f(1, y=2) ...`) as source text."""
    start = message.find(f"when calling {name}(")
    if start < 0:
        return None
    text = message[start + len("when calling ") :]
    for end in (i + 1 for i, ch in enumerate(text) if ch == ")"):
        try:
            node = ast.parse(text[:end], mode="eval").body
        except SyntaxError:
            continue
        if not isinstance(node, ast.Call) or any(isinstance(a, ast.Starred) for a in node.args):
            return None
        if len(node.args) > len(parameters) or any(k.arg is None for k in node.keywords):
            return None
        source = text[:end]
        inputs = {p: ast.get_source_segment(source, a) or "" for p, a in zip(parameters, node.args, strict=False)}
        inputs.update({str(k.arg): ast.get_source_segment(source, k.value) or "" for k in node.keywords})
        return inputs
    return None


def check(contract: Contract, wanted: dict[int, str], condition_s: float, stop: float) -> dict[int, dict[str, Any]]:
    """CrossHair on the postconditions `wanted` (index -> condition), each within `condition_s` CPU seconds and
    all before the process CPU time `stop`: per index {"status": "refuted", "inputs", "detail"} or {"status":
    "confirmed" | "unknown" | "not_checked", "detail"}, with "paths" explored."""
    from crosshair.core_and_libs import analyze_function
    from crosshair.options import AnalysisKind, AnalysisOptionSet
    from crosshair.statespace import MessageType

    kinds = [AnalysisKind.PEP316, AnalysisKind.icontract, AnalysisKind.deal]
    by_form = {normal_form(expr): index for index, expr in wanted.items()}
    parameters = list(inspect.signature(contract.fn).parameters)
    found: dict[int, Any] = {}
    for checkable in analyze_function(contract.fn, AnalysisOptionSet(analysis_kind=kinds)):
        conditions = getattr(checkable, "conditions", None)
        if conditions is None:  # contracts CrossHair cannot parse: it says why in its messages
            detail = "; ".join(m.message for m in checkable.analyze())
            return {i: {"status": "not_checked", "detail": f"CrossHair: {detail}"} for i in wanted}
        index = by_form.get(normal_form(conditions.post[0].expr_source))
        if index is not None:
            found.setdefault(index, checkable)
    out: dict[int, dict[str, Any]] = {
        i: {"status": "not_checked", "detail": "CrossHair does not read this condition (only PEP 316 `post:` lines)"}
        for i in wanted
        if i not in found
    }
    for index, checkable in sorted(found.items()):
        budget = min(condition_s, stop - time.process_time())
        if budget <= 0:
            out[index] = {"status": "not_checked", "detail": SPENT}
            continue
        stats: collections.Counter[str] = collections.Counter()
        checkable.options = dataclasses.replace(
            checkable.options,
            per_condition_timeout=budget,
            max_uninteresting_iterations=UNINTERESTING_ITERATIONS,
            stats=stats,
        )
        verdict = _verdict(checkable.analyze(), MessageType, contract.fn.__name__, parameters)
        out[index] = {**verdict, "paths": stats["num_paths"]}
    return out


def _verdict(messages: list[Any], kinds: Any, name: str, parameters: list[str]) -> dict[str, Any]:
    states = {m.state for m in messages}
    if kinds.CONFIRMED in states:
        return {"status": "confirmed"}
    if kinds.PRE_UNSAT in states:
        return {"status": "not_checked", "detail": "CrossHair found no input that meets the preconditions"}
    for message in messages:
        if message.state in (kinds.POST_FAIL, kinds.POST_ERR, kinds.EXEC_ERR):
            inputs = parse_call(message.message, name, parameters)
            if inputs is None:
                return {"status": "unknown", "detail": f"CrossHair: {message.message} (not replayable)"}
            return {"status": "refuted", "inputs": inputs, "detail": message.message}
        if message.state in (kinds.SYNTAX_ERR, kinds.IMPORT_ERR):
            return {"status": "not_checked", "detail": f"CrossHair: {message.message}"}
    return {"status": "unknown"}
