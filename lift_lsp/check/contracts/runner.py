"""Server side of contracts: each postcondition of a file's functions judged, and the judgement's status.

For each function with postconditions: z3 first (in this process: it reads the code, it never runs it), which
proves what is in its integer fragment; then, in the sandbox, Hypothesis on every postcondition and CrossHair on
those neither proved nor refuted (`search.py`); then every counterexample any of them found is replayed in plain
Python in a fresh sandbox worker (`replay.py`), and only a replayed violation refutes a condition.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lift_lsp
from lift_lsp import pyast
from lift_lsp.check.contracts.replay import call_text
from lift_lsp.check.sandbox import Call, CallOutcome, Python, SandboxLimits, run_calls
from lift_lsp.options import ContractOptions, SandboxOptions
from lift_lsp.spec.docstrings import DocSpec
from lift_lsp.spec.ir import Condition, ParamKind
from lift_lsp.spec.sites import SpecSite

Status = Literal["refuted", "proved", "confirmed", "tested", "unchecked"]


@dataclass(frozen=True)
class Counterexample:
    inputs: dict[str, str]
    """Parameter -> Python source of its value."""
    call: str
    """`f(x=1, y=2)`, ready for a doctest."""
    result: str | None
    """repr of what the call returned (None when it raised)."""
    raised: str | None
    """The exception the call raised (not declared by `raises:`)."""
    detail: str
    """What the replay found violated, in words."""
    engine: str
    """Which engine found it: z3, Hypothesis or CrossHair (every one was then replayed)."""


@dataclass(frozen=True)
class ConditionStatus:
    expr: str
    """The postcondition as lift-lsp reads it (`result` for `_` and `__return__`)."""
    written: str
    """The postcondition as written in the docstring."""
    line: int
    """1-based line of the condition in the file (the `def` line when it cannot be found)."""
    status: Status
    detail: str
    """In words, for the hover: "proved by z3", "tested on 200 inputs (Hypothesis)", "unchecked: ..."."""
    counterexample: Counterexample | None = None


@dataclass(frozen=True)
class FunctionContracts:
    conditions: tuple[ConditionStatus, ...]
    not_checked: str | None = None
    """Why none of the conditions could be checked."""

    @property
    def judged(self) -> bool:
        """Every postcondition was judged (none left unchecked: by a time limit, an engine that could not run, ...)."""
        return self.not_checked is None and all(c.status != "unchecked" for c in self.conditions)

    def summary(self) -> str:
        """One line for the hover: `2 postconditions: 1 refuted, 1 proved`, or why none was checked."""
        if self.not_checked is not None:
            return f"postconditions not checked: {self.not_checked}"
        counts: dict[str, int] = {}
        for condition in self.conditions:
            counts[condition.status] = counts.get(condition.status, 0) + 1
        words = ", ".join(f"{count} {status}" for status, count in counts.items())
        plural = "s" if len(self.conditions) != 1 else ""
        return f"{len(self.conditions)} postcondition{plural}: {words}"


@dataclass(frozen=True)
class _Plan:
    site: SpecSite
    conditions: tuple[Condition, ...]
    payload: dict[str, Any]
    proved: frozenset[int]
    z3_counterexamples: dict[int, dict[str, str]]


_POST_MUTABLE = re.compile(r"^\s*post\[([^\]]*)\]\s*:", re.MULTILINE)
_HEADER = re.compile(r"^\s*(?:[-*]\s+)?[A-Za-z]+(?:\[[^\]]*\])?\s*:\s*(?P<expr>.+)$")


def mutable_arguments(spec_text: str) -> list[str] | None:
    """PEP 316 `post[a, b.c]:` -> ["a", "b"]: the arguments the function may change; None without such a line."""
    match = _POST_MUTABLE.search(spec_text)
    if match is None:
        return None
    return [part.strip().split(".")[0] for part in match.group(1).split(",") if part.strip()]


def engine_path() -> list[str]:
    """Where lift-lsp and its engines (Hypothesis, CrossHair) are installed: appended to a worker's sys.path."""
    paths = [str(Path(lift_lsp.__file__).resolve().parents[1])]
    paths += [sysconfig.get_paths()[key] for key in ("purelib", "platlib")]
    return list(dict.fromkeys(paths))


