"""Forward mode against the model alone: HumanEval pass@1 with a real model on this machine's CPU, side by side.

    .venv/bin/python -m bench.forward_quality [--model FILE.gguf] [--sample N] [--modes direct,forward,model-ir]

One model, loaded once in this process (the local backend: llama.cpp on a GGUF file), serves three ways to the same
functions, with the same token limit for code:
- `direct`: the model alone. One plain chat prompt (the HumanEval prompt in a code block, "complete it": the words
  of forward mode's own first code request), no grammar, no checks; the code block of its answer is the program (the
  prompt's imports put first). What a user gets from the model without lift-lsp. Greedy.
- `forward`: lift-lsp's forward mode as shipped (the IR step, the constrained code step, the checks, repair rounds),
  its default settings with a fixed seed.
- `model-ir`: forward mode with an IR step of the model first (`generation.irSource: model`); as shipped, the IR is
  the spec's own, read by reverse mode (no model call for it).
Each program is run against HumanEval's own tests in the sandbox. Prints a table (pass@1, prompts lost and why,
tokens generated, wall time per prompt), and writes JSON (`bench/results/forward_quality.json`). The CPU engines'
tokens per second, with the grammar on and off: `bench/engine_speed.py`.

The sample: every `--every`-th HumanEval task from HumanEval/0 (41 tasks by default: the CPU makes all 164 in three
modes take hours).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from lift_lsp.benchmark import load_problems, run_humaneval_test, run_prompt
from lift_lsp.generate.backends.base import GenerationRequest
from lift_lsp.generate.backends.local import LocalBackend
from lift_lsp.generate.forward import code_in_answer
from lift_lsp.generate.models import DEFAULT_MODEL, fetch
from lift_lsp.generate.prompts import code_messages
from lift_lsp.options import Options, parse_options
from lift_lsp.spec.sites import find_sites

OUT = Path("bench") / "results" / "forward_quality.json"
MODES = ("direct", "forward", "model-ir")


def direct_program(answer: str, problem: dict[str, Any]) -> str:
    """The program the model's plain answer stands for: its first code block (else the answer), and, where the
    block does not define the function, the prompt before it as the function's start."""
    code = code_in_answer(answer)
    prompt: str = problem["prompt"]
    if re.search(rf"^\s*def {re.escape(problem['entry_point'])}\b", code, re.MULTILINE) is None:
        return prompt + code
    imports = [line for line in prompt.splitlines() if line.startswith(("import ", "from "))]
    return "\n".join([*imports, "", code])


def direct_messages(problem: dict[str, Any]) -> list[dict[str, str]]:
    """The plain prompt, as forward mode's first code request words it (the prompt as it is, type holes and all)."""
    site = next(s for s in find_sites(problem["prompt"]) if s.qualname == problem["entry_point"])
    return code_messages(problem["prompt"], site, "python")


async def run_direct(problem: dict[str, Any], backend: LocalBackend, options: Options) -> dict[str, Any]:
    request = GenerationRequest(
        messages=direct_messages(problem),
        max_tokens=options.generation.max_tokens_code,
        temperature=0.0,
        timeout_s=options.backend.timeout_s,
    )
    started = time.perf_counter()
    result = await backend.generate(request)
    wall = time.perf_counter() - started
    program = direct_program(result.texts[0], problem)
    passed, status, message, _ = await asyncio.to_thread(run_humaneval_test, program, problem, 10.0)
    lost = None if passed else ("cut off" if result.finish_reasons[:1] == ["length"] else f"tests: {status}")
    return {
        "task_id": problem["task_id"],
        "pass_at_1": passed,
        "lost": lost,
        "message": message,
        "tokens": result.completion_tokens,
        "wall_s": wall,
        "code_tokens_per_s": result.completion_tokens / result.latency_s if result.latency_s else None,
        "program": program,
    }


