"""`lift-lsp serve-model`: the local backend behind an OpenAI-compatible HTTP API.

Endpoints: `GET /v1/models`, `GET /v1/models/{id}`, `GET /health`, `POST /v1/chat/completions` with `messages`, `n`,
`max_tokens` (or `max_completion_tokens`), `temperature`, `seed`, and one constraint: `response_format`
(`{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`, `{"type": "json_object"}` or
`{"type": "text"}`), or SGLang's `ebnf` or `regex` fields. A JSON schema inside the bounded subset of
`lift_lsp.generate.grammar` is compiled from our EBNF (escapes allowed in bounded strings); any other goes to
XGrammar's own conversion. Errors are OpenAI-style JSON (`{"error": {"message", "type", "param", "code"}}`).
Generations run one at a time, on the backend's worker thread. No streaming. A client that closes its connection
(it gave up, or cancelled) stops its generation before the next token, or before it starts when it is still queued:
the next request does not wait for work nobody reads.
"""

from __future__ import annotations

import argparse
import json
import select
import signal
import socket
import sys
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lift_lsp.generate.backends.base import BackendError, Constraint, GenerationRequest, GenerationResult
from lift_lsp.generate.backends.local import LocalBackend
from lift_lsp.generate.grammar import JSON_OBJECT_EBNF, schema_to_ebnf

MAX_N = 64
MAX_BODY = 8 * 1024 * 1024
DEFAULT_MAX_TOKENS = 1024
CLIENT_POLL_S = 0.1
"""How often a running request checks that its client is still connected."""
CLIENT_GONE = 499
"""The status logged for a request whose client closed the connection before the answer (nginx's convention)."""


class ClientGone(Exception):
    """The client closed its connection while its request was running: nothing is sent back."""


class RequestError(Exception):
    """A request the server answers with an error status."""

    def __init__(self, status: HTTPStatus, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


_ERROR_TYPES = {
    HTTPStatus.BAD_REQUEST: "invalid_request_error",
    HTTPStatus.NOT_FOUND: "not_found_error",
    HTTPStatus.METHOD_NOT_ALLOWED: "invalid_request_error",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "invalid_request_error",
    HTTPStatus.GATEWAY_TIMEOUT: "timeout_error",
}
_BACKEND_STATUS = {
    "config": HTTPStatus.BAD_REQUEST,
    "timeout": HTTPStatus.GATEWAY_TIMEOUT,
}


def _messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise RequestError(HTTPStatus.BAD_REQUEST, "`messages` must be a non-empty list", "messages")
    out: list[dict[str, str]] = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise RequestError(HTTPStatus.BAD_REQUEST, f"messages[{i}] needs a string `role`", "messages")
        content = m.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise RequestError(HTTPStatus.BAD_REQUEST, f"messages[{i}].content must be a string", "messages")
        out.append({"role": m["role"], "content": content})
    return out


def _int(body: dict[str, Any], key: str, default: int | None, low: int, high: int | None = None) -> int | None:
    value = body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bounds = f">= {low}" + (f" and <= {high}" if high is not None else "")
        raise RequestError(HTTPStatus.BAD_REQUEST, f"`{key}` must be an integer {bounds}", key)
    return value


def constraint_from_request(body: dict[str, Any]) -> Constraint:
    """The constraint a chat-completion request asks for (`response_format`, `ebnf` or `regex`)."""
    given = [k for k in ("response_format", "ebnf", "regex") if body.get(k) is not None]
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "text":
        given.remove("response_format")
    if len(given) > 1:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"give at most one of {', '.join(given)}", given[1])
    if not given:
        return Constraint()
    if given[0] == "ebnf":
        if not isinstance(body["ebnf"], str):
            raise RequestError(HTTPStatus.BAD_REQUEST, "`ebnf` must be a string", "ebnf")
        return Constraint(kind="ebnf", name="ebnf", ebnf=body["ebnf"])
    if given[0] == "regex":
        if not isinstance(body["regex"], str):
            raise RequestError(HTTPStatus.BAD_REQUEST, "`regex` must be a string", "regex")
        return Constraint(kind="regex", name="regex", regex=body["regex"])
    if not isinstance(fmt, dict):
        raise RequestError(HTTPStatus.BAD_REQUEST, "`response_format` must be an object", "response_format")
    if fmt.get("type") == "json_object":
        return Constraint(kind="ebnf", name="json_object", ebnf=JSON_OBJECT_EBNF)
    if fmt.get("type") != "json_schema":
        raise RequestError(
            HTTPStatus.BAD_REQUEST, f"unsupported response_format type {fmt.get('type')!r}", "response_format"
        )
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
        raise RequestError(
            HTTPStatus.BAD_REQUEST, "`response_format.json_schema.schema` must be an object", "response_format"
        )
    schema: dict[str, Any] = spec["schema"]
    try:
        ebnf: str | None = schema_to_ebnf(schema)
    except ValueError:
        ebnf = None  # outside our bounded subset: the backend uses XGrammar's conversion
    return Constraint(kind="json_schema", name=str(spec.get("name", "output")), schema=schema, ebnf=ebnf)


