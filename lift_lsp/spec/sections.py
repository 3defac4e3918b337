"""A docstring's parameters, returns and raises, read by each style's own parser.

NumPy sections are read by numpydoc (`NumpyDocString`); Google, reST and Epydoc ones by docstring_parser. The walker in
`docstrings.py` finds where the sections are and hands each parser its text in the layout that parser expects (a
section's title and underline as numpydoc writes them, a Google section at the margin, reST and Epydoc fields at the
margin). A documented type is kept as written (`list of str`, `int, optional`, `C{bytes}`) and, where it has one,
as a Python annotation (`list[str]`, `int`, `bytes`): `annotation_of`.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from docstring_parser import Docstring, ParseError, epydoc, rest
from docstring_parser.google import DEFAULT_SECTIONS, GoogleParser
from numpydoc.docscrape import NumpyDocString
from numpydoc.docscrape import ParseError as NumpydocError

from lift_lsp import pyast

Style = Literal["numpy", "google", "rest", "epydoc"]
SectionKind = Literal["params", "returns", "yields", "raises"]


@dataclass
class DocParam:
    name: str
    type: str | None
    """As the docstring writes it: `list of str`, `int, optional`, `C{bytes}`."""
    description: str
    annotation: str | None = None
    """`type` as a Python annotation (`list[str]`, `int`, `bytes`), where it has one."""


@dataclass
class Sections:
    """What one parser read. A raise is (exception, description); the exception is None when the parser did not
    name one (`:raises: ValueError if x < 0`): the caller reads it off the description."""

    params: list[DocParam] = field(default_factory=list)
    returns_type: str | None = None
    returns_description: str = ""
    raises: list[tuple[str | None, str]] = field(default_factory=list)


_TITLES: dict[SectionKind, str] = {"params": "Parameters", "returns": "Returns", "yields": "Yields", "raises": "Raises"}
"""Each kind's title, as numpydoc and docstring_parser's Google parser both know it."""


def read_numpy(kind: SectionKind, body: Sequence[str]) -> Sections:
    """One NumPy section (its lines under the underline) read by numpydoc; a parameter line written `x: str` is read
    as its author means it (`_names_and_type`)."""
    title = _TITLES[kind]
    try:  # the section alone, its underline as long as its title: numpydoc has nothing to warn about
        entries = NumpyDocString("\n".join([title, "-" * len(title), *body]))[title]
    except (NumpydocError, ValueError):  # what numpydoc cannot read: nothing read
        return Sections()
    out = Sections()
    if kind == "params":
        for entry in entries:
            desc = _words(" ".join(entry.desc))
            names, type_text = _names_and_type(entry.name, entry.type)
            for name in names.split(","):
                if name.strip():
                    out.params.append(_param(name, type_text or None, desc))
    elif kind == "raises":  # `ValueError` then its description; or `ValueError : when`
        out.raises = [(e.name or e.type, _words(" ".join([e.type if e.name else "", *e.desc]))) for e in entries]
    elif entries:
        types = [_words(e.type) for e in entries if e.type.strip()]
        out.returns_type = (types[0] if len(types) == 1 else "(" + ", ".join(types) + ")") if types else None
        if len(entries) == 1:
            out.returns_description = _words(" ".join(entries[0].desc))
        else:
            parts = [f"{e.name}: " * bool(e.name) + " ".join(e.desc) for e in entries]
            out.returns_description = _words("; ".join(p for p in parts if p.strip()))
    return out


_NAME_COLON_TYPE = re.compile(r"(?P<names>\*{0,2}[A-Za-z_]\w*(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)*)\s*:(?!/)\s*(?P<type>.*)")
"""A parameter line without numpydoc's space before the colon: `x: str`, `G, H: graphs`, `**kwargs:`."""
_SECTION_TITLES = {t for t in [*NumpyDocString.sections, *(s.title for s in DEFAULT_SECTIONS)] if t[:1].isupper()}
"""Section titles numpydoc and docstring_parser know, as they write them: `Examples: ...` in a Parameters section
names no parameter (`args: tuple`, `params: str` and `index: Index` do)."""


def _names_and_type(name: str, type_text: str) -> tuple[str, str]:
    """A numpydoc entry's names and type as its author means them: numpydoc reads `x: str` (no space before the
    colon) whole as a name, which is the name `x` of type `str`."""
    match = None if type_text else _NAME_COLON_TYPE.fullmatch(name.strip())
    if match is None or match["names"] in _SECTION_TITLES:
        return name, type_text
    return match["names"], match["type"]


def read_google(kind: SectionKind, body: Sequence[str]) -> Sections:
    """One Google section (its lines, indented under the title) read by docstring_parser. An entry the parser
    rejects (`ValueError` without a colon) is left out; a raise is then read off its text by the caller."""
    title = _TITLES[kind]
    try:
        return _from_docstring(_GOOGLE.parse("\n".join(["", f"{title}:", *body])))
    except ParseError:
        pass
    out = Sections()
    for entry in _entries(body):
        try:
            one = _from_docstring(_GOOGLE.parse("\n".join(["", f"{title}:", *entry])))
        except ParseError:
            if kind == "raises":
                out.raises.append((None, _words(" ".join(entry))))
            continue
        out.params += one.params
        out.raises += one.raises
        out.returns_type = out.returns_type or one.returns_type
        out.returns_description = out.returns_description or one.returns_description
    return out


