"""The bounded JSON-schema -> EBNF conversion (lift_lsp.generate.grammar), checked with XGrammar's own matcher."""

from __future__ import annotations

import json
import random
from enum import Enum
from typing import Annotated, Any, Literal

import pytest
import torch
import xgrammar as xg
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from lift_lsp.generate.grammar import (
    JSON_OBJECT_EBNF,
    code_ebnf,
    constraint_for,
    ir_ebnf,
    schema_to_ebnf,
    tighten_bounds,
)
from lift_lsp.generate.schemas import GRAMMARS_DIR, exported
from lift_lsp.spec.ir import IR, CodeCandidate

# A small vocabulary for random walks: structure, ASCII, escapes (one character each once decoded), multi-byte and
# astral characters, and tokens spanning a string's end and the next separator.
STOP = "<eos>"
VOCAB = (
    [chr(c) for c in range(32, 127)]
    + ["\n", "\t", "\x7f", "é", "λ", "😀", "\u2028"]
    + ["\\n", '\\"', "\\\\", "\\/", "\\t", "\\u00e9", "\\ud7ff", "\\u0000", "\\ud800"]
    + ['", "', '"}', '"]', "true", "null", "ab", "def f(x):", "\\n    return x"]
    + [STOP]
)


def _weight(token: str) -> float:
    """Favour ending strings, arrays and objects, so that walks stay short (and recursion dies out)."""
    return 8.0 if token.startswith('"') else 2.0 if token in ("]", "}") else 1.0


WEIGHTS = [_weight(t) for t in VOCAB]


@pytest.fixture(scope="module")
def compiler() -> xg.GrammarCompiler:
    info = xg.TokenizerInfo(VOCAB, stop_token_ids=[VOCAB.index(STOP)])
    return xg.GrammarCompiler(info)


def _allowed(matcher: xg.GrammarMatcher, bitmask: torch.Tensor) -> list[int]:
    matcher.fill_next_token_bitmask(bitmask)
    bits = (bitmask[0].unsqueeze(1) >> torch.arange(32, dtype=torch.int32)) & 1
    return [i for i in torch.nonzero(bits.flatten()[: len(VOCAB)]).flatten().tolist()]


def random_walk(compiled: xg.CompiledGrammar, rng: random.Random) -> str:
    """Sample tokens the grammar allows until it terminates, favouring tokens that close strings and arrays."""
    matcher = xg.GrammarMatcher(compiled)
    bitmask = xg.allocate_token_bitmask(1, len(VOCAB))
    out: list[str] = []
    for _ in range(20_000):
        allowed = _allowed(matcher, bitmask)
        assert allowed, "the grammar left no token to choose"
        token = rng.choices(allowed, [WEIGHTS[i] for i in allowed])[0]
        assert matcher.accept_token(token)
        if matcher.is_terminated():
            return "".join(out)
        out.append(VOCAB[token])
    raise AssertionError("random walk did not terminate")


def validate_but_lengths(model: type[BaseModel], text: str) -> None:
    """`text` validates against `model`, or fails only on string lengths (which the grammar leaves to pydantic)."""
    try:
        model.model_validate_json(text)
    except ValidationError as err:
        assert {e["type"] for e in err.errors()} == {"string_too_long"}, err


def accepts(compiled: xg.CompiledGrammar, text: str) -> bool:
    matcher = xg.GrammarMatcher(compiled)
    return matcher.accept_string(text) and matcher.is_completed()


@pytest.mark.parametrize("model", [IR, CodeCandidate])
def test_random_walks_give_json_the_model_validates(compiler: xg.GrammarCompiler, model: type[BaseModel]) -> None:
    compiled = compiler.compile_grammar(schema_to_ebnf(model.model_json_schema()))
    rng = random.Random(1234)
    texts = [random_walk(compiled, rng) for _ in range(25)]
    for text in texts:
        json.loads(text)
        validate_but_lengths(model, text)
    joined = "".join(texts)
    # the walks did explore: escapes, non-ASCII, non-empty strings
    assert "\\n" in joined and "\\u00e9" in joined and "😀" in joined
    assert len(set(texts)) == len(texts)


class Color(Enum):
    RED = "red"
    DARK_BLUE = 'dark "blue"'


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: Annotated[str, StringConstraints(max_length=4)]
    weight: float
    count: int | None = None
    flag: bool = False
    color: Color = Color.RED
    mode: Literal["a", "b"] = "a"
    tags: Annotated[dict[Annotated[str, StringConstraints(max_length=3)], int], Field(max_length=2)] = {}
    children: Annotated[list[Node], Field(max_length=2)] = []


