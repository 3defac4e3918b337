"""The Modal deployment's own SGLang and XGrammar, installed in folders of their own, accept what lift-lsp sends.

`modal_backend.app.SGLANG_VERSION` names the SGLang the deployment runs. These tests install that wheel from PyPI
(`pip install --no-deps --target`, with the few packages its modules import at load time) and the XGrammar it pins,
each in a folder under `.venv/deployed/` (kept between runs), and run them in subprocesses, so that the versions this
project itself uses (its own XGrammar) are never mixed in:

- the SGLang wheel pins `XGRAMMAR_VERSION`;
- every grammar lift-lsp's backends can send compiles with that XGrammar: the IR and code grammars, the IR grammar
  pinned to each stub of `examples/` and of the 164 HumanEval prompts, the Python-subset body grammar of each;
- the launch command parses with that SGLang's own `ServerArgs.add_cli_args` / `ServerArgs.from_cli_args`;
- the request bodies the backend builds (and the deployment's warm-up) are that SGLang's `ChatCompletionRequest`,
  with every field one it knows (pydantic there ignores unknown fields: a misspelt `ebnf` would be dropped).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lift_lsp.generate.backends.base import Constraint, GenerationRequest
from lift_lsp.generate.backends.openai import OpenAIBackend
from lift_lsp.generate.constraints import code_constraint_for, pinned_ir_constraint
from lift_lsp.generate.grammar import code_ebnf, ir_ebnf
from lift_lsp.generate.prompts import code_messages, ir_messages
from lift_lsp.spec.reverse import function_ir
from lift_lsp.spec.sites import SpecSite, find_sites
from modal_backend.app import (
    SGLANG_VERSION,
    WARMUP_MAX_TOKENS,
    WARMUP_MESSAGES,
    XGRAMMAR_VERSION,
    ServeConfig,
    serve_command,
)
from tests.humaneval import problems

ROOT = Path(__file__).resolve().parents[1]
DEPLOYED = ROOT / ".venv" / "deployed"
SGLANG_IMPORTS = [
    "pybase64==1.5.1",
    "requests==2.34.2",
    "urllib3==2.8.0",
    "orjson==3.13.0",
    "psutil==7.2.2",
    "pyzmq==27.3.0",
    "pillow==13.0.0",
    "starlette==1.10.0",
    "partial_json_parser==0.2.1.1.post7",
    "ipython==9.18.1",
    "traitlets==5.16.1",
    "msgspec==0.23.0",
]
"""What `sglang.srt.server_args` and `sglang.srt.entrypoints.openai.protocol` import when loaded (torch,
transformers and pydantic come from this environment)."""


def installed(name: str, packages: list[str]) -> Path:
    """`packages` installed with `pip --no-deps` into `.venv/deployed/<name>` (once; a marker records success)."""
    target = DEPLOYED / name
    marker = target / ".complete"
    if not marker.exists():
        command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), *packages]
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot install {' '.join(packages)} from PyPI here: {done.stderr.strip()[-500:]}")
        marker.write_text("\n".join(packages) + "\n")
    return target


def run_with(folder: Path, script: str, payload: Any) -> Any:
    """Run `script` in a fresh interpreter with `folder` first on its path; it reads `payload` (JSON) from stdin
    and prints one JSON line."""
    env = {**os.environ, "PYTHONPATH": str(folder)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def sglang_dir() -> Path:
    return installed(f"sglang-{SGLANG_VERSION}", [f"sglang=={SGLANG_VERSION}", *SGLANG_IMPORTS])


@pytest.fixture(scope="session")
def xgrammar_dir() -> Path:
    return installed(f"xgrammar-{XGRAMMAR_VERSION}", [f"xgrammar=={XGRAMMAR_VERSION}"])


def stubs() -> Iterator[tuple[str, SpecSite]]:
    """Every stub of `examples/` and every HumanEval prompt, as forward mode sees them."""
    for path in sorted((ROOT / "examples").glob("*.py")):
        for site in find_sites(path.read_text(encoding="utf-8")):
            if site.is_stub:
                yield f"{path.name}:{site.qualname}", site
    for problem in problems():
        sites = [s for s in find_sites(problem["prompt"]) if s.name == problem["entry_point"]]
        yield problem["task_id"], sites[-1]


def sent_grammars() -> dict[str, str]:
    grammars = {"ir": ir_ebnf(), "code": code_ebnf()}
    for label, site in stubs():
        pinned = pinned_ir_constraint(function_ir(site).ir).ebnf
        subset = code_constraint_for(site, "subset").ebnf
        assert pinned is not None and subset is not None
        grammars[f"{label} pinned IR"] = pinned
        grammars[f"{label} subset body"] = subset
    return grammars


COMPILE = r"""
import json, sys
import xgrammar as xg
grammars = json.load(sys.stdin)
vocab = [chr(c) for c in range(32, 127)] + ["\n", "é", '", "', '"}', "\\n", "return ", "</s>"]
compiler = xg.GrammarCompiler(xg.TokenizerInfo(vocab, stop_token_ids=[len(vocab) - 1]), cache_enabled=False)
failed = {}
for name, grammar in grammars.items():
    try:
        compiler.compile_grammar(grammar)
    except Exception as err:
        failed[name] = str(err)[:300]
