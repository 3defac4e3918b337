"""`parse_docstring`: the section styles, every example form, contracts, line numbers, and bad input."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lift_lsp.spec.docstrings import DocSpec, ParamShape, parse_docstring
from lift_lsp.spec.ir import Example, ParamKind
from lift_lsp.spec.render import to_markdown
from lift_lsp.spec.reverse import extract_file
from lift_lsp.spec.sections import annotation_of

P = ParamKind.POSITIONAL_OR_KEYWORD
XY = [ParamShape("x", P), ParamShape("y", P, has_default=True)]


def parse(text: str, name: str = "f", params: list[ParamShape] | None = None) -> DocSpec:
    return parse_docstring(text, name, XY if params is None else params)


def triples(doc: DocSpec) -> list[tuple[str, str | None, str | None]]:
    return [(e.call, e.result, e.raises) for e in doc.examples]


def only(doc: DocSpec) -> Example:
    assert len(doc.examples) == 1, doc.examples
    return doc.examples[0]


# ---------------------------------------------------------------------- section styles


def test_google_sections() -> None:
    doc = parse(
        """Scale a value.

        Longer explanation of the scaling,
        over two lines.

        Args:
            x (int): The value to scale,
                never negative.
            y (float, optional): The factor.
            *rest: Ignored.

        Returns:
            float: The scaled value.

        Raises:
            ValueError: If `x` is negative.
            TypeError: If `y` is not a number.
        """
    )
    assert doc.style == "google"
    assert doc.summary == "Scale a value."
    assert doc.details == "Longer explanation of the scaling,\nover two lines."
    assert [(p.name, p.type, p.description) for p in doc.params] == [
        ("x", "int", "The value to scale, never negative."),
        ("y", "float", "The factor."),
        ("rest", None, "Ignored."),
    ]
    assert (doc.returns_type, doc.returns_description) == ("float", "The scaled value.")
    assert [(r.exception, r.when) for r in doc.raises] == [
        ("ValueError", "If `x` is negative."),
        ("TypeError", "If `y` is not a number."),
    ]


def test_google_returns_without_a_type_and_inline_sections() -> None:
    doc = parse("Count.\n\n    Returns: the number of items.\n    Raises: KeyError\n    ")
    assert doc.returns_type is None
    assert doc.returns_description == "the number of items."
    assert [r.exception for r in doc.raises] == ["KeyError"]


def test_google_yields_without_a_colon_is_a_description_as_its_parsers_read_it() -> None:
    doc = parse("Walk.\n\n    Yields:\n        list[int] | None\n    ")
    assert (doc.style, doc.returns_type, doc.returns_description) == ("google", None, "list[int] | None")


def test_raises_entries_in_prose() -> None:
    doc = parse(
        "Do.\n\n    Raises:\n        ValueError if x < 0\n        If y is bad, a KeyError.\n        BadThing\n    "
    )
    assert [(r.exception, r.when) for r in doc.raises] == [
        ("ValueError", "if x < 0"),
        ("KeyError", "If y is bad, a KeyError."),
        ("BadThing", ""),
    ]


def test_numpy_sections() -> None:
    doc = parse(
        """
        Scale a value.

        Parameters
        ----------
        x : int
            The value to scale.
        y, z : float, optional
            Factors.

        Returns
        -------
        result : float
            The scaled value.

        Raises
        ------
        ValueError
            If x is negative.

        Examples
        --------
        >>> f(2, 3.0)
        6.0
        """
    )
    assert doc.style == "numpy"
    assert doc.summary == "Scale a value."
    assert doc.details == ""
    assert [(p.name, p.type, p.annotation, p.description) for p in doc.params] == [
        ("x", "int", "int", "The value to scale."),
        ("y", "float, optional", "float", "Factors."),
        ("z", "float, optional", "float", "Factors."),
    ]
    assert (doc.returns_type, doc.returns_description) == ("float", "The scaled value.")
    assert [(r.exception, r.when) for r in doc.raises] == [("ValueError", "If x is negative.")]
    assert triples(doc) == [("f(2, 3.0)", "6.0", None)]


def test_numpy_unknown_section_is_prose() -> None:
    doc = parse("Do it.\n\n    Notes\n    -----\n    Slow for big inputs.\n    ")
    assert doc.style == "plain"
    assert doc.details == "Notes\n-----\nSlow for big inputs."


def test_rest_fields() -> None:
    doc = parse(
        """Scale a value.

        :param int x: The value
            to scale.
        :param y: The factor.
        :type y: float
        :returns: The scaled value.
        :rtype: float
        :raises ValueError: If x is negative.
        """
    )
    assert doc.style == "rest"
    assert [(p.name, p.type, p.description) for p in doc.params] == [
        ("x", "int", "The value to scale."),
        ("y", "float", "The factor."),
    ]
    assert (doc.returns_type, doc.returns_description) == ("float", "The scaled value.")
    assert [(r.exception, r.when) for r in doc.raises] == [("ValueError", "If x is negative.")]


def test_plain_summary_and_details() -> None:
    doc = parse("Add two   numbers\n    and return the sum.\n\n    It never fails.\n\n    Really.\n    ")
    assert doc.style == "plain"
    assert doc.summary == "Add two numbers and return the sum."
    assert doc.details == "It never fails.\n\nReally."


def test_a_long_first_paragraph_gives_its_first_sentence_as_summary() -> None:
    words = " ".join(["word"] * 40)
    doc = parse(f"Compute the thing. Then {words}.")
    assert doc.summary == "Compute the thing."
    assert doc.details == f"Then {words}."


# ---------------------------------------------------------------------- doctests


def test_doctest_examples_with_arguments() -> None:
    doc = parse("Add.\n\n    >>> f(1, y=2)\n    3\n    >>> f('a')\n    'a'\n    ")
    assert triples(doc) == [("f(1, y=2)", "3", None), ("f('a')", "'a'", None)]
    assert [e.args for e in doc.examples] == [{"x": "1", "y": "2"}, {"x": "'a'"}]


def test_multiline_doctest_source_and_output() -> None:
    doc = parse("Pairs.\n\n    >>> f([1,\n    ...    2])\n    [(1, 2),\n     (2, 1)]\n\n    Done.\n    ")
    example = only(doc)
    assert example.call == "f([1,\n   2])"
    assert example.result == "[(1, 2),\n (2, 1)]"
    assert example.args == {"x": "[1,\n   2]"}
    assert doc.details == "Done."


def test_doctest_traceback_gives_the_exception() -> None:
    doc = parse(
        """Check.

        >>> f(-1)
        Traceback (most recent call last):
            ...
        ValueError: x must be positive
        """
    )
    assert triples(doc) == [("f(-1)", None, "ValueError")]


@pytest.mark.parametrize(
    "source",
    [">>> f(2) == 4\n    True", ">>> f(2) == 4", ">>> assert f(2) == 4", ">>> 4 == f(2)"],
)
def test_doctest_equality_is_an_example(source: str) -> None:
    example = only(parse(f"Double.\n\n    {source}\n    "))
    assert (example.call, example.result, example.args) == ("f(2)", "4", {"x": "2"})


def test_doctest_without_output_shows_none_and_comments_are_dropped() -> None:
    assert triples(parse("Nothing.\n\n    >>> f([])  # empty\n    ")) == [("f([])", "None", None)]


def test_doctest_print_compares_the_text() -> None:
    assert triples(parse("Show.\n\n    >>> print(f(2))\n    two lines\n    of text\n    ")) == [
        ("str(f(2))", repr("two lines\nof text"), None)
    ]


def test_doctest_keeps_a_wrapping_call_and_skips_others() -> None:
    doc = parse(
        """Sort.

        >>> sorted(f([3, 1]))
        [1, 3]
        >>> len('abc')
        3
        >>> items = [2, 1]
        >>> f(items)
        [1, 2]
        """
    )
    example = only(doc)
    assert (example.call, example.result, example.args) == ("sorted(f([3, 1]))", "[1, 3]", {"x": "[3, 1]"})


def test_doctest_examples_needing_earlier_statements_are_skipped() -> None:
    doc = parse_docstring(
        "Push.\n\n    >>> s = Stack()\n    >>> s.push(1)\n    1\n    >>> Stack().push(2)\n    1\n    ",
        "push",
        [ParamShape("self", P), ParamShape("item", P)],
    )
    assert triples(doc) == [("Stack().push(2)", "1", None)]


def test_doctest_unparseable_output_and_skipped_examples_are_skipped() -> None:
    assert (
        parse("Show.\n\n    >>> f(1)\n    <object at 0x1>\n    >>> f(2)  # doctest: +SKIP\n    2\n    ").examples == []
    )


# ---------------------------------------------------------------------- prose examples


@pytest.mark.parametrize(
    "line",
    [
        "f(3) ➞ 9",
        "f(3) => 9",
        "f(3) ==> 9",
        "f(3) -> 9",
        "f(3) == 9",
        "f(3) = 9",
        "f(3) returns 9",
        "f(3) should return 9.",
        "For example: f(3) -> 9",
        "Example: f(3) -> 9",
        "- f(3) -> 9",
        "* f(3) == 9",
        "f(3)   # returns 9",
        "f(3) -> 9 (three squared)",
        "f(3) -> 1 + 8 = 9",
    ],
)
def test_prose_example_forms(line: str) -> None:
    doc = parse(f"Square.\n\n    {line}\n    ")
    example = only(doc)
    assert (example.call, example.args, example.line) == ("f(3)", {"x": "3"}, 2)
    assert example.result == "9"
    assert doc.details == ""


def test_prose_example_section() -> None:
    doc = parse(
        """Square.

        Examples:
            f(2) -> 4
            f(-1) -> 1
        """
    )
    assert triples(doc) == [("f(2)", "4", None), ("f(-1)", "1", None)]
    assert [e.line for e in doc.examples] == [3, 4]


@pytest.mark.parametrize("sep", [",", ";"])
def test_several_prose_examples_on_one_line(sep: str) -> None:
    doc = parse(f"Add.\n\n    f(1, 2) -> 3{sep} f(2, 2) -> 4{sep} f('a', 'b') == 'ab'\n    ")
    assert triples(doc) == [("f(1, 2)", "3", None), ("f(2, 2)", "4", None), ("f('a', 'b')", "'ab'", None)]


def test_prose_example_with_brackets_in_prefixed_strings() -> None:
    assert triples(parse("Count.\n\n    f(b\"((\") -> 2, f(r'[') -> 1\n    ")) == [
        ('f(b"((")', "2", None),
        ("f(r'[')", "1", None),
    ]


def test_prose_result_with_a_comma_stays_whole() -> None:
    assert triples(parse("Pair.\n\n    f(1) -> 1, 2\n    ")) == [("f(1)", "1, 2", None)]


def test_prose_true_false_none_are_normalised() -> None:
    doc = parse("Check.\n\n    f(1) => true\n    f(2) => false\n    f(3) -> none\n    f(4) -> (true, null)\n    ")
    assert [e.result for e in doc.examples] == ["True", "False", "None", "(True, None)"]


def test_prose_example_over_several_lines() -> None:
    doc = parse("Rows.\n\n    f([\n      [1, 2],\n      [3, 4]\n    ], 1) == [(0, 0)]\n    Done.\n    ")
    example = only(doc)
    assert example.call == "f([ [1, 2], [3, 4] ], 1)"
    assert (example.result, example.line, example.args["y"]) == ("[(0, 0)]", 2, "1")
    assert doc.details == "Done."


@pytest.mark.parametrize(
    "line",
    [
        "g(3) -> 9",  # another function
        "f(n) = f(n - 1) + 1",  # a recurrence over the parameter, not an example
        "f(3) -> the square of three",  # prose result
        'f(3) == ""9"',  # result does not parse
        "Write a function f() that returns the square.",
        "f(3) is 9",  # no example operator
        "f(a) => False",  # `a` is a word, not a value
        "f(len('ab')) -> 4",  # not a literal argument
    ],
)
def test_not_prose_examples(line: str) -> None:
    doc = parse(f"Square.\n\n    {line}\n    ", params=[ParamShape("n", P)])
    assert doc.examples == []
    assert doc.details == line


N = [ParamShape("n", P)]
ARR_K = [ParamShape("arr", P), ParamShape("k", P)]


@pytest.mark.parametrize(
    ("text", "params", "expected"),
    [
        ("Pluck.\n\n    Example 1:\n        Input: [4,2,3]\n        Output: [2, 1]\n", N, [("f([4,2,3])", "[2, 1]")]),
        (
            "Top k.\n\n    Input: arr = [-3, -4, 5], k = 3\n    Output: [-4, -3, 5]\n\n"
            "    Input: k = 1, arr = [2]\n    Output: 24 # sum of 21 + 3\n",
            ARR_K,
            [("f([-3, -4, 5], 3)", "[-4, -3, 5]"), ("f([2], 1)", "24")],
        ),
        (  # `name : value` lines; a name that is no parameter takes the next parameter in order
            "Fill.\n\n    Input:\n        arr : [[0, 1]]\n        bucket_capacity : 2\n    Output: 5\n",
            ARR_K,
            [("f([[0, 1]], 2)", "5")],
        ),
        (
            'Hex.\n\n    For n = "AB" the output should be 1.\n'
            "    For arr = [1], k = 2, the result should be (1, False)\n"
            '    For n = 150, the sum of digits will be 6 the output should be "110".\n',
            [ParamShape("n", P), ParamShape("k", P, has_default=True)],
            [('f("AB")', "1"), ("f([1], 2)", "(1, False)"), ("f(150)", '"110"')],
        ),
        (  # a walkthrough: the input, its steps, then what is returned
            'Sort.\n\n    arr = [2, 1]\n          -> sort arr -> [1, 2]\n    return ["One", "Two"]\n\n'
            "    arr = []\n    return = []\n",
            [ParamShape("arr", P)],
            [("f([2, 1])", '["One", "Two"]'), ("f([])", "[]")],
        ),
    ],
)
def test_examples_stated_without_a_call(text: str, params: list[ParamShape], expected: list[tuple[str, str]]) -> None:
    doc = parse(text, params=params)
    assert [(e.call, e.result) for e in doc.examples] == expected


def test_stated_example_lines_and_arguments() -> None:
    doc = parse("Top k.\n\n    Example:\n        Input: arr = [1, 2], k = 1\n        Output: [2]\n    ", params=ARR_K)
    assert only(doc).line == 3 and only(doc).args == {"arr": "[1, 2]", "k": "1"}


@pytest.mark.parametrize(
    "text",
    [
        "Sort.\n\n    Input: arr\n    Output: the sorted list\n",  # no values
        "Sort.\n\n    Input: [1], [2], [3]\n    Output: [1]\n",  # more values than parameters
        "Sort.\n\n    Input: [1]\n\n    Output: [1]\n",  # a blank line between them
        "Sort.\n\n    other = [2, 1]\n    return [1, 2]\n",  # not a parameter
        "Sort.\n\n    For each x = 1 the output should be 2.\n",  # no value before the output
    ],
)
def test_not_stated_examples(text: str) -> None:
    assert parse(text, params=[ParamShape("arr", P)]).examples == []


def test_examples_named_after_another_function() -> None:
    text = (
        "Grades.\n\n    Example:\n    grade_equation([4.0, 3]) ==> ['A+', 'B']\n    assert grade_equation([]) => []\n"
    )
    doc = parse(text, name="numerical_letter_grade", params=[ParamShape("grades", P)])
    assert triples(doc) == [
        ("numerical_letter_grade([4.0, 3])", "['A+', 'B']", None),
        ("numerical_letter_grade([])", "[]", None),
    ]
    assert doc.examples[0].args == {"grades": "[4.0, 3]"}
    # Not when the function's own examples are there, nor outside an examples section.
    assert len(parse(text + "    numerical_letter_grade([1]) -> ['D+']\n", name="numerical_letter_grade").examples) == 1
    assert parse(text.replace("Example:", "Note:"), name="numerical_letter_grade").examples == []


TRIBONACCI = """Tribonacci.

    tri(1) = 3
    tri(n) = 1 + n / 2, if n is even.
    For example:
    tri(2) = 1 + (2 / 2) = 2
    tri(4) = 3
    You have to a return a list of the first n + 1 numbers.
    Examples:
    tri(3) = [1, 3, 2, 8]
    """


@pytest.mark.parametrize("returns", [None, "list[int]", "List[int]", "Optional[list]"])
def test_prose_examples_whose_result_does_not_fit_the_return_type_are_left_out(returns: str | None) -> None:
    doc = parse_docstring(TRIBONACCI, "tri", N, returns)  # the prose says `return a list` when unannotated
    assert triples(doc) == [("tri(3)", "[1, 3, 2, 8]", None)]


def test_the_return_type_filter() -> None:
    every = [("tri(1)", "3", None), ("tri(2)", "2", None), ("tri(4)", "3", None), ("tri(3)", "[1, 3, 2, 8]", None)]
    # Unknown or permissive types keep every example; `int` keeps the numbers; a float return takes ints too.
    for returns in ("Any", "int | list[int]", "MyList"):
        assert triples(parse_docstring(TRIBONACCI, "tri", N, returns)) == every, returns
    assert triples(parse_docstring(TRIBONACCI, "tri", N, "int")) == every[:3]
    assert triples(parse_docstring(TRIBONACCI, "tri", N, "float")) == every[:3]
    # The doctests' results tell the type when nothing else does; doctests themselves are never left out.
    text = "Halve.\n\n    >>> f(4)\n    2.0\n\n    f(2) -> [1]\n    f(6) -> 3\n\n    >>> f(1)\n    'x'\n    "
    assert triples(parse(text, params=N)) == [("f(4)", "2.0", None), ("f(6)", "3", None), ("f(1)", "'x'", None)]


def test_prose_example_with_a_wrapping_call_and_trailing_period() -> None:
    example = only(parse("Sort.\n\n    sorted(f([3, 1])) == [1, 3].\n    "))
    assert (example.call, example.result, example.args) == ("sorted(f([3, 1]))", "[1, 3]", {"x": "[3, 1]"})


def test_intro_lines_and_example_comments_are_not_prose() -> None:
    doc = parse("Fly.\n\n    Some samples:\n    f(1) -> 2\n    # one more than one\n    After.\n    ")
    assert triples(doc) == [("f(1)", "2", None)]
    assert doc.details == "After."


# ---------------------------------------------------------------------- arguments


def test_arguments_map_to_var_positional_and_var_keyword() -> None:
    params = [
        ParamShape("a", ParamKind.POSITIONAL_ONLY),
        ParamShape("rest", ParamKind.VAR_POSITIONAL),
        ParamShape("key", ParamKind.KEYWORD_ONLY, has_default=True),
        ParamShape("options", ParamKind.VAR_KEYWORD),
    ]
    doc = parse_docstring(
        "Join.\n\n    >>> join(1, 2, 3, key=str, sep='-')\n    '1-2-3'\n    >>> join(1, 2)\n    '1-2'\n    ",
        "join",
        params,
    )
    assert [e.args for e in doc.examples] == [
        {"a": "1", "rest": "(2, 3)", "key": "str", "options": "{'sep': '-'}"},
        {"a": "1", "rest": "(2,)"},
    ]


def test_method_arguments_skip_self() -> None:
    params = [ParamShape("self", P), ParamShape("item", P)]
    doc = parse_docstring("Push.\n\n    >>> Stack().push(3)\n    1\n    ", "push", params)
    assert doc.examples[0].args == {"item": "3"}


def test_starred_call_arguments_are_not_mapped() -> None:
    assert only(parse("Add.\n\n    >>> f(*[1, 2])\n    3\n    ")).args == {}


# ---------------------------------------------------------------------- contracts


def test_pep316_contracts() -> None:
    doc = parse(
        """Root.

        pre: x >= 0
        post: __return__ * __return__ <= x
        post[x]: abs(_ - x ** 0.5) < 1e-9
        raises: ValueError, TypeError
        """
    )
    assert [(c.expr, c.text) for c in doc.preconditions] == [("x >= 0", "pre: x >= 0")]
    assert [c.expr for c in doc.postconditions] == ["result * result <= x", "abs(result - x ** 0.5) < 1e-9"]
    assert doc.postconditions[0].text == "post: __return__ * __return__ <= x"
    assert [r.exception for r in doc.raises] == ["ValueError", "TypeError"]
    assert doc.details == ""


def test_requires_and_ensures_lines_and_sections() -> None:
    doc = parse(
        """Root.

        Requires: x > 0
        Ensures:
            - result >= 0
            - the result is rounded down
        Precondition: all(v > 0 for v in y)
        Postcondition: x is positive
        """
    )
    assert [(c.expr, c.text) for c in doc.preconditions] == [
        ("x > 0", "Requires: x > 0"),
        ("all(v > 0 for v in y)", "Precondition: all(v > 0 for v in y)"),
    ]
    assert [(c.expr, c.text) for c in doc.postconditions] == [
        ("result >= 0", "result >= 0"),
        ("", "the result is rounded down"),
        ("", "x is positive"),
    ]


# ---------------------------------------------------------------------- lines, bounds, bad input


def test_example_lines_are_0_based_within_the_text() -> None:
    text = "Square.\r\n\r\n    >>> f(2)\r\n    4\r\n\r    f(3) -> 9\n\n    >>> f(4)\r\n    16\r\n    "
    assert [e.line for e in parse(text).examples] == [2, 5, 7]
    assert [e.line for e in parse(">>> f(1)\n1").examples] == [0]


def test_long_examples_are_kept_for_the_caller_to_fit() -> None:
    big = "[" + ", ".join(["1"] * 200) + "]"
    example = only(parse(f"Sum.\n\n    >>> f({big})\n    200\n    "))
    assert example.args == {"x": big}
    assert len(example.call) > 300


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\x00\x00",
        "(" * 5000 + "f(1) -> 2",
        ">>> f(" * 300,
        ">>>",
        "Args:\n    :\n  (\nReturns:\nRaises:\n",
        "Parameters\n----------\n",
        "f(1) -> 'unterminated\n f(2) -> \"",
        "x" * 300_000,
        "é✓ f(1) ➞ ✓\n" * 200,
        "pre: (((\npost: _ _\nraises:\n:param:\n:raises:",
        "\t>>> f(1)\n\t\t...\n\t1",
    ],
)
def test_bad_input_never_raises(text: str) -> None:
    """Neither the parser nor the path from a function's source to its hover raises; nothing is made up."""
    doc = parse(text)
    for example in doc.examples:
        assert example.call in text and example.line is not None and 0 <= example.line <= text.count("\n")
    (fir,) = extract_file(f"def f(x, y=1):\n    {text!r}\n", types=False)
    assert fir.ir.signature.name == "f" and to_markdown(fir.ir).startswith("```python\ndef f(x, y=1)")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("f(x)[]{}'\"#:=->➞ \n\t.,;>*-_0123456789abcTrueArgs")), max_size=200))
