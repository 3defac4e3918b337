"""Tokens per second of the local backend's engines on one GGUF file, with the grammar on and off, in one run.

    .venv/bin/python -m bench.engine_speed [--model FILE.gguf] [--tokens 96]

Each configuration runs in a process of its own (OpenMP reads its settings when it starts): llama.cpp with 1 and 2
threads, its OpenMP threads sleeping while they wait (lift-lsp's setting) or spinning (OpenMP's default); and
transformers, which dequantizes the GGUF to float32. Each decodes the same chat prompt greedily, unconstrained and
then under the code step's grammar, for `--tokens` tokens; the prompt is evaluated before the clock starts. Prints a
table and writes `bench/results/engine_speed.json`. Compare the rows of one run: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path("bench") / "results" / "engine_speed.json"
PROMPT = [{"role": "user", "content": "Write a Python function that returns the n-th Fibonacci number, with comments."}]
CONFIGS = [
    {"engine": "llama.cpp", "threads": 2, "wait": "PASSIVE"},
    {"engine": "llama.cpp", "threads": 2, "wait": "ACTIVE"},
    {"engine": "llama.cpp", "threads": 1, "wait": "PASSIVE"},
    {"engine": "transformers", "threads": 2, "wait": "PASSIVE"},
]


def measure_one(model: str, engine: str, threads: int, tokens: int) -> dict[str, Any]:
    """In this process: load, then time `tokens` tokens off and on the code grammar (tokens per second)."""
    from lift_lsp.generate.backends.base import Constraint, GenerationRequest
    from lift_lsp.generate.backends.local import LocalBackend
    from lift_lsp.generate.grammar import code_constraint

    backend = LocalBackend(model, threads=threads, engine=engine)  # type: ignore[arg-type]
    started = time.perf_counter()
    backend.load()
    result: dict[str, Any] = {"load_s": round(time.perf_counter() - started, 1)}
    prompt = backend.prompt_ids(PROMPT)
    for name, constraint in (("off", Constraint()), ("on", code_constraint())):
        request = GenerationRequest(PROMPT, constraint, max_tokens=tokens, temperature=0.0, timeout_s=3600)
        grammar = backend.compiled_grammar(constraint)
        backend.sample_tokens(GenerationRequest(PROMPT, max_tokens=1), prompt, None)  # the prompt, off the clock
        started = time.perf_counter()
        out, _ = backend.sample_tokens(request, prompt, grammar)
        elapsed = time.perf_counter() - started
        result[f"grammar_{name}_tokens"] = len(out[0])
        result[f"grammar_{name}_tokens_per_s"] = round(len(out[0]) / elapsed, 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a GGUF file (default: the pinned model, fetched if need be)")
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a configuration, run by the parent in a fresh process
    args = parser.parse_args(argv)
    if args.one:
        config = json.loads(args.one)
        print(json.dumps(measure_one(args.model, config["engine"], config["threads"], args.tokens)))
        return 0
    if not args.model:
        from lift_lsp.generate.models import DEFAULT_MODEL, fetch

        args.model = str(fetch(DEFAULT_MODEL))
    rows = []
    for config in CONFIGS:
        command = [sys.executable, "-m", "bench.engine_speed", "--model", args.model, "--tokens", str(args.tokens)]
        env = {**os.environ, "OMP_WAIT_POLICY": config["wait"]}
        done = subprocess.run([*command, "--one", json.dumps(config)], capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise SystemExit(f"{config} failed:\n{done.stderr[-2000:]}")
        rows.append({**config, **json.loads(done.stdout.strip().splitlines()[-1])})
        print(json.dumps(rows[-1]), flush=True)
    print("| engine | threads | OpenMP wait | load | tokens/s, no grammar | tokens/s, code grammar | on / off |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        ratio = r["grammar_on_tokens_per_s"] / r["grammar_off_tokens_per_s"]
        print(
            f"| {r['engine']} | {r['threads']} | {r['wait'].lower()} | {r['load_s']} s | "
            f"{r['grammar_off_tokens_per_s']} | {r['grammar_on_tokens_per_s']} | {ratio:.2f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": args.model, "tokens": args.tokens, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
