"""The on-disk generation cache: hits and misses, what the key covers, corrupt and half-written entries."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lift_lsp.generate.backends.base import BackendError, Constraint, GenerationRequest
from lift_lsp.generate.backends.cache import CachedBackend, default_cache_dir
from lift_lsp.generate.backends.openai import OpenAIBackend
from lift_lsp.generate.backends.scripted import ScriptedBackend
from tests.fault_server import FaultServer, ok

MESSAGES = [{"role": "user", "content": "write add(a, b)"}]


def request(**kw: object) -> GenerationRequest:
    options: dict[str, object] = {"messages": MESSAGES, "n": 2, "max_tokens": 100, "temperature": 0.2, "seed": 1}
    options.update(kw)
    return GenerationRequest(**options)  # type: ignore[arg-type]


def entries(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.rglob("*") if p.is_file())


async def test_miss_then_hit(tmp_path: Path) -> None:
    inner = ScriptedBackend([["return a + b", "return b + a"]])  # one step: a second call to inner would fail
    backend = CachedBackend(inner, tmp_path)
    first = await backend.generate(request())
    second = await backend.generate(request(timeout_s=5))  # the timeout is not part of the key
    assert not first.cached and second.cached
    assert second.texts == first.texts == ["return a + b", "return b + a"]
    assert second.finish_reasons == ["stop", "stop"] and second.backend == "scripted"
    assert len(inner.requests) == 1
    [entry] = entries(tmp_path)
    assert entry == backend.path_for(backend.key(request()))


@pytest.mark.parametrize(
    "changed",
    [
        {"messages": [{"role": "user", "content": "write sub(a, b)"}]},
        {"n": 1},
        {"max_tokens": 101},
        {"temperature": 0.3},
        {"seed": 2},
        {"seed": None},
        {"constraint": Constraint("regex", regex="[a-z]+")},
    ],
)
async def test_each_part_of_the_key_matters(tmp_path: Path, changed: dict[str, object]) -> None:
    inner = ScriptedBackend(["first", "second"])
    backend = CachedBackend(inner, tmp_path)
    await backend.generate(request())
    result = await backend.generate(request(**changed))
    assert not result.cached and result.texts[0] == "second"


async def test_backend_id_and_model_are_part_of_the_key(tmp_path: Path) -> None:
    await CachedBackend(ScriptedBackend(["a"], model="m1"), tmp_path).generate(request())
    other_model = await CachedBackend(ScriptedBackend(["b"], model="m2"), tmp_path).generate(request())
    other_id = await CachedBackend(ScriptedBackend(["c"], backend_id="other", model="m1"), tmp_path).generate(request())
    same = await CachedBackend(ScriptedBackend([], model="m1"), tmp_path).generate(request())
    assert (other_model.cached, other_id.cached, same.cached) == (False, False, True)
    assert same.texts == ["a", "a"]


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\xff not json",
        b"",
        b'{"version": 1, "key": ',  # truncated JSON, as after a crash mid-write without the atomic rename
        b'{"version": 1, "texts": "not a list"}',
        b"[1, 2, 3]",
    ],
)
async def test_corrupt_entry_is_a_miss_and_is_overwritten(tmp_path: Path, garbage: bytes) -> None:
    inner = ScriptedBackend(["fresh", "unused"])
    backend = CachedBackend(inner, tmp_path)
    path = backend.path_for(backend.key(request()))
    path.parent.mkdir(parents=True)
    path.write_bytes(garbage)
    first = await backend.generate(request())
    assert not first.cached and first.texts == ["fresh", "fresh"]
    assert json.loads(path.read_text())["texts"] == ["fresh", "fresh"]
    second = await backend.generate(request())
    assert second.cached and second.texts == ["fresh", "fresh"] and len(inner.requests) == 1


async def test_entry_for_another_key_is_not_used(tmp_path: Path) -> None:
    """An entry copied (or renamed) to the wrong file name does not answer for the request it sits under."""
    backend = CachedBackend(ScriptedBackend(["one", "two"]), tmp_path)
    await backend.generate(request())
    source = backend.path_for(backend.key(request()))
    target = backend.path_for(backend.key(request(seed=99)))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes())
    result = await backend.generate(request(seed=99))
    assert not result.cached and result.texts == ["two", "two"]


async def test_leftover_temp_file_is_not_read_back(tmp_path: Path) -> None:
    """A write interrupted before its rename leaves only a temporary file: it is never read as the entry."""
    backend = CachedBackend(ScriptedBackend(["real"]), tmp_path)
    key = backend.key(request())
    path = backend.path_for(key)
    path.parent.mkdir(parents=True)
    valid = {
        "version": 1,
        "key": key,
        "texts": ["from the temp file"],
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "model": "scripted",
        "finish_reasons": ["stop"],
    }
    (path.parent / f".{key}.abc123.tmp").write_text(json.dumps(valid))
    result = await backend.generate(request())
    assert not result.cached and result.texts == ["real", "real"]


async def test_interrupted_write_leaves_no_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rename fails (as if the process died before it): the generation still succeeds, no partial entry is
    left under the entry's name, the temp file is removed, and the next call is a miss."""
    inner = ScriptedBackend(["a", "b"])
    backend = CachedBackend(inner, tmp_path)

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    result = await backend.generate(request())
    assert result.texts == ["a", "a"]
    assert entries(tmp_path) == []
    monkeypatch.undo()
    again = await backend.generate(request())
    assert not again.cached and again.texts == ["b", "b"]
    assert len(entries(tmp_path)) == 1