def test_random_text_never_raises(text: str) -> None:
    doc = parse(text)
    for example in doc.examples:
        assert example.line is not None and 0 <= example.line <= text.count("\n") + text.count("\r")


def test_a_prose_condition_over_two_lines_is_one_condition() -> None:
    doc = parse(
        "Do.\n\n    Requires:\n        every value has a type set, and the type\n"
        "        matches the signature.\n        x > 0\n    "
    )
    assert [(c.expr, c.text) for c in doc.preconditions] == [
        ("", "every value has a type set, and the type matches the signature."),
        ("x > 0", "x > 0"),
    ]


# ---------------------------------------------------------------------- each style as its own parser reads it


def test_numpy_return_types_as_written_and_several_returns() -> None:
    doc = parse("Split.\n\n    Returns\n    -------\n    list of str\n        The words.\n    ")
    assert (doc.returns_type, doc.returns_annotation) == ("list of str", "list[str]")
    assert doc.returns_description == "The words."
    doc = parse("Pair.\n\n    Returns\n    -------\n    q : int\n        Quotient.\n    r : int\n        Rest.\n    ")
    assert (doc.returns_type, doc.returns_description) == ("(int, int)", "q: Quotient.; r: Rest.")


@pytest.mark.parametrize("underline", ["~~~~~~~~~~", "==========", "^^^^^^^^^^", "----"])
def test_numpy_section_underlined_with_any_character(underline: str) -> None:
    doc = parse(f"Do.\n\n    Parameters\n    {underline}\n    x : int\n        The value.\n    ")
    assert [(p.name, p.type, p.description) for p in doc.params] == [("x", "int", "The value.")]
    assert doc.details == ""