def read_fields(style: Literal["rest", "epydoc"], lines: Sequence[str]) -> Sections:
    """reST (`:param x:`) or Epydoc (`@param x:`) fields, each at the margin, read by docstring_parser."""
    parser = rest if style == "rest" else epydoc
    try:
        return _from_docstring(parser.parse("\n".join(["", *lines])))
    except ParseError:
        return Sections()


_GOOGLE = GoogleParser()
_EXCEPTION_NAME = re.compile(r"(Error|Exception|Warning|Exit|Interrupt|Iteration)$")
_CAMEL_CASE = re.compile(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+")
"""A class name such as `DuplicateResource` (not a capitalised word such as `If`)."""
_RAISED = re.compile(r"(?::\w+:`~?(?P<role>[\w.]+)`|(?P<name>[A-Za-z_][\w.]*\b))(?![\w.(])[\s:,-]*(?P<rest>.*)$")


def _from_docstring(doc: Docstring) -> Sections:
    out = Sections()
    for param in doc.params:
        out.params.append(_param(param.arg_name, param.type_name, _words(param.description or "")))
    if doc.many_returns:
        returns = doc.many_returns[0]
        out.returns_type = _words(returns.type_name or "") or None
        out.returns_description = _words(returns.description or "")
    out.raises = [(r.type_name, _words(r.description)) if r.type_name else _named(r.description) for r in doc.raises]
    return out


def _named(description: str | None) -> tuple[str | None, str]:
    """A raise whose field names no exception (`:raises: ValueError if x < 0`, `:raises: :exc:`~a.Failed` when`):
    the exception its text starts with, and the rest; else (None, the text)."""
    text = _words(description)
    match = _RAISED.match(text)
    name = (match["role"] or match["name"]) if match else ""
    qualified = "." in name and name.split(".")[-1][:1].isupper()
    if match and (match["role"] or qualified or _EXCEPTION_NAME.search(name) or _CAMEL_CASE.fullmatch(name)):
        return name, match["rest"]
    return None, text


def _param(name: str, type_text: str | None, description: str) -> DocParam:
    written = _words(type_text or "") or None
    return DocParam(name.strip().lstrip("*"), written, description, annotation_of(written))


def _entries(body: Sequence[str]) -> list[list[str]]:
    """A section's entries: each line at the body's base indentation with the deeper lines under it."""
    present = [line for line in body if line.strip()]
    base = min((len(line) - len(line.lstrip()) for line in present), default=0)
    entries: list[list[str]] = []
    for line in body:
        if line.strip() and (len(line) - len(line.lstrip()) <= base or not entries):
            entries.append([line])
        elif entries:
            entries[-1].append(line)
    return entries


def _words(text: str | None) -> str:
    return " ".join((text or "").split())


# ---------------------------------------------------------------------- documented types as annotations

_MARKUP = re.compile(r"[CLIBUM]\{([^{}]*)\}")
"""Epytext inline markup: `C{int}`, `L{Deferred}`, `L{text<target>}`."""
_ROLE = re.compile(r":(?:py:)?[a-z]+:`~?(?:[^`<]*<)?([^`<>]+)>?`")
"""A Sphinx cross-reference: :class:`~a.B` or :class:`text <a.B>` -> a.B."""
_QUALIFIER = re.compile(
    r"^(?:optional|keyword[- ]only|positional[- ]only|required|\(optional\)|defaults?\b.*|default\s*[=:].*|"
    r"by default\b.*|if not given\b.*)$",
    re.IGNORECASE,
)
_SHAPE = re.compile(r"\s+(?:of|with)\s+(?:shape|size|length|dtype)\b.*$|\s+\((?:shape|default)\b[^)]*\)$", re.I)
_CONTAINER = re.compile(r"^(?P<outer>[\w.]+)\s+(?:of|mapping|from)\s+(?P<inner>.+)$")
_CALL_FORM = re.compile(r"^(?P<outer>[A-Za-z_][\w.]*)\((?P<inner>.*)\)$")
_WORDS = {
    "integer": "int",
    "integers": "int",
    "ints": "int",
    "string": "str",
    "strings": "str",
    "strs": "str",
    "boolean": "bool",
    "booleans": "bool",
    "bools": "bool",
    "floats": "float",
    "dictionary": "dict",
    "dicts": "dict",
    "lists": "list",
    "tuples": "tuple",
    "callable": "Callable",
    "callables": "Callable",
    "function": "Callable",
    "iterable": "Iterable",
    "iterator": "Iterator",
    "sequence": "Sequence",
    "mapping": "Mapping",
    "any": "Any",
    "none": "None",
}
_PAIRS = {"dict", "Dict", "Mapping", "mapping", "MutableMapping", "OrderedDict", "defaultdict"}
_BUILTIN_TYPES = {name for name, value in vars(builtins).items() if isinstance(value, type)} | {"None"}
_MAX_TYPE = 300


def annotation_of(written: str | None) -> str | None:
    """The documented type as a Python annotation (`list of str, optional` -> `list[str]`, `int or None` ->
    `int | None`, `C{bytes}` -> `bytes`, `~a.B` -> `a.B`, `{'x', 'y'}` -> `Literal['x', 'y']`); None where the
    type is prose (`array_like`, `NetworkX graph`, `int > 0`)."""
    if not written or len(written) > _MAX_TYPE:
        return None
    text = written
    while _MARKUP.search(text):
        text = _MARKUP.sub(lambda m: m[1].split("<")[-1].rstrip(">"), text)
    text = _ROLE.sub(r"\1", text).replace("`", "").replace("*", "")
    text = re.sub(r"(?<![\w.])~(?=[A-Za-z_])", "", text)
    parts = [p.strip() for p in _split_top(text, ",")]
    kept = [p for p in parts if p and not _QUALIFIER.match(p)]
    if not kept:
        return None
    alternatives = [_alternative(p) for p in kept] if len(kept) > 1 else [_alternative(kept[0])]
    if any(a is None for a in alternatives):
        return None
    return " | ".join(dict.fromkeys(a for a in alternatives if a is not None))


def _alternative(text: str) -> str | None:
    """One part of a documented type (no top-level commas): alternatives joined by `or` or `|`."""
    text = _SHAPE.sub("", text.strip())
    text = re.sub(r"\s*\((?:optional|default[^)]*)\)$", "", text, flags=re.IGNORECASE)
    pieces = [p.strip() for p in re.split(r"\s+or\s+|\|", text)] if _is_flat(text) else [text]
    found = [_single(p) for p in pieces if p]
    if not found or any(f is None for f in found):
        return None
    return " | ".join(dict.fromkeys(f for f in found if f is not None))


def _single(text: str) -> str | None:
    text = text.strip().rstrip(".")
    text = re.sub(r"^(?:an?|the)\s+", "", text)
    if text.startswith("{") and text.endswith("}"):  # numpydoc's set of values or of types
        items = [i.strip() for i in _split_top(text[1:-1], ",")]
        literals = [i for i in items if _is_literal(i)]
        if items and len(literals) == len(items):
            return "Literal[" + ", ".join(literals) + "]"
        names = [_single(i) for i in items]
        return None if not names or any(n is None for n in names) else " | ".join(n for n in names if n)
    if match := _CONTAINER.match(text):
        outer = _single(match["outer"])
        inner = match["inner"].strip()
        if outer is None:
            return None
        if outer in _PAIRS:
            key, _, value = inner.strip("{}").partition(" to " if " to " in inner else ":")
            args = [_alternative(key), _alternative(value)] if value else [None]
        elif inner.startswith("(") and inner.endswith(")"):
            args = [_alternative(a) for a in _split_top(inner[1:-1], ",")]
        else:
            args = [_alternative(inner)]
        return None if any(a is None for a in args) else f"{outer}[{', '.join(a for a in args if a)}]"
    if (match := _CALL_FORM.match(text)) and _single(match["outer"]) is not None:  # `Sequence(str)`
        text = f"{match['outer']}[{match['inner']}]"
    text = _WORDS.get(text.lower(), text) if " " not in text else text
    return text if _is_annotation(text) else None


def _is_flat(text: str) -> bool:
    return "[" not in text and "(" not in text and "{" not in text


def _is_literal(text: str) -> bool:
    try:
        value = pyast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return isinstance(value, str | int | bool) or value is None


def _is_annotation(text: str) -> bool:
    """Whether `text` is an annotation made of types: dotted or capitalised names, builtin types, subscripts."""
    try:
        tree = pyast.parse_expression(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    modules = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            known = node.id in _BUILTIN_TYPES or node.id in _WORDS.values() or node.id[:1].isupper()
            if not (known or id(node) in modules):
                return False
        elif isinstance(node, ast.BinOp):
            if not isinstance(node.op, ast.BitOr):
                return False
        elif isinstance(node, ast.Constant):
            if not (node.value is None or node.value is Ellipsis or isinstance(node.value, str | int)):
                return False
        elif not isinstance(node, ast.Attribute | ast.Subscript | ast.Tuple | ast.List | ast.Load | ast.BitOr):
            return False
    return True


def _split_top(text: str, sep: str) -> list[str]:
    """`text` split at the `sep` characters outside brackets and quotes."""
    pieces, depth, quote, last = [], 0, "", 0
    for k, c in enumerate(text):
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(depth - 1, 0)
        elif c == sep and depth == 0:
            pieces.append(text[last:k])
            last = k + 1
    return [*pieces, text[last:]]
