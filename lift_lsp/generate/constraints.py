"""Per-request grammars for forward mode, built on the checked-in ones (`grammars/ir.ebnf`, `grammars/code.ebnf`).

- The IR step pins what the stub already states: its signature, no holes, no provenance, and the documented
  examples and conditions when the spec has them. The model writes only what is missing (intent, effects, ...), and
  cannot contradict the `def` line.
- The code step can constrain the body to a subset of Python that always parses and never reads a name it has not
  bound (`generation.bodySyntax: subset`): simple statements, `if`/`else` and `for` two levels deep, arithmetic,
  comparisons, calls to common builtins, over the function's parameters, one accumulator (`result`) and the loop
  variables (`item`, `value`). The default (`free`) leaves the body to the model and checks it after.

Pinned and subset grammars travel as EBNF (the local backend, serve-model's `ebnf` field, SGLang, vLLM); a backend
that sends JSON schemas only gets the unpinned schema for the IR, and the pipeline still puts the stub's facts back;
the subset grammar is a grammar-only (`ebnf`) constraint, which such a backend refuses with a message.
"""

from __future__ import annotations

import re

from lift_lsp.generate.backends.base import Constraint
from lift_lsp.generate.grammar import code_constraint, ebnf_literal, ir_constraint, json_literal
from lift_lsp.spec.ir import IR
from lift_lsp.spec.sites import SpecSite

_IR_FIELDS = ("intent", "signature", "preconditions", "postconditions", "examples", "effects", "holes", "provenance")
_DEFAULT_RULES = {
    "intent": "Intent",
    "signature": "Signature",
    "preconditions": "IR_preconditions",
    "postconditions": "IR_postconditions",
    "examples": "IR_examples",
    "effects": "IR_effects",
    "holes": "IR_holes",
    "provenance": "IR_provenance",
}
BUILTINS = ("len", "sum", "min", "max", "abs", "sorted", "range", "list", "int", "str", "bool", "reversed")


def _replace_rule(ebnf: str, name: str, body: str) -> str:
    pattern = re.compile(rf"^{re.escape(name)} ::= .*$", re.MULTILINE)
    if not pattern.search(ebnf):
        raise ValueError(f"grammar has no rule {name}")
    return pattern.sub(lambda _: f"{name} ::= {body}", ebnf, count=1)


def pinned_ir_constraint(spec: IR) -> Constraint:
    """The IR grammar with the stub's facts fixed as literals."""
    base = ir_constraint()
    assert base.ebnf is not None
    dumped = spec.model_dump(mode="json")
    parts = dict(_DEFAULT_RULES)
    parts["signature"] = json_literal(dumped["signature"])
    parts["holes"] = '"[]"'
    parts["provenance"] = '"[]"'
    for field in ("examples", "preconditions", "postconditions"):
        if dumped[field]:
            parts[field] = json_literal(dumped[field])
    pieces = [f'"{{\\"{_IR_FIELDS[0]}\\": " {parts[_IR_FIELDS[0]]}']
    pieces += [f'", \\"{field}\\": " {parts[field]}' for field in _IR_FIELDS[1:]]
    root = " ".join(pieces) + ' "}"'
    ebnf = _replace_rule(base.ebnf, "IR", root)
    return Constraint(kind="json_schema", name=base.name, schema=base.schema, ebnf=ebnf)


def _alternatives(words: list[str]) -> str:
    """Identifiers as EBNF alternatives (identifiers need no escaping)."""
    return " | ".join(f'"{word}"' for word in dict.fromkeys(words))


def _expression_rules(scope: str, names: list[str]) -> list[str]:
    """`py_expr_{scope}`: an expression that reads only `names` (and literals, and calls to BUILTINS)."""
    read = f"py_name_{scope}"
    e0 = f'py_e0_{scope} ::= py_int | "True" | "False" | "None"'
    e1 = (
        f'py_e1_{scope} ::= py_e0_{scope} | "[" (py_e0_{scope} (", " py_e0_{scope}){{0,3}})? "]" '
        f'| "(" py_e0_{scope} py_op py_e0_{scope} ")" | "-" py_e0_{scope}'
    )
    rules = [
        f'py_expr_{scope} ::= "not "? py_e2_{scope} (" if " py_e2_{scope} " else " py_e2_{scope})?',
        f"py_e2_{scope} ::= py_e1_{scope} (py_op py_e1_{scope})?",
    ]
    if names:
        e0 += f' | {read} | py_func "(" {read} ")"'
        e1 += f' | py_func "(" (py_e0_{scope} (", " py_e0_{scope}){{0,2}})? ")"'
        rules.append(f"{read} ::= {_alternatives(names)}")
    return [*rules, e1, e0]


