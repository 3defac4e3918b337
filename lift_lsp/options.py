"""The server's settings: `initializationOptions` and `workspace/didChangeConfiguration`, validated by pydantic.

Keys are camelCase on the wire (`generation.maxTokensIr`); snake_case is accepted too. An unknown or invalid key is
reported by its name and dropped alone: every other setting keeps the user's value. Settings that only work together
adapt where they can (`generation.bodySyntax = "subset"` sends the grammar as EBNF) and are reported where not.
"""

from __future__ import annotations

import difflib
import json
import os
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
    constraint_format: Literal["json_schema", "ebnf", "structured_outputs"] = "json_schema"
    """How the output grammar is sent, in the server's dialect: `json_schema` (`response_format`, any
    OpenAI-compatible server; a grammar-only constraint such as `generation.bodySyntax: subset` is refused), `ebnf`
    (SGLang's `ebnf` field; serve-model; the modal backend's default), `structured_outputs` (vLLM)."""
    timeout_s: float = Field(default=120.0, gt=0, le=3600)
    """Overall time limit of one model request, in seconds: retries, a cold start (HTTP 503, Modal's 303
    redirects) and the generation itself included."""
    connect_timeout_s: float = Field(default=5.0, gt=0, le=600)
    """Time limit for connecting to the endpoint, in seconds."""
    max_retries: int = Field(default=2, ge=0, le=10)
    """Retries (with backoff) on connection errors, HTTP 429 and 5xx."""


class GenerationOptions(_Section):
    candidates: int = Field(default=4, ge=1, le=16)
    """Code candidates sampled per repair round (one request with `n`). The first round is one greedy candidate, the
    model's own best answer; the first candidate that passes the checks wins."""
    repairs: int = Field(default=2, ge=0, le=8)
    """Repair rounds after a round in which no candidate passed."""
    repair_prompt: Literal["request", "feedback"] = "request"
    """What a repair round asks: `request`, the first request again, its candidates sampled (as pass@k filtering
    does; a small model shown its own failing answer tends to write it again); `feedback`, the conversation so far
    with the last candidate and the checks it failed."""
    ir_source: Literal["model", "spec"] = "spec"
    """Where the code step's IR comes from: `spec`, the IR lift-lsp reads from the spec itself (reverse mode), with no
    model call; `model`, an IR step first (the model writes what the spec leaves out, under the IR grammar, and may
    find the spec open)."""
    max_tokens_ir: int = Field(default=1024, ge=64, le=32768)
    """Token limit of the IR step."""
    max_tokens_code: int = Field(default=1536, ge=64, le=32768)
    """Token limit of each code candidate."""
    temperature: float = Field(default=0.4, ge=0, le=2)
    """Sampling temperature of the repair rounds' candidates (the IR step and the first candidate are greedy)."""
    seed: int | None = None
    """Sampling seed, passed on to the backend; none: the endpoint's choice. Reproducible with the local backend;
    on a server it is the server's business (SGLang needs `--enable-deterministic-inference`)."""
    code_format: Literal["auto", "python", "json"] = "auto"
    """How the model writes code: `python`, the whole function in one Python code block, as code models write it
    (its form held by a grammar, so it needs a backend that takes one: local, serve-model, SGLang's `ebnf`, vLLM's
    `structured_outputs`); `json`, a JSON object with the body, imports and helpers as strings (any backend;
    `bodySyntax: subset` writes it); `auto`, `python` where the backend takes a grammar, else `json`."""
    body_syntax: Literal["free", "subset"] = "free"
    """`subset`: the grammar holds the body to a Python subset that always parses and reads only names it bound
    (the parameters, the accumulator `result`, the loop variables `item` and `value`; statements, `if`/`for`,
    arithmetic, builtins; no imports or helpers). Needs a backend that takes a grammar (local, serve-model, SGLang's
    `ebnf`, vLLM's `structured_outputs`)."""
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
    examples: int = Field(default=500, ge=1, le=100_000)
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
    mode: Literal["bubblewrap", "unsafe-process"] = "bubblewrap"
    """`bubblewrap`: examples run in the OS sandbox (namespaces, read-only mounts, seccomp; needs `bwrap`), else not at
    all. `unsafe-process`: in a plain process guarded only by an audit hook that determined code gets around."""
    tmpfs_mb: int = Field(default=64, ge=1, le=65536)
    """Size of each sandbox's private writable tmpfs (its working directory, HOME and TMPDIR: all files together), in
    MiB."""
    trusted_folders: list[str] = []
    """Folders whose files' examples and module code run on open and save (`~` expands). Elsewhere only hover and the
    static checks work, unless `trustAll` is set."""
    trust_all: bool = False
    """Run examples and module code of every file on open and save. The VS Code extension sets it while the workspace
    is trusted (Workspace Trust)."""

    def trusts(self, path: str | None) -> bool:
        """Whether checks that run code may run on open and save for the file `path` (None: not a file on disk)."""
        if self.trust_all:
            return True
        if path is None:
            return False
        real = os.path.realpath(path)
        for folder in filter(None, self.trusted_folders):
            root = os.path.realpath(os.path.expanduser(folder))
            if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
                return True
        return False


