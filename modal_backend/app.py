"""A Modal app serving SGLang's OpenAI-compatible API with XGrammar, for lift-lsp's `modal` backend.

Deploy with `modal deploy modal_backend/app.py`; the endpoint is
`https://<workspace>--lift-sglang-serve.modal.run` (OpenAI API under `/v1`, SGLang's health check at `/health`).
Settings are read from the environment at deploy time (see `load_config`) and passed on to the container, so
that the container builds the same command as the deploying machine saw. Importing this module contacts nothing:
Modal objects are lazy until `modal deploy` / `modal run` hydrates them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import modal
from pydantic import ValidationError

from lift_lsp.generate.grammar import ir_ebnf
from lift_lsp.spec.ir import IR

APP_NAME = "lift-sglang"
FUNCTION_NAME = "serve"
PORT = 8000
MINUTES = 60
STARTUP_TIMEOUT_S = 20 * MINUTES
"""Time for a cold container to fetch weights (first start only), load them, capture CUDA graphs and warm up."""
REQUEST_TIMEOUT_S = 10 * MINUTES
MAX_CONCURRENT_INPUTS = 32
"""Requests one container takes at once: SGLang batches them, so one GPU serves several editors."""

HF_CACHE_PATH = "/root/.cache/huggingface"
HF_CACHE_VOLUME = "lift-hf-cache"
DEFAULT_MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct"
DEFAULT_GPU = "L40S"
"""48 GB: the 7B model's ~15 GB of bf16 weights leave room for a large KV cache; 24 GB cards (L4, A10G) fit it
with little cache left, and the L4's memory bandwidth makes decoding slow. An A100 also works, at a higher price."""
SGLANG_VERSION = "0.5.21"
"""The SGLang the deployment runs: the one version every check of the deployment follows."""
XGRAMMAR_VERSION = "0.2.7"
"""The XGrammar that SGLang `SGLANG_VERSION` pins (its wheel's `Requires-Dist: xgrammar==`): the one that compiles
lift-lsp's grammars on the server. tests/test_deployed_versions.py checks the pin against PyPI's wheel and compiles
every grammar lift-lsp can send with this version."""
SGLANG_IMAGE = f"lmsysorg/sglang:v{SGLANG_VERSION}"
"""SGLang's own CUDA image of that release (SGLang, XGrammar, FlashInfer and their CUDA libraries, versions that work
together)."""

WARMUP_MESSAGES = [
    {"role": "system", "content": "Answer with the IR of the function, as JSON."},
    {"role": "user", "content": 'def add(a: int, b: int) -> int:\n    """Add two integers."""\n    ...'},
]
WARMUP_MAX_TOKENS = 2048


@dataclass(frozen=True)
class ServeConfig:
    """What the deployment runs. `load_config` reads it from `LIFT_MODAL_*` variables."""

    model: str = DEFAULT_MODEL
    gpu: str = DEFAULT_GPU
    scaledown_window: int = 5 * MINUTES
    min_containers: int = 0
    max_containers: int = 1
    context_length: int | None = None
    revision: str | None = None
    proxy_auth: bool = True

    @property
    def gpu_count(self) -> int:
        """The number of GPUs in a spec like `L40S` (1) or `A100-80GB:2` (2): SGLang's tensor-parallel size."""
        _, sep, count = self.gpu.rpartition(":")
        return int(count) if sep else 1

    def container_env(self) -> dict[str, str]:
        """The variables that make `load_config` in the container return this same config."""
        env = {
            "LIFT_MODAL_MODEL": self.model,
            "LIFT_MODAL_GPU": self.gpu,
            "LIFT_MODAL_SCALEDOWN": str(self.scaledown_window),
            "LIFT_MODAL_MIN_CONTAINERS": str(self.min_containers),
            "LIFT_MODAL_MAX_CONTAINERS": str(self.max_containers),
            "LIFT_MODAL_PROXY_AUTH": "1" if self.proxy_auth else "0",
        }
        if self.context_length is not None:
            env["LIFT_MODAL_CONTEXT_LENGTH"] = str(self.context_length)
        if self.revision is not None:
            env["LIFT_MODAL_REVISION"] = self.revision
        return env


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


