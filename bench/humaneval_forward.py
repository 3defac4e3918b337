"""Forward mode on HumanEval against an OpenAI-compatible endpoint; the same as `lift-lsp bench`.

    .venv/bin/python -m bench.humaneval_forward --url http://127.0.0.1:30000/v1 --model M [--limit N] ...

The harness lives in `lift_lsp.benchmark` (so an installed `lift-lsp` has it); `--help` lists the options.
Writes `bench/results/humaneval_forward.json` by default.
"""

from __future__ import annotations

import sys

from lift_lsp.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