def request_from_body(body: Any, timeout_s: float = 600.0) -> GenerationRequest:
    """Validate a chat-completion body and turn it into a generation request."""
    if not isinstance(body, dict):
        raise RequestError(HTTPStatus.BAD_REQUEST, "the request body must be a JSON object")
    if body.get("stream"):
        raise RequestError(HTTPStatus.BAD_REQUEST, "streaming is not supported", "stream")
    temperature = body.get("temperature", 1.0)
    if temperature is None:
        temperature = 1.0
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
        raise RequestError(HTTPStatus.BAD_REQUEST, "`temperature` must be a number in [0, 2]", "temperature")
    max_tokens = _int(body, "max_tokens", None, 1)
    if max_tokens is None:
        max_tokens = _int(body, "max_completion_tokens", DEFAULT_MAX_TOKENS, 1)
    return GenerationRequest(
        messages=_messages(body.get("messages")),
        constraint=constraint_from_request(body),
        n=_int(body, "n", 1, 1, MAX_N) or 1,
        max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
        temperature=float(temperature),
        seed=_int(body, "seed", None, 0, 2**63 - 1),
        timeout_s=timeout_s,
    )


def completion_body(result: GenerationResult, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": result.finish_reasons[i] if i < len(result.finish_reasons) else "stop",
            }
            for i, text in enumerate(result.texts)
        ],
        "usage": {
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens,
        },
    }


class ModelServer(ThreadingHTTPServer):
    """The HTTP server; `serve_forever()` to run, `shutdown()` from another thread to stop."""

    daemon_threads = True

    def __init__(
        self,
        backend: LocalBackend,
        host: str,
        port: int,
        served_model_name: str | None = None,
        request_timeout_s: float = 600.0,
    ) -> None:
        self.backend = backend
        self.request_timeout_s = request_timeout_s
        self.served_model_name = served_model_name or backend.model
        self.created = int(time.time())
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def model_card(self) -> dict[str, Any]:
        return {"id": self.served_model_name, "object": "model", "created": self.created, "owned_by": "lift-lsp"}


