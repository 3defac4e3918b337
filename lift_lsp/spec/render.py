"""The IR as text a person reads: Markdown for hover, plain text for the CLI."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping

from lift_lsp import pyast
from lift_lsp.spec.ir import IR, Condition, Example, Parameter, ParamKind, Source

_SOURCE_WORDS = {
    Source.DOCSTRING: "docstring",
    Source.SPEC_COMMENT: "`# spec:` comment",
    Source.ANNOTATION: "annotation",
    Source.JEDI: "inferred by jedi",
    Source.CODE: "read off the code",
    Source.EXAMPLES: "from the examples",
    Source.DEFAULT: "default",
    Source.MODEL: "model",
    Source.USER: "you",
}


def signature_line(ir: IR) -> str:
    sig = ir.signature
    parts: list[str] = []
    star_written = False
    for index, param in enumerate(sig.parameters):
        if param.kind == ParamKind.KEYWORD_ONLY and not star_written:
            parts.append("*")
            star_written = True
        if param.kind == ParamKind.VAR_POSITIONAL:
            star_written = True
        parts.append(_param_text(param))
        is_last_positional_only = param.kind == ParamKind.POSITIONAL_ONLY and (
            index + 1 == len(sig.parameters) or sig.parameters[index + 1].kind != ParamKind.POSITIONAL_ONLY
        )
        if is_last_positional_only:
            parts.append("/")
    returns = f" -> {sig.returns.type}" if sig.returns.type else ""
    prefix = "async def" if sig.is_async else "def"
    return f"{prefix} {sig.name}({', '.join(parts)}){returns}"


def _param_text(param: Parameter) -> str:
    stars = {ParamKind.VAR_POSITIONAL: "*", ParamKind.VAR_KEYWORD: "**"}.get(ParamKind(param.kind), "")
    text = f"{stars}{param.name}"
    if param.type:
        text += f": {param.type}"
    if param.default is not None:
        text += f" = {param.default}" if param.type else f"={param.default}"
    return text


def example_text(example: Example) -> str:
    call = example.call or "(call)"
    if example.raises:
        return f">>> {call}\nraises {example.raises}"
    if example.result is not None:
        return f">>> {call}\n{example.result}"
    return f">>> {call}"


_HEADER = re.compile(r"[A-Za-z][A-Za-z ]*:\s*")
_RETURN_NAMES = ("__return__", "_")


def condition_text(condition: Condition) -> str:
    """A contract as the spec wrote it (`__return__ >= 0`, `post: _ > x`), not as normalized in `expr` (`result`)."""
    if not condition.expr:
        return condition.text
    header = _HEADER.match(condition.text)
    written = [condition.text[header.end() :]] if header else []
    normal = _normalized(condition.expr)
    return next((text for text in [*written, condition.text] if _normalized(text) == normal), condition.expr)


def _normalized(expr: str) -> str | None:
    """The expression's AST with `__return__` and `_` read as `result`, for comparing spellings of one contract."""
    try:
        tree = pyast.parse_expression(expr.strip())
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in _RETURN_NAMES:
            node.id = "result"
    return ast.dump(tree)


def _sources(ir: IR, prefix: str) -> str:
    found = [p for p in ir.provenance if p.part == prefix or p.part.startswith(prefix + ".")]
    words = sorted({_SOURCE_WORDS.get(Source(p.source), str(p.source)) for p in found})
    return f" _({', '.join(words)})_" if words else ""