def load_config(env: Mapping[str, str] = os.environ) -> ServeConfig:
    """The deployment's settings from the environment; unset or empty variables take the defaults.

    `LIFT_MODAL_MODEL` (Hugging Face id), `LIFT_MODAL_GPU` (a Modal GPU spec; `TYPE:N` runs SGLang with `--tp-size N`),
    `LIFT_MODAL_SCALEDOWN` (seconds an idle container stays up, 2-3600), `LIFT_MODAL_MIN_CONTAINERS` (containers kept
    up even when idle: each one is billed all the time), `LIFT_MODAL_MAX_CONTAINERS`, `LIFT_MODAL_CONTEXT_LENGTH`,
    `LIFT_MODAL_REVISION` (a model commit to pin), `LIFT_MODAL_PROXY_AUTH` (`0` makes the endpoint public).
    """
    gpu = env.get("LIFT_MODAL_GPU", "").strip() or DEFAULT_GPU
    gpu_type, sep, count = gpu.rpartition(":")
    if sep and (not gpu_type or not count.isdigit() or int(count) < 1):
        raise ValueError(f"LIFT_MODAL_GPU must look like 'L40S' or 'A100-80GB:2', got {gpu!r}")
    min_containers = _int(env, "LIFT_MODAL_MIN_CONTAINERS", 0, 0, 100)
    max_containers = _int(env, "LIFT_MODAL_MAX_CONTAINERS", max(1, min_containers), 1, 100)
    if max_containers < min_containers:
        raise ValueError(f"LIFT_MODAL_MAX_CONTAINERS ({max_containers}) < LIFT_MODAL_MIN_CONTAINERS ({min_containers})")
    context = env.get("LIFT_MODAL_CONTEXT_LENGTH", "").strip()
    proxy_auth = env.get("LIFT_MODAL_PROXY_AUTH", "1").strip().lower()
    if proxy_auth not in ("1", "0", "true", "false", "yes", "no", ""):
        raise ValueError(f"LIFT_MODAL_PROXY_AUTH must be 1 or 0, got {proxy_auth!r}")
    return ServeConfig(
        model=env.get("LIFT_MODAL_MODEL", "").strip() or DEFAULT_MODEL,
        gpu=gpu,
        scaledown_window=_int(env, "LIFT_MODAL_SCALEDOWN", 5 * MINUTES, 2, 3600),
        min_containers=min_containers,
        max_containers=max_containers,
        context_length=_int(env, "LIFT_MODAL_CONTEXT_LENGTH", 0, 256, 1 << 20) if context else None,
        revision=env.get("LIFT_MODAL_REVISION", "").strip() or None,
        proxy_auth=proxy_auth not in ("0", "false", "no"),
    )


def sglang_command(
    model: str, port: int, *, tp: int = 1, context_length: int | None = None, extra: Sequence[str] = ()
) -> list[str]:
    """The command line that starts SGLang's OpenAI-compatible server with XGrammar as its grammar backend."""
    if not model:
        raise ValueError("model must not be empty")
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be in 1..65535, got {port}")
    if tp < 1:
        raise ValueError(f"tp must be >= 1, got {tp}")
    if context_length is not None and context_length < 1:
        raise ValueError(f"context_length must be >= 1, got {context_length}")
    if isinstance(extra, str):
        raise TypeError("extra must be a sequence of arguments, not one string")
    command = ["python", "-m", "sglang.launch_server", "--model-path", model, "--host", "0.0.0.0", "--port", str(port)]
    command += ["--grammar-backend", "xgrammar", "--tp-size", str(tp)]
    if context_length is not None:
        command += ["--context-length", str(context_length)]
    return command + list(extra)


def serve_command(config: ServeConfig, port: int = PORT) -> list[str]:
    """`sglang_command` for a deployment's config."""
    extra = ["--revision", config.revision] if config.revision else []
    return sglang_command(config.model, port, tp=config.gpu_count, context_length=config.context_length, extra=extra)


