"""A function's spec text read into parts: prose, parameters, returns, raises, examples and contracts.

Reads Google, NumPy and reST (Sphinx) sections; doctests and the prose example forms real docstrings use
(`f(x) -> y`, `f(x) == y`, `f(x) returns y`, ...); PEP 316 contracts (`pre:`, `post:`, `raises:`) and
`Requires:`/`Ensures:`. Pure (stdlib only). `parse_docstring` never raises: on any failure it returns what it has.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import re
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from lift_lsp.spec import pyast
from lift_lsp.spec.ir import Condition, Example, ParamKind, Raise


@dataclass(frozen=True)
class ParamShape:
    name: str
    kind: ParamKind
    has_default: bool = False


@dataclass
class DocParam:
    name: str
    type: str | None
    description: str


@dataclass
class DocSpec:
    summary: str = ""
    """The first paragraph of prose (its first sentence when the paragraph is long), whitespace-normalised."""
    details: str = ""
    """The other prose: not sections, not examples, not contracts."""
    params: list[DocParam] = field(default_factory=list)
    returns_type: str | None = None
    returns_description: str = ""
    raises: list[Raise] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    """`line` is the 0-based line within the text where the example starts. Built without validation: a long
    example is kept, and the caller fits it to the IR's bounds."""
    preconditions: list[Condition] = field(default_factory=list)
    postconditions: list[Condition] = field(default_factory=list)
    style: Literal["google", "numpy", "rest", "plain"] = "plain"


def parse_docstring(text: str, function_name: str, params: Sequence[ParamShape]) -> DocSpec:
    """Read `text` (a docstring's raw content, not dedented) as the spec of `function_name(params)`."""
    try:
        parser = _Parser(text[:_MAX_TEXT] if isinstance(text, str) else "", str(function_name), list(params))
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
_REST = re.compile(r":(?P<field>[A-Za-z]+)(?:\s+(?P<arg>[^:]*?))?\s*:(?P<rest>.*)$")
_GOOGLE_PARAM = re.compile(r"(?P<name>\*{0,2}[A-Za-z_]\w*)\s*(?:\((?P<type>.*?)\))?\s*:(?:\s+(?P<desc>.*)|$)")
_NUMPY_PARAM = re.compile(r"(?P<names>\*{0,2}[A-Za-z_]\w*(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)*)\s*(?::\s*(?P<type>.*))?$")
_EXCEPTION = re.compile(r"[A-Za-z_][\w.]*")
_EXCEPTION_WORD = re.compile(r"\b[A-Za-z_][\w.]*(?:Error|Exception|Warning|Exit|Interrupt|Iteration)\b")
_STRING_PREFIX = re.compile(r"(?<!\w)(?:[rRbBuUfF]{1,2})$")
_BULLET = re.compile(r"^(?:[-*•]|\d{1,2}[.)])\s+")
_DASHES = re.compile(r"-{3,}|={3,}")
_TRACEBACK = ("Traceback (most recent call last)", "Traceback (innermost last)")
_ARROWS = ("==>", "=>", "->", "➞", "→", "==", "=")
_WORD_OPS = ("should return", "returns")
_LITERAL_NAMES = {"true": "True", "false": "False", "none": "None", "null": "None"}
_BUILTINS = set(dir(builtins))
_PROSE_NODES = (ast.BoolOp, ast.Compare, ast.IfExp, ast.Lambda, ast.NamedExpr, ast.Tuple)
"""What an expression read out of prose must not be: its `and`/`is`/`if`/`,` are likely English."""
_STYLES: tuple[Literal["rest", "numpy", "google"], ...] = ("rest", "numpy", "google")


