"""Per-request grammars for forward mode, built on the checked-in ones (`grammars/ir.ebnf`, `grammars/code.ebnf`).

- The IR step pins what the stub already states: its signature, no holes, no provenance, and the documented
  examples and conditions when the spec has them. The model writes only what is missing (intent, effects, ...), and
  cannot contradict the `def` line.
- The code step can constrain the body to a subset of Python that always parses (`generation.bodySyntax: subset`):
  simple statements, `if`/`else` and `for` two levels deep, arithmetic, comparisons, calls to common builtins, over the
  function's parameters and a few local names. The default (`free`) leaves the body to the model and checks it after.

Pinned and subset grammars travel as EBNF (the local backend, serve-model's `ebnf` field, SGLang); a backend that
sends the JSON schema instead gets the unpinned schema, and the pipeline still puts the stub's facts back.
"""

from __future__ import annotations

import json
import re
from typing import Any

from lift_lsp.generate.backends.base import Constraint
from lift_lsp.generate.grammar import code_constraint, ir_constraint
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
LOCAL_NAMES = ("result", "value", "item", "index", "total", "count")
BUILTINS = ("len", "sum", "min", "max", "abs", "sorted", "range", "list", "int", "str", "bool", "reversed")


def _literal(value: Any) -> str:
    """An EBNF string literal matching `value`'s JSON text in the grammar's layout (", " and ": ")."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
    parts["signature"] = _literal(dumped["signature"])
    parts["holes"] = '"[]"'
    parts["provenance"] = '"[]"'
    for field in ("examples", "preconditions", "postconditions"):
        if dumped[field]:
            parts[field] = _literal(dumped[field])
    pieces = [f'"{{\\"{_IR_FIELDS[0]}\\": " {parts[_IR_FIELDS[0]]}']
    pieces += [f'", \\"{field}\\": " {parts[field]}' for field in _IR_FIELDS[1:]]
    root = " ".join(pieces) + ' "}"'
    ebnf = _replace_rule(base.ebnf, "IR", root)
    return Constraint(kind="json_schema", name=base.name, schema=base.schema, ebnf=ebnf)


def _alternatives(words: list[str]) -> str:
    """Identifiers as EBNF alternatives (identifiers need no escaping)."""
    return " | ".join(f'"{word}"' for word in dict.fromkeys(words))


def subset_body_rules(names: list[str]) -> list[str]:
    """EBNF rules of `py_body`: a Python subset as the content of a JSON string (newlines written `\\n`)."""
    variables = [n for n in names if n.isidentifier()] + list(LOCAL_NAMES)
    return [
        'py_body ::= py_s0 ("\\\\n" py_s0){0,5}',
        "py_s0 ::= py_simple | py_if0 | py_for0",
        'py_if0 ::= "if " py_expr ":" py_block1 ("\\\\nelse:" py_block1)?',
        'py_for0 ::= "for " py_var " in " py_expr ":" py_block1',
        'py_block1 ::= ("\\\\n    " py_s1){1,3}',
        'py_s1 ::= py_simple | "if " py_expr ":" py_block2 | "for " py_var " in " py_expr ":" py_block2',
        'py_block2 ::= ("\\\\n        " py_simple){1,3}',
        'py_simple ::= "return " py_expr | py_var " = " py_expr | py_var " += " py_expr | "pass"',
        'py_expr ::= py_e2 (" if " py_e2 " else " py_e2)?',
        "py_e2 ::= py_e1 (py_op py_e1)?",
        'py_e1 ::= py_e0 | py_func "(" (py_e0 (", " py_e0){0,2})? ")" | "[" (py_e0 (", " py_e0){0,3})? "]" '
        '| "(" py_e0 py_op py_e0 ")" | "(not " py_e0 ")" | "-" py_e0',  # `x // not y` would not parse
        'py_e0 ::= py_var | py_int | "True" | "False" | "None" | py_func "(" py_var ")"',
        'py_op ::= " + " | " - " | " * " | " // " | " % " | " < " | " <= " | " > " | " >= " | " == " | " != " '
        '| " and " | " or " | " in "',
        'py_int ::= "0" | [1-9] [0-9]{0,3}',
        f"py_var ::= {_alternatives(variables)}",
        f"py_func ::= {_alternatives(list(BUILTINS))}",
    ]


def code_constraint_for(site: SpecSite, body_syntax: str = "free") -> Constraint:
    """The code step's grammar: the checked-in one, or with the body held to the Python subset (no imports, no
    helpers: everything must parse)."""
    base = code_constraint()
    if body_syntax != "subset":
        return base
    assert base.ebnf is not None
    ebnf = _replace_rule(base.ebnf, "CodeCandidate_imports", '"[]"')
    ebnf = _replace_rule(ebnf, "CodeCandidate_helpers", '"[]"')
    body_ref = '", \\"body\\": " json_str_3000'
    if body_ref not in ebnf:
        raise ValueError("the code grammar's body rule changed; update constraints.code_constraint_for")
    ebnf = ebnf.replace(body_ref, '", \\"body\\": \\"" py_body "\\""', 1)
    params = [p.name for p in site.params]
    ebnf = ebnf.rstrip("\n") + "\n" + "\n".join(subset_body_rules(params)) + "\n"
    return Constraint(kind="json_schema", name=base.name, schema=base.schema, ebnf=ebnf)