def _error_body(err: RequestError) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(err.status, "server_error")
    return {"error": {"message": err.message, "type": kind, "param": err.param, "code": None}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ModelServer

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per request is written by `_log` instead

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _log(self, status: int, started: float, extra: str = "") -> None:
        took = time.monotonic() - started
        sys.stderr.write(f'{self.address_string()} "{self.command} {self.path}" {status} {took:.2f}s{extra}\n')
        sys.stderr.flush()

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, route: Any) -> None:
        """Answer one request and write its one log line, before the answer: a client that has its answer finds the
        line in the log already. A client that left before its answer is logged as 499 and gets none."""
        started = time.monotonic()
        try:
            status, body, extra = route()
        except (ClientGone, ConnectionError) as e:  # the client left before its answer (BrokenPipe and the like)
            self._client_left(started, e)
            return
        except RequestError as e:
            status, body, extra = e.status, _error_body(e), f" error={e.message[:200]!r}"
        except Exception as e:  # a bug or a backend failure: still answer in the API's shape
            err = RequestError(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(e).__name__}: {e}")
            status, body, extra = err.status, _error_body(err), f" error={err.message[:200]!r}"
        if self._client_gone():
            self._client_left(started, ClientGone("before the answer was sent"))
            return
        self._log(int(status), started, extra)
        try:
            self._send(status, body)
        except ConnectionError:  # it left in the instant since: its line is written already
            self.close_connection = True

    def _client_left(self, started: float, why: Exception) -> None:
        self._log(CLIENT_GONE, started, f" client closed the connection: {str(why) or type(why).__name__}")
        self.close_connection = True

    def do_GET(self) -> None:
        self._handle(self._get)

    def do_POST(self) -> None:
        self._handle(self._post)

    def _get(self) -> tuple[HTTPStatus, dict[str, Any], str]:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/health":
            return HTTPStatus.OK, {"status": "ok"}, ""
        if path == "/v1/models":
            return HTTPStatus.OK, {"object": "list", "data": [self.server.model_card()]}, ""
        if path.startswith("/v1/models/"):
            if path[len("/v1/models/") :] == self.server.served_model_name:
                return HTTPStatus.OK, self.server.model_card(), ""
            raise RequestError(HTTPStatus.NOT_FOUND, f"model {path[len('/v1/models/') :]!r} not found", "model")
        if path == "/v1/chat/completions":
            raise RequestError(HTTPStatus.METHOD_NOT_ALLOWED, "use POST for /v1/chat/completions")
        raise RequestError(HTTPStatus.NOT_FOUND, f"no route {self.path}")

    def _client_gone(self) -> bool:
        """Whether the client has closed its connection (a closed socket reads as ready, with nothing to read)."""
        try:
            ready, _, _ = select.select([self.connection], [], [], 0)
            return bool(ready) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _read_json(self) -> Any:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body missing a valid size or too large")
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"the request body is not valid JSON: {e}") from e

    def _post(self) -> tuple[HTTPStatus, dict[str, Any], str]:
        path = self.path.split("?", 1)[0].rstrip("/")
        body = self._read_json()  # read it even on a bad route, to keep the connection usable
        if path in ("/v1/models", "/health"):
            raise RequestError(HTTPStatus.METHOD_NOT_ALLOWED, f"use GET for {path}")
        if path != "/v1/chat/completions":
            raise RequestError(HTTPStatus.NOT_FOUND, f"no route {self.path}")
        request = request_from_body(body, self.server.request_timeout_s)
        backend = self.server.backend
        cancel = threading.Event()
        try:
            backend.compiled_grammar(request.constraint)  # a bad grammar is the client's error: answer 400 early
            job = backend.submit(request, cancel)
            while True:
                try:
                    result = job.result(timeout=CLIENT_POLL_S)
                    break
                except TimeoutError:
                    if self._client_gone():
                        cancel.set()  # a running generation stops before its next token; a queued one never starts
                        job.cancel()
                        raise ClientGone("generation stopped") from None
        except BackendError as e:
            cancel.set()
            raise RequestError(_BACKEND_STATUS.get(e.kind, HTTPStatus.INTERNAL_SERVER_ERROR), e.message) from e
        extra = (
            f" n={request.n} kind={request.constraint.kind} prompt={result.prompt_tokens}"
            f" completion={result.completion_tokens}"
        )
        return HTTPStatus.OK, completion_body(result, self.server.served_model_name), extra


def build_server(
    backend: LocalBackend,
    host: str = "127.0.0.1",
    port: int = 0,
    served_model_name: str | None = None,
    request_timeout_s: float = 600.0,
) -> ModelServer:
    """A server bound to (host, port) (port 0: any free port); the backend is loaded on first use."""
    return ModelServer(backend, host, port, served_model_name, request_timeout_s)


DESCRIPTION = "Serve a local model behind an OpenAI-compatible HTTP API."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`lift-lsp serve-model`'s flags (the command line's subcommand, and this module's own `main`)."""
    parser.add_argument(
        "--model", required=True, help="Hugging Face model id, local folder, or GGUF file (see `lift-lsp model fetch`)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--device", default="cpu", help='torch device: "cpu", "cuda", "cuda:1", "mps"')
    parser.add_argument("--dtype", default=None, choices=["float32", "float16", "bfloat16", "auto"])
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: the engine's choice)")
    parser.add_argument(
        "--engine",
        choices=["auto", "transformers", "llama.cpp"],
        default="auto",
        help="what runs a GGUF file (auto: llama.cpp on the CPU when llama-cpp-python is installed)",
    )
    parser.add_argument("--served-model-name", default=None, help="the model id clients see (default: --model)")
    parser.add_argument("--request-timeout", type=float, default=600.0, help="seconds one generation may take")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lift-lsp serve-model", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Load the model and serve it until interrupted (SIGINT or SIGTERM)."""
    try:
        backend = LocalBackend(
            args.model, device=args.device, dtype=args.dtype, threads=args.threads, engine=args.engine
        )
        backend.load()
        server = build_server(backend, args.host, args.port, args.served_model_name, args.request_timeout)
    except BackendError as e:
        print(f"lift-lsp serve-model: {e.message}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"lift-lsp serve-model: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 2

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"serving on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
