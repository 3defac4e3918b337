"""A backend for any OpenAI-compatible `/chat/completions` endpoint (SGLang, vLLM, llama.cpp, OpenAI, ...).

The output constraint travels in the server's own dialect (`constraint_format`):

- `json_schema`: `response_format` with the JSON schema, which every OpenAI-compatible server takes. A constraint that
  is only a grammar (EBNF, regex; e.g. the Python-subset body) is refused with a message, never dropped; a JSON
  schema constraint whose EBNF pins more than its schema (the stub's signature) sends the schema.
- `ebnf`: SGLang's `ebnf` and `regex` fields (also `lift-lsp serve-model`); a schema without an EBNF goes as
  `response_format`.
- `structured_outputs`: vLLM's `structured_outputs` (`grammar`, `regex`, `json`).

`request.timeout_s` is the whole request's deadline, retries, waits and redirects included (capped by the backend's
own `timeout_s`, the `backend.timeoutS` setting, when that is smaller). Retries with capped,
jittered exponential backoff on connection errors, HTTP 429 (honouring `Retry-After`) and 5xx; never on other 4xx.
HTTP 503 means the endpoint is starting (SGLang while it loads the model): it is retried until the deadline, not
counted, and reported through `request.progress` ("the endpoint is starting: N s"). A 303 (Modal's web endpoints
answer one after 150 s, to a URL that gives the result) is followed with GET, same origin only. Every failure is a
`BackendError` whose message a person can act on, and the API key (or any other secret header) never appears in a
message, a log line or an exception text. `seed` is passed on; whether it makes outputs reproducible is the
server's business (SGLang needs `--enable-deterministic-inference`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import json
import logging
import random
import re
import socket
import ssl
import time
from typing import Any, Literal, NoReturn
from urllib.parse import urlsplit, urlunsplit

import httpx

from lift_lsp.generate.backends.base import BackendError, Constraint, FailureKind, GenerationRequest, GenerationResult

log = logging.getLogger(__name__)

ConstraintFormat = Literal["json_schema", "ebnf", "structured_outputs"]
CONSTRAINT_FORMATS: tuple[ConstraintFormat, ...] = ("json_schema", "ebnf", "structured_outputs")
MAX_REDIRECTS = 50
"""Redirects followed for one request (Modal answers a 303 every 150 s while a request runs)."""
STARTING_POLL_S = 5.0
"""Longest wait between two tries while the endpoint answers 503 (starting)."""

_SECRET_HEADER = re.compile(r"authorization|key|secret|token|cookie", re.IGNORECASE)
_VERSION_SEGMENT = re.compile(r"^v\d+[a-z0-9]*$")
_EXCERPT_CHARS = 300


def normalize_base_url(url: str) -> str:
    """The endpoint's base URL ending in its API version (`.../v1`), without a trailing slash.

    `http://h:30000`, `http://h:30000/`, `http://h:30000/v1/` and `http://h:30000/v1/chat/completions` all give
    `http://h:30000/v1`; a path that already has a version segment (`/openai/v1`, `/v2`) is kept as it is.
    """
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BackendError("config", f"the endpoint URL must start with http:// or https://, got {display_url(text)!r}")
    path = parts.path.rstrip("/")
    for suffix in ("/chat/completions", "/completions"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    if not any(_VERSION_SEGMENT.match(segment) for segment in path.split("/")):
        path = f"{path}/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def display_url(url: str) -> str:
    """`url` without user info or query string, fit for messages (those parts may carry credentials)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.3g}"


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _EXCERPT_CHARS else flat[:_EXCERPT_CHARS] + "…"


def _connect_reason(exc: BaseException) -> str:
    """Why a connection failed, in words: walk the exception chain down to the OS error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, socket.gaierror):
            return "host name not found"
        if isinstance(current, ssl.SSLError):
            return f"TLS error: {current.reason or current}"
        if isinstance(current, ConnectionResetError):
            return "connection reset"
        if isinstance(current, OSError) and current.strerror:
            return current.strerror.lower()
        current = current.__cause__ or current.__context__
    return str(exc) or type(exc).__name__


def _retry_after_s(value: str | None) -> float | None:
    """`Retry-After` in seconds: delta-seconds (a fraction is accepted) or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_message(body: str) -> str:
    """The `error.message` of an OpenAI- or SGLang-style error body, else an excerpt of the body."""
    try:
        data = json.loads(body)
    except ValueError:
        return _excerpt(body) or "(empty body)"
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return _excerpt(error["message"])
        if isinstance(error, str):
            return _excerpt(error)
        if isinstance(data.get("message"), str):
            return _excerpt(data["message"])
        if isinstance(data.get("detail"), str):
            return _excerpt(data["detail"])
    return _excerpt(body)


