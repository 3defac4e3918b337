"""`lift-lsp serve-model` as a real subprocess on 127.0.0.1, queried with httpx and with the `openai` client."""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from lift_lsp.generate import serve_model
from lift_lsp.generate.backends.local import LocalBackend
from lift_lsp.generate.grammar import tighten_bounds
from lift_lsp.spec.ir import IR, CodeCandidate

MESSAGES = [{"role": "user", "content": "Write the IR of: def add(a, b): return a + b"}]


class Server:
    def __init__(self, url: str, log: Path, model: str) -> None:
        self.url, self.log, self.model = url, log, model


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("serve-model") / "stderr.log"
    cmd = [
        sys.executable,
        "-m",
        "lift_lsp.generate.serve_model",
        "--model",
        str(tiny_model_dir),
        "--port",
        "0",
        "--threads",
        "1",
    ]
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        line = ""
        while time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
            if line.startswith("serving on "):
                break
        match = re.fullmatch(r"serving on (http://127\.0\.0\.1:\d+/v1)\n", line)
        assert match, f"server did not start: {line!r}\n{log.read_text()}"
        yield Server(match.group(1), log, str(tiny_model_dir))
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def schema_format(model: type[IR] | type[CodeCandidate], max_length: int) -> dict[str, Any]:
    schema = tighten_bounds(model.model_json_schema(), max_length=max_length, max_items=2, max_properties=2)
    return {"type": "json_schema", "json_schema": {"name": model.__name__, "schema": schema, "strict": True}}


def test_models(server: Server) -> None:
    response = httpx.get(f"{server.url}/models")
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["data"]] == [server.model]


def test_ir_through_httpx(server: Server) -> None:
    body = {
        "model": server.model,
        "messages": MESSAGES,
        "n": 8,
        "max_tokens": 3000,
        "temperature": 1.0,
        "seed": 21,
        "response_format": schema_format(IR, 8),
    }
    response = httpx.post(f"{server.url}/chat/completions", json=body, timeout=120)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["object"] == "chat.completion" and len(data["choices"]) == 8
    for choice in data["choices"]:
        assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
        IR.model_validate_json(choice["message"]["content"])
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] > 10 and usage["completion_tokens"] > 8 * 20


def test_code_through_the_openai_client(server: Server) -> None:
    client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
    completion = client.chat.completions.create(
        model=server.model,
        messages=[{"role": "user", "content": "Write the body of add(a, b)."}],
        n=8,
        max_tokens=2000,
        temperature=1.0,
        seed=4,
        response_format=schema_format(CodeCandidate, 24),  # type: ignore[arg-type]
    )
    assert len(completion.choices) == 8
    texts = [c.message.content or "" for c in completion.choices]
    for text in texts:
        CodeCandidate.model_validate_json(text)
    assert len(set(texts)) > 1
    assert completion.usage is not None and completion.usage.completion_tokens > 8 * 10


def test_sglang_regex_and_ebnf_fields_through_the_openai_client(server: Server) -> None:
    client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
    regex = client.chat.completions.create(
        model=server.model, messages=MESSAGES, n=4, seed=1, extra_body={"regex": "(true|false)"}
    )
    assert {c.message.content for c in regex.choices} <= {"true", "false"}
    ebnf = client.chat.completions.create(
        model=server.model, messages=MESSAGES, n=4, seed=1, extra_body={"ebnf": 'root ::= "n=" [0-9]'}
    )
    assert all(re.fullmatch(r"n=[0-9]", c.message.content or "") for c in ebnf.choices)


def test_schema_outside_the_subset_uses_xgrammar(server: Server) -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 3, "maximum": 7}},
        "required": ["n"],
        "additionalProperties": False,
    }
    body = {
        "messages": MESSAGES,
        "n": 6,
        "seed": 3,
        "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
    }
    data = httpx.post(f"{server.url}/chat/completions", json=body, timeout=60).json()
    values = [json.loads(c["message"]["content"])["n"] for c in data["choices"]]
    assert len(values) == 6 and all(3 <= v <= 7 for v in values)


def test_json_object_is_constrained(server: Server) -> None:
    body = {"messages": MESSAGES, "max_tokens": 6, "seed": 0, "response_format": {"type": "json_object"}}
    data = httpx.post(f"{server.url}/chat/completions", json=body, timeout=60).json()
    assert data["choices"][0]["message"]["content"].startswith("{")
    assert data["choices"][0]["finish_reason"] == "length" and data["usage"]["completion_tokens"] == 6


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"messages": []}, 400, "messages"),
        ({"messages": MESSAGES, "n": 0}, 400, "`n`"),
        ({"messages": MESSAGES, "stream": True}, 400, "streaming"),
        ({"messages": MESSAGES, "temperature": 9}, 400, "temperature"),
        ({"messages": MESSAGES, "ebnf": "root ::= "}, 400, "invalid ebnf"),
        ({"messages": MESSAGES, "ebnf": 'root ::= "a"', "regex": "a"}, 400, "at most one"),
        ({"messages": MESSAGES, "response_format": {"type": "xml"}}, 400, "xml"),
    ],
)
def test_bad_requests_get_openai_style_errors(server: Server, body: dict[str, Any], status: int, needle: str) -> None:
    response = httpx.post(f"{server.url}/chat/completions", json=body, timeout=60)
    assert response.status_code == status
    error = response.json()["error"]
    assert needle in error["message"] and error["type"] == "invalid_request_error"


