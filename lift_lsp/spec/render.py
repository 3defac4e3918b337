"""The IR as text a person reads: Markdown for hover, plain text for the CLI."""

from __future__ import annotations

from collections.abc import Mapping

from lift_lsp.spec.ir import IR, Example, Parameter, ParamKind, Source

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


def _sources(ir: IR, prefix: str) -> str:
    found = [p for p in ir.provenance if p.part == prefix or p.part.startswith(prefix + ".")]
    words = sorted({_SOURCE_WORDS.get(Source(p.source), str(p.source)) for p in found})
    return f" _({', '.join(words)})_" if words else ""


def to_markdown(ir: IR, checked: Mapping[str, str] | None = None) -> str:
    """The IR for the hover; `checked`: what the last check found of each postcondition (by its `expr`)."""
    out: list[str] = ["```python", signature_line(ir), "```"]
    if ir.intent.summary:
        out.append(f"**Intent**{_sources(ir, 'intent')}: {ir.intent.summary}")
    if ir.intent.details:
        out.append(ir.intent.details)
    if ir.signature.parameters:
        out.append("**Parameters**")
        for param in ir.signature.parameters:
            type_text = f": {param.type}" if param.type else ""
            desc = f" — {param.description}" if param.description else ""
            out.append(f"- `{param.name}{type_text}`{desc}{_sources(ir, f'signature.parameters.{param.name}')}")
    returns = ir.signature.returns
    if returns.type or returns.description:
        type_text = f"`{returns.type}`" if returns.type else ""
        desc = f" — {returns.description}" if returns.description else ""
        out.append(f"**Returns** {type_text}{desc}{_sources(ir, 'signature.returns')}")
    if ir.signature.raises:
        out.append("**Raises**")
        out += [f"- `{r.exception}`" + (f" — {r.when}" if r.when else "") for r in ir.signature.raises]
    notes = checked or {}
    for title, conditions, key in (
        ("Preconditions", ir.preconditions, "preconditions"),
        ("Postconditions", ir.postconditions, "postconditions"),
    ):
        if conditions:
            out.append(f"**{title}**{_sources(ir, key)}")
            for c in conditions:
                note = f" — _{notes[c.expr]}_" if key == "postconditions" and c.expr in notes else ""
                out.append(f"- `{c.expr}`{note}" if c.expr else f"- {c.text}")
    if ir.examples:
        out.append(f"**Examples**{_sources(ir, 'examples')}")
        out += ["```python", *(example_text(e) for e in ir.examples), "```"]
    if ir.effects:
        words = ", ".join(f"{e.kind}" + (f" ({e.description})" if e.description else "") for e in ir.effects)
        out.append(f"**Effects**{_sources(ir, 'effects')}: {words}")
    if ir.holes:
        out.append("**Holes** (resolve before generating)")
        for hole in ir.holes:
            options = f" — options: {', '.join(f'`{o}`' for o in hole.options)}" if hole.options else ""
            out.append(f"- `{hole.id}` ({hole.kind}): {hole.description}{options}")
    return "\n\n".join(out)


def to_text(ir: IR, function: str, line: int) -> str:
    """Readable text for `lift-lsp ir` without `--json`."""
    out = [f"{function} (line {line})", f"  {signature_line(ir)}"]
    if ir.intent.summary:
        out.append(f"  intent: {ir.intent.summary}")
    for param in ir.signature.parameters:
        type_text = f": {param.type}" if param.type else ""
        out.append(f"  param {param.name}{type_text}" + (f" — {param.description}" if param.description else ""))
    if ir.signature.returns.type or ir.signature.returns.description:
        out.append(f"  returns {ir.signature.returns.type or ''} {ir.signature.returns.description}".rstrip())
    out += [f"  raises {r.exception}" + (f" — {r.when}" if r.when else "") for r in ir.signature.raises]
    out += [f"  pre: {c.expr or c.text}" for c in ir.preconditions]
    out += [f"  post: {c.expr or c.text}" for c in ir.postconditions]
    for example in ir.examples:
        outcome = f"raises {example.raises}" if example.raises else example.result
        out.append(f"  example: {example.call} -> {outcome}")
    if ir.effects:
        out.append("  effects: " + ", ".join(str(e.kind) for e in ir.effects))
    out += [f"  hole {h.id} ({h.kind}): {h.description}" for h in ir.holes]
    return "\n".join(out)