def numpy_params(body: str) -> list[tuple[str, str | None, str | None, str]]:
    doc = parse(f"Do.\n\n    Parameters\n    ----------\n{textwrap.indent(textwrap.dedent(body), '    ')}")
    assert doc.style == "numpy"
    return [(p.name, p.type, p.annotation, p.description) for p in doc.params]


@pytest.mark.parametrize(
    ("line", "expected"),
    [  # lines from networkx and pandas: numpydoc reads each whole as a name
        ("y: string ('in','out')", [("y", "string ('in','out')", None)]),
        ("nodes: list or iterable (optional)", [("nodes", "list or iterable (optional)", "list | Iterable")]),
        ("G: NetworkX graph", [("G", "NetworkX graph", None)]),
        ("G, H: graphs", [("G", "graphs", None), ("H", "graphs", None)]),
        (
            "accessor_mapping: Callable, default lambda x: x",
            [("accessor_mapping", "Callable, default lambda x: x", "Callable")],
        ),
        ("d:int", [("d", "int", "int")]),
        ("**kwargs:", [("kwargs", None, None)]),
        ("args: tuple", [("args", "tuple", "tuple")]),  # named as Google's `Args:` and numpydoc's `index` are
        ("params: str", [("params", "str", "str")]),
        ("index: Index", [("index", "Index", "Index")]),
    ],
)
def test_numpy_parameter_without_the_space_before_the_colon_is_the_name_then_the_type(
    line: str, expected: list[tuple[str, str | None, str | None]]
) -> None:
    read = numpy_params(f"{line}\n    The value.\nz : int\n    Last.\n")
    described = [(name, written, annotation, "The value.") for name, written, annotation in expected]
    assert read == [*described, ("z", "int", "int", "Last.")]


