"""Reverse mode: the IR of a function, read off its spec, its signature, jedi's types and its code."""

from __future__ import annotations

import ast
import functools
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass

from lift_lsp import pyast
from lift_lsp.spec.docstrings import DocSpec, ParamShape, parse_docstring
from lift_lsp.spec.ir import (
    IR,
    MAX_PARAMETERS,
    MAX_RAISES,
    Condition,
    Effect,
    EffectKind,
    Example,
    Hole,
    HoleKind,
    Intent,
    Parameter,
    ParamKind,
    Provenance,
    Raise,
    Returns,
    Signature,
    Source,
)
from lift_lsp.spec.sites import SpecSite, find_sites
from lift_lsp.spec.typecontext import TypeContext, TypeOracle


@dataclass(frozen=True)
class FunctionIR:
    site: SpecSite
    ir: IR
    doc: DocSpec
    """The full reading of the spec; the IR holds what fits its bounds."""

    @property
    def function(self) -> str:
        return self.site.qualname

    @property
    def line(self) -> int:
        """1-based line of the `def`."""
        return self.site.def_line + 1


def extract_file(
    text: str, path: str | None = None, function: str | None = None, types: bool = True
) -> list[FunctionIR]:
    """The IR of every function in `text` (or of those named `function`: a name or a qualified name)."""
    sites = [s for s in find_sites(text) if function is None or function in (s.name, s.qualname)]
    oracle = TypeOracle(text, path) if types and sites else None
    return [function_ir(site, oracle.context_for(site) if oracle else None) for site in sites]


def read_spec(site: SpecSite) -> DocSpec:
    """The site's docstring (or `# spec:` block) parsed; example lines are made 1-based file lines."""
    spec = site.spec_text
    if spec is None:
        return DocSpec()
    shapes = [ParamShape(p.name, p.kind, p.default is not None) for p in site.params]
    value = _docstring_value(site)
    returns = site.return_annotation
    doc = parse_docstring(value if value and _lines(value) == _lines(spec) else spec, site.name, shapes, returns)
    if value and _lines(value) != _lines(spec):  # the sections as Python has them; examples where the source has them
        read = parse_docstring(value, site.name, shapes, returns)
        doc.params, doc.returns_type, doc.returns_description = read.params, read.returns_type, read.returns_description
        doc.raises, doc.style = read.raises, read.style
    offset = (site.spec_line or 0) + 1
    for example in doc.examples:
        if example.line is not None:
            example.line += offset
    return doc


def _docstring_value(site: SpecSite) -> str | None:
    """The docstring as Python has it, where it has escapes (`\\`, a backslash ending a line) that make it differ
    from its source text; else None."""
    if site.docstring is None or "\\" not in site.docstring:
        return None
    try:
        indent = site.span.start_col  # the definition at its column, inside a class when indented
        tree = pyast.parse("class _:\n" * bool(indent) + " " * indent + site.text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    node = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None)
    value = ast.get_docstring(node, clean=False) if node is not None else None
    return value if value != site.docstring else None


def _lines(text: str) -> int:
    return len(re.split(r"\r\n|\r|\n", text))


def _is_receiver(site: SpecSite, index: int, name: str) -> bool:
    """`self` or `cls` of a method."""
    return index == 0 and bool(site.class_name) and name in ("self", "cls") and "staticmethod" not in site.decorators


def needs_types(site: SpecSite, doc: DocSpec) -> bool:
    """Whether jedi's context can change the function's IR: a parameter, or the return of an implemented function,
    with neither an annotation nor a documented type."""
    documented = {p.name: p for p in doc.params}
    for index, param in enumerate(site.params):
        described = documented.get(param.name)
        typed = param.annotation is not None or (described is not None and bool(described.type))
        if not typed and not _is_receiver(site, index, param.name):
            return True
    return site.return_annotation is None and not doc.returns_type and not site.is_stub


