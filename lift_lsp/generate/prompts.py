"""The messages sent to the model in forward mode: spec -> IR, IR -> code, a fix of existing code, a repair round.

The code step after an IR step continues that conversation (its messages, the model's IR as the assistant's answer,
then the request for code), so an engine that keeps the KV cache of the last sequence evaluates only the new turn.
"""

from __future__ import annotations

import json
from typing import Literal

from lift_lsp.spec.ir import IR
from lift_lsp.spec.sites import SpecSite
from lift_lsp.spec.typecontext import TypeContext

IR_SYSTEM = (
    "You implement Python functions from their specifications, in two steps. First you turn the specification into "
    "a JSON intermediate representation (IR); then you write the code from it. In the IR, copy the signature "
    "exactly as given. Write preconditions and postconditions as pure Python boolean expressions over the "
    "parameters (and `result` for postconditions). Keep the documented examples, with arguments and results as "
    "Python literals. Add a hole only for something the specification truly leaves open. Answer each step with its "
    "JSON only."
)

CodeFormat = Literal["python", "json"]
_ANSWERS: dict[str, str] = {
    "json": (
        "Answer with JSON: `body` is the function body only (no `def` line, no docstring), written at zero "
        "indentation, using the parameter names of the signature; `imports` are import statements the body needs; "
        "`helpers` are complete helper function definitions, if any. The body must satisfy every example, "
        "precondition and postcondition."
    ),
    "python": (
        "Answer with the whole function in one Python code block: its `def` line as given, then its body (no "
        "docstring needed), with the imports and helper functions it needs. It must satisfy every example, "
        "precondition and postcondition."
    ),
}
_CORRECTED = {"json": "Answer with the corrected JSON only.", "python": "Answer with the corrected function only."}


def _code_system(code_format: CodeFormat) -> str:
    return f"You implement a Python function from its IR. {_ANSWERS[code_format]}"


def _fix_system(code_format: CodeFormat) -> str:
    return (
        "You fix a Python function whose code fails its own specification (its docstring's examples and contracts, "
        f"summed up in its IR). Keep what the code gets right. {_ANSWERS[code_format]}"
    )


def _stub_context(site: SpecSite, context: TypeContext | None, label: str = "The stub") -> str:
    parts = [f"{label}:\n```python\n{site.text}\n```"]
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


def _ir_json(ir: IR) -> str:
    return json.dumps(ir.model_dump(mode="json", exclude={"provenance"}), indent=1)


def code_messages(
    site: SpecSite, ir: IR, context: TypeContext | None, code_format: CodeFormat = "json"
) -> list[dict[str, str]]:
    content = f"{_stub_context(site, context)}\n\nIts IR:\n```json\n{_ir_json(ir)}\n```\n\nImplement the body."
    return [{"role": "system", "content": _code_system(code_format)}, {"role": "user", "content": content}]


def code_messages_after_ir(
    ir_step: list[dict[str, str]], ir_answer: str, code_format: CodeFormat = "json"
) -> list[dict[str, str]]:
    """The code step that continues the IR step's conversation (`ir_step`, answered by `ir_answer`)."""
    return [
        *ir_step,
        {"role": "assistant", "content": ir_answer},
        {"role": "user", "content": f"Now implement the body. {_ANSWERS[code_format]}"},
    ]


def fix_messages(
    site: SpecSite, ir: IR, problems: list[str], context: TypeContext | None, code_format: CodeFormat = "json"
) -> list[dict[str, str]]:
    """The function as it is (its current body), its IR, and the checks it fails."""
    failing = "\n".join(f"- {problem}" for problem in problems[:8])
    content = (
        f"{_stub_context(site, context, 'The function')}\n\nIts IR:\n```json\n{_ir_json(ir)}\n```\n\n"
        f"The code fails these checks of its spec:\n{failing}\n\nWrite the corrected body."
    )
    return [{"role": "system", "content": _fix_system(code_format)}, {"role": "user", "content": content}]


def repair_messages(
    messages: list[dict[str, str]], candidate: str, error: str, code_format: CodeFormat = "json"
) -> list[dict[str, str]]:
    return [
        *messages,
        {"role": "assistant", "content": candidate},
        {"role": "user", "content": f"That implementation fails:\n{error}\n\nFix it. {_CORRECTED[code_format]}"},
    ]
