"""The Modal deployment (`modal_backend/app.py`): its launch command and the options its Modal Function carries.

The app is imported in a subprocess with no Modal token, no Modal config file and Modal's API address pointed at a
closed local port, so any attempt to contact Modal while importing or inspecting would fail the test. The Function's
options are read from what modal 1.x keeps on a not-yet-deployed Function: `Function.info()` (GPU, volumes, web
auth, timeouts, concurrency), the web-server webhook config (port, startup timeout) and, for the autoscaler settings
and the image's Dockerfile commands, the variables captured by the lazy loaders (modal keeps them nowhere else
before deploying). If a modal upgrade moves them, `inspect_app` below is the one place to change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from lift_lsp.generate.grammar import ir_ebnf
from lift_lsp.spec.ir import IR, Intent, Signature

pytest.importorskip("modal")

from modal_backend.app import (
    CONFIG,
    DEFAULT_MODEL,
    HF_CACHE_PATH,
    HF_CACHE_VOLUME,
    PORT,
    SGLANG_IMAGE,
    SGLANG_VERSION,
    STARTUP_TIMEOUT_S,
    WARMUP_MAX_TOKENS,
    ServeConfig,
    check_endpoint,
    load_config,
    serve_command,
    sglang_command,
    wait_healthy,
)

ROOT = Path(__file__).resolve().parents[1]

INSPECT = r"""
import inspect, json
import modal_backend.app as m
from modal._utils.async_utils import synchronizer
from modal_proto import api_pb2

def loader_vars(obj):
    return inspect.getclosurevars(obj._load).nonlocals

def dockerfile_commands(image):
    found = loader_vars(image)
    commands = []
    bases = list((found.get("base_images") or {}).values())
    if found.get("base_image") is not None:  # a layer that adds local files (add_local_python_source)
        bases.append(found["base_image"])
    for base in bases:
        commands += dockerfile_commands(base)
    if found.get("dockerfile_function") is not None:
        commands += found["dockerfile_function"]("2025.06").commands
    return commands

def mounted_packages(image):
    found = loader_vars(image)
    names = [] if found.get("base_image") is None else mounted_packages(found["base_image"])
    mount = found.get("mount")
    if mount is not None:
        names += [entry.module_name for entry in mount._entries]
    return names

out = {}
for name in ("serve", "download_weights"):
    fn = getattr(m, name)
    info = fn.info()
    raw = synchronizer._translate_in(fn)
    autoscaler = loader_vars(raw)["autoscaler_settings"]
    web = raw._webhook_config
    out[name] = {
        "gpus": [list(g) for g in info.gpus],
        "volumes": {path: v.name for path, v in info.volumes.items()},
        "web": None if info.web_info is None else {"unauthenticated": info.web_info.unauthenticated},
        "web_type": api_pb2.WebhookType.Name(web.type) if web is not None else None,
        "web_server_port": web.web_server_port if web is not None else None,
        "web_server_startup_timeout": web.web_server_startup_timeout if web is not None else None,
        "startup_timeout": info.startup_timeout,
        "timeout": info.timeout,
        "max_inputs": info.concurrency_info.max_inputs if info.concurrency_info else None,
        "scaledown_window": autoscaler.scaledown_window,
        "min_containers": autoscaler.min_containers,
        "max_containers": autoscaler.max_containers,
        "secrets": info.secrets,
        "image": dockerfile_commands(raw._spec.image),
        "image_mounts": mounted_packages(raw._spec.image),
    }
