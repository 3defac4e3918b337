"""The IR of a function: documented types kept as written beside the annotation, bounds that say what they cut, and
the docstring read as Python has it."""

from __future__ import annotations

from lift_lsp.check.findings import Code
from lift_lsp.check.signature import signature_findings
from lift_lsp.spec.ir import MAX_PARAMETERS, MAX_RAISES
from lift_lsp.spec.render import to_markdown, to_text
from lift_lsp.spec.reverse import FunctionIR, extract_file


def _only(source: str) -> FunctionIR:
    (found,) = extract_file(source, types=False)
    return found


def test_documented_type_kept_as_written_beside_the_annotation() -> None:
    fir = _only(
        '''def load(names, count: int, mode):
    """Load.

    Parameters
    ----------
    names : list of str
        The names.
    count : int, optional
        How many.
    mode : array_like
        Prose only.

    Returns
    -------
    dict of {str: int}
        The counts.
    """
'''
    )
    params = {p.name: (p.type, p.documented_type) for p in fir.ir.signature.parameters}
    assert params == {
        "names": ("list[str]", "list of str"),
        "count": ("int", "int, optional"),
        "mode": (None, "array_like"),
    }
    returns = fir.ir.signature.returns
    assert (returns.type, returns.documented_type) == ("dict[str, int]", "dict of {str: int}")
    hover = to_markdown(fir.ir)
    assert "- `names: list[str]` (list of str) — The names." in hover
    assert "- `mode` (array_like) — Prose only." in hover
    assert "**Returns** `dict[str, int]` (dict of {str: int}) — The counts." in hover
    assert "def load(names: list[str], count: int, mode) -> dict[str, int]" in hover


def test_a_documented_type_in_prose_still_contradicts_the_annotation() -> None:
    fir = _only(
        '''def f(names: dict, count: int) -> str:
    """Do.

    Args:
        names (list of str): The names.
        count (`int`, *optional*, defaults to 1): How many.

    Returns:
        list of str: never a string.
    """
    return ""
'''
    )
    messages = [f.message for f in signature_findings("f.py", fir) if f.code == Code.TYPE_CONTRADICTION]
    assert messages == ["`names` is documented as `list of str` but annotated `dict`"]


def test_parameters_and_raises_past_the_bounds_are_said() -> None:
    count = MAX_PARAMETERS + 5
    params = ", ".join(f"p{i}" for i in range(count))
    raises = "\n".join(f"        Error{i}: when {i}." for i in range(MAX_RAISES + 2))
    fir = _only(f'def big({params}):\n    """Big.\n\n    Raises:\n{raises}\n    """\n')
    signature = fir.ir.signature
    assert len(signature.parameters) == MAX_PARAMETERS and signature.parameters_left_out == 5
    assert len(signature.raises) == MAX_RAISES and signature.raises_left_out == 2
    assert "- and 5 more parameters (left out of the IR)" in to_markdown(fir.ir)
    assert "- and 2 more exceptions (left out of the IR)" in to_markdown(fir.ir)
    assert "  and 5 more parameters (left out of the IR)" in to_text(fir.ir, "big", 1)
    small = _only(f"def small({', '.join(f'p{i}' for i in range(MAX_PARAMETERS))}):\n    pass\n").ir
    assert small.signature.parameters_left_out == 0 and "more parameters" not in to_markdown(small)


def test_the_docstring_is_read_as_python_has_it() -> None:
    source = '''def f(x, y):
    """Do.

    Parameters
    ----------
    x : ndarray of shape (n, m) or \\
        (n,)
        The \\\\alpha value.
    y : int
        Other.

    Examples
    --------
    >>> f(1, 2)
    3
    """
'''
    fir = _only(source)
    params = {p.name: (p.documented_type, p.description) for p in fir.ir.signature.parameters}
    assert params == {"x": ("ndarray of shape (n, m) or (n,)", "The \\alpha value."), "y": ("int", "Other.")}
    assert [e.line for e in fir.ir.examples] == [source.split("\n").index("    >>> f(1, 2)") + 1]


def test_effects_name_the_first_parameter_the_code_changes() -> None:
    source = """
def append_one(xs, ys):
    ys.append(1)
    xs[0] = 2


def set_key(d, k):
    d[k] = 1


def rename(obj, name):
    obj.name = name


def total(values):
    result = values.count(1)
    return result == 1


def shadow(items):
    other_items = []
    other_items.append(1)
    return items
"""
    effects = {f.site.name: [e.description for e in f.ir.effects] for f in extract_file(source, types=False)}
    assert effects["append_one"] == ["mutates its argument `xs`"]  # the parameters' order, not the code's
    assert effects["set_key"] == ["mutates its argument `d`"]
    assert effects["rename"] == ["mutates its argument `obj`"]
    assert effects["total"] == effects["shadow"] == ["no side effects found in the code"]


def test_the_code_outside_functions_leaves_out_comments_blank_lines_and_functions() -> None:
    from lift_lsp.spec.sites import find_sites, outside_functions

    lines = ["import os", "", "# a comment", "LIMIT = 3", "", "", "def f():", "    # inside", "    return 1", "", ""]
    lines += ["class A:", '    """Doc.', "", "    # not a comment: in a string", '    """', "", "    def g(self):"]
    source = "\n".join([*lines, "        return 2", ""])
    kept = ["import os", "LIMIT = 3", "class A:", '    """Doc.', "", "    # not a comment: in a string", '    """', ""]
    assert outside_functions(source, find_sites(source)) == "\n".join(kept)