def test_not_found_bad_json_and_wrong_method(server: Server) -> None:
    missing = httpx.get(f"{server.url}/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    assert httpx.get(f"{server.url}/models/other").status_code == 404
    bad = httpx.post(f"{server.url}/chat/completions", content=b"{nope", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]["message"]
    assert httpx.get(f"{server.url}/chat/completions").status_code == 405


def test_openai_client_raises_on_a_bad_request(server: Server) -> None:
    client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=server.model, messages=MESSAGES, extra_body={"ebnf": "root ::= ("})


def test_one_log_line_per_request(server: Server) -> None:
    """Each request's line is in the log once its answer is (see the next test): no wait for it, and the line of
    the request before this test's is counted before."""
    before = server.log.read_text().count("\n")
    httpx.get(f"{server.url}/models")
    httpx.post(f"{server.url}/chat/completions", json={"messages": MESSAGES, "max_tokens": 2, "seed": 0})
    lines = server.log.read_text().splitlines()[before:]
    assert len(lines) == 2
    assert '"GET /v1/models" 200' in lines[0]
    assert '"POST /v1/chat/completions" 200' in lines[1] and "completion=2" in lines[1]


def test_each_log_line_is_written_before_its_answer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """When a client has its answer, the request's line is in the log already: the line was written after the answer,
    so under load a test counting the lines after its requests missed one, or counted the one of the request before
    it (an "invalid ebnf constraint" 400). In process, none of these routes loading the model."""
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    log_when_answered: list[list[str]] = []
    send = serve_model._Handler._send

    def noting_the_log(handler: serve_model._Handler, status: int, body: dict[str, Any]) -> None:
        log_when_answered.append(log.getvalue().splitlines())
        send(handler, status, body)

    monkeypatch.setattr(serve_model._Handler, "_send", noting_the_log)
    server = serve_model.build_server(LocalBackend(str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    requests = [("GET", "/v1/models", 200), ("POST", "/v1/chat/completions", 400), ("GET", "/v1/nothing", 404)]
    try:
        base = server.url.removesuffix("/v1")
        for method, path, status in requests:
            body = {"messages": []} if method == "POST" else None
            assert httpx.request(method, base + path, json=body, timeout=60).status_code == status
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=60)
    assert [len(lines) for lines in log_when_answered] == [1, 2, 3], log_when_answered
    for lines, (method, path, status) in zip(log_when_answered, requests, strict=True):
        assert f'"{method} {path}" {status}' in lines[-1], lines


ENDLESS = "\n".join(["root ::= l0", *(f"l{k} ::= " + " ".join([f"l{k + 1}"] * 10) for k in range(9)), "l9 ::= [a-z]"])
"""A grammar whose shortest sentence has 10^10 letters: a generation under it runs until max_tokens or the server's
request timeout (600 s in the fixture), unless it is stopped."""


def _leave_after_sending(url: str, body: dict[str, Any], how: str) -> None:
    if how == "gives up":  # the client's read timeout: httpx closes the connection
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/chat/completions", json=body, timeout=httpx.Timeout(30, read=1))
        return
    host, port = url.removeprefix("http://").split("/")[0].split(":")  # a client that sends, then hangs up
    data = json.dumps(body).encode()
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    with socket.create_connection((host, int(port))) as conn:
        conn.sendall(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data)
        time.sleep(1)


@pytest.mark.parametrize("how", ["gives up", "hangs up"])
def test_a_client_that_leaves_stops_its_generation(server: Server, how: str) -> None:
    before = server.log.read_text().count("\n")
    endless = {"messages": MESSAGES, "max_tokens": 1_000_000, "temperature": 1.0, "seed": 0, "ebnf": ENDLESS}
    _leave_after_sending(server.url, endless, how)
    # The next request is served at once, not after the abandoned one (which would run for 600 s): its limit is a
    # generous ceiling, far below that.
    short = httpx.post(f"{server.url}/chat/completions", json={"messages": MESSAGES, "max_tokens": 2}, timeout=120)
    assert short.status_code == 200 and short.json()["usage"]["completion_tokens"] == 2

    def gone() -> list[str]:
        lines = server.log.read_text().splitlines()[before:]
        return [line for line in lines if '"POST /v1/chat/completions" 499' in line]

    deadline = time.monotonic() + 60  # the abandoned request's log line is written as its handler ends
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(gone()) == 1 and "client closed the connection: generation stopped" in gone()[0]
