"""The real server object driven in this process through its pygls protocol, for what only shows from inside (its
bookkeeping, its threads) or needs a fault injected into one of its steps. Messages go in as the JSON a client
sends and come out as the JSON the server writes; only the stdio transport is left out."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lift_lsp.lsp.server import LiftServer, create_server


class InProcessServer:
    def __init__(self) -> None:
        self.server: LiftServer = create_server()
        self.sent: list[dict[str, Any]] = []
        self.server.protocol.set_writer(self, include_headers=False)
        self._next_id = 0

    def write(self, data: bytes) -> None:
        self.sent.append(json.loads(data))

    def receive(self, message: dict[str, Any]) -> None:
        protocol = self.server.protocol
        protocol.handle_message(
            json.loads(json.dumps({"jsonrpc": "2.0", **message}), object_hook=protocol.structure_message)
        )

    def notify(self, method: str, params: Any) -> None:
        self.receive({"method": method, "params": params})

    async def request(self, method: str, params: Any, timeout_s: float = 60) -> Any:
        self._next_id += 1
        wanted = self._next_id
        self.receive({"id": wanted, "method": method, "params": params})
        answer = await self.wait_for(lambda m: m.get("id") == wanted and "method" not in m, timeout_s)
        assert "error" not in answer, answer
        return answer.get("result")

    async def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = next((m for m in self.sent if match(m)), None)
            if found is not None:
                return found
            await asyncio.sleep(0.01)
        raise TimeoutError(f"nothing matched within {timeout_s} s; sent: {[m.get('method') for m in self.sent]}")

    async def start(self, options: dict[str, Any] | None = None) -> None:
        await self.request(
            "initialize", {"processId": None, "rootUri": None, "capabilities": {}, "initializationOptions": options}
        )
        self.notify("initialized", {})

    def open(self, path: Path, text: str, version: int = 1) -> str:
        uri = path.as_uri()
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "python", "version": version, "text": text}},
        )
        return uri

    def published(self, uri: str) -> list[dict[str, Any]]:
        """Every `publishDiagnostics` of `uri` so far, in order: their params."""
        return [
            m["params"]
            for m in self.sent
            if m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
        ]

    async def stop(self) -> None:
        await self.request("shutdown", None)
