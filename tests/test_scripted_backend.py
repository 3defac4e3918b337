"""The scripted backend that the error-path tests of other modules rely on."""

from __future__ import annotations

import asyncio
import time

import pytest

from lift_lsp.generate.backends.base import Backend, BackendError, GenerationRequest, GenerationResult
from lift_lsp.generate.backends.scripted import ScriptedBackend

REQUEST = GenerationRequest(messages=[{"role": "user", "content": "hi"}], n=2)


def test_satisfies_the_backend_protocol() -> None:
    backend: Backend = ScriptedBackend([])
    assert (backend.id, backend.model) == ("scripted", "scripted")


async def test_replays_steps_in_order_and_records_requests() -> None:
    backend = ScriptedBackend(["same twice", ["first", "second"], lambda request: f"{request.n} candidates", "left"])
    assert (await backend.generate(REQUEST)).texts == ["same twice", "same twice"]
    assert (await backend.generate(REQUEST)).texts == ["first", "second"]
    third = await backend.generate(REQUEST)
    assert third.texts == ["2 candidates", "2 candidates"] and third.finish_reasons == ["stop", "stop"]
    assert backend.remaining == 1
    assert len(backend.requests) == 3 and backend.requests[0] is REQUEST


async def test_callable_may_return_a_result() -> None:
    custom = GenerationResult(texts=["custom"], backend="b", model="m", prompt_tokens=5)
    backend = ScriptedBackend([lambda request: custom])
    assert await backend.generate(REQUEST) is custom


async def test_raises_scripted_errors_then_goes_on() -> None:
    backend = ScriptedBackend([BackendError("timeout", "no answer within 1 s"), "recovered"])
    with pytest.raises(BackendError) as info:
        await backend.generate(REQUEST)
    assert info.value.kind == "timeout" and info.value.message == "no answer within 1 s"
    assert (await backend.generate(REQUEST)).texts == ["recovered", "recovered"]


async def test_a_spent_script_is_an_error() -> None:
    backend = ScriptedBackend(["only"])
    await backend.generate(REQUEST)
    with pytest.raises(BackendError) as info:
        await backend.generate(REQUEST)
    assert info.value.kind == "config" and "no step left" in info.value.message


async def test_sleep_step_then_text_or_error() -> None:
    backend = ScriptedBackend(
        [ScriptedBackend.sleep(0.05, "late"), ScriptedBackend.sleep(0.01, BackendError("http", "HTTP 500"))]
    )
    started = time.monotonic()
    result = await backend.generate(REQUEST)
    assert result.texts == ["late", "late"] and result.latency_s >= 0.05
    assert time.monotonic() - started >= 0.05
    with pytest.raises(BackendError) as info:
        await backend.generate(REQUEST)
    assert info.value.kind == "http"


async def test_cancelling_a_sleeping_step() -> None:
    backend = ScriptedBackend([ScriptedBackend.sleep(10, "never")])
    task = asyncio.create_task(backend.generate(REQUEST))
    await asyncio.sleep(0.02)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1 and backend.cancelled == 1


async def test_wrong_step_type_is_reported() -> None:
    backend = ScriptedBackend([lambda request: 42])  # type: ignore[list-item,return-value]
    with pytest.raises(TypeError):
        await backend.generate(REQUEST)
