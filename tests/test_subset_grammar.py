"""`bodySyntax: subset` promises a body that parses whatever the model writes: random walks through the grammar
(XGrammar's own matcher, one character per token) must all give Python that `ast.parse` accepts."""

from __future__ import annotations

import ast
import json
import random

import pytest
import torch
import xgrammar as xg

from lift_lsp.generate.constraints import code_constraint_for
from lift_lsp.spec.sites import find_sites

STOP = "<eos>"
VOCAB = [chr(c) for c in range(32, 127)] + ["\\n", STOP]
SITE = find_sites("def combine(a: int, b: int) -> int:\n    ...\n")[0]


@pytest.fixture(scope="module")
def subset() -> xg.CompiledGrammar:
    constraint = code_constraint_for(SITE, "subset")
    assert constraint.ebnf is not None
    compiler = xg.GrammarCompiler(xg.TokenizerInfo(VOCAB, stop_token_ids=[VOCAB.index(STOP)]))
    return compiler.compile_grammar(constraint.ebnf)


def walk(compiled: xg.CompiledGrammar, rng: random.Random) -> str:
    matcher = xg.GrammarMatcher(compiled)
    bitmask = xg.allocate_token_bitmask(1, len(VOCAB))
    out: list[str] = []
    for _ in range(20_000):
        matcher.fill_next_token_bitmask(bitmask)
        bits = (bitmask[0].unsqueeze(1) >> torch.arange(32, dtype=torch.int32)) & 1
        allowed = torch.nonzero(bits.flatten()[: len(VOCAB)]).flatten().tolist()
        token = rng.choice(allowed)
        assert matcher.accept_token(token)
        if matcher.is_terminated():
            return "".join(out)
        out.append(VOCAB[token])
    raise AssertionError("random walk did not terminate")


def test_every_body_the_subset_grammar_allows_parses(subset: xg.CompiledGrammar) -> None:
    rng = random.Random(0)
    for _ in range(300):
        body = json.loads(walk(subset, rng))["body"]
        source = "def combine(a: int, b: int) -> int:\n" + "".join(f"    {line}\n" for line in body.split("\n"))
        try:
            ast.parse(source)
        except SyntaxError as err:
            raise AssertionError(f"the subset grammar allowed a body that does not parse:\n{body}") from err


def test_not_only_starts_an_expression(subset: xg.CompiledGrammar) -> None:
    """`x // not a` does not parse: the grammar puts `not` only at the start of an expression."""

    def doc(body: str) -> str:
        return '{"imports": [], "helpers": [], "body": "' + body + '"}'

    assert not xg.GrammarMatcher(subset).accept_string(doc("return True // not a"))
    assert not xg.GrammarMatcher(subset).accept_string(doc("return True // (not a)"))
    matcher = xg.GrammarMatcher(subset)
    assert matcher.accept_string(doc("return not a // 2")) and matcher.is_completed()
