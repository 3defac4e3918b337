"""Spec sites: every function in a document, its spec and the ranges an edit needs, found with tree-sitter.

tree-sitter recovers from syntax errors, so functions are found in files that are broken elsewhere. All lines and
columns here are 0-based; columns count Unicode code points (the server converts to the client's encoding).
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import tree_sitter
import tree_sitter_python

from lift_lsp.spec.ir import ParamKind

STUB_RAISES = ("NotImplementedError",)
_IMPORTS = ("import_statement", "import_from_statement", "future_import_statement")


@dataclass(frozen=True)
class Span:
    start_line: int
    start_col: int
    end_line: int
    end_col: int

    def contains(self, line: int, col: int) -> bool:
        if line < self.start_line or line > self.end_line:
            return False
        if line == self.start_line and col < self.start_col:
            return False
        return not (line == self.end_line and col > self.end_col)


@dataclass(frozen=True)
class ParamSite:
    name: str
    kind: ParamKind
    annotation: str | None = None
    default: str | None = None
    name_span: Span | None = None


@dataclass(frozen=True)
class SpecSite:
    """One function (or method) and its spec."""

    name: str
    qualname: str
    """`Class.method`, `outer.<locals>.inner`."""
    is_async: bool
    class_name: str | None
    params: tuple[ParamSite, ...]
    return_annotation: str | None
    decorators: tuple[str, ...]
    span: Span
    """The whole definition, decorators included."""
    name_span: Span
    def_line: int
    header_end_line: int
    """The line of the `:` that ends the `def` header."""
    header_colon_col: int
    """The column of that `:`."""
    body_span: Span
    body_indent: str
    docstring: str | None
    """The docstring's raw content (between the quotes, not dedented); also a string that follows leading imports."""
    docstring_line: int | None
    """The line of the docstring's opening quotes (its content starts on that line)."""
    docstring_span: Span | None
    spec_comment: str | None
    """A `# spec:` block above the definition, without the `#` markers."""
    spec_comment_line: int | None
    is_stub: bool
    """The body is only a docstring (after any leading imports), `...`, `pass` or `raise NotImplementedError`."""
    stub_span: Span
    """What "Generate from spec" replaces: the body after the docstring (the whole body without one)."""
    has_error: bool
    """tree-sitter found a syntax error inside this function."""
    text: str
    """The definition's source, decorators included."""

    @property
    def line(self) -> int:
        return self.def_line

    @property
    def spec_text(self) -> str | None:
        return self.docstring if self.docstring is not None else self.spec_comment

    @property
    def spec_line(self) -> int | None:
        return self.docstring_line if self.docstring is not None else self.spec_comment_line


@lru_cache(maxsize=1)
def _language() -> tree_sitter.Language:
    return tree_sitter.Language(tree_sitter_python.language())


@lru_cache(maxsize=1)
def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(_language())


