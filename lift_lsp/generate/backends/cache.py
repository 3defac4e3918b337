"""An on-disk cache of generations in front of any backend.

An entry is keyed by the sha256 of (backend id, model, constraint key, messages, n, max_tokens, temperature, seed):
the request's timeout and the API key are not part of the key, and the key is not stored. Entries are written
atomically (a temporary file in the same directory, then `os.replace`); an entry that does not parse, is truncated
or does not match its key is treated as a miss and overwritten. A cache that cannot be read or written never fails a
generation: it is only an optimization.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lift_lsp.check.file_cache import user_cache_dir
from lift_lsp.generate.backends.base import Backend, GenerationRequest, GenerationResult

log = logging.getLogger(__name__)

ENTRY_VERSION = 1


def default_cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The user cache directory (`file_cache.user_cache_dir`: `$XDG_CACHE_HOME/lift-lsp`, or `~/.cache/lift-lsp`)."""
    return user_cache_dir(env)


def cache_key(backend_id: str, model: str, request: GenerationRequest) -> str:
    payload = json.dumps(
        [
            backend_id,
            model,
            request.constraint.key,
            request.messages,
            request.n,
            request.max_tokens,
            request.temperature,
            request.seed,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class CachedBackend:
    """`inner` behind an on-disk cache in `cache_dir` (created when first written)."""

    def __init__(self, inner: Backend, cache_dir: Path) -> None:
        self.inner = inner
        self.cache_dir = Path(cache_dir)

    @property
    def id(self) -> str:
        return self.inner.id

    @property
    def model(self) -> str:
        return self.inner.model

    def key(self, request: GenerationRequest) -> str:
        return cache_key(self.inner.id, self.inner.model, request)

    def path_for(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        started = time.monotonic()
        key = self.key(request)
        hit = self._read(key)
        if hit is not None:
            return GenerationResult(
                texts=hit["texts"],
                prompt_tokens=hit["prompt_tokens"],
                completion_tokens=hit["completion_tokens"],
                latency_s=time.monotonic() - started,
                backend=self.inner.id,
                model=hit["model"],
                finish_reasons=hit["finish_reasons"],
                cached=True,
            )
        result = await self.inner.generate(request)
        if _worth_keeping(request, result):
            self._write(key, result)
        return result

    async def aclose(self) -> None:
        await self.inner.aclose()

    def _read(self, key: str) -> dict[str, Any] | None:
        path = self.path_for(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.info("ignoring unreadable cache entry %s: %s", path, exc)
            return None
        if not _valid_entry(data, key):
            log.info("ignoring malformed cache entry %s", path)
            return None
        assert isinstance(data, dict)
        return data

    def _write(self, key: str, result: GenerationResult) -> None:
        entry = {
            "version": ENTRY_VERSION,
            "key": key,
            "texts": result.texts,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "model": result.model,
            "finish_reasons": result.finish_reasons,
            "created": time.time(),
        }
        path = self.path_for(key)
        temp_name: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                "w", encoding="utf-8", dir=path.parent, prefix=f".{key}.", suffix=".tmp", delete=False
            ) as handle:
                temp_name = handle.name
                json.dump(entry, handle, ensure_ascii=False)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, path)
            temp_name = None
        except OSError as exc:
            log.warning("could not write the generation cache entry %s: %s", path, exc)
        finally:
            if temp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temp_name)


def _worth_keeping(request: GenerationRequest, result: GenerationResult) -> bool:
    """Only complete answers are cached: a JSON-constrained answer that is not JSON (cut off, or from a broken
    server) would otherwise be replayed on every retry."""
    if any(reason == "length" for reason in result.finish_reasons):
        return False
    if request.constraint.kind != "json_schema":
        return True
    try:
        for text in result.texts:
            json.loads(text)
    except ValueError:
        return False
    return True


def _valid_entry(data: Any, key: str) -> bool:
    if not isinstance(data, dict) or data.get("version") != ENTRY_VERSION or data.get("key") != key:
        return False
    texts = data.get("texts")
    reasons = data.get("finish_reasons")
    return (
        isinstance(texts, list)
        and bool(texts)
        and all(isinstance(t, str) for t in texts)
        and isinstance(reasons, list)
        and all(isinstance(r, str) for r in reasons)
        and isinstance(data.get("prompt_tokens"), int)
        and isinstance(data.get("completion_tokens"), int)
        and isinstance(data.get("model"), str)
    )
