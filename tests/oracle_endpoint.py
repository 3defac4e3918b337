"""A perfect model for forward mode: a loopback OpenAI-compatible endpoint answering HumanEval's canonical solutions.

It measures what lift-lsp's pipeline loses (right answers it refuses or rejects) and what it lets through (wrong
answers it delivers), never a model's quality. The model named in the request picks the answers:

- `canonical`: the IR step gets the stub's own IR (lift-lsp's reading of its spec, without holes), every code
  candidate the problem's canonical solution;
- `wrong-then-right`: the first code round gets a wrong body (`return None`), each repair round the canonical
  solution (a repair round is any later code request for the same stub in that mode: it may ask the same request
  again, so the endpoint counts them);
- `undefined-name`: every code candidate calls a function that is defined nowhere.

Every answer matches the output schema and comes `n` times. The prompt is found by the `def` line and docstring of
the stub in the request. Run it alone, then point `lift-lsp bench` at it (`--model` one of the three):

    .venv/bin/python -m tests.oracle_endpoint --port 8765
    .venv/bin/lift-lsp bench --url http://127.0.0.1:8765/v1 --model canonical --jobs 4
"""

from __future__ import annotations

import argparse
import json
import re
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lift_lsp.benchmark import ORACLE_OWNER
from lift_lsp.spec.ir import CodeCandidate
from lift_lsp.spec.reverse import function_ir
from lift_lsp.spec.sites import SpecSite, find_sites
from tests.humaneval import problems

MODES = ("canonical", "wrong-then-right", "undefined-name")
_STUB = re.compile(r"```python\n(.*?)\n```", re.DOTALL)


def _stub(messages: list[dict[str, Any]]) -> SpecSite:
    user = next(m["content"] for m in messages if m["role"] == "user")
    found = _STUB.search(user)
    sites = find_sites(found.group(1)) if found else []
    if not sites:
        raise ValueError("no stub in the request")
    return sites[-1]  # the code request holds the file up to the stub: the stub comes last


def _problem(site: SpecSite) -> dict[str, Any]:
    """The HumanEval problem whose entry point is this stub (two problems may share a name: the docstring decides)."""
    same = [p for p in problems() if p["entry_point"] == site.name]
    matching = [p for p in same if site.docstring and site.docstring.strip() in p["prompt"]]
    if not matching:
        raise ValueError(f"no HumanEval problem for {site.name!r}")
    return matching[0]


def _is_code_step(body: dict[str, Any]) -> bool:
    schema = (body.get("response_format") or {}).get("json_schema") or {}
    return schema.get("name") == "CodeCandidate" or any(
        k in str(body.get("ebnf", "")) for k in ("CodeCandidate", "```")
    )


def answer(mode: str, body: dict[str, Any], earlier_code_requests: int = 0) -> str:
    """The one answer (JSON text) of the perfect model `mode` to a chat-completion request, given how many code
    requests for the same stub in that mode came before it."""
    messages = body["messages"]
    site = _stub(messages)
    if not _is_code_step(body):
        ir = function_ir(site).ir.model_copy(update={"holes": [], "provenance": []})
        return ir.model_dump_json()
    canonical = textwrap.dedent(_problem(site)["canonical_solution"]).strip("\n")
    repair = earlier_code_requests > 0
    params = ", ".join(p.name for p in site.params)
    code = {
        "canonical": canonical,
        "wrong-then-right": canonical if repair else "return None",
        "undefined-name": f"return missing_helper({params})",
    }[mode]
    if "```" in str(body.get("ebnf", "")):  # the whole function in a Python code block
        return f"```python\n{site.text.splitlines()[0]}\n{textwrap.indent(code, '    ')}\n```"
    return CodeCandidate(body=code).model_dump_json()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        cards = [{"id": mode, "object": "model", "created": 0, "owned_by": ORACLE_OWNER} for mode in MODES]
        self._send(200, {"object": "list", "data": cards})

    def _count_code_request(self, body: dict[str, Any]) -> int:
        """How many code requests for this stub in this mode came before this one (0 for any other request)."""
        if not _is_code_step(body):
            return 0
        key = (body["model"], _stub(body["messages"]).text)
        counts: dict[tuple[str, str], int] = self.server.code_requests  # type: ignore[attr-defined]
        with self.server.lock:  # type: ignore[attr-defined]
            earlier = counts.get(key, 0)
            counts[key] = earlier + 1
        return earlier

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        if body.get("model") not in MODES:
            self._send(404, {"error": {"message": f"model {body.get('model')!r} not found; one of {MODES}"}})
            return
        try:
            text = answer(body["model"], body, self._count_code_request(body))
        except ValueError as err:
            self._send(400, {"error": {"message": str(err)}})
            return
        n = int(body.get("n") or 1)
        self._send(
            200,
            {
                "id": "chatcmpl-oracle",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    for i in range(n)
                ],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            },
        )


@contextmanager
def serve(port: int = 0) -> Iterator[str]:
    """The endpoint on 127.0.0.1 in a background thread, for the duration of the block: its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.daemon_threads = True
    server.code_requests = {}  # type: ignore[attr-defined]
    server.lock = threading.Lock()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    port = parser.parse_args().port
    with serve(port) as url:
        print(f"serving on {url} (models: {', '.join(MODES)}); Ctrl-C stops", flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
