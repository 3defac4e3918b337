"""Worker side: one function's postconditions searched for counterexamples, Hypothesis first, then CrossHair.

Imported by `replay.entry` in the sandbox worker when the engines can load there. Each postcondition gets
Hypothesis's verdict; CrossHair then takes those that Hypothesis did not refute and z3 did not prove (`proved`),
within the function's CPU-time budget. Nothing here is reported as it is: the server replays every counterexample
in a fresh worker first.
"""

from __future__ import annotations

import time
import types
from typing import Any

from lift_lsp.check.contracts import crosshair_engine, hypothesis_engine
from lift_lsp.check.contracts.replay import build_contract


def search(module: types.ModuleType, payload: dict[str, Any]) -> dict[str, Any]:
    """{"conditions": [{"hypothesis": verdict, "crosshair": verdict or None}, ...]} (one per postcondition), or
    {"not_checked": reason}."""
    try:
        contract = build_contract(module, payload)
    except (LookupError, SyntaxError) as exc:
        return {"not_checked": str(exc)}
    stop = time.process_time() + float(payload["budget_s"])
    condition_s = float(payload["condition_timeout_s"])
    results: list[dict[str, Any]] = [{"hypothesis": None, "crosshair": None} for _ in contract.post]
    try:
        drawn = hypothesis_engine.strategies(contract)
    except (hypothesis_engine.Unsupported, ImportError) as exc:
        for result in results:
            result["hypothesis"] = _not_checked(f"Hypothesis: {exc}")
    else:
        for index, result in enumerate(results):
            cpu_s = min(condition_s, stop - time.process_time())
            if cpu_s <= 0:
                result["hypothesis"] = _not_checked(crosshair_engine.SPENT)
            else:
                result["hypothesis"] = hypothesis_engine.check(contract, drawn, index, int(payload["examples"]), cpu_s)
    proved = set(payload.get("proved", []))
    wanted = {
        index: expr
        for index, (expr, _) in enumerate(contract.post)
        if index not in proved and results[index]["hypothesis"]["status"] != "refuted"
    }
    if wanted:
        try:
            verdicts = crosshair_engine.check(contract, wanted, condition_s, stop)
        except Exception as exc:  # CrossHair missing, or failing on this code: Hypothesis's verdicts still stand
            verdicts = {index: _not_checked(f"CrossHair: {type(exc).__name__}: {exc}") for index in wanted}
        for index, verdict in verdicts.items():
            results[index]["crosshair"] = verdict
    return {"conditions": results}


def _not_checked(detail: str) -> dict[str, Any]:
    return {"status": "not_checked", "examples": 0, "detail": detail}
