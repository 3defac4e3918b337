"""A function's spec text read into parts: prose, parameters, returns, raises, examples and contracts.

Finds Google, NumPy, reST (Sphinx) and Epydoc sections, which each style's own parser reads (`sections.py`);
reads doctests and the prose example forms real docstrings use (`f(x) -> y`, `f(x) == y`, `f(x) returns y`, ...);
PEP 316 contracts (`pre:`, `post:`, `raises:`) and `Requires:`/`Ensures:`. `parse_docstring` never raises: on any
failure it returns what it has.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import doctest
import io
import re
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from lift_lsp import pyast
from lift_lsp.spec.examples import DocExample, read_examples
from lift_lsp.spec.ir import Condition, Example, ParamKind, Raise
from lift_lsp.spec.sections import DocParam, SectionKind, Sections, annotation_of, read_fields, read_google, read_numpy

__all__ = ["DocParam", "DocSpec", "ParamShape", "parse_docstring"]


@dataclass(frozen=True)
class ParamShape:
    name: str
    kind: ParamKind
    has_default: bool = False


@dataclass
class DocSpec:
    summary: str = ""
    """The first paragraph of prose (its first sentence when the paragraph is long), whitespace-normalised."""
    details: str = ""
    """The other prose: not sections, not examples, not contracts."""
    params: list[DocParam] = field(default_factory=list)
    returns_type: str | None = None
    """As the docstring writes it; `returns_annotation` is the same as a Python annotation, where it has one."""
    returns_description: str = ""
    raises: list[Raise] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    """`line` is the 0-based line within the text where the example starts. Built without validation: a long
    example is kept, and the caller fits it to the IR's bounds."""
    preconditions: list[Condition] = field(default_factory=list)
    postconditions: list[Condition] = field(default_factory=list)
    style: Literal["google", "numpy", "rest", "epydoc", "plain"] = "plain"

    @property
    def returns_annotation(self) -> str | None:
        return annotation_of(self.returns_type)


def parse_docstring(text: str, function_name: str, params: Sequence[ParamShape], returns: str | None = None) -> DocSpec:
    """Read `text` (a docstring's raw content, not dedented) as the spec of `function_name(params) -> returns`
    (`returns`: the return annotation, if any; prose examples whose result does not fit it are left out)."""
    try:
        parser = _Parser(text[:_MAX_TEXT] if isinstance(text, str) else "", str(function_name), list(params), returns)
    except Exception:
        return DocSpec()
    try:
        parser.run()
    except Exception:  # never raise on any input: keep what was read so far
        parser.finish_safely()
    return parser.spec


_MAX_TEXT = 64_000
_MAX_EXPR = 3_000
_MAX_LINE = 1_000
_SUMMARY_MAX = 160
_MAX_EXAMPLES = 1_000
_MAX_WRAP = 120
"""How far before the call to the function a prose example's expression may start (`sorted(f(x))`)."""

_SECTIONS = {
    **dict.fromkeys(["args", "arguments", "parameters", "params", "keyword args", "keyword arguments"], "params"),
    **dict.fromkeys(["other parameters", "other params"], "params"),
    **dict.fromkeys(["returns", "return", "yields", "yield"], "returns"),
    **dict.fromkeys(["raises", "raise", "except", "exceptions", "throws"], "raises"),
    **dict.fromkeys(["example", "examples", "for example", "e.g.", "usage", "example usage"], "examples"),
    **dict.fromkeys(["pre", "requires", "require", "precondition", "preconditions"], "pre"),
    **dict.fromkeys(["post", "ensures", "ensure", "postcondition", "postconditions"], "post"),
}
_EXAMPLE_WORDS = {k for k, v in _SECTIONS.items() if v == "examples"}
_HEADER = re.compile(r"(?P<name>[A-Za-z][A-Za-z .]*?)\s*(?:\[[^\]]*\])?\s*:(?:\s+(?P<rest>.*)|$)")
_FIELD = re.compile(r"(?P<mark>[:@])(?P<field>[A-Za-z]+)(?:\s+(?P<arg>[^:]*?))?\s*:(?P<rest>.*)$")
"""A reST (`:param x:`) or Epydoc (`@param x:`) field."""
_FIELD_NAMES = {
    **dict.fromkeys(["param", "parameter", "arg", "argument"], "param"),
    **dict.fromkeys(["key", "keyword", "kwarg", "kwparam"], "keyword"),
    "type": "type",
    **dict.fromkeys(["return", "returns"], "return"),
    **dict.fromkeys(["yield", "yields"], "yield"),
    "rtype": "rtype",
    "ytype": "ytype",
    **dict.fromkeys(["raise", "raises", "except", "exception", "throws"], "raise"),
}
"""Field names, each as its parser knows it (docstring_parser's reST parser reads `raise`, `yield`, `rtype`; its
Epydoc parser `raise`, `return`, `yield`, `ytype` as well)."""
_REST_NAMES = {"raise": "raises", "ytype": "rtype"}
_UNDERLINE = re.compile(r"([-=~^*+#_`'\"])\1{2,}")
"""A section title's underline, in any of reST's usual adornment characters."""
_SIGNATURE = re.compile(r"^([\w., ]+=)?\s*[\w\.]+\(.*\)$")
"""A first paragraph repeating the signature (`einsum(subscripts, *operands, out=None)`): numpydoc's pattern."""
_EXCEPTION = re.compile(r"[A-Za-z_][\w.]*")
_EXCEPTION_WORD = re.compile(r"\b[A-Za-z_][\w.]*(?:Error|Exception|Warning|Exit|Interrupt|Iteration)\b")
_STRING_PREFIX = re.compile(r"(?<!\w)(?:[rRbBuUfF]{1,2})$")
_BULLET = re.compile(r"^(?:[-*•]|\d{1,2}[.)])\s+")
_TRACEBACK = ("Traceback (most recent call last)", "Traceback (innermost last)")
_ARROWS = ("==>", "=>", "->", "➞", "→", "==", "=")
_WORD_OPS = ("should return", "returns")
_LITERAL_NAMES = {"true": "True", "false": "False", "none": "None", "null": "None"}
_BUILTINS = set(dir(builtins))
_PROSE_NODES = (ast.BoolOp, ast.Compare, ast.IfExp, ast.Lambda, ast.NamedExpr, ast.Tuple)
"""What an expression read out of prose must not be: its `and`/`is`/`if`/`,` are likely English."""
_STYLES: tuple[Literal["rest", "epydoc", "numpy", "google"], ...] = ("rest", "epydoc", "numpy", "google")
_INPUT = re.compile(r"input\s*:\s*(?P<rest>.*)$", re.IGNORECASE)
_OUTPUT = re.compile(r"output\s*:\s*(?P<rest>.*)$", re.IGNORECASE)
_SHOULD_BE = re.compile(r"[\s,]the\s+(?:output|result|answer)\s+(?:should|will|would)\s+be\s+", re.IGNORECASE)
_NAMED_VALUE = re.compile(r"(?P<name>[A-Za-z_]\w*)\s*[:=]\s*(?P<value>[^=\s].*)$", re.DOTALL)
_RETURN_LINE = re.compile(r"return\b\s*=?\s*(?P<value>.+)$")
_CALL = re.compile(r"(?<!\w)([^\W\d]\w*)\s*\(")
"""A name (any letters, as Python allows) called: `name(`, `name (`."""
_ALIAS_CALL = re.compile(r"(?:assert\s+|[-*•]\s+)?(?P<name>[A-Za-z_]\w*)\s*\(")
_RETURNS_WORD = re.compile(
    r"\breturns?\s+(?:an?\s+|the\s+)?(?P<word>list|tuple|string|integer|float|boolean|dictionary|dict|set)\b",
    re.IGNORECASE,
)
_TYPE_WORDS = {"string": "str", "integer": "int", "boolean": "bool", "dictionary": "dict"}
_TYPING_NAMES = {"List": "list", "Tuple": "tuple", "Dict": "dict", "Set": "set", "FrozenSet": "frozenset"}
_BUILTIN_TYPES = {
    "int",
    "float",
    "complex",
    "bool",
    "str",
    "bytes",
    "list",
    "tuple",
    "dict",
    "set",
    "frozenset",
    "None",
}
_VALUE_TYPES = {
    bool: {"bool", "int", "float", "complex"},
    int: {"int", "float", "complex"},
    float: {"float", "complex"},
    type(None): {"None"},
}
_MAX_STATED_LINES = 8
"""How many lines an `Input: ... Output: ...` example or a walkthrough may span."""