def _request(url: str, body: object | None, headers: Mapping[str, str], timeout: float) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    request.add_header("Content-Type", "application/json")
    for key, value in headers.items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_healthy(
    base_url: str,
    *,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
    process: subprocess.Popen[bytes] | None = None,
    interval_s: float = 5.0,
) -> None:
    """Poll `GET {base_url}/health` until it answers 200; fail early when `process` (the server) has exited."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process is not None and (code := process.poll()) is not None:
            raise RuntimeError(f"SGLang exited with status {code} before it became healthy")
        try:
            status, _ = _request(f"{base_url.rstrip('/')}/health", None, headers or {}, timeout=30)
            if status == 200:
                return
            last = f"HTTP {status}"
        except OSError as err:
            last = str(err)
        time.sleep(interval_s)
    raise TimeoutError(f"{base_url}/health not healthy within {timeout_s:.0f}s ({last})")


def warm_up(api_url: str, model: str, *, headers: Mapping[str, str] | None = None, timeout_s: float = 600) -> IR:
    """Send one chat completion constrained by lift-lsp's IR grammar through SGLang's `ebnf` field (the request
    lift-lsp makes), to `{api_url}/chat/completions`. Returns the answer as an IR; raises when the server answers
    with an error (a grammar its XGrammar cannot compile is HTTP 400) or the answer is not an IR."""
    body = {
        "model": model,
        "messages": WARMUP_MESSAGES,
        "max_tokens": WARMUP_MAX_TOKENS,
        "temperature": 0,
        "ebnf": ir_ebnf(),
    }
    status, payload = _request(f"{api_url.rstrip('/')}/chat/completions", body, headers or {}, timeout=timeout_s)
    if status != 200:
        raise RuntimeError(f"warm-up request failed: HTTP {status}: {payload[:500]!r}")
    choice = json.loads(payload)["choices"][0]
    text = str(choice["message"]["content"] or "")
    if choice.get("finish_reason") == "length":
        raise RuntimeError(f"warm-up answer cut off at {WARMUP_MAX_TOKENS} tokens: {text[:200]!r}")
    try:
        return IR.model_validate_json(text)
    except ValidationError as err:
        raise RuntimeError(f"warm-up answer is not lift-lsp's IR ({err.errors()[0]['msg']}): {text[:200]!r}") from None


CONFIG = load_config()

image = (
    modal.Image.from_registry(SGLANG_IMAGE)
    .entrypoint([])  # the image's own entrypoint only prints a banner
    .env({"PIP_BREAK_SYSTEM_PACKAGES": "1"})  # let pip add to the image's system Python where it is marked managed
    .pip_install("hf-transfer==0.1.9")
    .env({"HF_HOME": HF_CACHE_PATH, "HF_HUB_ENABLE_HF_TRANSFER": "1", "HF_XET_HIGH_PERFORMANCE": "1"})
    .add_local_python_source("lift_lsp")  # the warm-up's IR grammar and model (they need pydantic only)
)
CONTAINER_ENV: dict[str, str | None] = {**CONFIG.container_env()}
hf_cache = modal.Volume.from_name(HF_CACHE_VOLUME, create_if_missing=True)
app = modal.App(APP_NAME)


@app.function(
    image=image,
    gpu=CONFIG.gpu,
    volumes={HF_CACHE_PATH: hf_cache},
    env=CONTAINER_ENV,
    scaledown_window=CONFIG.scaledown_window,
    min_containers=CONFIG.min_containers,
    max_containers=CONFIG.max_containers,
    timeout=REQUEST_TIMEOUT_S,
    startup_timeout=STARTUP_TIMEOUT_S,
)
@modal.concurrent(max_inputs=MAX_CONCURRENT_INPUTS)
@modal.web_server(port=PORT, startup_timeout=STARTUP_TIMEOUT_S, requires_proxy_auth=CONFIG.proxy_auth)
def serve() -> None:
    """Start SGLang, wait for `/health`, then send one request with lift-lsp's IR grammar and check the answer is an
    IR: Modal routes traffic here only once the deployment can answer lift-lsp."""
    command = serve_command(CONFIG)
    print("starting:", " ".join(command), file=sys.stderr, flush=True)
    process = subprocess.Popen(command)
    local = f"http://127.0.0.1:{PORT}"
    wait_healthy(local, timeout_s=STARTUP_TIMEOUT_S - MINUTES, process=process)
    warm_up(f"{local}/v1", CONFIG.model)
    hf_cache.commit()  # keep freshly downloaded weights for the next cold start


@app.function(image=image, volumes={HF_CACHE_PATH: hf_cache}, env=CONTAINER_ENV, timeout=60 * MINUTES)
def download_weights() -> str:
    """Fetch the model into the cache volume on a CPU container (`modal run modal_backend/app.py::download_weights`),
    so that the first GPU cold start does not pay for the download."""
    from huggingface_hub import snapshot_download

    path = str(snapshot_download(CONFIG.model, revision=CONFIG.revision))
    hf_cache.commit()
    return path


def check_endpoint(url: str = "", timeout_s: float = STARTUP_TIMEOUT_S) -> str:
    """Wake the endpoint at `url` (default: the deployed `serve` function's URL), wait for `/health`, send one
    completion constrained by lift-lsp's IR grammar and check the answer is an IR; returns a one-line report.
    Sends `MODAL_PROXY_TOKEN_ID`/`MODAL_PROXY_TOKEN_SECRET` as `Modal-Key`/`Modal-Secret` when they are set."""
    base = url.rstrip("/").removesuffix("/v1") or modal.Function.from_name(APP_NAME, FUNCTION_NAME).get_web_url()
    if not base:
        raise SystemExit("no URL: deploy first (modal deploy modal_backend/app.py) or pass one")
    token_id, token_secret = os.environ.get("MODAL_PROXY_TOKEN_ID"), os.environ.get("MODAL_PROXY_TOKEN_SECRET")
    headers = {"Modal-Key": token_id, "Modal-Secret": token_secret} if token_id and token_secret else {}
    started = time.monotonic()
    wait_healthy(base, timeout_s=timeout_s, headers=headers)
    healthy = time.monotonic() - started
    ir = warm_up(f"{base}/v1", CONFIG.model, headers=headers)
    total = time.monotonic() - started
    return f"{base}: healthy after {healthy:.1f}s; an IR ({ir.intent.summary!r}) after {total:.1f}s"


@app.local_entrypoint()
def warmup(url: str = "", timeout: int = STARTUP_TIMEOUT_S) -> None:
    """`modal run modal_backend/app.py::warmup [--url URL]`: `check_endpoint` as a Modal entrypoint."""
    print(check_endpoint(url, timeout))


if __name__ == "__main__":  # `python -m modal_backend.app [URL]`: the same check without `modal run`
    print(check_endpoint(sys.argv[1] if len(sys.argv) > 1 else ""))
