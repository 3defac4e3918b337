"""One reader of `>>>` examples (`lift_lsp.spec.examples`, doctest's own parser) for every consumer: the same tricky
docstrings give the same examples, sources, expected outputs and lines to the IR (and its hover), to the doctest
sessions the sandbox worker runs, to the checks' findings and to forward mode's validation."""

from __future__ import annotations

import ast
import doctest
import textwrap

import pytest

from lift_lsp.check.checks import check_text
from lift_lsp.check.example_runs import check_function_examples, has_doctest, unreadable_doctest
from lift_lsp.check.findings import Code
from lift_lsp.check.sandbox import Call, DoctestRun, run_calls
from lift_lsp.options import SandboxOptions
from lift_lsp.spec.docstrings import ParamShape, parse_docstring
from lift_lsp.spec.examples import DocExample, read_examples, refusal
from lift_lsp.spec.ir import Example, ParamKind
from lift_lsp.spec.render import example_text, to_markdown
from lift_lsp.spec.reverse import FunctionIR, extract_file, read_spec

MODULE = textwrap.dedent(
    r'''
    class _Wrong:
        def __repr__(self):
            return "WRONG"


    def directives(x):
        """Directives as doctest reads them from `# doctest:` comments, not from the text.

        >>> directives(1)  # doctest: +SKIP
        1
        >>> directives("+SKIP")
        '+SKIP'
        >>> directives(2)  # doctest: +NORMALIZE_WHITESPACE
        [2,    2]
        >>> directives(3)  # doctest: +ELLIPSIS
        [3, ...]
        >>> directives(4)  # a comment that says +ELLIPSIS
        '...'
        >>> directives(
        ...     5,
        ... )  # doctest: +SKIP
        5
        """
        return _Wrong()


    def continued(x, y):
        """Continuation lines, and an exception's traceback.

        >>> continued(
        ...     1,
        ...     2,
        ... )
        [1, 2]
        >>> continued(0, 0)
        Traceback (most recent call last):
            ...
        ValueError: both zero
        >>> continued(3, 4)
        7
        """
        return _Wrong()


    def printed(x):
        """Printed text with a blank line in it.

        >>> print(printed(2))
        a
        <BLANKLINE>
        b
        >>> printed(3)
        'c'
        """
        return _Wrong()


    def nested(x):
        """Examples indented under a section, with prose below them and >>> inside a line of prose.

        Examples:
            >>> nested(1)
            2
            >>> nested(2) == 4
            True

        Shift with x >>> 2, not an example.
        """
        return _Wrong()


    class Box:
        def size(self, n):
            """A method's examples, deeper still.

            >>> Box().size(3)
            3
            """
            return _Wrong()


    def escaped(s):
        """A docstring that is not raw: a backslash pair is one backslash, read as doctest reads it.

        >>> escaped("a\\nb")
        ['a', 'b']
        """
        return _Wrong()


    def broken(s):
        """A docstring that is not raw with a line break inside an example's string: doctest refuses it.

        >>> broken("a\nb")
        ['a', 'b']
        >>> broken("c")
        ['c']
        """
        return _Wrong()
    '''
)
FILE = "examples_module.py"
READABLE = ["directives", "continued", "printed", "nested", "Box.size", "escaped"]
"""The functions whose docstrings doctest reads; `broken`'s it refuses."""
EXAMPLE_CODES = {Code.EXAMPLE_WRONG_RESULT, Code.EXAMPLE_MISSING_RAISE, Code.EXAMPLE_UNEXPECTED_RAISE}


def _functions() -> dict[str, FunctionIR]:
    return {f.function: f for f in extract_file(MODULE, FILE, types=False) if f.function != "_Wrong.__repr__"}


def _value(function: FunctionIR) -> str:
    """The docstring as Python has it (what doctest reads in the worker)."""
    tree = ast.parse(MODULE)
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function.site.name)
    docstring = ast.get_docstring(node, clean=False)
    assert docstring is not None
    return docstring


def _doctest_examples(text: str) -> list[DocExample]:
    """The standard library's own reading, as the oracle."""
    return [DocExample.of(e) for e in doctest.DocTestParser().get_examples(text)]


def _file_line(function: FunctionIR, example: DocExample) -> int:
    """The 1-based file line of the example's `>>>`."""
    assert function.site.docstring_line is not None
    return function.site.docstring_line + example.line + 1


def _ir_view(function: FunctionIR, example: DocExample) -> tuple[int, str, str | None, str | None]:
    """What the IR must hold of a doctest example: (line, call, result, raises), from the reader's source and want."""
    statement = ast.parse(example.source).body[0]
    assert isinstance(statement, ast.Expr)
    expr = statement.value
    result: str | None = example.expected.strip()
    raises = None
    if example.exc_msg is not None:
        raises, result = example.exc_msg.split(":")[0], None
    elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "print":
        expr, result = ast.Call(ast.Name("str", ast.Load()), expr.args, []), repr(example.expected.removesuffix("\n"))
    elif isinstance(expr, ast.Compare) and result == "True":
        expr, result = expr.left, ast.unparse(expr.comparators[0])
    return _file_line(function, example), ast.dump(expr), result, raises


def _ir_example(example: Example) -> tuple[int, str, str | None, str | None]:
    assert example.line is not None
    return example.line, ast.dump(ast.parse(example.call, mode="eval").body), example.result, example.raises


def _held(examples: list[DocExample]) -> list[DocExample]:
    """The examples the IR can hold: not skipped, and no `...` that ELLIPSIS makes a wildcard."""
    return [e for e in examples if not e.skipped() and not (e.flag(doctest.ELLIPSIS) and "..." in e.want)]


