"""Cost of constrained decoding in lift-lsp's own decode loop (`LocalBackend.sample_tokens`): the token mask's time
per step, as thread CPU time and wall time, for the IR and code grammars, and the grammar compile time.

    .venv/bin/python -m bench.constrained [--model PATH_OR_ID | --tokenizer FILE.gguf] [--vocab 32768] [--quick]

Without `--model` it builds the tests' random-weight Llama (tests/tiny_model.py) with a byte-level BPE tokenizer of
`--vocab` tokens trained on this project's sources and the stdlib, or with `--tokenizer`'s: a real model's tokenizer
(e.g. the pinned Qwen2.5-Coder GGUF's, 151,665 tokens), the mask's cost depending on the vocabulary and the grammar,
not on the weights. Outputs:

- realistic: the loop decodes real outputs, token for token: the IR that `lift-lsp ir --json` prints for the
  functions of `examples/`, of stdlib modules and of libraries installed from PyPI, and, for the code grammar, the
  real bodies of those libraries' functions. The model's logits are kept but the next token of the real output is
  favoured by 1e4 (greedy), so every step runs the mask, the model and the sampler as a generation does;
- random: the random model samples (temperature 1) under the grammar, as the tests' generations do.

Goals: mask p50 <= 10 us and p99 <= 100 us of thread CPU time for both grammars on realistic outputs;
compiling an already-seen grammar < 1 ms. Prints a table and writes `bench/results/constrained.json`.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from bench.common import REPO, machine, percentile, table, write_json
from lift_lsp.generate.backends.base import Constraint, GenerationRequest
from lift_lsp.generate.backends.local import LocalBackend
from lift_lsp.generate.grammar import code_constraint, ir_constraint
from lift_lsp.spec.ir import IR, CodeCandidate

RESULTS = REPO / "bench" / "results" / "constrained.json"
MESSAGES = [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": "def f(x): ..."}]
GOALS = {"mask_p50_us": 10.0, "mask_p99_us": 100.0, "compile_seen_ms": 1.0}


def library_files(quick: bool) -> list[Path]:
    """Modules whose functions give the realistic outputs: the examples, stdlib modules and PyPI libraries."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    pure = Path(sysconfig.get_paths()["purelib"])
    names = [stdlib / n for n in ("textwrap.py", "heapq.py", "shlex.py", "fractions.py", "json/decoder.py")]
    names += [pure / n for n in ("httpx/_urlparse.py", "httpx/_models.py", "jedi/api/classes.py")]
    files = sorted((REPO / "examples").glob("*.py")) + [f for f in names if f.is_file()]
    return files[:4] if quick else files


def real_irs(files: list[Path]) -> list[str]:
    """The IR `lift-lsp ir --json` prints for each function, as the grammar writes it (compact, schema order)."""
    command = [sys.executable, "-m", "lift_lsp.cli", "ir", "--json", "--no-types", *map(str, files)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True, cwd=REPO)
    irs = [IR.model_validate(item["ir"]) for item in json.loads(done.stdout)]
    return [json.dumps(ir.model_dump(mode="json"), ensure_ascii=False, separators=(", ", ": ")) for ir in irs]


def function_bodies(files: list[Path]) -> Iterator[str]:
    """The code step's output for each function: its real body (docstring dropped) and no imports or helpers."""
    for path in files:
        source = path.read_text(encoding="utf-8")
        lines = source.split("\n")
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            if not body or node.end_lineno is None:
                continue
            text = textwrap.dedent("\n".join(lines[body[0].lineno - 1 : node.end_lineno]))
            if len(text) <= 3000:
                candidate = CodeCandidate(body=text)
                yield json.dumps(candidate.model_dump(), ensure_ascii=False, separators=(", ", ": "))


class Replay:
    """The model, with the next token of a given output favoured: the decode loop then writes that output."""

    def __init__(self, model: Any, targets: list[int]) -> None:
        self.model, self.targets, self.step = model, targets, 0

    def __call__(self, **kwargs: Any) -> Any:
        out = self.model(**kwargs)
        out.logits[:, -1, self.targets[min(self.step, len(self.targets) - 1)]] += 1e4
        self.step += 1
        return out


def replay(backend: LocalBackend, constraint: Constraint, text: str, times: list[tuple[int, int]]) -> None:
    """Decode `text` (then the stop token) through `backend`'s own loop, recording the mask's times."""
    tokenizer, model = backend._tokenizer, backend._model
    targets = [*tokenizer(text, add_special_tokens=False)["input_ids"], backend._stop_ids[0]]
    backend._model = Replay(model, targets)
    try:
        request = GenerationRequest(MESSAGES, constraint, max_tokens=len(targets) + 1, temperature=0.0)
        prompt = backend.prompt_ids(MESSAGES)
        grammar = backend.compiled_grammar(constraint)
        tokens, reasons = backend.sample_tokens(request, prompt, grammar, mask_times=times)
    finally:
        backend._model = model
    if tokens[0] != targets or reasons != ["stop"]:
        raise SystemExit(f"the grammar did not let the loop write a real output: {text[:120]!r}")


