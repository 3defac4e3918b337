"""The OpenAI-compatible backend (and the Modal flavour, and the factory) against a real loopback server that
injects faults: each fault gives the expected BackendError kind and message, retries follow the policy, a cancelled
request closes its connection, and the API key never leaks."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lift_lsp.generate.backends.base import BackendError, Constraint, GenerationRequest
from lift_lsp.generate.backends.cache import CachedBackend
from lift_lsp.generate.backends.factory import make_backend
from lift_lsp.generate.backends.modal import modal_backend
from lift_lsp.generate.backends.openai import STARTING_POLL_S, OpenAIBackend, normalize_base_url
from lift_lsp.options import BackendOptions, GenerationOptions
from tests.fault_server import (
    Drop,
    FaultServer,
    Hang,
    Raw,
    Slow,
    Trickle,
    Truncated,
    closed_port,
    ok,
    openai_error,
    status,
    unaccepting_port,
)

KEY = "sk-test-Zq81xKEYxSECRETx55"
MESSAGES = [{"role": "system", "content": "You write JSON."}, {"role": "user", "content": "Say hi."}]
SCHEMA: dict[str, Any] = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(max_hang_s=3.0) as s:
        yield s


def make(url: str, **kw: Any) -> OpenAIBackend:
    options: dict[str, Any] = {
        "api_key": KEY,
        "connect_timeout_s": 0.3,
        "max_retries": 2,
        "backoff_base_s": 0.01,
        "backoff_cap_s": 0.05,
    }
    options.update(kw)
    return OpenAIBackend(url, "test-model", **options)


def request(**kw: Any) -> GenerationRequest:
    options: dict[str, Any] = {"messages": MESSAGES, "timeout_s": 3.0}
    options.update(kw)
    return GenerationRequest(**options)


def leaked(err: BaseException) -> bool:
    """Whether the key shows anywhere a person or a log could see it."""
    text = str(err) + repr(err) + "".join(traceback.format_exception(err)) + getattr(err, "message", "")
    return KEY in text


async def fail(backend: OpenAIBackend, req: GenerationRequest | None = None) -> BackendError:
    with pytest.raises(BackendError) as info:
        await asyncio.wait_for(backend.generate(req or request()), timeout=10)
    assert not leaked(info.value)
    return info.value


# -- the happy path --------------------------------------------------------------------------------------------------


async def test_parses_choices_usage_finish_reasons_and_sends_the_request(server: FaultServer) -> None:
    server.script(ok('{"a": 1}', '{"a": 2}'))
    backend = make(server.url)
    try:
        result = await backend.generate(request(n=2, max_tokens=64, temperature=0.7, seed=3))
    finally:
        await backend.aclose()
    assert result.texts == ['{"a": 1}', '{"a": 2}']
    assert result.finish_reasons == ["stop", "stop"]
    assert (result.prompt_tokens, result.completion_tokens) == (11, 14)
    assert result.backend == "openai" and result.model == "test-model" and not result.cached
    assert result.latency_s > 0
    [sent] = server.requests
    assert sent.method == "POST" and sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert KEY.encode() not in sent.body
    assert sent.json == {
        "model": "test-model",
        "messages": MESSAGES,
        "n": 2,
        "max_tokens": 64,
        "temperature": 0.7,
        "seed": 3,
    }


async def test_no_key_no_authorization_header(server: FaultServer) -> None:
    backend = make(server.url, api_key=None)
    try:
        await backend.generate(request())
    finally:
        await backend.aclose()
    assert "authorization" not in server.requests[0].headers


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://h:30000", "http://h:30000/v1"),
        ("http://h:30000/", "http://h:30000/v1"),
        ("http://h:30000/v1", "http://h:30000/v1"),
        ("http://h:30000/v1/", "http://h:30000/v1"),
        ("http://h:30000/v1/chat/completions", "http://h:30000/v1"),
        ("https://x.modal.run/openai/v1", "https://x.modal.run/openai/v1"),
        ("https://x.modal.run/prefix", "https://x.modal.run/prefix/v1"),
    ],
)
def test_base_url_with_or_without_v1(given: str, expected: str) -> None:
    assert normalize_base_url(given) == expected


def test_url_without_scheme_is_a_config_error() -> None:
    with pytest.raises(BackendError) as info:
        OpenAIBackend("127.0.0.1:30000/v1", "m")
    assert info.value.kind == "config" and "http://" in info.value.message


async def test_base_url_without_v1_reaches_the_endpoint(server: FaultServer) -> None:
    backend = make(f"http://127.0.0.1:{server.port}")
    try:
        await backend.generate(request())
    finally:
        await backend.aclose()
    assert server.requests[0].path == "/v1/chat/completions"


EBNF = 'root ::= "{" "}"'
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "ir_out", "schema": SCHEMA, "strict": True}}
WITH_EBNF = Constraint("json_schema", name="ir out", schema=SCHEMA, ebnf=EBNF)
SCHEMA_ONLY = Constraint("json_schema", name="ir out", schema=SCHEMA)
GRAMMAR = Constraint("ebnf", ebnf=EBNF)
REGEX = Constraint("regex", regex="[0-9]+")


@pytest.mark.parametrize(
    ("constraint", "fmt", "fields"),
    [
        (Constraint("none"), "json_schema", {}),
        (Constraint("none"), "structured_outputs", {}),
        # any OpenAI-compatible server: the JSON schema (a pinning EBNF stays home; the pipeline restores the facts)
        (WITH_EBNF, "json_schema", {"response_format": RESPONSE_FORMAT}),
        (SCHEMA_ONLY, "json_schema", {"response_format": RESPONSE_FORMAT}),
        # SGLang (and serve-model): its `ebnf` and `regex` fields; a schema without EBNF as response_format
        (WITH_EBNF, "ebnf", {"ebnf": EBNF}),
        (SCHEMA_ONLY, "ebnf", {"response_format": RESPONSE_FORMAT}),
        (GRAMMAR, "ebnf", {"ebnf": EBNF}),
        (REGEX, "ebnf", {"regex": "[0-9]+"}),
        # vLLM: structured_outputs
        (WITH_EBNF, "structured_outputs", {"structured_outputs": {"grammar": EBNF}}),
        (SCHEMA_ONLY, "structured_outputs", {"structured_outputs": {"json": SCHEMA}}),
        (GRAMMAR, "structured_outputs", {"structured_outputs": {"grammar": EBNF}}),
        (REGEX, "structured_outputs", {"structured_outputs": {"regex": "[0-9]+"}}),
    ],
)
async def test_constraint_fields(server: FaultServer, constraint: Constraint, fmt: str, fields: dict[str, Any]) -> None:
    backend = make(server.url, constraint_format=fmt)
    try:
        await backend.generate(request(constraint=constraint))
    finally:
        await backend.aclose()
    body = server.requests[0].json
    sent = {k: body[k] for k in ("response_format", "ebnf", "regex", "structured_outputs") if k in body}
    assert sent == fields


@pytest.mark.parametrize("constraint", [GRAMMAR, REGEX], ids=["ebnf", "regex"])
async def test_a_grammar_a_json_schema_server_cannot_take_is_reported_not_dropped(
    server: FaultServer, constraint: Constraint
) -> None:
    backend = make(server.url, constraint_format="json_schema")
    try:
        err = await fail(backend, request(constraint=constraint))
    finally:
        await backend.aclose()
    assert err.kind == "config" and "sends JSON schemas only" in err.message and "'ebnf'" in err.message
    assert server.requests == []  # nothing was sent without its constraint


async def test_503_is_a_cold_start_retried_until_it_answers_with_progress(server: FaultServer) -> None:
    """HTTP 503 (SGLang loading its model) is waited out, not counted against maxRetries, and reported."""
    server.script(*[status(503, "loading", headers={"Retry-After": "0.05"})] * 5, ok("warm now"))
    messages: list[str] = []
    backend = make(server.url, max_retries=0)
    try:
        result = await backend.generate(request(progress=messages.append))
    finally:
        await backend.aclose()
    assert result.texts == ["warm now"] and len(server.requests) == 6
    assert len(messages) == 5 and all(m.startswith("the endpoint is starting: ") and m.endswith(" s") for m in messages)


async def test_an_endpoint_still_starting_at_the_deadline_fails_with_a_clear_message(server: FaultServer) -> None:
    """The next poll of a starting endpoint would pass the deadline: the request fails at once with the endpoint's
    own answer (the deadline is long enough for the first try on a loaded machine; the poll's wait is longer)."""
    server.default = status(503, "loading", headers={"Retry-After": str(STARTING_POLL_S)})
    backend = make(server.url)
    try:
        err = await fail(backend, request(timeout_s=STARTING_POLL_S - 1))
    finally:
        await backend.aclose()
    assert err.kind == "http" and err.message.startswith("endpoint returned HTTP 503 (starting): loading")
    assert f"still starting after the request's {STARTING_POLL_S - 1:.3g} s" in err.message
    assert len(server.requests) == 1


# -- long requests: Modal's 303 to the result ---------------------------------------------------------------------


def modal_like(server: FaultServer) -> OpenAIBackend:
    env = {"MODAL_PROXY_TOKEN_ID": "wk-1", "MODAL_PROXY_TOKEN_SECRET": "ws-2"}
    return modal_backend(server.url, "m", env=env, connect_timeout_s=0.3, max_retries=0)


async def test_a_303_is_followed_to_the_result_with_the_credentials(server: FaultServer) -> None:
    server.script(Slow(0.2, status(303, headers={"Location": "/v1/result?__modal_function_call_id=fc-1"})), ok("x"))
    messages: list[str] = []
    backend = modal_like(server)
    try:
        result = await backend.generate(request(timeout_s=300, progress=messages.append))
    finally:
        await backend.aclose()
    assert result.texts == ["x"]
    post, get = server.requests
    assert (post.method, post.path) == ("POST", "/v1/chat/completions")
    assert (get.method, get.path, get.body) == ("GET", "/v1/result?__modal_function_call_id=fc-1", b"")
    assert get.headers["modal-key"] == "wk-1" and get.headers["modal-secret"] == "ws-2"
    assert [m.split(":")[0] for m in messages] == ["waiting for the endpoint's answer"]


async def test_a_redirect_to_another_origin_is_not_followed(server: FaultServer) -> None:
    server.script(status(303, headers={"Location": "http://127.0.0.2:9/v1/result"}))
    backend = modal_like(server)
    try:
        err = await fail(backend, request(timeout_s=300))
    finally:
        await backend.aclose()
    assert err.kind == "http" and "redirected to another origin (http://127.0.0.2:9/v1/result)" in err.message
    assert len(server.requests) == 1


@pytest.mark.slow
async def test_a_request_that_needs_200_s_succeeds_within_timeout_300() -> None:
    """As a Modal web endpoint does with a long request: no answer for 150 s, then a 303 to the result, which
    comes 50 s later. Only the deadline (300 s) bounds the wait; nothing here depends on the machine's speed."""
    with FaultServer(max_hang_s=300) as server:
        server.script(Slow(150, status(303, headers={"Location": "/v1/result/fc-2"})), Slow(50, ok("late but fine")))
        backend = modal_like(server)
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(backend.generate(request(timeout_s=300)), timeout=320)
        finally:
            await backend.aclose()
        assert result.texts == ["late but fine"] and time.monotonic() - started >= 200
        assert [r.method for r in server.requests] == ["POST", "GET"]


# -- faults ----------------------------------------------------------------------------------------------------------


async def test_refused_connection_is_unreachable_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    port = closed_port()
    backend = make(f"http://127.0.0.1:{port}/v1")
    try:
        err = await fail(backend)
    finally:
        await backend.aclose()
    assert err.kind == "unreachable"
    assert err.message == f"cannot reach http://127.0.0.1:{port}/v1 after 3 attempts (connection refused)"
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    assert KEY not in caplog.text


async def test_connect_timeout_is_retried_then_reported() -> None:
    with unaccepting_port() as port:
        backend = make(f"http://127.0.0.1:{port}/v1", connect_timeout_s=0.2, max_retries=1)
        started = time.monotonic()
        try:
            err = await fail(backend)
        finally:
            await backend.aclose()
    assert err.kind == "timeout"
    assert err.message == f"cannot reach http://127.0.0.1:{port}/v1 after 2 attempts (no connection within 0.2 s)"
    assert 0.35 < time.monotonic() - started < 1.5


async def test_hang_times_out_once_and_the_server_sees_the_disconnect(server: FaultServer) -> None:
    server.script(Hang())
    backend = make(server.url)
    started = time.monotonic()
    try:
        err = await fail(backend, request(timeout_s=0.3))
    finally:
        await backend.aclose()
    elapsed = time.monotonic() - started
    assert err.kind == "timeout"
    assert err.message == f"no answer from {server.url} within 0.3 s"
    assert 0.25 < elapsed < 1.5
    assert len(server.requests) == 1  # a read timeout is not retried
    assert server.requests[0].disconnected.wait(2)


async def test_overall_deadline_bounds_a_slow_answer(server: FaultServer) -> None:
    server.script(Slow(2.0, ok("late")))
    backend = make(server.url)
    started = time.monotonic()
    try:
        err = await fail(backend, request(timeout_s=0.3))
    finally:
        await backend.aclose()
    assert err.kind == "timeout" and err.message == f"no answer from {server.url} within 0.3 s"
    assert time.monotonic() - started < 1.5
    assert server.requests[0].disconnected.wait(2)


async def test_overall_deadline_bounds_an_answer_that_trickles(server: FaultServer) -> None:
    """Each read is well within the read timeout; only the request's deadline stops it."""
    server.script(Trickle(0.05))
    backend = make(server.url)
    started = time.monotonic()
    try:
        err = await fail(backend, request(timeout_s=0.4))
    finally:
        await backend.aclose()
    assert err.kind == "timeout" and err.message == f"no answer from {server.url} within 0.4 s"
    assert 0.35 < time.monotonic() - started < 1.5
    assert server.requests[0].disconnected.wait(2)


async def test_slow_answer_within_the_timeout_succeeds(server: FaultServer) -> None:
    server.script(Slow(0.2, ok("fine")))
    backend = make(server.url)
    try:
        result = await backend.generate(request())
    finally:
        await backend.aclose()
    assert result.texts == ["fine"]
    assert result.latency_s >= 0.2


async def test_500_retried_max_retries_times_then_reported(server: FaultServer) -> None:
    server.script(*[status(500, "boom: CUDA out of memory")] * 3)
    backend = make(server.url)
    try:
        err = await fail(backend)
    finally:
        await backend.aclose()
    assert err.kind == "http"
    assert err.message == "endpoint returned HTTP 500 after 3 attempts: boom: CUDA out of memory"
    assert len(server.requests) == 3


async def test_no_retries_means_one_attempt(server: FaultServer) -> None:
    server.script(status(502, "bad gateway"))
    backend = make(server.url, max_retries=0)
    try:
        err = await fail(backend)
    finally:
        await backend.aclose()
    assert err.message == "endpoint returned HTTP 502: bad gateway"
    assert len(server.requests) == 1


async def test_500_then_success(server: FaultServer) -> None:
    server.script(status(502, "bad gateway"), ok("second time lucky"))
    backend = make(server.url)
    try:
        result = await backend.generate(request())
    finally:
        await backend.aclose()
    assert result.texts == ["second time lucky"]
    assert len(server.requests) == 2


async def test_4xx_is_not_retried_and_shows_the_error_message(server: FaultServer) -> None:
    server.script(openai_error(400, "max_tokens is too large: 99999"))
    backend = make(server.url)
    try:
        err = await fail(backend)
    finally:
        await backend.aclose()
    assert err.kind == "http"
    assert err.message == "endpoint returned HTTP 400: max_tokens is too large: 99999"
    assert len(server.requests) == 1


async def test_401_hint_and_an_echoed_key_is_redacted(server: FaultServer) -> None:
    server.script(openai_error(401, f"invalid api key: Bearer {KEY}"))
    backend = make(server.url, auth_hint="set $LIFT_API_KEY")
    try:
        err = await fail(backend)
    finally:
        await backend.aclose()
    assert err.kind == "http"
    assert err.message == "endpoint returned HTTP 401 (set $LIFT_API_KEY): invalid api key: Bearer ***"


async def test_429_honours_retry_after(server: FaultServer) -> None:
    server.script(openai_error(429, "slow down", {"Retry-After": "1"}), ok("after the pause"))
    backend = make(server.url)
    started = time.monotonic()
    try:
        result = await backend.generate(request())
    finally:
        await backend.aclose()
    elapsed = time.monotonic() - started
    assert result.texts == ["after the pause"]
    first, second = server.requests
    assert 0.95 <= second.received_at - first.received_at < 1.6  # backoff alone would be ~0.01 s
    assert elapsed < 2.0


async def test_429_retry_after_beyond_the_deadline_fails_at_once(server: FaultServer) -> None:
    server.script(openai_error(429, "quota", {"Retry-After": "30"}))
    backend = make(server.url)
    started = time.monotonic()
    try:
        err = await fail(backend, request(timeout_s=2.0))
    finally:
        await backend.aclose()
    assert time.monotonic() - started < 0.5
    assert err.kind == "http"
    assert err.message.startswith("endpoint returned HTTP 429 (rate limited): quota")
    assert "retry after 30 s" in err.message and "2 s deadline" in err.message
    assert len(server.requests) == 1


async def test_429_without_retry_after_uses_backoff_and_counts_attempts(server: FaultServer) -> None:
    server.script(*[status(429, "busy")] * 3)
    backend = make(server.url)
    try:
        err = await fail(backend)
    finally:
        await backend.aclose()
    assert err.message == "endpoint returned HTTP 429 (rate limited) after 3 attempts: busy"
    assert len(server.requests) == 3


async def test_truncated_body_is_malformed_then_the_next_request_works(server: FaultServer) -> None:
    server.script(Truncated(), Truncated(), Truncated(), ok("whole"))
    backend = make(server.url)
    try:
        err = await fail(backend)
        assert err.kind == "malformed"
        assert err.message.startswith("endpoint returned a malformed response after 3 attempts: the connection closed")
        assert len(server.requests) == 3
        result = await backend.generate(request())
    finally:
        await backend.aclose()
    assert result.texts == ["whole"]


async def test_dropped_connection_is_retried(server: FaultServer) -> None:
    server.script(Drop(), ok("ok"))
    backend = make(server.url)
    try:
        result = await backend.generate(request())
    finally:
        await backend.aclose()
    assert result.texts == ["ok"] and len(server.requests) == 2


async def test_non_json_body_is_malformed(server: FaultServer) -> None:
    server.script(Raw("<html>502 Bad Gateway</html>", content_type="text/html"))
    backend = make(server.url)
    try:
        err = await fail(backend)
    finally:
        await backend.aclose()
    assert err.kind == "malformed"
    assert err.message == "endpoint returned a malformed response: not JSON (text/html): '<html>502 Bad Gateway</html>'"
    assert len(server.requests) == 1


async def test_json_without_choices_is_malformed(server: FaultServer) -> None:
    server.script(Raw(json.dumps({"id": "x", "object": "chat.completion", "usage": {}})))
    backend = make(server.url)
    try:
        err = await fail(backend)
    finally:
        await backend.aclose()
    assert err.kind == "malformed"
    assert err.message == "endpoint returned a malformed response: no `choices` (keys: id, object, usage)"


async def test_choice_without_content_is_malformed(server: FaultServer) -> None:
    server.script(Raw(json.dumps({"choices": [{"index": 0, "message": {"role": "assistant"}}]})))
    backend = make(server.url)
    try:
        err = await fail(backend)
    finally:
        await backend.aclose()
    assert err.kind == "malformed" and "choice 0 has no text content" in err.message


async def test_refusal_field(server: FaultServer) -> None:
    server.script(ok("", refusal="I can't help with that."))
    backend = make(server.url)
    try:
        err = await fail(backend)
    finally:
        await backend.aclose()
    assert err.kind == "refused" and err.message == "the model refused: I can't help with that."


async def test_content_filter(server: FaultServer) -> None:
    server.script(ok("", finish_reason="content_filter"))
    backend = make(server.url)
    try:
        err = await fail(backend)
    finally:
        await backend.aclose()
    assert err.kind == "refused" and "content filter" in err.message


async def test_schema_violating_content_is_returned_for_the_caller_to_validate(server: FaultServer) -> None:
    """The backend does not validate: the pipeline parses the text with the IR model and repairs. A text that
    violates the schema arrives verbatim, with its finish reason."""
    server.script(ok('{"b": "not an a"}', finish_reason="length"))
    backend = make(server.url)
    try:
        result = await backend.generate(request(constraint=Constraint("json_schema", schema=SCHEMA)))
    finally:
        await backend.aclose()
    assert result.texts == ['{"b": "not an a"}'] and result.finish_reasons == ["length"]


async def test_cancelling_closes_the_connection(server: FaultServer) -> None:
    server.script(Hang(), ok("after the cancel"))
    backend = make(server.url)
    try:
        task = asyncio.create_task(backend.generate(request(timeout_s=5)))
        assert await asyncio.to_thread(server.wait_for_requests, 1, 3.0)
        assert not server.requests[0].disconnected.is_set()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(server.requests[0].disconnected.wait, 2.0)
        result = await backend.generate(request())  # the client is still usable
    finally:
        await backend.aclose()
    assert result.texts == ["after the cancel"]


async def test_next_request_after_a_timeout_works(server: FaultServer) -> None:
    server.script(Hang(), ok("fresh connection"))
    backend = make(server.url)
    try:
        await fail(backend, request(timeout_s=0.3))
        result = await backend.generate(request())
    finally:
        await backend.aclose()
    assert result.texts == ["fresh connection"]


async def test_key_never_in_errors_or_logs(server: FaultServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.script(
        status(500, f"echo {KEY}"),
        status(500, f"echo {KEY}"),
        status(500, f"echo {KEY}"),
        Truncated(),
        Truncated(),
        Truncated(),
        Raw(f"not json {KEY}"),
        Raw(json.dumps({"error": {"message": KEY}})),
        openai_error(403, KEY),
        ok("", refusal=f"refused {KEY}"),
    )
    backend = make(server.url)
    errors = []
    try:
        for _ in range(6):
            errors.append(await fail(backend))
    finally:
        await backend.aclose()
    assert [e.kind for e in errors] == ["http", "malformed", "malformed", "http", "http", "refused"]
    for err in errors:
        assert KEY not in err.message and not leaked(err)
    assert KEY not in caplog.text
    assert KEY not in repr(backend)


# -- modal and the factory -------------------------------------------------------------------------------------------


async def test_modal_sends_proxy_auth_headers_and_ebnf(server: FaultServer) -> None:
    env = {"MODAL_PROXY_TOKEN_ID": "wk-id123", "MODAL_PROXY_TOKEN_SECRET": "ws-secret456"}
    server.script(openai_error(401, "bad ws-secret456"), ok("{}"))
    backend = modal_backend(server.url, "m", env=env, connect_timeout_s=0.3, max_retries=0)
    assert backend.id == "modal" and backend.constraint_format == "ebnf"
    try:
        with pytest.raises(BackendError) as info:
            await backend.generate(request())
        result = await backend.generate(request(constraint=Constraint("json_schema", schema=SCHEMA, ebnf=EBNF)))
    finally:
        await backend.aclose()
    assert "ws-secret456" not in info.value.message and "MODAL_PROXY_TOKEN_ID" in info.value.message
    assert result.backend == "modal"
    headers = server.requests[1].headers
    assert headers["modal-key"] == "wk-id123" and headers["modal-secret"] == "ws-secret456"
    assert server.requests[1].json["ebnf"] == EBNF and "response_format" not in server.requests[1].json


def test_modal_needs_both_token_variables() -> None:
    with pytest.raises(BackendError) as info:
        modal_backend("https://x.modal.run", "m", env={"MODAL_PROXY_TOKEN_ID": "wk-1"})
    assert info.value.kind == "config" and "MODAL_PROXY_TOKEN_SECRET" in info.value.message


def test_factory_none_and_config_errors(tmp_path: Path) -> None:
    generation = GenerationOptions(cache=False)
    assert make_backend(BackendOptions(kind="none"), generation, env={}) is None
    with pytest.raises(BackendError) as info:
        make_backend(BackendOptions(kind="openai", model="m"), generation, env={})
    assert info.value.kind == "config" and "backend.url" in info.value.message
    with pytest.raises(BackendError) as info:
        make_backend(BackendOptions(kind="openai", url="http://h/v1"), generation, env={})
    assert info.value.kind == "config" and "backend.model" in info.value.message


def test_factory_local_is_lazy_and_reports_a_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(
        sys.modules, "lift_lsp.generate.backends.local", None
    )  # makes the import fail, as without the extra
    with pytest.raises(BackendError) as info:
        make_backend(BackendOptions(kind="local", model="some/model"), GenerationOptions(cache=False), env={})
    assert info.value.kind == "config" and "pip install 'lift-lsp[local]'" in info.value.message


async def test_factory_openai_with_key_from_env_and_cache(server: FaultServer, tmp_path: Path) -> None:
    options = BackendOptions(kind="openai", url=server.url, model="m", api_key_env="MY_KEY", connect_timeout_s=0.3)
    generation = GenerationOptions(cache=True, cache_dir=str(tmp_path / "cache"))
    backend = make_backend(options, generation, env={"MY_KEY": KEY})
    assert isinstance(backend, CachedBackend) and isinstance(backend.inner, OpenAIBackend)
    try:
        first = await backend.generate(request())
        second = await backend.generate(request())
    finally:
        await backend.aclose()
    assert not first.cached and second.cached and second.texts == first.texts
    assert len(server.requests) == 1
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text()


def test_factory_modal_defaults_to_ebnf_unless_chosen() -> None:
    generation = GenerationOptions(cache=False)
    env = {"MODAL_PROXY_TOKEN_ID": "a", "MODAL_PROXY_TOKEN_SECRET": "b"}
    default = make_backend(BackendOptions(kind="modal", url="https://x.modal.run", model="m"), generation, env=env)
    chosen = make_backend(
        BackendOptions(kind="modal", url="https://x.modal.run", model="m", constraint_format="json_schema"),
        generation,
        env=env,
    )
    assert (
        isinstance(default, OpenAIBackend)
        and default.constraint_format == "ebnf"
        and default.id == "modal https://x.modal.run/v1"
    )
    assert isinstance(chosen, OpenAIBackend) and chosen.constraint_format == "json_schema"


async def test_the_backends_timeout_caps_a_longer_request_deadline(server: FaultServer) -> None:
    """`backend.timeoutS` (the backend's own timeout) bounds a request that asks for more, retries included."""
    server.script(Hang())
    backend = make(server.url, timeout_s=0.3)
    started = time.monotonic()
    try:
        err = await fail(backend, request(timeout_s=120))
    finally:
        await backend.aclose()
    assert err.kind == "timeout" and err.message == f"no answer from {server.url} within 0.3 s"
    assert time.monotonic() - started < 5