def _report(request: GenerationRequest, message: str) -> None:
    log.info("%s", message)
    if request.progress is not None:
        request.progress(message)


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]
    return cleaned or "output"


class _Retryable(Exception):
    """One failed attempt that may be retried. The message is `head + after + tail`, where `after` says how many
    attempts were made (" after 3 attempts") once the retries are spent."""

    def __init__(
        self, kind: FailureKind, head: str, tail: str, wait_s: float | None = None, starting: bool = False
    ) -> None:
        super().__init__(head + tail)
        self.kind: FailureKind = kind
        self.head = head
        self.tail = tail
        self.wait_s = wait_s
        self.starting = starting
        """The endpoint said it is starting (HTTP 503): retried until the deadline, not counted."""

    def message(self, attempts: int = 1) -> str:
        after = f" after {attempts} attempts" if attempts > 1 else ""
        return f"{self.head}{after}{self.tail}"


class OpenAIBackend:
    """httpx against an OpenAI-compatible server. `url` is the base URL, with or without the trailing `/v1`."""

    def __init__(
        self,
        url: str,
        model: str,
        api_key: str | None = None,
        constraint_format: ConstraintFormat = "json_schema",
        timeout_s: float | None = None,
        connect_timeout_s: float = 5,
        max_retries: int = 2,
        headers: dict[str, str] | None = None,
        backend_id: str = "openai",
        *,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 8.0,
        auth_hint: str = "check the API key / credentials the endpoint expects",
    ) -> None:
        if constraint_format not in CONSTRAINT_FORMATS:
            raise BackendError(
                "config", f"constraint format must be one of {', '.join(CONSTRAINT_FORMATS)}, got {constraint_format!r}"
            )
        self._base_url = normalize_base_url(url)
        self._endpoint = f"{self._base_url}/chat/completions"
        self._shown_url = display_url(self._base_url)
        self._model = model
        self._backend_id = backend_id
        self.constraint_format: ConstraintFormat = constraint_format
        self.timeout_s = timeout_s
        """`backend.timeoutS`: no request outlives it (a request's deadline is the smaller of this and its own)."""
        self.connect_timeout_s = connect_timeout_s
        self.max_retries = max(0, max_retries)
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.auth_hint = auth_hint
        self._headers: dict[str, str] = {"Content-Type": "application/json", "User-Agent": "lift-lsp"}
        self._secrets: list[str] = []
        for name, value in (headers or {}).items():
            self._headers[name] = value
            if _SECRET_HEADER.search(name) and value:
                self._secrets.append(value)
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
            self._secrets.append(api_key)
        self._secrets.sort(key=len, reverse=True)
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    @property
    def id(self) -> str:
        return self._backend_id

    @property
    def model(self) -> str:
        return self._model

    @property
    def base_url(self) -> str:
        return self._base_url

    def __repr__(self) -> str:
        return f"OpenAIBackend(id={self._backend_id!r}, url={self._shown_url!r}, model={self._model!r})"

    # -- the request -----------------------------------------------------------------------------------------------

    def build_body(self, request: GenerationRequest) -> dict[str, Any]:
        """The JSON body of `/chat/completions` for `request`."""
        body: dict[str, Any] = {
            "model": self._model,
            "messages": request.messages,
            "n": request.n,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        body.update(self._constraint_fields(request.constraint))
        return body

    def _constraint_fields(self, constraint: Constraint) -> dict[str, Any]:
        """The request fields that carry `constraint` in this server's dialect."""
        if constraint.kind == "none":
            return {}
        grammar = {"json_schema": constraint.ebnf, "ebnf": constraint.ebnf, "regex": None}.get(constraint.kind)
        if constraint.kind == "regex":
            if not constraint.regex:
                raise BackendError("config", f"constraint {constraint.name!r} is a regex constraint without a regex")
        elif constraint.kind == "ebnf" and not grammar:
            raise BackendError("config", f"constraint {constraint.name!r} is an EBNF constraint without a grammar")
        elif constraint.kind == "json_schema" and constraint.schema is None:
            raise BackendError("config", f"constraint {constraint.name!r} is a JSON schema constraint without a schema")
        elif constraint.kind not in ("json_schema", "ebnf"):
            raise BackendError("config", f"unknown constraint kind {constraint.kind!r}")
        if self.constraint_format == "ebnf":
            if grammar:
                return {"ebnf": grammar}
            return {"regex": constraint.regex} if constraint.kind == "regex" else self._response_format(constraint)
        if self.constraint_format == "structured_outputs":
            if grammar:
                return {"structured_outputs": {"grammar": grammar}}
            if constraint.kind == "regex":
                return {"structured_outputs": {"regex": constraint.regex}}
            return {"structured_outputs": {"json": constraint.schema}}
        if constraint.kind != "json_schema":
            raise BackendError(
                "config",
                f"the {constraint.name!r} output is constrained by a grammar ({constraint.kind}), and"
                f" backend.constraintFormat 'json_schema' sends JSON schemas only; choose 'ebnf' (SGLang, lift-lsp"
                " serve-model) or 'structured_outputs' (vLLM) for an endpoint that takes grammars",
            )
        return self._response_format(constraint)

    @staticmethod
    def _response_format(constraint: Constraint) -> dict[str, Any]:
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": _safe_name(constraint.name), "schema": constraint.schema, "strict": True},
            }
        }

    def _client_for_loop(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop or self._client.is_closed:
            # A client's pooled connections belong to the loop that opened them; a new loop needs a new client.
            timeout = httpx.Timeout(None, connect=self.connect_timeout_s)  # reads: bounded by each request's deadline
            self._client = httpx.AsyncClient(headers=self._headers, follow_redirects=False, timeout=timeout)
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._client_loop is asyncio.get_running_loop():
            await client.aclose()

    # -- generate --------------------------------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        body = self.build_body(request)
        payload = json.dumps(body).encode()
        client = self._client_for_loop()
        started = time.monotonic()
        if self.timeout_s is not None and self.timeout_s < request.timeout_s:
            request = dataclasses.replace(request, timeout_s=self.timeout_s)
        deadline = started + request.timeout_s
        attempts = 1 + self.max_retries
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    self._fail("timeout", f"no answer from {self._shown_url} within {_fmt_s(request.timeout_s)} s")
                data = await self._attempt(client, payload, request, started, deadline)
            except _Retryable as failure:
                if not failure.starting:
                    attempt += 1
                    if attempt == attempts:
                        self._fail(failure.kind, failure.message(attempts))
                wait = self._wait_before_retry(failure, attempt, request, deadline - time.monotonic())
                if failure.starting:
                    _report(request, f"the endpoint is starting: {time.monotonic() - started:.0f} s")
                else:
                    log.warning(
                        "%s: attempt %d of %d failed (%s); retrying in %s s",
                        self._backend_id,
                        attempt,
                        attempts,
                        self._redact(failure.message()),
                        _fmt_s(wait),
                    )
                await asyncio.sleep(wait)
                continue
            return self._parse(data, request, time.monotonic() - started)

    def _wait_before_retry(
        self, failure: _Retryable, attempt: int, request: GenerationRequest, remaining: float
    ) -> float:
        """Seconds to wait before the next try; fails when that wait would pass the deadline."""
        if failure.wait_s is not None:
            wait = failure.wait_s
        elif failure.starting:
            wait = STARTING_POLL_S
        else:
            backoff = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - 1))
            wait = backoff * (0.5 + random.random() / 2)
        if failure.starting:
            wait = min(wait, STARTING_POLL_S)
        if wait >= remaining:
            message = failure.message(max(attempt, 1))
            if failure.starting:
                message += f" (still starting after the request's {_fmt_s(request.timeout_s)} s)"
            elif failure.wait_s is not None:
                message += (
                    f" (it asks to retry after {_fmt_s(wait)} s, beyond the request's"
                    f" {_fmt_s(request.timeout_s)} s deadline)"
                )
            self._fail(failure.kind, message)
        return wait

    async def _attempt(
        self, client: httpx.AsyncClient, payload: bytes, request: GenerationRequest, started: float, deadline: float
    ) -> Any:
        """One POST, following redirects; returns the decoded JSON of a 200, raises `_Retryable` or
        `BackendError`. Every read is bounded by the request's deadline."""
        url = self._shown_url
        deadline_s = request.timeout_s
        remaining = deadline - time.monotonic()
        timeout = httpx.Timeout(connect=min(self.connect_timeout_s, remaining), read=None, write=None, pool=None)
        try:
            async with asyncio.timeout(remaining):
                response = await client.post(self._endpoint, content=payload, timeout=timeout)
                for _ in range(MAX_REDIRECTS):
                    if response.status_code not in (301, 302, 303, 307, 308):
                        break
                    response = await self._follow(client, response, request, started)
        except TimeoutError:
            self._fail("timeout", f"no answer from {url} within {_fmt_s(deadline_s)} s")
        except httpx.ConnectTimeout:
            connect_s = min(self.connect_timeout_s, remaining)
            raise _Retryable(
                "timeout", f"cannot reach {url}", f" (no connection within {_fmt_s(connect_s)} s)"
            ) from None
        except httpx.ConnectError as exc:
            raise _Retryable("unreachable", f"cannot reach {url}", f" ({_connect_reason(exc)})") from None
        except httpx.TimeoutException:
            self._fail("timeout", f"no answer from {url} within {_fmt_s(deadline_s)} s")
        except httpx.RemoteProtocolError as exc:
            raise _Retryable(
                "malformed",
                "endpoint returned a malformed response",
                f": the connection closed before the response was complete ({self._redact(str(exc))})",
            ) from None
        except (httpx.ReadError, httpx.WriteError) as exc:
            raise _Retryable("unreachable", f"lost the connection to {url}", f" ({_connect_reason(exc)})") from None
        except httpx.HTTPError as exc:
            self._fail("unreachable", f"request to {url} failed: {type(exc).__name__}: {self._redact(str(exc))}")

        status = response.status_code
        text = response.text
        if status == 429 or status >= 500:
            reason = {429: " (rate limited)", 503: " (starting)"}.get(status, "")
            wait = _retry_after_s(response.headers.get("retry-after")) if status in (429, 503) else None
            raise _Retryable(
                "http",
                f"endpoint returned HTTP {status}{reason}",
                f": {_error_message(text)}",
                wait_s=wait,
                starting=status == 503,
            )
        if status >= 400:
            hint = ""
            if status in (401, 403):
                hint = f" ({self.auth_hint})"
            elif status == 404:
                hint = f" (check the URL {self._shown_url}/chat/completions and the model name {self._model!r})"
            self._fail("http", f"endpoint returned HTTP {status}{hint}: {_error_message(text)}")
        if status != 200:
            self._fail("http", f"endpoint returned HTTP {status} instead of 200: {_excerpt(text)}")
        try:
            return json.loads(text)
        except ValueError:
            content_type = response.headers.get("content-type", "no content type")
            self._fail(
                "malformed", f"endpoint returned a malformed response: not JSON ({content_type}): {_excerpt(text)!r}"
            )

    async def _follow(
        self, client: httpx.AsyncClient, response: httpx.Response, request: GenerationRequest, started: float
    ) -> httpx.Response:
        """The response at a redirect's target (a 303 becomes a GET), on the same origin only: the request's
        headers carry the credentials."""
        target = response.next_request
        if target is None:
            self._fail("http", f"endpoint returned HTTP {response.status_code} without a Location")
        if (target.url.scheme, target.url.host, target.url.port) != (
            response.url.scheme,
            response.url.host,
            response.url.port,
        ):
            self._fail(
                "http",
                f"endpoint redirected to another origin ({display_url(str(target.url))}); not followed, as the"
                " request carries credentials",
            )
        _report(request, f"waiting for the endpoint's answer: {time.monotonic() - started:.0f} s")
        return await client.send(target)

    def _parse(self, data: Any, request: GenerationRequest, latency_s: float) -> GenerationResult:
        if not isinstance(data, dict):
            self._fail(
                "malformed", f"endpoint returned a malformed response: a JSON {type(data).__name__}, not an object"
            )
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            if "error" in data:
                self._fail("http", f"endpoint returned an error: {_error_message(json.dumps(data))}")
            keys = ", ".join(sorted(str(k) for k in data)) or "none"
            self._fail("malformed", f"endpoint returned a malformed response: no `choices` (keys: {keys})")
        ordered = sorted(
            enumerate(choices),
            key=lambda pair: (
                pair[1].get("index", pair[0])
                if isinstance(pair[1], dict) and isinstance(pair[1].get("index"), int)
                else pair[0]
            ),
        )
        texts: list[str] = []
        finish_reasons: list[str] = []
        refusals: list[str] = []
        for position, choice in ordered:
            if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
                self._fail("malformed", f"endpoint returned a malformed response: choice {position} has no `message`")
            message = choice["message"]
            finish = choice.get("finish_reason")
            finish_reason = finish if isinstance(finish, str) else ""
            refusal = message.get("refusal")
            if isinstance(refusal, str) and refusal:
                refusals.append(_excerpt(refusal))
                continue
            if finish_reason == "content_filter":
                refusals.append("the endpoint's content filter stopped the output")
                continue
            content = message.get("content")
            if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
                content = "".join(
                    part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
                )
            if not isinstance(content, str):
                self._fail(
                    "malformed", f"endpoint returned a malformed response: choice {position} has no text content"
                )
            texts.append(content)
            finish_reasons.append(finish_reason)
        if not texts:
            self._fail("refused", f"the model refused: {refusals[0]}")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        assert isinstance(usage, dict)
        prompt_tokens = usage.get("prompt_tokens")
        completion_tokens = usage.get("completion_tokens")
        served_model = data.get("model")
        return GenerationResult(
            texts=texts,
            prompt_tokens=prompt_tokens if isinstance(prompt_tokens, int) else 0,
            completion_tokens=completion_tokens if isinstance(completion_tokens, int) else 0,
            latency_s=latency_s,
            backend=self._backend_id,
            model=served_model if isinstance(served_model, str) and served_model else self._model,
            finish_reasons=finish_reasons,
        )

    # -- errors ----------------------------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _fail(self, kind: FailureKind, message: str) -> NoReturn:
        raise BackendError(kind, self._redact(message)) from None