def summary(times: list[tuple[int, int]]) -> dict[str, float]:
    cpu = [c / 1e3 for c, _ in times]
    wall = [w / 1e3 for _, w in times]
    out: dict[str, float] = {"steps": len(times)}
    for name, values in (("cpu", cpu), ("wall", wall)):
        for q in (0.5, 0.95, 0.99):
            out[f"{name}_p{round(q * 100)}_us"] = round(percentile(values, q), 2)
        out[f"{name}_max_us"] = round(max(values), 1)
    return out


def compile_times(backend: LocalBackend, constraint: Constraint) -> dict[str, float]:
    """The first compile (caches emptied; wall time: XGrammar compiles on several threads), then the median of 5
    compiles of the same grammar, as a new but equal constraint (thread CPU time), in ms."""
    backend._compiler.clear_cache()
    started = time.perf_counter()
    backend.compiled_grammar(constraint)
    first = time.perf_counter() - started
    seen = []
    for _ in range(5):
        again = dataclasses.replace(constraint)
        started_ns = time.thread_time_ns()
        backend.compiled_grammar(again)
        seen.append((time.thread_time_ns() - started_ns) / 1e9)
    return {"compile_first_ms": round(first * 1e3, 3), "compile_seen_ms": round(percentile(seen, 0.5) * 1e3, 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", help="a Hugging Face id or path instead of the random model")
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--tokenizer", help="a GGUF file or tokenizer folder whose vocabulary the random model takes")
    parser.add_argument("--random-samples", type=int, default=8, help="random-model samples per grammar")
    parser.add_argument("--quick", action="store_true", help="fewer modules and samples (a smoke run)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="lift-bench-") as tmp:
        if args.model:
            model_path = args.model
        else:
            from tests.tiny_model import build_tiny_model

            tokenizer = None
            if args.tokenizer:
                from lift_lsp.generate.backends.local import gguf_file, load_tokenizer

                tokenizer = load_tokenizer(args.tokenizer, gguf_file(args.tokenizer))
            folder = Path(tmp) / "model"
            model_path = str(build_tiny_model(folder, vocab_size=args.vocab, full_stdlib=True, tokenizer=tokenizer))
        backend = LocalBackend(model_path, threads=1)
        backend.load()
    files = library_files(args.quick)
    outputs = {"ir": real_irs(files), "code": list(function_bodies(files))}
    samples = 2 if args.quick else args.random_samples
    report: dict[str, Any] = {
        "machine": machine(),
        "model": {
            "source": args.model or f"random Llama (tests/tiny_model.py), tokenizer: {args.tokenizer or 'trained'}",
            "vocab": backend._vocab_size,
        },
        "files": [str(f) for f in files],
        "goals": GOALS,
        "grammars": {},
    }
    rows = []
    for name, constraint in (("ir", ir_constraint()), ("code", code_constraint())):
        entry: dict[str, Any] = compile_times(backend, constraint)
        realistic: list[tuple[int, int]] = []
        for text in outputs[name][: 12 if args.quick else None]:
            replay(backend, constraint, text, realistic)
        random_times: list[tuple[int, int]] = []
        request = GenerationRequest(MESSAGES, constraint, n=1, max_tokens=512, temperature=1.0)
        prompt = backend.prompt_ids(MESSAGES)
        for seed in range(samples):
            seeded = dataclasses.replace(request, seed=seed)
            backend.sample_tokens(seeded, prompt, backend.compiled_grammar(constraint), mask_times=random_times)
        entry["outputs"] = len(outputs[name][: 12 if args.quick else None])
        entry["realistic"] = summary(realistic)
        entry["random"] = summary(random_times)
        real = entry["realistic"]
        entry["met"] = {
            "mask_p50": real["cpu_p50_us"] <= GOALS["mask_p50_us"],
            "mask_p99": real["cpu_p99_us"] <= GOALS["mask_p99_us"],
            "compile_seen": entry["compile_seen_ms"] < GOALS["compile_seen_ms"],
        }
        report["grammars"][name] = entry
        for source in ("realistic", "random"):
            s = entry[source]
            rows.append(
                (
                    f"{name} {source}",
                    s["steps"],
                    f"{s['cpu_p50_us']:.1f} / {s['cpu_p95_us']:.1f} / {s['cpu_p99_us']:.1f}",
                    f"{s['wall_p50_us']:.1f} / {s['wall_p99_us']:.1f}",
                    f"{entry['compile_first_ms']:.1f} / {entry['compile_seen_ms']:.3f}",
                )
            )
    header = ("grammar, outputs", "steps", "mask CPU p50/p95/p99 us", "wall p50/p99 us", "compile 1st/seen ms")
    print(f"model: {report['model']['source']}, vocabulary {backend._vocab_size}; lift-lsp's LocalBackend decode loop")
    print(table(header, rows))
    for name, entry in report["grammars"].items():
        print(f"{name}: goals met {entry['met']}")
    print(f"wrote {write_json(args.out, report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