def function_ir(site: SpecSite, ctx: TypeContext | None = None, doc: DocSpec | None = None) -> FunctionIR:
    doc = doc if doc is not None else read_spec(site)
    spec_source = Source.DOCSTRING if site.docstring is not None else Source.SPEC_COMMENT
    prov: list[Provenance] = []

    def note(part: str, source: Source, detail: str = "") -> None:
        prov.append(Provenance(part=_clip(part, 160), source=source, detail=_clip(detail, 160)))

    intent = Intent(summary=_clip(doc.summary, 160), details=_clip(doc.details, 1200))
    if doc.summary:
        note("intent", spec_source)

    documented = {p.name: p for p in doc.params}
    parameters: list[Parameter] = []
    parameters_left_out = 0
    for index, param in enumerate(site.params):
        if _is_receiver(site, index, param.name):
            continue
        if len(parameters) == MAX_PARAMETERS:
            parameters_left_out += 1
            continue
        described = documented.get(param.name)
        type_text = param.annotation
        if type_text is not None:
            note(f"signature.parameters.{param.name}.type", Source.ANNOTATION)
        elif described is not None and described.annotation:
            type_text = described.annotation
            note(f"signature.parameters.{param.name}.type", spec_source)
        elif ctx is not None and param.name in ctx.names:
            type_text = ctx.names[param.name]
            note(f"signature.parameters.{param.name}.type", Source.JEDI)
        parameters.append(
            Parameter(
                name=_clip(param.name, 64),
                type=_clip_opt(type_text, 200),
                documented_type=_clip_opt(described.type if described else None, 200),
                description=_clip(described.description if described else "", 1200),
                default=_clip_opt(param.default, 300),
                kind=param.kind,
            )
        )

    return_type = site.return_annotation
    if return_type is not None:
        note("signature.returns.type", Source.ANNOTATION)
    elif doc.returns_annotation:
        return_type = doc.returns_annotation
        note("signature.returns.type", spec_source)
    elif ctx is not None and ctx.inferred_return:
        return_type = ctx.inferred_return
        note("signature.returns.type", Source.JEDI, "inferred from the body")
    raises = [Raise(exception=_clip(r.exception, 64), when=_clip(r.when, 400)) for r in doc.raises]
    if raises:
        note("signature.raises", spec_source)

    examples = _fit_examples(doc.examples)
    if examples:
        note("examples", spec_source, _dropped(len(doc.examples), len(examples)))
    pre = _fit_conditions(doc.preconditions)
    post = _fit_conditions(doc.postconditions)
    if pre:
        note("preconditions", spec_source)
    if post:
        note("postconditions", spec_source)

    effects = [] if site.is_stub else _effects(site, [p.name for p in parameters])
    if effects:
        note("effects", Source.CODE)
    holes = _holes(site, doc, parameters, return_type)
    for hole in holes:
        note(f"holes.{hole.id}", Source.EXAMPLES if hole.options else Source.CODE)

    ir = IR(
        intent=intent,
        signature=Signature(
            name=_clip(site.name, 64),
            parameters=parameters,
            parameters_left_out=parameters_left_out,
            returns=Returns(
                type=_clip_opt(return_type, 200),
                documented_type=_clip_opt(doc.returns_type, 200),
                description=_clip(doc.returns_description, 1200),
            ),
            raises=raises[:MAX_RAISES],
            raises_left_out=max(len(raises) - MAX_RAISES, 0),
            is_async=site.is_async,
        ),
        preconditions=pre,
        postconditions=post,
        examples=examples,
        effects=effects,
        holes=holes[:6],
        provenance=prov,
    )
    return FunctionIR(site=site, ir=ir, doc=doc)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip_opt(text: str | None, limit: int) -> str | None:
    return None if text is None else _clip(text, limit)


def _dropped(total: int, kept: int) -> str:
    return f"{total - kept} example(s) too long for the IR left out" if kept < total else ""


def _fits(example: Example) -> bool:
    texts = [example.call, example.result or "", example.raises or "", *example.args.values()]
    return (
        len(example.args) <= 16
        and all(len(t) <= 300 for t in texts)
        and all(len(k) <= 64 for k in example.args)
        and len(example.raises or "") <= 64
    )


def _fit_examples(examples: Iterable[Example]) -> list[Example]:
    return [e for e in examples if _fits(e)][:12]


def _fit_conditions(conditions: Iterable[Condition]) -> list[Condition]:
    return [Condition(expr=c.expr, text=_clip(c.text, 400)) for c in conditions if len(c.expr) <= 400][:8]


_EFFECT_PATTERNS: dict[EffectKind, re.Pattern[str]] = {
    EffectKind.IO: re.compile(r"\b(print|open|input)\s*\(|\bsys\.std(out|err|in)\b|\.(write_text|read_text)\("),
    EffectKind.NETWORK: re.compile(r"\b(requests|urllib|socket|httpx|aiohttp|http\.client)\b"),
    EffectKind.RANDOM: re.compile(r"\b(random|secrets)\.\w+|\buuid\.uuid4\b"),
    EffectKind.TIME: re.compile(r"\btime\.(time|sleep|monotonic|perf_counter)\b|\b(datetime|date)\.(now|today)\b"),
}
_MUTATORS = "append|extend|insert|pop|remove|clear|sort|reverse|update|add|discard|setdefault|popitem"


def _code_text(site: SpecSite) -> str:
    """The function's source with its docstring taken out."""
    text = site.text
    if site.docstring:
        text = text.replace(site.docstring, "", 1)
    return text


_MUTATION = re.compile(rf"\b(?P<name>\w+)(\.({_MUTATORS})\s*\(|\[[^\]\n]*\]\s*[-+*/|&]?=(?!=)|\.\w+\s*=(?!=))")
"""A name whose object the code changes: a mutating method called, an item or an attribute assigned."""


