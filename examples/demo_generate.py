"""Forward mode for `make demo`: generate the bodies of examples/stubs.py and print the diffs.

With LIFT_URL (and LIFT_MODEL) set, against that endpoint. Otherwise with `lift-lsp serve-model` on this machine's CPU,
serving the small model that the Makefile names (downloaded from the Hugging Face hub, with its progress shown; the
`local` extra is installed first if it is missing). Where the hub cannot be reached it says so in one line and exits
0: the reverse-mode demo above it stands alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
STUBS = REPO / "examples" / "stubs.py"
FUNCTIONS = ("running_max", "clamp", "count_vowels")


def generate(url: str, model: str) -> None:
    for function in FUNCTIONS:
        command = [sys.executable, "-m", "lift_lsp.cli", "generate", str(STUBS), "--function", function]
        subprocess.run([*command, "--url", url, "--model", model, "--diff"], check=False)


def hub_unreachable(model: str) -> str | None:
    """Why the model cannot be had from the hub, or None when it can."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip() not in ("", "0"):
        return "HF_HUB_OFFLINE is set"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        response = httpx.get(f"{endpoint}/api/models/{model}", timeout=10)
    except httpx.HTTPError as err:
        return f"{endpoint} cannot be reached: {type(err).__name__}: {' '.join(str(err).split())}"
    if response.status_code != 200:
        return f"{endpoint} answered HTTP {response.status_code} for {model}"
    return None


def serve_and_generate(model: str) -> int:
    if importlib.util.find_spec("transformers") is None:
        print("== installing the `local` extra (torch CPU, transformers, XGrammar) for serve-model", flush=True)
        pip = [sys.executable, "-m", "pip", "install", "-q", "torch==2.13.0", "-e", f"{REPO}[local]"]
        subprocess.run(pip, check=True)
    if not Path(model).is_dir():
        print(f"== downloading {model} from the Hugging Face hub", flush=True)
        download = f"from huggingface_hub import snapshot_download; snapshot_download({model!r})"
        subprocess.run([sys.executable, "-c", download], check=True)  # its progress bars show on the terminal
    print(f"== lift-lsp serve-model --model {model}   (CPU: each step takes a while)", flush=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "lift_lsp.cli", "serve-model", "--model", model, "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        for line in server.stdout:
            if found := re.fullmatch(r"serving on (\S+)\n", line):
                generate(found.group(1), model)
                return 0
        print(f"lift-lsp serve-model exited with status {server.wait()} before serving", file=sys.stderr)
        return 1
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="the model served when no LIFT_URL: a hub id or a folder")
    args = parser.parse_args()
    if os.environ.get("LIFT_URL"):
        generate(os.environ["LIFT_URL"], os.environ.get("LIFT_MODEL", ""))
        return 0
    if Path(args.model).is_dir():  # a model on disk: nothing to download
        return serve_and_generate(args.model)
    reason = hub_unreachable(args.model)
    if reason is not None:
        print(
            f"No code generated: the model comes from the Hugging Face hub, and {reason}"
            " (or point LIFT_URL and LIFT_MODEL at an OpenAI-compatible endpoint)."
        )
        return 0
    return serve_and_generate(args.model)


if __name__ == "__main__":
    sys.exit(main())
