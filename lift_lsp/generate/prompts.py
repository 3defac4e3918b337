"""The messages sent to the model in forward mode: spec -> IR, IR -> code, and a repair round."""

from __future__ import annotations

import json

from lift_lsp.spec.ir import IR
from lift_lsp.spec.sites import SpecSite
from lift_lsp.spec.typecontext import TypeContext

IR_SYSTEM = (
    "You turn a Python function's specification into a JSON intermediate representation (IR). Copy the signature "
    "exactly as given. Write preconditions and postconditions as pure Python boolean expressions over the "
    "parameters (and `result` for postconditions). Keep the documented examples, with arguments and results as "
    "Python literals. Add a hole only for something the specification truly leaves open. Answer with the JSON only."
)

CODE_SYSTEM = (
    "You implement a Python function from its IR. Answer with JSON: `body` is the function body only (no `def` "
    "line, no docstring), written at zero indentation, using the parameter names of the signature; `imports` are "
    "import statements the body needs; `helpers` are complete helper function definitions, if any; `notes` is "
    "one short sentence. The body must satisfy every example, precondition and postcondition."
)


def _stub_context(site: SpecSite, context: TypeContext | None) -> str:
    parts = [f"The stub:\n```python\n{site.text}\n```"]
    if context is not None:
        described = context.describe()
        if described:
            parts.append(described)
    return "\n\n".join(parts)


def ir_messages(site: SpecSite, context: TypeContext | None) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": IR_SYSTEM},
        {"role": "user", "content": _stub_context(site, context) + "\n\nWrite the IR of this function."},
    ]


def code_messages(site: SpecSite, ir: IR, context: TypeContext | None) -> list[dict[str, str]]:
    ir_json = json.dumps(ir.model_dump(mode="json", exclude={"provenance"}), indent=1)
    return [
        {"role": "system", "content": CODE_SYSTEM},
        {
            "role": "user",
            "content": f"{_stub_context(site, context)}\n\nIts IR:\n```json\n{ir_json}\n```\n\nImplement the body.",
        },
    ]


def repair_messages(messages: list[dict[str, str]], candidate_json: str, error: str) -> list[dict[str, str]]:
    return [
        *messages,
        {"role": "assistant", "content": candidate_json},
        {
            "role": "user",
            "content": f"That implementation fails:\n{error}\n\nFix it. Answer with the corrected JSON only.",
        },
    ]
