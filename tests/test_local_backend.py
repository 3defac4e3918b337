"""The local backend (transformers + XGrammar in process) on a tiny random-weight model.

A random model never chooses to stop: it terminates only because the grammar bounds every string and array. The
IR's own bounds allow outputs of thousands of tokens, so these tests tighten them (`tighten_bounds`); anything the
tightened schema accepts, the IR's accepts too, and the outputs are validated with the real pydantic models.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lift_lsp.generate.backends.base import BackendError, Constraint, GenerationRequest
from lift_lsp.generate.backends.local import LocalBackend
from lift_lsp.generate.grammar import constraint_for, schema_to_ebnf, tighten_bounds
from lift_lsp.spec.ir import IR, CodeCandidate

MESSAGES = [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": "def f(x): ..."}]


def tight(model: type[IR] | type[CodeCandidate], max_length: int) -> Constraint:
    schema = tighten_bounds(model.model_json_schema(), max_length=max_length, max_items=2, max_properties=2)
    return Constraint(kind="json_schema", name=model.__name__, schema=schema, ebnf=schema_to_ebnf(schema))


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> Iterator[LocalBackend]:
    b = LocalBackend(str(tiny_model_dir), threads=1)
    yield b
    asyncio.run(b.aclose())


async def test_ir_twenty_samples_validate(backend: LocalBackend) -> None:
    request = GenerationRequest(MESSAGES, tight(IR, 8), n=20, max_tokens=3000, temperature=1.0, seed=11)
    result = await backend.generate(request)
    assert len(result.texts) == 20 and result.finish_reasons == ["stop"] * 20
    irs = [IR.model_validate_json(text) for text in result.texts]
    assert len({text for text in result.texts}) == 20  # temperature 1.0: the candidates differ
    assert any(ir.signature.parameters for ir in irs)
    assert result.backend == "local" and result.model == backend.model
    assert result.prompt_tokens > 5 and result.completion_tokens >= sum(len(t) for t in result.texts) // 8


async def test_code_twenty_samples_validate(backend: LocalBackend) -> None:
    request = GenerationRequest(MESSAGES, tight(CodeCandidate, 24), n=20, max_tokens=2000, temperature=1.0, seed=5)
    result = await backend.generate(request)
    assert result.finish_reasons == ["stop"] * 20
    candidates = [CodeCandidate.model_validate_json(text) for text in result.texts]
    assert any(c.body for c in candidates) and len(set(result.texts)) == 20


async def test_full_code_grammar_is_enforced_until_the_token_limit(backend: LocalBackend) -> None:
    """With the real (loose) bounds the random model mostly runs out of tokens; what it wrote is still on the grammar.
    (Which sample stops early depends on the tokenizer, trained on this package's sources: either way is checked.)"""
    result = await backend.generate(
        GenerationRequest(MESSAGES, constraint_for(CodeCandidate), n=4, max_tokens=40, temperature=1.0, seed=3)
    )
    assert "length" in result.finish_reasons and result.completion_tokens <= 4 * 40
    for text, reason in zip(result.texts, result.finish_reasons, strict=True):
        assert text.startswith('{"imports": [')
        if reason == "stop":  # finished within the limit: then it is a whole candidate
            CodeCandidate.model_validate_json(text)
        else:
            assert reason == "length"


async def test_same_seed_same_texts_and_greedy_is_deterministic(backend: LocalBackend) -> None:
    request = GenerationRequest(MESSAGES, tight(CodeCandidate, 12), n=3, max_tokens=600, temperature=1.0, seed=42)
    first, second = await backend.generate(request), await backend.generate(request)
    assert first.texts == second.texts
    greedy = await backend.generate(
        GenerationRequest(MESSAGES, tight(CodeCandidate, 12), n=2, max_tokens=600, temperature=0.0)
    )
    assert greedy.texts[0] == greedy.texts[1]
    CodeCandidate.model_validate_json(greedy.texts[0])


async def test_regex_and_ebnf_constraints(backend: LocalBackend) -> None:
    regex = await backend.generate(
        GenerationRequest(MESSAGES, Constraint(kind="regex", regex=r"(yes|no) [0-9]{2}"), n=6, temperature=1.0, seed=1)
    )
    assert all(re.fullmatch(r"(yes|no) [0-9]{2}", t) for t in regex.texts), regex.texts
    ebnf = await backend.generate(
        GenerationRequest(MESSAGES, Constraint(kind="ebnf", ebnf='root ::= "x" [a-c]{1,3}'), n=6, seed=2)
    )
    assert all(re.fullmatch(r"x[a-c]{1,3}", t) for t in ebnf.texts), ebnf.texts


async def test_unconstrained_runs_to_max_tokens(backend: LocalBackend) -> None:
    result = await backend.generate(GenerationRequest(MESSAGES, n=2, max_tokens=7, temperature=1.0, seed=0))
    assert result.finish_reasons == ["length", "length"] and result.completion_tokens == 14


async def test_invalid_grammar_is_a_config_error(backend: LocalBackend) -> None:
    with pytest.raises(BackendError) as err:
        await backend.generate(GenerationRequest(MESSAGES, Constraint(kind="ebnf", ebnf="root ::= ")))
    assert err.value.kind == "config"


async def test_timeout(backend: LocalBackend) -> None:
    with pytest.raises(BackendError) as err:
        await backend.generate(GenerationRequest(MESSAGES, max_tokens=100_000, timeout_s=0.3, seed=0))
    assert err.value.kind == "timeout"


async def test_cancelling_the_task_stops_the_generation(backend: LocalBackend) -> None:
    backend.load()
    task = asyncio.create_task(backend.generate(GenerationRequest(MESSAGES, max_tokens=100_000, seed=0)))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    started = time.monotonic()  # the worker is free again at once (it is one thread: a running job would block)
    result = await backend.generate(GenerationRequest(MESSAGES, max_tokens=3, seed=0))
    assert result.completion_tokens == 3 and time.monotonic() - started < 5


def test_cancel_flag_ends_a_running_job_with_cancelled(backend: LocalBackend) -> None:
    import threading

    flag = threading.Event()
    job = backend.submit(GenerationRequest(MESSAGES, max_tokens=100_000, seed=0), flag)
    time.sleep(0.3)
    flag.set()
    error = job.exception(timeout=10)
    assert isinstance(error, BackendError) and error.kind == "cancelled"


def test_padded_embedding_rows_are_never_sampled(backend: LocalBackend, tiny_model_dir: Path) -> None:
    """The model's vocabulary is larger than the tokenizer's (as in real checkpoints); the extra ids are masked."""
    from transformers import AutoTokenizer

    tokenizer_size = len(AutoTokenizer.from_pretrained(tiny_model_dir))
    backend.load()
    request = GenerationRequest(MESSAGES, n=8, max_tokens=100, temperature=3.0, seed=9)
    tokens, _ = backend.sample_tokens(request, backend.prompt_ids(MESSAGES), None)
    assert backend._vocab_size > tokenizer_size  # the fixture pads the embedding
    assert sum(len(seq) for seq in tokens) > 300
    assert max(max(seq) for seq in tokens) < tokenizer_size