def check_contracts(
    text: str,
    file: str,
    functions: Sequence[tuple[SpecSite, DocSpec]],
    options: ContractOptions,
    sandbox: SandboxOptions,
    *,
    runs_code: bool = True,
    sys_path: Sequence[str] = (),
    module_name: str = "__lift__",
    is_package: bool = False,
    python: Python | None = None,
) -> dict[str, FunctionContracts]:
    """The status of every postcondition of `functions` (by qualname; functions without one are left out). The
    module is imported in the sandbox as `run_calls` says (`sys_path`, `module_name`, `is_package`, `python`); with
    `runs_code` false (an untrusted workspace) nothing runs: z3 proves what it can, the rest is unchecked."""
    out: dict[str, FunctionContracts] = {}
    plans: list[_Plan] = []
    for site, doc in functions:
        conditions = tuple(c for c in doc.postconditions if c.expr)
        if not conditions:
            continue
        reason = _unsupported(site)
        if reason is not None:
            out[site.qualname] = _unchecked(site, conditions, reason)
        else:
            plans.append(_plan(site, doc, conditions, options))
    if not runs_code:
        for plan in plans:
            out[plan.site.qualname] = _without_running(plan)
        return out
    if not plans:
        return out
    run = functools.partial(
        run_calls,
        filename=file,
        sys_path=sys_path,
        module_name=module_name,
        is_package=is_package,
        python=python,
        readable=engine_path(),
    )
    limits = SandboxLimits.from_options(sandbox)
    search_limits = dataclasses.replace(limits, total_timeout_s=options.file_timeout_s)
    calls = [
        Call(p.site.qualname, "", command="contracts", payload=p.payload, timeout_s=_wall_limit(p, options))
        for p in plans
    ]
    searched = run(text, calls, search_limits)
    candidates = [(plan, outcome, _candidates(plan, outcome)) for plan, outcome in zip(plans, searched, strict=True)]
    replays = [
        Call(f"{plan.site.qualname}#{i}", "", command="contracts", payload=_replay_payload(plan, index, inputs))
        for plan, _, found in candidates
        for i, (index, _, inputs) in enumerate(found)
    ]
    replayed = iter(run(text, replays, limits) if replays else [])
    for plan, outcome, found in candidates:
        confirmed: dict[int, Counterexample] = {}
        unconfirmed: dict[int, list[str]] = {}
        for index, engine, inputs in found:
            counterexample = _confirmed(plan, engine, inputs, next(replayed))
            if counterexample is not None:
                confirmed.setdefault(index, counterexample)
            else:
                unconfirmed.setdefault(index, []).append(engine)
        out[plan.site.qualname] = _statuses(plan, outcome, confirmed, unconfirmed)
    return out


def _without_running(plan: _Plan) -> FunctionContracts:
    """What z3 alone says, where no code may run: its proofs; its counterexamples cannot be replayed."""
    why = "code does not run here (an untrusted workspace, or `diagnostics.examples` is off)"
    statuses = [
        _status(plan.site, condition, "proved", "proved for all inputs by z3")
        if index in plan.proved
        else _status(plan.site, condition, "unchecked", f"not checked: {why}")
        for index, condition in enumerate(plan.conditions)
    ]
    return FunctionContracts(tuple(statuses), why if not plan.proved else None)


def _wall_limit(plan: _Plan, options: ContractOptions) -> float:
    """A function's wall-clock limit: thrice its CPU budget and 10 s more (a loaded machine), within the file's."""
    return min(options.file_timeout_s, 3 * float(plan.payload["budget_s"]) + 10)


def _unsupported(site: SpecSite) -> str | None:
    if site.class_name is not None or "<locals>" in site.qualname:
        return "contracts are checked on module-level functions only, not methods or nested functions"
    if site.is_async:
        return "contracts of async functions are not checked"
    return None


def _unchecked(site: SpecSite, conditions: Sequence[Condition], why: str) -> FunctionContracts:
    return FunctionContracts(tuple(_status(site, c, "unchecked", f"not checked: {why}") for c in conditions), why)


def _status(
    site: SpecSite, condition: Condition, status: Status, detail: str, counterexample: Counterexample | None = None
) -> ConditionStatus:
    return ConditionStatus(condition.expr, written(condition), _line(site, condition), status, detail, counterexample)


def written(condition: Condition) -> str:
    """The condition as the docstring writes it (`_ >= 0`), when its line holds just that; else lift-lsp's form."""
    match = _HEADER.match(condition.text)
    if match is not None:
        try:
            pyast.parse_expression(match["expr"].strip())
        except SyntaxError:
            return condition.expr
        return match["expr"].strip()
    return condition.expr


def _line(site: SpecSite, condition: Condition) -> int:
    wanted = condition.text.strip()
    for offset, line in enumerate(site.text.splitlines()):
        if wanted and line.strip().endswith(wanted):
            return site.span.start_line + offset + 1
    return site.def_line + 1


def _plan(site: SpecSite, doc: DocSpec, conditions: tuple[Condition, ...], options: ContractOptions) -> _Plan:
    from lift_lsp.check.contracts.z3_engine import check_postconditions

    pre = [c.expr for c in doc.preconditions if c.expr]
    post = [c.expr for c in conditions]
    verdicts = check_postconditions(site.text, pre, post, timeout_ms=int(options.condition_timeout_s * 1000))
    proved = frozenset(i for i, v in enumerate(verdicts) if v.status == "proved")
    z3_found = {i: v.counterexample for i, v in enumerate(verdicts) if v.status == "counterexample"}
    payload = {
        "action": "search",
        "function": site.name,
        "posonly": [p.name for p in site.params if p.kind == ParamKind.POSITIONAL_ONLY],
        "pre": pre,
        "post": post,
        "mutable": mutable_arguments(site.spec_text or ""),
        "raises": [r.exception for r in doc.raises],
        "examples": options.examples,
        "condition_timeout_s": options.condition_timeout_s,
        "budget_s": 2 * options.condition_timeout_s * len(post) + 5,
        "proved": sorted(proved),
        "python": list(sys.version_info[:2]),
        "engine_path": engine_path(),
    }
    return _Plan(site, conditions, payload, proved, z3_found)