def test_numpy_colons_that_name_no_parameter_stay_as_numpydoc_reads_them() -> None:
    described = "x : int\n    Examples: see below. Note: slow for big x.\ny: float\n    Default: 1.0\n"
    assert numpy_params(described) == [
        ("x", "int", "int", "Examples: see below. Note: slow for big x."),
        ("y", "float", "float", "Default: 1.0"),
    ]
    not_names = (
        "x : int\n    The value.\nExamples:\n    f(1)\nSupported values: a or b\n    More.\nhttp://example.org\n"
    )
    assert [name for name, *_ in numpy_params(not_names)] == [
        "x",
        "Examples:",
        "Supported values: a or b",
        "http://example.org",
    ]
    assert numpy_params("x : dict, e.g. {a: 1}\n    The map.\n") == [("x", "dict, e.g. {a: 1}", None, "The map.")]


def test_a_first_line_repeating_the_signature_is_skipped_as_numpydoc_does() -> None:
    doc = parse("f(x, y=None)\n\n    Add the values.\n\n    Parameters\n    ----------\n    x : int\n    ")
    assert (doc.summary, doc.style, [p.name for p in doc.params]) == ("Add the values.", "numpy", ["x"])
    assert parse("f(x)").summary == "f(x)"  # nothing follows it: it is all the docstring says


