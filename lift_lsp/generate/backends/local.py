"""In-process generation: a model's logits with XGrammar's token bitmask applied to each step.

The model and tokenizer load lazily (on first use, or `load()`), by Hugging Face id, local folder or GGUF file. Two
engines compute the logits: transformers (any of the three; the `n` candidates of a request decode as one batch
sharing the prompt's KV cache, finished rows leaving the batch), and for a GGUF file on the CPU llama.cpp
(`llama_engine.py`: the quantized weights as they are, forced tokens evaluated in one batch) when llama-cpp-python is
installed. One `GrammarCompiler` serves the tokenizer and keeps the compiled grammars, up to a byte limit. The work
runs on a dedicated worker thread (one generation at a time); cancelling the awaiting task stops it before the next
step.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from lift_lsp.generate.backends.base import BackendError, Constraint, GenerationRequest, GenerationResult
from lift_lsp.generate.backends.llama_engine import Decoding, LlamaEngine, decode

_DTYPES = ("float32", "float16", "bfloat16", "auto")
Engine = Literal["auto", "transformers", "llama.cpp"]
GRAMMAR_CACHE_BYTES = 256 * 1024 * 1024
"""What XGrammar's compiler may keep of compiled grammars (it drops the least recently used past this)."""


def gguf_file(model: str) -> Path | None:
    """The GGUF file `model` names, or None for a hub id or a folder."""
    path = Path(model).expanduser()
    return path if path.suffix.lower() == ".gguf" and path.is_file() else None


def load_tokenizer(model: str, gguf: Path | None) -> Any:
    """The model's Hugging Face tokenizer. A GGUF file's is converted from its metadata once (that takes seconds)
    and kept in a folder beside it, `FILE.gguf.tokenizer/`, where that folder can be written."""
    from transformers import AutoTokenizer

    if gguf is None:
        return AutoTokenizer.from_pretrained(model)
    kept = gguf.with_name(gguf.name + ".tokenizer")
    stamp = f"{gguf.stat().st_size} {gguf.stat().st_mtime_ns}"
    stamp_file = kept / "lift-lsp-source"
    if stamp_file.is_file() and stamp_file.read_text() == stamp:
        return AutoTokenizer.from_pretrained(str(kept))
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    try:
        tokenizer.save_pretrained(str(kept))
        stamp_file.write_text(stamp)
    except OSError:  # a read-only folder: converted again next time
        pass
    return tokenizer


def grammar_compiler(
    tokenizer: Any, vocab_size: int, stop_ids: list[int], cache_limit_bytes: int = GRAMMAR_CACHE_BYTES
) -> Any:
    """XGrammar's compiler for the tokenizer; it keeps the compiled grammars up to `cache_limit_bytes`."""
    import xgrammar as xg

    info = xg.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=stop_ids)
    return xg.GrammarCompiler(info, cache_limit_bytes=cache_limit_bytes)


def compile_constraint(compiler: Any, c: Constraint) -> Any:
    """The constraint compiled by `compiler` (which caches it); BackendError for an invalid one."""
    try:
        if c.kind == "json_schema":
            if c.ebnf is not None:
                return compiler.compile_grammar(c.ebnf)
            if c.schema is None:
                raise BackendError("config", "json_schema constraint without a schema")
            from lift_lsp.generate.grammar import schema_to_ebnf

            try:
                return compiler.compile_grammar(schema_to_ebnf(c.schema))
            except ValueError:  # outside the bounded subset: XGrammar's own conversion
                return compiler.compile_json_schema(json.dumps(c.schema), any_whitespace=False)
        if c.kind == "ebnf" and c.ebnf is not None:
            return compiler.compile_grammar(c.ebnf)
        if c.kind == "regex" and c.regex is not None:
            return compiler.compile_regex(c.regex)
    except BackendError:
        raise
    except Exception as e:  # XGrammar reports grammar errors as RuntimeError and friends
        raise BackendError("config", f"invalid {c.kind} constraint: {e}") from e
    raise BackendError("config", f"{c.kind} constraint without its {c.kind}")


def _fallback_prompt(messages: list[dict[str, str]]) -> str:
    """A plain transcript, for tokenizers without a chat template."""
    lines = [f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages]
    return "\n\n".join(lines) + "\n\nassistant: "