async def test_writes_leave_no_temp_files(tmp_path: Path) -> None:
    backend = CachedBackend(ScriptedBackend(["x", "y", "z"]), tmp_path)
    for seed in range(3):
        await backend.generate(request(seed=seed))
    names = [p.name for p in entries(tmp_path)]
    assert len(names) == 3 and all(name.endswith(".json") and not name.startswith(".") for name in names)


async def test_errors_are_not_cached(tmp_path: Path) -> None:
    inner = ScriptedBackend([BackendError("timeout", "no answer"), "ok"])
    backend = CachedBackend(inner, tmp_path)
    with pytest.raises(BackendError):
        await backend.generate(request())
    assert entries(tmp_path) == []
    result = await backend.generate(request())
    assert not result.cached and result.texts == ["ok", "ok"]


async def test_unwritable_cache_dir_does_not_fail_generation(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    backend = CachedBackend(ScriptedBackend(["a", "b"]), blocker / "cache")
    assert (await backend.generate(request())).texts == ["a", "a"]
    assert (await backend.generate(request())).texts == ["b", "b"]


async def test_api_key_is_neither_in_the_key_nor_in_the_entry(tmp_path: Path) -> None:
    key_one, key_two = "sk-one-SECRETVALUE-111", "sk-two-SECRETVALUE-222"
    with FaultServer() as server:
        server.script(ok("{}", "{}"))
        first = CachedBackend(OpenAIBackend(server.url, "m", api_key=key_one, connect_timeout_s=0.3), tmp_path)
        second = CachedBackend(OpenAIBackend(server.url, "m", api_key=key_two, connect_timeout_s=0.3), tmp_path)
        try:
            assert first.key(request()) == second.key(request())
            assert not (await first.generate(request())).cached
            assert (await second.generate(request())).cached
        finally:
            await first.aclose()
            await second.aclose()
        assert len(server.requests) == 1
    for path in entries(tmp_path):
        text = path.read_text()
        assert key_one not in text and key_two not in text and "SECRETVALUE" not in text


def test_default_cache_dir() -> None:
    assert default_cache_dir({"XDG_CACHE_HOME": "/x/cache"}) == Path("/x/cache/lift-lsp")
    assert default_cache_dir({"XDG_CACHE_HOME": "relative"}) == Path.home() / ".cache" / "lift-lsp"
    assert default_cache_dir({}) == Path.home() / ".cache" / "lift-lsp"


async def test_aclose_closes_the_inner_backend(tmp_path: Path) -> None:
    inner = ScriptedBackend([])
    await CachedBackend(inner, tmp_path).aclose()
    assert inner.closed