def test_epydoc_fields() -> None:
    doc = parse(
        """Scale a value.

        @param x: The value
            to scale.
        @type x: C{int}
        @param y: The factor.
        @type y: L{float} or C{None}
        @return: The scaled value.
        @rtype: C{list} of C{float}
        @raise ValueError: If x is negative.
        @see: elsewhere
        """
    )
    assert doc.style == "epydoc"
    assert [(p.name, p.type, p.annotation, p.description) for p in doc.params] == [
        ("x", "C{int}", "int", "The value to scale."),
        ("y", "L{float} or C{None}", "float | None", "The factor."),
    ]
    assert (doc.returns_type, doc.returns_annotation, doc.returns_description) == (
        "C{list} of C{float}",
        "list[float]",
        "The scaled value.",
    )
    assert [(r.exception, r.when) for r in doc.raises] == [("ValueError", "If x is negative.")]
    assert doc.details == ""


def test_rest_raises_without_a_type_names_the_exception_from_its_text() -> None:
    doc = parse("Do.\n\n    :raises: ValueError if x is negative\n    ")
    assert [(r.exception, r.when) for r in doc.raises] == [("ValueError", "if x is negative")]


def test_google_types_as_written_with_their_annotation() -> None:
    doc = parse(
        """Load.

        Args:
            x (`int`, *optional*, defaults to 1): How many.
            y (Sequence(str)): The names.

        Returns:
            ~google.auth.credentials.Credentials: The credentials.
        """
    )
    assert [(p.type, p.annotation) for p in doc.params] == [
        ("`int`, *optional*, defaults to 1", "int"),
        ("Sequence(str)", "Sequence[str]"),
    ]
    assert (doc.returns_type, doc.returns_annotation) == (
        "~google.auth.credentials.Credentials",
        "google.auth.credentials.Credentials",
    )