class LocalBackend:
    """`Backend` over a local transformers model. `device`: a torch device ("cpu", "cuda", "cuda:1", "mps");
    `dtype`: "float32", "float16", "bfloat16" or "auto" (None: float32 on CPU, the checkpoint's dtype elsewhere).
    `threads`: torch's intra-op threads (process-wide; None leaves torch's default; 1 suits tiny models on a busy
    machine). `mask_threads`: threads XGrammar uses to fill a batch's token masks. `engine`: "llama.cpp" or
    "transformers" for a GGUF file ("auto": llama.cpp on the CPU when it is installed); other models always load with
    transformers."""

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        dtype: str | None = None,
        *,
        threads: int | None = None,
        mask_threads: int = 1,
        engine: Engine = "auto",
    ) -> None:
        if dtype is not None and dtype not in _DTYPES:
            raise BackendError("config", f"unknown dtype {dtype!r} (one of {', '.join(_DTYPES)})")
        self._model_name = model
        self.device = device
        self.dtype = dtype
        self.threads = threads
        self.mask_threads = mask_threads
        self.engine = engine
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lift-local")
        self._tokenizer: Any = None
        self._model: Any = None
        self._llama: LlamaEngine | None = None
        self._compiler: Any = None
        self._batch_matcher: Any = None
        self._vocab_size = 0
        self._tokenizer_size = 0
        self._stop_ids: list[int] = []
        self._cache_arg = "past_key_values"
        self._logits_to_keep = False

    @property
    def id(self) -> str:
        return "local"

    @property
    def model(self) -> str:
        return self._model_name

    # -- loading ------------------------------------------------------------------------------------------------

    def load(self) -> None:
        """Load tokenizer, model and grammar compiler (idempotent, thread-safe)."""
        with self._load_lock:
            if self._model is not None or self._llama is not None:
                return
            try:
                import torch
                import xgrammar as xg
            except ImportError as e:  # pragma: no cover - depends on the install
                raise BackendError("config", f"the local backend needs lift-lsp[local] installed: {e}") from e
            if self.threads is not None:
                torch.set_num_threads(self.threads)
            gguf = gguf_file(self._model_name)
            try:
                tokenizer = load_tokenizer(self._model_name, gguf)
                if gguf is not None and self._engine_for_gguf() == "llama.cpp":
                    self._llama = LlamaEngine(gguf, self.threads)
                    vocab_size, generation_config = self._llama.vocab_size, None
                else:
                    model = self._load_transformers(gguf)
                    vocab_size = int(model.get_output_embeddings().weight.shape[0])
                    generation_config = getattr(model, "generation_config", None)
            except (OSError, ValueError, RuntimeError) as e:
                raise BackendError("config", f"cannot load model {self._model_name!r}: {e}") from e
            stop_ids = self._find_stop_ids(tokenizer, generation_config)
            if not stop_ids:
                raise BackendError("config", f"model {self._model_name!r} has no EOS token")
            self._compiler = grammar_compiler(tokenizer, vocab_size, stop_ids)
            self._batch_matcher = xg.BatchGrammarMatcher(self.mask_threads)
            self._tokenizer, self._vocab_size, self._stop_ids = tokenizer, vocab_size, stop_ids
            self._tokenizer_size = min(len(tokenizer), vocab_size)
            if self._llama is None:
                self._model = model

    def _engine_for_gguf(self) -> str:
        if self.engine != "auto":
            return self.engine
        return "llama.cpp" if self.device == "cpu" and importlib.util.find_spec("llama_cpp") else "transformers"

    def _load_transformers(self, gguf: Path | None) -> Any:
        import torch
        from transformers import AutoModelForCausalLM

        dtype = self.dtype or ("float32" if self.device == "cpu" else "auto")
        kwargs: dict[str, Any] = {"dtype": dtype if dtype == "auto" else getattr(torch, dtype)}
        if gguf is not None:  # transformers dequantizes the GGUF's tensors
            model: Any = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, **kwargs)
        else:
            model = AutoModelForCausalLM.from_pretrained(self._model_name, **kwargs)
        model.to(self.device)
        model.eval()
        # transformers 5.x renamed `past_key_values` to `cache`
        params = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self._logits_to_keep = "logits_to_keep" in params
        return model

    @staticmethod
    def _find_stop_ids(tokenizer: Any, gen: Any) -> list[int]:
        ids: list[int] = []
        candidates: list[Any] = [tokenizer.eos_token_id]
        if gen is not None:
            candidates.append(gen.eos_token_id)
        for c in candidates:
            for i in c if isinstance(c, list) else [c]:
                if isinstance(i, int) and i not in ids:
                    ids.append(i)
        return ids

    # -- grammars -----------------------------------------------------------------------------------------------

    def compiled_grammar(self, constraint: Constraint) -> Any:
        """The compiled grammar for a constraint (XGrammar's compiler caches it), or None when unconstrained."""
        if constraint.kind == "none":
            return None
        self.load()
        return self._compile(constraint)

    def _compile(self, c: Constraint) -> Any:
        return compile_constraint(self._compiler, c)

    # -- generation ---------------------------------------------------------------------------------------------

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        self.load()
        tok = self._tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            return list(tok(text, add_special_tokens=False)["input_ids"])
        return list(tok(_fallback_prompt(messages))["input_ids"])

    def submit(self, request: GenerationRequest, cancel: threading.Event | None = None) -> Future[GenerationResult]:
        """Queue a generation on the worker thread; setting `cancel` stops it before its next step."""
        return self._executor.submit(self.generate_sync, request, cancel)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        cancel = threading.Event()
        job = self.submit(request, cancel)
        try:
            return await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            cancel.set()  # a running job stops before its next step; a queued one never starts
            job.cancel()
            raise

    def generate_sync(self, request: GenerationRequest, cancel: threading.Event | None = None) -> GenerationResult:
        """Generate on the calling thread (`submit` runs it on the worker thread)."""
        started = time.monotonic()
        if request.n < 1 or request.max_tokens < 1:
            raise BackendError("config", "n and max_tokens must be at least 1")
        self.load()
        grammar = self.compiled_grammar(request.constraint)
        prompt = self.prompt_ids(request.messages)
        tokens, reasons = self.sample_tokens(request, prompt, grammar, cancel, started + request.timeout_s)
        texts = [self._tokenizer.decode([t for t in seq if t not in self._stop_ids]) for seq in tokens]
        return GenerationResult(
            texts=texts,
            prompt_tokens=len(prompt),
            completion_tokens=sum(len(seq) for seq in tokens),
            latency_s=time.monotonic() - started,
            backend=self.id,
            model=self.model,
            finish_reasons=reasons,
        )

    def _forward(self, input_ids: Any, cache: Any) -> tuple[Any, Any]:
        kwargs: dict[str, Any] = {"input_ids": input_ids, "use_cache": True}
        if self._logits_to_keep:
            kwargs["logits_to_keep"] = 1  # the prompt's last position only
        if cache is not None:
            kwargs[self._cache_arg] = cache
        out = self._model(**kwargs)
        new_cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        return out.logits[:, -1, :], new_cache

    def sample_tokens(
        self,
        req: GenerationRequest,
        prompt: list[int],
        grammar: Any,
        cancel: threading.Event | None = None,
        deadline: float = float("inf"),
        mask_times: list[tuple[int, int]] | None = None,
    ) -> tuple[list[list[int]], list[str]]:
        """Decode `req.n` candidates after `prompt` under `grammar` (a compiled grammar or None): their token ids
        (stop token included) and finish reasons. `mask_times` receives each step's token-mask time as (thread CPU
        ns, wall ns) (bench/constrained.py)."""
        if self._llama is not None:
            return self._sample_llama(self._llama, req, prompt, grammar, cancel, deadline, mask_times)
        import torch
        import xgrammar as xg

        n, device = req.n, self.device
        if self.threads is not None and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)  # OpenMP's setting is per thread: apply it on this one too
        out: list[list[int]] = [[] for _ in range(n)]
        reasons = ["length"] * n
        matchers = [xg.GrammarMatcher(grammar) for _ in range(n)] if grammar is not None else None
        bitmask = xg.allocate_token_bitmask(n, self._vocab_size) if grammar is not None else None
        gen = torch.Generator(device=device)
        if req.seed is None:
            gen.seed()
        else:
            gen.manual_seed(req.seed)
        stop = torch.tensor(self._stop_ids, device=device)
        active = list(range(n))  # row i of the batch decodes candidate active[i]
        with torch.inference_mode():
            logits, cache = self._forward(torch.tensor([prompt], device=device), None)
            if n > 1:
                if hasattr(cache, "batch_repeat_interleave"):
                    cache.batch_repeat_interleave(n)
                    logits = logits.repeat(n, 1)
                else:
                    logits, cache = self._forward(torch.tensor([prompt] * n, device=device), None)
            for step in range(req.max_tokens):
                if cancel is not None and cancel.is_set():
                    raise BackendError("cancelled", "generation cancelled")
                if time.monotonic() > deadline:
                    raise BackendError("timeout", f"generation took longer than {req.timeout_s:g}s")
                logits = logits.float()
                if self._tokenizer_size < logits.shape[-1]:
                    logits[:, self._tokenizer_size :] = float("-inf")  # padding rows of the embedding
                if matchers is not None and bitmask is not None:
                    if step == 0:
                        self._fill_masks([matchers[i] for i in active], bitmask, mask_times)
                    xg.apply_token_bitmask_inplace(logits, bitmask[: len(active)].to(logits.device))
                if req.temperature <= 0:
                    next_ids = logits.argmax(dim=-1)
                else:
                    probs = torch.softmax(logits / req.temperature, dim=-1)
                    next_ids = torch.multinomial(probs, 1, generator=gen).squeeze(1)
                picked = next_ids.tolist()
                is_stop = torch.isin(next_ids, stop).tolist()
                keep: list[int] = []
                for row, seq in enumerate(active):
                    token = picked[row]
                    out[seq].append(token)
                    if matchers is not None:
                        if not matchers[seq].accept_token(token):
                            raise BackendError("malformed", f"grammar rejected sampled token {token}")
                        done = matchers[seq].is_terminated()
                    else:
                        done = is_stop[row]
                    if done:
                        reasons[seq] = "stop"
                    else:
                        keep.append(row)
                if not keep or step == req.max_tokens - 1:
                    break
                if len(keep) < len(active):
                    index = torch.tensor(keep, device=device)
                    cache.batch_select_indices(index)
                    next_ids = next_ids[index]
                    active = [active[row] for row in keep]
                if matchers is not None and bitmask is not None:
                    # The next step's masks right after the tokens were accepted, before the model runs: the
                    # matchers' data is then still in the CPU's cache.
                    self._fill_masks([matchers[i] for i in active], bitmask, mask_times)
                logits, cache = self._forward(next_ids.unsqueeze(1), cache)
        return out, reasons

    def _sample_llama(
        self,
        engine: LlamaEngine,
        req: GenerationRequest,
        prompt: list[int],
        grammar: Any,
        cancel: threading.Event | None,
        deadline: float,
        mask_times: list[tuple[int, int]] | None,
    ) -> tuple[list[list[int]], list[str]]:
        """`sample_tokens` on llama.cpp: the candidates one after the other, each from the shared prompt."""
        import torch

        generator = torch.Generator()
        if req.seed is None:
            generator.seed()
        else:
            generator.manual_seed(req.seed)
        job = Decoding(
            req,
            grammar,
            self._stop_ids,
            self._tokenizer_size,
            lambda matcher, bitmask: self._fill_masks([matcher], bitmask, mask_times),
            cancel,
            deadline,
            lambda text: list(self._tokenizer.encode(text, add_special_tokens=False)),
        )
        decoded = [decode(engine, prompt, job, generator) for _ in range(req.n)]
        return [tokens for tokens, _ in decoded], [reason for _, reason in decoded]

    def _fill_masks(self, matchers: list[Any], bitmask: Any, mask_times: list[tuple[int, int]] | None) -> None:
        """Row i of `bitmask` gets matcher i's token mask: on this thread, or on XGrammar's threads when several
        rows can share them (the batch call costs more per step than one matcher's own call)."""
        cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
        if self.mask_threads > 1 and len(matchers) > 1:
            self._batch_matcher.batch_fill_next_token_bitmask(matchers, bitmask)
        else:
            for index, matcher in enumerate(matchers):
                matcher.fill_next_token_bitmask(bitmask, index)
        if mask_times is not None:
            mask_times.append((time.thread_time_ns() - cpu, time.perf_counter_ns() - wall))

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
