"""Cost of constrained decoding: grammar compile time (first and cached) and the token mask's time per token against
the model's forward time per token, for the IR and code grammars.

    .venv/bin/python bench/constrained.py [--model PATH_OR_ID] [--vocab 32768] [--hidden 64 --layers 2] [--steps 256]

Without `--model` it builds a random-weight Llama (hidden/layers as given) with a byte-level BPE tokenizer of
`--vocab` tokens trained on this project's sources and the stdlib. A random model never closes a string on its own,
so the decode runs `--steps` steps per sample under the full grammar (mostly inside long strings, where masks are
the most expensive) and for samples under the tightened grammar (`tighten_bounds`) that exercise structure too.
Prints a table and writes `bench/results/constrained.json`.
"""

from __future__ import annotations

import argparse
import inspect
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import xgrammar as xg  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from lift_lsp.benchmark import percentile  # noqa: E402
from lift_lsp.generate.grammar import schema_to_ebnf, tighten_bounds  # noqa: E402
from lift_lsp.spec.ir import IR, CodeCandidate  # noqa: E402

RESULTS = REPO / "bench" / "results" / "constrained.json"
CACHE_ARG = "past_key_values"


def ms(values: list[float]) -> dict[str, float]:
    p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
    assert p50 is not None and p99 is not None, "no steps were timed"
    return {
        "p50_ms": round(p50 * 1e3, 4),
        "p99_ms": round(p99 * 1e3, 4),
        "mean_ms": round(statistics.fmean(values) * 1e3, 4),
    }