def _verdicts(outcome: CallOutcome) -> list[dict[str, Any]] | None:
    """The search's per-condition verdicts, checked for shape (they come from a process running user code)."""
    data = outcome.data
    if outcome.status != "ok" or not isinstance(data, dict) or not isinstance(data.get("conditions"), list):
        return None
    return [c if isinstance(c, dict) else {} for c in data["conditions"]]


def _engine_verdict(verdict: dict[str, Any], engine: str) -> dict[str, Any]:
    found = verdict.get(engine)
    return found if isinstance(found, dict) else {}


def _inputs(value: object) -> dict[str, str] | None:
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return dict(value)
    return None


def _candidates(plan: _Plan, outcome: CallOutcome) -> list[tuple[int, str, dict[str, str]]]:
    """(condition index, engine, inputs) of each counterexample to replay: Hypothesis's, CrossHair's, z3's."""
    found: list[tuple[int, str, dict[str, str]]] = []
    for index, verdict in enumerate(_verdicts(outcome) or []):
        for engine, name in (("hypothesis", "Hypothesis"), ("crosshair", "CrossHair")):
            judged = _engine_verdict(verdict, engine)
            inputs = _inputs(judged.get("inputs"))
            if judged.get("status") == "refuted" and inputs is not None:
                found.append((index, name, inputs))
    found += [(index, "z3", inputs) for index, inputs in plan.z3_counterexamples.items()]
    return found


def _replay_payload(plan: _Plan, index: int, inputs: dict[str, str]) -> dict[str, Any]:
    keys = ("function", "posonly", "pre", "post", "mutable", "raises")
    return {"action": "replay", **{k: plan.payload[k] for k in keys}, "post_index": index, "inputs": inputs}


def _confirmed(plan: _Plan, engine: str, inputs: dict[str, str], outcome: CallOutcome) -> Counterexample | None:
    """The counterexample, when its plain-Python replay violated the contract."""
    data = outcome.data if outcome.status == "ok" and isinstance(outcome.data, dict) else {}
    if data.get("status") != "violated":
        return None
    result, raised = data.get("result"), data.get("raised")
    return Counterexample(
        inputs=inputs,
        call=call_text(plan.site.name, inputs, tuple(plan.payload["posonly"])),
        result=result if isinstance(result, str) else None,
        raised=raised if isinstance(raised, str) else None,
        detail=str(data.get("detail", "")),
        engine=engine,
    )


def _statuses(
    plan: _Plan, outcome: CallOutcome, confirmed: dict[int, Counterexample], unconfirmed: dict[int, list[str]]
) -> FunctionContracts:
    verdicts = _verdicts(outcome)
    failed = None
    if verdicts is None:
        data = outcome.data
        reason = data.get("not_checked") if isinstance(data, dict) else None
        failed = str(reason) if reason else outcome.message or outcome.status
    statuses: list[ConditionStatus] = []
    for index, condition in enumerate(plan.conditions):
        verdict = verdicts[index] if verdicts is not None and index < len(verdicts) else {}
        status, detail = _judge(plan, index, verdict, confirmed.get(index), failed)
        if index in unconfirmed and status != "refuted":
            detail += f" ({' and '.join(unconfirmed[index])} reported a counterexample that did not replay)"
        statuses.append(_status(plan.site, condition, status, detail, confirmed.get(index)))
    return FunctionContracts(tuple(statuses), failed if all(s.status == "unchecked" for s in statuses) else None)


def _judge(
    plan: _Plan, index: int, verdict: dict[str, Any], counterexample: Counterexample | None, failed: str | None
) -> tuple[Status, str]:
    if counterexample is not None:
        return "refuted", f"refuted by `{counterexample.call}` (found by {counterexample.engine}, replayed)"
    if index in plan.proved:
        return "proved", "proved for all inputs by z3"
    hypothesis = _engine_verdict(verdict, "hypothesis")
    crosshair = _engine_verdict(verdict, "crosshair")
    paths = crosshair.get("paths") if isinstance(crosshair.get("paths"), int) else 0
    skipped = hypothesis.get("status") == "not_checked" and isinstance(hypothesis.get("detail"), str)
    untested = f"; Hypothesis did not run: {hypothesis['detail'].removeprefix('Hypothesis: ')}" if skipped else ""
    if crosshair.get("status") == "confirmed":
        return "confirmed", f"confirmed over all {paths} paths by CrossHair{untested}"
    tested = hypothesis.get("examples") if hypothesis.get("status") == "passed" else 0
    if tested or paths:
        words = [f"tested on {tested} inputs by Hypothesis"] if tested else []
        words += [f"CrossHair explored {paths} paths"] if paths else []
        return "tested", "; ".join(words) + untested
    reasons = [str(v["detail"]) for v in (hypothesis, crosshair) if v.get("detail") and v.get("status") != "refuted"]
    return "unchecked", f"not checked: {failed or '; '.join(reasons) or 'no engine could run'}"