def test_other_types_enums_maps_and_recursion(compiler: xg.GrammarCompiler) -> None:
    schema = Node.model_json_schema()
    compiled = compiler.compile_grammar(schema_to_ebnf(schema))
    rng = random.Random(7)
    texts = [random_walk(compiled, rng) for _ in range(40)]
    for text in texts:
        validate_but_lengths(Node, text)
    values = [json.loads(t) for t in texts]
    assert any(v["children"] for v in values), "recursion never taken"
    assert any(v["count"] is not None for v in values) and any(v["tags"] for v in values)
    assert accepts(
        compiled,
        '{"label": "x", "weight": -0.5e-3, "count": 12, "flag": true, "color": "dark \\"blue\\"", '
        '"mode": "b", "tags": {"k": 1, "j": 2}, "children": []}',
    )
    assert not accepts(
        compiled,
        '{"label": "x", "weight": 01, "count": null, "flag": true, "color": "red", '
        '"mode": "b", "tags": {}, "children": []}',
    )  # leading zero
    assert not accepts(
        compiled,
        '{"label": "x", "weight": 1, "count": 1234567890, "flag": true, "color": "red", '
        '"mode": "b", "tags": {}, "children": []}',
    )  # integers have at most 9 digits


def test_string_length_is_left_to_pydantic(compiler: xg.GrammarCompiler) -> None:
    """The grammar takes a string of any length and any escapes; `maxLength` is pydantic's to check, and every
    string the grammar takes decodes to valid text."""
    compiled = compiler.compile_grammar(code_ebnf())

    def doc(body: str) -> str:
        return '{"imports": [], "helpers": [], "body": "' + body + '"}'

    for body in ["x" * 3000, "\\n" * 1600, "é" * 2999 + "😀", '\\u00e9\\ud7ff\\\\\\/\\"', ""]:
        assert accepts(compiled, doc(body)), body[-20:]
        assert len(CodeCandidate.model_validate_json(doc(body)).body) <= 3000
    assert accepts(compiled, doc("x" * 3001))
    with pytest.raises(ValidationError, match="at most 3000 characters"):
        CodeCandidate.model_validate_json(doc("x" * 3001))


@pytest.mark.parametrize(
    "body",
    ["a\nb", "a\tb", "\\ud800", "\\x41", "\\u12", 'a"b', "a\\"],
    ids=["raw-newline", "raw-tab", "lone-surrogate", "bad-escape", "short-unicode", "quote", "trailing-backslash"],
)
def test_string_rejects_what_json_forbids(compiler: xg.GrammarCompiler, body: str) -> None:
    compiled = compiler.compile_grammar(code_ebnf())
    assert not accepts(compiled, '{"imports": [], "helpers": [], "body": "' + body + '"}')