class _Parser:
    def __init__(self, text: str, name: str, params: list[ParamShape], returns: str | None = None) -> None:
        self.lines = _dedent(re.split(r"\r\n|\r|\n", text))
        self.doctests = {example.line: example for example in read_examples(text, name)}
        """The `>>>` examples, as doctest reads them, by line."""
        self.read_doctests: set[int] = set()
        self.text = "\n".join(self.lines)
        self.name = name
        self.params = params
        self.returns = returns
        self.prose_examples: list[Example] = []
        """Examples read from prose (not doctests): kept only where their result fits the return type."""
        self.spec = DocSpec()
        self.prose: list[tuple[int, str]] = []
        self.example_lines: set[int] = set()
        self.bound: set[str] = set()
        """Names assigned by earlier doctest statements: examples using them need a setup the IR cannot hold."""
        self.styles: set[str] = set()
        self.seen: set[tuple[str, str | None, str | None, int]] = set()
        self.fields: dict[Literal["rest", "epydoc"], list[str]] = {"rest": [], "epydoc": []}
        """reST and Epydoc field lines, at the margin, for their parsers (a `:type x:` may come before `:param x:`)."""

    # ------------------------------------------------------------------ the walk over lines

    def run(self) -> None:
        i = self._after_signature()
        while i < len(self.lines):
            i = max(i + 1, self._step(i, examples_only=False))
        for line, example in self.doctests.items():  # where the walk did not look (a section's body): doctest runs it
            if line not in self.read_doctests:
                self._doctest_example(example)
        for style, lines in self.fields.items():
            if lines:
                self._read(read_fields(style, lines))
        if not self.spec.examples:
            self._examples_named_after(self._alias())
        self._drop_misfits()
        self.finish_safely()

    def _after_signature(self) -> int:
        """Where the walk starts: after a first paragraph that repeats the signature, as numpydoc skips it."""
        start = next((k for k, line in enumerate(self.lines) if line.strip()), len(self.lines))
        end = next((k for k in range(start, len(self.lines)) if not self.lines[k].strip()), len(self.lines))
        paragraph = " ".join(line.strip() for line in self.lines[start:end])
        more = any(line.strip() for line in self.lines[end:])
        return end if more and len(paragraph) <= _MAX_LINE and _SIGNATURE.match(paragraph) else 0

    def finish_safely(self) -> None:
        with contextlib.suppress(Exception):
            self._finish()

    def _step(self, i: int, examples_only: bool) -> int:
        """Read what starts at line `i`; the index of the next line to read."""
        line = self.lines[i]
        s = line.strip()
        if not s:
            return i + 1
        if s.startswith(">>>"):
            return self._doctest(i)
        if examples_only:
            return self._prose_line(i, keep=False)
        indent = _indent(line)
        title = self._numpy_title(i)
        if title is not None:
            kind = _SECTIONS.get(title.lower())
            if kind is None:
                self.prose += [(i, line), (i + 1, self.lines[i + 1])]
                return i + 2
            self.styles.add("numpy")
            end = i + 2
            while end < len(self.lines) and self._numpy_title(end) is None:
                if self.lines[end].strip() and _indent(self.lines[end]) < indent:
                    break
                end += 1
            if kind in ("params", "returns", "raises"):
                body = [line[indent:] for line in self.lines[i + 2 : end]]
                self._read(read_numpy(_section_kind(kind, title), body))
                return end
            return max(end, self._section(kind, i, None, end, numpy=True))
        if s.startswith((":", "@")) and (found := _FIELD.match(s)):
            return self._field(i, found)
        match = _HEADER.match(s)
        name = " ".join(match["name"].lower().split()) if match else s.lower().rstrip(": ")
        kind = _SECTIONS.get(name) if match or name in _EXAMPLE_WORDS else None
        inline = (match["rest"] or "").strip() if match else ""
        sections = ("params", "returns", "raises")
        if kind is None or (kind in sections and not inline and not s[:1].isupper()):  # `except:` in code is no title
            return self._prose_line(i, keep=True)
        end = self._body_end(i + 1, indent, same_indent=not inline)
        if kind in sections:
            self.styles.add("google")
            body = [inline] * bool(inline) + [line[indent:] for line in self.lines[i + 1 : end]]
            if inline or not any(line[:1].isspace() for line in body):  # the body under the title, as the parser wants
                body = [f"    {line}" if line.strip() else line for line in body]
            self._read(read_google(_section_kind(kind, name), body))
            return end
        return max(end, self._section(kind, i, inline or None, end, numpy=False))

    def _numpy_title(self, i: int) -> str | None:
        """The title of a NumPy section starting at line `i`: a line over an underline (any adornment character;
        text after an underline as long as the title is ignored, as numpydoc does)."""
        if i + 1 >= len(self.lines):
            return None
        title, under = self.lines[i].strip(), self.lines[i + 1].strip()
        run = _UNDERLINE.match(under)
        if run is None or not (run.end() == len(under) or run.end() >= len(title)):
            return None
        usable = title and not title.startswith(">>>") and len(title) <= 40 and not _UNDERLINE.fullmatch(title)
        return title if usable else None

    def _body_end(self, start: int, indent: int, same_indent: bool) -> int:
        """Where the body of a section whose header is at `indent` ends: after the lines indented deeper, or (with
        `same_indent`, when they follow the header directly) at the next blank line or header."""
        j = start
        while j < len(self.lines) and not self.lines[j].strip():
            j += 1
        if j < len(self.lines) and _indent(self.lines[j]) > indent:
            while j < len(self.lines) and (not self.lines[j].strip() or _indent(self.lines[j]) > indent):
                j += 1
            return j
        if not same_indent or j != start:
            return start
        while j < len(self.lines) and self.lines[j].strip() and not self._is_header(j):
            j += 1
        return j

    def _is_header(self, i: int) -> bool:
        s = self.lines[i].strip()
        match = _HEADER.match(s)
        return bool(match and " ".join(match["name"].lower().split()) in _SECTIONS) or s.startswith((":", "@"))

    # ------------------------------------------------------------------ sections

    def _section(self, kind: str, header: int, inline: str | None, end: int, numpy: bool) -> int:
        """Read the section whose header is at line `header` and body ends at `end`; where reading stopped."""
        start = header + (2 if numpy else 1)
        if kind == "examples":
            k = header if inline else start
            while k < end:
                k = self._step(k, examples_only=True)
            return k
        items = _items([(header, inline)] if inline else [], [(k, self.lines[k]) for k in range(start, end)])
        merged: list[tuple[int, str]] = []  # a prose condition may run on over lines at its indentation
        for line, head, more in items:
            text = " ".join([_BULLET.sub("", head), *more])
            last = merged[-1][1] if merged else ""
            if last and not _BULLET.match(head) and not last.endswith(".") and _parse(last) is None:
                merged[-1] = (merged[-1][0], f"{last} {text}")
            else:
                merged.append((line, text))
        target = self.spec.preconditions if kind == "pre" else self.spec.postconditions
        target += [self._condition(text, kind == "post", line) for line, text in merged]
        return end

    def _raise(self, head: str, when: str) -> None:
        head = _BULLET.sub("", head).strip()
        names = [n.strip() for n in head.split(",")]
        if len(names) > 1 and all(_EXCEPTION.fullmatch(n) for n in names):
            self.spec.raises += [Raise.model_construct(exception=n, when=when) for n in names]
            return
        match = _EXCEPTION.match(head)
        rest = head[match.end() :] if match else ""
        named = match is not None and match[0].split(".")[-1][:1].isupper()
        if match and named and (not rest.strip() or rest.lstrip()[:1] in ":-," or _EXCEPTION_WORD.fullmatch(match[0])):
            name, extra = match[0], rest.strip().lstrip(":-,").strip()
        elif found := _EXCEPTION_WORD.search(head):
            name, extra = found[0], head
        else:
            return
        self.spec.raises.append(Raise.model_construct(exception=name, when=" ".join(filter(None, [extra, when]))))

    def _field(self, i: int, match: re.Match[str]) -> int:
        """A reST or Epydoc field and the deeper lines under it: kept for its style's parser when it is a parameter,
        return or raise, skipped otherwise. The index of the next line to read."""
        indent = _indent(self.lines[i])
        end = i + 1
        while end < len(self.lines) and self.lines[end].strip() and not self._is_field(end):  # its paragraph
            end += 1
        while end < len(self.lines):  # and the blocks indented under it
            after = next((k for k in range(end, len(self.lines)) if self.lines[k].strip()), len(self.lines))
            if after == len(self.lines) or _indent(self.lines[after]) <= indent:
                break
            end = after + 1
            while end < len(self.lines) and self.lines[end].strip() and not self._is_field(end):
                end += 1
        name = _FIELD_NAMES.get(match["field"].lower())
        if name is None:
            return end
        style: Literal["rest", "epydoc"] = "rest" if match["mark"] == ":" else "epydoc"
        name = _REST_NAMES.get(name, name) if style == "rest" else name
        arg = f" {match['arg'].strip()}" if match["arg"] else ""
        self.fields[style] += [f"{match['mark']}{name}{arg}:{match['rest']}", *self.lines[i + 1 : end]]
        self.styles.add(style)
        return end

    def _is_field(self, i: int) -> bool:
        s = self.lines[i].strip()
        return s.startswith((":", "@")) and _FIELD.match(s) is not None

    def _read(self, read: Sections) -> None:
        """Add what a style's parser read: a parameter documented twice keeps what it had and gains what it lacked."""
        for param in read.params:
            known = next((p for p in self.spec.params if p.name == param.name), None)
            if known is None:
                self.spec.params.append(param)
            elif known.type is None or not known.description:
                known.type, known.annotation = known.type or param.type, known.annotation or param.annotation
                known.description = known.description or param.description
        self.spec.returns_type = self.spec.returns_type or read.returns_type
        self.spec.returns_description = self.spec.returns_description or read.returns_description
        for exception, description in read.raises:
            if exception:
                self.spec.raises.append(Raise.model_construct(exception=exception, when=description))
            else:
                self._raise(description, "")

    def _condition(self, text: str, post: bool, line: int) -> Condition:
        """A condition with `expr` when its text is a Python expression over the parameters (`result`, builtins,
        CONSTANTS, called names), else prose only. In a postcondition `__return__` and `_` mean `result`."""
        source = _rename(text, {"__return__": "result", "_": "result"}) if post else text
        tree = _parse(source)
        allowed = {p.name for p in self.params} | _BUILTINS | {"result", "__old__"}
        if tree is not None and all(n in allowed or n.isupper() for n in _free_names(tree)):
            return Condition.model_construct(expr=source, text=_BULLET.sub("", self.lines[line].strip()))
        return Condition.model_construct(expr="", text=text)

    # ------------------------------------------------------------------ doctests

    def _doctest(self, i: int) -> int:
        """The doctest example at line `i`, as the reader read it; the index of the line after it. A prompt doctest
        does not read (its block refused) is no example: its lines as deep as the prompt are skipped."""
        example = self.doctests.get(i)
        if example is None:
            j, indent = i + 1, _indent(self.lines[i])
            while j < len(self.lines) and self.lines[j].strip() and not self.lines[j].strip().startswith(">>>"):
                if _indent(self.lines[j]) < indent:
                    break
                j += 1
            return j
        self.example_lines.add(i)
        self._doctest_example(example)
        return example.end

    def _doctest_example(self, example: DocExample) -> None:
        self.read_doctests.add(example.line)
        if len(self.seen) >= _MAX_EXAMPLES or example.skipped():
            return
        line, source = example.line, example.source.rstrip("\n")
        want = example.expected.removesuffix("\n")  # `<BLANKLINE>` lines blank, as doctest compares
        module = _parse(source, "exec")
        if not isinstance(module, ast.Module) or len(module.body) != 1:
            self._bind(module)
            return
        statement = module.body[0]
        if isinstance(statement, ast.Expr | ast.Assert):
            expr = statement.value if isinstance(statement, ast.Expr) else statement.test
        else:
            self._bind(module)
            return
        if not self._calls_function(expr) or (_loads(expr) - {self.name}) & self.bound:
            return
        asserted = want.strip() in ("", "True") if isinstance(statement, ast.Expr) else not want.strip()
        call: ast.AST | None = expr
        result: str | None = None
        if raises := _exception_of(want):
            pass
        elif asserted and (pair := self._equality(expr)):  # `f(x) == y` shows `True`: f(x) returns y
            call, result = pair[0], _segment(source, pair[1])
        elif isinstance(statement, ast.Assert):
            result = "True"
        elif isinstance(expr, ast.Call) and _is_print(expr) and want:  # `print(x)` shows `str(x)`
            source = f"str({_segment(source, expr.args[0])})"
            call, result = _parse(source), repr(want)
        else:
            result = want.strip() or "None"  # doctest shows nothing for None
            if _parse(result) is None or (example.flag(doctest.ELLIPSIS) and "..." in result):
                return
        if call is not None:
            self._add(line, source, call, result, raises)

    def _equality(self, expr: ast.expr) -> tuple[ast.expr, ast.expr] | None:
        """`f(x) == y` (or `y == f(x)`): the side calling the function, and the expected value."""
        if not (isinstance(expr, ast.Compare) and len(expr.ops) == 1 and isinstance(expr.ops[0], ast.Eq)):
            return None
        left, right = expr.left, expr.comparators[0]
        if self._calls_function(left):
            return left, right
        return (right, left) if self._calls_function(right) else None

    def _bind(self, module: ast.AST | None) -> None:
        for node in ast.walk(module) if module is not None else ():
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                self.bound.add(node.id)
            elif isinstance(node, ast.alias):
                self.bound.add((node.asname or node.name).split(".")[0])
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.bound.add(node.name)

    # ------------------------------------------------------------------ prose examples

    def _call_in(self, text: str) -> re.Match[str] | None:
        """The first call of the function (`self.name`) in `text`: the name, not part of a longer one, then `(`."""
        if not self.name or self.name not in text:
            return None
        return next((m for m in _CALL.finditer(text) if m[1] == self.name), None)

    def _prose_line(self, i: int, keep: bool) -> int:
        """A line of prose: its examples, if any (an example may run on over a few lines while its brackets are
        open); else prose, when `keep`. The index of the next line to read."""
        s = self.lines[i].strip()
        if len(s) <= _MAX_LINE and len(self.seen) < _MAX_EXAMPLES and self._call_in(s):
            text, depth, j = s, _scan(s)[1], i
            while depth > 0 and j + 1 < len(self.lines) and j - i < 30 and len(text) <= _MAX_LINE:
                j += 1
                text += " " + self.lines[j].strip()
                depth = _scan(text)[1]
            if depth == 0 and self._prose_examples(i, text):
                self.example_lines.update(range(i, j + 1))
                return j + 1
        end = self._stated_example(i) if len(s) <= _MAX_LINE and len(self.seen) < _MAX_EXAMPLES else None
        if end is not None:
            self.example_lines.update(range(i, end))
            return end
        if s.startswith("#") and i - 1 in self.example_lines:
            self.example_lines.add(i)  # a comment on the example above it
        elif keep:
            self.prose.append((i, self.lines[i]))
        return i + 1

    def _prose_examples(self, line: int, text: str) -> bool:
        found = False
        for part in self._groups(_BULLET.sub("", text), ";"):
            for group in self._groups(part, ","):
                found = self._prose_example(line, group.strip()) or found
        return found

    def _groups(self, text: str, sep: str) -> list[str]:
        """`text` split at top-level `sep`; a piece that does not call the function joins the one before."""
        groups: list[str] = []
        for piece in _split(text, sep):
            if groups and not self._call_in(piece):
                groups[-1] += sep + piece
            else:
                groups.append(piece)
        return groups

    def _prose_example(self, line: int, text: str) -> bool:
        """One prose example: `<call> <operator> <result>`, with prose before the call and after the result."""
        first = self._call_in(text)
        if first is None:
            return False
        top, _ = _scan(text)
        hash_at = next((k for k in range(first.start(), len(text)) if top[k] and text[k] == "#"), None)
        if hash_at is not None:  # `f(x)  # returns y` reads as `f(x) returns y`; another comment is cut off
            after = text[hash_at + 1 :].lstrip()
            if after.startswith(_ARROWS) or after.lower().startswith(_WORD_OPS):
                text = text[:hash_at] + " " + text[hash_at + 1 :]
            else:
                text, top = text[:hash_at], top[:hash_at]
        start, end = _operator(text, first.start(), top)
        if start == end:
            return False
        near = max(first.start() - _MAX_WRAP, 0)
        starts = [near, *(k + 1 for k in range(near, first.start()) if text[k].isspace() or text[k] == ":")]
        for k in reversed(starts):  # the shortest expression ending at the operator that calls the function
            source = text[k:start].strip()
            call = _parse(source)
            if call is not None and not isinstance(call, _PROSE_NODES) and self._calls_function(call):
                break
        else:
            return False
        if _free_names(call) & {p.name for p in self.params}:
            return False  # `fib(n) = fib(n - 1) + ...` defines the function; it is no example
        called = self._call_of(call)
        if called is None or not all(_is_literal(a) for a in [*called.args, *(k.value for k in called.keywords)]):
            return False  # `is_happy(a) => False`: `a` is a word, not a value
        result = _result(text[end:])
        if result is None or self._calls_function(_parse(result)):
            return False
        self._add(line, source, call, result, None, prose=True)
        return True

    def _stated_example(self, i: int) -> int | None:
        """An example written without a call: `Input: ... Output: ...`, `For x = 1, the output should be 2.`, or a
        walkthrough (`arr = [...]`, its steps, then `return [...]`). The index after its last line, or None."""
        s = self.lines[i].strip()
        if match := _INPUT.match(s):
            return self._input_output(i, match["rest"])
        if s[:4].lower() == "for " and (should := _SHOULD_BE.search(s)):
            values: list[tuple[str | None, str]] = []
            for piece in _split(s[4 : should.start()], ","):  # the leading `name = value` pieces; then prose
                named = _NAMED_VALUE.fullmatch(piece.strip())
                if named is None or not _is_literal(_parse(named["value"].strip())):
                    break
                values.append((named["name"], named["value"].strip()))
            return i + 1 if self._add_stated(i, values, s[should.end() :]) else None
        return self._walkthrough(i)

    def _input_output(self, i: int, first: str) -> int | None:
        inputs = [first] if first.strip() else []
        for j in range(i + 1, min(i + _MAX_STATED_LINES, len(self.lines))):
            s = self.lines[j].strip()
            if output := _OUTPUT.match(s):
                values = _values(", ".join(inputs))
                return j + 1 if values is not None and self._add_stated(i, values, output["rest"]) else None
            if not s:
                return None
            inputs.append(s)
        return None

    def _walkthrough(self, i: int) -> int | None:
        """`param = value` lines, steps (`-> sort arr -> [...]`), then `return value` (or `return = value`)."""
        names = {p.name for p in self.params}
        values: list[tuple[str | None, str]] = []
        j = i
        while j < len(self.lines) and (named := _NAMED_VALUE.fullmatch(self.lines[j].strip())):
            if named["name"] not in names or not _is_literal(_parse(named["value"].strip())):
                break
            values.append((named["name"], named["value"].strip()))
            j += 1
        if not values:
            return None
        for k in range(j, min(i + _MAX_STATED_LINES, len(self.lines))):
            s = self.lines[k].strip()
            if not s or ((named := _NAMED_VALUE.fullmatch(s)) and named["name"] in names):
                return None
            if returned := _RETURN_LINE.match(s):
                return k + 1 if self._add_stated(i, values, returned["value"]) else None
        return None

    def _add_stated(self, line: int, values: list[tuple[str | None, str]], output: str) -> bool:
        """Add the example `name(values) -> output`: named values go to the parameters of that name, the others to
        the remaining parameters in order; every parameter without a default needs a value."""
        params = [p for p in self.params if p.kind not in (ParamKind.VAR_POSITIONAL, ParamKind.VAR_KEYWORD)]
        if params and params[0].name in ("self", "cls"):
            return False  # a method's examples need an object
        given = {name: value for name, value in values if name in {p.name for p in params}}
        unnamed = [value for name, value in values if name not in given]
        free = [p for p in params if p.name not in given]
        if not values or len(unnamed) > len(free):
            return False
        given |= {p.name: value for p, value in zip(free, unnamed, strict=False)}
        if any(p.name not in given for p in params if not p.has_default):
            return False
        arguments, keywords = [], False
        for p in params:
            if p.name not in given:
                keywords = True  # a skipped default: the rest by keyword
            elif keywords or p.kind == ParamKind.KEYWORD_ONLY:
                arguments.append(f"{p.name}={given[p.name]}")
            else:
                arguments.append(given[p.name])
        source = f"{self.name}({', '.join(arguments)})"
        call = _parse(source)
        result = _result(_drop_comment(output))
        if call is None or result is None:
            return False
        self._add(line, source, call, result, None, prose=True)
        return True

    def _alias(self) -> tuple[str, int] | None:
        """The one other name whose calls start the lines of an examples section, in a docstring that never calls
        the function itself (`grade_equation([4.0, 3]) ==> ['A+', 'B']` in the spec of `numerical_letter_grade`),
        and the line where that section starts."""
        if not self.name or self._call_in(self.text):
            return None
        start = next(
            (k for k, line in enumerate(self.lines) if line.strip().lower().rstrip(":") in _EXAMPLE_WORDS), None
        )
        if start is None:
            return None
        names = {
            m["name"]
            for line in self.lines[start:]
            if (m := _ALIAS_CALL.match(line.strip())) and m["name"] not in _BUILTINS
        }
        return (names.pop(), start) if len(names) == 1 else None

    def _examples_named_after(self, alias: tuple[str, int] | None) -> None:
        """Read the prose examples calling the alias in the examples section as examples of this function."""
        if alias is None:
            return
        (other, i), name, first = alias, self.name, len(self.spec.examples)
        self.name = other
        try:
            while i < len(self.lines):
                i = max(i + 1, self._prose_line(i, keep=False))
        finally:
            self.name = name
        for example in self.spec.examples[first:]:
            example.call = _rename(example.call, {other: name})

    def _drop_misfits(self) -> None:
        """Leave out prose examples whose result does not fit the return type: the annotation, else the documented
        type, else the type of the doctests' results, else what the prose says it returns (`return a list`)."""
        prose = {id(e) for e in self.prose_examples}
        declared = self.returns or self.spec.returns_type
        doctests = [_value_types(e.result) for e in self.spec.examples if id(e) not in prose and e.result]
        if declared:
            expected = _type_names(declared)  # None (no filter) for a type we cannot judge, e.g. `Any`
        elif doctests and all(doctests):
            expected = set().union(*(types for types in doctests if types))
        else:
            words = {_TYPE_WORDS.get(m["word"].lower(), m["word"].lower()) for m in _RETURNS_WORD.finditer(self.text)}
            expected = words if len(words) == 1 else None
        if expected is not None:
            misfits = {
                id(e)
                for e in self.prose_examples
                if e.result and expected.isdisjoint(_value_types(e.result) or expected)
            }
            self.spec.examples = [e for e in self.spec.examples if id(e) not in misfits]

    # ------------------------------------------------------------------ shared helpers

    def _calls_function(self, node: ast.AST | None) -> bool:
        return node is not None and self._call_of(node) is not None

    def _call_of(self, node: ast.AST) -> ast.Call | None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                func = sub.func
                if (isinstance(func, ast.Name) and func.id == self.name) or (
                    isinstance(func, ast.Attribute) and func.attr == self.name
                ):
                    return sub
        return None

    def _add(
        self, line: int, source: str, call: ast.AST, result: str | None, raises: str | None, prose: bool = False
    ) -> None:
        call_text = _segment(source, call)
        key = (call_text, result, raises, line)
        if not call_text or len(call_text) > _MAX_EXPR or key in self.seen or len(self.seen) >= _MAX_EXAMPLES:
            return
        self.seen.add(key)
        args = self._args(source, call)
        example = Example.model_construct(args=args, call=call_text, result=result, raises=raises, line=line)
        self.spec.examples.append(example)
        if prose:
            self.prose_examples.append(example)

    def _args(self, source: str, expr: ast.AST) -> dict[str, str]:
        """The call's arguments by parameter name: positional by position (`*args` collects the rest as a tuple),
        keywords by name (`**kwargs` collects unknown ones as a dict)."""
        call = self._call_of(expr)
        if (
            call is None
            or any(isinstance(a, ast.Starred) for a in call.args)
            or any(k.arg is None for k in call.keywords)
        ):
            return {}
        params = self.params
        if isinstance(call.func, ast.Attribute) and params and params[0].name in ("self", "cls"):
            params = params[1:]
        positional = [p for p in params if p.kind in (ParamKind.POSITIONAL_ONLY, ParamKind.POSITIONAL_OR_KEYWORD)]
        star = next((p for p in params if p.kind == ParamKind.VAR_POSITIONAL), None)
        double = next((p for p in params if p.kind == ParamKind.VAR_KEYWORD), None)
        args = {p.name: _segment(source, a) for p, a in zip(positional, call.args, strict=False)}
        extra = [_segment(source, a) for a in call.args[len(positional) :]]
        if extra and star is not None:
            args[star.name] = "(" + ", ".join(extra) + ("," if len(extra) == 1 else "") + ")"
        named = {p.name for p in params if p.kind in (ParamKind.POSITIONAL_OR_KEYWORD, ParamKind.KEYWORD_ONLY)}
        unknown: list[str] = []
        for keyword in call.keywords:
            if keyword.arg in named:
                args[keyword.arg] = _segment(source, keyword.value)
            else:
                unknown.append(f"{keyword.arg!r}: {_segment(source, keyword.value)}")
        if unknown and double is not None:
            args[double.name] = "{" + ", ".join(unknown) + "}"
        return args

    def _finish(self) -> None:
        # An intro line (`Examples of use:`) right before examples is not prose.
        following: dict[int, int] = {}
        upcoming = len(self.lines)
        for k in range(len(self.lines) - 1, -1, -1):
            following[k] = upcoming
            upcoming = k if self.lines[k].strip() else upcoming
        kept = [(k, t) for k, t in self.prose if not _intro(t) or following[k] not in self.example_lines]
        paragraphs: list[list[tuple[int, str]]] = []
        for line, text in kept:
            if paragraphs and paragraphs[-1][-1][0] == line - 1:
                paragraphs[-1].append((line, text))
            else:
                paragraphs.append([(line, text)])
        rest = ["\n".join(_dedent_block([t for _, t in p])) for p in paragraphs[1:]]
        summary = " ".join(" ".join(t for _, t in paragraphs[0]).split()) if paragraphs else ""
        if len(summary) > _SUMMARY_MAX:
            first, *others = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9`'\"(])", summary, maxsplit=1)
            if others:
                summary, rest = first, [others[0], *rest]
        self.spec.summary, self.spec.details = summary, "\n\n".join(rest)
        for style in _STYLES:
            if style in self.styles:
                self.spec.style = style
                break


# ---------------------------------------------------------------------- text helpers


def _section_kind(kind: str, title: str) -> SectionKind:
    """A parameters, returns or raises section's kind for its parser (`Yields` is read as a return)."""
    if kind == "returns" and title.lower().startswith("yield"):
        return "yields"
    return "params" if kind == "params" else "raises" if kind == "raises" else "returns"


def _intro(line: str) -> bool:
    """A short line introducing what follows (`For instance:`)."""
    return line.strip().endswith(":") and len(line.strip()) <= 40


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _dedent(lines: list[str]) -> list[str]:
    """The docstring's lines with the first one stripped (it follows the quotes) and the common margin of the
    others removed, keeping their number."""
    lines = [line.expandtabs(8).rstrip() for line in lines]
    if not lines:
        return lines
    margin = min((_indent(line) for line in lines[1:] if line.strip()), default=0)
    return [lines[0].strip(), *(line[margin:] for line in lines[1:])]


def _dedent_block(lines: list[str]) -> list[str]:
    margin = min((_indent(line) for line in lines if line.strip()), default=0)
    return [line[margin:] for line in lines]


def _items(inline: list[tuple[int, str]], body: list[tuple[int, str]]) -> list[tuple[int, str, list[str]]]:
    """A section's entries: the lines at its base indentation, each with its deeper continuation lines."""
    items: list[tuple[int, str, list[str]]] = [(line, text.strip(), []) for line, text in inline]
    present = [(line, text) for line, text in body if text.strip()]
    base = min((_indent(text) for _, text in present), default=0)
    for line, text in present:
        if _indent(text) <= base or not items:
            items.append((line, text.strip(), []))
        else:
            items[-1][2].append(text.strip())
    return items


def _scan(text: str) -> tuple[list[bool], int]:
    """For each character: whether it is outside strings and brackets; and the bracket depth at the end."""
    top = [False] * len(text)
    depth, quote, k = 0, "", 0
    while k < len(text):
        c = text[k]
        if quote:
            if c == "\\":
                k += 2
                continue
            if text.startswith(quote, k):
                k += len(quote)
                quote = ""
                continue
        elif c in "'\"" and (k == 0 or not text[k - 1].isalnum() or _STRING_PREFIX.search(text, 0, k)):
            quote = c * 3 if text.startswith(c * 3, k) else c
            k += len(quote)
            continue
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(depth - 1, 0)
            top[k] = depth == 0
            k += 1
            continue
        top[k] = depth == 0 and not quote and c not in "([{"
        k += 1
    return top, depth + (1 if quote else 0)


def _split(text: str, sep: str) -> list[str]:
    """`text` split at its top-level `sep` characters (for `=`: those standing alone)."""
    top, _ = _scan(text)
    pieces, last = [], 0
    for k, c in enumerate(text):
        if c == sep and top[k] and (sep != "=" or _lone_eq(text, k)):
            pieces.append(text[last:k])
            last = k + 1
    return [*pieces, text[last:]]


def _operator(text: str, start: int, top: list[bool]) -> tuple[int, int]:
    """The span of the first top-level example operator (`->`, `==`, `returns`, ...) at or after `start`."""
    lower = text.lower()
    for k in range(start, len(text)):
        if k >= len(top) or not top[k]:
            continue
        for op in _ARROWS:
            if text.startswith(op, k):
                if op == "=" and not _lone_eq(text, k):
                    break
                return k, k + len(op)
        for op in _WORD_OPS:
            if (
                lower.startswith(op, k)
                and not text[k - 1 : k].isalnum()
                and not text[k + len(op) : k + len(op) + 1].isalnum()
            ):
                return k, k + len(op)
    return 0, 0


def _result(text: str) -> str | None:
    """The expected value written after an example's operator: a Python expression, its prose trimmed."""
    top, _ = _scan(text)
    stop = next((k for k in range(len(text) - 1) if top[k] and text[k] == "." and text[k + 1].isspace()), None)
    text = text[:stop].strip()  # up to the end of the sentence
    candidates = [text.rstrip(".,;:").strip(), text]
    parts = _split(text, "=")
    if len(parts) > 1:  # `f(x) -> 1 + 2 = 3`
        candidates.append(parts[-1].strip().rstrip(".,;:").strip())
    top, _ = _scan(text)  # else the longest prefix that parses, cut before a word of prose
    cuts = [k for k in range(1, len(text)) if top[k] and text[k].isspace() and not text[k - 1].isspace()]
    candidates += [text[:k].rstrip(".,;:").strip() for k in reversed(cuts[:12])]
    for candidate in candidates:
        if not candidate or len(candidate) > _MAX_EXPR:
            continue
        candidate = _rename(candidate, _LITERAL_NAMES)
        tree = _parse(candidate)
        if tree is not None and not _free_names(tree):
            return candidate
    return None


def _drop_comment(text: str) -> str:
    """`text` up to a top-level `#` (`24 # sum of 21 + 3` -> `24 `)."""
    top, _ = _scan(text)
    return text[: next((k for k, c in enumerate(text) if c == "#" and top[k]), len(text))]


