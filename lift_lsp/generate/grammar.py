r"""JSON schema -> EBNF (XGrammar's dialect) for the schema subset that pydantic emits for `lift_lsp.spec.ir`.

Strings are not length-bounded in the grammar: `maxLength` is checked by pydantic after decoding (a model stops a
string on its own; `max_tokens` ends one that does not). Length budgets (XGrammar's `max_chars`) and counted
characters make the token mask far slower, and XGrammar's own JSON-schema conversion admits raw control
characters and refuses every escape inside a `maxLength` string (0.2.8, 0.2.9). What makes the mask fast is that a
string's rule ends with its closing quote *and the literal that follows it* in the document (`"}` after
a code body): a token that closes the string is then decided when the grammar is compiled, not at every step
(bench/constrained.py measures it). Strings inside arrays and map values, whose follower is a choice, share one rule
that asserts the follower's first character (`(= [,\]}])`), as XGrammar's built-in JSON grammar does. Escapes are
inlined in the character rule, and `\uXXXX` excludes the surrogate range, so that every escape decodes to one valid
character.

The output is compact JSON with XGrammar's separators (`", "` between members, `": "` after keys). Objects emit
**all** their declared properties, in schema order, optional ones included: any such object is valid against the
schema (a consumer gets every field; a model cannot leave one out), and the grammar stays linear in size.
Integers have at most 9 digits and numbers a bounded fraction and exponent; arrays and maps are bounded by
`maxItems`/`maxProperties`.

Supported: `type` (string, integer, number, boolean, null, object, array, or a list of them), `enum`, `const`,
`$ref` into the document (`#/$defs/...`), `anyOf`, a single-element `allOf`, `properties`/`required`,
`additionalProperties` (false, or a value schema together with `maxProperties`), `maxLength`/`minLength` (checked
after decoding; `minLength` also by the grammar), `maxItems`/`minItems`, `maxProperties`/`minProperties`.
Annotations (`title`, `description`, `default`, ...) are ignored. Anything else, and any unbounded array or map,
raises ValueError: callers may then fall back to XGrammar's own conversion.
"""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from lift_lsp.generate.backends.base import Constraint

__all__ = [
    "JSON_OBJECT_EBNF",
    "code_constraint",
    "code_ebnf",
    "constraint_for",
    "ir_constraint",
    "ir_ebnf",
    "schema_to_ebnf",
    "tighten_bounds",
]

INT_DIGITS = 9
"""Most digits an integer may have (so 999_999_999 is the largest)."""

_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$schema",
        "$id",
        "$defs",
        "definitions",
    }
)

_HEX = "[0-9a-fA-F]"
_JSON_CHAR = '[^"\\\\\\x00-\\x1f]'
_JSON_ESCAPES = ('"\\\\" ["\\\\/bfnrt]', f'"\\\\u" ([0-9a-cA-Ce-fE-F] {_HEX} {_HEX} {_HEX} | [dD] [0-7] {_HEX} {_HEX})')
ITEM_STRING_LOOKAHEAD = "(= [,\\]}])"
"""What follows a string that is an array item or a map value: `, `, `]` or `}`."""


def string_content_rule(name: str, end: str, lookahead: str = "") -> str:
    """`name ::= ...`: a JSON string's content after its opening quote, through `end` (an EBNF expression that
    starts with the closing quote). Right-recursive, escapes inlined: the shape XGrammar's masks are fast on."""
    alternatives = [end, f"{_JSON_CHAR} {name}", *(f"{escape} {name}" for escape in _JSON_ESCAPES)]
    body = " | ".join(alternatives)
    return f"{name} ::= ({body}) {lookahead}" if lookahead else f"{name} ::= {body}"


JSON_CHAR_RULE = f"json_char ::= {_JSON_CHAR} | {' | '.join(_JSON_ESCAPES)}"
"""One character of a JSON string (a raw character other than `"`, `\\` and controls, or one escape)."""

JSON_OBJECT_EBNF = (
    "root ::= json_object\n"
    'json_value ::= json_object | json_array | json_string | json_number | "true" | "false" | "null"\n'
    'json_object ::= "{" json_ws (json_string json_ws ":" json_ws json_value json_ws'
    ' ("," json_ws json_string json_ws ":" json_ws json_value json_ws)*)? "}"\n'
    'json_array ::= "[" json_ws (json_value json_ws ("," json_ws json_value json_ws)*)? "]"\n'
    'json_string ::= "\\"" json_string_rest\n' + string_content_rule("json_string_rest", '"\\""') + "\n"
    'json_number ::= "-"? ("0" | [1-9] [0-9]*) ("." [0-9]+)? ([eE] [+-]? [0-9]+)?\n'
    "json_ws ::= [ \\t\\n\\r]*\n"
)
"""Any JSON object (OpenAI's `response_format: {"type": "json_object"}`). Unbounded: a model must choose to stop."""

