"""The messages sent to the model in forward mode: the code of a stub (from the file, or after an IR step), a fix of
existing code, a repair round.

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


COMPLETE = "Complete the following Python function."
"""How the code step asks, when the IR is the spec's own (`generation.irSource: spec`): as a user asks a code model
for a function, the file up to the stub's end in a code block; the IR is what each answer is checked against.
(Asked from the IR's JSON instead, Qwen2.5-Coder-0.5B's first answer failed tasks its plain answer passed: README.)"""
_FORMS = {"python": "Answer with the whole function in one Python code block.", "json": _ANSWERS["json"]}
CONTEXT_CHARS = 6000
"""At most this much of the file before the stub goes with it (from a line's start)."""


def code_messages(text: str, site: SpecSite, code_format: CodeFormat = "json") -> list[dict[str, str]]:
    """The code step's request: the document `text` up to the end of the stub `site`, to complete."""
    lines = text.split("\n")
    before = "\n".join(lines[: site.span.start_line])
    if len(before) > CONTEXT_CHARS:
        cut = before[-CONTEXT_CHARS:]
        before = cut[cut.find("\n") + 1 :]
    stub = "\n".join(lines[site.span.start_line : site.span.end_line + 1])
    code = f"{before}\n{stub}\n" if before else f"{stub}\n"
    return [{"role": "user", "content": f"{COMPLETE} {_FORMS[code_format]}\n\n```python\n{code}```"}]


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
