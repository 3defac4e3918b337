"""A real loopback HTTP server whose answer to each request is scripted by the test, to exercise the HTTP
backends' error paths: good answers, HTTP errors, hangs, truncated bodies, non-JSON, slow answers.

    with FaultServer() as server:
        server.script(status(500), ok('{"a": 1}'))
        ... OpenAIBackend(server.url, ...) ...
        assert len(server.requests) == 2

Each request takes the next scripted action (the `default` action once the script is spent). The server records
every request (headers, body) and notices when a client closes its connection while a request is pending. All waits
are bounded (`max_hang_s`), and `stop()` (the context manager's exit) unblocks and joins every handler thread.
"""

from __future__ import annotations

import http.server
import json
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes
    received_at: float
    """`time.monotonic()` when the request was read."""
    disconnected: threading.Event = field(default_factory=threading.Event)
    """Set when the client closed the connection before the scripted action had answered."""

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Action:
    """What the server does with one request."""

    def respond(self, handler: _Handler, request: RecordedRequest) -> None:
        raise NotImplementedError


def _completion(texts: list[str], finish_reason: str, refusal: str | None, model: str) -> dict[str, Any]:
    choices = []
    for index, text in enumerate(texts):
        message: dict[str, Any] = {"role": "assistant", "content": None if refusal else text}
        if refusal:
            message["refusal"] = refusal
        choices.append({"index": index, "message": message, "finish_reason": finish_reason})
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": model,
        "choices": choices,
        "usage": {"prompt_tokens": 11, "completion_tokens": 7 * len(texts), "total_tokens": 11 + 7 * len(texts)},
    }


@dataclass
class Ok(Action):
    """A well-formed chat completion with these texts (one choice each); with no texts, `n` copies of `{}`."""

    texts: list[str]
    finish_reason: str = "stop"
    refusal: str | None = None
    model: str = "test-model"

    def respond(self, handler: _Handler, request: RecordedRequest) -> None:
        texts = self.texts
        if not texts:
            texts = ["{}"] * int(request.json.get("n", 1))
        body = json.dumps(_completion(texts, self.finish_reason, self.refusal, self.model)).encode()
        handler.send_body(200, body, "application/json")


@dataclass
class Status(Action):
    """An HTTP error (or any status) with this body and these extra headers."""

    code: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def respond(self, handler: _Handler, request: RecordedRequest) -> None:
        handler.send_body(self.code, self.body.encode(), self.content_type, self.headers)


@dataclass
class Raw(Action):
    """A 200 with this body as it is (non-JSON, JSON without `choices`, ...)."""

    body: str
    content_type: str = "application/json"

    def respond(self, handler: _Handler, request: RecordedRequest) -> None:
        handler.send_body(200, self.body.encode(), self.content_type)


@dataclass
class Hang(Action):
    """Read the request, never answer; return when the client disconnects (or after the server's `max_hang_s`)."""

    def respond(self, handler: _Handler, request: RecordedRequest) -> None:
        handler.wait_for_disconnect(request, handler.fault_server.max_hang_s)
        handler.close_connection = True


@dataclass
class Slow(Action):
    """Wait `delay_s` (noticing a disconnect meanwhile), then do `then`."""

    delay_s: float
    then: Action

    def respond(self, handler: _Handler, request: RecordedRequest) -> None:
        if handler.wait_for_disconnect(request, self.delay_s):
            handler.close_connection = True
            return
        self.then.respond(handler, request)


@dataclass
class Gated(Action):
    """Wait until the test sets `gate` (at most the server's `max_hang_s`), then do `then`: a generation held in
    flight for exactly as long as the test needs, whatever the machine's speed."""

    gate: threading.Event
    then: Action

    def respond(self, handler: _Handler, request: RecordedRequest) -> None:
        self.gate.wait(handler.fault_server.max_hang_s)
        self.then.respond(handler, request)


@dataclass
class Truncated(Action):
    """Headers announcing `announced` bytes, then only the first `sent` bytes of a good body, then close."""

    announced: int = 1000
    sent: int = 20

    def respond(self, handler: _Handler, request: RecordedRequest) -> None:
        body = json.dumps(_completion(["{}"], "stop", None, "test-model")).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(max(self.announced, len(body) + 1)))
        handler.end_headers()
        handler.wfile.write(body[: self.sent])
        handler.wfile.flush()
        handler.close_connection = True