_NUMBER_RULES = {
    "json_int": f'json_int ::= "-"? ("0" | [1-9] [0-9]{{0,{INT_DIGITS - 1}}})',
    "json_number": 'json_number ::= json_int ("." [0-9]{1,9})? ([eE] [+-]? [0-9]{1,2})?',
}


def ebnf_literal(text: str) -> str:
    """An EBNF string literal matching `text` exactly, control characters escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", escaped) + '"'


def json_literal(value: Any, then: str | None = None) -> str:
    """The literal of `value`'s JSON text (in the grammar's layout), followed by `then`."""
    return ebnf_literal(json.dumps(value, ensure_ascii=False, separators=(", ", ": ")) + (then or ""))


def _unsupported(schema: dict[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(schema) - known - _ANNOTATIONS)
    if extra:
        raise ValueError(f"{where}: unsupported schema keyword(s) {', '.join(extra)}")


class _Converter:
    """Builds the rules. Every `expr` call gets `then`: the literal text that follows the value in the document,
    which a string rule takes into its ending (see the module's docstring); `then=None` marks an array item or map
    value, whose follower is a choice."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.rules: dict[str, str] = {}
        self.ref_rules: dict[str, str] = {}
        self.helpers: set[str] = set()
        self.string_rules: dict[tuple[str | None, int], str] = {}
        self.string_bodies: list[str] = []

    # -- rules --------------------------------------------------------------------------------------------------

    def new_rule(self, hint: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", hint).strip("_") or "rule"
        if base[0].isdigit() or base.startswith(("json_", "str_")):
            base = "r_" + base  # `json_*` and `str_*` names are the shared helper rules
        name, i = base, 2
        while name in self.rules:
            name, i = f"{base}_{i}", i + 1
        self.rules[name] = ""  # reserve (recursive references may appear before the body is known)
        return name

    def string_rule(self, then: str | None, min_len: int) -> str:
        """The rule of a JSON string of at least `min_len` characters followed by `then`."""
        key = (then, min_len)
        if key not in self.string_rules:
            name = _string_rule_name(then, min_len, set(self.string_rules.values()))
            self.string_rules[key] = name
            rest = f"{name}_rest"
            head = f" json_char{{{min_len}}}" if min_len else ""
            self.string_bodies.append(f'{name} ::= "\\""{head} {rest}')
            if then is None:
                self.string_bodies.append(string_content_rule(rest, '"\\""', ITEM_STRING_LOOKAHEAD))
            else:
                self.string_bodies.append(string_content_rule(rest, ebnf_literal('"' + then)))
            if min_len:
                self.helpers.add("json_char")
        return self.string_rules[key]

    # -- schemas ------------------------------------------------------------------------------------------------

    def resolve(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#"):
            raise ValueError(f"$ref {ref!r}: only references into the same document are supported")
        node: Any = self.root
        for part in [p for p in ref[1:].split("/") if p]:
            key = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or key not in node:
                raise ValueError(f"$ref {ref!r} does not resolve")
            node = node[key]
        if not isinstance(node, dict):
            raise ValueError(f"$ref {ref!r} is not a schema object")
        return node

    def expr(self, schema: Any, hint: str, then: str | None, own: str | None = None) -> str:
        """An EBNF expression for the values `schema` allows, followed by the literal `then` (nothing when None).
        `own`: the rule being defined, which an object or array schema then uses for itself."""
        if schema is True or schema == {} or not isinstance(schema, dict):
            raise ValueError(f"{hint}: an unconstrained value cannot be bounded")
        if "$ref" in schema:
            _unsupported(schema, {"$ref"}, hint)
            return _followed(self.ref(schema["$ref"]), then)
        if "allOf" in schema:
            parts = schema["allOf"]
            if not isinstance(parts, list) or len(parts) != 1:
                raise ValueError(f"{hint}: allOf with more than one schema is not supported")
            _unsupported(schema, {"allOf"}, hint)
            return self.expr(parts[0], hint, then, own)
        if "anyOf" in schema:
            _unsupported(schema, {"anyOf"}, hint)
            alts = [self.expr(s, f"{hint}_{i}", then) for i, s in enumerate(schema["anyOf"])]
            return "(" + " | ".join(alts) + ")"
        if "const" in schema:
            _unsupported(schema, {"const", "type"}, hint)
            return json_literal(schema["const"], then)
        if "enum" in schema:
            _unsupported(schema, {"enum", "type"}, hint)
            values = schema["enum"]
            if not values:
                raise ValueError(f"{hint}: empty enum")
            return "(" + " | ".join(json_literal(v, then) for v in values) + ")"
        kind = schema.get("type")
        if isinstance(kind, list):
            alts = [self.expr({**schema, "type": k}, f"{hint}_{k}", then) for k in kind]
            return "(" + " | ".join(alts) + ")"
        if kind == "string":
            return self.string(schema, hint, then)
        if kind in ("integer", "number", "boolean", "null"):
            _unsupported(schema, {"type"}, hint)
            return _followed(self.scalar(kind), then)
        if kind == "array":
            return _followed(self.array(schema, hint, own), then)
        if kind == "object" or (kind is None and ("properties" in schema or "additionalProperties" in schema)):
            return _followed(self.object(schema, hint, own), then)
        raise ValueError(f"{hint}: schema without a supported type: {sorted(schema)}")

    def scalar(self, kind: str) -> str:
        if kind == "integer":
            self.helpers.add("json_int")
            return "json_int"
        if kind == "number":
            self.helpers.update({"json_int", "json_number"})
            return "json_number"
        return '("true" | "false")' if kind == "boolean" else '"null"'

    def ref(self, ref: str) -> str:
        if ref not in self.ref_rules:
            name = self.new_rule(ref.rsplit("/", 1)[-1])
            self.ref_rules[ref] = name
            body = self.expr(self.resolve(ref), name, "", own=name)
            if body != name:
                self.rules[name] = body
        return self.ref_rules[ref]

    def string(self, schema: dict[str, Any], hint: str, then: str | None) -> str:
        _unsupported(schema, {"type", "maxLength", "minLength"}, hint)
        min_len = int(schema.get("minLength", 0))
        if min_len > int(schema.get("maxLength", min_len)):
            raise ValueError(f"{hint}: minLength > maxLength")
        return self.string_rule(then, min_len)

    def array(self, schema: dict[str, Any], hint: str, own: str | None) -> str:
        _unsupported(schema, {"type", "items", "maxItems", "minItems"}, hint)
        if "maxItems" not in schema:
            raise ValueError(f"{hint}: array without maxItems (the schema must bound every array)")
        max_n, min_n = int(schema["maxItems"]), int(schema.get("minItems", 0))
        if min_n > max_n:
            raise ValueError(f"{hint}: minItems > maxItems")
        if max_n == 0:
            return '"[]"'
        name = own or self.new_rule(hint)
        item = self.expr(schema.get("items", True), f"{name}_item", None)
        rest = f'("{", "}" {item}){{{max(min_n - 1, 0)},{max_n - 1}}}'
        body = f"{item} {rest}" if min_n > 0 else f"({item} {rest})?"
        self.rules[name] = f'"[" {body} "]"'
        return name

    def object(self, schema: dict[str, Any], hint: str, own: str | None) -> str:
        known = {"type", "properties", "required", "additionalProperties", "maxProperties", "minProperties"}
        _unsupported(schema, known | {"propertyNames"}, hint)
        props: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        if props:
            missing = set(schema.get("required", [])) - set(props)
            if missing:
                raise ValueError(f"{hint}: required properties without a schema: {sorted(missing)}")
            if isinstance(extra, dict):
                raise ValueError(f"{hint}: properties together with an additionalProperties schema")
            if not int(schema.get("minProperties", 0)) <= len(props) <= int(schema.get("maxProperties", len(props))):
                raise ValueError(f"{hint}: minProperties/maxProperties exclude emitting every property")
            name = own or self.new_rule(hint)
            keys = [json.dumps(key, ensure_ascii=False) for key in props]
            followers = [f", {key}: " for key in keys[1:]] + ["}"]
            parts = [ebnf_literal("{" + keys[0] + ": ")]
            for (key, value), then in zip(props.items(), followers, strict=True):
                parts.append(self.expr(value, f"{name}_{key}", then))
            self.rules[name] = " ".join(parts)
            return name
        if isinstance(extra, dict):
            if "maxProperties" not in schema:
                raise ValueError(f"{hint}: map without maxProperties (the schema must bound every map)")
            max_n, min_n = int(schema["maxProperties"]), int(schema.get("minProperties", 0))
            if max_n == 0:
                return '"{}"'
            if min_n > 0:
                raise ValueError(f"{hint}: minProperties on a map is not supported (keys must be distinct)")
            keys = schema.get("propertyNames", {"type": "string"})
            name = own or self.new_rule(hint)
            key = self.string({"type": "string", **keys}, f"{name}_key", ": ")
            entry = f"{key} {self.expr(extra, f'{name}_value', None)}"
            self.rules[name] = f'"{{" ({entry} ("{", "}" {entry}){{0,{max_n - 1}}})? "}}"'
            return name
        if extra is False:
            return '"{}"'
        raise ValueError(f"{hint}: free-form object (no properties, no additionalProperties schema)")

    # -- output -------------------------------------------------------------------------------------------------

    def render(self, root_expr: str) -> str:
        lines = [f"root ::= {root_expr}"]
        lines += [f"{name} ::= {body}" for name, body in self.rules.items() if name != "root"]
        lines += self.string_bodies
        lines += [_NUMBER_RULES[n] for n in ("json_int", "json_number") if n in self.helpers]
        if "json_char" in self.helpers:
            lines.append(JSON_CHAR_RULE)
        return "\n".join(lines) + "\n"


def _followed(expr: str, then: str | None) -> str:
    return f"{expr} {ebnf_literal(then)}" if then else expr


def _string_rule_name(then: str | None, min_len: int, taken: set[str]) -> str:
    """`str_item` (array items, map values), `str_key` (map keys), `str_last` (an object's last property),
    `str_before_<property>` (the property before it), `str` (nothing follows); `_min<N>` with a minimum length."""
    if then is None:
        base = "str_item"
    elif then == ": ":
        base = "str_key"
    elif then == "":
        base = "str"
    elif then == "}":
        base = "str_last"
    else:
        base = "str_before_" + (re.sub(r"[^A-Za-z0-9_]", "_", then).strip("_") or "then")
    base += f"_min{min_len}" if min_len else ""
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    return name


def schema_to_ebnf(schema: dict[str, Any]) -> str:
    """The EBNF (root rule `root`) of compact JSON valid against `schema`, string lengths aside; ValueError outside
    the subset."""
    conv = _Converter(schema)
    conv.rules["root"] = ""
    title = schema.get("title")
    root_expr = conv.expr(schema, title if isinstance(title, str) else "root", "")
    return conv.render(root_expr)


def tighten_bounds(
    schema: dict[str, Any], *, max_length: int, max_items: int, max_properties: int | None = None
) -> dict[str, Any]:
    """A copy of `schema` with every `maxLength`/`maxItems`/`maxProperties` lowered to the given caps. Whatever
    the copy accepts, the original accepts: use it to keep outputs short (e.g. for a small or random model)."""
    caps = {"maxLength": max_length, "maxItems": max_items, "maxProperties": max_properties}

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(x) for x in node]
        if not isinstance(node, dict):
            return node
        out = {k: walk(v) for k, v in node.items()}
        for key, minimum in (("maxLength", "minLength"), ("maxItems", "minItems"), ("maxProperties", "minProperties")):
            cap = caps[key]
            if cap is not None and isinstance(out.get(key), int):
                out[key] = max(min(out[key], cap), int(out.get(minimum, 0)))
        return out

    result: dict[str, Any] = walk(copy.deepcopy(schema))
    return result


@lru_cache(maxsize=32)
def constraint_for(model_cls: type[BaseModel]) -> Constraint:
    """The generation constraint for a pydantic model: its JSON schema plus the equivalent bounded EBNF."""
    schema = model_cls.model_json_schema()
    return Constraint(kind="json_schema", name=model_cls.__name__, schema=schema, ebnf=schema_to_ebnf(schema))


def ir_constraint() -> Constraint:
    from lift_lsp.spec.ir import IR

    return constraint_for(IR)


def code_constraint() -> Constraint:
    from lift_lsp.spec.ir import CodeCandidate

    return constraint_for(CodeCandidate)


def ir_ebnf() -> str:
    """The grammar of the IR (as exported to `grammars/ir.ebnf`)."""
    ebnf = ir_constraint().ebnf
    assert ebnf is not None
    return ebnf


def code_ebnf() -> str:
    """The grammar of the code step's output (as exported to `grammars/code.ebnf`)."""
    ebnf = code_constraint().ebnf
    assert ebnf is not None
    return ebnf
