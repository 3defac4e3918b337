"""Memory of the local backend's grammar cache: distinct pinned-IR grammars compiled one after another.

    .venv/bin/python -m bench.grammar_cache [--model FILE.gguf] [--grammars 1000] [--every 100] [--limit-mib N]

Reads `--grammars` distinct functions (each its own name and parameters) with `extract_file`, makes each one's
`pinned_ir_constraint` and compiles it the way the local backend does (`grammar_compiler`, `compile_constraint`),
with the tokenizer of a real model: by default the pinned SmolLM2-135M GGUF (fetched if it is not in the cache; the
vocabulary size is the tokenizer's, no weights are loaded). Every `--every` grammars it prints the process's resident
memory and the size XGrammar reports for its compiler's cache (`GrammarCompiler.get_cache_size_bytes`), against the
limit (`GRAMMAR_CACHE_BYTES`, or `--limit-mib`); writes `bench/results/grammar_cache.json`.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

from lift_lsp.generate.backends.local import (
    GRAMMAR_CACHE_BYTES,
    LocalBackend,
    compile_constraint,
    gguf_file,
    grammar_compiler,
    load_tokenizer,
)
from lift_lsp.generate.constraints import pinned_ir_constraint
from lift_lsp.spec.ir import IR
from lift_lsp.spec.reverse import extract_file

OUT = Path("bench") / "results" / "grammar_cache.json"
MIB = 2**20
FUNCTION = '''def step_{i}(count_{i}: int, label_{i}: str = "n{i}") -> int:
    """Add {i} to count_{i}.

    >>> step_{i}(1)
    {next}
    """
    return count_{i} + {i}


'''


def distinct_irs(n: int) -> list[IR]:
    """The IRs of `n` functions that differ in name, parameters and example, read from one module's source."""
    source = "".join(FUNCTION.format(i=i, next=i + 1) for i in range(n))
    irs = [fir.ir for fir in extract_file(source, types=False)]
    assert len(irs) == n
    return irs


def rss_bytes() -> int:
    """The process's resident memory now (Linux's /proc), else its peak so far."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def compiler_for(model: str, limit_bytes: int) -> Any:
    """The local backend's grammar compiler for the model's tokenizer, with the given cache limit."""
    tokenizer = load_tokenizer(model, gguf_file(model))
    stop_ids = LocalBackend._find_stop_ids(tokenizer, None)
    return grammar_compiler(tokenizer, len(tokenizer), stop_ids, limit_bytes)


def measure(model: str, grammars: int, every: int, limit_bytes: int) -> dict[str, Any]:
    """Compile `grammars` distinct pinned-IR grammars; a row of memory figures every `every` grammars."""
    irs = distinct_irs(grammars)
    compiler = compiler_for(model, limit_bytes)
    rows: list[dict[str, Any]] = [{"grammars": 0, "rss_mib": round(rss_bytes() / MIB, 1), "cache_mib": 0.0}]
    print(f"{'grammars':>8} {'RSS MiB':>9} {'cache MiB':>10} {'s':>6}", flush=True)
    print(f"{0:>8} {rows[0]['rss_mib']:>9} {0.0:>10} {0.0:>6}", flush=True)
    started = time.perf_counter()
    for done, ir in enumerate(irs, 1):
        compile_constraint(compiler, pinned_ir_constraint(ir))
        if done % every == 0 or done == grammars:
            row = {
                "grammars": done,
                "rss_mib": round(rss_bytes() / MIB, 1),
                "cache_mib": round(compiler.get_cache_size_bytes() / MIB, 1),
                "seconds": round(time.perf_counter() - started, 1),
            }
            rows.append(row)
            print(f"{done:>8} {row['rss_mib']:>9} {row['cache_mib']:>10} {row['seconds']:>6}", flush=True)
    return {"model": model, "limit_mib": round(limit_bytes / MIB, 1), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a GGUF file or tokenizer (default: the pinned SmolLM2-135M GGUF)")
    parser.add_argument("--grammars", type=int, default=1000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--limit-mib", type=float, help="the compiler's cache limit (default: GRAMMAR_CACHE_BYTES)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not args.model:
        from lift_lsp.generate.models import fetch

        args.model = str(fetch("smollm2-135m-instruct"))
    limit = int(args.limit_mib * MIB) if args.limit_mib is not None else GRAMMAR_CACHE_BYTES
    report = measure(args.model, args.grammars, args.every, limit)
    peak = max(row["cache_mib"] for row in report["rows"])
    print(f"cache limit {report['limit_mib']} MiB; largest cache size seen {peak} MiB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
