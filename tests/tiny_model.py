"""Build a tiny, random-weight causal LM with a real byte-level BPE tokenizer, trained on standard-library text.

It knows nothing, but it has everything a real Hugging Face checkpoint has (tokenizer files with a chat template and
an EOS token, a config, safetensors weights), so the local backend loads it through the same code path. Its
embedding is padded past the tokenizer's vocabulary, as real checkpoints often are.

One thing it is taught: its output layer favours tokens that hold a double quote (`QUOTE_LOGIT` more, on every step),
so that it ends JSON strings after a few tokens, as a real model does. lift-lsp's grammars leave string lengths to
pydantic (a length budget in the grammar makes every token mask slower), so a model that never chose to close a
string would write strings longer than the IR allows.
"""

from __future__ import annotations

import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
EOS = "<|im_end|>"
MAX_TOKEN_CHARS = 16
"""No token longer (a line of 100 dashes as one token would make any string too long for a name)."""
QUOTE_LOGIT = 8.0
"""How much more likely (in logits) a token with a double quote is than the model's random choice would make it."""
STDLIB_SAMPLE = [
    "json/__init__.py", "json/decoder.py", "json/encoder.py", "json/tool.py", "textwrap.py", "string.py", "heapq.py",
    "argparse.py", "dataclasses.py", "typing.py", "enum.py", "inspect.py", "ast.py", "functools.py", "statistics.py",
]  # fmt: skip
"""The tokenizer's training text: fixed for a given Python, so that an edit to this project's own sources never
changes the vocabulary (and with it every output of the random model the tests rely on)."""


def corpus_files(full_stdlib: bool = False) -> list[Path]:
    """Some standard-library modules (all of the stdlib's top level if asked)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(stdlib.glob("*.py")) if full_stdlib else [stdlib / name for name in STDLIB_SAMPLE]
    return [f for f in files if f.is_file()]


def _texts(files: list[Path]) -> Iterator[str]:
    for f in files:
        yield f.read_text(encoding="utf-8", errors="replace")


def build_tokenizer(out_dir: Path, vocab_size: int = 4096, full_stdlib: bool = False) -> int:
    """Train a byte-level BPE tokenizer and save it as a `PreTrainedTokenizerFast`; returns its vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        max_token_length=MAX_TOKEN_CHARS,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_texts(corpus_files(full_stdlib)), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, pad_token="<|endoftext|>", bos_token=None, unk_token=None
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out_dir)
    return len(fast)


def build_tiny_model(
    out_dir: Path, vocab_size: int = 4096, seed: int = 0, full_stdlib: bool = False, tokenizer: Any = None
) -> Path:
    """Tokenizer + a 2-layer Llama (hidden 64) with seeded random weights, saved to `out_dir`. `tokenizer`: a real
    model's tokenizer (its vocabulary and chat template) instead of one trained here."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out_dir.mkdir(parents=True, exist_ok=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(out_dir)
        n_tokens = len(tokenizer)
    else:
        n_tokens = build_tokenizer(out_dir, vocab_size, full_stdlib)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out_dir)
    eos_id = tok.eos_token_id if tokenizer is not None else tok.convert_tokens_to_ids(EOS)
    pad_id = tok.convert_tokens_to_ids("<|endoftext|>") if tokenizer is None else tok.pad_token_id or eos_id
    config = LlamaConfig(
        vocab_size=(n_tokens // 64 + 1) * 64,  # padded: larger than the tokenizer, as in real checkpoints
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    _favour_quotes(model, [i for i in range(n_tokens) if '"' in tok.decode([i])])
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id)
    model.save_pretrained(out_dir)
    return out_dir


def _favour_quotes(model: Any, quote_ids: list[int]) -> None:
    """Give every position's hidden state a constant feature (dimension 0 of each input embedding is 1, so after
    the final norm it is about sqrt(hidden size)), and read it only in the output rows of `quote_ids`."""
    import torch

    with torch.no_grad():
        model.get_input_embeddings().weight[:, 0] = 1.0
        head = model.get_output_embeddings().weight
        head[:, 0] = 0.0
        head[quote_ids, 0] = QUOTE_LOGIT / model.config.hidden_size**0.5


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("tiny-model")
    print(build_tiny_model(target))