class PythonOptions(_Section):
    interpreter: str = ""
    """Path of the project's Python, which runs the examples (any Python 3.9+); empty: the virtual environment
    holding the file, else `VIRTUAL_ENV`, else a `.venv` or `venv` in the workspace root, else lift-lsp's own."""


class HoverOptions(_Section):
    enabled: bool = True
    """Show the IR on hover."""


class Options(_Section):
    backend: BackendOptions = BackendOptions()
    generation: GenerationOptions = GenerationOptions()
    diagnostics: DiagnosticsOptions = DiagnosticsOptions()
    contracts: ContractOptions = ContractOptions()
    sandbox: SandboxOptions = SandboxOptions()
    python: PythonOptions = PythonOptions()
    hover: HoverOptions = HoverOptions()


def parse_options(raw: Any) -> tuple[Options, list[str]]:
    """Validate settings; return the options in force and one message per rejected key or conflict."""
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
            problems.append(f"unknown setting '{key}' ignored{_did_you_mean(key, [to_camel(n) for n in fields])}")
            continue
        section_type = fields[name].annotation
        assert isinstance(section_type, type) and issubclass(section_type, _Section)
        sections[name] = _section(to_camel(name), section_type, value, problems)
    options = Options(**sections)
    return _reconcile(options, problems), problems


def _section(prefix: str, section_type: type[_Section], value: Any, problems: list[str]) -> _Section:
    """One section from the user's values, each unknown or invalid key reported and dropped alone."""
    if value is None:
        return section_type()
    if not isinstance(value, dict):
        problems.append(
            f"settings '{prefix}' must be an object, got {type(value).__name__}; '{prefix}' uses its defaults"
        )
        return section_type()
    fields = section_type.model_fields
    by_key = {to_camel(name): name for name in fields} | {name: name for name in fields}
    values = dict(value)
    while True:
        try:
            return section_type.model_validate(values)
        except ValidationError as err:
            rejected = {str(e["loc"][0]): e for e in err.errors() if e["loc"] and str(e["loc"][0]) in values}
            if not rejected:  # not a per-key error: nothing can be kept
                problems.append(f"invalid settings '{prefix}' ({err.errors()[0]['msg']}); '{prefix}' uses its defaults")
                return section_type()
            for key, error in rejected.items():
                values.pop(key)
                if error["type"] == "extra_forbidden":
                    hint = _did_you_mean(key, [to_camel(n) for n in fields])
                    problems.append(f"unknown setting '{prefix}.{key}' ignored{hint}")
                else:
                    default = json.dumps(fields[by_key[key]].default)
                    problems.append(f"invalid setting '{prefix}.{key}': {error['msg']}; using its default {default}")


def _did_you_mean(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _reconcile(options: Options, problems: list[str]) -> Options:
    """Settings that only work together: the subset grammar is EBNF, so it needs a backend that takes a grammar."""
    backend, generation = options.backend, options.generation
    takes_grammar = backend.kind in ("none", "local") or backend.constraint_format in ("ebnf", "structured_outputs")
    if generation.code_format == "auto" and backend.kind != "none":  # no backend: nothing to resolve it for
        python = takes_grammar and generation.body_syntax != "subset"  # the subset is a JSON string's grammar
        generation = generation.model_copy(update={"code_format": "python" if python else "json"})
        options = options.model_copy(update={"generation": generation})
    if generation.body_syntax != "subset" or takes_grammar:
        return options
    if "constraint_format" not in backend.model_fields_set:  # openai, modal: send the grammar as EBNF
        return options.model_copy(update={"backend": backend.model_copy(update={"constraint_format": "ebnf"})})
    problems.append(
        'generation.bodySyntax "subset" needs backend.constraintFormat "ebnf" or "structured_outputs" '
        '(it is "json_schema"); generating without the subset grammar'
    )
    return options.model_copy(update={"generation": generation.model_copy(update={"body_syntax": "free"})})


def missing_backend_message(backend: BackendOptions) -> str:
    """Why no backend is in force, naming only what the user did not set."""
    choices = "openai, modal or local"
    if "kind" in backend.model_fields_set:
        return f'backend.kind is "none", which turns generation off; set it to {choices}'
    given = [f"backend.{name}" for name in ("url", "model") if name in backend.model_fields_set]
    if given:
        verb = "is" if len(given) == 1 else "are"
        return f"no valid backend.kind is set ({' and '.join(given)} {verb}); set it to {choices}"
    return f"no backend is configured: set backend.kind ({choices}), backend.url and backend.model"


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