print(json.dumps({"version": xg.__file__, "compiled": len(grammars) - len(failed), "failed": failed}))
"""


def test_the_deployed_sglang_pins_our_xgrammar(sglang_dir: Path) -> None:
    metadata = (sglang_dir / f"sglang-{SGLANG_VERSION}.dist-info" / "METADATA").read_text(encoding="utf-8")
    pins = [line.split(" ", 1)[1] for line in metadata.splitlines() if line.startswith("Requires-Dist: xgrammar")]
    assert pins == [f"xgrammar=={XGRAMMAR_VERSION}"]


def test_every_grammar_lift_lsp_sends_compiles_with_the_deployed_xgrammar(xgrammar_dir: Path) -> None:
    grammars = sent_grammars()
    assert len(grammars) >= 2 + 2 * 164
    result = run_with(xgrammar_dir, COMPILE, grammars)
    assert result["version"].startswith(str(xgrammar_dir))  # the deployed version, not this environment's
    assert result["failed"] == {} and result["compiled"] == len(grammars)


def test_the_checker_notices_a_grammar_that_xgrammar_refuses(xgrammar_dir: Path) -> None:
    result = run_with(xgrammar_dir, COMPILE, {"bad": 'root ::= "a" undefined_rule'})
    assert list(result["failed"]) == ["bad"]


PARSE_ARGS = r"""
import argparse, json, sys
from sglang.srt.server_args import ServerArgs
parser = argparse.ArgumentParser()
ServerArgs.add_cli_args(parser)
args = ServerArgs.from_cli_args(parser.parse_args(json.load(sys.stdin)))
print(json.dumps({k: getattr(args, k) for k in ("model_path", "host", "port", "grammar_backend", "tp_size",
                                                "context_length", "revision")}))
"""


def test_the_launch_command_parses_with_the_deployed_sglang(sglang_dir: Path) -> None:
    config = ServeConfig(gpu="A100-80GB:2", context_length=16384, revision="abc123")
    command = serve_command(config, port=8000)
    assert command[:3] == ["python", "-m", "sglang.launch_server"]
    parsed = run_with(sglang_dir, PARSE_ARGS, command[3:])
    assert parsed == {
        "model_path": config.model,
        "host": "0.0.0.0",
        "port": 8000,
        "grammar_backend": "xgrammar",
        "tp_size": 2,
        "context_length": 16384,
        "revision": "abc123",
    }


VALIDATE = r"""
import json, sys
from sglang.srt.entrypoints.openai.protocol import ChatCompletionRequest
out = []
for body in json.load(sys.stdin):
    request = ChatCompletionRequest.model_validate(body)
    out.append({"unknown": sorted(set(body) - set(ChatCompletionRequest.model_fields)),
                "ebnf": request.ebnf == body.get("ebnf"), "n": request.n, "seed": request.seed})
print(json.dumps(out))
"""


def test_the_backends_requests_are_the_deployed_sglangs_chat_completion_requests(sglang_dir: Path) -> None:
    site = next(site for label, site in stubs() if label == "HumanEval/0")
    prompt = next(problem["prompt"] for problem in problems() if problem["task_id"] == "HumanEval/0")
    spec = function_ir(site)
    backend = OpenAIBackend("http://127.0.0.1:9/v1", "Qwen/Qwen2.5-Coder-7B-Instruct", constraint_format="ebnf")
    requests = [
        GenerationRequest(ir_messages(site, None), pinned_ir_constraint(spec.ir), max_tokens=1024, seed=7),
        GenerationRequest(code_messages(prompt, site), code_constraint_for(site, "subset"), n=2, temperature=0.4),
        GenerationRequest([{"role": "user", "content": "x"}], Constraint("regex", regex="[0-9]+")),
    ]
    warm_up = {"model": "m", "messages": WARMUP_MESSAGES, "max_tokens": WARMUP_MAX_TOKENS, "ebnf": ir_ebnf()}
    bodies = [backend.build_body(r) for r in requests] + [warm_up]
    assert all("ebnf" in body for body in bodies[:2])
    checked = run_with(sglang_dir, VALIDATE, bodies)
    assert [c["unknown"] for c in checked] == [[]] * len(bodies)
    assert [c["ebnf"] for c in checked] == [True] * len(bodies)
    assert [(c["n"], c["seed"]) for c in checked[:2]] == [(1, 7), (2, None)]