def to_markdown(ir: IR, checked: Mapping[str, str] | None = None) -> str:
    """The IR for the hover; `checked`: what the last check found of each postcondition (by its `expr`). Blocks
    (paragraphs, lists, code fences) separated by one blank line; nothing blank inside a block, so lists stay tight
    and fences hold exactly their lines."""
    blocks: list[list[str]] = [["```python", signature_line(ir), "```"]]
    if ir.intent.summary:
        blocks.append([f"**Intent**{_sources(ir, 'intent')}: {ir.intent.summary}"])
    if ir.intent.details:
        blocks.append([ir.intent.details])
    if ir.signature.parameters:
        items = []
        for param in ir.signature.parameters:
            type_text = f": {param.type}" if param.type else ""
            desc = _described(param.type, param.documented_type, param.description)
            items.append(f"- `{param.name}{type_text}`{desc}{_sources(ir, f'signature.parameters.{param.name}')}")
        items += _left_out("- and", ir.signature.parameters_left_out, "parameter")
        blocks.append(["**Parameters**", *items])
    returns = ir.signature.returns
    if returns.type or returns.documented_type or returns.description:
        type_text = f"`{returns.type}`" if returns.type else ""
        desc = _described(returns.type, returns.documented_type, returns.description)
        blocks.append([f"**Returns** {type_text}{desc}{_sources(ir, 'signature.returns')}"])
    if ir.signature.raises:
        items = [f"- `{r.exception}`" + (f" — {r.when}" if r.when else "") for r in ir.signature.raises]
        items += _left_out("- and", ir.signature.raises_left_out, "exception")
        blocks.append(["**Raises**", *items])
    notes = checked or {}
    for title, conditions, key in (
        ("Preconditions", ir.preconditions, "preconditions"),
        ("Postconditions", ir.postconditions, "postconditions"),
    ):
        if conditions:
            items = []
            for c in conditions:
                note = f" — _{notes[c.expr]}_" if key == "postconditions" and c.expr in notes else ""
                items.append(f"- `{condition_text(c)}`{note}" if c.expr else f"- {condition_text(c)}")
            blocks.append([f"**{title}**{_sources(ir, key)}", *items])
    if ir.examples:
        blocks.append([f"**Examples**{_sources(ir, 'examples')}"])
        blocks.append(["```python", *(example_text(e) for e in ir.examples), "```"])
    if ir.effects:
        words = ", ".join(f"{e.kind}" + (f" ({e.description})" if e.description else "") for e in ir.effects)
        blocks.append([f"**Effects**{_sources(ir, 'effects')}: {words}"])
    if ir.holes:
        items = []
        for hole in ir.holes:
            options = f" — options: {', '.join(f'`{o}`' for o in hole.options)}" if hole.options else ""
            items.append(f"- `{hole.id}` ({hole.kind}): {hole.description}{options}")
        blocks.append(["**Holes** (resolve before generating)", *items])
    return "\n\n".join("\n".join(block) for block in blocks)


def _described(annotation: str | None, written: str | None, description: str) -> str:
    """The documented type as written where it differs from the annotation (`list of str`, `array_like`), and the
    description."""
    shown = f" ({written})" if written and written != annotation else ""
    return shown + (f" — {description}" if description else "")


def _left_out(prefix: str, count: int, noun: str) -> list[str]:
    """The line saying what the IR's bounds cut (`and 5 more parameters`), if anything."""
    return [f"{prefix} {count} more {noun}{'s' * (count != 1)} (left out of the IR)"] if count else []


def to_text(ir: IR, function: str, line: int) -> str:
    """Readable text for `lift-lsp ir` without `--json`."""
    out = [f"{function} (line {line})", f"  {signature_line(ir)}"]
    if ir.intent.summary:
        out.append(f"  intent: {ir.intent.summary}")
    for param in ir.signature.parameters:
        type_text = f": {param.type}" if param.type else ""
        out.append(f"  param {param.name}{type_text}{_described(param.type, param.documented_type, param.description)}")
    out += _left_out("  and", ir.signature.parameters_left_out, "parameter")
    returns = ir.signature.returns
    if returns.type or returns.documented_type or returns.description:
        desc = _described(returns.type, returns.documented_type, returns.description)
        out.append("  returns" + (f" {returns.type}" if returns.type else "") + desc)
    out += [f"  raises {r.exception}" + (f" — {r.when}" if r.when else "") for r in ir.signature.raises]
    out += _left_out("  and", ir.signature.raises_left_out, "exception")
    out += [f"  pre: {condition_text(c)}" for c in ir.preconditions]
    out += [f"  post: {condition_text(c)}" for c in ir.postconditions]
    for example in ir.examples:
        outcome = f"raises {example.raises}" if example.raises else example.result
        out.append(f"  example: {example.call} -> {outcome}")
    if ir.effects:
        out.append("  effects: " + ", ".join(str(e.kind) for e in ir.effects))
    out += [f"  hole {h.id} ({h.kind}): {h.description}" for h in ir.holes]
    return "\n".join(out)
