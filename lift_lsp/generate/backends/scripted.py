"""A backend that replays a script: for tests of error paths (timeouts, refusals, repairs, cancellation) only.

It never generates anything; use a real backend (openai, modal, local) for anything a user sees.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeAlias

from lift_lsp.generate.backends.base import BackendError, GenerationRequest, GenerationResult

Reply: TypeAlias = str | Sequence[str] | GenerationResult
Step: TypeAlias = str | Sequence[str] | BaseException | Callable[[GenerationRequest], Reply | Awaitable[Reply]]


class ScriptedBackend:
    """For tests only. Each `generate` call takes the next step of `script`:

    - a `str`: the result holds that text `request.n` times; a list of str: those texts (one per candidate);
    - an exception (e.g. `BackendError("timeout", ...)`): raised;
    - a callable `(request) -> str | list[str] | GenerationResult` (or a coroutine function returning one, which may
      sleep to stand for a slow model): its return value, as above; what it raises is raised.

    A spent script raises `BackendError("config", ...)`. `requests` records every request; `cancelled` counts the
    calls that were cancelled while running.
    """

    def __init__(self, script: Sequence[Step], backend_id: str = "scripted", model: str = "scripted") -> None:
        self._script = list(script)
        self._position = 0
        self._id = backend_id
        self._model = model
        self.requests: list[GenerationRequest] = []
        self.cancelled = 0
        self.closed = False

    @property
    def id(self) -> str:
        return self._id

    @property
    def model(self) -> str:
        return self._model

    @property
    def remaining(self) -> int:
        """Steps not yet used."""
        return len(self._script) - self._position

    @staticmethod
    def sleep(seconds: float, then: str | BaseException = "") -> Callable[[GenerationRequest], Awaitable[Reply]]:
        """A step that sleeps `seconds` (cancellable), then returns `then` or raises it."""

        async def step(request: GenerationRequest) -> Reply:
            await asyncio.sleep(seconds)
            if isinstance(then, BaseException):
                raise then
            return then

        return step

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self.requests.append(request)
        if self._position >= len(self._script):
            raise BackendError("config", f"the scripted backend has no step left ({len(self._script)} used)")
        step = self._script[self._position]
        self._position += 1
        started = time.monotonic()
        if isinstance(step, BaseException):
            raise step
        try:
            reply: object = step(request) if callable(step) else step
            if inspect.isawaitable(reply):
                reply = await reply
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        latency = time.monotonic() - started
        if isinstance(reply, GenerationResult):
            return reply
        if isinstance(reply, str):
            texts = [reply] * request.n
        elif isinstance(reply, Sequence) and all(isinstance(text, str) for text in reply):
            texts = list(reply)
        else:
            raise TypeError(f"a scripted step returned {type(reply).__name__}, not str, list[str] or GenerationResult")
        return GenerationResult(
            texts=texts,
            latency_s=latency,
            backend=self._id,
            model=self._model,
            finish_reasons=["stop"] * len(texts),
        )

    async def aclose(self) -> None:
        self.closed = True