class _Parser:
    def __init__(self, text: str, name: str, params: list[ParamShape]) -> None:
        self.lines = _dedent(re.split(r"\r\n|\r|\n", text))
        self.name = name
        self.params = params
        self.call_re = re.compile(rf"(?<!\w){re.escape(name)}\s*\(") if name else None
        self.spec = DocSpec()
        self.prose: list[tuple[int, str]] = []
        self.example_lines: set[int] = set()
        self.bound: set[str] = set()
        """Names assigned by earlier doctest statements: examples using them need a setup the IR cannot hold."""
        self.styles: set[str] = set()
        self.seen: set[tuple[str, str | None, str | None, int]] = set()

    # ------------------------------------------------------------------ the walk over lines

    def run(self) -> None:
        i = 0
        while i < len(self.lines):
            i = max(i + 1, self._step(i, examples_only=False))
        self.finish_safely()

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
            return max(end, self._section(kind, i, None, end, numpy=True))
        if s.startswith(":") and (rest := _REST.match(s)):
            return self._rest_field(i, rest)
        match = _HEADER.match(s)
        name = " ".join(match["name"].lower().split()) if match else s.lower().rstrip(": ")
        kind = _SECTIONS.get(name) if match or name in _EXAMPLE_WORDS else None
        if kind is None:
            return self._prose_line(i, keep=True)
        if kind in ("params", "returns", "raises"):
            self.styles.add("google")
        inline = (match["rest"] or "").strip() if match else ""
        end = self._body_end(i + 1, indent, same_indent=not inline)
        return max(end, self._section(kind, i, inline or None, end, numpy=False))

    def _numpy_title(self, i: int) -> str | None:
        if i + 1 >= len(self.lines) or not _DASHES.fullmatch(self.lines[i + 1].strip()):
            return None
        title = self.lines[i].strip()
        return title if title and not title.startswith(">>>") and len(title) <= 40 else None

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
        return bool(match and " ".join(match["name"].lower().split()) in _SECTIONS) or s.startswith(":")

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
        if kind == "params":
            self._params(items, numpy)
        elif kind == "returns":
            self._returns(items, numpy)
        elif kind == "raises":
            for _, head, more in items:
                self._raise(head, " ".join(more))
        else:
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

    def _params(self, items: list[tuple[int, str, list[str]]], numpy: bool) -> None:
        for _, head, more in items:
            match = (_NUMPY_PARAM if numpy else _GOOGLE_PARAM).fullmatch(head)
            if match is None:
                if self.spec.params:
                    last = self.spec.params[-1]
                    last.description = " ".join(filter(None, [last.description, head, *more]))
                continue
            type_text = _clean_type(match["type"])
            if numpy:
                for name in match["names"].split(","):
                    self.spec.params.append(DocParam(name.strip().lstrip("*"), type_text, " ".join(more)))
            else:
                desc = " ".join(filter(None, [match["desc"] or "", *more]))
                self.spec.params.append(DocParam(match["name"].lstrip("*"), type_text, desc))

    def _returns(self, items: list[tuple[int, str, list[str]]], numpy: bool) -> None:
        texts: list[str] = []
        for index, (_, head, more) in enumerate(items):
            if index == 0 and self.spec.returns_type is None:
                prefix, colon, rest = head.partition(":")
                if colon and numpy and _is_type(rest.strip()):  # `name : type`
                    self.spec.returns_type, head = rest.strip(), ""
                elif colon and not numpy and _is_type(prefix.strip()):  # `type: description`
                    self.spec.returns_type, head = prefix.strip(), rest.strip()
                elif _is_type(head):
                    self.spec.returns_type, head = head, ""
            texts += [head, *more]
        self.spec.returns_description = " ".join(filter(None, [self.spec.returns_description, *texts]))

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

    def _rest_field(self, i: int, match: re.Match[str]) -> int:
        indent = _indent(self.lines[i])
        end = i + 1
        while end < len(self.lines) and self.lines[end].strip() and _indent(self.lines[end]) > indent:
            end += 1
        text = " ".join([match["rest"].strip(), *(self.lines[k].strip() for k in range(i + 1, end))]).strip()
        kind, arg = match["field"].lower(), (match["arg"] or "").strip()
        if kind in ("param", "parameter", "arg", "argument", "key", "keyword") and arg:
            type_text, _, name = arg.rpartition(" ")
            self._param(name.lstrip("*")).description = text
            if type_text.strip():
                self._param(name.lstrip("*")).type = type_text.strip()
        elif kind == "type" and arg:
            self._param(arg.lstrip("*")).type = text or None
        elif kind in ("returns", "return", "yields", "yield"):
            self.spec.returns_description = text
        elif kind in ("rtype", "ytype"):
            self.spec.returns_type = text or None
        elif kind in ("raises", "raise", "except", "exception", "throws"):
            self._raise(f"{arg}: {text}" if arg else text, "")
        else:
            return end
        self.styles.add("rest")
        return end

    def _param(self, name: str) -> DocParam:
        found = next((p for p in self.spec.params if p.name == name), None)
        if found is None:
            found = DocParam(name, None, "")
            self.spec.params.append(found)
        return found

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
        indent = _indent(self.lines[i])
        source = [self.lines[i].strip()[3:].removeprefix(" ")]
        j = i + 1
        while j < len(self.lines) and _indent(self.lines[j]) == indent:
            s = self.lines[j].strip()
            if s != "..." and not s.startswith("... "):
                break
            source.append(s[4:])
            j += 1
        want: list[str] = []
        while j < len(self.lines) and self.lines[j].strip() and not self.lines[j].strip().startswith(">>>"):
            if _indent(self.lines[j]) < indent:
                break
            want.append(self.lines[j][indent:].rstrip())
            j += 1
        self.example_lines.add(i)
        self._doctest_example(i, "\n".join(source), "\n".join(want))
        return j

    def _doctest_example(self, line: int, source: str, want: str) -> None:
        if len(self.seen) >= _MAX_EXAMPLES or "+SKIP" in source:
            return
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
            if _parse(result) is None or ("+ELLIPSIS" in source and "..." in result):
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

    def _prose_line(self, i: int, keep: bool) -> int:
        """A line of prose: its examples, if any (an example may run on over a few lines while its brackets are
        open); else prose, when `keep`. The index of the next line to read."""
        s = self.lines[i].strip()
        if self.call_re and len(s) <= _MAX_LINE and len(self.seen) < _MAX_EXAMPLES and self.call_re.search(s):
            text, depth, j = s, _scan(s)[1], i
            while depth > 0 and j + 1 < len(self.lines) and j - i < 30 and len(text) <= _MAX_LINE:
                j += 1
                text += " " + self.lines[j].strip()
                depth = _scan(text)[1]
            if depth == 0 and self._prose_examples(i, text):
                self.example_lines.update(range(i, j + 1))
                return j + 1
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
            if groups and not (self.call_re and self.call_re.search(piece)):
                groups[-1] += sep + piece
            else:
                groups.append(piece)
        return groups

    def _prose_example(self, line: int, text: str) -> bool:
        """One prose example: `<call> <operator> <result>`, with prose before the call and after the result."""
        first = self.call_re.search(text) if self.call_re else None
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
        result = _result(text[end:])
        if result is None or self._calls_function(_parse(result)):
            return False
        self._add(line, source, call, result, None)
        return True

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

    def _add(self, line: int, source: str, call: ast.AST, result: str | None, raises: str | None) -> None:
        call_text = _segment(source, call)
        key = (call_text, result, raises, line)
        if not call_text or len(call_text) > _MAX_EXPR or key in self.seen or len(self.seen) >= _MAX_EXAMPLES:
            return
        self.seen.add(key)
        args = self._args(source, call)
        self.spec.examples.append(
            Example.model_construct(args=args, call=call_text, result=result, raises=raises, line=line)
        )

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


def _is_type(text: str) -> bool:
    """Whether `text` reads as a type annotation (`int`, `list[str] | None`), not as prose."""
    tree = _parse(text) if text and len(text) <= 200 else None
    allowed = (ast.Name, ast.Attribute, ast.Subscript, ast.Tuple, ast.List, ast.Load, ast.BitOr)
    return tree is not None and all(
        isinstance(n, allowed)
        or (isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr))
        or (isinstance(n, ast.Constant) and (n.value is None or n.value is Ellipsis or isinstance(n.value, str)))
        for n in ast.walk(tree)
    )


def _clean_type(text: str | None) -> str | None:
    if not text:
        return None
    text = re.sub(r",?\s*\boptional\b.*$|,\s*default\b.*$", "", text.strip(), flags=re.IGNORECASE).strip()
    return text or None


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