def test_compact_separators_schema_order_and_all_properties(compiler: xg.GrammarCompiler) -> None:
    compiled = compiler.compile_grammar(code_ebnf())
    assert accepts(compiled, '{"imports": ["import os"], "helpers": [], "body": "return 1"}')
    assert not accepts(compiled, '{"body": "return 1"}')  # every property is emitted
    assert not accepts(compiled, '{"imports": [],"helpers": [], "body": ""}')  # ", " separator
    assert not accepts(compiled, '{"imports":[], "helpers": [], "body": ""}')  # ": " separator
    assert not accepts(compiled, '{"helpers": [], "imports": [], "body": ""}')  # schema order
    many = ", ".join(['"i"'] * 9)
    assert not accepts(compiled, '{"imports": [' + many + '], "helpers": [], "body": ""}')  # maxItems 8


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "array", "items": {"type": "integer"}}, "maxItems"),
        (
            {"type": "object", "additionalProperties": {"type": "integer"}, "propertyNames": {"maxLength": 3}},
            "maxProperties",
        ),
        ({"type": "string", "maxLength": 3, "pattern": "a+"}, "pattern"),
        ({"type": "integer", "minimum": 0}, "minimum"),
        ({"type": "object"}, "free-form"),
        ({}, "unconstrained"),
        ({"$ref": "other.json#/x"}, "same document"),
        ({"oneOf": [{"type": "null"}]}, "oneOf"),
    ],
)
def test_unbounded_or_unsupported_schemas_raise(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        schema_to_ebnf(schema)


def test_a_string_without_max_length_is_accepted(compiler: xg.GrammarCompiler) -> None:
    compiled = compiler.compile_grammar(schema_to_ebnf({"type": "array", "items": {"type": "string"}, "maxItems": 2}))
    assert accepts(compiled, '["' + "a" * 500 + '", "\\n"]')
    assert not accepts(compiled, '["a", "b", "c"]')
    at_least_two = compiler.compile_grammar(schema_to_ebnf({"type": "string", "minLength": 2}))
    assert accepts(at_least_two, '"xy"') and accepts(at_least_two, '"\\nz"') and not accepts(at_least_two, '"x"')


def test_output_is_deterministic_and_exported() -> None:
    assert schema_to_ebnf(IR.model_json_schema()) == schema_to_ebnf(IR.model_json_schema()) == ir_ebnf()
    files = exported()
    assert ir_ebnf() in files["ir.ebnf"] and code_ebnf() in files["code.ebnf"]
    assert (GRAMMARS_DIR / "ir.ebnf").read_text(encoding="utf-8") == files["ir.ebnf"]
    assert (GRAMMARS_DIR / "code.ebnf").read_text(encoding="utf-8") == files["code.ebnf"]
    c = constraint_for(IR)
    assert c.kind == "json_schema" and c.name == "IR" and c.schema == IR.model_json_schema() and c.ebnf == ir_ebnf()


def test_tighten_bounds_caps_every_bound_and_keeps_the_original() -> None:
    original = IR.model_json_schema()
    before = json.dumps(original, sort_keys=True)
    tight = tighten_bounds(original, max_length=8, max_items=2, max_properties=3)
    assert json.dumps(original, sort_keys=True) == before

    def bounds(node: Any, key: str) -> list[int]:
        if isinstance(node, dict):
            return ([node[key]] if key in node else []) + [b for v in node.values() for b in bounds(v, key)]
        if isinstance(node, list):
            return [b for v in node for b in bounds(v, key)]
        return []

    assert bounds(tight, "maxLength") and max(bounds(tight, "maxLength")) == 8
    assert max(bounds(tight, "maxItems")) == 2 and max(bounds(tight, "maxProperties")) == 3
    assert tighten_bounds({"type": "string", "minLength": 5, "maxLength": 9}, max_length=2, max_items=1) == {
        "type": "string",
        "minLength": 5,
        "maxLength": 5,
    }


def test_json_object_grammar(compiler: xg.GrammarCompiler) -> None:
    compiled = compiler.compile_grammar(JSON_OBJECT_EBNF)
    assert accepts(compiled, '{"a": [1, -2.5e3, {"b": null}], "c\\n": "\\u00e9", "d": true}')
    assert accepts(compiled, "{ }")
    assert not accepts(compiled, "[1]")
    assert not accepts(compiled, '{"a": 01}')


def test_the_python_block_begins_with_the_functions_own_opening(compiler: xg.GrammarCompiler) -> None:
    """Import lines may come first; then exactly the `def` line and docstring as written (quotes, backslashes,
    tabs and non-ASCII included), then the body; anything else is refused."""
    from lift_lsp.generate.constraints import python_block_constraint
    from lift_lsp.generate.forward import function_opening
    from lift_lsp.spec.sites import find_sites

    source = (
        'class K:\n    def f(self, x: "int") -> str:\n        """Say "é"\\t\\\\ \tok.\n\n'
        '        >>> 1\n        1\n        """\n        ...\n'
    )
    site = next(s for s in find_sites(source) if s.name == "f")
    opening = function_opening(source, site)
    assert opening == 'def f(self, x: "int") -> str:\n    """Say "é"\\t\\\\ \tok.\n\n    >>> 1\n    1\n    """\n'
    ebnf = python_block_constraint(opening).ebnf
    assert ebnf is not None
    compiled = compiler.compile_grammar(ebnf)
    body = "    return str(x)\n```"
    assert accepts(compiled, f"```python\n{opening}{body}")
    assert accepts(compiled, f"```python\nimport math\nfrom os import path\n\n{opening}{body}")
    assert not accepts(compiled, f"```python\n{opening.replace('x: ', 'y: ')}{body}")  # the signature drifted
    assert not accepts(compiled, f"```python\nx = 1\n{opening}{body}")  # only imports before it
    assert not accepts(compiled, f"```python\n{opening}{body}\nmore")
    assert python_block_constraint("def g():\n    '''Run `g`.'''\n").ebnf == python_block_constraint().ebnf
