"""The CPU engine for GGUF files: llama.cpp (llama-cpp-python) computes the logits, XGrammar masks every step.

llama.cpp runs the quantized weights as they are (a 0.5B model in under 0.5 GB), where transformers dequantizes
them to float32 (2.5 GB, read in full at every token). One sequence at a time: the candidates of a request decode
one after the other, and each prompt is evaluated only from where it parts from the sequence already in the KV cache
(the candidates share their prompt; a repair round extends the round before it). Tokens the grammar forces (JSON
keys, punctuation, the pinned parts of an IR, a function's own opening) are not decoded one model step each: XGrammar
reports the text they spell (`find_jump_forward_string`); its tokens, as the tokenizer splits it, are accepted and
evaluated as one batch with the sampled token before them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lift_lsp.generate.backends.base import BackendError, GenerationRequest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
"""llama.cpp's OpenMP threads sleep while they wait for each other instead of spinning: on a machine whose cores
other work also uses, a spinning thread holds a core another one needs (bench/engine_speed.py measures both)."""
CONTEXT_TOKENS = 8192
"""The KV cache's size: a prompt and its answer together."""
BATCH_TOKENS = 512


_LOADING = threading.Lock()


@contextmanager
def _without_extra_buffers() -> Iterator[None]:
    """Models loaded meanwhile keep their weights in plain CPU buffers (llama.cpp's `use_extra_bufts` off): on CPUs
    with AMX (Intel Sapphire Rapids and later), llama.cpp moves the weights into AMX buffers, and its AMX matrix
    product crashes the process with a segmentation fault (ggml-org/llama.cpp#20824, not fixed). llama-cpp-python's
    `Llama` takes no such argument: it builds its parameters from `llama_model_default_params`, so the defaults are
    changed while it loads."""
    import llama_cpp.llama_cpp as native

    defaults = native.llama_model_default_params

    def plain_buffers() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    with _LOADING:
        native.llama_model_default_params = plain_buffers
        try:
            yield
        finally:
            native.llama_model_default_params = defaults


class LlamaEngine:
    """A GGUF model loaded by llama.cpp, and the token sequence its KV cache holds."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as err:
            raise BackendError("config", f"the llama.cpp engine needs llama-cpp-python installed: {err}") from err
        try:
            with _without_extra_buffers():
                self._llama: Any = Llama(
                    model_path=str(path),
                    n_ctx=CONTEXT_TOKENS,
                    n_batch=BATCH_TOKENS,
                    n_threads=threads,
                    n_threads_batch=threads,
                    logits_all=False,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as err:  # llama.cpp refuses a file it cannot read as a model
            raise BackendError("config", f"llama.cpp cannot load {path}: {err}") from err
        self.vocab_size = int(self._llama.n_vocab())
        self.evaluated = 0
        """Tokens evaluated since loading (prompt tokens served from the KV cache are not)."""

    def start(self, tokens: list[int]) -> Any:
        """Make `tokens` the sequence, evaluating only what differs from the cached one; the next token's logits."""
        llama = self._llama
        cached = llama.input_ids[: llama.n_tokens]
        shared, limit = 0, min(len(cached), len(tokens) - 1)  # at least one token is evaluated: its logits are needed
        while shared < limit and cached[shared] == tokens[shared]:
            shared += 1
        llama.n_tokens = shared  # `eval` drops the KV cache past this point
        return self.extend(tokens[shared:])

    def extend(self, tokens: list[int]) -> Any:
        """Append `tokens` to the sequence (one batch); the logits after the last, as a float32 numpy vector."""
        import numpy as np

        if self._llama.n_tokens + len(tokens) > CONTEXT_TOKENS:
            raise BackendError("config", f"prompt and answer exceed the engine's {CONTEXT_TOKENS} tokens of context")
        self._llama.eval(tokens)
        self.evaluated += len(tokens)
        return np.ctypeslib.as_array(self._llama._ctx.get_logits(), shape=(self.vocab_size,)).copy()


MaskFill = Callable[[Any, Any], None]
"""Fills row 0 of a bitmask with a matcher's next-token mask (and times it)."""


@dataclass
class Decoding:
    """What one candidate's decoding needs besides the engine."""

    request: GenerationRequest
    grammar: Any
    """A compiled XGrammar grammar, or None (unconstrained: the stop tokens end it)."""
    stop_ids: list[int]
    tokenizer_size: int
    """Logits past this index are the embedding's padding rows, never sampled."""
    fill_mask: MaskFill
    cancel: threading.Event | None
    deadline: float
    encode: Callable[[str], list[int]]
    """The model's own tokenization of a text (no special tokens)."""
    jump_forward: bool = True


def decode(engine: LlamaEngine, prompt: list[int], job: Decoding, generator: Any) -> tuple[list[int], str]:
    """One candidate after `prompt`: its token ids (the stop token included) and finish reason."""
    import torch
    import xgrammar as xg

    request = job.request
    matcher = xg.GrammarMatcher(job.grammar) if job.grammar is not None else None
    bitmask = xg.allocate_token_bitmask(1, engine.vocab_size) if matcher is not None else None
    logits = engine.start(prompt)
    out: list[int] = []
    while len(out) < request.max_tokens:
        if job.cancel is not None and job.cancel.is_set():
            raise BackendError("cancelled", "generation cancelled")
        if time.monotonic() > job.deadline:
            raise BackendError("timeout", f"generation took longer than {request.timeout_s:g}s")
        scores = torch.from_numpy(logits).unsqueeze(0)
        scores[:, job.tokenizer_size :] = float("-inf")
        if matcher is not None and bitmask is not None:
            job.fill_mask(matcher, bitmask)
            xg.apply_token_bitmask_inplace(scores, bitmask)
        token = _pick(scores[0], request.temperature, generator)
        out.append(token)
        if matcher is None:
            if token in job.stop_ids:
                return out, "stop"
            logits = engine.extend([token])
            continue
        if not matcher.accept_token(token):
            raise BackendError("malformed", f"grammar rejected sampled token {token}")
        if matcher.is_terminated():
            return out, "stop"
        forced = _forced_tokens(matcher, job.encode, request.max_tokens - len(out)) if job.jump_forward else []
        out.extend(forced)
        logits = engine.extend([token, *forced])
    return out, "length"


def _forced_tokens(matcher: Any, encode: Callable[[str], list[int]], room: int) -> list[int]:
    """The tokens of the text the grammar forces next, accepted by the matcher (at most `room`). The text is split
    into tokens by the model's own tokenizer, as it splits text it reads: XGrammar's own split takes the longest
    tokens (4 spaces, then `\"\"\"`, where the tokenizer writes 3 spaces, then ` \"\"\"`), and a model fed such splits
    imitates them (it indented its body by 5 spaces). Trailing spaces are left to the model, which writes a space
    with the word after it (forced alone, `from ` was followed by ` typing`)."""
    forced = matcher.find_jump_forward_string().rstrip(" \t")
    if not forced:
        return []
    accepted: list[int] = []
    for token in encode(forced)[:room]:
        if not matcher.accept_token(token):
            break
        accepted.append(token)
    return accepted


def _pick(scores: Any, temperature: float, generator: Any) -> int:
    import torch

    if temperature <= 0:
        return int(scores.argmax())
    probs = torch.softmax(scores / temperature, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))