class _Source:
    """The document as bytes for tree-sitter, with conversion from byte columns to code-point columns."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.data = text.encode("utf-8", errors="surrogatepass")
        self.lines = self.data.split(b"\n")
        self._ascii = len(self.data) == len(text)

    def col(self, row: int, byte_col: int) -> int:
        if self._ascii or row >= len(self.lines):
            return byte_col
        return len(self.lines[row][:byte_col].decode("utf-8", errors="replace"))

    def span(self, node: tree_sitter.Node) -> Span:
        (sr, sc), (er, ec) = node.start_point, node.end_point
        return Span(sr, self.col(sr, sc), er, self.col(er, ec))

    def node_text(self, node: tree_sitter.Node) -> str:
        return self.data[node.start_byte : node.end_byte].decode("utf-8", errors="replace")

    def line(self, row: int) -> str:
        if 0 <= row < len(self.lines):
            return self.lines[row].decode("utf-8", errors="replace").rstrip("\r")
        return ""


def parse_tree(text: str) -> tree_sitter.Tree:
    return _parser().parse(text.encode("utf-8", errors="surrogatepass"))


def find_sites(text: str) -> list[SpecSite]:
    """Every function and method in `text`, in document order; never raises on bad input."""
    src = _Source(text)
    tree = _parser().parse(src.data)
    sites: list[SpecSite] = []
    for node, scope in _functions(tree.root_node, src):
        site = _site(node, scope, src)
        if site is not None:
            sites.append(site)
    return sites


def site_at(sites: list[SpecSite], line: int, col: int) -> SpecSite | None:
    """The innermost function whose name or body holds the position (decorators and header count too)."""
    best: SpecSite | None = None
    for site in sites:
        if site.span.contains(line, col) and (best is None or site.span.start_line >= best.span.start_line):
            best = site
    return best


_WORD = re.compile(r"[A-Za-z_]\w*")


def module_functions(sites: Sequence[SpecSite]) -> dict[str, SpecSite]:
    """The module-level functions by name (what another function can call by its bare name)."""
    return {s.name: s for s in sites if s.class_name is None and "<locals>" not in s.qualname}


def functions_used(site: SpecSite, by_name: dict[str, SpecSite]) -> list[SpecSite]:
    """`site` and the module functions (`by_name`) it names, transitively: what its behaviour depends on."""
    used: dict[str, SpecSite] = {}
    pending = [site]
    while pending:
        current = pending.pop()
        if current.qualname not in used:
            used[current.qualname] = current
            pending += [by_name[w] for w in set(_WORD.findall(current.text)) if w in by_name]
    return list(used.values())


def outside_functions(text: str, sites: Sequence[SpecSite]) -> str:
    """The module's code outside every function: imports, constants, class bodies, the module docstring (not its
    comment lines and blank lines, which change nothing that runs)."""
    covered: set[int] = set()
    for site in sites:
        covered.update(range(site.span.start_line, site.span.end_line + 1))
    rest = [line for index, line in enumerate(text.split("\n")) if index not in covered]
    quiet = _comment_lines("\n".join(rest))  # tokenized without the functions: most of a module's text
    return "\n".join(line for index, line in enumerate(rest) if index not in quiet)


def _comment_lines(text: str) -> set[int]:
    """0-based rows holding only a comment or nothing (empty when the text does not tokenize)."""
    rows: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            alone = not token.line[: token.start[1]].strip()
            if (token.type == tokenize.COMMENT and alone) or (token.type == tokenize.NL and not token.line.strip()):
                rows.add(token.start[0] - 1)
    except (tokenize.TokenError, SyntaxError):
        return set()
    return rows


@lru_cache(maxsize=1)
def _function_query() -> tree_sitter.Query:
    return tree_sitter.Query(_language(), "(function_definition) @function")


def _functions(root: tree_sitter.Node, src: _Source) -> Iterator[tuple[tree_sitter.Node, tuple[str, ...]]]:
    """Each function node in document order (found by a tree-sitter query, in C: no recursion to exhaust the stack
    on deeply nested input), with its enclosing scope names (`Class`, `outer.<locals>`)."""
    found = tree_sitter.QueryCursor(_function_query()).captures(root).get("function", [])
    scopes: dict[int, tuple[str, ...]] = {}
    """The scope names inside each function or class met so far, by node id."""

    def inside(node: tree_sitter.Node | None) -> tuple[str, ...]:
        chain: list[tree_sitter.Node] = []
        while node is not None and node.id not in scopes:
            if node.type in ("function_definition", "class_definition"):
                chain.append(node)
            node = node.parent
        scope = scopes[node.id] if node is not None else ()
        for block in reversed(chain):
            name = block.child_by_field_name("name")
            named = src.node_text(name) if name else "?"
            scope = (*scope, f"{named}.<locals>" if block.type == "function_definition" else named)
            scopes[block.id] = scope
        return scope

    for node in sorted(found, key=lambda n: n.start_byte):
        yield node, inside(node.parent)


def _site(node: tree_sitter.Node, scope: tuple[str, ...], src: _Source) -> SpecSite | None:
    name_node = node.child_by_field_name("name")
    body = node.child_by_field_name("body")
    if name_node is None or body is None:
        return None
    name = src.node_text(name_node)
    outer = node.parent if node.parent is not None and node.parent.type == "decorated_definition" else node
    decorators = tuple(src.node_text(c).lstrip("@").strip() for c in outer.children if c.type == "decorator")
    class_name = scope[-1] if scope and not scope[-1].endswith(".<locals>") else None
    params_node = node.child_by_field_name("parameters")
    params = _params(params_node, src) if params_node is not None else ()
    returns = node.child_by_field_name("return_type")

    statements = [c for c in body.named_children if c.type != "comment"]
    # The spec may follow leading imports (`import math` above the docstring): read it there too.
    leading = next((k for k, s in enumerate(statements) if s.type not in _IMPORTS), len(statements))
    doc_node = _docstring_node(statements[leading]) if leading < len(statements) else None
    docstring = docstring_line = docstring_span = None
    if doc_node is not None:
        docstring = _string_content(doc_node, src)
        docstring_line = doc_node.start_point[0]
        docstring_span = src.span(doc_node)
    rest = statements[leading + 1 :] if doc_node is not None else statements
    is_stub = all(_is_stub_statement(s, src) for s in rest) and (bool(rest) or doc_node is not None)

    body_span = src.span(body)
    def_line = node.start_point[0]
    colon = next((c for c in node.children if c.type == ":"), None)
    header_end_line = colon.start_point[0] if colon is not None else body.start_point[0]
    header_colon_col = src.col(*colon.start_point) if colon is not None else 0
    if body.start_point[0] == header_end_line:
        body_indent = " " * (src.col(def_line, node.start_point[1]) + 4)
    else:
        first_line = src.line(body.start_point[0])
        body_indent = first_line[: len(first_line) - len(first_line.lstrip())]
    if doc_node is not None and rest:
        stub_span = Span(doc_node.end_point[0], src.col(*doc_node.end_point), body_span.end_line, body_span.end_col)
    elif doc_node is not None:
        end = src.span(doc_node)
        stub_span = Span(end.end_line, end.end_col, end.end_line, end.end_col)
    else:
        stub_span = body_span
    spec_comment, spec_comment_line = _spec_comment(outer.start_point[0], src)
    return SpecSite(
        name=name,
        qualname=".".join((*scope, name)),
        is_async=any(c.type == "async" for c in node.children),
        class_name=class_name,
        params=params,
        return_annotation=src.node_text(returns) if returns is not None else None,
        decorators=decorators,
        span=src.span(outer),
        name_span=src.span(name_node),
        def_line=def_line,
        header_end_line=header_end_line,
        header_colon_col=header_colon_col,
        body_span=body_span,
        body_indent=body_indent,
        docstring=docstring,
        docstring_line=docstring_line,
        docstring_span=docstring_span,
        spec_comment=spec_comment,
        spec_comment_line=spec_comment_line,
        is_stub=is_stub,
        stub_span=stub_span,
        has_error=node.has_error,
        text=src.node_text(outer),
    )


def _params(node: tree_sitter.Node, src: _Source) -> tuple[ParamSite, ...]:
    params: list[ParamSite] = []
    seen_star = False
    for child in node.named_children:
        kind = ParamKind.KEYWORD_ONLY if seen_star else ParamKind.POSITIONAL_OR_KEYWORD
        annotation = default = None
        target = child
        if child.type == "positional_separator":
            params = [
                ParamSite(p.name, ParamKind.POSITIONAL_ONLY, p.annotation, p.default, p.name_span)
                if p.kind == ParamKind.POSITIONAL_OR_KEYWORD
                else p
                for p in params
            ]
            continue
        if child.type == "keyword_separator":
            seen_star = True
            continue
        if child.type in ("typed_parameter", "typed_default_parameter", "default_parameter"):
            type_node = child.child_by_field_name("type")
            value_node = child.child_by_field_name("value")
            annotation = src.node_text(type_node) if type_node is not None else None
            default = src.node_text(value_node) if value_node is not None else None
            name_node = child.child_by_field_name("name")
            target = (
                name_node if name_node is not None else (child.named_children[0] if child.named_children else child)
            )
        if target.type == "list_splat_pattern":
            kind, seen_star = ParamKind.VAR_POSITIONAL, True
        elif target.type == "dictionary_splat_pattern":
            kind = ParamKind.VAR_KEYWORD
        elif target.type != "identifier":
            continue
        name = src.node_text(target).lstrip("*")
        if name:
            params.append(ParamSite(name, kind, annotation, default, src.span(target)))
    return tuple(params)


def _docstring_node(statement: tree_sitter.Node) -> tree_sitter.Node | None:
    if statement.type != "expression_statement" or statement.named_child_count != 1:
        return None
    child = statement.named_children[0]
    if child.type != "string":
        return None
    start = child.children[0] if child.children else None
    if (
        start is not None
        and start.type == "string_start"
        and "f" in (start.text or b"").decode(errors="replace").lower()
    ):
        return None
    return child


def _string_content(node: tree_sitter.Node, src: _Source) -> str:
    start = next((c for c in node.children if c.type == "string_start"), None)
    end = next((c for c in reversed(node.children) if c.type == "string_end"), None)
    begin = start.end_byte if start is not None else node.start_byte
    finish = end.start_byte if end is not None and end.start_byte >= begin else node.end_byte
    return src.data[begin:finish].decode("utf-8", errors="replace")


def _is_stub_statement(node: tree_sitter.Node, src: _Source) -> bool:
    if node.type == "pass_statement":
        return True
    if node.type == "expression_statement" and node.named_child_count == 1:
        return node.named_children[0].type == "ellipsis"
    if node.type == "raise_statement":
        raised = node.named_children[0] if node.named_children else None
        if raised is None:
            return False
        if raised.type == "call":
            raised = raised.child_by_field_name("function") or raised
        return src.node_text(raised) in STUB_RAISES
    return False


def _spec_comment(first_line: int, src: _Source) -> tuple[str | None, int | None]:
    """A contiguous block of comment lines right above `first_line` holding a `# spec:` line: the text from that
    line to the block's end."""
    row = first_line - 1
    block: list[tuple[int, str]] = []
    while row >= 0:
        stripped = src.line(row).strip()
        if not stripped.startswith("#"):
            break
        block.append((row, stripped))
        row -= 1
    block.reverse()
    for index, (row, stripped) in enumerate(block):
        body = stripped.lstrip("#").strip()
        if body.lower().startswith("spec:"):
            lines = [body[len("spec:") :].strip()]
            lines += [_uncomment(line) for _, line in block[index + 1 :]]
            return "\n".join(lines).strip("\n"), row
    return None, None


def _uncomment(line: str) -> str:
    body = line[1:] if line.startswith("#") else line
    return body[1:] if body.startswith(" ") else body
