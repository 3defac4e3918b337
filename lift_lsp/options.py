"""The server's settings: `initializationOptions` and `workspace/didChangeConfiguration`, validated by pydantic.

Keys are camelCase on the wire (`generation.maxTokensIr`); snake_case is accepted too. A setting that does not
validate is reported and its whole section falls back to the defaults; the rest still applies.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel


class _Section(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", use_attribute_docstrings=True
    )


class BackendOptions(_Section):
    kind: Literal["none", "openai", "modal", "local"] = "none"
    """Which backend generates code; `none` disables generation (hover and diagnostics still work)."""
    url: str = ""
    """Base URL of an OpenAI-compatible endpoint, e.g. `http://127.0.0.1:30000/v1` (openai, modal)."""
    model: str = ""
    """Model name sent to the endpoint, or a Hugging Face id / local path (local)."""
    api_key_env: str = "LIFT_API_KEY"
    """Name of the environment variable holding the endpoint's API key (the key itself is never a setting)."""
    constraint_format: Literal["json_schema", "ebnf"] = "json_schema"
    """How the output grammar is sent: `response_format` JSON schema, or SGLang's `ebnf` field."""
    timeout_s: float = Field(default=120.0, gt=0, le=3600)
    """Overall time limit of one model request, in seconds."""
    connect_timeout_s: float = Field(default=5.0, gt=0, le=600)
    """Time limit for connecting to the endpoint, in seconds."""
    max_retries: int = Field(default=2, ge=0, le=10)
    """Retries (with backoff) on connection errors, HTTP 429 and 5xx."""


class GenerationOptions(_Section):
    candidates: int = Field(default=2, ge=1, le=16)
    """Code candidates asked for per round (one request with `n`); the first that passes the checks wins."""
    repairs: int = Field(default=2, ge=0, le=8)
    """Repair rounds after a round in which no candidate passed, each with the last error fed back."""
    max_tokens_ir: int = Field(default=1024, ge=64, le=32768)
    """Token limit of the IR step."""
    max_tokens_code: int = Field(default=1536, ge=64, le=32768)
    """Token limit of each code candidate."""
    temperature: float = Field(default=0.2, ge=0, le=2)
    """Sampling temperature (repair rounds use at least 0.4)."""
    seed: int | None = None
    """Sampling seed, for reproducible generations; none: the endpoint's choice."""
    body_syntax: Literal["free", "subset"] = "free"
    """`subset`: the grammar holds the body to a Python subset that always parses (statements, `if`/`for`, arithmetic,
    builtins; no imports or helpers). Needs a backend that takes EBNF (local, serve-model, SGLang)."""
    cache: bool = True
    """Answer a repeated request (same backend, model, grammar, messages, parameters) from the disk cache."""
    cache_dir: str = ""
    """Where generations are cached; empty: the user cache directory (`~/.cache/lift-lsp`)."""


class DiagnosticsOptions(_Section):
    on_save: bool = True
    """Check a file when it is saved."""
    on_open: bool = True
    """Check a file when it is opened."""
    examples: bool = True
    """Run docstring examples in the sandbox (with the contracts checked on each)."""
    time_budget_s: float = Field(default=20.0, gt=0, le=600)
    """Time limit of one file's examples, in seconds."""


class ContractOptions(_Section):
    enabled: bool = True
    """Check postconditions (PEP 316 `post:`, `post[...]`, `__old__`, `raises:`) against the code: z3 proofs, then
    Hypothesis and CrossHair in the sandbox; each counterexample is replayed before it is reported."""
    examples: int = Field(default=1000, ge=1, le=100_000)
    """Inputs Hypothesis tries per postcondition."""
    condition_timeout_s: float = Field(default=2.0, gt=0, le=600)
    """CPU time of each engine (Hypothesis, CrossHair) per postcondition, in seconds (CrossHair's
    `--per_condition_timeout`)."""
    file_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    """Time limit of all contract checks of one file, in seconds; functions left when it runs out say "not checked"."""


class SandboxOptions(_Section):
    example_timeout_s: float = Field(default=2.0, gt=0, le=600)
    """Time limit of one example (or one generated candidate's example), in seconds."""
    file_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    """Time limit of all examples of one file (or one candidate), in seconds."""
    memory_mb: int = Field(default=512, ge=32, le=65536)
    """Address-space limit of each sandbox process, in MiB (code importing torch needs about 2048)."""
    max_output_bytes: int = Field(default=10000, ge=100, le=10_000_000)
    """Output kept from each example; the rest is dropped."""
    workers: int = Field(default=2, ge=1, le=32)
    """Sandbox processes running examples in parallel."""


class HoverOptions(_Section):
    enabled: bool = True
    """Show the IR on hover."""


class Options(_Section):
    backend: BackendOptions = BackendOptions()
    generation: GenerationOptions = GenerationOptions()
    diagnostics: DiagnosticsOptions = DiagnosticsOptions()
    contracts: ContractOptions = ContractOptions()
    sandbox: SandboxOptions = SandboxOptions()
    hover: HoverOptions = HoverOptions()


def parse_options(raw: Any) -> tuple[Options, list[str]]:
    """Validate settings; return the options in force and one message per rejected section or key."""
    if raw is None:
        return Options(), []
    if not isinstance(raw, dict):
        return Options(), [f"lift-lsp settings must be an object, got {type(raw).__name__}; using defaults"]
    problems: list[str] = []
    sections: dict[str, Any] = {}
    fields = Options.model_fields
    by_alias = {to_camel(name): name for name in fields} | {name: name for name in fields}
    for key, value in raw.items():
        name = by_alias.get(key)
        if name is None:
            problems.append(f"unknown setting '{key}' ignored")
            continue
        section_type = fields[name].annotation
        assert isinstance(section_type, type) and issubclass(section_type, _Section)
        try:
            sections[name] = section_type.model_validate(value if value is not None else {})
        except ValidationError as err:
            details = "; ".join(f"{key}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
            problems.append(f"invalid settings ({details}); '{key}' uses its defaults")
    return Options(**sections), problems


def settings_table() -> list[tuple[str, str, Any]]:
    """Every setting as (dotted camelCase key, type, default): the README and the editor clients use this list."""
    return [(key, type_name, default) for key, type_name, default, _ in settings_rows()]


def settings_rows() -> list[tuple[str, str, Any, str]]:
    """Every setting as (dotted camelCase key, type, default, description)."""
    rows: list[tuple[str, str, Any, str]] = []
    for section_name, section_field in Options.model_fields.items():
        section_type = section_field.annotation
        assert isinstance(section_type, type) and issubclass(section_type, _Section)
        for name, field in section_type.model_fields.items():
            annotation = field.annotation
            type_name = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
            description = " ".join((field.description or "").split())
            rows.append((f"{to_camel(section_name)}.{to_camel(name)}", type_name, field.default, description))
    return rows


def settings_markdown() -> str:
    """The README's table of settings."""
    lines = ["| setting | default | what it does |", "| --- | --- | --- |"]
    for key, _, default, description in settings_rows():
        lines.append(f"| `{key}` | `{json.dumps(default)}` | {description} |")
    return "\n".join(lines)