def build_model(args: argparse.Namespace, workdir: Path) -> tuple[str, dict[str, Any]]:
    if args.model:
        return args.model, {"source": args.model}
    from tests.tiny_model import build_tiny_model

    started = time.perf_counter()
    path = build_tiny_model(workdir / "model", vocab_size=args.vocab, seed=0, full_stdlib=True)
    if args.hidden != 64 or args.layers != 2:  # a larger random model, same tokenizer
        from transformers import LlamaConfig, LlamaForCausalLM

        config = LlamaConfig.from_pretrained(path)
        config.hidden_size, config.num_hidden_layers = args.hidden, args.layers
        config.intermediate_size = 4 * args.hidden
        config.num_attention_heads, config.num_key_value_heads = max(1, args.hidden // 64), max(1, args.hidden // 128)
        torch.manual_seed(0)
        LlamaForCausalLM(config).save_pretrained(path)
    return str(path), {"source": "random Llama", "build_s": round(time.perf_counter() - started, 2)}


def decode(
    model: Any,
    compiled: Any,
    prompt: list[int],
    tokenizer_size: int,
    vocab_size: int,
    steps: int,
    seed: int,
) -> dict[str, list[float]]:
    """One greedy-free (temperature 1) constrained decode of batch 1, timing each phase of every step."""
    matcher = xg.GrammarMatcher(compiled)
    bitmask = xg.allocate_token_bitmask(1, vocab_size)
    gen = torch.Generator().manual_seed(seed)
    times: dict[str, list[float]] = {"forward": [], "mask": [], "apply": [], "sample_accept": []}
    with torch.inference_mode():
        t0 = time.perf_counter()
        out = model(input_ids=torch.tensor([prompt]), use_cache=True, logits_to_keep=1)
        times["prefill"] = [time.perf_counter() - t0]
        cache = getattr(out, "cache", None) or out.past_key_values
        logits = out.logits[:, -1, :].float()
        for _ in range(steps):
            t0 = time.perf_counter()
            matcher.fill_next_token_bitmask(bitmask)
            t1 = time.perf_counter()
            logits[:, tokenizer_size:] = float("-inf")
            xg.apply_token_bitmask_inplace(logits, bitmask)
            t2 = time.perf_counter()
            token = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=gen)
            assert matcher.accept_token(int(token))
            t3 = time.perf_counter()
            times["mask"].append(t1 - t0)
            times["apply"].append(t2 - t1)
            times["sample_accept"].append(t3 - t2)
            if matcher.is_terminated():
                break
            out = model(input_ids=token, **{CACHE_ARG: cache}, use_cache=True, logits_to_keep=1)
            cache = getattr(out, "cache", None) or out.past_key_values
            logits = out.logits[:, -1, :].float()
            times["forward"].append(time.perf_counter() - t3)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", help="a Hugging Face id or path instead of the random model")
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=256, help="decode steps per sample under the full grammar")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="lift-bench-") as tmp:
        model_path, model_info = build_model(args, Path(tmp))
        tokenizer: Any = AutoTokenizer.from_pretrained(model_path)
        model: Any = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    vocab_size = int(model.get_output_embeddings().weight.shape[0])
    global CACHE_ARG
    CACHE_ARG = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    tokenizer_size = min(len(tokenizer), vocab_size)
    n_params = sum(p.numel() for p in model.parameters())
    t0 = time.perf_counter()
    info = xg.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=[tokenizer.eos_token_id])
    tokenizer_info_s = time.perf_counter() - t0
    messages = [{"role": "user", "content": "spec"}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    prompt = list(tokenizer(text, add_special_tokens=False)["input_ids"])

    report: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpu_threads": args.threads},
        "model": {**model_info, "params": n_params, "vocab_size": vocab_size, "tokenizer_size": tokenizer_size},
        "tokenizer_info_s": round(tokenizer_info_s, 4),
        "grammars": {},
    }
    rows = []
    for name, cls in (("ir", IR), ("code", CodeCandidate)):
        schema = cls.model_json_schema()
        ebnf = schema_to_ebnf(schema)
        compiler = xg.GrammarCompiler(info)
        t0 = time.perf_counter()
        compiled = compiler.compile_grammar(ebnf)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        compiler.compile_grammar(ebnf)
        cached = time.perf_counter() - t0
        t0 = time.perf_counter()
        xg.GrammarCompiler(info).compile_json_schema(json.dumps(schema), any_whitespace=False)
        xgr_schema = time.perf_counter() - t0
        tight = compiler.compile_grammar(schema_to_ebnf(tighten_bounds(schema, max_length=16, max_items=2)))
        merged: dict[str, list[float]] = {}
        for grammar, steps in ((compiled, args.steps), (tight, 4 * args.steps)):
            for seed in range(args.samples):
                for key, values in decode(model, grammar, prompt, tokenizer_size, vocab_size, steps, seed).items():
                    merged.setdefault(key, []).extend(values)
        entry = {
            "compile_first_s": round(first, 4),
            "compile_cached_s": round(cached, 6),
            "xgrammar_json_schema_compile_s": round(xgr_schema, 4),
            "tokens": len(merged["mask"]),
            **{key: ms(values) for key, values in merged.items()},
        }
        report["grammars"][name] = entry
        rows.append((name, entry))

    header = (
        f"{'grammar':<8}{'compile 1st':>12}{'cached':>10}{'xgr schema':>11}{'tokens':>8}"
        f"{'mask p50':>10}{'mask p99':>10}{'fwd p50':>10}{'fwd p99':>10}{'apply p50':>10}"
    )
    print(
        f"model: {report['model']['source']} ({n_params / 1e6:.1f}M params, vocab {vocab_size}, "
        f"tokenizer {tokenizer_size}); TokenizerInfo {tokenizer_info_s:.2f}s; {args.threads} torch thread(s)"
    )
    print(header)
    for name, e in rows:
        print(
            f"{name:<8}{e['compile_first_s'] * 1e3:>10.1f}ms{e['compile_cached_s'] * 1e3:>8.2f}ms"
            f"{e['xgrammar_json_schema_compile_s'] * 1e3:>9.1f}ms{e['tokens']:>8}"
            f"{e['mask']['p50_ms']:>8.3f}ms{e['mask']['p99_ms']:>8.3f}ms"
            f"{e['forward']['p50_ms']:>8.3f}ms{e['forward']['p99_ms']:>8.3f}ms{e['apply']['p50_ms']:>8.3f}ms"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