def _values(text: str) -> list[tuple[str | None, str]] | None:
    """The inputs of an `Input:` line: `[4, 2, 3]`, `arr = [1], k = 3` or `grid : [[0]], capacity : 1` as
    (name or None, value source); None unless every value is a literal."""
    pieces = [piece.strip() for piece in _split(text, ",")]
    named = [_NAMED_VALUE.fullmatch(piece) for piece in pieces]
    values: list[tuple[str | None, str]] = (
        [(m["name"], m["value"].strip()) for m in named if m is not None]
        if all(named)
        else [(None, piece) for piece in pieces]
    )
    return values if all(_is_literal(_parse(value)) for _, value in values) else None


def _is_literal(node: ast.AST | None) -> bool:
    """A value written out: constants, containers of them, signs and arithmetic (no names, no calls)."""
    allowed = (ast.Constant, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.UnaryOp, ast.BinOp, ast.Load)
    return node is not None and all(isinstance(n, (*allowed, ast.operator, ast.unaryop)) for n in ast.walk(node))


def _type_names(annotation: str) -> set[str] | None:
    """The outer types an annotation allows (`List[int] | None` -> {list, None}); None when any is unknown."""
    tree = _parse(annotation) if annotation else None
    if tree is None:
        return None
    names: set[str] = set()
    parts: list[ast.AST] = [tree]
    while parts:
        part = parts.pop()
        if isinstance(part, ast.BinOp) and isinstance(part.op, ast.BitOr):
            parts += [part.left, part.right]
        elif isinstance(part, ast.Subscript) and isinstance(part.value, ast.Name | ast.Attribute):
            outer = part.value.id if isinstance(part.value, ast.Name) else part.value.attr
            if outer in ("Optional", "Union"):
                inner = part.slice
                parts += [*inner.elts] if isinstance(inner, ast.Tuple) else [inner]
                if outer == "Optional":
                    names.add("None")
            else:
                parts.append(part.value)
        elif isinstance(part, ast.Name | ast.Attribute):
            name = part.id if isinstance(part, ast.Name) else part.attr
            name = _TYPING_NAMES.get(name, name)
            if name not in _BUILTIN_TYPES:
                return None
            names.add(name)
        elif isinstance(part, ast.Constant) and part.value is None:
            names.add("None")
        else:
            return None
    return names