@pytest.mark.parametrize(
    ("written", "annotation"),
    [
        ("int", "int"),
        ("int, optional", "int"),
        ("bool, default=True", "bool"),
        ("str or None", "str | None"),
        ("int or float, optional", "int | float"),
        ("list of str", "list[str]"),
        ("list of strings", "list[str]"),
        ("str or list of str", "str | list[str]"),
        ("dict of {str: int}", "dict[str, int]"),
        ("dict mapping str to int", "dict[str, int]"),
        ("tuple of (int, int)", "tuple[int, int]"),
        ("{'linear', 'nearest'}, default 'linear'", "Literal['linear', 'nearest']"),
        ("{dict, None}", "dict | None"),
        ("Sequence(str)", "Sequence[str]"),
        ("~a.b.Credentials", "a.b.Credentials"),
        (":class:`~pandas.DataFrame`", "pandas.DataFrame"),
        ("`torch.LongTensor` of shape `(batch_size, sequence_length)`", "torch.LongTensor"),
        ("C{list} of L{bytes}", "list[bytes]"),
        ("integer", "int"),
        ("callable", "Callable"),
        ("np.ndarray", "np.ndarray"),
        ("Optional[List[int]]", "Optional[List[int]]"),
        ("array_like", None),
        ("ndarray or scalar", None),
        ("NetworkX graph", None),
        ("int > 0", None),
        ("positive int", None),
        ("optional", None),
    ],
)
def test_documented_types_as_annotations(written: str, annotation: str | None) -> None:
    assert annotation_of(written) == annotation


def test_prose_examples_call_the_function_by_its_whole_name_in_any_letters() -> None:
    doc = parse("Scale.\n\n    größe(2) -> 4\n    vergrößern(3) -> 9\n    größe (5) => 25\n", "größe")
    assert triples(doc) == [("größe(2)", "4", None), ("größe (5)", "25", None)]
