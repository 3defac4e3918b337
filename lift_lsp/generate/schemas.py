"""Export the JSON schemas of the IR and of the code step to `grammars/` (`python -m lift_lsp.generate.schemas`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from lift_lsp.spec.ir import IR, CodeCandidate

GRAMMARS_DIR = Path(__file__).resolve().parents[2] / "grammars"


def ir_schema() -> dict[str, Any]:
    return IR.model_json_schema()


def code_schema() -> dict[str, Any]:
    return CodeCandidate.model_json_schema()


def exported() -> dict[str, str]:
    """File name in `grammars/` -> the text it must hold."""
    from lift_lsp.generate.grammar import schema_to_ebnf

    header = (
        "# Generated from lift_lsp/spec/ir.py by `python -m lift_lsp.generate.schemas` (lift_lsp.generate.grammar);"
        " do not edit.\n"
    )
    return {
        "ir.schema.json": json.dumps(ir_schema(), indent=2, sort_keys=True) + "\n",
        "code.schema.json": json.dumps(code_schema(), indent=2, sort_keys=True) + "\n",
        "ir.ebnf": header + schema_to_ebnf(ir_schema()),
        "code.ebnf": header + schema_to_ebnf(code_schema()),
    }


def main() -> int:
    GRAMMARS_DIR.mkdir(exist_ok=True)
    for name, text in exported().items():
        (GRAMMARS_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote grammars/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
