"""The one interface every generation backend implements."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, Protocol

ConstraintKind = Literal["json_schema", "ebnf", "regex", "none"]


@dataclass(frozen=True)
class Constraint:
    """What the output must match. A `json_schema` constraint may carry `ebnf`, an equivalent grammar that bounds
    string lengths and still allows JSON escapes (XGrammar's own schema conversion does not allow escapes in a
    length-bounded string); backends that compile grammars themselves use it."""

    kind: ConstraintKind = "none"
    name: str = "output"
    schema: dict[str, Any] | None = None
    ebnf: str | None = None
    regex: str | None = None

    @cached_property
    def key(self) -> str:
        """A stable hash of the constraint, for caches (computed once: a grammar is kilobytes)."""
        payload = json.dumps(
            [self.kind, self.name, self.schema, self.ebnf, self.regex], sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class GenerationRequest:
    messages: list[dict[str, str]]
    """Chat messages: [{"role": "system"|"user"|"assistant", "content": ...}]."""
    constraint: Constraint = field(default_factory=Constraint)
    n: int = 1
    max_tokens: int = 1024
    temperature: float = 0.0
    seed: int | None = None
    """Passed on to the server; whether it makes outputs reproducible is the server's business."""
    timeout_s: float = 120.0
    """The whole request's deadline: retries, waits for a starting endpoint and redirects included."""
    progress: Callable[[str], None] | None = field(default=None, compare=False)
    """Called with messages a person waiting for the answer wants to see ("the endpoint is starting: 40 s")."""


@dataclass(frozen=True)
class GenerationResult:
    texts: list[str]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    backend: str = ""
    model: str = ""
    finish_reasons: list[str] = field(default_factory=list)
    cached: bool = False


FailureKind = Literal["unreachable", "timeout", "http", "malformed", "refused", "cancelled", "config"]


class BackendError(Exception):
    """A generation that failed, with a message fit to show the user."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class Backend(Protocol):
    """`generate` is a coroutine; cancelling its task cancels the generation (and closes any HTTP request)."""

    @property
    def id(self) -> str: ...

    @property
    def model(self) -> str: ...

    async def generate(self, request: GenerationRequest) -> GenerationResult: ...

    async def aclose(self) -> None: ...