async def run_forward(problem: dict[str, Any], backend: LocalBackend, options: Options) -> dict[str, Any]:
    row = await run_prompt(problem, backend, options, 0.0, 10.0)
    lost = None if row["pass_at_1"] else (row["failure"] or ("tests" if row["delivered"] else "?"))
    return {
        "task_id": problem["task_id"],
        "pass_at_1": row["pass_at_1"],
        "lost": lost,
        "message": row["message"] if not row["delivered"] else row["humaneval_message"],
        "tokens": row["tokens"]["completion"],
        "wall_s": row["latency_s"]["end_to_end"],
        "ir_s": row["latency_s"]["ir"],
        "code_s": row["latency_s"]["code"],
        "attempts": row["attempts"],
        "program": row["generated"],
    }


def mode_options(mode: str, args: argparse.Namespace) -> Options:
    generation: dict[str, Any] = {"seed": 0, "cache": False}  # otherwise as shipped
    if args.candidates is not None:
        generation["candidates"] = args.candidates
    if mode == "model-ir":
        generation["irSource"] = "model"
    backend = {"kind": "local", "model": args.model, "timeoutS": args.timeout}  # reconciled as the local backend is
    options, problems = parse_options({"generation": generation, "backend": backend})
    assert not problems, problems
    return options


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    lost: dict[str, int] = {}
    for row in rows:
        if row["lost"]:
            reason = str(row["lost"]).split(":")[0]
            lost[reason] = lost.get(reason, 0) + 1
    walls = [r["wall_s"] for r in rows if r["wall_s"] is not None]
    return {
        "prompts": len(rows),
        "passed": sum(r["pass_at_1"] for r in rows),
        "pass_at_1_pct": round(100 * sum(r["pass_at_1"] for r in rows) / max(1, len(rows)), 1),
        "lost": lost,
        "tokens_median": statistics.median(r["tokens"] for r in rows) if rows else None,
        "wall_s_median": round(statistics.median(walls), 2) if walls else None,
        "wall_s_total": round(sum(walls), 1),
    }


def render(summaries: dict[str, dict[str, Any]]) -> str:
    lines = ["| mode | pass@1 | prompts lost, and why | tokens per prompt (median) | wall time per prompt (median) |"]
    lines.append("| --- | --- | --- | --- | --- |")
    for mode, s in summaries.items():
        lost = ", ".join(f"{reason} {count}" for reason, count in sorted(s["lost"].items())) or "none"
        lines.append(
            f"| {mode} | {s['passed']} / {s['prompts']} ({s['pass_at_1_pct']}%) | {lost} | {s['tokens_median']} | "
            f"{s['wall_s_median']} s |"
        )
    return "\n".join(lines)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    model = args.model = args.model or str(fetch(DEFAULT_MODEL, progress=lambda line: print(line, file=sys.stderr)))
    backend = LocalBackend(model, threads=args.threads)
    started = time.perf_counter()
    backend.load()
    load_s = time.perf_counter() - started
    problems = load_problems()[:: args.every][: args.sample]
    rows: dict[str, list[dict[str, Any]]] = {mode: [] for mode in args.modes}
    for problem in problems:
        for mode in args.modes:
            if mode == "direct":
                row = await run_direct(problem, backend, mode_options(mode, args))
            else:
                row = await run_forward(problem, backend, mode_options(mode, args))
            rows[mode].append(row)
            mark = "pass" if row["pass_at_1"] else f"lost ({row['lost']})"
            print(
                f"{problem['task_id']:>14} {mode:>8}: {mark}, {row['tokens']} tokens, {row['wall_s']:.1f} s", flush=True
            )
    summaries = {mode: summarize(r) for mode, r in rows.items()}
    return {
        "model": model,
        "load_s": load_s,
        "summaries": summaries,
        "rows": rows,
        "settings": vars(args) | {"modes": list(args.modes)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help=f"a GGUF file or model folder (default: the pinned {DEFAULT_MODEL})")
    parser.add_argument("--every", type=int, default=4, help="take every N-th HumanEval task (default 4)")
    parser.add_argument("--sample", type=int, default=41, help="at most this many tasks (default 41)")
    parser.add_argument("--modes", type=lambda text: text.split(","), default=list(MODES))
    parser.add_argument("--candidates", type=int, help="forward mode's candidates per round (default: as shipped)")
    parser.add_argument("--threads", type=int, help="CPU threads of the engine")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one model request may take")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    report = asyncio.run(measure(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str))
    print(render(report["summaries"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