def _effects(site: SpecSite, params: list[str]) -> list[Effect]:
    code = _code_text(site)
    effects = [
        Effect(kind=kind, description=f"uses {match.group(0).rstrip('(').strip()}")
        for kind, pattern in _EFFECT_PATTERNS.items()
        if (match := pattern.search(code))
    ]
    mutated = {match["name"] for match in _MUTATION.finditer(code)}
    name = next((name for name in params if name in mutated), None)
    if name is not None:
        effects.append(Effect(kind=EffectKind.MUTATION, description=f"mutates its argument `{name}`"))
    if re.search(r"^\s*(global|nonlocal)\s", code, re.MULTILINE):
        effects.append(Effect(kind=EffectKind.MUTATION, description="assigns a global or nonlocal name"))
    return effects[:6] or [Effect(kind=EffectKind.PURE, description="no side effects found in the code")]


def literal_type(source: str) -> str | None:
    """The Python type of a literal's value, written as an annotation (`[1, 2]` -> `list[int]`)."""
    try:
        value = pyast.literal_eval(source)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return _type_of(value)


def _type_of(value: object) -> str:
    if isinstance(value, list | set | frozenset | tuple) and not isinstance(value, tuple):
        inner = {_type_of(v) for v in value}
        name = type(value).__name__
        return f"{name}[{inner.pop()}]" if len(inner) == 1 else name
    if isinstance(value, tuple):
        return "tuple[" + ", ".join(_type_of(v) for v in value) + "]" if 0 < len(value) <= 4 else "tuple"
    if isinstance(value, dict):
        keys, values = {_type_of(k) for k in value}, {_type_of(v) for v in value.values()}
        return f"dict[{keys.pop()}, {values.pop()}]" if len(keys) == 1 and len(values) == 1 else "dict"
    return "None" if value is None else type(value).__name__


def _options(sources: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for source in sources:
        found = literal_type(source)
        if found and found not in seen:
            seen.append(found)
    if len(seen) > 1:
        seen.insert(0, " | ".join(seen))
    return [*seen[:5], "Any"]


def _holes(site: SpecSite, doc: DocSpec, parameters: list[Parameter], return_type: str | None) -> list[Hole]:
    """What the spec leaves open. For a stub (a function to generate): a missing intent and missing types, with the
    types the examples suggest as options. For an implemented function: `...` placeholders left in its code."""
    holes: list[Hole] = []
    if site.is_stub:
        if not doc.summary and not doc.examples:
            holes.append(Hole(id="intent", kind=HoleKind.INTENT, description="the spec does not say what to do"))
        for param in parameters:
            untyped = param.type is None and param.documented_type is None
            if untyped and param.kind not in (ParamKind.VAR_POSITIONAL, ParamKind.VAR_KEYWORD):
                options = _options(e.args[param.name] for e in doc.examples if param.name in e.args)
                holes.append(
                    Hole(
                        id=f"type-{param.name}"[:64],
                        kind=HoleKind.TYPE,
                        description=f"the type of parameter `{param.name}`",
                        options=[_clip(o, 160) for o in options],
                        default=_clip(options[0], 160),
                    )
                )
        if return_type is None and doc.returns_type is None and not site.name.startswith("__"):
            options = _options(e.result for e in doc.examples if e.result is not None)
            holes.append(
                Hole(
                    id="type-return",
                    kind=HoleKind.TYPE,
                    description="the return type",
                    options=[_clip(o, 160) for o in options],
                    default=_clip(options[0], 160),
                )
            )
    else:
        for line in placeholder_lines(site):
            holes.append(
                Hole(
                    id=f"impl-L{line + 1}",
                    kind=HoleKind.IMPLEMENTATION,
                    description=f"`...` placeholder at line {line + 1} is not implemented",
                )
            )
    return holes


def _is_constant_statement(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)


def placeholder_lines(site: SpecSite) -> list[int]:
    """0-based file lines of `...` placeholders in an implemented function (a statement `...` or `x = ...`), not
    counting `...` in subscripts (`tuple[int, ...]`), defaults, or as the whole body of a nested stub."""
    if "..." not in _code_text(site):  # the only spelling of the Ellipsis constant (doctests' `...` left out)
        return []
    first = site.span.start_line - 1
    return [first + line for line in _placeholder_lines(site.text)]


@functools.lru_cache(maxsize=64)
def _placeholder_lines(text: str) -> tuple[int, ...]:
    """`placeholder_lines` within the function's `text` (1-based; kept: a check asks for the IR's holes and for
    the findings)."""
    try:
        tree = pyast.parse(textwrap.dedent(text))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ()
    parents: dict[int, ast.AST] = {}
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            parents[id(child)] = parent
    lines: set[int] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and node.value is Ellipsis):
            continue
        holder = parents.get(id(node))
        if isinstance(holder, ast.Subscript | ast.arguments | ast.Tuple | ast.Call):
            continue
        if isinstance(holder, ast.Expr):
            owner = parents.get(id(holder))
            body = getattr(owner, "body", None)
            is_block = isinstance(owner, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            if is_block and isinstance(body, list) and all(_is_constant_statement(s) for s in body):
                continue
        lines.add(node.lineno)
    return tuple(sorted(lines))