def _block_rules(
    scope: str, indent: int, names: list[str], inner: tuple[str, str, str] | None, most: int = 3
) -> list[str]:
    """`py_block_{scope}`: one to `most` statements at `indent` that read only `names`. With `inner` = (the `if`
    block's scope, a loop variable, the `for` block's scope): also `if`/`else` and `for` one level deeper, the loop
    variable read only inside its loop."""
    newline = '"\\\\n' + " " * indent
    statements = [
        f'"return " py_expr_{scope}',
        f'"result = " py_expr_{scope}',
        f'"result += " py_expr_{scope}',
        '"pass"',
    ]
    if inner is not None:
        if_block, variable, for_block = inner
        statements += [
            f'"if " py_expr_{scope} ":" py_block_{if_block} ({newline}else:" py_block_{if_block})?',
            f'"for {variable} in " py_expr_{scope} ":" py_block_{for_block}',
        ]
    return [
        f'py_block_{scope} ::= ({newline}" py_s_{scope}){{1,{most}}}',
        f"py_s_{scope} ::= {' | '.join(statements)}",
        *_expression_rules(scope, names),
    ]


def subset_body_rules(names: list[str]) -> list[str]:
    """EBNF rules of `py_body`: a Python subset as the content of a JSON string (newlines written `\\\\n`) that
    always parses and never reads a name it has not bound: `return EXPR` over the parameters, or `result = EXPR`
    first and then statements over the parameters and `result`, with `if`/`else` and `for` two levels deep whose loop
    variables (`item`, inside it `value`) are read only inside their loop."""
    params = [n for n in names if n.isidentifier()]
    top, in_loop = [*params, "result"], [*params, "result", "item"]
    return [
        'py_body ::= "return " py_expr_p | "result = " py_expr_p py_block_top',
        *_expression_rules("p", params),
        *_block_rules("top", 0, top, ("if1", "item", "for1"), most=5),
        *_block_rules("if1", 4, top, ("if2", "item", "for2")),
        *_block_rules("for1", 4, in_loop, ("for2", "value", "for22")),
        *_block_rules("if2", 8, top, None),
        *_block_rules("for2", 8, in_loop, None),
        *_block_rules("for22", 8, [*in_loop, "value"], None),
        'py_op ::= " + " | " - " | " * " | " // " | " % " | " < " | " <= " | " > " | " >= " | " == " | " != " '
        '| " and " | " or " | " in "',
        'py_int ::= "0" | [1-9] [0-9]{0,3}',
        f"py_func ::= {_alternatives(list(BUILTINS))}",
    ]


PYTHON_BLOCK = "PythonCode"
"""The name of the code step's grammar when the model writes the function as Python (`generation.codeFormat`)."""
_PYTHON_BLOCK_EBNF = 'root ::= "```python\\n" py_text "```"\npy_text ::= ([^`] | "`" [^`] | "``" [^`])*\n'


def python_block_constraint(opening: str = "") -> Constraint:
    """One Python code block and nothing after it: the model writes the function as it writes code anywhere, and
    stops at the block's end. With `opening` (the function's `def` line and docstring, as the user wrote them), the
    function must begin with exactly that text, after any import lines: the signature cannot drift, and the opening
    is taken as forced tokens (one batch) instead of being decoded token by token."""
    if not opening or "`" in opening:  # a backtick in the opening could end the code block early
        return Constraint(kind="ebnf", name=PYTHON_BLOCK, ebnf=_PYTHON_BLOCK_EBNF)
    ebnf = (
        f'root ::= "```python\\n" py_imports {ebnf_literal(opening)} py_text "```"\n'
        'py_imports ::= (("import " | "from ") [^\\n`]* "\\n" | "\\n")*\n' + _PYTHON_BLOCK_EBNF.split("\n", 1)[1]
    )
    return Constraint(kind="ebnf", name=PYTHON_BLOCK, ebnf=ebnf)


def code_constraint_for(site: SpecSite, body_syntax: str = "free") -> Constraint:
    """The code step's grammar: the checked-in one, or with the body held to the Python subset (no imports, no
    helpers: everything must parse)."""
    base = code_constraint()
    if body_syntax != "subset":
        return base
    assert base.ebnf is not None
    ebnf = _replace_rule(base.ebnf, "CodeCandidate_imports", '"[]"')
    ebnf = _replace_rule(ebnf, "CodeCandidate_helpers", '"[]"')
    body_ref = '", \\"body\\": " str_last'
    if body_ref not in ebnf:
        raise ValueError("the code grammar's body rule changed; update constraints.code_constraint_for")
    ebnf = ebnf.replace(body_ref, '", \\"body\\": \\"" py_body "\\"}"', 1)
    params = [p.name for p in site.params]
    ebnf = ebnf.rstrip("\n") + "\n" + "\n".join(subset_body_rules(params)) + "\n"
    return Constraint(kind="ebnf", name=base.name, schema=base.schema, ebnf=ebnf)  # no JSON schema says "subset"
