"""Hover Markdown, read by a CommonMark parser (markdown-it-py): fences hold exactly their lines, lists are tight,
contracts appear as the docstring wrote them."""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.token import Token

from lift_lsp.spec.render import to_markdown, to_text
from lift_lsp.spec.reverse import function_ir
from lift_lsp.spec.sites import find_sites

SOURCE = '''
def clamp(x: int, lo: int, hi: int) -> int:
    """Clamp x into the closed interval [lo, hi].

    Args:
        x: the value.
        lo: the lower bound.
        hi: the upper bound.

    Raises:
        ValueError: if lo > hi.

    pre: lo <= hi
    post: lo <= __return__ <= hi

    Ensures:
        - _ >= lo
        - result <= hi

    >>> clamp(5, 0, 3)
    3
    >>> clamp(-2, 0, 3)
    0
    """
    if lo > hi:
        raise ValueError("empty interval")
    return max(lo, min(x, hi))


def stub(value):
    """Parse a port.

    >>> stub("80")
    80
    """
'''


def _markdown(name: str) -> str:
    site = next(s for s in find_sites(SOURCE) if s.name == name)
    return to_markdown(function_ir(site, None).ir)


def _tokens(markdown: str) -> list[Token]:
    return MarkdownIt("commonmark").parse(markdown)


def test_fences_hold_exactly_their_lines() -> None:
    fences = [t for t in _tokens(_markdown("clamp")) if t.type == "fence"]
    assert [t.content for t in fences] == [
        "def clamp(x: int, lo: int, hi: int) -> int\n",
        ">>> clamp(5, 0, 3)\n3\n>>> clamp(-2, 0, 3)\n0\n",
    ]


def test_lists_are_tight() -> None:
    tokens = _tokens(_markdown("clamp") + "\n\n" + _markdown("stub"))
    lists = [t for t in tokens if t.type == "bullet_list_open"]
    assert len(lists) == 6  # parameters, raises, pre, post (clamp); parameters, holes (stub)
    item_paragraphs = [t for t in tokens if t.type == "paragraph_open" and t.level >= 2]
    assert item_paragraphs and all(t.hidden for t in item_paragraphs)  # a loose list shows <p> in each item
    assert "\n\n-" not in _markdown("clamp").split("**Parameters**")[1].split("**Raises**")[0]


def test_contracts_as_written() -> None:
    markdown = _markdown("clamp")
    assert "- `lo <= hi`" in markdown
    post = markdown.split("**Postconditions**")[1].split("**Examples**")[0]
    assert [line for line in post.split("\n") if line.startswith("- ")] == [
        "- `lo <= __return__ <= hi`",
        "- `_ >= lo`",
        "- `result <= hi`",
    ]
    text = to_text(function_ir(find_sites(SOURCE)[0], None).ir, "clamp", 2)
    assert "  post: lo <= __return__ <= hi" in text