@dataclass
class Trickle(Action):
    """A good answer sent one byte every `interval_s`: each read is quick, the whole answer is slow."""

    interval_s: float = 0.05

    def respond(self, handler: _Handler, request: RecordedRequest) -> None:
        body = json.dumps(_completion(["{}"], "stop", None, "test-model")).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.flush()
        deadline = time.monotonic() + handler.fault_server.max_hang_s
        for index in range(len(body)):
            if handler.fault_server.stopping.is_set() or time.monotonic() > deadline:
                break
            try:
                handler.wfile.write(body[index : index + 1])
                handler.wfile.flush()
            except OSError:
                request.disconnected.set()
                break
            if handler.wait_for_disconnect(request, self.interval_s):
                break
        handler.close_connection = True


@dataclass
class Drop(Action):
    """Close the connection without answering at all."""

    def respond(self, handler: _Handler, request: RecordedRequest) -> None:
        handler.close_connection = True


def ok(*texts: str, finish_reason: str = "stop", refusal: str | None = None) -> Ok:
    return Ok(list(texts), finish_reason=finish_reason, refusal=refusal)


def status(code: int, body: str = "", headers: dict[str, str] | None = None) -> Status:
    return Status(code, body, headers or {})


def openai_error(code: int, message: str, headers: dict[str, str] | None = None) -> Status:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": code}})
    return Status(code, body, headers or {})


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do: tests see connection reuse after faults
    timeout = 10.0  # bounds every blocking read on the socket
    fault_server: FaultServer

    def setup(self) -> None:
        super().setup()
        self.fault_server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.fault_server.track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            received_at=time.monotonic(),
        )
        action = self.fault_server.next_action(request)
        action.respond(self, request)

    def send_body(self, code: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def wait_for_disconnect(self, request: RecordedRequest, limit_s: float) -> bool:
        """Wait up to `limit_s` for the client to close the connection; True (and `request.disconnected` set) if it
        did. Returns early when the server stops."""
        deadline = time.monotonic() + limit_s
        sock = self.connection
        while not self.fault_server.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            readable, _, _ = select.select([sock], [], [], min(0.02, left))
            if not readable:
                continue
            try:
                data = sock.recv(1, socket.MSG_PEEK)
            except OSError:
                data = b""
            if data == b"":
                request.disconnected.set()
                return True
            # The client sent more bytes (a pipelined request?) while waiting: not a disconnect; keep waiting.
            time.sleep(0.02)
        return False


class FaultServer:
    """The scripted server on 127.0.0.1 (an ephemeral port). Use as a context manager, or call start()/stop()."""

    def __init__(self, max_hang_s: float = 5.0) -> None:
        self.max_hang_s = max_hang_s
        self.default: Action = Ok([])
        self.requests: list[RecordedRequest] = []
        self.stopping = threading.Event()
        self._script: deque[Action] = deque()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._arrived = threading.Condition(self._lock)
        handler = type("Handler", (_Handler,), {"fault_server": self})
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, with `/v1`."""
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *actions: Action) -> None:
        """Queue actions for the next requests, in order."""
        with self._lock:
            self._script.extend(actions)

    def next_action(self, request: RecordedRequest) -> Action:
        with self._lock:
            self.requests.append(request)
            self._arrived.notify_all()
            return self._script.popleft() if self._script else self.default

    def wait_for_requests(self, count: int, timeout_s: float = 5.0) -> bool:
        """Block until `count` requests have arrived (or the timeout)."""
        with self._lock:
            return self._arrived.wait_for(lambda: len(self.requests) >= count, timeout=timeout_s)

    def track(self, connection: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, unblock every handler (hanging ones and idle keep-alive ones), and join the threads."""
        self.stopping.set()
        self._httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()  # joins the handler threads (block_on_close)
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released): connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def unaccepting_port(fillers: int = 3) -> Iterator[int]:
    """A loopback port whose listen queue is full: a new connection is never accepted, so connecting times out
    (Linux drops the SYN when the accept queue is full)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    clients: list[socket.socket] = []
    try:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = int(server.getsockname()[1])
        for _ in range(fillers):
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            client.setblocking(False)
            clients.append(client)
            with suppress(BlockingIOError):
                client.connect(("127.0.0.1", port))
        time.sleep(0.05)
        yield port
    finally:
        for client in clients:
            client.close()
        server.close()


@contextmanager
def fault_server(max_hang_s: float = 5.0) -> Iterator[FaultServer]:
    with FaultServer(max_hang_s=max_hang_s) as server:
        yield server