@pytest.fixture(scope="module")
def sessions() -> dict[str, DoctestRun]:
    """The doctest session the sandbox worker runs for each function."""
    names = [*READABLE, "broken"]
    outcomes = run_calls(MODULE, [Call(id=name, doctest=name) for name in names], filename=FILE)
    runs = {name: outcome.doctests[0] for name, outcome in zip(names, outcomes, strict=True)}
    assert set(runs) == set(names), outcomes
    return runs


def test_the_reader_reads_as_doctest_and_finds_every_tricky_case() -> None:
    functions = _functions()
    assert sorted(functions) == sorted([*READABLE, "broken"])
    read = {name: read_examples(_value(functions[name])) for name in READABLE}
    for name in READABLE:
        assert read[name] == _doctest_examples(_value(functions[name])), name
    directives = read["directives"]
    assert [e.skipped() for e in directives] == [True, False, False, False, False, True]
    assert directives[1].source == 'directives("+SKIP")\n' and directives[1].options == ()
    assert directives[2].flag(doctest.NORMALIZE_WHITESPACE) and not directives[4].flag(doctest.ELLIPSIS)
    assert directives[5].source == "directives(\n    5,\n)  # doctest: +SKIP\n"
    traceback = read["continued"][1]
    assert traceback.exc_msg == "ValueError: both zero\n"
    assert traceback.want.startswith("Traceback (most recent call last):")
    assert read["printed"][0].want == "a\n<BLANKLINE>\nb\n" and read["printed"][0].expected == "a\n\nb\n"
    assert [e.source for e in read["nested"]] == ["nested(1)\n", "nested(2) == 4\n"]
    assert read["escaped"][0].source == 'escaped("a\\nb")\n'
    broken = _value(functions["broken"])
    assert refusal(broken) is not None and "inconsistent leading whitespace" in str(refusal(broken))
    # each block alone, up to the line the string's break leaves at the margin
    alone = [(2, 'broken("a\n', ""), (5, 'broken("c")\n', "['c']\n")]
    assert [(e.line, e.source, e.want) for e in read_examples(broken)] == alone


def test_the_ir_and_its_hover_hold_the_examples_the_reader_reads() -> None:
    functions = _functions()
    for name in READABLE:
        function = functions[name]
        held = _held(read_examples(_value(function)))
        assert [_ir_example(e) for e in function.doc.examples] == [_ir_view(function, e) for e in held], name
        assert [_ir_example(e) for e in function.ir.examples] == [_ir_example(e) for e in function.doc.examples]
        hover = to_markdown(function.ir)
        assert all(example_text(e) in hover for e in function.ir.examples), name
    shapes = [ParamShape("x", ParamKind.POSITIONAL_OR_KEYWORD)]
    parsed = parse_docstring(_value(functions["directives"]), "directives", shapes)
    assert [e.call for e in parsed.examples] == ['directives("+SKIP")', "directives(2)", "directives(4)"]


def test_an_unreadable_docstring_is_read_from_its_source_by_the_ir_and_refused_by_the_checks() -> None:
    function = _functions()["broken"]
    assert function.site.docstring is not None and unreadable_doctest(function.site) is not None
    source_read = read_examples(function.site.docstring)  # `\n` as written: the IR reads the source text
    assert [e.source for e in source_read] == ['broken("a\\nb")\n', 'broken("c")\n']
    assert [_ir_example(e) for e in function.doc.examples] == [_ir_view(function, e) for e in source_read]


def test_the_worker_runs_the_examples_the_reader_reads(sessions: dict[str, DoctestRun]) -> None:
    functions = _functions()
    for name in READABLE:
        read = read_examples(_value(functions[name]))
        run = sessions[name]
        assert run.unreadable is None, name
        assert [(e.line, e.source, e.want) for e in run.examples] == [(e.line, e.source, e.want) for e in read], name
        assert sorted(run.skipped) == [k for k, e in enumerate(read) if e.skipped()], name
        assert run.line == functions[name].site.docstring_line, name
    broken = sessions["broken"]
    assert broken.examples == () and broken.unreadable is not None
    assert broken.unreadable == refusal(_value(functions["broken"]), "__lift__.broken")


def test_the_checks_report_each_example_the_reader_reads_at_its_line() -> None:
    functions = _functions()
    found = check_text(MODULE, FILE)
    by_function: dict[str, list[int]] = {}
    for finding in found:
        if finding.code in EXAMPLE_CODES:
            by_function.setdefault(finding.function, []).append(finding.line)
    for name in READABLE:
        function = functions[name]
        assert has_doctest(function.site), name
        read = [e for e in read_examples(_value(function)) if not e.skipped()]
        assert sorted(by_function.get(name, [])) == [_file_line(function, e) for e in read], name
    refused = [f for f in found if f.function == "broken"]
    assert [f.code for f in refused] == [Code.MODULE_FAILED] and "doctest cannot read" in refused[0].message


@pytest.mark.parametrize("name", ["continued", "broken"])
def test_forward_mode_validates_with_the_examples_the_reader_reads(name: str) -> None:
    """Forward mode takes its examples from the spec (`read_spec`) and checks a candidate with the doctest session,
    or, where doctest refuses the docstring, with each example the IR read, by value."""
    function = _functions()[name]
    doc = read_spec(function.site)
    assert [_ir_example(e) for e in doc.examples] == [_ir_example(e) for e in function.doc.examples]
    findings = check_function_examples(MODULE, FILE, function.site, doc, SandboxOptions())
    lines = sorted(f.line for f in findings if f.code in EXAMPLE_CODES)
    if name == "broken":
        assert lines == [e.line for e in doc.examples]
    else:
        read = [e for e in read_examples(_value(function)) if not e.skipped()]
        assert lines == [_file_line(function, e) for e in read]