def _value_types(source: str) -> set[str] | None:
    """The types a literal's value fits (`3` fits int, float, complex); None when it is no literal."""
    try:
        value = pyast.literal_eval(source)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return _VALUE_TYPES.get(type(value), {type(value).__name__})


def _lone_eq(text: str, k: int) -> bool:
    """Whether the `=` at `k` stands alone (not part of `==`, `<=`, `=>`, `:=`, ...)."""
    return text[k - 1 : k] not in ("<", ">", "!", "=", ":") and text[k + 1 : k + 2] not in ("=", ">")


# ---------------------------------------------------------------------- Python-source helpers


def _parse(source: str, mode: Literal["eval", "exec"] = "eval") -> ast.AST | None:
    if len(source) > _MAX_EXPR * 4:
        return None
    try:
        return pyast.parse_expression(source) if mode == "eval" else pyast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None


def _segment(source: str, node: ast.AST) -> str:
    try:
        return ast.get_source_segment(source, node) or ast.unparse(node)
    except Exception:
        return ""


def _free_names(tree: ast.AST) -> set[str]:
    """Names an expression reads that it does not bind, not counting called names and attribute bases."""
    skip: set[int] = set()
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            skip.add(id(node.func))
        elif isinstance(node, ast.Attribute):
            skip.add(id(node.value))
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    names = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
    return {n.id for n in names if id(n) not in skip} - bound