out["app_name"] = m.app.name
out["command"] = m.serve_command(m.CONFIG)
out["warmup_kind"] = type(m.warmup).__name__
print(json.dumps(out))
"""


def inspect_app(tmp_path: Path, **lift_env: str) -> dict[str, Any]:
    """Import the app offline in a fresh interpreter with `lift_env` set, and return what its Functions carry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODAL_", "LIFT_MODAL_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env |= {"HOME": str(home), "MODAL_SERVER_URL": "http://127.0.0.1:9", "PYTHONPATH": str(ROOT), **lift_env}
    done = subprocess.run(
        [sys.executable, "-c", INSPECT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_default_deployment(tmp_path: Path) -> None:
    app = inspect_app(tmp_path)
    assert app["app_name"] == "lift-sglang"
    serve = app["serve"]
    assert serve["gpus"] == [["L40S", 1]]
    assert serve["volumes"] == {HF_CACHE_PATH: HF_CACHE_VOLUME} == {"/root/.cache/huggingface": "lift-hf-cache"}
    assert serve["web"] == {"unauthenticated": False}  # requires_proxy_auth=True: Modal-Key/Modal-Secret needed
    assert serve["web_type"] == "WEBHOOK_TYPE_WEB_SERVER"
    assert serve["web_server_port"] == PORT
    assert serve["web_server_startup_timeout"] == STARTUP_TIMEOUT_S == serve["startup_timeout"]
    assert serve["scaledown_window"] == 300
    assert serve["min_containers"] == 0
    assert serve["max_containers"] == 1
    assert serve["max_inputs"] == 32
    assert any("LIFT_MODAL_MODEL" in s for s in serve["secrets"])  # the container sees the deploy-time config
    assert serve["image"][0] == f"FROM {SGLANG_IMAGE}" == f"FROM lmsysorg/sglang:v{SGLANG_VERSION}"
    assert "ENV HF_HUB_ENABLE_HF_TRANSFER=1" in serve["image"]
    assert "ENV HF_HOME=/root/.cache/huggingface" in serve["image"]
    assert any(c.startswith("RUN ") and "hf-transfer==" in c for c in serve["image"])
    assert serve["image_mounts"] == ["lift_lsp"]  # the warm-up's IR grammar and model
    assert app["command"] == [
        "python", "-m", "sglang.launch_server", "--model-path", DEFAULT_MODEL, "--host", "0.0.0.0",
        "--port", str(PORT), "--grammar-backend", "xgrammar", "--tp-size", "1",
    ]  # fmt: skip
    weights = app["download_weights"]
    assert weights["gpus"] == []  # the download runs on a CPU container
    assert weights["volumes"] == {HF_CACHE_PATH: HF_CACHE_VOLUME}
    assert weights["web"] is None
    assert app["warmup_kind"] == "LocalEntrypoint"  # `modal run modal_backend/app.py::warmup`


def test_deploy_time_environment_changes_the_function(tmp_path: Path) -> None:
    app = inspect_app(
        tmp_path,
        LIFT_MODAL_MODEL="Qwen/Qwen2.5-Coder-14B-Instruct",
        LIFT_MODAL_GPU="A100-80GB:2",
        LIFT_MODAL_SCALEDOWN="120",
        LIFT_MODAL_MIN_CONTAINERS="1",
        LIFT_MODAL_CONTEXT_LENGTH="16384",
        LIFT_MODAL_PROXY_AUTH="0",
    )
    serve = app["serve"]
    assert serve["gpus"] == [["A100-80GB", 2]]
    assert (serve["scaledown_window"], serve["min_containers"], serve["max_containers"]) == (120, 1, 1)
    assert serve["web"] == {"unauthenticated": True}
    command = app["command"]
    assert command[command.index("--model-path") + 1] == "Qwen/Qwen2.5-Coder-14B-Instruct"
    assert command[command.index("--tp-size") + 1] == "2"
    assert command[command.index("--context-length") + 1] == "16384"


def test_sglang_command() -> None:
    command = sglang_command("Qwen/Qwen2.5-Coder-7B-Instruct", 30000)
    assert command[:3] == ["python", "-m", "sglang.launch_server"]
    pairs = dict(zip(command[3::2], command[4::2], strict=True))
    assert pairs == {
        "--model-path": "Qwen/Qwen2.5-Coder-7B-Instruct",
        "--host": "0.0.0.0",
        "--port": "30000",
        "--grammar-backend": "xgrammar",
        "--tp-size": "1",
    }
    longer = sglang_command("m", 8000, tp=4, context_length=8192, extra=["--mem-fraction-static", "0.8"])
    assert longer[-6:] == ["--tp-size", "4", "--context-length", "8192", "--mem-fraction-static", "0.8"]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("", 8000), {}),
        (("m", 0), {}),
        (("m", 70000), {}),
        (("m", 8000), {"tp": 0}),
        (("m", 8000), {"context_length": 0}),
    ],
)
def test_sglang_command_rejects_bad_values(args: tuple[str, int], kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        sglang_command(*args, **kwargs)  # type: ignore[arg-type]


def test_sglang_command_rejects_a_string_for_extra() -> None:
    with pytest.raises(TypeError):
        sglang_command("m", 8000, extra="--foo bar")


def test_load_config_defaults_and_overrides() -> None:
    assert load_config({}) == ServeConfig()
    config = load_config(
        {
            "LIFT_MODAL_MODEL": "org/model",
            "LIFT_MODAL_GPU": "H100:2",
            "LIFT_MODAL_SCALEDOWN": "60",
            "LIFT_MODAL_MIN_CONTAINERS": "2",
            "LIFT_MODAL_REVISION": "abc123",
        }
    )
    assert (config.model, config.gpu, config.gpu_count) == ("org/model", "H100:2", 2)
    assert (config.scaledown_window, config.min_containers, config.max_containers) == (60, 2, 2)
    assert serve_command(config)[-2:] == ["--revision", "abc123"]


def test_container_env_round_trips() -> None:
    """The container rebuilds the deploying machine's config from the variables the Function passes on."""
    for config in (
        ServeConfig(),
        load_config({"LIFT_MODAL_GPU": "A10G", "LIFT_MODAL_CONTEXT_LENGTH": "4096", "LIFT_MODAL_PROXY_AUTH": "0"}),
        load_config({"LIFT_MODAL_REVISION": "r1", "LIFT_MODAL_MAX_CONTAINERS": "3", "LIFT_MODAL_SCALEDOWN": "2"}),
    ):
        assert load_config(config.container_env()) == config


@pytest.mark.parametrize(
    "env",
    [
        {"LIFT_MODAL_SCALEDOWN": "1"},
        {"LIFT_MODAL_SCALEDOWN": "3601"},
        {"LIFT_MODAL_SCALEDOWN": "five"},
        {"LIFT_MODAL_MIN_CONTAINERS": "-1"},
        {"LIFT_MODAL_MIN_CONTAINERS": "2", "LIFT_MODAL_MAX_CONTAINERS": "1"},
        {"LIFT_MODAL_GPU": "L40S:0"},
        {"LIFT_MODAL_GPU": ":2"},
        {"LIFT_MODAL_PROXY_AUTH": "maybe"},
    ],
)
def test_load_config_rejects_bad_values(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="LIFT_MODAL_"):
        load_config(env)


AN_IR = IR(signature=Signature(name="add"), intent=Intent(summary="Add two integers.")).model_dump_json()


class FakeSGLang(BaseHTTPRequestHandler):
    """A loopback stand-in for the deployed endpoint: `/health` fails `unhealthy` times, then answers 200;
    `/v1/chat/completions` records the request and answers with `answer`."""

    unhealthy: ClassVar[int] = 0
    answer: ClassVar[str] = AN_IR
    requests: ClassVar[list[tuple[str, dict[str, str], Any]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        FakeSGLang.requests.append((self.path, dict(self.headers), None))
        if self.path != "/health":
            self._reply(404, {})
        elif FakeSGLang.unhealthy > 0:
            FakeSGLang.unhealthy -= 1
            self._reply(503, {})
        else:
            self._reply(200, {})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeSGLang.requests.append((self.path, dict(self.headers), body))
        self._reply(200, {"choices": [{"message": {"role": "assistant", "content": FakeSGLang.answer}}]})


@pytest.fixture
def fake_endpoint() -> Iterator[str]:
    FakeSGLang.unhealthy, FakeSGLang.answer, FakeSGLang.requests = 2, AN_IR, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSGLang)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_check_endpoint_waits_for_health_then_sends_a_constrained_request(
    fake_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODAL_PROXY_TOKEN_ID", "wk-123")
    monkeypatch.setenv("MODAL_PROXY_TOKEN_SECRET", "ws-456")
    monkeypatch.setattr("modal_backend.app.time.sleep", lambda _: None)
    report = check_endpoint(fake_endpoint + "/v1/", timeout_s=30)
    assert report.startswith(f"{fake_endpoint}: healthy after") and "an IR ('Add two integers.')" in report
    paths = [path for path, _, _ in FakeSGLang.requests]
    assert paths == ["/health", "/health", "/health", "/v1/chat/completions"]
    for _, headers, _ in FakeSGLang.requests:
        assert headers["Modal-Key"] == "wk-123" and headers["Modal-Secret"] == "ws-456"
    body = FakeSGLang.requests[-1][2]
    assert body["ebnf"] == ir_ebnf() == (ROOT / "grammars" / "ir.ebnf").read_text().split("\n", 1)[1]
    assert body["model"] == CONFIG.model and body["max_tokens"] == WARMUP_MAX_TOKENS


def test_check_endpoint_fails_when_the_answer_is_not_an_ir(fake_endpoint: str) -> None:
    FakeSGLang.unhealthy, FakeSGLang.answer = 0, "Sure! ok."
    with pytest.raises(RuntimeError, match="warm-up answer is not lift-lsp's IR"):
        check_endpoint(fake_endpoint, timeout_s=30)


def test_wait_healthy_stops_when_the_server_process_exits() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait(timeout=30)
    with pytest.raises(RuntimeError, match="status 3"):
        wait_healthy("http://127.0.0.1:9", timeout_s=30, process=process)


def test_wait_healthy_times_out() -> None:
    with pytest.raises(TimeoutError, match="not healthy within"):
        wait_healthy("http://127.0.0.1:9", timeout_s=0.3, interval_s=0.1)