def _loads(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _rename(source: str, names: dict[str, str]) -> str:
    """`source` with the NAME tokens in `names` replaced (not attribute names after a dot)."""
    if not any(name in source for name in names):
        return source
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, ValueError):
        return source
    offsets = [0]
    for line in source.split("\n"):
        offsets.append(offsets[-1] + len(line) + 1)
    edits: list[tuple[int, int, str]] = []
    previous = ""
    for tok in tokens:
        if tok.type == tokenize.NAME and tok.string in names and previous != ".":
            at = offsets[tok.start[0] - 1] + tok.start[1]
            edits.append((at, at + len(tok.string), names[tok.string]))
        if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
            previous = tok.string
    for begin, end, new in reversed(edits):
        source = source[:begin] + new + source[end:]
    return source


def _exception_of(want: str) -> str | None:
    """The exception a doctest's expected output shows (`Traceback ...` then `ValueError: message`)."""
    lines = want.strip().split("\n")
    if not lines or not lines[0].startswith(_TRACEBACK):
        return None
    for line in reversed(lines[1:]):
        match = _EXCEPTION.match(line)
        if match and not line[:1].isspace() and line[match.end() : match.end() + 1] in (":", ""):
            return match[0]
    return None


def _is_print(expr: ast.Call) -> bool:
    return isinstance(expr.func, ast.Name) and expr.func.id == "print" and len(expr.args) == 1 and not expr.keywords
